//! Merkle comparison: bidirectional repair of replicas that diverged without shared DAG history,
//! and the rule that success is never claimed while the roots differ.

use tabmesh_testkit::test;

use tabmesh_base::{Hlc, MemberId};
use tabmesh_dag::DeltaStatus;
use tabmesh_state::State;
use tabmesh_sync::{Protocol, Request, SessionFailure, SessionOutcome, SyncEvent};

use super::support::{merkle_config, node_id, Sim, MAP};

/// Nodes 0 and 1 share a genesis, then write apart (broadcasts dropped): unique entries on both
/// sides, one deletion each, a concurrent counter and a concurrent register. Node 0 has more
/// deltas, so with [`merkle_config`] node 1's session picks Merkle comparison.
fn diverged() -> Sim {
    let mut sim = Sim::manual_with(2, merkle_config());
    sim.write(0, |t| {
        let mut m = t.map(MAP)?;
        m.insert(b"shared1", b"s1")?;
        m.insert(b"shared2", b"s2")?;
        m.insert(b"shared3", b"s3")
    });
    sim.deliver_all();
    assert_eq!(sim.root(0), sim.root(1));
    sim.drop_broadcasts = true;
    for k in 1..=5u8 {
        sim.put(0, &[b'a', k], b"from a");
    }
    sim.del(0, b"shared1");
    sim.write(0, |t| t.counter("c")?.increment(2));
    sim.put(0, b"both", b"a");
    for k in 1..=3u8 {
        sim.put(1, &[b'b', k], b"from b");
    }
    sim.del(1, b"shared2");
    sim.write(1, |t| t.counter("c")?.increment(3));
    sim.put(1, b"both", b"b");
    assert!(sim.r(0).summary().applied > sim.r(1).summary().applied);
    sim.log.clear();
    sim
}

fn expected_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![b"both".to_vec(), b"shared3".to_vec()];
    keys.extend((1..=5u8).map(|k| vec![b'a', k]));
    keys.extend((1..=3u8).map(|k| vec![b'b', k]));
    keys.sort();
    keys
}

fn check_repaired(sim: &Sim) {
    sim.assert_converged();
    for i in 0..2 {
        let keys: Vec<Vec<u8>> = sim.entries(i).into_keys().collect();
        assert_eq!(keys, expected_keys(), "node {i}");
        assert_eq!(
            sim.r(i).state().counter("c").unwrap().value(),
            5,
            "node {i}"
        );
        assert!(!sim.r(i).has_pending());
    }
}

#[test]
fn diverged_replicas_repair_bidirectionally_in_one_session() {
    let mut sim = diverged();
    sim.sync_now(1);
    sim.deliver_all();
    let id0 = node_id(0);
    match sim.sessions(1).as_slice() {
        [(p, Protocol::MerkleCompare, SessionOutcome::Converged { pulled, pushed })] => {
            assert_eq!(*p, id0);
            assert!(
                *pulled > 0 && *pushed > 0,
                "pulled {pulled}, pushed {pushed}"
            );
        }
        other => panic!("{other:?}"),
    }
    // One session of node 1 repaired both sides: node 0 ran none.
    assert!(sim.sessions(0).is_empty());
    assert!(sim.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::StateReplaced { .. })));
    assert!(sim.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::StateReplaced { .. })));
    let m = sim.r(1).metrics();
    assert!(m.entities_pulled > 0 && m.entities_pushed > 0);
    assert_eq!(m.sessions[2], 1);
    assert!(sim.requests_sent(1, 0, |r| matches!(r, Request::Tree { .. })) >= 1);
    assert!(sim.requests_sent(1, 0, |r| matches!(r, Request::Push { .. })) >= 1);
    check_repaired(&sim);
}

#[test]
fn after_a_repair_new_writes_on_both_sides_still_propagate() {
    let mut sim = diverged();
    sim.sync_now(1);
    sim.deliver_all();
    check_repaired(&sim);
    sim.drop_broadcasts = false;
    sim.put(0, b"after a", b"1");
    sim.deliver_all();
    sim.put(1, b"after b", b"2");
    sim.deliver_all();
    sim.write(0, |t| t.counter("c")?.increment(10));
    sim.deliver_all();
    for i in 0..2 {
        assert!(
            !sim.r(i).has_pending(),
            "node {i} has deltas waiting; it refused {:?}",
            sim.rejections(i)
        );
        assert_eq!(sim.entries(i).len(), expected_keys().len() + 2, "node {i}");
        assert_eq!(sim.r(i).state().counter("c").unwrap().value(), 15);
    }
    sim.assert_converged();
}

#[test]
fn success_is_never_claimed_while_the_roots_differ() {
    let mut sim = diverged();
    sim.sync_now(1);
    // Run the walk up to the verification: node 1's second summary request.
    let found = sim.deliver_until(|s, p| {
        p.from == 1
            && matches!(p.request(), Some(Request::Summary))
            && s.requests_sent(1, 0, |r| matches!(r, Request::Summary)) == 1
    });
    assert!(found, "no verification step");
    // The peer writes between the walk and the verification.
    let late = sim.put(0, b"late", b"!");
    sim.deliver_all();
    let (root0, root1) = (sim.root(0), sim.root(1));
    assert_ne!(root0, root1);
    match sim.sessions(1).as_slice() {
        [(_, Protocol::MerkleCompare, SessionOutcome::Diverged { local, remote })] => {
            assert_eq!((*local, *remote), (root1, root0));
        }
        other => panic!("expected a diverged session, got {other:?}"),
    }
    assert_eq!(sim.r(1).metrics().sessions_diverged, 1);
    // Nothing of the peer's DAG was recorded as covered.
    assert_eq!(sim.r(1).dag().status(&late), DeltaStatus::Unknown);

    // The next session repairs the rest.
    sim.sync_now(1);
    sim.deliver_all();
    assert!(
        matches!(
            sim.sessions(1).last(),
            Some((_, Protocol::MerkleCompare, SessionOutcome::Converged { .. }))
        ),
        "{:?}",
        sim.sessions(1)
    );
    sim.assert_converged();
    assert_eq!(
        sim.entries(1).get(&b"late"[..]).map(Vec::as_slice),
        Some(&b"!"[..])
    );
}

#[test]
fn a_local_write_during_the_walk_is_not_reported_as_converged() {
    let mut sim = diverged();
    sim.sync_now(1);
    let found = sim.deliver_until(|s, p| {
        p.from == 1
            && matches!(p.request(), Some(Request::Summary))
            && s.requests_sent(1, 0, |r| matches!(r, Request::Summary)) == 1
    });
    assert!(found);
    sim.put(1, b"mine", b"!");
    sim.deliver_all();
    assert!(
        matches!(
            sim.sessions(1).as_slice(),
            [(_, _, SessionOutcome::Diverged { .. })]
        ),
        "{:?}",
        sim.sessions(1)
    );
}

#[test]
fn same_heads_with_different_states_are_repaired() {
    let mut sim = Sim::manual(3);
    let g = sim.put(0, b"g", b"0");
    sim.deliver_all();
    // Node 1 receives a repair push (state without a delta) from node 2.
    let mut other = State::new(b"x/");
    let mut t = other.txn(MemberId([99; 32]), Hlc::new(sim.now, 5));
    t.map(MAP).unwrap().insert(b"pushed", b"p").unwrap();
    t.commit();
    let entities = other.entities().cloned().collect();
    let now = sim.now;
    sim.nodes[1]
        .replica
        .handle_request(now, node_id(2), 1, Request::Push { entities });
    sim.drain(1);
    sim.queue.clear();
    assert_eq!(sim.r(0).dag().heads(), vec![g]);
    assert_eq!(sim.r(1).dag().heads(), vec![g]);
    assert_ne!(sim.root(0), sim.root(1));

    // Node 0 syncs with node 1 (node 2 agrees with it: not a candidate).
    let now = sim.now;
    sim.nodes[0].replica.remove_peer(now, node_id(2));
    sim.drain(0);
    sim.sync_now(0);
    sim.deliver_all();
    match sim.sessions(0).as_slice() {
        [(p, Protocol::MerkleCompare, SessionOutcome::Converged { pulled, .. })] => {
            assert_eq!(*p, node_id(1));
            assert!(*pulled >= 1);
        }
        other => panic!("{other:?}"),
    }
    sim.assert_pair_converged(0, 1);
    assert_eq!(
        sim.entries(0).get(&b"pushed"[..]).map(Vec::as_slice),
        Some(&b"p"[..])
    );
}

#[test]
fn nested_containers_and_concurrent_edits_of_one_entity_are_joined() {
    let mut sim = Sim::manual_with(2, merkle_config());
    sim.write(0, |t| {
        let mut m = t.map(MAP)?;
        let mut inner = m.map(b"inner")?;
        inner.text(b"doc")?.insert(0, "base")?;
        inner.counter(b"n")?.increment(1)?;
        inner.insert(b"x", b"1")?;
        inner.insert(b"y", b"2")
    });
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.write(0, |t| {
        let mut m = t.map(MAP)?;
        let mut inner = m.map(b"inner")?;
        inner.text(b"doc")?.insert(0, "A")?;
        inner.counter(b"n")?.increment(10)?;
        inner.map(b"deep")?.insert(b"z", b"3")
    });
    sim.write(0, |t| t.set("tags")?.add(b"red"));
    sim.write(1, |t| {
        let mut m = t.map(MAP)?;
        let mut inner = m.map(b"inner")?;
        inner.text(b"doc")?.push_str("B")?;
        inner.counter(b"n")?.increment(100)?;
        inner.delete(b"x").map(|_| ())
    });
    sim.sync_now(1);
    sim.deliver_all();
    assert!(
        matches!(
            sim.sessions(1).as_slice(),
            [(_, Protocol::MerkleCompare, SessionOutcome::Converged { .. })]
        ),
        "{:?}",
        sim.sessions(1)
    );
    sim.assert_converged();
    for i in 0..2 {
        let s = sim.r(i).state();
        let m = s.map(MAP).unwrap();
        let inner = m.map(b"inner").unwrap();
        assert_eq!(inner.counter(b"n").unwrap().value(), 111);
        assert_eq!(inner.text(b"doc").unwrap().to_string(), "AbaseB");
        assert!(!inner.contains_key(b"x"));
        assert_eq!(inner.get(b"y"), Some(&b"2"[..]));
        assert_eq!(inner.map(b"deep").unwrap().get(b"z"), Some(&b"3"[..]));
        assert!(s.set("tags").unwrap().contains(b"red"));
    }
}

fn large_divergence(per_side: u32) -> Sim {
    let mut sim = Sim::manual_with(2, merkle_config());
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    for i in 0..2usize {
        sim.write(i, |t| {
            let mut m = t.map(MAP)?;
            for k in 0..per_side {
                m.insert(format!("{i}-{k}").as_bytes(), b"v")?;
            }
            Ok(())
        });
    }
    sim.put(0, b"extra", b"e");
    sim
}

#[test]
fn large_divergences_are_walked_level_by_level() {
    let mut sim = large_divergence(1_500);
    sim.sync_now(1);
    sim.deliver_all();
    assert!(
        matches!(
            sim.sessions(1).as_slice(),
            [(_, Protocol::MerkleCompare, SessionOutcome::Converged { .. })]
        ),
        "{:?}",
        sim.sessions(1)
    );
    sim.assert_converged();
    assert_eq!(sim.entries(0).len(), 3_002);
    // Several entity pulls (batched) and trie levels.
    assert!(sim.requests_sent(1, 0, |r| matches!(r, Request::Entities { .. })) > 1);
    assert!(sim.requests_sent(1, 0, |r| matches!(r, Request::Tree { .. })) > 2);
}

#[test]
fn a_walk_over_its_request_budget_fails_without_claiming_success() {
    let mut config = merkle_config();
    config.max_merkle_requests = 3;
    let mut sim = large_divergence(200);
    for n in &mut sim.nodes {
        n.config = config.clone();
    }
    // The budget is the replica's own configuration: rebuild node 1 with it.
    sim.reopen(1);
    sim.drain_all();
    sim.sync_now(1);
    sim.deliver_all();
    assert!(
        matches!(
            sim.sessions(1).as_slice(),
            [(
                _,
                Protocol::MerkleCompare,
                SessionOutcome::Failed(SessionFailure::TooManyRequests)
            )]
        ),
        "{:?}",
        sim.sessions(1)
    );
    assert!(sim.r(1).is_idle());
}

#[test]
fn state_merged_by_a_repair_is_not_hidden_behind_known_heads() {
    // Node 2 (C) repairs node 1 (B) by Merkle comparison: B's state gains C's entity without C's
    // delta. Node 0 (A) then holds every delta B has, plus one of its own, but not that entity.
    // C leaves. A and B must still converge: a peer whose heads we all know may hold state we lack.
    let mut configs = vec![super::support::manual_config(); 2];
    configs.push(merkle_config());
    for c in &mut configs[..2] {
        c.tick_ms = 10_000;
    }
    let mut sim = Sim::with_configs(configs);
    sim.run_for(1);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(1, b"b1", b"1");
    sim.put(1, b"b2", b"2");
    sim.put(2, b"x", b"only on c");
    // C's only peer is B: its session repairs both.
    let (now, a) = (sim.now, node_id(0));
    sim.nodes[2].replica.remove_peer(now, a);
    sim.sync_now(2);
    sim.deliver_all();
    assert!(
        matches!(
            sim.sessions(2).last(),
            Some((_, Protocol::MerkleCompare, SessionOutcome::Converged { .. }))
        ),
        "{:?}",
        sim.sessions(2)
    );
    assert!(
        sim.entries(1).contains_key(&b"x"[..]),
        "B got x by state only"
    );
    // A gets B's deltas and writes one more (lost).
    let b_deltas = sim.nodes[1].broadcasts.clone();
    for e in &b_deltas {
        sim.gossip(1, 0, e);
    }
    sim.put(0, b"a1", b"3");
    // C leaves for good.
    for i in 0..2 {
        let (now, c) = (sim.now, node_id(2));
        sim.nodes[i].replica.remove_peer(now, c);
        sim.drain(i);
    }
    sim.cut.extend([(0, 2), (2, 0), (1, 2), (2, 1)]);
    sim.drop_broadcasts = false;

    let converged = sim.run_until(300_000, |s| s.root(0) == s.root(1));
    assert!(
        converged,
        "A and B stay diverged while their sessions report {:?} / {:?}",
        sim.sessions(0).last(),
        sim.sessions(1).last()
    );
    sim.assert_pair_converged(0, 1);
    assert!(sim.entries(0).contains_key(&b"x"[..]));
}
