//! The JSON-lines control protocol of a peer (see the crate documentation): commands to a
//! [`Node`] and its events as JSON. Shared by the native binary and the Chromium test page.

use anyhow::anyhow;
use serde_json::{json, Value};
use tabmesh_auth::Role;
use tabmesh_base::{ContextId, Hash};
use tabmesh_net::{now_ms, NetEvent, NetStats, Node};
use tabmesh_node::{NodeCore, NodeEvent};
use tabmesh_sync::{SessionOutcome, SyncEvent};

/// The most writes one `burst` command makes.
pub const MAX_BURST: u64 = 100_000;

/// A line with its `t_ms` (the wall clock), as text.
pub fn stamp(mut line: Value) -> String {
    line["t_ms"] = json!(now_ms());
    line.to_string()
}

/// The first event of a started node.
pub fn ready_line(node: &Node) -> Value {
    json!({
        "ev": "ready",
        "peer": node.peer_id().to_string(),
        "node": hex(&node.node_id().0),
    })
}

/// 32 bytes (an id) as lowercase hex.
pub fn hex(bytes: &[u8; 32]) -> String {
    Hash(*bytes).to_hex()
}

/// An event as a JSON line (`None`: not reported).
pub fn event_line(event: NetEvent) -> Option<Value> {
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
        NetEvent::StoreFull { held_bytes } => json!({"ev": "store_full", "held_bytes": held_bytes}),
        NetEvent::Node(event) => node_event_line(event),
        _ => return None,
    })
}

/// A core event as JSON: `ev` names it; `ctx`, `delta`, `peer`, … are hex ids.
fn node_event_line(event: NodeEvent) -> Value {
    match event {
        NodeEvent::Sync { context, event } => sync_event_line(context, event),
        NodeEvent::Joined { context, delta } => {
            json!({"ev": "joined", "ctx": hex(&context.0), "delta": hex(&delta.0)})
        }
        NodeEvent::JoinFailed { context, error } => {
            json!({"ev": "join_failed", "ctx": hex(&context.0), "error": error.to_string()})
        }
        NodeEvent::AppChanged {
            context,
            app,
            available,
        } => json!({
            "ev": "app_changed", "ctx": hex(&context.0), "app": app.to_hex(),
            "available": available,
        }),
        NodeEvent::Rejected { from, error } => {
            json!({"ev": "rejected", "from": hex(&from.0), "error": error.to_string()})
        }
        NodeEvent::HandlerRan {
            context,
            cause,
            index,
            handler,
            delta,
            logs,
        } => json!({
            "ev": "handler", "ctx": hex(&context.0), "cause": hex(&cause.0), "index": index,
            "handler": handler, "delta": delta.map(|d| hex(&d.0)), "logs": logs,
        }),
        NodeEvent::HandlerFailed {
            context,
            cause,
            index,
            handler,
            error,
        } => json!({
            "ev": "handler_failed", "ctx": hex(&context.0), "cause": hex(&cause.0),
            "index": index, "handler": handler, "error": error.to_string(),
        }),
        NodeEvent::ClockFarAhead { from, ahead_ms } => json!({
            "ev": "clock_ahead", "from": from.map(|f| hex(&f.0)), "ahead_ms": ahead_ms,
        }),
        other => json!({"ev": "node", "debug": format!("{other:?}")}),
    }
}

/// A context's sync event as JSON (`applied`, `state`, `sync`, `rejected`, `voided`).
fn sync_event_line(context: ContextId, event: SyncEvent) -> Value {
    let ctx = hex(&context.0);
    match event {
        SyncEvent::Applied { ids, root } => json!({
            "ev": "applied", "ctx": ctx, "deltas": ids.iter().map(|d| hex(&d.0)).collect::<Vec<_>>(),
            "root": root.to_hex(),
        }),
        SyncEvent::StateReplaced { root } => {
            json!({"ev": "state", "ctx": ctx, "root": root.to_hex(), "why": "replaced"})
        }
        SyncEvent::Rebuilt { root } => {
            json!({"ev": "state", "ctx": ctx, "root": root.to_hex(), "why": "rebuilt"})
        }
        SyncEvent::SessionEnded {
            peer,
            protocol,
            outcome,
        } => {
            let mut line = json!({
                "ev": "sync", "ctx": ctx, "peer": hex(&peer.0),
                "protocol": format!("{protocol:?}"),
            });
            let (name, detail) = match outcome {
                SessionOutcome::InSync => ("in_sync", Value::Null),
                SessionOutcome::Pulled { deltas } => ("pulled", json!({"deltas": deltas})),
                SessionOutcome::Converged { pulled, pushed } => {
                    ("converged", json!({"pulled": pulled, "pushed": pushed}))
                }
                SessionOutcome::Diverged { local, remote } => (
                    "diverged",
                    json!({"local": local.to_hex(), "remote": remote.to_hex()}),
                ),
                SessionOutcome::Failed(why) => ("failed", json!({"why": format!("{why:?}")})),
                other => ("other", json!({"debug": format!("{other:?}")})),
            };
            line["outcome"] = json!(name);
            if !detail.is_null() {
                line["detail"] = detail;
            }
            line
        }
        SyncEvent::Rejected { from, error } => json!({
            "ev": "rejected", "ctx": ctx, "from": from.map(|f| hex(&f.0)),
            "error": error.to_string(),
        }),
        SyncEvent::Emitted {
            delta,
            author,
            events,
        } => json!({
            "ev": "emitted", "ctx": ctx, "delta": hex(&delta.0), "author": hex(&author.0),
            "events": events.iter().map(|e| {
                let mut event = json!({"kind": e.kind, "handler": e.handler});
                // The SDK's events are JSON text; anything else goes as hex.
                match std::str::from_utf8(&e.data) {
                    Ok(text) => event["data"] = json!(text),
                    Err(_) => {
                        let hex: String = e.data.iter().map(|b| format!("{b:02x}")).collect();
                        event["data_hex"] = json!(hex);
                    }
                }
                event
            }).collect::<Vec<_>>(),
        }),
        SyncEvent::Voided { id, author, reason } => json!({
            "ev": "voided", "ctx": ctx, "delta": hex(&id.0), "author": hex(&author.0),
            "reason": format!("{reason:?}"),
        }),
        other => json!({"ev": "sync_other", "ctx": ctx, "debug": format!("{other:?}")}),
    }
}

fn field<'a>(request: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    request[name]
        .as_str()
        .ok_or_else(|| anyhow!("missing string field {name:?}"))
}

/// A context id from its hex form (64 hex digits), as events and replies write it.
pub fn parse_context(hex: &str) -> Option<ContextId> {
    Hash::from_hex(hex).map(|h| ContextId(h.0))
}

fn context(request: &Value) -> anyhow::Result<ContextId> {
    let hex = field(request, "ctx")?;
    parse_context(hex).ok_or_else(|| anyhow!("bad context id {hex:?}"))
}

/// Runs one command (`request["cmd"]`, not `quit`) on `node`; `relay` goes into invitations;
/// `app` is the module the command's `app` field names, loaded by the caller (from a file
/// natively, over HTTP in a page).
pub async fn command(
    node: &Node,
    relay: &str,
    request: &Value,
    app: Option<Vec<u8>>,
) -> anyhow::Result<Value> {
    let cmd = field(request, "cmd")?;
    match cmd {
        "create" => {
            let module = app;
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
            let module = app;
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
        "burst" => {
            // `n` kv-store `set`s (keys `<prefix>-<i>`) in one call: n deltas, one drain (their
            // batches commit together), for tests and benchmarks that need a long history fast.
            let ctx = context(request)?;
            let n = request["n"].as_u64().unwrap_or(100).min(MAX_BURST);
            let prefix = request["prefix"].as_str().unwrap_or("k").to_string();
            node.call(move |core, now| {
                for i in 0..n {
                    let args = json!({"key": format!("{prefix}-{i}"), "value": i.to_string()});
                    core.execute(now, ctx, "set", args.to_string().as_bytes())?;
                }
                Ok::<_, tabmesh_node::NodeError>(())
            })
            .await??;
            Ok(json!({"n": n}))
        }
        "state" => {
            let ctx = context(request)?;
            node.call(move |core, _| context_state(core, &ctx))
                .await?
                .ok_or_else(|| anyhow!("unknown context"))
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
        "stats" => Ok(stats_json(&node.stats().await?)),
        other => Err(anyhow!("unknown command {other:?}")),
    }
}

/// A context's state as JSON (`None`: no such context here): its root, heads, counters, whether
/// this node is a member (or still joining), its app and its peers.
pub fn context_state(core: &NodeCore, ctx: &ContextId) -> Option<Value> {
    let replica = core.replica(ctx)?;
    let s = replica.summary();
    Some(json!({
        "ctx": hex(&ctx.0),
        "root": s.root.to_hex(),
        "heads": s.heads.iter().map(|h| hex(&h.0)).collect::<Vec<_>>(),
        "applied": s.applied,
        "pending": s.pending,
        "entities": s.entities,
        "member": core.member(ctx).is_some() && !core.is_joining(ctx),
        "joining": core.is_joining(ctx),
        "app": core.app(ctx).map(|a| a.to_hex()),
        "peers": replica.peers().map(|p| hex(&p.0)).collect::<Vec<_>>(),
    }))
}

/// The network counters as JSON.
pub fn stats_json(s: &NetStats) -> Value {
    json!({
        "reserved": s.reserved, "reservations": s.reservations, "connected": s.connected,
        "published": s.published, "gossiped": s.gossiped, "gossip_rejected": s.gossip_rejected,
        "outbox": s.outbox, "outbox_dropped": s.outbox_dropped, "sent": s.sent,
        "received": s.received, "send_dropped": s.send_dropped, "send_failed": s.send_failed,
        "fetched": s.fetched, "events_dropped": s.events_dropped, "commits": s.commits,
        "store_full": s.store_full, "quota_failures": s.quota_failures,
    })
}
