//! One libFuzzer target for every body of `tabmesh-fuzz` (`tabmesh_fuzz::TARGETS`):
//! `TABMESH_FUZZ_TARGET=<name>` runs that body on every input (start from its corpus,
//! `fuzz/corpus/<name>`); without it, an input's first byte picks the body and the rest is its
//! input. A crash is a broken contract: add the input to `fuzz/corpus/<name>/`, where the stable
//! tests replay it from then on.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tabmesh_fuzz::{target, Target, TARGETS};

static PICKED: OnceLock<Option<&'static Target>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let picked = PICKED.get_or_init(|| {
        std::env::var("TABMESH_FUZZ_TARGET").ok().map(|name| {
            target(&name).unwrap_or_else(|| panic!("no fuzz target named {name:?}"))
        })
    });
    match picked {
        Some(t) => (t.body)(data),
        None => {
            if let Some((first, rest)) = data.split_first() {
                let t = &TARGETS[usize::from(*first) % TARGETS.len()];
                (t.body)(rest);
            }
        }
    }
});
