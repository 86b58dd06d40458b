//! [`BlobStore`]: where a node keeps its blobs — one small record per blob, its manifest, and its
//! chunks, each read and written on its own — and its three implementations: [`MemoryBlobStore`]
//! (`memory`), [`FileBlobStore`] (`file`) and `IdbBlobStore` (`idb`, only in a JS host). The
//! contract and the bounds are on the trait.

use std::future::Future;

use tabmesh_blobs::{BlobId, Manifest, CHUNK_SIZE, MAX_MANIFEST_LEN};

use crate::StoreError;

mod file;
#[cfg(js_host)]
mod idb;
mod memory;

pub use self::file::FileBlobStore;
#[cfg(js_host)]
pub use self::idb::IdbBlobStore;
pub use self::memory::MemoryBlobStore;

/// The largest blob record, in bytes: 4 KiB. A record is the driver's metadata about a blob (a few
/// dozen bytes: state, length, flags); a longer one is refused with [`StoreError::TooLarge`], and
/// one read back longer is [`StoreError::Corrupt`]. It bounds what [`BlobStore::records`] loads
/// at start to 4 KiB per blob.
pub const MAX_BLOB_RECORD: usize = 4 << 10;

/// Where a node keeps blobs: one record per blob (the driver's small metadata, opaque bytes here),
/// its manifest, and its chunks — each read and written on its own, so a 100 MB blob never sits
/// whole in memory. Separate from [`AsyncStore`](crate::AsyncStore) (nothing here is loaded at
/// start except the records).
///
/// A blob is up to [`MAX_BLOB_LEN`](tabmesh_blobs::MAX_BLOB_LEN) (4 GiB) long, so it is never
/// held whole: the driver stores the [`Manifest`] and every chunk as a fetch delivers them
/// ([`FetchAction::StoreManifest`](tabmesh_blobs::FetchAction::StoreManifest),
/// [`FetchAction::Store`](tabmesh_blobs::FetchAction::Store)), serves and reads chunk by chunk,
/// and resumes a fetch from [`BlobStore::held`].
///
/// - [`MemoryBlobStore`]: in memory, shared between its clones (tests, the simulator).
/// - [`FileBlobStore`]: a directory with one subdirectory per blob, through a
///   [`Disk`](crate::Disk).
/// - `IdbBlobStore` (only in a JS host): the `blobs` object store of an `IdbStore`'s database.
///
/// # Contract
///
/// Every implementation behaves alike (one set of tests runs against all of them):
///
/// - [`BlobStore::records`] lists the blobs that have a record (a blob with only a manifest or
///   chunks is not listed), ascending by id.
/// - A manifest is stored as given and verified when read: [`BlobStore::manifest`] decodes it with
///   [`Manifest::decode_for`], so a manifest that does not verify (a hand-built inconsistent one,
///   or damage) reads back as [`StoreError::Corrupt`]. Pass only verified manifests (those
///   [`Fetch`](tabmesh_blobs::Fetch), [`BlobWriter`](tabmesh_blobs::BlobWriter) and
///   [`Manifest::decode`] return).
/// - A chunk is stored and returned as given, **not** verified: the caller checks it against the
///   manifest ([`Manifest::verify_chunk`]) and deletes a bad one ([`BlobStore::delete_chunk`]).
///   Any `u32` index may be stored, whether or not a manifest is.
/// - Durability: [`BlobStore::put_record`], [`BlobStore::put_manifest`] and [`BlobStore::delete`]
///   are durable when they resolve; [`BlobStore::put_chunk`] is atomic (after a crash the chunk
///   is whole or absent) but may be lost in a crash (it is fetched again), and so may a
///   [`BlobStore::delete_chunk`] (the chunk then reappears, whole).
///
/// # Bounds
///
/// - A chunk is at most [`CHUNK_SIZE`] (256 KiB) bytes; a longer one is refused with
///   [`StoreError::TooLarge`] (nothing stored), and one read back longer is
///   [`StoreError::Corrupt`].
/// - A record is at most [`MAX_BLOB_RECORD`] (4 KiB) bytes, likewise.
/// - A manifest's encoding is at most [`MAX_MANIFEST_LEN`] (≈ 512 KiB) bytes: a (hand-built)
///   manifest whose encoding is longer is refused with [`StoreError::TooLarge`], and one read back
///   longer is [`StoreError::Corrupt`] (as is one that does not decode).
/// - [`BlobStore::records`] returns one record per stored blob; [`BlobStore::held`] one index per
///   stored chunk of the blob.
pub trait BlobStore {
    /// Every blob's record (loaded at start; a few dozen bytes each), ascending by blob id. A blob
    /// without a record is not listed.
    fn records(&mut self) -> impl Future<Output = Result<Vec<(BlobId, Vec<u8>)>, StoreError>>;

    /// Writes (replaces) a blob's record, durably (strict). A record over [`MAX_BLOB_RECORD`] is
    /// refused with [`StoreError::TooLarge`] (the old one stays).
    fn put_record(
        &mut self,
        blob: &BlobId,
        record: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>>;

    /// Stores a manifest (idempotent), durably, under its id. Stored as given: it is verified when
    /// read ([`BlobStore::manifest`]). One whose encoding is over
    /// [`MAX_MANIFEST_LEN`](tabmesh_blobs::MAX_MANIFEST_LEN) is refused with
    /// [`StoreError::TooLarge`].
    fn put_manifest(&mut self, manifest: &Manifest)
        -> impl Future<Output = Result<(), StoreError>>;

    /// The stored manifest, decoded and verified ([`Manifest::decode_for`]); a record that does
    /// not decode is [`StoreError::Corrupt`].
    fn manifest(
        &mut self,
        blob: &BlobId,
    ) -> impl Future<Output = Result<Option<Manifest>, StoreError>>;

    /// Stores one chunk, replacing one stored at that index (atomic: whole or absent after a
    /// crash; it may use relaxed durability — a chunk lost in a crash is fetched again). A chunk
    /// over [`CHUNK_SIZE`] is refused with [`StoreError::TooLarge`].
    fn put_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>>;

    /// One chunk's bytes, if stored (NOT verified here; the caller verifies against the
    /// manifest).
    fn chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>>;

    /// The indices of the chunks stored for a blob, ascending (keys only: no chunk bytes read).
    fn held(&mut self, blob: &BlobId) -> impl Future<Output = Result<Vec<u32>, StoreError>>;

    /// Removes one chunk (missing is fine).
    fn delete_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
    ) -> impl Future<Output = Result<(), StoreError>>;

    /// Removes a blob: record, manifest and every chunk (missing is fine), durably.
    fn delete(&mut self, blob: &BlobId) -> impl Future<Output = Result<(), StoreError>>;
}

/// Refuses a record over [`MAX_BLOB_RECORD`].
fn check_record(record: &[u8]) -> Result<(), StoreError> {
    check_len(record.len(), MAX_BLOB_RECORD)
}

/// Refuses a chunk over [`CHUNK_SIZE`].
fn check_chunk(bytes: &[u8]) -> Result<(), StoreError> {
    check_len(bytes.len(), CHUNK_SIZE)
}

/// The manifest's encoding, refused over [`MAX_MANIFEST_LEN`].
fn encode_manifest(manifest: &Manifest) -> Result<Vec<u8>, StoreError> {
    let bytes = manifest.encode();
    check_len(bytes.len(), MAX_MANIFEST_LEN)?;
    Ok(bytes)
}

fn check_len(len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        return Err(StoreError::TooLarge { len, max });
    }
    Ok(())
}

/// Decodes and verifies a stored manifest of `blob`; `whence` names where it was read (a path,
/// a key) for the [`StoreError::Corrupt`] message.
fn decode_manifest(blob: &BlobId, bytes: &[u8], whence: &str) -> Result<Manifest, StoreError> {
    Manifest::decode_for(blob, bytes).map_err(|e| {
        StoreError::Corrupt(format!(
            "{whence}: the manifest of blob {blob} does not decode: {e}"
        ))
    })
}

/// Refuses a record or chunk read back over its bound (`what` and `whence` name it).
fn check_stored(len: usize, max: usize, what: &str, whence: &str) -> Result<(), StoreError> {
    if len > max {
        return Err(StoreError::Corrupt(format!(
            "{whence}: a stored {what} of {len} bytes, over the limit of {max}"
        )));
    }
    Ok(())
}
