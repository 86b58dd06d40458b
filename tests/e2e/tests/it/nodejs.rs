//! The npm package as users get it, from its packed tarball installed in a scratch project: a
//! Node.js process converges with two Chromium pages through the relay and keeps its state across
//! a restart (its directory-backed file store); the same install bundled by vite runs in Chromium.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use serde_json::json;

use crate::harness::{
    app, converge, node_install, set, share, wait_exit, work_dir, Peer, Relay, Script, Server,
};

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

#[test]
fn the_packed_package_bundled_by_vite_starts_a_node_and_runs_a_call_in_chromium(
) -> anyhow::Result<()> {
    let dir = work_dir("bundle");
    // A user's project: the tarball installed as a dependency, a page importing "tabmesh".
    let project = node_install()?.join("bundle");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project)?;
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["index.html", "main.js"] {
        std::fs::copy(e2e.join("bundle").join(file), project.join(file))?;
    }
    // Bundled by vite 7 (the repository's devDependency), as a user's build would.
    let vite = e2e.join("../../node_modules/.bin/vite");
    let status = Command::new(vite)
        .args(["build", "--logLevel", "warn", "--outDir", "dist"])
        .current_dir(&project)
        .status()
        .context("running vite")?;
    anyhow::ensure!(status.success(), "vite build failed: {status}");
    let assets: Vec<String> = std::fs::read_dir(project.join("dist/assets"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(
        assets.iter().any(|a| a.ends_with(".wasm")),
        "the bundle carries the node's wasm: {assets:?}"
    );

    let server = Server::start_at(&project.join("dist"))?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let url = format!("{}/index.html?relay={}", server.url, relay.ws());
    let (_page, out) = Script::run(&dir, "bundle", "bundle.mjs", &[&url])?;
    assert_eq!(out["value"], "by vite", "{out}");
    assert_eq!(out["code"], "INVALID_ARGUMENT", "{out}");
    assert_eq!(out["node"].as_str().map(str::len), Some(64), "{out}");
    Ok(())
}
