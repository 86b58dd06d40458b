//! The app of the handlers scenarios: the real example app `kv-store-with-handlers`, read from
//! `target/apps/kv-store-with-handlers.wasm` (written by `scripts/build-apps.sh`; the directory
//! follows `tabmesh_testkit::apps_dir`).
//!
//! - `set` takes JSON `{key, value}`, writes the map `items` and emits `Set`, naming the handler
//!   `on_set`;
//! - `on_set` (the handler) increments the counter of the key in the map `handled` (a grow-only
//!   counter: one slot per member, so every run counts and runs commute).
//!
//! The app has no init hook: contexts start empty on every member.

use std::sync::OnceLock;

use tabmesh_base::DetRng;

/// The example app the handlers scenarios run.
pub const HANDLER_APP: &str = "kv-store-with-handlers";

/// Keys `set` writes (few, so writes collide).
const KEYS: u64 = 12;

/// The bytes of [`HANDLER_APP`], read once per process. A missing module is an error naming
/// `scripts/build-apps.sh`: the handlers scenarios fail on it, they never skip.
pub fn handler_app() -> Result<&'static [u8], String> {
    static MODULE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    MODULE
        .get_or_init(|| tabmesh_testkit::example_app(HANDLER_APP))
        .as_deref()
        .map_err(Clone::clone)
}

/// The JSON input of one `set`: a random key of a few and a random value.
pub(crate) fn set_input(op: u64) -> Vec<u8> {
    let mut rng = DetRng::new(op);
    let key = rng.below(KEYS);
    let value: String = rng
        .bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(r#"{{"key":"k{key}","value":"{value}"}}"#).into_bytes()
}
