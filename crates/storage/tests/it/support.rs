//! Helpers shared by the test modules: batches, random batches.

use tabmesh_base::{DetRng, WriteBatch};

/// A batch of puts.
pub(crate) fn puts(pairs: &[(&str, &str)]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for (k, v) in pairs {
        batch.put(k.as_bytes(), v.as_bytes());
    }
    batch
}

/// A batch of deletes.
pub(crate) fn deletes(keys: &[&str]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for k in keys {
        batch.delete(k.as_bytes());
    }
    batch
}

/// A random batch over a small key space (so overwrites and deletes of present keys are common):
/// 0 to 7 ops, 30 % deletes, values of 0 to 39 random bytes, an empty key now and then.
pub(crate) fn random_batch(rng: &mut DetRng) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for _ in 0..rng.below(8) {
        let key = match rng.below(40) {
            0 => Vec::new(),
            n => format!("k/{n}").into_bytes(),
        };
        if rng.chance(0.3) {
            batch.delete(key);
        } else {
            let len = rng.index(40);
            let value: Vec<u8> = (0..len).map(|_| rng.bytes::<1>()[0]).collect();
            batch.put(key, value);
        }
    }
    batch
}
