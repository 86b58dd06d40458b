//! The in-memory order of a list's or text's elements (RGA), derived from the element entities.
//!
//! Every element records its *origin*: the element it was inserted after (`None`: the start). The
//! document order is the depth-first walk of the tree of origins in which the elements inserted
//! after one origin come newest stamp first. Because an element's stamp is always newer than its
//! origin's (checked on every action, see [`StateError::InvalidOrigin`](crate::StateError)),
//! inserting an element right after its origin, past every following element with a newer stamp,
//! gives that order whatever the arrival order. An element whose origin has not arrived yet waits
//! (it is in the Merkle tree but not in the order) and is placed when the origin arrives.
//!
//! Elements are kept in chunks of at most [`CHUNK_MAX`] with per-chunk visible counts. Finding an
//! element by stamp costs `O(log n + CHUNK_MAX)` (stamp → chunk → scan); finding the element at a
//! visible index costs `O(n / CHUNK_MAX + CHUNK_MAX)` (walk the chunk counts, scan one chunk).

use std::collections::BTreeMap;

use tabmesh_base::EntityId;

use crate::Stamp;

/// Most elements in one chunk before it splits in two.
pub(crate) const CHUNK_MAX: usize = 256;

/// One element in the order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) stamp: Stamp,
    pub(crate) id: EntityId,
    /// The character of a text element (`'\0'` for list items).
    pub(crate) ch: char,
    pub(crate) visible: bool,
}

#[derive(Clone, Debug, Default)]
struct Chunk {
    key: u32,
    items: Vec<Item>,
    visible: usize,
}

/// The RGA order of one list or text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Seq {
    chunks: Vec<Chunk>,
    /// Placed element → key of the chunk holding it.
    loc: BTreeMap<Stamp, u32>,
    /// Chunk key → its index in `chunks` (updated when a split shifts chunks).
    pos: Vec<usize>,
    /// Elements waiting for their origin, by origin.
    pending: BTreeMap<Stamp, Vec<Item>>,
    /// Waiting element → its origin.
    pending_origin: BTreeMap<Stamp, Stamp>,
    /// Newest element stamp seen (placed or waiting).
    max: Option<Stamp>,
    visible: usize,
}

impl Seq {
    /// Visible elements.
    pub(crate) fn len(&self) -> usize {
        self.visible
    }

    /// The newest element stamp in this sequence.
    pub(crate) fn max(&self) -> Option<Stamp> {
        self.max
    }

    /// Adds an element inserted after `origin`, then every element that was waiting for it.
    pub(crate) fn insert(&mut self, item: Item, origin: Option<Stamp>) {
        self.max = self.max.max(Some(item.stamp));
        if let Some(o) = origin {
            if !self.loc.contains_key(&o) {
                self.pending_origin.insert(item.stamp, o);
                self.pending.entry(o).or_default().push(item);
                return;
            }
        }
        self.place(item, origin);
        if self.pending.is_empty() {
            return;
        }
        let mut work = vec![item.stamp];
        while let Some(placed) = work.pop() {
            for w in self.pending.remove(&placed).unwrap_or_default() {
                self.pending_origin.remove(&w.stamp);
                self.place(w, Some(placed));
                work.push(w.stamp);
            }
        }
    }

    fn place(&mut self, item: Item, origin: Option<Stamp>) {
        let (mut ci, mut ii) = match origin.and_then(|o| self.locate(o)) {
            Some((c, i)) => (c, i + 1),
            None => (0, 0),
        };
        // Skip every following element with a newer stamp: newer siblings and their subtrees.
        while let Some(chunk) = self.chunks.get(ci) {
            match chunk.items.get(ii) {
                Some(x) if x.stamp > item.stamp => ii += 1,
                Some(_) => break,
                None if ci + 1 < self.chunks.len() => {
                    ci += 1;
                    ii = 0;
                }
                None => break,
            }
        }
        if self.chunks.is_empty() {
            let key = self.new_key();
            self.chunks.push(Chunk {
                key,
                items: Vec::new(),
                visible: 0,
            });
            (ci, ii) = (0, 0);
        }
        let Some(chunk) = self.chunks.get_mut(ci) else {
            return;
        };
        chunk.items.insert(ii.min(chunk.items.len()), item);
        if item.visible {
            chunk.visible += 1;
            self.visible += 1;
        }
        self.loc.insert(item.stamp, chunk.key);
        if chunk.items.len() > CHUNK_MAX {
            self.split(ci);
        }
    }

    fn new_key(&mut self) -> u32 {
        let key = u32::try_from(self.pos.len()).unwrap_or(u32::MAX);
        self.pos.push(0);
        key
    }

    fn split(&mut self, ci: usize) {
        let key = self.new_key();
        let Some(chunk) = self.chunks.get_mut(ci) else {
            return;
        };
        let tail = chunk.items.split_off(chunk.items.len() / 2);
        let visible = tail.iter().filter(|i| i.visible).count();
        chunk.visible -= visible;
        for it in &tail {
            self.loc.insert(it.stamp, key);
        }
        self.chunks.insert(
            ci + 1,
            Chunk {
                key,
                items: tail,
                visible,
            },
        );
        for (j, c) in self.chunks.iter().enumerate().skip(ci + 1) {
            if let Some(p) = self.pos.get_mut(c.key as usize) {
                *p = j;
            }
        }
    }

    fn locate(&self, stamp: Stamp) -> Option<(usize, usize)> {
        let key = *self.loc.get(&stamp)?;
        let ci = *self.pos.get(key as usize)?;
        let chunk = self.chunks.get(ci).filter(|c| c.key == key)?;
        let ii = chunk.items.iter().position(|i| i.stamp == stamp)?;
        Some((ci, ii))
    }

    /// Sets an element's visibility (placed or waiting).
    pub(crate) fn set_visible(&mut self, stamp: Stamp, visible: bool) {
        if let Some((ci, ii)) = self.locate(stamp) {
            let Some(chunk) = self.chunks.get_mut(ci) else {
                return;
            };
            let Some(item) = chunk.items.get_mut(ii) else {
                return;
            };
            if item.visible != visible {
                item.visible = visible;
                if visible {
                    chunk.visible += 1;
                    self.visible += 1;
                } else {
                    chunk.visible -= 1;
                    self.visible -= 1;
                }
            }
        } else if let Some(origin) = self.pending_origin.get(&stamp) {
            let waiting = self.pending.get_mut(origin).into_iter().flatten();
            for item in waiting.filter(|i| i.stamp == stamp) {
                item.visible = visible;
            }
        }
    }

    /// Recomputes every element's visibility.
    pub(crate) fn refresh(&mut self, mut visible: impl FnMut(&Item) -> bool) {
        self.visible = 0;
        for chunk in &mut self.chunks {
            chunk.visible = 0;
            for item in &mut chunk.items {
                item.visible = visible(item);
                chunk.visible += usize::from(item.visible);
            }
            self.visible += chunk.visible;
        }
        for item in self.pending.values_mut().flatten() {
            item.visible = visible(item);
        }
    }

    /// The visible element at `index`.
    pub(crate) fn nth(&self, index: usize) -> Option<&Item> {
        self.iter_from(index).next()
    }

    /// Visible elements in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Item> + '_ {
        self.iter_from(0)
    }

    /// Visible elements in order, from visible index `index`.
    pub(crate) fn iter_from(&self, index: usize) -> impl Iterator<Item = &Item> + '_ {
        let mut skip = index;
        let mut first = self.chunks.len();
        for (ci, c) in self.chunks.iter().enumerate() {
            if skip < c.visible {
                first = ci;
                break;
            }
            skip -= c.visible;
        }
        self.chunks
            .get(first..)
            .unwrap_or_default()
            .iter()
            .flat_map(|c| c.items.iter())
            .filter(|i| i.visible)
            .skip(skip)
    }
}
