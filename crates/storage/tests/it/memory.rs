use tabmesh_testkit::test;

use tabmesh_base::{KvRead, MemoryKv, WriteBatch};
use tabmesh_storage::{MemoryStore, Store, StoreError, MAX_RECORD};

use super::support::{deletes, puts, random_batch};

#[test]
fn a_commit_is_loaded() {
    let mut store = MemoryStore::new();
    assert!(store.load().unwrap().is_empty());
    store.commit(&puts(&[("a", "1"), ("b", "2")])).unwrap();
    let kv = store.load().unwrap();
    assert_eq!(kv.get(b"a"), Some(b"1".to_vec()));
    assert_eq!(kv.get(b"b"), Some(b"2".to_vec()));
    assert_eq!(store.kv(), &kv);
}

#[test]
fn deletes_remove_keys() {
    let mut store = MemoryStore::new();
    store.commit(&puts(&[("a", "1"), ("b", "2")])).unwrap();
    store.commit(&deletes(&["a", "never-written"])).unwrap();
    let kv = store.load().unwrap();
    assert_eq!(kv.len(), 1);
    assert_eq!(kv.get(b"a"), None);
    assert_eq!(kv.get(b"b"), Some(b"2".to_vec()));
}

#[test]
fn it_equals_a_memory_kv_that_applied_the_same_batches() {
    tabmesh_testkit::for_seeds(0..3, |_, rng| {
        let mut store = MemoryStore::new();
        let mut model = MemoryKv::new();
        for _ in 0..200 {
            let batch = random_batch(rng);
            store.commit(&batch).unwrap();
            model.apply(&batch);
        }
        assert_eq!(store.load().unwrap(), model);
    });
}

#[test]
fn a_batch_over_max_record_is_refused_whole() {
    let mut store = MemoryStore::new();
    store.commit(&puts(&[("a", "1")])).unwrap();
    let before = store.load().unwrap();
    let mut huge = puts(&[("b", "2")]);
    huge.put(b"big".to_vec(), vec![0; MAX_RECORD]);
    assert!(matches!(
        store.commit(&huge),
        Err(StoreError::TooLarge {
            max: MAX_RECORD,
            ..
        })
    ));
    assert_eq!(store.load().unwrap(), before);
    store.commit(&WriteBatch::new()).unwrap();
    assert_eq!(store.load().unwrap(), before);
}
