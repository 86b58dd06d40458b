//! `tabmesh-storage`: the node's durable key-value store, and its blob store (an IO shell).
//!
//! The pure crates describe every change as one [`WriteBatch`]; `NodeCore` emits it as
//! `Output::Persist`. A driver commits each one through a [`Store`] before acting on the outputs
//! that depend on it, and on restart loads everything committed into a [`MemoryKv`] for
//! `NodeCore::load`. A [`Store`] commits a batch **atomically** (all of it or none of it, even
//! across a crash) and **durably** (once `commit` returns, the batch survives a crash).
//!
//! - [`MemoryStore`]: in memory, for tests and the browser-less simulator; compiles everywhere.
//! - [`FileStore`]: a directory holding a snapshot and a write-ahead log, with [`Config`] for when
//!   the log is compacted. Its file system calls go through a [`Disk`]: natively `StdDisk`
//!   ([`std::fs`]; `FileStore::open`), in Node.js `JsDisk` (a JS object wrapping `node:fs`'s
//!   synchronous calls; `FileStore::open_js`, only in a JS host). The formats and the recovery are
//!   the same code on both.
//! - [`codec`]: the encoding of a batch (a log record's payload).
//! - [`AsyncStore`]: the same contract with asynchronous operations, which the drivers take; every
//!   [`Store`] is one.
//! - `IdbStore` (only in a JS host): the store in IndexedDB, one `readwrite` transaction with
//!   strict durability per commit; schema version `IDB_SCHEMA_VERSION`.
//! - [`BlobStore`]: where blobs live, apart from the key-value store: per blob a small record
//!   (the driver's metadata, opaque here), its manifest ([`tabmesh_blobs::Manifest`]) and its
//!   chunks, each read and written on its own, so a blob of up to 4 GiB never sits in memory and
//!   only the records are loaded at start (see [the blob store](#the-blob-store) below).
//!   [`MemoryBlobStore`] (shared between clones; tests, the simulator), [`FileBlobStore`] (a
//!   directory, on the same [`Disk`]s as [`FileStore`]), `IdbBlobStore` (only in a JS host: the
//!   `blobs` object store of an `IdbStore`'s database, from `IdbStore::blob_store`).
//!
//! What it deliberately is not: it reads no clock, draws no randomness, spawns no thread and
//! never sleeps; it does IO only in the file stores (through their [`Disk`]) and the IndexedDB
//! stores, only when called. It is not a database: the whole key-value
//! store is held in memory (the node loads all of it anyway), there are no reads from disk after
//! opening, and one process at a time may use a directory (not enforced). The blob store holds
//! nothing in memory (but [`MemoryBlobStore`]) and checks no chunk against its manifest: the
//! caller does.
//!
//! # On disk (`FileStore`)
//!
//! A directory holds one generation `g` (during a compaction, briefly two):
//!
//! - `snap-<g>`: the full image after record `s`:
//!   `VERSION ‖ s (u64) ‖ count (u64) ‖ count × (key ‖ value) ‖ checksum`, keys ascending, each
//!   key and value `u32`-length-prefixed;
//! - `log-<g>`: the records `s + 1, s + 2, …` committed since, appended one per commit:
//!   `VERSION ‖ len (u32) ‖ seq (u64) ‖ batch encoding (len bytes, [`codec`]) ‖ checksum`.
//!
//! `VERSION` is [`tabmesh_base::codec::VERSION`]; integers are little-endian; a checksum is the
//! first 8 bytes of the SHA-256 ([`tabmesh_base::Hash::of`]) of every byte before it. A record's
//! frame (everything but the payload) is the same in every version, so a record a newer build
//! wrote is recognised as such ([`StoreError::Corrupt`], "unknown format version") rather than
//! mistaken for damage.
//!
//! Opening replays the newest snapshot's log up to its first broken record. A broken record
//! (short, or failing its checksum) that no whole record follows is a **torn tail**, the write a
//! crash interrupted (its commit never returned): it is cut off and the store opens. (Damage to
//! the last record cannot be told from a torn write, so it is cut off too.) One that whole records
//! follow is damage: [`StoreError::Corrupt`].
//!
//! # Bounds
//!
//! - [`MAX_RECORD`] (64 MiB): the largest log record, so the largest batch encoding is
//!   [`MAX_BATCH`] and every key and value is at most that; a larger batch is refused with
//!   [`StoreError::TooLarge`] (by [`MemoryStore`] too).
//! - `Config::compact_at` (default `DEFAULT_COMPACT_AT`, 16 MiB) and `COMPACT_FACTOR` (2): the log
//!   is compacted once over `max(compact_at, 2 × snapshot size)`, which bounds replay work and disk
//!   use.
//! - A snapshot has no bound of its own: it is the image of the store, which is held in memory;
//!   reading it never allocates more than the file holds. Compaction builds it in memory too.
//!
//! # The blob store
//!
//! [`BlobStore`]: `records` (every blob's record, ascending by id: what the driver loads at
//! start), `put_record`, `put_manifest`, `manifest` (decoded and verified, else
//! [`StoreError::Corrupt`]), `put_chunk`, `chunk` (as stored, not verified), `held` (a blob's
//! chunk indices, ascending, without reading chunks), `delete_chunk` and `delete` (record,
//! manifest and every chunk). Records, manifests and deletions are durable when they resolve; a
//! chunk write is atomic (whole or absent after a crash) but may be lost in one (it is fetched
//! again).
//!
//! - On disk ([`FileBlobStore`]): `<dir>/<blob id, 64 lower-case hex>/record`, `/manifest`,
//!   `/<chunk index, decimal>`, each written whole: to `<name>.tmp`, synced, renamed into place
//!   (records and manifests then sync the directories). The files have no header of their own:
//!   the manifest is its own versioned encoding ([`tabmesh_blobs::Manifest::encode`]), the record
//!   the caller's bytes, a chunk raw bytes. A deletion renames the blob's directory to
//!   `<id>.del`, syncs, then removes it (opening removes one a crash left).
//! - In IndexedDB (`IdbBlobStore`): the object store `blobs`, binary keys `r ‖ id` (record),
//!   `m ‖ id` (manifest), `c ‖ id ‖ index (u32 big-endian)` (chunk: a blob's chunks are one key
//!   range), `Uint8Array` values; strict durability for records, manifests and deletions, relaxed
//!   for chunks.
//!
//! Bounds: a chunk is at most [`tabmesh_blobs::CHUNK_SIZE`] (256 KiB), a record at most
//! [`MAX_BLOB_RECORD`] (4 KiB), a manifest's encoding at most
//! [`tabmesh_blobs::MAX_MANIFEST_LEN`] (≈ 512 KiB): a longer one is refused with
//! [`StoreError::TooLarge`] (nothing written), and one read back longer is
//! [`StoreError::Corrupt`].
//!
//! # Example
//!
//! ```
//! use tabmesh_base::{KvRead, WriteBatch};
//! use tabmesh_storage::{MemoryStore, Store, StoreError, MAX_RECORD};
//!
//! let mut store = MemoryStore::new();
//! let mut batch = WriteBatch::new();
//! batch.put(b"n/clock".to_vec(), b"1".to_vec());
//! batch.put(b"n/key".to_vec(), b"secret".to_vec());
//! store.commit(&batch).unwrap();
//!
//! let mut batch = WriteBatch::new();
//! batch.delete(b"n/key".to_vec());
//! store.commit(&batch).unwrap();
//!
//! // A restart loads everything committed.
//! let kv = store.load().unwrap();
//! assert_eq!(kv.get(b"n/clock"), Some(b"1".to_vec()));
//! assert_eq!(kv.get(b"n/key"), None);
//!
//! // A batch over the record bound is refused whole.
//! let mut huge = WriteBatch::new();
//! huge.put(b"k".to_vec(), vec![0; MAX_RECORD]);
//! assert!(matches!(store.commit(&huge), Err(StoreError::TooLarge { .. })));
//! assert_eq!(store.load().unwrap(), kv);
//! ```

use std::future::Future;

mod blob;
pub mod codec;
mod error;
mod file;
#[cfg(js_host)]
mod idb;
mod memory;

#[cfg(js_host)]
pub use blob::IdbBlobStore;
pub use blob::{BlobStore, FileBlobStore, MemoryBlobStore, MAX_BLOB_RECORD};
pub use error::StoreError;
#[cfg(js_host)]
pub use file::JsDisk;
#[cfg(not(js_host))]
pub use file::StdDisk;
pub use file::{Config, Disk, FileStore, COMPACT_FACTOR, DEFAULT_COMPACT_AT};
#[cfg(js_host)]
pub use idb::{IdbStore, BLOCKED_WAIT_MS, IDB_SCHEMA_VERSION};
pub use memory::MemoryStore;

use tabmesh_base::{MemoryKv, WriteBatch};

/// The largest log record, in bytes: 64 MiB. A batch whose record would be larger is refused
/// ([`StoreError::TooLarge`]); it also bounds every length a reader accepts from a file.
pub const MAX_RECORD: usize = 64 << 20;

/// Bytes a log record adds to its batch encoding: version (1), length (4), sequence number (8),
/// checksum (8).
pub const RECORD_OVERHEAD: usize = 1 + 4 + 8 + 8;

/// The largest batch encoding ([`codec::encode`]): [`MAX_RECORD`] − [`RECORD_OVERHEAD`]. Also the
/// bound of every key and value read back.
pub const MAX_BATCH: usize = MAX_RECORD - RECORD_OVERHEAD;

/// The node's store: loads what was committed, commits one batch atomically.
pub trait Store {
    /// Everything committed so far.
    fn load(&mut self) -> Result<MemoryKv, StoreError>;

    /// Commits one batch atomically and durably (returns once it survives a crash).
    ///
    /// On an error the batch may or may not be durable (a failed write or sync leaves the file in
    /// an unknown state) except for [`StoreError::TooLarge`], which writes nothing; a store that
    /// cannot tell refuses further calls ([`StoreError::Poisoned`]) until reopened.
    fn commit(&mut self, batch: &WriteBatch) -> Result<(), StoreError>;
}

/// A store whose operations complete asynchronously (an IndexedDB transaction completes in an
/// event); what the drivers take. Every [`Store`] is one, ready at once. The contract is
/// [`Store`]'s: `commit` resolves once the batch is durable, all of it or none.
pub trait AsyncStore {
    /// Everything committed so far.
    fn load(&mut self) -> impl Future<Output = Result<MemoryKv, StoreError>>;

    /// Commits one batch atomically and durably.
    fn commit(&mut self, batch: &WriteBatch) -> impl Future<Output = Result<(), StoreError>>;
}

impl<S: Store> AsyncStore for S {
    fn load(&mut self) -> impl Future<Output = Result<MemoryKv, StoreError>> {
        std::future::ready(Store::load(self))
    }

    fn commit(&mut self, batch: &WriteBatch) -> impl Future<Output = Result<(), StoreError>> {
        std::future::ready(Store::commit(self, batch))
    }
}
