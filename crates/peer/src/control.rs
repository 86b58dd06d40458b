//! The JSON-lines control protocol of a peer (see the crate documentation): commands to a
//! [`Node`] and its events as JSON. Shared by the native binary and the Chromium test page.

use anyhow::anyhow;
use serde_json::{json, Value};
use tabmesh_auth::Role;
use tabmesh_base::{ContextId, Hash};
use tabmesh_net::{now_ms, NetEvent, Node};
use tabmesh_node::NodeEvent;

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

pub(crate) fn hex(bytes: &[u8; 32]) -> String {
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
        NetEvent::Node(NodeEvent::Joined { context, delta }) => {
            json!({"ev": "joined", "ctx": hex(&context.0), "delta": hex(&delta.0)})
        }
        NetEvent::Node(other) => json!({"ev": "node", "debug": format!("{other:?}")}),
        _ => return None,
    })
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
