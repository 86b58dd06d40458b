//! `FileStore` on a simulated [`Disk`] that loses power: whatever was not synced when the disk
//! stops may or may not survive (each directory entry on its own, a prefix of each file's unsynced
//! tail; the write the power cut off got half of its bytes into the page cache). Wherever the power goes, reopening loads exactly the acknowledged commits, or those and
//! the one in flight.

use tabmesh_testkit::test;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tabmesh_base::{DetRng, MemoryKv, WriteBatch};
use tabmesh_storage::{Config, Disk, FileStore, Store};

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

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.0.borrow_mut();
        sim.call()?;
        let Sim { live, durable, .. } = &mut *sim;
        durable.retain(|path, _| path.parent() != Some(dir));
        durable.extend(
            live.iter()
                .filter(|(path, _)| path.parent() == Some(dir))
                .map(|(path, entry)| (path.clone(), *entry)),
        );
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
