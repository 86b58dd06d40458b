//! Errors of the network shell.

use thiserror::Error;

/// Why the network shell failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    /// Building the swarm failed (a transport or behaviour could not be set up).
    #[error("network set-up failed: {0}")]
    Setup(String),
    /// The relay address is not usable (it must end with `/p2p/<relay peer id>`).
    #[error("bad relay address {addr}: {reason}")]
    BadRelay {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The store failed: the node stops (it never acts on a batch it could not make durable).
    #[error("storage failed, the node stopped: {0}")]
    Store(#[from] tabmesh_storage::StoreError),
    /// The store is full: what the call wrote is applied and held in memory but not durable; it
    /// is committed once the store takes it (the node runs on, see `NetEvent::StoreFull`).
    #[error("the write is not durable: {0}; it is held in memory and retried")]
    NotDurable(tabmesh_storage::StoreError),
    /// Loading the node from its store failed.
    #[error("loading the node failed: {0}")]
    Load(#[from] tabmesh_node::NodeError),
    /// The node has stopped (its driver ended); the call did not run or its result is unknown.
    #[error("the node has stopped")]
    Stopped,
    /// The blob store failed (the node runs on; the blob operation did not complete).
    #[error("blob storage failed: {0}")]
    BlobStore(tabmesh_storage::StoreError),
    /// A blob, manifest or chunk was refused (too large, bad manifest, index out of range, a
    /// damaged stored chunk).
    #[error("{0}")]
    Blob(#[from] tabmesh_blobs::BlobError),
    /// A fetch gave up (every attempt at one piece failed).
    #[error("fetching the blob failed: {0}")]
    BlobFetch(tabmesh_blobs::FetchError),
    /// Another caller's fetch of the same blob failed.
    #[error("fetching the blob failed: {0}")]
    BlobFailed(String),
    /// Nobody holding the blob could be asked for `BLOB_PATIENCE_MS`.
    #[error("blob {0} is unavailable: no peer holding it answered")]
    BlobUnavailable(tabmesh_blobs::BlobId),
    /// The blob is not held here.
    #[error("blob {0} is not held here")]
    UnknownBlob(tabmesh_blobs::BlobId),
    /// No add in progress has this handle.
    #[error("no blob is being added with handle {0}")]
    UnknownUpload(u64),
    /// Too many blob operations of one kind at once.
    #[error("too many {what} at once (at most {max})")]
    BlobBusy {
        /// What.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// This node is not in that context.
    #[error("unknown context {0}")]
    UnknownContext(tabmesh_base::ContextId),
}
