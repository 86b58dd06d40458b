//! [`NodeCore`]: one node's contexts behind one sans-IO interface.

use std::collections::{BTreeMap, VecDeque};

use tabmesh_base::{
    codec::{Reader, Writer},
    ClockReport, ContextId, DeltaId, DetRng, Hlc, HlcClock, KvRead, MemberId, NodeId, WriteBatch,
};
use tabmesh_state::{State, Txn};
use tabmesh_sync::{Frame, Message, Replica, SyncConfig, SyncError, SyncEvent};

use crate::NodeError;

/// Key of the node's clock record.
const CLOCK_KEY: &[u8] = b"n/clock";
/// Prefix of the context list (one key per hosted context).
const CONTEXTS_PREFIX: &[u8] = b"n/ctx/";
/// Prefix of every context's own records: `c/<context id>/`.
const CONTEXT_DATA: &[u8] = b"c/";

/// The most contexts one node hosts.
pub const MAX_CONTEXTS: usize = 1_024;

/// Configuration of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Sync timers and bounds, for every context.
    pub sync: SyncConfig,
}

/// A timer the driver arms for the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// The next deadline of one context's sync machinery.
    Context(ContextId),
}

/// What the core asks its driver to do. Drain [`NodeCore::poll_output`] after every input and
/// handle outputs in order: a [`Output::Persist`] comes before the outputs that depend on it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Join the gossip topic of a context.
    Subscribe(ContextId),
    /// Publish on a context's topic.
    Publish {
        /// The context.
        context: ContextId,
        /// The encoded frame.
        bytes: Vec<u8>,
        /// The delta it carries (gossip deduplicates by it).
        delta: DeltaId,
    },
    /// Send to one peer.
    Send {
        /// The peer.
        to: NodeId,
        /// The encoded frame.
        bytes: Vec<u8>,
    },
    /// Persist atomically (one IndexedDB transaction, one file commit).
    Persist(WriteBatch),
    /// Arm (or move) a timer.
    ArmTimer {
        /// Which.
        key: TimerKey,
        /// When, in the driver's milliseconds.
        at_ms: u64,
    },
    /// Cancel a timer.
    CancelTimer(TimerKey),
    /// Tell subscribers.
    Notify(NodeEvent),
}

/// What subscribers hear.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// Something happened in a context's sync machinery.
    Sync {
        /// The context.
        context: ContextId,
        /// What.
        event: SyncEvent,
    },
    /// A peer's message could not be used.
    Rejected {
        /// The peer.
        from: NodeId,
        /// Why.
        error: SyncError,
    },
    /// A peer's delta carried a timestamp far ahead of our clock: accepted, and our clock did not
    /// follow it past `now + MAX_DRIFT_MS`.
    ClockFarAhead {
        /// The peer it came from.
        from: Option<NodeId>,
        /// How far ahead, in milliseconds.
        ahead_ms: u64,
    },
}

/// The sans-IO state machine of one node: its contexts, their replicas and the node's clock.
///
/// Inputs are methods (`create_context`, `commit`, `handle_message`, `handle_timer`, …), each
/// taking `now_ms`; outputs are drained with [`NodeCore::poll_output`]. It never reads a clock,
/// never draws randomness (a seed drives every choice) and does no IO: the browser, Node.js and
/// native drivers and the simulator wrap it.
#[derive(Debug)]
pub struct NodeCore {
    id: NodeId,
    config: NodeConfig,
    clock: HlcClock,
    clock_dirty: bool,
    rng: DetRng,
    contexts: BTreeMap<ContextId, Replica>,
    armed: BTreeMap<TimerKey, u64>,
    batch: WriteBatch,
    out: VecDeque<Output>,
}

impl NodeCore {
    /// A node with no stored data.
    pub fn new(id: NodeId, config: NodeConfig, seed: u64) -> NodeCore {
        NodeCore {
            id,
            config,
            clock: HlcClock::new(),
            clock_dirty: false,
            rng: DetRng::new(seed),
            contexts: BTreeMap::new(),
            armed: BTreeMap::new(),
            batch: WriteBatch::new(),
            out: VecDeque::new(),
        }
    }

    /// A node restored from everything its earlier [`Output::Persist`] batches wrote (the
    /// "storage loaded" input). Subscribes to every stored context and arms its timers.
    pub fn load(
        id: NodeId,
        config: NodeConfig,
        seed: u64,
        now_ms: u64,
        kv: &impl KvRead,
    ) -> Result<NodeCore, NodeError> {
        let mut node = NodeCore::new(id, config, seed);
        if let Some(bytes) = kv.get(CLOCK_KEY) {
            let mut r = Reader::new(&bytes)?;
            let last = Hlc::decode(&mut r)?;
            r.finish()?;
            node.clock = HlcClock::resume(last);
        }
        for (key, _) in kv.scan_prefix(CONTEXTS_PREFIX) {
            let raw = key.get(CONTEXTS_PREFIX.len()..).unwrap_or_default();
            let bytes: [u8; 32] = raw.try_into().map_err(|_| NodeError::CorruptIndex)?;
            let context = ContextId(bytes);
            let seed = node.rng.next_u64();
            let replica = Replica::open(
                context,
                &context_prefix(&context),
                node.config.sync.clone(),
                seed,
                now_ms,
                kv,
            )?;
            node.contexts.insert(context, replica);
            node.out.push_back(Output::Subscribe(context));
        }
        let contexts: Vec<ContextId> = node.contexts.keys().copied().collect();
        for c in contexts {
            node.rearm(c);
        }
        Ok(node)
    }

    // ---------------------------------------------------------------------------------------------
    // Getters.

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The member id this node writes as (its node key until per-context identities exist).
    pub fn member(&self) -> MemberId {
        MemberId(self.id.0)
    }

    /// The hosted contexts.
    pub fn contexts(&self) -> impl Iterator<Item = ContextId> + '_ {
        self.contexts.keys().copied()
    }

    /// One context's replica.
    pub fn replica(&self, context: &ContextId) -> Option<&Replica> {
        self.contexts.get(context)
    }

    /// One context's state.
    pub fn state(&self, context: &ContextId) -> Option<&State> {
        self.contexts.get(context).map(Replica::state)
    }

    /// The node's clock.
    pub fn clock(&self) -> Hlc {
        self.clock.last()
    }

    /// Every context idle: no sync session, no request in flight.
    pub fn is_idle(&self) -> bool {
        self.contexts.values().all(Replica::is_idle)
    }

    /// Some context holds deltas waiting for parents (or buffered during a snapshot).
    pub fn has_pending(&self) -> bool {
        self.contexts.values().any(Replica::has_pending)
    }

    /// Sync timers armed across contexts (request and session deadlines, pull retries).
    pub fn sync_timers_armed(&self) -> usize {
        self.contexts.values().map(Replica::sync_timers_armed).sum()
    }

    /// The next output, `None` once drained.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // ---------------------------------------------------------------------------------------------
    // Inputs.

    /// Starts hosting `context` (creating it, or joining it empty: an empty replica catches up by
    /// snapshot from the first peer with state).
    pub fn open_context(&mut self, now_ms: u64, context: ContextId) -> Result<(), NodeError> {
        if self.contexts.contains_key(&context) {
            return Ok(());
        }
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(NodeError::TooManyContexts { max: MAX_CONTEXTS });
        }
        let seed = self.rng.next_u64();
        let replica = Replica::new(
            context,
            &context_prefix(&context),
            self.config.sync.clone(),
            seed,
            now_ms,
        );
        self.contexts.insert(context, replica);
        let mut key = CONTEXTS_PREFIX.to_vec();
        key.extend_from_slice(context.as_bytes());
        self.batch.put(key, Vec::new());
        self.out.push_back(Output::Subscribe(context));
        self.finish(context);
        Ok(())
    }

    /// A peer hosting `context` is reachable (the network saw it subscribe, or connected to it).
    pub fn peer_joined(&mut self, now_ms: u64, context: ContextId, peer: NodeId) {
        if peer == self.id {
            return;
        }
        if let Some(r) = self.contexts.get_mut(&context) {
            r.add_peer(now_ms, peer);
            self.finish(context);
        }
    }

    /// A peer left `context` (unsubscribed or disconnected).
    pub fn peer_left(&mut self, now_ms: u64, context: ContextId, peer: NodeId) {
        if let Some(r) = self.contexts.get_mut(&context) {
            r.remove_peer(now_ms, peer);
            self.finish(context);
        }
    }

    /// Runs a local transaction in `context` at `now_ms` and commits it as a delta (persisted,
    /// then published). Returns `f`'s result and the delta id (`None` if it wrote nothing).
    pub fn commit<R>(
        &mut self,
        now_ms: u64,
        context: ContextId,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, SyncError>,
    ) -> Result<(R, Option<DeltaId>), NodeError> {
        let member = self.member();
        let replica = self
            .contexts
            .get_mut(&context)
            .ok_or(NodeError::UnknownContext(context))?;
        let hlc = self.clock.tick(now_ms);
        self.clock_dirty = true;
        let result = replica.commit(now_ms, member, hlc, f);
        let _ = self.clock.observe(replica.last_commit_hlc(), now_ms);
        self.finish(context);
        Ok(result?)
    }

    /// Bytes from a peer: a gossiped delta or a direct request or response.
    pub fn handle_message(&mut self, now_ms: u64, from: NodeId, bytes: &[u8]) {
        let frame = match Frame::decode(bytes) {
            Ok(frame) => frame,
            Err(error) => {
                self.out
                    .push_back(Output::Notify(NodeEvent::Rejected { from, error }));
                return;
            }
        };
        let context = frame.context;
        let Some(replica) = self.contexts.get_mut(&context) else {
            if let Message::Request { id, .. } = frame.message {
                let refusal = Frame {
                    context,
                    message: Message::Response {
                        id,
                        body: tabmesh_sync::Response::Refused(
                            tabmesh_sync::Refusal::UnknownContext,
                        ),
                    },
                };
                self.out.push_back(Output::Send {
                    to: from,
                    bytes: refusal.encode(),
                });
            }
            return;
        };
        match frame.message {
            Message::Delta(env) => {
                if let ClockReport::FarAhead { ahead_ms } = self.clock.observe(env.hlc, now_ms) {
                    self.out.push_back(Output::Notify(NodeEvent::ClockFarAhead {
                        from: Some(from),
                        ahead_ms,
                    }));
                }
                self.clock_dirty = true;
                replica.handle_delta(now_ms, Some(from), env);
            }
            Message::Request { id, body } => replica.handle_request(now_ms, from, id, body),
            Message::Response { id, body } => replica.handle_response(now_ms, from, id, body),
        }
        self.finish(context);
    }

    /// A timer fired.
    pub fn handle_timer(&mut self, now_ms: u64, key: TimerKey) {
        self.armed.remove(&key);
        match key {
            TimerKey::Context(context) => {
                if let Some(r) = self.contexts.get_mut(&context) {
                    r.handle_timeout(now_ms);
                    self.finish(context);
                }
            }
        }
    }

    /// Starts a sync session in `context` now (the app asked, or a heartbeat showed another root).
    pub fn sync_now(&mut self, now_ms: u64, context: ContextId) {
        if let Some(r) = self.contexts.get_mut(&context) {
            r.sync_now(now_ms);
            self.finish(context);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Internals.

    /// Collects a context's outputs after an input: one persist batch first (with the clock), then
    /// the rest in order, then the timer.
    fn finish(&mut self, context: ContextId) {
        let mut rest = Vec::new();
        if let Some(replica) = self.contexts.get_mut(&context) {
            while let Some(out) = replica.poll_output() {
                match out {
                    tabmesh_sync::Output::Persist(b) => self.batch.extend(b),
                    tabmesh_sync::Output::Broadcast(env) => {
                        let delta = env.id();
                        let bytes = Frame {
                            context,
                            message: Message::Delta(env),
                        }
                        .encode();
                        rest.push(Output::Publish {
                            context,
                            bytes,
                            delta,
                        });
                    }
                    tabmesh_sync::Output::Send { to, message } => {
                        rest.push(Output::Send {
                            to,
                            bytes: Frame { context, message }.encode(),
                        });
                    }
                    tabmesh_sync::Output::Event(event) => {
                        rest.push(Output::Notify(NodeEvent::Sync { context, event }));
                    }
                }
            }
        }
        if std::mem::take(&mut self.clock_dirty) {
            let mut w = Writer::new();
            self.clock.last().encode(&mut w);
            self.batch.put(CLOCK_KEY.to_vec(), w.finish());
        }
        if !self.batch.is_empty() {
            self.out
                .push_back(Output::Persist(std::mem::take(&mut self.batch)));
        }
        self.out.extend(rest);
        self.rearm(context);
    }

    fn rearm(&mut self, context: ContextId) {
        let key = TimerKey::Context(context);
        let want = self.contexts.get(&context).map(Replica::poll_timeout);
        match want {
            Some(at_ms) if self.armed.get(&key) != Some(&at_ms) => {
                self.armed.insert(key, at_ms);
                self.out.push_back(Output::ArmTimer { key, at_ms });
            }
            Some(_) => {}
            None => {
                if self.armed.remove(&key).is_some() {
                    self.out.push_back(Output::CancelTimer(key));
                }
            }
        }
    }
}

/// Where a context's records live.
fn context_prefix(context: &ContextId) -> Vec<u8> {
    let mut p = CONTEXT_DATA.to_vec();
    p.extend_from_slice(context.as_bytes());
    p.push(b'/');
    p
}
