use tabmesh_testkit::test;

use std::collections::BTreeMap;

use tabmesh_base::{KvRead, MemoryKv};
use tabmesh_storage::{FileStore, Store, COMPACT_FACTOR};

use super::super::support::{puts, random_batch};
use super::support::{compact_at, files, names, reopen, set_files, size, TempDir};

#[test]
fn compaction_happens_when_the_log_outgrows_its_bound() {
    let dir = TempDir::new("compaction_happens_when_the_log_outgrows_its_bound");
    let config = compact_at(1024);
    let mut store = FileStore::open_with(dir.path(), config).unwrap();
    let mut model = MemoryKv::new();
    let mut generations = Vec::new();
    for i in 0..300u32 {
        // Overwrites of a few keys: the log grows, the image does not.
        let value = format!("{i:040}");
        let batch = puts(&[(&format!("key/{}", i % 5), &value)]);
        store.commit(&batch).unwrap();
        model.apply(&batch);
        let files = names(dir.path());
        assert_eq!(files.len(), 2, "one generation after commit {i}: {files:?}");
        let log = files[0].clone();
        let snap = files[1].clone();
        assert_eq!(log.strip_prefix("log-"), snap.strip_prefix("snap-"));
        let bound = 1024.max(COMPACT_FACTOR * u64::try_from(size(&dir.join(&snap))).unwrap());
        assert!(u64::try_from(size(&dir.join(&log))).unwrap() <= bound);
        if generations.last() != Some(&snap) {
            generations.push(snap);
        }
    }
    assert!(generations.len() > 10, "{generations:?}");
    assert_eq!(store.load().unwrap(), model);
    drop(store);
    assert_eq!(reopen(dir.path()), model);
    assert_eq!(model.len(), 5);
    assert_eq!(
        model.get(b"key/4"),
        Some(format!("{:040}", 299).into_bytes())
    );
}

/// The files of a store before and after a compaction, and its content.
struct Compacted {
    before: BTreeMap<String, Vec<u8>>,
    after: BTreeMap<String, Vec<u8>>,
    model: MemoryKv,
}

fn compacted(dir: &TempDir) -> Compacted {
    let mut rng = tabmesh_base::DetRng::new(11);
    let mut store = FileStore::open(dir.path()).unwrap();
    let mut model = MemoryKv::new();
    for _ in 0..30 {
        let batch = random_batch(&mut rng);
        store.commit(&batch).unwrap();
        model.apply(&batch);
    }
    let before = files(dir.path());
    store.compact().unwrap();
    let after = files(dir.path());
    assert_eq!(before.keys().collect::<Vec<_>>(), ["log-0", "snap-0"]);
    assert_eq!(after.keys().collect::<Vec<_>>(), ["log-1", "snap-1"]);
    assert!(after["log-1"].is_empty());
    Compacted {
        before,
        after,
        model,
    }
}

/// Opens the store made of `files`: it holds `model` and ends up as `expected` files; a commit
/// and a reopen then work.
fn check_crash_state(
    dir: &TempDir,
    state: &str,
    files: &BTreeMap<String, Vec<u8>>,
    model: &MemoryKv,
    expected: &[&str],
) {
    set_files(dir.path(), files);
    let mut store = FileStore::open(dir.path()).unwrap();
    assert_eq!(&store.load().unwrap(), model, "{state}");
    assert_eq!(names(dir.path()), expected, "{state}");
    let batch = puts(&[("after", state)]);
    store.commit(&batch).unwrap();
    drop(store);
    let mut model = model.clone();
    model.apply(&batch);
    assert_eq!(reopen(dir.path()), model, "{state}");
}

#[test]
fn a_crash_at_each_compaction_step_loads_the_committed_content() {
    let dir = TempDir::new("a_crash_at_each_compaction_step");
    let Compacted {
        before,
        after,
        model,
    } = compacted(&dir);
    let old = ["log-0", "snap-0"];
    let new = ["log-1", "snap-1"];
    let snap = after["snap-1"].clone();

    // While writing the temporary snapshot: part of it, or all of it before the rename.
    for len in [0, snap.len() / 2, snap.len()] {
        let mut files = before.clone();
        files.insert("snap-1.tmp".into(), snap[..len].to_vec());
        check_crash_state(&dir, &format!("tmp of {len} bytes"), &files, &model, &old);
    }
    // After the rename, before the new log.
    let mut files = before.clone();
    files.insert("snap-1".into(), snap.clone());
    check_crash_state(&dir, "new snapshot without its log", &files, &model, &new);
    // After the new log, before deleting the old generation.
    let mut files = before.clone();
    files.extend(after.clone());
    check_crash_state(&dir, "both generations", &files, &model, &new);
    // Between the two deletions.
    let mut files = after.clone();
    files.insert("log-0".into(), before["log-0"].clone());
    check_crash_state(&dir, "old log left", &files, &model, &new);
    // Done.
    check_crash_state(&dir, "compacted", &after, &model, &new);
}

#[test]
fn a_leftover_tmp_of_any_generation_is_deleted() {
    let dir = TempDir::new("a_leftover_tmp_of_any_generation_is_deleted");
    let Compacted { after, model, .. } = compacted(&dir);
    let mut files = after.clone();
    files.insert("snap-0.tmp".into(), b"garbage".to_vec());
    files.insert("snap-2.tmp".into(), b"garbage".to_vec());
    files.insert("snap-7.tmp".into(), after["snap-1"].clone());
    check_crash_state(&dir, "stray tmps", &files, &model, &["log-1", "snap-1"]);
}
