//! The pure crates' test sources, run in headless Chromium (see the crate docs).
#![cfg(js_host)]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "../../../crates/abi/tests/it/main.rs"]
mod abi;
#[path = "../../../crates/auth/tests/it/main.rs"]
mod auth;
#[path = "../../../crates/base/tests/it/main.rs"]
mod base;
#[path = "../../../crates/blobs/tests/it/main.rs"]
mod blobs;
#[path = "../../../crates/dag/tests/it/main.rs"]
mod dag;
#[path = "../../../crates/node/tests/it/main.rs"]
mod node;
#[path = "../../../crates/runtime/tests/it/main.rs"]
mod runtime;
#[path = "../../../crates/state/tests/it/main.rs"]
mod state;
// The batch codec and `MemoryStore` (the file tests are native only).
#[path = "../../../crates/storage/tests/it/main.rs"]
mod storage;
#[path = "../../../crates/sync/tests/it/main.rs"]
mod sync;
