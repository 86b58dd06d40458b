//! The serving side: [`serve`] answers one [`BlobRequest`] from what a [`BlobLookup`] holds, and
//! [`MemoryBlobs`] is a lookup kept in memory (tests, the simulator, a small cache).

use std::collections::BTreeMap;

use crate::{chunk_bytes, BlobError, BlobId, BlobRequest, BlobResponse, Manifest, Want};

/// What a node holds, as [`serve`] needs it. An IO shell whose store is asynchronous loads the
/// request's manifest and chunk first (the request names both) and passes them through a small
/// struct implementing this.
pub trait BlobLookup {
    /// The blob's manifest, if this node has it. It is trusted to be verified (it was, when it
    /// was stored).
    fn manifest(&self, blob: &BlobId) -> Option<&Manifest>;
    /// Chunk `index` of the blob, if this node has it.
    fn chunk(&self, blob: &BlobId, index: u32) -> Option<&[u8]>;
}

/// The outcome of [`serve`]: the response to send, and a chunk found corrupt in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// What to send back.
    pub response: BlobResponse,
    /// A stored chunk that did not match its manifest (answered as missing, so the requester goes
    /// elsewhere instead of penalising us): the driver should delete it and fetch it again.
    pub corrupt: Option<u32>,
}

/// Answers one request: the encoded manifest, a chunk, or [`BlobResponse::Missing`] when this node
/// lacks the manifest, the chunk, or the index is past the blob's end. Every chunk is checked
/// against its manifest before it leaves (one hash of at most [`CHUNK_SIZE`](crate::CHUNK_SIZE)
/// bytes), so a damaged store never gets this node penalised by its peers.
///
/// **The membership check belongs to the caller.** `serve` answers anyone: before calling it the
/// driver must check that the requester is a member of a context the blob is shared in, and that
/// the request came over an authenticated channel. Blobs are content-addressed, not secret by
/// themselves, but whoever knows an id must not be able to read a blob it was not given.
pub fn serve(lookup: &impl BlobLookup, request: &BlobRequest) -> Served {
    let blob = request.blob;
    let missing = |corrupt| Served {
        response: BlobResponse::Missing {
            blob,
            what: request.what,
        },
        corrupt,
    };
    let Some(manifest) = lookup.manifest(&blob) else {
        return missing(None);
    };
    match request.what {
        Want::Manifest => Served {
            response: BlobResponse::Manifest {
                blob,
                bytes: manifest.encode(),
            },
            corrupt: None,
        },
        Want::Chunk(index) => {
            let Some(bytes) = lookup.chunk(&blob, index) else {
                return missing(None);
            };
            match manifest.verify_chunk(index, bytes) {
                Ok(()) => Served {
                    response: BlobResponse::Chunk {
                        blob,
                        index,
                        bytes: bytes.to_vec(),
                    },
                    corrupt: None,
                },
                Err(BlobError::ChunkIndex { .. }) => missing(None),
                Err(_) => missing(Some(index)),
            }
        }
    }
}

/// Blobs kept in memory: verified manifests and the verified chunks held of each (possibly only
/// some). Unbounded by itself: the caller decides what it keeps.
#[derive(Clone, Debug, Default)]
pub struct MemoryBlobs {
    blobs: BTreeMap<BlobId, Stored>,
}

#[derive(Clone, Debug)]
struct Stored {
    manifest: Manifest,
    chunks: BTreeMap<u32, Vec<u8>>,
}

impl MemoryBlobs {
    /// An empty store.
    pub fn new() -> MemoryBlobs {
        MemoryBlobs::default()
    }

    /// Chunks a whole blob and stores its manifest and every chunk; returns the manifest.
    pub fn add(&mut self, data: &[u8]) -> Result<Manifest, BlobError> {
        let (chunks, manifest) = chunk_bytes(data)?;
        let stored = self.blobs.entry(manifest.id).or_insert_with(|| Stored {
            manifest: manifest.clone(),
            chunks: BTreeMap::new(),
        });
        for c in chunks {
            stored.chunks.insert(c.index, c.bytes);
        }
        Ok(manifest)
    }

    /// Stores a manifest after [`Manifest::verify`] (chunks already held are kept).
    pub fn insert_manifest(&mut self, manifest: Manifest) -> Result<(), BlobError> {
        manifest.verify()?;
        self.blobs.entry(manifest.id).or_insert_with(|| Stored {
            manifest,
            chunks: BTreeMap::new(),
        });
        Ok(())
    }

    /// Stores one chunk after checking it against the blob's manifest (which must be stored:
    /// [`BlobError::UnknownBlob`] otherwise).
    pub fn insert_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
        bytes: Vec<u8>,
    ) -> Result<(), BlobError> {
        let stored = self
            .blobs
            .get_mut(blob)
            .ok_or(BlobError::UnknownBlob { blob: *blob })?;
        stored.manifest.verify_chunk(index, &bytes)?;
        stored.chunks.insert(index, bytes);
        Ok(())
    }

    /// Forgets one chunk; whether it was held.
    pub fn remove_chunk(&mut self, blob: &BlobId, index: u32) -> bool {
        self.blobs
            .get_mut(blob)
            .is_some_and(|s| s.chunks.remove(&index).is_some())
    }

    /// Forgets a blob entirely; whether it was known.
    pub fn remove(&mut self, blob: &BlobId) -> bool {
        self.blobs.remove(blob).is_some()
    }

    /// The indices of the chunks held of a blob, in order (empty for an unknown blob).
    pub fn held(&self, blob: &BlobId) -> Vec<u32> {
        self.blobs
            .get(blob)
            .map(|s| s.chunks.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether every chunk of the blob is held.
    pub fn is_complete(&self, blob: &BlobId) -> bool {
        self.blobs
            .get(blob)
            .is_some_and(|s| s.chunks.len() == s.manifest.chunks.len())
    }

    /// The whole blob, if every chunk is held.
    pub fn read(&self, blob: &BlobId) -> Option<Vec<u8>> {
        let stored = self.blobs.get(blob)?;
        if stored.chunks.len() != stored.manifest.chunks.len() {
            return None;
        }
        let mut out = Vec::with_capacity(usize::try_from(stored.manifest.len).ok()?);
        for index in 0..stored.manifest.chunk_count() {
            out.extend_from_slice(stored.chunks.get(&index)?);
        }
        Some(out)
    }
}

impl BlobLookup for MemoryBlobs {
    fn manifest(&self, blob: &BlobId) -> Option<&Manifest> {
        self.blobs.get(blob).map(|s| &s.manifest)
    }

    fn chunk(&self, blob: &BlobId, index: u32) -> Option<&[u8]> {
        self.blobs
            .get(blob)
            .and_then(|s| s.chunks.get(&index))
            .map(Vec::as_slice)
    }
}
