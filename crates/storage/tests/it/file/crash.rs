//! `FileStore` and `FileBlobStore` on a simulated [`Disk`] that loses power: whatever was not
//! synced when the disk stops may or may not survive (each directory entry on its own — a renamed
//! directory with everything in it —, a prefix of each file's unsynced tail; the write the power
//! cut off got half of its bytes into the page cache). Wherever the power goes, reopening loads
//! exactly the acknowledged commits, or those and the one in flight; the blob store keeps every
//! acknowledged record, manifest and deletion, and every chunk it holds is whole.

use tabmesh_testkit::test;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tabmesh_base::{DetRng, MemoryKv, WriteBatch};
use tabmesh_blobs::{BlobId, Manifest};
use tabmesh_storage::{BlobStore, Config, Disk, FileBlobStore, FileStore, Store, StoreError};

use super::super::blob::{now, sample};
use super::super::support::random_batch;

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    /// A file: an index into `Sim::files`.
    File(usize),
}

/// A file's bytes now, and as of its last sync.
#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

/// The simulated file system. `/` always exists.
#[derive(Debug, Default)]
struct Sim {
    /// The entries now, by path.
    live: BTreeMap<PathBuf, Entry>,
    /// The entries as of the last sync of their directory.
    durable: BTreeMap<PathBuf, Entry>,
    files: Vec<Inode>,
    /// Directories renamed (`from`, `to`) since their parent was last synced: after a crash each
    /// one happened or did not, with everything in it.
    moves: Vec<(PathBuf, PathBuf)>,
    /// Calls that still succeed; `None`: all of them.
    budget: Option<usize>,
    /// Calls made (successful or not).
    calls: usize,
}

impl Sim {
    /// Counts a call; fails it (without effect) once the budget is spent.
    fn call(&mut self) -> io::Result<()> {
        self.calls += 1;
        match &mut self.budget {
            Some(0) => Err(io::Error::other("power lost")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn file(&self, path: &Path) -> io::Result<usize> {
        match self.live.get(path) {
            Some(&Entry::File(inode)) => Ok(inode),
            Some(Entry::Dir) => Err(io::Error::other("is a directory")),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        path == Path::new("/") || self.live.get(path) == Some(&Entry::Dir)
    }

    /// Power comes back: each entry whose change was not synced is either changed or not, each
    /// file keeps its synced bytes and maybe a prefix of the rest (when it only grew), and what
    /// hangs off a lost directory is gone.
    fn crash(&mut self, rng: &mut DetRng) {
        for (from, to) in std::mem::take(&mut self.moves).into_iter().rev() {
            if rng.chance(0.5) {
                move_tree(&mut self.durable, &from, &to);
            } else {
                move_tree(&mut self.live, &to, &from);
            }
        }
        let paths: Vec<PathBuf> = self
            .live
            .keys()
            .chain(self.durable.keys())
            .cloned()
            .collect();
        let mut after = BTreeMap::new();
        for path in paths {
            let entry = if rng.chance(0.5) {
                self.live.get(&path)
            } else {
                self.durable.get(&path)
            };
            if let Some(&entry) = entry {
                after.insert(path, entry);
            }
        }
        // Parents sort before their children.
        let mut reachable = BTreeMap::new();
        for (path, entry) in after {
            let parent = path.parent().unwrap();
            if parent == Path::new("/") || reachable.get(parent) == Some(&Entry::Dir) {
                reachable.insert(path, entry);
            }
        }
        self.live = reachable.clone();
        self.durable = reachable;
        for inode in &mut self.files {
            let mut kept = inode.synced.clone();
            if let Some(tail) = inode.data.strip_prefix(&inode.synced[..]) {
                kept.extend_from_slice(&tail[..rng.index(tail.len() + 1)]);
            }
            inode.data = kept.clone();
            inode.synced = kept;
        }
        self.budget = None;
    }
}

/// Moves the entry `from` and everything under it to `to` (nothing if `from` is absent).
fn move_tree(entries: &mut BTreeMap<PathBuf, Entry>, from: &Path, to: &Path) {
    let moved: Vec<(PathBuf, Entry)> = entries
        .iter()
        .filter(|(path, _)| path.starts_with(from))
        .map(|(path, entry)| (path.clone(), *entry))
        .collect();
    for (path, entry) in moved {
        entries.remove(&path);
        entries.insert(to.join(path.strip_prefix(from).unwrap()), entry);
    }
}

/// A [`Disk`] on a shared [`Sim`].
#[derive(Clone, Debug, Default)]
struct SimDisk(Rc<RefCell<Sim>>);

impl Disk for SimDisk {
    type Log = usize;

    fn create_dir_all(&self, dir: &Path) -> io::Result<bool> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        if sim.is_dir(dir) {
            return Ok(false);
        }
        for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if !sim.is_dir(ancestor) {
                if sim.live.contains_key(ancestor) {
                    return Err(io::Error::other("not a directory"));
                }
                sim.live.insert(ancestor.to_path_buf(), Entry::Dir);
            }
        }
        Ok(true)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        if !sim.is_dir(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(sim
            .live
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .map(|path| path.file_name().unwrap().to_str().unwrap().to_owned())
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        match sim.file(path) {
            Ok(inode) => Ok(Some(sim.files[inode].data.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        let called = sim.call();
        let inode = match sim.file(path) {
            Ok(inode) => inode,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                sim.files.push(Inode::default());
                let inode = sim.files.len() - 1;
                sim.live.insert(path.to_path_buf(), Entry::File(inode));
                inode
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = called {
            // The power went during the write: half of it is in the page cache.
            sim.files[inode] = Inode {
                data: bytes[..bytes.len() / 2].to_vec(),
                synced: Vec::new(),
            };
            return Err(e);
        }
        sim.files[inode] = Inode {
            data: bytes.to_vec(),
            synced: bytes.to_vec(),
        };
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        if sim.is_dir(from) {
            // A directory moves with everything in it, to a name that must be free.
            if sim.live.contains_key(to) || from.parent() != to.parent() {
                return Err(io::Error::other(
                    "the target exists or is in another directory",
                ));
            }
            move_tree(&mut sim.live, from, to);
            sim.moves.push((from.to_path_buf(), to.to_path_buf()));
            return Ok(());
        }
        let inode = sim.file(from)?;
        sim.live.remove(from);
        sim.live.insert(to.to_path_buf(), Entry::File(inode));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        if sim.file(path).is_ok() {
            sim.live.remove(path);
        }
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        sim.live.retain(|path, _| !path.starts_with(dir));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        let Sim {
            live,
            durable,
            moves,
            ..
        } = &mut *sim;
        // A renamed directory's contents go with it.
        moves.retain(|(from, to)| {
            let synced = from.parent() == Some(dir);
            if synced {
                move_tree(durable, from, to);
            }
            !synced
        });
        let dirs_before: Vec<PathBuf> = durable
            .iter()
            .filter(|(path, entry)| path.parent() == Some(dir) && **entry == Entry::Dir)
            .map(|(path, _)| path.clone())
            .collect();
        durable.retain(|path, _| path.parent() != Some(dir));
        durable.extend(
            live.iter()
                .filter(|(path, _)| path.parent() == Some(dir))
                .map(|(path, entry)| (path.clone(), *entry)),
        );
        // What hung off a directory whose entry is now durably gone (removed, renamed away) is gone
        // too: a directory created again under that name is a new one.
        for gone in dirs_before {
            if durable.get(&gone) != Some(&Entry::Dir) {
                durable.retain(|path, _| !path.starts_with(&gone));
            }
        }
        Ok(())
    }

    fn create_log(&self, path: &Path) -> io::Result<usize> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        if sim.live.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        sim.files.push(Inode::default());
        let inode = sim.files.len() - 1;
        sim.live.insert(path.to_path_buf(), Entry::File(inode));
        Ok(inode)
    }

    fn open_log(&self, path: &Path) -> io::Result<usize> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        sim.file(path)
    }

    fn append(&self, log: &mut usize, bytes: &[u8]) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        let called = sim.call();
        let inode = &mut sim.files[*log];
        if let Err(e) = called {
            // The power went during the write: half of it is in the page cache.
            inode.data.extend_from_slice(&bytes[..bytes.len() / 2]);
            return Err(e);
        }
        inode.data.extend_from_slice(bytes);
        inode.synced.clone_from(&inode.data);
        Ok(())
    }

    fn truncate(&self, log: &mut usize, len: u64) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        let inode = &mut sim.files[*log];
        inode.data.truncate(usize::try_from(len).unwrap());
        inode.synced.clone_from(&inode.data);
        Ok(())
    }
}

const DIR: &str = "/store";

/// Small enough that the workload compacts several times.
const CONFIG: Config = Config { compact_at: 300 };

/// Opens the store and commits `batches` until a call fails. Returns how many commits returned.
fn run(disk: &SimDisk, batches: &[WriteBatch]) -> usize {
    let Ok(mut store) = FileStore::open_on(disk.clone(), DIR, CONFIG) else {
        return 0;
    };
    for (done, batch) in batches.iter().enumerate() {
        if store.commit(batch).is_err() {
            return done;
        }
    }
    batches.len()
}

#[test]
fn a_power_loss_at_any_call_loses_nothing_that_was_committed() {
    let mut rng = DetRng::new(5);
    let batches: Vec<WriteBatch> = (0..40)
        .map(|_| random_batch(&mut rng))
        .filter(|batch| !batch.is_empty())
        .collect();
    // models[k]: the image after the first k batches.
    let mut models = vec![MemoryKv::new()];
    for batch in &batches {
        let mut next = models.last().unwrap().clone();
        next.apply(batch);
        models.push(next);
    }

    let healthy = SimDisk::default();
    assert_eq!(run(&healthy, &batches), batches.len());
    let calls = healthy.0.borrow().calls;
    let names: Vec<PathBuf> = healthy.0.borrow().live.keys().cloned().collect();
    assert_eq!(
        names,
        [DIR, "/store/log-4", "/store/snap-4"].map(PathBuf::from),
        "one generation, after several compactions"
    );

    for budget in 0..=calls {
        for seed in 0..4 {
            let disk = SimDisk::default();
            disk.0.borrow_mut().budget = Some(budget);
            let acked = run(&disk, &batches);
            disk.0.borrow_mut().crash(&mut DetRng::new(seed));

            let case = format!("power lost after {budget} calls (seed {seed}), {acked} acked");
            let mut store = FileStore::open_on(disk.clone(), DIR, CONFIG)
                .unwrap_or_else(|e| panic!("{case}: reopening failed: {e}"));
            let kv = store.load().unwrap();
            let in_flight = (acked < batches.len()).then(|| &models[acked + 1]);
            assert!(
                kv == models[acked] || Some(&kv) == in_flight,
                "{case}: loaded {} keys",
                kv.len()
            );
            // The recovered store goes on: a commit, and another restart.
            let last = batches.last().unwrap();
            store.commit(last).unwrap();
            drop(store);
            let mut expected = kv;
            expected.apply(last);
            let mut store = FileStore::open_on(disk.clone(), DIR, CONFIG).unwrap();
            assert_eq!(store.load().unwrap(), expected, "{case}");
        }
    }
}

/// One call of the blob store workload.
#[derive(Clone, Debug)]
enum BlobOp {
    Record(usize, &'static [u8]),
    Manifest(usize),
    Chunk(usize, u32, &'static [u8]),
    DeleteChunk(usize, u32),
    Delete(usize),
}

/// What a blob store must hold durably: records and manifests, by blob.
type Strict = (BTreeMap<BlobId, Vec<u8>>, BTreeMap<BlobId, Manifest>);

const BLOB_DIR: &str = "/blobs";

/// Two blobs written, rewritten, partly and wholly deleted, and written again.
fn blob_workload() -> (Vec<Manifest>, Vec<BlobOp>) {
    use BlobOp::*;
    let manifests = vec![sample(100, 1).1, sample(200, 2).1];
    let ops = vec![
        Record(0, b"a1"),
        Manifest(0),
        Chunk(0, 0, b"a-0"),
        Chunk(0, 1, b"a-1"),
        Record(1, b"b1"),
        Chunk(1, 0, b"b-0"),
        Manifest(1),
        Record(0, b"a2"),
        Chunk(0, 1, b"a-1 again"),
        DeleteChunk(0, 0),
        Delete(1),
        Chunk(1, 0, b"b-0 new"),
        Record(1, b"b2"),
        Chunk(0, 2, b"a-2"),
        Delete(0),
        Record(0, b"a3"),
    ];
    (manifests, ops)
}

fn apply(
    store: &mut FileBlobStore<SimDisk>,
    m: &[Manifest],
    op: &BlobOp,
) -> Result<(), StoreError> {
    match *op {
        BlobOp::Record(b, r) => now(store.put_record(&m[b].id, r)),
        BlobOp::Manifest(b) => now(store.put_manifest(&m[b])),
        BlobOp::Chunk(b, i, bytes) => now(store.put_chunk(&m[b].id, i, bytes)),
        BlobOp::DeleteChunk(b, i) => now(store.delete_chunk(&m[b].id, i)),
        BlobOp::Delete(b) => now(store.delete(&m[b].id)),
    }
}

/// The records and manifests after `ops`.
fn strict_model(m: &[Manifest], ops: &[BlobOp]) -> Strict {
    let (mut records, mut manifests) = Strict::default();
    for op in ops {
        match *op {
            BlobOp::Record(b, r) => {
                records.insert(m[b].id, r.to_vec());
            }
            BlobOp::Manifest(b) => {
                manifests.insert(m[b].id, m[b].clone());
            }
            BlobOp::Delete(b) => {
                records.remove(&m[b].id);
                manifests.remove(&m[b].id);
            }
            BlobOp::Chunk(..) | BlobOp::DeleteChunk(..) => {}
        }
    }
    (records, manifests)
}

/// Opens the blob store and runs `ops` until a call fails. Returns how many returned.
fn run_blobs(disk: &SimDisk, m: &[Manifest], ops: &[BlobOp]) -> usize {
    let Ok(mut store) = FileBlobStore::open_on(disk.clone(), BLOB_DIR) else {
        return 0;
    };
    for (done, op) in ops.iter().enumerate() {
        if apply(&mut store, m, op).is_err() {
            return done;
        }
    }
    ops.len()
}

#[test]
fn a_power_loss_at_any_call_keeps_blob_records_and_manifests_and_every_chunk_whole() {
    let (m, ops) = blob_workload();
    let healthy = SimDisk::default();
    assert_eq!(run_blobs(&healthy, &m, &ops), ops.len());
    let calls = healthy.0.borrow().calls;

    for budget in 0..=calls {
        for seed in 0..4 {
            let disk = SimDisk::default();
            disk.0.borrow_mut().budget = Some(budget);
            let acked = run_blobs(&disk, &m, &ops);
            disk.0.borrow_mut().crash(&mut DetRng::new(seed));
            let case = format!("power lost after {budget} calls (seed {seed}), {acked} acked");

            let mut store = FileBlobStore::open_on(disk.clone(), BLOB_DIR)
                .unwrap_or_else(|e| panic!("{case}: reopening failed: {e}"));
            // Records and manifests: every acknowledged write, and maybe the one in flight.
            let records: BTreeMap<BlobId, Vec<u8>> =
                now(store.records()).unwrap().into_iter().collect();
            let mut manifests = BTreeMap::new();
            for manifest in &m {
                if let Some(found) = now(store.manifest(&manifest.id)).unwrap() {
                    manifests.insert(manifest.id, found);
                }
            }
            let found = (records, manifests);
            let acked_model = strict_model(&m, &ops[..acked]);
            let in_flight = strict_model(&m, &ops[..(acked + 1).min(ops.len())]);
            assert!(
                found == acked_model || found == in_flight,
                "{case}: found {found:?}"
            );
            // Chunks may be lost (relaxed), and a deleted one may come back, but each is whole: one
            // of the values written at its index since its blob's last acknowledged deletion.
            for (b, manifest) in m.iter().enumerate() {
                let mut allowed: BTreeMap<u32, Vec<&[u8]>> = BTreeMap::new();
                for (n, op) in ops.iter().enumerate().take(acked + 1) {
                    match *op {
                        BlobOp::Chunk(ob, i, bytes) if ob == b => {
                            allowed.entry(i).or_default().push(bytes);
                        }
                        BlobOp::Delete(ob) if ob == b && n < acked => allowed.clear(),
                        _ => {}
                    }
                }
                for index in now(store.held(&manifest.id)).unwrap() {
                    let bytes = now(store.chunk(&manifest.id, index)).unwrap().unwrap();
                    assert!(
                        allowed
                            .get(&index)
                            .is_some_and(|values| values.contains(&&bytes[..])),
                        "{case}: blob {b} chunk {index} holds {bytes:?}"
                    );
                }
            }
            // Nothing of an interrupted delete is left, and the store goes on.
            let names = disk.0.borrow().live.keys().cloned().collect::<Vec<_>>();
            assert!(
                names.iter().all(|p| !p.to_string_lossy().contains(".del")),
                "{case}: {names:?}"
            );
            now(store.delete(&m[0].id)).unwrap();
            now(store.put_record(&m[1].id, b"after")).unwrap();
            drop(store);
            let mut store = FileBlobStore::open_on(disk.clone(), BLOB_DIR).unwrap();
            assert_eq!(
                now(store.records()).unwrap(),
                [(m[1].id, b"after".to_vec())],
                "{case}"
            );
        }
    }
}
