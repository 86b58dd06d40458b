//! Errors of the node.

use tabmesh_base::{CodecError, ContextId};
use tabmesh_sync::{OpenError, SyncError};
use thiserror::Error;

/// Why a node call failed. None of these stops the node.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node does not host this context.
    #[error("unknown context {0}")]
    UnknownContext(ContextId),
    /// The node hosts [`MAX_CONTEXTS`](crate::MAX_CONTEXTS) already.
    #[error("this node already hosts {max} contexts")]
    TooManyContexts {
        /// The bound.
        max: usize,
    },
    /// A local transaction failed (nothing was written).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Stored data is unreadable.
    #[error("stored context: {0}")]
    Open(#[from] OpenError),
    /// A stored node record is unreadable.
    #[error("stored node record: {0}")]
    Codec(#[from] CodecError),
    /// The stored list of contexts holds a key that names no context.
    #[error("the stored context list is corrupt")]
    CorruptIndex,
}
