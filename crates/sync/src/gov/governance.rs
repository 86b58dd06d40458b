//! The governance state of one replica: the governance operations applied so far, every applied
//! delta's causal position, the epoch keys held, and the checks that decide each delta's fate.
//!
//! A **position** is the set of governance operations in a delta's strict causal past (indices
//! into `records`, sorted): the union of its parents' positions plus the parents that are
//! governance operations themselves. Every rule is evaluated on a position, so a verdict depends
//! only on the delta and the history it cites. The one exception is the removal cut (see
//! [`crate::gov`]): a removal voids the removed member's deltas that are not its ancestors, which
//! a replica that applied one of them earlier repairs by rebuilding its state
//! ([`Replica`](crate::Replica) does, through [`Governance::cut`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tabmesh_auth::{open, seal, Entropy, Keypair, Role, SymKey, NONCE_LEN};
use tabmesh_base::{
    codec::{Reader, Writer},
    key, CodecError, ContextId, DeltaId, Hash, Hasher, Hlc, KvRead, MemberId, WriteBatch,
};
use tabmesh_dag::CausalDelta;

use crate::gov::{context_id, epoch_id, epoch_key, GovOp, KeyBox, MAX_EPOCH_PARTS};
use crate::{AccessError, Body, DeltaPayload, Envelope, GovEntry, SyncError};

/// The most governance operations one context records (joins, removals, rotations, app
/// changes): beyond it, further operations are refused.
pub const MAX_GOV_OPS: usize = 16_384;

/// The largest ciphertext decrypted for an author who is not a member at the delta's position
/// (only a join, whose invitation is at most a few KiB, may come from one).
pub const MAX_JOIN_CIPHERTEXT: usize = 32 << 10;

/// The most void marks one replica keeps (see `Governance::mark_void`).
pub(crate) const MAX_VOIDED: usize = 65_536;

/// The most epoch keys one replica holds for a context.
pub const MAX_HELD_KEYS: usize = 4_096;

/// A causal position: governance record indices, sorted.
pub(crate) type Pos = Arc<[u32]>;

/// One applied governance operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// Its delta's id (the envelope's, kept: it is a hash).
    pub(crate) id: DeltaId,
    pub(crate) op: GovOp,
    /// Its position (the governance operations in its strict past).
    pub(crate) past: Pos,
    /// Void: cut by a removal (the removed member's operation, or a join on its invitation).
    pub(crate) void: bool,
    /// The delta itself (author, stamp, the epoch it introduced or sealed with), to serve
    /// governance to a peer that installs the log.
    pub(crate) env: Envelope,
    /// Its delta is applied here (through the DAG, or covered by a snapshot), not only installed
    /// from a peer's log: only then does a removal take effect here (the removal cut and the
    /// rule that voids a removed author's later deltas both rely on its ancestors being applied).
    pub(crate) applied: bool,
}

/// What a position says: members and roles, the app, the current epoch.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub(crate) members: BTreeMap<MemberId, Role>,
    /// Admitted only by void joins: their deltas are void, not refused.
    pub(crate) void_admitted: BTreeSet<MemberId>,
    pub(crate) removed: BTreeSet<MemberId>,
    pub(crate) app: Option<Hash>,
    /// The maximal key operations (record indices).
    pub(crate) epoch_parts: Vec<u32>,
    /// Every key operation's epoch in the position.
    pub(crate) epochs: BTreeSet<Hash>,
    /// Epochs of void key operations (deltas sealed with them before the cut stay readable).
    pub(crate) void_epochs: BTreeSet<Hash>,
}

/// Why a delta is void.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoidReason {
    /// Its author was removed, and it is not an ancestor of the removal.
    AuthorRemoved,
    /// A join on the invitation of a member removed, not an ancestor of the removal.
    InviterRemoved,
    /// Its author was admitted by a void join.
    AdmissionVoid,
}

/// A delta that passed the checks.
#[derive(Debug)]
pub(crate) enum Opened {
    /// Apply this payload.
    Apply(DeltaPayload),
    /// Keep the delta in the DAG without applying anything (a void join keeps its operation: it
    /// is recorded as void, so its joiner's deltas are void too rather than refused).
    Void(VoidReason, Option<GovOp>),
}

/// The replica's governance state.
#[derive(Debug)]
pub(crate) struct Governance {
    context: ContextId,
    me: Keypair,
    entropy: Entropy,
    records: Vec<Record>,
    by_id: HashMap<DeltaId, u32>,
    /// Every applied delta's position including itself when it is a governance operation, and
    /// its HLC.
    upto: HashMap<DeltaId, (Pos, Hlc)>,
    /// An upper bound of the stamps of the deltas held here only as covered (the heads of a
    /// snapshot or of a Merkle repair: state without the deltas), as the peers that covered them
    /// vouched for it (persisted). Only what this replica writes uses it (a governance operation
    /// on such heads is stamped after it, see [`Governance::heads_stamp`]); checks never do: a
    /// delta's verdict rests on the history it cites, not on a peer's word.
    covered_stamp: Hlc,
    empty: Pos,
    keys: BTreeMap<Hash, SymKey>,
    /// Combined epochs derived here: id → the part ids it combines (bounded by
    /// [`MAX_HELD_KEYS`]).
    combos: BTreeMap<Hash, Vec<Hash>>,
    /// Members known to hold each epoch key (from key boxes and joins).
    holders: BTreeMap<Hash, BTreeSet<MemberId>>,
    /// The first valid removal of each removed member.
    removals: BTreeMap<MemberId, u32>,
    /// Deltas the removal cut voided (recomputed by [`Governance::cut`]).
    voided: BTreeSet<DeltaId>,
    prefix: Vec<u8>,
    batch: WriteBatch,
    /// Set while a peer's log is installed (its records are not applied here yet).
    installing: bool,
    /// Bumped by every change to records and holders ([`Governance::version`]).
    version: u64,
}

const KEY_TAG: u8 = b'k';
const ME_TAG: u8 = b'm';
const RECORD_TAG: u8 = b'r';
const COVERED_STAMP_TAG: u8 = b's';

impl Governance {
    /// A governance state for `me` holding `keys`, with records under `prefix`.
    pub(crate) fn new(
        context: ContextId,
        prefix: &[u8],
        me: Keypair,
        entropy: Entropy,
        keys: &[SymKey],
    ) -> Governance {
        let mut g = Governance {
            context,
            me,
            entropy,
            records: Vec::new(),
            by_id: HashMap::new(),
            upto: HashMap::new(),
            covered_stamp: Hlc::default(),
            empty: Arc::from(Vec::new()),
            keys: BTreeMap::new(),
            combos: BTreeMap::new(),
            holders: BTreeMap::new(),
            removals: BTreeMap::new(),
            voided: BTreeSet::new(),
            prefix: prefix.to_vec(),
            batch: WriteBatch::new(),
            installing: false,
            version: 0,
        };
        g.batch
            .put(key(&[prefix, &[ME_TAG]]), g.me.secret().to_vec());
        g.learn(keys);
        g
    }

    /// The member key pair stored under `prefix`, if any.
    pub(crate) fn stored_identity(prefix: &[u8], kv: &impl KvRead) -> Option<Keypair> {
        let bytes = kv.get(&key(&[prefix, &[ME_TAG]]))?;
        let secret: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(Keypair::from_secret(secret))
    }

    /// Restores the keys and records stored under `prefix`; positions are rebuilt by
    /// [`Governance::replay_position`] for each retained delta, oldest first.
    pub(crate) fn restore(
        context: ContextId,
        prefix: &[u8],
        me: Keypair,
        entropy: Entropy,
        kv: &impl KvRead,
    ) -> Result<Governance, CodecError> {
        let mut g = Governance::new(context, prefix, me, entropy, &[]);
        g.batch = WriteBatch::new();
        for (_, v) in kv.scan_prefix(&key(&[prefix, &[KEY_TAG]])) {
            let b: [u8; 32] = v
                .as_slice()
                .try_into()
                .map_err(|_| CodecError::Invalid("stored epoch key"))?;
            let k = SymKey::from_bytes(b);
            g.keys.insert(k.id(), k);
        }
        let rows = kv.scan_prefix(&key(&[prefix, &[RECORD_TAG]]));
        for (_, v) in rows {
            let r = decode_record(&v)?;
            g.index_record(r);
        }
        if let Some(v) = kv.get(&key(&[prefix, &[COVERED_STAMP_TAG]])) {
            let mut r = Reader::new(&v)?;
            g.covered_stamp = Hlc::decode(&mut r)?;
            r.finish()?;
        }
        Ok(g)
    }

    fn index_record(&mut self, r: Record) {
        self.version += 1;
        let i = self.records.len() as u32;
        self.by_id.insert(r.id, i);
        if let GovOp::Remove { member } = &r.op {
            if !r.void && r.applied {
                self.removals.entry(*member).or_insert(i);
            }
        }
        self.note_holders(&r);
        self.records.push(r);
    }

    fn note_holders(&mut self, r: &Record) {
        if r.void {
            return;
        }
        if r.op.introduces_key() {
            for k in &r.env.keys {
                for id in &k.ids {
                    self.holders.entry(*id).or_default().insert(k.to);
                }
            }
        }
        match &r.op {
            GovOp::Create { founders, .. } => {
                let set = self.holders.entry(r.env.epoch).or_default();
                set.extend(founders.iter().map(|f| f.member));
            }
            GovOp::Join { keys, .. } => {
                for k in keys {
                    self.holders.entry(*k).or_default().insert(r.env.author);
                }
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Queries.

    pub(crate) fn me(&self) -> &Keypair {
        &self.me
    }

    pub(crate) fn member_id(&self) -> MemberId {
        MemberId(self.me.public())
    }

    pub(crate) fn entropy(&mut self) -> &mut Entropy {
        &mut self.entropy
    }

    /// Epoch keys held for recorded key operations, in log order (for an invitation's key
    /// material: the caller keeps the newest).
    pub(crate) fn held_keys(&self) -> Vec<SymKey> {
        self.records
            .iter()
            .filter(|r| r.op.introduces_key())
            .filter_map(|r| self.keys.get(&r.env.epoch).cloned())
            .collect()
    }

    /// A digest of the governance operations recorded and not void (equal digests: the same
    /// operations count). Void ones are left out: a replica that never recorded an operation the
    /// cut voids (it arrived after the removal) and one that recorded it and voided it agree.
    pub(crate) fn digest(&self) -> Hash {
        let mut ids: Vec<DeltaId> = self
            .records
            .iter()
            .filter(|r| !r.void)
            .map(|r| r.id)
            .collect();
        ids.sort_unstable();
        let mut h = Hasher::new(b"tabmesh/governance-digest/v2");
        for id in ids {
            h.fixed(id.as_bytes());
        }
        h.finish()
    }

    /// The position of a delta with these parents and the largest HLC among them. A parent this
    /// replica holds without a position (covered by a snapshot or a Merkle repair, or pruned
    /// before a restart) counts as having every operation recorded here in its past: an
    /// over-approximation that only adds operations, which cannot turn an honest member into a
    /// non-member (a removal voids its target's deltas whatever their position) and cannot
    /// change a data delta's epoch check (any epoch of the position is accepted).
    pub(crate) fn position(&self, parents: &[DeltaId]) -> (Pos, Hlc) {
        let mut max_hlc = Hlc::default();
        let mut acc: Option<Pos> = None;
        let mut merged: Option<BTreeSet<u32>> = None;
        for p in parents {
            let pos = match self.upto.get(p) {
                Some((pos, hlc)) => {
                    max_hlc = max_hlc.max(*hlc);
                    pos.clone()
                }
                None => self.everything(),
            };
            match (&acc, &mut merged) {
                (None, None) => acc = Some(pos),
                (Some(a), None) if Arc::ptr_eq(a, &pos) || a[..] == pos[..] => {}
                (Some(a), None) => {
                    let mut set: BTreeSet<u32> = a.iter().copied().collect();
                    set.extend(pos.iter().copied());
                    merged = Some(set);
                }
                (_, Some(set)) => set.extend(pos.iter().copied()),
            }
        }
        let pos = match (acc, merged) {
            (_, Some(set)) => Arc::from(set.into_iter().collect::<Vec<u32>>()),
            (Some(a), None) => a,
            (None, None) => self.empty.clone(),
        };
        (pos, max_hlc)
    }

    /// The largest stamp among `heads` as known here, for what this replica writes or tells
    /// others about them: a head with its own position counts with its delta's stamp, one held
    /// only as covered with the bound its covering peer vouched for ([`Governance::cover_stamp`]).
    /// A governance operation this replica writes on `heads` is stamped after it (a join must
    /// be, on every replica that holds its parents).
    pub(crate) fn heads_stamp(&self, heads: &[DeltaId]) -> Hlc {
        heads
            .iter()
            .map(|h| self.upto.get(h).map_or(self.covered_stamp, |(_, hlc)| *hlc))
            .max()
            .unwrap_or_default()
    }

    /// Notes `stamp` as a bound of the stamps of deltas just covered here (a snapshot's heads, a
    /// Merkle repair's): kept, and persisted, as the largest such bound seen.
    pub(crate) fn cover_stamp(&mut self, stamp: Hlc) {
        if stamp > self.covered_stamp {
            self.covered_stamp = stamp;
            let mut w = Writer::new();
            stamp.encode(&mut w);
            self.batch
                .put(key(&[&self.prefix, &[COVERED_STAMP_TAG]]), w.finish());
        }
    }

    /// Whether every one of `parents` has its own position here (none is known only as covered):
    /// then [`Governance::position`] is exact.
    pub(crate) fn has_positions(&self, parents: &[DeltaId]) -> bool {
        parents.iter().all(|p| self.upto.contains_key(p))
    }

    /// Every recorded operation whose delta is applied here (installed ones wait for theirs).
    fn everything(&self) -> Pos {
        Arc::from(
            (0..self.records.len() as u32)
                .filter(|&i| self.records.get(i as usize).is_some_and(|r| r.applied))
                .collect::<Vec<u32>>(),
        )
    }

    /// What position `pos` says.
    pub(crate) fn view(&self, pos: &[u32]) -> View {
        let mut v = View::default();
        let mut key_ops = Vec::new();
        let mut app_ops = Vec::new();
        for &i in pos {
            let Some(r) = self.records.get(i as usize) else {
                continue;
            };
            if r.void && !matches!(r.op, GovOp::Join { .. }) {
                // A void key operation still counts as a part of the epochs after it (so deltas
                // sealed before the cut stay readable; combining keeps the epoch secret from the
                // removed member, who lacks the other parts).
                if r.op.introduces_key() {
                    key_ops.push(i);
                    v.epochs.insert(r.env.epoch);
                    v.void_epochs.insert(r.env.epoch);
                }
                continue;
            }
            match &r.op {
                GovOp::Create { founders, .. } => {
                    for f in founders {
                        v.members.entry(f.member).or_insert(f.role);
                    }
                    app_ops.push(i);
                }
                GovOp::Join { invitation, .. } => {
                    if r.void {
                        v.void_admitted.insert(r.env.author);
                    } else {
                        let role = invitation.role;
                        v.members
                            .entry(r.env.author)
                            .and_modify(|r| *r = (*r).max(role))
                            .or_insert(role);
                    }
                }
                GovOp::Remove { member } => {
                    v.removed.insert(*member);
                }
                GovOp::ChangeApp { .. } => app_ops.push(i),
                GovOp::Rotate => {}
            }
            if r.op.introduces_key() {
                key_ops.push(i);
                v.epochs.insert(r.env.epoch);
            }
        }
        for m in &v.removed {
            v.members.remove(m);
        }
        v.void_admitted.retain(|m| !v.members.contains_key(m));
        // The app: the latest app operation; concurrent ones are settled by (HLC, delta id).
        v.app = self
            .maximal(&app_ops)
            .into_iter()
            .filter_map(|i| self.records.get(i as usize))
            .max_by_key(|r| (r.env.hlc, r.id))
            .and_then(|r| match &r.op {
                GovOp::Create { app, .. } | GovOp::ChangeApp { app } => Some(*app),
                _ => None,
            });
        let mut parts = self.maximal(&key_ops);
        // Beyond the bound, the same parts on every replica: the smallest delta ids.
        parts.sort_by_key(|&i| self.records.get(i as usize).map(|r| r.id));
        parts.truncate(MAX_EPOCH_PARTS);
        v.epoch_parts = parts;
        v
    }

    /// The operations among `ops` that no other one of them follows causally.
    fn maximal(&self, ops: &[u32]) -> Vec<u32> {
        ops.iter()
            .copied()
            .filter(|&i| {
                !ops.iter().any(|&j| {
                    j != i
                        && self
                            .records
                            .get(j as usize)
                            .is_some_and(|r| r.past.binary_search(&i).is_ok())
                })
            })
            .collect()
    }

    /// The id of a view's current epoch (none before the genesis).
    pub(crate) fn epoch_id_of(&self, view: &View) -> Option<Hash> {
        let parts: Vec<Hash> = view
            .epoch_parts
            .iter()
            .filter_map(|&i| self.records.get(i as usize).map(|r| r.env.epoch))
            .collect();
        (!parts.is_empty()).then(|| epoch_id(&parts))
    }

    /// The current epoch of a view: its id and, if every part is held, its key.
    pub(crate) fn epoch_of(&mut self, view: &View) -> Option<(Hash, Option<SymKey>)> {
        let parts: Vec<Hash> = view
            .epoch_parts
            .iter()
            .filter_map(|&i| self.records.get(i as usize).map(|r| r.env.epoch))
            .collect();
        if parts.is_empty() {
            return None;
        }
        let id = epoch_id(&parts);
        if let Some(k) = self.keys.get(&id) {
            return Some((id, Some(k.clone())));
        }
        if parts.len() > 1 && self.combos.len() < MAX_HELD_KEYS {
            self.combos.insert(id, parts.clone());
        }
        let keys: Option<Vec<SymKey>> = parts.iter().map(|p| self.keys.get(p).cloned()).collect();
        let key = keys.map(|ks| epoch_key(&ks));
        if let Some(k) = &key {
            // Combined keys are derived, not stored: they come back from their parts.
            self.keys.insert(id, k.clone());
        }
        Some((id, key))
    }

    /// The members that lack a part of the current epoch at `pos`, with the part ids they lack.
    pub(crate) fn debts(&mut self, pos: &[u32]) -> Vec<(MemberId, Vec<Hash>)> {
        let view = self.view(pos);
        let parts: Vec<Hash> = view
            .epoch_parts
            .iter()
            .filter_map(|&i| self.records.get(i as usize).map(|r| r.env.epoch))
            .collect();
        let mut out = Vec::new();
        for m in view.members.keys() {
            let lacking: Vec<Hash> = parts
                .iter()
                .filter(|p| !self.holders.get(p).is_some_and(|s| s.contains(m)))
                .copied()
                .collect();
            if !lacking.is_empty() {
                out.push((*m, lacking));
            }
        }
        out
    }

    /// Whether any governance operation (the genesis at least) is known here.
    pub(crate) fn has_genesis(&self) -> bool {
        !self.records.is_empty()
    }

    /// The key to seal a direct message with: `hint` if held (the epoch the peer used), else the
    /// current epoch at `heads` if held, else any held key (an invitee before it knows the
    /// context's governance).
    pub(crate) fn sealing_key(
        &mut self,
        heads: &[DeltaId],
        hint: Option<Hash>,
    ) -> Option<(Hash, SymKey)> {
        if let Some(h) = hint {
            if let Some(k) = self.keys.get(&h) {
                return Some((h, k.clone()));
            }
        }
        let view = self.view_at(heads);
        if let Some((id, Some(k))) = self.epoch_of(&view) {
            return Some((id, k));
        }
        self.keys.iter().next().map(|(id, k)| (*id, k.clone()))
    }

    /// The deltas that introduced epoch `epoch` (its parts, for a combined epoch derived here):
    /// what a member lacking its key needs, since their key boxes carry it.
    pub(crate) fn key_envelopes(&self, epoch: &Hash) -> Vec<Envelope> {
        let parts = self
            .combos
            .get(epoch)
            .cloned()
            .unwrap_or_else(|| vec![*epoch]);
        self.records
            .iter()
            .filter(|r| r.op.introduces_key() && parts.contains(&r.env.epoch))
            .take(MAX_EPOCH_PARTS)
            .map(|r| r.env.clone())
            .collect()
    }

    /// The key with this id, if held.
    pub(crate) fn key(&self, id: &Hash) -> Option<&SymKey> {
        self.keys.get(id)
    }

    /// The valid removals: (removed member, removal delta).
    pub(crate) fn removals(&self) -> Vec<(MemberId, DeltaId)> {
        self.removals
            .iter()
            .filter_map(|(m, &i)| self.records.get(i as usize).map(|r| (*m, r.id)))
            .collect()
    }

    /// Joins attributable to member `m`: made on its invitations, or on the invitation it joined
    /// with (a removed member must not come back with a new key on its old link).
    pub(crate) fn joins_invited_by(&self, m: &MemberId) -> BTreeSet<DeltaId> {
        let own = self.own_invitation(m);
        self.records
            .iter()
            .filter(|r| r.env.author != *m)
            .filter(|r| {
                matches!(&r.op, GovOp::Join { invitation, .. }
                    if invitation.inviter == *m || Some(invitation.id()) == own)
            })
            .map(|r| r.id)
            .collect()
    }

    /// The id of the invitation member `m` joined with, if it joined by invitation.
    fn own_invitation(&self, m: &MemberId) -> Option<Hash> {
        self.records.iter().find_map(|r| match &r.op {
            GovOp::Join { invitation, .. } if r.env.author == *m && !r.void => {
                Some(invitation.id())
            }
            _ => None,
        })
    }

    /// Whether a join on `invitation` is attributable to a member removed here.
    fn invitation_of_removed(&self, invitation: &tabmesh_auth::Invitation) -> bool {
        if self.removals.contains_key(&invitation.inviter) {
            return true;
        }
        let id = invitation.id();
        self.removals
            .keys()
            .any(|m| self.own_invitation(m) == Some(id))
    }

    /// The current view at the given heads.
    /// The view at these heads (no heads while governance is known — a snapshot being
    /// installed: every operation recorded).
    pub(crate) fn view_at(&self, heads: &[DeltaId]) -> View {
        self.view(&self.position_at(heads))
    }

    /// The position of a delta on these heads (see [`Governance::view_at`] for no heads).
    pub(crate) fn position_at(&self, heads: &[DeltaId]) -> Pos {
        if heads.is_empty() {
            // A snapshot being installed: the log installed so far is all there is.
            return Arc::from((0..self.records.len() as u32).collect::<Vec<u32>>());
        }
        self.position(heads).0
    }

    // ---------------------------------------------------------------------------------------------
    // Keys.

    /// Learns keys (from an invitation, or a key box addressed to this member).
    pub(crate) fn learn(&mut self, keys: &[SymKey]) -> bool {
        let mut new = false;
        for k in keys {
            if self.keys.len() >= MAX_HELD_KEYS {
                break;
            }
            let id = k.id();
            if !self.keys.contains_key(&id) {
                self.batch.put(
                    key(&[&self.prefix, &[KEY_TAG], id.as_bytes()]),
                    k.to_bytes().to_vec(),
                );
                self.keys.insert(id, k.clone());
                self.version += 1;
                new = true;
            }
        }
        new
    }

    /// The key with id `epoch` in `env`'s key box to this member, if any (not stored).
    fn boxed_key(&self, env: &Envelope, epoch: &Hash) -> Option<SymKey> {
        let me = self.member_id();
        env.keys
            .iter()
            .filter(|b| b.to == me && b.ids.contains(epoch))
            .find_map(|b| b.open(&self.context, &self.me).ok())
            .and_then(|keys| keys.into_iter().find(|k| k.id() == *epoch))
    }

    /// Opens the key boxes of `env` addressed to this member. Returns whether a key was new.
    pub(crate) fn learn_from(&mut self, env: &Envelope) -> bool {
        let me = self.member_id();
        let mut new = false;
        for b in env.keys.iter().filter(|b| b.to == me) {
            if let Ok(keys) = b.open(&self.context, &self.me) {
                new |= self.learn(&keys);
            }
        }
        new
    }

    // ---------------------------------------------------------------------------------------------
    // The log, for snapshot joiners.

    /// Log entries from index `from`, within `budget` encoded bytes (at least one) and
    /// [`MAX_GOV_ENTRIES`](crate::MAX_GOV_ENTRIES); the index of the next page if any.
    pub(crate) fn entries(&self, from: u32, budget: usize) -> (Vec<GovEntry>, Option<u32>) {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut next = None;
        for (i, r) in self.records.iter().enumerate().skip(from as usize) {
            let heads = self.maximal(&r.past);
            let mut w = Writer::unversioned();
            r.env.encode(&mut w);
            let len = w.as_slice().len() + 32 * heads.len() + 8;
            if !out.is_empty() && (bytes + len > budget || out.len() >= crate::MAX_GOV_ENTRIES) {
                next = Some(i as u32);
                break;
            }
            bytes += len;
            out.push(GovEntry {
                envelope: r.env.clone(),
                past: heads
                    .iter()
                    .filter_map(|&h| self.records.get(h as usize).map(|p| p.id))
                    .collect(),
                void: r.void,
            });
        }
        (out, next)
    }

    /// Installs a peer's log entries (in its log order) that this replica lacks: each is
    /// verified (id, signature) and checked with the rules of its operation at the position it
    /// names (the maximal operations of its causal past, each known here or earlier in the log),
    /// then recorded — void as the peer says. Returns how many were new. A peer is trusted for
    /// the positions it names as much as for the snapshot or state it serves.
    pub(crate) fn install(&mut self, entries: Vec<GovEntry>) -> Result<usize, SyncError> {
        let mut added = 0;
        for e in entries {
            let id = e.envelope.id();
            if self.by_id.contains_key(&id) {
                continue;
            }
            if e.envelope.context != self.context {
                return Err(SyncError::Protocol("a governance entry of another context"));
            }
            if self.records.len() >= MAX_GOV_OPS {
                return Err(gov_error("install", "the context's governance log is full"));
            }
            e.envelope
                .verify_signature(&id)
                .map_err(|_| AccessError::BadSignature)?;
            let mut set = BTreeSet::new();
            for h in &e.past {
                let i = *self.by_id.get(h).ok_or(SyncError::Protocol(
                    "a governance entry cites an operation the log has not given",
                ))?;
                set.insert(i);
                if let Some(r) = self.records.get(i as usize) {
                    set.extend(r.past.iter().copied());
                }
            }
            let d = e.envelope.into_causal(id);
            let pos: Pos = Arc::from(set.into_iter().collect::<Vec<u32>>());
            // The peer's void flag is not taken on its word: voids follow from the removals
            // recorded here (their cut runs once they apply). Keys in the entry's boxes are
            // kept only if it passes (`admit`).
            let (pos, opened) = self.check_at(&d, pos, Hlc::default(), None, false)?;
            if !matches!(&opened, Opened::Apply(p) if p.gov.is_some())
                && !matches!(&opened, Opened::Void(_, Some(_)))
            {
                return Err(SyncError::Protocol(
                    "a governance entry without an operation",
                ));
            }
            self.installing = true;
            self.admit(&d, pos, &opened);
            self.installing = false;
            added += 1;
        }
        Ok(added)
    }

    // ---------------------------------------------------------------------------------------------
    // Receiving.

    /// Decides a delta whose parents are all applied: position, HLC, membership, the removal cut,
    /// the epoch, decryption, the governance operation's rules. On success the caller applies the
    /// payload (if not void) and then calls [`Governance::admit`].
    pub(crate) fn check(
        &mut self,
        d: &CausalDelta<Body>,
        forced: Option<VoidReason>,
        replay: bool,
    ) -> Result<(Pos, Opened), SyncError> {
        let (pos, parent_hlc) = self.position(&d.parents);
        self.check_at(d, pos, parent_hlc, forced, replay)
    }

    /// [`Governance::check`] at a given position.
    fn check_at(
        &mut self,
        d: &CausalDelta<Body>,
        pos: Pos,
        parent_hlc: Hlc,
        forced: Option<VoidReason>,
        replay: bool,
    ) -> Result<(Pos, Opened), SyncError> {
        let b = &d.payload;
        let author = b.author;
        let view = self.view(&pos);
        let member = view.members.get(&author).copied();
        // Replaying (a rebuild), the cut is exactly `forced`; live, a removed author's delta that
        // applies only now cannot be an ancestor of its (applied) removal — unless it is a
        // removal itself, which is judged by its causal past alone.
        let removed = match replay {
            true => forced == Some(VoidReason::AuthorRemoved),
            false => self.removals.contains_key(&author),
        };
        if member.is_none() && view.void_admitted.contains(&author) {
            return Ok((pos, Opened::Void(VoidReason::AdmissionVoid, None)));
        }
        if member.is_none() && b.ciphertext.len() > MAX_JOIN_CIPHERTEXT {
            // Only a join may come from a non-member, and a join is small: nothing larger is
            // decrypted for a stranger.
            return Err(AccessError::NotAMember { author }.into());
        }
        let current = self.epoch_of(&view);
        // Which key may have sealed it: the current epoch; a key operation's own new key (from
        // its key boxes); a joiner's key from its invitation (any epoch of the position).
        let key = if current.as_ref().is_some_and(|(id, _)| *id == b.epoch) {
            current.as_ref().and_then(|(_, k)| k.clone())
        } else if member.is_none() && !view.epochs.contains(&b.epoch) && !d.parents.is_empty() {
            return Err(AccessError::NotAMember { author }.into());
        } else {
            // A key operation's new key comes in its own key boxes: used to check it, kept
            // only once it passes (`admit`).
            self.keys
                .get(&b.epoch)
                .cloned()
                .or_else(|| self.boxed_key(&Envelope::from_causal(self.context, d), &b.epoch))
        };
        let Some(key) = key else {
            if removed {
                return Ok((pos, Opened::Void(VoidReason::AuthorRemoved, None)));
            }
            return Err(AccessError::KeyUnknown { epoch: b.epoch }.into());
        };
        let env = Envelope::from_causal(self.context, d);
        let opened = open(&key, &b.nonce, env.aad().as_bytes(), &b.ciphertext);
        let payload = match (opened, removed) {
            (Ok(plain), _) => DeltaPayload::decode(&plain),
            (Err(_), true) => return Ok((pos, Opened::Void(VoidReason::AuthorRemoved, None))),
            (Err(_), false) => return Err(AccessError::Decrypt.into()),
        };
        let payload = match (payload, removed) {
            (Ok(p), _) => p,
            (Err(_), true) => return Ok((pos, Opened::Void(VoidReason::AuthorRemoved, None))),
            (Err(e), false) => return Err(e.into()),
        };
        if removed && !matches!(payload.gov, Some(GovOp::Remove { .. })) {
            // Recorded void when it is a governance operation (every replica that recorded it
            // before the removal voids it too).
            return Ok((pos, Opened::Void(VoidReason::AuthorRemoved, payload.gov)));
        }
        let recipients_ok =
            |allowed: &dyn Fn(&MemberId) -> bool| b.keys.iter().all(|k| allowed(&k.to));
        let current_id = current.as_ref().map(|(id, _)| *id);
        match &payload.gov {
            None => {
                if member.is_none() {
                    return Err(AccessError::NotAMember { author }.into());
                }
                // Honest writers seal with the current epoch of their position; any epoch of the
                // position is accepted (a position known here only approximately may hold later
                // key operations than the writer's).
                if current_id != Some(b.epoch)
                    && !view.epochs.contains(&b.epoch)
                    && !view.void_epochs.contains(&b.epoch)
                {
                    return Err(wrong_epoch(current_id, b.epoch));
                }
                if !recipients_ok(&|m| view.members.contains_key(m)) {
                    return Err(gov_error("share", "a key box for a non-member"));
                }
            }
            Some(op) => {
                if self.records.len() >= MAX_GOV_OPS {
                    return Err(gov_error(op.name(), "the context's governance log is full"));
                }
                let admin = member == Some(Role::Admin);
                let need_admin = |ok: bool| {
                    if ok {
                        Ok(())
                    } else {
                        Err(SyncError::from(AccessError::NotAllowed {
                            author,
                            op: op.name(),
                        }))
                    }
                };
                let fresh_epoch = || {
                    if view.epochs.contains(&b.epoch) || current_id == Some(b.epoch) {
                        Err(gov_error(
                            op.name(),
                            "a key operation must introduce a new epoch",
                        ))
                    } else {
                        Ok(())
                    }
                };
                match op {
                    GovOp::Create {
                        salt,
                        app,
                        founders,
                    } => {
                        if !d.parents.is_empty() {
                            return Err(gov_error("create", "the genesis has no parents"));
                        }
                        if context_id(&author, salt, app) != self.context {
                            return Err(gov_error(
                                "create",
                                "the context id does not bind its creator",
                            ));
                        }
                        if !founders
                            .iter()
                            .any(|f| f.member == author && f.role == Role::Admin)
                        {
                            return Err(gov_error(
                                "create",
                                "the creator must be an admin founder",
                            ));
                        }
                        if !recipients_ok(&|m| founders.iter().any(|f| f.member == *m)) {
                            return Err(gov_error("create", "a key box for a non-founder"));
                        }
                    }
                    GovOp::Join {
                        invitation, proof, ..
                    } => {
                        if member.is_some() {
                            return Err(gov_error("join", "the author is a member already"));
                        }
                        if view.removed.contains(&author) {
                            return Err(gov_error("join", "a removed member key cannot rejoin"));
                        }
                        if invitation.context != self.context {
                            return Err(gov_error("join", "the invitation is for another context"));
                        }
                        invitation.verify().map_err(|_| {
                            gov_error("join", "the invitation's signature does not verify")
                        })?;
                        invitation
                            .check_proof(author.as_bytes(), proof)
                            .map_err(|_| {
                                gov_error("join", "the proof of the link secret does not verify")
                            })?;
                        if d.hlc.wall_ms > invitation.expires_ms {
                            return Err(AccessError::InvitationExpired {
                                expires_ms: invitation.expires_ms,
                                at_ms: d.hlc.wall_ms,
                            }
                            .into());
                        }
                        if view.members.get(&invitation.inviter) != Some(&Role::Admin) {
                            return Err(gov_error(
                                "join",
                                "the inviter is not an admin at the join's position",
                            ));
                        }
                        if !b.keys.is_empty() {
                            return Err(gov_error("join", "a join carries no key boxes"));
                        }
                        if view.members.len() >= crate::MAX_KEY_BOXES {
                            return Err(gov_error(
                                "join",
                                "the context has as many members as a key rotation can reach",
                            ));
                        }
                        if !d.parents.is_empty() && d.hlc <= parent_hlc {
                            return Err(gov_error("join", "stamped before its parents"));
                        }
                        if forced == Some(VoidReason::InviterRemoved)
                            || self.invitation_of_removed(invitation)
                        {
                            return Ok((
                                pos,
                                Opened::Void(VoidReason::InviterRemoved, Some(op.clone())),
                            ));
                        }
                    }
                    GovOp::Remove { member: target } => {
                        need_admin(admin || (member.is_some() && *target == author))?;
                        if !view.members.contains_key(target) {
                            return Err(gov_error("remove", "the removed key is not a member"));
                        }
                        fresh_epoch()?;
                        if !recipients_ok(&|m| m != target && view.members.contains_key(m)) {
                            return Err(gov_error(
                                "remove",
                                "a key box for the removed member or a non-member",
                            ));
                        }
                    }
                    GovOp::Rotate => {
                        need_admin(admin)?;
                        fresh_epoch()?;
                        if !recipients_ok(&|m| view.members.contains_key(m)) {
                            return Err(gov_error("rotate", "a key box for a non-member"));
                        }
                    }
                    GovOp::ChangeApp { .. } => {
                        need_admin(admin)?;
                        if current_id != Some(b.epoch) {
                            return Err(wrong_epoch(current_id, b.epoch));
                        }
                    }
                }
            }
        }
        Ok((pos, Opened::Apply(payload)))
    }

    /// Records a checked delta: its position, its governance operation, the keys its boxes name,
    /// what it is attributable to. Returns the index of a removal it recorded.
    pub(crate) fn admit(
        &mut self,
        d: &CausalDelta<Body>,
        pos: Pos,
        opened: &Opened,
    ) -> Option<u32> {
        let b = &d.payload;
        let mut removal = None;
        if matches!(opened, Opened::Apply(_)) {
            // Only a delta that passed keeps the keys it sealed to this member.
            self.learn_from(&Envelope::from_causal(self.context, d));
        }
        let upto = match opened {
            Opened::Apply(payload) => {
                // Who holds which key, as the boxes say: believed from key operations (their
                // rules checked the boxes) and from an admin's shares, not from any member's.
                let believed = !b.keys.is_empty()
                    && (payload.gov.as_ref().is_some_and(GovOp::introduces_key)
                        || self.view(&pos).members.get(&b.author) == Some(&Role::Admin));
                if believed {
                    self.version += 1;
                    for k in &b.keys {
                        for id in &k.ids {
                            self.holders.entry(*id).or_default().insert(k.to);
                        }
                    }
                }
                match &payload.gov {
                    Some(_) if self.by_id.contains_key(&d.id) => {
                        // Installed from a peer's log before its delta arrived here: the position
                        // computed here replaces the one the peer gave.
                        let i = self.by_id.get(&d.id).copied().unwrap_or_default();
                        if let Some(r) = self.records.get_mut(i as usize) {
                            r.past = pos.clone();
                        }
                        removal = self.mark_applied(i);
                        extend(&pos, i)
                    }
                    Some(op) => {
                        let record = self.new_record(d, op, &pos, false);
                        let i = self.push_record(record);
                        if matches!(op, GovOp::Remove { .. })
                            && self.removals.values().any(|&r| r == i)
                        {
                            removal = Some(i);
                        }
                        extend(&pos, i)
                    }
                    None => pos,
                }
            }
            Opened::Void(_, Some(_)) if self.by_id.contains_key(&d.id) => {
                self.voided.insert(d.id);
                let i = self.by_id.get(&d.id).copied().unwrap_or_default();
                self.mark_applied(i);
                extend(&pos, i)
            }
            Opened::Void(_, Some(op)) => {
                // A void join is recorded so its joiner's deltas are void rather than refused
                // (members that applied the join before the removal may have cited them).
                self.voided.insert(d.id);
                let record = self.new_record(d, op, &pos, true);
                let i = self.push_record(record);
                extend(&pos, i)
            }
            Opened::Void(_, None) => {
                self.voided.insert(d.id);
                pos
            }
        };
        self.upto.insert(d.id, (upto, d.hlc));
        removal
    }

    /// The record of operation `op` carried by `d` at `pos`.
    fn new_record(&self, d: &CausalDelta<Body>, op: &GovOp, pos: &Pos, void: bool) -> Record {
        Record {
            id: d.id,
            op: op.clone(),
            past: pos.clone(),
            void,
            env: Envelope::from_causal(self.context, d),
            applied: !self.installing,
        }
    }

    /// The change counter (see [`Replica::governance_version`](crate::Replica::governance_version)).
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Stores record `i` as it is now (in the pending batch); every change to a record goes
    /// through here.
    fn store_record(&mut self, i: u32) {
        self.version += 1;
        let Some(r) = self.records.get(i as usize) else {
            return;
        };
        let bytes = encode_record(r);
        self.batch
            .put(key(&[&self.prefix, &[RECORD_TAG], &i.to_be_bytes()]), bytes);
    }

    /// Notes that recorded operation `i`'s delta is applied here; returns it if it is a removal
    /// that takes effect now.
    fn mark_applied(&mut self, i: u32) -> Option<u32> {
        let r = self.records.get_mut(i as usize)?;
        if r.applied {
            return None;
        }
        r.applied = true;
        let removal = match (&r.op, r.void) {
            (GovOp::Remove { member }, false) => Some(*member),
            _ => None,
        };
        self.store_record(i);
        let member = removal?;
        if self.removals.contains_key(&member) {
            return None;
        }
        self.removals.insert(member, i);
        Some(i)
    }

    /// The installed operations whose deltas are not applied here yet (to pull them).
    pub(crate) fn unapplied(&self) -> Vec<DeltaId> {
        self.records
            .iter()
            .filter(|r| !r.applied)
            .map(|r| r.id)
            .collect()
    }

    /// Marks the installed operations whose deltas `applied` says are applied (a snapshot
    /// covered them); returns the removals that take effect now.
    pub(crate) fn mark_covered(&mut self, applied: impl Fn(&DeltaId) -> bool) -> Vec<DeltaId> {
        let pending: Vec<u32> = (0..self.records.len() as u32)
            .filter(|&i| {
                self.records
                    .get(i as usize)
                    .is_some_and(|r| !r.applied && applied(&r.id))
            })
            .collect();
        let mut activated = Vec::new();
        for i in pending {
            if let Some(r) = self.mark_applied(i) {
                activated.extend(self.records.get(r as usize).map(|r| r.id));
            }
        }
        activated
    }

    fn push_record(&mut self, r: Record) -> u32 {
        let i = self.records.len() as u32;
        self.index_record(r);
        self.store_record(i);
        i
    }

    /// Records, while a delta is replayed from storage, its position (no checks: it was checked
    /// when it first applied).
    pub(crate) fn replay_position(&mut self, d: &CausalDelta<Body>) {
        let (pos, _) = self.position(&d.parents);
        let upto = match self.by_id.get(&d.id) {
            Some(&i) => extend(&pos, i),
            None => pos,
        };
        self.upto.insert(d.id, (upto, d.hlc));
    }

    /// Marks the recorded operations the removal cut voids (a void operation counts for nothing;
    /// a void join's joiner is void-admitted), re-storing them, and notes every cut delta void.
    pub(crate) fn void_records(&mut self, cut: &BTreeMap<DeltaId, VoidReason>) {
        for (id, _) in cut.iter() {
            self.voided.insert(*id);
            let Some(&i) = self.by_id.get(id) else {
                continue;
            };
            let Some(r) = self.records.get_mut(i as usize) else {
                continue;
            };
            if !r.void {
                r.void = true;
                self.store_record(i);
            }
        }
    }

    /// Whether a delta is a recorded governance operation.
    pub(crate) fn is_record(&self, id: &DeltaId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Keeps the positions of the deltas `keep` accepts (after the DAG pruned the others).
    pub(crate) fn retain_positions(&mut self, keep: impl Fn(&DeltaId) -> bool) {
        self.upto.retain(|id, _| keep(id));
    }

    /// Takes the records and keys to persist.
    pub(crate) fn take_batch(&mut self) -> WriteBatch {
        std::mem::take(&mut self.batch)
    }

    /// The governance log: (delta, author, operation, void), in the order applied here.
    pub(crate) fn log(&self) -> impl Iterator<Item = (DeltaId, MemberId, &GovOp, bool)> + '_ {
        self.records
            .iter()
            .map(|r| (r.id, r.env.author, &r.op, r.void))
    }

    /// Whether governance operation `op` is in the causal past of governance operation `of`
    /// (exact: positions are kept for every operation; `None` if either is unknown here).
    pub(crate) fn precedes(&self, op: &DeltaId, of: &DeltaId) -> Option<bool> {
        let i = *self.by_id.get(op)?;
        let r = self.records.get(*self.by_id.get(of)? as usize)?;
        Some(r.past.binary_search(&i).is_ok())
    }

    /// The delta of a recorded governance operation.
    pub(crate) fn record_envelope(&self, id: &DeltaId) -> Option<&Envelope> {
        self.records
            .get(*self.by_id.get(id)? as usize)
            .map(|r| &r.env)
    }

    /// Whether `member` is a member at the operations recorded here (a current member).
    pub(crate) fn is_current_member(&self, member: &MemberId) -> bool {
        let all: Vec<u32> = (0..self.records.len() as u32).collect();
        self.view(&all).members.contains_key(member)
    }

    /// Forgets void marks of deltas `keep` rejects (no longer in the DAG).
    pub(crate) fn retain_void(&mut self, keep: impl Fn(&DeltaId) -> bool) {
        self.voided.retain(|id| keep(id));
    }

    /// Whether `member` has a valid removal here.
    pub(crate) fn is_removed(&self, member: &MemberId) -> bool {
        self.removals.contains_key(member)
    }

    /// Whether a delta was voided.
    pub(crate) fn is_void(&self, id: &DeltaId) -> bool {
        self.voided.contains(id)
    }

    /// Marks deltas void (after a restart, from the removal cut; a removed author's delta not
    /// stored). Past `MAX_VOIDED` marks, uncited ones are not remembered (they stay refused:
    /// their author is removed) until a compaction forgets marks of deltas no longer held.
    pub(crate) fn mark_void(&mut self, ids: impl IntoIterator<Item = DeltaId>) {
        for id in ids {
            if self.voided.len() >= MAX_VOIDED {
                break;
            }
            self.voided.insert(id);
        }
    }

    /// The member a recorded removal removes.
    pub(crate) fn removal_target(&self, id: &DeltaId) -> Option<MemberId> {
        let r = self.records.get(*self.by_id.get(id)? as usize)?;
        match r.op {
            GovOp::Remove { member } => Some(member),
            _ => None,
        }
    }

    /// Checks that this member may write a data delta on `heads` and holds the current key.
    pub(crate) fn check_writable(&mut self, heads: &[DeltaId]) -> Result<(), SyncError> {
        let me = self.member_id();
        if heads.is_empty() {
            // Nothing applied yet (a snapshot in progress): a write would have no parents.
            return Err(AccessError::NotAMember { author: me }.into());
        }
        let view = self.view_at(heads);
        if !view.members.contains_key(&me) {
            return Err(AccessError::NotAMember { author: me }.into());
        }
        match self.epoch_of(&view) {
            Some((_, Some(_))) => Ok(()),
            Some((epoch, None)) => Err(AccessError::KeyUnknown { epoch }.into()),
            None => Err(gov_error("write", "the context has no genesis here")),
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Writing.

    /// Seals a local delta by this member on `parents`: checks that it may write it, picks (or,
    /// for a key operation, creates) the epoch key, builds the key boxes, encrypts and signs.
    pub(crate) fn seal(
        &mut self,
        parents: Vec<DeltaId>,
        hlc: Hlc,
        payload: &DeltaPayload,
        share: &[(MemberId, Vec<Hash>)],
    ) -> Result<Envelope, SyncError> {
        let author = self.member_id();
        let (pos, _) = self.position(&parents);
        let view = self.view(&pos);
        let member = view.members.get(&author).copied();
        let mut boxes = Vec::new();
        let (epoch, key) = match &payload.gov {
            Some(op) if op.introduces_key() => {
                let recipients: Vec<MemberId> = match op {
                    GovOp::Create { founders, .. } => founders.iter().map(|f| f.member).collect(),
                    GovOp::Remove { member: target } => view
                        .members
                        .keys()
                        .filter(|m| *m != target)
                        .copied()
                        .collect(),
                    _ => view.members.keys().copied().collect(),
                };
                let key = SymKey::generate(&mut self.entropy);
                for to in recipients {
                    boxes.push(
                        KeyBox::seal(
                            &self.context,
                            to,
                            std::slice::from_ref(&key),
                            &mut self.entropy,
                        )
                        .map_err(|_| AccessError::Seal("a member key is not a valid point"))?,
                    );
                }
                self.learn(std::slice::from_ref(&key));
                (key.id(), key)
            }
            Some(GovOp::Join { .. }) => {
                let current = self.epoch_of(&view);
                match current {
                    Some((id, Some(k))) => (id, k),
                    _ => {
                        // The joiner's invitation may predate the current epoch: any epoch of
                        // the position it holds will do.
                        let held = view
                            .epochs
                            .iter()
                            .rev()
                            .find_map(|id| self.keys.get(id).map(|k| (*id, k.clone())));
                        match held {
                            Some(pair) => pair,
                            None => return Err(AccessError::NotAMember { author }.into()),
                        }
                    }
                }
            }
            _ => {
                if member.is_none() {
                    return Err(AccessError::NotAMember { author }.into());
                }
                match self.epoch_of(&view) {
                    Some((id, Some(k))) => (id, k),
                    Some((id, None)) => return Err(AccessError::KeyUnknown { epoch: id }.into()),
                    None => return Err(gov_error("write", "the context has no genesis here")),
                }
            }
        };
        for (to, ids) in share {
            let keys: Vec<SymKey> = ids
                .iter()
                .filter_map(|i| self.keys.get(i).cloned())
                .collect();
            if keys.is_empty() {
                continue;
            }
            boxes.push(
                KeyBox::seal(&self.context, *to, &keys, &mut self.entropy)
                    .map_err(|_| AccessError::Seal("a member key is not a valid point"))?,
            );
        }
        let plain = payload.encode()?;
        let nonce: [u8; NONCE_LEN] = self.entropy.array();
        let mut env = Envelope {
            context: self.context,
            author,
            parents,
            hlc,
            epoch,
            keys: boxes,
            nonce,
            ciphertext: Vec::new(),
            signature: tabmesh_auth::Signature([0; 64]),
        };
        env.ciphertext = seal(&key, &nonce, env.aad().as_bytes(), &plain);
        let id = env.id();
        env.signature = self
            .me
            .sign(crate::envelope::DELTA_SIGNATURE_DOMAIN, id.as_bytes());
        Ok(env)
    }
}

fn gov_error(op: &'static str, reason: &'static str) -> SyncError {
    AccessError::Governance { op, reason }.into()
}

fn wrong_epoch(expected: Option<Hash>, found: Hash) -> SyncError {
    match expected {
        Some(expected) => AccessError::WrongEpoch { expected, found }.into(),
        None => AccessError::KeyUnknown { epoch: found }.into(),
    }
}

fn extend(pos: &Pos, i: u32) -> Pos {
    let mut v = pos.to_vec();
    if let Err(at) = v.binary_search(&i) {
        v.insert(at, i);
    }
    Arc::from(v)
}

/// A stored record: `VERSION ‖ envelope ‖ operation ‖ position (u32 count, u32 each) ‖ void ‖
/// applied`.
/// (The operation is stored in the clear: records live with the node's keys.)
fn encode_record(r: &Record) -> Vec<u8> {
    let mut w = Writer::new();
    r.env.encode(&mut w);
    r.op.encode(&mut w);
    write_position(&mut w, &r.past);
    w.bool(r.void).bool(r.applied);
    w.finish()
}

pub(crate) fn write_position(w: &mut Writer, past: &[u32]) {
    w.len(past.len());
    for i in past {
        w.u32(*i);
    }
}

pub(crate) fn read_position(r: &mut Reader<'_>) -> Result<Pos, CodecError> {
    let n = r.count("governance position", MAX_GOV_OPS, 4)?;
    let mut past = Vec::with_capacity(n);
    for _ in 0..n {
        past.push(r.u32()?);
    }
    if past.windows(2).any(|w| w[0] >= w[1]) {
        return Err(CodecError::Invalid("governance position not sorted"));
    }
    Ok(Arc::from(past))
}

fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    let mut r = Reader::new(bytes)?;
    let env = Envelope::decode(&mut r)?;
    let op = GovOp::decode(&mut r)?;
    let past = read_position(&mut r)?;
    let void = r.bool()?;
    let applied = r.bool()?;
    r.finish()?;
    Ok(Record {
        id: env.id(),
        op,
        past,
        void,
        env,
        applied,
    })
}
