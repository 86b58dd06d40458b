//! The npm package in Node.js, installed from its packed tarball as a user would: a Node.js
//! process converges with two Chromium pages through the relay and keeps its state across a
//! restart (its directory-backed file store).

use serde_json::json;

use crate::harness::{app, converge, set, share, wait_exit, work_dir, Peer, Relay, Server};

#[test]
fn a_nodejs_process_from_the_packed_package_converges_with_two_pages_and_keeps_its_state(
) -> anyhow::Result<()> {
    let dir = work_dir("nodejs");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let store = dir.join("node-store");
    let mut node = Peer::spawn_node(&dir, "node", relay.ws(), &store)?;
    let mut p1 = Peer::spawn_page(&dir, "page-1", relay.ws(), &server)?;
    let mut p2 = Peer::spawn_page(&dir, "page-2", relay.ws(), &server)?;
    node.wait_event(|e| e["ev"] == "reserved")?;
    let ctx = share(&mut node, &mut [&mut p1, &mut p2], Some(&app("kv-store")?))?;
    set(&mut node, &ctx, "node", "nodejs")?;
    set(&mut p1, &ctx, "page-1", "chromium")?;
    set(&mut p2, &ctx, "page-2", "chromium")?;
    let entries = converge(&mut [&mut node, &mut p1, &mut p2], &ctx)?;
    assert_eq!(
        entries,
        json!([
            ["node", "nodejs"],
            ["page-1", "chromium"],
            ["page-2", "chromium"]
        ])
    );

    // The process stops; a page writes meanwhile; it starts again from its directory.
    let id = node.node_id.clone();
    node.cmd(json!({"cmd": "quit"}))?;
    assert!(wait_exit(&mut node.child)?.success());
    set(&mut p1, &ctx, "while-down", "page-1")?;
    let mut node = Peer::spawn_node(&dir, "node-again", relay.ws(), &store)?;
    assert_eq!(
        node.node_id, id,
        "the node key came back from its directory"
    );
    let entries = converge(&mut [&mut node, &mut p1, &mut p2], &ctx)?;
    assert_eq!(
        entries,
        json!([
            ["node", "nodejs"],
            ["page-1", "chromium"],
            ["page-2", "chromium"],
            ["while-down", "page-1"]
        ])
    );
    Ok(())
}
