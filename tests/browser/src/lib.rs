//! `tabmesh-browser-tests`: no library code. Its one test target, `tests/browser.rs`, includes the
//! test sources of every crate that runs in a browser (`crates/*/tests/it/` of base, abi, auth,
//! dag, state, sync, blobs, runtime, node and storage's memory store) and runs them in headless
//! Chromium through `wasm-bindgen-test-runner`, so the exact sources that run natively also run
//! inside wasm32 in a browser. Natively the target compiles to nothing: those tests already run in
//! their own crates.
//!
//! Run it with `cargo test -p tabmesh-browser-tests --target wasm32-unknown-unknown --profile
//! wasm-test` (the runner and its environment come from `.cargo/config.toml`), or through
//! `scripts/test.sh`, which does it for CI.
//!
//! A second target, `tests/bench.rs`, is the browser figure of the app runtime: it needs the
//! `bench` feature and `TABMESH_APPS_DIR` at build time, and `scripts/bench-browser.sh` runs it.
