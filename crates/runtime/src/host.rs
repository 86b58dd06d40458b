//! The node side of a call: the [`Host`] trait, and what a successful call produced.

use tabmesh_base::{ContextId, MemberId};

use crate::abi::{BlobOp, OpError, StorageOp, Value};

/// What an app reaches of the node during one call. The node implements it; the runtime never
/// sees the state, the network or storage otherwise.
///
/// **Transaction contract.** One `Host` value serves one call. Every write it accepts
/// ([`Host::storage`], [`Host::blob`]) goes into a transaction that the caller commits only when
/// [`Runtime::execute`](crate::Runtime::execute) returns `Ok`; on any `Err` (a trap, running out
/// of fuel or memory, an exceeded limit, an ABI violation, the app's own `fail`) the caller
/// drops the transaction and nothing the call did survives. The outcome's events and return value
/// exist only on success, so they need no undo.
///
/// **Determinism.** The runtime has no clock and no randomness of its own: [`Host::now_ms`] and
/// [`Host::random_bytes`] are the only sources, and the host decides what they return (e.g. the
/// call's timestamp, a generator seeded from the call).
///
/// A refused operation ([`OpError`]) is returned to the app as a value: it changed nothing and the
/// app decides whether to go on.
pub trait Host {
    /// The context the call runs in.
    fn context_id(&self) -> ContextId;

    /// The member on whose behalf the call runs.
    fn executor_id(&self) -> MemberId;

    /// The time the app sees, in ms since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Fills `out` from the host's deterministic generator.
    fn random_bytes(&mut self, out: &mut [u8]);

    /// Runs one storage operation against the call's transaction.
    fn storage(&mut self, op: &StorageOp<'_>) -> Result<Value, OpError>;

    /// Runs one blob operation. Hosts without blob support keep this default, which refuses with
    /// [`OpErrorKind::Unsupported`](crate::abi::OpErrorKind::Unsupported).
    fn blob(&mut self, op: &BlobOp<'_>) -> Result<Value, OpError> {
        let _ = op;
        Err(OpError::unsupported("blobs"))
    }
}

/// An event the app emitted. The node seals it into the call's delta and, when it names a
/// handler, calls that method on the receiving members with `data` as input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened (the app's vocabulary).
    pub kind: String,
    /// Its payload, encoded as the app likes.
    pub data: Vec<u8>,
    /// The method receivers run for it, if any (checked to be one of the module's methods).
    pub handler: Option<String>,
}

/// What a successful call produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// What the app passed to `return_value` last, if it did.
    pub return_value: Option<Vec<u8>>,
    /// Its log lines, in order.
    pub logs: Vec<String>,
    /// Its events, in order.
    pub events: Vec<Event>,
    /// Fuel burnt, host calls included (deterministic for a given module, input, host answers and
    /// runtime version).
    pub fuel_used: u64,
}
