//! Why the DAG refused an input or a stored state.

use tabmesh_base::{CodecError, DeltaId};
use thiserror::Error;

/// Why a call was refused. Nothing changed in the DAG when a call returns one of these.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DagError {
    /// A regular delta names no parents (only a genesis delta may).
    #[error("delta {id} names no parents but is not a genesis delta")]
    NoParents {
        /// The delta.
        id: DeltaId,
    },
    /// A genesis delta names parents.
    #[error("genesis delta {id} names {count} parents (a genesis delta has none)")]
    GenesisWithParents {
        /// The delta.
        id: DeltaId,
        /// How many parents it names.
        count: usize,
    },
    /// A delta names itself as a parent.
    #[error("delta {id} names itself as a parent")]
    SelfParent {
        /// The delta.
        id: DeltaId,
    },
    /// A delta names the same parent twice.
    #[error("delta {id} names parent {parent} more than once")]
    DuplicateParent {
        /// The delta.
        id: DeltaId,
        /// The repeated parent.
        parent: DeltaId,
    },
    /// A delta names more than [`MAX_PARENTS`](crate::MAX_PARENTS) parents.
    #[error("delta {id} names {count} parents, over the limit of {max}")]
    TooManyParents {
        /// The delta.
        id: DeltaId,
        /// How many parents it names.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A delta of kind [`Checkpoint`](crate::DeltaKind::Checkpoint) was passed to
    /// [`Dag::add`](crate::Dag::add): checkpoints are installed locally with
    /// [`Dag::restore_checkpoint`](crate::Dag::restore_checkpoint), never received.
    #[error("delta {id} is a checkpoint: checkpoints are installed with restore_checkpoint")]
    CheckpointNotAddable {
        /// The delta.
        id: DeltaId,
    },
    /// [`Dag::restore_checkpoint`](crate::Dag::restore_checkpoint) was given no heads.
    #[error("a checkpoint needs at least one head")]
    EmptyCheckpoint,
    /// [`Dag::restore_checkpoint`](crate::Dag::restore_checkpoint) was given more than
    /// [`MAX_CHECKPOINT_HEADS`](crate::MAX_CHECKPOINT_HEADS) heads.
    #[error("a checkpoint names {count} heads, over the limit of {max}")]
    TooManyCheckpointHeads {
        /// How many heads were given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// [`Dag::restore_checkpoint`](crate::Dag::restore_checkpoint) was given the same head twice.
    #[error("a checkpoint names head {id} more than once")]
    DuplicateCheckpointHead {
        /// The repeated head.
        id: DeltaId,
    },
    /// [`Dag::deltas_since`](crate::Dag::deltas_since) was given more than
    /// [`MAX_KNOWN_HEADS`](crate::MAX_KNOWN_HEADS) known heads.
    #[error("{count} known heads given, over the limit of {max}")]
    TooManyKnownHeads {
        /// How many heads were given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// [`Dag::mark_satisfied`](crate::Dag::mark_satisfied) was given more than
    /// [`DagConfig::max_query_limit`](crate::DagConfig::max_query_limit) ids.
    #[error("{count} ids given, over the limit of {max}")]
    TooManyIds {
        /// How many ids were given.
        count: usize,
        /// The bound.
        max: usize,
    },
}

/// Why [`Dag::restore`](crate::Dag::restore) could not rebuild a DAG from stored records.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A record does not decode (unknown version byte, truncated, trailing bytes, bad tag).
    #[error("cannot decode the {table} record {id:?}: {source}")]
    Record {
        /// Which kind of record: `"meta"`, `"applied"`, `"pending"` or `"pruned"`.
        table: &'static str,
        /// The delta the record is about (none for the meta record).
        id: Option<DeltaId>,
        /// What the decoder found.
        source: CodecError,
    },
    /// A key under the prefix is not one the DAG writes (another store shares the prefix?).
    #[error("key {key:02x?} under the DAG prefix is not a DAG record")]
    UnknownKey {
        /// The full key.
        key: Vec<u8>,
    },
    /// Records exist under the prefix but the meta record (counters and heads) does not.
    #[error("the DAG meta record is missing while other DAG records exist")]
    MissingMeta,
    /// The records decode but contradict each other (e.g. a head that is not applied, a pending
    /// delta whose parents are all applied, an id both applied and pending).
    #[error("inconsistent DAG records: {reason} ({id:?})")]
    Inconsistent {
        /// What is wrong.
        reason: &'static str,
        /// The delta concerned, when there is one.
        id: Option<DeltaId>,
    },
}
