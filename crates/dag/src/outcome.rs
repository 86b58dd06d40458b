//! What the DAG reports back: add outcomes, cascades, statuses and statistics.

use tabmesh_base::DeltaId;

/// What [`Dag::add`](crate::Dag::add) did with a delta.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a pending outcome lists parents to fetch and evicted ids to re-pull"]
pub enum AddOutcome<E> {
    /// Every parent was applied: the delta was applied, then every pending delta its arrival
    /// unblocked. `applied[0]` is the delta itself.
    Applied(Cascade<E>),
    /// Some parent is not applied yet: the delta waits in the pending buffer.
    Pending {
        /// Its parents that are neither applied, pruned nor pending: fetch these. (Parents that are
        /// themselves pending are not listed; [`Dag::missing_parents`](crate::Dag::missing_parents)
        /// gives the whole backfill list.)
        missing: Vec<DeltaId>,
        /// Pending deltas evicted, oldest first, to keep the buffer under
        /// [`DagConfig::max_pending`](crate::DagConfig::max_pending): re-pull them later.
        evicted: Vec<DeltaId>,
    },
    /// The id is already applied, pending or pruned: nothing changed.
    Duplicate,
    /// The applier refused the delta itself: it was dropped (not applied, not pending). Deltas
    /// waiting for it stay pending and it is listed by
    /// [`Dag::missing_parents`](crate::Dag::missing_parents).
    Failed {
        /// The applier's error.
        error: E,
    },
}

/// Deltas applied by one cascade, in the order they were applied, and the ones the applier refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cascade<E> {
    /// Applied deltas, in apply order (every delta's parents come before it).
    pub applied: Vec<DeltaId>,
    /// Deltas that became ready but that the applier refused: each was dropped; deltas waiting for
    /// it stay pending.
    pub failed: Vec<ApplyFailure<E>>,
}

impl<E> Default for Cascade<E> {
    fn default() -> Self {
        Cascade {
            applied: Vec::new(),
            failed: Vec::new(),
        }
    }
}

/// A delta the applier refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyFailure<E> {
    /// The delta, dropped.
    pub id: DeltaId,
    /// The applier's error.
    pub error: E,
}

/// Where an id stands in the DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeltaStatus {
    /// Applied and retained: with its body, or a checkpoint boundary without one.
    Applied,
    /// Waiting for parents.
    Pending,
    /// Applied, then pruned: the body is gone, the id is remembered and counts as an applied parent.
    Pruned,
    /// Not known (never seen, evicted, dropped by the applier, or forgotten after pruning).
    Unknown,
}

/// Counts describing a DAG, from [`Dag::stats`](crate::Dag::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DagStats {
    /// Retained deltas: `applied + pending` (pruned ids are not counted).
    pub total: usize,
    /// Applied and retained deltas (checkpoint boundaries included).
    pub applied: usize,
    /// Deltas waiting for parents.
    pub pending: usize,
    /// Their payloads' bytes ([`Payload::weight`](crate::Payload::weight)), at most
    /// [`DagConfig::max_pending_bytes`](crate::DagConfig::max_pending_bytes).
    pub pending_bytes: usize,
    /// Current heads.
    pub heads: usize,
    /// Pruned ids remembered.
    pub pruned: usize,
    /// Ids pending deltas wait for that are neither applied, pruned nor pending.
    pub missing: usize,
    /// Age in ms (against the `now_ms` given to [`Dag::stats`](crate::Dag::stats)) of the pending
    /// delta received longest ago; `None` with nothing pending.
    pub oldest_pending_age_ms: Option<u64>,
}
