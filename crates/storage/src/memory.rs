//! [`MemoryStore`]: the store of tests and of the browser-less simulator.

use tabmesh_base::{MemoryKv, WriteBatch};

use crate::{codec, Store, StoreError};

/// A [`Store`] in memory: nothing survives the value, but it refuses what a file store refuses
/// (a batch over [`MAX_RECORD`](crate::MAX_RECORD)), so a caller tested against it meets the same
/// errors on disk.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    kv: MemoryKv,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// What was committed so far, without copying it.
    pub fn kv(&self) -> &MemoryKv {
        &self.kv
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<MemoryKv, StoreError> {
        Ok(self.kv.clone())
    }

    fn commit(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        codec::check(batch)?;
        self.kv.apply(batch);
        Ok(())
    }
}
