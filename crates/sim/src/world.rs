//! The simulated world: nodes, a virtual clock, an event queue and a faulty network.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use tabmesh_auth::{Keypair, Role};
use tabmesh_base::{
    hash_parts, ContextId, DeltaId, DetRng, Hash, Hasher, MemberId, MemoryKv, NodeId,
};
use tabmesh_node::{NodeConfig, NodeCore, NodeEvent, Output, Seed, TimerKey};
use tabmesh_sync::{SessionOutcome, SyncConfig, SyncError, SyncEvent};

use crate::byzantine::{self, Forgery, Hostile, Kind};
use crate::config::HOSTILE_TAIL_MS;
use crate::workload::Mix;
use crate::{app, workload, Metrics, SimConfig};

/// A join due while its node is down is tried again this much later (ms).
const JOIN_RETRY_MS: u64 = 1_000;

/// An equivocating write's real delta reaches the nodes that got its twin up to this much later
/// (ms).
const EQUIVOCATION_LAG_MS: u64 = 3_000;

/// Simulated time starts here (ms since the Unix epoch, early 2026) so skewed clocks stay positive.
const EPOCH_MS: u64 = 1_767_225_600_000;

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// C1–C5 held after the last write.
    Converged {
        /// Simulated ms from the last write to convergence.
        after_ms: u64,
    },
    /// Time ran out; the first convergence property that did not hold.
    NotConverged {
        /// Which property failed last.
        reason: String,
    },
}

#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
        /// Counted in `in_flight` (neither end was a removed or Byzantine member when it was
        /// sent).
        counted: bool,
        /// What it is (for the Byzantine verdicts; not part of the trace).
        kind: Kind,
    },
    Timer {
        node: usize,
        key: TimerKey,
        generation: u64,
    },
    Write {
        node: usize,
        context: usize,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Partition,
    Heal {
        a: usize,
        b: usize,
    },
    ClockJump {
        node: usize,
    },
    /// The creator of context 0 removes the last node from it.
    Remove,
    Join {
        node: usize,
        context: usize,
    },
    /// The Byzantine member replays a frame it kept.
    Replay,
    /// The Byzantine member sends a burst of junk.
    Junk,
    /// The Byzantine member sends a message it held back (an equivocating write's real delta,
    /// to the nodes that got the twin first).
    Later {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
}

#[derive(Debug)]
struct SimNode {
    id: NodeId,
    key: Keypair,
    core: Option<NodeCore>,
    disk: MemoryKv,
    /// Armed timers: key → generation.
    timers: BTreeMap<TimerKey, u64>,
    /// Local clock = simulated time + offset.
    offset: i64,
    restarts: u64,
}

/// A deterministic simulation of `NodeCore`s.
#[derive(Debug)]
pub struct Sim {
    config: SimConfig,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Event>,
    rng: DetRng,
    nodes: Vec<SimNode>,
    contexts: Vec<ContextId>,
    /// Context index → member node indexes (joined).
    members: Vec<BTreeSet<usize>>,
    /// Blocked pairs (a < b) → heal time.
    partitions: BTreeMap<(usize, usize), u64>,
    in_flight: usize,
    generation: u64,
    trace: Hasher,
    metrics: Metrics,
    last_write: u64,
    explain: bool,
    /// Handlers scenarios: the app module (or why it could not be read), each context's creator,
    /// the deltas whose event names a handler (→ author), handler runs and DAG applications per
    /// (delta, node).
    app: Result<&'static [u8], String>,
    creators: Vec<usize>,
    emitted: BTreeMap<DeltaId, usize>,
    runs: BTreeMap<(DeltaId, usize), u64>,
    applied: BTreeMap<(DeltaId, usize), u64>,
    /// Each context's invitation link (member role, never expiring) for the nodes that join it.
    links: Vec<String>,
    /// While the world is set up: messages delivered at once, without faults.
    setup: Option<VecDeque<(usize, usize, Vec<u8>)>>,
    /// Nodes removed from context 0 (they keep running; convergence does not wait for them).
    removed: BTreeSet<usize>,
    /// The removal delta, when it was written (simulated ms) and the member key it removed.
    removal: Option<(DeltaId, u64, MemberId)>,
    /// Deltas the removal's victim published in context 0, with when (simulated ms).
    victim_deltas: Vec<(DeltaId, u64)>,
    /// The Byzantine member, once the setup is over.
    hostile: Option<Hostile>,
}

impl Sim {
    /// A world as `config` describes it: every node hosts context 0; the other contexts have
    /// random subsets of at least two members. Nothing runs until [`Sim::run`].
    pub fn new(config: SimConfig) -> Sim {
        let mut rng = DetRng::new(config.seed);
        let mut nodes = Vec::new();
        for i in 0..config.nodes {
            let key = Keypair::from_secret(
                hash_parts(
                    b"tabmesh/sim/node-key",
                    &[&config.seed.to_le_bytes(), &(i as u64).to_le_bytes()],
                )
                .0,
            );
            let skew = config.faults.clock_skew_ms;
            let offset = if skew == 0 {
                0
            } else {
                rng.below(2 * skew + 1) as i64 - skew as i64
            };
            nodes.push(SimNode {
                id: NodeId(key.public()),
                key,
                core: None,
                disk: MemoryKv::new(),
                timers: BTreeMap::new(),
                offset,
                restarts: 0,
            });
        }
        let contexts = vec![ContextId::default(); config.contexts.max(1)];
        let mut sim = Sim {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            rng,
            nodes,
            members: vec![BTreeSet::new(); contexts.len()],
            contexts,
            partitions: BTreeMap::new(),
            in_flight: 0,
            generation: 0,
            trace: Hasher::new(b"tabmesh/sim/trace"),
            metrics: Metrics::default(),
            last_write: 0,
            explain: false,
            app: if config.handlers {
                app::handler_app()
            } else {
                Ok(&[])
            },
            creators: Vec::new(),
            emitted: BTreeMap::new(),
            runs: BTreeMap::new(),
            applied: BTreeMap::new(),
            links: Vec::new(),
            setup: Some(VecDeque::new()),
            removed: BTreeSet::new(),
            removal: None,
            victim_deltas: Vec::new(),
            hostile: None,
            config,
        };
        for i in 0..sim.nodes.len() {
            let seed = Seed::from_u64(sim.rng.next_u64());
            let core = NodeCore::new(sim.nodes[i].key.clone(), sim.node_config(), seed);
            sim.nodes[i].core = Some(core);
        }
        // Membership: context 0 everywhere, the others on random subsets of ≥ 2 nodes.
        let n = sim.nodes.len();
        for c in 0..sim.contexts.len() {
            let mut set: BTreeSet<usize> = if c == 0 {
                (0..n).collect()
            } else {
                (0..n).filter(|_| sim.rng.chance(0.6)).collect()
            };
            while set.len() < n.min(2) {
                set.insert(sim.rng.index(n));
            }
            let creator = set.first().copied().unwrap_or_default();
            sim.creators.push(creator);
            sim.found(c, creator);
            let late = sim.config.late_joiner.then(|| n - 1);
            let (joiners, join_at, spread) = sim.config.joiners;
            let last = n - usize::from(late.is_some());
            let concurrent = last.saturating_sub(joiners)..last;
            for node in set {
                if node == creator {
                    continue;
                }
                if Some(node) == late {
                    let at = sim.config.workload.write_until_ms;
                    sim.schedule(at, Event::Join { node, context: c });
                } else if concurrent.contains(&node) {
                    let at = join_at + sim.rng.below(spread + 1);
                    sim.schedule(at, Event::Join { node, context: c });
                } else {
                    // Founding members join during the setup, before faults and writes begin.
                    sim.join(node, c);
                }
            }
        }
        sim.settle_setup();
        sim.setup = None;
        // The setup (founding members joining) is not the scenario: its sessions, snapshots and
        // messages are not counted; what failed in it is.
        sim.metrics = Metrics {
            failures: std::mem::take(&mut sim.metrics.failures),
            ..Metrics::default()
        };
        sim.schedule_faults();
        if let (Some(b), Some(node)) = (sim.config.byzantine.clone(), n.checked_sub(1)) {
            // The last node joined like the others; from now on it misbehaves.
            let mut hostile = Hostile::new(node, b, sim.config.seed);
            let (replay, flood) = (hostile.config.replay, hostile.config.flood);
            let first_replay = 1 + hostile.rng.below(hostile.replay_every_ms);
            let first_junk = 1 + hostile.rng.below(hostile.flood_every_ms);
            sim.hostile = Some(hostile);
            if replay {
                sim.schedule(first_replay, Event::Replay);
            }
            if flood {
                sim.schedule(first_junk, Event::Junk);
            }
        }
        if let Some(at) = sim.config.remove_at_ms {
            sim.schedule(at, Event::Remove);
        }
        if sim.config.flood > 0 {
            sim.flood();
        }
        sim
    }

    /// Node `creator` founds context `c` (running the handler app in handler scenarios) and
    /// invites the others.
    fn found(&mut self, c: usize, creator: usize) {
        let now = self.local_now(creator);
        let module = self
            .config
            .handlers
            .then(|| self.app.clone().unwrap_or_default());
        let Some(core) = self.nodes[creator].core.as_mut() else {
            return;
        };
        match core.create_context(now, module, b"") {
            Ok((ctx, _)) => {
                self.contexts[c] = ctx;
                match core.invite(ctx, Role::Member, u64::MAX, "") {
                    Ok(link) => self.links.push(link),
                    Err(e) => self.metrics.failures.push(format!("invite: {e}")),
                }
            }
            Err(e) => self
                .metrics
                .failures
                .push(format!("create context {c}: {e}")),
        }
        self.members[c].insert(creator);
        self.drain(creator);
    }

    /// Node `node` joins context `c` with its invitation and connects to its members.
    fn join(&mut self, node: usize, c: usize) {
        if self.nodes[node].core.is_none() {
            // Down (crashed): its user joins once it is back.
            self.schedule(self.now + JOIN_RETRY_MS, Event::Join { node, context: c });
            return;
        }
        let now = self.local_now(node);
        let module = self
            .config
            .handlers
            .then(|| self.app.clone().unwrap_or_default());
        let link = self.links.get(c).cloned().unwrap_or_default();
        self.members[c].insert(node);
        if let Some(core) = self.nodes[node].core.as_mut() {
            if let Err(e) = core.join_context(now, &link, module) {
                self.metrics
                    .failures
                    .push(format!("join of node {node}: {e}"));
            }
            self.drain(node);
        }
        self.connect(node, c);
        let ctx = self.contexts[c];
        if let Some(core) = self.nodes[node].core.as_mut() {
            core.sync_now(now, ctx);
        }
        self.drain(node);
        self.settle_setup();
    }

    /// The victim of a removal: the last node.
    fn victim(&self) -> Option<usize> {
        self.config
            .remove_at_ms
            .and_then(|_| self.nodes.len().checked_sub(1))
    }

    /// The Byzantine member (the last node of a Byzantine run).
    pub fn byzantine_node(&self) -> Option<usize> {
        self.config
            .byzantine
            .as_ref()
            .and_then(|_| self.nodes.len().checked_sub(1))
    }

    /// Nodes convergence does not wait for: removed members and the Byzantine member.
    fn excluded(&self, node: usize) -> bool {
        self.removed.contains(&node) || Some(node) == self.byzantine_node()
    }

    /// The Byzantine member while it misbehaves (from the end of the setup until
    /// [`HOSTILE_TAIL_MS`] after the writes stop).
    fn hostile_now(&self) -> Option<usize> {
        let h = self.hostile.as_ref()?;
        (self.now < self.config.workload.write_until_ms + HOSTILE_TAIL_MS).then_some(h.node)
    }

    /// Every node but `node`.
    fn all_but(&self, node: usize) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| *i != node).collect()
    }

    /// A random non-empty part of `nodes` (each in with even odds), drawn by the Byzantine
    /// member; `proper`: not all of them either, when there are two or more.
    fn hostile_subset(&mut self, nodes: &[usize], proper: bool) -> BTreeSet<usize> {
        let Some(h) = self.hostile.as_mut().filter(|_| !nodes.is_empty()) else {
            return BTreeSet::new();
        };
        // Each draw succeeds with odds of at least a quarter.
        loop {
            let part: BTreeSet<usize> = nodes
                .iter()
                .copied()
                .filter(|_| h.rng.chance(0.5))
                .collect();
            let too_many = proper && nodes.len() >= 2 && part.len() == nodes.len();
            if !part.is_empty() && !too_many {
                return part;
            }
        }
    }

    /// The Byzantine member published a delta in context `c`: the real one goes to the others
    /// (those that get an equivocating write's twin get it [`EQUIVOCATION_LAG_MS`] later), forged
    /// copies to random parts of them.
    fn hostile_publish(&mut self, node: usize, c: usize, bytes: Vec<u8>) {
        let others = self.other_members(c, node);
        let Some(h) = self.hostile.as_mut() else {
            return;
        };
        let split = h.split.clone().unwrap_or_default();
        if h.split.is_some() {
            h.real = byzantine::envelope(&bytes);
        }
        h.keep(self.now, None, bytes.clone());
        let copies = if h.config.forge { h.forge_copies } else { 0 };
        let lag = 1 + h.rng.below(EQUIVOCATION_LAG_MS);
        for to in &others {
            if split.contains(to) {
                let event = Event::Later {
                    from: node,
                    to: *to,
                    bytes: bytes.clone(),
                };
                self.schedule(self.now + lag, event);
            } else {
                self.send(node, *to, bytes.clone());
            }
        }
        for _ in 0..copies {
            let Some(h) = self.hostile.as_mut() else {
                return;
            };
            let how = match h.rng.index(3) {
                0 => Forgery::Signature,
                1 => Forgery::Ciphertext,
                _ => Forgery::Stranger,
            };
            let Some((forged, _)) = h.forge(&bytes, how) else {
                continue;
            };
            self.metrics.byz_forged_deltas += 1;
            for to in self.hostile_subset(&others, false) {
                self.metrics.byz_forged += 1;
                self.send_kind(node, to, forged.clone(), Kind::Forged(how));
            }
        }
    }

    /// The Byzantine member's twin of a write: a copy of it loaded from its disk writes `op`
    /// (restricted to `mix`) at the same local time; its published frames in context `c`.
    fn twin_write(
        &mut self,
        node: usize,
        c: usize,
        op: u64,
        mix: Mix,
    ) -> Result<Vec<Vec<u8>>, String> {
        let seed = match self.hostile.as_mut() {
            Some(h) => Seed::from_u64(h.rng.next_u64()),
            None => return Ok(Vec::new()),
        };
        let now = self.local_now(node);
        let ctx = self.contexts[c];
        let mut twin = NodeCore::load(
            self.nodes[node].key.clone(),
            self.node_config(),
            seed,
            now,
            &self.nodes[node].disk,
        )
        .map_err(|e| format!("twin of node {node}: {e}"))?;
        while twin.poll_output().is_some() {}
        twin.commit(now, ctx, |txn| workload::write_kind(txn, op, mix))
            .map_err(|e| format!("twin write on node {node}: {e}"))?;
        let mut frames = Vec::new();
        while let Some(out) = twin.poll_output() {
            if let Output::Publish { context, bytes, .. } = out {
                if context == ctx {
                    frames.push(bytes);
                }
            }
        }
        Ok(frames)
    }

    /// Whether the Byzantine member equivocates at this write in context `c`: if so, its twin's
    /// frames (already written) and what the real write may be; the nodes that get the twin
    /// instead of the real delta are chosen.
    fn hostile_twin(&mut self, node: usize, c: usize) -> Option<(Vec<Vec<u8>>, Mix)> {
        if Some(node) != self.hostile_now() || self.config.handlers {
            return None;
        }
        let h = self.hostile.as_mut()?;
        if !h.config.equivocate || !h.rng.chance(h.equivocate_p) {
            return None;
        }
        let op = h.rng.next_u64();
        // Half the equivocations (with `equivocate_text`) insert text on both sides: two
        // characters under one element stamp.
        let (real, twin) = if h.config.equivocate_text && h.rng.chance(0.5) {
            (Mix::TextInsert, Mix::TextInsert)
        } else {
            (Mix::All, Mix::NoText)
        };
        match self.twin_write(node, c, op, twin) {
            Ok(frames) if !frames.is_empty() => {
                let others = self.other_members(c, node);
                let split = self.hostile_subset(&others, true);
                let h = self.hostile.as_mut()?;
                h.split = Some(split);
                h.real = None;
                Some((frames, real))
            }
            Ok(_) => None,
            Err(e) => {
                self.metrics.failures.push(e);
                None
            }
        }
    }

    /// After the real write of an equivocating write: its twin goes to the nodes chosen for it.
    /// The harness checks that the twin is one (same parents and HLC as the real delta, another
    /// id): anything else is a failure of the run.
    fn hostile_equivocate(&mut self, node: usize, frames: Vec<Vec<u8>>) {
        let Some(h) = self.hostile.as_mut() else {
            return;
        };
        let split = h.split.take().unwrap_or_default();
        let real = h.real.take();
        let twin = frames.first().and_then(|f| byzantine::envelope(f));
        match (real, twin) {
            (Some(r), Some(t)) if r.parents == t.parents && r.hlc == t.hlc && r.id() != t.id() => {
                self.metrics.byz_equivocations += 1;
            }
            // The real write changed nothing (a delete of what is not there): no delta, so the
            // twin is an ordinary write.
            (None, _) => {}
            (r, t) => self.metrics.failures.push(format!(
                "equivocation of node {node}: the twin is not one (real {:?}, twin {:?})",
                r.map(|e| (e.parents, e.hlc)),
                t.map(|e| (e.parents, e.hlc))
            )),
        }
        for bytes in frames {
            for to in &split {
                self.send_kind(node, *to, bytes.clone(), Kind::Twin);
            }
        }
    }

    /// The Byzantine member sends a kept frame again, at least [`REPLAY_MIN_AGE_MS`] old: to
    /// whom it was sealed for (a withheld answer, late) or to anyone.
    ///
    /// [`REPLAY_MIN_AGE_MS`]: crate::config::REPLAY_MIN_AGE_MS
    fn hostile_replay(&mut self) {
        let Some(node) = self.hostile_now() else {
            return;
        };
        let until = self.config.workload.write_until_ms + HOSTILE_TAIL_MS;
        let others = self.all_but(node);
        let now = self.now;
        let Some(h) = self.hostile.as_mut() else {
            return;
        };
        let next = now + 1 + h.rng.below(2 * h.replay_every_ms);
        let frame = h.old_frame(now).map(|(sealed_for, bytes)| {
            let to = match sealed_for {
                Some(to) if h.rng.chance(0.5) => to,
                _ => h.rng.pick(&others).copied().unwrap_or(node),
            };
            (to, bytes)
        });
        if next < until {
            self.schedule(next, Event::Replay);
        }
        if let Some((to, bytes)) = frame {
            self.trace.fixed(b"y");
            self.metrics.byz_replays += 1;
            self.send_kind(node, to, bytes, Kind::Replay);
        }
    }

    /// A burst of junk from the Byzantine member to one of the others, or to all: at least
    /// [`STRIKES_TO_BAN`](tabmesh_node::STRIKES_TO_BAN) messages each, a quarter of them replayed
    /// sealed messages (sync requests and answers it got, sealed for someone else).
    fn hostile_junk(&mut self) {
        let Some(node) = self.hostile_now() else {
            return;
        };
        let until = self.config.workload.write_until_ms + HOSTILE_TAIL_MS;
        let others = self.all_but(node);
        let Some(h) = self.hostile.as_mut() else {
            return;
        };
        let next = self.now + 1 + h.rng.below(2 * h.flood_every_ms);
        let targets: Vec<usize> = if h.rng.chance(0.3) {
            others
        } else {
            h.rng.pick(&others).copied().into_iter().collect()
        };
        let mut burst = Vec::new();
        for to in targets {
            for _ in 0..h.burst_len() {
                let replayed = if h.rng.chance(0.25) {
                    h.direct_frame()
                } else {
                    None
                };
                match replayed {
                    Some(bytes) => burst.push((to, bytes, Kind::Replay)),
                    None => burst.push((to, h.junk(), Kind::Junk)),
                }
            }
        }
        if next < until {
            self.schedule(next, Event::Junk);
        }
        self.trace.fixed(b"f");
        for (to, bytes, kind) in burst {
            match kind {
                Kind::Junk => self.metrics.byz_junk += 1,
                _ => self.metrics.byz_burst_replays += 1,
            }
            self.send_kind(node, to, bytes, kind);
        }
    }

    /// After convergence in a Byzantine run: no honest node holds a forged delta (a flipped
    /// signature's id is the genuine delta's: what must not be held is the forged signature under
    /// it), every honest node that was handed junk or a forged signature under a fresh id reported
    /// the Byzantine member (a rejection or a ban), and no honest node banned an honest one.
    pub fn check_byzantine(&self) -> Result<(), String> {
        let Some(h) = self.hostile.as_ref() else {
            return Ok(());
        };
        if self.metrics.honest_bans > 0 {
            return Err(format!(
                "byzantine: honest nodes banned honest peers {} times",
                self.metrics.honest_bans
            ));
        }
        for (c, ctx) in self.contexts.iter().enumerate() {
            for m in self.members[c].iter().filter(|m| !self.excluded(**m)) {
                let Some(r) = self.nodes[*m].core.as_ref().and_then(|n| n.replica(ctx)) else {
                    return Err(format!("byzantine: node {m} lacks context {c}"));
                };
                for (id, f) in &h.forged {
                    let held = match f.how {
                        Forgery::Signature => r
                            .dag()
                            .get(id)
                            .is_some_and(|d| d.payload.signature == f.signature),
                        Forgery::Ciphertext | Forgery::Stranger => {
                            r.dag().is_applied(id) || r.dag().get(id).is_some()
                        }
                    };
                    if held {
                        return Err(format!(
                            "byzantine: node {m} holds the forged delta {id} ({:?})",
                            f.how
                        ));
                    }
                }
            }
        }
        for m in &h.must_refuse {
            let (rejections, bans) = h.reports.get(m).copied().unwrap_or_default();
            if rejections + bans == 0 {
                return Err(format!(
                    "byzantine: node {m} got junk or a forged signature but never reported the Byzantine node"
                ));
            }
        }
        Ok(())
    }

    /// The creator of context 0 removes the victim (which keeps running, subscribed: it writes on
    /// without ever learning it was removed, since it cannot read the removal).
    fn remove_victim(&mut self) {
        let (Some(victim), Some(&admin)) = (self.victim(), self.creators.first()) else {
            return;
        };
        let ctx = self.contexts[0];
        let Some(member) = self.nodes[victim]
            .core
            .as_ref()
            .and_then(|c| c.member(&ctx))
        else {
            // The victim is down: its key is on its disk; try again a little later.
            self.schedule(self.now + 1_000, Event::Remove);
            return;
        };
        let now = self.local_now(admin);
        let Some(core) = self.nodes[admin].core.as_mut() else {
            // The admin is down: try again a little later.
            self.schedule(self.now + 1_000, Event::Remove);
            return;
        };
        match core.remove_member(now, ctx, member) {
            Ok(id) => {
                self.removal = Some((id, self.now, member));
                self.removed.insert(victim);
                self.trace.fixed(b"x").fixed(id.as_bytes());
            }
            Err(e) => self.metrics.failures.push(format!("removal: {e}")),
        }
        self.drain(admin);
    }

    /// After convergence in a removal run: every honest member applied the removal, the victim's
    /// deltas written after it are void on every honest member that holds them, each victim delta
    /// has the same verdict on every honest member, and the victim cannot read the new epoch.
    pub fn check_removal(&self) -> Result<(), String> {
        let (Some(victim), Some((removal, removed_at, removed))) = (self.victim(), self.removal)
        else {
            return Ok(());
        };
        let ctx = self.contexts[0];
        let honest: Vec<usize> = self.members[0]
            .iter()
            .copied()
            .filter(|m| *m != victim)
            .collect();
        let mut verdicts: BTreeMap<DeltaId, (usize, bool)> = BTreeMap::new();
        let mut epoch = None;
        for &m in &honest {
            let Some(core) = self.nodes[m].core.as_ref() else {
                return Err(format!("removal: node {m} is down"));
            };
            let Some(r) = core.replica(&ctx) else {
                return Err(format!("removal: node {m} lacks the context"));
            };
            if !r.dag().is_applied(&removal) {
                return Err(format!("removal: node {m} did not apply the removal"));
            }
            let membership = r.membership();
            if membership.members.contains_key(&removed) || !membership.removed.contains(&removed) {
                return Err(format!(
                    "removal: node {m} still counts the victim as a member"
                ));
            }
            epoch.get_or_insert(membership.epoch);
            for (d, at) in &self.victim_deltas {
                if r.dag().get(d).is_none() {
                    continue;
                }
                let void = r.is_void(d);
                if *at > removed_at && !void {
                    return Err(format!(
                        "removal: node {m} applied the victim's delta {d}, written after the removal"
                    ));
                }
                match verdicts.get(d) {
                    Some((other, v)) if *v != void => {
                        return Err(format!(
                            "removal: delta {d} is void on node {} but not on node {}",
                            if *v { other } else { &m },
                            if *v { &m } else { other }
                        ))
                    }
                    _ => {
                        verdicts.insert(*d, (m, void));
                    }
                }
            }
        }
        if let Some(core) = self.nodes[victim].core.as_ref() {
            if let Some(r) = core.replica(&ctx) {
                if r.dag().is_applied(&removal) {
                    return Err(
                        "removal: the victim applied its own removal (it holds the new key)".into(),
                    );
                }
                if epoch.is_some_and(|e| e == r.membership().epoch) {
                    return Err("removal: the victim derived the new epoch".into());
                }
            }
        }
        Ok(())
    }

    /// During the setup: delivers the queued messages at once until none is left.
    fn settle_setup(&mut self) {
        let mut steps = 0;
        while let Some((from, to, bytes)) = self.setup.as_mut().and_then(VecDeque::pop_front) {
            steps += 1;
            if steps > 1_000_000 {
                self.metrics.failures.push("setup: message storm".into());
                return;
            }
            let now = self.local_now(to);
            let from_id = self.nodes[from].id;
            if let Some(core) = self.nodes[to].core.as_mut() {
                core.handle_message(now, from_id, &bytes);
            }
            self.drain(to);
        }
    }

    fn node_config(&self) -> NodeConfig {
        let mut config = NodeConfig::default();
        let mut sync = SyncConfig::default();
        sync.tick_ms = self.config.tick_ms;
        sync.dag.max_pending = self.config.max_pending;
        if let Some((after, retain)) = self.config.compact {
            sync.compact_after = after;
            sync.compact_retain = retain;
            sync.housekeeping_ms = 5_000;
        }
        if let Some(retention) = self.config.tombstone_retention_ms {
            sync.tombstone_retention_ms = retention;
            sync.housekeeping_ms = 5_000;
        }
        config.sync = sync;
        config
    }

    /// Makes convergence failures say in detail what differs (slow: for debugging).
    pub fn set_explain(&mut self, on: bool) {
        self.explain = on;
    }

    /// The metrics so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The hash of every event processed so far: equal for equal seeds.
    pub fn trace_hash(&self) -> Hash {
        self.trace.clone().finish()
    }

    /// The simulated time (ms from the start).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// A node's core (`None` while crashed).
    pub fn node(&self, i: usize) -> Option<&NodeCore> {
        self.nodes.get(i).and_then(|n| n.core.as_ref())
    }

    /// The contexts.
    pub fn contexts(&self) -> &[ContextId] {
        &self.contexts
    }

    /// Members of context `c`.
    pub fn members(&self, c: usize) -> impl Iterator<Item = usize> + '_ {
        self.members.get(c).into_iter().flatten().copied()
    }

    // ---------------------------------------------------------------------------------------------
    // Scheduling.

    fn schedule(&mut self, at: u64, event: Event) {
        if matches!(event, Event::Deliver { counted: true, .. }) {
            self.in_flight += 1;
        }
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn schedule_faults(&mut self) {
        let f = self.config.faults.clone();
        let until = self.config.workload.write_until_ms;
        if f.partition_every_ms > 0 {
            let mut t = 0;
            loop {
                t += 1 + self.rng.below(2 * f.partition_every_ms);
                if t >= until {
                    break;
                }
                self.schedule(t, Event::Partition);
            }
        }
        if f.crash_every_ms > 0 {
            let mut t = 0;
            loop {
                t += 1 + self.rng.below(2 * f.crash_every_ms);
                if t >= until {
                    break;
                }
                let node = self.rng.index(self.nodes.len());
                self.schedule(t, Event::Crash { node });
            }
        }
        if f.clock_jump_back_ms > 0 && !self.nodes.is_empty() {
            self.schedule(until / 2, Event::ClockJump { node: 0 });
        }
        let every = self.config.workload.write_every_ms.max(1);
        for c in 0..self.contexts.len() {
            for node in 0..self.nodes.len() {
                let first = self.rng.below(every) + 1;
                self.schedule(first, Event::Write { node, context: c });
            }
        }
    }

    /// Node 0 writes `flood` deltas offline; they reach node 1 in random order within a second.
    fn flood(&mut self) {
        let ctx = self.contexts[0];
        let now = self.local_now(0);
        // Node 1 has state of its own, so it may not take a snapshot: the flood goes through its
        // pending buffer, pulls and delta sync.
        let now1 = self.local_now(1);
        if let Some(core) = self.nodes.get_mut(1).and_then(|n| n.core.as_mut()) {
            let ok = core
                .commit(now1, ctx, |txn| workload::write(txn, u64::MAX))
                .is_ok();
            if !ok {
                self.metrics
                    .failures
                    .push("flood: node 1 setup failed".into());
            }
            self.drain(1);
        }
        let mut frames = Vec::new();
        let node = &mut self.nodes[0];
        if let Some(core) = node.core.as_mut() {
            for i in 0..self.config.flood {
                let op = i as u64;
                if core
                    .commit(now + op, ctx, |txn| workload::write(txn, op))
                    .is_err()
                {
                    self.metrics.failures.push("flood write failed".into());
                }
                while let Some(out) = core.poll_output() {
                    match out {
                        Output::Persist(batch) => node.disk.apply(&batch),
                        Output::Publish { bytes, .. } => frames.push(bytes),
                        _ => {}
                    }
                }
            }
        }
        self.metrics.writes += frames.len() as u64;
        self.rng.shuffle(&mut frames);
        for bytes in frames {
            let at = 1 + self.rng.below(1_000);
            self.metrics.messages += 1;
            self.metrics.bytes += bytes.len() as u64;
            self.schedule(
                at,
                Event::Deliver {
                    to: 1,
                    from: 0,
                    bytes,
                    counted: true,
                    kind: Kind::Plain,
                },
            );
        }
    }

    fn local_now(&self, node: usize) -> u64 {
        let offset = self.nodes.get(node).map_or(0, |n| n.offset);
        (EPOCH_MS as i64 + self.now as i64 + offset).max(0) as u64
    }

    // ---------------------------------------------------------------------------------------------
    // Running.

    /// Runs until convergence after the last write, or until `max_time_ms`.
    pub fn run(&mut self) -> Verdict {
        self.run_observed(|_, _| {})
    }

    /// [`Sim::run`], calling `observe(now_ms, reason)` whenever the first failing convergence
    /// property changes after the last write (for `--explain`).
    /// A handlers scenario whose app module cannot be read fails at once, naming
    /// `scripts/build-apps.sh`.
    pub fn run_observed(&mut self, observe: impl FnMut(u64, &str)) -> Verdict {
        if let Err(e) = &self.app {
            self.metrics.failures.push(e.clone());
            return Verdict::NotConverged { reason: e.clone() };
        }
        let verdict = self.run_events(observe);
        self.count_state_metrics();
        if self.config.handlers && matches!(verdict, Verdict::Converged { .. }) {
            if let Err(e) = self.check_handlers() {
                self.metrics.failures.push(e);
            }
        }
        if let Some(h) = self.hostile.as_ref() {
            self.metrics.byz_reporters = h.must_refuse.len() as u64;
        }
        if matches!(verdict, Verdict::Converged { .. }) {
            if let Err(e) = self.check_removal() {
                self.metrics.failures.push(e);
            }
            if let Err(e) = self.check_byzantine() {
                self.metrics.failures.push(e);
            }
        }
        verdict
    }

    /// After convergence in a handlers scenario: every event's handler ran on every member that
    /// applied its delta through the DAG — exactly once without crashes, at least once with — and
    /// never on the author nor on a member that got the delta's state another way.
    pub fn check_handlers(&mut self) -> Result<(), String> {
        let crashes = self.metrics.crashes > 0;
        let (mut due, mut skipped, mut reruns) = (0, 0, 0);
        for (delta, author) in &self.emitted {
            for m in &self.members[0] {
                let runs = self.runs.get(&(*delta, *m)).copied().unwrap_or(0);
                if m == author {
                    if runs > 0 {
                        return Err(format!("handler of {delta} ran {runs}× on its author {m}"));
                    }
                    continue;
                }
                let applied = self.applied.get(&(*delta, *m)).copied().unwrap_or(0);
                if applied == 0 {
                    skipped += 1;
                    if runs > 0 && !crashes {
                        return Err(format!(
                            "handler of {delta} ran on {m}, which never applied it"
                        ));
                    }
                    continue;
                }
                due += 1;
                reruns += runs.saturating_sub(1);
                let ok = if crashes { runs >= 1 } else { runs == 1 };
                if !ok {
                    return Err(format!(
                        "handler of {delta} ran {runs}× on member {m} (applied {applied}×, crashes: {crashes})"
                    ));
                }
            }
        }
        self.metrics.handler_pairs_due = due;
        self.metrics.handler_pairs_skipped = skipped;
        self.metrics.handler_reruns = reruns;
        if self.metrics.handler_failures > 0 {
            return Err(format!("{} handlers failed", self.metrics.handler_failures));
        }
        Ok(())
    }

    /// Sums the replicas' GC counters and entity counts into the metrics.
    fn count_state_metrics(&mut self) {
        let m = &mut self.metrics;
        (
            m.tombstones_collected,
            m.ancient_dropped,
            m.entities_forgotten,
        ) = (0, 0, 0);
        m.entities_at_end = 0;
        for core in self.nodes.iter().filter_map(|n| n.core.as_ref()) {
            for ctx in core.contexts() {
                if let Some(r) = core.replica(&ctx) {
                    m.tombstones_collected += r.metrics().tombstones_collected;
                    m.ancient_dropped += r.metrics().ancient_dropped;
                    m.entities_forgotten += r.metrics().entities_forgotten;
                    m.entities_at_end += r.state().len() as u64;
                }
            }
        }
    }

    fn run_events(&mut self, mut observe: impl FnMut(u64, &str)) -> Verdict {
        let mut reason = String::from("no event ran");
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            if at > self.config.max_time_ms {
                break;
            }
            self.now = at;
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            self.step(event);
            self.metrics.events += 1;
            if self.now >= self.config.workload.write_until_ms {
                match self.check() {
                    Ok(()) => {
                        let after_ms = self.now.saturating_sub(self.last_write);
                        self.metrics.converged_at_ms = Some(self.now);
                        return Verdict::Converged { after_ms };
                    }
                    Err(why) => {
                        if why != reason {
                            observe(self.now, &why);
                        }
                        reason = why;
                    }
                }
            }
        }
        Verdict::NotConverged { reason }
    }

    fn step(&mut self, event: Event) {
        self.trace.fixed(&self.now.to_le_bytes());
        match event {
            Event::Deliver {
                to,
                from,
                bytes,
                counted,
                kind,
            } => {
                if counted {
                    self.in_flight -= 1;
                }
                self.trace
                    .fixed(b"d")
                    .fixed(&(to as u64).to_le_bytes())
                    .part(&bytes);
                let now = self.local_now(to);
                let from_id = self.nodes[from].id;
                if self.blocked(from, to) {
                    self.metrics.dropped += 1;
                    return;
                }
                if self.nodes[to].core.is_none() {
                    self.metrics.dropped += 1;
                    return;
                }
                if let Some(h) = self.hostile.as_mut() {
                    if kind.refused_on_arrival() {
                        h.must_refuse.insert(to);
                    }
                }
                if Some(to) == self.hostile_now() {
                    if let Some(h) = self.hostile.as_mut() {
                        h.keep(self.now, None, bytes.clone());
                    }
                }
                if let Some(core) = self.nodes[to].core.as_mut() {
                    core.handle_message(now, from_id, &bytes);
                }
                self.drain(to);
            }
            Event::Timer {
                node,
                key,
                generation,
            } => {
                if self.nodes[node].timers.get(&key) != Some(&generation) {
                    return;
                }
                self.nodes[node].timers.remove(&key);
                self.trace.fixed(b"t").fixed(&(node as u64).to_le_bytes());
                let now = self.local_now(node);
                if let Some(core) = self.nodes[node].core.as_mut() {
                    core.handle_timer(now, key);
                    self.drain(node);
                }
            }
            Event::Write { node, context } => {
                let every = self.config.workload.write_every_ms.max(1);
                if self.now < self.config.workload.write_until_ms {
                    let next = self.now + 1 + self.rng.below(2 * every);
                    if next < self.config.workload.write_until_ms {
                        self.schedule(next, Event::Write { node, context });
                    }
                }
                if !self.members[context].contains(&node) {
                    return;
                }
                let now = self.local_now(node);
                let ctx = self.contexts[context];
                let op = self.rng.next_u64();
                self.trace
                    .fixed(b"w")
                    .fixed(&(node as u64).to_le_bytes())
                    .fixed(&op.to_le_bytes());
                let Some(core) = self.nodes[node].core.as_mut() else {
                    return;
                };
                if core.is_joining(&ctx) {
                    // Not a member yet: its join waits for the invitation's heads.
                    return;
                }
                let twin = self.hostile_twin(node, context);
                let mix = twin.as_ref().map_or(Mix::All, |(_, mix)| *mix);
                let Some(core) = self.nodes[node].core.as_mut() else {
                    return;
                };
                let result = if self.config.handlers {
                    core.execute(now, ctx, "set", &app::set_input(op))
                        .map(|out| out.delta)
                } else {
                    core.commit(now, ctx, |txn| workload::write_kind(txn, op, mix))
                        .map(|(_, delta)| delta)
                };
                match result {
                    Ok(delta) => {
                        self.metrics.writes += 1;
                        self.last_write = self.now;
                        if let (true, Some(d)) = (self.config.handlers, delta) {
                            self.emitted.insert(d, node);
                            self.metrics.handler_events += 1;
                        }
                    }
                    Err(e) => self
                        .metrics
                        .failures
                        .push(format!("write on node {node}: {e}")),
                }
                self.drain(node);
                if let Some((frames, _)) = twin {
                    self.hostile_equivocate(node, frames);
                }
            }
            Event::Crash { node } => {
                if Some(node) == self.byzantine_node() {
                    // The Byzantine member never crashes (its misbehaviour is the fault).
                    return;
                }
                if self.nodes[node].core.take().is_none() {
                    return;
                }
                self.trace.fixed(b"c").fixed(&(node as u64).to_le_bytes());
                self.metrics.crashes += 1;
                self.nodes[node].timers.clear();
                let (lo, hi) = self.config.faults.restart_after_ms;
                let back = self.now + lo + self.rng.below(hi.saturating_sub(lo) + 1);
                self.schedule(back, Event::Restart { node });
                // Peers notice the disconnect.
                for c in 0..self.contexts.len() {
                    if !self.members[c].contains(&node) {
                        continue;
                    }
                    let others = self.other_members(c, node);
                    for other in others {
                        let now = self.local_now(other);
                        let id = self.nodes[node].id;
                        let ctx = self.contexts[c];
                        if let Some(core) = self.nodes[other].core.as_mut() {
                            core.peer_left(now, ctx, id);
                            self.drain(other);
                        }
                    }
                }
            }
            Event::Restart { node } => {
                self.trace.fixed(b"r").fixed(&(node as u64).to_le_bytes());
                let now = self.local_now(node);
                let seed = Seed::from_u64(self.rng.next_u64());
                let config = self.node_config();
                match NodeCore::load(
                    self.nodes[node].key.clone(),
                    config,
                    seed,
                    now,
                    &self.nodes[node].disk,
                ) {
                    Ok(core) => {
                        self.nodes[node].core = Some(core);
                        self.nodes[node].restarts += 1;
                        self.metrics.restarts += 1;
                        self.drain(node);
                        for c in 0..self.contexts.len() {
                            if self.members[c].contains(&node) {
                                self.connect(node, c);
                            }
                        }
                    }
                    Err(e) => self
                        .metrics
                        .failures
                        .push(format!("restart of node {node}: {e}")),
                }
            }
            Event::Partition => {
                let n = self.nodes.len();
                if n < 2 {
                    return;
                }
                // Cut a random group of nodes off from the rest.
                let group: BTreeSet<usize> = (0..n).filter(|_| self.rng.chance(0.4)).collect();
                let (lo, hi) = self.config.faults.partition_len_ms;
                let until = self.now + lo + self.rng.below(hi.saturating_sub(lo) + 1);
                self.trace.fixed(b"p");
                for a in 0..n {
                    for b in (a + 1)..n {
                        if group.contains(&a) != group.contains(&b) {
                            self.partitions.insert((a, b), until);
                            self.schedule(until, Event::Heal { a, b });
                        }
                    }
                }
                self.metrics.partitions += 1;
            }
            Event::Heal { a, b } => {
                if self.partitions.get(&(a, b)).is_some_and(|t| *t <= self.now) {
                    self.partitions.remove(&(a, b));
                }
            }
            Event::ClockJump { node } => {
                self.nodes[node].offset -= self.config.faults.clock_jump_back_ms as i64;
                self.trace.fixed(b"j");
            }
            Event::Join { node, context } => self.join(node, context),
            Event::Remove => self.remove_victim(),
            Event::Replay => self.hostile_replay(),
            Event::Later { from, to, bytes } => {
                self.trace.fixed(b"l").fixed(&(to as u64).to_le_bytes());
                self.send(from, to, bytes);
            }
            Event::Junk => self.hostile_junk(),
        }
    }

    /// Tells `node` and the live members of context `c` about each other.
    fn connect(&mut self, node: usize, c: usize) {
        let ctx = self.contexts[c];
        let others = self.other_members(c, node);
        for other in others {
            if self.nodes[other].core.is_none() {
                continue;
            }
            let (a_id, b_id) = (self.nodes[node].id, self.nodes[other].id);
            let now = self.local_now(node);
            if let Some(core) = self.nodes[node].core.as_mut() {
                core.peer_joined(now, ctx, b_id);
            }
            self.drain(node);
            let now = self.local_now(other);
            if let Some(core) = self.nodes[other].core.as_mut() {
                core.peer_joined(now, ctx, a_id);
            }
            self.drain(other);
        }
    }

    /// How two members of context `c` differ (for `--explain`).
    fn explain_divergence(&self, c: usize) -> String {
        let ctx = self.contexts[c];
        let members: Vec<usize> = self.members[c].iter().copied().collect();
        let (Some(a), Some(b)) = (members.first(), members.last()) else {
            return String::new();
        };
        let (Some(ra), Some(rb)) = (
            self.nodes[*a].core.as_ref().and_then(|n| n.replica(&ctx)),
            self.nodes[*b].core.as_ref().and_then(|n| n.replica(&ctx)),
        ) else {
            return String::new();
        };
        let mut out = format!(
            "\n    node {a}: heads {:?} stats {:?}\n    node {b}: heads {:?} stats {:?}",
            ra.dag().heads(),
            ra.dag().stats(0),
            rb.dag().heads(),
            rb.dag().stats(0)
        );
        for e in ra.state().entities() {
            match rb.state().entity(&e.id()) {
                Some(other) if other == e => {}
                Some(other) => {
                    out.push_str(&format!("\n    differs: {e:?}\n         vs: {other:?}"))
                }
                None => out.push_str(&format!("\n    only on {a}: {e:?}")),
            }
        }
        for e in rb.state().entities() {
            if ra.state().entity(&e.id()).is_none() {
                out.push_str(&format!("\n    only on {b}: {e:?}"));
            }
        }
        out
    }

    /// Which parents node `i` waits for and who holds them (for `--explain`).
    fn explain_pending(&self, i: usize) -> String {
        let Some(core) = self.nodes[i].core.as_ref() else {
            return String::new();
        };
        let mut out = String::new();
        for ctx in core.contexts() {
            let Some(r) = core.replica(&ctx) else {
                continue;
            };
            for id in r.dag().missing_parents(3) {
                let holders: Vec<String> = self
                    .nodes
                    .iter()
                    .enumerate()
                    .filter_map(|(j, n)| {
                        let st = n.core.as_ref()?.replica(&ctx)?.dag().status(&id);
                        Some(format!("{j}:{st:?}"))
                    })
                    .collect();
                out.push_str(&format!(
                    " [missing {id:?} in {ctx:?}: {}]",
                    holders.join(",")
                ));
            }
        }
        out
    }

    /// The members of context `c` other than `node`.
    fn other_members(&self, c: usize, node: usize) -> Vec<usize> {
        self.members[c]
            .iter()
            .copied()
            .filter(|m| *m != node)
            .collect()
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        if self.now < self.config.isolate_until_ms {
            return true;
        }
        if let Some((node, from, until)) = self.config.offline {
            if (a == node || b == node) && (from..until).contains(&self.now) {
                return true;
            }
        }
        let key = (a.min(b), a.max(b));
        self.partitions
            .get(&key)
            .is_some_and(|until| *until > self.now)
    }

    /// Handles every output of a node.
    fn drain(&mut self, node: usize) {
        while let Some(out) = self.nodes[node]
            .core
            .as_mut()
            .and_then(NodeCore::poll_output)
        {
            match out {
                Output::Persist(batch) => {
                    self.metrics.persisted_batches += 1;
                    self.nodes[node].disk.apply(&batch);
                }
                Output::Publish {
                    context,
                    bytes,
                    delta,
                } => {
                    let Some(c) = self.contexts.iter().position(|x| *x == context) else {
                        continue;
                    };
                    if c == 0 && Some(node) == self.victim() {
                        self.victim_deltas.push((delta, self.now));
                    }
                    if Some(node) == self.hostile_now() {
                        self.hostile_publish(node, c, bytes);
                        continue;
                    }
                    let targets = self.other_members(c, node);
                    for to in targets {
                        self.send(node, to, bytes.clone());
                    }
                }
                Output::Send { to, bytes } => {
                    let Some(to) = self.nodes.iter().position(|n| n.id == to) else {
                        continue;
                    };
                    if let Some(h) = self.hostile.as_mut().filter(|h| h.node == node) {
                        if h.config.withhold {
                            // Withheld (for good: this node never answers), kept for replay.
                            self.metrics.byz_withheld += 1;
                            h.keep(self.now, Some(to), bytes);
                            continue;
                        }
                    }
                    self.send(node, to, bytes);
                }
                Output::ArmTimer { key, at_ms } => {
                    self.generation += 1;
                    let generation = self.generation;
                    self.nodes[node].timers.insert(key, generation);
                    let delay = at_ms.saturating_sub(self.local_now(node));
                    self.schedule(
                        self.now + delay,
                        Event::Timer {
                            node,
                            key,
                            generation,
                        },
                    );
                }
                Output::CancelTimer(key) => {
                    self.nodes[node].timers.remove(&key);
                }
                Output::Subscribe(_) => {}
                Output::Notify(event) => self.observe(node, event),
                _ => {}
            }
        }
    }

    fn observe(&mut self, node: usize, event: NodeEvent) {
        self.observe_hostile(node, &event);
        match event {
            NodeEvent::Sync { event, .. } => match event {
                SyncEvent::SessionEnded {
                    protocol,
                    outcome,
                    peer,
                } => {
                    if let SessionOutcome::Failed(why) = &outcome {
                        if self.metrics.failure_samples.len() < 12 {
                            let peer = self
                                .nodes
                                .iter()
                                .position(|n| n.id == peer)
                                .unwrap_or(usize::MAX);
                            self.metrics.failure_samples.push(format!(
                                "{}ms {node}->{peer} {protocol:?}: {why:?}",
                                self.now
                            ));
                        }
                    }
                    self.metrics.count_session(protocol, &outcome);
                    if let SessionOutcome::Converged { .. } = outcome {
                        if protocol == tabmesh_sync::Protocol::Snapshot {
                            self.metrics
                                .snapshots_by_node
                                .entry(node)
                                .and_modify(|n| *n += 1)
                                .or_insert(1);
                        }
                    }
                }
                SyncEvent::Applied { ids, .. } if self.config.handlers => {
                    for id in ids {
                        *self.applied.entry((id, node)).or_insert(0) += 1;
                    }
                }
                SyncEvent::Voided { .. } => self.metrics.voided += 1,
                SyncEvent::Rebuilt { .. } => self.metrics.rebuilds += 1,
                SyncEvent::Rejected { error, .. } => {
                    self.metrics.rejections += 1;
                    if self.metrics.rejection_samples.len() < 8 {
                        self.metrics.rejection_samples.push(error.to_string());
                    }
                }
                _ => {}
            },
            NodeEvent::Rejected { error, .. } => {
                self.metrics.rejections += 1;
                if self.metrics.rejection_samples.len() < 8 {
                    self.metrics.rejection_samples.push(error.to_string());
                }
            }
            NodeEvent::JoinFailed { error, .. } => self
                .metrics
                .failures
                .push(format!("join failed on node {node}: {error}")),
            NodeEvent::HandlerRan { cause, .. } => {
                self.metrics.handler_runs += 1;
                *self.metrics.handler_runs_by_node.entry(node).or_insert(0) += 1;
                *self.runs.entry((cause, node)).or_insert(0) += 1;
            }
            NodeEvent::HandlerFailed { error, .. } => {
                self.metrics.handler_failures += 1;
                if self.metrics.rejection_samples.len() < 8 {
                    self.metrics.rejection_samples.push(error.to_string());
                }
            }
            _ => {}
        }
    }

    /// Counts what honest node `node` reported about the Byzantine member (rejections of its
    /// messages, bans of it, refusals of its forged deltas) and bans of honest peers.
    fn observe_hostile(&mut self, node: usize, event: &NodeEvent) {
        let Some(h) = self.hostile.as_mut() else {
            return;
        };
        if node == h.node {
            return;
        }
        let byz = self.nodes[h.node].id;
        let (from, error) = match event {
            NodeEvent::PeerBanned { peer, .. } => {
                if *peer == byz {
                    self.metrics.byz_bans += 1;
                    h.reports.entry(node).or_default().1 += 1;
                } else {
                    self.metrics.honest_bans += 1;
                }
                return;
            }
            NodeEvent::Rejected { from, error } => (*from, error),
            NodeEvent::Sync {
                event:
                    SyncEvent::Rejected {
                        from: Some(from),
                        error,
                    },
                ..
            } => (*from, error),
            _ => return,
        };
        if from != byz {
            return;
        }
        self.metrics.byz_rejections += 1;
        h.reports.entry(node).or_default().0 += 1;
        if let SyncError::Rejected { id, .. } = error {
            if h.forged.contains_key(id) {
                self.metrics.byz_forged_refused += 1;
            }
        }
    }

    /// One line per node and context: heads, counts, root, governance digest and log, members,
    /// pending parents (for `--explain`).
    pub fn node_report(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(core) = n.core.as_ref() else {
                lines.push(format!("node {i}: down"));
                continue;
            };
            for (c, ctx) in self.contexts.iter().enumerate() {
                let Some(r) = core.replica(ctx) else {
                    continue;
                };
                let s = r.summary();
                let log: Vec<String> = r
                    .governance()
                    .map(|(id, _, op, void)| {
                        format!("{id}:{}{}", op.name(), if void { ":void" } else { "" })
                    })
                    .collect();
                lines.push(format!(
                    "node {i} context {c}: member {}, heads {}, applied {}, pending {}, root {}, governance {} {log:?}, members {}, joining {}{}",
                    r.member(),
                    s.heads.len(),
                    s.applied,
                    s.pending,
                    s.root,
                    s.governance,
                    r.membership().members.len(),
                    core.is_joining(ctx),
                    self.explain_pending(i)
                ));
            }
        }
        lines
    }

    /// Puts a message on the wire with the configured faults (during the setup: delivered next,
    /// without faults).
    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.send_kind(from, to, bytes, Kind::Plain);
    }

    /// [`Sim::send`] of a message of a kind.
    fn send_kind(&mut self, from: usize, to: usize, bytes: Vec<u8>, kind: Kind) {
        if let Some(setup) = self.setup.as_mut() {
            setup.push_back((from, to, bytes));
            return;
        }
        self.metrics.messages += 1;
        self.metrics.bytes += bytes.len() as u64;
        let f = self.config.faults.clone();
        if self.rng.chance(f.loss) {
            self.metrics.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(f.duplicate) {
            self.metrics.duplicated += 1;
            2
        } else {
            1
        };
        // Messages of a removed member never settle (its requests are refused forever), nor a
        // Byzantine member's: they are delivered, but convergence does not wait for them.
        let counted = !self.excluded(from) && !self.excluded(to);
        for _ in 0..copies {
            let delay =
                f.latency_ms + self.rng.below(f.jitter_ms + 1) + self.rng.below(f.reorder_ms + 1);
            self.schedule(
                self.now + delay.max(1),
                Event::Deliver {
                    to,
                    from,
                    bytes: bytes.clone(),
                    counted,
                    kind,
                },
            );
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Convergence.

    /// C1–C5, in order; the first that fails, as text.
    pub fn check(&self) -> Result<(), String> {
        if self.in_flight > 0 {
            let detail = if self.explain {
                let pending: Vec<String> = self
                    .events
                    .values()
                    .filter_map(|e| match e {
                        Event::Deliver {
                            from,
                            to,
                            counted: true,
                            ..
                        } => Some(format!("{from}->{to}")),
                        _ => None,
                    })
                    .collect();
                format!(" {pending:?}")
            } else {
                String::new()
            };
            return Err(format!("C1: {} messages in flight{detail}", self.in_flight));
        }
        for (i, n) in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.excluded(*i))
        {
            let Some(core) = &n.core else {
                return Err(format!("C2: node {i} is down"));
            };
            if !core.is_idle() {
                return Err(format!("C2: node {i} is syncing"));
            }
        }
        for (i, n) in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.excluded(*i))
        {
            let due = n.core.as_ref().map_or(0, NodeCore::due_handlers);
            if due > 0 {
                return Err(format!("C3: node {i} has {due} due handlers"));
            }
            if n.core.as_ref().is_some_and(NodeCore::has_pending) {
                return Err(format!(
                    "C3: node {i} has pending deltas{}",
                    self.explain_pending(i)
                ));
            }
            if let Some(core) = &n.core {
                if let Some(c) = self.contexts.iter().position(|c| core.is_joining(c)) {
                    return Err(format!("C3: node {i} has not joined context {c} yet"));
                }
            }
        }
        for (i, n) in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.excluded(*i))
        {
            let armed = n.core.as_ref().map_or(0, NodeCore::sync_timers_armed);
            if armed > 0 {
                return Err(format!("C4: node {i} has {armed} sync timers armed"));
            }
        }
        for (c, ctx) in self.contexts.iter().enumerate() {
            let mut digests = BTreeMap::new();
            for m in self.members[c].iter().filter(|m| !self.excluded(**m)) {
                let Some(state) = self.nodes[*m]
                    .core
                    .as_ref()
                    .and_then(|core| core.state(ctx))
                else {
                    return Err(format!("C5: node {m} lacks context {c}"));
                };
                digests.insert(*m, (state.root_hash(), workload::values(state)));
            }
            let mut it = digests.values();
            if let Some(first) = it.next() {
                if it.any(|d| d != first) {
                    let roots: Vec<String> = digests
                        .iter()
                        .map(|(m, (r, _))| format!("{m}:{r:?}"))
                        .collect();
                    let detail = if self.explain {
                        self.explain_divergence(c)
                    } else {
                        String::new()
                    };
                    return Err(format!(
                        "C5: context {c} differs: {}{detail}",
                        roots.join(" ")
                    ));
                }
            }
        }
        Ok(())
    }
}
