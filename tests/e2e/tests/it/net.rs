//! Native peers as separate OS processes, connected only through a real relay process, on
//! 127.0.0.1: convergence, crash and restart, relay restart, relay limits, large deltas.

use crate::harness::{
    app, converge, converge_roots, set, share, terminate, wait_exit, work_dir, Peer, Relay,
};
use serde_json::{json, Value};

type Result = anyhow::Result<()>;

/// A kv-store context on `a` that `others` join.
fn shared_context(a: &mut Peer, others: &mut [&mut Peer]) -> anyhow::Result<String> {
    share(a, others, Some(&app("kv-store")?))
}

fn gossiped_via(p: &Peer, delta: &str) -> Vec<String> {
    p.events()
        .iter()
        .filter(|e| e["ev"] == "gossiped" && e["delta"] == json!(delta))
        .map(|e| e["via"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn expect_entries(entries: &Value, pairs: &[(&str, &str)]) {
    let want: Vec<Value> = pairs.iter().map(|(k, v)| json!([k, v])).collect();
    assert_eq!(entries, &json!(want), "converged entries");
}

#[test]
fn three_processes_converge_through_the_relay_and_gossip_goes_through_its_hub() -> Result {
    let dir = work_dir("three_processes_converge");
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut a = Peer::spawn(&dir, "a", relay.ws(), &dir.join("a"))?;
    let mut b = Peer::spawn(&dir, "b", relay.ws(), &dir.join("b"))?;
    let mut c = Peer::spawn(&dir, "c", relay.ws(), &dir.join("c"))?;
    let ctx = shared_context(&mut a, &mut [&mut b, &mut c])?;

    let da = set(&mut a, &ctx, "a", "1")?;
    let db = set(&mut b, &ctx, "b", "2")?;
    let dc = set(&mut c, &ctx, "c", "3")?;
    let entries = converge(&mut [&mut a, &mut b, &mut c], &ctx)?;
    expect_entries(&entries, &[("a", "1"), ("b", "2"), ("c", "3")]);

    // Each write reached the other two by gossip, forwarded by the relay (the hub), never by
    // the author over a circuit.
    for (delta, receivers) in [(&da, [&b, &c]), (&db, [&a, &c]), (&dc, [&a, &b])] {
        for r in receivers {
            let via = gossiped_via(r, delta);
            assert!(!via.is_empty(), "{} got {delta} by gossip", r.name);
            assert!(via.iter().all(|v| v == relay.peer_id()), "{via:?}");
        }
    }
    Ok(())
}

#[test]
fn a_killed_peer_restarts_from_its_file_store_and_catches_up() -> Result {
    let dir = work_dir("killed_peer_catches_up");
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut a = Peer::spawn(&dir, "a", relay.ws(), &dir.join("a"))?;
    let mut b = Peer::spawn(&dir, "b", relay.ws(), &dir.join("b"))?;
    let mut c = Peer::spawn(&dir, "c", relay.ws(), &dir.join("c"))?;
    let ctx = shared_context(&mut a, &mut [&mut b, &mut c])?;
    set(&mut c, &ctx, "c", "before")?;
    converge(&mut [&mut a, &mut b, &mut c], &ctx)?;

    // SIGKILL right after a write resolved: the write is durable.
    set(&mut c, &ctx, "c2", "acknowledged")?;
    c.kill9();
    set(&mut a, &ctx, "a", "missed-1")?;
    set(&mut b, &ctx, "b", "missed-2")?;
    converge(&mut [&mut a, &mut b], &ctx)?;

    let mut c = Peer::spawn(&dir, "c-restarted", relay.ws(), &dir.join("c"))?;
    let entries = converge(&mut [&mut a, &mut b, &mut c], &ctx)?;
    expect_entries(
        &entries,
        &[
            ("a", "missed-1"),
            ("b", "missed-2"),
            ("c", "before"),
            ("c2", "acknowledged"),
        ],
    );
    // The restarted peer caught up by sync (it was not there for the gossip).
    crate::harness::wait_until(|| c.count(|e| e["ev"] == "sync") > 0)?;
    Ok(())
}

#[test]
fn after_a_relay_restart_peers_re_reserve_and_the_next_write_arrives_by_gossip() -> Result {
    let dir = work_dir("relay_restart");
    let identity = dir.join("relay.key");
    let id = identity.display().to_string();
    let mut relay = Relay::spawn(
        &dir,
        "relay",
        &["--listen", "/ip4/127.0.0.1/tcp/0/ws", "--identity", &id],
    )?;
    let mut a = Peer::spawn(&dir, "a", relay.ws(), &dir.join("a"))?;
    let mut b = Peer::spawn(&dir, "b", relay.ws(), &dir.join("b"))?;
    let ctx = shared_context(&mut a, &mut [&mut b])?;
    set(&mut a, &ctx, "a", "1")?;
    converge(&mut [&mut a, &mut b], &ctx)?;
    for p in [&a, &b] {
        p.wait_event(|e| e["ev"] == "reserved")?;
    }

    let (ws, listen) = (relay.ws().to_string(), relay.listen_addr());
    relay.kill9();
    for p in [&a, &b] {
        p.wait_event(|e| e["ev"] == "relay_lost")?;
    }
    // Written while the relay is down: waits in A's outbox (and its DAG).
    let offline = set(&mut a, &ctx, "offline", "2")?;
    let relay = Relay::spawn(
        &dir,
        "relay-restarted",
        &["--listen", &listen, "--identity", &id],
    )?;
    assert_eq!(relay.ws(), ws, "same identity, same port: same address");
    for p in [&a, &b] {
        let reserved = || p.count(|e| e["ev"] == "reserved");
        crate::harness::wait_until(|| reserved() >= 2)?;
    }
    // Both re-subscribed by themselves: the next write reaches B by gossip, through the relay.
    let next = set(&mut a, &ctx, "next", "3")?;
    crate::harness::wait_until(|| !gossiped_via(&b, &next).is_empty())?;
    assert_eq!(gossiped_via(&b, &next), vec![relay.peer_id().to_string()]);
    let entries = converge(&mut [&mut a, &mut b], &ctx)?;
    expect_entries(&entries, &[("a", "1"), ("next", "3"), ("offline", "2")]);
    assert!(!offline.is_empty());
    Ok(())
}

#[test]
fn circuits_carry_more_than_128_kib_and_peers_resume_after_the_relay_closes_them() -> Result {
    let dir = work_dir("circuit_limits");
    let relay = Relay::spawn(
        &dir,
        "relay",
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0/ws",
            "--max-circuit-duration",
            "2s",
        ],
    )?;
    let mut a = Peer::spawn(&dir, "a", relay.ws(), &dir.join("a"))?;
    let mut b = Peer::spawn(&dir, "b", relay.ws(), &dir.join("b"))?;
    let ctx = shared_context(&mut a, &mut [&mut b])?;
    // The relay tells peers its limits with every circuit.
    let circuit = b.wait_event(|e| e["ev"] == "circuit")?;
    assert_eq!(circuit["limit"], json!([2, 0]), "2 s, no byte cap");
    // 320 KiB of state, more than libp2p's default per-circuit cap of 128 KiB.
    for i in 0..5 {
        let value = format!("{i}").repeat(60 * 1024);
        set(&mut a, &ctx, &format!("big-{i}"), &value)?;
    }
    converge(&mut [&mut a, &mut b], &ctx)?;
    // Outlive every circuit, then a newcomer catches up over new circuits (its only way: the
    // writes were gossiped before it subscribed).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let mut c = Peer::spawn(&dir, "c", relay.ws(), &dir.join("c"))?;
    let link = a.cmd(json!({"cmd": "invite", "ctx": ctx}))?["link"].clone();
    c.cmd(json!({"cmd": "join", "link": link, "app": app("kv-store")?}))?;
    c.wait_event(|e| e["ev"] == "joined")?;
    let entries = converge(&mut [&mut a, &mut b, &mut c], &ctx)?;
    assert_eq!(entries.as_array().map(Vec::len), Some(5));
    // Circuits were closed by the relay and opened again.
    let circuits = a.count(|e| e["ev"] == "circuit") + b.count(|e| e["ev"] == "circuit");
    assert!(circuits >= 3, "{circuits} circuits");
    Ok(())
}

#[test]
fn a_2_mib_delta_crosses_by_announce_and_fetch() -> Result {
    let dir = work_dir("large_delta");
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut a = Peer::spawn(&dir, "a", relay.ws(), &dir.join("a"))?;
    let mut b = Peer::spawn(&dir, "b", relay.ws(), &dir.join("b"))?;
    // A context of plain state (no app): written with `fill`.
    let ctx = share(&mut a, &mut [&mut b], None)?;
    converge_roots(&mut [&mut a, &mut b], &ctx)?;

    let delta = a.cmd(json!({"cmd": "fill", "ctx": ctx, "kib": 2048}))?["delta"].clone();
    let fetched = b.wait_event(|e| e["ev"] == "fetched" && e["delta"] == delta)?;
    assert!(fetched["len"].as_u64().unwrap_or(0) > 2 << 20, "{fetched}");
    converge_roots(&mut [&mut a, &mut b], &ctx)?;
    Ok(())
}

#[test]
fn the_relay_prints_help_serves_metrics_and_stops_cleanly_on_sigterm() -> Result {
    let dir = work_dir("relay_cli");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_e2e-relay"))
        .arg("--help")
        .output()?;
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--external-address",
        "--identity",
        "--max-circuit-duration",
        "--max-circuit-bytes",
        "--max-topics",
        "--metrics",
    ] {
        assert!(text.contains(flag), "--help names {flag}");
    }
    // Metrics over HTTP: connections, reservations and topics as peers come.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let mut relay = Relay::spawn(
        &dir,
        "relay",
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0/ws",
            "--metrics",
            &metrics_addr,
        ],
    )?;
    let mut a = Peer::spawn(&dir, "a", relay.ws(), &dir.join("a"))?;
    a.wait_event(|e| e["ev"] == "reserved")?;
    a.cmd(json!({"cmd": "create"}))?;
    let metric = |name: &str| -> anyhow::Result<f64> {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(&metrics_addr)?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no {name} in {body}"))
    };
    crate::harness::wait_until(|| {
        metric("tabmesh_relay_topics").is_ok_and(|v| v == 1.0)
            && metric("tabmesh_relay_reservations").is_ok_and(|v| v == 1.0)
            && metric("tabmesh_relay_connections").is_ok_and(|v| v >= 1.0)
    })?;
    terminate(&relay.child)?;
    let status = wait_exit(&mut relay.child)?;
    assert!(status.success(), "{status}");
    Ok(())
}
