//! [`Disk`]: the file system calls a [`FileStore`](super::FileStore) makes, and [`StdDisk`], the
//! native one ([`std::fs`]).
//!
//! The store's formats, its recovery and the order of its writes and syncs are one piece of code
//! in [`FileStore`](super::FileStore) (and [`FileBlobStore`](crate::FileBlobStore)); a disk only
//! carries out single calls. Every path it is given is the store's directory, its parent, or an
//! entry in the directory (for a `FileBlobStore`: also a blob's subdirectory and the files in it).

use std::io;
use std::path::Path;

/// The file system a [`FileStore`](super::FileStore) or a [`FileBlobStore`](crate::FileBlobStore)
/// works on: one call per primitive step.
///
/// Durability is the caller's business except where a method says it syncs: the store syncs
/// the directory ([`Disk::sync_dir`]) after creating, renaming or removing entries, in the order
/// its crash safety needs. Errors are the operating system's ([`io::ErrorKind::NotFound`] for a
/// missing file); the store adds the path. The methods take `&self`: an implementation with
/// state of its own keeps it behind interior mutability.
pub trait Disk {
    /// The log file, opened for appending by [`Disk::create_log`] or [`Disk::open_log`].
    type Log;

    /// Creates the directory `dir` and any missing parents (`mkdir -p`). Returns whether `dir`
    /// was created (`false`: it already existed). Not durable by itself: the store then syncs the
    /// parent.
    fn create_dir_all(&self, dir: &Path) -> io::Result<bool>;

    /// The names of the entries of the directory `dir`, in any order. A name that is not UTF-8
    /// may be left out (it is not the store's).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// The whole content of the file `path`, or `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;

    /// Creates the file `path` (truncating it if it exists), writes all of `bytes` and syncs the
    /// file's data and metadata (`fsync`). Not its directory entry.
    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// Renames the file `from` to `to`, replacing `to` atomically if it exists. (A
    /// [`FileBlobStore`](crate::FileBlobStore) also renames a directory, to a name that does not
    /// exist.) A missing `from` is [`io::ErrorKind::NotFound`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`; a missing file is not an error.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Removes the directory `dir` and everything in it (`rm -rf`); a missing one is not an error.
    /// Not durable by itself. (Only a [`FileBlobStore`](crate::FileBlobStore) calls it.)
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Makes the entries of the directory `dir` (creations, renames, removals) durable, where the
    /// platform can (a no-op where a directory cannot be synced, as on Windows).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Creates the empty log file `path`, failing if it exists ([`io::ErrorKind::AlreadyExists`]),
    /// syncs it (`fsync`) and opens it for appending.
    fn create_log(&self, path: &Path) -> io::Result<Self::Log>;

    /// Opens the existing log file `path` for appending.
    fn open_log(&self, path: &Path) -> io::Result<Self::Log>;

    /// Appends all of `bytes` to the log, then syncs its data (`fdatasync`). On an error, some of
    /// the bytes may or may not have been written.
    fn append(&self, log: &mut Self::Log, bytes: &[u8]) -> io::Result<()>;

    /// Cuts the log to `len` bytes, then syncs it (`fsync`).
    fn truncate(&self, log: &mut Self::Log, len: u64) -> io::Result<()>;
}

#[cfg(not(js_host))]
pub use self::native::StdDisk;

#[cfg(not(js_host))]
mod native {
    use std::fs::{self, File, OpenOptions};
    use std::io::{self, ErrorKind, Write};
    use std::path::Path;

    use super::Disk;

    /// The native file system, through [`std::fs`]: the [`Disk`] of
    /// [`FileStore::open`](crate::FileStore::open) and
    /// [`FileBlobStore::open`](crate::FileBlobStore::open). The log stays open for appending as one
    /// [`File`]; a directory is synced through a handle on it on Unix, and not at all elsewhere
    /// (Windows and WASI cannot open a directory as a file, and journal renames).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct StdDisk;

    impl Disk for StdDisk {
        type Log = File;

        fn create_dir_all(&self, dir: &Path) -> io::Result<bool> {
            let created = !dir.exists();
            fs::create_dir_all(dir)?;
            Ok(created)
        }

        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in fs::read_dir(dir)? {
                if let Ok(name) = entry?.file_name().into_string() {
                    names.push(name);
                }
            }
            Ok(names)
        }

        fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
            match fs::read(path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }

        fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?;
            file.write_all(bytes)?;
            file.sync_all()
        }

        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            fs::rename(from, to)
        }

        fn remove(&self, path: &Path) -> io::Result<()> {
            match fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }

        fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
            match fs::remove_dir_all(dir) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }

        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            if cfg!(unix) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        }

        fn create_log(&self, path: &Path) -> io::Result<File> {
            let file = OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(path)?;
            file.sync_all()?;
            Ok(file)
        }

        fn open_log(&self, path: &Path) -> io::Result<File> {
            OpenOptions::new().append(true).open(path)
        }

        fn append(&self, log: &mut File, bytes: &[u8]) -> io::Result<()> {
            log.write_all(bytes)?;
            log.sync_data()
        }

        fn truncate(&self, log: &mut File, len: u64) -> io::Result<()> {
            log.set_len(len)?;
            log.sync_all()
        }
    }
}
