//! Chunking: the chunk size, the content addresses, and the streaming [`BlobWriter`].

use tabmesh_base::{hash_parts, Hasher};

use crate::{BlobError, BlobId, ChunkId, Manifest};

/// Bytes per chunk: 256 KiB. Every chunk but the last is exactly this long; the last holds the
/// rest (1 to `CHUNK_SIZE` bytes); an empty blob has no chunk.
///
/// Why 256 KiB: one chunk is one answer on the wire, and websocket-websys closes a connection whose
/// read buffer passes 1 MiB ("Remote is overloading us"), so a chunk must stay well under it —
/// the default [`Limits`](crate::Limits) keep three chunks (768 KiB) in flight. It is also
/// large enough that a 100 MB blob is 400 round trips, not thousands, that SHA-256 runs in a few
/// long calls (V8 optimises wasm hot loops better than one huge call), and that a manifest of the
/// largest blob ([`MAX_CHUNKS`] ids) stays at 512 KiB: one message.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Longest blob: 4 GiB. A [`BlobWriter`] refuses more, a manifest announcing more does not decode.
/// It bounds the manifest ([`MAX_CHUNKS`], [`MAX_MANIFEST_LEN`]) and every per-chunk table a fetch
/// keeps.
pub const MAX_BLOB_LEN: u64 = 4 * 1024 * 1024 * 1024;

/// Most chunks in one blob: [`MAX_BLOB_LEN`] / [`CHUNK_SIZE`] = 16 384.
pub const MAX_CHUNKS: u32 = (MAX_BLOB_LEN / CHUNK_SIZE as u64) as u32;

/// Longest encoded manifest: version, id, length, count and [`MAX_CHUNKS`] ids (≈ 512 KiB).
pub const MAX_MANIFEST_LEN: usize = 1 + 32 + 8 + 4 + 32 * MAX_CHUNKS as usize;

/// Domain tag of chunk ids.
pub(crate) const CHUNK_DOMAIN: &[u8] = b"tabmesh/blob-chunk/v1";
/// Domain tag of blob ids.
pub(crate) const BLOB_DOMAIN: &[u8] = b"tabmesh/blob/v1";

/// The id of one chunk's bytes: `H("tabmesh/blob-chunk/v1" ‖ bytes)` (each part length-prefixed,
/// as [`hash_parts`] does).
pub fn chunk_id(bytes: &[u8]) -> ChunkId {
    ChunkId::from(hash_parts(CHUNK_DOMAIN, &[bytes]))
}

/// The id of a blob of `len` bytes made of `chunks`: `H("tabmesh/blob/v1" ‖ u64 len ‖ chunk
/// ids…)`, the length little-endian and the ids raw (fixed-size, so unprefixed).
///
/// A flat list, not a Merkle tree: a fetch always gets the whole manifest first (at most
/// [`MAX_MANIFEST_LEN`], one message), checks it against this id once, and then checks every chunk
/// against the manifest. A tree would only pay off to verify a chunk before the whole list is
/// known, or to ship the list in pieces, and neither is needed while the list fits one message.
pub fn blob_id(len: u64, chunks: &[ChunkId]) -> BlobId {
    let mut h = Hasher::new(BLOB_DOMAIN);
    h.fixed(&len.to_le_bytes());
    for c in chunks {
        h.fixed(c.as_bytes());
    }
    BlobId::from(h.finish())
}

/// How many chunks a blob of `len` bytes has: `ceil(len / CHUNK_SIZE)` (0 for an empty blob).
/// Saturates at `u32::MAX` for lengths far past [`MAX_BLOB_LEN`].
pub fn chunk_count(len: u64) -> u32 {
    u32::try_from(len.div_ceil(CHUNK_SIZE as u64)).unwrap_or(u32::MAX)
}

/// One completed chunk: its index in the blob, its id and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the blob (chunk `i` holds bytes `i * CHUNK_SIZE ..`).
    pub index: u32,
    /// [`chunk_id`] of `bytes`.
    pub id: ChunkId,
    /// The bytes: [`CHUNK_SIZE`] of them, fewer only for the last chunk.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("index", &self.index)
            .field("id", &self.id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Cuts a blob into chunks as its bytes arrive, so a large blob never sits whole in memory: it
/// holds at most one partial chunk plus the list of chunk ids (32 bytes per 256 KiB).
///
/// [`BlobWriter::write`] returns each chunk as soon as it is full (store it, then drop it);
/// [`BlobWriter::finish`] returns the last, partial one and the [`Manifest`]. How the input is
/// split into writes never changes the result.
#[derive(Debug, Clone, Default)]
pub struct BlobWriter {
    buf: Vec<u8>,
    chunks: Vec<ChunkId>,
    len: u64,
}

impl BlobWriter {
    /// An empty writer.
    pub fn new() -> BlobWriter {
        BlobWriter::default()
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data` and returns the chunks it completed, in order (none while the current chunk
    /// is still filling). Refuses with [`BlobError::TooLarge`], writing nothing, when the blob
    /// would pass [`MAX_BLOB_LEN`]. Memory: the returned chunks hold about `data.len()` bytes, so
    /// write in pieces of a few chunks to keep it flat.
    pub fn write(&mut self, mut data: &[u8]) -> Result<Vec<Chunk>, BlobError> {
        let len = self.len.saturating_add(data.len() as u64);
        if len > MAX_BLOB_LEN {
            return Err(BlobError::TooLarge {
                len,
                max: MAX_BLOB_LEN,
            });
        }
        self.len = len;
        let mut done = Vec::new();
        while !data.is_empty() {
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                let bytes = std::mem::take(&mut self.buf);
                done.push(self.seal(bytes));
            }
        }
        Ok(done)
    }

    /// Ends the blob: the last chunk (`None` when the length is a multiple of [`CHUNK_SIZE`],
    /// including the empty blob) and the blob's [`Manifest`].
    pub fn finish(mut self) -> (Option<Chunk>, Manifest) {
        let last = if self.buf.is_empty() {
            None
        } else {
            let bytes = std::mem::take(&mut self.buf);
            Some(self.seal(bytes))
        };
        let manifest = Manifest {
            id: blob_id(self.len, &self.chunks),
            len: self.len,
            chunks: self.chunks,
        };
        (last, manifest)
    }

    fn seal(&mut self, bytes: Vec<u8>) -> Chunk {
        let id = chunk_id(&bytes);
        // At most MAX_CHUNKS chunks exist (the length is bounded above), so the index fits.
        let index = u32::try_from(self.chunks.len()).unwrap_or(u32::MAX);
        self.chunks.push(id);
        Chunk { index, id, bytes }
    }
}

/// Cuts a blob that is already whole in memory: every chunk, in order, and the manifest. The same
/// result as one [`BlobWriter::write`] and [`BlobWriter::finish`].
pub fn chunk_bytes(data: &[u8]) -> Result<(Vec<Chunk>, Manifest), BlobError> {
    let mut w = BlobWriter::new();
    let mut chunks = w.write(data)?;
    let (last, manifest) = w.finish();
    chunks.extend(last);
    Ok((chunks, manifest))
}
