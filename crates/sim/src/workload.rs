//! The writes simulated nodes make, and the values compared at the end.

use tabmesh_base::{DetRng, Hash, Hasher};
use tabmesh_state::{State, Txn};
use tabmesh_sync::SyncError;

/// Keys the workload writes (few, so writes collide).
const KEYS: u64 = 12;

/// One random transaction chosen by `op`: map sets and deletes, counters, a map of counters,
/// add-wins set, text inserts and deletes, nested maps.
pub(crate) fn write(txn: &mut Txn<'_>, op: u64) -> Result<(), SyncError> {
    write_kind(txn, op, Mix::All)
}

/// Which writes [`write_kind`] chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mix {
    /// Every kind of [`write`].
    All,
    /// No text: a text pick becomes a nested-map write (the Byzantine member's twin deltas).
    NoText,
    /// Text inserts only.
    TextInsert,
}

/// [`write`] restricted to `mix` (the same random draws: with [`Mix::All`] it is [`write`]).
pub(crate) fn write_kind(txn: &mut Txn<'_>, op: u64, mix: Mix) -> Result<(), SyncError> {
    let mut rng = DetRng::new(op);
    let key = format!("k{}", rng.below(KEYS)).into_bytes();
    let pick = match (mix, rng.below(8)) {
        (Mix::All, k) => k,
        (Mix::NoText, 6) => 7,
        (Mix::NoText, k) => k,
        (Mix::TextInsert, _) => 8,
    };
    if pick == 8 {
        let mut text = txn.text("doc")?;
        let at = rng.index(text.view().len() + 1);
        let c = char::from(b'a' + rng.below(26) as u8);
        return Ok(text.insert(at, &c.to_string())?);
    }
    match pick {
        0 | 1 => txn.map("kv")?.insert(&key, &rng.bytes::<8>())?,
        2 => {
            txn.map("kv")?.delete(&key)?;
        }
        3 => txn.counter("hits")?.increment(1 + rng.below(3))?,
        4 => txn.map("likes")?.counter(&key)?.increment(1)?,
        5 => {
            if rng.chance(0.7) {
                txn.set("tags")?.add(&key)?;
            } else {
                txn.set("tags")?.remove(&key)?;
            }
        }
        6 => {
            let mut text = txn.text("doc")?;
            let len = text.view().len();
            if len > 4 && rng.chance(0.3) {
                let at = rng.index(len - 2);
                text.delete(at, 2)?;
            } else {
                let at = rng.index(len + 1);
                let c = char::from(b'a' + rng.below(26) as u8);
                text.insert(at, &c.to_string())?;
            }
        }
        _ => {
            let inner = format!("n{}", rng.below(3)).into_bytes();
            txn.map("nested")?
                .map(&inner)?
                .insert(&key, &rng.bytes::<4>())?;
        }
    }
    Ok(())
}

/// A digest of every value the workload can write, read through the collections' read API (not
/// the Merkle tree), so convergence compares values as well as roots.
pub(crate) fn values(state: &State) -> Hash {
    let mut h = Hasher::new(b"tabmesh/sim/values");
    if let Ok(kv) = state.map("kv") {
        for (k, _) in kv.entries() {
            h.part(k).part(kv.get(k).unwrap_or_default());
        }
    }
    h.fixed(b"|");
    if let Ok(c) = state.counter("hits") {
        h.fixed(&c.value().to_le_bytes());
    }
    if let Ok(likes) = state.map("likes") {
        for k in likes.keys() {
            let v = likes.counter(k).map(|c| c.value()).unwrap_or_default();
            h.part(k).fixed(&v.to_le_bytes());
        }
    }
    h.fixed(b"|");
    if let Ok(tags) = state.set("tags") {
        for t in tags.iter() {
            h.part(t);
        }
    }
    h.fixed(b"|");
    if let Ok(doc) = state.text("doc") {
        h.part(doc.to_string().as_bytes());
    }
    if let Ok(nested) = state.map("nested") {
        for k in nested.keys() {
            h.part(k);
            if let Ok(inner) = nested.map(k) {
                for (ik, _) in inner.entries() {
                    h.part(ik).part(inner.get(ik).unwrap_or_default());
                }
            }
        }
    }
    h.finish()
}
