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
}
