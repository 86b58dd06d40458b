use std::collections::BTreeSet;

use tabmesh_testkit::test;

use tabmesh_blobs::{BlobError, Fetch, FetchAction, Limits, Want, CHUNK_SIZE};

use super::support::{all_indices, data, full_store, peer, Driver};

#[test]
fn a_resumed_fetch_asks_only_for_the_chunks_not_stored() {
    let bytes = data(10 * CHUNK_SIZE + 77, 1);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut first = Driver::new(
        &m,
        vec![(a, store.clone()), (b, store.clone())],
        Limits::default(),
        3,
    );
    first.steps(5);
    assert!(!first.fetch.is_finished());
    // The restart: what was persisted is the manifest and the stored chunks; the rest is lost.
    let persisted = first.log.manifests[0].clone();
    let have: BTreeSet<u32> = first.log.stored.keys().copied().collect();
    assert!(have.len() >= 3);
    let have_bytes: u64 = first.log.stored.values().map(|c| c.len() as u64).sum();
    drop(first.fetch);

    // Duplicates in `have` are fine.
    let listed = have.iter().copied().chain(have.iter().copied());
    let fetch = Fetch::resume(50_000, persisted, listed, [a, b], Limits::default(), 4).unwrap();
    assert_eq!(fetch.have_bytes(), have_bytes);
    let mut d = Driver::with_fetch(
        fetch,
        &m,
        vec![(a, store.clone()), (b, store)],
        Limits::default(),
        have.clone(),
    );
    assert_eq!(d.log.progress[0], (have_bytes, bytes.len() as u64));
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.log.requests_for(Want::Manifest), 0);
    let asked: BTreeSet<u32> = d
        .log
        .requests
        .iter()
        .map(|(_, _, w)| match w {
            Want::Chunk(i) => *i,
            Want::Manifest => unreachable!(),
        })
        .collect();
    let rest: BTreeSet<u32> = all_indices(&m).difference(&have).copied().collect();
    assert_eq!(asked, rest);
    assert_eq!(d.log.requests.len(), rest.len(), "each asked once");
    // Together, the two runs stored the whole blob.
    let mut whole = first.log.stored.clone();
    whole.extend(d.log.stored.clone());
    let joined: Vec<u8> = whole.into_values().flatten().collect();
    assert_eq!(joined, bytes);
    assert!(
        d.log.manifests.is_empty(),
        "the manifest was stored already"
    );
}

#[test]
fn a_fetch_resumed_with_everything_is_done_at_once() {
    let bytes = data(3 * CHUNK_SIZE, 2);
    let (_, m) = full_store(&bytes);
    let mut f = Fetch::resume(0, m.clone(), 0..3, [], Limits::default(), 0).unwrap();
    let actions: Vec<FetchAction> = std::iter::from_fn(|| f.poll_action()).collect();
    assert_eq!(
        actions,
        vec![
            FetchAction::Progress {
                have_bytes: bytes.len() as u64,
                total: bytes.len() as u64
            },
            FetchAction::Done(m)
        ]
    );
    assert!(f.is_done());
}

#[test]
fn resume_refuses_a_forged_manifest_and_unknown_indices() {
    let bytes = data(3 * CHUNK_SIZE, 3);
    let (_, m) = full_store(&bytes);
    assert_eq!(
        Fetch::resume(0, m.clone(), [3], [], Limits::default(), 0).unwrap_err(),
        BlobError::ChunkIndex { index: 3, count: 3 }
    );
    let mut forged = m;
    forged.chunks.pop();
    assert!(matches!(
        Fetch::resume(0, forged, [], [], Limits::default(), 0),
        Err(BlobError::BadManifest { .. })
    ));
}
