//! `tabmesh-base`: the vocabulary every tabmesh crate shares.
//!
//! - [`Hash`](struct@Hash) and [`Hasher`]: SHA-256 with domain separation ([`hash_parts`]);
//! - 32-byte ids: [`ContextId`], [`MemberId`] (an ed25519 public key), [`NodeId`], [`DeltaId`],
//!   [`EntityId`];
//! - [`Hlc`] and [`HlcClock`]: a hybrid logical clock whose physical time is always passed in;
//! - [`codec`]: the versioned binary codec for wire and disk formats ([`codec::Writer`],
//!   [`codec::Reader`], [`CodecError`]);
//! - [`kv`]: the synchronous key-value vocabulary of pure crates ([`WriteBatch`], [`KvRead`],
//!   [`MemoryKv`]);
//! - [`DetRng`]: a seeded deterministic generator for choices the caller seeds.
//!
//! What this crate deliberately is not: it does no IO, reads no clock and draws no randomness. Every
//! `now` is an argument. It has no target-specific code and compiles for every target.
//!
//! ```
//! use tabmesh_base::{codec, hash_parts, Hlc, HlcClock, DeltaId};
//!
//! // Ids are hashes with a domain tag, never random.
//! let id = DeltaId::from(hash_parts(b"tabmesh/example", &[b"hello"]));
//!
//! // The clock never reads the time itself: the caller passes `now` (ms since the Unix epoch).
//! let mut clock = HlcClock::new();
//! let a = clock.tick(1_000);
//! let b = clock.tick(1_000);
//! assert!(b > a);
//!
//! // Every encoding starts with a version byte; decoding checks it.
//! let mut w = codec::Writer::new();
//! w.id(&id);
//! a.encode(&mut w);
//! let bytes = w.finish();
//! let mut r = codec::Reader::new(&bytes).unwrap();
//! assert_eq!(r.id::<DeltaId>().unwrap(), id);
//! assert_eq!(Hlc::decode(&mut r).unwrap(), a);
//! r.finish().unwrap();
//! ```

mod bounded;
pub mod codec;
mod hash;
mod hlc;
mod id;
pub mod kv;
mod rng;

pub use bounded::make_room;
pub use codec::CodecError;
pub use hash::{hash_parts, Hash, Hasher};
pub use hlc::{ClockReport, Hlc, HlcClock, MAX_DRIFT_MS};
pub use id::{ContextId, DeltaId, EntityId, MemberId, NodeId};
pub use kv::{key, KvRead, MemoryKv, WriteBatch, WriteOp};
pub use rng::DetRng;
