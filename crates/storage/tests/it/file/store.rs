use tabmesh_testkit::test;

use tabmesh_base::{KvRead, MemoryKv, WriteBatch};
use tabmesh_storage::{Config, FileStore, Store, StoreError, DEFAULT_COMPACT_AT, MAX_RECORD};

use super::super::support::{deletes, puts, random_batch};
use super::support::{compact_at, names, reopen, size, TempDir};

#[test]
fn a_commit_is_loaded_now_and_after_reopening() {
    let dir = TempDir::new("a_commit_is_loaded_now_and_after_reopening");
    let mut store = FileStore::open(dir.path()).unwrap();
    assert!(store.load().unwrap().is_empty());
    assert_eq!(names(dir.path()), ["log-0", "snap-0"]);
    store.commit(&puts(&[("a", "1"), ("b", "2")])).unwrap();
    let kv = store.load().unwrap();
    assert_eq!(kv.get(b"a"), Some(b"1".to_vec()));
    assert_eq!(kv.get(b"b"), Some(b"2".to_vec()));
    assert_eq!(store.dir(), dir.path());
    drop(store);
    assert_eq!(reopen(dir.path()), kv);
    assert_eq!(names(dir.path()), ["log-0", "snap-0"]);
}

#[test]
fn deletes_survive_reopening() {
    let dir = TempDir::new("deletes_survive_reopening");
    let mut store = FileStore::open(dir.path()).unwrap();
    store.commit(&puts(&[("a", "1"), ("b", "2")])).unwrap();
    store.commit(&deletes(&["a", "never-written"])).unwrap();
    drop(store);
    let kv = reopen(dir.path());
    assert_eq!(kv.len(), 1);
    assert_eq!(kv.get(b"a"), None);
    assert_eq!(kv.get(b"b"), Some(b"2".to_vec()));
}

#[test]
fn reopening_after_many_commits_equals_a_memory_kv_that_applied_them() {
    // Odd seeds compact often; every seed reopens at random points.
    tabmesh_testkit::for_seeds(0..4, |seed, rng| {
        let dir = TempDir::new(&format!("reopening_after_many_commits_{seed}"));
        let config = if seed % 2 == 1 {
            compact_at(2048)
        } else {
            Config::default()
        };
        let mut store = FileStore::open_with(dir.path(), config).unwrap();
        let mut model = MemoryKv::new();
        for i in 0..200 {
            let batch = random_batch(rng);
            store.commit(&batch).unwrap();
            model.apply(&batch);
            if rng.chance(0.05) {
                drop(store);
                store = FileStore::open_with(dir.path(), config).unwrap();
                assert_eq!(store.load().unwrap(), model, "after commit {i}");
            }
        }
        drop(store);
        assert_eq!(reopen(dir.path()), model);
        let files = names(dir.path());
        assert_eq!(files.len(), 2, "one generation: {files:?}");
        if seed % 2 == 1 {
            assert_ne!(files, ["log-0", "snap-0"], "compacted");
        }
    });
}

#[test]
fn an_empty_batch_writes_nothing() {
    let dir = TempDir::new("an_empty_batch_writes_nothing");
    let mut store = FileStore::open(dir.path()).unwrap();
    store.commit(&WriteBatch::new()).unwrap();
    assert_eq!(size(&dir.join("log-0")), 0);
    store.commit(&puts(&[("a", "1")])).unwrap();
    drop(store);
    assert_eq!(reopen(dir.path()).len(), 1);
}

#[test]
fn a_batch_over_max_record_is_refused_and_writes_nothing() {
    let dir = TempDir::new("a_batch_over_max_record_is_refused_and_writes_nothing");
    let mut store = FileStore::open(dir.path()).unwrap();
    store.commit(&puts(&[("a", "1")])).unwrap();
    let len = size(&dir.join("log-0"));
    let mut huge = puts(&[("b", "2")]);
    huge.put(b"big".to_vec(), vec![0; MAX_RECORD]);
    match store.commit(&huge) {
        Err(StoreError::TooLarge { len, max }) => assert!(len > max && max == MAX_RECORD),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(size(&dir.join("log-0")), len);
    // The store is not poisoned by a refusal.
    store.commit(&puts(&[("c", "3")])).unwrap();
    drop(store);
    let kv = reopen(dir.path());
    assert_eq!(kv.len(), 2);
    assert_eq!(kv.get(b"b"), None);
}

#[test]
fn open_creates_missing_directories_and_leaves_other_files_alone() {
    let dir = TempDir::new("open_creates_missing_directories");
    let nested = dir.join("a/b/store");
    let mut store = FileStore::open(&nested).unwrap();
    std::fs::write(nested.join("README"), b"not the store's").unwrap();
    std::fs::write(nested.join("snap-01"), b"not a generation the store writes").unwrap();
    store.commit(&puts(&[("a", "1")])).unwrap();
    store.compact().unwrap();
    drop(store);
    assert_eq!(reopen(&nested).len(), 1);
    assert_eq!(names(&nested), ["README", "log-1", "snap-01", "snap-1"]);
}

#[test]
fn the_default_config_compacts_at_16_mib() {
    assert_eq!(Config::default().compact_at, DEFAULT_COMPACT_AT);
    assert_eq!(DEFAULT_COMPACT_AT, 16 << 20);
}
