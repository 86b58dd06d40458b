//! `tabmesh-state`: the replicated state of one context — CRDT entities with a Merkle index,
//! over a synchronous key-value store.
//!
//! An app's state is a tree of **entities**: root-level fields (registers, counters, maps, sets,
//! lists, texts), map entries of any of those types, set members, list and text elements. Ids are
//! derived, never random: a field's id is `H(domain ‖ name)`, a child's `H(domain ‖ parent ‖ key)`
//! ([`field_id`], [`entry_id`], [`member_id`], [`element_id`]), so replicas that create "the same"
//! nested collection concurrently merge instead of forking.
//!
//! **Delta-state CRDTs.** Every entity's replicated state (its metadata — [`Metadata`] — and a
//! type-specific body) is a join-semilattice. An [`Action`] is a small fragment of one entity's
//! state plus its parent link and [`CrdtKind`]; applying it is a join. A local [`Txn`] records one
//! action per entity it changes and goes through exactly the same join as [`State::apply`], and
//! an entity's full state ([`State::entity`]) is itself an `Action`, so Merkle repair and snapshots
//! apply whole states with the same join. Joins are commutative, associative and idempotent: the
//! state, every entity's metadata and the Merkle root are pure functions of the set of applied
//! actions (any order, any duplicates).
//!
//! **Merkle index** ([`State::root_hash`], [`State::entity_hashes`], [`State::trie_node`]): an
//! entity's own hash covers its whole replicated state; the children of every container hang from
//! a 16-ary hash trie over their ids' nibbles, whose shape depends only on the set of child ids, so
//! a write re-hashes `O(log K)` trie nodes for `K` siblings plus the ancestor chain. The root is
//! current after every write. A sync protocol walks two tries from the root, skipping equal
//! subtrees, and ships differing entities' states.
//!
//! **Collections** and their merge rules are documented on the read handles: [`RegisterRef`]
//! (LWW), [`CounterRef`] and [`PnCounterRef`] (per-member absolute slots), [`MapRef`] (entries
//! merged individually, update vs delete by HLC), [`SetRef`] (add-wins), [`ListRef`] and
//! [`TextRef`] (RGA). Write handles ([`RegisterMut`], …) come from a [`Txn`].
//!
//! **Storage.** The working set lives in memory. [`State::open`] loads it from a [`KvRead`];
//! every commit ([`Txn::commit`], [`State::apply`]) yields one [`WriteBatch`] with the new record
//! of each changed entity under the caller's prefix, encoded with the versioned codec.
//!
//! **Bounds** (documented constants, typed errors): [`MAX_KEY_LEN`], [`MAX_VALUE_LEN`],
//! [`MAX_ACTIONS`], [`MAX_COUNTER_SLOTS`], [`MAX_SET_TAGS`], [`MAX_DEPTH`]. Malformed, oversized or
//! type-confused actions from a peer are a [`StateError`] and change nothing.
//!
//! **Tombstones and garbage collection.** Deletes are tombstone stamps, kept so that a late
//! concurrent write can be ordered against them. [`State::collect_garbage`] removes, for good,
//! every deleted entity whose every stamp is older than a horizon the caller picks (the sync layer
//! uses `now − retention`), with its hidden subtree; it keeps deleted list/text elements that are
//! origins of retained ones, so element order never changes, and it is deterministic (same
//! actions, same horizon, same root). The state remembers its GC horizon (persisted, reopened by
//! [`State::open`]); [`State::apply_counted`] then drops fragments of absent entities that are
//! entirely older than it, so a collected deletion never comes back from a replica that still held
//! it. [`State::forget`] removes entities a peer is known to have collected.
//!
//! What this crate deliberately is not: it does no IO, reads no clock and draws no randomness
//! (every HLC is an argument), has no target-specific code, and knows nothing of deltas, signing,
//! the network or apps. It does not decide the retention: that is the sync layer's policy.
//!
//! ```
//! use tabmesh_base::{HlcClock, MemberId};
//! use tabmesh_state::{decode_actions, encode_actions, State};
//!
//! # fn main() -> Result<(), tabmesh_state::StateError> {
//! let (alice, bob) = (MemberId([1; 32]), MemberId([2; 32]));
//! let (mut a, mut b) = (State::new(b"ctx/"), State::new(b"ctx/"));
//! let (mut ca, mut cb) = (HlcClock::new(), HlcClock::new());
//!
//! // Concurrent writes: both edit the same text and the same counter, each on its own replica.
//! let mut t = a.txn(alice, ca.tick(1_000));
//! t.text("doc")?.insert(0, "hello")?;
//! t.map("likes")?.counter(b"post-1")?.increment(1)?;
//! let from_a = t.commit();
//!
//! let mut t = b.txn(bob, cb.tick(1_005));
//! t.text("doc")?.insert(0, "world")?;
//! t.map("likes")?.counter(b"post-1")?.increment(2)?;
//! let from_b = t.commit();
//!
//! // Exchange the actions (encoded as they travel), apply, persist the batches.
//! a.apply(&decode_actions(&encode_actions(&from_b.actions)?)?)?;
//! b.apply(&decode_actions(&encode_actions(&from_a.actions)?)?)?;
//!
//! assert_eq!(a.root_hash(), b.root_hash());
//! assert_eq!(a.text("doc")?.to_string(), "worldhello"); // concurrent inserts: newest first
//! assert_eq!(b.map("likes")?.counter(b"post-1")?.value(), 3);
//! # Ok(())
//! # }
//! ```

mod entity;
mod error;
mod ids;
mod limits;
mod merkle;
mod read;
mod seq;
mod stamp;
mod state;
mod txn;

pub use entity::{decode_actions, encode_actions, Action, ActionOp, CrdtKind, EntityKey, Metadata};
pub use error::StateError;
pub use ids::{element_id, entry_id, field_id, member_id};
pub use limits::{
    MAX_ACTIONS, MAX_COUNTER_SLOTS, MAX_DEPTH, MAX_KEY_LEN, MAX_SET_TAGS, MAX_VALUE_LEN,
};
pub use merkle::{EntityHashes, TrieNode, TrieSlot};
pub use read::{CounterRef, ListRef, MapRef, PnCounterRef, RegisterRef, SetRef, TextRef, Value};
pub use stamp::Stamp;
pub use state::{Applied, Collected, State};
pub use txn::{
    Commit, CounterMut, ListMut, MapMut, PnCounterMut, RegisterMut, SetMut, TextMut, Txn,
};

#[doc(no_inline)]
pub use tabmesh_base::{KvRead, WriteBatch};
