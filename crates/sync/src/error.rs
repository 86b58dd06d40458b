//! Errors of the sync crate.

use tabmesh_base::{CodecError, ContextId, DeltaId, Hash, MemberId};
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
    /// A peer sent requests faster than [`SyncConfig::requests_per_sec`](crate::SyncConfig)
    /// allows: this one was dropped unanswered.
    #[error("request dropped: over the rate of {per_sec} requests per second")]
    RateLimited {
        /// The rate.
        per_sec: u32,
    },
    /// A delta that was not applied.
    #[error("delta {id} was not applied: {reason}")]
    Rejected {
        /// The delta.
        id: DeltaId,
        /// Why.
        reason: Box<SyncError>,
    },
    /// A delta or a local write that the context's governance refuses.
    #[error("access refused: {0}")]
    Access(#[from] AccessError),
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

/// Why the context's governance refuses a delta (or a local write). Every check is a function of
/// the delta and the causal history it cites, so every replica reaches the same verdict.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The author's signature over the delta id does not verify.
    #[error("the author's signature does not verify")]
    BadSignature,
    /// The author is not a member at the delta's causal position.
    #[error("{author} is not a member of the context at this delta's causal position")]
    NotAMember {
        /// The author.
        author: MemberId,
    },
    /// The author's role does not allow the operation.
    #[error("{author} may not {op}: it takes an admin")]
    NotAllowed {
        /// The author.
        author: MemberId,
        /// The operation's name.
        op: &'static str,
    },
    /// This replica does not hold the key of the delta's epoch (yet): the delta is not
    /// remembered as refused, so it is fetched again once a key box delivers the key.
    #[error("the key of epoch {epoch} is not held here")]
    KeyUnknown {
        /// The epoch.
        epoch: Hash,
    },
    /// The delta is sealed with another epoch than the one current at its causal position.
    #[error("sealed with epoch {found}, but epoch {expected} is current at its position")]
    WrongEpoch {
        /// The current epoch at the delta's position.
        expected: Hash,
        /// The one it names.
        found: Hash,
    },
    /// The payload does not decrypt (tampered, or sealed with another key).
    #[error("the payload does not decrypt")]
    Decrypt,
    /// A governance operation that breaks a rule (the reason names it).
    #[error("invalid {op} operation: {reason}")]
    Governance {
        /// The operation's name.
        op: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The invitation expired before the join's HLC.
    #[error("the invitation expired at {expires_ms} ms, the join is stamped {at_ms} ms")]
    InvitationExpired {
        /// The invitation's expiry.
        expires_ms: u64,
        /// The join's HLC wall time.
        at_ms: u64,
    },
    /// Key material could not be created or sealed (a member key that is not a valid point).
    #[error("sealing failed: {0}")]
    Seal(&'static str),
}
