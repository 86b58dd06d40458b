//! The browser figure of the app runtime: `execute("set")` (and `execute("get")`) calls per
//! second through `NodeCore`, running the real example app `kv-store` with wasmi inside wasm32 in
//! headless Chromium, timed with `performance.now()`. Prints one JSON line.
//!
//! Run it with `scripts/bench-browser.sh` (builds the apps, then this target in release with the
//! `bench` feature and `TABMESH_APPS_DIR` pointing at them, and writes the line to
//! `target/bench/runtime-browser.json`). Never part of the test path: it asserts nothing about
//! time. The native figure is `cargo bench -p tabmesh-node` (same calls, same inputs).
#![cfg(js_host)]

use tabmesh_auth::Keypair;
use tabmesh_base::ContextId;
use tabmesh_node::{NodeConfig, NodeCore, Seed};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The example app, embedded at compile time (`$TABMESH_APPS_DIR`, set by the script).
const KV_STORE: &[u8] = include_bytes!(concat!(env!("TABMESH_APPS_DIR"), "/kv-store.wasm"));

const T0: u64 = 1_767_225_600_000;
/// Untimed calls before each measurement.
const WARM_UP_MS: f64 = 1_000.0;
/// Timed calls: at least this long.
const MEASURE_MS: f64 = 3_000.0;
/// Calls between two clock reads.
const BATCH: u64 = 50;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: ms, sub-ms resolution.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// A measurement: calls made, ms taken.
struct Run {
    calls: u64,
    ms: f64,
}

impl Run {
    fn json(&self) -> String {
        format!(
            r#"{{"calls":{},"ms":{:.1},"calls_per_sec":{:.0},"us_per_call":{:.2}}}"#,
            self.calls,
            self.ms,
            self.calls as f64 * 1_000.0 / self.ms,
            self.ms * 1_000.0 / self.calls as f64
        )
    }
}

/// Calls `method` with `inputs` in turn, as the native bench does (outputs drained like a
/// driver): `WARM_UP_MS` untimed, then at least `MEASURE_MS` timed.
fn measure(
    node: &mut NodeCore,
    ctx: ContextId,
    i: &mut u64,
    method: &str,
    inputs: &[Vec<u8>],
) -> Run {
    let mut batch = |node: &mut NodeCore| {
        for _ in 0..BATCH {
            *i += 1;
            let input = &inputs[(*i % inputs.len() as u64) as usize];
            let out = node.execute(T0 + *i, ctx, method, input);
            assert!(out.is_ok(), "{method}: {out:?}");
            while node.poll_output().is_some() {}
        }
    };
    let start = performance_now();
    while performance_now() - start < WARM_UP_MS {
        batch(node);
    }
    let start = performance_now();
    let mut calls = 0;
    loop {
        batch(node);
        calls += BATCH;
        let ms = performance_now() - start;
        if ms >= MEASURE_MS {
            return Run { calls, ms };
        }
    }
}

#[wasm_bindgen_test]
fn execute_calls_per_second_on_kv_store() {
    let mut node = NodeCore::new(
        Keypair::from_secret([1; 32]),
        NodeConfig::default(),
        Seed::from_u64(1),
    );
    let (ctx, _) = node
        .create_context(T0, Some(KV_STORE), b"")
        .expect("context created");
    while node.poll_output().is_some() {}
    let sets: Vec<Vec<u8>> = (0..1_000u64)
        .map(|i| format!(r#"{{"key":"key-{}","value":"value-{i}"}}"#, i % 1_000).into_bytes())
        .collect();
    let gets = vec![br#"{"key":"key-1"}"#.to_vec()];
    let mut i = 0;
    let set = measure(&mut node, ctx, &mut i, "set", &sets);
    let get = measure(&mut node, ctx, &mut i, "get", &gets);
    console_log!(
        r#"{{"bench":"runtime-browser","app":"kv-store.wasm","path":"NodeCore::execute","clock":"performance.now","target":"wasm32-unknown-unknown","profile":"release","execute_set":{},"execute_get":{}}}"#,
        set.json(),
        get.json()
    );
}
