//! The Merkle index: one 16-ary hash trie per container (and one for the root) over its children.
//!
//! A container's children are grouped by the nibbles of their ids: a trie node at depth `d` splits
//! its children by nibble `d`, and a subtree holding a single child is that child itself (a leaf).
//! The shape is therefore a function of the set of child ids alone, and since ids are hashes it is
//! balanced: a container with `K` children has depth about `log16 K`, so a write re-hashes
//! `O(log K)` nodes of at most 16 slots instead of all `K` siblings.
//!
//! Hashes (every preimage domain-separated):
//! - entity: `full = H("node" ‖ id ‖ own ‖ children)`, with `own = H("own" ‖ encoded state)` (the
//!   whole replicated state: parent, key, type, metadata, body) and `children` its trie's hash;
//! - trie node: `H("trie" ‖ for each non-empty slot in nibble order: nibble ‖ slot hash)`, where a
//!   slot's hash is a child entity's `full` or a sub-node's hash; an empty trie hashes to
//!   [`Hash::ZERO`];
//! - the state root is the hash of the root trie (the root-level fields).
//!
//! Trie recursion is bounded by the 64 nibbles of an id, whatever the input.

use tabmesh_base::{EntityId, Hash, Hasher};

const D_TRIE: &[u8] = b"tabmesh/state/v1/trie";
const D_NODE: &[u8] = b"tabmesh/state/v1/node";

/// Nibbles in an id: the deepest a trie can go.
const ID_NIBBLES: usize = 64;

/// The Merkle hash of an entity from its own hash and its children trie's hash.
pub(crate) fn node_hash(id: &EntityId, own: &Hash, children: &Hash) -> Hash {
    let mut h = Hasher::new(D_NODE);
    h.fixed(id.as_bytes())
        .fixed(own.as_bytes())
        .fixed(children.as_bytes());
    h.finish()
}

fn nibble(id: &EntityId, depth: usize) -> usize {
    // `depth < ID_NIBBLES` always: a node at depth d exists only under two ids sharing d nibbles.
    let byte = id.0.get(depth / 2).copied().unwrap_or(0);
    usize::from(if depth.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    })
}

/// The children of one container, as a hash trie.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trie {
    root: Option<Box<Branch>>,
    len: usize,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Branch {
    hash: Hash,
    dirty: bool,
    slots: [Slot; 16],
}

#[derive(Clone, Debug, Default)]
enum Slot {
    #[default]
    Empty,
    Leaf(EntityId, Hash),
    Node(Box<Branch>),
}

impl Trie {
    /// The hash stored for `id`.
    pub(crate) fn get(&self, id: &EntityId) -> Option<Hash> {
        let mut node = self.root.as_deref()?;
        for depth in 0..ID_NIBBLES {
            match node.slots.get(nibble(id, depth))? {
                Slot::Empty => return None,
                Slot::Leaf(lid, h) => return (lid == id).then_some(*h),
                Slot::Node(b) => node = b,
            }
        }
        None
    }

    /// Inserts `id` or updates its hash; marks the path for re-hashing. Returns whether anything
    /// changed.
    pub(crate) fn upsert(&mut self, id: EntityId, hash: Hash) -> bool {
        if self.get(&id) == Some(hash) {
            return false;
        }
        let mut node: &mut Branch = self.root.get_or_insert_with(Box::default);
        let mut depth = 0;
        while depth < ID_NIBBLES {
            node.dirty = true;
            let idx = nibble(&id, depth);
            let Some(slot) = node.slots.get_mut(idx) else {
                return false;
            };
            if let Slot::Leaf(other, _) = slot {
                if *other != id {
                    // Two ids share this prefix: push the resident down one level.
                    let resident = std::mem::take(slot);
                    let mut below = Box::<Branch>::default();
                    if let Slot::Leaf(oid, _) = &resident {
                        let j = nibble(oid, depth + 1);
                        if let Some(s) = below.slots.get_mut(j) {
                            *s = resident;
                        }
                    }
                    *slot = Slot::Node(below);
                }
            }
            match slot {
                Slot::Empty => {
                    *slot = Slot::Leaf(id, hash);
                    self.len += 1;
                    return true;
                }
                Slot::Leaf(_, h) => {
                    *h = hash;
                    return true;
                }
                Slot::Node(b) => {
                    node = b;
                    depth += 1;
                }
            }
        }
        false
    }

    /// Removes `id`, collapsing nodes left with a single leaf so the shape stays canonical.
    pub(crate) fn remove(&mut self, id: &EntityId) -> bool {
        let Some(root) = self.root.as_deref_mut() else {
            return false;
        };
        let removed = remove_in(root, id, 0);
        if removed {
            self.len -= 1;
            if self.len == 0 {
                self.root = None;
            }
        }
        removed
    }

    /// The trie's hash, re-hashing dirty nodes.
    pub(crate) fn hash(&mut self) -> Hash {
        match self.root.as_deref_mut() {
            None => Hash::ZERO,
            Some(b) => b.rehash(),
        }
    }

    /// The hash as last computed (every public mutation of the state re-hashes before returning).
    pub(crate) fn clean_hash(&self) -> Hash {
        self.root.as_ref().map_or(Hash::ZERO, |b| b.hash)
    }

    /// The node at a nibble path from the top (`[]` is the top node).
    pub(crate) fn node(&self, path: &[u8]) -> Option<&Branch> {
        let mut node = self.root.as_deref()?;
        for &nib in path {
            match node.slots.get(usize::from(nib))? {
                Slot::Node(b) => node = b,
                _ => return None,
            }
        }
        Some(node)
    }

    /// Children ids and hashes in id order.
    pub(crate) fn iter(&self) -> TrieIter<'_> {
        let mut stack = Vec::with_capacity(8);
        if let Some(b) = self.root.as_deref() {
            stack.push((b, 0u8));
        }
        TrieIter { stack }
    }
}

fn remove_in(branch: &mut Branch, id: &EntityId, depth: usize) -> bool {
    if depth >= ID_NIBBLES {
        return false;
    }
    let Some(slot) = branch.slots.get_mut(nibble(id, depth)) else {
        return false;
    };
    let removed = match slot {
        Slot::Leaf(lid, _) if lid == id => {
            *slot = Slot::Empty;
            true
        }
        Slot::Node(b) => {
            let removed = remove_in(b, id, depth + 1);
            if removed {
                if let Some(leaf) = b.single_leaf() {
                    *slot = leaf;
                }
            }
            removed
        }
        _ => false,
    };
    if removed {
        branch.dirty = true;
    }
    removed
}

impl Branch {
    /// If this node holds exactly one slot and it is a leaf, takes it.
    fn single_leaf(&mut self) -> Option<Slot> {
        let mut only = None;
        for (i, s) in self.slots.iter().enumerate() {
            match s {
                Slot::Empty => {}
                Slot::Leaf(..) if only.is_none() => only = Some(i),
                _ => return None,
            }
        }
        self.slots.get_mut(only?).map(std::mem::take)
    }

    fn rehash(&mut self) -> Hash {
        if !self.dirty {
            return self.hash;
        }
        // The preimage is assembled in one buffer: one hasher update instead of 32.
        let mut buf = [0u8; 16 * 33];
        let mut len = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let child = match slot {
                Slot::Empty => continue,
                Slot::Leaf(_, hash) => *hash,
                Slot::Node(b) => b.rehash(),
            };
            if let Some(dst) = buf.get_mut(len..len + 33) {
                dst[0] = i as u8;
                dst[1..].copy_from_slice(child.as_bytes());
                len += 33;
            }
        }
        let mut h = Hasher::new(D_TRIE);
        h.fixed(buf.get(..len).unwrap_or_default());
        self.hash = h.finish();
        self.dirty = false;
        self.hash
    }
}

/// In-order iterator over a trie's leaves.
#[derive(Debug)]
pub(crate) struct TrieIter<'a> {
    stack: Vec<(&'a Branch, u8)>,
}

impl Iterator for TrieIter<'_> {
    type Item = (EntityId, Hash);

    fn next(&mut self) -> Option<(EntityId, Hash)> {
        loop {
            let (branch, next) = self.stack.last_mut()?;
            let Some(slot) = branch.slots.get(usize::from(*next)) else {
                self.stack.pop();
                continue;
            };
            *next += 1;
            match slot {
                Slot::Empty => {}
                Slot::Leaf(id, h) => return Some((*id, *h)),
                Slot::Node(b) => self.stack.push((b, 0)),
            }
        }
    }
}

/// One internal node of a Merkle trie, for a sync protocol walking two trees from the root and
/// skipping equal subtrees. Obtained from [`State::trie_node`](crate::State::trie_node).
#[derive(Clone, Copy, Debug)]
pub struct TrieNode<'a> {
    pub(crate) branch: &'a Branch,
}

/// One non-empty slot of a [`TrieNode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrieSlot {
    /// A deeper trie node (address it by appending this slot's nibble to the path).
    Subtree(Hash),
    /// A child entity and its Merkle hash ([`EntityHashes::full`]).
    Entity(EntityId, Hash),
}

impl TrieNode<'_> {
    /// This node's hash (what the parent's slot, or the container's children hash, holds).
    pub fn hash(&self) -> Hash {
        self.branch.hash
    }

    /// The non-empty slots in nibble order: `(nibble, slot)`.
    pub fn slots(&self) -> impl Iterator<Item = (u8, TrieSlot)> + '_ {
        self.branch.slots.iter().enumerate().filter_map(|(i, s)| {
            let slot = match s {
                Slot::Empty => return None,
                Slot::Leaf(id, h) => TrieSlot::Entity(*id, *h),
                Slot::Node(b) => TrieSlot::Subtree(b.hash),
            };
            Some((i as u8, slot))
        })
    }
}

/// The Merkle hashes of one entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityHashes {
    /// Hash of the entity's whole replicated state (value and metadata).
    pub own: Hash,
    /// Hash of its children trie ([`Hash::ZERO`] when it has none).
    pub children: Hash,
    /// `H(id ‖ own ‖ children)`: what its parent's trie holds for it.
    pub full: Hash,
}
