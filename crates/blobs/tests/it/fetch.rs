use tabmesh_testkit::test;

use tabmesh_blobs::{
    BlobError, BlobResponse, Fetch, FetchError, FetchEvent, Limits, Want, CHUNK_SIZE,
    MAX_IN_FLIGHT_BYTES,
};

use super::support::{all_indices, data, full_store, partial_store, peer, Behaviour, Driver};

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn two_holders_complete_storing_every_chunk_once_within_the_bounds() {
    let bytes = data(10 * CHUNK_SIZE + 123, 1);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut d = Driver::new(&m, vec![(a, store.clone()), (b, store)], limits(), 7);
    // The manifest comes first, alone.
    assert_eq!(d.log.requests.len(), 1);
    assert_eq!(d.log.requests[0].2, Want::Manifest);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.assembled(), bytes);
    assert_eq!(d.log.manifests, vec![m.clone()]);
    for i in all_indices(&m) {
        assert_eq!(d.log.stores[&i], 1, "chunk {i} stored once");
        assert_eq!(
            d.log.requests_for(Want::Chunk(i)),
            1,
            "chunk {i} asked once"
        );
    }
    // The window was used, and never exceeded (checked after every action by the driver).
    let limits = Limits::default();
    assert_eq!(d.log.peak_chunks, limits.max_in_flight_chunks);
    assert_eq!(d.log.peak_bytes, limits.max_in_flight_bytes);
    assert!(
        limits.max_in_flight_bytes < MAX_IN_FLIGHT_BYTES,
        "room under 1 MiB"
    );
    // Spread over both holders.
    let to_a = d.log.requests_to(a);
    let to_b = d.log.requests_to(b);
    assert!(to_a >= 4 && to_b >= 4, "{to_a} / {to_b}");
    assert_eq!(d.fetch.stats().stored, 11);
    assert_eq!(d.fetch.have_bytes(), bytes.len() as u64);
    assert!(d.fetch.is_done() && d.fetch.is_finished());
    assert_eq!(d.fetch.poll_timeout(), None);
    assert!(!d.log.has_event(|_| true), "no event in a clean run");
}

#[test]
fn the_byte_bound_binds_before_the_request_bound() {
    let bytes = data(6 * CHUNK_SIZE, 2);
    let (store, m) = full_store(&bytes);
    let mut l = limits();
    l.max_in_flight_chunks = 16;
    l.max_in_flight_bytes = 2 * CHUNK_SIZE + 1;
    let mut d = Driver::new(&m, vec![(peer(1), store)], l, 1);
    d.run();
    assert!(d.log.done.is_some());
    assert_eq!(d.log.peak_chunks, 2);
    let mut l = limits();
    l.max_in_flight_chunks = 1;
    let (store, _) = full_store(&bytes);
    let mut d = Driver::new(&m, vec![(peer(1), store)], l, 1);
    d.run();
    assert!(d.log.done.is_some());
    assert_eq!(d.log.peak_chunks, 1);
}

#[test]
fn progress_is_monotone_and_ends_at_the_total() {
    let bytes = data(5 * CHUNK_SIZE + 1, 3);
    let (store, m) = full_store(&bytes);
    let mut d = Driver::new(&m, vec![(peer(1), store)], limits(), 3);
    d.run();
    let total = bytes.len() as u64;
    let p = &d.log.progress;
    assert_eq!(p.first(), Some(&(0, total)));
    assert_eq!(p.last(), Some(&(total, total)));
    assert_eq!(p.len(), 1 + 6);
    assert!(p.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn the_empty_blob_is_done_once_its_manifest_arrives() {
    let (store, m) = full_store(b"");
    let mut d = Driver::new(&m, vec![(peer(1), store)], limits(), 0);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.log.progress, vec![(0, 0)]);
    assert_eq!(d.log.requests.len(), 1);
}

#[test]
fn a_holder_leaving_mid_transfer_does_not_cost_verified_chunks() {
    let bytes = data(12 * CHUNK_SIZE, 4);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut d = Driver::new(&m, vec![(a, store.clone()), (b, store)], limits(), 11);
    d.steps(6);
    let before: Vec<u32> = d.log.stored.keys().copied().collect();
    assert!(before.len() >= 3, "{before:?}");
    let a_had = d.outstanding.values().filter(|p| **p == a).count();
    assert!(a_had > 0, "a has requests in flight");
    d.remove_holder(a);
    // Its requests moved to b at once, without waiting for a timeout.
    assert!(d.outstanding.values().all(|p| *p == b));
    assert_eq!(d.fetch.holders().copied().collect::<Vec<_>>(), vec![b]);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.assembled(), bytes);
    assert_eq!(d.fetch.stats().timeouts, 0);
    assert_eq!(
        d.fetch.stats().requeued,
        a_had as u64,
        "a's requests, asked again of b"
    );
    for i in all_indices(&m) {
        let asked = d.log.requests_for(Want::Chunk(i));
        if before.contains(&i) {
            assert_eq!(asked, 1, "verified chunk {i} never asked again");
        } else {
            assert!(asked <= 2, "chunk {i} asked {asked} times");
        }
        assert_eq!(d.log.stores[&i], 1);
    }
    let after_removal = d.log.requests.iter().skip_while(|(_, p, _)| *p != b);
    assert!(after_removal.count() > 0);
}

#[test]
fn a_corrupt_chunk_is_rejected_the_holder_penalised_and_the_chunk_fetched_elsewhere() {
    let bytes = data(8 * CHUNK_SIZE, 5);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut d = Driver::new(&m, vec![(a, store.clone()), (b, store)], limits(), 5);
    d.set(a, Behaviour::Corrupt);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.assembled(), bytes);
    let bad: Vec<u32> = d
        .log
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            FetchEvent::BadChunk { peer, index } if *peer == a => Some(*index),
            _ => None,
        })
        .collect();
    assert!(!bad.is_empty());
    assert!(bad.len() <= 3, "dropped after 3 bad chunks: {bad:?}");
    for i in &bad {
        // Asked of a, then of b, which delivered it.
        let asked: Vec<_> = d
            .log
            .requests
            .iter()
            .filter(|(_, _, w)| *w == Want::Chunk(*i))
            .map(|(_, p, _)| *p)
            .collect();
        assert_eq!(asked, vec![a, b], "chunk {i}");
    }
    // After its first bad chunk, a is not asked again within its backoff.
    let (t_bad, _) = d
        .log
        .events
        .iter()
        .find(|(_, e)| matches!(e, FetchEvent::BadChunk { .. }))
        .unwrap();
    assert!(d
        .log
        .requests
        .iter()
        .filter(|(t, p, _)| *p == a && *t > *t_bad)
        .all(|(t, _, _)| *t >= t_bad + 1_000));
    assert_eq!(d.fetch.stats().bad_chunks, bad.len() as u64);
}

#[test]
fn a_holder_sending_bad_chunks_is_dropped_for_good() {
    let bytes = data(10 * CHUNK_SIZE, 6);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut l = limits();
    l.max_bad_per_holder = 2;
    l.backoff_base_ms = 0;
    l.max_backoff_ms = 0;
    let mut d = Driver::new(&m, vec![(a, store.clone()), (b, store.clone())], l, 2);
    d.set(a, Behaviour::Corrupt);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert!(d
        .log
        .has_event(|e| *e == FetchEvent::HolderDropped { peer: a }));
    let bad = d
        .log
        .events
        .iter()
        .filter(|(_, e)| matches!(e, FetchEvent::BadChunk { .. }))
        .count();
    assert_eq!(bad, 2);
    assert_eq!(d.fetch.holders().copied().collect::<Vec<_>>(), vec![b]);
    // The driver cannot bring it back.
    assert!(!d.fetch.add_holder(0, a));

    // With the bad holder alone, the fetch waits for another (it does not fail).
    let mut d = Driver::new(
        &m,
        vec![(a, store.clone())],
        {
            let mut l = limits();
            l.max_bad_per_holder = 1;
            l
        },
        2,
    );
    d.set(a, Behaviour::Corrupt);
    d.run();
    assert!(d.log.done.is_none() && d.log.failed.is_none());
    assert!(d.log.has_event(|e| *e == FetchEvent::NoHolders));
    assert!(d.add_holder(b, store));
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
}

#[test]
fn timeouts_are_retried_on_another_holder_with_backoff() {
    let bytes = data(6 * CHUNK_SIZE, 7);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut d = Driver::new(&m, vec![(a, store.clone()), (b, store)], limits(), 9);
    d.set(a, Behaviour::Silent);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.assembled(), bytes);
    let timed_out: Vec<(u64, Want)> = d
        .log
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            FetchEvent::TimedOut { peer, what } => {
                assert_eq!(*peer, a);
                Some((*t, *what))
            }
            _ => None,
        })
        .collect();
    assert!(!timed_out.is_empty());
    for (t, what) in &timed_out {
        // Asked again, of b, at the moment it timed out.
        let retry = d
            .log
            .requests
            .iter()
            .filter(|(rt, _, w)| w == what && rt >= t)
            .map(|(rt, p, _)| (*rt, *p))
            .next();
        assert_eq!(retry, Some((*t, b)), "{what:?}");
    }
    // Requests to a are spaced by the timeout plus a growing backoff.
    let to_a: Vec<u64> = d
        .log
        .requests
        .iter()
        .filter(|(_, p, _)| *p == a)
        .map(|(t, _, _)| *t)
        .collect();
    for w in to_a.windows(2) {
        assert!(w[1] == w[0] || w[1] >= w[0] + 10_000 + 1_000, "{to_a:?}");
    }
    assert_eq!(d.fetch.stats().timeouts, timed_out.len() as u64);
}

#[test]
fn a_silent_only_holder_fails_the_fetch_after_the_attempts() {
    let bytes = data(CHUNK_SIZE, 8);
    let (store, m) = full_store(&bytes);
    let mut l = limits();
    l.max_attempts_per_chunk = 3;
    let mut d = Driver::new(&m, vec![(peer(1), store)], l, 0);
    d.set(peer(1), Behaviour::Silent);
    d.run();
    assert_eq!(
        d.log.failed,
        Some(FetchError::Attempts {
            what: Want::Manifest,
            attempts: 3
        })
    );
    let times: Vec<u64> = d.log.requests.iter().map(|(t, _, _)| *t).collect();
    // Timeout, then backoff 1 s, then timeout, then 2 s.
    assert_eq!(times, vec![0, 11_000, 23_000]);
    assert!(d.fetch.is_finished() && !d.fetch.is_done());
    assert_eq!(d.fetch.poll_timeout(), None);
    // Nothing more happens after the end.
    d.fetch.handle_timeout(1_000_000);
    assert!(!d.fetch.add_holder(1_000_000, peer(3)));
    assert_eq!(d.fetch.poll_action(), None);
}

#[test]
fn a_fetch_with_no_holders_waits_and_reports() {
    let bytes = data(3 * CHUNK_SIZE, 9);
    let (store, m) = full_store(&bytes);
    let mut d = Driver::new(&m, vec![], limits(), 0);
    assert_eq!(
        d.log
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect::<Vec<_>>(),
        vec![FetchEvent::NoHolders]
    );
    assert!(d.log.requests.is_empty());
    assert_eq!(d.fetch.poll_timeout(), None);
    d.run();
    assert!(!d.fetch.is_finished());
    // A holder that has nothing: reported again once it said so.
    assert!(d.add_holder(peer(1), tabmesh_blobs::MemoryBlobs::new()));
    d.run();
    assert_eq!(d.log.requests.len(), 1);
    let stuck = d
        .log
        .events
        .iter()
        .filter(|(_, e)| *e == FetchEvent::NoHolders)
        .count();
    assert_eq!(stuck, 2);
    // One with only chunk 0 (and the manifest), then one with the rest.
    assert!(d.add_holder(peer(2), partial_store(&bytes, |i| i == 0)));
    d.run();
    assert!(!d.fetch.is_finished());
    assert_eq!(d.fetch.have_bytes(), CHUNK_SIZE as u64);
    assert_eq!(d.fetch.total(), Some(bytes.len() as u64));
    assert!(d.add_holder(peer(3), store));
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.assembled(), bytes);
    // Nobody was asked for what it said it lacked.
    assert_eq!(d.log.requests_to(peer(1)), 1);
    assert_eq!(d.fetch.stats().missing, 3);
}

#[test]
fn a_holder_added_again_is_asked_again_for_what_it_lacked() {
    let bytes = data(2 * CHUNK_SIZE, 10);
    let (full, m) = full_store(&bytes);
    let mut d = Driver::new(
        &m,
        vec![(peer(1), partial_store(&bytes, |i| i == 0))],
        limits(),
        0,
    );
    d.run();
    assert!(!d.fetch.is_finished());
    // It fetched the rest meanwhile and announces the blob again.
    assert!(d.add_holder(peer(1), full));
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.log.requests_for(Want::Chunk(1)), 2);
}

#[test]
fn a_bad_manifest_is_reported_and_fetched_elsewhere() {
    let bytes = data(2 * CHUNK_SIZE, 11);
    let (store, m) = full_store(&bytes);
    let (other, om) = full_store(&data(100, 12));
    let (a, b) = (peer(1), peer(2));
    let mut d = Driver::new(&m, vec![(a, store.clone()), (b, store)], limits(), 1);
    let (asked, what) = (d.log.requests[0].1, d.log.requests[0].2);
    assert_eq!(what, Want::Manifest);
    d.net.clear();
    // The asked holder answers with another blob's manifest.
    let wrong = tabmesh_blobs::serve(
        &other,
        &tabmesh_blobs::BlobRequest {
            blob: om.id,
            what: Want::Manifest,
        },
    )
    .response;
    let BlobResponse::Manifest { bytes: wrong, .. } = wrong else {
        panic!()
    };
    d.deliver(
        asked,
        BlobResponse::Manifest {
            blob: m.id,
            bytes: wrong,
        },
    );
    assert!(d.log.has_event(|e| matches!(
        e,
        FetchEvent::BadManifest {
            peer,
            error: BlobError::WrongBlob { .. }
        } if *peer == asked
    )));
    let next = d.log.requests.last().unwrap();
    assert_eq!(next.2, Want::Manifest);
    assert_ne!(next.1, asked);
    // Garbage from the other one.
    d.net.clear();
    d.deliver(
        next.1,
        BlobResponse::Manifest {
            blob: m.id,
            bytes: vec![1, 2, 3],
        },
    );
    assert_eq!(d.fetch.stats().bad_manifests, 2);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
}

#[test]
fn a_blob_over_the_callers_limit_fails_typed() {
    let bytes = data(CHUNK_SIZE + 10, 13);
    let (store, m) = full_store(&bytes);
    let mut l = limits();
    l.max_blob_len = CHUNK_SIZE as u64;
    let mut d = Driver::new(&m, vec![(peer(1), store)], l.clone(), 0);
    d.run();
    assert_eq!(
        d.log.failed,
        Some(FetchError::TooLarge {
            len: CHUNK_SIZE as u64 + 10,
            max: CHUNK_SIZE as u64
        })
    );
    assert!(d.log.manifests.is_empty());
    assert!(matches!(
        Fetch::resume(0, m, [], [], l, 0),
        Err(BlobError::TooLarge { .. })
    ));
}

#[test]
fn limits_a_fetch_cannot_run_with_are_refused() {
    let id = tabmesh_blobs::BlobId([0; 32]);
    let cases: Vec<fn(&mut Limits)> = vec![
        |l| l.max_in_flight_chunks = 0,
        |l| l.max_in_flight_chunks = 65,
        |l| l.max_in_flight_bytes = CHUNK_SIZE - 1,
        |l| l.max_in_flight_bytes = MAX_IN_FLIGHT_BYTES + 1,
        |l| l.request_timeout_ms = 0,
        |l| l.max_attempts_per_chunk = 0,
        |l| l.max_bad_per_holder = 0,
        |l| l.max_backoff_ms = l.backoff_base_ms - 1,
        |l| l.max_holders = 0,
        |l| l.max_blob_len = tabmesh_blobs::MAX_BLOB_LEN + 1,
    ];
    for (n, f) in cases.into_iter().enumerate() {
        let mut l = limits();
        f(&mut l);
        assert!(
            matches!(
                Fetch::new(0, id, [], l, 0),
                Err(BlobError::InvalidLimits { .. })
            ),
            "case {n}"
        );
    }
    limits().validate().unwrap();
}

#[test]
fn the_same_seed_gives_the_same_actions() {
    let bytes = data(9 * CHUNK_SIZE, 14);
    let (store, m) = full_store(&bytes);
    let run = |seed| {
        let holders = (1..=4).map(|n| (peer(n), store.clone())).collect();
        let mut d = Driver::new(&m, holders, limits(), seed);
        d.set(peer(2), Behaviour::Silent);
        d.run();
        assert!(d.log.done.is_some());
        d.log.requests
    };
    assert_eq!(run(1), run(1));
    let differs = (2..10).any(|s| run(s) != run(1));
    assert!(differs, "the seed picks among equally good holders");
}

#[test]
fn answers_from_strangers_and_for_other_blobs_are_ignored() {
    let bytes = data(2 * CHUNK_SIZE, 15);
    let (store, m) = full_store(&bytes);
    let a = peer(1);
    let mut d = Driver::new(&m, vec![(a, store.clone())], limits(), 0);
    d.step();
    let good = d.answer_of(a, Want::Chunk(0)).unwrap();
    // A stranger's valid chunk is not taken.
    d.deliver(peer(9), good.clone());
    assert!(d.log.stored.is_empty());
    // An answer about another blob.
    let BlobResponse::Chunk { index, bytes, .. } = good else {
        panic!()
    };
    d.deliver(
        a,
        BlobResponse::Chunk {
            blob: tabmesh_blobs::BlobId([3; 32]),
            index,
            bytes,
        },
    );
    assert!(d.log.stored.is_empty());
    assert_eq!(d.fetch.stats().ignored, 2);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    // After the end, everything is ignored.
    d.fetch.on_chunk(0, a, 0, vec![1]);
    assert_eq!(d.fetch.poll_action(), None);
}

#[test]
fn a_holder_that_leaves_and_comes_back_keeps_its_strikes() {
    // Two bad chunks, a disconnect and a reconnect, one more bad chunk: dropped (max 3).
    let bytes = data(8 * CHUNK_SIZE, 11);
    let (_, manifest) = full_store(&bytes);
    let limits = Limits::default();
    assert_eq!(limits.max_bad_per_holder, 3);
    let a = peer(1);
    let mut f = Fetch::resume(0, manifest, [], [a], limits, 7).unwrap();
    let mut now = 0;
    // Chunks asked of the holder and not answered yet.
    let mut asked: std::collections::VecDeque<u32> = std::collections::VecDeque::new();
    let bad = |f: &mut Fetch, asked: &mut std::collections::VecDeque<u32>, now: u64| {
        asked.extend(
            std::iter::from_fn(|| f.poll_action()).filter_map(|act| match act {
                tabmesh_blobs::FetchAction::Request {
                    what: Want::Chunk(i),
                    ..
                } => Some(i),
                _ => None,
            }),
        );
        let i = asked.pop_front().expect("a chunk is asked of the holder");
        f.on_chunk(now, a, i, vec![0xEE; 10]);
    };
    for _ in 0..2 {
        bad(&mut f, &mut asked, now);
        now += 60_000; // past any backoff
        f.handle_timeout(now);
    }
    f.remove_holder(now, a);
    asked.clear(); // its requests were released
    assert!(f.add_holder(now, a), "a known, undropped holder comes back");
    now += 60_000;
    f.handle_timeout(now);
    bad(&mut f, &mut asked, now);
    let events: Vec<FetchEvent> = std::iter::from_fn(|| f.poll_action())
        .filter_map(|act| match act {
            tabmesh_blobs::FetchAction::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, FetchEvent::HolderDropped { peer } if *peer == a)),
        "{events:?}"
    );
    assert!(!f.add_holder(now, a), "a dropped holder stays dropped");
}
