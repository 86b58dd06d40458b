//! [`make_room`]: keeping a per-peer table within its bound.

use std::collections::BTreeMap;

/// Before `key` is inserted into `map`, which may hold at most `cap` entries: if `key` is new and
/// the map is full, removes the entry with the least `age` (the oldest; ties go to the smallest
/// key). Keeps tables keyed by what a peer controls (node ids, blob ids) bounded however many
/// fresh keys it sends.
pub fn make_room<K: Ord + Copy, V, A: Ord>(
    map: &mut BTreeMap<K, V>,
    key: &K,
    cap: usize,
    age: impl Fn(&V) -> A,
) {
    if map.len() < cap || map.contains_key(key) {
        return;
    }
    let oldest = map.iter().min_by_key(|(_, v)| age(v)).map(|(k, _)| *k);
    if let Some(k) = oldest {
        map.remove(&k);
    }
}
