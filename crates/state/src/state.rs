//! The state: every entity in memory, its Merkle index, and the one join path all changes take.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{EntityId, Hash, Hlc, KvRead, WriteBatch};

use crate::entity::{Body, Key};
use crate::ids::{element_id, name_id};
use crate::limits::{MAX_ACTIONS, MAX_DEPTH, MAX_KEY_LEN};
use crate::merkle::{node_hash, Trie, TrieNode};
use crate::seq::{Item, Seq};
use crate::stamp::max_opt;
use crate::{Action, CrdtKind, EntityHashes, Metadata, Stamp, StateError};

/// The byte after the caller's prefix that starts every entity record key.
const RECORD_TAG: u8 = b'e';

/// The key (after the caller's prefix) of the record holding the GC horizon.
const HORIZON_TAG: u8 = b'g';

/// What [`State::apply_counted`] did: the batch to persist, and how many fragments it dropped as
/// ancient (see [`State::collect_garbage`]).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Applied {
    /// The new record of every entity the call changed.
    pub batch: WriteBatch,
    /// Fragments dropped because their entity is absent here and all of it is older than the GC
    /// horizon (a collected deletion coming back, or a write that never arrived within the
    /// retention), and fragments under such an entity.
    pub dropped: usize,
}

/// What [`State::collect_garbage`] or [`State::forget`] removed.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Collected {
    /// Entities removed (each collected subtree counts every entity in it).
    pub removed: usize,
    /// The deletes of their records (and the new horizon record): persist it like any batch.
    pub batch: WriteBatch,
}

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
    /// Element orders to rebuild (after undoing an insertion, removing elements, or an element
    /// moved by an equivocating author's second content, see `Action::join`).
    rebuild: BTreeSet<EntityId>,
    /// The GC horizon: the newest horizon collected so far (persisted, see
    /// [`State::collect_garbage`]).
    horizon: Hlc,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("root", &self.root)
            .field("entities", &self.entities.len())
            .field("gc_horizon", &self.horizon)
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
            horizon: Hlc::default(),
        }
    }

    /// Loads the state stored under `prefix` (what earlier write batches persisted).
    ///
    /// Records are validated like remote actions; a record of an unknown codec version is
    /// [`CodecError::UnknownVersion`](tabmesh_base::CodecError::UnknownVersion). The GC horizon
    /// is read back too ([`gc_horizon`](State::gc_horizon)).
    pub fn open(prefix: &[u8], kv: &impl KvRead) -> Result<State, StateError> {
        let mut state = State::new(prefix);
        if let Some(bytes) = kv.get(&state.horizon_key()) {
            let mut r = Reader::new(&bytes)?;
            state.horizon = Hlc::decode(&mut r)?;
            r.finish()?;
        }
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
        let refs: Vec<&Action> = actions.iter().collect();
        state.apply_in(&mut Session::untracked(), &refs)?;
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

    fn horizon_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 1);
        k.extend_from_slice(&self.prefix);
        k.push(HORIZON_TAG);
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
    /// Fragments of *ancient* entities are dropped, not refused (see [`apply_counted`](State::apply_counted),
    /// which also says how many).
    ///
    /// Returns the batch to persist. On error nothing changes: the whole batch is refused.
    pub fn apply(&mut self, actions: &[Action]) -> Result<WriteBatch, StateError> {
        self.apply_counted(actions).map(|a| a.batch)
    }

    /// [`apply`](State::apply), reporting how many fragments it dropped.
    ///
    /// **Resurrection guard.** A fragment of an entity this replica does not hold, whose newest
    /// stamp ([`Action::newest_stamp`], joined over every fragment of that entity in the batch) is
    /// older than the [`gc_horizon`](State::gc_horizon), is dropped: it is a deletion this replica
    /// collected coming back from a replica that had not (or a write that did not reach this
    /// replica within the retention, which the retention's contract gives up on). Fragments under a
    /// dropped entity that this replica does not hold go with it. Nothing is dropped for an entity
    /// that exists here: joining into it is always safe. Local transactions never produce such
    /// fragments (their stamps are newer than anything they observed).
    pub fn apply_counted(&mut self, actions: &[Action]) -> Result<Applied, StateError> {
        if actions.len() > MAX_ACTIONS {
            return Err(StateError::TooLarge {
                what: "actions",
                len: actions.len(),
                max: MAX_ACTIONS,
            });
        }
        let (kept, dropped) = self.screen(actions);
        let mut sess = Session::default();
        match self.apply_in(&mut sess, &kept) {
            Ok(()) => {
                self.flush();
                Ok(Applied {
                    batch: self.batch(&sess),
                    dropped,
                })
            }
            Err(e) => {
                self.rollback(sess);
                Err(e)
            }
        }
    }

    /// The resurrection guard of [`apply_counted`](State::apply_counted): the fragments to join,
    /// and how many were dropped as ancient.
    fn screen<'a>(&self, actions: &'a [Action]) -> (Vec<&'a Action>, usize) {
        if self.horizon == Hlc::default() {
            return (actions.iter().collect(), 0);
        }
        let mut newest: BTreeMap<EntityId, Hlc> = BTreeMap::new();
        for a in actions
            .iter()
            .filter(|a| !self.entities.contains_key(&a.id))
        {
            let n = a.newest_stamp().hlc;
            let e = newest.entry(a.id).or_insert(n);
            *e = (*e).max(n);
        }
        let mut gone: BTreeSet<EntityId> = newest
            .into_iter()
            .filter(|(_, n)| *n < self.horizon)
            .map(|(id, _)| id)
            .collect();
        if gone.is_empty() {
            return (actions.iter().collect(), 0);
        }
        // Entities under a dropped one go with it. Parent chains are at most MAX_DEPTH long.
        for _ in 0..MAX_DEPTH {
            let before = gone.len();
            for a in actions {
                let orphan = a.parent.is_some_and(|p| gone.contains(&p));
                if orphan && !self.entities.contains_key(&a.id) {
                    gone.insert(a.id);
                }
            }
            if gone.len() == before {
                break;
            }
        }
        let kept: Vec<&Action> = actions.iter().filter(|a| !gone.contains(&a.id)).collect();
        let dropped = actions.len() - kept.len();
        (kept, dropped)
    }

    /// The GC horizon: entities whose every stamp is older than it may have been collected here,
    /// so fragments of them that arrive again are dropped. The newest horizon given to
    /// [`collect_garbage`](State::collect_garbage) so far ([`Hlc::default`] when never), persisted
    /// with the state.
    pub fn gc_horizon(&self) -> Hlc {
        self.horizon
    }

    /// Tombstone garbage collection: permanently removes every entity that is deleted, invisible
    /// and entirely older than `horizon`, with its subtree, and raises the GC horizon to `horizon`
    /// (it never goes down). Returns how many entities went and the batch that deletes their
    /// records and stores the horizon.
    ///
    /// An entity is collected when its effective tombstone (its own or an ancestor's) is older than
    /// `horizon`, and every entity of its subtree is invisible with a newest stamp
    /// ([`Action::newest_stamp`]) older than `horizon`. Reads therefore never change.
    ///
    /// **RGA.** A deleted list item or text character that is the origin of a retained element
    /// stays (transitively): element order is the tree of origins, and removing only subtrees of
    /// that tree leaves the order of what remains unchanged, so no position is ever lost.
    ///
    /// **Determinism.** The result is a pure function of the state and `horizon`: replicas that
    /// applied the same actions and collect at the same horizon have the same root.
    ///
    /// **Contract.** After collection, a fragment of a collected entity that arrives again is
    /// dropped by [`apply_counted`](State::apply_counted) (its stamps are all older than the
    /// horizon). What this gives up is documented at the sync layer's retention: a write older than
    /// the horizon that never reached this replica is dropped too.
    ///
    /// Cost: one pass over the entities plus the collected subtrees; the orders of lists and texts
    /// that lost elements are rebuilt once.
    pub fn collect_garbage(&mut self, horizon: Hlc) -> Collected {
        let mut candidates: Vec<(u8, EntityId)> = self
            .entities
            .iter()
            .filter(|(_, e)| !e.live && e.tomb.is_some_and(|t| t.hlc < horizon))
            .map(|(id, e)| (e.depth, *id))
            .collect();
        // Shallowest first: a collected container takes its candidates along.
        candidates.sort_unstable();
        let mut doomed: BTreeSet<EntityId> = BTreeSet::new();
        for (_, id) in candidates {
            if doomed.contains(&id) {
                continue;
            }
            if let Some(subtree) = self.dead_subtree(&id, horizon) {
                doomed.extend(subtree);
            }
        }
        self.keep_origins(&mut doomed);
        let removed = doomed.len();
        let mut batch = self.remove_all(&doomed);
        batch.extend(self.adopt_gc_horizon(horizon));
        Collected { removed, batch }
    }

    /// Raises the GC horizon to `horizon` (it never goes down) without collecting anything, and
    /// returns the batch storing it (empty when unchanged). For a state installed from a peer's
    /// snapshot: it already lacks what the peer collected, and now drops fragments of those
    /// entities like the peer does.
    pub fn adopt_gc_horizon(&mut self, horizon: Hlc) -> WriteBatch {
        let mut batch = WriteBatch::new();
        if horizon > self.horizon {
            self.horizon = horizon;
            let mut w = Writer::new();
            horizon.encode(&mut w);
            batch.put(self.horizon_key(), w.finish());
        }
        batch
    }

    /// Forgets entities and their subtrees, whatever their state: what a peer whose GC horizon is
    /// newer than all of them collected (a sync protocol found that the peer lacks them). Ids this
    /// state does not hold are ignored. Unlike [`collect_garbage`](State::collect_garbage) this
    /// may change reads, and a list or text element whose origin is forgotten waits (unseen) for
    /// it; the caller decides when forgetting is right.
    pub fn forget(&mut self, ids: &[EntityId]) -> Collected {
        let mut doomed = BTreeSet::new();
        for id in ids {
            if doomed.contains(id) {
                continue;
            }
            let mut stack = vec![*id];
            while let Some(id) = stack.pop() {
                if let Some(e) = self.entities.get(&id) {
                    if doomed.insert(id) {
                        stack.extend(e.children.iter().map(|(c, _)| c));
                    }
                }
            }
        }
        let removed = doomed.len();
        let batch = self.remove_all(&doomed);
        Collected { removed, batch }
    }

    /// The subtree of `top` when all of it is invisible and older than `horizon`.
    fn dead_subtree(&self, top: &EntityId, horizon: Hlc) -> Option<Vec<EntityId>> {
        let mut out = Vec::new();
        let mut stack = vec![*top];
        while let Some(id) = stack.pop() {
            let e = self.entities.get(&id)?;
            if e.live || e.state.newest_stamp().hlc >= horizon {
                return None;
            }
            out.push(id);
            stack.extend(e.children.iter().map(|(c, _)| c));
        }
        Some(out)
    }

    /// Keeps (takes out of `doomed`) every element that is the origin of a retained element of
    /// the same list or text, transitively along origin chains.
    fn keep_origins(&self, doomed: &mut BTreeSet<EntityId>) {
        let seqs: BTreeSet<EntityId> = doomed
            .iter()
            .filter_map(|id| {
                let e = self.entities.get(id)?;
                e.state.elem()?;
                e.state.parent.filter(|p| !doomed.contains(p))
            })
            .collect();
        for seq in seqs {
            let Some(c) = self.entities.get(&seq) else {
                continue;
            };
            for (kid, _) in c.children.iter() {
                if doomed.contains(&kid) {
                    continue;
                }
                let mut origin = self.entities.get(&kid).and_then(|e| e.state.origin());
                while let Some(o) = origin {
                    let oid = element_id(seq, o);
                    if !doomed.remove(&oid) {
                        break;
                    }
                    origin = self.entities.get(&oid).and_then(|e| e.state.origin());
                }
            }
        }
    }

    /// Removes entities (each with its whole subtree among them), deepest first, and returns the
    /// deletes of their records. Hashes, visibility and element orders are current afterwards.
    fn remove_all(&mut self, doomed: &BTreeSet<EntityId>) -> WriteBatch {
        let mut order: Vec<(Reverse<u8>, EntityId)> = doomed
            .iter()
            .filter_map(|id| Some((Reverse(self.entities.get(id)?.depth), *id)))
            .collect();
        order.sort_unstable();
        let mut batch = WriteBatch::new();
        for (_, id) in order {
            if self.remove(&id).is_some() {
                batch.delete(self.record_key(&id));
            }
        }
        self.flush();
        batch
    }

    /// Joins in passes: each pass joins every action whose parent is known. Parent chains are at
    /// most [`MAX_DEPTH`] long, so this takes at most `MAX_DEPTH + 1` passes.
    fn apply_in(&mut self, sess: &mut Session, actions: &[&Action]) -> Result<(), StateError> {
        let mut todo: Vec<&Action> = Vec::new();
        for &a in actions {
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

    /// The element order of list or text `id` (`None` while it has no elements).
    pub(crate) fn seq(&self, id: &EntityId) -> Option<&Seq> {
        self.get(id)?.seq.as_deref()
    }

    /// Number of visible elements of list or text `id`.
    pub(crate) fn seq_len(&self, id: &EntityId) -> usize {
        self.seq(id).map_or(0, Seq::len)
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
        // An element whose origin or character changed (see `Action::join`) moves: its sequence
        // is rebuilt.
        let moved = old.elem().is_some()
            && (old.origin() != e.state.origin() || char_of(&old) != char_of(&e.state));
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
        if moved {
            if let Some(p) = parent {
                self.rebuild.insert(p);
            }
        }
        Some(old)
    }

    /// Removes an entity whose children are already gone (undoing its creation, or collecting it).
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
