use tabmesh_testkit::test;

use tabmesh_runtime::abi::{decode_result, Op, OpErrorKind, StorageOp, Value};
use tabmesh_runtime::{Event, Runtime};

use super::support::{
    call, method, module, storage_app, Entry, TestHost, CONTEXT, EXECUTOR, NOW_MS,
};

fn op(field: &'static str, path: Vec<&'static [u8]>, op: Op<'static>) -> StorageOp<'static> {
    StorageOp { field, path, op }
}

/// A small key-value app over registers, a counter, a set and a nested map.
fn kv_app() -> Vec<u8> {
    storage_app(&[
        method(
            "set",
            op("title", vec![], Op::RegisterSet { value: b"" }),
            true,
        ),
        method("get", op("title", vec![], Op::RegisterGet), false),
        method(
            "hit",
            op("hits", vec![], Op::CounterIncrement { by: 1 }),
            false,
        ),
        method("hits", op("hits", vec![], Op::CounterGet), false),
        method("tag", op("tags", vec![], Op::SetAdd { member: b"" }), true),
        method("tags", op("tags", vec![], Op::SetLen), false),
        method(
            "put_alice",
            op(
                "teams",
                vec![b"red"],
                Op::MapInsert {
                    key: b"alice",
                    value: b"",
                },
            ),
            true,
        ),
        method(
            "alice",
            op("teams", vec![b"red"], Op::MapGet { key: b"alice" }),
            false,
        ),
        method(
            "title_as_counter",
            op("title", vec![], Op::CounterGet),
            false,
        ),
        method("text_len", op("doc", vec![], Op::TextLen), false),
    ])
}

/// Runs `method` and decodes its return value as an operation result.
fn run(rt: &mut Runtime, app: &[u8], method: &str, input: &[u8], host: &mut TestHost) -> Value {
    let outcome = call(rt, app, method, input, host).expect("call succeeds");
    let bytes = outcome.return_value.expect("a return value");
    decode_result(&bytes)
        .expect("decodes")
        .expect("operation accepted")
}

#[test]
fn a_storage_app_writes_and_reads_through_the_host() {
    let app = kv_app();
    let mut rt = Runtime::default();
    let mut host = TestHost::default();

    assert_eq!(run(&mut rt, &app, "get", b"", &mut host), Value::Absent);
    assert_eq!(run(&mut rt, &app, "set", b"hello", &mut host), Value::Unit);
    assert_eq!(
        run(&mut rt, &app, "get", b"", &mut host),
        Value::Bytes(b"hello".to_vec())
    );
    assert_eq!(host.get("title"), Some(&Entry::Register(b"hello".to_vec())));

    for _ in 0..3 {
        run(&mut rt, &app, "hit", b"", &mut host);
    }
    assert_eq!(run(&mut rt, &app, "hits", b"", &mut host), Value::U128(3));

    for tag in [&b"a"[..], b"b", b"a"] {
        run(&mut rt, &app, "tag", tag, &mut host);
    }
    assert_eq!(run(&mut rt, &app, "tags", b"", &mut host), Value::U64(2));

    run(&mut rt, &app, "put_alice", b"captain", &mut host);
    assert_eq!(
        run(&mut rt, &app, "alice", b"", &mut host),
        Value::Bytes(b"captain".to_vec())
    );
    let team = host
        .committed
        .get(&("teams".to_owned(), vec![b"red".to_vec()]))
        .expect("nested map written at its path");
    assert!(matches!(team, Entry::Map(m) if m.len() == 1));
}

#[test]
fn a_refused_operation_comes_back_to_the_app_as_a_value() {
    let app = kv_app();
    let mut rt = Runtime::default();
    let mut host = TestHost::default();
    run(&mut rt, &app, "set", b"x", &mut host);

    let outcome = call(&mut rt, &app, "title_as_counter", b"", &mut host).expect("call succeeds");
    let err = decode_result(&outcome.return_value.expect("returned"))
        .expect("decodes")
        .expect_err("refused");
    assert_eq!(err.kind, OpErrorKind::WrongType);

    let outcome = call(&mut rt, &app, "text_len", b"", &mut host).expect("call succeeds");
    let err = decode_result(&outcome.return_value.expect("returned"))
        .expect("decodes")
        .expect_err("refused");
    assert_eq!(err.kind, OpErrorKind::Unsupported);
}

#[test]
fn logs_events_and_handlers_are_collected_in_order() {
    let app = module(
        1,
        r#"
        (data (i32.const 0) "one")
        (data (i32.const 8) "two")
        (data (i32.const 16) "noted")
        (data (i32.const 32) "on_note")
        (data (i32.const 48) "\ff\fe")
        (func (export "notify")
          (call $log (i32.const 0) (i32.const 3))
          (call $emit (i32.const 16) (i32.const 5) (i32.const 0) (i32.const 3) (i32.const 32) (i32.const 7))
          (call $log (i32.const 48) (i32.const 2))
          (call $emit (i32.const 16) (i32.const 5) (i32.const 8) (i32.const 3) (i32.const 0) (i32.const 0)))
        (func (export "on_note"))
        (func (export "bad_handler")
          (call $emit (i32.const 16) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 5)))
        "#,
    );
    let mut rt = Runtime::default();
    let mut host = TestHost::default();
    let outcome = call(&mut rt, &app, "notify", b"", &mut host).expect("call succeeds");
    assert_eq!(outcome.logs, ["one", "\u{fffd}\u{fffd}"]);
    assert_eq!(
        outcome.events,
        [
            Event {
                kind: "noted".into(),
                data: b"one".to_vec(),
                handler: Some("on_note".into()),
            },
            Event {
                kind: "noted".into(),
                data: b"two".to_vec(),
                handler: None,
            },
        ]
    );
    assert_eq!(outcome.return_value, None);

    let err = call(&mut rt, &app, "bad_handler", b"", &mut host).expect_err("unknown handler");
    assert_eq!(
        err,
        tabmesh_runtime::RuntimeError::UnknownHandler("noted".into())
    );
}

#[test]
fn ids_time_and_randomness_come_from_the_host() {
    let app = module(
        1,
        r#"
        (func (export "who")
          (call $context_id (i32.const 0))
          (call $executor_id (i32.const 32))
          (i64.store (i32.const 64) (call $time_now))
          (call $random_bytes (i32.const 72) (i32.const 8))
          (call $return_value (i32.const 0) (i32.const 80)))
        "#,
    );
    let mut rt = Runtime::default();
    let mut host = TestHost::default();
    let outcome = call(&mut rt, &app, "who", b"", &mut host).expect("call succeeds");
    let v = outcome.return_value.expect("returned");
    assert_eq!(v[..32], CONTEXT.0);
    assert_eq!(v[32..64], EXECUTOR.0);
    assert_eq!(v[64..72], NOW_MS.to_le_bytes());
    assert_eq!(v[72..80], [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn the_input_is_echoed_and_fuel_use_is_deterministic() {
    let app = module(
        1,
        r#"
        (func (export "echo") (local $n i32)
          (local.set $n (call $input))
          (call $read_result (i32.const 0) (local.get $n))
          (call $return_value (i32.const 0) (local.get $n)))
        "#,
    );
    let mut rt = Runtime::default();
    let mut host = TestHost::default();
    let a = call(&mut rt, &app, "echo", b"ping", &mut host).expect("call succeeds");
    let b = call(&mut rt, &app, "echo", b"ping", &mut host).expect("call succeeds");
    assert_eq!(a.return_value.as_deref(), Some(&b"ping"[..]));
    assert_eq!(
        a, b,
        "same module, input and host answers: same outcome and fuel"
    );
    assert!(a.fuel_used > 0);
    let longer = call(&mut rt, &app, "echo", &[0; 1000], &mut host).expect("call succeeds");
    assert!(longer.fuel_used > a.fuel_used, "bytes moved cost fuel");
}

#[test]
fn fail_ends_the_call_with_the_apps_payload_and_discards_its_writes() {
    let set = StorageOp {
        field: "title",
        path: vec![],
        op: Op::RegisterSet { value: b"lost" },
    }
    .encode();
    let app = module(
        1,
        &format!(
            r#"
            (data (i32.const 0) "{op}")
            (data (i32.const 512) "not allowed")
            (func (export "refuse")
              (drop (call $storage (i32.const 0) (i32.const {len})))
              (call $fail (i32.const 512) (i32.const 11)))
            "#,
            op = super::support::escape(&set),
            len = set.len(),
        ),
    );
    let mut rt = Runtime::default();
    let mut host = TestHost::default();
    let err = call(&mut rt, &app, "refuse", b"", &mut host).expect_err("fails");
    assert_eq!(
        err,
        tabmesh_runtime::RuntimeError::Failed {
            payload: b"not allowed".to_vec().into()
        }
    );
    assert_eq!(host.ops, 1, "the write reached the host's transaction");
    assert!(host.committed.is_empty(), "and was discarded");
}
