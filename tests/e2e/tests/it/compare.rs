//! The side-by-side benchmarks (figures, not assertions): the same workloads through tabmesh and
//! through Yjs, Automerge and Loro from npm, in one Chromium page and in Node.js, on this
//! machine in this run, so the ratios stay fair on a noisy machine. `scripts/bench-compare.sh`
//! runs the full suite (`TABMESH_BENCH=full`, release builds) and writes
//! `target/bench/compare.json` and `compare.md`; the test run writes the quick mode
//! (`compare-quick.*`, small sizes, one run) to prove the suite still works: it checks only that
//! every workload ran, every result is complete and every run's own correctness check passed.
//!
//! The workloads and their implementations are in `tests/e2e/bench/` (README there); this file
//! builds the page, starts the relay and the server, runs the page and Node.js runners and the
//! blob transfer, and writes the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::bench::{blob_transfer, full, gzipped, write_report};
use crate::harness::{app, repo, share, target_dir, work_dir, Peer, Relay, Script, Server};

/// Where the automerge-paper trace is looked for when `TABMESH_TRACE` is not set (next to the
/// repository, as on the machines that run the suite). Without it the runners replay a
/// synthetic trace and say so.
const TRACE: &str = "../shared/data/automerge-paper.json.gz";

/// The trace file, if there is one.
fn trace() -> Option<PathBuf> {
    std::env::var_os("TABMESH_TRACE")
        .map(PathBuf::from)
        .or_else(|| Some(repo().join(TRACE)))
        .filter(|p| p.exists())
}

/// Bundles the page with vite into `out`, with the bench module and the trace beside it.
fn build_page(out: &Path, bench_wasm: &Path) -> anyhow::Result<()> {
    let status = Command::new(repo().join("node_modules/.bin/vite"))
        .args([
            "build",
            "--config",
            "tests/e2e/bench/vite.config.mjs",
            "--outDir",
        ])
        .arg(out)
        .current_dir(repo())
        .status()
        .context("running vite")?;
    anyhow::ensure!(status.success(), "vite build failed: {status}");
    let wasm_dir = out.join("bench-wasm");
    std::fs::create_dir_all(&wasm_dir)?;
    for file in ["tabmesh_bench.js", "tabmesh_bench_bg.wasm"] {
        std::fs::copy(bench_wasm.join(file), wasm_dir.join(file))?;
    }
    if let Some(trace) = trace() {
        std::fs::create_dir_all(out.join("data"))?;
        std::fs::copy(trace, out.join("data/trace.json.gz"))?;
    }
    Ok(())
}

/// The version of an npm package in node_modules.
fn npm_version(name: &str) -> Value {
    std::fs::read(repo().join("node_modules").join(name).join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|p| p["version"].clone())
        .unwrap_or(Value::Null)
}

/// A command's trimmed stdout, if it ran.
fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(repo())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first line of `/proc/<file>` starting with `key`, after its colon.
fn proc_line(file: &str, key: &str) -> Value {
    std::fs::read_to_string(format!("/proc/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| json!(v.trim()))
        })
        .unwrap_or(Value::Null)
}

/// tabmesh's version: the crate's plus the commit (and `-dirty` with uncommitted changes).
fn tabmesh_version() -> String {
    let rev = output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty = output("git", &["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    format!(
        "{}+{rev}{}",
        env!("CARGO_PKG_VERSION"),
        if dirty { "-dirty" } else { "" }
    )
}

/// Every `ok` anywhere in `v` that is not `true`, by path.
fn failures(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if (k == "ok" && x != &json!(true)) || (k == "error" && !x.is_null()) {
                    out.push(format!("{path}.{k} = {x}"));
                }
                failures(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(xs) => {
            for (i, x) in xs.iter().enumerate() {
                failures(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// W6: one blob from page to page through the relay (both pages on IndexedDB), per size.
fn blob_workload(dir: &Path, relay: &Relay, full: bool) -> anyhow::Result<Value> {
    let sizes: &[u64] = if full {
        &[10_000_000, 100_000_000]
    } else {
        &[2_000_000]
    };
    let server = Server::start()?;
    let mut a = Peer::spawn_page_on(dir, "blob-a", relay.ws(), &server, Some("cmp-blob-a"))?;
    let mut b = Peer::spawn_page_on(dir, "blob-b", relay.ws(), &server, Some("cmp-blob-b"))?;
    for p in [&a, &b] {
        p.wait_event(|e| e["ev"] == "reserved")?;
    }
    let ctx = share(&mut a, &mut [&mut b], Some(&app("kv-store")?))?;
    let mut results = serde_json::Map::new();
    for (seed, &len) in (1..).zip(sizes) {
        let t = blob_transfer(&mut a, &mut b, &ctx, seed, len)?;
        let metrics = [
            "fetch_mb_s",
            "fetch_ms",
            "add_mb_s",
            "fetcher_memory_growth_bytes",
        ];
        results.insert(
            format!("tabmesh-pkg {} MB", len / 1_000_000),
            metrics
                .iter()
                .map(|m| (m.to_string(), single(&t[*m])))
                .collect(),
        );
    }
    Ok(json!({
        "env": "chromium (two pages, one browser each, IndexedDB) through the relay",
        "params": {"runs": 1},
        "results": results,
        "note": "none of the libraries transfers blobs; the native-to-native figure of the same \
                 protocol is in target/bench/blobs.json (scripts/bench-net.sh)",
    }))
}

/// The rows of W7's sizes.
const TABMESH_PKG_WASM: &str = "tabmesh-pkg (the npm package's wasm: node, libp2p, wasmi)";
const TABMESH_BENCH_WASM: &str = "tabmesh-bench (CRDTs and two NodeCores, no wasm-opt)";
const YJS_JS: &str = "yjs";

/// One measurement in the shape of the runners' summaries.
fn single(v: &Value) -> Value {
    json!({"runs": 1, "median": v, "min": v, "max": v, "spread": 0})
}

/// W7's sizes: each implementation's wasm (Yjs: its JavaScript, lib0 not counted), gzip -9.
fn sizes(bench_wasm: &Path) -> anyhow::Result<Value> {
    let nm = repo().join("node_modules");
    let files = [
        (
            TABMESH_PKG_WASM,
            repo().join("pkg/wasm/tabmesh_web_bg.wasm"),
        ),
        (TABMESH_BENCH_WASM, bench_wasm.join("tabmesh_bench_bg.wasm")),
        (
            "automerge",
            nm.join("@automerge/automerge/dist/automerge.wasm"),
        ),
        ("loro", nm.join("loro-crdt/web/loro_wasm_bg.wasm")),
        (YJS_JS, nm.join("yjs/dist/yjs.mjs")),
    ];
    let mut results = serde_json::Map::new();
    for (name, path) in files {
        let bytes = std::fs::metadata(&path)
            .with_context(|| path.display().to_string())?
            .len();
        results.insert(
            name.into(),
            json!({"bytes": single(&json!(bytes)), "gzip_bytes": single(&json!(gzipped(&path)?))}),
        );
    }
    let gzip = |name: &str| results[name]["gzip_bytes"]["median"].as_f64();
    let ratios: serde_json::Map<String, Value> = [TABMESH_PKG_WASM, TABMESH_BENCH_WASM]
        .iter()
        .map(|ours| {
            let ratio = |lib: &str| gzip(ours).zip(gzip(lib)).map(|(a, b)| a / b);
            (
                ours.to_string(),
                json!({"gzip_bytes": {
                    "yjs": ratio(YJS_JS), "automerge": ratio("automerge"), "loro": ratio("loro"),
                }}),
            )
        })
        .collect();
    Ok(json!({
        "env": "files",
        "params": {"compression": "gzip -9"},
        "results": results,
        "ratios": ratios,
    }))
}

#[test]
fn compare_with_yjs_automerge_loro() -> anyhow::Result<()> {
    let full = full();
    let mode = if full { "full" } else { "quick" };
    let within = Duration::from_secs(if full { 3_600 } else { 300 });
    let target = target_dir();
    let bench_wasm = target.join("bench-wasm");
    anyhow::ensure!(
        bench_wasm.join("tabmesh_bench_bg.wasm").exists(),
        "{} is not built: run scripts/build-bench-wasm.sh",
        bench_wasm.display()
    );
    let dir = work_dir("compare");
    let page_dir = target.join("bench/page");
    build_page(&page_dir, &bench_wasm)?;

    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let server = Server::start_at(&page_dir)?;
    let url = format!("{}/index.html?relay={}", server.url, relay.ws());
    let out_dir = target.join("bench");
    let out_str = out_dir.to_string_lossy().into_owned();
    // CPU profiles of these workloads, if asked (`TABMESH_BENCH_PROFILE=W1,W7`).
    let profile = std::env::var("TABMESH_BENCH_PROFILE").unwrap_or_default();
    let (_page, page) = Script::run_within(
        &dir,
        "compare-page",
        "bench/run-page.mjs",
        &[&url, mode, "--out", &out_str, "--profile", &profile],
        within,
    )?;

    let wasm_js = bench_wasm.join("tabmesh_bench.js");
    let wasm = bench_wasm.join("tabmesh_bench_bg.wasm");
    let apps = tabmesh_testkit::apps_dir();
    let trace = trace();
    let mut args = vec![
        mode.to_string(),
        "--bench-js".into(),
        wasm_js.to_string_lossy().into_owned(),
        "--bench-wasm".into(),
        wasm.to_string_lossy().into_owned(),
        "--apps".into(),
        apps.to_string_lossy().into_owned(),
    ];
    if let Some(t) = &trace {
        args.extend(["--trace".into(), t.to_string_lossy().into_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_node, node) = Script::run_within(&dir, "compare-node", "bench/node.mjs", &args, within)?;

    let (pages, secs) = if full { ("8", "30") } else { ("2", "3") };
    let (_live, live) = Script::run_within(
        &dir,
        "compare-live",
        "bench/live.mjs",
        &[&url, pages, "6", secs],
        within,
    )?;

    let blobs = blob_workload(&dir, &relay, full)?;

    // One table per workload and environment.
    let mut workloads = serde_json::Map::new();
    for (env, out) in [("chromium", &page), ("node", &node)] {
        for (name, w) in out["workloads"].as_object().into_iter().flatten() {
            workloads.insert(format!("{name}-{env}"), w.clone());
        }
    }
    workloads.insert("W4-chromium".into(), live.clone());
    workloads.insert("W6-chromium".into(), blobs);
    workloads.insert("W7-sizes".into(), sizes(&bench_wasm)?);

    let report = json!({
        "bench": "compare",
        "mode": mode,
        "date": output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "cpu": proc_line("cpuinfo", "model name"),
            "mem": proc_line("meminfo", "MemTotal"),
            "chromium": page["chromium"],
            "node": node["node"],
        },
        "versions": {
            "tabmesh": tabmesh_version(),
            "tabmesh_bench_wasm_profile": std::fs::read_to_string(bench_wasm.join("PROFILE"))
                .map(|s| s.trim().to_string()).ok(),
            "yjs": npm_version("yjs"),
            "y-websocket": npm_version("y-websocket"),
            "@y/websocket-server": npm_version("@y/websocket-server"),
            "@automerge/automerge": npm_version("@automerge/automerge"),
            "loro-crdt": npm_version("loro-crdt"),
        },
        "trace": {
            "source": if trace.is_some() { "automerge-paper" } else { "synthetic" },
            "file": trace.map(|t| t.display().to_string()),
            "license": "CC BY 4.0: Martin Kleppmann's automerge-perf editing trace, \
                        as published in josephg/editing-traces",
        },
        "workloads": workloads,
        "notes": [
            "Every metric is a cost; a ratio is tabmesh's median over the library's: above 1, \
             tabmesh costs more.",
            "tabmesh-state is the CRDT alone (what the libraries are); tabmesh-node adds what a \
             node does per write (wasmi app call, Ed25519 signature, XChaCha20-Poly1305 \
             sealing, DAG, Merkle index); tabmesh-pkg is the npm package's ctx.execute in the \
             page (driver, JS boundary, store).",
            "Catch-up bytes are sealed sync frames (libp2p framing excluded); library bytes are \
             their raw sync messages.",
        ],
    });
    let name = if full { "compare" } else { "compare-quick" };
    write_report(&format!("{name}.json"), &report)?;
    let md = Command::new("node")
        .arg(repo().join("tests/e2e/bench/report.mjs"))
        .arg(out_dir.join(format!("{name}.json")))
        .output()
        .context("running report.mjs")?;
    anyhow::ensure!(
        md.status.success(),
        "report.mjs failed: {}",
        String::from_utf8_lossy(&md.stderr)
    );
    std::fs::write(out_dir.join(format!("{name}.md")), &md.stdout)?;

    // Complete and correct (never a timing assertion).
    let mut failed = Vec::new();
    for (name, out) in [("page", &page), ("node", &node), ("live", &live)] {
        failures(out, name, &mut failed);
    }
    failures(&report, "", &mut failed);
    assert!(failed.is_empty(), "{failed:#?}");
    for name in [
        "W1-chromium",
        "W1-node",
        "W2-chromium",
        "W2-node",
        "W3-chromium",
        "W3-node",
        "W4-chromium",
        "W5-chromium",
        "W6-chromium",
        "W7-chromium",
        "W7-node",
        "W7-sizes",
        "memory-chromium",
    ] {
        let results = &report["workloads"][name]["results"];
        assert!(
            results.as_object().is_some_and(|r| !r.is_empty()),
            "{name} has no results: {}",
            report["workloads"][name]
        );
    }
    Ok(())
}
