use tabmesh_testkit::test;

use std::fs;
use std::path::Path;

use tabmesh_base::{Hash, MemoryKv, WriteBatch};
use tabmesh_storage::codec::encode;
use tabmesh_storage::{FileStore, Store, StoreError};

use super::super::support::{puts, random_batch};
use super::support::{names, reopen, size, TempDir};

/// Commits `batches` to a new store in `dir`; returns the model after each commit and the log's
/// size after each commit.
fn commit_all(dir: &Path, batches: &[WriteBatch]) -> (Vec<MemoryKv>, Vec<usize>) {
    let mut store = FileStore::open(dir).unwrap();
    let mut model = MemoryKv::new();
    let (mut models, mut ends) = (Vec::new(), Vec::new());
    for batch in batches {
        store.commit(batch).unwrap();
        model.apply(batch);
        models.push(model.clone());
        ends.push(size(&dir.join("log-0")));
    }
    (models, ends)
}

/// Three batches of a few ops each.
fn three_batches() -> Vec<WriteBatch> {
    vec![
        puts(&[("a", "1"), ("b", "2")]),
        puts(&[("c", "3"), ("a", "4")]),
        puts(&[("d", "5"), ("e", "six")]),
    ]
}

/// A log record built by hand: `version ‖ len ‖ seq ‖ payload ‖ SHA-256(…)[..8]`.
fn record(version: u8, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![version];
    bytes.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(&seq.to_le_bytes());
    bytes.extend_from_slice(payload);
    let sum = Hash::of(&bytes);
    bytes.extend_from_slice(&sum.as_bytes()[..8]);
    bytes
}

fn corrupt_message(result: Result<FileStore, StoreError>) -> String {
    match result {
        Err(e @ StoreError::Corrupt(_)) => e.to_string(),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn the_record_layout_is_version_len_seq_batch_checksum() {
    let dir = TempDir::new("the_record_layout_is_version_len_seq_batch_checksum");
    let batches = three_batches();
    commit_all(dir.path(), &batches[..2]);
    let mut expected = record(1, 1, &encode(&batches[0]).unwrap());
    expected.extend(record(1, 2, &encode(&batches[1]).unwrap()));
    assert_eq!(fs::read(dir.join("log-0")).unwrap(), expected);
}

#[test]
fn a_torn_tail_loads_exactly_the_committed_prefix() {
    let dir = TempDir::new("a_torn_tail_loads_exactly_the_committed_prefix");
    let mut rng = tabmesh_base::DetRng::new(7);
    let mut batches: Vec<WriteBatch> = (0..5).map(|_| random_batch(&mut rng)).collect();
    batches.push(puts(&[("last", "record"), ("k/1", "x")]));
    let (models, ends) = commit_all(dir.path(), &batches);
    let log = fs::read(dir.join("log-0")).unwrap();
    let committed = ends[ends.len() - 2];
    let prefix = &models[models.len() - 2];
    let next = puts(&[("after", "crash")]);
    let mut after = prefix.clone();
    after.apply(&next);
    // Every cut inside the last record, including right after the previous one.
    for cut in committed..log.len() {
        fs::write(dir.join("log-0"), &log[..cut]).unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
        assert_eq!(&store.load().unwrap(), prefix, "cut at {cut}");
        assert_eq!(size(&dir.join("log-0")), committed, "truncated at {cut}");
        store.commit(&next).unwrap();
        drop(store);
        assert_eq!(reopen(dir.path()), after, "cut at {cut}");
    }
}

#[test]
fn a_flipped_byte_in_a_middle_record_is_corrupt() {
    let dir = TempDir::new("a_flipped_byte_in_a_middle_record_is_corrupt");
    let (_, ends) = commit_all(dir.path(), &three_batches());
    let log = fs::read(dir.join("log-0")).unwrap();
    let path = dir.join("log-0").display().to_string();
    for at in ends[0]..ends[1] {
        let mut damaged = log.clone();
        damaged[at] ^= 0x01;
        fs::write(dir.join("log-0"), &damaged).unwrap();
        let message = corrupt_message(FileStore::open(dir.path()));
        assert!(message.contains(&path), "{message}");
        assert!(message.contains(&format!("byte {}", ends[0])), "{message}");
        // Nothing was cut off.
        assert_eq!(fs::read(dir.join("log-0")).unwrap(), damaged);
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_is_a_torn_tail() {
    let dir = TempDir::new("a_flipped_byte_in_the_last_record_is_a_torn_tail");
    let (models, ends) = commit_all(dir.path(), &three_batches());
    let log = fs::read(dir.join("log-0")).unwrap();
    for at in ends[1]..ends[2] {
        let mut damaged = log.clone();
        damaged[at] ^= 0x80;
        fs::write(dir.join("log-0"), &damaged).unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), models[1], "flip at {at}");
        assert_eq!(size(&dir.join("log-0")), ends[1]);
        store.commit(&puts(&[("z", "26")])).unwrap();
    }
}

#[test]
fn zeros_after_the_last_record_are_a_torn_tail() {
    let dir = TempDir::new("zeros_after_the_last_record_are_a_torn_tail");
    let (models, ends) = commit_all(dir.path(), &three_batches());
    let mut log = fs::read(dir.join("log-0")).unwrap();
    log.extend_from_slice(&[0; 100]);
    fs::write(dir.join("log-0"), &log).unwrap();
    assert_eq!(reopen(dir.path()), models[2]);
    assert_eq!(size(&dir.join("log-0")), ends[2]);
}

#[test]
fn a_record_of_an_unknown_version_is_corrupt() {
    let dir = TempDir::new("a_record_of_an_unknown_version_is_corrupt");
    let (_, ends) = commit_all(dir.path(), &three_batches());
    let mut log = fs::read(dir.join("log-0")).unwrap();
    // What a newer build might append: the same frame, another version.
    log.extend(record(2, 4, b"a newer payload"));
    fs::write(dir.join("log-0"), &log).unwrap();
    let message = corrupt_message(FileStore::open(dir.path()));
    assert!(message.contains("version 2"), "{message}");
    assert!(message.contains(&format!("byte {}", ends[2])), "{message}");
}

#[test]
fn a_replayed_record_is_corrupt() {
    let dir = TempDir::new("a_replayed_record_is_corrupt");
    let (_, ends) = commit_all(dir.path(), &three_batches());
    let mut log = fs::read(dir.join("log-0")).unwrap();
    let last = log[ends[1]..].to_vec();
    log.extend(last);
    fs::write(dir.join("log-0"), &log).unwrap();
    let message = corrupt_message(FileStore::open(dir.path()));
    assert!(
        message.contains("sequence number 3, expected 4"),
        "{message}"
    );
}

#[test]
fn a_whole_record_that_does_not_decode_is_corrupt() {
    let dir = TempDir::new("a_whole_record_that_does_not_decode_is_corrupt");
    commit_all(dir.path(), &three_batches());
    let mut log = fs::read(dir.join("log-0")).unwrap();
    log.extend(record(1, 4, &[1, 1, 0, 0, 0, 9]));
    fs::write(dir.join("log-0"), &log).unwrap();
    let message = corrupt_message(FileStore::open(dir.path()));
    assert!(message.contains("does not decode"), "{message}");
}

#[test]
fn a_damaged_snapshot_is_corrupt() {
    let dir = TempDir::new("a_damaged_snapshot_is_corrupt");
    let mut store = FileStore::open(dir.path()).unwrap();
    store.commit(&puts(&[("a", "1"), ("b", "2")])).unwrap();
    store.compact().unwrap();
    drop(store);
    let snap = fs::read(dir.join("snap-1")).unwrap();
    let path = dir.join("snap-1").display().to_string();
    for at in 0..snap.len() {
        let mut damaged = snap.clone();
        damaged[at] ^= 0x04;
        fs::write(dir.join("snap-1"), &damaged).unwrap();
        let message = corrupt_message(FileStore::open(dir.path()));
        assert!(message.contains(&path), "{message}");
    }
    // An unknown version is named as such.
    let mut newer = snap.clone();
    newer[0] = 2;
    fs::write(dir.join("snap-1"), &newer).unwrap();
    let message = corrupt_message(FileStore::open(dir.path()));
    assert!(message.contains("unknown encoding version 2"), "{message}");
    // A short file.
    fs::write(dir.join("snap-1"), &snap[..5]).unwrap();
    corrupt_message(FileStore::open(dir.path()));
    fs::write(dir.join("snap-1"), &snap).unwrap();
    assert_eq!(reopen(dir.path()).len(), 2);
}

#[test]
fn the_snapshot_layout_is_version_seq_count_entries_checksum() {
    let dir = TempDir::new("the_snapshot_layout_is_version_seq_count_entries_checksum");
    let mut store = FileStore::open(dir.path()).unwrap();
    store.commit(&puts(&[("b", "2"), ("a", "1")])).unwrap();
    store.commit(&puts(&[("c", "")])).unwrap();
    store.compact().unwrap();
    drop(store);
    let mut expected = vec![1];
    expected.extend_from_slice(&2u64.to_le_bytes()); // after record 2
    expected.extend_from_slice(&3u64.to_le_bytes()); // three entries, keys ascending
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "")] {
        expected.extend_from_slice(&u32::try_from(k.len()).unwrap().to_le_bytes());
        expected.extend_from_slice(k.as_bytes());
        expected.extend_from_slice(&u32::try_from(v.len()).unwrap().to_le_bytes());
        expected.extend_from_slice(v.as_bytes());
    }
    let sum = Hash::of(&expected);
    expected.extend_from_slice(&sum.as_bytes()[..8]);
    assert_eq!(fs::read(dir.join("snap-1")).unwrap(), expected);
    // The next record continues the sequence.
    let mut store = FileStore::open(dir.path()).unwrap();
    store.commit(&puts(&[("d", "4")])).unwrap();
    let log = fs::read(dir.join("log-1")).unwrap();
    assert_eq!(log[5..13], 3u64.to_le_bytes());
}

#[test]
fn a_log_without_its_snapshot_is_corrupt() {
    let dir = TempDir::new("a_log_without_its_snapshot_is_corrupt");
    commit_all(dir.path(), &three_batches());
    fs::remove_file(dir.join("snap-0")).unwrap();
    let message = corrupt_message(FileStore::open(dir.path()));
    assert!(
        message.contains(&dir.join("log-0").display().to_string()),
        "{message}"
    );
    // A log newer than the newest snapshot.
    let dir = TempDir::new("a_log_without_its_snapshot_is_corrupt_newer");
    commit_all(dir.path(), &three_batches());
    fs::write(dir.join("log-1"), b"").unwrap();
    let message = corrupt_message(FileStore::open(dir.path()));
    assert!(
        message.contains(&dir.join("log-1").display().to_string()),
        "{message}"
    );
    assert_eq!(names(dir.path()), ["log-0", "log-1", "snap-0"]);
}

#[test]
fn io_errors_name_the_path() {
    let dir = TempDir::new("io_errors_name_the_path");
    fs::create_dir_all(dir.path()).unwrap();
    let file = dir.join("not-a-directory");
    fs::write(&file, b"").unwrap();
    match FileStore::open(&file) {
        Err(e @ StoreError::Io { .. }) => {
            assert!(e.to_string().contains(&file.display().to_string()), "{e}");
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn a_failed_compaction_poisons_the_store_and_reopening_recovers() {
    let dir = TempDir::new("a_failed_compaction_poisons_the_store");
    let mut store = FileStore::open(dir.path()).unwrap();
    store.commit(&puts(&[("a", "1")])).unwrap();
    // Something in the way of the next log.
    fs::create_dir(dir.join("log-1")).unwrap();
    match store.compact() {
        Err(e @ StoreError::Io { .. }) => {
            assert!(
                e.to_string()
                    .contains(&dir.join("log-1").display().to_string()),
                "{e}"
            );
        }
        other => panic!("expected Io, got {other:?}"),
    }
    match store.commit(&puts(&[("b", "2")])) {
        Err(e @ StoreError::Poisoned { .. }) => {
            assert!(
                e.to_string().contains(&dir.path().display().to_string()),
                "{e}"
            );
        }
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert!(matches!(store.load(), Err(StoreError::Poisoned { .. })));
    drop(store);
    fs::remove_dir(dir.join("log-1")).unwrap();
    let mut store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.load().unwrap().len(), 1);
    assert_eq!(names(dir.path()), ["log-1", "snap-1"]);
    store.commit(&puts(&[("b", "2")])).unwrap();
    drop(store);
    assert_eq!(reopen(dir.path()).len(), 2);
}
