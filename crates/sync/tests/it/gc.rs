//! Tombstone retention and garbage collection: housekeeping collects tombstones older than the
//! retention, a replica offline for longer catches up by Merkle comparison without resurrecting
//! what others deleted, and the GC horizon travels in summaries and snapshots.

use tabmesh_testkit::test;

use tabmesh_base::{EntityId, Hlc, NodeId};
use tabmesh_state::{entry_id, field_id, Action};
use tabmesh_sync::{Protocol, Request, Response, SessionOutcome, SyncConfig, SyncEvent};

use super::support::{drain_outputs, events_in, Sim, MAP};

/// A 20 s retention, housekeeping every 5 s, and compaction past 10 deltas (so a lagging replica
/// cannot be served the deltas it missed and needs a state comparison).
fn retaining(mut c: SyncConfig) -> SyncConfig {
    c.tombstone_retention_ms = 20_000;
    c.housekeeping_ms = 5_000;
    c.compact_after = 10;
    c.compact_retain = 2;
    c
}

fn entry(key: &[u8]) -> EntityId {
    entry_id(field_id(MAP), key)
}

fn has_entity(sim: &Sim, i: usize, key: &[u8]) -> bool {
    sim.r(i).state().entity(&entry(key)).is_some()
}

fn cut_off(sim: &mut Sim, i: usize) {
    for j in 0..sim.nodes.len() {
        if j != i {
            sim.cut.insert((i, j));
            sim.cut.insert((j, i));
        }
    }
}

fn roots_equal(sim: &Sim) -> bool {
    (1..sim.nodes.len()).all(|i| sim.root(i) == sim.root(0))
}

#[test]
fn a_replica_offline_past_the_retention_converges_without_resurrecting_deletes() {
    let mut sim = Sim::with_config(3, retaining(SyncConfig::default()));
    for k in 0..8u8 {
        sim.put(0, format!("k{k}").as_bytes(), b"v");
    }
    sim.write(0, |t| t.map(MAP)?.map(b"sub")?.insert(b"x", b"1"));
    sim.deliver_all();
    // Periodic sessions find everyone in step.
    sim.run_for(15_000);
    assert!(roots_equal(&sim));

    // Node 2 goes offline.
    cut_off(&mut sim, 2);
    let t_cut = sim.now;
    for k in 1..5u8 {
        sim.del(0, format!("k{k}").as_bytes());
    }
    sim.write(0, |t| t.map(MAP)?.delete(b"sub").map(|_| ()));
    for k in 0..4u8 {
        sim.put(1, format!("n{k}").as_bytes(), b"new");
    }
    // Offline on node 2: a new entry, and a delete of an entry everyone has.
    sim.put(2, b"offline", b"o");
    sim.del(2, b"k5");
    // Enough writes on node 0 to compact its history.
    for k in 0..12u8 {
        sim.put(0, format!("f{k}").as_bytes(), b"f");
    }
    sim.deliver_all();

    // Longer than the retention: nodes 0 and 1 collect the tombstones of k1..k4 and `sub`.
    sim.run_for(40_000);
    // Each collects them itself, or forgets them in a Merkle comparison with the other once it
    // collected them first (which one is first depends on their last in-step sessions: every
    // founder has state from the genesis on, so both count as synced early); at least one
    // collected them.
    for i in 0..2 {
        assert!(!has_entity(&sim, i, b"k1"), "node {i} kept a tombstone");
        assert!(!has_entity(&sim, i, b"sub"), "node {i} kept a tombstone");
        let m = sim.r(i).metrics();
        assert!(
            m.tombstones_collected + m.entities_forgotten >= 6,
            "node {i}: {m:?}"
        );
        assert!(sim.r(i).state().gc_horizon() > Hlc::new(t_cut, 0));
        assert!(sim.nodes[i]
            .events
            .iter()
            .any(|e| matches!(e, SyncEvent::StateReplaced { .. })));
    }
    assert!((0..2).any(|i| sim.r(i).metrics().tombstones_collected >= 6));
    assert!(sim.r(0).summary().pruned, "node 0 did not compact");
    // Cut off, node 2 never moved its horizon past its last sync: it does not claim to have
    // collected what it never saw (the entries node 1 made meanwhile).
    assert!(sim.r(2).state().gc_horizon() <= Hlc::new(t_cut - 20_000, 0));
    assert!(has_entity(&sim, 2, b"k1"), "node 2 still has k1, live");
    // A write on node 2 within the retention, just before it comes back.
    sim.put(2, b"recent", b"r");

    sim.cut.clear();
    let done = sim.run_until(300_000, roots_equal);
    assert!(done, "roots never met: {:?}", sim.sessions(2));
    // Tombstones that crossed the horizon meanwhile are collected on every node in turn.
    sim.run_for(30_000);
    assert!(sim.run_until(60_000, roots_equal));
    sim.assert_converged();

    let entries = sim.entries(0);
    for i in 0..3 {
        for k in 1..5u8 {
            assert!(
                !has_entity(&sim, i, format!("k{k}").as_bytes()),
                "node {i}: k{k} came back"
            );
        }
        assert!(!has_entity(&sim, i, b"sub"), "node {i}: sub came back");
    }
    let keys: Vec<&[u8]> = entries.keys().map(Vec::as_slice).collect();
    for k in [&b"k0"[..], b"k6", b"k7", b"n0", b"n3", b"f11", b"recent"] {
        assert!(
            keys.contains(&k),
            "{:?} is missing: {keys:?}",
            String::from_utf8_lossy(k)
        );
    }
    // Node 2's offline delete of an entry everyone had reached everyone.
    assert!(!keys.contains(&&b"k5"[..]));
    // The retention's limitation: node 2's offline entry, older than the retention and never seen
    // by anyone, is gone (dropped by the others, forgotten by node 2).
    assert!(!keys.contains(&&b"offline"[..]));
    assert!(!has_entity(&sim, 2, b"offline"));

    // Node 2 caught up by state comparison, forgetting what the others had collected.
    assert!(sim
        .sessions(2)
        .iter()
        .any(|(_, p, o)| *p == Protocol::MerkleCompare
            && matches!(o, SessionOutcome::Converged { .. })));
    assert!(sim.r(2).metrics().entities_forgotten >= 5);
    // And it stays converged; reopened replicas keep their horizon.
    sim.run_for(60_000);
    assert!(sim.run_until(60_000, roots_equal));
    sim.assert_converged();
    for i in 0..3 {
        let (root, horizon) = (sim.root(i), sim.r(i).state().gc_horizon());
        sim.reopen(i);
        assert_eq!(sim.root(i), root);
        assert_eq!(sim.r(i).state().gc_horizon(), horizon);
    }
}

#[test]
fn a_lone_replica_keeps_its_tombstones() {
    let mut sim = Sim::with_config(1, retaining(SyncConfig::default()));
    sim.put(0, b"k", b"v");
    sim.del(0, b"k");
    sim.run_for(120_000);
    assert!(has_entity(&sim, 0, b"k"));
    assert_eq!(sim.r(0).state().gc_horizon(), Hlc::default());
    assert_eq!(sim.r(0).metrics().tombstones_collected, 0);
}

#[test]
fn the_default_retention_is_a_week() {
    assert_eq!(
        SyncConfig::default().tombstone_retention_ms,
        7 * 24 * 3_600_000
    );
    // Within a week, nothing is collected.
    let mut c = SyncConfig::default();
    c.housekeeping_ms = 5_000;
    let mut sim = Sim::with_config(2, c);
    sim.put(0, b"k", b"v");
    sim.del(0, b"k");
    sim.run_for(120_000);
    assert!(has_entity(&sim, 0, b"k") && has_entity(&sim, 1, b"k"));
    sim.assert_converged();
}

#[test]
fn a_snapshot_joiner_takes_the_peers_horizon_and_drops_collected_states() {
    let mut sim = Sim::with_config(2, retaining(SyncConfig::default()));
    sim.put(0, b"gone", b"v");
    sim.put(0, b"kept", b"v");
    sim.deliver_all();
    sim.del(0, b"gone");
    sim.deliver_all();
    let old: Vec<Action> = sim.r(0).state().entities().cloned().collect();
    sim.run_for(40_000);
    assert!(!has_entity(&sim, 0, b"gone") && !has_entity(&sim, 1, b"gone"));
    let horizon = sim
        .r(0)
        .summary()
        .gc_horizon
        .min(sim.r(1).summary().gc_horizon);
    assert!(horizon > Hlc::default());

    let j = sim.add_node(retaining(SyncConfig::default()));
    assert!(sim.run_until(30_000, |s| s.r(j).metrics().snapshots_installed == 1));
    sim.assert_pair_converged(0, j);
    assert!(sim.r(j).state().gc_horizon() >= horizon);
    // A peer that kept the old states pushes them: the collected entry stays gone.
    let root = sim.root(j);
    let (now, from) = (sim.now, NodeId([99; 32]));
    let r = &mut sim.nodes[j].replica;
    r.handle_request(now, from, 1, Request::Push { entities: old });
    let out = drain_outputs(r);
    assert!(
        out.iter().any(|o| matches!(
            o,
            tabmesh_sync::Output::Send {
                message: tabmesh_sync::Message::Response {
                    body: Response::PushAck { .. },
                    ..
                },
                ..
            }
        )),
        "{out:?}"
    );
    assert!(events_in(&out).is_empty(), "{out:?}");
    assert_eq!(sim.root(j), root);
    assert!(sim.r(j).metrics().ancient_dropped >= 1);
    assert!(!has_entity(&sim, j, b"gone"));
}

#[test]
fn a_peer_that_dropped_our_ancient_entities_asks_us_to_forget_them() {
    let mut sim = Sim::with_config(3, retaining(SyncConfig::default()));
    sim.put(0, b"k", b"v");
    sim.deliver_all();
    sim.run_for(15_000);
    assert!(roots_equal(&sim));
    // Node 2 writes offline, enough to compact its own history: what it wrote can only reach
    // the others by state comparison, and it is older than the retention when it comes back.
    cut_off(&mut sim, 2);
    sim.put(2, b"offline", b"o");
    for k in 0..12u8 {
        sim.put(2, format!("x{k}").as_bytes(), b"x");
    }
    sim.del(2, b"x0");
    for k in 0..12u8 {
        sim.put(0, format!("f{k}").as_bytes(), b"f");
    }
    sim.deliver_all();
    sim.run_for(40_000);
    assert!(sim.r(2).summary().pruned, "node 2 did not compact");
    sim.cut.clear();
    assert!(sim.run_until(300_000, |s| roots_equal(s)
        && (0..3).all(|i| !s.r(i).has_pending())));
    sim.run_for(30_000);
    assert!(sim.run_until(60_000, roots_equal));
    sim.assert_converged();
    let forget_requests: usize = (0..2)
        .map(|i| sim.requests_sent(i, 2, |r| matches!(r, Request::Forget { .. })))
        .sum();
    assert!(forget_requests >= 1, "nobody asked node 2 to forget");
    for i in 0..3 {
        assert!(!has_entity(&sim, i, b"offline"), "node {i}");
        assert!(!has_entity(&sim, i, b"x5"), "node {i}");
        assert!(
            has_entity(&sim, i, b"f11") && has_entity(&sim, i, b"k"),
            "node {i}"
        );
        assert!(!sim.r(i).has_pending(), "node {i}");
    }
}
