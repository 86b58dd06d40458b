//! Answers a fetch did not ask for, late, duplicated, truncated or out of range.

use tabmesh_testkit::test;

use tabmesh_base::NodeId;
use tabmesh_blobs::{BlobResponse, FetchEvent, Limits, Want, CHUNK_SIZE};

use super::support::{data, full_store, peer, Behaviour, Driver};

fn chunk(d: &Driver, index: u32) -> Vec<u8> {
    let BlobResponse::Chunk { bytes, .. } = d.answer_of(peer(1), Want::Chunk(index)).unwrap()
    else {
        panic!()
    };
    bytes
}

fn send(d: &mut Driver, from: NodeId, index: u32, bytes: Vec<u8>) {
    let blob = d.manifest.id;
    d.deliver(from, BlobResponse::Chunk { blob, index, bytes });
}

#[test]
fn out_of_range_truncated_and_padded_chunks_are_bad() {
    let bytes = data(4 * CHUNK_SIZE + 9, 1);
    let (store, m) = full_store(&bytes);
    let mut l = Limits::default();
    l.max_bad_per_holder = 10;
    let mut d = Driver::new(&m, vec![(peer(1), store.clone()), (peer(2), store)], l, 0);
    d.step(); // the manifest
    let good = chunk(&d, 4);
    send(&mut d, peer(2), 5, good.clone());
    send(&mut d, peer(2), u32::MAX, vec![]);
    send(&mut d, peer(2), 4, good[..good.len() - 1].to_vec());
    let mut padded = good.clone();
    padded.push(0);
    send(&mut d, peer(2), 4, padded);
    send(&mut d, peer(2), 0, vec![0; CHUNK_SIZE]);
    let bad: Vec<u32> = d
        .log
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            FetchEvent::BadChunk { peer: p, index } if *p == peer(2) => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(bad, vec![5, u32::MAX, 4, 4, 0]);
    assert!(d.log.stored.is_empty());
    // Unsolicited bad chunks penalise the sender but charge no attempt: the fetch still finishes.
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.assembled(), bytes);
}

#[test]
fn a_duplicate_or_unsolicited_good_chunk_is_stored_once() {
    let bytes = data(6 * CHUNK_SIZE, 2);
    let (store, m) = full_store(&bytes);
    let mut d = Driver::new(
        &m,
        vec![(peer(1), store.clone()), (peer(2), store)],
        Limits::default(),
        0,
    );
    d.step();
    // Chunk 5 is not asked yet (the window is 0..4): a holder pushing it is fine.
    assert!(!d.outstanding.contains_key(&Want::Chunk(5)));
    let five = chunk(&d, 5);
    send(&mut d, peer(2), 5, five.clone());
    assert_eq!(d.log.stores.get(&5), Some(&1));
    send(&mut d, peer(1), 5, five.clone());
    send(&mut d, peer(2), 5, five);
    assert_eq!(d.log.stores.get(&5), Some(&1));
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.log.requests_for(Want::Chunk(5)), 0);
    assert!(d.fetch.stats().ignored >= 2);
}

#[test]
fn a_late_answer_is_accepted_and_ends_the_retry() {
    let bytes = data(2 * CHUNK_SIZE, 3);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut l = Limits::default();
    l.max_in_flight_chunks = 1;
    let mut d = Driver::new(&m, vec![(a, store.clone()), (b, store)], l, 0);
    d.step(); // the manifest
    let (&what, &first) = d.outstanding.iter().next().unwrap();
    let Want::Chunk(index) = what else { panic!() };
    d.net.clear();
    // The request times out and moves to the other holder.
    assert!(d.advance());
    let retry = d.outstanding[&what];
    assert_ne!(retry, first);
    // Then the first holder's answer arrives after all: stored, and the retry ends.
    let late = chunk(&d, index);
    send(&mut d, first, index, late);
    assert_eq!(d.log.stores.get(&index), Some(&1));
    assert!(!d.outstanding.contains_key(&what));
    // Its slot went to the next chunk at once.
    assert_eq!(d.outstanding.len(), 1);
    d.net.retain(|(_, w)| *w != what);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
    assert_eq!(d.assembled(), bytes);
}

#[test]
fn missing_answers_that_make_no_sense_are_ignored() {
    let bytes = data(2 * CHUNK_SIZE, 4);
    let (store, m) = full_store(&bytes);
    let a = peer(1);
    let mut d = Driver::new(&m, vec![(a, store)], Limits::default(), 0);
    let blob = m.id;
    // A chunk's "missing" before the manifest is known, and one past the end after.
    d.deliver(
        a,
        BlobResponse::Missing {
            blob,
            what: Want::Chunk(0),
        },
    );
    d.step();
    d.deliver(
        a,
        BlobResponse::Missing {
            blob,
            what: Want::Chunk(2),
        },
    );
    d.deliver(
        a,
        BlobResponse::Missing {
            blob,
            what: Want::Manifest,
        },
    );
    assert_eq!(d.fetch.stats().missing, 0);
    assert_eq!(d.fetch.stats().ignored, 3);
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
}

#[test]
fn a_clock_going_backwards_changes_nothing() {
    let bytes = data(3 * CHUNK_SIZE, 5);
    let (store, m) = full_store(&bytes);
    let (a, b) = (peer(1), peer(2));
    let mut d = Driver::new(
        &m,
        vec![(a, store.clone()), (b, store)],
        Limits::default(),
        0,
    );
    d.set(a, Behaviour::Silent);
    d.now = 5_000;
    d.fetch.handle_timeout(5_000);
    d.drain();
    d.now = 0;
    d.fetch.handle_timeout(0);
    d.drain();
    d.run();
    assert_eq!(d.log.done.as_ref(), Some(&m));
}
