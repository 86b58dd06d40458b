// Integration tests of `tabmesh-sdk`, natively: the macros' output, event data, error encoding and
// the typed `NoHost` answers. Native only (the SDK's wasm32 build imports the tabmesh host, which a
// browser test binary does not provide); the SDK on a real host is tested through the example
// apps in `crates/runtime/tests/it/apps.rs`.

#[allow(unreachable_pub)] // the test app's items are `pub` as in an app crate
mod app;
mod blob;
