use tabmesh_testkit::test;

// Integration tests of `tabmesh-abi`, through its public API only. One binary; the same source
// runs natively and in headless Chromium (no threads, files or clocks).

mod codec;

#[test]
fn the_import_set_is_stable() {
    let names: Vec<&str> = tabmesh_abi::IMPORTS.iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        [
            "input",
            "read_result",
            "return_value",
            "fail",
            "log",
            "emit",
            "storage",
            "blob",
            "context_id",
            "executor_id",
            "time_now",
            "random_bytes"
        ]
    );
    assert_eq!(tabmesh_abi::IMPORT_MODULE, "tabmesh");
}

#[test]
fn the_init_hook_is_reserved() {
    assert_eq!(tabmesh_abi::INIT_HOOK, "__tabmesh_init");
    assert!(tabmesh_abi::INIT_HOOK.starts_with(tabmesh_abi::RESERVED_PREFIX));
    assert!(!tabmesh_abi::is_method_name(tabmesh_abi::INIT_HOOK));
}

#[test]
fn the_merge_hook_prefix_is_reserved() {
    assert_eq!(tabmesh_abi::MERGE_HOOK_PREFIX, "__tabmesh_merge");
    assert!(tabmesh_abi::MERGE_HOOK_PREFIX.starts_with(tabmesh_abi::RESERVED_PREFIX));
    assert!(!tabmesh_abi::is_method_name("__tabmesh_merge_items"));
}
