//! Bounds and the configuration of a [`Dag`](crate::Dag).
//!
//! Structural bounds (how many parents a delta may name, how many heads a checkpoint or a query may
//! carry) are constants: they are part of what a valid delta is, so every node must agree on them.
//! Resource bounds (pending buffer, pruned-id memory, query size, pending age) are in [`DagConfig`]:
//! each node may tune them.

/// Most parents one delta may name; a delta naming more is rejected with
/// [`DagError::TooManyParents`](crate::DagError::TooManyParents).
///
/// 64: a delta names the heads its author had, and heads only multiply when writers are concurrent,
/// so even a large burst of concurrent writers stays far below it. It caps the readiness check (every
/// parent is looked up each time a delta might become ready) and the size of a delta's parent list
/// on disk and on the wire. Authors with more heads than this cite 64 of them; the rest stay heads
/// and are merged by a later delta.
pub const MAX_PARENTS: usize = 64;

/// Most heads [`Dag::restore_checkpoint`](crate::Dag::restore_checkpoint) installs at once.
///
/// Equal to [`MAX_PARENTS`]: the next local delta names every head as a parent, so a snapshot with
/// more heads could not be built upon in one delta.
pub const MAX_CHECKPOINT_HEADS: usize = MAX_PARENTS;

/// Most known heads [`Dag::deltas_since`](crate::Dag::deltas_since) accepts in one query; more is
/// [`DagError::TooManyKnownHeads`](crate::DagError::TooManyKnownHeads).
///
/// 1 024: sixteen times [`MAX_PARENTS`]. A peer's heads list comes off the wire, so it is bounded
/// here as well as by the message size: each known head costs one lookup per query.
pub const MAX_KNOWN_HEADS: usize = 1_024;

/// Default for [`DagConfig::max_pending`]: how many deltas may wait for their parents.
///
/// 10 000, as upstream: at a few KiB per delta that is tens of MiB at worst, and a node further
/// behind than this should catch up by snapshot or Merkle comparison, not by buffering.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// Default for [`DagConfig::max_pending_bytes`]: 64 MiB of payloads waiting for their parents.
///
/// The count bound alone lets 10 000 deltas of up to the sync layer's 3 MiB payload wait (30 GB);
/// this bounds the buffer's memory whatever a peer sends. Honest catch-up stays far below it.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;

/// Default for [`DagConfig::max_pending_age_ms`]: 300 s (5 minutes), as upstream.
///
/// A pending delta older than this is dropped by [`Dag::evict_stale`](crate::Dag::evict_stale) and
/// re-pulled later; five minutes covers many missing-parent pulls and periodic syncs (every 10 s).
pub const DEFAULT_MAX_PENDING_AGE_MS: u64 = 300_000;

/// Default for [`DagConfig::max_pruned`]: how many pruned ids are remembered.
///
/// 100 000 ids (3.2 MB), as upstream. A remembered pruned id still counts as an applied parent and
/// still makes a re-sent delta a duplicate; an id forgotten from this FIFO is unknown again.
pub const DEFAULT_MAX_PRUNED: usize = 100_000;

/// Default for [`DagConfig::max_query_limit`]: most ids or deltas one query returns.
///
/// 3 000, as upstream's `MAX_DELTA_QUERY_LIMIT`: one page of
/// [`Dag::deltas_since`](crate::Dag::deltas_since) or one
/// [`Dag::missing_parents`](crate::Dag::missing_parents) answer stays a bounded message.
pub const DEFAULT_MAX_QUERY_LIMIT: usize = 3_000;

/// Resource bounds of one [`Dag`](crate::Dag). `DagConfig::default()` gives the documented
/// defaults; values below the minimum noted on a field are raised to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DagConfig {
    /// Most pending deltas (waiting for parents); over it the oldest arrival is evicted and
    /// reported. Default [`DEFAULT_MAX_PENDING`]; at least 1.
    pub max_pending: usize,
    /// Most payload bytes ([`Payload::weight`](crate::Payload::weight)) of the pending deltas
    /// together; over it the oldest arrival is evicted, as for [`DagConfig::max_pending`].
    /// Default [`DEFAULT_MAX_PENDING_BYTES`]; at least 1.
    pub max_pending_bytes: usize,
    /// Age (ms, against the caller's `now_ms`) beyond which
    /// [`Dag::evict_stale`](crate::Dag::evict_stale) drops a pending delta. Default
    /// [`DEFAULT_MAX_PENDING_AGE_MS`].
    pub max_pending_age_ms: u64,
    /// Most pruned ids remembered (a FIFO: the oldest pruned is forgotten first). Default
    /// [`DEFAULT_MAX_PRUNED`]; 0 forgets pruned ids at once.
    pub max_pruned: usize,
    /// Most items one query returns; larger requested limits are lowered to it. Default
    /// [`DEFAULT_MAX_QUERY_LIMIT`]; at least 1.
    pub max_query_limit: usize,
}

impl Default for DagConfig {
    fn default() -> Self {
        DagConfig {
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            max_pending_age_ms: DEFAULT_MAX_PENDING_AGE_MS,
            max_pruned: DEFAULT_MAX_PRUNED,
            max_query_limit: DEFAULT_MAX_QUERY_LIMIT,
        }
    }
}

impl DagConfig {
    /// The configuration with every field raised to its minimum.
    pub(crate) fn normalized(self) -> DagConfig {
        DagConfig {
            max_pending: self.max_pending.max(1),
            max_pending_bytes: self.max_pending_bytes.max(1),
            max_query_limit: self.max_query_limit.max(1),
            ..self
        }
    }
}
