//! The DAG itself: applied deltas, heads, the pending buffer, the cascade, pruning and checkpoints.
//!
//! # Invariants
//!
//! - A delta is applied only after all its parents are applied (or pruned); applying assigns the
//!   next apply sequence number, so apply order is a topological order.
//! - Heads are the applied deltas no applied delta names as a parent. Every retained applied delta
//!   reaches a head through recorded parent links: pruning keeps heads and drops only deltas older
//!   (by apply sequence) than a threshold, so links between retained deltas never cross a pruned one.
//! - A pending delta has at least one unsatisfied parent, and for each such parent the reverse edge
//!   `(parent, child)` is in `waiting`. `missing` is exactly the parents with waiting children that
//!   are neither applied, pruned nor pending.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tabmesh_base::{DeltaId, Hash};

use crate::{
    AddOutcome, ApplyFailure, Cascade, CausalDelta, DagConfig, DagError, DagStats, DeltaKind,
    DeltaStatus, Payload, MAX_CHECKPOINT_HEADS,
};

mod persist;
mod since;

pub use since::{SinceCursor, SincePage};

const ID_MIN: DeltaId = DeltaId([0; 32]);
const ID_MAX: DeltaId = DeltaId([0xff; 32]);

/// A causal DAG of deltas with payload `P`.
///
/// Feed it deltas with [`Dag::add`]; it applies each one (through the caller's applier) once all its
/// parents are applied, buffers it until then, and cascades through every buffered delta an arrival
/// unblocks. Every mutation is recorded; [`Dag::take_changes`] returns them as one write batch.
#[derive(Clone, Debug)]
pub struct Dag<P> {
    pub(crate) config: DagConfig,
    /// Applied, retained deltas.
    pub(crate) applied: BTreeMap<DeltaId, AppliedEntry<P>>,
    /// Apply sequence → id, for every entry of `applied`.
    pub(crate) by_seq: BTreeMap<u64, DeltaId>,
    pub(crate) next_seq: u64,
    pub(crate) heads: BTreeSet<DeltaId>,
    /// Deltas waiting for parents.
    pub(crate) pending: BTreeMap<DeltaId, PendingEntry<P>>,
    /// [`Payload::weight`] of the pending deltas together (bounded by
    /// [`DagConfig::max_pending_bytes`]).
    pub(crate) pending_bytes: usize,
    /// Arrival number → id, for every pending delta (oldest-first eviction).
    pub(crate) by_arrival: BTreeMap<u64, DeltaId>,
    /// `(received_ms, arrival)` for every pending delta (stale cleanup, oldest age).
    pub(crate) by_received: BTreeSet<(u64, u64)>,
    pub(crate) next_arrival: u64,
    /// Reverse edges `(unsatisfied parent, pending child)`.
    pub(crate) waiting: BTreeSet<(DeltaId, DeltaId)>,
    /// Parents with waiting children that are neither applied, pruned nor pending.
    pub(crate) missing: BTreeSet<DeltaId>,
    /// Pruned id → its FIFO number.
    pub(crate) pruned: BTreeMap<DeltaId, u64>,
    /// FIFO number → pruned id.
    pub(crate) pruned_order: BTreeMap<u64, DeltaId>,
    pub(crate) next_pruned: u64,
    /// What changed since the last [`Dag::take_changes`].
    pub(crate) changes: persist::Changes,
}

/// An applied, retained delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AppliedEntry<P> {
    /// Its apply sequence number.
    pub(crate) seq: u64,
    /// It was the only head right after it was applied, so every delta applied before it is one of
    /// its ancestors (lets [`Dag::deltas_since`] stop early).
    pub(crate) sole_head: bool,
    pub(crate) body: Body<P>,
}

/// What an applied entry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body<P> {
    /// A delta with its payload.
    Delta(CausalDelta<P>),
    /// A snapshot boundary: applied without a body, no known parents.
    Checkpoint { root: Hash },
}

impl<P> Body<P> {
    pub(crate) fn parents(&self) -> &[DeltaId] {
        match self {
            Body::Delta(d) => &d.parents,
            Body::Checkpoint { .. } => &[],
        }
    }
}

/// A delta waiting for parents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingEntry<P> {
    pub(crate) delta: CausalDelta<P>,
    /// The caller's `now_ms` when it arrived.
    pub(crate) received_ms: u64,
    /// Its arrival number (orders eviction).
    pub(crate) arrival: u64,
}

/// Equality of content: two DAGs are equal when they hold the same deltas in the same states with
/// the same sequence numbers and counters (and the same configuration), whatever their unsaved
/// changes.
impl<P: PartialEq> PartialEq for Dag<P> {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
            && self.applied == other.applied
            && self.by_seq == other.by_seq
            && self.next_seq == other.next_seq
            && self.heads == other.heads
            && self.pending == other.pending
            && self.by_arrival == other.by_arrival
            && self.by_received == other.by_received
            && self.next_arrival == other.next_arrival
            && self.waiting == other.waiting
            && self.missing == other.missing
            && self.pruned == other.pruned
            && self.pruned_order == other.pruned_order
            && self.next_pruned == other.next_pruned
    }
}

impl<P: Eq> Eq for Dag<P> {}

impl<P: Payload> Default for Dag<P> {
    fn default() -> Self {
        Dag::new(DagConfig::default())
    }
}

impl<P: Payload> Dag<P> {
    /// An empty DAG (no heads: its first delta is a genesis delta or a checkpoint).
    pub fn new(config: DagConfig) -> Dag<P> {
        Dag {
            config: config.normalized(),
            applied: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            next_seq: 0,
            heads: BTreeSet::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            by_arrival: BTreeMap::new(),
            by_received: BTreeSet::new(),
            next_arrival: 0,
            waiting: BTreeSet::new(),
            missing: BTreeSet::new(),
            pruned: BTreeMap::new(),
            pruned_order: BTreeMap::new(),
            next_pruned: 0,
            changes: persist::Changes::default(),
        }
    }

    /// The configuration (with minimums applied).
    pub fn config(&self) -> &DagConfig {
        &self.config
    }

    /// Adds a delta received at `now_ms`.
    ///
    /// Structurally bad deltas are refused with a [`DagError`] and change nothing. A known id
    /// (applied, pending or pruned) is a [`AddOutcome::Duplicate`]. If every parent is applied (or
    /// pruned), `apply` is called on the delta and then on every pending delta this unblocks,
    /// iteratively, each after its parents ([`AddOutcome::Applied`]); otherwise the delta waits
    /// ([`AddOutcome::Pending`]), evicting the oldest pending delta when the buffer is full.
    ///
    /// When `apply` fails for a delta, that delta is not applied and is dropped; the failure is
    /// reported (as [`AddOutcome::Failed`] for the delta itself, in [`Cascade::failed`] for one it
    /// unblocked) and the deltas waiting for it stay pending.
    pub fn add<E>(
        &mut self,
        delta: CausalDelta<P>,
        now_ms: u64,
        mut apply: impl FnMut(&CausalDelta<P>) -> Result<(), E>,
    ) -> Result<AddOutcome<E>, DagError> {
        delta.validate()?;
        if let DeltaKind::Checkpoint { .. } = delta.kind {
            return Err(DagError::CheckpointNotAddable { id: delta.id });
        }
        if self.status(&delta.id) != DeltaStatus::Unknown {
            return Ok(AddOutcome::Duplicate);
        }
        let unsatisfied: Vec<DeltaId> = delta
            .parents
            .iter()
            .filter(|p| !self.is_satisfied(p))
            .copied()
            .collect();
        if unsatisfied.is_empty() {
            let mut cascade = Cascade::default();
            let mut queue = VecDeque::new();
            self.try_apply(delta, &mut apply, &mut cascade, &mut queue);
            if cascade.applied.is_empty() {
                if let Some(ApplyFailure { error, .. }) = cascade.failed.pop() {
                    return Ok(AddOutcome::Failed { error });
                }
            }
            self.run_cascade(queue, &mut apply, &mut cascade);
            return Ok(AddOutcome::Applied(cascade));
        }
        let parents = delta.parents.clone();
        let evicted = self.insert_pending(delta, &unsatisfied, now_ms);
        let missing = parents
            .into_iter()
            .filter(|p| !self.is_satisfied(p) && !self.pending.contains_key(p))
            .collect();
        Ok(AddOutcome::Pending { missing, evicted })
    }

    /// Installs a snapshot boundary: the state was replaced by a snapshot whose Merkle root is
    /// `root` and whose DAG heads are `heads`.
    ///
    /// Each head not already applied or pruned becomes an applied delta without a body (kind
    /// [`DeltaKind::Checkpoint`], no known parents) and a head; a pending delta with that id is
    /// dropped (the snapshot contains it). Existing heads stay heads (snapshots are meant for empty
    /// replicas; on a non-empty one the next local delta merges them). Then every pending delta the
    /// boundary unblocks is applied with `apply`, as in [`Dag::add`]; the returned cascade lists
    /// those (not the boundary ids).
    pub fn restore_checkpoint<E>(
        &mut self,
        heads: &[DeltaId],
        root: Hash,
        mut apply: impl FnMut(&CausalDelta<P>) -> Result<(), E>,
    ) -> Result<Cascade<E>, DagError> {
        if heads.is_empty() {
            return Err(DagError::EmptyCheckpoint);
        }
        if heads.len() > MAX_CHECKPOINT_HEADS {
            return Err(DagError::TooManyCheckpointHeads {
                count: heads.len(),
                max: MAX_CHECKPOINT_HEADS,
            });
        }
        let mut ids = heads.to_vec();
        ids.sort_unstable();
        for pair in ids.windows(2) {
            if let [a, b] = pair {
                if a == b {
                    return Err(DagError::DuplicateCheckpointHead { id: *a });
                }
            }
        }
        let mut queue = VecDeque::new();
        for id in ids {
            if self.is_satisfied(&id) {
                continue;
            }
            // The snapshot contains it: its body is not needed any more.
            let _ = self.remove_pending(id);
            self.install(id, Body::Checkpoint { root });
            queue.push_back(id);
        }
        let mut cascade = Cascade::default();
        self.run_cascade(queue, &mut apply, &mut cascade);
        Ok(cascade)
    }

    /// Records ids whose effects the state already holds without their bodies (the delta ids a
    /// verified snapshot or Merkle repair covered): each one not yet applied or pruned is remembered
    /// as pruned (a satisfied parent, never a head), a pending delta with that id is dropped, and
    /// every pending delta this unblocks is applied with `apply`, as in [`Dag::add`].
    ///
    /// Only call it once the state provably contains those deltas (roots compared equal):
    /// otherwise their writes would be lost. At most [`DagConfig::max_query_limit`] ids per call.
    pub fn mark_satisfied<E>(
        &mut self,
        ids: &[DeltaId],
        mut apply: impl FnMut(&CausalDelta<P>) -> Result<(), E>,
    ) -> Result<Cascade<E>, DagError> {
        if ids.len() > self.config.max_query_limit {
            return Err(DagError::TooManyIds {
                count: ids.len(),
                max: self.config.max_query_limit,
            });
        }
        let mut queue = VecDeque::new();
        let mut forgotten = Vec::new();
        for id in ids {
            if self.is_satisfied(id) {
                continue;
            }
            let _ = self.remove_pending(*id);
            forgotten.extend(self.remember_pruned(*id));
            self.refresh_missing(*id);
            queue.push_back(*id);
        }
        self.rewire_forgotten(&forgotten);
        let mut cascade = Cascade::default();
        self.run_cascade(queue, &mut apply, &mut cascade);
        Ok(cascade)
    }

    /// Drops pending deltas received more than [`DagConfig::max_pending_age_ms`] before `now_ms`
    /// (a `now_ms` earlier than a receive time counts as age 0). Returns their ids, received longest
    /// ago first; the caller re-pulls them later. Deltas waiting for them stay pending.
    pub fn evict_stale(&mut self, now_ms: u64) -> Vec<DeltaId> {
        let max_age = self.config.max_pending_age_ms;
        let stale: Vec<DeltaId> = self
            .by_received
            .iter()
            .take_while(|(received, _)| now_ms.saturating_sub(*received) > max_age)
            .filter_map(|(_, arrival)| self.by_arrival.get(arrival).copied())
            .collect();
        for id in &stale {
            let _ = self.remove_pending(*id);
        }
        stale
    }

    /// Whether pending deltas wait for `id` and it is neither applied, pruned nor pending.
    pub fn is_missing(&self, id: &DeltaId) -> bool {
        self.missing.contains(id)
    }

    /// Drops the pending deltas `drop` selects; it is told whether other pending deltas wait for
    /// each (those stay pending, and ask for it again). Returns their ids.
    pub fn discard_pending(
        &mut self,
        drop: impl Fn(&CausalDelta<P>, bool) -> bool,
    ) -> Vec<DeltaId> {
        let ids: Vec<DeltaId> = self
            .pending
            .iter()
            .filter(|(id, p)| {
                let waited_for = self
                    .waiting
                    .range((**id, ID_MIN)..=(**id, ID_MAX))
                    .next()
                    .is_some();
                drop(&p.delta, waited_for)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            let _ = self.remove_pending(*id);
        }
        ids
    }

    /// Prunes old history: drops every applied delta except the `retain_recent` most recently
    /// applied and the heads. Pruned ids are remembered (up to [`DagConfig::max_pruned`], oldest
    /// forgotten first) and count as applied parents; their bodies are gone, so
    /// [`Dag::deltas_since`] can no longer serve them. Returns how many deltas were pruned.
    pub fn prune(&mut self, retain_recent: usize) -> usize {
        let threshold = match retain_recent.checked_sub(1) {
            None => u64::MAX,
            Some(skip) => match self.by_seq.keys().rev().nth(skip) {
                Some(seq) => *seq,
                None => return 0,
            },
        };
        let victims: Vec<(u64, DeltaId)> = self
            .by_seq
            .range(..threshold)
            .filter(|(_, id)| !self.heads.contains(*id))
            .map(|(seq, id)| (*seq, *id))
            .collect();
        let mut forgotten = Vec::new();
        for (seq, id) in &victims {
            self.by_seq.remove(seq);
            self.applied.remove(id);
            self.changes.applied.removed(*id);
            forgotten.extend(self.remember_pruned(*id));
        }
        self.rewire_forgotten(&forgotten);
        victims.len()
    }

    /// The current heads, in id order: the parents of the next local delta.
    pub fn heads(&self) -> Vec<DeltaId> {
        self.heads.iter().copied().collect()
    }

    /// Whether `id` is a current head.
    pub fn is_head(&self, id: &DeltaId) -> bool {
        self.heads.contains(id)
    }

    /// Where `id` stands.
    pub fn status(&self, id: &DeltaId) -> DeltaStatus {
        if self.applied.contains_key(id) {
            DeltaStatus::Applied
        } else if self.pending.contains_key(id) {
            DeltaStatus::Pending
        } else if self.pruned.contains_key(id) {
            DeltaStatus::Pruned
        } else {
            DeltaStatus::Unknown
        }
    }

    /// Whether `id` is applied (retained or pruned): a parent that counts as satisfied.
    pub fn is_applied(&self, id: &DeltaId) -> bool {
        self.is_satisfied(id)
    }

    /// The delta with this id, applied (with its body) or pending.
    pub fn get(&self, id: &DeltaId) -> Option<&CausalDelta<P>> {
        match self.applied.get(id) {
            Some(AppliedEntry {
                body: Body::Delta(d),
                ..
            }) => Some(d),
            Some(AppliedEntry {
                body: Body::Checkpoint { .. },
                ..
            }) => None,
            None => self.pending.get(id).map(|p| &p.delta),
        }
    }

    /// The retained deltas (with their bodies), in apply order: every delta after its retained
    /// parents. What a replica replays to rebuild its state from its history.
    pub fn applied_in_order(&self) -> impl Iterator<Item = &CausalDelta<P>> + '_ {
        self.by_seq
            .values()
            .filter_map(|id| match self.applied.get(id) {
                Some(AppliedEntry {
                    body: Body::Delta(d),
                    ..
                }) => Some(d),
                _ => None,
            })
    }

    /// The snapshot root of a checkpoint boundary installed by [`Dag::restore_checkpoint`].
    pub fn checkpoint_root(&self, id: &DeltaId) -> Option<Hash> {
        match self.applied.get(id) {
            Some(AppliedEntry {
                body: Body::Checkpoint { root },
                ..
            }) => Some(*root),
            _ => None,
        }
    }

    /// The most recently applied retained deltas (and checkpoints), newest first, at most `limit`
    /// (itself at most [`DagConfig::max_query_limit`]): with the heads, what a delta-sync request
    /// names as known, so a peer that does not know our newest heads still finds common history.
    pub fn recent_ids(&self, limit: usize) -> Vec<DeltaId> {
        let limit = limit.min(self.config.max_query_limit);
        self.by_seq.values().rev().take(limit).copied().collect()
    }

    /// Every id that counts as a satisfied parent (applied with or without a body, or remembered
    /// as pruned), in id order: what a snapshot hands a joiner so that deltas citing history the
    /// snapshot already covers apply at once ([`Dag::mark_satisfied`]).
    pub fn satisfied_ids(&self) -> impl Iterator<Item = DeltaId> + '_ {
        let mut applied = self.applied.keys().copied().peekable();
        let mut pruned = self.pruned.keys().copied().peekable();
        std::iter::from_fn(move || match (applied.peek(), pruned.peek()) {
            (Some(a), Some(p)) if a <= p => applied.next(),
            (Some(_), Some(_)) => pruned.next(),
            (Some(_), None) => applied.next(),
            (None, _) => pruned.next(),
        })
    }

    /// The backfill list: ids that pending deltas wait for and that are neither applied, pruned nor
    /// pending, in id order, at most `limit` (itself at most [`DagConfig::max_query_limit`]).
    pub fn missing_parents(&self, limit: usize) -> Vec<DeltaId> {
        let limit = limit.min(self.config.max_query_limit);
        self.missing.iter().take(limit).copied().collect()
    }

    /// Ids of pending deltas, oldest arrival first, at most `limit` (itself at most
    /// [`DagConfig::max_query_limit`]).
    pub fn pending_ids(&self, limit: usize) -> Vec<DeltaId> {
        let limit = limit.min(self.config.max_query_limit);
        self.by_arrival.values().take(limit).copied().collect()
    }

    /// Counts; `now_ms` dates the oldest pending delta.
    pub fn stats(&self, now_ms: u64) -> DagStats {
        DagStats {
            total: self.applied.len().saturating_add(self.pending.len()),
            applied: self.applied.len(),
            pending: self.pending.len(),
            pending_bytes: self.pending_bytes,
            heads: self.heads.len(),
            pruned: self.pruned.len(),
            missing: self.missing.len(),
            oldest_pending_age_ms: self
                .by_received
                .first()
                .map(|(received, _)| now_ms.saturating_sub(*received)),
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Internals.

    /// Applied (retained) or pruned.
    fn is_satisfied(&self, id: &DeltaId) -> bool {
        self.applied.contains_key(id) || self.pruned.contains_key(id)
    }

    /// Calls the applier on a ready delta; installs it (and queues it for the cascade) on success,
    /// records the failure otherwise.
    fn try_apply<E>(
        &mut self,
        delta: CausalDelta<P>,
        apply: &mut impl FnMut(&CausalDelta<P>) -> Result<(), E>,
        cascade: &mut Cascade<E>,
        queue: &mut VecDeque<DeltaId>,
    ) {
        let id = delta.id;
        match apply(&delta) {
            Ok(()) => {
                self.install(id, Body::Delta(delta));
                cascade.applied.push(id);
                queue.push_back(id);
            }
            Err(error) => {
                cascade.failed.push(ApplyFailure { id, error });
                self.refresh_missing(id);
            }
        }
    }

    /// Records `id` as applied: next sequence number, parents leave the heads, it becomes one.
    fn install(&mut self, id: DeltaId, body: Body<P>) {
        for parent in body.parents() {
            self.heads.remove(parent);
        }
        self.heads.insert(id);
        let sole_head = self.heads.len() == 1;
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        self.by_seq.insert(seq, id);
        self.applied.insert(
            id,
            AppliedEntry {
                seq,
                sole_head,
                body,
            },
        );
        self.changes.applied.inserted(id);
        self.changes.meta = true;
        self.missing.remove(&id);
    }

    /// The iterative cascade: `queue` holds newly applied ids; each one's waiting children are
    /// checked and applied when ready, and queued in turn. Visits only children of applied ids.
    fn run_cascade<E>(
        &mut self,
        mut queue: VecDeque<DeltaId>,
        apply: &mut impl FnMut(&CausalDelta<P>) -> Result<(), E>,
        cascade: &mut Cascade<E>,
    ) {
        while let Some(parent) = queue.pop_front() {
            for child in self.take_waiting(parent) {
                if !self.ready_or_rewire(child) {
                    continue;
                }
                if let Some(entry) = self.remove_pending(child) {
                    self.try_apply(entry.delta, apply, cascade, &mut queue);
                }
            }
        }
    }

    /// Removes and returns the children waiting for `parent`, in id order.
    fn take_waiting(&mut self, parent: DeltaId) -> Vec<DeltaId> {
        let children: Vec<DeltaId> = self
            .waiting
            .range((parent, ID_MIN)..=(parent, ID_MAX))
            .map(|(_, c)| *c)
            .collect();
        for child in &children {
            self.waiting.remove(&(parent, *child));
        }
        children
    }

    /// Whether pending `child` has every parent satisfied. For each parent it still lacks, makes
    /// sure the reverse edge exists (a pruned parent forgotten from the FIFO since the child
    /// arrived becomes a missing one instead of a silent block).
    fn ready_or_rewire(&mut self, child: DeltaId) -> bool {
        let Some(entry) = self.pending.get(&child) else {
            return false;
        };
        let unsatisfied: Vec<DeltaId> = entry
            .delta
            .parents
            .iter()
            .filter(|p| !self.is_satisfied(p))
            .copied()
            .collect();
        for parent in &unsatisfied {
            if self.waiting.insert((*parent, child)) {
                self.refresh_missing(*parent);
            }
        }
        unsatisfied.is_empty()
    }

    /// Buffers a delta whose `unsatisfied` parents are not applied; evicts the oldest arrivals while
    /// over the cap and returns them.
    fn insert_pending(
        &mut self,
        delta: CausalDelta<P>,
        unsatisfied: &[DeltaId],
        now_ms: u64,
    ) -> Vec<DeltaId> {
        let id = delta.id;
        let arrival = self.next_arrival;
        self.next_arrival = arrival.saturating_add(1);
        self.by_arrival.insert(arrival, id);
        self.by_received.insert((now_ms, arrival));
        self.pending_bytes += delta.payload.weight();
        self.pending.insert(
            id,
            PendingEntry {
                delta,
                received_ms: now_ms,
                arrival,
            },
        );
        for parent in unsatisfied {
            self.waiting.insert((*parent, id));
            self.refresh_missing(*parent);
        }
        self.refresh_missing(id);
        self.changes.pending.inserted(id);
        self.changes.meta = true;

        let mut evicted = Vec::new();
        while self.pending.len() > self.config.max_pending
            || self.pending_bytes > self.config.max_pending_bytes
        {
            let Some((_, oldest)) = self.by_arrival.first_key_value() else {
                break;
            };
            let oldest = *oldest;
            let _ = self.remove_pending(oldest);
            evicted.push(oldest);
        }
        evicted
    }

    /// Takes a delta out of the pending buffer with its indexes and reverse edges; it becomes
    /// missing if others wait for it (until the caller installs it).
    fn remove_pending(&mut self, id: DeltaId) -> Option<PendingEntry<P>> {
        let entry = self.pending.remove(&id)?;
        self.pending_bytes -= entry.delta.payload.weight();
        self.by_arrival.remove(&entry.arrival);
        self.by_received.remove(&(entry.received_ms, entry.arrival));
        for parent in &entry.delta.parents {
            if self.waiting.remove(&(*parent, id)) {
                self.refresh_missing(*parent);
            }
        }
        self.refresh_missing(id);
        self.changes.pending.removed(id);
        Some(entry)
    }

    /// Puts `id` in `missing` exactly when deltas wait for it and it is not applied, pruned or
    /// pending.
    fn refresh_missing(&mut self, id: DeltaId) {
        let waited_for = self
            .waiting
            .range((id, ID_MIN)..=(id, ID_MAX))
            .next()
            .is_some();
        if waited_for && !self.pending.contains_key(&id) && !self.is_satisfied(&id) {
            self.missing.insert(id);
        } else {
            self.missing.remove(&id);
        }
    }

    /// Adds a pruned id to the FIFO, forgetting the oldest while over the bound.
    /// Remembers `id` as pruned; returns the ids forgotten to stay within
    /// [`DagConfig::max_pruned`] (the caller rewires pending deltas that cite them).
    fn remember_pruned(&mut self, id: DeltaId) -> Vec<DeltaId> {
        let order = self.next_pruned;
        self.next_pruned = order.saturating_add(1);
        self.pruned.insert(id, order);
        self.pruned_order.insert(order, id);
        self.changes.pruned.inserted(id);
        self.changes.meta = true;
        let mut forgotten = Vec::new();
        while self.pruned.len() > self.config.max_pruned {
            let Some((_, oldest)) = self.pruned_order.pop_first() else {
                break;
            };
            self.pruned.remove(&oldest);
            self.changes.pruned.removed(oldest);
            forgotten.push(oldest);
        }
        forgotten
    }

    /// Pending deltas that cite a forgotten pruned id wait for it again: their edges and the
    /// missing set are rebuilt (what a restore from storage does), so it is pulled. One pass over
    /// the pending buffer per call.
    fn rewire_forgotten(&mut self, forgotten: &[DeltaId]) {
        if forgotten.is_empty() || self.pending.is_empty() {
            return;
        }
        let forgotten: BTreeSet<DeltaId> = forgotten.iter().copied().collect();
        let children: Vec<DeltaId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.delta.parents.iter().any(|q| forgotten.contains(q)))
            .map(|(id, _)| *id)
            .collect();
        for child in children {
            self.ready_or_rewire(child);
        }
    }
}
