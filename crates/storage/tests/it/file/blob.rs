//! `FileBlobStore` on disk: the `BlobStore` contract, then what is the file store's own — the
//! layout, reopening, damage, the leftovers of a crash.

use tabmesh_testkit::test;

use std::fs;
use std::path::Path;

use tabmesh_base::codec::VERSION;
use tabmesh_blobs::CHUNK_SIZE;
use tabmesh_storage::{BlobStore, FileBlobStore, StoreError, MAX_BLOB_RECORD};

use super::super::blob::{contract, every_behaviour, id, now, sample};
use super::support::TempDir;

/// The entries (files and directories) of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

macro_rules! on_disk {
    ($name:ident) => {
        #[test]
        fn $name() {
            let dir = TempDir::new(concat!("blob-", stringify!($name)));
            let mut store = FileBlobStore::open(dir.path()).unwrap();
            now(contract::$name(&mut store));
        }
    };
}

/// The contract, on `FileBlobStore`.
mod contract_on_disk {
    use super::{contract, every_behaviour, now, FileBlobStore, TempDir};
    use tabmesh_testkit::test;

    every_behaviour!(on_disk);
}

#[test]
fn everything_survives_reopening() {
    let dir = TempDir::new("blob-everything_survives_reopening");
    let mut store = FileBlobStore::open(dir.path()).unwrap();
    assert_eq!(store.dir(), dir.path());
    let manifests = now(contract::store_sample(&mut store));
    drop(store);
    let mut store = FileBlobStore::open(dir.path()).unwrap();
    now(contract::sample_is_stored(&mut store, &manifests));
    // Two stores on one directory see each other's writes at once (nothing is cached).
    let mut other = FileBlobStore::open(dir.path()).unwrap();
    now(other.put_chunk(&manifests[0].id, 5, b"five")).unwrap();
    assert_eq!(
        now(store.chunk(&manifests[0].id, 5)).unwrap(),
        Some(b"five".to_vec())
    );
}

#[test]
fn the_layout_is_one_directory_per_blob_with_files_as_given() {
    let dir = TempDir::new("blob-the_layout_is_one_directory_per_blob");
    let mut store = FileBlobStore::open(dir.path().join("blobs")).unwrap();
    let root = dir.join("blobs");
    assert!(entries(&root).is_empty());
    let (chunks, manifest) = sample(CHUNK_SIZE + 1, 3);
    let hex = manifest.id.to_string();
    assert_eq!(hex.len(), 64);
    now(store.put_record(&manifest.id, b"my record")).unwrap();
    now(store.put_manifest(&manifest)).unwrap();
    for chunk in &chunks {
        now(store.put_chunk(&manifest.id, chunk.index, &chunk.bytes)).unwrap();
    }
    now(store.put_chunk(&manifest.id, 12, b"twelve")).unwrap();
    assert_eq!(entries(&root), std::slice::from_ref(&hex));
    let blob_dir = root.join(&hex);
    assert_eq!(entries(&blob_dir), ["0", "1", "12", "manifest", "record"]);
    // The record is the caller's bytes; the manifest its own versioned encoding; a chunk raw.
    assert_eq!(fs::read(blob_dir.join("record")).unwrap(), b"my record");
    let encoded = fs::read(blob_dir.join("manifest")).unwrap();
    assert_eq!(encoded, manifest.encode());
    assert_eq!(encoded[0], VERSION);
    assert_eq!(fs::read(blob_dir.join("1")).unwrap(), chunks[1].bytes);
    assert_eq!(fs::read(blob_dir.join("12")).unwrap(), b"twelve");

    now(store.delete_chunk(&manifest.id, 12)).unwrap();
    assert_eq!(entries(&blob_dir), ["0", "1", "manifest", "record"]);
    // Deleting a blob leaves nothing behind.
    now(store.delete(&manifest.id)).unwrap();
    assert!(entries(&root).is_empty());
}

#[test]
fn a_damaged_manifest_file_is_corrupt() {
    let dir = TempDir::new("blob-a_damaged_manifest_file_is_corrupt");
    let mut store = FileBlobStore::open(dir.path()).unwrap();
    let (_, manifest) = sample(CHUNK_SIZE * 2, 1);
    let (_, other) = sample(100, 2);
    now(store.put_manifest(&manifest)).unwrap();
    now(store.put_record(&manifest.id, b"record")).unwrap();
    let path = dir.join(&manifest.id.to_string()).join("manifest");
    let good = fs::read(&path).unwrap();

    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let mut newer = good.clone();
    newer[0] = VERSION + 1;
    let damages: [(&str, Vec<u8>); 5] = [
        ("a flipped bit", flipped),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("an unknown version", newer),
        ("empty", Vec::new()),
        // Whole and valid, but another blob's.
        ("another blob's manifest", other.encode()),
    ];
    for (damage, bytes) in damages {
        fs::write(&path, &bytes).unwrap();
        match now(store.manifest(&manifest.id)) {
            Err(StoreError::Corrupt(message)) => {
                assert!(message.contains("manifest"), "{damage}: {message}");
            }
            other => panic!("{damage}: expected Corrupt, got {other:?}"),
        }
        // The rest of the blob reads on.
        assert_eq!(
            now(store.records()).unwrap(),
            [(manifest.id, b"record".to_vec())]
        );
    }
    // Writing the manifest again repairs it.
    now(store.put_manifest(&manifest)).unwrap();
    assert_eq!(now(store.manifest(&manifest.id)).unwrap(), Some(manifest));
}

#[test]
fn a_record_or_chunk_file_over_its_bound_is_corrupt() {
    let dir = TempDir::new("blob-a_record_or_chunk_file_over_its_bound");
    let mut store = FileBlobStore::open(dir.path()).unwrap();
    let blob = id(1);
    now(store.put_record(&blob, b"small")).unwrap();
    now(store.put_chunk(&blob, 0, b"small")).unwrap();
    let blob_dir = dir.join(&blob.to_string());
    fs::write(blob_dir.join("0"), vec![0; CHUNK_SIZE + 1]).unwrap();
    assert!(matches!(
        now(store.chunk(&blob, 0)),
        Err(StoreError::Corrupt(_))
    ));
    fs::write(blob_dir.join("record"), vec![0; MAX_BLOB_RECORD + 1]).unwrap();
    assert!(matches!(now(store.records()), Err(StoreError::Corrupt(_))));
    // Rewritten through the store, both read again.
    now(store.put_record(&blob, b"fixed")).unwrap();
    now(store.put_chunk(&blob, 0, b"fixed")).unwrap();
    assert_eq!(now(store.records()).unwrap(), [(blob, b"fixed".to_vec())]);
    assert_eq!(now(store.chunk(&blob, 0)).unwrap(), Some(b"fixed".to_vec()));
}

#[test]
fn the_leftovers_of_a_crash_are_ignored_or_removed() {
    let dir = TempDir::new("blob-the_leftovers_of_a_crash");
    let mut store = FileBlobStore::open(dir.path()).unwrap();
    let (a, b, c) = (id(1), id(2), id(3));
    now(store.put_record(&a, b"a")).unwrap();
    now(store.put_chunk(&a, 0, b"a0")).unwrap();
    drop(store);
    let a_dir = dir.join(&a.to_string());
    // Writes a crash interrupted: temporary files next to the real ones, and in a blob directory
    // holding nothing else.
    fs::write(a_dir.join("record.tmp"), b"half a rec").unwrap();
    fs::write(a_dir.join("manifest.tmp"), b"half a manifest").unwrap();
    fs::write(a_dir.join("3.tmp"), b"half a chunk").unwrap();
    fs::write(a_dir.join("0.tmp"), b"half a chunk").unwrap();
    let b_dir = dir.join(&b.to_string());
    fs::create_dir(&b_dir).unwrap();
    fs::write(b_dir.join("record.tmp"), b"b").unwrap();
    fs::write(b_dir.join("7.tmp"), b"b7").unwrap();
    // A delete a crash interrupted after its rename.
    let c_deleted = dir.join(&format!("{c}.del"));
    fs::create_dir(&c_deleted).unwrap();
    fs::write(c_deleted.join("record"), b"c").unwrap();
    fs::write(c_deleted.join("0"), b"c0").unwrap();
    // Names that are not the store's.
    fs::write(dir.join("README"), b"not a blob").unwrap();
    fs::create_dir(dir.join(&a.to_string().to_uppercase())).unwrap();
    fs::write(a_dir.join("notes"), b"not a chunk").unwrap();
    fs::write(a_dir.join("007"), b"not a chunk either").unwrap();

    let mut store = FileBlobStore::open(dir.path()).unwrap();
    // The interrupted delete is finished; nothing else is touched.
    let mut expected = vec![
        a.to_string(),
        a.to_string().to_uppercase(),
        b.to_string(),
        "README".to_owned(),
    ];
    expected.sort();
    assert_eq!(entries(dir.path()), expected);
    // Every read ignores the leftovers.
    assert_eq!(now(store.records()).unwrap(), [(a, b"a".to_vec())]);
    assert_eq!(now(store.held(&a)).unwrap(), [0]);
    assert_eq!(now(store.chunk(&a, 0)).unwrap(), Some(b"a0".to_vec()));
    assert_eq!(now(store.chunk(&a, 3)).unwrap(), None);
    assert_eq!(now(store.manifest(&a)).unwrap(), None);
    assert!(now(store.held(&b)).unwrap().is_empty());
    assert!(now(store.held(&c)).unwrap().is_empty());
    // The next write of a file replaces its leftover; deleting the blob removes the rest.
    now(store.put_chunk(&a, 3, b"a3")).unwrap();
    assert_eq!(now(store.chunk(&a, 3)).unwrap(), Some(b"a3".to_vec()));
    assert!(!a_dir.join("3.tmp").exists());
    now(store.delete(&b)).unwrap();
    assert!(!b_dir.exists());
    now(store.delete(&a)).unwrap();
    assert!(!a_dir.exists());
}
