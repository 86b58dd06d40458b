//! Benchmarks of `NodeCore` app calls: `execute("set")` calls per second through the whole node
//! (runtime, state transaction, delta, persist batch and publish), with a WAT key-value app.
//!
//! `cargo bench -p tabmesh-node -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tabmesh_base::{ContextId, NodeId};
use tabmesh_node::{NodeConfig, NodeCore};
use tabmesh_runtime::abi::{Op, StorageOp};

const CTX: ContextId = ContextId([4; 32]);
const T0: u64 = 1_767_225_600_000;

/// A kv-store in WAT: `set` runs the encoded map insert it is given, `get` the encoded map read;
/// both return the encoded result.
fn kv_app() -> Vec<u8> {
    wat::parse_str(
        r#"(module
          (import "tabmesh" "input" (func $input (result i32)))
          (import "tabmesh" "read_result" (func $read_result (param i32 i32)))
          (import "tabmesh" "return_value" (func $return_value (param i32 i32)))
          (import "tabmesh" "storage" (func $storage (param i32 i32) (result i32)))
          (memory (export "memory") 4)
          (func $op (local $n i32) (local $r i32)
            (local.set $n (call $input))
            (call $read_result (i32.const 65536) (local.get $n))
            (local.set $r (call $storage (i32.const 65536) (local.get $n)))
            (call $read_result (i32.const 131072) (local.get $r))
            (call $return_value (i32.const 131072) (local.get $r)))
          (func (export "set") (call $op))
          (func (export "get") (call $op)))"#,
    )
    .expect("valid WAT")
}

fn set_input(i: u64) -> Vec<u8> {
    let key = format!("key-{}", i % 1_000);
    StorageOp {
        field: "kv",
        path: vec![],
        op: Op::MapInsert {
            key: key.as_bytes(),
            value: &i.to_le_bytes(),
        },
    }
    .encode()
}

fn execute_set(c: &mut Criterion) {
    let mut node = NodeCore::new(NodeId([1; 32]), NodeConfig::default(), 1);
    node.create_context(T0, CTX, &kv_app(), b"")
        .expect("context created");
    while node.poll_output().is_some() {}
    let inputs: Vec<Vec<u8>> = (0..1_000).map(set_input).collect();
    let mut i = 0u64;
    let mut g = c.benchmark_group("node");
    g.throughput(Throughput::Elements(1));
    g.bench_function("execute_set", |b| {
        b.iter(|| {
            i += 1;
            let out = node
                .execute(T0 + i, CTX, "set", &inputs[(i % 1_000) as usize])
                .expect("set succeeds");
            // The driver's part: take the persist batch and the publish.
            while node.poll_output().is_some() {}
            black_box(out.delta)
        })
    });
    let get = StorageOp {
        field: "kv",
        path: vec![],
        op: Op::MapGet { key: b"key-1" },
    }
    .encode();
    g.bench_function("execute_get", |b| {
        b.iter(|| {
            i += 1;
            let out = node
                .execute(T0 + i, CTX, "get", &get)
                .expect("get succeeds");
            black_box(out.return_value)
        })
    });
    g.finish();
}

criterion_group!(benches, execute_set);
criterion_main!(benches);
