//! The deterministic network of the node tests: `NodeCore`s, a virtual clock, a FIFO message
//! queue, timers, subscriptions, partitions and nodes going offline. No threads, no sleeps.
//!
//! Every output is handled as a driver would: `Persist` batches go to the node's disk,
//! `Subscribe` makes the node a host of the context (and tells it and every reachable host about
//! each other with `peer_joined`), `Publish` reaches every other reachable host of the context,
//! `Send` reaches its addressee if reachable, `ArmTimer`/`CancelTimer` keep the node's timers
//! (fired once virtual time reaches them), `Notify` is recorded, `StoreBlob` goes to the node's
//! blob store (its chunks checked against the manifest). Every published or sent byte
//! string is logged, delivered or not. Each node may have a skewed clock ([`Net::skew`]): every
//! input it gets carries its own `now`, and its timers fire by its own clock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tabmesh_auth::{Entropy, InviteLink, Keypair, Role, SymKey};
use tabmesh_base::{ContextId, DeltaId, MemoryKv, NodeId};
use tabmesh_blobs::BlobId;
use tabmesh_node::Wire;
use tabmesh_node::{NodeConfig, NodeCore, NodeError, NodeEvent, Output, Seed, TimerKey};
use tabmesh_sync::{
    Access, DeltaPayload, Envelope, KeyMaterial, Message, Replica, Request, SyncConfig, SyncEvent,
};

/// Where virtual time starts (2026-01-01).
pub(crate) const T0: u64 = 1_767_225_600_000;

/// Invitations the tests make expire long after any test ends.
pub(crate) const FAR: u64 = T0 + 365 * 24 * 3_600_000;

/// Most messages one `pump` delivers before it gives up (a test bug, not a node's).
const MAX_DELIVERIES: usize = 200_000;

/// The node key of node `i` (1-based, as node ids used to be).
pub(crate) fn node_key(i: u8) -> Keypair {
    Keypair::from_secret([i; 32])
}

/// A fresh node `i` with the default configuration and seed `i`.
pub(crate) fn node(i: u8) -> NodeCore {
    node_with(i, NodeConfig::default())
}

/// A fresh node `i` with `config` and seed `i`.
pub(crate) fn node_with(i: u8, config: NodeConfig) -> NodeCore {
    NodeCore::new(node_key(i), config, Seed::from_u64(u64::from(i)))
}

/// Drains a node's outputs, applying persist batches to `disk`.
pub(crate) fn drain(node: &mut NodeCore, disk: &mut MemoryKv) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(o) = node.poll_output() {
        if let Output::Persist(b) = &o {
            disk.apply(b);
        }
        out.push(o);
    }
    out
}

/// The epoch keys an admin of `context` holds, read from an invitation it makes (the only way
/// out of a node): what a test needs to read a payload or seal one by hand.
pub(crate) fn epoch_keys(node: &mut NodeCore, context: ContextId) -> Vec<SymKey> {
    let link = node.invite(context, Role::Member, FAR, "").unwrap();
    let link = InviteLink::parse(&link).unwrap();
    KeyMaterial::decode(&link.open_keys().unwrap())
        .unwrap()
        .keys
}

/// The plaintext payload of `env`, decrypted with whichever of `keys` is its epoch's.
pub(crate) fn open_payload(env: &Envelope, keys: &[SymKey]) -> DeltaPayload {
    let key = keys
        .iter()
        .find(|k| k.id() == env.epoch)
        .expect("the key of the delta's epoch");
    let plain = tabmesh_auth::open(key, &env.nonce, env.aad().as_bytes(), &env.ciphertext)
        .expect("the payload decrypts with its epoch key");
    DeltaPayload::decode(&plain).unwrap()
}

/// A summary request to `to` about `context`, sealed by a stranger: a replica of `context` with
/// a member key and an epoch key of its own (drawn from `seed`), sent as node `from`.
pub(crate) fn stranger_request(context: ContextId, from: NodeId, to: NodeId, seed: u8) -> Vec<u8> {
    let mut entropy = Entropy::from_seed([seed; 32]);
    let access = Access {
        me: Keypair::generate(&mut entropy),
        keys: vec![SymKey::generate(&mut entropy)],
        entropy,
    };
    let mut r = Replica::new(context, b"x/", SyncConfig::default(), 1, T0, access);
    let message = Message::Request {
        id: 77,
        body: Request::Summary,
    };
    let sealed = r.seal_message(from, to, &message, None, None).unwrap();
    Wire::Direct(Box::new(sealed)).encode()
}

/// One byte string a node emitted.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    /// The sender's index.
    pub(crate) from: usize,
    /// `Some` for a send to one peer, `None` for a publish.
    pub(crate) to: Option<NodeId>,
    /// The bytes.
    pub(crate) bytes: Vec<u8>,
}

/// A message on its way.
struct Queued {
    /// The sender's index.
    from: usize,
    /// The addressee of a send (`None`: a publish).
    to: Option<NodeId>,
    /// The topic of a publish.
    topic: Option<ContextId>,
    bytes: Vec<u8>,
}

/// Nodes on a network that delivers in order, with partitions and offline nodes.
pub(crate) struct Net {
    pub(crate) nodes: Vec<NodeCore>,
    pub(crate) disks: Vec<MemoryKv>,
    /// Each node's stored blobs (from `Output::StoreBlob`), whole.
    pub(crate) blobs: Vec<BTreeMap<BlobId, Vec<u8>>>,
    pub(crate) events: Vec<Vec<NodeEvent>>,
    /// The network's time; node `i` reads `now + skew[i]` ([`Net::local`]).
    pub(crate) now: u64,
    /// How far each node's clock is off the network's time (ms, either way; default 0).
    pub(crate) skew: Vec<i64>,
    /// The context most tests work in (set by [`Net::start`]).
    pub(crate) ctx: ContextId,
    /// Every publish and send, in emission order (delivered or not).
    pub(crate) wire: Vec<Sent>,
    timers: Vec<BTreeMap<TimerKey, u64>>,
    hosts: Vec<BTreeSet<ContextId>>,
    group: Vec<u8>,
    offline: BTreeSet<usize>,
    queue: VecDeque<Queued>,
    /// Publishes a partition or an offline node kept from a host: `(sender, host, bytes)`.
    lost: Vec<(usize, usize, Vec<u8>)>,
}

impl Net {
    /// `n` fresh nodes (ids 1..=n, seeds 1..=n), default configuration.
    pub(crate) fn new(n: u8) -> Net {
        Net::with_nodes((1..=n).map(node).collect())
    }

    /// A network of these nodes.
    pub(crate) fn with_nodes(nodes: Vec<NodeCore>) -> Net {
        let n = nodes.len();
        Net {
            nodes,
            disks: (0..n).map(|_| MemoryKv::new()).collect(),
            blobs: (0..n).map(|_| BTreeMap::new()).collect(),
            events: (0..n).map(|_| Vec::new()).collect(),
            now: T0,
            skew: vec![0; n],
            ctx: ContextId([0; 32]),
            wire: Vec::new(),
            timers: (0..n).map(|_| BTreeMap::new()).collect(),
            hosts: (0..n).map(|_| BTreeSet::new()).collect(),
            group: vec![0; n],
            offline: BTreeSet::new(),
            queue: VecDeque::new(),
            lost: Vec::new(),
        }
    }

    /// Node 0 creates a context running `module` (init `args`; `None`: plain state), every
    /// other node joins it with an invitation of node 0 and `module`, and the network runs
    /// until every join is written and delivered.
    pub(crate) fn start(n: u8, module: Option<&[u8]>, args: &[u8]) -> Net {
        Net::start_with(n, module, args, false)
    }

    /// [`Net::start`]; with `from_history`, joiners catch up through their DAG
    /// ([`Net::join_from_history`]) instead of from a snapshot.
    pub(crate) fn start_with(n: u8, module: Option<&[u8]>, args: &[u8], from_history: bool) -> Net {
        let mut net = Net::new(n);
        let now = net.tick();
        let (ctx, _) = net.nodes[0].create_context(now, module, args).unwrap();
        net.ctx = ctx;
        net.pump();
        for i in 1..usize::from(n) {
            if from_history {
                net.join_from_history(i, 0, Role::Member, module);
            } else {
                net.join(i, 0, Role::Member, module);
            }
        }
        net
    }

    /// Node `joiner` joins `self.ctx` with an invitation of `inviter` granting `role`; runs until
    /// the join is written and delivered. Returns the join delta.
    pub(crate) fn join(
        &mut self,
        joiner: usize,
        inviter: usize,
        role: Role,
        module: Option<&[u8]>,
    ) -> DeltaId {
        self.join_with(joiner, inviter, role, module, false)
    }

    /// The join delta node `i` wrote in `self.ctx`, if it did.
    pub(crate) fn joined(&self, i: usize) -> Option<DeltaId> {
        self.events[i].iter().find_map(|e| match e {
            NodeEvent::Joined { context, delta } if *context == self.ctx => Some(*delta),
            _ => None,
        })
    }

    /// Node 0 creates a context without an app (at its own clock, one step on); it becomes
    /// `self.ctx`, and what that caused is delivered.
    pub(crate) fn plain_context(&mut self) -> ContextId {
        self.tick();
        let now = self.local(0);
        let (ctx, _) = self.nodes[0]
            .create_context(now, None, b"")
            .expect("a plain context");
        self.ctx = ctx;
        self.pump();
        ctx
    }

    /// Advances the clock by one step and returns it.
    pub(crate) fn tick(&mut self) -> u64 {
        self.now += 10;
        self.now
    }

    /// Node `i`'s clock now (the network's time plus its skew).
    pub(crate) fn local(&self, i: usize) -> u64 {
        self.now.saturating_add_signed(self.skew[i])
    }

    /// Node `i`'s timers by when, in the network's time, they are due.
    fn timers_due(&self, i: usize) -> impl Iterator<Item = (u64, TimerKey)> + '_ {
        let skew = self.skew[i];
        self.timers[i]
            .iter()
            .map(move |(k, at)| (at.saturating_add_signed(-skew), *k))
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        a != b
            && self.group[a] == self.group[b]
            && !self.offline.contains(&a)
            && !self.offline.contains(&b)
    }

    /// Splits the network: nodes in different groups no longer reach each other (messages between
    /// them are lost; both sides hear `peer_left`).
    pub(crate) fn partition(&mut self, groups: &[u8]) {
        assert_eq!(groups.len(), self.nodes.len());
        let before: Vec<(usize, usize)> = self.pairs();
        self.group = groups.to_vec();
        self.relink(before);
    }

    /// Ends every partition (both sides hear `peer_joined`).
    pub(crate) fn heal(&mut self) {
        let before = self.pairs();
        self.group = vec![0; self.nodes.len()];
        self.relink(before);
    }

    /// Node `i` goes offline (`true`) or comes back (`false`): nothing reaches it or leaves it
    /// while offline; its peers hear `peer_left`, then `peer_joined`.
    pub(crate) fn set_offline(&mut self, i: usize, offline: bool) {
        let before = self.pairs();
        if offline {
            self.offline.insert(i);
        } else {
            self.offline.remove(&i);
        }
        self.relink(before);
    }

    fn pairs(&self) -> Vec<(usize, usize)> {
        let n = self.nodes.len();
        (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .filter(|&(a, b)| self.reachable(a, b))
            .collect()
    }

    /// Tells each node about peers it gained or lost in the contexts both host.
    fn relink(&mut self, before: Vec<(usize, usize)>) {
        let after = self.pairs();
        for &(a, b) in &before {
            if !after.contains(&(a, b)) {
                let peer = self.nodes[b].id();
                let now = self.local(a);
                for c in self.shared(a, b) {
                    self.nodes[a].peer_left(now, c, peer);
                }
            }
        }
        for &(a, b) in &after {
            if !before.contains(&(a, b)) {
                let peer = self.nodes[b].id();
                let now = self.local(a);
                for c in self.shared(a, b) {
                    self.nodes[a].peer_joined(now, c, peer);
                }
            }
        }
    }

    fn shared(&self, a: usize, b: usize) -> Vec<ContextId> {
        self.hosts[a]
            .intersection(&self.hosts[b])
            .copied()
            .collect()
    }

    fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id() == id)
    }

    /// Handles node `i`'s outputs; returns whether there were any.
    fn drain_node(&mut self, i: usize) -> bool {
        let mut any = false;
        while let Some(o) = self.nodes[i].poll_output() {
            any = true;
            match o {
                Output::Persist(b) => self.disks[i].apply(&b),
                Output::Publish { context, bytes, .. } => {
                    self.wire.push(Sent {
                        from: i,
                        to: None,
                        bytes: bytes.clone(),
                    });
                    self.queue.push_back(Queued {
                        from: i,
                        to: None,
                        topic: Some(context),
                        bytes,
                    });
                }
                Output::Send { to, bytes } => {
                    self.wire.push(Sent {
                        from: i,
                        to: Some(to),
                        bytes: bytes.clone(),
                    });
                    self.queue.push_back(Queued {
                        from: i,
                        to: Some(to),
                        topic: None,
                        bytes,
                    });
                }
                Output::Subscribe(c) => {
                    if self.hosts[i].insert(c) {
                        for j in 0..self.nodes.len() {
                            if self.hosts[j].contains(&c) && self.reachable(i, j) {
                                let (ii, ij) = (self.nodes[i].id(), self.nodes[j].id());
                                let (now_i, now_j) = (self.local(i), self.local(j));
                                self.nodes[j].peer_joined(now_j, c, ii);
                                self.nodes[i].peer_joined(now_i, c, ij);
                            }
                        }
                    }
                }
                Output::ArmTimer { key, at_ms } => {
                    self.timers[i].insert(key, at_ms);
                }
                Output::CancelTimer(key) => {
                    self.timers[i].remove(&key);
                }
                Output::Notify(e) => self.events[i].push(e),
                Output::StoreBlob {
                    manifest, chunks, ..
                } => {
                    manifest.verify().expect("a consistent manifest");
                    assert_eq!(manifest.chunks.len(), chunks.len());
                    let mut bytes = Vec::new();
                    for (index, chunk) in chunks.iter().enumerate() {
                        assert_eq!(chunk.index as usize, index);
                        assert_eq!(manifest.chunks[index], chunk.id);
                        assert_eq!(tabmesh_blobs::chunk_id(&chunk.bytes), chunk.id);
                        bytes.extend_from_slice(&chunk.bytes);
                    }
                    assert_eq!(bytes.len() as u64, manifest.len);
                    self.blobs[i].insert(manifest.id, bytes);
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        any
    }

    /// Handles every node's outputs until none has any.
    pub(crate) fn settle(&mut self) {
        while (0..self.nodes.len()).any(|i| self.drain_node(i)) {}
    }

    /// Delivers one queued message (dropped if its ends do not reach each other); `false` when
    /// the queue is empty.
    fn deliver_one(&mut self) -> bool {
        let Some(Queued {
            from,
            to,
            topic,
            bytes,
        }) = self.queue.pop_front()
        else {
            return false;
        };
        let from_id = self.nodes[from].id();
        let targets: Vec<usize> = match (to, topic) {
            (Some(to), _) => self.index_of(to).into_iter().collect(),
            (None, Some(c)) => (0..self.nodes.len())
                .filter(|&j| self.hosts[j].contains(&c))
                .collect(),
            (None, None) => Vec::new(),
        };
        for j in targets {
            if self.reachable(from, j) {
                self.tick();
                let now = self.local(j);
                self.nodes[j].handle_message(now, from_id, &bytes);
                self.drain_node(j);
            } else if to.is_none() && j != from {
                self.lost.push((from, j, bytes.clone()));
            }
        }
        true
    }

    /// Fires the earliest timer due by now (each node's by its own clock); `false` if none is.
    fn fire_due(&mut self) -> bool {
        let due = (0..self.nodes.len())
            .filter(|i| !self.offline.contains(i))
            .flat_map(|i| self.timers_due(i).map(move |(at, k)| (at, i, k)))
            .filter(|(at, _, _)| *at <= self.now)
            .min();
        let Some((_, i, key)) = due else {
            return false;
        };
        self.timers[i].remove(&key);
        let now = self.local(i);
        self.nodes[i].handle_timer(now, key);
        true
    }

    /// One step of [`Net::pump`]: handles every output, then delivers the oldest queued message
    /// or, if none, fires the earliest timer due by now; `false` when there was nothing to do.
    pub(crate) fn step(&mut self) -> bool {
        self.settle();
        self.deliver_one() || self.fire_due()
    }

    /// Whether the next queued message goes from node `from` to node `to` (a send, not a
    /// publish).
    pub(crate) fn next_is_send(&self, from: usize, to: usize) -> bool {
        let to = self.nodes[to].id();
        self.queue
            .front()
            .is_some_and(|m| m.from == from && m.to == Some(to))
    }

    /// Delivers messages and fires due timers until nothing is left to do at the current time
    /// (each delivery moves the clock a step; timers are not waited for).
    pub(crate) fn pump(&mut self) {
        for _ in 0..MAX_DELIVERIES {
            self.settle();
            if self.deliver_one() {
                continue;
            }
            if !self.fire_due() {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// Lets `ms` of virtual time pass: timers fire in time order, each followed by a pump.
    pub(crate) fn advance(&mut self, ms: u64) {
        let until = self.now + ms;
        self.pump();
        loop {
            let next = (0..self.nodes.len())
                .filter(|i| !self.offline.contains(i))
                .flat_map(|i| self.timers_due(i).map(|(at, _)| at))
                .filter(|at| *at <= until)
                .min();
            match next {
                Some(at) => {
                    self.now = self.now.max(at);
                    self.pump();
                }
                None => break,
            }
            if self.now >= until {
                break;
            }
        }
        self.now = self.now.max(until);
        self.pump();
    }

    /// Delivers again, in their order, the publishes a partition or an offline node kept from
    /// hosts that are reachable now (what a relay that keeps a topic's recent messages does),
    /// then pumps.
    pub(crate) fn replay_lost(&mut self) {
        let lost = std::mem::take(&mut self.lost);
        for (from, to, bytes) in lost {
            if self.reachable(from, to) {
                let id = self.nodes[from].id();
                self.inject(to, id, &bytes);
            } else {
                self.lost.push((from, to, bytes));
            }
        }
        self.pump();
    }

    /// Like [`Net::join`], but the joiner first receives every delta published in `self.ctx` so
    /// far (a relay's retained history), so it catches up through its DAG rather than from a
    /// snapshot.
    pub(crate) fn join_from_history(
        &mut self,
        joiner: usize,
        inviter: usize,
        role: Role,
        module: Option<&[u8]>,
    ) -> DeltaId {
        self.join_with(joiner, inviter, role, module, true)
    }

    /// [`Net::join`], the joiner first given the context's gossip so far if `replay_history`.
    fn join_with(
        &mut self,
        joiner: usize,
        inviter: usize,
        role: Role,
        module: Option<&[u8]>,
        replay_history: bool,
    ) -> DeltaId {
        let ctx = self.ctx;
        let link = self.nodes[inviter].invite(ctx, role, FAR, "").unwrap();
        self.tick();
        let now = self.local(joiner);
        assert_eq!(self.nodes[joiner].join_context(now, &link, module), Ok(ctx));
        if replay_history {
            let history: Vec<(usize, Vec<u8>)> = self
                .wire
                .iter()
                .filter(|s| s.to.is_none() && s.from != joiner)
                .filter(
                    |s| matches!(Wire::decode(&s.bytes), Ok(Wire::Gossip(f)) if f.context == ctx),
                )
                .map(|s| (s.from, s.bytes.clone()))
                .collect();
            for (from, bytes) in history {
                let id = self.nodes[from].id();
                self.inject(joiner, id, &bytes);
            }
        }
        self.pump();
        assert!(
            !self.nodes[joiner].is_joining(&ctx),
            "node {joiner} did not finish its join: {:?}",
            self.events[joiner]
        );
        self.joined(joiner)
            .unwrap_or_else(|| panic!("node {joiner}: {:?}", self.events[joiner]))
    }

    /// Handles node `i`'s outputs and takes back what it published or sent instead of delivering
    /// it: `(addressee, bytes)`, `None` for a publish.
    pub(crate) fn hold(&mut self, i: usize) -> Vec<(Option<NodeId>, Vec<u8>)> {
        self.drain_node(i);
        let mut held = Vec::new();
        let mut rest = VecDeque::new();
        for m in self.queue.drain(..) {
            if m.from == i {
                held.push((m.to, m.bytes));
            } else {
                rest.push_back(m);
            }
        }
        self.queue = rest;
        held
    }

    /// What node `i` published, held back (see [`Net::hold`]).
    pub(crate) fn hold_published(&mut self, i: usize) -> Vec<Vec<u8>> {
        self.hold(i)
            .into_iter()
            .filter(|(to, _)| to.is_none())
            .map(|(_, b)| b)
            .collect()
    }

    /// Hands `bytes` to node `to` as if `from` sent them, and handles its outputs.
    pub(crate) fn inject(&mut self, to: usize, from: NodeId, bytes: &[u8]) {
        self.tick();
        let now = self.local(to);
        self.nodes[to].handle_message(now, from, bytes);
        self.drain_node(to);
    }

    /// Node `i`'s events since index `from` of its log.
    pub(crate) fn events_since(&self, i: usize, from: usize) -> &[NodeEvent] {
        &self.events[i][from..]
    }

    /// Handlers node `i` ran: `(cause, index)`.
    pub(crate) fn ran(&self, i: usize) -> Vec<(DeltaId, u16)> {
        self.events[i]
            .iter()
            .filter_map(|e| match e {
                NodeEvent::HandlerRan { cause, index, .. } => Some((*cause, *index)),
                _ => None,
            })
            .collect()
    }

    /// Handler failures of node `i`.
    pub(crate) fn failed(&self, i: usize) -> Vec<NodeError> {
        self.events[i]
            .iter()
            .filter_map(|e| match e {
                NodeEvent::HandlerFailed { error, .. } => Some(error.clone()),
                _ => None,
            })
            .collect()
    }

    /// Node `i`'s sync events in `self.ctx`.
    pub(crate) fn sync_events(&self, i: usize) -> Vec<SyncEvent> {
        self.events[i]
            .iter()
            .filter_map(|e| match e {
                NodeEvent::Sync { context, event } if *context == self.ctx => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    /// The state root of node `i` in `self.ctx`.
    pub(crate) fn root(&self, i: usize) -> tabmesh_base::Hash {
        self.nodes[i].state(&self.ctx).unwrap().root_hash()
    }
}
