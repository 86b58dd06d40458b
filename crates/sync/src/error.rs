//! Errors of the sync crate.

use tabmesh_base::{CodecError, ContextId, DeltaId};
use tabmesh_dag::DagError;
use tabmesh_state::StateError;
use thiserror::Error;

/// Why a message, a delta or a local commit was refused. Each is reported; none stops the node.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The bytes do not decode.
    #[error("malformed sync message: {0}")]
    Codec(#[from] CodecError),
    /// A frame is over [`MAX_FRAME`](crate::MAX_FRAME).
    #[error("sync frame of {len} bytes is over the limit of {max}")]
    FrameTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A delta or entity state the state layer refuses.
    #[error("invalid state change: {0}")]
    State(#[from] StateError),
    /// A delta the DAG refuses (bad structure).
    #[error("invalid delta: {0}")]
    Dag(#[from] DagError),
    /// A delta of another context arrived on this one.
    #[error("delta for context {found} arrived on context {expected}")]
    WrongContext {
        /// The context it was sent on.
        expected: ContextId,
        /// The context it names.
        found: ContextId,
    },
    /// A delta's payload is over [`MAX_DELTA_PAYLOAD`](crate::MAX_DELTA_PAYLOAD).
    #[error("delta payload of {len} bytes is over the limit of {max}")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A response that matches no request in flight (late, duplicated or forged).
    #[error("unexpected response {id}")]
    UnexpectedResponse {
        /// Its request id.
        id: u64,
    },
    /// A delta whose actions could not be applied.
    #[error("delta {id} was not applied: {reason}")]
    Rejected {
        /// The delta.
        id: DeltaId,
        /// Why.
        reason: StateError,
    },
    /// A peer broke the protocol (an answer that does not fit the question).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A local transaction too large for one delta.
    #[error("transaction of {len} bytes is over the delta limit of {max}")]
    TxnTooLarge {
        /// Its encoded size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A snapshot whose entities do not hash to the root it announced.
    #[error("snapshot failed verification: its entities hash to a different root")]
    SnapshotMismatch,
}
