//! Helpers of the file tests: a temporary directory per test, the files of a store.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tabmesh_base::MemoryKv;
use tabmesh_storage::{Config, FileStore, Store};

/// A directory under the system's temporary directory, unique to one test of this process (the
/// name holds the test's name and the process id), removed when dropped. Not created: opening
/// the store creates it.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(test: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("tabmesh-storage-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every file of `dir`: name → bytes.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// The file names of `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    files(dir).into_keys().collect()
}

/// Replaces everything in `dir` by `files`.
pub(crate) fn set_files(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The size of a file.
pub(crate) fn size(path: &Path) -> usize {
    usize::try_from(fs::metadata(path).unwrap().len()).unwrap()
}

/// Opens the store in `dir` and loads it.
pub(crate) fn reopen(dir: &Path) -> MemoryKv {
    FileStore::open(dir).unwrap().load().unwrap()
}

/// A config that compacts once the log is over `bytes` (and twice the snapshot).
pub(crate) fn compact_at(bytes: u64) -> Config {
    Config { compact_at: bytes }
}
