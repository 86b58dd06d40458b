//! Read handles, and the semantics of every collection.
//!
//! Read handles borrow the state and allocate nothing beyond what a read returns (`Display` of a
//! text writes straight into the formatter). Obtaining a handle checks the type of an existing
//! entity ([`StateError::KindMismatch`]); a collection that does not exist reads as empty.

use std::fmt;

use tabmesh_base::EntityId;

use crate::entity::Body;
use crate::ids::{entry_id, member_id};
use crate::state::{name_of, Entity};
use crate::{CrdtKind, Metadata, State, StateError};

impl State {
    fn field(&self, field: &str, kind: CrdtKind) -> Result<EntityId, StateError> {
        self.check_child(None, 0, field.as_bytes(), kind)
            .map(|(id, _)| id)
    }

    /// The root-level register `field`.
    pub fn register(&self, field: &str) -> Result<RegisterRef<'_>, StateError> {
        Ok(RegisterRef::new(
            self,
            self.field(field, CrdtKind::Register)?,
        ))
    }

    /// The root-level grow-only counter `field`.
    pub fn counter(&self, field: &str) -> Result<CounterRef<'_>, StateError> {
        Ok(CounterRef::new(
            self,
            self.field(field, CrdtKind::GCounter)?,
        ))
    }

    /// The root-level PN-counter `field`.
    pub fn pn_counter(&self, field: &str) -> Result<PnCounterRef<'_>, StateError> {
        Ok(PnCounterRef::new(
            self,
            self.field(field, CrdtKind::PnCounter)?,
        ))
    }

    /// The root-level map `field`.
    pub fn map(&self, field: &str) -> Result<MapRef<'_>, StateError> {
        Ok(MapRef::new(self, self.field(field, CrdtKind::Map)?, 1))
    }

    /// The root-level set `field`.
    pub fn set(&self, field: &str) -> Result<SetRef<'_>, StateError> {
        Ok(SetRef::new(self, self.field(field, CrdtKind::Set)?))
    }

    /// The root-level list `field`.
    pub fn list(&self, field: &str) -> Result<ListRef<'_>, StateError> {
        Ok(ListRef::new(self, self.field(field, CrdtKind::List)?))
    }

    /// The root-level text `field`.
    pub fn text(&self, field: &str) -> Result<TextRef<'_>, StateError> {
        Ok(TextRef::new(self, self.field(field, CrdtKind::Text)?))
    }
}

/// The entity, when it exists and is visible.
fn live_entity<'a>(state: &'a State, id: &EntityId) -> Option<&'a Entity> {
    state.get(id).filter(|e| e.live)
}

macro_rules! read_handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            state: &'a State,
            id: EntityId,
        }

        impl<'a> $name<'a> {
            pub(crate) fn new(state: &'a State, id: EntityId) -> Self {
                $name { state, id }
            }

            /// The entity id of this collection.
            pub fn id(&self) -> EntityId {
                self.id
            }

            /// Its replicated metadata (`None` if it was never written).
            pub fn metadata(&self) -> Option<&'a Metadata> {
                self.state.metadata(&self.id)
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("id", &self.id).finish()
            }
        }
    };
}

read_handle!(
    /// A last-writer-wins register of bytes.
    ///
    /// **Semantics.** Each write carries a stamp `(hlc, writer, seq)`; the value with the greatest
    /// stamp wins, and equal stamps (only a writer reusing a stamp) are broken by the larger value
    /// bytes, so the merge is a total order and every replica picks the same value. A delete
    /// ([`RegisterMut::clear`](crate::RegisterMut::clear), or deleting the map entry) is a
    /// tombstone stamp: the register is visible while its newest write is newer than the newest
    /// tombstone on it or on any ancestor (update vs delete by HLC).
    RegisterRef
);

impl<'a> RegisterRef<'a> {
    /// The value, if set and not deleted.
    pub fn get(&self) -> Option<&'a [u8]> {
        match &live_entity(self.state, &self.id)?.state.body {
            Body::Register(Some(v)) => Some(&v.value),
            _ => None,
        }
    }
}

read_handle!(
    /// A grow-only counter.
    ///
    /// **Semantics.** One slot per member; a member's increment sets its slot to a new
    /// *absolute* value and the action carries that value, so the merge is the maximum per slot and
    /// re-delivering an action never counts twice. The value is the sum of the slots. Deleting a
    /// counter entry hides it (by HLC, like every entry); a later increment shows it again with its
    /// full merged value: a counter never goes back — until the deleted counter is garbage
    /// collected ([`State::collect_garbage`]): one incremented after that starts from fresh slots,
    /// and a replica that had not collected it yet joins its old slots back in (by delta or by
    /// Merkle repair), so replicas converge to a value that may or may not include the count from
    /// before the delete, depending on that timing.
    CounterRef
);

impl CounterRef<'_> {
    /// The sum of all slots (0 when absent or deleted).
    pub fn value(&self) -> u128 {
        match live_entity(self.state, &self.id).map(|e| &e.state.body) {
            Some(Body::GCounter(slots)) => slots.values().map(|v| u128::from(*v)).sum(),
            _ => 0,
        }
    }
}

read_handle!(
    /// A counter that can go down: two grow-only slot sets.
    ///
    /// **Semantics.** Per member, an increment slot and a decrement slot, each carrying absolute
    /// values merged by maximum (see [`CounterRef`]); the value is the sum of increments minus the
    /// sum of decrements. Deletion as for [`CounterRef`].
    PnCounterRef
);

impl PnCounterRef<'_> {
    /// Increments minus decrements (0 when absent or deleted).
    pub fn value(&self) -> i128 {
        match live_entity(self.state, &self.id).map(|e| &e.state.body) {
            Some(Body::PnCounter { inc, dec }) => {
                let sum =
                    |s: &crate::entity::Slots| s.values().map(|v| i128::from(*v)).sum::<i128>();
                sum(inc) - sum(dec)
            }
            _ => 0,
        }
    }
}

/// A map from byte keys to entries of any value type (registers, counters, nested collections).
///
/// **Semantics.** Every entry is its own entity with id `H(map ‖ key)`, merged individually: two
/// replicas writing different keys never conflict, and two replicas creating the same nested
/// collection (say a map of counters) concurrently create the same entity, whose contents merge.
/// A delete is a tombstone stamp on the entry: the entry is visible while its newest write (to it
/// or anything inside it) is newer than the newest tombstone on it or on an ancestor (update vs
/// delete by HLC). A write after a delete brings the entry back; inside a revived nested
/// collection only what was written after the tombstone is visible. Entries iterate in entity-id
/// order (deterministic, unrelated to key order).
#[derive(Clone, Copy)]
pub struct MapRef<'a> {
    state: &'a State,
    id: EntityId,
    depth: usize,
}

impl fmt::Debug for MapRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapRef").field("id", &self.id).finish()
    }
}

/// The value of a visible map entry.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Value<'a> {
    /// A register's bytes.
    Register(&'a [u8]),
    /// A grow-only counter's value.
    Counter(u128),
    /// A PN-counter's value.
    PnCounter(i128),
    /// A nested map.
    Map(MapRef<'a>),
    /// A nested set.
    Set(SetRef<'a>),
    /// A nested list.
    List(ListRef<'a>),
    /// A nested text.
    Text(TextRef<'a>),
}

impl<'a> MapRef<'a> {
    pub(crate) fn new(state: &'a State, id: EntityId, depth: usize) -> Self {
        MapRef { state, id, depth }
    }

    /// The entity id of this map.
    pub fn id(&self) -> EntityId {
        self.id
    }

    /// Its replicated metadata (`None` if it was never written).
    pub fn metadata(&self) -> Option<&'a Metadata> {
        self.state.metadata(&self.id)
    }

    fn value_of(&self, id: EntityId, e: &'a Entity) -> Option<Value<'a>> {
        if !e.live {
            return None;
        }
        let state = self.state;
        Some(match &e.state.body {
            Body::Register(v) => Value::Register(v.as_ref().map(|v| &*v.value)?),
            Body::GCounter(_) => Value::Counter(CounterRef::new(state, id).value()),
            Body::PnCounter { .. } => Value::PnCounter(PnCounterRef::new(state, id).value()),
            Body::Map => Value::Map(MapRef::new(state, id, self.depth + 1)),
            Body::Set => Value::Set(SetRef::new(state, id)),
            Body::List => Value::List(ListRef::new(state, id)),
            Body::Text => Value::Text(TextRef::new(state, id)),
            _ => return None,
        })
    }

    /// The visible entry `key`, of any type.
    pub fn value(&self, key: &[u8]) -> Option<Value<'a>> {
        let id = entry_id(self.id, key);
        self.value_of(id, self.state.get(&id)?)
    }

    /// The bytes of the visible register entry `key`.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        match self.value(key)? {
            Value::Register(v) => Some(v),
            _ => None,
        }
    }

    /// Whether a visible entry `key` exists.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.state.is_visible(&entry_id(self.id, key))
    }

    /// Number of visible entries (kept up to date on every change: `O(1)`).
    pub fn len(&self) -> usize {
        self.state.get(&self.id).map_or(0, |e| e.live_children)
    }

    /// No visible entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Visible entries `(key, value)` in entity-id order.
    pub fn entries(&self) -> impl Iterator<Item = (&'a [u8], Value<'a>)> + 'a {
        let this = *self;
        let state = self.state;
        state
            .get(&self.id)
            .into_iter()
            .flat_map(|e| e.children.iter())
            .filter_map(move |(id, _)| {
                let e = state.get(&id)?;
                Some((name_of(&e.state), this.value_of(id, e)?))
            })
    }

    /// Visible keys in entity-id order.
    pub fn keys(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries().map(|(k, _)| k)
    }

    fn child(&self, key: &[u8], kind: CrdtKind) -> Result<EntityId, StateError> {
        self.state
            .check_child(Some(self.id), self.depth, key, kind)
            .map(|(id, _)| id)
    }

    /// The register entry `key`.
    pub fn register(&self, key: &[u8]) -> Result<RegisterRef<'a>, StateError> {
        Ok(RegisterRef::new(
            self.state,
            self.child(key, CrdtKind::Register)?,
        ))
    }

    /// The grow-only counter entry `key`.
    pub fn counter(&self, key: &[u8]) -> Result<CounterRef<'a>, StateError> {
        Ok(CounterRef::new(
            self.state,
            self.child(key, CrdtKind::GCounter)?,
        ))
    }

    /// The PN-counter entry `key`.
    pub fn pn_counter(&self, key: &[u8]) -> Result<PnCounterRef<'a>, StateError> {
        Ok(PnCounterRef::new(
            self.state,
            self.child(key, CrdtKind::PnCounter)?,
        ))
    }

    /// The nested map entry `key`.
    pub fn map(&self, key: &[u8]) -> Result<MapRef<'a>, StateError> {
        Ok(MapRef::new(
            self.state,
            self.child(key, CrdtKind::Map)?,
            self.depth + 1,
        ))
    }

    /// The set entry `key`.
    pub fn set(&self, key: &[u8]) -> Result<SetRef<'a>, StateError> {
        Ok(SetRef::new(self.state, self.child(key, CrdtKind::Set)?))
    }

    /// The list entry `key`.
    pub fn list(&self, key: &[u8]) -> Result<ListRef<'a>, StateError> {
        Ok(ListRef::new(self.state, self.child(key, CrdtKind::List)?))
    }

    /// The text entry `key`.
    pub fn text(&self, key: &[u8]) -> Result<TextRef<'a>, StateError> {
        Ok(TextRef::new(self.state, self.child(key, CrdtKind::Text)?))
    }
}

read_handle!(
    /// An add-wins (observed-remove) set of byte strings.
    ///
    /// **Semantics.** Each member is an entity with id `H(set ‖ value)` holding, per writer, its
    /// newest add tag and the newest of its tags any remove observed. An add records a fresh tag;
    /// a remove records every add tag its replica observed. A value is present while some writer's
    /// add tag is newer than every removal of that writer's tags, so a remove concurrent with an
    /// add does not cancel it: **add wins**. Tags are bounded by the number of writers, not by the
    /// number of adds. Deleting the set's map entry hides members added before the tombstone.
    /// Members iterate in entity-id order.
    SetRef
);

impl<'a> SetRef<'a> {
    /// Whether `value` is present.
    pub fn contains(&self, value: &[u8]) -> bool {
        self.state.is_visible(&member_id(self.id, value))
    }

    /// Number of present members (`O(1)`).
    pub fn len(&self) -> usize {
        self.state.get(&self.id).map_or(0, |e| e.live_children)
    }

    /// No members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Present members in entity-id order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let state = self.state;
        state
            .get(&self.id)
            .into_iter()
            .flat_map(|e| e.children.iter())
            .filter_map(move |(id, _)| {
                let e = state.get(&id).filter(|e| e.live)?;
                Some(name_of(&e.state))
            })
    }
}

read_handle!(
    /// A list of byte values in RGA order.
    ///
    /// **Semantics.** Each element is an entity keyed by the stamp that inserted it, recording its
    /// origin (the element before it at insertion). Order: the elements inserted after one origin
    /// come newest stamp first, each followed by what was inserted after it, so concurrent inserts
    /// at one position are ordered deterministically (newest first) and never interleave.
    /// Removing an element leaves a tombstone that keeps its place as an anchor. Each element's
    /// value is a last-writer-wins register ([`ListMut::set`](crate::ListMut::set)); a concurrent
    /// set and remove of one element are decided by HLC, like map entries. Index lookups cost
    /// `O(n / 256 + 256)`.
    ListRef
);

impl<'a> ListRef<'a> {
    /// Number of visible elements.
    pub fn len(&self) -> usize {
        self.state.seq_len(&self.id)
    }

    /// No visible elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn value(&self, id: &EntityId) -> Option<&'a [u8]> {
        match &self.state.get(id)?.state.body {
            Body::ListItem { value: Some(v), .. } => Some(&v.value),
            _ => None,
        }
    }

    /// The value of visible element `index`.
    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        self.value(&self.state.seq(&self.id)?.nth(index)?.id)
    }

    /// Visible values in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let this = *self;
        self.state
            .seq(&self.id)
            .into_iter()
            .flat_map(|s| s.iter())
            .filter_map(move |i| this.value(&i.id))
    }
}

read_handle!(
    /// Text as an RGA of characters.
    ///
    /// **Semantics.** Each character is an element as in [`ListRef`]: inserted after an origin,
    /// concurrent insertions at one position ordered newest first (a run typed in one transaction
    /// stays contiguous), deletions leave tombstones that keep positions stable. A deleted
    /// character never comes back. Positions count Unicode scalar values. Reading as a string
    /// writes the visible characters in order ([`fmt::Display`], so `to_string()` works).
    TextRef
);

impl<'a> TextRef<'a> {
    /// Number of visible characters.
    pub fn len(&self) -> usize {
        self.state.seq_len(&self.id)
    }

    /// No visible characters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The visible characters in order.
    pub fn chars(&self) -> impl Iterator<Item = char> + 'a {
        self.state
            .seq(&self.id)
            .into_iter()
            .flat_map(|s| s.iter())
            .map(|i| i.ch)
    }
}

impl fmt::Display for TextRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        self.chars().try_for_each(|c| f.write_char(c))
    }
}
