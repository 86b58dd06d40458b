//! [`JsDisk`]: a [`Disk`] whose calls go to a JS object (Node.js's `node:fs`, wrapped).

use std::io::{self, ErrorKind};
use std::path::Path;

use js_sys::{Array, Function, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::Disk;

/// The methods a [`JsDisk`]'s object must have.
///
/// (The blob store's own, [`BLOB_METHODS`], are checked only when a
/// [`FileBlobStore`](crate::FileBlobStore) opens, so an object made for a
/// [`FileStore`](crate::FileStore) alone keeps working.)
const METHODS: [&str; 10] = [
    "mkdir",
    "list",
    "read",
    "writeSynced",
    "rename",
    "remove",
    "syncDir",
    "createNew",
    "append",
    "truncate",
];

/// The methods a [`JsDisk`]'s object must have besides [`METHODS`] for a
/// [`FileBlobStore`](crate::FileBlobStore)
/// ([`FileBlobStore::open_js`](crate::FileBlobStore::open_js) checks them).
const BLOB_METHODS: [&str; 1] = ["removeDir"];

/// A [`Disk`] in a JS host: every call is a **synchronous** call of a method of a JS object (in
/// Node.js, a thin wrapper over `node:fs`'s `*Sync` functions), so a
/// [`FileStore`](crate::FileStore) works in Node.js exactly as natively: same files, same
/// recovery. Open one with [`FileStore::open_js`](crate::FileStore::open_js) (or
/// [`FileBlobStore::open_js`](crate::FileBlobStore::open_js), for blobs).
///
/// # The JS object
///
/// Paths are strings: the store's directory as given to
/// [`FileStore::open_js`](crate::FileStore::open_js), its parent, or `<dir>/<name>` for a file
/// of the store (joined with `/`, which Node.js accepts on every platform); for a
/// [`FileBlobStore`](crate::FileBlobStore) also `<dir>/<blob>` (a directory) and
/// `<dir>/<blob>/<name>`. A method fails by
/// throwing; a thrown object's `message` (and its `code`, as Node.js's errors have) make the
/// [`StoreError::Io`](crate::StoreError::Io) message, and `code: "ENOENT"` is
/// [`io::ErrorKind::NotFound`]. Every method returns only once its work is done:
///
/// | method | does | `node:fs` |
/// |---|---|---|
/// | `mkdir(path: string): boolean` | creates the directory and any missing parents; returns `true` if it created `path`, `false` if it was already a directory (not synced: the store then calls `syncDir` on the parent) | `mkdirSync(path, {recursive: true}) !== undefined` |
/// | `list(path: string): string[]` | the names (not paths) of the directory's entries, any order | `readdirSync(path)` |
/// | `read(path: string): Uint8Array \| null` | the file's whole content (a `Buffer` is a `Uint8Array`); `null` if it does not exist (throwing `ENOENT` is taken as `null` too) | `readFileSync(path)` |
/// | `writeSynced(path: string, bytes: Uint8Array): void` | creates or truncates the file, writes all of `bytes`, syncs the file | `openSync(path, "w")`, `writeSync` until all is written, `fsyncSync`, `closeSync` |
/// | `rename(from: string, to: string): void` | renames a file, atomically replacing `to` (or a directory, to a name that does not exist); throws `ENOENT` if `from` is missing | `renameSync(from, to)` |
/// | `remove(path: string): void` | deletes a file; a missing file is not an error (so neither is throwing `ENOENT`) | `unlinkSync(path)` |
/// | `syncDir(path: string): void` | makes the directory's entries (creations, renames, deletions) durable; a no-op on Windows, which cannot sync a directory | `openSync(path, "r")`, `fsyncSync`, `closeSync` |
/// | `createNew(path: string): void` | creates an empty file, throwing (`EEXIST`) if it exists, and syncs it | `openSync(path, "wx")`, `fsyncSync`, `closeSync` |
/// | `append(path: string, bytes: Uint8Array): void` | appends all of `bytes` to the file, then syncs its data | `openSync(path, "a")`, `writeSync` until all is written, `fdatasyncSync`, `closeSync` |
/// | `truncate(path: string, len: number): void` | cuts the file to `len` bytes, then syncs it | `openSync(path, "r+")`, `ftruncateSync(fd, len)`, `fsyncSync`, `closeSync` |
/// | `removeDir(path: string): void` | deletes the directory and everything in it; a missing one is not an error. Only a [`FileBlobStore`](crate::FileBlobStore) needs it | `rmSync(path, {recursive: true, force: true})` |
///
/// A file descriptor must be closed even when a step throws (`try … finally`), and the error
/// rethrown. `len` is an integer below 2⁵³.
#[derive(Clone, Debug)]
pub struct JsDisk {
    fs: JsValue,
}

impl JsDisk {
    /// A disk calling the methods of `fs` (see [`JsDisk`] for the interface). Refused when `fs`
    /// lacks one of them (the error names the missing ones).
    pub fn new(fs: JsValue) -> io::Result<JsDisk> {
        require(&fs, &METHODS)?;
        Ok(JsDisk { fs })
    }

    /// Checks that the object also has the methods only a [`FileBlobStore`](crate::FileBlobStore)
    /// calls (`removeDir`); the error names the missing ones.
    pub(crate) fn require_blob_methods(&self) -> io::Result<()> {
        require(&self.fs, &BLOB_METHODS)
    }

    /// Calls `fs[name](args...)`.
    fn call(&self, name: &str, args: &[JsValue]) -> io::Result<JsValue> {
        let f = method(&self.fs, name)?;
        let args: Array = args.iter().collect();
        f.apply(&self.fs, &args).map_err(|e| error(name, &e))
    }

    /// Calls a method that returns nothing.
    fn run(&self, name: &str, args: &[JsValue]) -> io::Result<()> {
        self.call(name, args).map(drop)
    }
}

/// Refuses `fs` unless it has every method of `names` (the error names the missing ones).
fn require(fs: &JsValue, names: &[&str]) -> io::Result<()> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| method(fs, name).is_err())
        .collect();
    if !missing.is_empty() {
        return Err(io::Error::other(format!(
            "the file-system object has no method {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// `fs[name]`, if it is a function.
fn method(fs: &JsValue, name: &str) -> io::Result<Function> {
    Reflect::get(fs, &name.into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| io::Error::other(format!("the file-system object has no method {name}")))
}

/// A path as the JS side takes it. (A `Path` here was made from a string, so it is one.)
fn js_path(path: &Path) -> JsValue {
    JsValue::from(path.to_string_lossy().as_ref())
}

/// What the method `name` threw, as an [`io::Error`]: its `message` (or the thrown value itself),
/// prefixed by its `code` unless the message already says it; `ENOENT` is
/// [`ErrorKind::NotFound`].
fn error(name: &str, thrown: &JsValue) -> io::Error {
    let field = |key: &str| {
        Reflect::get(thrown, &key.into())
            .ok()
            .and_then(|v| v.as_string())
    };
    let code = field("code");
    let mut message = field("message")
        .or_else(|| thrown.as_string())
        .unwrap_or_else(|| format!("{thrown:?}"));
    if let Some(code) = code.as_deref() {
        if !message.contains(code) {
            message = format!("{code}: {message}");
        }
    }
    let message = format!("{name}: {message}");
    match code.as_deref() {
        Some("ENOENT") => io::Error::new(ErrorKind::NotFound, message),
        _ => io::Error::other(message),
    }
}

/// A value of the wrong type returned by the method `name`.
fn bad_return(name: &str, expected: &str, got: &JsValue) -> io::Error {
    io::Error::other(format!("{name} returned {got:?}, expected {expected}"))
}

impl Disk for JsDisk {
    /// The log's path: every append opens, writes, syncs and closes it.
    type Log = JsValue;

    fn create_dir_all(&self, dir: &Path) -> io::Result<bool> {
        let created = self.call("mkdir", &[js_path(dir)])?;
        created
            .as_bool()
            .ok_or_else(|| bad_return("mkdir", "a boolean", &created))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let names = self.call("list", &[js_path(dir)])?;
        let array = names
            .dyn_ref::<Array>()
            .ok_or_else(|| bad_return("list", "an array of strings", &names))?;
        array
            .iter()
            .map(|name| {
                name.as_string()
                    .ok_or_else(|| bad_return("list", "an array of strings", &names))
            })
            .collect()
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let bytes = match self.call("read", &[js_path(path)]) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.is_null() || bytes.is_undefined() {
            return Ok(None);
        }
        bytes
            .dyn_ref::<Uint8Array>()
            .map(|bytes| Some(bytes.to_vec()))
            .ok_or_else(|| bad_return("read", "a Uint8Array or null", &bytes))
    }

    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.run(
            "writeSynced",
            &[js_path(path), Uint8Array::from(bytes).into()],
        )
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.run("rename", &[js_path(from), js_path(to)])
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match self.run("remove", &[js_path(path)]) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        match self.run("removeDir", &[js_path(dir)]) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.run("syncDir", &[js_path(dir)])
    }

    fn create_log(&self, path: &Path) -> io::Result<JsValue> {
        let path = js_path(path);
        self.run("createNew", std::slice::from_ref(&path))?;
        Ok(path)
    }

    fn open_log(&self, path: &Path) -> io::Result<JsValue> {
        Ok(js_path(path))
    }

    fn append(&self, log: &mut JsValue, bytes: &[u8]) -> io::Result<()> {
        self.run("append", &[log.clone(), Uint8Array::from(bytes).into()])
    }

    fn truncate(&self, log: &mut JsValue, len: u64) -> io::Result<()> {
        // Exact: a log is far below 2^53 bytes.
        let len = len as f64;
        self.run("truncate", &[log.clone(), len.into()])
    }
}
