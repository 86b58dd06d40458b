//! A tabmesh node in headless Chromium (a real page running the npm package) with a native peer
//! and with other pages, through a real relay process on 127.0.0.1.

use crate::harness::{app, converge, ctx_of, set, share, work_dir, Cut, Peer, Relay, Server};
use serde_json::json;

type Result = anyhow::Result<()>;

#[test]
fn a_chromium_page_and_a_native_peer_converge_catching_up_over_a_circuit() -> Result {
    let dir = work_dir("chromium_and_native");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    let kv = app("kv-store")?;
    let ctx = ctx_of(&native.cmd(json!({"cmd": "create", "app": kv}))?);
    // History the page can only get by catch-up (request-response over a circuit).
    set(&mut native, &ctx, "before", "native")?;

    let mut page = Peer::spawn_page(&dir, "page", relay.ws(), &server)?;
    page.wait_event(|e| e["ev"] == "reserved")?;
    let link = native.cmd(json!({"cmd": "invite", "ctx": ctx}))?["link"].clone();
    page.cmd(json!({"cmd": "join", "link": link, "app": kv}))?;
    page.wait_event(|e| e["ev"] == "joined")?;
    // The page reached the native peer through a relay circuit.
    assert!(page.count(|e| e["ev"] == "circuit") + native.count(|e| e["ev"] == "circuit") > 0);

    set(&mut page, &ctx, "page", "chromium")?;
    let native_write = set(&mut native, &ctx, "native", "tokio")?;
    let entries = converge(&mut [&mut native, &mut page], &ctx)?;
    assert_eq!(
        entries,
        json!([
            ["before", "native"],
            ["native", "tokio"],
            ["page", "chromium"]
        ])
    );
    // The page's subscribers saw the native write's app event (event lines come on their own
    // pump, after the replies: wait for it, bounded).
    let emitted = page.wait_event(|e| e["ev"] == "emitted" && e["delta"] == json!(native_write))?;
    assert_eq!(emitted["events"][0]["kind"], "Inserted");
    let data: serde_json::Value =
        serde_json::from_str(emitted["events"][0]["data"].as_str().unwrap_or("null"))?;
    assert_eq!(data, json!({"key": "native", "value": "tokio"}));
    Ok(())
}

#[test]
fn with_three_pages_gossip_propagates_through_the_relay() -> Result {
    let dir = work_dir("three_pages");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut pages = Vec::new();
    for name in ["page-1", "page-2", "page-3"] {
        pages.push(Peer::spawn_page(&dir, name, relay.ws(), &server)?);
    }
    let ctx = {
        let [first, second, third] = &mut pages[..] else {
            anyhow::bail!("three pages");
        };
        share(first, &mut [second, third], Some(&app("kv-store")?))?
    };
    let delta = set(&mut pages[0], &ctx, "k", "v")?;
    for p in &pages[1..] {
        let got = p.wait_event(|e| e["ev"] == "gossiped" && e["delta"] == json!(delta))?;
        assert_eq!(
            got["via"],
            json!(relay.peer_id()),
            "{} got it from the relay",
            p.name
        );
    }
    let [a, b, c] = &mut pages[..] else {
        anyhow::bail!("three pages");
    };
    let entries = converge(&mut [a, b, c], &ctx)?;
    assert_eq!(entries, json!([["k", "v"]]));
    Ok(())
}

#[test]
fn a_page_dials_the_relay_over_webrtc_direct_and_the_certhash_survives_a_restart() -> Result {
    let dir = work_dir("webrtc_direct");
    let server = Server::start()?;
    let (key, cert) = (dir.join("relay.key"), dir.join("relay-cert.pem"));
    let (key, cert) = (key.display().to_string(), cert.display().to_string());
    let args = |ws: &str, rtc: &str| {
        vec![
            "--listen".to_string(),
            ws.to_string(),
            "--listen".to_string(),
            rtc.to_string(),
            "--identity".to_string(),
            key.clone(),
            "--webrtc-cert".to_string(),
            cert.clone(),
        ]
    };
    let first = args(
        "/ip4/127.0.0.1/tcp/0/ws",
        "/ip4/127.0.0.1/udp/0/webrtc-direct",
    );
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut relay = Relay::spawn(&dir, "relay", &first)?;
    let webrtc = relay
        .webrtc()
        .ok_or_else(|| anyhow::anyhow!("no WebRTC-direct address: {:?}", relay.addrs))?
        .to_string();

    // The page's only way to the relay is WebRTC-direct; a native peer uses WebSocket.
    let mut page = Peer::spawn_page(&dir, "page", &webrtc, &server)?;
    page.wait_event(|e| e["ev"] == "reserved")?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    let ctx = share(&mut native, &mut [&mut page], Some(&app("kv-store")?))?;
    set(&mut page, &ctx, "over", "webrtc")?;
    let entries = converge(&mut [&mut native, &mut page], &ctx)?;
    assert_eq!(entries, json!([["over", "webrtc"]]));

    // Same certificate file, same port: the same address, certhash included.
    let (ws, rtc) = (
        relay.listen_addr_of("/ws/").unwrap_or_default(),
        relay.listen_addr_of("/webrtc-direct/").unwrap_or_default(),
    );
    relay.kill9();
    let again = args(&ws, &rtc);
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let relay = Relay::spawn(&dir, "relay-restarted", &again)?;
    assert_eq!(relay.webrtc(), Some(webrtc.as_str()));
    // The page re-dials the same address by itself and reserves again.
    crate::harness::wait_until(|| page.count(|e| e["ev"] == "reserved") >= 2)?;
    Ok(())
}

#[test]
fn a_page_on_indexeddb_comes_back_with_its_state_and_syncs_what_it_missed() -> Result {
    let dir = work_dir("page_indexeddb");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut page = Peer::spawn_page_on(&dir, "page", relay.ws(), &server, Some("node-1"))?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    let ctx = share(&mut page, &mut [&mut native], Some(&app("kv-store")?))?;
    set(&mut page, &ctx, "page", "durable")?;
    converge(&mut [&mut native, &mut page], &ctx)?;
    let node_id = page.node_id.clone();

    // The page goes away (its node stops with it); a write lands meanwhile on the native peer;
    // the page comes back.
    page.cmd(json!({"cmd": "close"}))?;
    let away = set(&mut native, &ctx, "native", "while-away")?;
    page.cmd(json!({"cmd": "open"}))?;
    crate::harness::wait_until(|| page.count(|e| e["ev"] == "ready") >= 2)?;
    let ready = page
        .events()
        .into_iter()
        .filter(|e| e["ev"] == "ready")
        .nth(1);
    // Same node (its key came back from IndexedDB), same context, its write kept, and the missed
    // write caught up by sync.
    assert_eq!(ready.map(|e| e["node"].clone()), Some(json!(node_id)));
    let entries = converge(&mut [&mut native, &mut page], &ctx)?;
    let missed = page
        .events()
        .iter()
        .any(|e| e["ev"] == "gossiped" && e["delta"] == json!(away));
    assert!(
        !missed,
        "the write made while the page was away came by sync, not gossip"
    );
    assert_eq!(
        entries,
        json!([["native", "while-away"], ["page", "durable"]])
    );
    Ok(())
}

#[test]
fn a_page_started_while_its_relay_is_down_writes_offline_and_converges_once_it_is_up() -> Result {
    let dir = work_dir("relay_down_at_start");
    let identity = dir.join("relay.key");
    let id = identity.display().to_string();
    // The relay's address (identity and port), then the relay goes.
    let mut relay = Relay::spawn(
        &dir,
        "relay-first",
        &["--listen", "/ip4/127.0.0.1/tcp/0/ws", "--identity", &id],
    )?;
    let (ws, listen) = (relay.ws().to_string(), relay.listen_addr());
    relay.kill9();

    // The page starts (offline first: its node runs without the relay) and writes.
    let server = Server::start()?;
    let mut page = Peer::spawn_page_on(&dir, "page", &ws, &server, Some("offline"))?;
    let kv = app("kv-store")?;
    let ctx = ctx_of(&page.cmd(json!({"cmd": "create", "app": kv}))?);
    set(&mut page, &ctx, "offline-1", "page")?;
    set(&mut page, &ctx, "offline-2", "page")?;
    let link = page.cmd(json!({"cmd": "invite", "ctx": ctx}))?["link"].clone();
    assert_eq!(page.count(|e| e["ev"] == "reserved"), 0);

    // The relay comes up: the page reserves by itself; a native peer joins and converges.
    let relay = Relay::spawn(&dir, "relay", &["--listen", &listen, "--identity", &id])?;
    assert_eq!(relay.ws(), ws);
    page.wait_event(|e| e["ev"] == "reserved")?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    native.wait_event(|e| e["ev"] == "reserved")?;
    native.cmd(json!({"cmd": "join", "link": link, "app": kv}))?;
    native.wait_event(|e| e["ev"] == "joined")?;
    set(&mut native, &ctx, "native", "online")?;
    let entries = converge(&mut [&mut page, &mut native], &ctx)?;
    assert_eq!(
        entries,
        json!([
            ["native", "online"],
            ["offline-1", "page"],
            ["offline-2", "page"]
        ])
    );
    Ok(())
}

#[test]
fn a_page_whose_relay_connection_is_cut_misses_writes_and_gets_them_by_sync_once_reconnected(
) -> Result {
    let dir = work_dir("relay_cut");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let cut = Cut::new(&relay)?;
    let mut page = Peer::spawn_page(&dir, "page", &cut.addr, &server)?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    page.wait_event(|e| e["ev"] == "reserved")?;
    let ctx = share(&mut native, &mut [&mut page], Some(&app("kv-store")?))?;
    set(&mut native, &ctx, "before", "gossip")?;
    converge(&mut [&mut native, &mut page], &ctx)?;

    // The page's connection to the relay really goes (the relay and the native peer stay up).
    cut.cut();
    page.wait_event(|e| e["ev"] == "relay_lost")?;
    let missed = [
        set(&mut native, &ctx, "missed-1", "native")?,
        set(&mut native, &ctx, "missed-2", "native")?,
    ];
    let syncs_before = page.count(|e| e["ev"] == "sync" && e["outcome"] == "pulled");
    cut.restore();
    let entries = converge(&mut [&mut native, &mut page], &ctx)?;
    assert_eq!(
        entries,
        json!([
            ["before", "gossip"],
            ["missed-1", "native"],
            ["missed-2", "native"]
        ])
    );
    // The missed writes came by a sync session that pulled them, not by gossip.
    for delta in &missed {
        assert_eq!(
            page.count(|e| e["ev"] == "gossiped" && e["delta"] == json!(delta)),
            0,
            "{delta} was gossiped"
        );
    }
    // (Event lines come on their own pump, a moment after the replies that show their effect.)
    crate::harness::wait_until(|| {
        page.count(|e| e["ev"] == "sync" && e["outcome"] == "pulled") > syncs_before
    })?;
    assert!(
        page.count(|e| e["ev"] == "reserved") >= 2,
        "the page reserved again"
    );
    Ok(())
}

#[test]
fn a_write_acknowledged_just_before_the_browser_is_killed_is_there_after_a_relaunch_and_syncs(
) -> Result {
    let dir = work_dir("browser_crash");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let cut = Cut::new(&relay)?;
    let profile = dir.join("profile");
    let mut page = Peer::spawn_page_in(
        &dir,
        "page",
        &cut.addr,
        &server,
        Some("crash"),
        Some(&profile),
    )?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    page.wait_event(|e| e["ev"] == "reserved")?;
    let ctx = share(&mut native, &mut [&mut page], Some(&app("kv-store")?))?;
    converge(&mut [&mut native, &mut page], &ctx)?;
    let node_id = page.node_id.clone();

    // Cut off (so only the page's IndexedDB can have it), the page writes; the moment the write
    // is acknowledged, every process of the browser is SIGKILLed.
    cut.cut();
    page.wait_event(|e| e["ev"] == "relay_lost")?;
    set(&mut page, &ctx, "acknowledged", "then killed")?;
    let profile_arg = profile.display().to_string();
    let status = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &profile_arg])
        .status()?;
    assert!(
        status.success(),
        "the browser's processes were found and killed"
    );
    page.kill9();

    // The same profile again: the node, its key and the write come back from IndexedDB, and the
    // write reaches the native peer.
    cut.restore();
    let mut page = Peer::spawn_page_in(
        &dir,
        "page-again",
        &cut.addr,
        &server,
        Some("crash"),
        Some(&profile),
    )?;
    assert_eq!(page.node_id, node_id);
    let got = page.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "get", "args": json!({"key": "acknowledged"}).to_string()}))?;
    assert_eq!(
        got["ret"],
        json!("\"then killed\""),
        "read back from IndexedDB at once"
    );
    let entries = converge(&mut [&mut native, &mut page], &ctx)?;
    assert_eq!(entries, json!([["acknowledged", "then killed"]]));
    Ok(())
}

#[test]
fn a_page_joining_without_the_app_module_fetches_it_from_a_member_and_runs_it() -> Result {
    let dir = work_dir("module_fetch");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    let ctx = ctx_of(&native.cmd(json!({"cmd": "create", "app": app("kv-store")?}))?);
    set(&mut native, &ctx, "from", "native")?;
    let mut page = Peer::spawn_page(&dir, "page", relay.ws(), &server)?;
    page.wait_event(|e| e["ev"] == "reserved")?;
    let link = native.cmd(json!({"cmd": "invite", "ctx": ctx}))?["link"].clone();
    // Only the invitation: the module (its hash is in the invitation) comes from the member.
    page.cmd(json!({"cmd": "join", "link": link}))?;
    page.wait_event(|e| e["ev"] == "joined")?;
    crate::harness::wait_until(|| {
        page.count(|e| e["ev"] == "app_changed" && e["available"] == true && e["ctx"] == json!(ctx))
            > 0
    })?;
    set(&mut page, &ctx, "from", "page")?;
    set(&mut page, &ctx, "page", "runs the fetched app")?;
    let entries = converge(&mut [&mut native, &mut page], &ctx)?;
    assert_eq!(
        entries,
        json!([["from", "page"], ["page", "runs the fetched app"]])
    );
    Ok(())
}
