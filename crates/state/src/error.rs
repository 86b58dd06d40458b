//! Why a state operation was refused.

use tabmesh_base::{CodecError, EntityId};
use thiserror::Error;

use crate::CrdtKind;

/// Why a read handle, a local write, a remote [`apply`](crate::State::apply) or an
/// [`open`](crate::State::open) was refused.
///
/// A refused `apply` or `open` changes nothing; a refused write inside a transaction leaves the
/// transaction's earlier writes in place (drop the transaction to undo them all).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StateError {
    /// Bytes could not be decoded (unknown version, truncated, over a bound, bad tag).
    #[error("malformed state encoding: {0}")]
    Codec(#[from] CodecError),
    /// The entity exists with another CRDT type (e.g. a counter action for a map entity).
    #[error("entity {id} is a {existing:?}, not a {incoming:?}")]
    KindMismatch {
        /// The entity.
        id: EntityId,
        /// Its type in this replica.
        existing: CrdtKind,
        /// The type the write or action claims.
        incoming: CrdtKind,
    },
    /// The parent's type does not hold children of this type (e.g. a counter under a text).
    #[error("a {child:?} cannot be a child of {}", parent.map_or("the root".to_owned(), |k| format!("a {k:?}")))]
    InvalidChild {
        /// The entity.
        id: EntityId,
        /// The parent's type (`None`: the root).
        parent: Option<CrdtKind>,
        /// The entity's type.
        child: CrdtKind,
    },
    /// An action names a parent that neither this replica nor the same batch holds.
    #[error("entity {id} names parent {parent}, which is unknown")]
    MissingParent {
        /// The entity.
        id: EntityId,
        /// The missing parent.
        parent: EntityId,
    },
    /// The entity would be deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("entity {id} would be at depth {depth}, over the limit of {max}")]
    TooDeep {
        /// The entity.
        id: EntityId,
        /// Its depth.
        depth: usize,
        /// The bound.
        max: usize,
    },
    /// A key, value, slot set, tag set or action count is over its bound.
    #[error("{what} is {len}, over the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A list or text position is past the end.
    #[error("index {index} is out of range for length {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of visible items.
        len: usize,
    },
    /// A list or text element's origin is not strictly older than the element itself.
    #[error("element {id} has an origin that is not older than itself")]
    InvalidOrigin {
        /// The element.
        id: EntityId,
    },
    /// A counter slot would pass `u64::MAX`.
    #[error("counter {id} would overflow")]
    CounterOverflow {
        /// The counter.
        id: EntityId,
    },
    /// Two different entities were joined.
    #[error("cannot join states of different entities {left} and {right}")]
    DifferentEntities {
        /// The entity joined into.
        left: EntityId,
        /// The other entity.
        right: EntityId,
    },
    /// A stored record does not match the key it is stored under.
    #[error("corrupt state store: {0}")]
    Corrupt(&'static str),
}
