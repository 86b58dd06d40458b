//! Blobs for apps: the `blob` host call of one app call ([`CallBlobs`]), the node's bounded read
//! cache ([`BlobCache`]) and the blobs apps asked for that the node does not hold ([`Wanted`]).
//!
//! A call writes blobs through handles (`Create`, `Write`, `Finish`): the bytes are cut into
//! chunks as they arrive ([`tabmesh_blobs::BlobWriter`]) and kept with the call; they exist only
//! if the call succeeds, when the core hands them to the driver (`Output::StoreBlob`, before the
//! call's persist batch and publish) and puts them in the read cache. A call reads blobs (`Open`,
//! `Read`, `Close`) from the read cache only, or from a blob it created itself; the driver fills
//! the cache with the blobs apps asked for ([`NodeCore::cache_blob`](crate::NodeCore::cache_blob)).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tabmesh_blobs::{BlobId, BlobWriter, Chunk, Manifest};
use tabmesh_runtime::abi::{BlobOp, Hash, OpError, OpErrorKind, Value};

/// Most blob handles (being written or open for reading) one app call holds at once. `Create` or
/// `Open` past it is refused with `OpErrorKind::TooLarge`; `Finish` and `Close` free a handle.
pub const MAX_BLOB_HANDLES: usize = 8;

/// Most bytes one app call writes into blobs, all blobs together (8 MiB; abandoned blobs count
/// too). A `Write` past it is refused with `OpErrorKind::TooLarge` and writes nothing. It bounds
/// what a call holds in memory until it ends.
pub const MAX_CALL_BLOB_BYTES: usize = 8 << 20;

/// Bytes the node's blob read cache holds, all blobs together (32 MiB); the least recently used
/// blobs are evicted first.
pub const BLOB_CACHE_BYTES: usize = 32 << 20;

/// Largest blob apps read (8 MiB): larger blobs are never cached, so an app cannot open them
/// ([`NodeCore::cache_blob`](crate::NodeCore::cache_blob) refuses them).
pub const MAX_APP_READ_BLOB: usize = 8 << 20;

/// Most blobs the node remembers apps asked for and it does not hold, until the driver takes them
/// ([`NodeCore::take_wanted_blobs`](crate::NodeCore::take_wanted_blobs)); further asks are dropped
/// meanwhile (the app's next `Open` asks again).
pub const MAX_WANTED_BLOBS: usize = 64;

/// Most bytes one `Read` returns (512 KiB), and never more than fit the runtime's result limit
/// with the answer's encoding: well under the ABI's byte-string bound (`abi::MAX_BYTES`).
pub const MAX_BLOB_READ: usize = 512 << 10;

/// Most blob ids [`NodeCore::blob_refs`](crate::NodeCore::blob_refs) returns
/// ([`tabmesh_blobs::MAX_FOUND_REFS`], 65 536): a set that full may be incomplete.
pub const MAX_BLOB_REFS: usize = tabmesh_blobs::MAX_FOUND_REFS;

/// Bytes an encoded `Read` answer adds to its data (version, tags, length), rounded up.
const READ_ANSWER_OVERHEAD: usize = 16;

/// The most bytes one `Read` returns under a runtime whose results are bounded by
/// `max_result_bytes`.
pub(crate) fn read_cap(max_result_bytes: usize) -> usize {
    MAX_BLOB_READ.min(max_result_bytes.saturating_sub(READ_ANSWER_OVERHEAD))
}

/// A blob an app call created: what the driver stores.
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) manifest: Manifest,
    pub(crate) chunks: Vec<Chunk>,
}

impl Created {
    /// The blob's bytes, in order.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.manifest.len).unwrap_or(0));
        for c in &self.chunks {
            out.extend_from_slice(&c.bytes);
        }
        out
    }
}

/// The node's blob read cache: whole blobs of at most [`MAX_APP_READ_BLOB`] bytes, at most
/// `capacity` bytes together ([`BLOB_CACHE_BYTES`]), least recently used evicted first (a logical
/// use counter, no clock).
#[derive(Debug)]
pub(crate) struct BlobCache {
    entries: BTreeMap<BlobId, (Arc<[u8]>, u64)>,
    by_use: BTreeMap<u64, BlobId>,
    bytes: usize,
    capacity: usize,
    uses: u64,
}

impl BlobCache {
    pub(crate) fn new(capacity: usize) -> BlobCache {
        BlobCache {
            entries: BTreeMap::new(),
            by_use: BTreeMap::new(),
            bytes: 0,
            capacity,
            uses: 0,
        }
    }

    /// Keeps `bytes` as blob `id` (most recently used), evicting the least recently used blobs
    /// to make room. Refuses (`false`) a blob over [`MAX_APP_READ_BLOB`] or the capacity.
    pub(crate) fn insert(&mut self, id: BlobId, bytes: Arc<[u8]>) -> bool {
        if bytes.len() > MAX_APP_READ_BLOB || bytes.len() > self.capacity {
            return false;
        }
        if self.get(&id).is_some() {
            return true;
        }
        while self.bytes + bytes.len() > self.capacity {
            let Some((_, old)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((b, _)) = self.entries.remove(&old) {
                self.bytes -= b.len();
            }
        }
        self.uses += 1;
        self.bytes += bytes.len();
        self.by_use.insert(self.uses, id);
        self.entries.insert(id, (bytes, self.uses));
        true
    }

    /// Blob `id`'s bytes, marking it most recently used.
    pub(crate) fn get(&mut self, id: &BlobId) -> Option<Arc<[u8]>> {
        let (bytes, used) = self.entries.get_mut(id)?;
        self.by_use.remove(used);
        self.uses += 1;
        *used = self.uses;
        self.by_use.insert(self.uses, *id);
        Some(Arc::clone(bytes))
    }

    pub(crate) fn contains(&self, id: &BlobId) -> bool {
        self.entries.contains_key(id)
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Blobs apps asked for that the node does not hold (at most [`MAX_WANTED_BLOBS`]).
#[derive(Debug, Default)]
pub(crate) struct Wanted(BTreeSet<BlobId>);

impl Wanted {
    /// Remembers `id`, unless [`MAX_WANTED_BLOBS`] are remembered already.
    pub(crate) fn want(&mut self, id: BlobId) {
        if self.0.len() < MAX_WANTED_BLOBS {
            self.0.insert(id);
        }
    }

    /// `id` is held now.
    pub(crate) fn got(&mut self, id: &BlobId) {
        self.0.remove(id);
    }

    pub(crate) fn take(&mut self) -> Vec<BlobId> {
        std::mem::take(&mut self.0).into_iter().collect()
    }
}

/// One handle of a call.
#[derive(Debug)]
enum Handle {
    /// A blob being written, and the chunks it completed so far.
    Writer(BlobWriter, Vec<Chunk>),
    /// A blob open for reading, and the position of the next read.
    Reader(Arc<[u8]>, usize),
}

/// The blob side of one app call: its handles, what it wrote and the blobs it finished.
#[derive(Debug)]
pub(crate) struct CallBlobs<'n> {
    cache: &'n mut BlobCache,
    wanted: &'n mut Wanted,
    /// Most bytes one `Read` returns ([`read_cap`]).
    read_cap: usize,
    handles: BTreeMap<u64, Handle>,
    /// The last handle handed out (handles start at 1 and are never reused within a call).
    last: u64,
    /// Bytes written so far (at most [`MAX_CALL_BLOB_BYTES`]).
    written: usize,
    /// Blobs finished, in order, each once.
    created: Vec<Created>,
}

fn refused(kind: OpErrorKind, message: impl Into<String>) -> OpError {
    OpError::new(kind, message)
}

fn unknown(handle: u64, what: &str) -> OpError {
    refused(
        OpErrorKind::Invalid,
        format!("no blob {what} with handle {handle} in this call"),
    )
}

impl<'n> CallBlobs<'n> {
    pub(crate) fn new(
        cache: &'n mut BlobCache,
        wanted: &'n mut Wanted,
        read_cap: usize,
    ) -> CallBlobs<'n> {
        CallBlobs {
            cache,
            wanted,
            read_cap,
            handles: BTreeMap::new(),
            last: 0,
            written: 0,
            created: Vec::new(),
        }
    }

    /// The blobs the call finished (what survives if it succeeds).
    pub(crate) fn into_created(self) -> Vec<Created> {
        self.created
    }

    fn open_handle(&mut self, h: Handle) -> Result<Value, OpError> {
        if self.handles.len() >= MAX_BLOB_HANDLES {
            return Err(refused(
                OpErrorKind::TooLarge,
                format!("a call holds at most {MAX_BLOB_HANDLES} blob handles"),
            ));
        }
        self.last += 1;
        self.handles.insert(self.last, h);
        Ok(Value::U64(self.last))
    }

    /// Runs one blob operation (what `Host::blob` does).
    pub(crate) fn op(&mut self, op: &BlobOp<'_>) -> Result<Value, OpError> {
        match *op {
            BlobOp::Create => self.open_handle(Handle::Writer(BlobWriter::new(), Vec::new())),
            BlobOp::Write { handle, data } => {
                let Some(Handle::Writer(writer, chunks)) = self.handles.get_mut(&handle) else {
                    return Err(unknown(handle, "being written"));
                };
                let total = self.written.saturating_add(data.len());
                if total > MAX_CALL_BLOB_BYTES {
                    return Err(refused(
                        OpErrorKind::TooLarge,
                        format!("a call writes at most {MAX_CALL_BLOB_BYTES} blob bytes"),
                    ));
                }
                let done = writer
                    .write(data)
                    .map_err(|e| refused(OpErrorKind::TooLarge, e.to_string()))?;
                chunks.extend(done);
                self.written = total;
                Ok(Value::Unit)
            }
            BlobOp::Finish { handle } => {
                let (writer, mut chunks) = match self.handles.remove(&handle) {
                    Some(Handle::Writer(writer, chunks)) => (writer, chunks),
                    other => {
                        if let Some(reader) = other {
                            self.handles.insert(handle, reader);
                        }
                        return Err(unknown(handle, "being written"));
                    }
                };
                let (last, manifest) = writer.finish();
                chunks.extend(last);
                let id = manifest.id;
                if !self.created.iter().any(|c| c.manifest.id == id) {
                    self.created.push(Created { manifest, chunks });
                }
                Ok(Value::Id(Hash::from(id)))
            }
            BlobOp::Open { id } => {
                let id = BlobId::from(id);
                let bytes = match self.created.iter().find(|c| c.manifest.id == id) {
                    Some(c) => Some(Arc::from(c.bytes())),
                    None => self.cache.get(&id),
                };
                let Some(bytes) = bytes else {
                    self.wanted.want(id);
                    return Err(refused(
                        OpErrorKind::NotFound,
                        format!("blob {id} is not on this node (yet): asked for"),
                    ));
                };
                self.open_handle(Handle::Reader(bytes, 0))
            }
            BlobOp::Read { handle, max } => {
                let Some(Handle::Reader(bytes, pos)) = self.handles.get_mut(&handle) else {
                    return Err(unknown(handle, "open for reading"));
                };
                let max = usize::try_from(max)
                    .unwrap_or(usize::MAX)
                    .min(self.read_cap);
                let start = (*pos).min(bytes.len());
                let end = start.saturating_add(max).min(bytes.len());
                *pos = end;
                Ok(Value::Bytes(bytes[start..end].to_vec()))
            }
            BlobOp::Close { handle } => match self.handles.remove(&handle) {
                Some(_) => Ok(Value::Unit),
                None => Err(unknown(handle, "handle")),
            },
            _ => Err(OpError::unsupported("this blob operation")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use tabmesh_blobs::{chunk_bytes, CHUNK_SIZE};

    fn kind(r: Result<Value, OpError>) -> OpErrorKind {
        match r {
            Err(e) => e.kind,
            Ok(v) => panic!("refusal expected, got {v:?}"),
        }
    }

    fn handle(r: Result<Value, OpError>) -> u64 {
        match r {
            Ok(Value::U64(h)) => h,
            other => panic!("a handle expected, got {other:?}"),
        }
    }

    fn write(b: &mut CallBlobs<'_>, handle: u64, data: &[u8]) -> Result<Value, OpError> {
        b.op(&BlobOp::Write { handle, data })
    }

    fn read_all(b: &mut CallBlobs<'_>, handle: u64, max: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match b.op(&BlobOp::Read { handle, max }) {
                Ok(Value::Bytes(piece)) if piece.is_empty() => return out,
                Ok(Value::Bytes(piece)) => {
                    assert!(piece.len() <= max as usize);
                    out.extend(piece);
                }
                other => panic!("bytes expected, got {other:?}"),
            }
        }
    }

    #[tabmesh_testkit::test]
    fn a_call_writes_a_blob_in_pieces_and_gets_the_manifest_id() {
        let (mut cache, mut wanted) = (BlobCache::new(BLOB_CACHE_BYTES), Wanted::default());
        let mut b = CallBlobs::new(&mut cache, &mut wanted, read_cap(1 << 20));
        let data: Vec<u8> = (0..CHUNK_SIZE * 2 + 100).map(|i| (i % 253) as u8).collect();
        let h = handle(b.op(&BlobOp::Create));
        for piece in data.chunks(64 << 10) {
            assert_eq!(write(&mut b, h, piece), Ok(Value::Unit));
        }
        let (_, expected) = chunk_bytes(&data).unwrap();
        assert_eq!(
            b.op(&BlobOp::Finish { handle: h }),
            Ok(Value::Id(Hash::from(expected.id)))
        );
        // Finished: the handle is gone.
        assert_eq!(kind(write(&mut b, h, b"x")), OpErrorKind::Invalid);
        // The call reads back what it created.
        let r = handle(b.op(&BlobOp::Open {
            id: Hash::from(expected.id),
        }));
        assert_eq!(read_all(&mut b, r, 100_000), data);
        let created = b.into_created();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].manifest, expected);
        assert_eq!(created[0].chunks.len(), 3);
        assert_eq!(created[0].bytes(), data);
        // Nothing reached the cache: that happens only once the call succeeded.
        assert!(!cache.contains(&expected.id));
    }

    #[tabmesh_testkit::test]
    fn a_call_holds_at_most_max_blob_handles() {
        let (mut cache, mut wanted) = (BlobCache::new(BLOB_CACHE_BYTES), Wanted::default());
        let (_, m) = chunk_bytes(b"cached").unwrap();
        assert!(cache.insert(m.id, Arc::from(&b"cached"[..])));
        let mut b = CallBlobs::new(&mut cache, &mut wanted, MAX_BLOB_READ);
        let mut held: Vec<u64> = (0..MAX_BLOB_HANDLES - 1)
            .map(|_| handle(b.op(&BlobOp::Create)))
            .collect();
        held.push(handle(b.op(&BlobOp::Open {
            id: Hash::from(m.id),
        })));
        // Writers and readers count together.
        assert_eq!(kind(b.op(&BlobOp::Create)), OpErrorKind::TooLarge);
        let open = BlobOp::Open {
            id: Hash::from(m.id),
        };
        assert_eq!(kind(b.op(&open)), OpErrorKind::TooLarge);
        // Finish and Close free a handle; handles are never reused.
        assert!(matches!(
            b.op(&BlobOp::Finish { handle: held[0] }),
            Ok(Value::Id(_))
        ));
        let again = handle(b.op(&BlobOp::Create));
        assert!(!held.contains(&again));
        assert_eq!(b.op(&BlobOp::Close { handle: held[1] }), Ok(Value::Unit));
        handle(b.op(&open));
        assert_eq!(kind(b.op(&BlobOp::Create)), OpErrorKind::TooLarge);
    }

    #[tabmesh_testkit::test]
    fn a_call_writes_at_most_max_call_blob_bytes_in_total() {
        let (mut cache, mut wanted) = (BlobCache::new(BLOB_CACHE_BYTES), Wanted::default());
        let mut b = CallBlobs::new(&mut cache, &mut wanted, MAX_BLOB_READ);
        let piece = vec![7u8; 1 << 20];
        let first = handle(b.op(&BlobOp::Create));
        let second = handle(b.op(&BlobOp::Create));
        for _ in 0..5 {
            assert_eq!(write(&mut b, first, &piece), Ok(Value::Unit));
        }
        for _ in 0..3 {
            assert_eq!(write(&mut b, second, &piece), Ok(Value::Unit));
        }
        // 8 MiB written over two blobs: one more byte is refused and writes nothing.
        assert_eq!(kind(write(&mut b, second, b"x")), OpErrorKind::TooLarge);
        assert_eq!(kind(write(&mut b, first, b"x")), OpErrorKind::TooLarge);
        // An abandoned blob's bytes still count.
        assert_eq!(b.op(&BlobOp::Close { handle: first }), Ok(Value::Unit));
        let third = handle(b.op(&BlobOp::Create));
        assert_eq!(kind(write(&mut b, third, b"x")), OpErrorKind::TooLarge);
        assert_eq!(write(&mut b, third, b""), Ok(Value::Unit));
        b.op(&BlobOp::Finish { handle: second }).unwrap();
        let created = b.into_created();
        assert_eq!(created.len(), 1, "the closed blob is abandoned");
        assert_eq!(created[0].manifest.len, 3 << 20);
    }

    #[tabmesh_testkit::test]
    fn unknown_and_mismatched_handles_are_invalid() {
        let (mut cache, mut wanted) = (BlobCache::new(BLOB_CACHE_BYTES), Wanted::default());
        let (_, m) = chunk_bytes(b"abc").unwrap();
        cache.insert(m.id, Arc::from(&b"abc"[..]));
        let mut b = CallBlobs::new(&mut cache, &mut wanted, MAX_BLOB_READ);
        let w = handle(b.op(&BlobOp::Create));
        let r = handle(b.op(&BlobOp::Open {
            id: Hash::from(m.id),
        }));
        for op in [
            BlobOp::Write {
                handle: 99,
                data: b"x",
            },
            BlobOp::Finish { handle: 99 },
            BlobOp::Read { handle: 99, max: 1 },
            BlobOp::Close { handle: 99 },
            // A reader is not written, a writer is not read.
            BlobOp::Write {
                handle: r,
                data: b"x",
            },
            BlobOp::Finish { handle: r },
            BlobOp::Read { handle: w, max: 1 },
        ] {
            assert_eq!(kind(b.op(&op)), OpErrorKind::Invalid, "{op:?}");
        }
        // Closed: gone.
        assert_eq!(b.op(&BlobOp::Close { handle: r }), Ok(Value::Unit));
        assert_eq!(
            kind(b.op(&BlobOp::Read { handle: r, max: 1 })),
            OpErrorKind::Invalid
        );
    }

    #[tabmesh_testkit::test]
    fn reads_are_bounded_and_empty_at_the_end() {
        let data: Vec<u8> = (0..MAX_BLOB_READ * 2 + 5).map(|i| i as u8).collect();
        let (_, m) = chunk_bytes(&data).unwrap();
        let (mut cache, mut wanted) = (BlobCache::new(BLOB_CACHE_BYTES), Wanted::default());
        assert!(cache.insert(m.id, Arc::from(data.clone())));
        let mut b = CallBlobs::new(&mut cache, &mut wanted, read_cap(1 << 20));
        let r = handle(b.op(&BlobOp::Open {
            id: Hash::from(m.id),
        }));
        let Ok(Value::Bytes(first)) = b.op(&BlobOp::Read {
            handle: r,
            max: u32::MAX,
        }) else {
            panic!("bytes");
        };
        assert_eq!(first.len(), MAX_BLOB_READ);
        let mut all = first;
        all.extend(read_all(&mut b, r, u32::MAX));
        assert_eq!(all, data);
        assert_eq!(
            b.op(&BlobOp::Read { handle: r, max: 10 }),
            Ok(Value::Bytes(Vec::new()))
        );
        // A runtime with a smaller result limit: reads shrink to fit it.
        assert_eq!(read_cap(1000), 1000 - READ_ANSWER_OVERHEAD);
        assert_eq!(read_cap(0), 0);
        assert_eq!(read_cap(usize::MAX), MAX_BLOB_READ);
    }

    #[tabmesh_testkit::test]
    fn opening_a_blob_not_held_is_not_found_and_remembered_up_to_the_bound() {
        let (mut cache, mut wanted) = (BlobCache::new(BLOB_CACHE_BYTES), Wanted::default());
        let mut b = CallBlobs::new(&mut cache, &mut wanted, MAX_BLOB_READ);
        for i in 0..=MAX_WANTED_BLOBS {
            let id = Hash([i as u8; 32]);
            assert_eq!(kind(b.op(&BlobOp::Open { id })), OpErrorKind::NotFound);
            assert_eq!(kind(b.op(&BlobOp::Open { id })), OpErrorKind::NotFound);
        }
        drop(b);
        let taken = wanted.take();
        assert_eq!(taken.len(), MAX_WANTED_BLOBS);
        assert!(!taken.contains(&BlobId([MAX_WANTED_BLOBS as u8; 32])));
        assert!(wanted.take().is_empty());
    }

    #[tabmesh_testkit::test]
    fn the_cache_evicts_the_least_recently_used_and_refuses_oversized_blobs() {
        let mut cache = BlobCache::new(10);
        let id = |n: u8| BlobId([n; 32]);
        assert!(cache.insert(id(1), Arc::from(&[1u8; 4][..])));
        assert!(cache.insert(id(2), Arc::from(&[2u8; 4][..])));
        // Using 1 makes 2 the least recently used: 3 evicts it.
        assert!(cache.get(&id(1)).is_some());
        assert!(cache.insert(id(3), Arc::from(&[3u8; 4][..])));
        assert!(cache.contains(&id(1)) && !cache.contains(&id(2)) && cache.contains(&id(3)));
        assert_eq!(cache.bytes(), 8);
        // Over the capacity: refused, nothing evicted. Again: no double count.
        assert!(!cache.insert(id(4), Arc::from(&[4u8; 11][..])));
        assert!(cache.insert(id(3), Arc::from(&[3u8; 4][..])));
        assert_eq!(cache.bytes(), 8);
        // Over MAX_APP_READ_BLOB: never cached, however large the cache.
        let mut big = BlobCache::new(BLOB_CACHE_BYTES);
        let over: Arc<[u8]> = Arc::from(vec![0u8; MAX_APP_READ_BLOB + 1]);
        assert!(!big.insert(id(5), over));
        assert!(big.insert(id(6), Arc::from(vec![0u8; MAX_APP_READ_BLOB])));
    }
}
