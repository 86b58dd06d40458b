//! `kv-store`: a replicated key-value store of UTF-8 strings — the canonical example app.
//!
//! | method | arguments | returns | event |
//! |---|---|---|---|
//! | `set` | `{key, value}` | `null` | `Inserted {key, value}` or `Updated {key, value}` |
//! | `get` | `{key}` | the value or `null` | |
//! | `remove` | `{key}` | whether it was there | `Removed {key}` (when it was) |
//! | `entries` | | `[[key, value], …]` in key order | |
//! | `count` | | the number of entries | |
//! | `add` | `{name, by}` | | |
//! | `total` | `{name}` | the sum of every `add` of `name` | |
//! | `put_file` | `{name, text}` | the blob reference (`"tabmesh-blob:…"`) | |
//! | `file` | `{name}` | the blob reference or `null` | |
//! | `read_file` | `{name}` | the file's text (fails if unknown or not on this node yet) | |
//!
//! Concurrent sets of one key: the later write wins (LWW register entries of a map). Counters
//! (`add`) are grow-only: concurrent adds all count. Files are blobs: the text goes into a blob,
//! the `files` map holds its reference under the file's name (the reference replicates with the
//! delta; other members read the text once their node holds the blob).

use tabmesh_sdk::blob::{self, BlobRef};
use tabmesh_sdk::prelude::*;

/// The store: one map of register entries, named counters, and named files (blob references).
#[app::state]
#[derive(Debug)]
pub struct KvStore {
    items: Map<Register>,
    counters: Map<Counter>,
    files: Map<Register>,
}

/// What the store tells clients.
#[app::event]
#[derive(Debug)]
pub enum KvEvent {
    /// A new key.
    Inserted {
        /// The key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A new value for an existing key.
    Updated {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// A key went away.
    Removed {
        /// The key.
        key: String,
    },
}

#[app::logic]
impl KvStore {
    /// Sets `key` to `value`.
    pub fn set(&mut self, key: String, value: String) -> Result<()> {
        let existed = self.items.contains(&key)?;
        self.items.insert(&key, &value)?;
        if existed {
            emit!(KvEvent::Updated { key, value })
        } else {
            emit!(KvEvent::Inserted { key, value })
        }
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: String) -> Result<Option<String>> {
        self.items.get_string(&key)
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&mut self, key: String) -> Result<bool> {
        let removed = self.items.remove(&key)?;
        if removed {
            emit!(KvEvent::Removed { key })?;
        }
        Ok(removed)
    }

    /// Every entry, in key order (the map itself iterates in its own deterministic order).
    pub fn entries(&self) -> Result<Vec<(String, String)>> {
        let mut entries = self
            .items
            .entries()?
            .into_iter()
            .map(|(k, v)| Ok((utf8(k)?, utf8(v)?)))
            .collect::<Result<Vec<_>>>()?;
        entries.sort();
        Ok(entries)
    }

    /// The number of entries.
    pub fn count(&self) -> Result<u64> {
        self.items.len()
    }

    /// Adds `by` to the counter `name`.
    pub fn add(&mut self, name: String, by: u64) -> Result<()> {
        self.counters.entry_mut(&name).increment(by)
    }

    /// The counter `name`: every `add` of it, summed.
    pub fn total(&self, name: String) -> Result<u128> {
        self.counters.entry(&name).get()
    }

    /// Writes `text` into a new blob and stores its reference as file `name`; the reference.
    pub fn put_file(&mut self, name: String, text: String) -> Result<String> {
        let mut writer = blob::create()?;
        writer.write(text.as_bytes())?;
        let blob = writer.finish()?;
        self.files.insert(&name, blob)?;
        Ok(blob.to_text())
    }

    /// The blob reference of file `name`, if any.
    pub fn file(&self, name: String) -> Result<Option<String>> {
        Ok(self.file_ref(&name)?.map(|r| r.to_text()))
    }

    /// The text of file `name`, read from its blob (fails while this node does not hold it).
    pub fn read_file(&self, name: String) -> Result<String> {
        let blob = self
            .file_ref(&name)?
            .ok_or_else(|| Error::app(format!("no file {name}")))?;
        utf8(blob::open(&blob)?.read_to_end()?)
    }

    fn file_ref(&self, name: &str) -> Result<Option<BlobRef>> {
        self.files
            .get(name)?
            .map(|bytes| {
                BlobRef::parse(&bytes)
                    .ok_or_else(|| Error::app("stored file is not a blob reference"))
            })
            .transpose()
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::app("stored bytes are not UTF-8"))
}
