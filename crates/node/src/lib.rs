//! `tabmesh-node`: the node.
//!
//! [`NodeCore`] is the sans-IO state machine of one node with any number of contexts. Inputs are
//! method calls, each with `now_ms`: creating or joining a context, a local commit (from an app call), bytes
//! from a peer, a peer joining or leaving a context, a timer firing; a restart rebuilds the core
//! with [`NodeCore::load`] from what its earlier persist batches wrote. Outputs are drained with
//! [`NodeCore::poll_output`]: subscribe, publish on a context's topic, send to a peer, persist a
//! write batch, store a blob an app created, arm or cancel a timer, notify subscribers.
//!
//! **Apps.** A context runs an app module ([`NodeCore::create_context`],
//! [`NodeCore::join_context`]); [`NodeCore::execute`] calls one of its methods in one state
//! transaction that becomes one delta on success and vanishes on any error. Events naming a
//! handler run that handler on every member that applies the delta through its DAG except the
//! author, as a new delta with a hop count bounded by [`MAX_HOPS`](tabmesh_sync::MAX_HOPS); due
//! handlers are persisted with the delta that made them due and replayed after a restart
//! (at least once; exactly once without crashes). Handler outcomes are [`NodeEvent::HandlerRan`]
//! and [`NodeEvent::HandlerFailed`], never fatal.
//!
//! **Blobs.** Apps write and read blobs through the ABI's `blob` call. A call's blobs are chunked
//! as they are written and exist only if the call succeeds: then each is an [`Output::StoreBlob`]
//! (before the call's persist batch and publish) and enters the node's read cache. Apps read from
//! that cache only ([`BLOB_CACHE_BYTES`], blobs of at most [`MAX_APP_READ_BLOB`]); opening a blob
//! it lacks fails and the node remembers the id ([`NodeCore::take_wanted_blobs`]) for the driver to
//! fetch and hand back ([`NodeCore::cache_blob`]). Per call: at most [`MAX_BLOB_HANDLES`] handles
//! and [`MAX_CALL_BLOB_BYTES`] written, reads of at most [`MAX_BLOB_READ`]. For the driver:
//! [`NodeCore::peer_is_member`] (may a peer be served or asked) and [`NodeCore::blob_refs`] (the
//! blobs the state names, for garbage collection).
//!
//! **Contexts and members.** [`NodeCore::create_context`] founds a context (this node its first
//! admin, under a fresh per-context member key); [`NodeCore::invite`] makes a signed invitation
//! link; [`NodeCore::join_context`] joins with one, catching up from any member before writing its
//! join; [`NodeCore::remove_member`], [`NodeCore::rotate_key`] and [`NodeCore::change_app`] are
//! admin operations. Deltas are signed and encrypted; requests and responses are sealed
//! ([`Wire`]); a peer that lacks an epoch's key gets the deltas carrying it
//! ([`Wire::KeyNeeded`]); an admin shares keys with members that lack them. The rules live in
//! `tabmesh_sync::gov`.
//!
//! What it deliberately is not: it reads no clock, draws no randomness (a [`Seed`] drives every
//! choice and every key), does no IO and spawns nothing. The browser, Node.js and native drivers (async shells
//! owning timers, storage and the network) and the deterministic simulator wrap it; they are the
//! only code that touches the outside world.
//!
//! ```
//! use tabmesh_auth::{Keypair, Role};
//! use tabmesh_base::MemoryKv;
//! use tabmesh_node::{NodeConfig, NodeCore, Output, Seed, Wire};
//!
//! // A driver stores the node key and seeds every start with fresh OS entropy; tests fix both.
//! let key = Keypair::from_secret([1; 32]);
//! let mut node = NodeCore::new(key, NodeConfig::default(), Seed::from_u64(42));
//! // A context of plain state, founded by this node (its first admin); its id is derived.
//! let (ctx, _) = node.create_context(0, None, b"")?;
//! node.commit(5, ctx, |txn| {
//!     txn.counter("visits")?.increment(1)?;
//!     Ok(())
//! })?;
//!
//! // The driver persists, publishes and arms timers; here we keep the writes and look at what
//! // is published: the genesis and the write, as gossiped (signed, encrypted) deltas.
//! let mut disk = MemoryKv::new();
//! let mut published = 0;
//! while let Some(out) = node.poll_output() {
//!     match out {
//!         Output::Persist(batch) => disk.apply(&batch),
//!         Output::Publish { bytes, .. } => {
//!             assert!(matches!(Wire::decode(&bytes), Ok(Wire::Gossip(_))));
//!             published += 1;
//!         }
//!         _ => {}
//!     }
//! }
//! assert_eq!(published, 2);
//! // Others join with an invitation link: `invite` here, `join_context` there.
//! let link = node.invite(ctx, Role::Member, 60_000, "")?;
//! assert!(link.starts_with("tabmesh-invite:"));
//!
//! // A restart rebuilds the node from what it persisted, with the key it stored.
//! let key = NodeCore::stored_node_key(&disk).expect("stored with the first batch");
//! let restarted = NodeCore::load(key, NodeConfig::default(), Seed::from_u64(43), 10, &disk)?;
//! assert_eq!(restarted.id(), node.id());
//! assert_eq!(restarted.member(&ctx), node.member(&ctx));
//! assert_eq!(restarted.state(&ctx).map(|s| s.counter("visits").map(|c| c.value())), Some(Ok(1)));
//! # Ok::<(), tabmesh_node::NodeError>(())
//! ```

mod app;
mod blob;
mod core;
mod error;
mod strikes;
mod wire;

pub use crate::blob::{
    BLOB_CACHE_BYTES, MAX_APP_READ_BLOB, MAX_BLOB_HANDLES, MAX_BLOB_READ, MAX_BLOB_REFS,
    MAX_CALL_BLOB_BYTES, MAX_WANTED_BLOBS,
};
pub use crate::core::{
    ExecOutcome, NodeConfig, NodeCore, NodeEvent, Output, Seed, TimerKey, MAX_CONTEXTS,
    MAX_HANDLERS_PER_INPUT, MIGRATE_HOOK,
};
pub use crate::strikes::{is_strike, BAN_MS, MAX_STRIKE_RECORDS, STRIKES_TO_BAN, STRIKE_WINDOW_MS};
pub use crate::wire::{Wire, MAX_WIRE};
pub use error::NodeError;
