//! `tabmesh-sync`: the sans-IO sync protocols of one context.
//!
//! A [`Replica`] owns a context's causal DAG ([`tabmesh_dag`]) and CRDT state ([`tabmesh_state`])
//! and keeps them caught up with peers through every path the design names, in order of cost:
//!
//! 1. **Receive** ([`Replica::handle_delta`]): recompute the delta id from the [`Envelope`]
//!    (ids are never trusted), insert into the DAG, apply now or buffer until the parents arrive,
//!    cascade, and report what applied ([`SyncEvent::Applied`]).
//! 2. **Missing-parent pull**: a buffered delta's missing parents are asked from the peer that sent
//!    it, then from others, with a per-request timeout, exponential backoff and a bounded number of
//!    attempts; the periodic tick re-scans the DAG's missing parents, so nothing waits forever.
//! 3. **Periodic sync**: every [`SyncConfig::tick_ms`] (at most one session per
//!    [`SyncConfig::min_interval_ms`], each within [`SyncConfig::session_timeout_ms`]) exchange
//!    summaries with one peer chosen by the seeded generator and run what [`select_protocol`]
//!    picks: nothing, **delta sync** (paged deltas since our heads), **Merkle comparison** (walk
//!    both tries from the root, skip equal subtrees, pull and push differing entity states, then
//!    verify against the peer's live root: success is never reported while roots differ), or a
//!    **snapshot** (only for an empty replica: paged from a copy the peer freezes, verified against
//!    its root before anything is applied; deltas arriving meanwhile are buffered and replayed).
//! 4. **Housekeeping**: stale pending deltas are evicted (and re-pulled later), the DAG is
//!    compacted past [`SyncConfig::compact_after`] deltas (peers that need pruned history are
//!    caught up by Merkle comparison), and tombstones older than
//!    [`SyncConfig::tombstone_retention_ms`] are garbage-collected. Summaries carry the GC horizon;
//!    fragments of collected entities that come back are dropped, and a Merkle comparison forgets
//!    what the peer collected instead of pushing it, so a replica offline for longer than the
//!    retention converges without resurrecting deleted data (the retention's contract, and what
//!    it gives up, are on [`SyncConfig::tombstone_retention_ms`]).
//!
//! Every message is a [`Frame`] in one versioned codec with documented bounds ([`MAX_FRAME`],
//! [`MAX_IDS`], [`MAX_DELTAS`], …); malformed or unknown-version bytes are a [`SyncError`].
//!
//! # Governance, signatures and encryption
//!
//! Every context is governed ([`gov`]): its id binds its creator, its members and their roles
//! follow from signed governance operations replicated inside ordinary deltas, and each delta is
//! signed by its author's per-context member key ([`Envelope::verify_signature`], over the
//! recomputed id) and sealed with the key of the epoch current at its causal position. A
//! receiver checks the id, then the signature (before buffering), then — once the parents are
//! applied — the author's membership at the delta's causal position and the removal cut, and only
//! then decrypts ([`AccessError`] names each refusal). Requests and responses travel as
//! [`Sealed`] messages: encrypted, signed, bound to both node ids, answered only for members
//! (or an invitee catching up); from a member key whose join has not reached the receiver, only
//! the answer to a pull is taken (deltas, each checked like a gossiped one). A snapshot joiner
//! installs the peer's governance log ([`Request::Governance`]) after the snapshot's pages and
//! before the state, so the log holds every operation the snapshot covers; replicas whose logs
//! differ exchange logs before comparing states. Summaries and snapshot pages carry the largest
//! stamp among the sender's heads ([`Summary::heads_stamp`]): a replica holding heads only as
//! covered stamps what it writes on them (a join, which must be stamped after its parents)
//! after that bound.
//!
//! What this crate deliberately is not: it does no IO, reads no clock (`now_ms` is an argument)
//! and draws no randomness (a seed and a seeded [`tabmesh_auth::Entropy`] are given); it knows no
//! transport: peers are [`NodeId`]s and the driver moves [`Output`]s. It runs no app code.
//!
//! # Events and due handlers
//!
//! A delta's payload is a versioned [`DeltaPayload`]: its actions, the app events the call emitted
//! ([`AppEvent`], optionally naming a handler method) and a handler hop. When a delta applies
//! through the DAG — received directly, cascaded, pulled as a missing parent or in a delta-sync
//! page — each of its events that names a handler becomes a [`DueHandler`] record, written in the
//! same batch that applies the delta, unless this replica's member ([`Replica::member`])
//! wrote the delta. State installed by a snapshot or a Merkle repair makes nothing due. The node
//! takes due handlers ([`Replica::take_due`]), runs them and completes each in the batch of the
//! delta it produced ([`Replica::commit_with`]) or gives it up ([`Replica::complete_due`]); a
//! reopened replica reloads the records left, so every due handler runs at least once.
//!
//! # Driving a replica
//!
//! After every input (`handle_*`, `add_peer`, `commit`, …) drain [`Replica::poll_output`]:
//! persist each [`Output::Persist`] atomically before acting on the outputs after it, send,
//! broadcast, notify. Call [`Replica::handle_timeout`] once [`Replica::poll_timeout`] is reached.
//!
//! ```
//! use tabmesh_auth::{Entropy, Keypair, Role};
//! use tabmesh_base::{Hash, HlcClock, MemberId, NodeId};
//! use tabmesh_sync::{Access, Founder, Output, Replica, SyncConfig, SyncError};
//!
//! let access = |secret: u8| Access {
//!     me: Keypair::from_secret([secret; 32]),
//!     entropy: Entropy::from_seed([secret ^ 0x55; 32]), // the driver's OS entropy in real life
//!     keys: Vec::new(),
//! };
//! let b_member = MemberId(Keypair::from_secret([2; 32]).public());
//! let mut clock = HlcClock::new();
//! let drain = |r: &mut Replica| -> Vec<Output> { std::iter::from_fn(|| r.poll_output()).collect() };
//!
//! // `a` founds a context (app hash zero: plain state) with `b` as a founding member.
//! let founders = [Founder { member: b_member, role: Role::Member }];
//! let mut a = Replica::create(
//!     b"a/", SyncConfig::default(), 1, 0, access(1), Hash::ZERO, &founders, clock.tick(0), [9; 32],
//! )?;
//! let mut b = Replica::new(a.context(), b"b/", SyncConfig::default(), 2, 0, access(2));
//!
//! // A local write on `a` becomes a signed, encrypted delta to broadcast.
//! let ((), id) = a.commit(10, clock.tick(10), |txn| {
//!     txn.register("title")?.set(b"hello")?;
//!     Ok::<(), SyncError>(())
//! })?;
//! let broadcasts: Vec<_> = drain(&mut a)
//!     .into_iter()
//!     .filter_map(|o| match o { Output::Broadcast(env) => Some(env), _ => None })
//!     .collect();
//! assert_eq!(broadcasts.len(), 2, "the genesis, then the write");
//! assert!(!broadcasts[1].ciphertext.windows(5).any(|w| w == b"hello"), "sealed");
//!
//! // `b` receives both: it opens its key box in the genesis, checks, decrypts, applies.
//! for env in broadcasts {
//!     b.handle_delta(20, Some(NodeId([1; 32])), env);
//! }
//! drain(&mut b);
//! assert_eq!(b.state().register("title")?.get(), Some(&b"hello"[..]));
//! assert_eq!(a.state().root_hash(), b.state().root_hash());
//! assert_eq!(b.dag().heads(), vec![id.expect("a delta id")]);
//! assert!(b.membership().members.contains_key(&b_member));
//! # Ok::<(), SyncError>(())
//! ```

mod config;
mod direct;
mod due;
mod envelope;
mod error;
pub mod gov;
mod payload;
mod replica;
mod select;
mod wire;

pub use config::SyncConfig;
pub use direct::{InviteeProof, Sealed};
pub use due::DueHandler;
pub use envelope::{
    Body, Envelope, DELTA_SIGNATURE_DOMAIN, MAX_DELTA_CIPHERTEXT, MAX_DELTA_PARENTS,
    MAX_DELTA_PAYLOAD,
};
pub use error::{AccessError, SyncError};
pub use gov::governance::{VoidReason, MAX_GOV_OPS, MAX_HELD_KEYS, MAX_JOIN_CIPHERTEXT};
pub use gov::{
    context_id, epoch_id, Founder, GovOp, KeyBox, KeyMaterial, MAX_BOX_KEYS, MAX_EPOCH_PARTS,
    MAX_FOUNDERS, MAX_INVITE_HEADS, MAX_KEY_BOXES,
};
pub use payload::{
    AppEvent, DeltaPayload, MAX_DELTA_EVENTS, MAX_EVENT_DATA, MAX_EVENT_KIND, MAX_HANDLER_NAME,
    MAX_HOPS, PAYLOAD_FORMAT,
};
pub use replica::{
    Access, Membership, OpenError, Output, Replica, SessionFailure, SessionOutcome, SyncEvent,
    SyncMetrics, MAX_PULLS_IN_FLIGHT, MAX_REJECTED, MAX_SESSION_PAGES, MAX_WALK_QUEUE,
};
pub use select::{select_protocol, Protocol};
pub use wire::{
    Frame, GovEntry, Message, Refusal, Request, Response, SnapshotCursor, Summary, TreeNode,
    TreeRef, MAX_DELTAS, MAX_ENTITIES, MAX_ENTITY_BYTES, MAX_FRAME, MAX_GOV_ENTRIES, MAX_IDS,
    MAX_PATH, MAX_TREE_NODES,
};

#[doc(no_inline)]
pub use tabmesh_base::NodeId;
