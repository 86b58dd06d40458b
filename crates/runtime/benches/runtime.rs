//! Benchmarks of the runtime: calls per second of a small storage method, and module loading.
//!
//! `cargo bench -p tabmesh-runtime -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::fmt::Write;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tabmesh_base::{ContextId, MemberId};
use tabmesh_runtime::abi::{Op, OpError, StorageOp, Value};
use tabmesh_runtime::{Host, Runtime};

/// Registers in a map, with a transaction the bench commits after every call.
#[derive(Default)]
struct BenchHost {
    committed: BTreeMap<String, Vec<u8>>,
    pending: Vec<(String, Vec<u8>)>,
}

impl Host for BenchHost {
    fn context_id(&self) -> ContextId {
        ContextId([1; 32])
    }
    fn executor_id(&self) -> MemberId {
        MemberId([2; 32])
    }
    fn now_ms(&self) -> u64 {
        0
    }
    fn random_bytes(&mut self, out: &mut [u8]) {
        out.fill(0);
    }
    fn storage(&mut self, op: &StorageOp<'_>) -> Result<Value, OpError> {
        match op.op {
            Op::RegisterSet { value } => {
                self.pending.push((op.field.to_owned(), value.to_vec()));
                Ok(Value::Unit)
            }
            _ => Err(OpError::unsupported("this operation")),
        }
    }
}

/// `set`: reads its input and stores it in the register `title`, returning the encoded result.
fn set_app() -> Vec<u8> {
    let op = StorageOp {
        field: "title",
        path: vec![],
        op: Op::RegisterSet { value: b"" },
    }
    .encode();
    let mut escaped = String::new();
    for b in &op {
        let _ = write!(escaped, "\\{b:02x}");
    }
    let len = op.len();
    wat::parse_str(format!(
        r#"(module
          (import "tabmesh" "input" (func $input (result i32)))
          (import "tabmesh" "read_result" (func $read_result (param i32 i32)))
          (import "tabmesh" "storage" (func $storage (param i32 i32) (result i32)))
          (import "tabmesh" "return_value" (func $return_value (param i32 i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "{escaped}")
          (func (export "set") (local $n i32) (local $r i32)
            (local.set $n (call $input))
            (i32.store (i32.const {patch}) (local.get $n))
            (call $read_result (i32.const {len}) (local.get $n))
            (local.set $r (call $storage (i32.const 0) (i32.add (i32.const {len}) (local.get $n))))
            (call $read_result (i32.const 32768) (local.get $r))
            (call $return_value (i32.const 32768) (local.get $r))))"#,
        patch = len - 4,
    ))
    .expect("valid WAT")
}

fn calls(c: &mut Criterion) {
    let wasm = set_app();
    let mut runtime = Runtime::default();
    let app = runtime.load(&wasm).expect("loads");
    let mut host = BenchHost::default();
    let mut group = c.benchmark_group("call");
    group.throughput(Throughput::Elements(1));
    group.bench_function("set_by_hash", |b| {
        b.iter(|| {
            let outcome = runtime
                .execute(app, "set", black_box(b"hello world"), &mut host)
                .expect("call succeeds");
            for (k, v) in host.pending.drain(..) {
                host.committed.insert(k, v);
            }
            black_box(outcome.fuel_used)
        });
    });
    group.finish();

    let mut group = c.benchmark_group("load");
    group.throughput(Throughput::Bytes(wasm.len() as u64));
    group.bench_function("validate_and_compile", |b| {
        b.iter(|| {
            let mut fresh = Runtime::default();
            black_box(fresh.load(black_box(&wasm)).expect("loads"))
        });
    });
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
