//! [`MemoryBlobStore`]: the blob store of tests and of the simulator.

use std::collections::BTreeMap;
use std::future::{ready, Future};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tabmesh_blobs::{BlobId, Manifest};

use super::{check_chunk, check_record, decode_manifest, encode_manifest, BlobStore};
use crate::StoreError;

/// A [`BlobStore`] in memory, shared: every clone sees and changes the same blobs, so a test keeps
/// a clone of the store it hands to a node and looks inside (or damages a chunk with
/// [`MemoryBlobStore::corrupt_chunk`]). Nothing survives the last clone. It refuses what the other
/// stores refuse (a chunk over [`CHUNK_SIZE`](tabmesh_blobs::CHUNK_SIZE), a record over
/// [`MAX_BLOB_RECORD`](crate::MAX_BLOB_RECORD)) and keeps manifests encoded, verifying them when
/// read, so a caller tested against it meets the same errors on disk.
#[derive(Clone, Debug, Default)]
pub struct MemoryBlobStore {
    inner: Arc<Mutex<Blobs>>,
}

#[derive(Debug, Default)]
struct Blobs {
    records: BTreeMap<BlobId, Vec<u8>>,
    /// Encoded ([`Manifest::encode`]).
    manifests: BTreeMap<BlobId, Vec<u8>>,
    chunks: BTreeMap<(BlobId, u32), Vec<u8>>,
}

impl Blobs {
    /// The chunks of `blob`, by index.
    fn chunks_of(&self, blob: &BlobId) -> impl Iterator<Item = (&(BlobId, u32), &Vec<u8>)> {
        self.chunks.range((*blob, 0)..=(*blob, u32::MAX))
    }
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> MemoryBlobStore {
        MemoryBlobStore::default()
    }

    /// **For tests**: damages the stored chunk `index` of `blob` by flipping every bit of its first
    /// byte, as a bad disk would (a reader that verifies it against the manifest then refuses it).
    /// Returns whether there was a chunk to damage (a missing or empty one is left alone).
    pub fn corrupt_chunk(&self, blob: &BlobId, index: u32) -> bool {
        match self
            .lock()
            .chunks
            .get_mut(&(*blob, index))
            .and_then(|bytes| bytes.first_mut())
        {
            Some(byte) => {
                *byte ^= 0xff;
                true
            }
            None => false,
        }
    }

    /// **For tests**: how many chunks are stored, all blobs together.
    pub fn chunk_count(&self) -> usize {
        self.lock().chunks.len()
    }

    /// The blobs. A panic while the lock was held (only in a test) leaves them consistent: every
    /// change below is one map operation.
    fn lock(&self) -> MutexGuard<'_, Blobs> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BlobStore for MemoryBlobStore {
    fn records(&mut self) -> impl Future<Output = Result<Vec<(BlobId, Vec<u8>)>, StoreError>> {
        let records = self
            .lock()
            .records
            .iter()
            .map(|(id, record)| (*id, record.clone()))
            .collect();
        ready(Ok(records))
    }

    fn put_record(
        &mut self,
        blob: &BlobId,
        record: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> {
        ready(check_record(record).map(|()| {
            self.lock().records.insert(*blob, record.to_vec());
        }))
    }

    fn put_manifest(
        &mut self,
        manifest: &Manifest,
    ) -> impl Future<Output = Result<(), StoreError>> {
        ready(encode_manifest(manifest).map(|bytes| {
            self.lock().manifests.insert(manifest.id, bytes);
        }))
    }

    fn manifest(
        &mut self,
        blob: &BlobId,
    ) -> impl Future<Output = Result<Option<Manifest>, StoreError>> {
        let stored = self.lock().manifests.get(blob).cloned();
        ready(
            stored
                .map(|bytes| decode_manifest(blob, &bytes, "memory"))
                .transpose(),
        )
    }

    fn put_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> {
        ready(check_chunk(bytes).map(|()| {
            self.lock().chunks.insert((*blob, index), bytes.to_vec());
        }))
    }

    fn chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> {
        ready(Ok(self.lock().chunks.get(&(*blob, index)).cloned()))
    }

    fn held(&mut self, blob: &BlobId) -> impl Future<Output = Result<Vec<u32>, StoreError>> {
        let held = self
            .lock()
            .chunks_of(blob)
            .map(|(&(_, index), _)| index)
            .collect();
        ready(Ok(held))
    }

    fn delete_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
    ) -> impl Future<Output = Result<(), StoreError>> {
        self.lock().chunks.remove(&(*blob, index));
        ready(Ok(()))
    }

    fn delete(&mut self, blob: &BlobId) -> impl Future<Output = Result<(), StoreError>> {
        let mut blobs = self.lock();
        blobs.records.remove(blob);
        blobs.manifests.remove(blob);
        let indices: Vec<u32> = blobs
            .chunks_of(blob)
            .map(|(&(_, index), _)| index)
            .collect();
        for index in indices {
            blobs.chunks.remove(&(*blob, index));
        }
        ready(Ok(()))
    }
}
