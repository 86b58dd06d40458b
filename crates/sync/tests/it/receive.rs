//! The receive path: ids recomputed from content, wrong contexts, duplicates, malformed payloads.

use tabmesh_testkit::test;

use tabmesh_base::{DeltaId, Hash, Hlc, MemberId, NodeId};
use tabmesh_dag::DeltaStatus;
use tabmesh_state::{encode_actions, State, StateError, MAX_VALUE_LEN};
use tabmesh_sync::DeltaPayload;
use tabmesh_sync::{
    Envelope, Output, Replica, SyncConfig, SyncError, SyncEvent, MAX_DELTA_PARENTS,
    MAX_DELTA_PAYLOAD,
};

use super::support::{drain_outputs, events_in, map_entries, Sim, CTX, MAP, OTHER_CTX, T0};

const PEER: NodeId = NodeId([9; 32]);

fn lone(seed: u64) -> Replica {
    let mut r = Replica::new(CTX, b"lone/", SyncConfig::default(), seed, T0);
    drain_outputs(&mut r);
    r
}

/// The deltas a writer broadcast for `writes` puts on its own fresh replica.
fn writer_deltas(writes: &[(&[u8], &[u8])]) -> Vec<Envelope> {
    let mut sim = Sim::new(1);
    for (k, v) in writes {
        sim.put(0, k, v);
        sim.now += 1;
    }
    sim.nodes[0].broadcasts.clone()
}

fn applied(events: &[SyncEvent]) -> Vec<DeltaId> {
    events
        .iter()
        .flat_map(|e| match e {
            SyncEvent::Applied { ids, .. } => ids.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn a_broadcast_delta_applies_on_every_peer() {
    let mut sim = Sim::new(3);
    let id = sim.put(0, b"k", b"v");
    sim.deliver_all();
    for i in 1..3 {
        assert_eq!(
            sim.entries(i).get(&b"k"[..]).map(Vec::as_slice),
            Some(&b"v"[..])
        );
        assert_eq!(sim.r(i).dag().heads(), vec![id]);
        assert_eq!(sim.applied_ids(i), vec![id]);
        assert_eq!(sim.r(i).metrics().deltas_applied, 1);
    }
    sim.assert_converged();
}

#[test]
fn the_applied_event_follows_the_persist_that_holds_it() {
    let env = writer_deltas(&[(b"k", b"v")]).remove(0);
    let mut r = lone(1);
    r.handle_delta(T0, Some(PEER), env);
    let out = drain_outputs(&mut r);
    let persist = out
        .iter()
        .position(|o| matches!(o, Output::Persist(_)))
        .expect("a persist");
    let event = out
        .iter()
        .position(|o| matches!(o, Output::Event(SyncEvent::Applied { .. })))
        .expect("an applied event");
    assert!(persist < event, "{out:?}");
    match &out[event] {
        Output::Event(SyncEvent::Applied { root, .. }) => assert_eq!(*root, r.state().root_hash()),
        _ => unreachable!(),
    }
}

#[test]
fn every_field_of_an_envelope_is_covered_by_its_id() {
    let env = writer_deltas(&[(b"k", b"v")]).remove(0);
    let base = env.id();
    let mut changed = Vec::new();
    let mut e = env.clone();
    e.context = OTHER_CTX;
    changed.push(e);
    let mut e = env.clone();
    e.author = MemberId([42; 32]);
    changed.push(e);
    let mut e = env.clone();
    e.parents.push(DeltaId([1; 32]));
    changed.push(e);
    let mut e = env.clone();
    e.hlc = Hlc::new(e.hlc.wall_ms, e.hlc.logical + 1);
    changed.push(e);
    let mut e = env.clone();
    e.payload.push(0);
    changed.push(e);
    for e in changed {
        assert_ne!(e.id(), base, "{e:?}");
    }
    assert_eq!(env.clone().id(), base);
}

#[test]
fn a_tampered_payload_is_applied_under_its_own_id_never_the_claimed_one() {
    let deltas = writer_deltas(&[(b"k1", b"v1"), (b"k2", b"v2")]);
    let genuine = deltas[0].clone();
    // Same envelope, payload swapped for another valid one: it hashes to another id.
    let mut tampered = genuine.clone();
    tampered.payload = deltas[1].payload.clone();
    let (genuine_id, tampered_id) = (genuine.id(), tampered.id());
    assert_ne!(genuine_id, tampered_id);

    let mut r = lone(1);
    r.handle_delta(T0, Some(PEER), tampered);
    let events = events_in(&drain_outputs(&mut r));
    assert_eq!(applied(&events), vec![tampered_id]);
    assert_eq!(r.dag().status(&genuine_id), DeltaStatus::Unknown);
    assert_eq!(r.dag().status(&tampered_id), DeltaStatus::Applied);
    assert_eq!(r.dag().heads(), vec![tampered_id]);

    // The genuine delta is still new: not a duplicate of the tampered one.
    r.handle_delta(T0, Some(PEER), genuine);
    let events = events_in(&drain_outputs(&mut r));
    assert_eq!(applied(&events), vec![genuine_id]);
    assert_eq!(r.metrics().duplicates, 0);
    assert_eq!(r.dag().status(&genuine_id), DeltaStatus::Applied);
}

#[test]
fn a_delta_of_another_context_is_rejected() {
    let mut env = writer_deltas(&[(b"k", b"v")]).remove(0);
    env.context = OTHER_CTX;
    let mut r = lone(1);
    r.handle_delta(T0, Some(PEER), env.clone());
    let out = drain_outputs(&mut r);
    assert_eq!(
        events_in(&out),
        vec![SyncEvent::Rejected {
            from: Some(PEER),
            error: SyncError::WrongContext {
                expected: CTX,
                found: OTHER_CTX
            },
        }]
    );
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Persist(_) | Output::Send { .. })));
    assert_eq!(r.state().root_hash(), Hash::ZERO);
    assert_eq!(r.dag().status(&env.id()), DeltaStatus::Unknown);
    assert!(r.dag().heads().is_empty());
}

#[test]
fn duplicates_are_counted_and_change_nothing() {
    let deltas = writer_deltas(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]);
    let mut r = lone(1);
    r.handle_delta(T0, Some(PEER), deltas[0].clone());
    drain_outputs(&mut r);
    let root = r.state().root_hash();
    r.handle_delta(T0, Some(PEER), deltas[0].clone());
    let out = drain_outputs(&mut r);
    assert!(applied(&events_in(&out)).is_empty());
    assert!(
        !out.iter().any(|o| matches!(o, Output::Persist(_))),
        "{out:?}"
    );
    assert_eq!(r.metrics().duplicates, 1);
    assert_eq!(r.metrics().deltas_applied, 1);
    assert_eq!(r.state().root_hash(), root);

    // A pending delta received again is a duplicate too.
    r.handle_delta(T0, Some(PEER), deltas[2].clone());
    drain_outputs(&mut r);
    assert_eq!(r.dag().status(&deltas[2].id()), DeltaStatus::Pending);
    r.handle_delta(T0, Some(PEER), deltas[2].clone());
    drain_outputs(&mut r);
    assert_eq!(r.metrics().duplicates, 2);
    assert_eq!(r.state().root_hash(), root);
}

#[test]
fn a_malformed_payload_is_rejected_and_changes_nothing() {
    let mut r = lone(1);
    let good = writer_deltas(&[(b"k", b"v")]).remove(0);
    r.handle_delta(T0, Some(PEER), good.clone());
    drain_outputs(&mut r);
    let (root, heads) = (r.state().root_hash(), r.dag().heads());

    for payload in [&b""[..], b"\x00", b"\x01garbage", &[0xff; 64]] {
        let bad = Envelope {
            context: CTX,
            author: MemberId([5; 32]),
            parents: vec![good.id()],
            hlc: Hlc::new(T0, 1),
            payload: payload.to_vec(),
        };
        let id = bad.id();
        let before = r.metrics().deltas_rejected;
        r.handle_delta(T0, Some(PEER), bad);
        let events = events_in(&drain_outputs(&mut r));
        match events.as_slice() {
            [SyncEvent::Rejected {
                from: Some(PEER),
                error: SyncError::Rejected { id: rid, .. },
            }] => {
                assert_eq!(*rid, id)
            }
            other => panic!("payload {payload:?}: expected one rejection, got {other:?}"),
        }
        assert_eq!(r.metrics().deltas_rejected, before + 1);
        assert_eq!(r.state().root_hash(), root);
        assert_eq!(r.dag().heads(), heads);
        assert_eq!(r.dag().status(&id), DeltaStatus::Unknown);
    }
    assert_eq!(map_entries(&r).len(), 1);
}

#[test]
fn a_payload_the_state_refuses_is_rejected_with_the_state_error() {
    // A valid action encoding whose join the state refuses: the same field as another CRDT type.
    let mut writer = Sim::new(2);
    writer.write(0, |t| t.register("f")?.set(b"x"));
    writer.write(1, |t| t.counter("f")?.increment(1));
    let (as_register, as_counter) = (
        writer.nodes[0].broadcasts[0].clone(),
        writer.nodes[1].broadcasts[0].clone(),
    );

    let mut r = lone(1);
    r.handle_delta(T0, Some(PEER), as_register);
    drain_outputs(&mut r);
    let root = r.state().root_hash();
    r.handle_delta(T0, Some(PEER), as_counter.clone());
    let events = events_in(&drain_outputs(&mut r));
    assert!(
        matches!(
            events.as_slice(),
            [SyncEvent::Rejected {
                error: SyncError::Rejected {
                    reason: StateError::KindMismatch { .. },
                    ..
                },
                ..
            }]
        ),
        "{events:?}"
    );
    assert_eq!(r.state().root_hash(), root);
    assert_eq!(r.dag().status(&as_counter.id()), DeltaStatus::Unknown);
}

#[test]
fn a_delta_with_too_many_parents_is_rejected() {
    let mut r = lone(1);
    let env = Envelope {
        context: CTX,
        author: MemberId([5; 32]),
        parents: (0..=MAX_DELTA_PARENTS)
            .map(|i| DeltaId([i as u8; 32]))
            .collect(),
        hlc: Hlc::new(T0, 0),
        payload: writer_deltas(&[(b"k", b"v")]).remove(0).payload,
    };
    r.handle_delta(T0, Some(PEER), env);
    let events = events_in(&drain_outputs(&mut r));
    assert!(
        matches!(
            events.as_slice(),
            [SyncEvent::Rejected {
                error: SyncError::Dag(_),
                ..
            }]
        ),
        "{events:?}"
    );
    assert_eq!(r.metrics().deltas_rejected, 1);
    assert_eq!(
        r.dag().stats(T0).pending,
        0,
        "a refused delta is not buffered"
    );
    assert_eq!(
        r.dag().stats(T0).missing,
        0,
        "and its parents are not pulled"
    );
}

#[test]
fn a_payload_over_the_delta_limit_is_refused_as_too_large() {
    // A well-formed delta whose payload (valid actions) is over MAX_DELTA_PAYLOAD. The codec
    // refuses it on the wire; handed over by other means (`handle_delta` takes an `Envelope`), it
    // must be refused as well, with the error the crate defines for it: once applied, this replica
    // would serve it in `Deltas` responses that no peer can decode.
    let mut big = State::new(b"big/");
    let mut t = big.txn(MemberId([5; 32]), Hlc::new(T0, 0));
    let value = vec![1u8; MAX_VALUE_LEN];
    for k in 0..(MAX_DELTA_PAYLOAD / MAX_VALUE_LEN + 1) {
        t.map(MAP).unwrap().insert(&[k as u8], &value).unwrap();
    }
    let actions = t.commit().actions;
    // Over the limit, `DeltaPayload::encode` refuses; lay it out by hand as the format says.
    assert!(DeltaPayload::actions(actions.clone()).encode().is_err());
    let mut w = tabmesh_base::codec::Writer::new();
    w.u8(tabmesh_sync::PAYLOAD_FORMAT)
        .bytes(&encode_actions(&actions).unwrap())
        .len(0)
        .u8(0);
    let payload = w.finish();
    assert!(payload.len() > MAX_DELTA_PAYLOAD);
    let env = Envelope {
        context: CTX,
        author: MemberId([5; 32]),
        parents: vec![],
        hlc: Hlc::new(T0, 0),
        payload,
    };
    let len = env.payload.len();

    let mut r = lone(1);
    r.handle_delta(T0, Some(PEER), env.clone());
    let events = events_in(&drain_outputs(&mut r));
    assert_eq!(
        events,
        vec![SyncEvent::Rejected {
            from: Some(PEER),
            error: SyncError::PayloadTooLarge {
                len,
                max: MAX_DELTA_PAYLOAD
            },
        }]
    );
    assert_eq!(r.state().root_hash(), Hash::ZERO);
    assert_eq!(r.dag().status(&env.id()), DeltaStatus::Unknown);
}

#[test]
fn concurrent_deltas_merge_into_one_state_whatever_the_order() {
    // Two writers on the same genesis, each delta delivered to a third in both orders.
    let mut sim = Sim::new(2);
    let g = sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(0, b"a", b"1");
    sim.put(1, b"b", b"2");
    sim.write(1, |t| t.counter("c")?.increment(2));
    sim.write(0, |t| t.counter("c")?.increment(3));
    let mut all: Vec<Envelope> = sim.nodes[0].broadcasts.clone();
    all.extend(sim.nodes[1].broadcasts.iter().cloned());
    assert_eq!(all[0].id(), g);

    let mut roots = Vec::new();
    for order in [
        vec![0, 1, 2, 3, 4],
        vec![0, 4, 3, 2, 1],
        vec![0, 3, 1, 4, 2],
    ] {
        let mut r = lone(7);
        for k in order {
            r.handle_delta(T0, Some(PEER), all[k].clone());
            drain_outputs(&mut r);
        }
        assert!(!r.has_pending());
        assert_eq!(r.state().counter("c").unwrap().value(), 5);
        assert_eq!(map_entries(&r).len(), 3);
        roots.push(r.state().root_hash());
    }
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
}
