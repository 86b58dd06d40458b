//! [`FileStore`]: the store in a directory, as snapshot generations and write-ahead logs.

mod format;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use tabmesh_base::codec::VERSION;
use tabmesh_base::{MemoryKv, WriteBatch};

use crate::{codec, Store, StoreError};

use self::format::Frame;

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

/// A [`Store`] in a directory (native and WASI only: absent in a JS host).
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
pub struct FileStore {
    dir: PathBuf,
    config: Config,
    /// The current generation.
    generation: u64,
    /// The sequence number of the last committed record (the snapshot's if the log is empty).
    seq: u64,
    /// `log-<generation>`, opened for appending.
    log: File,
    /// Bytes in the log (all whole records).
    log_len: u64,
    /// Bytes in `snap-<generation>`.
    snap_len: u64,
    /// Everything committed.
    mirror: MemoryKv,
    /// A commit or compaction failed after it started writing: what is on disk is unknown.
    poisoned: bool,
}

impl fmt::Debug for FileStore {
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

impl FileStore {
    /// Opens (creating it if needed) the store in `dir`, with the default [`Config`].
    pub fn open(dir: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        FileStore::open_with(dir, Config::default())
    }

    /// Opens (creating it if needed) the store in `dir`: recovers what was committed (see
    /// [`FileStore`]), dropping a torn record at the tail of the log and the leftovers of an
    /// interrupted compaction.
    ///
    /// Refused with [`StoreError::Corrupt`] when what is on disk was damaged (a record that fails
    /// its checksum before the tail, a snapshot that fails its checksum, a log without its
    /// snapshot) or written in an unknown format version; with [`StoreError::Io`] when a file
    /// system call fails.
    pub fn open_with(dir: impl AsRef<Path>, config: Config) -> Result<FileStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let created = !dir.exists();
        fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        if created {
            // The new directory's entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let listing = Listing::read(&dir)?;

        // A temporary snapshot is a compaction that did not finish: its generation never existed.
        for &generation in &listing.tmps {
            remove(&dir.join(tmp_name(generation)))?;
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
                write_snapshot(&dir, 0, 0, &MemoryKv::new())?;
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
        let snap = fs::read(&snap_path).map_err(StoreError::io(&snap_path))?;
        let (seq, mut mirror) = format::parse_snapshot(&snap)
            .map_err(|why| StoreError::Corrupt(format!("{}: {why}", snap_path.display())))?;
        let snap_len = len64(snap.len());
        drop(snap);
        let (log, log_len, seq) = recover_log(&dir, generation, seq, &mut mirror)?;

        // Older generations: a compaction that stopped before deleting them. The newest is whole.
        let mut removed = !listing.tmps.is_empty();
        for &old in listing.snaps.range(..generation) {
            remove(&dir.join(snap_name(old)))?;
            removed = true;
        }
        for &old in listing.logs.range(..generation) {
            remove(&dir.join(log_name(old)))?;
            removed = true;
        }
        if removed {
            sync_dir(&dir)?;
        }

        Ok(FileStore {
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
        let snap_len = write_snapshot(&self.dir, next, self.seq, &self.mirror)?;
        let log = create_log(&self.dir, next)?;
        // `snap-<next>` and `log-<next>` are durable: from here on, generation `next` is the store.
        let old = self.generation;
        self.generation = next;
        self.log = log;
        self.log_len = 0;
        self.snap_len = snap_len;
        self.poisoned = false;
        remove(&self.dir.join(snap_name(old)))?;
        remove(&self.dir.join(log_name(old)))?;
        sync_dir(&self.dir)
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

impl Store for FileStore {
    /// A copy of the in-memory mirror of what was committed (opening read it from disk).
    fn load(&mut self) -> Result<MemoryKv, StoreError> {
        self.check_healthy()?;
        Ok(self.mirror.clone())
    }

    /// Appends one record to the log with one `write_all`, then `sync_data`; then compacts if
    /// the log outgrew its bound. An empty batch writes nothing.
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
        let written = self
            .log
            .write_all(&record)
            .and_then(|()| self.log.sync_data());
        if let Err(e) = written {
            // The record may sit in the page cache without being durable (a failed sync can even
            // mark its pages clean). Cut the log back to its last durable length and sync that:
            // if it works, the batch is known not committed and the store stays usable;
            // otherwise it stays poisoned (reopen it).
            let restored = self
                .log
                .set_len(self.log_len)
                .and_then(|()| self.log.sync_all());
            if restored.is_ok() {
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
    fn read(dir: &Path) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
            let entry = entry.map_err(StoreError::io(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
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

fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Makes the directory's entries (creations, renames, removals) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // Unix syncs a directory through a handle on it; elsewhere (Windows, WASI) a directory cannot
    // be opened as a file, and renames are journaled by the file system.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io(dir))?;
    }
    Ok(())
}

/// Writes `snap-<generation>` holding `kv` as the image after record `seq`: through a synced
/// `.tmp` file renamed into place, then a directory sync. Returns its size.
fn write_snapshot(dir: &Path, generation: u64, seq: u64, kv: &MemoryKv) -> Result<u64, StoreError> {
    let bytes = format::snapshot(seq, kv);
    let tmp = dir.join(tmp_name(generation));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(StoreError::io(&tmp))?;
    file.write_all(&bytes).map_err(StoreError::io(&tmp))?;
    file.sync_all().map_err(StoreError::io(&tmp))?;
    drop(file);
    let path = dir.join(snap_name(generation));
    fs::rename(&tmp, &path).map_err(StoreError::io(&path))?;
    sync_dir(dir)?;
    Ok(len64(bytes.len()))
}

/// Creates the empty `log-<generation>` and makes it durable, before any record goes in.
fn create_log(dir: &Path, generation: u64) -> Result<File, StoreError> {
    let path = dir.join(log_name(generation));
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(StoreError::io(&path))?;
    file.sync_all().map_err(StoreError::io(&path))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Replays `log-<generation>` onto `mirror` (the snapshot's image after record `seq`), cuts a torn
/// tail off, and opens the log for appending. A missing log (a compaction stopped before creating
/// it) is created empty. Returns the log, its length and the last sequence number.
fn recover_log(
    dir: &Path,
    generation: u64,
    seq: u64,
    mirror: &mut MemoryKv,
) -> Result<(File, u64, u64), StoreError> {
    let path = dir.join(log_name(generation));
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok((create_log(dir, generation)?, 0, seq));
        }
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let (whole, seq) = replay(&path, &bytes, seq, mirror)?;
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(StoreError::io(&path))?;
    if whole < bytes.len() {
        // A torn tail: the last write before a crash did not finish, so it never returned.
        file.set_len(len64(whole)).map_err(StoreError::io(&path))?;
        file.sync_all().map_err(StoreError::io(&path))?;
    }
    Ok((file, len64(whole), seq))
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
