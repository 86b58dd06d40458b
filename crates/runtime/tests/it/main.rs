use tabmesh_testkit::test;

// Integration tests of `tabmesh-runtime`, through its public API only. One binary; the same source
// runs natively and in headless Chromium (no threads, files or clocks; WAT is compiled to bytes in
// the test).

mod app;
// The example apps, read from target/apps at test time: native only (see the module).
#[cfg(not(target_family = "wasm"))]
mod apps;
mod cache;
mod hooks;
mod hostile;
mod support;

#[test]
fn runtime_errors_stay_small() {
    assert!(size_of::<tabmesh_runtime::RuntimeError>() <= 40);
}
