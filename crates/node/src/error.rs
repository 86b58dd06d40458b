//! Errors of the node.

use tabmesh_base::{CodecError, ContextId, Hash};
use tabmesh_runtime::RuntimeError;
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
    /// The context has no app module on this node (opened with `open_context` only).
    #[error("context {0} has no app on this node")]
    NoApp(ContextId),
    /// The node already hosts this context.
    #[error("context {0} already exists on this node")]
    ContextExists(ContextId),
    /// The module given to join a context is not the one this node already runs in it.
    #[error("context runs app {expected}, not {found}")]
    AppMismatch {
        /// The app the context runs here.
        expected: Hash,
        /// The module given.
        found: Hash,
    },
    /// A stored app module is missing.
    #[error("stored app module {0} is missing")]
    MissingModule(Hash),
    /// An app call failed (nothing it wrote was kept).
    #[error("app call failed: {0}")]
    Runtime(#[from] RuntimeError),
    /// An invitation link that does not parse or verify.
    #[error("invalid invitation: {0}")]
    Invitation(tabmesh_auth::AuthError),
    /// The invitation expired before this node could join.
    #[error("the invitation expired at {expires_ms} ms (now {now_ms} ms)")]
    InvitationExpired {
        /// Its expiry.
        expires_ms: u64,
        /// The node's time.
        now_ms: u64,
    },
    /// A new app module asks for a data migration (it exports the migration hook): changing an
    /// app's data layout is not supported yet.
    #[error("app {app} asks for a data migration, which is not supported: change to a module that reads the current data as it is")]
    MigrationUnsupported {
        /// The module's hash.
        app: Hash,
    },
    /// A handler chain went past [`MAX_HOPS`](tabmesh_sync::MAX_HOPS): the handler was dropped.
    #[error("handler `{handler}` would run at hop {hop}, past the limit of {max}")]
    HopLimit {
        /// The handler.
        handler: String,
        /// The hop it would have run at.
        hop: u16,
        /// The bound.
        max: u8,
    },
}
