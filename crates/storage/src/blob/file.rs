//! [`FileBlobStore`]: blobs in a directory, one subdirectory per blob, one file per piece.

use std::fmt;
use std::future::{ready, Future};
use std::io;
use std::path::{Path, PathBuf};

use tabmesh_base::Hash;
use tabmesh_blobs::{BlobId, Manifest, CHUNK_SIZE, MAX_MANIFEST_LEN};

use super::{
    check_chunk, check_record, check_stored, decode_manifest, encode_manifest, BlobStore,
    MAX_BLOB_RECORD,
};
use crate::{Disk, StoreError};

#[cfg(js_host)]
use crate::JsDisk;
#[cfg(not(js_host))]
use crate::StdDisk;

// The disk a `FileBlobStore` uses unless told otherwise (its type parameter's default).
#[cfg(js_host)]
use crate::JsDisk as PlatformDisk;
#[cfg(not(js_host))]
use crate::StdDisk as PlatformDisk;

/// The file of a blob's record.
const RECORD: &str = "record";

/// The file of a blob's manifest.
const MANIFEST: &str = "manifest";

/// The suffix of a file being written (renamed into place once whole and synced).
const TMP: &str = ".tmp";

/// The suffix a blob's directory is renamed to when the blob is deleted, before it is removed.
const DELETED: &str = ".del";

/// A [`BlobStore`] in a directory: natively on the file system through `StdDisk`
/// (`FileBlobStore::open`); in Node.js through a JS object wrapping `node:fs` (`JsDisk`,
/// `FileBlobStore::open_js`); on any other [`Disk`] with [`FileBlobStore::open_on`]. The type
/// parameter defaults to the platform's disk, as [`FileStore`](crate::FileStore)'s does. Give it a
/// directory of its own (not the `FileStore`'s).
///
/// # Layout
///
/// ```text
/// <dir>/<blob id: 64 lower-case hex digits>/record     the record, as given
///                                          /manifest   the manifest's encoding (Manifest::encode)
///                                          /<index>    chunk `index` (decimal, no leading zeros)
/// ```
///
/// Files are written as-is, with no header of their own: the manifest encoding starts with its
/// own version byte ([`tabmesh_base::codec::VERSION`]) and is verified when read; the record is
/// the caller's bytes (a versioned encoding is the caller's business); a chunk is raw bytes,
/// verified by the caller against the manifest.
///
/// # Writes and crashes
///
/// Every file is written as `<name>.tmp` (written whole, then synced), then renamed to `<name>`,
/// so after a crash it holds the old bytes or the new ones, never a mix. A record or manifest
/// write then syncs the blob's directory and the store's (which names the blob's directory):
/// durable when it returns. A chunk write does not sync directories (relaxed: a chunk lost in a
/// crash is fetched again), nor does a chunk deletion. Deleting a blob renames its directory to
/// `<id>.del`, syncs the store's directory (from then on the blob is gone, even after a crash),
/// and removes it; opening removes a `<id>.del` a crash left behind. A leftover `.tmp` file (a
/// write a crash interrupted) is ignored by every read, replaced by the next write of the same
/// file and removed with its blob. Other names are not the store's and are left alone.
///
/// Every call is one or a few file system calls: nothing is cached, nothing is held in memory
/// (a chunk is read whole: [`CHUNK_SIZE`] at most). One process at a time may use a directory
/// (not enforced).
pub struct FileBlobStore<D: Disk = PlatformDisk> {
    disk: D,
    dir: PathBuf,
}

impl<D: Disk> fmt::Debug for FileBlobStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBlobStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[cfg(not(js_host))]
impl FileBlobStore<StdDisk> {
    /// Opens (creating it if needed) the blob store in `dir` on the native file system (see
    /// [`FileBlobStore::open_on`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<FileBlobStore, StoreError> {
        FileBlobStore::open_on(StdDisk, dir)
    }
}

#[cfg(js_host)]
impl FileBlobStore<JsDisk> {
    /// Opens (creating it if needed) the blob store in the directory `dir` through `fs`, a JS
    /// object whose synchronous methods do the file system calls (in Node.js, over `node:fs`; the
    /// interface is [`JsDisk`]'s, including `removeDir`, which only the blob store needs).
    ///
    /// Refused with [`StoreError::Io`] (about `dir`) when `fs` lacks one of the methods.
    pub fn open_js(
        fs: wasm_bindgen::JsValue,
        dir: &str,
    ) -> Result<FileBlobStore<JsDisk>, StoreError> {
        let path = Path::new(dir);
        let disk = JsDisk::new(fs).map_err(StoreError::io(path))?;
        disk.require_blob_methods().map_err(StoreError::io(path))?;
        FileBlobStore::open_on(disk, dir)
    }
}

impl<D: Disk> FileBlobStore<D> {
    /// Opens (creating it if needed) the blob store in `dir` on `disk`, and removes what a delete
    /// a crash interrupted left behind (`<id>.del` directories). Reads nothing else: blobs are
    /// read when asked for.
    ///
    /// Refused with [`StoreError::Io`] when a file system call fails.
    pub fn open_on(disk: D, dir: impl AsRef<Path>) -> Result<FileBlobStore<D>, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let created = disk.create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        if created {
            // The new directory's entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                disk.sync_dir(parent).map_err(StoreError::io(parent))?;
            }
        }
        let store = FileBlobStore { disk, dir };
        for name in store
            .disk
            .list(&store.dir)
            .map_err(StoreError::io(&store.dir))?
        {
            if let Some(blob) = name.strip_suffix(DELETED).and_then(parse_blob) {
                store.remove_dir(&store.deleted_dir(&blob))?;
            }
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<hex id>`.
    fn blob_dir(&self, blob: &BlobId) -> PathBuf {
        self.dir.join(Hash::from(*blob).to_hex())
    }

    /// `<dir>/<hex id>.del`.
    fn deleted_dir(&self, blob: &BlobId) -> PathBuf {
        self.dir
            .join(format!("{}{DELETED}", Hash::from(*blob).to_hex()))
    }

    fn remove_dir(&self, dir: &Path) -> Result<(), StoreError> {
        self.disk.remove_dir_all(dir).map_err(StoreError::io(dir))
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), StoreError> {
        self.disk.sync_dir(dir).map_err(StoreError::io(dir))
    }

    /// Writes `<blob dir>/<name>` through `<name>.tmp` (synced, then renamed into place); when
    /// `durable`, syncs the blob's directory and the store's, so the file and the directory
    /// naming it survive a crash.
    fn write(
        &self,
        blob: &BlobId,
        name: &str,
        bytes: &[u8],
        durable: bool,
    ) -> Result<(), StoreError> {
        let dir = self.blob_dir(blob);
        self.disk
            .create_dir_all(&dir)
            .map_err(StoreError::io(&dir))?;
        let tmp = dir.join(format!("{name}{TMP}"));
        self.disk
            .write_synced(&tmp, bytes)
            .map_err(StoreError::io(&tmp))?;
        let path = dir.join(name);
        self.disk
            .rename(&tmp, &path)
            .map_err(StoreError::io(&path))?;
        if durable {
            self.sync_dir(&dir)?;
            // Always, not only when the blob's directory was just created: a chunk write may have
            // created it without syncing.
            self.sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The bytes of `<blob dir>/<name>`, if it exists, refused as corrupt over `max` bytes.
    fn read(
        &self,
        blob: &BlobId,
        name: &str,
        what: &str,
        max: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.blob_dir(blob).join(name);
        let bytes = self.disk.read(&path).map_err(StoreError::io(&path))?;
        if let Some(bytes) = &bytes {
            check_stored(bytes.len(), max, what, &path.display().to_string())?;
        }
        Ok(bytes)
    }

    fn records_now(&self) -> Result<Vec<(BlobId, Vec<u8>)>, StoreError> {
        let names = self
            .disk
            .list(&self.dir)
            .map_err(StoreError::io(&self.dir))?;
        let mut records = Vec::new();
        for blob in names.iter().filter_map(|name| parse_blob(name)) {
            if let Some(record) = self.read(&blob, RECORD, "record", MAX_BLOB_RECORD)? {
                records.push((blob, record));
            }
        }
        records.sort_unstable_by_key(|(id, _)| *id);
        Ok(records)
    }

    fn put_record_now(&self, blob: &BlobId, record: &[u8]) -> Result<(), StoreError> {
        check_record(record)?;
        self.write(blob, RECORD, record, true)
    }

    fn put_manifest_now(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let bytes = encode_manifest(manifest)?;
        self.write(&manifest.id, MANIFEST, &bytes, true)
    }

    fn manifest_now(&self, blob: &BlobId) -> Result<Option<Manifest>, StoreError> {
        let Some(bytes) = self.read(blob, MANIFEST, "manifest", MAX_MANIFEST_LEN)? else {
            return Ok(None);
        };
        let path = self.blob_dir(blob).join(MANIFEST);
        decode_manifest(blob, &bytes, &path.display().to_string()).map(Some)
    }

    fn put_chunk_now(&self, blob: &BlobId, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        check_chunk(bytes)?;
        self.write(blob, &index.to_string(), bytes, false)
    }

    fn held_now(&self, blob: &BlobId) -> Result<Vec<u32>, StoreError> {
        let dir = self.blob_dir(blob);
        let names = match self.disk.list(&dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir)(e)),
        };
        let mut held: Vec<u32> = names.iter().filter_map(|name| parse_index(name)).collect();
        held.sort_unstable();
        Ok(held)
    }

    fn delete_chunk_now(&self, blob: &BlobId, index: u32) -> Result<(), StoreError> {
        let path = self.blob_dir(blob).join(index.to_string());
        self.disk.remove(&path).map_err(StoreError::io(&path))
    }

    fn delete_now(&self, blob: &BlobId) -> Result<(), StoreError> {
        let dir = self.blob_dir(blob);
        let deleted = self.deleted_dir(blob);
        // A delete that failed earlier may have left it.
        self.remove_dir(&deleted)?;
        match self.disk.rename(&dir, &deleted) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(&dir)(e)),
        }
        // The blob is gone for good once the rename is durable; the rest is tidying up (which
        // opening finishes if a crash interrupts it).
        self.sync_dir(&self.dir)?;
        self.remove_dir(&deleted)
    }
}

impl<D: Disk> BlobStore for FileBlobStore<D> {
    /// Lists the directory and reads every blob's `record` file.
    fn records(&mut self) -> impl Future<Output = Result<Vec<(BlobId, Vec<u8>)>, StoreError>> {
        ready(self.records_now())
    }

    fn put_record(
        &mut self,
        blob: &BlobId,
        record: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> {
        ready(self.put_record_now(blob, record))
    }

    fn put_manifest(
        &mut self,
        manifest: &Manifest,
    ) -> impl Future<Output = Result<(), StoreError>> {
        ready(self.put_manifest_now(manifest))
    }

    fn manifest(
        &mut self,
        blob: &BlobId,
    ) -> impl Future<Output = Result<Option<Manifest>, StoreError>> {
        ready(self.manifest_now(blob))
    }

    fn put_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> {
        ready(self.put_chunk_now(blob, index, bytes))
    }

    /// A chunk file over [`CHUNK_SIZE`] is [`StoreError::Corrupt`].
    fn chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> {
        ready(self.read(blob, &index.to_string(), "chunk", CHUNK_SIZE))
    }

    /// Lists the blob's directory.
    fn held(&mut self, blob: &BlobId) -> impl Future<Output = Result<Vec<u32>, StoreError>> {
        ready(self.held_now(blob))
    }

    fn delete_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
    ) -> impl Future<Output = Result<(), StoreError>> {
        ready(self.delete_chunk_now(blob, index))
    }

    fn delete(&mut self, blob: &BlobId) -> impl Future<Output = Result<(), StoreError>> {
        ready(self.delete_now(blob))
    }
}

/// A blob id as the store names its directory (64 lower-case hex digits), else `None`.
fn parse_blob(name: &str) -> Option<BlobId> {
    let hash = Hash::from_hex(name)?;
    (hash.to_hex() == name).then(|| BlobId::from(hash))
}

/// A chunk index as the store names its file (decimal, no leading zeros), else `None`.
fn parse_index(name: &str) -> Option<u32> {
    let index: u32 = name.parse().ok()?;
    (index.to_string() == name).then_some(index)
}
