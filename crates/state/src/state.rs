//! The state: every entity in memory, its Merkle index, and the one join path all changes take.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tabmesh_base::{EntityId, Hash, KvRead, WriteBatch};

use crate::entity::{Body, Key};
use crate::ids::name_id;
use crate::limits::{MAX_ACTIONS, MAX_DEPTH, MAX_KEY_LEN};
use crate::merkle::{node_hash, Trie, TrieNode};
use crate::seq::{Item, Seq};
use crate::stamp::max_opt;
use crate::{Action, CrdtKind, EntityHashes, Metadata, Stamp, StateError};

/// The byte after the caller's prefix that starts every entity record key.
const RECORD_TAG: u8 = b'e';

/// One entity: its replicated state plus what is derived from it (never stored, rebuilt on open).
#[derive(Clone, Debug)]
pub(crate) struct Entity {
    pub(crate) state: Action,
    pub(crate) depth: u8,
    own: Hash,
    own_dirty: bool,
    full: Hash,
    /// Effective tombstone: the newest tombstone of this entity and all its ancestors.
    pub(crate) tomb: Option<Stamp>,
    /// Visible through its parent (see [`Action::live`]).
    pub(crate) live: bool,
    pub(crate) children: Trie,
    /// Element order (lists and texts).
    pub(crate) seq: Option<Box<Seq>>,
    /// Visible children (maps and sets).
    pub(crate) live_children: usize,
}

/// Undo log and touched set of one commit (a transaction or one `apply`).
#[derive(Debug, Default)]
pub(crate) struct Session {
    before: BTreeMap<EntityId, Option<Action>>,
    order: Vec<EntityId>,
    untracked: bool,
}

impl Session {
    fn untracked() -> Session {
        Session {
            untracked: true,
            ..Session::default()
        }
    }

    fn note(&mut self, id: EntityId, before: Option<Action>) {
        if self.untracked {
            return;
        }
        if let std::collections::btree_map::Entry::Vacant(e) = self.before.entry(id) {
            e.insert(before);
            self.order.push(id);
        }
    }
}

/// The replicated state of one context: CRDT entities with a Merkle index.
///
/// The working set lives in memory. [`State::open`] loads it from a [`KvRead`]; every commit (a
/// [`Txn`](crate::Txn) or one [`apply`](State::apply)) yields one [`WriteBatch`] holding the new
/// record of every entity it changed, under the caller's prefix (`prefix ‖ 'e' ‖ id`, values in
/// the versioned codec). Merkle hashes are not stored: `open` recomputes them.
///
/// Invariant: after every public method returns, every hash (and [`root_hash`](State::root_hash))
/// is current, and the state is the join of every action applied so far, whatever their order.
#[derive(Clone)]
pub struct State {
    prefix: Vec<u8>,
    /// Boxed: B-tree nodes stay small, so inserts move pointers rather than whole entities.
    entities: BTreeMap<EntityId, Box<Entity>>,
    roots: Trie,
    root: Hash,
    /// Entities whose full hash is stale, deepest first.
    rehash: BTreeSet<(Reverse<u8>, EntityId)>,
    /// Containers whose effective tombstone changed: their subtrees' visibility is recomputed at
    /// the next flush, once, however many tombstones a batch carried.
    refresh: BTreeSet<EntityId>,
    /// Element orders to rebuild (after undoing an insertion).
    rebuild: BTreeSet<EntityId>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("root", &self.root)
            .field("entities", &self.entities.len())
            .finish()
    }
}

impl State {
    /// An empty state whose records go under `prefix`.
    pub fn new(prefix: &[u8]) -> State {
        State {
            prefix: prefix.to_vec(),
            entities: BTreeMap::new(),
            roots: Trie::default(),
            root: Hash::ZERO,
            rehash: BTreeSet::new(),
            refresh: BTreeSet::new(),
            rebuild: BTreeSet::new(),
        }
    }

    /// Loads the state stored under `prefix` (what earlier write batches persisted).
    ///
    /// Records are validated like remote actions; a record of an unknown codec version is
    /// [`CodecError::UnknownVersion`](tabmesh_base::CodecError::UnknownVersion).
    pub fn open(prefix: &[u8], kv: &impl KvRead) -> Result<State, StateError> {
        let mut state = State::new(prefix);
        let scan = state.record_prefix();
        let rows = kv.scan_prefix(&scan);
        let mut actions = Vec::with_capacity(rows.len());
        for (key, value) in &rows {
            let a = Action::from_bytes(value)?;
            if key.get(scan.len()..) != Some(a.id.as_bytes().as_slice()) {
                return Err(StateError::Corrupt(
                    "a record is stored under another entity's key",
                ));
            }
            actions.push(a);
        }
        drop(rows);
        state.apply_in(&mut Session::untracked(), &actions)?;
        state.flush();
        Ok(state)
    }

    /// The key prefix given at creation.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    fn record_prefix(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 1);
        k.extend_from_slice(&self.prefix);
        k.push(RECORD_TAG);
        k
    }

    /// The storage key of an entity's record.
    pub fn record_key(&self, id: &EntityId) -> Vec<u8> {
        let mut k = self.record_prefix();
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// The Merkle root: a pure function of the set of applied actions.
    pub fn root_hash(&self) -> Hash {
        self.root
    }

    /// Number of entities (tombstoned ones included).
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// No entities.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every entity's full replicated state, in id order. Each can be shipped to a peer and
    /// [`apply`](State::apply)-ed there (parents before children, or in one batch).
    pub fn entities(&self) -> impl Iterator<Item = &Action> + '_ {
        self.entities.values().map(|e| &e.state)
    }

    /// One entity's full replicated state.
    pub fn entity(&self, id: &EntityId) -> Option<&Action> {
        self.entities.get(id).map(|e| &e.state)
    }

    /// One entity's metadata.
    pub fn metadata(&self, id: &EntityId) -> Option<&Metadata> {
        self.entities.get(id).map(|e| &e.state.meta)
    }

    /// Whether reads through the entity's parent show it (not deleted, not hidden by an
    /// ancestor's tombstone).
    pub fn is_visible(&self, id: &EntityId) -> bool {
        self.entities.get(id).is_some_and(|e| e.live)
    }

    /// The children of an entity (`None`: the root-level fields), in id order.
    pub fn children(&self, parent: Option<&EntityId>) -> impl Iterator<Item = EntityId> + '_ {
        let trie = match parent {
            None => Some(&self.roots),
            Some(p) => self.entities.get(p).map(|e| &e.children),
        };
        trie.into_iter().flat_map(|t| t.iter().map(|(id, _)| id))
    }

    /// An entity's Merkle hashes.
    pub fn entity_hashes(&self, id: &EntityId) -> Option<EntityHashes> {
        let e = self.entities.get(id)?;
        Some(EntityHashes {
            own: e.own,
            children: e.children.clean_hash(),
            full: e.full,
        })
    }

    /// A node of the Merkle trie over the children of `owner` (`None`: the root-level fields),
    /// addressed by a path of nibbles (each `0..16`) from that trie's top (`&[]`). `None` when
    /// there is no internal node there. The top node's hash is the owner's
    /// [`EntityHashes::children`] (or, for the root, [`root_hash`](State::root_hash)).
    pub fn trie_node(&self, owner: Option<&EntityId>, path: &[u8]) -> Option<TrieNode<'_>> {
        let trie = match owner {
            None => &self.roots,
            Some(id) => &self.entities.get(id)?.children,
        };
        trie.node(path).map(|branch| TrieNode { branch })
    }

    /// Joins remote actions (or full entity states from a snapshot or Merkle repair) into the
    /// state. Any order works within the batch: parents are joined before their children.
    ///
    /// Returns the batch to persist. On error nothing changes: the whole batch is refused.
    pub fn apply(&mut self, actions: &[Action]) -> Result<WriteBatch, StateError> {
        if actions.len() > MAX_ACTIONS {
            return Err(StateError::TooLarge {
                what: "actions",
                len: actions.len(),
                max: MAX_ACTIONS,
            });
        }
        let mut sess = Session::default();
        match self.apply_in(&mut sess, actions) {
            Ok(()) => {
                self.flush();
                Ok(self.batch(&sess))
            }
            Err(e) => {
                self.rollback(sess);
                Err(e)
            }
        }
    }

    /// Joins in passes: each pass joins every action whose parent is known. Parent chains are at
    /// most [`MAX_DEPTH`] long, so this takes at most `MAX_DEPTH + 1` passes.
    fn apply_in(&mut self, sess: &mut Session, actions: &[Action]) -> Result<(), StateError> {
        let mut todo: Vec<&Action> = Vec::new();
        for a in actions {
            if self.parent_known(a) {
                self.join(sess, a)?;
            } else {
                todo.push(a);
            }
        }
        while !todo.is_empty() {
            let before = todo.len();
            let mut next = Vec::new();
            for a in todo {
                if self.parent_known(a) {
                    self.join(sess, a)?;
                } else {
                    next.push(a);
                }
            }
            if next.len() == before {
                if let Some(a) = next.first() {
                    let parent = a.parent.unwrap_or_default();
                    return Err(StateError::MissingParent { id: a.id, parent });
                }
            }
            todo = next;
        }
        Ok(())
    }

    fn parent_known(&self, a: &Action) -> bool {
        a.parent.is_none_or(|p| self.entities.contains_key(&p))
    }

    pub(crate) fn get(&self, id: &EntityId) -> Option<&Entity> {
        self.entities.get(id).map(|e| &**e)
    }

    /// Checks that a `kind` child `key` may sit under `parent` (at `parent_depth`) and that an
    /// existing entity there has that type; returns its id and depth.
    pub(crate) fn check_child(
        &self,
        parent: Option<EntityId>,
        parent_depth: usize,
        key: &[u8],
        kind: CrdtKind,
    ) -> Result<(EntityId, usize), StateError> {
        if key.len() > MAX_KEY_LEN {
            return Err(StateError::TooLarge {
                what: "key",
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        let id = name_id(parent, key, kind);
        let depth = parent_depth + 1;
        // A container needs room for its children.
        let max = if kind.is_container() {
            MAX_DEPTH - 1
        } else {
            MAX_DEPTH
        };
        if depth > max {
            return Err(StateError::TooDeep { id, depth, max });
        }
        if let Some(e) = self.entities.get(&id) {
            let existing = e.state.kind();
            if existing != kind {
                return Err(StateError::KindMismatch {
                    id,
                    existing,
                    incoming: kind,
                });
            }
        }
        Ok((id, depth))
    }

    /// The one join path: validates `a` against its parent and the existing state, then joins it.
    pub(crate) fn join(&mut self, sess: &mut Session, a: &Action) -> Result<(), StateError> {
        let (parent_kind, depth) = match a.parent {
            None => (None, 1),
            Some(p) => match self.entities.get(&p) {
                None => {
                    return Err(StateError::MissingParent {
                        id: a.id,
                        parent: p,
                    })
                }
                Some(pe) => (Some(pe.state.kind()), usize::from(pe.depth) + 1),
            },
        };
        if !CrdtKind::allows_child(parent_kind, a.kind()) {
            return Err(StateError::InvalidChild {
                id: a.id,
                parent: parent_kind,
                child: a.kind(),
            });
        }
        if depth > MAX_DEPTH {
            return Err(StateError::TooDeep {
                id: a.id,
                depth,
                max: MAX_DEPTH,
            });
        }
        let new = match self.entities.get(&a.id) {
            Some(e) => {
                let mut joined = e.state.clone();
                if !joined.join(a)? {
                    return Ok(());
                }
                joined
            }
            None => a.clone(),
        };
        let old = self.replace(a.id, Some(new));
        sess.note(a.id, old);
        Ok(())
    }

    /// Undoes a session: restores every touched entity to its state before it.
    pub(crate) fn rollback(&mut self, mut sess: Session) {
        for id in sess.order.iter().rev() {
            if let Some(before) = sess.before.remove(id) {
                self.replace(*id, before);
            }
        }
        self.flush();
    }

    /// The records of every entity a session changed.
    pub(crate) fn batch(&self, sess: &Session) -> WriteBatch {
        let mut b = WriteBatch::new();
        for id in sess.before.keys() {
            let key = self.record_key(id);
            match self.entities.get(id) {
                Some(e) => b.put(key, e.state.to_bytes()),
                None => b.delete(key),
            }
        }
        b
    }

    /// Sets an entity's replicated state (`None`: removes it, only when undoing its creation) and
    /// updates everything derived: parent trie, element order, visibility, counts, dirty hashes.
    /// Returns the previous state.
    fn replace(&mut self, id: EntityId, new: Option<Action>) -> Option<Action> {
        match (self.entities.contains_key(&id), new) {
            (false, None) => None,
            (false, Some(state)) => {
                self.create(id, state);
                None
            }
            (true, None) => self.remove(&id),
            (true, Some(state)) => self.update(&id, state),
        }
    }

    fn parent_tomb(&self, parent: Option<EntityId>) -> Option<Stamp> {
        parent
            .and_then(|p| self.entities.get(&p))
            .and_then(|pe| pe.tomb)
    }

    fn create(&mut self, id: EntityId, state: Action) {
        let (depth, parent_tomb) = match state.parent.and_then(|p| self.entities.get(&p)) {
            None => (1, None),
            Some(pe) => (pe.depth.saturating_add(1), pe.tomb),
        };
        let live = state.live(parent_tomb);
        let tomb = max_opt(state.meta.deleted, parent_tomb);
        let kind = state.kind();
        let seq = matches!(kind, CrdtKind::List | CrdtKind::Text).then(Box::<Seq>::default);
        let (parent, elem, origin, ch) =
            (state.parent, state.elem(), state.origin(), char_of(&state));
        self.entities.insert(
            id,
            Box::new(Entity {
                state,
                depth,
                own: Hash::ZERO,
                own_dirty: true,
                full: Hash::ZERO,
                tomb,
                live,
                children: Trie::default(),
                seq,
                live_children: 0,
            }),
        );
        match parent {
            None => {
                self.roots.upsert(id, Hash::ZERO);
            }
            Some(p) => {
                if let Some(pe) = self.entities.get_mut(&p) {
                    pe.children.upsert(id, Hash::ZERO);
                    pe.live_children += usize::from(live);
                    if let (Some(seq), Some(stamp)) = (pe.seq.as_deref_mut(), elem) {
                        seq.insert(
                            Item {
                                stamp,
                                id,
                                ch,
                                visible: live,
                            },
                            origin,
                        );
                    }
                }
            }
        }
        self.rehash.insert((Reverse(depth), id));
    }

    fn update(&mut self, id: &EntityId, state: Action) -> Option<Action> {
        let parent_tomb = self.parent_tomb(state.parent);
        let e = self.entities.get_mut(id)?;
        let old = std::mem::replace(&mut e.state, state);
        let tomb = max_opt(e.state.meta.deleted, parent_tomb);
        let tomb_changed = tomb != e.tomb;
        e.tomb = tomb;
        let live = e.state.live(parent_tomb);
        let live_changed = live != e.live;
        e.live = live;
        e.own_dirty = true;
        let (depth, parent, elem) = (e.depth, e.state.parent, e.state.elem());
        let container = e.state.kind().is_container();
        self.rehash.insert((Reverse(depth), *id));
        if live_changed {
            if let Some(pe) = parent.and_then(|p| self.entities.get_mut(&p)) {
                if live {
                    pe.live_children += 1;
                } else {
                    pe.live_children = pe.live_children.saturating_sub(1);
                }
                if let (Some(seq), Some(stamp)) = (pe.seq.as_deref_mut(), elem) {
                    seq.set_visible(stamp, live);
                }
            }
        }
        if tomb_changed && container {
            self.refresh.insert(*id);
        }
        Some(old)
    }

    /// Removes an entity created in a session being undone (its children are already gone).
    fn remove(&mut self, id: &EntityId) -> Option<Action> {
        let e = *self.entities.remove(id)?;
        match e.state.parent {
            None => {
                self.roots.remove(id);
            }
            Some(p) => {
                if let Some(pe) = self.entities.get_mut(&p) {
                    pe.children.remove(id);
                    if e.live {
                        pe.live_children = pe.live_children.saturating_sub(1);
                    }
                    if pe.seq.is_some() {
                        self.rebuild.insert(p);
                    }
                    self.rehash.insert((Reverse(pe.depth), p));
                }
            }
        }
        Some(e.state)
    }

    /// After a container's effective tombstone changed: recomputes the effective tombstone and
    /// visibility of everything below it. Iterative (an explicit stack), never recursive.
    fn refresh_subtree(&mut self, top: EntityId) {
        let mut stack = vec![top];
        while let Some(cid) = stack.pop() {
            let Some(c) = self.entities.get(&cid) else {
                continue;
            };
            let tomb = c.tomb;
            let kids: Vec<EntityId> = c.children.iter().map(|(id, _)| id).collect();
            let mut live_children = 0;
            for k in kids {
                let Some(e) = self.entities.get_mut(&k) else {
                    continue;
                };
                let new_tomb = max_opt(e.state.meta.deleted, tomb);
                let changed = new_tomb != e.tomb;
                e.tomb = new_tomb;
                e.live = e.state.live(tomb);
                live_children += usize::from(e.live);
                if changed && e.state.kind().is_container() {
                    stack.push(k);
                }
            }
            let mut seq = self.entities.get_mut(&cid).and_then(|c| {
                c.live_children = live_children;
                c.seq.take()
            });
            if let Some(seq) = seq.as_deref_mut() {
                seq.refresh(|item| self.entities.get(&item.id).is_some_and(|e| e.live));
            }
            if let (Some(seq), Some(c)) = (seq, self.entities.get_mut(&cid)) {
                c.seq = Some(seq);
            }
        }
    }

    /// Rebuilds an element order from the element entities (after undoing an insertion):
    /// inserting in stamp order places every element right after its origin.
    fn rebuild_seq(&mut self, cid: &EntityId) {
        let Some(c) = self.entities.get(cid) else {
            return;
        };
        if c.seq.is_none() {
            return;
        }
        let mut elems: Vec<(Stamp, Option<Stamp>, EntityId, char, bool)> = c
            .children
            .iter()
            .filter_map(|(id, _)| {
                let e = self.entities.get(&id)?;
                Some((
                    e.state.elem()?,
                    e.state.origin(),
                    id,
                    char_of(&e.state),
                    e.live,
                ))
            })
            .collect();
        elems.sort_by_key(|e| e.0);
        let mut seq = Seq::default();
        for (stamp, origin, id, ch, visible) in elems {
            seq.insert(
                Item {
                    stamp,
                    id,
                    ch,
                    visible,
                },
                origin,
            );
        }
        if let Some(c) = self.entities.get_mut(cid) {
            c.seq = Some(Box::new(seq));
        }
    }

    /// Brings everything derived up to date: visibility under changed tombstones, element orders,
    /// then every hash (deepest dirty entities first, each updating its parent's trie, then the
    /// root).
    pub(crate) fn flush(&mut self) {
        let mut refresh: Vec<(u8, EntityId)> = std::mem::take(&mut self.refresh)
            .into_iter()
            .filter_map(|id| Some((self.entities.get(&id)?.depth, id)))
            .collect();
        refresh.sort_unstable();
        for (_, id) in refresh {
            self.refresh_subtree(id);
        }
        for cid in std::mem::take(&mut self.rebuild) {
            self.rebuild_seq(&cid);
        }
        while let Some((_, id)) = self.rehash.pop_first() {
            let Some(e) = self.entities.get_mut(&id) else {
                continue;
            };
            if e.own_dirty {
                e.own = e.state.own_hash();
                e.own_dirty = false;
            }
            let children = e.children.hash();
            e.full = node_hash(&id, &e.own, &children);
            let (full, parent) = (e.full, e.state.parent);
            match parent {
                None => {
                    self.roots.upsert(id, full);
                }
                Some(p) => {
                    if let Some(pe) = self.entities.get_mut(&p) {
                        if pe.children.upsert(id, full) {
                            self.rehash.insert((Reverse(pe.depth), p));
                        }
                    }
                }
            }
        }
        self.root = self.roots.hash();
    }
}

/// The character of a text element (`'\0'` for anything else).
fn char_of(a: &Action) -> char {
    match a.body {
        Body::TextChar { ch, .. } => ch,
        _ => '\0',
    }
}

/// The key bytes of a named entity (empty for elements).
pub(crate) fn name_of(a: &Action) -> &[u8] {
    match &a.key {
        Key::Name(k) => k,
        Key::Elem(_) => &[],
    }
}
