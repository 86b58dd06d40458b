//! `tabmesh-testkit`: dev-only helpers shared by the test suites.
//!
//! - [`test`]: the test attribute. Natively it is the built-in `#[test]`; in a JS host (wasm32) it
//!   is `wasm_bindgen_test`, so one test source runs in both places. Test files write
//!   `use tabmesh_testkit::test;` and then plain `#[test]`.
//! - [`DetRng`]: the seeded generator behind every randomised test (re-exported from `base`), so a
//!   failing case is reproduced from its seed.
//! - [`for_seeds`]: runs a property over many seeds and names the failing one.
//! - [`example_app`]: the bytes of a built example app (`target/apps/<name>.wasm`, written by
//!   `scripts/build-apps.sh`), for native tests, benches and the simulator; [`apps_dir`] is where
//!   it looks.
//!
//! What it is not: a dependency of any shipped library crate. It is the only place (with the shell crates)
//! where the `js_host` cfg alias appears.
//!
//! ```
//! tabmesh_testkit::for_seeds(0..4, |seed, rng| {
//!     let x = rng.below(10);
//!     assert!(x < 10, "seed {seed}");
//! });
//! ```

#[cfg(js_host)]
pub use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(not(js_host))]
pub use core::prelude::v1::test;

use std::path::PathBuf;

pub use tabmesh_base::DetRng;

/// Where `scripts/build-apps.sh` puts the example apps: `$TABMESH_APPS_DIR`, else
/// `$CARGO_TARGET_DIR/apps`, else `<workspace>/target/apps` (the script's own rule).
pub fn apps_dir() -> PathBuf {
    std::env::var_os("TABMESH_APPS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("apps")))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/apps"))
}

/// The bytes of the built example app `name` (e.g. `"kv-store"`), read from
/// [`apps_dir`]`/<name>.wasm`. Native only in practice (it reads a file). A missing module is an
/// error naming the path and `scripts/build-apps.sh`: callers fail on it, never skip.
pub fn example_app(name: &str) -> Result<Vec<u8>, String> {
    let path = apps_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read {}: {e}; build the example apps first: scripts/build-apps.sh",
            path.display()
        )
    })
}

/// Runs `property` once per seed with a generator seeded from it; a panic names the seed.
pub fn for_seeds(seeds: impl IntoIterator<Item = u64>, mut property: impl FnMut(u64, &mut DetRng)) {
    for seed in seeds {
        let mut rng = DetRng::new(seed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            property(seed, &mut rng);
        }));
        if let Err(panic) = outcome {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("property failed for seed {seed}: {msg}");
        }
    }
}
