//! `tabmesh-web`: the wasm-bindgen exports of a tabmesh node, for JS hosts (a browser tab or
//! worker, Node.js). The npm package's TypeScript facade (`pkg/`) is their only intended caller.
//!
//! What it is: type conversion around [`tabmesh_net::Node`] (the driver: the core, its store,
//! the libp2p swarm, timers) — ids as hex strings, bytes as `Uint8Array`, events and results as
//! plain objects (the event shapes are `tabmesh_peer::control`'s, documented in
//! `pkg/src/types.ts`), errors as JS `Error`s named `TabmeshError` with a stable `code`:
//!
//! | code | when |
//! |---|---|
//! | `INVALID_ARGUMENT` | a malformed id, relay address, option or argument |
//! | `BUSY` | more than [`MAX_QUEUED_CALLS`] calls are queued for one context |
//! | `UNKNOWN_CONTEXT`, `CONTEXT_EXISTS`, `TOO_MANY_CONTEXTS` | the context set |
//! | `NO_APP`, `APP_MISMATCH`, `APP_ERROR`, `UNSUPPORTED` | the app (missing, wrong, failed, asks for what is not supported) |
//! | `INVALID_INVITATION`, `INVITATION_EXPIRED`, `REFUSED` | membership and validity |
//! | `QUOTA_EXCEEDED`, `NEWER_VERSION`, `STORAGE_BLOCKED`, `STORAGE` | the store (full — the node runs on, the write held in memory; written by a newer build; its upgrade blocked by an old tab; failed) |
//! | `UNKNOWN_BLOB`, `BLOB_INVALID`, `BLOB_UNAVAILABLE`, `BLOB_FAILED` | blobs (not held here; refused as malformed, too large or damaged; nobody holding it answered; a fetch gave up) |
//! | `STOPPED`, `NETWORK`, `NODE` | the node stopped; the network could not be set up; anything else |
//!
//! What it deliberately is not: no logic of its own (no protocol, no storage format, no
//! retries); no tab coordination (leader election and proxying between tabs live in the facade,
//! which owns the JS host APIs); natively it compiles to nothing.
//!
//! ```
//! // Natively this crate is empty; in a JS host the facade calls `startNode(…)`. See pkg/.
//! ```
#![cfg(all(target_family = "wasm", target_os = "unknown"))]

mod convert;
mod error;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use serde_json::{json, Value};
use tabmesh_auth::Role;
use tabmesh_base::ContextId;
use tabmesh_net::{Node, NodeOptions};
use tabmesh_storage::{AsyncStore, BlobStore, IdbStore, MemoryBlobStore, MemoryStore};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use tabmesh_peer::control::{blob_info_json, context_state, hex, parse_blob, stats_json};

use crate::convert::{context_id, to_js};
use crate::error::{from_net, from_node, from_store, invalid, js_error};

/// Calls queued (started and not yet resolved) per context before one more is refused with
/// `BUSY`: the driver runs calls one at a time, so a caller that outpaces it learns so instead of
/// growing an unbounded queue.
pub const MAX_QUEUED_CALLS: usize = 64;

/// The longest invitation lifetime accepted: 30 days, in ms.
pub const MAX_INVITE_TTL_MS: f64 = 30.0 * 24.0 * 3600.0 * 1000.0;

/// A running node.
#[wasm_bindgen]
#[derive(Clone, Debug)]
pub struct WebNode {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node: Node,
    relay: String,
    /// Calls queued per context.
    queued: RefCell<HashMap<ContextId, usize>>,
    /// The facade's event callback.
    on_event: Function,
}

/// Starts a node and resolves once its local state is loaded (offline first: the relay is
/// dialled in the background, and redialled with backoff while it cannot be reached).
///
/// - `relay`: the relay's full address, ending with `/p2p/<relay peer id>`.
/// - `store`: `{ kind: "memory" }` (ephemeral), `{ kind: "indexeddb", name }` (the browser's
///   IndexedDB database `name`), or `{ kind: "file", fs, dir }` (Node.js: the file store in
///   directory `dir` through `fs`, the file-system object the facade builds on `node:fs`).
/// - `on_event(event)`: called with every event (objects with an `ev` field), in order.
#[wasm_bindgen(js_name = startNode)]
pub async fn start_node(
    relay: String,
    store: JsValue,
    on_event: Function,
) -> Result<WebNode, JsValue> {
    let kind = string_field(&store, "kind")?;
    match kind.as_str() {
        "memory" => run(MemoryStore::new(), MemoryBlobStore::new(), relay, on_event).await,
        "indexeddb" => {
            let name = string_field(&store, "name")?;
            let db = IdbStore::open(&name).await.map_err(from_store)?;
            let blobs = db.blob_store();
            run(db, blobs, relay, on_event).await
        }
        "file" => {
            let dir = string_field(&store, "dir")?;
            let fs = Reflect::get(&store, &"fs".into()).map_err(|_| invalid("store.fs"))?;
            let files = convert::open_file_store(fs.clone(), &dir).map_err(from_store)?;
            let blobs = tabmesh_storage::FileBlobStore::open_js(fs, &format!("{dir}/blobs"))
                .map_err(from_store)?;
            run(files, blobs, relay, on_event).await
        }
        other => Err(invalid(format!(
            "store.kind must be \"memory\", \"indexeddb\" or \"file\", not {other:?}"
        ))),
    }
}

fn blob_id(hex: &str) -> Result<tabmesh_blobs::BlobId, JsValue> {
    parse_blob(hex).ok_or_else(|| invalid(format!("{hex:?} is not a blob id (64 hex digits)")))
}

fn string_field(object: &JsValue, name: &str) -> Result<String, JsValue> {
    Reflect::get(object, &name.into())
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| invalid(format!("option {name:?} must be a string")))
}

async fn run(
    store: impl AsyncStore + 'static,
    blobs: impl BlobStore + 'static,
    relay: String,
    on_event: Function,
) -> Result<WebNode, JsValue> {
    let addr = relay
        .parse()
        .map_err(|e| invalid(format!("relay address {relay:?}: {e}")))?;
    let (node, mut events, driver) = Node::start(store, blobs, NodeOptions::new(addr))
        .await
        .map_err(from_net)?;
    let inner = Rc::new(Inner {
        node,
        relay,
        queued: RefCell::default(),
        on_event,
    });
    let weak = Rc::downgrade(&inner);
    let stopped = weak.clone();
    spawn_local(async move {
        let result = driver.await;
        if let Some(inner) = stopped.upgrade() {
            let error = result
                .err()
                .map(|e| json!({"code": error::net_code(&e), "message": e.to_string()}));
            inner.emit(&json!({"ev": "stopped", "error": error}));
        }
    });
    spawn_local(async move {
        while let Some(event) = events.next().await {
            let (Some(inner), Some(line)) =
                (weak.upgrade(), tabmesh_peer::control::event_line(event))
            else {
                continue;
            };
            inner.emit(&line);
        }
    });
    Ok(WebNode { inner })
}

impl Inner {
    fn emit(&self, event: &Value) {
        // A throwing callback is the facade's bug; it must not stop the node.
        let _ = self.on_event.call1(&JsValue::NULL, &to_js(event));
    }
}

/// Counts a queued call of a context; uncounts it when dropped.
struct Queued {
    inner: Rc<Inner>,
    context: ContextId,
}

impl Queued {
    fn enter(inner: &Rc<Inner>, context: ContextId) -> Result<Queued, JsValue> {
        let mut queued = inner.queued.borrow_mut();
        let n = queued.entry(context).or_default();
        if *n >= MAX_QUEUED_CALLS {
            return Err(js_error(
                "BUSY",
                format!("{MAX_QUEUED_CALLS} calls are already queued for this context"),
            ));
        }
        *n += 1;
        Ok(Queued {
            inner: inner.clone(),
            context,
        })
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        let mut queued = self.inner.queued.borrow_mut();
        if let Some(n) = queued.get_mut(&self.context) {
            *n -= 1;
            if *n == 0 {
                queued.remove(&self.context);
            }
        }
    }
}

#[wasm_bindgen]
impl WebNode {
    /// This node's libp2p peer id.
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.inner.node.peer_id().to_string()
    }

    /// This node's id (hex).
    #[wasm_bindgen(getter, js_name = nodeId)]
    pub fn node_id(&self) -> String {
        hex(&self.inner.node.node_id().0)
    }

    /// The relay address invitations name.
    #[wasm_bindgen(getter)]
    pub fn relay(&self) -> String {
        self.inner.relay.clone()
    }

    /// Creates a context running `app` (module bytes), initialised with `init` (the init
    /// method's JSON arguments). Resolves to its id once its genesis is durable.
    #[wasm_bindgen(js_name = createContext)]
    pub fn create_context(&self, app: Vec<u8>, init: Vec<u8>) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let (ctx, _) = node
                .call(move |core, now| core.create_context(now, Some(&app), &init))
                .await
                .map_err(from_net)?
                .map_err(from_node)?;
            Ok(hex(&ctx.0).into())
        })
    }

    /// Joins a context with an invitation link, running `app` (the module the context runs;
    /// without one the node fetches it from a member by the invitation's hash, and calls fail
    /// with `NO_APP` until it is there). Resolves to the context id; the node is a member once
    /// the `joined` event arrives.
    #[wasm_bindgen(js_name = joinContext)]
    pub fn join_context(&self, link: String, app: Option<Vec<u8>>) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let ctx = node
                .call(move |core, now| core.join_context(now, &link, app.as_deref()))
                .await
                .map_err(from_net)?
                .map_err(from_node)?;
            Ok(hex(&ctx.0).into())
        })
    }

    /// An invitation link to context `ctx` for a new member, valid for `ttl_ms`.
    pub fn invite(&self, ctx: String, ttl_ms: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let ctx = context_id(&ctx)?;
            if !(1.0..=MAX_INVITE_TTL_MS).contains(&ttl_ms) {
                return Err(invalid(format!(
                    "ttlMs must be between 1 and {MAX_INVITE_TTL_MS} ms"
                )));
            }
            let relay = inner.relay.clone();
            let link = inner
                .node
                .call(move |core, now| core.invite(ctx, Role::Member, now + ttl_ms as u64, &relay))
                .await
                .map_err(from_net)?
                .map_err(from_node)?;
            Ok(link.into())
        })
    }

    /// Calls `method` of the context's app with `args` (its JSON arguments). Resolves once the
    /// call's delta (if it wrote or emitted anything) is durable and published, to
    /// `{ ret: Uint8Array | null, delta: string | null, root: string, logs: string[],
    /// events: { kind: string, data: Uint8Array, handler: string | null }[] }`. Its delta also
    /// reaches the event callback (`applied`), like every delta applied here.
    pub fn execute(&self, ctx: String, method: String, args: Vec<u8>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let ctx = context_id(&ctx)?;
            let _queued = Queued::enter(&inner, ctx)?;
            let (out, root) = inner
                .node
                .call_app(ctx, move |core, now| {
                    let out = core.execute(now, ctx, &method, &args)?;
                    let root = core.replica(&ctx).map(|r| r.summary().root);
                    Ok::<_, tabmesh_node::NodeError>((out, root))
                })
                .await
                .map_err(from_net)?
                .map_err(from_node)?;
            convert::outcome(out, root.map(|r| r.to_hex()))
        })
    }

    /// The state of context `ctx`: `{ root, heads, applied, pending, entities, member,
    /// joining, app, peers }`.
    pub fn state(&self, ctx: String) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let ctx = context_id(&ctx)?;
            let state = node
                .call(move |core, _| context_state(core, &ctx))
                .await
                .map_err(from_net)?;
            state
                .map(|s| to_js(&s))
                .ok_or_else(|| js_error("UNKNOWN_CONTEXT", "unknown context"))
        })
    }

    /// Every context on this node, as `state` describes them (each with its `ctx`).
    pub fn contexts(&self) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let all = node
                .call(|core, _| {
                    let ids: Vec<ContextId> = core.contexts().collect();
                    ids.iter()
                        .filter_map(|ctx| context_state(core, ctx))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(from_net)?;
            Ok(to_js(&Value::Array(all)))
        })
    }

    /// The network side: `{ reserved, connected, … counters }` (see `NetStats`).
    pub fn stats(&self) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let stats = node.stats().await.map_err(from_net)?;
            Ok(to_js(&stats_json(&stats)))
        })
    }

    /// Starts a sync round of context `ctx` with its peers now (rather than at the next tick).
    #[wasm_bindgen(js_name = syncNow)]
    pub fn sync_now(&self, ctx: String) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let ctx = context_id(&ctx)?;
            node.call(move |core, now| core.sync_now(now, ctx))
                .await
                .map_err(from_net)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Starts adding a blob: `{ pin?: boolean (default true), ctx?: string }`. Resolves to the
    /// add's handle; write with `blobAddWrite`, end with `blobAddFinish` (or `blobAddAbort`).
    #[wasm_bindgen(js_name = blobAddBegin)]
    pub fn blob_add_begin(&self, pin: bool, ctx: Option<String>) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let ctx = ctx.as_deref().map(context_id).transpose()?;
            let handle = node.blob_add_begin(pin, ctx).await.map_err(from_net)?;
            Ok((handle as f64).into())
        })
    }

    /// Appends bytes to a blob being added (its full chunks are stored before this resolves, so
    /// a writer awaiting each call holds memory flat). Resolves to the bytes written so far.
    #[wasm_bindgen(js_name = blobAddWrite)]
    pub fn blob_add_write(&self, handle: f64, bytes: Vec<u8>) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let n = node
                .blob_add_write(handle as u64, bytes)
                .await
                .map_err(from_net)?;
            Ok((n as f64).into())
        })
    }

    /// Finishes a blob being added: resolves to its info (`{ blob, len, chunks, complete,
    /// pinned, contexts }`).
    #[wasm_bindgen(js_name = blobAddFinish)]
    pub fn blob_add_finish(&self, handle: f64) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let info = node
                .blob_add_finish(handle as u64)
                .await
                .map_err(from_net)?;
            Ok(to_js(&blob_info_json(&info)))
        })
    }

    /// Abandons a blob being added.
    #[wasm_bindgen(js_name = blobAddAbort)]
    pub fn blob_add_abort(&self, handle: f64) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            node.blob_add_abort(handle as u64).await.map_err(from_net)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Gets a blob whole into this node's store (at once if held), from the members of `ctx`
    /// (or of every context) that hold it. Resolves to its info; progress arrives as `blob`
    /// events.
    #[wasm_bindgen(js_name = blobFetch)]
    pub fn blob_fetch(&self, blob: String, ctx: Option<String>) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let id = blob_id(&blob)?;
            let ctx = ctx.as_deref().map(context_id).transpose()?;
            let info = node.blob_fetch(id, ctx).await.map_err(from_net)?;
            Ok(to_js(&blob_info_json(&info)))
        })
    }

    /// Chunk `index` of a blob held here, verified (a `Uint8Array` of at most 256 KiB).
    #[wasm_bindgen(js_name = blobRead)]
    pub fn blob_read(&self, blob: String, index: u32) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let id = blob_id(&blob)?;
            let bytes = node.blob_read(id, index).await.map_err(from_net)?;
            Ok(js_sys::Uint8Array::from(&bytes[..]).into())
        })
    }

    /// What is known of a blob here, or `null`.
    #[wasm_bindgen(js_name = blobInfo)]
    pub fn blob_info(&self, blob: String) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let id = blob_id(&blob)?;
            let info = node.blob_info(id).await.map_err(from_net)?;
            Ok(info.map_or(JsValue::NULL, |i| to_js(&blob_info_json(&i))))
        })
    }

    /// Every blob held here, whole or in part.
    #[wasm_bindgen(js_name = blobList)]
    pub fn blob_list(&self) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let all = node.blob_list().await.map_err(from_net)?;
            Ok(to_js(&Value::Array(
                all.iter().map(blob_info_json).collect(),
            )))
        })
    }

    /// Unpins a blob and removes it unless a context's state names it; resolves to whether it
    /// was removed.
    #[wasm_bindgen(js_name = blobDelete)]
    pub fn blob_delete(&self, blob: String) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let id = blob_id(&blob)?;
            Ok(node.blob_delete(id).await.map_err(from_net)?.into())
        })
    }

    /// Removes every unreferenced blob: `{ blobs, bytes, kept }`.
    #[wasm_bindgen(js_name = blobGc)]
    pub fn blob_gc(&self) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            let r = node.blob_gc().await.map_err(from_net)?;
            Ok(to_js(
                &json!({"blobs": r.blobs, "bytes": r.bytes, "kept": r.kept}),
            ))
        })
    }

    /// The size of this module's linear memory in bytes (it only ever grows: after a run, its
    /// peak).
    #[wasm_bindgen(js_name = memoryBytes)]
    pub fn memory_bytes(&self) -> f64 {
        wasm_bindgen::memory()
            .dyn_into::<js_sys::WebAssembly::Memory>()
            .map(|m| {
                m.buffer()
                    .unchecked_into::<js_sys::ArrayBuffer>()
                    .byte_length() as f64
            })
            .unwrap_or(0.0)
    }

    /// Stops the node (its store closes with it). Resolves once the stop is requested.
    pub fn stop(&self) -> Promise {
        let node = self.inner.node.clone();
        future_to_promise(async move {
            node.stop().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}
