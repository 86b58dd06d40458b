//! The deterministic driver of the sync tests: a set of [`Replica`]s of one context, a virtual
//! clock, and a message queue (FIFO, or shuffled by a seeded generator).
//!
//! Every message is framed and round-tripped through [`Frame::encode`] / [`Frame::decode`] on its
//! way, so every scenario also exercises the codec. `Output::Persist` batches go to a per-node
//! [`MemoryKv`] (so a node can be reopened), events are collected per node.
//!
//! Every context is governed: the test context is founded by node 0 ([`genesis`]) with nodes
//! `1..FOUNDERS` as members, each node writes with its own member key ([`keypair`]), and a
//! [`Sim`] node starts past the genesis unless it is added empty ([`Sim::add_node`]). Direct
//! messages travel in the clear here (the node's driver seals them): a removed member's node is
//! cut off by the tests that need it gone.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;

use tabmesh_auth::{Entropy, Keypair, Role, Signature, SymKey};
use tabmesh_base::{ContextId, DeltaId, DetRng, Hash, Hlc, HlcClock, MemberId, MemoryKv, NodeId};
use tabmesh_state::{Action, StateError, Txn};
use tabmesh_sync::{
    Access, DeltaPayload, Envelope, Founder, Frame, GovOp, Message, Output, Protocol, Replica,
    Request, Response, SessionOutcome, SyncConfig, SyncError, SyncEvent, DELTA_SIGNATURE_DOMAIN,
    MAX_FRAME,
};

/// How many test members the shared genesis founds (node `i < FOUNDERS` is a member).
pub(crate) const FOUNDERS: usize = 16;

/// The context every test replica hosts: founded by node 0's member key with every test member
/// as a founder (see [`genesis`]).
pub(crate) fn ctx() -> ContextId {
    genesis().context
}

/// Another context, for wrong-context tests.
pub(crate) const OTHER_CTX: ContextId = ContextId([8; 32]);

/// Where the virtual clock starts.
pub(crate) const T0: u64 = 1_000_000;

/// The map every test write goes to.
pub(crate) const MAP: &str = "m";

/// The node id of node `i`.
pub(crate) fn node_id(i: usize) -> NodeId {
    NodeId([u8::try_from(i + 1).unwrap(); 32])
}

/// The author of node `i`'s writes: its member public key.
pub(crate) fn member(i: usize) -> MemberId {
    MemberId(keypair(i).public())
}

/// The member key pair of node `i`.
pub(crate) fn keypair(i: usize) -> Keypair {
    Keypair::from_secret([u8::try_from(i + 101).unwrap(); 32])
}

/// What node `i` brings to the test context: its key pair and a generator seeded from `i`.
pub(crate) fn access(i: usize) -> Access {
    Access {
        me: keypair(i),
        entropy: Entropy::from_seed([u8::try_from(i + 1).unwrap(); 32]),
        keys: Vec::new(),
    }
}

/// The genesis of a test context.
#[derive(Debug)]
pub(crate) struct Genesis {
    /// The context id it founds.
    pub(crate) context: ContextId,
    /// The genesis delta (every founder receives it first).
    pub(crate) envelope: Envelope,
}

/// Node 0 founds a context (app hash zero, salt `[salt; 32]`) with `founders` (node index and
/// role) besides itself.
fn found(founders: &[(usize, Role)], salt: u8) -> Genesis {
    let founders: Vec<Founder> = founders
        .iter()
        .map(|&(i, role)| Founder {
            member: member(i),
            role,
        })
        .collect();
    let creator = Access {
        me: keypair(0),
        entropy: Entropy::from_seed([salt ^ 0xff; 32]),
        keys: Vec::new(),
    };
    let mut r = Replica::create(
        b"genesis/",
        SyncConfig::default(),
        0,
        T0,
        creator,
        Hash::ZERO,
        &founders,
        Hlc::new(T0 - 1, 0),
        [salt; 32],
    )
    .unwrap();
    let envelope = std::iter::from_fn(|| r.poll_output())
        .find_map(|o| match o {
            Output::Broadcast(env) => Some(env),
            _ => None,
        })
        .unwrap();
    Genesis {
        context: r.context(),
        envelope,
    }
}

/// The test context's genesis: node 0 creates it (app hash zero) with [`FOUNDERS`] founders,
/// nodes 1.. as members. Built once, deterministically.
pub(crate) fn genesis() -> &'static Genesis {
    static GENESIS: OnceLock<Genesis> = OnceLock::new();
    GENESIS.get_or_init(|| {
        let founders: Vec<(usize, Role)> = (1..FOUNDERS).map(|i| (i, Role::Member)).collect();
        found(&founders, 0x5a)
    })
}

/// A second test context with two admins: node 0 creates it with node 1 as an admin and nodes
/// 2..8 as members.
pub(crate) fn two_admin_genesis() -> &'static Genesis {
    static GENESIS: OnceLock<Genesis> = OnceLock::new();
    GENESIS.get_or_init(|| {
        let mut founders = vec![(1, Role::Admin)];
        founders.extend((2..8).map(|i| (i, Role::Member)));
        found(&founders, 0xad)
    })
}

/// The genesis delta's id (the first head of every founder).
pub(crate) fn genesis_id() -> DeltaId {
    genesis().envelope.id()
}

/// The test context's first epoch key, opened from the genesis key box of node 0 (any founder
/// could): what a test needs to seal a payload by hand or read one.
pub(crate) fn genesis_key() -> SymKey {
    let env = &genesis().envelope;
    let boxed = env
        .keys
        .iter()
        .find(|b| b.to == member(0))
        .expect("the genesis seals its key to its creator");
    let mut keys = boxed.open(&ctx(), &keypair(0)).unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys.remove(0);
    assert_eq!(
        key.id(),
        env.epoch,
        "the genesis is sealed with the key it introduces"
    );
    key
}

/// The plaintext payload of `env`, decrypted with `key` (which must be its epoch's key).
pub(crate) fn open_payload(env: &Envelope, key: &SymKey) -> DeltaPayload {
    assert_eq!(key.id(), env.epoch, "not the key of the envelope's epoch");
    let plain = tabmesh_auth::open(key, &env.nonce, env.aad().as_bytes(), &env.ciphertext)
        .expect("the payload decrypts with its epoch key");
    DeltaPayload::decode(&plain).unwrap()
}

/// A delta sealed by hand: `plaintext` (any bytes, a well-formed payload or not) encrypted with
/// `key` (its epoch is the key's id), signed by `author`. What a member's client could send; the
/// replica's own `seal` is the only other way to build one.
pub(crate) fn seal_by_hand(
    author: &Keypair,
    parents: Vec<DeltaId>,
    hlc: Hlc,
    key: &SymKey,
    plaintext: &[u8],
    nonce: u8,
) -> Envelope {
    let mut env = Envelope {
        context: ctx(),
        author: MemberId(author.public()),
        parents,
        hlc,
        epoch: key.id(),
        keys: Vec::new(),
        nonce: [nonce; tabmesh_auth::NONCE_LEN],
        ciphertext: Vec::new(),
        signature: Signature([0; 64]),
    };
    env.ciphertext = tabmesh_auth::seal(key, &env.nonce, env.aad().as_bytes(), plaintext);
    sign(&mut env, author);
    env
}

/// (Re)signs `env` with `author`'s key over its current id.
pub(crate) fn sign(env: &mut Envelope, author: &Keypair) {
    let id = env.id();
    env.signature = author.sign(DELTA_SIGNATURE_DOMAIN, id.as_bytes());
}

/// A replica of the test context for node `i` that has applied the genesis (its outputs,
/// persists included, are dropped: use [`Sim`] to keep them).
pub(crate) fn founded_replica(i: usize, prefix: &[u8], config: SyncConfig, seed: u64) -> Replica {
    let mut r = Replica::new(ctx(), prefix, config, seed, T0, access(i));
    r.handle_delta(T0, None, genesis().envelope.clone());
    while r.poll_output().is_some() {}
    r
}

/// The storage prefix of node `i`.
pub(crate) fn prefix(i: usize) -> Vec<u8> {
    format!("n{i}/").into_bytes()
}

/// A configuration whose periodic tick never fires on its own within a test (sessions are started
/// explicitly with [`Sim::sync_now`]); housekeeping is just as far away.
pub(crate) fn manual_config() -> SyncConfig {
    let mut c = SyncConfig::default();
    c.tick_ms = 1 << 40;
    c.housekeeping_ms = 1 << 40;
    c
}

/// [`manual_config`] where any peer with more applied deltas is caught up by Merkle comparison
/// (`delta_gap_threshold = 0`).
pub(crate) fn merkle_config() -> SyncConfig {
    let mut c = manual_config();
    c.delta_gap_threshold = 0;
    c
}

/// Frames a message of `context`, checks that the encoding round-trips, and returns the bytes.
pub(crate) fn encode_checked(context: ContextId, message: Message) -> Vec<u8> {
    let frame = Frame { context, message };
    let bytes = frame.encode();
    assert!(
        bytes.len() <= MAX_FRAME,
        "a replica produced a frame of {} bytes, over MAX_FRAME ({MAX_FRAME}): {}",
        bytes.len(),
        describe(&frame.message)
    );
    assert_eq!(
        Frame::decode(&bytes),
        Ok(frame),
        "a frame must round-trip through the codec"
    );
    bytes
}

/// The kind of a message, for failure messages.
pub(crate) fn describe(m: &Message) -> &'static str {
    match m {
        Message::Delta(_) => "a delta",
        Message::Request { body, .. } => match body {
            Request::Summary => "a summary request",
            Request::DeltasSince { .. } => "a deltas-since request",
            Request::Deltas { .. } => "a deltas request",
            Request::Tree { .. } => "a tree request",
            Request::Entities { .. } => "an entities request",
            Request::Push { .. } => "a push",
            Request::Snapshot { .. } => "a snapshot request",
            Request::Have { .. } => "a have request",
            Request::Forget { .. } => "a forget request",
            Request::Governance { .. } => "a governance request",
        },
        Message::Response { body, .. } => match body {
            Response::Summary(_) => "a summary",
            Response::Deltas { .. } => "a deltas response",
            Response::Tree { .. } => "a tree response",
            Response::Entities { .. } => "an entities response",
            Response::PushAck { .. } => "a push ack",
            Response::Have { .. } => "a have response",
            Response::SnapshotPage { .. } => "a snapshot page",
            Response::Governance { .. } => "a governance page",
            Response::Refused(_) => "a refusal",
        },
    }
}

/// One replica with its store, clock and what it reported.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: NodeId,
    pub(crate) replica: Replica,
    pub(crate) kv: MemoryKv,
    pub(crate) config: SyncConfig,
    pub(crate) seed: u64,
    pub(crate) clock: HlcClock,
    pub(crate) events: Vec<SyncEvent>,
    /// Every delta it broadcast, in order.
    pub(crate) broadcasts: Vec<Envelope>,
    /// Persist batches applied to `kv`.
    pub(crate) persists: usize,
}

/// A message in flight.
#[derive(Clone, Debug)]
pub(crate) struct Packet {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) bytes: Vec<u8>,
}

impl Packet {
    /// The decoded frame.
    pub(crate) fn frame(&self) -> Frame {
        Frame::decode(&self.bytes).unwrap()
    }

    /// The request it carries, if any.
    pub(crate) fn request(&self) -> Option<Request> {
        match self.frame().message {
            Message::Request { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// A delivered message, for the scenario log.
#[derive(Clone, Debug)]
pub(crate) struct Delivered {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) message: Message,
}

/// The simulated network of replicas.
#[derive(Debug)]
pub(crate) struct Sim {
    /// The context every node hosts (founded by this genesis).
    pub(crate) genesis: &'static Genesis,
    pub(crate) now: u64,
    pub(crate) nodes: Vec<Node>,
    pub(crate) queue: VecDeque<Packet>,
    /// Drop every broadcast (forces the pull and sync paths).
    pub(crate) drop_broadcasts: bool,
    /// Probability of dropping each broadcast copy.
    pub(crate) broadcast_loss: f64,
    /// Directed links `(from, to)` that drop everything.
    pub(crate) cut: BTreeSet<(usize, usize)>,
    /// Deliver a random queued message instead of the oldest.
    pub(crate) shuffle: bool,
    /// Record every delivered message in `log`.
    pub(crate) logging: bool,
    pub(crate) log: Vec<Delivered>,
    pub(crate) rng: DetRng,
    /// Messages delivered so far.
    pub(crate) delivered: u64,
}

impl Sim {
    /// `n` replicas with the default configuration, every pair connected.
    pub(crate) fn new(n: usize) -> Sim {
        Sim::with_configs(vec![SyncConfig::default(); n])
    }

    /// `n` replicas sharing `config`, every pair connected.
    pub(crate) fn with_config(n: usize, config: SyncConfig) -> Sim {
        Sim::with_configs(vec![config; n])
    }

    /// One replica per configuration, every pair connected, each past the genesis.
    pub(crate) fn with_configs(configs: Vec<SyncConfig>) -> Sim {
        Sim::founded_by(genesis(), configs)
    }

    /// One replica of `genesis`'s context per configuration, every pair connected, each past the
    /// genesis.
    pub(crate) fn founded_by(genesis: &'static Genesis, configs: Vec<SyncConfig>) -> Sim {
        let mut sim = Sim::empty(0x5eed);
        sim.genesis = genesis;
        for c in configs {
            let i = sim.add_node(c);
            sim.receive_genesis(i);
        }
        sim
    }

    /// Hands node `i` the genesis (a founder's first delta).
    pub(crate) fn receive_genesis(&mut self, i: usize) {
        let now = self.now;
        let env = self.genesis.envelope.clone();
        self.nodes[i].replica.handle_delta(now, None, env);
        self.drain(i);
    }

    /// `n` replicas with [`manual_config`], past their first (join) tick: no session starts unless
    /// a test asks for one.
    pub(crate) fn manual(n: usize) -> Sim {
        Sim::manual_with(n, manual_config())
    }

    /// `n` replicas sharing `config`, past their first (join) tick.
    pub(crate) fn manual_with(n: usize, config: SyncConfig) -> Sim {
        let mut sim = Sim::with_config(n, config);
        sim.run_for(1);
        sim.log.clear();
        for node in &mut sim.nodes {
            node.events.clear();
        }
        sim
    }

    /// No replicas yet; `seed` drives the network's own choices.
    pub(crate) fn empty(seed: u64) -> Sim {
        Sim {
            genesis: genesis(),
            now: T0,
            nodes: Vec::new(),
            queue: VecDeque::new(),
            drop_broadcasts: false,
            broadcast_loss: 0.0,
            cut: BTreeSet::new(),
            shuffle: false,
            logging: true,
            log: Vec::new(),
            rng: DetRng::new(seed),
            delivered: 0,
        }
    }

    /// Adds an empty replica (a founding member that has not seen the genesis yet: it catches
    /// up by sync) connected to every existing one (both sides `add_peer`).
    pub(crate) fn add_node(&mut self, config: SyncConfig) -> usize {
        let i = self.nodes.len();
        self.add_node_with(config, access(i))
    }

    /// Adds an empty replica for a member that brings `access` (e.g. an invitee's fresh key and
    /// the invitation's keys), connected to every existing one.
    pub(crate) fn add_node_with(&mut self, config: SyncConfig, access: Access) -> usize {
        let i = self.nodes.len();
        let seed = 1_000 + i as u64;
        let context = self.genesis.context;
        let replica = Replica::new(context, &prefix(i), config.clone(), seed, self.now, access);
        self.nodes.push(Node {
            id: node_id(i),
            replica,
            kv: MemoryKv::new(),
            config,
            seed,
            clock: HlcClock::new(),
            events: Vec::new(),
            broadcasts: Vec::new(),
            persists: 0,
        });
        for j in 0..i {
            self.connect(i, j);
        }
        i
    }

    /// `add_peer` on both sides.
    pub(crate) fn connect(&mut self, a: usize, b: usize) {
        let (ida, idb) = (self.nodes[a].id, self.nodes[b].id);
        self.nodes[a].replica.add_peer(self.now, idb);
        self.drain(a);
        self.nodes[b].replica.add_peer(self.now, ida);
        self.drain(b);
    }

    /// The index of the node with this id.
    pub(crate) fn index_of(&self, id: NodeId) -> usize {
        self.nodes.iter().position(|n| n.id == id).unwrap()
    }

    /// Replaces node `i`'s replica with one reopened from its store (same prefix, config, seed).
    pub(crate) fn reopen(&mut self, i: usize) {
        let n = &self.nodes[i];
        let replica = reopen_replica(n, i, self.now);
        self.nodes[i].replica = replica;
        let peers: Vec<NodeId> = (0..self.nodes.len())
            .filter(|j| *j != i)
            .map(|j| self.nodes[j].id)
            .collect();
        for p in peers {
            self.nodes[i].replica.add_peer(self.now, p);
        }
        self.drain(i);
    }

    /// Moves everything node `i` output: persists, sends, broadcasts, events.
    pub(crate) fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].replica.poll_output() {
            match out {
                Output::Persist(batch) => {
                    self.nodes[i].kv.apply(&batch);
                    self.nodes[i].persists += 1;
                }
                Output::Event(e) => self.nodes[i].events.push(e),
                Output::Broadcast(env) => {
                    self.nodes[i].broadcasts.push(env.clone());
                    let bytes = encode_checked(self.genesis.context, Message::Delta(env));
                    for j in 0..self.nodes.len() {
                        if j == i || self.drop_broadcasts || self.cut.contains(&(i, j)) {
                            continue;
                        }
                        if self.broadcast_loss > 0.0 && self.rng.chance(self.broadcast_loss) {
                            continue;
                        }
                        self.queue.push_back(Packet {
                            from: i,
                            to: j,
                            bytes: bytes.clone(),
                        });
                    }
                }
                Output::Send { to, message } => {
                    let j = self.index_of(to);
                    assert!(
                        !matches!(message, Message::Delta(_)),
                        "a Send carries a request or a response"
                    );
                    let bytes = encode_checked(self.genesis.context, message);
                    if !self.cut.contains(&(i, j)) {
                        self.queue.push_back(Packet {
                            from: i,
                            to: j,
                            bytes,
                        });
                    }
                }
            }
        }
    }

    /// Drains every node.
    pub(crate) fn drain_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
    }

    /// The message `step` would deliver next (the oldest; with `shuffle`, unknown in advance).
    pub(crate) fn peek(&self) -> Option<&Packet> {
        self.queue.front()
    }

    /// Delivers one queued message to its target and drains the target.
    pub(crate) fn step(&mut self) -> Option<Delivered> {
        let packet = if self.shuffle && self.queue.len() > 1 {
            let k = self.rng.index(self.queue.len());
            self.queue.remove(k)?
        } else {
            self.queue.pop_front()?
        };
        Some(self.deliver(packet))
    }

    /// Hands `env` to node `to` as if `from` had gossiped it (bypassing the queue and any cut).
    pub(crate) fn gossip(&mut self, from: usize, to: usize, env: &Envelope) -> Delivered {
        let bytes = encode_checked(self.genesis.context, Message::Delta(env.clone()));
        self.deliver(Packet { from, to, bytes })
    }

    /// Delivers `packet` now, whatever the queue holds.
    pub(crate) fn deliver(&mut self, packet: Packet) -> Delivered {
        let frame = Frame::decode(&packet.bytes).unwrap();
        assert_eq!(frame.context, self.genesis.context);
        let (from, to, now) = (packet.from, packet.to, self.now);
        let from_id = self.nodes[from].id;
        let replica = &mut self.nodes[to].replica;
        match frame.message.clone() {
            Message::Delta(env) => replica.handle_delta(now, Some(from_id), env),
            Message::Request { id, body } => replica.handle_request(now, from_id, id, body),
            Message::Response { id, body } => replica.handle_response(now, from_id, id, body),
        }
        self.delivered += 1;
        self.drain(to);
        let d = Delivered {
            from,
            to,
            message: frame.message,
        };
        if self.logging {
            self.log.push(d.clone());
        }
        d
    }

    /// Delivers until the queue is empty.
    pub(crate) fn deliver_all(&mut self) {
        let mut steps = 0u64;
        while self.step().is_some() {
            steps += 1;
            assert!(steps < 2_000_000, "message storm: the queue never empties");
        }
    }

    /// Delivers until `pred` holds for the next queued message (left queued) or the queue is empty.
    /// Returns whether `pred` matched.
    pub(crate) fn deliver_until(&mut self, mut pred: impl FnMut(&Sim, &Packet) -> bool) -> bool {
        loop {
            let Some(p) = self.queue.front() else {
                return false;
            };
            if pred(self, p) {
                return true;
            }
            self.step();
        }
    }

    /// The earliest timer of any node.
    pub(crate) fn next_timeout(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.replica.poll_timeout())
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Moves the clock to the earliest timer (never backwards) and fires every due node.
    pub(crate) fn advance(&mut self) {
        let t = self.next_timeout();
        self.now = self.now.max(t);
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.poll_timeout() <= self.now {
                self.nodes[i].replica.handle_timeout(self.now);
                self.drain(i);
            }
        }
    }

    /// Runs the network for `ms` of virtual time: deliver everything, fire timers, repeat.
    pub(crate) fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        let mut same_instant = 0u32;
        loop {
            self.deliver_all();
            if self.next_timeout() > end {
                break;
            }
            let before = self.now;
            self.advance();
            if self.now == before {
                same_instant += 1;
                assert!(
                    same_instant < 100_000,
                    "timer livelock at {}: poll_timeout never moves past now",
                    self.now
                );
            } else {
                same_instant = 0;
            }
        }
        self.now = end;
    }

    /// Runs until `pred` holds (checked whenever the network is quiet), at most `max_ms`.
    /// Returns whether it held.
    pub(crate) fn run_until(&mut self, max_ms: u64, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + max_ms;
        let mut same_instant = 0u32;
        loop {
            self.deliver_all();
            if pred(self) {
                return true;
            }
            if self.next_timeout() > end {
                self.now = end;
                return pred(self);
            }
            let before = self.now;
            self.advance();
            if self.now == before {
                same_instant += 1;
                assert!(same_instant < 100_000, "timer livelock at {}", self.now);
            } else {
                same_instant = 0;
            }
        }
    }

    /// Starts a sync session on node `i` now and drains it (does not deliver).
    pub(crate) fn sync_now(&mut self, i: usize) {
        self.nodes[i].replica.sync_now(self.now);
        self.drain(i);
    }

    /// Runs a local transaction on node `i` and drains it. Returns the delta id.
    pub(crate) fn write(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Txn<'_>) -> Result<(), StateError>,
    ) -> DeltaId {
        let now = self.now;
        let node = &mut self.nodes[i];
        let hlc = node.clock.tick(now);
        let ((), id) = node
            .replica
            .commit::<(), SyncError>(now, hlc, |t| f(t).map_err(SyncError::from))
            .unwrap();
        self.drain(i);
        id.expect("the transaction wrote something")
    }

    /// Sets `key` to `value` in the test map on node `i`.
    pub(crate) fn put(&mut self, i: usize, key: &[u8], value: &[u8]) -> DeltaId {
        self.write(i, |t| t.map(MAP)?.insert(key, value))
    }

    /// Node `i` writes governance operation `op` (stamped by its clock) and drains it. Returns
    /// the delta id.
    pub(crate) fn govern(&mut self, i: usize, op: GovOp) -> DeltaId {
        self.try_govern(i, op).unwrap()
    }

    /// Like [`Sim::govern`], returning the replica's refusal.
    pub(crate) fn try_govern(&mut self, i: usize, op: GovOp) -> Result<DeltaId, SyncError> {
        let now = self.now;
        let node = &mut self.nodes[i];
        let hlc = node.clock.tick(now);
        let id = node.replica.govern(now, hlc, op);
        self.drain(i);
        id
    }

    /// Runs a local transaction on node `i` and drains it, returning the replica's refusal if it
    /// refuses (a member that may not write).
    pub(crate) fn try_put(
        &mut self,
        i: usize,
        key: &[u8],
        value: &[u8],
    ) -> Result<DeltaId, SyncError> {
        let now = self.now;
        let node = &mut self.nodes[i];
        let hlc = node.clock.tick(now);
        let res = node.replica.commit::<(), SyncError>(now, hlc, |t| {
            t.map(MAP)?.insert(key, value).map_err(SyncError::from)
        });
        self.drain(i);
        res.map(|((), id)| id.expect("the transaction wrote something"))
    }

    /// Deletes `key` from the test map on node `i`.
    pub(crate) fn del(&mut self, i: usize, key: &[u8]) -> DeltaId {
        self.write(i, |t| t.map(MAP)?.delete(key).map(|_| ()))
    }

    /// The replica of node `i`.
    pub(crate) fn r(&self, i: usize) -> &Replica {
        &self.nodes[i].replica
    }

    /// Node `i`'s Merkle root.
    pub(crate) fn root(&self, i: usize) -> Hash {
        self.nodes[i].replica.state().root_hash()
    }

    /// The visible register entries of the test map on node `i`.
    pub(crate) fn entries(&self, i: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
        map_entries(&self.nodes[i].replica)
    }

    /// The sessions node `i` ended, in order.
    pub(crate) fn sessions(&self, i: usize) -> Vec<(NodeId, Protocol, SessionOutcome)> {
        sessions_of(&self.nodes[i].events)
    }

    /// The errors node `i` reported for what peers sent.
    pub(crate) fn rejections(&self, i: usize) -> Vec<(Option<NodeId>, SyncError)> {
        rejections_of(&self.nodes[i].events)
    }

    /// Delta ids node `i` reported applied, in order.
    pub(crate) fn applied_ids(&self, i: usize) -> Vec<DeltaId> {
        self.nodes[i]
            .events
            .iter()
            .flat_map(|e| match e {
                SyncEvent::Applied { ids, .. } => ids.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Requests delivered from `from` to `to` that match `pred`.
    pub(crate) fn requests_sent(
        &self,
        from: usize,
        to: usize,
        pred: impl Fn(&Request) -> bool,
    ) -> usize {
        self.log
            .iter()
            .filter(|d| d.from == from && d.to == to)
            .filter(|d| matches!(&d.message, Message::Request { body, .. } if pred(body)))
            .count()
    }

    /// Asserts that every node has the same root, the same entity states and the same values.
    pub(crate) fn assert_converged(&self) {
        let first = &self.nodes[0].replica;
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            assert_same_state(first, &n.replica, &format!("node 0 vs node {i}"));
        }
    }

    /// Asserts that nodes `a` and `b` have the same root, entity states and values.
    pub(crate) fn assert_pair_converged(&self, a: usize, b: usize) {
        assert_same_state(self.r(a), self.r(b), &format!("node {a} vs node {b}"));
    }
}

/// Node `i`'s replica reopened from its store (same prefix, config and seed; fresh entropy).
pub(crate) fn reopen_replica(n: &Node, i: usize, now: u64) -> Replica {
    let entropy = Entropy::from_seed([u8::try_from(i + 1).unwrap() ^ 0x80; 32]);
    Replica::open(
        n.replica.context(),
        &prefix(i),
        n.config.clone(),
        n.seed,
        now,
        &n.kv,
        entropy,
    )
    .unwrap()
}

/// The visible register entries of the test map.
pub(crate) fn map_entries(r: &Replica) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let map = r.state().map(MAP).unwrap();
    map.keys()
        .filter_map(|k| Some((k.to_vec(), map.get(k)?.to_vec())))
        .collect()
}

/// Every entity state (tombstones included), in id order.
pub(crate) fn entity_states(r: &Replica) -> Vec<Action> {
    r.state().entities().cloned().collect()
}

/// Same root, same entity states, same visible values.
pub(crate) fn assert_same_state(a: &Replica, b: &Replica, what: &str) {
    assert_eq!(
        a.state().root_hash(),
        b.state().root_hash(),
        "{what}: Merkle roots differ"
    );
    assert_eq!(map_entries(a), map_entries(b), "{what}: map values differ");
    assert_eq!(
        entity_states(a),
        entity_states(b),
        "{what}: entity states differ"
    );
}

/// The sessions reported in `events`.
pub(crate) fn sessions_of(events: &[SyncEvent]) -> Vec<(NodeId, Protocol, SessionOutcome)> {
    events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::SessionEnded {
                peer,
                protocol,
                outcome,
            } => Some((*peer, *protocol, outcome.clone())),
            _ => None,
        })
        .collect()
}

/// The rejections reported in `events`.
pub(crate) fn rejections_of(events: &[SyncEvent]) -> Vec<(Option<NodeId>, SyncError)> {
    events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Rejected { from, error } => Some((*from, error.clone())),
            _ => None,
        })
        .collect()
}

/// Drains a lone replica's outputs (tests that drive one replica by hand).
pub(crate) fn drain_outputs(r: &mut Replica) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

/// The events among `outputs`.
pub(crate) fn events_in(outputs: &[Output]) -> Vec<SyncEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The one response among `outputs` (to a request handled by hand).
pub(crate) fn response_in(outputs: &[Output]) -> Response {
    let mut found = outputs.iter().filter_map(|o| match o {
        Output::Send {
            message: Message::Response { body, .. },
            ..
        } => Some(body.clone()),
        _ => None,
    });
    let r = found.next().expect("a response");
    assert!(found.next().is_none(), "exactly one response");
    r
}

/// The requests among `outputs`, with their ids and targets.
pub(crate) fn requests_in(outputs: &[Output]) -> Vec<(NodeId, u64, Request)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: Message::Request { id, body },
            } => Some((*to, *id, body.clone())),
            _ => None,
        })
        .collect()
}
