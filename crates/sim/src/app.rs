//! The handler app of the handlers scenario: a WAT equivalent of the example app
//! `kv-store-with-handlers`, embedded so the simulator needs no build step.
//!
//! - `set`: runs the encoded map insert it is given (on the map `items`) and emits `Set` with the
//!   same bytes as data, naming the handler `on_set`;
//! - `on_set` (the handler): increments the grow-only counter `handled` (one slot per member, so
//!   every run counts and runs commute);
//! - init hook: sets the register `app` to `kv-store-with-handlers`, so the creator's genesis
//!   delta exists from the start.

use tabmesh_base::DetRng;
use tabmesh_runtime::abi::{Op, StorageOp};

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The module's bytes.
pub(crate) fn module() -> Vec<u8> {
    let handled = StorageOp {
        field: "handled",
        path: vec![],
        op: Op::CounterIncrement { by: 1 },
    }
    .encode();
    let init = StorageOp {
        field: "app",
        path: vec![],
        op: Op::RegisterSet {
            value: b"kv-store-with-handlers",
        },
    }
    .encode();
    let wat = format!(
        r#"(module
      (import "tabmesh" "input" (func $input (result i32)))
      (import "tabmesh" "read_result" (func $read_result (param i32 i32)))
      (import "tabmesh" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
      (import "tabmesh" "storage" (func $storage (param i32 i32) (result i32)))
      (memory (export "memory") 4)
      (data (i32.const 1024) "on_set")
      (data (i32.const 1040) "Set")
      (data (i32.const 2048) "{handled}")
      (data (i32.const 3072) "{init}")
      (func (export "set") (local $n i32)
        (local.set $n (call $input))
        (call $read_result (i32.const 65536) (local.get $n))
        (drop (call $storage (i32.const 65536) (local.get $n)))
        (call $emit (i32.const 1040) (i32.const 3) (i32.const 65536) (local.get $n)
                    (i32.const 1024) (i32.const 6)))
      (func (export "on_set")
        (drop (call $storage (i32.const 2048) (i32.const {handled_len}))))
      (func (export "__tabmesh_init")
        (drop (call $storage (i32.const 3072) (i32.const {init_len})))))"#,
        handled = escape(&handled),
        init = escape(&init),
        handled_len = handled.len(),
        init_len = init.len(),
    );
    // The text is fixed and valid: a failure here is a bug of this file.
    wat::parse_str(wat).unwrap_or_default()
}

/// The input of one `set`: a random key of a few and a random value.
pub(crate) fn set_input(op: u64) -> Vec<u8> {
    let mut rng = DetRng::new(op);
    let key = format!("k{}", rng.below(12));
    StorageOp {
        field: "items",
        path: vec![],
        op: Op::MapInsert {
            key: key.as_bytes(),
            value: &rng.bytes::<8>(),
        },
    }
    .encode()
}
