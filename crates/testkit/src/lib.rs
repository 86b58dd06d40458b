//! `tabmesh-testkit`: dev-only helpers shared by the test suites.
//!
//! - [`test`]: the test attribute. Natively it is the built-in `#[test]`; in a JS host (wasm32) it
//!   is `wasm_bindgen_test`, so one test source runs in both places. Test files write
//!   `use tabmesh_testkit::test;` and then plain `#[test]`.
//! - [`DetRng`]: the seeded generator behind every randomised test (re-exported from `base`), so a
//!   failing case is reproduced from its seed.
//! - [`for_seeds`]: runs a property over many seeds and names the failing one.
//!
//! What it is not: a dependency of any library crate. It is the only place (with the shell crates)
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

pub use tabmesh_base::DetRng;

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
