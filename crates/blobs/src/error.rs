//! Why a blob, a manifest, a chunk or a message was refused, and why a fetch gave up.

use tabmesh_base::CodecError;
use thiserror::Error;

use crate::{BlobId, Want};

/// Why a call was refused. Nothing changed when a call returns one of these.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BlobError {
    /// A blob is longer than the bound ([`MAX_BLOB_LEN`](crate::MAX_BLOB_LEN), or the caller's
    /// [`Limits::max_blob_len`](crate::Limits::max_blob_len)).
    #[error("blob of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The length written so far, or announced by a manifest.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// A manifest decodes but contradicts itself: its id is not the hash of its length and chunk
    /// ids, or its chunk count does not match its length.
    #[error("bad manifest: {reason}")]
    BadManifest {
        /// What is wrong.
        reason: &'static str,
    },
    /// A manifest is valid but describes another blob than the one asked for.
    #[error("manifest of blob {found} where blob {expected} was asked for")]
    WrongBlob {
        /// The blob asked for.
        expected: BlobId,
        /// The blob the manifest describes.
        found: BlobId,
    },
    /// A chunk's bytes do not hash to the id the manifest lists at its index (or do not have the
    /// length the manifest implies).
    #[error("chunk {index} does not match the manifest")]
    ChunkMismatch {
        /// The chunk's index.
        index: u32,
    },
    /// A chunk of a blob whose manifest is not known (store the manifest first).
    #[error("blob {blob} is unknown (no manifest)")]
    UnknownBlob {
        /// The blob.
        blob: BlobId,
    },
    /// A chunk index past the blob's last chunk.
    #[error("chunk index {index} out of range (the blob has {count} chunks)")]
    ChunkIndex {
        /// The index given.
        index: u32,
        /// How many chunks the blob has.
        count: u32,
    },
    /// A byte range that is empty-backwards or ends past the blob.
    #[error("byte range {start}..{end} out of range (the blob has {len} bytes)")]
    OutOfRange {
        /// Start of the range.
        start: u64,
        /// End of the range (exclusive).
        end: u64,
        /// The blob's length.
        len: u64,
    },
    /// [`Limits`](crate::Limits) that a fetch could not run with (e.g. an in-flight byte budget
    /// smaller than one chunk).
    #[error("invalid fetch limits: {reason}")]
    InvalidLimits {
        /// Which bound is wrong.
        reason: &'static str,
    },
    /// Bytes that do not decode (unknown version, truncated, over a bound, trailing bytes).
    #[error("cannot decode: {0}")]
    Codec(#[from] CodecError),
}

/// Why a [`Fetch`](crate::Fetch) gave up ([`FetchAction::Failed`](crate::FetchAction::Failed)).
/// A fetch that merely has nobody to ask does not fail: it waits and reports
/// [`FetchEvent::NoHolders`](crate::FetchEvent::NoHolders).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// One piece (the manifest or a chunk) failed
    /// [`Limits::max_attempts_per_chunk`](crate::Limits::max_attempts_per_chunk) times (timeouts
    /// and bad answers; a holder saying it does not have it is not an attempt).
    #[error("{what:?} failed {attempts} times")]
    Attempts {
        /// The piece.
        what: Want,
        /// How many attempts failed.
        attempts: u32,
    },
    /// The verified manifest announces a blob longer than
    /// [`Limits::max_blob_len`](crate::Limits::max_blob_len).
    #[error("the blob has {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The blob's length.
        len: u64,
        /// The bound.
        max: u64,
    },
}
