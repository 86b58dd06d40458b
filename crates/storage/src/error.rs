//! Why the store refused a call.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a [`Store`](crate::Store) (or [`BlobStore`](crate::BlobStore)) call failed.
///
/// After an error from [`Store::commit`](crate::Store::commit) a `FileStore` first cuts its log
/// back to the last durable record and syncs that: if it can, the batch is known not committed
/// and the store stays usable; if it cannot, the batch may or may not be durable, and the store
/// refuses every later call with [`StoreError::Poisoned`] until it is reopened. (A failed
/// compaction, after its batch was committed, also poisons it.)
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file system call failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// What is on disk is not something this build wrote and can read back: a record that fails
    /// its checksum *before* the tail of the log (valid records follow it), a snapshot that fails
    /// its checksum, an unknown format version, a log without its snapshot; in a
    /// [`BlobStore`](crate::BlobStore), a manifest that does not decode and verify, a record or
    /// chunk over its bound, a key this build does not write. The message names the file (or
    /// key). A torn record at the tail of the log is not corruption: it is dropped.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A batch whose log record would be `len` bytes, over the limit `max`
    /// ([`MAX_RECORD`](crate::MAX_RECORD)); or, from a [`BlobStore`](crate::BlobStore), a blob
    /// record, chunk or manifest encoding of `len` bytes over its bound
    /// ([`MAX_BLOB_RECORD`](crate::MAX_BLOB_RECORD), [`CHUNK_SIZE`](tabmesh_blobs::CHUNK_SIZE),
    /// [`MAX_MANIFEST_LEN`](tabmesh_blobs::MAX_MANIFEST_LEN)). Nothing was written.
    #[error("{len} bytes to write, over the limit of {max}: nothing was written")]
    TooLarge {
        /// The size of the record the batch needs (or of the blob record, chunk or manifest).
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The browser's storage (IndexedDB) refused an operation; the message says which and why.
    #[error("IndexedDB: {0}")]
    Browser(String),
    /// The origin's storage quota is used up: the batch (or blob write) was not committed (the
    /// store stays usable; free space or ask for persistent storage).
    #[error("storage quota exceeded: the write was not committed")]
    QuotaExceeded,
    /// Upgrading the database to this build's schema waited `waited_ms` for another tab that
    /// keeps an older version open (and does not close it when asked): close that tab.
    #[error("another tab keeps an older version of the database open (waited {waited_ms} ms for it to close): close it and try again")]
    Blocked {
        /// How long the open waited.
        waited_ms: u32,
    },
    /// The database was written by a newer build (its schema version is above `supported`).
    #[error("the database was written by a newer version of tabmesh (this build reads schema version {supported})")]
    NewerVersion {
        /// The schema version this build reads.
        supported: u32,
    },
    /// An earlier commit or compaction failed, so what is on disk is not known: the store refuses
    /// every call until it is reopened (which loads what is on disk).
    #[error(
        "{}: an earlier commit or compaction failed, so what is on disk is not known; reopen the store",
        path.display()
    )]
    Poisoned {
        /// The store's directory.
        path: PathBuf,
    },
}

impl StoreError {
    /// An [`StoreError::Io`] about `path`, for `map_err`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
