//! Entity states and the actions that carry them.
//!
//! Every entity's replicated state is a join-semilattice: metadata (`created` = min, `updated` =
//! max, `deleted` = max) plus a type-specific body. An [`Action`] is a state *fragment* of one
//! entity; an entity's full state is the join of every action on it, and is itself an `Action`. So
//! local writes, remote actions, Merkle repair and snapshots all go through one operation,
//! [`Action::join`] (applied by [`State::apply`](crate::State::apply)): commutative, associative and
//! idempotent, which makes the state (and its Merkle root) a pure function of the set of actions.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{hash_parts, CodecError, EntityId, Hash, MemberId};

use crate::ids::{element_id, name_id};
use crate::limits::{MAX_ACTIONS, MAX_COUNTER_SLOTS, MAX_KEY_LEN, MAX_SET_TAGS, MAX_VALUE_LEN};
use crate::stamp::max_opt;
use crate::{Stamp, StateError};

const D_OWN: &[u8] = b"tabmesh/state/v1/own";

/// The CRDT type of an entity. Fixed when the entity is first created; a write or action with
/// another type for the same id is a [`StateError::KindMismatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CrdtKind {
    /// Last-writer-wins register of bytes.
    Register,
    /// Grow-only counter.
    GCounter,
    /// Counter that can go down.
    PnCounter,
    /// Map from byte keys to entries of any value type.
    Map,
    /// Add-wins set of byte strings.
    Set,
    /// RGA-ordered list of byte values.
    List,
    /// RGA text.
    Text,
    /// One member of a [`Set`](CrdtKind::Set).
    SetMember,
    /// One element of a [`List`](CrdtKind::List).
    ListItem,
    /// One character of a [`Text`](CrdtKind::Text).
    TextChar,
}

impl CrdtKind {
    /// Types that can be a root-level field or a map entry.
    pub fn is_value(self) -> bool {
        !self.is_element_like()
    }

    /// Types whose entities have child entities (maps, sets, lists, texts).
    pub fn is_container(self) -> bool {
        matches!(
            self,
            CrdtKind::Map | CrdtKind::Set | CrdtKind::List | CrdtKind::Text
        )
    }

    fn is_element_like(self) -> bool {
        matches!(
            self,
            CrdtKind::SetMember | CrdtKind::ListItem | CrdtKind::TextChar
        )
    }

    /// Whether a `child` entity may sit under a `parent` (`None`: the root).
    pub(crate) fn allows_child(parent: Option<CrdtKind>, child: CrdtKind) -> bool {
        match parent {
            None | Some(CrdtKind::Map) => child.is_value(),
            Some(CrdtKind::Set) => child == CrdtKind::SetMember,
            Some(CrdtKind::List) => child == CrdtKind::ListItem,
            Some(CrdtKind::Text) => child == CrdtKind::TextChar,
            Some(_) => false,
        }
    }

    fn tag(self) -> u8 {
        match self {
            CrdtKind::Register => 0,
            CrdtKind::GCounter => 1,
            CrdtKind::PnCounter => 2,
            CrdtKind::Map => 3,
            CrdtKind::Set => 4,
            CrdtKind::List => 5,
            CrdtKind::Text => 6,
            CrdtKind::SetMember => 7,
            CrdtKind::ListItem => 8,
            CrdtKind::TextChar => 9,
        }
    }

    fn from_tag(tag: u8) -> Result<CrdtKind, CodecError> {
        Ok(match tag {
            0 => CrdtKind::Register,
            1 => CrdtKind::GCounter,
            2 => CrdtKind::PnCounter,
            3 => CrdtKind::Map,
            4 => CrdtKind::Set,
            5 => CrdtKind::List,
            6 => CrdtKind::Text,
            7 => CrdtKind::SetMember,
            8 => CrdtKind::ListItem,
            9 => CrdtKind::TextChar,
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "crdt kind",
                    tag,
                })
            }
        })
    }
}

/// Replicated metadata of an entity; equal on every replica that applied the same actions.
///
/// Each field is a semilattice of its own, so metadata merges like everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The oldest write to the entity or anything below it (join: min).
    pub created: Stamp,
    /// The newest write (not delete) to the entity or anything below it (join: max).
    pub updated: Stamp,
    /// The newest delete of the entity: its tombstone (join: max). An entity is visible while
    /// `updated` is newer than its tombstone and every ancestor's (see each collection's rules).
    pub deleted: Option<Stamp>,
}

impl Metadata {
    /// The metadata of a single write at `s`.
    pub(crate) fn at(s: Stamp) -> Metadata {
        Metadata {
            created: s,
            updated: s,
            deleted: None,
        }
    }

    fn join(&mut self, other: &Metadata) -> bool {
        let before = *self;
        self.created = self.created.min(other.created);
        self.updated = self.updated.max(other.updated);
        self.deleted = max_opt(self.deleted, other.deleted);
        *self != before
    }
}

/// What kind of change an action describes. Informational: applying never looks at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionOp {
    /// The entity's first write (`created == updated`, no newer tombstone).
    Add,
    /// A later write.
    Update,
    /// A delete: the tombstone is the newest stamp.
    Delete,
}

/// The key of an entity under its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKey<'a> {
    /// A field name, map key or set member.
    Name(&'a [u8]),
    /// The stamp that inserted a list or text element.
    Element(Stamp),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Name(Box<[u8]>),
    Elem(Stamp),
}

/// A last-writer-wins value: ordered by stamp, then by value bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Lww {
    pub(crate) stamp: Stamp,
    pub(crate) value: Box<[u8]>,
}

pub(crate) type Slots = BTreeMap<MemberId, u64>;
pub(crate) type Tags = BTreeMap<MemberId, Stamp>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    Register(Option<Lww>),
    GCounter(Slots),
    PnCounter {
        inc: Slots,
        dec: Slots,
    },
    Map,
    Set,
    List,
    Text,
    SetMember {
        added: Tags,
        removed: Tags,
    },
    ListItem {
        origin: Option<Stamp>,
        value: Option<Lww>,
    },
    TextChar {
        origin: Option<Stamp>,
        ch: char,
    },
}

impl Body {
    fn kind(&self) -> CrdtKind {
        match self {
            Body::Register(_) => CrdtKind::Register,
            Body::GCounter(_) => CrdtKind::GCounter,
            Body::PnCounter { .. } => CrdtKind::PnCounter,
            Body::Map => CrdtKind::Map,
            Body::Set => CrdtKind::Set,
            Body::List => CrdtKind::List,
            Body::Text => CrdtKind::Text,
            Body::SetMember { .. } => CrdtKind::SetMember,
            Body::ListItem { .. } => CrdtKind::ListItem,
            Body::TextChar { .. } => CrdtKind::TextChar,
        }
    }

    /// The body of an entity header (containers) or of a fresh entity of `kind`.
    pub(crate) fn empty(kind: CrdtKind) -> Option<Body> {
        Some(match kind {
            CrdtKind::Register => Body::Register(None),
            CrdtKind::GCounter => Body::GCounter(Slots::new()),
            CrdtKind::PnCounter => Body::PnCounter {
                inc: Slots::new(),
                dec: Slots::new(),
            },
            CrdtKind::Map => Body::Map,
            CrdtKind::Set => Body::Set,
            CrdtKind::List => Body::List,
            CrdtKind::Text => Body::Text,
            CrdtKind::SetMember | CrdtKind::ListItem | CrdtKind::TextChar => return None,
        })
    }

    /// The smallest body that keeps what is immutable (element origins and characters).
    pub(crate) fn bottom(&self) -> Body {
        match self {
            Body::SetMember { .. } => Body::SetMember {
                added: Tags::new(),
                removed: Tags::new(),
            },
            Body::ListItem { origin, .. } => Body::ListItem {
                origin: *origin,
                value: None,
            },
            Body::TextChar { origin, ch } => Body::TextChar {
                origin: *origin,
                ch: *ch,
            },
            Body::Register(_) => Body::Register(None),
            Body::GCounter(_) => Body::GCounter(Slots::new()),
            Body::PnCounter { .. } => Body::PnCounter {
                inc: Slots::new(),
                dec: Slots::new(),
            },
            Body::Map => Body::Map,
            Body::Set => Body::Set,
            Body::List => Body::List,
            Body::Text => Body::Text,
        }
    }

    fn join(&mut self, other: &Body) -> bool {
        match (self, other) {
            (Body::Register(a), Body::Register(b)) => join_lww(a, b),
            (Body::GCounter(a), Body::GCounter(b)) => join_max(a, b),
            (Body::PnCounter { inc: a, dec: b }, Body::PnCounter { inc: c, dec: d }) => {
                join_max(a, c) | join_max(b, d)
            }
            (
                Body::SetMember {
                    added: a,
                    removed: r,
                },
                Body::SetMember {
                    added: b,
                    removed: s,
                },
            ) => join_max(a, b) | join_max(r, s),
            (
                Body::ListItem {
                    origin: oa,
                    value: a,
                },
                Body::ListItem {
                    origin: ob,
                    value: b,
                },
            ) => {
                // One stamp, two origins: only an equivocating author makes that; the greater
                // wins everywhere.
                let moved = *ob > *oa;
                if moved {
                    *oa = *ob;
                }
                moved | join_lww(a, b)
            }
            (Body::TextChar { origin: oa, ch: a }, Body::TextChar { origin: ob, ch: b }) => {
                let replace = (*ob, *b) > (*oa, *a);
                if replace {
                    *oa = *ob;
                    *a = *b;
                }
                replace
            }
            _ => false,
        }
    }
}

fn join_max<V: Ord + Copy>(a: &mut BTreeMap<MemberId, V>, b: &BTreeMap<MemberId, V>) -> bool {
    let mut changed = false;
    for (k, v) in b {
        match a.entry(*k) {
            Entry::Vacant(e) => {
                e.insert(*v);
                changed = true;
            }
            Entry::Occupied(mut e) => {
                if v > e.get() {
                    e.insert(*v);
                    changed = true;
                }
            }
        }
    }
    changed
}

fn join_lww(a: &mut Option<Lww>, b: &Option<Lww>) -> bool {
    match (a.as_ref(), b) {
        (_, None) => false,
        (Some(x), Some(y)) if x >= y => false,
        (_, Some(y)) => {
            *a = Some(y.clone());
            true
        }
    }
}

fn union_len<V>(a: &BTreeMap<MemberId, V>, b: &BTreeMap<MemberId, V>) -> usize {
    a.len() + b.keys().filter(|k| !a.contains_key(k)).count()
}

fn check_union<V>(
    a: &BTreeMap<MemberId, V>,
    b: &BTreeMap<MemberId, V>,
    what: &'static str,
    max: usize,
) -> Result<(), StateError> {
    let len = union_len(a, b);
    if len > max {
        return Err(StateError::TooLarge { what, len, max });
    }
    Ok(())
}

/// A state fragment of one entity, or an entity's whole replicated state.
///
/// Every local write records actions; peers [`apply`](crate::State::apply) them; Merkle repair and
/// snapshots ship whole entity states ([`State::entity`](crate::State::entity)) as the same type.
/// An action carries its entity's parent link, key and CRDT type, so it can create the entity
/// where it is missing; the id is derived from them (`H(domain ‖ parent ‖ key)`), never sent.
///
/// Actions are built only by transactions and by decoding, so the id always matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub(crate) id: EntityId,
    pub(crate) parent: Option<EntityId>,
    pub(crate) key: Key,
    pub(crate) meta: Metadata,
    pub(crate) body: Body,
}

impl Action {
    /// An action with an id the caller already derived from `parent` and `key`.
    pub(crate) fn with_id(
        id: EntityId,
        parent: Option<EntityId>,
        key: Key,
        meta: Metadata,
        body: Body,
    ) -> Action {
        let a = Action {
            id,
            parent,
            key,
            meta,
            body,
        };
        debug_assert_eq!(
            a.derive_id(),
            id,
            "entity id must be derived from parent and key"
        );
        a
    }

    fn derive_id(&self) -> EntityId {
        match (&self.key, self.parent) {
            (Key::Elem(s), Some(p)) => element_id(p, *s),
            (Key::Elem(s), None) => element_id(EntityId::default(), *s),
            (Key::Name(k), parent) => name_id(parent, k, self.kind()),
        }
    }

    /// The entity.
    pub fn id(&self) -> EntityId {
        self.id
    }

    /// Its parent (`None`: a root-level field).
    pub fn parent(&self) -> Option<EntityId> {
        self.parent
    }

    /// Its key under the parent.
    pub fn key(&self) -> EntityKey<'_> {
        match &self.key {
            Key::Name(k) => EntityKey::Name(k),
            Key::Elem(s) => EntityKey::Element(*s),
        }
    }

    /// Its CRDT type.
    pub fn kind(&self) -> CrdtKind {
        self.body.kind()
    }

    /// Its replicated metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The newest stamp anywhere in this state: metadata (created, updated, deleted), the element
    /// key, and the body's value stamps and set tags. An entity whose newest stamp is older than a
    /// replica's GC horizon is *ancient* there (see [`State::collect_garbage`](crate::State::collect_garbage)).
    pub fn newest_stamp(&self) -> Stamp {
        let m = &self.meta;
        let mut n = m.created.max(m.updated);
        n = n.max(m.deleted.unwrap_or_default());
        n = n.max(self.elem().unwrap_or_default());
        let lww = |v: &Option<Lww>| v.as_ref().map(|l| l.stamp).unwrap_or_default();
        let body = match &self.body {
            Body::Register(v) | Body::ListItem { value: v, .. } => lww(v),
            Body::SetMember { added, removed } => added
                .values()
                .chain(removed.values())
                .copied()
                .max()
                .unwrap_or_default(),
            _ => Stamp::default(),
        };
        n.max(body)
    }

    /// What kind of change this describes, judged from the action alone (informational: a
    /// header refreshing an existing container reads as `Add`).
    pub fn op(&self) -> ActionOp {
        match self.meta.deleted {
            Some(d) if d >= self.meta.updated => ActionOp::Delete,
            _ if self.meta.created == self.meta.updated => ActionOp::Add,
            _ => ActionOp::Update,
        }
    }

    /// Joins `other` (a state of the same entity) into `self`: the least upper bound of both.
    /// Returns whether `self` changed. Commutative, associative and idempotent.
    ///
    /// Refused, leaving `self` unchanged, when the entities or their types differ, or when the
    /// join would be over a bound.
    ///
    /// Two contents under one element stamp (a list item's origin, a text character's origin and
    /// character) can only come from an author that reused a stamp — an equivocating, hostile
    /// member: the join keeps the greater of the two (a total order), so every replica ends with
    /// the same element whatever it received first.
    pub fn join(&mut self, other: &Action) -> Result<bool, StateError> {
        if self.id != other.id {
            return Err(StateError::DifferentEntities {
                left: self.id,
                right: other.id,
            });
        }
        self.check_join(other)?;
        let meta = self.meta.join(&other.meta);
        let body = self.body.join(&other.body);
        Ok(meta | body)
    }

    fn check_join(&self, other: &Action) -> Result<(), StateError> {
        let (existing, incoming) = (self.kind(), other.kind());
        if existing != incoming {
            return Err(StateError::KindMismatch {
                id: self.id,
                existing,
                incoming,
            });
        }
        match (&self.body, &other.body) {
            (Body::GCounter(a), Body::GCounter(b)) => {
                check_union(a, b, "counter slots", MAX_COUNTER_SLOTS)
            }
            (Body::PnCounter { inc: a, dec: b }, Body::PnCounter { inc: c, dec: d }) => {
                check_union(a, c, "counter slots", MAX_COUNTER_SLOTS)?;
                check_union(b, d, "counter slots", MAX_COUNTER_SLOTS)
            }
            (
                Body::SetMember {
                    added: a,
                    removed: r,
                },
                Body::SetMember {
                    added: b,
                    removed: s,
                },
            ) => {
                check_union(a, b, "set member tags", MAX_SET_TAGS)?;
                check_union(r, s, "set member tags", MAX_SET_TAGS)
            }
            _ => Ok(()),
        }
    }

    /// The element stamp of a list item or text character.
    pub(crate) fn elem(&self) -> Option<Stamp> {
        match self.key {
            Key::Elem(s) => Some(s),
            Key::Name(_) => None,
        }
    }

    /// The origin (left neighbour at insertion) of a list item or text character.
    pub(crate) fn origin(&self) -> Option<Stamp> {
        match self.body {
            Body::ListItem { origin, .. } | Body::TextChar { origin, .. } => origin,
            _ => None,
        }
    }

    /// Whether the entity is visible, given the effective tombstone of its parent (the newest
    /// tombstone of the parent and all its ancestors).
    pub(crate) fn live(&self, parent_tomb: Option<Stamp>) -> bool {
        let m = &self.meta;
        match &self.body {
            Body::SetMember { added, removed } => added
                .iter()
                .any(|(w, a)| Some(*a) > removed.get(w).copied() && Some(*a) > parent_tomb),
            Body::TextChar { .. } => m.deleted.is_none() && self.elem() > parent_tomb,
            Body::Register(v) | Body::ListItem { value: v, .. } => {
                v.is_some() && Some(m.updated) > max_opt(m.deleted, parent_tomb)
            }
            _ => Some(m.updated) > max_opt(m.deleted, parent_tomb),
        }
    }

    /// The hash of everything replicated about the entity (the Merkle "own hash").
    pub(crate) fn own_hash(&self) -> Hash {
        let mut w = Writer::unversioned();
        self.encode(&mut w);
        hash_parts(D_OWN, &[w.as_slice()])
    }

    /// The versioned encoding of one action (the stored form of an entity).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.finish()
    }

    /// Decodes [`to_bytes`](Action::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Action, StateError> {
        let mut r = Reader::new(bytes)?;
        let a = Action::decode(&mut r)?;
        r.finish()?;
        Ok(a)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match self.parent {
            None => w.u8(0),
            Some(p) => w.u8(1).id(&p),
        };
        w.u8(self.kind().tag());
        match &self.key {
            Key::Name(k) => w.bytes(k),
            Key::Elem(s) => w.raw(&s.to_bytes()),
        };
        self.meta.created.encode(w);
        self.meta.updated.encode(w);
        encode_opt_stamp(w, self.meta.deleted);
        match &self.body {
            Body::Register(v) => encode_opt_lww(w, v),
            Body::GCounter(s) => encode_slots(w, s),
            Body::PnCounter { inc, dec } => {
                encode_slots(w, inc);
                encode_slots(w, dec);
            }
            Body::Map | Body::Set | Body::List | Body::Text => {}
            Body::SetMember { added, removed } => {
                encode_tags(w, added);
                encode_tags(w, removed);
            }
            Body::ListItem { origin, value } => {
                encode_opt_stamp(w, *origin);
                encode_opt_lww(w, value);
            }
            Body::TextChar { origin, ch } => {
                encode_opt_stamp(w, *origin);
                w.u32(u32::from(*ch));
            }
        }
    }

    /// The encoded length of this action without the version byte (so one less than
    /// [`to_bytes`](Action::to_bytes)`.len()`), computed without encoding: for budgets and bounds.
    pub fn encoded_len(&self) -> usize {
        const STAMP: usize = Stamp::ENCODED_LEN;
        let opt_stamp = |s: &Option<Stamp>| 1 + s.map_or(0, |_| STAMP);
        let opt_lww = |v: &Option<Lww>| 1 + v.as_ref().map_or(0, |v| STAMP + 4 + v.value.len());
        let slots = |s: &Slots| 4 + s.len() * (32 + 8);
        let tags = |t: &Tags| 4 + t.len() * STAMP;
        let parent = 1 + self.parent.map_or(0, |_| 32);
        let key = match &self.key {
            Key::Name(k) => 4 + k.len(),
            Key::Elem(_) => STAMP,
        };
        let meta = 2 * STAMP + opt_stamp(&self.meta.deleted);
        let body = match &self.body {
            Body::Register(v) => opt_lww(v),
            Body::GCounter(s) => slots(s),
            Body::PnCounter { inc, dec } => slots(inc) + slots(dec),
            Body::Map | Body::Set | Body::List | Body::Text => 0,
            Body::SetMember { added, removed } => tags(added) + tags(removed),
            Body::ListItem { origin, value } => opt_stamp(origin) + opt_lww(value),
            Body::TextChar { origin, .. } => opt_stamp(origin) + 4,
        };
        parent + 1 + key + meta + body
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Action, StateError> {
        let parent = if r.bool()? {
            Some(r.id::<EntityId>()?)
        } else {
            None
        };
        let kind = CrdtKind::from_tag(r.u8()?)?;
        let key = if matches!(kind, CrdtKind::ListItem | CrdtKind::TextChar) {
            Key::Elem(Stamp::decode(r)?)
        } else {
            Key::Name(r.bytes("key", MAX_KEY_LEN)?.into())
        };
        if kind.is_element_like() && parent.is_none() {
            return Err(CodecError::Invalid("set member or element without a parent").into());
        }
        let meta = Metadata {
            created: Stamp::decode(r)?,
            updated: Stamp::decode(r)?,
            deleted: decode_opt_stamp(r)?,
        };
        let body = match kind {
            CrdtKind::Register => Body::Register(decode_opt_lww(r)?),
            CrdtKind::GCounter => Body::GCounter(decode_slots(r)?),
            CrdtKind::PnCounter => Body::PnCounter {
                inc: decode_slots(r)?,
                dec: decode_slots(r)?,
            },
            CrdtKind::Map => Body::Map,
            CrdtKind::Set => Body::Set,
            CrdtKind::List => Body::List,
            CrdtKind::Text => Body::Text,
            CrdtKind::SetMember => Body::SetMember {
                added: decode_tags(r)?,
                removed: decode_tags(r)?,
            },
            CrdtKind::ListItem => Body::ListItem {
                origin: decode_opt_stamp(r)?,
                value: decode_opt_lww(r)?,
            },
            CrdtKind::TextChar => {
                let origin = decode_opt_stamp(r)?;
                let ch = char::from_u32(r.u32()?).ok_or(CodecError::Invalid("character"))?;
                Body::TextChar { origin, ch }
            }
        };
        let mut a = Action {
            id: EntityId::default(),
            parent,
            key,
            meta,
            body,
        };
        a.id = a.derive_id();
        if let (Some(elem), Some(origin)) = (a.elem(), a.origin()) {
            if origin >= elem {
                return Err(StateError::InvalidOrigin { id: a.id });
            }
        }
        Ok(a)
    }
}

/// The smallest possible encoded action (root-level container, empty key, no tombstone).
const MIN_ACTION_LEN: usize = 1 + 1 + 4 + 2 * Stamp::ENCODED_LEN + 1;

/// Encodes a list of actions (one delta's payload) with the versioned codec.
///
/// Bounds: at most [`MAX_ACTIONS`] actions; keys, values, counter slots and set tags within
/// [`MAX_KEY_LEN`], [`MAX_VALUE_LEN`], [`MAX_COUNTER_SLOTS`], [`MAX_SET_TAGS`]. Actions built by a
/// transaction are always within the per-action bounds.
pub fn encode_actions(actions: &[Action]) -> Result<Vec<u8>, StateError> {
    if actions.len() > MAX_ACTIONS {
        return Err(StateError::TooLarge {
            what: "actions",
            len: actions.len(),
            max: MAX_ACTIONS,
        });
    }
    let mut w = Writer::new();
    w.len(actions.len());
    for a in actions {
        a.encode(&mut w);
    }
    Ok(w.finish())
}

/// Decodes [`encode_actions`]. Every bound is checked before anything is allocated; an unknown
/// version byte is [`CodecError::UnknownVersion`].
pub fn decode_actions(bytes: &[u8]) -> Result<Vec<Action>, StateError> {
    let mut r = Reader::new(bytes)?;
    let n = r.count("actions", MAX_ACTIONS, MIN_ACTION_LEN)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Action::decode(&mut r)?);
    }
    r.finish()?;
    Ok(out)
}

fn encode_opt_stamp(w: &mut Writer, s: Option<Stamp>) {
    match s {
        None => {
            w.u8(0);
        }
        Some(s) => {
            w.u8(1);
            s.encode(w);
        }
    }
}

fn decode_opt_stamp(r: &mut Reader<'_>) -> Result<Option<Stamp>, CodecError> {
    Ok(if r.bool()? {
        Some(Stamp::decode(r)?)
    } else {
        None
    })
}

fn encode_opt_lww(w: &mut Writer, v: &Option<Lww>) {
    match v {
        None => {
            w.u8(0);
        }
        Some(v) => {
            w.u8(1);
            v.stamp.encode(w);
            w.bytes(&v.value);
        }
    }
}

fn decode_opt_lww(r: &mut Reader<'_>) -> Result<Option<Lww>, CodecError> {
    if !r.bool()? {
        return Ok(None);
    }
    let stamp = Stamp::decode(r)?;
    let value = r.bytes("value", MAX_VALUE_LEN)?.into();
    Ok(Some(Lww { stamp, value }))
}

fn encode_slots(w: &mut Writer, slots: &Slots) {
    w.len(slots.len());
    for (m, v) in slots {
        w.id(m).u64(*v);
    }
}

/// Slots in any order; a repeated member keeps its largest value (the join), so every encoding of
/// a state decodes to that state.
fn decode_slots(r: &mut Reader<'_>) -> Result<Slots, CodecError> {
    let n = r.count("counter slots", MAX_COUNTER_SLOTS, 40)?;
    let mut slots = Slots::new();
    for _ in 0..n {
        let m: MemberId = r.id()?;
        let v = r.u64()?;
        let e = slots.entry(m).or_insert(v);
        *e = (*e).max(v);
    }
    Ok(slots)
}

fn encode_tags(w: &mut Writer, tags: &Tags) {
    w.len(tags.len());
    for s in tags.values() {
        s.encode(w);
    }
}

/// Tags as stamps; each writer keeps its newest (the join).
fn decode_tags(r: &mut Reader<'_>) -> Result<Tags, CodecError> {
    let n = r.count("set member tags", MAX_SET_TAGS, Stamp::ENCODED_LEN)?;
    let mut tags = Tags::new();
    for _ in 0..n {
        let s = Stamp::decode(r)?;
        let e = tags.entry(s.writer).or_insert(s);
        *e = (*e).max(s);
    }
    Ok(tags)
}
