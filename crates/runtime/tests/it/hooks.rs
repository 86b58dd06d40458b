use tabmesh_testkit::test;

use tabmesh_runtime::abi::{Op, StorageOp, INIT_HOOK, MERGE_HOOK_PREFIX};
use tabmesh_runtime::{Runtime, RuntimeError};

use super::support::{call, escape, module, Entry, TestHost};

/// A module whose init hook sets the register `init` to its input and whose `get` method is a
/// plain method.
fn with_init() -> Vec<u8> {
    let op = StorageOp {
        field: "init",
        path: vec![],
        op: Op::RegisterSet { value: b"" },
    }
    .encode();
    // The value is the op's last field: patch its length and append the input after it.
    let len = op.len();
    module(
        2,
        &format!(
            r#"(data (i32.const 0) "{op}")
            (func (export "{INIT_HOOK}") (local $n i32)
              (local.set $n (call $input))
              (call $read_result (i32.const {len}) (local.get $n))
              (i32.store (i32.const {at}) (local.get $n))
              (drop (call $storage (i32.const 0) (i32.add (i32.const {len}) (local.get $n)))))
            (func (export "get"))
            (func (export "__tabmesh_other"))"#,
            op = escape(&op),
            at = len - 4,
        ),
    )
}

#[test]
fn a_hook_runs_through_execute_hook_and_is_not_a_method() {
    let mut rt = Runtime::default();
    let app = rt.load(&with_init()).expect("ok");
    assert!(rt.has_hook(&app, INIT_HOOK));
    assert!(rt.has_hook(&app, "__tabmesh_other"));
    assert!(!rt.has_hook(&app, "get"));
    assert_eq!(rt.methods(&app).expect("ok").collect::<Vec<_>>(), ["get"]);

    let mut host = TestHost::default();
    let outcome = rt
        .execute_hook(app, INIT_HOOK, b"hello", &mut host)
        .expect("ok");
    assert!(outcome.is_some());
    host.commit();
    assert_eq!(host.get("init"), Some(&Entry::Register(b"hello".to_vec())));

    // `execute` refuses hook names; `execute_hook` refuses method names.
    assert_eq!(
        rt.execute(app, INIT_HOOK, b"", &mut host),
        Err(RuntimeError::UnknownMethod(INIT_HOOK.into()))
    );
    assert_eq!(
        rt.execute_hook(app, "get", b"", &mut host),
        Err(RuntimeError::UnknownMethod("get".into()))
    );
}

#[test]
fn a_module_without_the_hook_answers_none() {
    let mut rt = Runtime::default();
    let bytes = module(1, r#"(func (export "get"))"#);
    let mut host = TestHost::default();
    assert_eq!(rt.execute_hook(&bytes, INIT_HOOK, b"", &mut host), Ok(None));
    let unknown = tabmesh_base::Hash([1; 32]);
    assert_eq!(
        rt.execute_hook(unknown, INIT_HOOK, b"", &mut host),
        Err(RuntimeError::UnknownModule(unknown))
    );
}

#[test]
fn a_module_exporting_a_merge_hook_is_refused_at_load_custom_merge_is_unsupported() {
    let mut rt = Runtime::default();
    // Any export under the merge prefix, whatever its type: a hook-shaped function, a function
    // taking the two states, a global.
    let cases = [
        (
            MERGE_HOOK_PREFIX,
            r#"(func (export "__tabmesh_merge") (nop))"#,
        ),
        (
            "__tabmesh_merge_items",
            r#"(func (export "get")) (func (export "__tabmesh_merge_items") (param i32 i32) (result i32) (i32.const 0))"#,
        ),
        (
            "__tabmesh_merge",
            r#"(global (export "__tabmesh_merge") i32 (i32.const 0))"#,
        ),
    ];
    for (export, body) in cases {
        let bytes = module(1, body);
        let expected = RuntimeError::Unsupported {
            feature: "custom merge functions",
            export: export.into(),
        };
        assert_eq!(rt.load(&bytes), Err(expected.clone()), "{body}");
        let mut host = TestHost::default();
        assert_eq!(call(&mut rt, &bytes, "get", b"", &mut host), Err(expected));
        assert!(host.committed.is_empty());
    }
    assert_eq!(rt.cache_stats().cached, 0);
    let message = rt.load(&module(1, r#"(func (export "__tabmesh_merge"))"#));
    assert_eq!(
        message.map_err(|e| e.to_string()),
        Err("unsupported: custom merge functions (export `__tabmesh_merge`)".to_owned())
    );
    // A method that merely has `merge` in its name is an ordinary method.
    let app = rt
        .load(&module(
            1,
            r#"(func (export "merge")) (func (export "merge_all"))"#,
        ))
        .expect("ok");
    assert_eq!(
        rt.methods(&app).expect("ok").collect::<Vec<_>>(),
        ["merge", "merge_all"]
    );
}
