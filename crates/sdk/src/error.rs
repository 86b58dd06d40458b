//! The SDK's error: what a collection operation, a host call or the method plumbing can answer.

use serde::Serialize;
use tabmesh_abi::{OpError, OpErrorKind};

/// The SDK's result type; methods usually return it.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Why an SDK call failed. It is also what a failed method hands to the ABI's `fail`, encoded as
/// JSON with a `kind` tag: `{"kind":"storage","reason":"wrong_type","message":"…"}`,
/// `{"kind":"blob","reason":"not_found","message":"…"}`, `{"kind":"app","message":"…"}`,
/// `{"kind":"no_host"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// Not running in a tabmesh host (a native build): the host calls do not exist.
    #[error("not in a tabmesh host (the SDK's host calls exist only in a wasm32 app module)")]
    NoHost,
    /// The host refused a storage operation; nothing changed.
    #[error("storage operation refused ({reason}): {message}")]
    Storage {
        /// The refusal's kind (`wrong_type`, `too_large`, `too_deep`, `out_of_range`, `invalid`,
        /// `not_found`, `unsupported`, `other`).
        reason: &'static str,
        /// The host's explanation.
        message: String,
    },
    /// The host refused a blob operation; nothing changed. `not_found` on
    /// [`blob::open`](crate::blob::open): the blob is not on this node yet (the node asks its peers
    /// for it; try again later).
    #[error("blob operation refused ({reason}): {message}")]
    Blob {
        /// The refusal's kind (as for [`Error::Storage`]).
        reason: &'static str,
        /// The host's explanation.
        message: String,
    },
    /// The host's answer could not be decoded (an ABI mismatch).
    #[error("undecodable host answer: {message}")]
    Codec {
        /// What was wrong.
        message: String,
    },
    /// The host answered with a value of another type than the operation's (an ABI mismatch).
    #[error("unexpected answer to {op}")]
    UnexpectedValue {
        /// The operation.
        op: &'static str,
    },
    /// The call's input is not the JSON object the method expects.
    #[error("bad arguments: {message}")]
    BadInput {
        /// The decoder's explanation.
        message: String,
    },
    /// A value could not be encoded as JSON (return values, event data).
    #[error("cannot encode: {message}")]
    Encode {
        /// The encoder's explanation.
        message: String,
    },
    /// An error of the app's own ([`Error::app`]).
    #[error("{message}")]
    App {
        /// The app's message.
        message: String,
    },
}

impl Error {
    /// An error of the app's own, e.g. `return Err(Error::app("no such key"))`.
    pub fn app(message: impl Into<String>) -> Error {
        Error::App {
            message: message.into(),
        }
    }

    /// A refused blob operation ([`Error::Blob`]).
    pub(crate) fn blob(e: OpError) -> Error {
        Error::Blob {
            reason: reason(e.kind),
            message: e.message,
        }
    }
}

fn reason(kind: OpErrorKind) -> &'static str {
    match kind {
        OpErrorKind::WrongType => "wrong_type",
        OpErrorKind::TooLarge => "too_large",
        OpErrorKind::TooDeep => "too_deep",
        OpErrorKind::OutOfRange => "out_of_range",
        OpErrorKind::Invalid => "invalid",
        OpErrorKind::NotFound => "not_found",
        OpErrorKind::Unsupported => "unsupported",
        _ => "other",
    }
}

impl From<OpError> for Error {
    /// A refused storage operation ([`Error::Storage`]).
    fn from(e: OpError) -> Error {
        Error::Storage {
            reason: reason(e.kind),
            message: e.message,
        }
    }
}
