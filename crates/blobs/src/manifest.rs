//! The [`Manifest`]: what a [`BlobId`] expands to (length and chunk ids), its codec, and the
//! byte-range lookup ([`Manifest::slices`]).

use std::ops::Range;

use tabmesh_base::codec::{Reader, Writer};

use crate::chunk::{blob_id, chunk_count, chunk_id, CHUNK_SIZE, MAX_BLOB_LEN, MAX_CHUNKS};
use crate::{BlobError, BlobId, ChunkId};

/// A blob's length and chunk ids, and the id they hash to.
///
/// The fields are public for reading; a manifest built by hand may be inconsistent, so everything
/// that takes one from outside ([`Fetch::resume`](crate::Fetch::resume),
/// [`MemoryBlobs::insert_manifest`](crate::MemoryBlobs::insert_manifest)) calls
/// [`Manifest::verify`] first. [`Manifest::new`], [`BlobWriter::finish`](crate::BlobWriter::finish)
/// and [`Manifest::decode`] only ever return consistent ones.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    /// [`blob_id`] of `len` and `chunks`.
    pub id: BlobId,
    /// The blob's length in bytes (at most [`MAX_BLOB_LEN`]).
    pub len: u64,
    /// The id of every chunk, in order: [`chunk_count`]`(len)` of them.
    pub chunks: Vec<ChunkId>,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("id", &self.id)
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl Manifest {
    /// The manifest of a blob of `len` bytes made of `chunks` (its id computed). Refuses a length
    /// over [`MAX_BLOB_LEN`] and a chunk list whose count does not match the length.
    pub fn new(len: u64, chunks: Vec<ChunkId>) -> Result<Manifest, BlobError> {
        check_shape(len, chunks.len())?;
        Ok(Manifest {
            id: blob_id(len, &chunks),
            len,
            chunks,
        })
    }

    /// Checks that the length is in bounds, that the chunk count matches it, and that `id` is the
    /// hash of both.
    pub fn verify(&self) -> Result<(), BlobError> {
        check_shape(self.len, self.chunks.len())?;
        if blob_id(self.len, &self.chunks) != self.id {
            return Err(BlobError::BadManifest {
                reason: "the id is not the hash of the length and chunk ids",
            });
        }
        Ok(())
    }

    /// How many chunks the blob has.
    pub fn chunk_count(&self) -> u32 {
        chunk_count(self.len)
    }

    /// Length of chunk `index` ([`CHUNK_SIZE`], less for the last one), `None` past the end.
    pub fn chunk_len(&self, index: u32) -> Option<usize> {
        let start = self.chunk_offset(index)?;
        // At most CHUNK_SIZE, so it fits.
        Some((self.len - start).min(CHUNK_SIZE as u64) as usize)
    }

    /// Offset in the blob of chunk `index`'s first byte, `None` past the end.
    pub fn chunk_offset(&self, index: u32) -> Option<u64> {
        (index < self.chunk_count()).then(|| u64::from(index) * CHUNK_SIZE as u64)
    }

    /// The chunk holding byte `offset`, `None` past the end.
    pub fn chunk_of(&self, offset: u64) -> Option<u32> {
        // Below MAX_CHUNKS when offset < len ≤ MAX_BLOB_LEN.
        (offset < self.len).then(|| (offset / CHUNK_SIZE as u64) as u32)
    }

    /// Checks `bytes` against the id listed for chunk `index` (and the length it must have).
    pub fn verify_chunk(&self, index: u32, bytes: &[u8]) -> Result<(), BlobError> {
        let Some(expected) = self.chunk_len(index) else {
            return Err(BlobError::ChunkIndex {
                index,
                count: self.chunk_count(),
            });
        };
        let id = self.chunks.get(index as usize);
        if bytes.len() != expected || id != Some(&chunk_id(bytes)) {
            return Err(BlobError::ChunkMismatch { index });
        }
        Ok(())
    }

    /// Which chunks hold the bytes `range` of the blob, and which bytes of each: to read a range,
    /// load each slice's chunk and copy `chunk[slice.range()]`, in order. An empty range gives no
    /// slice; a range ending past the blob (or ending before it starts) is
    /// [`BlobError::OutOfRange`].
    pub fn slices(&self, range: Range<u64>) -> Result<Slices, BlobError> {
        if range.start > range.end || range.end > self.len {
            return Err(BlobError::OutOfRange {
                start: range.start,
                end: range.end,
                len: self.len,
            });
        }
        Ok(Slices {
            pos: range.start,
            end: range.end,
        })
    }

    /// The versioned encoding: `VERSION ‖ id ‖ u64 len ‖ u32 count ‖ chunk ids`, at most
    /// [`MAX_MANIFEST_LEN`](crate::MAX_MANIFEST_LEN) bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.id(&self.id).u64(self.len).len(self.chunks.len());
        for c in &self.chunks {
            w.id(c);
        }
        w.finish()
    }

    /// Decodes and verifies a manifest: bounded ([`MAX_BLOB_LEN`], [`MAX_CHUNKS`]), the count
    /// matching the length, the id matching both. A manifest that decodes is consistent.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, BlobError> {
        let mut r = Reader::new(bytes)?;
        let id: BlobId = r.id()?;
        let len = r.u64()?;
        if len > MAX_BLOB_LEN {
            return Err(BlobError::TooLarge {
                len,
                max: MAX_BLOB_LEN,
            });
        }
        let count = r.count("manifest chunks", MAX_CHUNKS as usize, 32)?;
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            chunks.push(r.id()?);
        }
        r.finish()?;
        let manifest = Manifest { id, len, chunks };
        manifest.verify()?;
        Ok(manifest)
    }

    /// [`Manifest::decode`], then checks it is the manifest of `expected`
    /// ([`BlobError::WrongBlob`] otherwise): how a manifest received from a peer is accepted.
    pub fn decode_for(expected: &BlobId, bytes: &[u8]) -> Result<Manifest, BlobError> {
        let manifest = Manifest::decode(bytes)?;
        if manifest.id != *expected {
            return Err(BlobError::WrongBlob {
                expected: *expected,
                found: manifest.id,
            });
        }
        Ok(manifest)
    }
}

fn check_shape(len: u64, count: usize) -> Result<(), BlobError> {
    if len > MAX_BLOB_LEN {
        return Err(BlobError::TooLarge {
            len,
            max: MAX_BLOB_LEN,
        });
    }
    if count != chunk_count(len) as usize {
        return Err(BlobError::BadManifest {
            reason: "the chunk count does not match the length",
        });
    }
    Ok(())
}

/// The part of one chunk that a byte range covers ([`Manifest::slices`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// The chunk.
    pub index: u32,
    /// First byte inside the chunk.
    pub start: usize,
    /// End inside the chunk (exclusive).
    pub end: usize,
    /// Offset in the blob of the slice's first byte.
    pub offset: u64,
}

impl Slice {
    /// `start..end`, to index the chunk's bytes with.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Bytes in the slice.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the slice is empty (never, for slices [`Manifest::slices`] yields).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// The slices of a byte range, in order ([`Manifest::slices`]).
#[derive(Clone, Debug)]
pub struct Slices {
    pos: u64,
    end: u64,
}

impl Iterator for Slices {
    type Item = Slice;

    fn next(&mut self) -> Option<Slice> {
        if self.pos >= self.end {
            return None;
        }
        let size = CHUNK_SIZE as u64;
        let index = self.pos / size;
        let chunk_start = index * size;
        let stop = self.end.min(chunk_start + size);
        let slice = Slice {
            // Both below MAX_CHUNKS and CHUNK_SIZE: the range was checked against the length.
            index: index as u32,
            start: (self.pos - chunk_start) as usize,
            end: (stop - chunk_start) as usize,
            offset: self.pos,
        };
        self.pos = stop;
        Some(slice)
    }
}
