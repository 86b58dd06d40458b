//! `kv-store-with-handlers`: a key-value store whose every `set` emits an event naming a handler;
//! the node runs the handler on each receiving member, where it bumps a per-key counter.
//!
//! | method | arguments | returns | event |
//! |---|---|---|---|
//! | `set` | `{key, value}` | `null` | `Set {key, value}`, handler `on_set` |
//! | `get` | `{key}` | the value or `null` | |
//! | `on_set` | the event's data, `{key, value}` | `null` | |
//! | `handled` | `{key}` | how many `Set` events of `key` handlers saw, summed over members | |
//!
//! The counter is a grow-only counter per key: handlers may run on several members and more than
//! once, and increments commute.

use tabmesh_sdk::prelude::*;

/// The store and the handlers' counters.
#[app::state]
#[derive(Debug)]
pub struct KvStoreWithHandlers {
    items: Map<Register>,
    handled: Map<Counter>,
}

/// What the store tells clients and handlers.
#[app::event]
#[derive(Debug)]
pub enum HandledEvent {
    /// `key` was set to `value`.
    Set {
        /// The key.
        key: String,
        /// Its value.
        value: String,
    },
}

#[app::logic]
impl KvStoreWithHandlers {
    /// Sets `key` to `value` and emits `Set`, handled by `on_set` on receiving members.
    pub fn set(&mut self, key: String, value: String) -> Result<()> {
        self.items.insert(&key, &value)?;
        emit!(HandledEvent::Set { key, value }, Self::on_set)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: String) -> Result<Option<String>> {
        self.items.get_string(&key)
    }

    /// The handler of `Set`: bumps the counter of `key` (the event's `value` is not needed).
    pub fn on_set(&mut self, key: String) -> Result<()> {
        self.handled.entry_mut(&key).increment(1)?;
        log!("handled a set of {key}");
        Ok(())
    }

    /// How many `Set` events of `key` the handlers saw.
    pub fn handled(&self, key: String) -> Result<u128> {
        self.handled.entry(&key).get()
    }
}
