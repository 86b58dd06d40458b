//! Transactions: local writes through typed collection handles.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;

use tabmesh_base::{EntityId, Hlc, MemberId, WriteBatch};

use crate::entity::{Body, Key, Lww, Slots, Tags};
use crate::ids::{element_id, member_id};
use crate::limits::{MAX_ACTIONS, MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::read::{CounterRef, ListRef, MapRef, PnCounterRef, RegisterRef, SetRef, TextRef};
use crate::stamp::max_opt;
use crate::state::Session;
use crate::{Action, CrdtKind, Metadata, Stamp, State, StateError};

/// One link of the path from the root to a handle's collection.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    id: EntityId,
    key: Key,
    kind: CrdtKind,
}

/// The ancestors of a handle's entity (root-level first) and the entity itself. Writes create or
/// refresh every ancestor in the same transaction, so each commit is self-contained.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    ancestors: Vec<Link>,
    target: Link,
}

impl Path {
    fn depth(&self) -> usize {
        self.ancestors.len() + 1
    }

    fn parent(&self) -> Option<EntityId> {
        self.ancestors.last().map(|l| l.id)
    }

    fn child(&self, id: EntityId, key: Key, kind: CrdtKind) -> Path {
        let mut ancestors = Vec::with_capacity(self.ancestors.len() + 1);
        ancestors.extend(self.ancestors.iter().cloned());
        ancestors.push(self.target.clone());
        Path {
            ancestors,
            target: Link { id, key, kind },
        }
    }
}

/// What a transaction produced: the actions to broadcast, the batch to persist, and the largest
/// HLC it stamped (feed it to [`HlcClock::observe`](tabmesh_base::HlcClock::observe) when it is
/// larger than the transaction's HLC, which happens when a write was lifted above a newer one it
/// observed).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Commit {
    /// One action per changed entity, parents before children.
    pub actions: Vec<Action>,
    /// The new record of every changed entity.
    pub batch: WriteBatch,
    /// The largest HLC in any stamp of this transaction.
    pub last_hlc: Hlc,
}

/// A local transaction: typed handles to collections, by field name or by key path under map
/// entries. Every write joins a small state fragment into the state through the same path as remote
/// actions (so reads inside the transaction see it and the root hash is current after each write)
/// and records it; [`commit`](Txn::commit) returns the recorded actions and one write batch.
///
/// Dropping a transaction without committing undoes all of its writes.
///
/// Stamps: write `i` of a transaction is stamped `(hlc, author, i)`. When the target already holds
/// something newer (a peer with a faster clock), the stamp is lifted just above it, so a local write
/// always supersedes what its writer observed. Use a fresh [`HlcClock::tick`](tabmesh_base::HlcClock::tick)
/// for every transaction.
pub struct Txn<'s> {
    state: &'s mut State,
    sess: Session,
    author: MemberId,
    hlc: Hlc,
    seq: u32,
    last_hlc: Hlc,
    frags: BTreeMap<EntityId, Action>,
    order: Vec<EntityId>,
    done: bool,
}

impl fmt::Debug for Txn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn")
            .field("author", &self.author)
            .field("hlc", &self.hlc)
            .field("actions", &self.frags.len())
            .finish()
    }
}

impl State {
    /// Starts a transaction by `author` at `hlc`.
    pub fn txn(&mut self, author: MemberId, hlc: Hlc) -> Txn<'_> {
        Txn {
            state: self,
            sess: Session::default(),
            author,
            hlc,
            seq: 0,
            last_hlc: hlc,
            frags: BTreeMap::new(),
            order: Vec::new(),
            done: false,
        }
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.done {
            let sess = std::mem::take(&mut self.sess);
            self.state.rollback(sess);
        }
    }
}

/// Builds a typed write handle from a path.
trait MutHandle<'t, 's> {
    const KIND: CrdtKind;
    fn make(txn: &'t mut Txn<'s>, path: Path) -> Self;
}

impl<'s> Txn<'s> {
    /// The state as the transaction left it so far (for reads).
    pub fn state(&self) -> &State {
        self.state
    }

    /// The author of every write.
    pub fn author(&self) -> MemberId {
        self.author
    }

    /// Number of actions recorded so far.
    pub fn len(&self) -> usize {
        self.frags.len()
    }

    /// Nothing recorded yet.
    pub fn is_empty(&self) -> bool {
        self.frags.is_empty()
    }

    /// The size of the actions recorded so far once encoded ([`encode_actions`](crate::encode_actions)
    /// adds a few bytes of framing): lets a caller refuse a transaction too large for one delta
    /// before committing it.
    pub fn encoded_len(&self) -> usize {
        // Each as its versioned encoding (one version byte) plus four bytes.
        self.frags.values().map(|a| 1 + a.encoded_len() + 4).sum()
    }

    /// Ends the transaction: returns its actions (parents first) and its write batch.
    pub fn commit(mut self) -> Commit {
        self.done = true;
        self.state.flush();
        let sess = std::mem::take(&mut self.sess);
        let batch = self.state.batch(&sess);
        let mut order = std::mem::take(&mut self.order);
        let mut frags = std::mem::take(&mut self.frags);
        order.sort_by_key(|id| self.state.get(id).map_or(0, |e| e.depth));
        let actions = order
            .into_iter()
            .filter_map(|id| frags.remove(&id))
            .collect();
        Commit {
            actions,
            batch,
            last_hlc: self.last_hlc,
        }
    }

    /// Undoes every write of the transaction (same as dropping it).
    pub fn abort(self) {}

    fn root<'t, H: MutHandle<'t, 's>>(&'t mut self, field: &str) -> Result<H, StateError> {
        let (id, _) = self.state.check_child(None, 0, field.as_bytes(), H::KIND)?;
        let target = Link {
            id,
            key: Key::Name(field.as_bytes().into()),
            kind: H::KIND,
        };
        Ok(H::make(
            self,
            Path {
                ancestors: Vec::new(),
                target,
            },
        ))
    }

    /// The root-level last-writer-wins register `field`.
    pub fn register(&mut self, field: &str) -> Result<RegisterMut<'_, 's>, StateError> {
        self.root(field)
    }

    /// The root-level grow-only counter `field`.
    pub fn counter(&mut self, field: &str) -> Result<CounterMut<'_, 's>, StateError> {
        self.root(field)
    }

    /// The root-level PN-counter `field`.
    pub fn pn_counter(&mut self, field: &str) -> Result<PnCounterMut<'_, 's>, StateError> {
        self.root(field)
    }

    /// The root-level map `field`.
    pub fn map(&mut self, field: &str) -> Result<MapMut<'_, 's>, StateError> {
        self.root(field)
    }

    /// The root-level add-wins set `field`.
    pub fn set(&mut self, field: &str) -> Result<SetMut<'_, 's>, StateError> {
        self.root(field)
    }

    /// The root-level list `field`.
    pub fn list(&mut self, field: &str) -> Result<ListMut<'_, 's>, StateError> {
        self.root(field)
    }

    /// The root-level text `field`.
    pub fn text(&mut self, field: &str) -> Result<TextMut<'_, 's>, StateError> {
        self.root(field)
    }

    fn reserve(&self, n: usize) -> Result<(), StateError> {
        let len = self.frags.len().saturating_add(n);
        if len > MAX_ACTIONS {
            return Err(StateError::TooLarge {
                what: "actions",
                len,
                max: MAX_ACTIONS,
            });
        }
        Ok(())
    }

    /// The next stamp, lifted above `observed` when that is not older.
    fn stamp(&mut self, observed: Option<Stamp>) -> Result<Stamp, StateError> {
        self.seq = self.seq.checked_add(1).ok_or(StateError::TooLarge {
            what: "writes in one transaction",
            len: u32::MAX as usize,
            max: u32::MAX as usize - 1,
        })?;
        let base = Stamp::new(self.hlc, self.author, self.seq);
        let s = match observed {
            Some(o) if o >= base => {
                let same = Stamp::new(o.hlc, self.author, self.seq);
                if same > o {
                    same
                } else {
                    Stamp::new(o.hlc.successor(), self.author, self.seq)
                }
            }
            _ => base,
        };
        self.last_hlc = self.last_hlc.max(s.hlc);
        Ok(s)
    }

    /// The newest stamp a write to `path`'s target must supersede: its last write or the
    /// effective tombstone over it.
    fn observed(&self, path: &Path) -> Option<Stamp> {
        match self.state.get(&path.target.id) {
            Some(e) => max_opt(Some(e.state.meta.updated), e.tomb),
            None => path
                .ancestors
                .iter()
                .rev()
                .find_map(|l| self.state.get(&l.id))
                .and_then(|e| e.tomb),
        }
    }

    /// Joins one fragment into the state and into the transaction's actions.
    fn record(&mut self, frag: Action) -> Result<(), StateError> {
        if !self.frags.contains_key(&frag.id) {
            self.reserve(1)?;
        }
        self.state.join(&mut self.sess, &frag)?;
        match self.frags.entry(frag.id) {
            Entry::Occupied(mut e) => {
                e.get_mut().join(&frag)?;
            }
            Entry::Vacant(e) => {
                self.order.push(frag.id);
                e.insert(frag);
            }
        }
        Ok(())
    }

    /// Records a header for every ancestor of `path` (and the target itself when `with_target`):
    /// bumped to `ping` for a write, or as observed for a delete. This makes the commit carry the
    /// whole parent chain, so a peer can apply it whatever it received before.
    fn headers(
        &mut self,
        path: &Path,
        with_target: bool,
        ping: Option<Stamp>,
    ) -> Result<(), StateError> {
        let mut parent = None;
        for link in path
            .ancestors
            .iter()
            .chain(with_target.then_some(&path.target))
        {
            let meta = match (ping, self.state.get(&link.id)) {
                (Some(s), _) => Metadata::at(s),
                (None, Some(e)) => e.state.meta,
                (None, None) => {
                    let parent = parent.unwrap_or_default();
                    return Err(StateError::MissingParent {
                        id: link.id,
                        parent,
                    });
                }
            };
            let body = Body::empty(link.kind).ok_or(StateError::InvalidChild {
                id: link.id,
                parent: None,
                child: link.kind,
            })?;
            self.record(Action::with_id(
                link.id,
                parent,
                link.key.clone(),
                meta,
                body,
            ))?;
            parent = Some(link.id);
        }
        Ok(())
    }

    /// Writes `body` (with metadata for a write at a fresh stamp) to the target of `path`.
    fn write(&mut self, path: &Path, body: impl FnOnce(Stamp) -> Body) -> Result<(), StateError> {
        self.op(|t| t.write_inner(path, body))
    }

    fn write_inner(
        &mut self,
        path: &Path,
        body: impl FnOnce(Stamp) -> Body,
    ) -> Result<(), StateError> {
        self.reserve(path.depth())?;
        let s = self.stamp(self.observed(path))?;
        self.headers(path, false, Some(s))?;
        let t = &path.target;
        let frag = Action::with_id(t.id, path.parent(), t.key.clone(), Metadata::at(s), body(s));
        self.record(frag)
    }

    /// Deletes the target of `path` if it is visible: a tombstone newer than what it observed.
    fn delete(&mut self, path: &Path) -> Result<bool, StateError> {
        self.op(|t| t.delete_inner(path, Body::bottom))
    }

    /// The tombstone fragment's body is `body(current body)`: the bottom, or for a set member the
    /// add tags being removed.
    fn delete_inner(
        &mut self,
        path: &Path,
        body: impl FnOnce(&Body) -> Body,
    ) -> Result<bool, StateError> {
        let Some(e) = self.state.get(&path.target.id) else {
            return Ok(false);
        };
        if !e.live {
            return Ok(false);
        }
        let observed = max_opt(Some(e.state.meta.updated), e.tomb);
        let (meta, body) = (e.state.meta, body(&e.state.body));
        self.reserve(path.depth())?;
        let s = self.stamp(observed)?;
        self.headers(path, false, None)?;
        let t = &path.target;
        let meta = Metadata {
            deleted: Some(s),
            ..meta
        };
        self.record(Action::with_id(
            t.id,
            path.parent(),
            t.key.clone(),
            meta,
            body,
        ))?;
        Ok(true)
    }

    /// Creates (or refreshes) the target container and its ancestors without other content.
    fn ensure(&mut self, path: &Path) -> Result<(), StateError> {
        self.op(|t| t.ensure_inner(path))
    }

    fn ensure_inner(&mut self, path: &Path) -> Result<(), StateError> {
        self.reserve(path.depth())?;
        let s = self.stamp(self.observed(path))?;
        self.headers(path, true, Some(s))
    }

    /// Runs one handle operation, then brings every hash up to date (also when it failed half
    /// way: what it joined before failing stays joined and recorded, consistently).
    fn op<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let result = f(self);
        self.state.flush();
        result
    }

    fn child<'t, H: MutHandle<'t, 's>>(
        &'t mut self,
        parent: &Path,
        key: &[u8],
    ) -> Result<H, StateError> {
        let (id, _) =
            self.state
                .check_child(Some(parent.target.id), parent.depth(), key, H::KIND)?;
        let path = parent.child(id, Key::Name(key.into()), H::KIND);
        Ok(H::make(self, path))
    }
}

fn check_value(value: &[u8]) -> Result<(), StateError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StateError::TooLarge {
            what: "value",
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        pub struct $name<'t, 's> {
            txn: &'t mut Txn<'s>,
            path: Path,
        }

        impl<'t, 's> MutHandle<'t, 's> for $name<'t, 's> {
            const KIND: CrdtKind = $kind;
            fn make(txn: &'t mut Txn<'s>, path: Path) -> Self {
                $name { txn, path }
            }
        }

        impl fmt::Debug for $name<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("id", &self.path.target.id).finish()
            }
        }

        impl $name<'_, '_> {
            /// The entity id of this collection.
            pub fn id(&self) -> EntityId {
                self.path.target.id
            }
        }
    };
}

handle!(
    /// Write handle to a last-writer-wins register; see [`RegisterRef`] for the semantics.
    RegisterMut,
    CrdtKind::Register
);
handle!(
    /// Write handle to a grow-only counter; see [`CounterRef`] for the semantics.
    CounterMut,
    CrdtKind::GCounter
);
handle!(
    /// Write handle to a PN-counter; see [`PnCounterRef`] for the semantics.
    PnCounterMut,
    CrdtKind::PnCounter
);
handle!(
    /// Write handle to a map; see [`MapRef`] for the semantics.
    MapMut,
    CrdtKind::Map
);
handle!(
    /// Write handle to an add-wins set; see [`SetRef`] for the semantics.
    SetMut,
    CrdtKind::Set
);
handle!(
    /// Write handle to an RGA list; see [`ListRef`] for the semantics.
    ListMut,
    CrdtKind::List
);
handle!(
    /// Write handle to an RGA text; see [`TextRef`] for the semantics.
    TextMut,
    CrdtKind::Text
);

impl RegisterMut<'_, '_> {
    /// Sets the value.
    pub fn set(&mut self, value: &[u8]) -> Result<(), StateError> {
        check_value(value)?;
        self.txn.write(&self.path, |s| {
            Body::Register(Some(Lww {
                stamp: s,
                value: value.into(),
            }))
        })
    }

    /// Deletes the value (a tombstone); returns whether there was a visible value.
    pub fn clear(&mut self) -> Result<bool, StateError> {
        self.txn.delete(&self.path)
    }

    /// Reads it.
    pub fn view(&self) -> RegisterRef<'_> {
        RegisterRef::new(self.txn.state, self.path.target.id)
    }
}

fn slot(state: &State, id: &EntityId, author: &MemberId, negative: bool) -> u64 {
    let slots = state.get(id).and_then(|e| match &e.state.body {
        Body::GCounter(s) => Some(s),
        Body::PnCounter { inc, dec } => Some(if negative { dec } else { inc }),
        _ => None,
    });
    slots.and_then(|s| s.get(author)).copied().unwrap_or(0)
}

impl CounterMut<'_, '_> {
    /// Adds `by` to this member's slot; the action carries the slot's new absolute value.
    pub fn increment(&mut self, by: u64) -> Result<(), StateError> {
        if by == 0 {
            return Ok(());
        }
        let (id, author) = (self.path.target.id, self.txn.author);
        let value = slot(self.txn.state, &id, &author, false)
            .checked_add(by)
            .ok_or(StateError::CounterOverflow { id })?;
        self.txn.write(&self.path, |_| {
            Body::GCounter(Slots::from([(author, value)]))
        })
    }

    /// Reads it.
    pub fn view(&self) -> CounterRef<'_> {
        CounterRef::new(self.txn.state, self.path.target.id)
    }
}

impl PnCounterMut<'_, '_> {
    /// Adds `delta` (negative to decrement) to this member's increment or decrement slot; the
    /// action carries that slot's new absolute value.
    pub fn add(&mut self, delta: i64) -> Result<(), StateError> {
        if delta == 0 {
            return Ok(());
        }
        let (id, author) = (self.path.target.id, self.txn.author);
        let negative = delta < 0;
        let value = slot(self.txn.state, &id, &author, negative)
            .checked_add(delta.unsigned_abs())
            .ok_or(StateError::CounterOverflow { id })?;
        let one = Slots::from([(author, value)]);
        self.txn.write(&self.path, |_| {
            if negative {
                Body::PnCounter {
                    inc: Slots::new(),
                    dec: one,
                }
            } else {
                Body::PnCounter {
                    inc: one,
                    dec: Slots::new(),
                }
            }
        })
    }

    /// Reads it.
    pub fn view(&self) -> PnCounterRef<'_> {
        PnCounterRef::new(self.txn.state, self.path.target.id)
    }
}

impl<'s> MapMut<'_, 's> {
    /// The register entry `key`.
    pub fn register(&mut self, key: &[u8]) -> Result<RegisterMut<'_, 's>, StateError> {
        self.txn.child(&self.path, key)
    }

    /// The grow-only counter entry `key`.
    pub fn counter(&mut self, key: &[u8]) -> Result<CounterMut<'_, 's>, StateError> {
        self.txn.child(&self.path, key)
    }

    /// The PN-counter entry `key`.
    pub fn pn_counter(&mut self, key: &[u8]) -> Result<PnCounterMut<'_, 's>, StateError> {
        self.txn.child(&self.path, key)
    }

    /// The map entry `key` (a nested map).
    pub fn map(&mut self, key: &[u8]) -> Result<MapMut<'_, 's>, StateError> {
        self.txn.child(&self.path, key)
    }

    /// The set entry `key`.
    pub fn set(&mut self, key: &[u8]) -> Result<SetMut<'_, 's>, StateError> {
        self.txn.child(&self.path, key)
    }

    /// The list entry `key`.
    pub fn list(&mut self, key: &[u8]) -> Result<ListMut<'_, 's>, StateError> {
        self.txn.child(&self.path, key)
    }

    /// The text entry `key`.
    pub fn text(&mut self, key: &[u8]) -> Result<TextMut<'_, 's>, StateError> {
        self.txn.child(&self.path, key)
    }

    /// Sets the register entry `key` to `value`.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.register(key)?.set(value)
    }

    /// Deletes the entry `key`, whatever its type: a tombstone that hides it and everything in it
    /// that is older. Returns whether a visible entry was there.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, StateError> {
        let id = crate::ids::entry_id(self.path.target.id, key);
        let Some(kind) = self.txn.state.get(&id).map(|e| e.state.kind()) else {
            return Ok(false);
        };
        let path = self.path.child(id, Key::Name(key.into()), kind);
        self.txn.delete(&path)
    }

    /// Makes the map exist (and visible again if it was deleted) even with no entries.
    pub fn ensure(&mut self) -> Result<(), StateError> {
        self.txn.ensure(&self.path)
    }

    /// Reads it.
    pub fn view(&self) -> MapRef<'_> {
        MapRef::new(self.txn.state, self.path.target.id, self.path.depth())
    }
}

impl SetMut<'_, '_> {
    fn member(&self, value: &[u8]) -> Result<Path, StateError> {
        if value.len() > MAX_KEY_LEN {
            return Err(StateError::TooLarge {
                what: "set member",
                len: value.len(),
                max: MAX_KEY_LEN,
            });
        }
        let id = member_id(self.path.target.id, value);
        Ok(self
            .path
            .child(id, Key::Name(value.into()), CrdtKind::SetMember))
    }

    /// Adds `value` with a fresh tag of this member.
    pub fn add(&mut self, value: &[u8]) -> Result<(), StateError> {
        let path = self.member(value)?;
        let author = self.txn.author;
        self.txn.write(&path, |s| Body::SetMember {
            added: Tags::from([(author, s)]),
            removed: Tags::new(),
        })
    }

    /// Removes `value`: the action carries every add tag this replica observed, so concurrent
    /// adds it did not observe survive (add wins). Returns whether it was present.
    pub fn remove(&mut self, value: &[u8]) -> Result<bool, StateError> {
        let path = self.member(value)?;
        self.txn.op(|txn| {
            txn.delete_inner(&path, |body| match body {
                Body::SetMember { added, .. } => Body::SetMember {
                    added: Tags::new(),
                    removed: added.clone(),
                },
                other => other.bottom(),
            })
        })
    }

    /// Makes the set exist (and visible again if it was deleted) even when empty.
    pub fn ensure(&mut self) -> Result<(), StateError> {
        self.txn.ensure(&self.path)
    }

    /// Reads it.
    pub fn view(&self) -> SetRef<'_> {
        SetRef::new(self.txn.state, self.path.target.id)
    }
}

/// Shared by lists and texts: the element order of the target.
fn seq_info(txn: &Txn<'_>, path: &Path) -> (usize, Option<Stamp>) {
    let seq = txn.state.seq(&path.target.id);
    (seq.map_or(0, |s| s.len()), seq.and_then(|s| s.max()))
}

fn nth_elem(txn: &Txn<'_>, path: &Path, index: usize) -> Result<(EntityId, Stamp), StateError> {
    let seq = txn.state.seq(&path.target.id);
    let item = seq.and_then(|s| s.nth(index));
    item.map(|i| (i.id, i.stamp))
        .ok_or(StateError::IndexOutOfRange {
            index,
            len: seq.map_or(0, |s| s.len()),
        })
}

/// The origin for an insertion at visible `index`: the visible element before it.
fn origin_at(txn: &Txn<'_>, path: &Path, index: usize) -> Result<Option<Stamp>, StateError> {
    let (len, _) = seq_info(txn, path);
    if index > len {
        return Err(StateError::IndexOutOfRange { index, len });
    }
    match index.checked_sub(1) {
        None => Ok(None),
        Some(i) => nth_elem(txn, path, i).map(|(_, s)| Some(s)),
    }
}

/// A fresh element stamp: newer than every element of the sequence (so the new element lands
/// right after its origin) and than the tombstone over it.
fn elem_stamp(txn: &mut Txn<'_>, path: &Path) -> Result<Stamp, StateError> {
    let (_, max) = seq_info(txn, path);
    let tomb = txn.state.get(&path.target.id).and_then(|e| e.tomb);
    txn.stamp(max_opt(max, tomb))
}

fn elem_path(path: &Path, stamp: Stamp, kind: CrdtKind) -> Path {
    path.child(element_id(path.target.id, stamp), Key::Elem(stamp), kind)
}

impl ListMut<'_, '_> {
    /// Inserts `value` so that it becomes visible element `index` (`index == len` appends).
    pub fn insert(&mut self, index: usize, value: &[u8]) -> Result<(), StateError> {
        check_value(value)?;
        let list = &self.path;
        self.txn.op(|txn| {
            let origin = origin_at(txn, list, index)?;
            txn.reserve(list.depth() + 1)?;
            let s = elem_stamp(txn, list)?;
            txn.headers(list, true, Some(s))?;
            let path = elem_path(list, s, CrdtKind::ListItem);
            let value = Some(Lww {
                stamp: s,
                value: value.into(),
            });
            let body = Body::ListItem { origin, value };
            let t = &path.target;
            txn.record(Action::with_id(
                t.id,
                path.parent(),
                t.key.clone(),
                Metadata::at(s),
                body,
            ))
        })
    }

    /// Appends `value`.
    pub fn push(&mut self, value: &[u8]) -> Result<(), StateError> {
        let len = self.view().len();
        self.insert(len, value)
    }

    /// Replaces the value of visible element `index` (last writer wins per element).
    pub fn set(&mut self, index: usize, value: &[u8]) -> Result<(), StateError> {
        check_value(value)?;
        let (id, stamp) = nth_elem(self.txn, &self.path, index)?;
        let origin = self.txn.state.get(&id).and_then(|e| e.state.origin());
        let path = elem_path(&self.path, stamp, CrdtKind::ListItem);
        self.txn.write(&path, |s| Body::ListItem {
            origin,
            value: Some(Lww {
                stamp: s,
                value: value.into(),
            }),
        })
    }

    /// Removes visible element `index` (a tombstone; its position stays as an anchor).
    pub fn remove(&mut self, index: usize) -> Result<(), StateError> {
        let (_, stamp) = nth_elem(self.txn, &self.path, index)?;
        let path = elem_path(&self.path, stamp, CrdtKind::ListItem);
        self.txn.delete(&path).map(|_| ())
    }

    /// Makes the list exist (and visible again if it was deleted) even when empty.
    pub fn ensure(&mut self) -> Result<(), StateError> {
        self.txn.ensure(&self.path)
    }

    /// Reads it.
    pub fn view(&self) -> ListRef<'_> {
        ListRef::new(self.txn.state, self.path.target.id)
    }
}

impl TextMut<'_, '_> {
    /// Inserts `text` so that it starts at character position `pos` (`pos == len` appends). The
    /// characters get consecutive stamps, each inserted after the previous one, so a concurrent
    /// insertion at the same position never lands inside the run.
    pub fn insert(&mut self, pos: usize, text: &str) -> Result<(), StateError> {
        if text.is_empty() {
            return Ok(());
        }
        let doc = &self.path;
        self.txn.op(|txn| {
            let mut origin = origin_at(txn, doc, pos)?;
            txn.reserve(text.chars().count().saturating_add(doc.depth()))?;
            let first = elem_stamp(txn, doc)?;
            txn.headers(doc, true, Some(first))?;
            let mut last = first;
            for (i, ch) in text.chars().enumerate() {
                let s = if i == 0 {
                    first
                } else {
                    txn.stamp(Some(last))?
                };
                let id = element_id(doc.target.id, s);
                let body = Body::TextChar { origin, ch };
                txn.record(Action::with_id(
                    id,
                    Some(doc.target.id),
                    Key::Elem(s),
                    Metadata::at(s),
                    body,
                ))?;
                origin = Some(s);
                last = s;
            }
            if last != first {
                // The text's (and its ancestors') last update is the run's last stamp.
                txn.headers(doc, true, Some(last))?;
            }
            Ok(())
        })
    }

    /// Appends `text`.
    pub fn push_str(&mut self, text: &str) -> Result<(), StateError> {
        let len = self.view().len();
        self.insert(len, text)
    }

    /// Deletes `len` characters starting at position `pos`. Deleted characters stay as
    /// tombstones (anchors for concurrent insertions) and never come back.
    pub fn delete(&mut self, pos: usize, len: usize) -> Result<(), StateError> {
        if len == 0 {
            return Ok(());
        }
        let doc = &self.path;
        self.txn.op(|txn| {
            let (total, _) = seq_info(txn, doc);
            let end = pos.saturating_add(len);
            if end > total {
                return Err(StateError::IndexOutOfRange {
                    index: end,
                    len: total,
                });
            }
            txn.reserve(len.saturating_add(doc.depth()))?;
            let seq = txn.state.seq(&doc.target.id);
            let doomed: Vec<(EntityId, Stamp)> = seq
                .into_iter()
                .flat_map(|s| s.iter_from(pos))
                .take(len)
                .map(|i| (i.id, i.stamp))
                .collect();
            txn.headers(doc, true, None)?;
            for (id, stamp) in doomed {
                let Some(e) = txn.state.get(&id) else {
                    continue;
                };
                let (meta, body) = (e.state.meta, e.state.body.bottom());
                let s = txn.stamp(Some(meta.updated))?;
                let meta = Metadata {
                    deleted: Some(s),
                    ..meta
                };
                txn.record(Action::with_id(
                    id,
                    Some(doc.target.id),
                    Key::Elem(stamp),
                    meta,
                    body,
                ))?;
            }
            Ok(())
        })
    }

    /// Makes the text exist (and visible again if it was deleted) even when empty.
    pub fn ensure(&mut self) -> Result<(), StateError> {
        self.txn.ensure(&self.path)
    }

    /// Reads it.
    pub fn view(&self) -> TextRef<'_> {
        TextRef::new(self.txn.state, self.path.target.id)
    }
}
