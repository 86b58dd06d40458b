//! Key-value stores as fuzz input: how the restore targets turn bytes into a [`MemoryKv`].

use tabmesh_base::{KvRead, MemoryKv, WriteBatch};

/// The prefix [`dag_restore`](crate::dag_restore) and [`dag_insert`](crate::dag_insert) store
/// their DAG under.
pub const DAG_PREFIX: &[u8] = b"d/";

/// The prefix [`state_open`](crate::state_open) opens a state under.
pub const STATE_PREFIX: &[u8] = b"s/";

/// The prefix [`replica_open`](crate::replica_open) opens a replica under.
pub const REPLICA_PREFIX: &[u8] = b"c/";

/// A store read from `data`: records `key length (u8) ‖ key ‖ value length (u16, little-endian) ‖
/// value`, each key stored under `prefix`, until the bytes run out (a short last record takes what
/// is left). Any bytes make a store; [`kv_to_bytes`] writes the records back.
pub fn kv_from_bytes(prefix: &[u8], data: &[u8]) -> MemoryKv {
    let mut rest = data;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head
    };
    let mut batch = WriteBatch::new();
    while let Some(&key_len) = take(1).first() {
        let mut key = prefix.to_vec();
        key.extend_from_slice(take(usize::from(key_len)));
        let len = match take(2) {
            [a, b] => u16::from_le_bytes([*a, *b]),
            [a] => u16::from(*a),
            _ => 0,
        };
        let value = take(usize::from(len)).to_vec();
        batch.put(key, value);
    }
    let mut kv = MemoryKv::new();
    kv.apply(&batch);
    kv
}

/// The records of every key of `kv` under `prefix` (the inverse of [`kv_from_bytes`]). Panics when
/// a key suffix is over 255 bytes or a value over 65 535 (seeds are small).
pub fn kv_to_bytes(prefix: &[u8], kv: &MemoryKv) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in kv.scan_prefix(prefix) {
        let suffix = key.get(prefix.len()..).unwrap_or_default();
        let key_len = u8::try_from(suffix.len()).expect("a key suffix of at most 255 bytes");
        let value_len = u16::try_from(value.len()).expect("a value of at most 65 535 bytes");
        out.push(key_len);
        out.extend_from_slice(suffix);
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(&value);
    }
    out
}
