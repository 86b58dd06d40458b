//! [`FileStore`]: the store in a directory, as snapshot generations and write-ahead logs.
//!
//! The formats ([`format`]), the recovery and the order of writes and syncs are here, once; every
//! file system call goes through a [`Disk`]: `StdDisk` natively, `JsDisk` in a JS host (Node.js's
//! `node:fs`, through a JS object).

mod disk;
mod format;
#[cfg(js_host)]
mod js;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use tabmesh_base::codec::VERSION;
use tabmesh_base::{MemoryKv, WriteBatch};

use crate::{codec, Store, StoreError};

pub use self::disk::Disk;
#[cfg(not(js_host))]
pub use self::disk::StdDisk;
#[cfg(js_host)]
pub use self::js::JsDisk;

use self::format::Frame;

// The disk a `FileStore` uses unless told otherwise (its type parameter's default).
#[cfg(not(js_host))]
use self::disk::StdDisk as PlatformDisk;
#[cfg(js_host)]
use self::js::JsDisk as PlatformDisk;

/// The default [`Config::compact_at`]: 16 MiB.
pub const DEFAULT_COMPACT_AT: u64 = 16 << 20;

/// The log is also allowed to grow to this many times the snapshot's size before it is compacted,
/// so a large store is not rewritten after every few commits.
pub const COMPACT_FACTOR: u64 = 2;

/// How a [`FileStore`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The log is compacted (a new snapshot, an empty log) after a commit leaves it over
    /// `max(compact_at, COMPACT_FACTOR × snapshot size)` bytes. Default: [`DEFAULT_COMPACT_AT`]
    /// (16 MiB). Bounds the log, hence the replay work and the disk space of a restart, to about
    /// that plus one record.
    pub compact_at: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            compact_at: DEFAULT_COMPACT_AT,
        }
    }
}

/// A [`Store`] in a directory: natively (and in WASI) on the file system through `StdDisk`
/// (`FileStore::open`); in Node.js through a JS object wrapping `node:fs` (`JsDisk`,
/// `FileStore::open_js`); on any other [`Disk`] with [`FileStore::open_on`]. The type parameter
/// defaults to the platform's disk: `StdDisk`, or `JsDisk` in a JS host.
///
/// The directory holds one **generation** `g`: `snap-<g>`, the full image after record `s`, and
/// `log-<g>`, the records `s + 1, s + 2, …` committed since (see the crate docs for the formats).
/// A commit appends one record with one `write_all` and `sync_data`s the log before it returns. A
/// compaction writes `snap-<g+1>.tmp`, syncs it, renames it to `snap-<g+1>`, syncs the directory,
/// creates `log-<g+1>`, then deletes generation `g`. Opening keeps the newest snapshot (every
/// snapshot is complete: it only gets its name once synced), replays its log, drops a torn record
/// at the log's tail, and deletes leftovers (`.tmp` files, older generations), so a crash at any
/// step loads exactly what was committed.
///
/// The whole store is held in memory (a mirror kept up to date by every commit, written out by
/// compaction). One process at a time may open a directory: this is not enforced.
///
/// ```no_run
/// use tabmesh_base::{KvRead, WriteBatch};
/// use tabmesh_storage::{FileStore, Store};
///
/// # fn main() -> Result<(), tabmesh_storage::StoreError> {
/// let mut store = FileStore::open("/var/lib/tabmesh/store")?;
/// let kv = store.load()?; // what the last run committed
/// let mut batch = WriteBatch::new();
/// batch.put(b"n/clock".to_vec(), b"...".to_vec());
/// store.commit(&batch)?; // durable when it returns
/// # let _ = kv.get(b"n/clock");
/// # Ok(())
/// # }
/// ```
pub struct FileStore<D: Disk = PlatformDisk> {
    disk: D,
    dir: PathBuf,
    config: Config,
    /// The current generation.
    generation: u64,
    /// The sequence number of the last committed record (the snapshot's if the log is empty).
    seq: u64,
    /// `log-<generation>`, opened for appending.
    log: D::Log,
    /// Bytes in the log (all whole records).
    log_len: u64,
    /// Bytes in `snap-<generation>`.
    snap_len: u64,
    /// Everything committed.
    mirror: MemoryKv,
    /// A commit or compaction failed after it started writing: what is on disk is unknown.
    poisoned: bool,
}

impl<D: Disk> fmt::Debug for FileStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("generation", &self.generation)
            .field("seq", &self.seq)
            .field("log_len", &self.log_len)
            .field("snap_len", &self.snap_len)
            .field("keys", &self.mirror.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

#[cfg(not(js_host))]
impl FileStore<StdDisk> {
    /// Opens (creating it if needed) the store in `dir`, with the default [`Config`].
    pub fn open(dir: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        FileStore::open_with(dir, Config::default())
    }

    /// Opens (creating it if needed) the store in `dir` on the native file system: recovers
    /// what was committed (see [`FileStore::open_on`]).
    pub fn open_with(dir: impl AsRef<Path>, config: Config) -> Result<FileStore, StoreError> {
        FileStore::open_on(StdDisk, dir, config)
    }
}

#[cfg(js_host)]
impl FileStore<JsDisk> {
    /// Opens (creating it if needed) the store in the directory `dir` through `fs`, a JS object
    /// whose synchronous methods do the file system calls (in Node.js, over `node:fs`; the
    /// interface is [`JsDisk`]'s): recovers what was committed (see [`FileStore::open_on`]).
    ///
    /// Refused with [`StoreError::Io`] (about `dir`) when `fs` lacks one of the methods.
    pub fn open_js(
        fs: wasm_bindgen::JsValue,
        dir: &str,
        config: Config,
    ) -> Result<FileStore<JsDisk>, StoreError> {
        let disk = JsDisk::new(fs).map_err(StoreError::io(Path::new(dir)))?;
        FileStore::open_on(disk, dir, config)
    }
}

impl<D: Disk> FileStore<D> {
    /// Opens (creating it if needed) the store in `dir` on `disk`: recovers what was committed
    /// (see [`FileStore`]), dropping a torn record at the tail of the log and the leftovers of an
    /// interrupted compaction.
    ///
    /// Refused with [`StoreError::Corrupt`] when what is on disk was damaged (a record that fails
    /// its checksum before the tail, a snapshot that fails its checksum, a log without its
    /// snapshot) or written in an unknown format version; with [`StoreError::Io`] when a file
    /// system call fails.
    pub fn open_on(
        disk: D,
        dir: impl AsRef<Path>,
        config: Config,
    ) -> Result<FileStore<D>, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let created = disk.create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        if created {
            // The new directory's entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(&disk, parent)?;
            }
        }
        let listing = Listing::read(&disk, &dir)?;

        // A temporary snapshot is a compaction that did not finish: its generation never existed.
        for &generation in &listing.tmps {
            remove(&disk, &dir.join(tmp_name(generation)))?;
        }
        let generation = match listing.snaps.last() {
            Some(&generation) => generation,
            None => {
                if let Some(&log) = listing.logs.first() {
                    return Err(StoreError::Corrupt(format!(
                        "{}: a log without any snapshot (snap-<generation> files are never \
                         deleted before their successor is complete)",
                        dir.join(log_name(log)).display()
                    )));
                }
                // A new store: generation 0 is an empty image.
                write_snapshot(&disk, &dir, 0, 0, &MemoryKv::new())?;
                0
            }
        };
        if let Some(&newer) = listing.logs.iter().find(|&&log| log > generation) {
            return Err(StoreError::Corrupt(format!(
                "{}: a log newer than the newest snapshot {} (its snapshot is missing)",
                dir.join(log_name(newer)).display(),
                dir.join(snap_name(generation)).display()
            )));
        }

        let snap_path = dir.join(snap_name(generation));
        let snap = disk
            .read(&snap_path)
            .and_then(|snap| snap.ok_or_else(|| io::ErrorKind::NotFound.into()))
            .map_err(StoreError::io(&snap_path))?;
        let (seq, mut mirror) = format::parse_snapshot(&snap)
            .map_err(|why| StoreError::Corrupt(format!("{}: {why}", snap_path.display())))?;
        let snap_len = len64(snap.len());
        drop(snap);
        let (log, log_len, seq) = recover_log(&disk, &dir, generation, seq, &mut mirror)?;

        // Older generations: a compaction that stopped before deleting them. The newest is whole.
        let mut removed = !listing.tmps.is_empty();
        for &old in listing.snaps.range(..generation) {
            remove(&disk, &dir.join(snap_name(old)))?;
            removed = true;
        }
        for &old in listing.logs.range(..generation) {
            remove(&disk, &dir.join(log_name(old)))?;
            removed = true;
        }
        if removed {
            sync_dir(&disk, &dir)?;
        }

        Ok(FileStore {
            disk,
            dir,
            config,
            generation,
            seq,
            log,
            log_len,
            snap_len,
            mirror,
            poisoned: false,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the image to a new generation and deletes the old one. [`Store::commit`] calls it
    /// when the log outgrows [`Config::compact_at`]; a driver may also call it, e.g. on shutdown.
    /// An error leaves the store poisoned (reopen it) unless the new generation is already
    /// complete and only the old one could not be deleted.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.check_healthy()?;
        self.poisoned = true;
        let next = self.generation + 1;
        let snap_len = write_snapshot(&self.disk, &self.dir, next, self.seq, &self.mirror)?;
        let log = create_log(&self.disk, &self.dir, next)?;
        // `snap-<next>` and `log-<next>` are durable: from here on, generation `next` is the store.
        let old = self.generation;
        self.generation = next;
        self.log = log;
        self.log_len = 0;
        self.snap_len = snap_len;
        self.poisoned = false;
        remove(&self.disk, &self.dir.join(snap_name(old)))?;
        remove(&self.disk, &self.dir.join(log_name(old)))?;
        sync_dir(&self.disk, &self.dir)
    }

    fn check_healthy(&self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// The log size after which a commit compacts.
    fn compact_threshold(&self) -> u64 {
        self.config
            .compact_at
            .max(self.snap_len.saturating_mul(COMPACT_FACTOR))
    }
}

impl<D: Disk> Store for FileStore<D> {
    /// A copy of the in-memory mirror of what was committed (opening read it from disk).
    fn load(&mut self) -> Result<MemoryKv, StoreError> {
        self.check_healthy()?;
        Ok(self.mirror.clone())
    }

    /// Appends one record to the log ([`Disk::append`]: one `write_all`, then `sync_data`); then
    /// compacts if the log outgrew its bound. An empty batch writes nothing.
    fn commit(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.check_healthy()?;
        if batch.is_empty() {
            return Ok(());
        }
        let payload = codec::encode(batch)?;
        let seq = self.seq + 1;
        let record = format::record(seq, &payload);
        drop(payload);
        let path = self.dir.join(log_name(self.generation));
        // Until the record is synced, the log's tail is unknown.
        self.poisoned = true;
        if let Err(e) = self.disk.append(&mut self.log, &record) {
            // The record may sit in the page cache without being durable (a failed sync can even
            // mark its pages clean). Cut the log back to its last durable length and sync that:
            // if it works, the batch is known not committed and the store stays usable;
            // otherwise it stays poisoned (reopen it).
            if self.disk.truncate(&mut self.log, self.log_len).is_ok() {
                self.poisoned = false;
            }
            return Err(StoreError::io(&path)(e));
        }
        self.poisoned = false;
        self.seq = seq;
        self.log_len += len64(record.len());
        self.mirror.apply(batch);
        if self.log_len > self.compact_threshold() {
            self.compact()?;
        }
        Ok(())
    }
}

/// The files of a store directory, by generation. Other names are not the store's and are left
/// alone.
#[derive(Debug, Default)]
struct Listing {
    snaps: BTreeSet<u64>,
    tmps: BTreeSet<u64>,
    logs: BTreeSet<u64>,
}

impl Listing {
    fn read(disk: &impl Disk, dir: &Path) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        for name in disk.list(dir).map_err(StoreError::io(dir))? {
            let name = name.as_str();
            if let Some(rest) = name.strip_prefix("snap-") {
                if let Some(generation) = rest.strip_suffix(".tmp").and_then(parse_generation) {
                    listing.tmps.insert(generation);
                } else if let Some(generation) = parse_generation(rest) {
                    listing.snaps.insert(generation);
                }
            } else if let Some(generation) = name.strip_prefix("log-").and_then(parse_generation) {
                listing.logs.insert(generation);
            }
        }
        Ok(listing)
    }
}

/// A generation number as the store writes it (decimal, no leading zeros), else `None`.
fn parse_generation(s: &str) -> Option<u64> {
    let generation: u64 = s.parse().ok()?;
    (generation.to_string() == s).then_some(generation)
}

fn snap_name(generation: u64) -> String {
    format!("snap-{generation}")
}

fn tmp_name(generation: u64) -> String {
    format!("snap-{generation}.tmp")
}

fn log_name(generation: u64) -> String {
    format!("log-{generation}")
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Removes the file `path` (a missing one is fine).
fn remove(disk: &impl Disk, path: &Path) -> Result<(), StoreError> {
    disk.remove(path).map_err(StoreError::io(path))
}

/// Makes the directory's entries (creations, renames, removals) durable.
fn sync_dir(disk: &impl Disk, dir: &Path) -> Result<(), StoreError> {
    disk.sync_dir(dir).map_err(StoreError::io(dir))
}

/// Writes `snap-<generation>` holding `kv` as the image after record `seq`: through a synced
/// `.tmp` file renamed into place, then a directory sync. Returns its size.
fn write_snapshot(
    disk: &impl Disk,
    dir: &Path,
    generation: u64,
    seq: u64,
    kv: &MemoryKv,
) -> Result<u64, StoreError> {
    let bytes = format::snapshot(seq, kv);
    let tmp = dir.join(tmp_name(generation));
    disk.write_synced(&tmp, &bytes)
        .map_err(StoreError::io(&tmp))?;
    let path = dir.join(snap_name(generation));
    disk.rename(&tmp, &path).map_err(StoreError::io(&path))?;
    sync_dir(disk, dir)?;
    Ok(len64(bytes.len()))
}

/// Creates the empty `log-<generation>` and makes it durable, before any record goes in.
fn create_log<D: Disk>(disk: &D, dir: &Path, generation: u64) -> Result<D::Log, StoreError> {
    let path = dir.join(log_name(generation));
    let log = disk.create_log(&path).map_err(StoreError::io(&path))?;
    sync_dir(disk, dir)?;
    Ok(log)
}

/// Replays `log-<generation>` onto `mirror` (the snapshot's image after record `seq`), cuts a torn
/// tail off, and opens the log for appending. A missing log (a compaction stopped before creating
/// it) is created empty. Returns the log, its length and the last sequence number.
fn recover_log<D: Disk>(
    disk: &D,
    dir: &Path,
    generation: u64,
    seq: u64,
    mirror: &mut MemoryKv,
) -> Result<(D::Log, u64, u64), StoreError> {
    let path = dir.join(log_name(generation));
    let Some(bytes) = disk.read(&path).map_err(StoreError::io(&path))? else {
        return Ok((create_log(disk, dir, generation)?, 0, seq));
    };
    let (whole, seq) = replay(&path, &bytes, seq, mirror)?;
    let mut log = disk.open_log(&path).map_err(StoreError::io(&path))?;
    if whole < bytes.len() {
        // A torn tail: the last write before a crash did not finish, so it never returned.
        disk.truncate(&mut log, len64(whole))
            .map_err(StoreError::io(&path))?;
    }
    Ok((log, len64(whole), seq))
}

/// Applies the whole records of `log` to `mirror`, from sequence number `seq + 1`. Returns the
/// length of the whole records (where a torn tail starts) and the last sequence number.
fn replay(
    path: &Path,
    log: &[u8],
    mut seq: u64,
    mirror: &mut MemoryKv,
) -> Result<(usize, u64), StoreError> {
    let corrupt = |at: usize, why: String| {
        StoreError::Corrupt(format!("{}: the record at byte {at} {why}", path.display()))
    };
    let mut at = 0;
    while let Some(rest) = log.get(at..).filter(|rest| !rest.is_empty()) {
        let expected = seq.wrapping_add(1);
        match format::frame(rest) {
            Frame::Whole {
                version,
                seq: found,
                payload,
                len,
            } => {
                if version != VERSION {
                    return Err(corrupt(
                        at,
                        format!("has format version {version}; this build reads version {VERSION}"),
                    ));
                }
                if found != expected {
                    return Err(corrupt(
                        at,
                        format!("has sequence number {found}, expected {expected}"),
                    ));
                }
                let batch = codec::decode(payload)
                    .map_err(|e| corrupt(at, format!("does not decode: {e}")))?;
                mirror.apply(&batch);
                seq = found;
                at += len;
            }
            Frame::Broken => {
                if format::whole_record_follows(log, at, expected) {
                    return Err(corrupt(
                        at,
                        format!(
                            "(sequence number {expected}) fails its checksum, and whole records \
                             follow it"
                        ),
                    ));
                }
                break;
            }
        }
    }
    Ok((at, seq))
}
