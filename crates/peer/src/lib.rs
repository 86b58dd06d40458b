//! `tabmesh-peer`: a headless native tabmesh node (an IO shell).
//!
//! `tabmesh-peer --relay <relay multiaddr …/p2p/<id>> --dir <store directory>` starts a node on a
//! file store ([`tabmesh_storage::FileStore`]; a restart resumes from it), reserves a slot on the
//! relay and serves **JSON lines**: one command per line on stdin, one reply or event per line on
//! stdout (logs go to stderr).
//!
//! Commands (`{"id": n, "cmd": …}`; the reply is `{"id": n, "ok": …}` or
//! `{"id": n, "err": "…"}`):
//!
//! | `cmd` | fields | `ok` |
//! |---|---|---|
//! | `create` | `app` (module path; absent: plain state) | `{"ctx"}` |
//! | `invite` | `ctx`, `ttl_ms` (default 1 h) | `{"link"}` |
//! | `join` | `link`, `app` | `{"ctx"}` |
//! | `exec` | `ctx`, `method`, `args` (JSON text) | `{"ret", "delta"}` |
//! | `fill` | `ctx`, `kib` | `{"delta"}`: one plain write of `kib` KiB (map `fill`) |
//! | `state` | `ctx` | `{"root", "heads", "applied", "pending", "entities", "member", "peers"}` |
//! | `sync` | `ctx` | `{}` (a sync round now) |
//! | `stats` | | the network counters |
//! | `quit` | | `{}`, then the process exits 0 |
//!
//! Events: `{"ev": "ready", "peer", "node"}` first, then `reserved`, `relay_lost`, `peer_joined`,
//! `peer_left`, `gossiped` (with `via`, the forwarding peer), `fetched`, `circuit` (with the
//! relay's limits), `joined`, and `node` (any other core event, in debug form). Every line has
//! `t_ms`, the wall clock.
//!
//! What it deliberately is not: a user interface or an API server (it is the native node of the
//! tests, benchmarks and scripts); the browser and Node.js node is the npm package.
//!
//! ```no_run
//! // The binary's `main`; tests spawn it as a process and talk JSON lines to it.
//! let _ = tabmesh_peer::main();
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::Parser;
use serde_json::{json, Value};
use tabmesh_auth::Role;
use tabmesh_base::{ContextId, Hash};
use tabmesh_net::libp2p::Multiaddr;
use tabmesh_net::{now_ms, NetEvent, Node, NodeOptions};
use tabmesh_node::NodeEvent;
use tabmesh_storage::FileStore;
use tokio::io::AsyncBufReadExt as _;

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
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tabmesh-peer: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tabmesh-peer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn emit(mut line: Value) {
    line["t_ms"] = json!(now_ms());
    let mut out = std::io::stdout().lock();
    #[allow(clippy::print_stdout)]
    {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

fn hex(bytes: &[u8; 32]) -> String {
    Hash(*bytes).to_hex()
}

fn event_line(event: NetEvent) -> Option<Value> {
    Some(match event {
        NetEvent::Reserved { relay, limit } => {
            json!({"ev": "reserved", "relay": relay.to_string(), "limit": limit})
        }
        NetEvent::RelayLost => json!({"ev": "relay_lost"}),
        NetEvent::PeerJoined { context, peer } => {
            json!({"ev": "peer_joined", "ctx": hex(&context.0), "peer": hex(&peer.0)})
        }
        NetEvent::PeerLeft { context, peer } => {
            json!({"ev": "peer_left", "ctx": hex(&context.0), "peer": hex(&peer.0)})
        }
        NetEvent::Gossiped {
            context,
            delta,
            from,
            via,
        } => json!({
            "ev": "gossiped", "ctx": hex(&context.0), "delta": hex(&delta.0),
            "from": hex(&from.0), "via": via.to_string(),
        }),
        NetEvent::Fetched {
            context,
            delta,
            len,
        } => json!({"ev": "fetched", "ctx": hex(&context.0), "delta": hex(&delta.0), "len": len}),
        NetEvent::Circuit { peer, limit } => {
            json!({"ev": "circuit", "peer": peer.to_string(), "limit": limit})
        }
        NetEvent::Lagged(n) => json!({"ev": "lagged", "n": n}),
        NetEvent::Node(NodeEvent::Joined { context, delta }) => {
            json!({"ev": "joined", "ctx": hex(&context.0), "delta": hex(&delta.0)})
        }
        NetEvent::Node(other) => json!({"ev": "node", "debug": format!("{other:?}")}),
        _ => return None,
    })
}

/// Runs the node until `quit` or the end of stdin.
pub async fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let store = FileStore::open(&args.dir).context("opening the store")?;
    let (node, mut events, driver) = Node::start(store, NodeOptions::new(args.relay.clone()))
        .await
        .context("starting the node")?;
    let driver = tokio::spawn(driver);
    emit(json!({
        "ev": "ready",
        "peer": node.peer_id().to_string(),
        "node": hex(&node.node_id().0),
    }));
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
        match command(&node, &relay, &request).await {
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

fn field<'a>(request: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    request[name]
        .as_str()
        .ok_or_else(|| anyhow!("missing string field {name:?}"))
}

fn context(request: &Value) -> anyhow::Result<ContextId> {
    let hex = field(request, "ctx")?;
    Hash::from_hex(hex)
        .map(|h| ContextId(h.0))
        .ok_or_else(|| anyhow!("bad context id {hex:?}"))
}

fn module(request: &Value) -> anyhow::Result<Option<Vec<u8>>> {
    match request["app"].as_str() {
        Some(path) => {
            Ok(Some(std::fs::read(path).with_context(|| {
                format!("reading the app module {path}")
            })?))
        }
        None => Ok(None),
    }
}

async fn command(node: &Node, relay: &str, request: &Value) -> anyhow::Result<Value> {
    let cmd = field(request, "cmd")?;
    match cmd {
        "create" => {
            let module = module(request)?;
            let ctx = node
                .call(move |core, now| core.create_context(now, module.as_deref(), b"{}"))
                .await??
                .0;
            Ok(json!({"ctx": hex(&ctx.0)}))
        }
        "invite" => {
            let ctx = context(request)?;
            let ttl = request["ttl_ms"].as_u64().unwrap_or(3_600_000);
            let relay = relay.to_string();
            let link = node
                .call(move |core, now| core.invite(ctx, Role::Member, now + ttl, &relay))
                .await??;
            Ok(json!({"link": link}))
        }
        "join" => {
            let link = field(request, "link")?.to_string();
            let module = module(request)?;
            let ctx = node
                .call(move |core, now| core.join_context(now, &link, module.as_deref()))
                .await??;
            Ok(json!({"ctx": hex(&ctx.0)}))
        }
        "exec" => {
            let ctx = context(request)?;
            let method = field(request, "method")?.to_string();
            let args = request["args"].as_str().unwrap_or("{}").to_string();
            let out = node
                .call(move |core, now| core.execute(now, ctx, &method, args.as_bytes()))
                .await??;
            let ret = out
                .return_value
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            Ok(json!({"ret": ret, "delta": out.delta.map(|d| hex(&d.0))}))
        }
        "state" => {
            let ctx = context(request)?;
            node.call(move |core, _| {
                let r = core
                    .replica(&ctx)
                    .ok_or_else(|| anyhow!("unknown context"))?;
                let s = r.summary();
                Ok::<_, anyhow::Error>(json!({
                    "root": s.root.to_hex(),
                    "heads": s.heads.iter().map(|h| hex(&h.0)).collect::<Vec<_>>(),
                    "applied": s.applied,
                    "pending": s.pending,
                    "entities": s.entities,
                    "member": core.member(&ctx).is_some() && !core.is_joining(&ctx),
                    "peers": r.peers().count(),
                }))
            })
            .await?
        }
        "fill" => {
            // A plain write of `kib` KiB in one delta: map "fill", 64 KiB values (the largest
            // value), bytes varying with the time so each fill is a new write.
            let ctx = context(request)?;
            let kib = request["kib"].as_u64().unwrap_or(64) as usize;
            let delta = node
                .call(move |core, now| {
                    core.commit(now, ctx, |txn| {
                        let mut map = txn.map("fill")?;
                        for i in 0..kib.div_ceil(64) {
                            let value: Vec<u8> = (0..64 * 1024)
                                .map(|j| (i + j + now as usize) as u8)
                                .collect();
                            map.insert(format!("{now}-{i}").as_bytes(), &value)?;
                        }
                        Ok(())
                    })
                })
                .await??
                .1;
            Ok(json!({"delta": delta.map(|d| hex(&d.0))}))
        }
        "sync" => {
            let ctx = context(request)?;
            node.call(move |core, now| core.sync_now(now, ctx)).await?;
            Ok(json!({}))
        }
        "stats" => {
            let s = node.stats().await?;
            Ok(json!({
                "reserved": s.reserved, "reservations": s.reservations,
                "connected": s.connected, "published": s.published, "gossiped": s.gossiped,
                "gossip_rejected": s.gossip_rejected, "outbox": s.outbox,
                "sent": s.sent, "received": s.received, "send_dropped": s.send_dropped,
                "send_failed": s.send_failed, "fetched": s.fetched,
            }))
        }
        other => Err(anyhow!("unknown command {other:?}")),
    }
}
