//! Deterministic entity ids: `H(domain ‖ parent ‖ key)`, never random.
//!
//! Two replicas that create "the same" collection (same field name, same map key, same set member,
//! same element stamp) derive the same id, so concurrently created nested collections merge instead
//! of forking. The CRDT type is not part of the id: a map key holds one entry whatever its type, and
//! a second type for it is a [`StateError::KindMismatch`](crate::StateError::KindMismatch).

use tabmesh_base::{EntityId, Hasher};

use crate::{CrdtKind, Stamp};

const D_FIELD: &[u8] = b"tabmesh/state/v1/field";
const D_ENTRY: &[u8] = b"tabmesh/state/v1/entry";
const D_MEMBER: &[u8] = b"tabmesh/state/v1/member";
const D_ELEMENT: &[u8] = b"tabmesh/state/v1/element";

/// The id of the root-level collection named `name` (a field of the app's state).
pub fn field_id(name: &str) -> EntityId {
    name_id(None, name.as_bytes(), CrdtKind::Map)
}

/// The id of the entry `key` of the map `map`.
pub fn entry_id(map: EntityId, key: &[u8]) -> EntityId {
    name_id(Some(map), key, CrdtKind::Map)
}

/// The id of the member `value` of the set `set`.
pub fn member_id(set: EntityId, value: &[u8]) -> EntityId {
    name_id(Some(set), value, CrdtKind::SetMember)
}

/// The id of the element inserted with `stamp` into the list or text `seq`.
pub fn element_id(seq: EntityId, stamp: Stamp) -> EntityId {
    let mut h = Hasher::new(D_ELEMENT);
    h.fixed(seq.as_bytes()).fixed(&stamp.to_bytes());
    EntityId::from(h.finish())
}

/// The id of an entity keyed by bytes: a field (no parent), a map entry or a set member.
pub(crate) fn name_id(parent: Option<EntityId>, key: &[u8], kind: CrdtKind) -> EntityId {
    let mut h = match (parent, kind) {
        (None, _) => Hasher::new(D_FIELD),
        (Some(_), CrdtKind::SetMember) => Hasher::new(D_MEMBER),
        (Some(_), _) => Hasher::new(D_ENTRY),
    };
    if let Some(p) = parent {
        h.fixed(p.as_bytes());
    }
    h.part(key);
    EntityId::from(h.finish())
}
