//! The driver's record of one blob in the [`BlobStore`](tabmesh_storage::BlobStore): what it is,
//! where its chunks are, and why it is kept — and its versioned codec (a disk format: public so
//! it can be fuzzed and inspected; only the driver writes it).
//!
//! Chunks are stored under a **slot** id. A fetched blob's slot is its own id (its manifest is
//! known before any chunk arrives). A blob added here is chunked before its id is known, so its
//! chunks go to a fresh slot, recorded as [`Record::Upload`] until the blob is finished; then the
//! slot's record becomes [`Record::SlotOf`] the blob, and the blob's own record
//! ([`Record::Blob`]) names the slot. At start, an upload never finished, or a slot whose blob
//! does not name it, is removed.

use std::collections::BTreeSet;

use tabmesh_base::codec::{CodecError, Reader, Writer};
use tabmesh_base::ContextId;
use tabmesh_blobs::BlobId;

use crate::limits::MAX_BLOB_CONTEXTS;

/// One blob store record (keyed by a blob id or a slot id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A blob whose manifest is stored under its id.
    Blob(BlobRecord),
    /// Chunks being written by an add that has not finished.
    Upload,
    /// Chunks written by an add: they are this blob's.
    SlotOf(BlobId),
}

/// What is known of a blob held (whole or in part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRecord {
    /// Where its chunks are.
    pub slot: BlobId,
    /// Its length.
    pub len: u64,
    /// Every chunk is stored.
    pub complete: bool,
    /// Kept whatever the contexts' states say (added here, or pinned by the user).
    pub pinned: bool,
    /// Contexts it was added to or fetched in: served to their members (at most
    /// [`MAX_BLOB_CONTEXTS`]).
    pub contexts: BTreeSet<ContextId>,
}

impl BlobRecord {
    /// Records `context` as one the blob is shared in (ignored past [`MAX_BLOB_CONTEXTS`]).
    pub fn share(&mut self, context: Option<ContextId>) -> bool {
        match context {
            Some(c) if self.contexts.len() < MAX_BLOB_CONTEXTS => self.contexts.insert(c),
            _ => false,
        }
    }
}

impl Record {
    /// `VERSION ‖ kind ‖ body`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Record::Blob(b) => {
                w.u8(0)
                    .id(&b.slot)
                    .u64(b.len)
                    .bool(b.complete)
                    .bool(b.pinned)
                    .len(b.contexts.len());
                for c in &b.contexts {
                    w.id(c);
                }
            }
            Record::Upload => {
                w.u8(1);
            }
            Record::SlotOf(blob) => {
                w.u8(2).id(blob);
            }
        }
        w.finish()
    }

    /// Decodes [`Record::encode`] (a newer version or kind is refused, never guessed).
    pub fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
        let mut r = Reader::new(bytes)?;
        let record = match r.u8()? {
            0 => {
                let slot = r.id()?;
                let len = r.u64()?;
                let complete = r.bool()?;
                let pinned = r.bool()?;
                let n = r.count("blob contexts", MAX_BLOB_CONTEXTS, 32)?;
                let mut contexts = BTreeSet::new();
                for _ in 0..n {
                    contexts.insert(r.id()?);
                }
                Record::Blob(BlobRecord {
                    slot,
                    len,
                    complete,
                    pinned,
                    contexts,
                })
            }
            1 => Record::Upload,
            2 => Record::SlotOf(r.id()?),
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "blob record",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tabmesh_testkit::test]
    fn records_round_trip_and_refuse_garbage() {
        let blob = Record::Blob(BlobRecord {
            slot: BlobId([1; 32]),
            len: 5 << 20,
            complete: true,
            pinned: false,
            contexts: [ContextId([2; 32]), ContextId([3; 32])].into(),
        });
        for r in [blob, Record::Upload, Record::SlotOf(BlobId([4; 32]))] {
            assert_eq!(Record::decode(&r.encode()), Ok(r));
        }
        assert!(Record::decode(&[tabmesh_base::codec::VERSION, 9]).is_err());
        assert!(Record::decode(&[200, 0]).is_err());
        assert!(Record::decode(&[]).is_err());
    }
}
