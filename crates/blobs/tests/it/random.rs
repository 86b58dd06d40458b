//! Seeded random schedules: holders that lose, delay, duplicate, corrupt, lack chunks, leave and
//! come back, under random limits. Every run must end `Done` with every chunk verified and stored
//! once, or `Failed` with a typed reason — with the in-flight bounds held after every action
//! (checked by the driver) and no panic.

use std::collections::BTreeMap;

use tabmesh_testkit::{for_seeds, test, DetRng};

use tabmesh_base::NodeId;
use tabmesh_blobs::{BlobResponse, FetchError, FetchEvent, Limits, MemoryBlobs, Want, CHUNK_SIZE};

use super::support::{data, full_store, partial_store, peer, Driver};

/// How one holder misbehaves (probabilities per answer).
#[derive(Clone, Copy, Debug)]
struct Traits {
    loss: f64,
    corrupt: f64,
    late: f64,
    duplicate: f64,
}

/// A message on its way: an answer `peer` will give to `what` at `at`.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    at: u64,
    peer: NodeId,
    what: Want,
}

fn random_limits(rng: &mut DetRng) -> Limits {
    let mut l = Limits::default();
    l.max_in_flight_chunks = 1 + rng.index(6);
    l.max_in_flight_bytes = CHUNK_SIZE + rng.index(1024 * 1024 - CHUNK_SIZE + 1);
    l.request_timeout_ms = 500 + rng.below(3_000);
    l.max_attempts_per_chunk = 3 + rng.below(6) as u32;
    l.max_bad_per_holder = 1 + rng.below(3) as u32;
    l.backoff_base_ms = rng.below(2_000);
    l.max_backoff_ms = l.backoff_base_ms + rng.below(10_000);
    l
}

fn corrupt(rng: &mut DetRng, response: BlobResponse) -> BlobResponse {
    match response {
        BlobResponse::Chunk {
            blob,
            index,
            mut bytes,
        } => match rng.index(3) {
            0 => {
                let at = rng.index(bytes.len());
                bytes[at] ^= 1 << rng.index(8);
                BlobResponse::Chunk { blob, index, bytes }
            }
            1 => {
                bytes.truncate(rng.index(bytes.len()));
                BlobResponse::Chunk { blob, index, bytes }
            }
            _ => BlobResponse::Chunk {
                blob,
                index: index.wrapping_add(1 + rng.below(1_000) as u32),
                bytes,
            },
        },
        BlobResponse::Manifest { blob, mut bytes } => {
            let at = rng.index(bytes.len());
            bytes[at] ^= 1;
            BlobResponse::Manifest { blob, bytes }
        }
        other => other,
    }
}

#[test]
fn random_schedules_end_done_or_failed_within_the_bounds() {
    let mut outcomes = BTreeMap::<&str, u32>::new();
    let mut seen = BTreeMap::<&str, u32>::new();
    for_seeds(0..50, |seed, rng| {
        let len = match rng.index(5) {
            0 => rng.index(3) * CHUNK_SIZE,
            _ => rng.index(5 * CHUNK_SIZE + 1),
        };
        let bytes = data(len, seed);
        let (full, m) = full_store(&bytes);
        let count = m.chunk_count();
        let limits = random_limits(rng);

        // 1 to 4 holders, some with part of the blob, each with its own faults.
        let n = 1 + rng.index(4);
        let mut traits = BTreeMap::new();
        let mut holders = Vec::new();
        for k in 0..n {
            let p = peer(k as u8 + 1);
            let store = if rng.chance(0.3) {
                let keep: Vec<bool> = (0..count).map(|_| rng.chance(0.6)).collect();
                partial_store(&bytes, |i| keep[i as usize])
            } else if rng.chance(0.1) {
                MemoryBlobs::new()
            } else {
                full.clone()
            };
            let bad = rng.chance(0.3);
            traits.insert(
                p,
                Traits {
                    loss: if rng.chance(0.5) {
                        rng.below(40) as f64 / 100.0
                    } else {
                        0.0
                    },
                    corrupt: if bad {
                        0.2 + rng.below(80) as f64 / 100.0
                    } else {
                        0.0
                    },
                    late: rng.below(30) as f64 / 100.0,
                    duplicate: rng.below(10) as f64 / 100.0,
                },
            );
            holders.push((p, store));
        }
        let mut d = Driver::new(&m, holders, limits.clone(), seed);
        let mut net: Vec<InFlight> = Vec::new();
        let mut next_peer = n as u8 + 1;
        let mut removed: Vec<(NodeId, MemoryBlobs)> = Vec::new();

        for step in 0..20_000 {
            if d.fetch.is_finished() {
                break;
            }
            assert!(step < 19_999, "seed {seed}: no end");
            // New requests enter the network with their fate decided now.
            while let Some((p, what)) = d.net.pop_front() {
                let t = traits[&p];
                if rng.chance(t.loss) {
                    continue;
                }
                let delay = if rng.chance(t.late) {
                    limits.request_timeout_ms + rng.below(limits.request_timeout_ms)
                } else {
                    1 + rng.below(limits.request_timeout_ms / 2)
                };
                net.push(InFlight {
                    at: d.now + delay,
                    peer: p,
                    what,
                });
                if rng.chance(t.duplicate) {
                    net.push(InFlight {
                        at: d.now + delay + 1,
                        peer: p,
                        what,
                    });
                }
            }
            // Now and then, a holder leaves or one comes back.
            if rng.chance(0.02) {
                let present: Vec<NodeId> = d.stores.keys().copied().collect();
                if let Some(&p) = rng.pick(&present) {
                    let store = d.stores[&p].clone();
                    d.remove_holder(p);
                    removed.push((p, store));
                }
            } else if rng.chance(0.02) && !removed.is_empty() {
                let (p, store) = removed.remove(rng.index(removed.len()));
                d.add_holder(p, store);
            }
            // The next thing to happen: a delivery or the fetch's own timer.
            let next_msg = net.iter().map(|m| m.at).min();
            let next_timer = d.fetch.poll_timeout();
            let deliver = match (next_msg, next_timer) {
                (Some(at), Some(t)) => at <= t,
                (msg, _) => msg.is_some(),
            };
            if deliver {
                let at = next_msg.unwrap();
                let pos = net.iter().position(|m| m.at == at).unwrap();
                let msg = net.remove(pos);
                d.now = d.now.max(msg.at);
                // Answers from a holder that left are still delivered: the fetch ignores them.
                let Some(mut response) = d.answer_of(msg.peer, msg.what) else {
                    continue;
                };
                if rng.chance(traits.get(&msg.peer).map_or(0.0, |t| t.corrupt)) {
                    response = corrupt(rng, response);
                }
                d.deliver(msg.peer, response);
            } else if let Some(t) = next_timer {
                d.now = d.now.max(t);
                d.fetch.handle_timeout(d.now);
                d.drain();
            } else {
                // Stuck: nobody can be asked. A fresh, honest holder arrives.
                assert!(
                    d.log.has_event(|e| *e == FetchEvent::NoHolders),
                    "seed {seed}: stuck without saying so"
                );
                let p = peer(next_peer);
                next_peer += 1;
                traits.insert(
                    p,
                    Traits {
                        loss: 0.0,
                        corrupt: 0.0,
                        late: 0.0,
                        duplicate: 0.0,
                    },
                );
                assert!(d.add_holder(p, full.clone()), "seed {seed}");
            }
        }
        match (&d.log.done, &d.log.failed) {
            (Some(done), None) => {
                assert_eq!(*done, m);
                assert_eq!(d.assembled(), bytes, "seed {seed}");
                assert!(d.log.stores.values().all(|n| *n == 1));
                assert_eq!(d.log.progress.last(), Some(&(len as u64, len as u64)));
                *outcomes.entry("done").or_default() += 1;
            }
            (None, Some(FetchError::Attempts { what, attempts })) => {
                assert_eq!(*attempts, limits.max_attempts_per_chunk, "seed {seed}");
                if let Want::Chunk(i) = what {
                    assert!(*i < count && !d.log.stored.contains_key(i));
                }
                *outcomes.entry("failed").or_default() += 1;
            }
            other => panic!("seed {seed}: ended with {other:?}"),
        }
        assert!(d.fetch.is_finished());
        assert_eq!(d.fetch.poll_timeout(), None);
        for (_, e) in &d.log.events {
            let kind = match e {
                FetchEvent::BadChunk { .. } => "bad chunk",
                FetchEvent::BadManifest { .. } => "bad manifest",
                FetchEvent::TimedOut { .. } => "timeout",
                FetchEvent::HolderDropped { .. } => "dropped",
                FetchEvent::NoHolders => "no holders",
                _ => "other",
            };
            *seen.entry(kind).or_default() += 1;
        }
    });
    // Every fault the schedules inject happened somewhere.
    for kind in [
        "bad chunk",
        "bad manifest",
        "timeout",
        "dropped",
        "no holders",
    ] {
        assert!(seen.contains_key(kind), "no {kind} in any seed: {seen:?}");
    }
    // The schedules are harsh enough to fail now and then, and mild enough to finish mostly.
    assert!(
        outcomes.get("done").copied().unwrap_or(0) >= 35,
        "{outcomes:?}"
    );
}
