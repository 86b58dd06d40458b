use tabmesh_testkit::test;

use tabmesh_runtime::abi::{Op, StorageOp};
use tabmesh_runtime::{Limit, Limits, Runtime, RuntimeError};

use super::support::{call, escape, module, wasm, TestHost, IMPORTS};

/// Runs `run` of a module that first writes a register (`$write`) and then does `body`'s worst.
/// The call must fail and leave nothing committed; returns its error.
fn hostile(limits: Limits, pages: u32, body: &str) -> RuntimeError {
    hostile_with_input(limits, pages, body, b"")
}

fn hostile_with_input(limits: Limits, pages: u32, body: &str, input: &[u8]) -> RuntimeError {
    let set = StorageOp {
        field: "victim",
        path: vec![],
        op: Op::RegisterSet { value: b"written" },
    }
    .encode();
    let app = module(
        pages,
        &format!(
            r#"(data (i32.const 0) "{op}")
               (func $write (drop (call $storage (i32.const 0) (i32.const {len}))))
               {body}"#,
            op = escape(&set),
            len = set.len(),
        ),
    );
    let mut rt = Runtime::new(limits);
    let mut host = TestHost::default();
    let err = call(&mut rt, &app, "run", input, &mut host).expect_err("a hostile call fails");
    assert!(host.committed.is_empty(), "nothing committed after {err}");
    err
}

fn small_fuel() -> Limits {
    Limits {
        fuel: 1_000_000,
        ..Limits::default()
    }
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let err = hostile(
        small_fuel(),
        1,
        r#"(func (export "run") (call $write) (loop (br 0)))"#,
    );
    assert_eq!(err, RuntimeError::OutOfFuel { budget: 1_000_000 });
}

#[test]
fn a_loop_of_host_calls_runs_out_of_fuel_too() {
    let err = hostile(
        small_fuel(),
        1,
        r#"(func (export "run") (loop (call $write) (br 0)))"#,
    );
    assert_eq!(err, RuntimeError::OutOfFuel { budget: 1_000_000 });
}

#[test]
fn a_memory_growth_bomb_hits_the_memory_cap() {
    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run")
             (call $write)
             (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))))"#,
    );
    assert_eq!(err, RuntimeError::MemoryLimit);
}

#[test]
fn a_module_declaring_too_much_memory_is_refused_at_instantiation() {
    let limits = Limits::default();
    let pages = limits.max_memory_bytes / 65536 + 1;
    let app = module(pages as u32, r#"(func (export "run"))"#);
    let mut rt = Runtime::new(limits);
    let err = call(&mut rt, &app, "run", b"", &mut TestHost::default()).expect_err("refused");
    assert_eq!(err, RuntimeError::MemoryLimit);
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let err = hostile(
        Limits::default(),
        1,
        r#"(func $down (call $down))
           (func (export "run") (call $write) (call $down))"#,
    );
    assert_eq!(err, RuntimeError::StackOverflow);
}

#[test]
fn ten_megabytes_of_logs_hit_the_log_limits() {
    // 2560 lines of 4 KiB: the total is refused once it passes 64 KiB.
    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (local $i i32)
             (call $write)
             (loop
               (call $log (i32.const 0) (i32.const 4096))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if 0 (i32.lt_u (local.get $i) (i32.const 2560)))))"#,
    );
    assert!(
        matches!(err, RuntimeError::LimitExceeded { limit: Limit::LogBytes, len, max: 65536 } if len > 65536),
        "{err:?}"
    );

    // One 10 MB line is refused before guest memory is read.
    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (call $write) (call $log (i32.const 0) (i32.const 10485760)))"#,
    );
    assert_eq!(
        err,
        RuntimeError::LimitExceeded {
            limit: Limit::LogLine,
            len: 10 << 20,
            max: 4096
        }
    );

    // Many tiny lines hit the line count.
    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (call $write) (loop (call $log (i32.const 0) (i32.const 1)) (br 0)))"#,
    );
    assert!(
        matches!(
            err,
            RuntimeError::LimitExceeded {
                limit: Limit::LogCount,
                max: 128,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn too_many_or_too_large_events_are_refused() {
    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (call $write)
             (loop (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (br 0)))"#,
    );
    assert!(
        matches!(
            err,
            RuntimeError::LimitExceeded {
                limit: Limit::EventCount,
                ..
            }
        ),
        "{err:?}"
    );
    let err = hostile(
        Limits::default(),
        2,
        r#"(func (export "run") (call $write)
             (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 70000) (i32.const 0) (i32.const 0)))"#,
    );
    assert!(
        matches!(
            err,
            RuntimeError::LimitExceeded {
                limit: Limit::EventData,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_huge_return_value_is_refused() {
    let err = hostile(
        Limits::default(),
        40,
        r#"(func (export "run") (call $write) (call $return_value (i32.const 0) (i32.const 2097152)))"#,
    );
    assert_eq!(
        err,
        RuntimeError::LimitExceeded {
            limit: Limit::ReturnValue,
            len: 2 << 20,
            max: 1 << 20
        }
    );
}

#[test]
fn host_calls_with_out_of_bounds_pointers_are_refused() {
    let cases = [
        ("(call $log (i32.const 0xfffffff0) (i32.const 16))", 0xffff_fff0, 16),
        ("(call $log (i32.const 65530) (i32.const 7))", 65530, 7),
        ("(drop (call $storage (i32.const 65500) (i32.const 100)))", 65500, 100),
        ("(call $context_id (i32.const 65530))", 65530, 32),
        ("(call $executor_id (i32.const -1))", u32::MAX, 32),
        ("(call $random_bytes (i32.const 65535) (i32.const 2))", 65535, 2),
        ("(call $return_value (i32.const -4) (i32.const 8))", u32::MAX - 3, 8),
        ("(call $fail (i32.const 65536) (i32.const 1))", 65536, 1),
        (
            "(call $emit (i32.const 0) (i32.const 1) (i32.const 70000) (i32.const 1) (i32.const 0) (i32.const 0))",
            70000,
            1,
        ),
        (
            "(drop (call $input)) (call $read_result (i32.const 65535) (i32.const 4))",
            65535,
            4,
        ),
    ];
    for (call_, ptr, len) in cases {
        let body = format!(r#"(func (export "run") (call $write) {call_})"#);
        let err = hostile_with_input(Limits::default(), 1, &body, b"abcd");
        assert_eq!(err, RuntimeError::BadPointer { ptr, len }, "{call_}");
    }
}

#[test]
fn malformed_operations_and_abi_misuse_are_typed_errors() {
    let err = hostile(
        Limits::default(),
        1,
        r#"(data (i32.const 512) "\01\ff\00\00")
           (func (export "run") (call $write) (drop (call $storage (i32.const 512) (i32.const 4))))"#,
    );
    assert!(matches!(err, RuntimeError::BadArgument(_)), "{err:?}");

    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (call $write) (drop (call $storage (i32.const 0) (i32.const 200000))))"#,
    );
    assert!(
        matches!(
            err,
            RuntimeError::LimitExceeded {
                limit: Limit::Argument,
                ..
            }
        ),
        "{err:?}"
    );

    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (call $write) (call $read_result (i32.const 0) (i32.const 100)))"#,
    );
    assert!(matches!(err, RuntimeError::AbiViolation(_)), "{err:?}");

    let err = hostile(
        Limits::default(),
        1,
        r#"(data (i32.const 512) "\ff")
           (func (export "run") (call $write)
             (call $emit (i32.const 512) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))"#,
    );
    assert!(matches!(err, RuntimeError::AbiViolation(_)), "{err:?}");

    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (call $write) (call $random_bytes (i32.const 0) (i32.const 5000)))"#,
    );
    assert!(
        matches!(
            err,
            RuntimeError::LimitExceeded {
                limit: Limit::Random,
                ..
            }
        ),
        "{err:?}"
    );

    let err = hostile(
        Limits::default(),
        1,
        r#"(func (export "run") (call $write) (unreachable))"#,
    );
    assert!(matches!(err, RuntimeError::Trap(_)), "{err:?}");
}

#[test]
fn unknown_or_mistyped_imports_are_refused_at_load() {
    let mut rt = Runtime::default();
    let cases = [
        (
            r#"(module (import "env" "abort" (func)) (memory (export "memory") 1))"#,
            RuntimeError::UnknownImport {
                module: "env".into(),
                name: "abort".into(),
            },
        ),
        (
            r#"(module (import "tabmesh" "exec" (func)) (memory (export "memory") 1))"#,
            RuntimeError::UnknownImport {
                module: "tabmesh".into(),
                name: "exec".into(),
            },
        ),
        (
            r#"(module (import "tabmesh" "memory" (memory 1)) (export "memory" (memory 0)))"#,
            RuntimeError::UnknownImport {
                module: "tabmesh".into(),
                name: "memory".into(),
            },
        ),
        (
            r#"(module (import "tabmesh" "storage" (func (param i64) (result i32))) (memory (export "memory") 1))"#,
            RuntimeError::ImportMismatch("storage".into()),
        ),
        (
            r#"(module (func (export "run")))"#,
            RuntimeError::MissingMemory,
        ),
    ];
    for (wat, expected) in cases {
        assert_eq!(rt.load(&wasm(wat)), Err(expected), "{wat}");
    }
    assert_eq!(rt.cache_stats().cached, 0);
}

#[test]
fn malformed_bytes_and_start_functions_are_invalid_modules() {
    let mut rt = Runtime::default();
    let valid = module(1, r#"(func (export "run"))"#);
    let with_start = wasm(&format!(
        "(module {IMPORTS} (memory (export \"memory\") 1) (func $s) (start $s))"
    ));
    for bytes in [
        &b""[..],
        b"not wasm at all",
        b"\0asm\x01\0\0\0\xff\xff\xff",
        &valid[..valid.len() - 3],
        &with_start,
    ] {
        let err = rt.load(bytes).expect_err("invalid");
        assert!(matches!(err, RuntimeError::InvalidModule(_)), "{err:?}");
        let err = call(&mut rt, bytes, "run", b"", &mut TestHost::default()).expect_err("invalid");
        assert!(matches!(err, RuntimeError::InvalidModule(_)), "{err:?}");
    }
}

#[test]
fn oversized_modules_are_refused_before_parsing() {
    let limits = Limits {
        max_module_bytes: 1024,
        ..Limits::default()
    };
    let padded = wasm(&format!(
        "(module (memory (export \"memory\") 1) (@custom \"pad\" \"{}\") (func (export \"run\")))",
        "x".repeat(2000)
    ));
    let mut rt = Runtime::new(limits);
    assert_eq!(
        rt.load(&padded),
        Err(RuntimeError::ModuleTooLarge {
            len: padded.len(),
            max: 1024
        })
    );

    let mut rt = Runtime::default();
    let huge = vec![0u8; rt.limits().max_module_bytes + 1];
    let err = call(&mut rt, &huge, "run", b"", &mut TestHost::default()).expect_err("too large");
    assert!(
        matches!(err, RuntimeError::ModuleTooLarge { .. }),
        "{err:?}"
    );
    assert_eq!(rt.cache_stats().compiled, 0);
}

#[test]
fn unknown_methods_and_oversized_inputs_are_refused_before_running() {
    let app = module(
        1,
        r#"(func (export "run")) (func (export "takes_args") (param i32)) (func (export "__tabmesh_init"))"#,
    );
    let mut rt = Runtime::default();
    let hash = rt.load(&app).expect("loads");
    assert_eq!(
        rt.methods(&hash).expect("cached").collect::<Vec<_>>(),
        ["run"]
    );
    let mut host = TestHost::default();
    for name in ["nope", "takes_args", "__tabmesh_init", "memory", ""] {
        assert_eq!(
            call(&mut rt, hash, name, b"", &mut host),
            Err(RuntimeError::UnknownMethod(name.into()))
        );
    }
    let long = "m".repeat(200);
    assert!(matches!(
        call(&mut rt, hash, &long, b"", &mut host),
        Err(RuntimeError::LimitExceeded {
            limit: Limit::MethodName,
            ..
        })
    ));
    let input = vec![0u8; rt.limits().max_input_bytes + 1];
    assert!(matches!(
        call(&mut rt, hash, "run", &input, &mut host),
        Err(RuntimeError::LimitExceeded {
            limit: Limit::Input,
            ..
        })
    ));
}

#[test]
fn an_event_kind_too_long_and_events_too_large_together_are_refused() {
    let limits = Limits {
        max_event_kind_bytes: 16,
        max_event_data_bytes: 1_000,
        max_event_bytes: 2_500,
        ..Limits::default()
    };
    let err = hostile(
        limits.clone(),
        1,
        r#"(func (export "run") (call $write)
             (call $emit (i32.const 0) (i32.const 17) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))"#,
    );
    assert_eq!(
        err,
        RuntimeError::LimitExceeded {
            limit: Limit::EventKind,
            len: 17,
            max: 16
        }
    );
    // Three events of 1 000 bytes each: every one within its own bound, the three over the total.
    let err = hostile(
        limits,
        1,
        r#"(func (export "run") (call $write)
             (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 0))
             (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 0))
             (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 0)))"#,
    );
    assert!(
        matches!(
            err,
            RuntimeError::LimitExceeded {
                limit: Limit::EventBytes,
                max: 2_500,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_host_result_over_its_bound_and_a_table_over_its_cap_are_refused() {
    // A register read whose encoded answer (the 7-byte value "written" and its framing) is over a
    // 4-byte result bound.
    let get = StorageOp {
        field: "victim",
        path: vec![],
        op: Op::RegisterGet,
    }
    .encode();
    let limits = Limits {
        max_result_bytes: 4,
        ..Limits::default()
    };
    let err = hostile(
        limits,
        1,
        &format!(
            r#"(data (i32.const 1024) "{op}")
               (func (export "run") (call $write)
                 (drop (call $storage (i32.const 1024) (i32.const {len}))))"#,
            op = escape(&get),
            len = get.len(),
        ),
    );
    assert!(
        matches!(
            err,
            RuntimeError::LimitExceeded {
                limit: Limit::Result,
                max: 4,
                ..
            }
        ),
        "{err:?}"
    );
    // A module declaring a table larger than the cap is refused before it runs.
    let limits = Limits::default();
    let app = module(
        1,
        &format!(
            r#"(table {} funcref) (func (export "run"))"#,
            limits.max_table_elements + 1
        ),
    );
    let mut rt = Runtime::new(limits);
    let err = call(&mut rt, &app, "run", b"", &mut TestHost::default()).expect_err("refused");
    assert!(matches!(err, RuntimeError::MemoryLimit), "{err:?}");
}
