//! The native binary: a tokio runtime, a file store, JSON lines on stdin and stdout.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::Parser;
use serde_json::{json, Value};
use tabmesh_net::libp2p::Multiaddr;
use tabmesh_net::{Node, NodeOptions};
use tabmesh_storage::{FileBlobStore, FileStore};
use tokio::io::AsyncBufReadExt as _;

use crate::control::{command, event_line, ready_line, stamp};

/// A headless native tabmesh node driven by JSON lines on stdin.
#[derive(Debug, Clone, Parser)]
#[command(name = "tabmesh-peer", version)]
pub struct Args {
    /// The relay's full address (ending with `/p2p/<relay peer id>`).
    #[arg(long)]
    pub relay: Multiaddr,
    /// The store directory (created if missing; one process at a time).
    #[arg(long)]
    pub dir: PathBuf,
    /// Test only: serve blob chunks with a byte flipped (a peer serving bad data).
    #[arg(long, hide = true)]
    pub corrupt_blobs: bool,
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    tabmesh_net::run_binary("tabmesh-peer", run(Args::parse()))
}

fn emit(line: Value) {
    let line = stamp(line);
    let mut out = std::io::stdout().lock();
    #[allow(clippy::print_stdout)]
    {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// Runs the node until `quit` or the end of stdin.
pub async fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let store = FileStore::open(&args.dir).context("opening the store")?;
    let blobs = FileBlobStore::open(args.dir.join("blobs")).context("opening the blob store")?;
    let mut options = NodeOptions::new(args.relay.clone());
    options.corrupt_served_chunks = args.corrupt_blobs;
    let (node, mut events, driver) = Node::start(store, blobs, options)
        .await
        .context("starting the node")?;
    let driver = tokio::spawn(driver);
    emit(ready_line(&node));
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if let Some(line) = event_line(event) {
                emit(line);
            }
        }
    });
    let relay = args.relay.to_string();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let request: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                emit(json!({"err": format!("bad command line: {e}")}));
                continue;
            }
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        if request["cmd"] == "quit" {
            node.stop().await;
            emit(json!({"id": id, "ok": {}}));
            break;
        }
        let app = match request["app"].as_str() {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    emit(json!({"id": id, "err": format!("reading the app module {path}: {e}")}));
                    continue;
                }
            },
            None => None,
        };
        match command(&node, &relay, &request, app).await {
            Ok(ok) => emit(json!({"id": id, "ok": ok})),
            Err(e) => emit(json!({"id": id, "err": format!("{e:#}")})),
        }
    }
    node.stop().await;
    match driver.await {
        Ok(result) => result.context("the node failed"),
        Err(e) => Err(anyhow!("the node's task failed: {e}")),
    }
}
