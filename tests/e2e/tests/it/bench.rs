//! The network figures (not assertions): one-way gossip latency through the relay hub (native →
//! native, page → page), a sync round (one request and response) over a relay circuit, and
//! announced-delta fetch latency and throughput over a circuit. Gossip never travels over
//! circuits (by design), so the circuit figures are request figures.
//! Written as JSON to `target/bench/net.json` by `scripts/bench-net.sh` (release, many samples,
//! `TABMESH_BENCH=full`); the test run writes a quick version (`net-quick.json`, few samples) to
//! prove the bench still works.
//!
//! Latency is measured from the writer's acknowledgement of the write (its delta is published
//! before the write resolves) to the receiver's `gossiped` / `fetched` event, on one machine's
//! wall clock.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{app, share, work_dir, Peer, Relay, Server};

pub(crate) fn full() -> bool {
    std::env::var("TABMESH_BENCH").is_ok_and(|v| v == "full")
}

pub(crate) fn stats(mut xs: Vec<f64>) -> Value {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    json!({
        "n": xs.len(), "min": xs[0], "p50": at(0.5), "p95": at(0.95), "p99": at(0.99),
        "max": xs[xs.len() - 1],
    })
}

fn t(v: &Value) -> f64 {
    v["t_ms"].as_f64().unwrap_or(f64::NAN)
}

/// `n` writes on `a`, `gap` apart: the one-way gossip latency of each to `b`, in ms.
fn gossip_latency(a: &mut Peer, b: &Peer, ctx: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    for i in 0..n {
        let args = json!({"key": format!("k{i}"), "value": "v"}).to_string();
        let reply = a.cmd_raw(json!({"cmd": "exec", "ctx": ctx, "method": "set", "args": args}))?;
        let delta = reply["ok"]["delta"].clone();
        let got = b.wait_event(|e| e["ev"] == "gossiped" && e["delta"] == delta)?;
        out.push(t(&got) - t(&reply));
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(out)
}

/// `n` sync rounds started on `a` with its only peer, in step: each is one summary request and
/// response over their circuit, in ms (from the `sync` reply to the session's end).
fn sync_rounds(a: &mut Peer, ctx: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let ended = |e: &Value| e["ev"] == "sync" && e["outcome"] == "in_sync";
    let mut out = Vec::new();
    for _ in 0..n {
        let before = a.count(ended);
        let reply = a.cmd_raw(json!({"cmd": "sync", "ctx": ctx}))?;
        crate::harness::wait_until(|| a.count(ended) > before)?;
        let got = a.events().into_iter().filter(|e| ended(e)).nth(before);
        out.push(got.map(|e| t(&e) - t(&reply)).unwrap_or(f64::NAN));
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(out)
}

#[test]
fn network_figures() -> anyhow::Result<()> {
    let full = full();
    let (n_gossip, n_fetch) = if full { (200, 10) } else { (5, 1) };
    let dir = work_dir("bench");
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let kv = app("kv-store")?;

    // Native → native through the hub.
    let mut a = Peer::spawn(&dir, "a", relay.ws(), &dir.join("a"))?;
    let mut b = Peer::spawn(&dir, "b", relay.ws(), &dir.join("b"))?;
    let ctx = share(&mut a, &mut [&mut b], Some(&kv))?;
    let native = gossip_latency(&mut a, &b, &ctx, n_gossip)?;
    let native_sync = sync_rounds(&mut a, &ctx, n_gossip.min(50))?;

    // Announce + fetch over a circuit: a plain context, `fill` writes of 2 MiB.
    let plain = share(&mut a, &mut [&mut b], None)?;
    let mut fetch_ms = Vec::new();
    let mut mib_s = Vec::new();
    for _ in 0..n_fetch {
        let reply = a.cmd_raw(json!({"cmd": "fill", "ctx": plain, "kib": 2048}))?;
        let delta = reply["ok"]["delta"].clone();
        let got = b.wait_event(|e| e["ev"] == "fetched" && e["delta"] == delta)?;
        let ms = t(&got) - t(&reply);
        fetch_ms.push(ms);
        mib_s.push(got["len"].as_f64().unwrap_or(0.0) / (1 << 20) as f64 / (ms / 1000.0));
    }

    // Page → page (headless Chromium) through the hub.
    let server = Server::start()?;
    let mut p = Peer::spawn_page(&dir, "page-1", relay.ws(), &server)?;
    let mut q = Peer::spawn_page(&dir, "page-2", relay.ws(), &server)?;
    let ctx = share(&mut p, &mut [&mut q], Some(&kv))?;
    let pages = gossip_latency(&mut p, &q, &ctx, n_gossip.min(100))?;
    let page_sync = sync_rounds(&mut p, &ctx, n_gossip.min(50))?;

    let report = json!({
        "bench": "net",
        "mode": if full { "full" } else { "quick" },
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
        },
        "versions": {"libp2p": "0.57.1", "chromium": "Debian /usr/bin/chromium"},
        "profile": if cfg!(debug_assertions) { "debug (crypto optimised)" } else { "release" },
        "gossip_one_way_ms": {
            "native_to_native_via_hub": stats(native),
            "page_to_page_via_hub": stats(pages),
        },
        "sync_round_over_circuit_ms": {
            "native_to_native": stats(native_sync),
            "page_to_page": stats(page_sync),
        },
        "announced_2mib_delta_over_circuit": {
            "fetch_ms": stats(fetch_ms),
            "throughput_mib_s": stats(mib_s),
        },
    });
    write_report(if full { "net.json" } else { "net-quick.json" }, &report)?;
    // The report is complete (not a performance assertion).
    for key in ["native_to_native_via_hub", "page_to_page_via_hub"] {
        assert!(report["gossip_one_way_ms"][key]["p50"].is_number(), "{key}");
    }
    Ok(())
}

/// Writes a report to `target/bench/<name>` (and stderr).
pub(crate) fn write_report(name: &str, report: &Value) -> anyhow::Result<()> {
    let out = crate::harness::target_dir().join("bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join(name), serde_json::to_string_pretty(report)?)?;
    eprintln!("{report}");
    Ok(())
}

/// The gzip -9 size of a file, in bytes.
pub(crate) fn gzipped(path: &Path) -> anyhow::Result<usize> {
    let out = std::process::Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .output()?;
    anyhow::ensure!(out.status.success(), "gzip failed");
    Ok(out.stdout.len())
}

/// The browser node's figures (not assertions; the quick mode proves they still run): a page on
/// IndexedDB that missed `n` writes catches up (time, store commits, long tasks), then starts
/// again with them stored (time to ready); `execute("set")` calls per second in the page; timers
/// in the page (chained zero timeouts vs MessageChannel hops: what the driver yields with); a
/// frozen page catching up once resumed; the package's wasm size. Writes `target/bench/browser-node.json` (`-quick` in the tests).
#[test]
fn browser_node_figures() -> anyhow::Result<()> {
    let full = full();
    let (missed, calls, frozen_n) = if full {
        (10_000, 2_000, 500)
    } else {
        (300, 50, 20)
    };
    let dir = work_dir("bench_browser_node");
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let server = Server::start()?;
    let kv = app("kv-store")?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    let mut page = Peer::spawn_page_on(&dir, "page", relay.ws(), &server, Some("bench"))?;
    let ctx = share(&mut native, &mut [&mut page], Some(&kv))?;

    // The page goes away; `missed` writes land on the native peer; the page comes back.
    page.cmd(json!({"cmd": "close"}))?;
    native.cmd(json!({"cmd": "burst", "ctx": ctx, "n": missed, "prefix": "missed"}))?;
    let opened = page.cmd(json!({"cmd": "open"}))?;
    let t0 = std::time::Instant::now();
    page.cmd(json!({"cmd": "longtasks"}))?;
    let root = native.cmd(json!({"cmd": "state", "ctx": ctx}))?["root"].clone();
    page.wait_root(&ctx, &root, Duration::from_secs(600))?;
    let catch_up_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let long_tasks = page.cmd(json!({"cmd": "longtasks"}))?;
    let commits = page.cmd(json!({"cmd": "stats"}))?["commits"].clone();
    let protocols: Vec<Value> = page
        .events()
        .iter()
        .filter(|e| e["ev"] == "sync" && e["ctx"] == json!(ctx))
        .map(|e| json!([e["protocol"], e["outcome"]]))
        .collect();
    let entries = page.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "count"}))?["ret"].clone();

    // Started again with everything stored.
    page.cmd(json!({"cmd": "close"}))?;
    let reopened = page.cmd(json!({"cmd": "open"}))?;
    // The native peer is found again before the gossip figures.
    while page.cmd(json!({"cmd": "state", "ctx": ctx}))?["peers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let exec = page.cmd(json!({"cmd": "bench_exec", "ctx": ctx, "n": calls}))?;

    // A frozen page (what Chrome does to a background tab it freezes; headless Chromium shows
    // every page as visible, so timer throttling itself is not reproduced here): writes land
    // while it runs no task; then it resumes.
    let timers = page.cmd(json!({"cmd": "probe"}))?;
    let root_before = page.cmd(json!({"cmd": "state", "ctx": ctx}))?["root"].clone();
    page.cmd(json!({"cmd": "freeze"}))?;
    native.cmd(json!({"cmd": "burst", "ctx": ctx, "n": frozen_n, "prefix": "frozen"}))?;
    std::thread::sleep(Duration::from_secs(2));
    let t0 = std::time::Instant::now();
    page.cmd(json!({"cmd": "resume"}))?;
    let root = native.cmd(json!({"cmd": "state", "ctx": ctx}))?["root"].clone();
    anyhow::ensure!(root_before != root);
    page.wait_root(&ctx, &root, Duration::from_secs(300))?;
    let resumed_ms = t0.elapsed().as_secs_f64() * 1000.0;

    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pkg/wasm/tabmesh_web_bg.wasm");
    let report = json!({
        "bench": "browser-node",
        "mode": if full { "full" } else { "quick" },
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "missed_writes": missed,
        "catch_up": {
            "start_ms": opened["start_ms"],
            "to_equal_roots_ms": catch_up_ms,
            "store_commits_since_open": commits,
            "long_tasks": long_tasks,
            "sessions": protocols,
            "entries_after": entries,
        },
        "ready_with_stored_ms": reopened["start_ms"],
        "execute_set_in_chromium": exec,
        "timers_in_page": timers,
        "frozen_page": {
            "writes_while_frozen": frozen_n,
            "resume_to_equal_roots_ms": resumed_ms,
        },
        "wasm_bytes": std::fs::metadata(&wasm)?.len(),
        "wasm_gzip_bytes": gzipped(&wasm)?,
    });
    write_report(
        if full {
            "browser-node.json"
        } else {
            "browser-node-quick.json"
        },
        &report,
    )?;
    // Complete, and the catch-up is real (not a performance assertion).
    assert_eq!(entries, json!(missed.to_string()));
    assert!(report["execute_set_in_chromium"]["per_s"].is_number());
    Ok(())
}

/// One blob of `len` bytes added on page `a` (in 1 MiB pieces from a generated stream) and
/// fetched whole by page `b` through the relay: add and fetch MB/s, and the fetcher's wasm memory
/// growth.
pub(crate) fn blob_transfer(
    a: &mut Peer,
    b: &mut Peer,
    ctx: &str,
    seed: u64,
    len: u64,
) -> anyhow::Result<Value> {
    let t0 = std::time::Instant::now();
    let added = a.cmd(json!({"cmd": "blob_add", "ctx": ctx, "seed": seed, "len": len}))?;
    let add_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let got = b.cmd(json!({"cmd": "blob_get", "blob": added["blob"], "ctx": ctx}))?;
    anyhow::ensure!(got["read"] == json!(len), "{got}");
    let fetch_ms = got["fetched_ms"].as_f64().unwrap_or(f64::NAN);
    let mb = len as f64 / 1e6;
    Ok(json!({
        "bytes": len,
        "add_ms": add_ms, "add_mb_s": mb / (add_ms / 1000.0),
        "fetch_ms": fetch_ms, "fetch_mb_s": mb / (fetch_ms / 1000.0),
        "fetcher_memory_growth_bytes":
            got["memory_after"].as_u64().unwrap_or(0).saturating_sub(got["memory_before"].as_u64().unwrap_or(0)),
    }))
}

/// The blob figures (not assertions): tab-to-tab transfer through the relay between two pages on
/// IndexedDB (10 MB and 100 MB; quick mode 2 MB and 10 MB), the same between two pages in memory
/// (the store's share of the time), and hashing in the page (an add into a memory store: chunking,
/// hashing and copying, no IO). Native hashing is criterion's (`cargo bench -p tabmesh-blobs`).
/// Writes `target/bench/blobs.json` (`-quick` in the tests).
#[test]
fn blob_figures() -> anyhow::Result<()> {
    let full = full();
    let sizes: &[u64] = if full {
        &[10_000_000, 100_000_000]
    } else {
        &[2_000_000, 10_000_000]
    };
    let dir = work_dir("bench_blobs");
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let server = Server::start()?;
    let kv = app("kv-store")?;
    let mut report = json!({
        "bench": "blobs",
        "mode": if full { "full" } else { "quick" },
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
        },
        "chunk_bytes": 256 * 1024,
        "in_flight_chunks": 3,
    });
    for (kind, db) in [("indexeddb", true), ("memory", false)] {
        let (name_a, name_b) = (format!("{kind}-a"), format!("{kind}-b"));
        let mut a = Peer::spawn_page_on(
            &dir,
            &name_a,
            relay.ws(),
            &server,
            db.then_some("bench-blob-a"),
        )?;
        let mut b = Peer::spawn_page_on(
            &dir,
            &name_b,
            relay.ws(),
            &server,
            db.then_some("bench-blob-b"),
        )?;
        for p in [&a, &b] {
            p.wait_event(|e| e["ev"] == "reserved")?;
        }
        let ctx = share(&mut a, &mut [&mut b], Some(&kv))?;
        let mut runs = Vec::new();
        for (i, len) in sizes.iter().enumerate() {
            runs.push(blob_transfer(&mut a, &mut b, &ctx, 100 + i as u64, *len)?);
        }
        report["tab_to_tab"][kind] = json!(runs);
    }
    // Native to native through the same relay (no browser, no wasm).
    let mut a = Peer::spawn(&dir, "native-a", relay.ws(), &dir.join("native-a"))?;
    let mut b = Peer::spawn(&dir, "native-b", relay.ws(), &dir.join("native-b"))?;
    let ctx = share(&mut a, &mut [&mut b], Some(&kv))?;
    let mut runs = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let added =
            a.cmd(json!({"cmd": "blob_add", "ctx": ctx, "seed": 200 + i as u64, "len": len}))?;
        let add_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let t0 = std::time::Instant::now();
        b.cmd(json!({"cmd": "blob_get", "blob": added["blob"], "ctx": ctx}))?;
        let fetch_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let mb = *len as f64 / 1e6;
        runs.push(json!({
            "bytes": len, "add_ms": add_ms, "add_mb_s": mb / (add_ms / 1000.0),
            "fetch_and_read_ms": fetch_ms, "fetch_and_read_mb_s": mb / (fetch_ms / 1000.0),
        }));
    }
    report["native_to_native_files"] = json!(runs);
    write_report(
        if full {
            "blobs.json"
        } else {
            "blobs-quick.json"
        },
        &report,
    )?;
    assert!(report["tab_to_tab"]["indexeddb"][1]["fetch_mb_s"].is_number());
    Ok(())
}
