//! `tabmesh-bench-wasm`: the wasm-bindgen exports the side-by-side benchmarks
//! (`tests/e2e/bench/`, `scripts/bench-compare.sh`) run in Chromium and Node.js beside Yjs,
//! Automerge and Loro.
//!
//! - [`TextDoc`] and [`MapDoc`]: the text and map CRDTs of `tabmesh-state` directly, one
//!   transaction per edit, its actions encoded as the update another replica applies. What the
//!   libraries' documents are: no delta envelope, no signature, no encryption, no DAG.
//! - [`Pair`]: two real [`NodeCore`]s (node 1 created the context, node 2 joined it by
//!   invitation), so a workload runs what a node runs — app calls in wasmi, signed and sealed
//!   deltas, the DAG, the Merkle index, the sync protocol — with every sealed byte counted and no
//!   transport. It reuses the node tests' in-process network (`crates/node/tests/it/net.rs`).
//!
//! What it deliberately is not: shipped (it is in no package), or a second API (the npm package
//! is the API); natively it compiles to nothing. Nothing here reads a clock: the virtual time
//! steps 10 ms per input, so runs are deterministic and only the caller's timer measures.
//!
//! ```
//! // Natively this crate is empty; tests/e2e/bench/adapters.js calls `new TextDoc(1)`, …
//! ```
#![cfg(all(target_family = "wasm", target_os = "unknown"))]

#[path = "../../node/tests/it/net.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::all
)]
mod net;

use serde_json::json;
use tabmesh_auth::Role;
use tabmesh_base::{HlcClock, MemberId};
use tabmesh_node::{NodeConfig, NodeCore, Output};
use tabmesh_state::{decode_actions, encode_actions, Action, State};
use tabmesh_sync::SyncEvent;
use wasm_bindgen::prelude::*;

use crate::net::Net;

/// The state prefix of the documents (any prefix: nothing is stored).
const PREFIX: &[u8] = b"bench/";

/// Entities encoded per chunk when sizing a document (under `tabmesh_state::MAX_ACTIONS`).
const SIZE_CHUNK: usize = 4_096;

/// Most rounds of 1 s of virtual time [`Pair::catch_up`] lets pass before it gives up.
const CATCH_UP_ROUNDS: u32 = 120;

/// The wasm linear memory in bytes (it never shrinks: its size is the peak).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    let buffer: js_sys::ArrayBuffer = memory.buffer().unchecked_into();
    f64::from(buffer.byte_length())
}

/// One replica of a `tabmesh-state` document, written by member `[author; 32]`.
#[derive(Debug)]
struct Doc {
    state: State,
    author: MemberId,
    clock: HlcClock,
    /// The virtual time of the next transaction (ms; one step per transaction).
    now: u64,
}

impl Doc {
    fn new(author: u8) -> Doc {
        Doc {
            state: State::new(PREFIX),
            author: MemberId([author; 32]),
            clock: HlcClock::new(),
            now: 0,
        }
    }

    /// Runs one transaction and returns its actions encoded (the update).
    fn write(
        &mut self,
        f: impl FnOnce(&mut tabmesh_state::Txn<'_>) -> Result<(), tabmesh_state::StateError>,
    ) -> Result<Vec<u8>, JsError> {
        self.now += 1;
        let mut txn = self.state.txn(self.author, self.clock.tick(self.now));
        f(&mut txn)?;
        Ok(encode_actions(&txn.commit().actions)?)
    }

    fn apply(&mut self, update: &[u8]) -> Result<(), JsError> {
        self.state.apply(&decode_actions(update)?)?;
        Ok(())
    }

    /// The whole state encoded as a snapshot ships it (every entity's full state), in bytes.
    fn size(&self) -> Result<f64, JsError> {
        let entities: Vec<Action> = self.state.entities().cloned().collect();
        let mut bytes = 0;
        for chunk in entities.chunks(SIZE_CHUNK) {
            bytes += encode_actions(chunk)?.len();
        }
        Ok(bytes as f64)
    }
}

/// The methods both documents share (wasm-bindgen exports no trait methods).
macro_rules! doc_methods {
    ($doc:ident) => {
        #[wasm_bindgen]
        impl $doc {
            /// Applies another replica's update.
            pub fn apply(&mut self, update: &[u8]) -> Result<(), JsError> {
                self.0.apply(update)
            }

            /// The state's size as a snapshot (bytes).
            #[wasm_bindgen(js_name = docBytes)]
            pub fn doc_bytes(&self) -> Result<f64, JsError> {
                self.0.size()
            }

            /// The Merkle root (hex).
            pub fn root(&self) -> String {
                self.0.state.root_hash().to_hex()
            }
        }
    };
}

/// The value of `key` in the map field `m` of `state`.
fn map_value(state: &State, key: &str) -> Result<Option<String>, JsError> {
    Ok(state
        .map("m")?
        .get(key.as_bytes())
        .map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// A text document (`tabmesh-state`'s RGA text, positions in characters).
#[wasm_bindgen]
#[derive(Debug)]
pub struct TextDoc(Doc);

#[wasm_bindgen]
impl TextDoc {
    /// An empty document written by member `[author; 32]`.
    #[wasm_bindgen(constructor)]
    pub fn new(author: u8) -> TextDoc {
        TextDoc(Doc::new(author))
    }

    /// One transaction: deletes `del` characters at `pos`, then inserts `ins` there. Returns the
    /// update.
    pub fn edit(&mut self, pos: usize, del: usize, ins: &str) -> Result<Vec<u8>, JsError> {
        self.0.write(|txn| {
            let mut text = txn.text("doc")?;
            if del > 0 {
                text.delete(pos, del)?;
            }
            if !ins.is_empty() {
                text.insert(pos, ins)?;
            }
            Ok(())
        })
    }

    /// The text.
    pub fn text(&self) -> Result<String, JsError> {
        Ok(self.0.state.text("doc")?.to_string())
    }

    /// Its length in characters.
    #[wasm_bindgen(js_name = len)]
    pub fn char_count(&self) -> Result<usize, JsError> {
        Ok(self.0.state.text("doc")?.len())
    }
}

doc_methods!(TextDoc);

/// A map document: keys `k{i}`, values `v{i}` in the map field `m`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct MapDoc(Doc);

#[wasm_bindgen]
impl MapDoc {
    /// An empty map written by member `[author; 32]`.
    #[wasm_bindgen(constructor)]
    pub fn new(author: u8) -> MapDoc {
        MapDoc(Doc::new(author))
    }

    /// One transaction setting `k{i}` = `v{i}` for `i` in `start..start + n`. Returns the update.
    #[wasm_bindgen(js_name = setRange)]
    pub fn set_range(&mut self, start: u32, n: u32) -> Result<Vec<u8>, JsError> {
        self.0.write(|txn| {
            let mut map = txn.map("m")?;
            for i in start..start + n {
                map.insert(format!("k{i}").as_bytes(), format!("v{i}").as_bytes())?;
            }
            Ok(())
        })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<String>, JsError> {
        map_value(&self.0.state, key)
    }

    /// Its number of entries.
    #[wasm_bindgen(js_name = len)]
    pub fn entry_count(&self) -> Result<usize, JsError> {
        Ok(self.0.state.map("m")?.len())
    }
}

doc_methods!(MapDoc);

/// Two nodes in one context: node 0 created it (running `app`, or plain state without one) and
/// node 1 joined it by invitation.
///
/// Two ways to drive it, not to be mixed on one pair:
/// - **direct** ([`Pair::execute`], [`Pair::commit_range`], [`Pair::deliver`]): node 0 writes,
///   its published frames are kept, and `deliver` hands them to node 1 in order — the gossip
///   path without transport or timers (node 1's requests, if any, go nowhere);
/// - **network** ([`Pair::populate`], [`Pair::change_one`], [`Pair::miss_writes`],
///   [`Pair::catch_up`]): every output goes through the in-process network, which counts every
///   sealed frame: what a catch-up costs in messages, bytes and round trips.
#[wasm_bindgen]
pub struct Pair {
    net: Net,
    /// Frames node 0 published in direct mode, not yet delivered.
    kept: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("kept", &self.kept.len())
            .finish()
    }
}

fn node_error(e: tabmesh_node::NodeError) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl Pair {
    /// The pair; `merkle` makes their sync compare Merkle tries whatever the gap
    /// (`delta_gap_threshold` 0: what runs once deltas are compacted away).
    #[wasm_bindgen(constructor)]
    pub fn new(app: Option<Vec<u8>>, init: &str, merkle: bool) -> Result<Pair, JsError> {
        let mut config = NodeConfig::default();
        if merkle {
            config.sync.delta_gap_threshold = 0;
        }
        let mut net = Net::with_nodes(vec![
            net::node_with(1, config.clone()),
            net::node_with(2, config),
        ]);
        let now = net.tick();
        let (ctx, _) = net.nodes[0]
            .create_context(now, app.as_deref(), init.as_bytes())
            .map_err(node_error)?;
        net.ctx = ctx;
        net.pump();
        net.join(1, 0, Role::Member, app.as_deref());
        Ok(Pair {
            net,
            kept: Vec::new(),
        })
    }

    /// Direct mode: node 0 runs app method `method` with JSON `args` (one delta if it writes).
    /// Returns the bytes it published (kept for [`Pair::deliver`]).
    pub fn execute(&mut self, method: &str, args: &str) -> Result<f64, JsError> {
        let now = self.net.tick();
        let ctx = self.net.ctx;
        self.net.nodes[0]
            .execute(now, ctx, method, args.as_bytes())
            .map_err(node_error)?;
        Ok(self.keep())
    }

    /// Direct mode, plain context: one delta on node 0 setting `k{i}` = `v{i}` for `i` in
    /// `start..start + n`. Returns the bytes it published (kept for [`Pair::deliver`]).
    #[wasm_bindgen(js_name = commitRange)]
    pub fn commit_range(&mut self, start: u32, n: u32) -> Result<f64, JsError> {
        let now = self.net.tick();
        write_range(&mut self.net.nodes[0], now, self.net.ctx, start, n, "v")?;
        Ok(self.keep())
    }

    /// Direct mode: node 1 handles every kept frame, in order. Returns how many.
    pub fn deliver(&mut self) -> u32 {
        let from = self.net.nodes[0].id();
        let kept = std::mem::take(&mut self.kept);
        for frame in &kept {
            let now = self.net.tick();
            self.net.nodes[1].handle_message(now, from, frame);
            while self.net.nodes[1].poll_output().is_some() {}
        }
        u32::try_from(kept.len()).unwrap_or(u32::MAX)
    }

    /// Whether both nodes' state roots are equal.
    #[wasm_bindgen(js_name = rootsEqual)]
    pub fn roots_equal(&self) -> bool {
        self.net.root(0) == self.net.root(1)
    }

    /// Runs app method `method` with JSON `args` on node `i` and returns its value as text
    /// (a read: nothing it might output is kept).
    pub fn read(&mut self, i: usize, method: &str, args: &str) -> Result<String, JsError> {
        let now = self.net.tick();
        let ctx = self.net.ctx;
        let node = self.node(i)?;
        let out = node
            .execute(now, ctx, method, args.as_bytes())
            .map_err(node_error)?;
        while node.poll_output().is_some() {}
        Ok(String::from_utf8_lossy(&out.return_value.unwrap_or_default()).into_owned())
    }

    /// Plain context: the value of `key` in the map `m` on node `i`.
    pub fn get(&self, i: usize, key: &str) -> Result<Option<String>, JsError> {
        let state = self
            .net
            .nodes
            .get(i)
            .and_then(|n| n.state(&self.net.ctx))
            .ok_or_else(|| JsError::new("no such node"))?;
        map_value(state, key)
    }

    /// Network mode, plain context: node 0 writes `k0..k{n-1}` in deltas of `per_delta` keys,
    /// each delivered to node 1.
    pub fn populate(&mut self, n: u32, per_delta: u32) -> Result<(), JsError> {
        let per_delta = per_delta.max(1);
        let mut start = 0;
        while start < n {
            let count = per_delta.min(n - start);
            self.net_write(start, count, "v")?;
            start += count;
        }
        Ok(())
    }

    /// Network mode: node 1 goes offline and node 0 overwrites `key` (`k{key}`). Returns the
    /// bytes node 1 missed.
    #[wasm_bindgen(js_name = changeOne)]
    pub fn change_one(&mut self, key: u32) -> Result<f64, JsError> {
        self.net.set_offline(1, true);
        let mark = self.net.wire.len();
        self.net_write(key, 1, "changed-")?;
        Ok(self.published_since(mark))
    }

    /// Network mode: node 1 goes offline and node 0 writes `k` deltas of one key each
    /// (`k{start}`…). Returns the bytes node 1 missed (the sum of the published deltas).
    #[wasm_bindgen(js_name = missWrites)]
    pub fn miss_writes(&mut self, start: u32, k: u32) -> Result<f64, JsError> {
        self.net.set_offline(1, true);
        let mark = self.net.wire.len();
        for i in start..start + k {
            self.net_write(i, 1, "v")?;
        }
        Ok(self.published_since(mark))
    }

    /// Network mode: node 1 comes back and starts a sync session (what a reconnect does); the
    /// network runs until both roots are equal (virtual time passing 1 s at a time for the
    /// periodic syncs, bounded). Returns JSON `{messages, bytes, round_trips, protocol}`: every sealed frame between the two from then on (transport framing
    /// excluded); round trips are node 1's requests.
    #[wasm_bindgen(js_name = catchUp)]
    pub fn catch_up(&mut self) -> String {
        let mark = self.net.wire.len();
        let events = self.net.events[1].len();
        self.net.set_offline(1, false);
        let now = self.net.tick();
        let ctx = self.net.ctx;
        self.net.nodes[1].sync_now(now, ctx);
        self.net.pump();
        for _ in 0..CATCH_UP_ROUNDS {
            if self.roots_equal() {
                break;
            }
            self.net.advance(1_000);
        }
        let to_0 = self.net.nodes[0].id();
        let sent = &self.net.wire[mark..];
        let protocols: Vec<String> = self
            .net
            .events_since(1, events)
            .iter()
            .filter_map(|e| match e {
                tabmesh_node::NodeEvent::Sync {
                    event: SyncEvent::SessionEnded { protocol, .. },
                    ..
                } => Some(format!("{protocol:?}")),
                _ => None,
            })
            .collect();
        json!({
            "messages": sent.len(),
            "bytes": sent.iter().map(|s| s.bytes.len()).sum::<usize>(),
            "round_trips": sent.iter().filter(|s| s.from == 1 && s.to == Some(to_0)).count(),
            "protocol": protocols,
        })
        .to_string()
    }
}

impl Pair {
    fn node(&mut self, i: usize) -> Result<&mut NodeCore, JsError> {
        self.net
            .nodes
            .get_mut(i)
            .ok_or_else(|| JsError::new("no such node"))
    }

    /// Node 0's published frames, kept; returns their bytes (everything else it output dropped).
    fn keep(&mut self) -> f64 {
        let mut bytes = 0;
        while let Some(out) = self.net.nodes[0].poll_output() {
            if let Output::Publish { bytes: frame, .. } = out {
                bytes += frame.len();
                self.kept.push(frame);
            }
        }
        bytes as f64
    }

    /// Network mode: one delta on node 0 setting keys `start..start + n` to `{prefix}{i}`, then
    /// the network runs until quiet.
    fn net_write(&mut self, start: u32, n: u32, prefix: &str) -> Result<(), JsError> {
        self.net.tick();
        let now = self.net.local(0);
        write_range(&mut self.net.nodes[0], now, self.net.ctx, start, n, prefix)?;
        self.net.pump();
        Ok(())
    }

    /// Bytes node 0 published since wire entry `mark`.
    fn published_since(&self, mark: usize) -> f64 {
        self.net.wire[mark..]
            .iter()
            .filter(|s| s.from == 0 && s.to.is_none())
            .map(|s| s.bytes.len() as f64)
            .sum()
    }
}

/// One delta on `node` setting `k{i}` = `{prefix}{i}` in the map `m` for `i` in `start..start+n`.
fn write_range(
    node: &mut NodeCore,
    now: u64,
    ctx: tabmesh_base::ContextId,
    start: u32,
    n: u32,
    prefix: &str,
) -> Result<(), JsError> {
    node.commit(now, ctx, |txn| {
        let mut map = txn.map("m")?;
        for i in start..start + n {
            map.insert(
                format!("k{i}").as_bytes(),
                format!("{prefix}{i}").as_bytes(),
            )?;
        }
        Ok(())
    })
    .map_err(node_error)?;
    Ok(())
}
