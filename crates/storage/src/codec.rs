//! The encoding of one [`WriteBatch`]: the payload of a log record.
//!
//! ```text
//! VERSION (u8) ‖ count (u32) ‖ count × op
//! op = 0 (u8) ‖ key ‖ value      a put
//!    | 1 (u8) ‖ key              a delete
//! key, value = length (u32) ‖ bytes
//! ```
//!
//! Integers are little-endian ([`tabmesh_base::codec`]). The ops keep their order (a later op on the
//! same key wins). [`decode`] bounds every length by [`MAX_BATCH`] and every count
//! by what the input holds, so it never allocates more than it was given, and never panics.

use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{CodecError, WriteBatch, WriteOp};

use crate::{StoreError, MAX_BATCH, MAX_RECORD, RECORD_OVERHEAD};

/// The tag of a put.
const PUT: u8 = 0;
/// The tag of a delete.
const DELETE: u8 = 1;
/// The fewest bytes an op takes: a tag and an empty key.
const MIN_OP: usize = 1 + 4;

/// The length of [`encode`]'s output (saturating: a batch that large is refused anyway).
pub fn encoded_len(batch: &WriteBatch) -> usize {
    batch.ops().iter().fold(1 + 4, |sum, op| {
        let op_len = match op {
            WriteOp::Put(k, v) => (1 + 4 + 4usize)
                .saturating_add(k.len())
                .saturating_add(v.len()),
            WriteOp::Delete(k) => (1 + 4usize).saturating_add(k.len()),
        };
        sum.saturating_add(op_len)
    })
}

/// Encodes `batch`; refused with [`StoreError::TooLarge`] when its log record would be over
/// [`MAX_RECORD`] (so the encoding is at most [`MAX_BATCH`] bytes).
pub fn encode(batch: &WriteBatch) -> Result<Vec<u8>, StoreError> {
    check(batch)?;
    let mut w = Writer::new();
    w.len(batch.len());
    for op in batch.ops() {
        match op {
            WriteOp::Put(k, v) => {
                w.u8(PUT).bytes(k).bytes(v);
            }
            WriteOp::Delete(k) => {
                w.u8(DELETE).bytes(k);
            }
        }
    }
    Ok(w.finish())
}

/// Refuses a batch whose log record would be over [`MAX_RECORD`]; returns the encoding's length.
pub(crate) fn check(batch: &WriteBatch) -> Result<usize, StoreError> {
    let len = encoded_len(batch);
    if len > MAX_BATCH {
        return Err(StoreError::TooLarge {
            len: len.saturating_add(RECORD_OVERHEAD),
            max: MAX_RECORD,
        });
    }
    Ok(len)
}

/// Decodes what [`encode`] wrote. Refuses an unknown version byte, a length over [`MAX_BATCH`], a
/// truncated input, an unknown op tag and trailing bytes.
pub fn decode(bytes: &[u8]) -> Result<WriteBatch, CodecError> {
    let mut r = Reader::new(bytes)?;
    let count = r.count("batch op count", MAX_BATCH, MIN_OP)?;
    let mut batch = WriteBatch::new();
    for _ in 0..count {
        match r.u8()? {
            PUT => {
                let key = r.bytes("key", MAX_BATCH)?;
                let value = r.bytes("value", MAX_BATCH)?;
                batch.put(key, value);
            }
            DELETE => batch.delete(r.bytes("key", MAX_BATCH)?),
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "batch op",
                    tag,
                })
            }
        }
    }
    r.finish()?;
    Ok(batch)
}
