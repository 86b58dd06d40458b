//! The Chromium page of the end-to-end tests: a tabmesh node compiled to wasm32, on a memory
//! store, speaking the native peer's JSON-lines protocol (`tabmesh_peer::control`), so the tests
//! drive a page exactly as they drive a native peer (through `tests/e2e/chromium.mjs`).
//!
//! Exports: `start(relay, db?)` (resolves once the node runs; on IndexedDB database `db`, else in
//! memory), `command(line, app?)` (one command,
//! resolves to its reply line), `take_events()` (the event lines since the last call).
//!
//! What it deliberately is not: the npm package (that is `crates/web` and `pkg/`).
#![cfg(all(target_family = "wasm", target_os = "unknown"))]

use std::cell::RefCell;

use serde_json::{json, Value};
use tabmesh_net::{Node, NodeOptions};
use tabmesh_peer::control;
use tabmesh_storage::{AsyncStore, IdbStore, MemoryStore};
use wasm_bindgen::prelude::*;

thread_local! {
    static NODE: RefCell<Option<(Node, String)>> = const { RefCell::new(None) };
    static EVENTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn push(line: Value) {
    EVENTS.with(|e| e.borrow_mut().push(control::stamp(line)));
}

/// Starts the node, connecting to `relay`, on IndexedDB database `db` (a restart resumes from
/// it) or, without one, in memory.
#[wasm_bindgen]
pub async fn start(relay: String, db: Option<String>) -> Result<(), JsError> {
    match db {
        Some(name) => {
            let store = IdbStore::open(&name)
                .await
                .map_err(|e| JsError::new(&e.to_string()))?;
            run(store, relay).await
        }
        None => run(MemoryStore::new(), relay).await,
    }
}

async fn run(store: impl AsyncStore + 'static, relay: String) -> Result<(), JsError> {
    let addr = relay.parse().map_err(|e| JsError::new(&format!("{e}")))?;
    let (node, mut events, driver) = Node::start(store, NodeOptions::new(addr))
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = driver.await {
            push(json!({"ev": "stopped", "error": e.to_string()}));
        }
    });
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = events.next().await {
            if let Some(line) = control::event_line(event) {
                push(line);
            }
        }
    });
    push(control::ready_line(&node));
    NODE.with(|n| *n.borrow_mut() = Some((node, relay)));
    Ok(())
}

/// Runs one command line; resolves to the reply line.
#[wasm_bindgen]
pub async fn command(line: String, app: Option<Vec<u8>>) -> String {
    let request: Value = match serde_json::from_str(&line) {
        Ok(v) => v,
        Err(e) => return json!({"err": format!("bad command line: {e}")}).to_string(),
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some((node, relay)) = NODE.with(|n| n.borrow().clone()) else {
        return json!({"id": id, "err": "the node is not started"}).to_string();
    };
    let reply = match control::command(&node, &relay, &request, app).await {
        Ok(ok) => json!({"id": id, "ok": ok}),
        Err(e) => json!({"id": id, "err": format!("{e:#}")}),
    };
    control::stamp(reply)
}

/// The event lines since the last call, newline-separated.
#[wasm_bindgen]
pub fn take_events() -> String {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()).join("\n"))
}
