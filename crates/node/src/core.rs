//! [`NodeCore`]: one node's contexts behind one sans-IO interface.

use std::collections::{BTreeMap, VecDeque};

use tabmesh_base::{
    codec::{Reader, Writer},
    ClockReport, ContextId, DeltaId, DetRng, Hash, Hlc, HlcClock, KvRead, MemberId, NodeId,
    WriteBatch,
};
use tabmesh_runtime::abi::INIT_HOOK;
use tabmesh_runtime::{Limits, Runtime};
use tabmesh_state::{State, Txn};
use tabmesh_sync::{
    AppEvent, DueHandler, Frame, Message, Replica, SyncConfig, SyncError, SyncEvent, MAX_HOPS,
};

use crate::app::{call_seed, TxnHost};
use crate::NodeError;

/// Key of the node's clock record.
const CLOCK_KEY: &[u8] = b"n/clock";
/// Prefix of the context list (one key per hosted context).
const CONTEXTS_PREFIX: &[u8] = b"n/ctx/";
/// Prefix of every context's own records: `c/<context id>/`.
const CONTEXT_DATA: &[u8] = b"c/";
/// Prefix of stored app modules: `n/app/<SHA-256 of the module>` → its bytes.
const APPS_PREFIX: &[u8] = b"n/app/";

/// Default of [`NodeConfig::handlers_per_input`]: most due handlers one input runs, so one input
/// never does unbounded work; the rest run when [`TimerKey::Handlers`] fires (armed for "now").
pub const MAX_HANDLERS_PER_INPUT: usize = 1_024;

/// The most contexts one node hosts.
pub const MAX_CONTEXTS: usize = 1_024;

/// Configuration of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Sync timers and bounds, for every context.
    pub sync: SyncConfig,
    /// Bounds of every app call (fuel, memory, module size, …).
    pub limits: Limits,
    /// Most due handlers one input runs (default [`MAX_HANDLERS_PER_INPUT`], at least 1).
    pub handlers_per_input: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            sync: SyncConfig::default(),
            limits: Limits::default(),
            handlers_per_input: MAX_HANDLERS_PER_INPUT,
        }
    }
}

/// A timer the driver arms for the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// The next deadline of one context's sync machinery.
    Context(ContextId),
    /// Event handlers are still due after an input ran its share
    /// ([`NodeConfig::handlers_per_input`]): armed for "now", so the rest run on the next turn of the
    /// driver's loop instead of waiting for unrelated input.
    Handlers,
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
    /// A handler ran for an event of a remote delta (at least once per event and member; exactly
    /// once unless the node crashed between running it and persisting its delta).
    HandlerRan {
        /// The context.
        context: ContextId,
        /// The delta whose event named the handler.
        cause: DeltaId,
        /// The event's position in it.
        index: u16,
        /// The handler.
        handler: String,
        /// The delta the handler wrote, if it wrote or emitted anything.
        delta: Option<DeltaId>,
        /// Its log lines.
        logs: Vec<String>,
    },
    /// A handler failed or was dropped (its chain is too long): it is not retried, nothing it
    /// wrote was kept.
    HandlerFailed {
        /// The context.
        context: ContextId,
        /// The delta whose event named the handler.
        cause: DeltaId,
        /// The event's position in it.
        index: u16,
        /// The handler.
        handler: String,
        /// Why.
        error: NodeError,
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
    runtime: Runtime,
    /// The app module each context runs here (absent: opened without one).
    apps: BTreeMap<ContextId, Hash>,
    /// Module bytes by hash (to reload one the runtime's cache evicted).
    modules: BTreeMap<Hash, Vec<u8>>,
    /// Due handlers to run, in the order they became due.
    due: VecDeque<(ContextId, DueHandler)>,
    /// Due handlers of contexts without an app here: they run once one is attached.
    parked: Vec<(ContextId, DueHandler)>,
    /// Set while due handlers run (they are not started again from inside).
    running_due: bool,
}

/// What a successful [`NodeCore::execute`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOutcome {
    /// What the app returned, if anything.
    pub return_value: Option<Vec<u8>>,
    /// The delta the call became (`None`: it neither wrote nor emitted anything).
    pub delta: Option<DeltaId>,
    /// Its log lines.
    pub logs: Vec<String>,
    /// Its events (sealed into the delta).
    pub events: Vec<AppEvent>,
}

/// Which entry point of the app a call runs.
#[derive(Clone, Copy, Debug)]
enum Entry<'a> {
    Method(&'a str),
    Hook(&'a str),
}

impl NodeCore {
    /// A node with no stored data.
    pub fn new(id: NodeId, config: NodeConfig, seed: u64) -> NodeCore {
        NodeCore {
            id,
            runtime: Runtime::new(config.limits.clone()),
            config,
            clock: HlcClock::new(),
            clock_dirty: false,
            rng: DetRng::new(seed),
            contexts: BTreeMap::new(),
            armed: BTreeMap::new(),
            batch: WriteBatch::new(),
            out: VecDeque::new(),
            apps: BTreeMap::new(),
            modules: BTreeMap::new(),
            due: VecDeque::new(),
            parked: Vec::new(),
            running_due: false,
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
        for (key, value) in kv.scan_prefix(CONTEXTS_PREFIX) {
            let raw = key.get(CONTEXTS_PREFIX.len()..).unwrap_or_default();
            let bytes: [u8; 32] = raw.try_into().map_err(|_| NodeError::CorruptIndex)?;
            let context = ContextId(bytes);
            if !value.is_empty() {
                let hash: [u8; 32] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| NodeError::CorruptIndex)?;
                let app = Hash(hash);
                if !node.modules.contains_key(&app) {
                    let module = kv
                        .get(&app_key(&app))
                        .ok_or(NodeError::MissingModule(app))?;
                    node.runtime.load(&module)?;
                    node.modules.insert(app, module);
                }
                node.apps.insert(context, app);
            }
            let seed = node.rng.next_u64();
            let mut replica = Replica::open(
                context,
                &context_prefix(&context),
                node.config.sync.clone(),
                seed,
                now_ms,
                kv,
            )?;
            replica.set_member(node.member());
            node.contexts.insert(context, replica);
            node.out.push_back(Output::Subscribe(context));
        }
        let contexts: Vec<ContextId> = node.contexts.keys().copied().collect();
        for c in contexts {
            // Due records left by the previous life run again (at least once).
            node.take_due(c);
            node.rearm(c);
        }
        node.run_due(now_ms);
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

    /// The app module a context runs here (its SHA-256), if it has one.
    pub fn app(&self, context: &ContextId) -> Option<Hash> {
        self.apps.get(context).copied()
    }

    /// The app runtime (its cache statistics, the methods of a loaded module).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Due handlers not run yet (waiting for the next input, or for an app to be attached).
    pub fn due_handlers(&self) -> usize {
        self.due.len() + self.parked.len()
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
        self.insert_replica(now_ms, context);
        self.batch.put(context_key(&context), Vec::new());
        self.out.push_back(Output::Subscribe(context));
        self.finish(context);
        Ok(())
    }

    /// Creates `context` running the app `module` (validated and compiled; at most
    /// [`Limits::max_module_bytes`]). The module is stored under `n/app/<hash>` and the context
    /// records its hash. If the module exports the init hook
    /// ([`INIT_HOOK`](tabmesh_runtime::abi::INIT_HOOK)), it runs once, here, with `args` as its
    /// input, and its writes are the context's genesis delta; if it fails, nothing is created.
    pub fn create_context(
        &mut self,
        now_ms: u64,
        context: ContextId,
        module: &[u8],
        args: &[u8],
    ) -> Result<ExecOutcome, NodeError> {
        if self.contexts.contains_key(&context) {
            return Err(NodeError::ContextExists(context));
        }
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(NodeError::TooManyContexts { max: MAX_CONTEXTS });
        }
        let app = self.runtime.load(module)?;
        self.insert_replica(now_ms, context);
        self.apps.insert(context, app);
        let stored = self.modules.contains_key(&app);
        self.modules.entry(app).or_insert_with(|| module.to_vec());
        match self.call(now_ms, context, Entry::Hook(INIT_HOOK), args, 0, None) {
            Ok(outcome) => {
                self.record_app(context, app, module, stored);
                self.out.push_back(Output::Subscribe(context));
                self.finish(context);
                Ok(outcome)
            }
            Err(e) => {
                self.contexts.remove(&context);
                self.apps.remove(&context);
                if !stored && !self.apps.values().any(|a| *a == app) {
                    self.modules.remove(&app);
                }
                Err(e)
            }
        }
    }

    /// Joins `context` (or attaches an app to a context opened without one) running the app
    /// `module`: validated, compiled and stored like [`NodeCore::create_context`] does, but the
    /// init hook never runs (the context's initial state arrives from its members). If the
    /// context already runs an app here, `module` must be the same one
    /// ([`NodeError::AppMismatch`]). Due handlers waiting for an app run now.
    pub fn join_context(
        &mut self,
        now_ms: u64,
        context: ContextId,
        module: &[u8],
    ) -> Result<(), NodeError> {
        if let Some(expected) = self.apps.get(&context) {
            let found = Hash::of(module);
            if found != *expected {
                return Err(NodeError::AppMismatch {
                    expected: *expected,
                    found,
                });
            }
            return Ok(());
        }
        if !self.contexts.contains_key(&context) && self.contexts.len() >= MAX_CONTEXTS {
            return Err(NodeError::TooManyContexts { max: MAX_CONTEXTS });
        }
        let app = self.runtime.load(module)?;
        if !self.contexts.contains_key(&context) {
            self.insert_replica(now_ms, context);
            self.out.push_back(Output::Subscribe(context));
        }
        let stored = self.modules.contains_key(&app);
        self.modules.entry(app).or_insert_with(|| module.to_vec());
        self.apps.insert(context, app);
        self.record_app(context, app, module, stored);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(c, _)| *c == context);
        self.parked = waiting;
        self.due.extend(ready);
        self.finish(context);
        self.run_due(now_ms);
        Ok(())
    }

    /// Calls `method` of the context's app with `input` at `now_ms`. The app's storage
    /// operations run in one transaction: on success its writes and events become one delta of
    /// this node (persisted, then published; none if it neither wrote nor emitted anything); on
    /// any error nothing it did is kept. The app sees `now_ms` as the time, and random bytes from
    /// a generator seeded by the context, the delta's parents and its HLC.
    pub fn execute(
        &mut self,
        now_ms: u64,
        context: ContextId,
        method: &str,
        input: &[u8],
    ) -> Result<ExecOutcome, NodeError> {
        let result = self.call(now_ms, context, Entry::Method(method), input, 0, None);
        if self.contexts.contains_key(&context) {
            self.finish(context);
        }
        result
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
        self.run_due(now_ms);
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
        self.run_due(now_ms);
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
            TimerKey::Handlers => {}
        }
        self.run_due(now_ms);
    }

    /// Starts a sync session in `context` now (the app asked, or a heartbeat showed another root).
    pub fn sync_now(&mut self, now_ms: u64, context: ContextId) {
        if let Some(r) = self.contexts.get_mut(&context) {
            r.sync_now(now_ms);
            self.finish(context);
        }
        self.run_due(now_ms);
    }

    // ---------------------------------------------------------------------------------------------
    // Internals.

    fn insert_replica(&mut self, now_ms: u64, context: ContextId) {
        let seed = self.rng.next_u64();
        let mut replica = Replica::new(
            context,
            &context_prefix(&context),
            self.config.sync.clone(),
            seed,
            now_ms,
        );
        replica.set_member(self.member());
        self.contexts.insert(context, replica);
    }

    /// Records (into the pending batch) that `context` runs `app`, storing the module unless it
    /// is stored already.
    fn record_app(&mut self, context: ContextId, app: Hash, module: &[u8], stored: bool) {
        if !stored {
            self.batch.put(app_key(&app), module.to_vec());
        }
        self.batch
            .put(context_key(&context), app.as_bytes().to_vec());
    }

    /// One app call in `context` as a delta of this node with handler hop `hop`, completing the
    /// due handler `completes` in the same batch. The caller collects the outputs (`finish`).
    fn call(
        &mut self,
        now_ms: u64,
        context: ContextId,
        entry: Entry<'_>,
        input: &[u8],
        hop: u8,
        completes: Option<&DueHandler>,
    ) -> Result<ExecOutcome, NodeError> {
        let member = self.member();
        let app = *self.apps.get(&context).ok_or(NodeError::NoApp(context))?;
        if !self.runtime.contains(&app) {
            let module = self
                .modules
                .get(&app)
                .ok_or(NodeError::MissingModule(app))?;
            self.runtime.load(module)?;
        }
        let replica = self
            .contexts
            .get_mut(&context)
            .ok_or(NodeError::UnknownContext(context))?;
        let hlc = self.clock.tick(now_ms);
        self.clock_dirty = true;
        let mut parents = replica.dag().heads();
        parents.truncate(tabmesh_dag::MAX_PARENTS);
        let rng = DetRng::new(call_seed(&context, &parents, hlc));
        let runtime = &mut self.runtime;
        let result = replica.commit_with(now_ms, member, hlc, hop, completes, |txn| {
            let mut host = TxnHost {
                txn,
                context,
                executor: member,
                now_ms,
                rng,
            };
            let outcome = match entry {
                Entry::Method(m) => runtime.execute(app, m, input, &mut host)?,
                Entry::Hook(h) => runtime
                    .execute_hook(app, h, input, &mut host)?
                    .unwrap_or_default(),
            };
            let events: Vec<AppEvent> = outcome
                .events
                .iter()
                .map(|e| AppEvent {
                    kind: e.kind.clone(),
                    data: e.data.clone(),
                    handler: e.handler.clone(),
                })
                .collect();
            Ok::<_, NodeError>((outcome, events))
        });
        let _ = self.clock.observe(replica.last_commit_hlc(), now_ms);
        let (outcome, delta) = result?;
        let events = outcome
            .events
            .into_iter()
            .map(|e| AppEvent {
                kind: e.kind,
                data: e.data,
                handler: e.handler,
            })
            .collect();
        Ok(ExecOutcome {
            return_value: outcome.return_value,
            delta,
            logs: outcome.logs,
            events,
        })
    }

    /// Queues the handlers a context's replica made due.
    fn take_due(&mut self, context: ContextId) {
        if let Some(r) = self.contexts.get_mut(&context) {
            let due = r.take_due();
            if self.apps.contains_key(&context) {
                self.due.extend(due.into_iter().map(|d| (context, d)));
            } else {
                self.parked.extend(due.into_iter().map(|d| (context, d)));
            }
        }
    }

    /// Runs due handlers (at most [`NodeConfig::handlers_per_input`]), each as a delta of this node that
    /// also deletes its due record; a failed or over-hop handler is reported and its record
    /// deleted.
    fn run_due(&mut self, now_ms: u64) {
        if self.running_due {
            return;
        }
        self.running_due = true;
        let mut ran = 0;
        while ran < self.config.handlers_per_input.max(1) {
            let Some((context, due)) = self.due.pop_front() else {
                break;
            };
            ran += 1;
            let handler = due.event.handler.clone().unwrap_or_default();
            let hop = u16::from(due.hop) + 1;
            let result = match u8::try_from(hop) {
                Ok(hop) if hop <= MAX_HOPS => self.call(
                    now_ms,
                    context,
                    Entry::Method(&handler),
                    &due.event.data,
                    hop,
                    Some(&due),
                ),
                _ => Err(NodeError::HopLimit {
                    handler: handler.clone(),
                    hop,
                    max: MAX_HOPS,
                }),
            };
            let event = match result {
                Ok(outcome) => NodeEvent::HandlerRan {
                    context,
                    cause: due.delta,
                    index: due.index,
                    handler,
                    delta: outcome.delta,
                    logs: outcome.logs,
                },
                Err(error) => {
                    if let Some(r) = self.contexts.get_mut(&context) {
                        r.complete_due(&due);
                    }
                    NodeEvent::HandlerFailed {
                        context,
                        cause: due.delta,
                        index: due.index,
                        handler,
                        error,
                    }
                }
            };
            self.finish(context);
            self.out.push_back(Output::Notify(event));
        }
        self.running_due = false;
        if !self.due.is_empty() && !self.armed.contains_key(&TimerKey::Handlers) {
            self.armed.insert(TimerKey::Handlers, now_ms);
            self.out.push_back(Output::ArmTimer {
                key: TimerKey::Handlers,
                at_ms: now_ms,
            });
        }
    }

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
        self.take_due(context);
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

/// The key of a context in the context list (its value: the app's hash, or empty).
fn context_key(context: &ContextId) -> Vec<u8> {
    let mut key = CONTEXTS_PREFIX.to_vec();
    key.extend_from_slice(context.as_bytes());
    key
}

/// The key of a stored app module.
fn app_key(app: &Hash) -> Vec<u8> {
    let mut key = APPS_PREFIX.to_vec();
    key.extend_from_slice(app.as_bytes());
    key
}

/// Where a context's records live.
fn context_prefix(context: &ContextId) -> Vec<u8> {
    let mut p = CONTEXT_DATA.to_vec();
    p.extend_from_slice(context.as_bytes());
    p.push(b'/');
    p
}
