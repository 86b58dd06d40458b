//! `tabmesh-dag`: the causal DAG of deltas.
//!
//! A [`Dag`] holds [`CausalDelta`]s (generic over their payload) and applies each one, through an
//! applier the caller passes, only once every parent is applied. It keeps:
//!
//! - the **heads** (applied deltas no other applied delta names as a parent: the parents of the
//!   next local delta);
//! - a bounded **pending buffer** for deltas whose parents have not arrived, with reverse edges so
//!   an arrival visits only the deltas it unblocks, and an **iterative cascade** (a chain of any
//!   length delivered backwards applies in one pass, without recursion and in `O(n log n)`);
//! - the **missing parents** to fetch ([`Dag::missing_parents`]), and **stale-pending cleanup**
//!   ([`Dag::evict_stale`]);
//! - **deltas since** a peer's heads, paginated ([`Dag::deltas_since`]);
//! - **pruning** of old bodies with a bounded memory of pruned ids ([`Dag::prune`]) and
//!   **checkpoints** installed after a snapshot ([`Dag::restore_checkpoint`]);
//! - **persistence through write batches**: every mutation is recorded and [`Dag::take_changes`]
//!   returns it as one [`WriteBatch`](tabmesh_base::WriteBatch) of versioned records;
//!   [`Dag::restore`] rebuilds an equal DAG from a [`KvRead`](tabmesh_base::KvRead).
//!
//! Every bound is a documented constant or a [`DagConfig`] field (defaults: 10 000 pending deltas,
//! 300 s pending age, 100 000 remembered pruned ids, 3 000 items per query, [`MAX_PARENTS`] = 64).
//!
//! What it deliberately is not: it does no IO (the caller persists the batches), reads no clock
//! (`now_ms` is an argument) and draws no randomness; it has no target-specific code. It does not
//! verify ids, signatures or membership: it trusts [`CausalDelta::id`] and the envelope layer
//! checks it. It checks only the structure of a delta ([`CausalDelta::validate`]). It does not know
//! what a payload means: the applier does.
//!
//! # Driving it
//!
//! - On start: [`Dag::restore`] from the store (an empty store gives an empty DAG).
//! - For every delta (local or received, after the envelope layer verified it): [`Dag::add`] with
//!   the applier. On [`AddOutcome::Pending`], fetch `missing` (and, periodically,
//!   [`Dag::missing_parents`]) and re-pull `evicted` later. A local delta names
//!   [`Dag::heads`] (at most [`MAX_PARENTS`] of them) as its parents.
//! - After every mutating call: persist [`Dag::take_changes`] atomically.
//! - Periodically (e.g. every 60 s): [`Dag::evict_stale`] with the current time; now and then
//!   [`Dag::prune`] to bound the retained history.
//! - To answer a peer's heads: [`Dag::deltas_since`], page by page.
//! - After installing a snapshot: [`Dag::restore_checkpoint`] with the snapshot's heads and root.
//!
//! # Known limits
//!
//! An id forgotten from the bounded pruned set is unknown again: a delta naming it as a parent
//! waits for it (it is reported missing), and the delta itself, if sent again, is treated as new.
//! Keep [`DagConfig::max_pruned`] well above what [`Dag::prune`] drops between full syncs.
//!
//! # Example: out-of-order arrival and cascade
//!
//! ```
//! use tabmesh_base::{DeltaId, Hash, Hlc};
//! use tabmesh_dag::{AddOutcome, CausalDelta, Dag, DagConfig};
//!
//! let id = |n: u8| DeltaId::from(Hash::of(&[n]));
//! let mut dag: Dag<Vec<u8>> = Dag::new(DagConfig::default());
//! let mut state: Vec<u8> = Vec::new();
//!
//! let g = CausalDelta::genesis(id(0), b"g".to_vec(), Hlc::new(1, 0));
//! let a = CausalDelta::new(id(1), vec![id(0)], b"a".to_vec(), Hlc::new(2, 0));
//! let b = CausalDelta::new(id(2), vec![id(1)], b"b".to_vec(), Hlc::new(3, 0));
//!
//! // The applier: here it appends the payload to some state. An `Err` drops the delta.
//! let mut apply = |d: &CausalDelta<Vec<u8>>| -> Result<(), String> {
//!     state.extend_from_slice(&d.payload);
//!     Ok(())
//! };
//!
//! // The genesis applies at once and becomes the only head.
//! assert!(matches!(dag.add(g, 1_000, &mut apply)?, AddOutcome::Applied(_)));
//! // `b` arrives before its parent `a`: it waits, and `a` is the parent to fetch.
//! let out = dag.add(b, 1_001, &mut apply)?;
//! assert_eq!(out, AddOutcome::Pending { missing: vec![id(1)], evicted: vec![] });
//! assert_eq!(dag.missing_parents(10), vec![id(1)]);
//! // `a` arrives: it applies, then `b` cascades.
//! let AddOutcome::Applied(cascade) = dag.add(a, 1_002, &mut apply)? else { panic!() };
//! assert_eq!(cascade.applied, vec![id(1), id(2)]);
//! assert_eq!(dag.heads(), vec![id(2)]);
//! assert!(dag.missing_parents(10).is_empty());
//! assert_eq!(state, b"gab");
//!
//! // Persist, restore, compare.
//! let mut kv = tabmesh_base::MemoryKv::new();
//! kv.apply(&dag.take_changes(b"dag/"));
//! let restored: Dag<Vec<u8>> = Dag::restore(b"dag/", &kv, DagConfig::default())?;
//! assert_eq!(restored, dag);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod config;
mod dag;
mod delta;
mod error;
mod outcome;

pub use config::{
    DagConfig, DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_AGE_MS, DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PRUNED, DEFAULT_MAX_QUERY_LIMIT, MAX_CHECKPOINT_HEADS, MAX_KNOWN_HEADS,
    MAX_PARENTS,
};
pub use dag::{Dag, SinceCursor, SincePage};
pub use delta::{CausalDelta, DeltaKind, Payload};
pub use error::{DagError, RestoreError};
pub use outcome::{AddOutcome, ApplyFailure, Cascade, DagStats, DeltaStatus};

/// `Result` with [`DagError`].
pub type Result<T, E = DagError> = std::result::Result<T, E>;
