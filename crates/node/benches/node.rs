//! Benchmarks of `NodeCore` app calls: `execute("set")` calls per second through the whole node
//! (runtime, state transaction, delta, persist batch and publish).
//!
//! - `node/execute_set`, `node/execute_get`: the real example app `kv-store`
//!   (`target/apps/kv-store.wasm`, built by `scripts/build-apps.sh`; a missing module fails the
//!   bench naming the script), JSON arguments as a client sends them.
//! - `node/execute_set_wat`: the same writes through a minimal WAT app that passes a ready-made
//!   storage operation straight to the host: the node's own cost, without the SDK's JSON and
//!   allocations; the gap to `execute_set` is the guest's.
//!
//! `cargo bench -p tabmesh-node -- --warm-up-time 1 --measurement-time 3`. The browser figure
//! comes from `scripts/bench-browser.sh`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tabmesh_auth::Keypair;
use tabmesh_base::ContextId;
use tabmesh_node::{NodeConfig, NodeCore, Seed};
use tabmesh_runtime::abi::{Op, StorageOp};

const T0: u64 = 1_767_225_600_000;

/// A minimal kv-store in WAT: `set` runs the encoded map insert it is given, `get` the encoded map read;
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

/// The JSON arguments of `kv-store`'s `set`: one of 1 000 keys, a value.
fn set_json(i: u64) -> Vec<u8> {
    format!(r#"{{"key":"key-{}","value":"value-{i}"}}"#, i % 1_000).into_bytes()
}

/// The WAT app's input: the encoded map insert.
fn set_op(i: u64) -> Vec<u8> {
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

/// A node with one context running `module` (founded by the node: every call is a member's
/// write, signed and encrypted), its outputs drained.
fn node_with(module: &[u8]) -> (NodeCore, ContextId) {
    let mut node = NodeCore::new(
        Keypair::from_secret([1; 32]),
        NodeConfig::default(),
        Seed::from_u64(1),
    );
    let (ctx, _) = node
        .create_context(T0, Some(module), b"")
        .expect("context created");
    while node.poll_output().is_some() {}
    (node, ctx)
}

/// Benches `execute(method)` over `inputs` in turn; `drain` takes the outputs (persist batch and
/// publish) as a driver would.
fn bench_calls(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    (node, ctx): &mut (NodeCore, ContextId),
    method: &str,
    inputs: &[Vec<u8>],
) {
    let mut i = 0u64;
    g.bench_function(name, |b| {
        b.iter(|| {
            i += 1;
            let input = &inputs[(i % inputs.len() as u64) as usize];
            let out = node
                .execute(T0 + i, *ctx, method, input)
                .expect("call succeeds");
            while node.poll_output().is_some() {}
            black_box(out.return_value)
        })
    });
}

fn execute_set(c: &mut Criterion) {
    let kv_store = tabmesh_testkit::example_app("kv-store").unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("node");
    g.throughput(Throughput::Elements(1));

    let mut node = node_with(&kv_store);
    let sets: Vec<Vec<u8>> = (0..1_000).map(set_json).collect();
    bench_calls(&mut g, "execute_set", &mut node, "set", &sets);
    let get = vec![br#"{"key":"key-1"}"#.to_vec()];
    bench_calls(&mut g, "execute_get", &mut node, "get", &get);

    let mut node = node_with(&kv_app());
    let ops: Vec<Vec<u8>> = (0..1_000).map(set_op).collect();
    bench_calls(&mut g, "execute_set_wat", &mut node, "set", &ops);
    g.finish();
}

criterion_group!(benches, execute_set);
criterion_main!(benches);
