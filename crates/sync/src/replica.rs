//! [`Replica`]: one context's DAG and state, with every sync protocol that keeps it caught up.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tabmesh_auth::{Entropy, Invitation, InviteLink, Keypair, Role, SymKey};
use tabmesh_base::{
    make_room, ContextId, DeltaId, DetRng, Hash, Hlc, KvRead, MemberId, NodeId, WriteBatch,
};
use tabmesh_dag::{AddOutcome, Cascade, CausalDelta, Dag, DeltaStatus, RestoreError};
use tabmesh_state::{State, StateError, Txn};

use crate::direct::{InviteeProof, Sealed};
use crate::due::{self, DueHandler};
use crate::gov::governance::{Governance, Opened, VoidReason};
use crate::gov::{context_id, Founder, GovOp, KeyMaterial};
use crate::{
    select_protocol, AccessError, AppEvent, Body, DeltaPayload, Envelope, Message, Protocol,
    Refusal, Request, Response, Summary, SyncConfig, SyncError, MAX_DELTA_CIPHERTEXT,
    MAX_DELTA_PAYLOAD, MAX_IDS,
};

mod merkle;
mod pull;
mod serve;
mod snapshot;

use merkle::MerkleWalk;
pub use merkle::MAX_WALK_QUEUE;
use pull::Wanted;
pub use pull::MAX_PULLS_IN_FLIGHT;
use snapshot::{Frozen, SnapshotJoin};

/// What a [`Replica`] asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Publish a delta on the context's topic.
    Broadcast(Envelope),
    /// Send a request or response to one peer.
    Send {
        /// The peer.
        to: NodeId,
        /// The message (the driver frames it with the context id).
        message: Message,
    },
    /// Persist this batch atomically before acknowledging anything that depends on it.
    Persist(WriteBatch),
    /// Tell subscribers.
    Event(SyncEvent),
}

/// What happened, for subscribers, metrics and tests.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// Deltas were applied through the DAG (received, cascaded, pulled or synced), in apply order.
    /// Their events that name a handler are now due ([`Replica::take_due`]).
    Applied {
        /// Their ids.
        ids: Vec<DeltaId>,
        /// The state root afterwards.
        root: Hash,
    },
    /// A peer's delta applied here carried app events (the app's own vocabulary: for an app on
    /// the SDK, `data` is JSON). Reported as it applies, before the `Applied` that lists it;
    /// never for this replica's own deltas (their caller got the events) nor during a rebuild.
    Emitted {
        /// The delta.
        delta: DeltaId,
        /// Its author.
        author: MemberId,
        /// Its events, in order.
        events: Vec<AppEvent>,
    },
    /// Something a peer sent was refused; nothing changed because of it.
    Rejected {
        /// The peer, when known.
        from: Option<NodeId>,
        /// Why.
        error: SyncError,
    },
    /// The state changed without deltas (Merkle repair, a peer's push, a snapshot): re-read it.
    /// (Events of deltas whose state arrived this way never make handlers due.)
    StateReplaced {
        /// The state root afterwards.
        root: Hash,
    },
    /// A delta is void: its author (or its inviter) was removed and it is not an ancestor of the
    /// removal, or its author was admitted by such a join. It stays in the DAG without effect
    /// (honest members may cite it), or — a removed author's delta that nothing here cites — is
    /// not stored at all.
    Voided {
        /// The delta.
        id: DeltaId,
        /// Its author.
        author: MemberId,
        /// Why.
        reason: VoidReason,
    },
    /// A removal voided deltas this replica had applied: the state was rebuilt from the DAG
    /// without them (re-read it; state this replica had only from peers comes back with the next
    /// sync session).
    Rebuilt {
        /// The state root afterwards.
        root: Hash,
    },
    /// A sync session ended.
    SessionEnded {
        /// With whom.
        peer: NodeId,
        /// What it ran.
        protocol: Protocol,
        /// How it ended.
        outcome: SessionOutcome,
    },
}

/// How a sync session ended. Success is only ever claimed when it is true.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SessionOutcome {
    /// Nothing to do: equal roots, or we are ahead.
    InSync,
    /// Deltas were pulled (the peer may still lack ours; it pulls them itself).
    Pulled {
        /// How many deltas arrived.
        deltas: u64,
    },
    /// Merkle repair or a snapshot left both roots equal (checked against the peer's live root).
    Converged {
        /// Entity states pulled.
        pulled: u64,
        /// Entity states pushed.
        pushed: u64,
    },
    /// The walk finished but the roots still differ (the peer kept writing, or a state could not
    /// be joined): the next session tries again.
    Diverged {
        /// Our root.
        local: Hash,
        /// The peer's live root.
        remote: Hash,
    },
    /// The session failed.
    Failed(SessionFailure),
}

/// Why a session failed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SessionFailure {
    /// No answer in time.
    Timeout,
    /// The peer refused.
    Refused(Refusal),
    /// The peer answered something invalid.
    Invalid(SyncError),
    /// The peer left.
    PeerGone,
    /// The Merkle walk used up its request budget.
    TooManyRequests,
}

/// Counters of one replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncMetrics {
    /// Deltas applied through the DAG.
    pub deltas_applied: u64,
    /// Deltas refused.
    pub deltas_rejected: u64,
    /// Deltas received again.
    pub duplicates: u64,
    /// Sessions started, by protocol chosen: none, delta sync, Merkle, snapshot.
    pub sessions: [u64; 4],
    /// Sessions that failed.
    pub sessions_failed: u64,
    /// Sessions that ended diverged.
    pub sessions_diverged: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests answered.
    pub responses: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Missing parents asked for.
    pub parents_pulled: u64,
    /// Entity states pulled by Merkle repair.
    pub entities_pulled: u64,
    /// Entity states pushed by Merkle repair.
    pub entities_pushed: u64,
    /// Deltas buffered during a snapshot.
    pub buffered: u64,
    /// Buffered deltas dropped because the buffer was full (re-pulled later).
    pub buffer_drops: u64,
    /// Pending deltas evicted (cap or age).
    pub pending_evicted: u64,
    /// Entities removed by tombstone garbage collection.
    pub tombstones_collected: u64,
    /// Received fragments (in deltas, pulled or pushed states) dropped as ancient: their entity is
    /// absent here and entirely older than the GC horizon.
    pub ancient_dropped: u64,
    /// Entities forgotten because a peer collected them (found by Merkle comparison).
    pub entities_forgotten: u64,
    /// Handlers made due by applied remote deltas.
    pub handlers_due: u64,
    /// Deltas kept without effect (see [`SyncEvent::Voided`]).
    pub deltas_voided: u64,
    /// Deltas not applied because this replica lacks their epoch key (fetched again later).
    pub key_unknown: u64,
    /// State rebuilds after a removal voided applied deltas.
    pub rebuilds: u64,
    /// Requests dropped unanswered: their peer was over its rate
    /// ([`SyncConfig::requests_per_sec`]).
    pub requests_limited: u64,
}

/// Why a stored replica could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The stored DAG is unreadable.
    #[error("stored DAG: {0}")]
    Dag(#[from] RestoreError),
    /// The stored state is unreadable.
    #[error("stored state: {0}")]
    State(#[from] StateError),
    /// A stored due-handler or governance record is unreadable.
    #[error("stored record: {0}")]
    Due(#[from] tabmesh_base::CodecError),
    /// No member identity is stored for the context.
    #[error("no member identity is stored for this context")]
    NoIdentity,
}

/// What a member brings to a context's replica: its key pair for this context (one per
/// membership), a generator seeded by the driver with fresh entropy (nonces and new keys), and the
/// epoch keys it already holds (an invitation's).
#[derive(Debug)]
pub struct Access {
    /// The member key pair.
    pub me: Keypair,
    /// The generator (seeded with 32 bytes of OS entropy by the driver, from the seed in tests).
    pub entropy: Entropy,
    /// Epoch keys held from the start.
    pub keys: Vec<SymKey>,
}

/// A member's view of a context at this replica's heads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Members and their roles.
    pub members: BTreeMap<MemberId, Role>,
    /// Members removed.
    pub removed: BTreeSet<MemberId>,
    /// The app module the context runs.
    pub app: Option<Hash>,
    /// The current key epoch.
    pub epoch: Option<Hash>,
}

/// A request in flight.
#[derive(Clone, Debug)]
struct Inflight {
    peer: NodeId,
    deadline: u64,
    purpose: Purpose,
}

#[derive(Clone, Debug)]
enum Purpose {
    /// A step of the current session.
    Session,
    /// A parent pull.
    Pull(Vec<DeltaId>),
}

/// The periodic sync session (one at a time per context).
#[derive(Debug)]
struct Session {
    peer: NodeId,
    deadline: u64,
    protocol: Protocol,
    step: Step,
    pulled: u64,
    pushed: u64,
    /// Ids the peer said it applied (asked after a Merkle walk): satisfied here once the repair
    /// is verified.
    pruned_at_peer: Vec<DeltaId>,
    /// Compare states whatever the summaries say (the peer pruned deltas we wait for).
    force_repair: bool,
    /// Delta-sync pages received.
    pages: u32,
    /// The peer's GC horizon, from its summary (capped, see [`Replica::peer_horizon`]).
    peer_horizon: Hlc,
    /// The peer has state or history: a session that ends in step with it proves we are not
    /// behind it.
    peer_has_state: bool,
}

/// Pages one delta-sync session may receive (256 deltas each: a million deltas) before it is
/// abandoned as a peer that never ends its answer.
pub const MAX_SESSION_PAGES: u32 = 4_096;

#[derive(Debug)]
enum Step {
    Summary,
    Deltas,
    Merkle(Box<MerkleWalk>),
    Have,
    Verify,
    /// Fetching the peer's governance log, then running `then` (`remote`: the peer's digest).
    Governance {
        then: Protocol,
        remote: Hash,
    },
    Snapshot(Box<SnapshotJoin>),
    /// A snapshot's pages are staged: fetching the peer's governance log (asked after the
    /// snapshot froze, so it holds every operation the snapshot covers), then installing both.
    SnapshotGovernance(Box<SnapshotJoin>),
}

/// One context's replica: its causal DAG and CRDT state, and the sans-IO machinery that keeps it
/// caught up with its peers (see the crate docs for the protocols and the driving contract).
#[derive(Debug)]
pub struct Replica {
    context: ContextId,
    dag_prefix: Vec<u8>,
    dag: Dag<Body>,
    state: State,
    config: SyncConfig,
    rng: DetRng,
    peers: BTreeSet<NodeId>,
    /// Failures and the time before which a peer is not chosen.
    backoff: BTreeMap<NodeId, (u32, u64)>,
    out: VecDeque<Output>,
    batch: WriteBatch,
    applied: Vec<DeltaId>,
    state_replaced: bool,
    next_request: u64,
    inflight: BTreeMap<u64, Inflight>,
    session: Option<Session>,
    last_session: Option<u64>,
    next_tick: u64,
    /// A peer arrived while this empty replica was in a session: sync again when it ends.
    resync_when_done: bool,
    /// Peers that had neither state nor history when this replica, holding nothing either,
    /// last synced with them (another joiner catching up): while it holds nothing, it asks
    /// others first.
    empty_peers: BTreeSet<NodeId>,
    next_housekeeping: u64,
    wanted: Wanted,
    buffer: VecDeque<(Option<NodeId>, Envelope)>,
    frozen: BTreeMap<u64, Frozen>,
    next_frozen: u64,
    metrics: SyncMetrics,
    last_commit_hlc: Hlc,
    /// Deltas refused by the state (bounded by [`MAX_REJECTED`]).
    rejected: BTreeSet<DeltaId>,
    rejected_order: VecDeque<DeltaId>,
    /// Deltas governance refused during this input at a position this replica only
    /// approximates (a parent covered by a snapshot or a repair, without its own position): the
    /// verdict rests on what is recorded here, not only on the history the delta cites, so they
    /// are not remembered as refused (they are checked again when they come back).
    provisional: BTreeSet<DeltaId>,
    /// When (our clock) a session with a peer that has state last ended in step with it: the GC
    /// horizon never passes it minus the retention. Not persisted: after a restart, nothing is
    /// collected before the first such session.
    last_synced: Option<u64>,
    /// Governance: identity, keys, membership at every causal position.
    gov: Governance,
    /// Removals recorded by this input (checked for the cut once it ends).
    removals: Vec<DeltaId>,
    /// Key shares sent (member, key id), so a debt is settled once per replica life.
    shared: BTreeSet<(MemberId, Hash)>,
    /// For each peer (and a bounded number of other senders): the member its sealed messages come
    /// from and the epoch of the latest one opened here — a key both sides hold, so what is sent
    /// to it (a response above all) is sealed with it.
    peer_members: BTreeMap<NodeId, (MemberId, Hash)>,
    /// Each requesting peer's token bucket: (thousandths of a request left, when last refilled).
    request_buckets: BTreeMap<NodeId, (u64, u64)>,
    /// Where due-handler records live (`<prefix>h/`).
    due_prefix: Vec<u8>,
    /// Handlers made due (or reloaded) and not taken yet.
    due: Vec<DueHandler>,
}

/// The most senders that are not peers whose latest epoch a replica remembers.
const MAX_PEER_RECORDS: usize = 4_096;

/// How many refused delta ids a replica remembers (so it does not pull them again).
pub const MAX_REJECTED: usize = 10_000;

impl Replica {
    /// An empty replica of `context` whose records live under `prefix`. `seed` drives every choice
    /// it makes (which peer to sync with); `now_ms` starts its timers.
    ///
    /// The replica holds nothing yet: a founder receives the genesis, a joiner syncs from a
    /// member. `access` is the member's identity and keys.
    pub fn new(
        context: ContextId,
        prefix: &[u8],
        config: SyncConfig,
        seed: u64,
        now_ms: u64,
        access: Access,
    ) -> Replica {
        let dag = Dag::new(config.dag);
        let state = State::new(&state_prefix(prefix));
        let gov = Governance::new(
            context,
            &gov_prefix(prefix),
            access.me,
            access.entropy,
            &access.keys,
        );
        let mut replica = Replica::assemble(context, prefix, config, seed, now_ms, dag, state, gov);
        // The member key and the keys given are stored at once (a join may wait for peers).
        replica.finish_input();
        replica
    }

    /// Founds a new context for `app` with `salt` (random): derives its id ([`context_id`]) and
    /// commits the genesis (a [`GovOp::Create`] admitting `founders` and the creator, as an
    /// admin, with the first epoch key sealed to each of them), ready to broadcast.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        prefix: &[u8],
        config: SyncConfig,
        seed: u64,
        now_ms: u64,
        access: Access,
        app: Hash,
        founders: &[Founder],
        hlc: Hlc,
        salt: [u8; 32],
    ) -> Result<Replica, SyncError> {
        let creator = MemberId(access.me.public());
        let context = context_id(&creator, &salt, &app);
        let mut all = vec![Founder {
            member: creator,
            role: Role::Admin,
        }];
        all.extend(founders.iter().filter(|f| f.member != creator).copied());
        let mut replica = Replica::new(context, prefix, config, seed, now_ms, access);
        replica.govern(
            now_ms,
            hlc,
            GovOp::Create {
                salt,
                app,
                founders: all,
            },
        )?;
        Ok(replica)
    }

    /// A replica restored from what earlier [`Output::Persist`] batches wrote under `prefix`.
    pub fn open(
        context: ContextId,
        prefix: &[u8],
        config: SyncConfig,
        seed: u64,
        now_ms: u64,
        kv: &impl KvRead,
        entropy: Entropy,
    ) -> Result<Replica, OpenError> {
        let dag = Dag::restore(&dag_prefix(prefix), kv, config.dag)?;
        let state = State::open(&state_prefix(prefix), kv)?;
        let gp = gov_prefix(prefix);
        let me = Governance::stored_identity(&gp, kv).ok_or(OpenError::NoIdentity)?;
        let mut gov = Governance::restore(context, &gp, me, entropy, kv)?;
        for d in dag.applied_in_order() {
            gov.replay_position(d);
        }
        let mut replica = Replica::assemble(context, prefix, config, seed, now_ms, dag, state, gov);
        let cut = replica.cut();
        replica.gov.mark_void(cut.into_keys());
        replica.due = due::load(&replica.due_prefix, kv)?;
        Ok(replica)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        context: ContextId,
        prefix: &[u8],
        config: SyncConfig,
        seed: u64,
        now_ms: u64,
        dag: Dag<Body>,
        state: State,
        gov: Governance,
    ) -> Replica {
        let mut rng = DetRng::new(seed);
        // Request ids start at a seeded point: after a restart, a late answer to a request of the
        // replica's previous life does not match a new request.
        let next_request = rng.next_u64() >> 1;
        // Spread the first tick over one period so replicas started together don't sync in step.
        let first_tick = now_ms.saturating_add(rng.below(config.tick_ms.max(1)));
        let wanted = Wanted::new(config.max_wanted);
        Replica {
            context,
            dag_prefix: dag_prefix(prefix),
            dag,
            state,
            next_housekeeping: now_ms.saturating_add(config.housekeeping_ms),
            config,
            rng,
            peers: BTreeSet::new(),
            backoff: BTreeMap::new(),
            out: VecDeque::new(),
            batch: WriteBatch::new(),
            applied: Vec::new(),
            state_replaced: false,
            next_request,
            inflight: BTreeMap::new(),
            session: None,
            last_session: None,
            next_tick: first_tick,
            resync_when_done: false,
            empty_peers: BTreeSet::new(),
            wanted,
            buffer: VecDeque::new(),
            frozen: BTreeMap::new(),
            next_frozen: 1,
            metrics: SyncMetrics::default(),
            last_commit_hlc: Hlc::default(),
            rejected: BTreeSet::new(),
            rejected_order: VecDeque::new(),
            provisional: BTreeSet::new(),
            last_synced: None,
            gov,
            removals: Vec::new(),
            shared: BTreeSet::new(),
            peer_members: BTreeMap::new(),
            request_buckets: BTreeMap::new(),
            due_prefix: due_prefix(prefix),
            due: Vec::new(),
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Getters.

    /// The context.
    pub fn context(&self) -> ContextId {
        self.context
    }

    /// The CRDT state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The causal DAG.
    pub fn dag(&self) -> &Dag<Body> {
        &self.dag
    }

    /// The configuration.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// The member this replica writes as (its public key): events of its own deltas never make
    /// handlers due here.
    pub fn member(&self) -> MemberId {
        self.gov.member_id()
    }

    /// Membership, roles, app and epoch at this replica's heads.
    pub fn membership(&self) -> Membership {
        let view = self.gov.view_at(&self.dag.heads());
        let epoch = self.gov.epoch_id_of(&view);
        Membership {
            members: view.members,
            removed: view.removed,
            app: view.app,
            epoch,
        }
    }

    /// The deltas that introduced epoch `epoch` (see [`Replica::open_message`]'s `KeyUnknown`):
    /// sent to a peer that lacks its key, for the key boxes they carry.
    pub fn key_envelopes(&self, epoch: &Hash) -> Vec<Envelope> {
        self.gov.key_envelopes(epoch)
    }

    /// Whether `peer` is a peer of this context.
    pub fn has_peer(&self, peer: &NodeId) -> bool {
        self.peers.contains(peer)
    }

    /// The member key `peer`'s sealed messages in this context come from, once one was opened
    /// here (kept while it is a peer; for other senders, a bounded number). It says who the node
    /// writes as, not that it is still a member: check [`Replica::membership`] for that.
    pub fn peer_member(&self, peer: &NodeId) -> Option<MemberId> {
        self.peer_members.get(peer).map(|(member, _)| *member)
    }

    /// The governance log: each operation's delta, author, operation and whether the removal
    /// cut voided it, in the order applied here.
    pub fn governance(&self) -> impl Iterator<Item = (DeltaId, MemberId, &GovOp, bool)> + '_ {
        self.gov.log()
    }

    /// A number that changes whenever the governance known here does (operations recorded,
    /// applied or voided; key holders learned): what depends on membership, the app or key
    /// debts needs looking at again only when it moved.
    pub fn governance_version(&self) -> u64 {
        self.gov.version()
    }

    /// Whether a delta was voided (see [`SyncEvent::Voided`]).
    pub fn is_void(&self, id: &DeltaId) -> bool {
        self.gov.is_void(id)
    }

    /// Invites a member with `role` until `expires_ms`: a signed link carrying the context's app,
    /// `relay` (a multiaddr to reach the context's peers) and, sealed with the link's secret, the
    /// epoch keys held here and the current heads. Only an admin invites.
    pub fn invite(
        &mut self,
        role: Role,
        expires_ms: u64,
        relay: &str,
    ) -> Result<InviteLink, SyncError> {
        let mut heads = self.dag.heads();
        let view = self.gov.view_at(&heads);
        let me = self.gov.member_id();
        if view.members.get(&me) != Some(&Role::Admin) {
            return Err(AccessError::NotAllowed {
                author: me,
                op: "invite",
            }
            .into());
        }
        let app = view.app.unwrap_or(Hash::ZERO);
        // The newest keys (the log's order) when there are more than a link carries.
        let mut keys = self.gov.held_keys();
        let excess = keys.len().saturating_sub(crate::gov::MAX_BOX_KEYS);
        keys.drain(..excess);
        heads.truncate(crate::gov::MAX_INVITE_HEADS);
        let material = KeyMaterial { keys, heads }.encode();
        let context = self.context;
        let kp = self.gov.me().clone();
        Invitation::create(
            &kp,
            context,
            app,
            role,
            expires_ms,
            relay,
            &material,
            self.gov.entropy(),
        )
        .map_err(|_| AccessError::Seal("the invitation could not be sealed").into())
    }

    /// Writes a governance operation (see [`GovOp`]) on the current heads, checked exactly as a
    /// peer will check it: nothing invalid is published. Returns the delta's id.
    pub fn govern(&mut self, now_ms: u64, hlc: Hlc, op: GovOp) -> Result<DeltaId, SyncError> {
        let payload = DeltaPayload {
            gov: Some(op),
            ..DeltaPayload::default()
        };
        let mut parents = self.dag.heads();
        parents.truncate(tabmesh_dag::MAX_PARENTS);
        // A governance operation is stamped after its parents (a join's expiry is checked
        // against its stamp, and a join stamped before its parents is refused), including
        // parents held only as covered (a snapshot's heads: their stamps are what the snapshot
        // vouched for). However far ahead of `hlc` they are: the stamp only orders, and the
        // caller's clock need not follow it (see `heads_stamp`).
        let hlc = hlc.max(self.gov.heads_stamp(&parents).successor());
        self.last_commit_hlc = self.last_commit_hlc.max(hlc);
        let env = self.gov.seal(parents, hlc, &payload, &[])?;
        let id = env.id();
        let causal = env.clone().into_causal(id);
        let (pos, opened) = self.gov.check(&causal, None, false)?;
        if self.gov.admit(&causal, pos, &opened).is_some() {
            self.removals.push(id);
        }
        self.record_local(now_ms, env, id);
        Ok(id)
    }

    /// An admin shares the current epoch's keys with members known to lack them (a member that
    /// joined concurrently with a rotation) in an empty delta; `Ok(None)` when nothing is owed or
    /// this member is no admin.
    pub fn settle_key_debts(
        &mut self,
        now_ms: u64,
        hlc: Hlc,
    ) -> Result<Option<DeltaId>, SyncError> {
        let heads = self.dag.heads();
        let view = self.gov.view_at(&heads);
        let me = self.gov.member_id();
        if view.members.get(&me) != Some(&Role::Admin) {
            return Ok(None);
        }
        let pos = self.gov.position_at(&heads);
        let share: Vec<(MemberId, Vec<Hash>)> = self
            .gov
            .debts(&pos)
            .into_iter()
            .map(|(m, ids)| {
                let ids: Vec<Hash> = ids
                    .into_iter()
                    .filter(|id| self.gov.key(id).is_some() && !self.shared.contains(&(m, *id)))
                    .collect();
                (m, ids)
            })
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        if share.is_empty() || self.gov.check_writable(&heads).is_err() {
            return Ok(None);
        }
        for (m, ids) in &share {
            self.shared.extend(ids.iter().map(|id| (*m, *id)));
        }
        let mut parents = heads;
        parents.truncate(tabmesh_dag::MAX_PARENTS);
        let env = self
            .gov
            .seal(parents, hlc, &DeltaPayload::default(), &share)?;
        let id = env.id();
        let causal = env.clone().into_causal(id);
        let pos = self.gov.position_at(&causal.parents);
        self.gov
            .admit(&causal, pos, &Opened::Apply(DeltaPayload::default()));
        self.record_local(now_ms, env, id);
        Ok(Some(id))
    }

    /// Seals `message` for `to` (this node is `from`): encrypted with the epoch `hint` names if
    /// held (answer a peer in the epoch it asked in), else the current one; signed by this member;
    /// `invitee` carries the invitation while this member is not admitted yet.
    pub fn seal_message(
        &mut self,
        from: NodeId,
        to: NodeId,
        message: &Message,
        hint: Option<Hash>,
        invitee: Option<InviteeProof>,
    ) -> Result<Sealed, SyncError> {
        let heads = self.dag.heads();
        let hint = hint.or_else(|| self.peer_members.get(&to).map(|(_, e)| *e));
        let (epoch, key) = self
            .gov
            .sealing_key(&heads, hint)
            .ok_or(AccessError::KeyUnknown { epoch: Hash::ZERO })?;
        let mut sealed = Sealed {
            context: self.context,
            sender: self.gov.member_id(),
            invitee,
            epoch,
            nonce: self.gov.entropy().array(),
            ciphertext: Vec::new(),
            signature: tabmesh_auth::Signature([0; 64]),
        };
        let frame = crate::Frame {
            context: self.context,
            message: message.clone(),
        }
        .encode();
        let aad = sealed.digest(&from, &to, false);
        sealed.ciphertext = tabmesh_auth::seal(&key, &sealed.nonce, aad.as_bytes(), &frame);
        let me = self.gov.me().clone();
        sealed.sign(&me, &from, &to);
        Ok(sealed)
    }

    /// Opens a message `from` sent to `to` (this node): the signature must verify, the sender
    /// must be a member at this replica's heads — or an invitee whose invitation an admin here
    /// signed, unexpired at `now_ms` (whether to answer is a local decision) — and the payload
    /// must decrypt with a key held here. A replica that knows no governance yet (an invitee)
    /// takes the ability to seal with a context key as the proof of membership.
    pub fn open_message(
        &mut self,
        now_ms: u64,
        from: NodeId,
        to: NodeId,
        sealed: &Sealed,
    ) -> Result<Message, SyncError> {
        if sealed.context != self.context {
            return Err(SyncError::WrongContext {
                expected: self.context,
                found: sealed.context,
            });
        }
        sealed
            .verify(&from, &to)
            .map_err(|_| AccessError::BadSignature)?;
        if self.gov.has_genesis() {
            let view = self.gov.view_at(&self.dag.heads());
            let sender = sealed.sender;
            if !view.members.contains_key(&sender) {
                let Some(i) = &sealed.invitee else {
                    if view.removed.contains(&sender) || view.void_admitted.contains(&sender) {
                        return Err(AccessError::NotAMember { author: sender }.into());
                    }
                    return self.open_from_unknown(from, to, sealed, sender);
                };
                let inv = &i.invitation;
                let valid = inv.context == self.context
                    && !view.removed.contains(&sender)
                    && view.members.get(&inv.inviter) == Some(&Role::Admin)
                    && inv.verify().is_ok()
                    && inv.check_proof(sender.as_bytes(), &i.proof).is_ok();
                if !valid {
                    return Err(AccessError::NotAMember { author: sender }.into());
                }
                if inv.expires_ms < now_ms {
                    return Err(AccessError::InvitationExpired {
                        expires_ms: inv.expires_ms,
                        at_ms: now_ms,
                    }
                    .into());
                }
            }
        }
        if self.gov.key(&sealed.epoch).is_none() {
            // A combined epoch this replica has not derived yet.
            let view = self.gov.view_at(&self.dag.heads());
            self.gov.epoch_of(&view);
        }
        let key = self
            .gov
            .key(&sealed.epoch)
            .cloned()
            .ok_or(AccessError::KeyUnknown {
                epoch: sealed.epoch,
            })?;
        let aad = sealed.digest(&from, &to, false);
        let plain = tabmesh_auth::open(&key, &sealed.nonce, aad.as_bytes(), &sealed.ciphertext)
            .map_err(|_| AccessError::Decrypt)?;
        let frame = crate::Frame::decode(&plain)?;
        if frame.context != self.context || matches!(frame.message, Message::Delta(_)) {
            return Err(SyncError::Protocol(
                "a sealed message carries a request or a response of its context",
            ));
        }
        // Remembered for every peer, and for other senders (an invitee answered before it is a
        // peer) while fewer than `MAX_PEER_RECORDS` are: the reply is sealed in that epoch.
        if self.peers.contains(&from) || self.peer_members.len() < MAX_PEER_RECORDS {
            self.peer_members
                .insert(from, (sealed.sender, sealed.epoch));
        }
        Ok(frame.message)
    }

    /// A sealed message from a member key this replica has not seen admitted (its join has not
    /// reached here; a removed or void-admitted key is refused before): only the answer to a
    /// pull in flight to that peer is taken — deltas, each checked on arrival like a gossiped
    /// one, so nothing in it is taken on the sender's word. It may carry the join itself.
    fn open_from_unknown(
        &mut self,
        from: NodeId,
        to: NodeId,
        sealed: &Sealed,
        sender: MemberId,
    ) -> Result<Message, SyncError> {
        let refused = || SyncError::from(AccessError::NotAMember { author: sender });
        let Some(key) = self.gov.key(&sealed.epoch).cloned() else {
            return Err(refused());
        };
        let aad = sealed.digest(&from, &to, false);
        let plain = tabmesh_auth::open(&key, &sealed.nonce, aad.as_bytes(), &sealed.ciphertext)
            .map_err(|_| refused())?;
        let frame = crate::Frame::decode(&plain).map_err(|_| refused())?;
        match frame.message {
            Message::Response {
                id,
                body: body @ Response::Deltas { .. },
            } if frame.context == self.context
                && self
                    .inflight
                    .get(&id)
                    .is_some_and(|f| f.peer == from && matches!(f.purpose, Purpose::Pull(_))) =>
            {
                Ok(Message::Response { id, body })
            }
            _ => Err(refused()),
        }
    }

    /// Adds a delta written here (already applied to the state and admitted by governance) to
    /// the DAG, and queues its broadcast.
    fn record_local(&mut self, now_ms: u64, env: Envelope, id: DeltaId) {
        let outcome = self.dag.add(env.clone().into_causal(id), now_ms, |_| {
            Ok::<(), SyncError>(())
        });
        match outcome {
            Ok(AddOutcome::Applied(_)) => {}
            other => {
                // Parents are our own heads, so this cannot wait or fail; if it ever does, report
                // it rather than publish a delta peers cannot apply.
                self.out.push_back(Output::Event(SyncEvent::Rejected {
                    from: None,
                    error: match other {
                        Err(e) => SyncError::Dag(e),
                        Ok(_) => {
                            SyncError::Protocol("a local delta did not apply on its own heads")
                        }
                    },
                }));
            }
        }
        self.applied.push(id);
        self.metrics.deltas_applied += 1;
        self.out.push_back(Output::Broadcast(env));
        self.finish_input();
    }

    /// Handlers made due since the last call (in apply order), and after [`Replica::open`] every
    /// due record still stored. Each stays stored until [`Replica::commit_with`] completes it or
    /// [`Replica::complete_due`] gives it up.
    pub fn take_due(&mut self) -> Vec<DueHandler> {
        std::mem::take(&mut self.due)
    }

    /// What a heads exchange sends about this replica.
    pub fn summary(&self) -> Summary {
        let stats = self.dag.stats(0);
        let mut heads = self.dag.heads();
        heads.truncate(MAX_IDS);
        Summary {
            heads,
            root: self.state.root_hash(),
            entities: self.state.len() as u64,
            applied: stats.applied as u64,
            pruned: self.has_pruned_history(),
            pending: stats.pending as u64,
            gc_horizon: self.state.gc_horizon(),
            governance: self.gov.digest(),
            heads_stamp: self.heads_stamp(),
        }
    }

    /// The largest stamp among the current heads as known here (a head held only as covered —
    /// a snapshot's or a Merkle repair's checkpoint — counts with the bound the covering peer
    /// vouched for). A governance operation written now is stamped after it, even where that
    /// is far ahead of the caller's clock: a caller can check first whether such a stamp is
    /// still of use (a join stamped past its invitation's expiry is refused).
    pub fn heads_stamp(&self) -> Hlc {
        self.gov.heads_stamp(&self.dag.heads())
    }

    /// The DAG dropped history (pruned deltas, or a snapshot boundary among the heads): some
    /// deltas a peer may lack can no longer be served.
    fn has_pruned_history(&self) -> bool {
        self.dag.stats(0).pruned > 0
            || self
                .dag
                .heads()
                .iter()
                .any(|h| self.dag.checkpoint_root(h).is_some())
    }

    /// What a delta-sync request names as known: the heads, then the most recently applied ids,
    /// so a peer that lacks our newest heads (concurrent writes) still finds recent common history
    /// instead of resending everything.
    fn known_for_sync(&self) -> Vec<DeltaId> {
        let mut known = self.dag.heads();
        known.truncate(MAX_IDS);
        for id in self.dag.recent_ids(MAX_IDS) {
            if known.len() >= MAX_IDS {
                break;
            }
            if !self.dag.is_head(&id) {
                known.push(id);
            }
        }
        known
    }

    /// The largest stamp any local commit wrote (a write is lifted above what it observed, so this
    /// can pass the transaction's HLC): the node's clock observes it to stay ahead.
    pub fn last_commit_hlc(&self) -> Hlc {
        self.last_commit_hlc
    }

    /// Counters.
    pub fn metrics(&self) -> &SyncMetrics {
        &self.metrics
    }

    /// The peers this replica syncs with.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.iter().copied()
    }

    /// No session and no request in flight.
    pub fn is_idle(&self) -> bool {
        self.session.is_none() && self.inflight.is_empty()
    }

    /// Deltas wait for parents, or a snapshot's buffer holds some.
    pub fn has_pending(&self) -> bool {
        self.dag.stats(0).pending > 0 || !self.buffer.is_empty()
    }

    /// Sync timers armed: request deadlines, the session deadline and parent pulls waiting to be
    /// retried (the periodic tick and housekeeping are not counted).
    pub fn sync_timers_armed(&self) -> usize {
        self.inflight.len() + usize::from(self.session.is_some()) + self.wanted.len()
    }

    /// The earliest time [`Replica::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> u64 {
        let mut at = self.next_tick.min(self.next_housekeeping);
        if let Some(s) = &self.session {
            at = at.min(s.deadline);
        }
        let mut pulls = 0;
        for f in self.inflight.values() {
            at = at.min(f.deadline);
            pulls += usize::from(matches!(f.purpose, Purpose::Pull(_)));
        }
        // With every pull slot taken, the next retry waits for an answer (an input), not a time.
        if pulls < MAX_PULLS_IN_FLIGHT {
            if let Some(w) = self.wanted.next_due() {
                at = at.min(w);
            }
        }
        at
    }

    /// The next output, `None` once drained. Drain after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // ---------------------------------------------------------------------------------------------
    // Inputs.

    /// A peer that hosts this context is reachable. A replica with nothing yet syncs at once (or,
    /// if a session is running, as soon as it ends: the new peer may be the one with state).
    pub fn add_peer(&mut self, now_ms: u64, peer: NodeId) {
        if self.peers.insert(peer) && self.holds_nothing() {
            if self.session.is_none() {
                self.next_tick = self.next_tick.min(now_ms);
            } else {
                self.resync_when_done = true;
            }
        }
        self.finish_input();
    }

    /// A peer went away: its requests fail now rather than at their deadline.
    pub fn remove_peer(&mut self, now_ms: u64, peer: NodeId) {
        self.peers.remove(&peer);
        self.peer_members.remove(&peer);
        self.empty_peers.remove(&peer);
        let gone: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(f) = self.inflight.remove(&id) {
                self.request_failed(now_ms, f, SessionFailure::PeerGone);
            }
        }
        self.finish_input();
    }

    /// Runs a local transaction by `author` stamped `hlc` and, if it wrote anything, turns it into
    /// a delta on the current heads: applied, persisted and broadcast. Returns `f`'s result and the
    /// new delta's id (`None` for a transaction that wrote nothing). If `f` fails, nothing changes.
    ///
    /// A plain transaction: no events, hop 0 (see [`Replica::commit_with`]).
    pub fn commit<R, E: From<SyncError>>(
        &mut self,
        now_ms: u64,
        hlc: Hlc,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, E>,
    ) -> Result<(R, Option<DeltaId>), E> {
        self.commit_with(now_ms, hlc, 0, None, |txn| f(txn).map(|r| (r, Vec::new())))
    }

    /// Like [`Replica::commit`], for an app call: `f` also returns the call's events, sealed into
    /// the delta with handler hop `hop`. A call that wrote nothing and emitted nothing makes no
    /// delta. `completes` names the due handler this call ran: its record is deleted in the same
    /// write batch as the delta (or alone, when there is no delta). If `f` fails, nothing changes
    /// (the due record stays).
    pub fn commit_with<R, E: From<SyncError>>(
        &mut self,
        now_ms: u64,
        hlc: Hlc,
        hop: u8,
        completes: Option<&DueHandler>,
        f: impl FnOnce(&mut Txn<'_>) -> Result<(R, Vec<AppEvent>), E>,
    ) -> Result<(R, Option<DeltaId>), E> {
        // A member that may not write (removed, not admitted yet, or lacking the current key)
        // learns it before its transaction runs.
        let heads = self.dag.heads();
        self.gov.check_writable(&heads).map_err(E::from)?;
        let author = self.gov.member_id();
        let mut txn = self.state.txn(author, hlc);
        let (r, events) = f(&mut txn)?;
        if txn.is_empty() && events.is_empty() {
            drop(txn);
            if let Some(d) = completes {
                self.batch.delete(d.key(&self.due_prefix));
                self.finish_input();
            }
            return Ok((r, None));
        }
        // Check the events' bounds and the whole size before anything is committed.
        let shell = DeltaPayload {
            actions: Vec::new(),
            events,
            hop,
            gov: None,
        };
        let shell_len = shell.encode().map_err(SyncError::from)?.len();
        let len = txn.encoded_len().saturating_add(shell_len);
        if len > MAX_DELTA_PAYLOAD {
            // Dropping the transaction undoes its writes.
            return Err(SyncError::TxnTooLarge {
                len,
                max: MAX_DELTA_PAYLOAD,
            }
            .into());
        }
        let commit = txn.commit();
        self.last_commit_hlc = self.last_commit_hlc.max(commit.last_hlc);
        let payload = DeltaPayload {
            actions: commit.actions,
            ..shell
        };
        let mut parents = heads;
        parents.truncate(tabmesh_dag::MAX_PARENTS);
        let env = self
            .gov
            .seal(parents, hlc, &payload, &[])
            .map_err(E::from)?;
        let id = env.id();
        let pos = self.gov.position_at(&env.parents);
        // The state already holds the writes: governance and the DAG only record the delta.
        self.gov
            .admit(&env.clone().into_causal(id), pos, &Opened::Apply(payload));
        self.batch.extend(commit.batch);
        if let Some(d) = completes {
            self.batch.delete(d.key(&self.due_prefix));
        }
        self.record_local(now_ms, env, id);
        Ok((r, Some(id)))
    }

    /// Gives up a due handler (it failed, or its chain is too long): its record is deleted.
    pub fn complete_due(&mut self, due: &DueHandler) {
        self.batch.delete(due.key(&self.due_prefix));
        self.finish_input();
    }

    /// A delta arrived (gossip, or inside a response): verify, insert, apply or buffer, cascade.
    pub fn handle_delta(&mut self, now_ms: u64, from: Option<NodeId>, env: Envelope) {
        self.receive(now_ms, from, env);
        self.finish_input();
    }

    /// A peer's request: answered with one [`Output::Send`]. The caller has authenticated it
    /// ([`Replica::open_message`]: a member, or an invitee catching up); this method does not.
    /// A peer over its request rate ([`SyncConfig::requests_per_sec`]) is not answered: the
    /// request is dropped and reported.
    pub fn handle_request(&mut self, now_ms: u64, from: NodeId, id: u64, request: Request) {
        if !self.request_allowed(now_ms, from) {
            self.metrics.requests_limited += 1;
            self.reject(
                Some(from),
                SyncError::RateLimited {
                    per_sec: self.config.requests_per_sec,
                },
            );
            self.finish_input();
            return;
        }
        let body = self.serve(now_ms, from, request);
        self.metrics.responses += 1;
        self.out.push_back(Output::Send {
            to: from,
            message: Message::Response { id, body },
        });
        self.finish_input();
    }

    /// A peer's response to one of our requests (opened with [`Replica::open_message`] by the
    /// caller).
    pub fn handle_response(&mut self, now_ms: u64, from: NodeId, id: u64, response: Response) {
        match self.inflight.get(&id) {
            Some(f) if f.peer == from => {
                // The peer answers: whatever it says, it is reachable again.
                self.backoff.remove(&from);
                if let Some(f) = self.inflight.remove(&id) {
                    match f.purpose {
                        Purpose::Session => self.session_response(now_ms, from, response),
                        Purpose::Pull(ids) => self.pull_response(now_ms, from, ids, response),
                    }
                }
            }
            _ => self.reject(Some(from), SyncError::UnexpectedResponse { id }),
        }
        self.finish_input();
    }

    /// Time passed: deadlines, retries, the periodic tick and housekeeping.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let expired: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.deadline <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(f) = self.inflight.remove(&id) {
                self.metrics.timeouts += 1;
                self.request_failed(now_ms, f, SessionFailure::Timeout);
            }
        }
        if self.session.as_ref().is_some_and(|s| s.deadline <= now_ms) {
            self.end_session(now_ms, SessionOutcome::Failed(SessionFailure::Timeout));
        }
        if self.next_housekeeping <= now_ms {
            self.next_housekeeping = now_ms.saturating_add(self.config.housekeeping_ms);
            self.housekeeping(now_ms);
        }
        if self.next_tick <= now_ms {
            self.next_tick = now_ms.saturating_add(self.config.tick_ms);
            self.tick(now_ms);
        }
        self.pump_pulls(now_ms);
        self.finish_input();
    }

    /// Starts a sync session now (an explicit request, or a heartbeat that showed another root),
    /// if none is running.
    pub fn sync_now(&mut self, now_ms: u64) {
        self.start_session(now_ms, None);
        self.finish_input();
    }

    // ---------------------------------------------------------------------------------------------
    // Receive path.

    fn receive(&mut self, now_ms: u64, from: Option<NodeId>, env: Envelope) {
        if env.context != self.context {
            self.reject(
                from,
                SyncError::WrongContext {
                    expected: self.context,
                    found: env.context,
                },
            );
            return;
        }
        if matches!(
            self.session.as_ref().map(|s| &s.step),
            Some(Step::Snapshot(_) | Step::SnapshotGovernance(_))
        ) {
            self.metrics.buffered += 1;
            self.buffer.push_back((from, env));
            while self.buffer.len() > self.config.snapshot_buffer {
                self.buffer.pop_front();
                self.metrics.buffer_drops += 1;
            }
            return;
        }
        if env.ciphertext.len() > MAX_DELTA_CIPHERTEXT {
            self.metrics.deltas_rejected += 1;
            let len = env.ciphertext.len();
            self.reject(
                from,
                SyncError::PayloadTooLarge {
                    len,
                    max: MAX_DELTA_CIPHERTEXT,
                },
            );
            return;
        }
        let id = env.id();
        if self.dag.status(&id) != DeltaStatus::Unknown || self.rejected.contains(&id) {
            self.metrics.duplicates += 1;
            return;
        }
        // The id is recomputed, never trusted; the author must have signed exactly it.
        if env.verify_signature(&id).is_err() {
            // Not remembered: the id does not cover the signature, so a forged copy must not
            // keep the genuine delta out.
            self.metrics.deltas_rejected += 1;
            self.reject(
                from,
                SyncError::Rejected {
                    id,
                    reason: Box::new(AccessError::BadSignature.into()),
                },
            );
            return;
        }
        // A removed member's delta that is not applied yet can only be void (an ancestor of its
        // removal would be applied here already). Unless something here waits for it, one that
        // cannot apply yet is dropped instead of buffered: its parents may exist on its author
        // alone, which no member answers any more.
        if self.gov.is_removed(&env.author)
            && !self.dag.is_missing(&id)
            && !env.parents.iter().all(|p| self.dag.is_applied(p))
        {
            // Void (or a removal, judged by its position, whose parents are not here), and not
            // even buffered: nothing here waits for it, and its parents may exist on its author
            // alone, which no member answers any more. Pulled again if something cites it.
            self.metrics.deltas_voided += 1;
            self.gov.mark_void([id]);
            self.out.push_back(Output::Event(SyncEvent::Voided {
                id,
                author: env.author,
                reason: VoidReason::AuthorRemoved,
            }));
            return;
        }
        // Keys sealed to this member by a current member are learned on arrival, before the
        // causal order lets the delta apply: a key share must unblock deltas that wait for the
        // key. (Others' boxes are opened only once the delta's author is checked.)
        let me = self.gov.member_id();
        if env.keys.iter().any(|b| b.to == me) && self.gov.is_current_member(&env.author) {
            self.gov.learn_from(&env);
        }
        let (dag, mut applier) = self.dag_and_applier();
        let outcome = dag.add(env.into_causal(id), now_ms, |d| applier.apply(d));
        match outcome {
            Ok(AddOutcome::Applied(cascade)) => self.record_cascade(from, cascade),
            Ok(AddOutcome::Pending { missing, evicted }) => {
                let missing: Vec<DeltaId> = missing
                    .into_iter()
                    .filter(|m| !self.rejected.contains(m))
                    .collect();
                self.wanted.want(now_ms, &missing, from);
                if evicted.is_empty() {
                    self.pump_pulls(now_ms);
                } else {
                    // The pending buffer overflows: pulling parents one by one would thrash it.
                    // A delta sync delivers the history in an order that applies directly.
                    self.metrics.pending_evicted += evicted.len() as u64;
                    self.start_session(now_ms, from);
                }
            }
            Ok(AddOutcome::Duplicate) => self.metrics.duplicates += 1,
            Ok(AddOutcome::Failed { error }) => self.refused(from, id, error),
            Err(e) => {
                self.metrics.deltas_rejected += 1;
                self.remember_rejected(id);
                self.reject(from, SyncError::Dag(e));
            }
        }
    }

    fn record_cascade(&mut self, from: Option<NodeId>, cascade: Cascade<SyncError>) {
        for id in &cascade.applied {
            self.wanted.remove(id);
        }
        self.metrics.deltas_applied += cascade.applied.len() as u64;
        self.applied.extend(cascade.applied);
        for failure in cascade.failed {
            self.refused(from, failure.id, failure.error);
        }
    }

    /// A delta that did not apply: remembered as refused unless it only waits for a key, or was
    /// judged at a position known here only approximately.
    fn refused(&mut self, from: Option<NodeId>, id: DeltaId, error: SyncError) {
        let provisional = self.provisional.remove(&id);
        if matches!(error, SyncError::Access(AccessError::KeyUnknown { .. })) {
            self.metrics.key_unknown += 1;
        } else {
            self.metrics.deltas_rejected += 1;
            if !provisional {
                self.remember_rejected(id);
            }
        }
        self.reject(
            from,
            SyncError::Rejected {
                id,
                reason: Box::new(error),
            },
        );
    }

    /// A delta the state refused: never pulled or applied again (its children stay pending until
    /// they go stale). Bounded: the oldest is forgotten first.
    fn remember_rejected(&mut self, id: DeltaId) {
        if self.rejected.insert(id) {
            self.rejected_order.push_back(id);
            while self.rejected_order.len() > MAX_REJECTED {
                if let Some(old) = self.rejected_order.pop_front() {
                    self.rejected.remove(&old);
                }
            }
        }
        self.wanted.remove(&id);
    }

    /// Takes one request from `peer`'s token bucket (refilled at
    /// [`SyncConfig::requests_per_sec`], holding at most [`SyncConfig::request_burst`]); `false`
    /// when it is empty. Buckets are kept for at most [`MAX_PEER_RECORDS`] peers (past it, the
    /// least recently seen is forgotten: it starts again with a full bucket).
    fn request_allowed(&mut self, now_ms: u64, peer: NodeId) -> bool {
        // In thousandths of a request, so the refill is exact in integers.
        let burst = u64::from(self.config.request_burst.max(1)) * 1000;
        let rate = u64::from(self.config.requests_per_sec);
        make_room(
            &mut self.request_buckets,
            &peer,
            MAX_PEER_RECORDS,
            |(_, at)| *at,
        );
        let (tokens, at) = self.request_buckets.entry(peer).or_insert((burst, now_ms));
        let refill = now_ms.saturating_sub(*at).saturating_mul(rate);
        *tokens = tokens.saturating_add(refill).min(burst);
        *at = (*at).max(now_ms);
        if *tokens < 1000 {
            return false;
        }
        *tokens -= 1000;
        true
    }

    fn reject(&mut self, from: Option<NodeId>, error: SyncError) {
        self.out
            .push_back(Output::Event(SyncEvent::Rejected { from, error }));
    }

    /// Ends every input: one persist batch for everything it changed, then the events.
    fn finish_input(&mut self) {
        if !self.removals.is_empty() {
            self.settle_removals();
        }
        self.provisional.clear();
        self.batch.extend(self.gov.take_batch());
        self.batch.extend(self.dag.take_changes(&self.dag_prefix));
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            // Persist before every output of this input (the broadcast of a delta it holds, the
            // answer that acknowledges it, the events that announce it), and after the batches
            // still queued, so batches stay in order.
            let at = self
                .out
                .iter()
                .rposition(|o| matches!(o, Output::Persist(_)))
                .map_or(0, |i| i + 1);
            self.out.insert(at, Output::Persist(batch));
        }
        let root = self.state.root_hash();
        if !self.applied.is_empty() {
            let ids = std::mem::take(&mut self.applied);
            self.out
                .push_back(Output::Event(SyncEvent::Applied { ids, root }));
        }
        if std::mem::take(&mut self.state_replaced) {
            self.out
                .push_back(Output::Event(SyncEvent::StateReplaced { root }));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Requests we send.

    fn send_request(&mut self, now_ms: u64, peer: NodeId, purpose: Purpose, body: Request) {
        let id = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        self.metrics.requests += 1;
        self.inflight.insert(
            id,
            Inflight {
                peer,
                deadline: now_ms.saturating_add(self.config.request_timeout_ms),
                purpose,
            },
        );
        self.out.push_back(Output::Send {
            to: peer,
            message: Message::Request { id, body },
        });
    }

    fn request_failed(&mut self, now_ms: u64, f: Inflight, why: SessionFailure) {
        self.penalise(now_ms, f.peer);
        match f.purpose {
            Purpose::Session => {
                if self.session.as_ref().is_some_and(|s| s.peer == f.peer) {
                    self.end_session(now_ms, SessionOutcome::Failed(why));
                }
            }
            Purpose::Pull(ids) => {
                self.wanted.failed(
                    now_ms,
                    &ids,
                    self.config.max_pull_attempts,
                    self.config.max_backoff_ms,
                );
            }
        }
    }

    fn penalise(&mut self, now_ms: u64, peer: NodeId) {
        let entry = self.backoff.entry(peer).or_insert((0, 0));
        entry.0 = entry.0.saturating_add(1);
        // Two failures in a row cost nothing (a lost message is not a bad peer); after that the
        // wait doubles from half a second up to the configured ceiling.
        let wait = match entry.0.checked_sub(2) {
            None | Some(0) => 0,
            Some(n) => 500u64
                .saturating_mul(1u64 << n.min(16))
                .min(self.config.max_backoff_ms),
        };
        entry.1 = now_ms.saturating_add(wait);
    }

    /// A peer that is not backing off, chosen with the replica's seeded generator (while this
    /// replica holds nothing, one not found empty if there is one).
    fn pick_peer(&mut self, now_ms: u64, avoid: Option<NodeId>) -> Option<NodeId> {
        let mut ready = self.ready_peers(now_ms, avoid);
        if self.holds_nothing() && ready.iter().any(|p| !self.empty_peers.contains(p)) {
            ready.retain(|p| !self.empty_peers.contains(p));
        }
        self.rng.pick(&ready).copied()
    }

    /// Neither state nor history (what [`Summary::is_empty`] says of this replica's summary).
    fn holds_nothing(&self) -> bool {
        self.state.is_empty() && self.dag.heads().is_empty()
    }

    /// The peers that are not backing off (nor known to write as a removed member), but `avoid`.
    fn ready_peers(&self, now_ms: u64, avoid: Option<NodeId>) -> Vec<NodeId> {
        let removed = self.membership().removed;
        self.peers
            .iter()
            .filter(|p| Some(**p) != avoid)
            // A peer known to write as a removed member is not asked anything.
            .filter(|p| {
                self.peer_members
                    .get(p)
                    .is_none_or(|(m, _)| !removed.contains(m))
            })
            .filter(|p| {
                self.backoff
                    .get(p)
                    .is_none_or(|(_, until)| *until <= now_ms)
            })
            .copied()
            .collect()
    }

    // ---------------------------------------------------------------------------------------------
    // Periodic work.

    fn tick(&mut self, now_ms: u64) {
        // Scan past refused ids (they stay "missing" for their children until those go stale), so
        // they cannot hide the parents still worth pulling.
        let missing: Vec<DeltaId> = self
            .dag
            .missing_parents(self.config.dag.max_query_limit)
            .into_iter()
            .filter(|m| !self.rejected.contains(m))
            .take(self.config.pull_batch)
            .collect();
        self.wanted.want(now_ms, &missing, None);
        // A replica holding nothing syncs whenever it can (it is caught up when told of a peer,
        // or when a session found its peer empty too): the interval spaces out sessions of
        // replicas that have state.
        let due = self.holds_nothing()
            || self
                .last_session
                .is_none_or(|t| now_ms.saturating_sub(t) >= self.config.min_interval_ms);
        if due {
            self.start_session(now_ms, None);
        }
    }

    fn housekeeping(&mut self, now_ms: u64) {
        let stale = self.dag.evict_stale(now_ms);
        self.metrics.pending_evicted += stale.len() as u64;
        if self.dag.stats(now_ms).applied > self.config.compact_after {
            self.dag.prune(self.config.compact_retain);
            let dag = &self.dag;
            // Pruned ids stay satisfied parents: their positions stay too.
            self.gov.retain_positions(|id| dag.is_applied(id));
            self.gov.retain_void(|id| dag.is_applied(id));
        }
        self.frozen.retain(|_, f| f.expires > now_ms);
        self.collect_garbage(now_ms);
    }

    /// Tombstone garbage collection at `min(now, last sync) − retention` (see
    /// [`SyncConfig::tombstone_retention_ms`]); nothing before the first session in step with a
    /// peer.
    fn collect_garbage(&mut self, now_ms: u64) {
        let Some(synced) = self.last_synced else {
            return;
        };
        let horizon = Hlc::new(
            now_ms
                .min(synced)
                .saturating_sub(self.config.tombstone_retention_ms),
            0,
        );
        if horizon == Hlc::default() {
            return;
        }
        let removed = self.change_state(|s| {
            let c = s.collect_garbage(horizon);
            (c.removed, c.batch)
        });
        self.metrics.tombstones_collected += removed as u64;
    }

    /// Runs a state change that bypasses the DAG (Merkle repair, a peer's push, GC, forgetting):
    /// its batch goes into this input's persist batch, and subscribers hear
    /// [`SyncEvent::StateReplaced`] when the root moved.
    fn change_state<T>(&mut self, change: impl FnOnce(&mut State) -> (T, WriteBatch)) -> T {
        let before = self.state.root_hash();
        let (out, batch) = change(&mut self.state);
        self.batch.extend(batch);
        if self.state.root_hash() != before {
            self.state_replaced = true;
        }
        out
    }

    /// Forgets entities a peer collected (see [`State::forget`]); returns how many went.
    fn forget_entities(&mut self, ids: &[tabmesh_base::EntityId]) -> usize {
        let removed = self.change_state(|s| {
            let f = s.forget(ids);
            (f.removed, f.batch)
        });
        self.metrics.entities_forgotten += removed as u64;
        removed
    }

    /// Joins entity states that arrive outside the DAG (Merkle pull, a peer's push), counting
    /// the ones the resurrection guard dropped; returns that count.
    fn join_states(&mut self, entities: &[tabmesh_state::Action]) -> Result<usize, StateError> {
        let dropped = self.change_state(|s| match s.apply_counted(entities) {
            Ok(applied) => (Ok(applied.dropped), applied.batch),
            Err(e) => (Err(e), WriteBatch::new()),
        })?;
        self.metrics.ancient_dropped += dropped as u64;
        Ok(dropped)
    }

    /// The horizon a peer announced, capped at what an honest peer can have collected by now
    /// (`now − retention`, plus the clock drift the HLC tolerates): a peer cannot make us forget
    /// anything newer than our own retention.
    pub(super) fn peer_horizon(&self, now_ms: u64, announced: Hlc) -> Hlc {
        let cap = now_ms
            .saturating_sub(self.config.tombstone_retention_ms)
            .saturating_add(tabmesh_base::MAX_DRIFT_MS);
        announced.min(Hlc::new(cap, 0))
    }

    fn start_session(&mut self, now_ms: u64, peer: Option<NodeId>) {
        if self.session.is_some() {
            return;
        }
        let Some(peer) = peer.or_else(|| self.pick_peer(now_ms, None)) else {
            return;
        };
        self.last_session = Some(now_ms);
        self.session = Some(Session {
            peer,
            deadline: now_ms.saturating_add(self.config.session_timeout_ms),
            protocol: Protocol::None,
            step: Step::Summary,
            pulled: 0,
            pushed: 0,
            pruned_at_peer: Vec::new(),
            force_repair: false,
            pages: 0,
            peer_horizon: Hlc::default(),
            peer_has_state: false,
        });
        self.send_request(now_ms, peer, Purpose::Session, Request::Summary);
    }

    fn end_session(&mut self, now_ms: u64, outcome: SessionOutcome) {
        let Some(session) = self.session.take() else {
            return;
        };
        if std::mem::take(&mut self.resync_when_done) && self.holds_nothing() {
            self.next_tick = self.next_tick.min(now_ms);
        }
        self.inflight
            .retain(|_, f| !matches!(f.purpose, Purpose::Session));
        match &outcome {
            SessionOutcome::Failed(_) => {
                self.metrics.sessions_failed += 1;
                self.penalise(now_ms, session.peer);
            }
            SessionOutcome::Diverged { .. } => self.metrics.sessions_diverged += 1,
            _ => {
                self.backoff.remove(&session.peer);
                if session.peer_has_state && !self.has_pending() {
                    // In step with a peer that has state, nothing waiting for parents: we are not
                    // behind it. (Deltas pulled but pending on pruned parents are not caught up:
                    // the state comparison that releases them must not meet a horizon that
                    // already passed them.)
                    self.last_synced = Some(self.last_synced.map_or(now_ms, |t| t.max(now_ms)));
                }
            }
        }
        // Deltas that arrived during a snapshot go through the normal path now.
        let buffered: Vec<_> = self.buffer.drain(..).collect();
        for (from, env) in buffered {
            self.receive(now_ms, from, env);
        }
        let ended_empty = !session.peer_has_state
            && !matches!(
                outcome,
                SessionOutcome::Failed(_) | SessionOutcome::Diverged { .. }
            );
        self.out.push_back(Output::Event(SyncEvent::SessionEnded {
            peer: session.peer,
            protocol: session.protocol,
            outcome,
        }));
        if ended_empty && self.holds_nothing() {
            // Both sides hold nothing (two joiners catching up at once): ask a peer not found
            // empty yet now rather than a tick later. Each retry marks one more peer, so this
            // ends.
            self.empty_peers.insert(session.peer);
            let fresh = self
                .ready_peers(now_ms, None)
                .into_iter()
                .any(|p| !self.empty_peers.contains(&p));
            if fresh {
                self.next_tick = self.next_tick.min(now_ms);
            }
        }
    }

    fn session_response(&mut self, now_ms: u64, from: NodeId, response: Response) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        let step = std::mem::replace(&mut session.step, Step::Summary);
        self.session = Some(session);
        match (step, response) {
            (_, Response::Refused(why)) => {
                self.end_session(now_ms, SessionOutcome::Failed(SessionFailure::Refused(why)))
            }
            (Step::Summary, Response::Summary(remote)) => self.choose(now_ms, from, remote),
            (
                Step::Deltas,
                Response::Deltas {
                    deltas,
                    next,
                    unavailable: _,
                    history_pruned,
                },
            ) => self.delta_page(now_ms, from, deltas, next, history_pruned),
            (Step::Merkle(walk), response) => self.merkle_response(now_ms, from, walk, response),
            (Step::Have, Response::Have { applied }) => self.have(now_ms, from, applied),
            (Step::Verify, Response::Summary(remote)) => self.verify(now_ms, remote),
            (Step::Governance { then, remote }, Response::Governance { entries, next }) => {
                self.governance_page(now_ms, from, (then, remote), entries, next)
            }
            (Step::Snapshot(join), response) => {
                self.snapshot_response(now_ms, from, join, response)
            }
            (Step::SnapshotGovernance(join), Response::Governance { entries, next }) => {
                self.snapshot_governance(now_ms, from, join, entries, next)
            }
            (_, other) => self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                    response_name(&other),
                ))),
            ),
        }
    }

    fn set_step(&mut self, protocol: Option<Protocol>, step: Step) {
        if let Some(s) = self.session.as_mut() {
            if let Some(p) = protocol {
                s.protocol = p;
            }
            s.step = step;
        }
    }

    fn choose(&mut self, now_ms: u64, peer: NodeId, remote: Summary) {
        let local = self.summary();
        let peer_horizon = self.peer_horizon(now_ms, remote.gc_horizon);
        if let Some(s) = self.session.as_mut() {
            s.peer_horizon = peer_horizon;
            s.peer_has_state = !remote.is_empty();
        }
        if !remote.is_empty() {
            self.empty_peers.remove(&peer);
        }
        let known = remote.heads.iter().all(|h| self.dag.is_applied(h));
        let mut protocol = select_protocol(&local, &remote, known, self.config.delta_gap_threshold);
        let force_repair = self.session.as_ref().is_some_and(|s| s.force_repair);
        if force_repair && !local.is_empty() {
            // A pull found deltas the peer applied but pruned: only a state comparison helps
            // (with equal roots it is empty, and the verification records what the peer has).
            protocol = Protocol::MerkleCompare;
        }
        if protocol != Protocol::Snapshot && remote.governance != local.governance {
            // The peer's governance log first: who may write, with which keys, and which deltas
            // a removal voids. (A snapshot joiner fetches it after the snapshot's pages: see
            // `Step::SnapshotGovernance`.)
            self.set_step(
                Some(protocol),
                Step::Governance {
                    then: protocol,
                    remote: remote.governance,
                },
            );
            self.send_request(
                now_ms,
                peer,
                Purpose::Session,
                Request::Governance { from: 0 },
            );
            return;
        }
        self.run_protocol(now_ms, peer, protocol);
    }

    /// Runs the protocol a session chose (after the governance logs agree, for all but a
    /// snapshot).
    fn run_protocol(&mut self, now_ms: u64, peer: NodeId, protocol: Protocol) {
        let slot = match protocol {
            Protocol::None => 0,
            Protocol::DeltaSync => 1,
            Protocol::MerkleCompare => 2,
            Protocol::Snapshot => 3,
        };
        self.metrics.sessions[slot] += 1;
        match protocol {
            Protocol::None => {
                self.set_step(Some(protocol), Step::Summary);
                self.end_session(now_ms, SessionOutcome::InSync);
            }
            Protocol::DeltaSync => {
                self.set_step(Some(protocol), Step::Deltas);
                self.request_deltas(now_ms, peer, None);
            }
            Protocol::MerkleCompare => self.start_merkle(now_ms, peer),
            Protocol::Snapshot => {
                self.set_step(Some(protocol), Step::Snapshot(Box::default()));
                self.send_request(
                    now_ms,
                    peer,
                    Purpose::Session,
                    Request::Snapshot { cursor: None },
                );
            }
        }
    }

    /// A page of a peer's governance log: the operations missing here are installed (each
    /// checked as if it arrived through the DAG, at the position the peer gives it); then the next
    /// page, or the session's protocol — a state comparison only if both logs now agree (else a
    /// state here or there may still hold what a removal voids: deltas are exchanged instead).
    fn governance_page(
        &mut self,
        now_ms: u64,
        peer: NodeId,
        (then, remote): (Protocol, Hash),
        entries: Vec<crate::GovEntry>,
        next: Option<u32>,
    ) {
        match self.gov.install(entries) {
            Ok(added) if added > 0 => {
                // Operations whose deltas this replica already holds without their bodies (a
                // snapshot or a Merkle repair covered them) are applied here from now on.
                let dag = &self.dag;
                let covered = self.gov.mark_covered(|id| dag.is_applied(id));
                self.removals.extend(covered);
                self.state_replaced |= self.settle_installed();
                self.pull_unapplied(now_ms, peer);
            }
            Ok(_) => {}
            Err(e) => {
                self.end_session(now_ms, SessionOutcome::Failed(SessionFailure::Invalid(e)));
                return;
            }
        }
        if let Some(from) = next {
            self.set_step(None, Step::Governance { then, remote });
            self.send_request(now_ms, peer, Purpose::Session, Request::Governance { from });
            return;
        }
        let protocol = match then {
            Protocol::MerkleCompare if self.gov.digest() != remote => Protocol::DeltaSync,
            other => other,
        };
        self.run_protocol(now_ms, peer, protocol);
    }

    /// Pulls (from `peer` first) the deltas of installed governance operations not applied here:
    /// they come through the DAG too (a removal takes effect once its delta, after its
    /// ancestors, is applied here).
    fn pull_unapplied(&mut self, now_ms: u64, peer: NodeId) {
        let missing: Vec<DeltaId> = self
            .gov
            .unapplied()
            .into_iter()
            .filter(|id| !self.dag.is_applied(id) && !self.rejected.contains(id))
            .collect();
        if !missing.is_empty() {
            self.wanted.want(now_ms, &missing, Some(peer));
            self.pump_pulls(now_ms);
        }
    }

    /// After operations were installed from a peer's log: a removal among them may cut deltas
    /// applied here (their removals are checked like ones applied through the DAG).
    fn settle_installed(&mut self) -> bool {
        let before = self.metrics.rebuilds;
        for (_, r) in self.gov.removals() {
            if !self.removals.contains(&r) {
                self.removals.push(r);
            }
        }
        self.settle_removals();
        self.metrics.rebuilds != before
    }

    fn delta_page(
        &mut self,
        now_ms: u64,
        peer: NodeId,
        deltas: Vec<Envelope>,
        next: Option<u64>,
        history_pruned: bool,
    ) {
        let n = deltas.len() as u64;
        for env in deltas {
            self.receive(now_ms, Some(peer), env);
        }
        let mut pages = 0;
        if let Some(s) = self.session.as_mut() {
            s.pulled += n;
            s.pages += 1;
            pages = s.pages;
        }
        if pages > MAX_SESSION_PAGES {
            self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                    "a delta sync ran past its page budget",
                ))),
            );
        } else if history_pruned {
            // The peer cannot serve all we lack: compare states instead.
            self.start_merkle(now_ms, peer);
        } else if let Some(cursor) = next {
            self.set_step(None, Step::Deltas);
            self.request_deltas(now_ms, peer, Some(cursor));
        } else {
            let pulled = self.session.as_ref().map_or(0, |s| s.pulled);
            self.end_session(now_ms, SessionOutcome::Pulled { deltas: pulled });
        }
    }

    /// Asks `peer` for the next page of the deltas we lack (naming what we know afresh each time).
    fn request_deltas(&mut self, now_ms: u64, peer: NodeId, cursor: Option<u64>) {
        let known = self.known_for_sync();
        self.send_request(
            now_ms,
            peer,
            Purpose::Session,
            Request::DeltasSince { known, cursor },
        );
    }

    fn start_merkle(&mut self, now_ms: u64, peer: NodeId) {
        let walk = MerkleWalk::new();
        self.set_step(Some(Protocol::MerkleCompare), Step::Merkle(Box::new(walk)));
        self.merkle_next(now_ms, peer);
    }

    /// After a Merkle walk: ask which of the deltas we wait for the peer has applied, then for its
    /// live summary, and compare roots. (Asked in that order, the peer's state at the summary
    /// holds every delta it said it applied.)
    fn start_verify(&mut self, now_ms: u64, peer: NodeId) {
        let mut waiting = self.dag.missing_parents(MAX_IDS);
        for id in self.dag.pending_ids(MAX_IDS) {
            if waiting.len() >= MAX_IDS {
                break;
            }
            waiting.push(id);
        }
        if waiting.is_empty() {
            self.set_step(None, Step::Verify);
            self.send_request(now_ms, peer, Purpose::Session, Request::Summary);
        } else {
            self.set_step(None, Step::Have);
            self.send_request(
                now_ms,
                peer,
                Purpose::Session,
                Request::Have { ids: waiting },
            );
        }
    }

    fn have(&mut self, now_ms: u64, peer: NodeId, applied: Vec<DeltaId>) {
        if let Some(s) = self.session.as_mut() {
            s.pruned_at_peer.extend(applied.into_iter().take(MAX_IDS));
        }
        self.set_step(None, Step::Verify);
        self.send_request(now_ms, peer, Purpose::Session, Request::Summary);
    }

    fn verify(&mut self, now_ms: u64, remote: Summary) {
        let local = self.state.root_hash();
        if local != remote.root {
            self.end_session(
                now_ms,
                SessionOutcome::Diverged {
                    local,
                    remote: remote.root,
                },
            );
            return;
        }
        // Equal states: the peer's heads (and what it pruned that we wait for) are covered —
        // unless its governance log moved since the session compared them: a governance
        // operation changes no state, so those heads may cover one not recorded here, and
        // deltas citing them would be checked at a position without it. The next session
        // installs the log first.
        let pruned = self
            .session
            .as_mut()
            .map(|s| std::mem::take(&mut s.pruned_at_peer))
            .unwrap_or_default();
        if remote.governance == self.gov.digest() {
            self.cover(&remote.heads, remote.heads_stamp, &pruned, remote.root);
        }
        let (pulled, pushed) = self
            .session
            .as_ref()
            .map_or((0, 0), |s| (s.pulled, s.pushed));
        self.end_session(now_ms, SessionOutcome::Converged { pulled, pushed });
    }

    /// The DAG and, borrowed beside it, the applier its `add`/cascade paths call for each delta.
    fn dag_and_applier(&mut self) -> (&mut Dag<Body>, Applier<'_>) {
        let applier = Applier {
            state: &mut self.state,
            batch: &mut self.batch,
            metrics: &mut self.metrics,
            due_prefix: &self.due_prefix,
            due: &mut self.due,
            gov: &mut self.gov,
            forced: None,
            removals: &mut self.removals,
            out: &mut self.out,
            provisional: &mut self.provisional,
        };
        (&mut self.dag, applier)
    }

    // ---------------------------------------------------------------------------------------------
    // The removal cut.

    /// Checks the removals this input recorded: when the removed member (or a join on its
    /// invitations) has applied deltas here that are not ancestors of its removal, they are void
    /// and the state is rebuilt without them.
    fn settle_removals(&mut self) {
        self.removals.clear();
        // Deltas the cut voids that were applied here (not void yet): rebuild without them.
        if self.cut().keys().any(|id| !self.gov.is_void(id)) {
            self.rebuild();
        }
        // Buffered deltas of removed members that nothing waits for can only be void, and may
        // wait for parents only their author holds.
        let gov = &self.gov;
        let discarded = self
            .dag
            .discard_pending(|d, waited_for| !waited_for && gov.is_removed(&d.payload.author));
        self.metrics.deltas_voided += discarded.len() as u64;
    }

    /// The retained ancestors of a delta.
    fn ancestors(&self, id: &DeltaId) -> BTreeSet<DeltaId> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<DeltaId> = self
            .dag
            .get(id)
            .map(|d| d.parents.clone())
            .unwrap_or_default();
        while let Some(p) = stack.pop() {
            if seen.insert(p) {
                if let Some(d) = self.dag.get(&p) {
                    stack.extend(d.parents.iter().copied());
                }
            }
        }
        seen
    }

    /// The deltas the removal cut voids: for every removal, the removed member's deltas and the
    /// joins on its invitations that are not ancestors of the removal.
    fn cut(&self) -> BTreeMap<DeltaId, VoidReason> {
        let mut forced = BTreeMap::new();
        for (m, r) in self.gov.removals() {
            let past = self.ancestors(&r);
            let joins = self.gov.joins_invited_by(&m);
            for d in self.dag.applied_in_order() {
                // A removal is judged by its causal past alone: never cut. Whether a governance
                // operation precedes the removal, positions tell exactly.
                let before = self
                    .gov
                    .precedes(&d.id, &r)
                    .unwrap_or_else(|| past.contains(&d.id));
                if d.id == r || before || self.gov.removal_target(&d.id).is_some() {
                    continue;
                }
                if d.payload.author == m {
                    forced.insert(d.id, VoidReason::AuthorRemoved);
                } else if joins.contains(&d.id) {
                    forced.entry(d.id).or_insert(VoidReason::InviterRemoved);
                }
            }
        }
        forced
    }

    /// Rebuilds the state by replaying the retained deltas in apply order with the removal cut
    /// applied: the governance operations it cuts are marked void in place (positions keep
    /// their meaning), the data deltas it cuts — and those that no longer pass — stay in the DAG
    /// as void. State this replica holds only from peers (a snapshot, Merkle repair, pruned
    /// history) is not in the DAG: it comes back with the next sync session with a peer of the
    /// same governance.
    fn rebuild(&mut self) {
        let forced = self.cut();
        self.gov.void_records(&forced);
        let deltas: Vec<CausalDelta<Body>> = self
            .dag
            .applied_in_order()
            .filter(|d| !self.gov.is_record(&d.id))
            .cloned()
            .collect();
        let horizon = self.state.gc_horizon();
        let fresh = State::new(self.state.prefix());
        let old = std::mem::replace(&mut self.state, fresh);
        let (_, mut applier) = self.dag_and_applier();
        applier.forced = Some(&forced);
        for d in &deltas {
            if applier.apply(d).is_err() {
                let pos = applier.gov.position_at(&d.parents);
                applier
                    .gov
                    .admit(d, pos, &Opened::Void(VoidReason::AdmissionVoid, None));
            }
        }
        let batch = self.state.adopt_gc_horizon(horizon);
        self.batch.extend(batch);
        for e in old.entities() {
            if self.state.entity(&e.id()).is_none() {
                self.batch.delete(old.record_key(&e.id()));
            }
        }
        self.metrics.rebuilds += 1;
        let root = self.state.root_hash();
        self.out
            .push_back(Output::Event(SyncEvent::Rebuilt { root }));
    }

    /// Records that the state already holds `heads` (as checkpoint heads, their stamps at most
    /// `heads_stamp`, as the covering peer says) and `satisfied` (as pruned), then applies what
    /// that unblocks.
    fn cover(&mut self, heads: &[DeltaId], heads_stamp: Hlc, satisfied: &[DeltaId], root: Hash) {
        let mut unknown: Vec<DeltaId> = heads
            .iter()
            .filter(|h| !self.dag.is_applied(h))
            .copied()
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            // What this replica writes on them is stamped after them (see `Replica::govern`).
            self.gov.cover_stamp(heads_stamp);
        }
        // Governance operations among the covered ids are applied from now on, before anything
        // this unblocks is checked: a delta citing a covered parent is checked at a position
        // made of every operation applied here (see `Governance::position`), which must include
        // them.
        let covered: BTreeSet<DeltaId> = unknown.iter().chain(satisfied).copied().collect();
        let dag = &self.dag;
        let activated = self
            .gov
            .mark_covered(|id| dag.is_applied(id) || covered.contains(id));
        self.removals.extend(activated);
        let limit = self.config.dag.max_query_limit.max(1);
        let (dag, mut applier) = self.dag_and_applier();
        let mut apply = |d: &CausalDelta<Body>| applier.apply(d);
        let mut cascades = Vec::new();
        // Heads first, so they become heads (checkpoints) rather than merely satisfied ids.
        for chunk in unknown.chunks(tabmesh_dag::MAX_CHECKPOINT_HEADS) {
            if let Ok(c) = dag.restore_checkpoint(chunk, root, &mut apply) {
                cascades.push(c);
            }
        }
        for chunk in satisfied.chunks(limit) {
            if let Ok(c) = dag.mark_satisfied(chunk, &mut apply) {
                cascades.push(c);
            }
        }
        for c in cascades {
            self.record_cascade(None, c);
        }
    }
}

/// The DAG's applier: decodes a delta's payload, joins its actions into the state (counting the
/// fragments dropped as ancient) and records the handlers its events make due, all in the batch
/// that applies the delta. Only deltas applied through the DAG come here (received, cascaded,
/// pulled, synced); state installed by a snapshot or a Merkle repair never does.
struct Applier<'a> {
    state: &'a mut State,
    batch: &'a mut WriteBatch,
    metrics: &'a mut SyncMetrics,
    due_prefix: &'a [u8],
    due: &'a mut Vec<DueHandler>,
    gov: &'a mut Governance,
    /// While rebuilding: the deltas the removal cut voids (and no handler becomes due).
    forced: Option<&'a BTreeMap<DeltaId, VoidReason>>,
    removals: &'a mut Vec<DeltaId>,
    out: &'a mut VecDeque<Output>,
    /// Deltas refused at an approximated position (see [`Replica::refused`]).
    provisional: &'a mut BTreeSet<DeltaId>,
}

impl Applier<'_> {
    /// Governance decides (membership at the delta's position, the removal cut, epoch, decrypt,
    /// the operation's rules); then the payload joins the state and its events make handlers due.
    fn apply(&mut self, d: &CausalDelta<Body>) -> Result<(), SyncError> {
        let forced = self.forced.and_then(|f| f.get(&d.id).copied());
        let (pos, opened) = match self.gov.check(d, forced, self.forced.is_some()) {
            Ok(checked) => checked,
            Err(e) => {
                if !self.gov.has_positions(&d.parents) {
                    self.provisional.insert(d.id);
                }
                return Err(e);
            }
        };
        let mut payload = None;
        match &opened {
            Opened::Apply(p) => {
                let applied = self.state.apply_counted(&p.actions)?;
                self.batch.extend(applied.batch);
                self.metrics.ancient_dropped += applied.dropped as u64;
                payload = Some((p.events.clone(), p.hop));
            }
            Opened::Void(reason, _) => {
                self.metrics.deltas_voided += 1;
                self.out.push_back(Output::Event(SyncEvent::Voided {
                    id: d.id,
                    author: d.payload.author,
                    reason: *reason,
                }));
            }
        }
        if self.gov.admit(d, pos, &opened).is_some() {
            self.removals.push(d.id);
        }
        let Some((events, hop)) = payload else {
            return Ok(());
        };
        if self.forced.is_some() || self.gov.member_id() == d.payload.author {
            // Never on the author, and never again while rebuilding.
            return Ok(());
        }
        if !events.is_empty() {
            self.out.push_back(Output::Event(SyncEvent::Emitted {
                delta: d.id,
                author: d.payload.author,
                events: events.clone(),
            }));
        }
        let payload = DeltaPayload {
            events,
            hop,
            ..DeltaPayload::default()
        };
        for (i, event) in payload.events.into_iter().enumerate() {
            let Ok(index) = u16::try_from(i) else { break };
            if event.handler.is_none() {
                continue;
            }
            let due = DueHandler {
                delta: d.id,
                index,
                author: d.payload.author,
                hop: payload.hop,
                event,
            };
            self.batch.put(due.key(self.due_prefix), due.encode());
            self.due.push(due);
            self.metrics.handlers_due += 1;
        }
        Ok(())
    }
}

fn dag_prefix(prefix: &[u8]) -> Vec<u8> {
    tabmesh_base::key(&[prefix, b"d/"])
}

fn due_prefix(prefix: &[u8]) -> Vec<u8> {
    tabmesh_base::key(&[prefix, b"h/"])
}

fn gov_prefix(prefix: &[u8]) -> Vec<u8> {
    tabmesh_base::key(&[prefix, b"g/"])
}

fn state_prefix(prefix: &[u8]) -> Vec<u8> {
    tabmesh_base::key(&[prefix, b"s/"])
}

fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Summary(_) => "unexpected summary response",
        Response::Deltas { .. } => "unexpected deltas response",
        Response::Tree { .. } => "unexpected tree response",
        Response::Entities { .. } => "unexpected entities response",
        Response::PushAck { .. } => "unexpected push ack",
        Response::Have { .. } => "unexpected have response",
        Response::Governance { .. } => "unexpected governance response",
        Response::SnapshotPage { .. } => "unexpected snapshot page",
        Response::Refused(_) => "refusal",
    }
}
