//! The two file formats of a [`FileStore`](super::FileStore): log records and snapshots.
//!
//! Both end with a checksum: the first [`CHECKSUM`] bytes of the SHA-256 of every byte before it.
//! Nothing here panics on file input or allocates more than the input holds.

use tabmesh_base::codec::{Reader, Writer, VERSION};
use tabmesh_base::{Hash, MemoryKv, WriteBatch};

use crate::{MAX_BATCH, RECORD_OVERHEAD};

/// Bytes of a record before its payload: version (1), payload length (4), sequence number (8).
const HEADER: usize = 1 + 4 + 8;
/// Bytes of a checksum.
const CHECKSUM: usize = 8;
/// The fewest bytes a snapshot takes: version, sequence number, entry count, checksum.
const MIN_SNAPSHOT: usize = 1 + 8 + 8 + CHECKSUM;
/// The fewest bytes a snapshot entry takes: two empty length-prefixed strings.
const MIN_ENTRY: usize = 4 + 4;

// The record overhead the crate documents is this layout's.
const _: () = assert!(HEADER + CHECKSUM == RECORD_OVERHEAD);

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM] {
    let hash = Hash::of(bytes);
    let mut out = [0; CHECKSUM];
    out.copy_from_slice(&hash.as_bytes()[..CHECKSUM]);
    out
}

/// One log record: `VERSION ‖ payload length (u32) ‖ seq (u64) ‖ payload ‖ checksum`. The caller
/// bounded `payload` by [`MAX_BATCH`].
pub(super) fn record(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.len(payload.len()).u64(seq).raw(payload);
    let sum = checksum(w.as_slice());
    w.raw(&sum);
    w.finish()
}

/// What starts at some offset of a log.
#[derive(Debug)]
pub(super) enum Frame<'a> {
    /// A whole record whose checksum verifies. `len` is its size in the file.
    Whole {
        /// The version byte (covered by the checksum, so it is what was written).
        version: u8,
        /// The sequence number.
        seq: u64,
        /// The batch encoding.
        payload: &'a [u8],
        /// Bytes the record takes.
        len: usize,
    },
    /// Not a whole record: shorter than its header or its length says, a length over the bound,
    /// or a checksum that does not match.
    Broken,
}

/// Reads the record at the start of `rest`.
pub(super) fn frame(rest: &[u8]) -> Frame<'_> {
    let mut r = Reader::unversioned(rest);
    let (Ok(version), Ok(payload_len), Ok(seq)) = (r.u8(), r.len("record", MAX_BATCH), r.u64())
    else {
        return Frame::Broken;
    };
    let (Ok(payload), Ok(sum)) = (r.raw(payload_len), r.raw(CHECKSUM)) else {
        return Frame::Broken;
    };
    let len = HEADER + payload_len + CHECKSUM;
    let Some(covered) = rest.get(..HEADER + payload_len) else {
        return Frame::Broken;
    };
    if checksum(covered) != sum {
        return Frame::Broken;
    }
    Frame::Whole {
        version,
        seq,
        payload,
        len,
    }
}

/// Whether a whole record of this version, with a sequence number after `broken_seq` (the one the
/// broken record at `broken_at` should have had), starts anywhere after `broken_at`: then the
/// broken record is damage in the middle of the log, not a torn tail.
///
/// Every offset is tried, since the broken record's own length cannot be trusted. Cheap checks
/// (version byte, a sequence number that could follow) come before the checksum, so garbage is
/// rejected without hashing; this runs only when a log has a broken record.
///
/// Known limit: a value that itself holds the bytes of a whole record with a later sequence
/// number makes a torn tail inside its own record look like damage: the store then refuses to
/// open ([`StoreError::Corrupt`](crate::StoreError::Corrupt)) instead of dropping the torn record.
/// Either way, it never drops a record that a whole record follows.
pub(super) fn whole_record_follows(log: &[u8], broken_at: usize, broken_seq: u64) -> bool {
    // More records than this cannot fit in what follows.
    let fit =
        u64::try_from(log.len().saturating_sub(broken_at) / RECORD_OVERHEAD).unwrap_or(u64::MAX);
    (broken_at.saturating_add(1)..log.len()).any(|at| {
        let Some(rest) = log.get(at..) else {
            return false;
        };
        let mut r = Reader::unversioned(rest);
        let (Ok(version), Ok(_), Ok(seq)) = (r.u8(), r.u32(), r.u64()) else {
            return false;
        };
        version == VERSION
            && seq > broken_seq
            && seq - broken_seq <= fit
            && matches!(frame(rest), Frame::Whole { .. })
    })
}

/// A snapshot of `kv`, the image after record `seq`:
/// `VERSION ‖ seq (u64) ‖ count (u64) ‖ count × (key ‖ value) ‖ checksum`, keys in ascending order,
/// each key and value length-prefixed (u32).
pub(super) fn snapshot(seq: u64, kv: &MemoryKv) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(seq).u64(u64::try_from(kv.len()).unwrap_or(u64::MAX));
    for (key, value) in kv.iter() {
        w.bytes(key).bytes(value);
    }
    let sum = checksum(w.as_slice());
    w.raw(&sum);
    w.finish()
}

/// Reads a snapshot: the sequence number of the last record it holds, and the image. The error
/// says what is wrong with the file.
pub(super) fn parse_snapshot(bytes: &[u8]) -> Result<(u64, MemoryKv), String> {
    if bytes.len() < MIN_SNAPSHOT {
        return Err(format!(
            "a snapshot of {} bytes is shorter than the smallest one ({MIN_SNAPSHOT})",
            bytes.len()
        ));
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
    // The version first: a newer format may checksum differently.
    let mut r = Reader::new(body).map_err(|e| format!("snapshot: {e}"))?;
    if checksum(body) != sum {
        return Err("the snapshot fails its checksum".to_owned());
    }
    let bad = |e| format!("the snapshot does not decode: {e}");
    let seq = r.u64().map_err(bad)?;
    let count = r.u64().map_err(bad)?;
    let fit = u64::try_from(r.remaining() / MIN_ENTRY).unwrap_or(u64::MAX);
    if count > fit {
        return Err(format!(
            "the snapshot claims {count} entries, more than its {} bytes can hold",
            bytes.len()
        ));
    }
    let mut kv = MemoryKv::new();
    let mut last: Option<&[u8]> = None;
    for _ in 0..count {
        let key = r.bytes("key", MAX_BATCH).map_err(bad)?;
        let value = r.bytes("value", MAX_BATCH).map_err(bad)?;
        if last.is_some_and(|last| last >= key) {
            return Err("the snapshot's keys are not in ascending order".to_owned());
        }
        last = Some(key);
        let mut put = WriteBatch::new();
        put.put(key, value);
        kv.apply(&put);
    }
    r.finish().map_err(bad)?;
    Ok((seq, kv))
}
