//! Tabs of one origin share one node (the npm package's leader election): two pages of one
//! browser context, a leader and a follower, write concurrently; the leader's tab closes; the
//! follower takes over without losing an acknowledged write, and a native peer converges with it.

use anyhow::Context as _;
use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::harness::{app, ctx_of, work_dir, Peer, Relay, Script, Server, WAIT};

type Result = anyhow::Result<()>;

fn keys(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(String::from))
        .collect()
}

#[test]
fn two_tabs_share_one_node_and_closing_the_leader_loses_no_acknowledged_write() -> Result {
    let dir = work_dir("tabs");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    let kv = app("kv-store")?;
    let ctx = ctx_of(&native.cmd(json!({"cmd": "create", "app": kv}))?);
    let link = native.cmd(json!({"cmd": "invite", "ctx": ctx}))?["link"]
        .as_str()
        .context("a link")?
        .to_string();

    let url = format!("{}/index.html?relay={}&db=shared", server.url, relay.ws());
    let (_tabs, out) = Script::run(&dir, "tabs", "tabs.mjs", &[&url, &link, "kv-store"])?;

    // One node for both tabs: the first leads, the second follows with the same node id; once
    // the leader's tab is gone the follower leads, still the same node.
    let node = out["before"][0]["node"].clone();
    assert_eq!(out["before"][0]["role"], "leader");
    assert_eq!(out["before"][1], json!({"role": "follower", "node": node}));
    assert_eq!(out["after"], json!({"role": "leader", "node": node}));
    assert_eq!(out["ctx"], json!(ctx));

    // Every acknowledged write of both tabs is in the state.
    let written: BTreeSet<String> = out["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e[0].as_str().map(String::from))
        .collect();
    let first = keys(&out["firstAcked"]);
    let second = keys(&out["second"]["acked"]);
    assert_eq!(first.len(), 10, "{out}");
    assert!(!second.is_empty(), "{out}");
    assert!(first.is_subset(&written), "lost: {:?}", &first - &written);
    assert!(second.is_subset(&written), "lost: {:?}", &second - &written);
    // The counter has every acknowledged add of both tabs, and at most the follower's adds of
    // unknown outcome besides (the leader's tab closed after its own calls resolved).
    let acked = out["firstAdded"].as_u64().context("firstAdded")?
        + out["second"]["added"].as_u64().context("added")?;
    let unknown = out["second"]["unknown"].as_u64().context("unknown")?;
    let total = out["total"].as_u64().context("total")?;
    assert!(total >= acked, "acknowledged adds lost: {total} < {acked}");
    assert!(
        total <= acked + unknown,
        "{total} > {acked} acknowledged + {unknown} unknown"
    );
    // The follower's calls failed only while no tab led (outcome unknown).
    for (code, _) in out["second"]["errors"].as_object().into_iter().flatten() {
        assert!(["LEADER_GONE", "STOPPED"].contains(&code.as_str()), "{out}");
    }

    // The native member gets exactly that state (by gossip, or by sync with the tab's node).
    native.wait_root(&ctx, &out["root"], WAIT)?;
    let entries = native.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "entries"}))?;
    let entries: Value = serde_json::from_str(entries["ret"].as_str().unwrap_or("null"))?;
    assert_eq!(entries, out["entries"]);
    Ok(())
}
