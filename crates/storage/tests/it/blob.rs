//! The `BlobStore` contract: one async body per behaviour ([`contract`]), run against every
//! implementation — `MemoryBlobStore` here (natively and in headless Chromium), `FileBlobStore` in
//! `file/blob.rs` (natively), `IdbBlobStore` in `idb.rs` (headless Chromium). Plus what is
//! `MemoryBlobStore`'s own: sharing between clones, the test helpers.

use tabmesh_testkit::test;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tabmesh_base::Hash;
use tabmesh_blobs::{chunk_bytes, BlobId, Chunk, Manifest};
use tabmesh_storage::{BlobStore, MemoryBlobStore};

/// Runs a future that is ready at once (every call of the memory and file stores is): polls it
/// once, and fails the test if it is not.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a blob store call did not complete at once"),
    }
}

/// A blob id that no manifest needs (records and chunks are stored under any id).
pub(crate) fn id(n: u8) -> BlobId {
    BlobId::from(Hash::of(&[n]))
}

/// A real blob of `len` bytes: its chunks and manifest.
pub(crate) fn sample(len: usize, seed: u8) -> (Vec<Chunk>, Manifest) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect();
    chunk_bytes(&data).unwrap()
}

/// Generates one test per behaviour of [`contract`]: `$run!(name)` is the test of `name` for one
/// implementation.
macro_rules! every_behaviour {
    ($run:ident) => {
        $run!(records_are_read_back_replaced_and_listed_ascending);
        $run!(a_manifest_round_trips);
        $run!(a_manifest_that_does_not_verify_reads_back_corrupt);
        $run!(chunks_are_stored_and_read_back_unverified);
        $run!(held_lists_a_blobs_indices_ascending);
        $run!(delete_chunk_removes_one_chunk);
        $run!(delete_removes_the_whole_blob_and_nothing_else);
        $run!(an_oversize_chunk_record_or_manifest_is_refused);
    };
}
pub(crate) use every_behaviour;

/// The behaviours every [`BlobStore`] has. Each takes an empty store.
pub(crate) mod contract {
    use tabmesh_blobs::{BlobId, Manifest, CHUNK_SIZE, MAX_CHUNKS};
    use tabmesh_storage::{BlobStore, StoreError, MAX_BLOB_RECORD};

    use super::{id, sample};

    pub(crate) async fn records_are_read_back_replaced_and_listed_ascending(
        store: &mut impl BlobStore,
    ) {
        assert!(store.records().await.unwrap().is_empty());
        let (a, b, c) = (id(1), id(2), id(3));
        store.put_record(&a, b"one").await.unwrap();
        assert_eq!(store.records().await.unwrap(), [(a, b"one".to_vec())]);
        // Replaced, not added.
        store.put_record(&a, b"two").await.unwrap();
        assert_eq!(store.records().await.unwrap(), [(a, b"two".to_vec())]);
        // Every blob with a record, ascending by id whatever the order of writes; an empty record
        // and one of exactly the bound are records too.
        store.put_record(&c, &[]).await.unwrap();
        store
            .put_record(&b, &vec![7; MAX_BLOB_RECORD])
            .await
            .unwrap();
        // A blob with only chunks or a manifest has no record.
        store.put_chunk(&id(4), 0, b"chunk").await.unwrap();
        let (_, manifest) = sample(10, 0);
        store.put_manifest(&manifest).await.unwrap();
        let mut expected = vec![
            (a, b"two".to_vec()),
            (b, vec![7; MAX_BLOB_RECORD]),
            (c, Vec::new()),
        ];
        expected.sort();
        assert_eq!(store.records().await.unwrap(), expected);
    }

    pub(crate) async fn a_manifest_round_trips(store: &mut impl BlobStore) {
        // Three chunks, the last one short; and the empty blob (no chunk at all).
        let (_, big) = sample(CHUNK_SIZE * 5 / 2, 1);
        let (_, empty) = sample(0, 2);
        assert_eq!(big.chunk_count(), 3);
        assert_eq!(store.manifest(&big.id).await.unwrap(), None);
        store.put_manifest(&big).await.unwrap();
        store.put_manifest(&empty).await.unwrap();
        assert_eq!(store.manifest(&big.id).await.unwrap(), Some(big.clone()));
        assert_eq!(store.manifest(&empty.id).await.unwrap(), Some(empty));
        // Idempotent.
        store.put_manifest(&big).await.unwrap();
        assert_eq!(store.manifest(&big.id).await.unwrap(), Some(big));
        assert_eq!(store.manifest(&id(9)).await.unwrap(), None);
    }

    pub(crate) async fn a_manifest_that_does_not_verify_reads_back_corrupt(
        store: &mut impl BlobStore,
    ) {
        // A hand-built manifest whose id is not the hash of its contents: stored as given, refused
        // when read (reading verifies).
        let (_, real) = sample(100, 3);
        let forged = Manifest {
            id: id(5),
            ..real.clone()
        };
        store.put_manifest(&forged).await.unwrap();
        assert!(matches!(
            store.manifest(&forged.id).await,
            Err(StoreError::Corrupt(_))
        ));
        // Other manifests are unaffected.
        store.put_manifest(&real).await.unwrap();
        assert_eq!(store.manifest(&real.id).await.unwrap(), Some(real));
    }

    pub(crate) async fn chunks_are_stored_and_read_back_unverified(store: &mut impl BlobStore) {
        let (chunks, manifest) = sample(CHUNK_SIZE + 10, 4);
        let blob = manifest.id;
        assert_eq!(store.chunk(&blob, 0).await.unwrap(), None);
        for chunk in &chunks {
            store
                .put_chunk(&blob, chunk.index, &chunk.bytes)
                .await
                .unwrap();
        }
        // A whole chunk (exactly CHUNK_SIZE) and the short last one.
        for chunk in &chunks {
            let read = store.chunk(&blob, chunk.index).await.unwrap().unwrap();
            assert_eq!(read, chunk.bytes);
            manifest.verify_chunk(chunk.index, &read).unwrap();
        }
        assert_eq!(store.chunk(&blob, 2).await.unwrap(), None);
        // Not verified: bytes that match nothing, at an index past the blob, are stored as given;
        // a second write replaces the first.
        store.put_chunk(&blob, 1, b"not the chunk").await.unwrap();
        store.put_chunk(&blob, 7, &[]).await.unwrap();
        let wrong = store.chunk(&blob, 1).await.unwrap().unwrap();
        assert_eq!(wrong, b"not the chunk");
        assert!(manifest.verify_chunk(1, &wrong).is_err());
        assert_eq!(store.chunk(&blob, 7).await.unwrap(), Some(Vec::new()));
        // Chunks of one blob are not another's.
        assert_eq!(store.chunk(&id(8), 0).await.unwrap(), None);
    }

    pub(crate) async fn held_lists_a_blobs_indices_ascending(store: &mut impl BlobStore) {
        let (a, b) = (id(1), id(2));
        assert!(store.held(&a).await.unwrap().is_empty());
        // Written out of order, with indices whose decimal names sort otherwise (10 < 9 as text)
        // and the extremes of a u32.
        for index in [300, 9, 0, u32::MAX, 10, 2, MAX_CHUNKS] {
            store.put_chunk(&a, index, &[index as u8]).await.unwrap();
        }
        store.put_chunk(&b, 5, b"b").await.unwrap();
        store.put_record(&a, b"record").await.unwrap();
        store.put_chunk(&a, 9, b"again").await.unwrap();
        assert_eq!(
            store.held(&a).await.unwrap(),
            [0, 2, 9, 10, 300, MAX_CHUNKS, u32::MAX]
        );
        assert_eq!(store.held(&b).await.unwrap(), [5]);
        assert!(store.held(&id(3)).await.unwrap().is_empty());
        assert_eq!(store.chunk(&a, u32::MAX).await.unwrap(), Some(vec![255]));
    }

    pub(crate) async fn delete_chunk_removes_one_chunk(store: &mut impl BlobStore) {
        let a = id(1);
        for index in 0..4 {
            store.put_chunk(&a, index, &[index as u8; 3]).await.unwrap();
        }
        store.put_chunk(&id(2), 2, b"other").await.unwrap();
        store.delete_chunk(&a, 2).await.unwrap();
        assert_eq!(store.held(&a).await.unwrap(), [0, 1, 3]);
        assert_eq!(store.chunk(&a, 2).await.unwrap(), None);
        assert_eq!(store.chunk(&a, 3).await.unwrap(), Some(vec![3; 3]));
        assert_eq!(
            store.chunk(&id(2), 2).await.unwrap(),
            Some(b"other".to_vec())
        );
        // Missing is fine: the same chunk again, an index never stored, a blob never stored.
        store.delete_chunk(&a, 2).await.unwrap();
        store.delete_chunk(&a, 99).await.unwrap();
        store.delete_chunk(&id(3), 0).await.unwrap();
        assert_eq!(store.held(&a).await.unwrap(), [0, 1, 3]);
        // A deleted chunk can be stored again.
        store.put_chunk(&a, 2, b"back").await.unwrap();
        assert_eq!(store.held(&a).await.unwrap(), [0, 1, 2, 3]);
    }

    /// Stores blob `m`'s record, manifest and chunks.
    async fn fill(store: &mut impl BlobStore, m: &Manifest, record: &[u8]) {
        store.put_record(&m.id, record).await.unwrap();
        store.put_manifest(m).await.unwrap();
        for index in 0..m.chunk_count() {
            store.put_chunk(&m.id, index, b"bytes").await.unwrap();
        }
    }

    /// Whether anything of `blob` is stored.
    async fn absent(store: &mut impl BlobStore, blob: &BlobId) -> bool {
        !store
            .records()
            .await
            .unwrap()
            .iter()
            .any(|(id, _)| id == blob)
            && store.manifest(blob).await.unwrap().is_none()
            && store.held(blob).await.unwrap().is_empty()
            && store.chunk(blob, 0).await.unwrap().is_none()
    }

    pub(crate) async fn delete_removes_the_whole_blob_and_nothing_else(store: &mut impl BlobStore) {
        let (_, a) = sample(CHUNK_SIZE * 2 + 1, 5);
        let (_, b) = sample(CHUNK_SIZE + 1, 6);
        fill(store, &a, b"a").await;
        fill(store, &b, b"b").await;
        // Including a chunk past the end, at the largest index (the edge of the key range).
        store.put_chunk(&a.id, u32::MAX, b"stray").await.unwrap();
        store.delete(&a.id).await.unwrap();
        assert!(absent(store, &a.id).await);
        assert_eq!(store.chunk(&a.id, u32::MAX).await.unwrap(), None);
        // The other blob is whole.
        assert_eq!(store.records().await.unwrap(), [(b.id, b"b".to_vec())]);
        assert_eq!(store.manifest(&b.id).await.unwrap(), Some(b.clone()));
        assert_eq!(store.held(&b.id).await.unwrap(), [0, 1]);
        // Missing is fine: the same blob again, a blob never stored.
        store.delete(&a.id).await.unwrap();
        store.delete(&id(9)).await.unwrap();
        // A deleted blob can be stored again.
        fill(store, &a, b"again").await;
        assert_eq!(store.held(&a.id).await.unwrap(), [0, 1, 2]);
        assert_eq!(store.manifest(&a.id).await.unwrap(), Some(a.clone()));
        // A blob of chunks only (no record, no manifest) is deleted too.
        store.put_chunk(&id(7), 3, b"c").await.unwrap();
        store.delete(&id(7)).await.unwrap();
        assert!(absent(store, &id(7)).await);
        let mut expected = vec![(a.id, b"again".to_vec()), (b.id, b"b".to_vec())];
        expected.sort();
        assert_eq!(store.records().await.unwrap(), expected);
    }

    pub(crate) async fn an_oversize_chunk_record_or_manifest_is_refused(
        store: &mut impl BlobStore,
    ) {
        let a = id(1);
        store.put_record(&a, b"old").await.unwrap();
        store.put_chunk(&a, 0, b"old").await.unwrap();

        match store.put_chunk(&a, 0, &vec![0; CHUNK_SIZE + 1]).await {
            Err(StoreError::TooLarge { len, max }) => {
                assert_eq!((len, max), (CHUNK_SIZE + 1, CHUNK_SIZE));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        store
            .put_chunk(&a, 1, &vec![0; CHUNK_SIZE + 1])
            .await
            .unwrap_err();
        match store.put_record(&a, &vec![0; MAX_BLOB_RECORD + 1]).await {
            Err(StoreError::TooLarge { len, max }) => {
                assert_eq!((len, max), (MAX_BLOB_RECORD + 1, MAX_BLOB_RECORD));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // A hand-built manifest with more chunk ids than a manifest may list.
        let (_, real) = sample(10, 7);
        let huge = Manifest {
            chunks: vec![real.chunks[0]; MAX_CHUNKS as usize + 1],
            ..real
        };
        assert!(matches!(
            store.put_manifest(&huge).await,
            Err(StoreError::TooLarge { .. })
        ));
        // Nothing was written: the old record and chunk stay, no new chunk, no manifest.
        assert_eq!(store.records().await.unwrap(), [(a, b"old".to_vec())]);
        assert_eq!(store.chunk(&a, 0).await.unwrap(), Some(b"old".to_vec()));
        assert_eq!(store.held(&a).await.unwrap(), [0]);
        assert_eq!(store.manifest(&huge.id).await.unwrap(), None);
    }

    /// Stores a sample of everything (three blobs) for [`sample_is_stored`] to find after a
    /// restart.
    pub(crate) async fn store_sample(store: &mut impl BlobStore) -> Vec<Manifest> {
        let manifests: Vec<Manifest> = (0..3)
            .map(|n| sample(CHUNK_SIZE * n + 100, n as u8).1)
            .collect();
        for (n, m) in manifests.iter().enumerate() {
            store.put_record(&m.id, &[n as u8; 20]).await.unwrap();
            store.put_manifest(m).await.unwrap();
            for index in 0..m.chunk_count() {
                store
                    .put_chunk(&m.id, index, &[n as u8, index as u8])
                    .await
                    .unwrap();
            }
        }
        // One chunk deleted, and a blob deleted whole.
        store.delete_chunk(&manifests[2].id, 1).await.unwrap();
        store.put_record(&id(9), b"gone").await.unwrap();
        store.put_chunk(&id(9), 0, b"gone").await.unwrap();
        store.delete(&id(9)).await.unwrap();
        manifests
    }

    /// Checks that `store` holds what [`store_sample`] stored.
    pub(crate) async fn sample_is_stored(store: &mut impl BlobStore, manifests: &[Manifest]) {
        let mut expected: Vec<(BlobId, Vec<u8>)> = manifests
            .iter()
            .enumerate()
            .map(|(n, m)| (m.id, vec![n as u8; 20]))
            .collect();
        expected.sort();
        assert_eq!(store.records().await.unwrap(), expected);
        for (n, m) in manifests.iter().enumerate() {
            assert_eq!(store.manifest(&m.id).await.unwrap().as_ref(), Some(m));
            let held = store.held(&m.id).await.unwrap();
            let want: Vec<u32> = (0..m.chunk_count())
                .filter(|&i| !(n == 2 && i == 1))
                .collect();
            assert_eq!(held, want);
            for index in held {
                assert_eq!(
                    store.chunk(&m.id, index).await.unwrap(),
                    Some(vec![n as u8, index as u8])
                );
            }
        }
        assert!(absent(store, &id(9)).await);
    }
}

macro_rules! memory {
    ($name:ident) => {
        #[test]
        fn $name() {
            now(contract::$name(&mut MemoryBlobStore::new()));
        }
    };
}

/// The contract, on `MemoryBlobStore`.
mod memory {
    use super::{contract, now, MemoryBlobStore};
    use tabmesh_testkit::test;

    every_behaviour!(memory);
}

#[test]
fn memory_clones_share_the_blobs() {
    let mut store = MemoryBlobStore::new();
    let mut clone = store.clone();
    let manifests = now(contract::store_sample(&mut store));
    now(contract::sample_is_stored(&mut clone, &manifests));
    // And the other way round.
    now(clone.put_chunk(&id(1), 0, b"from the clone")).unwrap();
    assert_eq!(
        now(store.chunk(&id(1), 0)).unwrap(),
        Some(b"from the clone".to_vec())
    );
}

#[test]
fn memory_corrupt_chunk_flips_a_byte_of_a_stored_chunk() {
    let mut store = MemoryBlobStore::new();
    let (chunks, manifest) = sample(1000, 1);
    let blob = manifest.id;
    now(store.put_chunk(&blob, 0, &chunks[0].bytes)).unwrap();
    let test_view = store.clone();
    assert!(test_view.corrupt_chunk(&blob, 0));
    let read = now(store.chunk(&blob, 0)).unwrap().unwrap();
    assert_eq!(read.len(), chunks[0].bytes.len());
    let differing = read
        .iter()
        .zip(&chunks[0].bytes)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 1);
    assert!(manifest.verify_chunk(0, &read).is_err());
    // Nothing to damage: a missing chunk, an empty one.
    assert!(!test_view.corrupt_chunk(&blob, 1));
    now(store.put_chunk(&blob, 2, &[])).unwrap();
    assert!(!test_view.corrupt_chunk(&blob, 2));
    assert_eq!(now(store.chunk(&blob, 2)).unwrap(), Some(Vec::new()));
}

#[test]
fn memory_chunk_count_counts_every_blobs_chunks() {
    let mut store = MemoryBlobStore::new();
    let view = store.clone();
    assert_eq!(view.chunk_count(), 0);
    for index in 0..3 {
        now(store.put_chunk(&id(1), index, b"x")).unwrap();
    }
    now(store.put_chunk(&id(2), 0, b"y")).unwrap();
    // Replacing a chunk does not add one; records and manifests are not chunks.
    now(store.put_chunk(&id(1), 0, b"z")).unwrap();
    now(store.put_record(&id(1), b"r")).unwrap();
    now(store.put_manifest(&sample(10, 0).1)).unwrap();
    assert_eq!(view.chunk_count(), 4);
    now(store.delete_chunk(&id(1), 1)).unwrap();
    assert_eq!(view.chunk_count(), 3);
    now(store.delete(&id(1))).unwrap();
    assert_eq!(view.chunk_count(), 1);
}
