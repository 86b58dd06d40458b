//! [`NodeCore`]: one node's contexts behind one sans-IO interface.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use tabmesh_auth::{Entropy, InviteLink, Keypair, Role, SymKey};
use tabmesh_base::{
    codec::{Reader, Writer},
    ClockReport, ContextId, DeltaId, DetRng, Hash, Hlc, HlcClock, KvRead, MemberId, NodeId,
    WriteBatch,
};
use tabmesh_blobs::{BlobId, Chunk, Manifest};
use tabmesh_runtime::abi::INIT_HOOK;
use tabmesh_runtime::{Limits, Runtime};
use tabmesh_state::{State, Txn};
use tabmesh_sync::{
    context_id, Access, AppEvent, DueHandler, Frame, GovOp, InviteeProof, KeyMaterial, Membership,
    Message, Replica, SyncConfig, SyncError, SyncEvent, MAX_HOPS,
};

use crate::app::{call_seed, TxnHost};
use crate::blob::{read_cap, BlobCache, CallBlobs, Wanted, BLOB_CACHE_BYTES, MAX_APP_READ_BLOB};
use crate::wire::Wire;
use crate::NodeError;

/// Key of the node's clock record.
const CLOCK_KEY: &[u8] = b"n/clock";
/// Prefix of the context list (one key per hosted context).
const CONTEXTS_PREFIX: &[u8] = b"n/ctx/";
/// Prefix of every context's own records: `c/<context id>/`.
const CONTEXT_DATA: &[u8] = b"c/";
/// Prefix of stored app modules: `n/app/<SHA-256 of the module>` → its bytes.
const APPS_PREFIX: &[u8] = b"n/app/";
/// Key of the node's key pair (its secret; the node id is its public key).
const NODE_KEY: &[u8] = b"n/key";
/// Prefix of pending joins: `n/join/<context id>` → the invitation link, until the join is
/// written.
const JOINS_PREFIX: &[u8] = b"n/join/";

/// Exports whose presence asks for a data migration when an app module changes; migrations are
/// out of scope ([`NodeError::MigrationUnsupported`]).
pub const MIGRATE_HOOK: &str = "__tabmesh_migrate";

/// The most (context, peer, epoch) key requests the node remembers asking and answering.
const MAX_KEY_NOTICES: usize = 4_096;

/// 32 bytes that seed every choice a node makes and every key and nonce it draws. A driver gives
/// fresh OS entropy at every start ([`Seed::from_u64`] is for tests and the simulator only: it
/// makes keys predictable).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub [u8; 32]);

impl Seed {
    /// A deterministic seed (tests and simulations only).
    pub fn from_u64(seed: u64) -> Seed {
        Seed(tabmesh_base::hash_parts(b"tabmesh/node/test-seed/v1", &[&seed.to_le_bytes()]).0)
    }

    fn rng_seed(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(…)")
    }
}

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
/// handle outputs in order: a [`Output::Persist`] comes before the outputs that depend on it, and
/// an [`Output::StoreBlob`] before the persist batch and publish of the call that created it.
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
    /// Store a blob an app call in `context` created (the call succeeded): its manifest and every
    /// chunk, in order (already verified: they hash to the manifest, which hashes to its id).
    /// It comes before the call's [`Output::Persist`] and [`Output::Publish`], so the blob is
    /// stored before anyone learns its id. A blob created by a failed call is never emitted.
    StoreBlob {
        /// The context whose app created it.
        context: ContextId,
        /// What the blob's id expands to.
        manifest: Manifest,
        /// Its chunks.
        chunks: Vec<Chunk>,
    },
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
    /// A pending join was written (the invitation's heads are applied here): this node is a
    /// member of the context from now on, on every replica that applies it.
    Joined {
        /// The context.
        context: ContextId,
        /// The join delta.
        delta: DeltaId,
    },
    /// A pending join failed for good (expired invitation, removed inviter, …).
    JoinFailed {
        /// The context.
        context: ContextId,
        /// Why.
        error: NodeError,
    },
    /// The context's governance names an app module this node does not hold (`available`:
    /// false): calls fail with [`NodeError::MissingModule`] until [`NodeCore::attach_app`] gives
    /// it; or it names one this node holds (`available`: true), after a change or an attach.
    AppChanged {
        /// The context.
        context: ContextId,
        /// The new module's hash.
        app: Hash,
        /// Whether the module is held here (calls run it from now on).
        available: bool,
    },
    /// A peer's message could not be used.
    Rejected {
        /// The peer.
        from: NodeId,
        /// Why.
        error: SyncError,
    },
    /// A peer's messages kept failing as no honest peer's do ([`crate::is_strike`]): everything
    /// it sends is dropped unread until `until_ms` (see [`crate::STRIKES_TO_BAN`]).
    PeerBanned {
        /// The peer.
        peer: NodeId,
        /// The end of the ban (the driver's milliseconds).
        until_ms: u64,
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
    /// follow it past `now + MAX_DRIFT_MS`. (`from: None`: this node's join was stamped that far
    /// ahead, after the heads it cites — known from a snapshot, whose deltas it does not hold.)
    ClockFarAhead {
        /// The peer it came from (`None`: the stamp of this node's own join).
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
    node_key: Keypair,
    entropy: Entropy,
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
    /// Joins waiting for the invitation's heads: the link, and the heads.
    joins: BTreeMap<ContextId, (InviteLink, Vec<DeltaId>)>,
    /// Epochs asked for (`Wire::KeyNeeded`) and answered, per peer (each at most
    /// [`MAX_KEY_NOTICES`]).
    key_asks: BTreeSet<(ContextId, NodeId, Hash)>,
    key_answers: BTreeSet<(ContextId, NodeId, Hash)>,
    /// Peers whose messages keep failing as no honest peer's do, and the ones banned for it.
    strikes: crate::strikes::Strikes,
    /// Strikes found while draining a replica (no time there): counted at the next input.
    strike_queue: Vec<NodeId>,
    /// The governance version each context's upkeep last looked at.
    upkept: BTreeMap<ContextId, u64>,
    /// Blobs apps can read (created here, or loaded by the driver).
    blob_cache: BlobCache,
    /// Blobs apps asked for that are not in the cache.
    wanted_blobs: Wanted,
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
    /// A node with key pair `node_key` (its id is the public key) and no stored data. `seed`
    /// must be fresh entropy (see [`Seed`]). The key is stored with the first persist batch.
    pub fn new(node_key: Keypair, config: NodeConfig, seed: Seed) -> NodeCore {
        let mut batch = WriteBatch::new();
        batch.put(NODE_KEY.to_vec(), node_key.secret().to_vec());
        NodeCore {
            id: NodeId(node_key.public()),
            node_key,
            entropy: Entropy::from_seed(seed.0).fork(b"tabmesh/node/keys"),
            runtime: Runtime::new(config.limits.clone()),
            config,
            clock: HlcClock::new(),
            clock_dirty: false,
            rng: DetRng::new(seed.rng_seed()),
            contexts: BTreeMap::new(),
            armed: BTreeMap::new(),
            batch,
            out: VecDeque::new(),
            apps: BTreeMap::new(),
            modules: BTreeMap::new(),
            due: VecDeque::new(),
            parked: Vec::new(),
            running_due: false,
            joins: BTreeMap::new(),
            key_asks: BTreeSet::new(),
            key_answers: BTreeSet::new(),
            strikes: crate::strikes::Strikes::default(),
            strike_queue: Vec::new(),
            upkept: BTreeMap::new(),
            blob_cache: BlobCache::new(BLOB_CACHE_BYTES),
            wanted_blobs: Wanted::default(),
        }
    }

    /// Emits what is waiting to be persisted (a new node's key, before any input) as one
    /// [`Output::Persist`]; a driver calls it before it announces the node's id.
    pub fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.out
                .push_back(Output::Persist(std::mem::take(&mut self.batch)));
        }
    }

    /// The node key pair stored by an earlier life (for the driver to restart with).
    pub fn stored_node_key(kv: &impl KvRead) -> Option<Keypair> {
        let bytes = kv.get(NODE_KEY)?;
        let secret: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(Keypair::from_secret(secret))
    }

    /// A node restored from everything its earlier [`Output::Persist`] batches wrote (the
    /// "storage loaded" input). Subscribes to every stored context and arms its timers.
    pub fn load(
        node_key: Keypair,
        config: NodeConfig,
        seed: Seed,
        now_ms: u64,
        kv: &impl KvRead,
    ) -> Result<NodeCore, NodeError> {
        let mut node = NodeCore::new(node_key, config, seed);
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
            let entropy = node.entropy.fork(context.as_bytes());
            let replica = Replica::open(
                context,
                &context_prefix(&context),
                node.config.sync.clone(),
                seed,
                now_ms,
                kv,
                entropy,
            )?;
            node.contexts.insert(context, replica);
            node.out.push_back(Output::Subscribe(context));
        }
        for (key, value) in kv.scan_prefix(JOINS_PREFIX) {
            let raw = key.get(JOINS_PREFIX.len()..).unwrap_or_default();
            let bytes: [u8; 32] = raw.try_into().map_err(|_| NodeError::CorruptIndex)?;
            let text = std::str::from_utf8(&value).map_err(|_| NodeError::CorruptIndex)?;
            let link = InviteLink::parse(text).map_err(NodeError::Invitation)?;
            let material = KeyMaterial::decode(&link.open_keys().map_err(NodeError::Invitation)?)?;
            node.joins.insert(ContextId(bytes), (link, material.heads));
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

    /// The node's key pair (its libp2p identity, too).
    pub fn node_key(&self) -> &Keypair {
        &self.node_key
    }

    /// The member key this node writes as in `context` (one key pair per membership).
    pub fn member(&self, context: &ContextId) -> Option<MemberId> {
        self.contexts.get(context).map(Replica::member)
    }

    /// Members, roles, app and key epoch of `context` at this node's heads.
    pub fn membership(&self, context: &ContextId) -> Option<Membership> {
        self.contexts.get(context).map(Replica::membership)
    }

    /// Whether a join of `context` waits for the invitation's heads.
    pub fn is_joining(&self, context: &ContextId) -> bool {
        self.joins.contains_key(context)
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

    /// The app module `context` runs (its governance's, or while joining its invitation's) when
    /// this node does not hold it: what to fetch from a member (then [`NodeCore::attach_app`]).
    pub fn missing_app(&self, context: &ContextId) -> Option<Hash> {
        // A context whose app is held here: the upkeep after each input takes it out of `apps`
        // when its governance names another one (cheap: the driver asks after every drain).
        if self.apps.contains_key(context) {
            return None;
        }
        let replica = self.contexts.get(context)?;
        let wanted = replica
            .membership()
            .app
            .or_else(|| self.joins.get(context).map(|(l, _)| l.invitation.app))
            // A context without an app is invited to with the zero hash.
            .filter(|app| *app != Hash::ZERO)?;
        (self.apps.get(context) != Some(&wanted)).then_some(wanted)
    }

    /// The bytes of a module this node holds, by hash.
    pub fn module(&self, app: &Hash) -> Option<&[u8]> {
        self.modules.get(app).map(Vec::as_slice)
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

    /// Founds a new context, this node its first admin, running the app `module` (validated
    /// and compiled; at most [`Limits::max_module_bytes`]; `None`: a context of plain state,
    /// written with [`NodeCore::commit`]). A fresh member key pair and salt are drawn; the context
    /// id binds them ([`context_id`]). The genesis delta founds it; then, if the module exports
    /// the init hook ([`INIT_HOOK`](tabmesh_runtime::abi::INIT_HOOK)), it runs once, here, with
    /// `args` as its input, as the context's second delta. If anything fails, nothing is created.
    pub fn create_context(
        &mut self,
        now_ms: u64,
        module: Option<&[u8]>,
        args: &[u8],
    ) -> Result<(ContextId, ExecOutcome), NodeError> {
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(NodeError::TooManyContexts { max: MAX_CONTEXTS });
        }
        let app = match module {
            Some(m) => Some(self.runtime.load(m)?),
            None => None,
        };
        let me = Keypair::generate(&mut self.entropy);
        let salt: [u8; 32] = self.entropy.array();
        let app_hash = app.unwrap_or(Hash::ZERO);
        let context = context_id(&MemberId(me.public()), &salt, &app_hash);
        let access = Access {
            me,
            entropy: self.entropy.fork(context.as_bytes()),
            keys: Vec::new(),
        };
        let hlc = self.clock.tick(now_ms);
        self.clock_dirty = true;
        let replica = Replica::create(
            &context_prefix(&context),
            self.config.sync.clone(),
            self.rng.next_u64(),
            now_ms,
            access,
            app_hash,
            &[],
            hlc,
            salt,
        )?;
        self.contexts.insert(context, replica);
        self.batch.put(context_key(&context), Vec::new());
        let (Some(app), Some(module)) = (app, module) else {
            self.out.push_back(Output::Subscribe(context));
            self.finish(context);
            return Ok((context, ExecOutcome::default()));
        };
        self.apps.insert(context, app);
        let stored = self.modules.contains_key(&app);
        self.modules.entry(app).or_insert_with(|| module.to_vec());
        match self.call(now_ms, context, Entry::Hook(INIT_HOOK), args, 0, None) {
            Ok(outcome) => {
                self.record_app(context, app, module, stored);
                self.out.push_back(Output::Subscribe(context));
                self.finish(context);
                Ok((context, outcome))
            }
            Err(e) => {
                self.contexts.remove(&context);
                self.apps.remove(&context);
                self.batch = WriteBatch::new();
                if !stored && !self.apps.values().any(|a| *a == app) {
                    self.modules.remove(&app);
                }
                Err(e)
            }
        }
    }

    /// An invitation link to `context` for a new member with `role`, valid until `expires_ms`
    /// (the joiner's clock, and the HLC of its join, must not pass it), naming `relay` (a
    /// multiaddr to reach the context's peers; may be empty). Only an admin invites. The link
    /// carries, sealed with its own secret, the epoch keys held here and the current heads: the
    /// joiner needs no one online but some member (any) to catch up.
    pub fn invite(
        &mut self,
        context: ContextId,
        role: Role,
        expires_ms: u64,
        relay: &str,
    ) -> Result<String, NodeError> {
        let replica = self
            .contexts
            .get_mut(&context)
            .ok_or(NodeError::UnknownContext(context))?;
        let link = replica.invite(role, expires_ms, relay)?;
        self.finish(context);
        Ok(link.to_link())
    }

    /// Joins the context an invitation `link` names, running `module` (it must be the app the
    /// invitation names; `None`: no app here yet, see [`NodeCore::attach_app`]). A fresh member
    /// key pair is drawn; the node catches up from any member (answering it as an invitee) and,
    /// once it has applied the heads the invitation names, writes its join
    /// ([`NodeEvent::Joined`]); from then on it is a member everywhere. The link is kept until
    /// then (a restart resumes the join). Refused at once: a malformed link, an invitation that
    /// expired by `now_ms`, another app.
    pub fn join_context(
        &mut self,
        now_ms: u64,
        link: &str,
        module: Option<&[u8]>,
    ) -> Result<ContextId, NodeError> {
        let link = InviteLink::parse(link).map_err(NodeError::Invitation)?;
        let inv = &link.invitation;
        let context = inv.context;
        if inv.expires_ms < now_ms {
            return Err(NodeError::InvitationExpired {
                expires_ms: inv.expires_ms,
                now_ms,
            });
        }
        if self.contexts.contains_key(&context) {
            return Err(NodeError::ContextExists(context));
        }
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(NodeError::TooManyContexts { max: MAX_CONTEXTS });
        }
        if let Some(m) = module {
            let found = Hash::of(m);
            if found != inv.app {
                return Err(NodeError::AppMismatch {
                    expected: inv.app,
                    found,
                });
            }
        }
        let material = KeyMaterial::decode(&link.open_keys().map_err(NodeError::Invitation)?)?;
        let app = match module {
            Some(m) => Some(self.runtime.load(m)?),
            None => None,
        };
        let access = Access {
            me: Keypair::generate(&mut self.entropy),
            entropy: self.entropy.fork(context.as_bytes()),
            keys: material.keys,
        };
        let replica = Replica::new(
            context,
            &context_prefix(&context),
            self.config.sync.clone(),
            self.rng.next_u64(),
            now_ms,
            access,
        );
        self.contexts.insert(context, replica);
        self.batch.put(context_key(&context), Vec::new());
        self.batch
            .put(join_key(&context), link.to_link().into_bytes());
        self.joins.insert(context, (link, material.heads));
        if let (Some(app), Some(m)) = (app, module) {
            let stored = self.modules.contains_key(&app);
            self.modules.entry(app).or_insert_with(|| m.to_vec());
            self.apps.insert(context, app);
            self.record_app(context, app, m, stored);
        }
        self.out.push_back(Output::Subscribe(context));
        self.upkeep(now_ms, context);
        self.finish(context);
        Ok(context)
    }

    /// Gives `context` its app module here (joined without one, or its governance changed the
    /// app to one this node did not hold). The module must be the one the context's governance
    /// names ([`NodeError::AppMismatch`]). Due handlers waiting for an app run now.
    pub fn attach_app(
        &mut self,
        now_ms: u64,
        context: ContextId,
        module: &[u8],
    ) -> Result<(), NodeError> {
        let replica = self
            .contexts
            .get_mut(&context)
            .ok_or(NodeError::UnknownContext(context))?;
        let found = Hash::of(module);
        let expected = replica
            .membership()
            .app
            .or_else(|| self.joins.get(&context).map(|(l, _)| l.invitation.app))
            .unwrap_or(found);
        if found != expected {
            return Err(NodeError::AppMismatch { expected, found });
        }
        if self.apps.get(&context) == Some(&found) {
            return Ok(());
        }
        let app = self.runtime.load(module)?;
        let stored = self.modules.contains_key(&app);
        self.modules.entry(app).or_insert_with(|| module.to_vec());
        self.apps.insert(context, app);
        self.record_app(context, app, module, stored);
        self.out.push_back(Output::Notify(NodeEvent::AppChanged {
            context,
            app,
            available: true,
        }));
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(c, _)| *c == context);
        self.parked = waiting;
        self.due.extend(ready);
        self.finish(context);
        self.run_due(now_ms);
        Ok(())
    }

    /// Removes `member` from `context` (an admin, or a member leaving) and rotates the key: the
    /// new epoch is sealed to the remaining members only. Its deltas that are not ancestors of
    /// the removal are void on every replica.
    pub fn remove_member(
        &mut self,
        now_ms: u64,
        context: ContextId,
        member: MemberId,
    ) -> Result<DeltaId, NodeError> {
        self.govern(now_ms, context, GovOp::Remove { member })
    }

    /// Rotates the context's key (an admin): a new epoch sealed to every member.
    pub fn rotate_key(&mut self, now_ms: u64, context: ContextId) -> Result<DeltaId, NodeError> {
        self.govern(now_ms, context, GovOp::Rotate)
    }

    /// Changes the context's app module (an admin). The module is validated and stored; every
    /// member runs it once it holds it. Data migration is out of scope: a module exporting
    /// [`MIGRATE_HOOK`] is refused ([`NodeError::MigrationUnsupported`]).
    pub fn change_app(
        &mut self,
        now_ms: u64,
        context: ContextId,
        module: &[u8],
    ) -> Result<DeltaId, NodeError> {
        if !self.contexts.contains_key(&context) {
            return Err(NodeError::UnknownContext(context));
        }
        let app = self.runtime.load(module)?;
        if self.runtime.has_hook(&app, MIGRATE_HOOK) {
            return Err(NodeError::MigrationUnsupported { app });
        }
        let delta = self.govern(now_ms, context, GovOp::ChangeApp { app })?;
        let stored = self.modules.contains_key(&app);
        self.modules.entry(app).or_insert_with(|| module.to_vec());
        self.apps.insert(context, app);
        self.record_app(context, app, module, stored);
        self.finish(context);
        Ok(delta)
    }

    fn govern(&mut self, now_ms: u64, context: ContextId, op: GovOp) -> Result<DeltaId, NodeError> {
        let replica = self
            .contexts
            .get_mut(&context)
            .ok_or(NodeError::UnknownContext(context))?;
        let hlc = self.clock.tick(now_ms);
        self.clock_dirty = true;
        let result = replica.govern(now_ms, hlc, op);
        self.finish(context);
        Ok(result?)
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
        let replica = self
            .contexts
            .get_mut(&context)
            .ok_or(NodeError::UnknownContext(context))?;
        let hlc = self.clock.tick(now_ms);
        self.clock_dirty = true;
        let result = replica.commit(now_ms, hlc, f);
        let _ = self.clock.observe(replica.last_commit_hlc(), now_ms);
        self.finish(context);
        Ok(result?)
    }

    /// Bytes from a peer: a gossiped delta, or a sealed request or response (opened only if its
    /// sender is a member, or an invitee being caught up, and it decrypts).
    ///
    /// A banned peer's bytes are dropped unread ([`NodeEvent::PeerBanned`]).
    pub fn handle_message(&mut self, now_ms: u64, from: NodeId, bytes: &[u8]) {
        self.settle_strikes(now_ms);
        if self.strikes.is_banned(now_ms, &from) {
            self.strikes.dropped += 1;
            return;
        }
        let wire = match Wire::decode(bytes) {
            Ok(wire) => wire,
            Err(error) => {
                self.refused(now_ms, from, error);
                return;
            }
        };
        let (context, message) = match wire {
            Wire::Gossip(frame) => (frame.context, frame.message),
            Wire::KeyNeeded { context, epoch } => {
                // Answered to the context's peers only, once per (peer, epoch) and node life.
                let Some(replica) = self.contexts.get(&context) else {
                    return;
                };
                if !replica.has_peer(&from) || !self.key_answers.insert((context, from, epoch)) {
                    return;
                }
                if self.key_answers.len() > MAX_KEY_NOTICES {
                    self.key_answers.clear();
                }
                for env in replica.key_envelopes(&epoch) {
                    let bytes = Wire::Gossip(Box::new(Frame {
                        context,
                        message: Message::Delta(env),
                    }))
                    .encode();
                    self.out.push_back(Output::Send { to: from, bytes });
                }
                return;
            }
            Wire::Direct(sealed) => {
                let context = sealed.context;
                // A context not hosted here gets no answer: silence tells a stranger nothing.
                let Some(replica) = self.contexts.get_mut(&context) else {
                    return;
                };
                match replica.open_message(now_ms, from, self.id, &sealed) {
                    Ok(message) => (context, message),
                    Err(error) => {
                        if let SyncError::Access(tabmesh_sync::AccessError::KeyUnknown { epoch }) =
                            &error
                        {
                            if replica.has_peer(&from)
                                && self.key_asks.insert((context, from, *epoch))
                            {
                                if self.key_asks.len() > MAX_KEY_NOTICES {
                                    self.key_asks.clear();
                                }
                                let bytes = Wire::KeyNeeded {
                                    context,
                                    epoch: *epoch,
                                }
                                .encode();
                                self.out.push_back(Output::Send { to: from, bytes });
                            }
                        }
                        self.refused(now_ms, from, error);
                        return;
                    }
                }
            }
        };
        let Some(replica) = self.contexts.get_mut(&context) else {
            return;
        };
        match message {
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
        self.upkeep(now_ms, context);
        self.finish(context);
        self.run_due(now_ms);
    }

    /// A timer fired.
    pub fn handle_timer(&mut self, now_ms: u64, key: TimerKey) {
        self.settle_strikes(now_ms);
        self.armed.remove(&key);
        match key {
            TimerKey::Context(context) => {
                if let Some(r) = self.contexts.get_mut(&context) {
                    r.handle_timeout(now_ms);
                    self.upkeep(now_ms, context);
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
    // Blobs: what the driver stores, serves, fetches and collects.

    /// Puts blob `id`'s bytes in the read cache, so apps can open it (the driver loads a blob an
    /// app asked for, [`NodeCore::take_wanted_blobs`]). Nothing is verified here: the driver
    /// passes only complete blobs it verified against their manifest. Refused (`false`): a blob
    /// over [`MAX_APP_READ_BLOB`](crate::MAX_APP_READ_BLOB) bytes, which apps never read. The
    /// cache holds [`BLOB_CACHE_BYTES`](crate::BLOB_CACHE_BYTES), least recently used evicted
    /// first.
    pub fn cache_blob(&mut self, id: BlobId, bytes: Vec<u8>) -> bool {
        if bytes.len() > MAX_APP_READ_BLOB {
            return false;
        }
        let cached = self.blob_cache.insert(id, Arc::from(bytes));
        if cached {
            self.wanted_blobs.got(&id);
        }
        cached
    }

    /// Whether apps here can open blob `id` now (it is in the read cache).
    pub fn is_blob_cached(&self, id: &BlobId) -> bool {
        self.blob_cache.contains(id)
    }

    /// The blobs apps opened and did not find in the read cache since the last call (at most
    /// [`MAX_WANTED_BLOBS`](crate::MAX_WANTED_BLOBS), in id order): for the driver to load from
    /// its blob store (the cache starts empty at every start) or fetch from the members of its
    /// contexts, and give back with [`NodeCore::cache_blob`]. A call that opened one failed or
    /// went on without it; the app tries again later.
    pub fn take_wanted_blobs(&mut self) -> Vec<BlobId> {
        self.wanted_blobs.take()
    }

    /// Whether `peer` is a current member of `context` here: this node opened a sealed sync
    /// message from it in the context since it last became a peer (so the member key it writes
    /// as is known; [`NodeCore::peer_left`] forgets it) and that member is in the membership at
    /// this node's heads, not removed. What the driver checks before it serves a blob to a peer
    /// or fetches one from it. `false` for a context not hosted here, a peer not heard from, an
    /// invitee not admitted yet and a removed member.
    pub fn peer_is_member(&self, context: &ContextId, peer: &NodeId) -> bool {
        let Some(replica) = self.contexts.get(context) else {
            return false;
        };
        let Some(member) = replica.peer_member(peer) else {
            return false;
        };
        let membership = replica.membership();
        membership.members.contains_key(&member) && !membership.removed.contains(&member)
    }

    /// Every blob id the state of any context here names ([`NodeCore::blob_refs_in`] over every
    /// context). At most [`MAX_BLOB_REFS`](crate::MAX_BLOB_REFS) ids: a set that full may be
    /// incomplete, and a garbage collector must then collect nothing.
    pub fn blob_refs(&self) -> BTreeSet<BlobId> {
        let mut refs = BTreeSet::new();
        for replica in self.contexts.values() {
            if !refs_of(replica.state(), &mut refs) {
                break;
            }
        }
        refs
    }

    /// Every blob id the state of `context` names: each visible entity's encoding (keys and
    /// values; a removed entry no longer names anything) is searched for blob references
    /// (`tabmesh-blob:` and 64 lowercase hex digits, [`tabmesh_blobs::find_refs`]), wherever they
    /// sit (a reference inside a JSON value counts; one typed into a `Text` collection, one
    /// character per entity, does not). Empty for an unknown context; at most
    /// [`MAX_BLOB_REFS`](crate::MAX_BLOB_REFS) ids. Work: linear in the state's size.
    pub fn blob_refs_in(&self, context: &ContextId) -> BTreeSet<BlobId> {
        let mut refs = BTreeSet::new();
        if let Some(replica) = self.contexts.get(context) {
            refs_of(replica.state(), &mut refs);
        }
        refs
    }

    /// Peers banned now, and messages dropped because their sender was banned.
    pub fn bans(&self, now_ms: u64) -> (usize, u64) {
        (self.strikes.banned(now_ms), self.strikes.dropped)
    }

    // ---------------------------------------------------------------------------------------------
    // Internals.

    /// A peer's message was refused: reported, and a strike if no honest peer sends such.
    fn refused(&mut self, now_ms: u64, from: NodeId, error: SyncError) {
        if crate::strikes::is_strike(&error) {
            self.strike_queue.push(from);
        }
        self.out
            .push_back(Output::Notify(NodeEvent::Rejected { from, error }));
        self.settle_strikes(now_ms);
    }

    /// Counts the strikes found since the last input; bans whoever reached the bound.
    fn settle_strikes(&mut self, now_ms: u64) {
        for peer in std::mem::take(&mut self.strike_queue) {
            if let Some(until_ms) = self.strikes.strike(now_ms, peer) {
                self.out
                    .push_back(Output::Notify(NodeEvent::PeerBanned { peer, until_ms }));
            }
        }
    }

    /// Governance chores after an input: write a pending join once the invitation's heads are
    /// applied; follow an app change; as an admin, share keys with members that lack them.
    fn upkeep(&mut self, now_ms: u64, context: ContextId) {
        let Some(replica) = self.contexts.get_mut(&context) else {
            return;
        };
        if let Some((link, _)) = self.joins.get(&context) {
            let expires_ms = link.invitation.expires_ms;
            if expires_ms < now_ms {
                // Members no longer answer it, and a join stamped now would be refused.
                self.joins.remove(&context);
                self.batch.delete(join_key(&context));
                self.out.push_back(Output::Notify(NodeEvent::JoinFailed {
                    context,
                    error: NodeError::InvitationExpired { expires_ms, now_ms },
                }));
            }
        }
        if let Some((link, heads)) = self.joins.get(&context) {
            // The join is stamped after the heads it cites (every member holding them checks
            // it), however far ahead of this node's clock they are. Past the invitation's expiry
            // it would be refused: it waits for newer heads (a member writing on the far-ahead
            // ones), or fails when the invitation expires here.
            let usable = replica.heads_stamp().successor().wall_ms <= link.invitation.expires_ms;
            if usable && heads.iter().all(|h| replica.dag().is_applied(h)) {
                let me = replica.member();
                let keys: Vec<Hash> = KeyMaterial::decode(&link.open_keys().unwrap_or_default())
                    .map(|m| m.keys.iter().map(SymKey::id).collect())
                    .unwrap_or_default();
                let op = GovOp::Join {
                    invitation: Box::new(link.invitation.clone()),
                    proof: link.prove(me.as_bytes()),
                    keys,
                };
                let hlc = self.clock.tick(now_ms);
                self.clock_dirty = true;
                let outcome = replica.govern(now_ms, hlc, op);
                // The clock observes the join's stamp (lifted past its parents), and does not
                // follow it past `now + MAX_DRIFT_MS`: a join on far-ahead heads says so.
                if let ClockReport::FarAhead { ahead_ms } =
                    self.clock.observe(replica.last_commit_hlc(), now_ms)
                {
                    self.out.push_back(Output::Notify(NodeEvent::ClockFarAhead {
                        from: None,
                        ahead_ms,
                    }));
                }
                let event = match outcome {
                    Ok(delta) => Some(NodeEvent::Joined { context, delta }),
                    // Not yet: the key of the current epoch is still to come.
                    Err(SyncError::Access(tabmesh_sync::AccessError::KeyUnknown { .. })) => None,
                    Err(e) => Some(NodeEvent::JoinFailed {
                        context,
                        error: e.into(),
                    }),
                };
                if let Some(event) = event {
                    self.joins.remove(&context);
                    self.batch.delete(join_key(&context));
                    self.out.push_back(Output::Notify(event));
                }
            }
        }
        let Some(replica) = self.contexts.get_mut(&context) else {
            return;
        };
        // The app and key debts follow from governance: nothing to do unless it moved.
        let version = replica.governance_version();
        if self.upkept.get(&context) == Some(&version) {
            return;
        }
        let app = replica.membership().app.filter(|a| *a != Hash::ZERO);
        if let Some(app) = app {
            if self.apps.get(&context).is_some_and(|a| *a != app) {
                let available = self.modules.contains_key(&app);
                if available {
                    self.apps.insert(context, app);
                    self.batch
                        .put(context_key(&context), app.as_bytes().to_vec());
                } else {
                    self.apps.remove(&context);
                }
                self.out.push_back(Output::Notify(NodeEvent::AppChanged {
                    context,
                    app,
                    available,
                }));
            }
        }
        let hlc = self.clock.last().successor().max(Hlc::new(now_ms, 0));
        if let Some(replica) = self.contexts.get_mut(&context) {
            if let Ok(Some(_)) = replica.settle_key_debts(now_ms, hlc) {
                self.clock_dirty = true;
                let _ = self.clock.observe(replica.last_commit_hlc(), now_ms);
            }
            self.upkept.insert(context, replica.governance_version());
        }
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
        if !self.contexts.contains_key(&context) {
            return Err(NodeError::UnknownContext(context));
        }
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
        let member = replica.member();
        let hlc = self.clock.tick(now_ms);
        self.clock_dirty = true;
        let mut parents = replica.dag().heads();
        parents.truncate(tabmesh_dag::MAX_PARENTS);
        let rng = DetRng::new(call_seed(&context, &parents, hlc));
        let runtime = &mut self.runtime;
        let mut blobs = CallBlobs::new(
            &mut self.blob_cache,
            &mut self.wanted_blobs,
            read_cap(self.config.limits.max_result_bytes),
        );
        let result = replica.commit_with(now_ms, hlc, hop, completes, |txn| {
            let mut host = TxnHost {
                txn,
                blobs: &mut blobs,
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
        let created = blobs.into_created();
        let (outcome, delta) = result?;
        // The call succeeded: its blobs exist. The driver stores each before the call's persist
        // batch and publish (queued by `finish`), and apps here read them from the cache.
        for blob in created {
            let id = blob.manifest.id;
            self.blob_cache.insert(id, Arc::from(blob.bytes()));
            self.wanted_blobs.got(&id);
            self.out.push_back(Output::StoreBlob {
                context,
                manifest: blob.manifest,
                chunks: blob.chunks,
            });
        }
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
                        let bytes = Wire::Gossip(Box::new(Frame {
                            context,
                            message: Message::Delta(env),
                        }))
                        .encode();
                        rest.push(Output::Publish {
                            context,
                            bytes,
                            delta,
                        });
                    }
                    tabmesh_sync::Output::Send { to, message } => {
                        // Sealed in the epoch of the peer's latest message (the replica keeps it).
                        let invitee = self
                            .joins
                            .get(&context)
                            .map(|(link, _)| InviteeProof::new(link, &replica.member()));
                        match replica.seal_message(self.id, to, &message, None, invitee) {
                            Ok(sealed) => rest.push(Output::Send {
                                to,
                                bytes: Wire::Direct(Box::new(sealed)).encode(),
                            }),
                            Err(error) => rest.push(Output::Notify(NodeEvent::Sync {
                                context,
                                event: SyncEvent::Rejected {
                                    from: Some(to),
                                    error,
                                },
                            })),
                        }
                    }
                    tabmesh_sync::Output::Event(event) => {
                        if let SyncEvent::Rejected {
                            from: Some(peer),
                            error,
                        } = &event
                        {
                            if crate::strikes::is_strike(error) {
                                self.strike_queue.push(*peer);
                            }
                        }
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
    tabmesh_base::key(&[CONTEXTS_PREFIX, context.as_bytes()])
}

/// The key of a stored app module.
fn app_key(app: &Hash) -> Vec<u8> {
    tabmesh_base::key(&[APPS_PREFIX, app.as_bytes()])
}

/// The key of a pending join.
fn join_key(context: &ContextId) -> Vec<u8> {
    tabmesh_base::key(&[JOINS_PREFIX, context.as_bytes()])
}

/// Where a context's records live.
fn context_prefix(context: &ContextId) -> Vec<u8> {
    tabmesh_base::key(&[CONTEXT_DATA, context.as_bytes(), b"/"])
}

/// Adds the blob ids `state`'s visible entities name to `refs`; `false` once the set is full.
fn refs_of(state: &State, refs: &mut BTreeSet<BlobId>) -> bool {
    state
        .entities()
        .filter(|a| state.is_visible(&a.id()))
        .all(|action| tabmesh_blobs::find_refs(&action.to_bytes(), refs))
}
