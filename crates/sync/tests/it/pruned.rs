//! Compacted history: peers that need pruned deltas are caught up by Merkle comparison, and
//! deltas waiting for pruned parents are released once the states are proven equal.

use tabmesh_testkit::test;

use tabmesh_dag::DeltaStatus;
use tabmesh_sync::{Protocol, Request, SessionOutcome, SyncConfig};

use super::support::{manual_config, Sim};

/// Compacts past 10 retained deltas down to 2, checked every second.
fn compacting(mut c: SyncConfig) -> SyncConfig {
    c.compact_after = 10;
    c.compact_retain = 2;
    c.housekeeping_ms = 1_000;
    c
}

/// Node 0 and 1 share a genesis; node 0 writes 30 more deltas node 1 never hears of, then compacts.
fn lagging(config: SyncConfig) -> Sim {
    let mut sim = Sim::manual_with(2, config);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    for k in 0..30u8 {
        sim.put(0, &[k], &[k]);
    }
    sim.del(0, &[3]);
    sim.run_for(1_500);
    let s = sim.r(0).dag().stats(sim.now);
    assert!(s.pruned >= 28, "node 0 did not compact: {s:?}");
    assert!(sim.r(0).summary().pruned);
    sim
}

#[test]
fn compaction_keeps_the_retained_deltas_and_the_heads() {
    let sim = lagging(compacting(manual_config()));
    let r = sim.r(0);
    let heads = r.dag().heads();
    assert_eq!(heads.len(), 1);
    assert!(r.dag().get(&heads[0]).is_some(), "a head keeps its body");
    let g = sim.nodes[0].broadcasts[0].id();
    assert_eq!(r.dag().status(&g), DeltaStatus::Pruned);
    assert!(r.dag().stats(sim.now).applied <= 3);
}

#[test]
fn a_lagging_replica_falls_back_to_merkle_comparison() {
    let mut sim = lagging(compacting(manual_config()));
    sim.sync_now(1);
    sim.deliver_all();
    let id0 = sim.nodes[0].id;
    let merkle: Vec<_> = sim
        .sessions(1)
        .into_iter()
        .filter(|(_, p, _)| *p == Protocol::MerkleCompare)
        .collect();
    assert!(
        matches!(merkle.as_slice(), [(p, _, SessionOutcome::Converged { .. })] if *p == id0),
        "{:?}",
        sim.sessions(1)
    );
    // It first asked for deltas, was told history is pruned, then compared states.
    assert!(sim.requests_sent(1, 0, |r| matches!(r, Request::DeltasSince { .. })) >= 1);
    assert!(sim.requests_sent(1, 0, |r| matches!(r, Request::Tree { .. })) >= 1);
    sim.assert_converged();
    assert_eq!(sim.entries(1).len(), 30);
}

#[test]
fn a_lagging_replica_ends_with_nothing_pending() {
    let mut sim = lagging(compacting(SyncConfig::default()));
    let done = sim.run_until(300_000, |s| s.root(0) == s.root(1) && !s.r(1).has_pending());
    assert!(done, "pending: {:?}", sim.r(1).dag().stats(sim.now));
    sim.assert_converged();
    // And it stays so.
    sim.run_for(60_000);
    assert!(!sim.r(1).has_pending());
    assert_eq!(sim.r(1).metrics().snapshots_installed, 0);
}

#[test]
fn a_delta_whose_parents_were_pruned_is_released_by_a_state_comparison() {
    let mut sim = lagging(compacting(manual_config()));
    sim.drop_broadcasts = false;
    let next = sim.put(0, b"next", b"n");
    sim.deliver_all();
    assert!(
        sim.r(1).dag().is_applied(&next),
        "status {:?}",
        sim.r(1).dag().status(&next)
    );
    assert!(!sim.r(1).has_pending());
    assert!(sim
        .sessions(1)
        .iter()
        .any(|(_, p, o)| *p == Protocol::MerkleCompare
            && matches!(o, SessionOutcome::Converged { .. })));
    sim.assert_converged();
}

#[test]
fn an_empty_replica_joins_a_compacted_peer_and_follows_it() {
    let mut sim = lagging(compacting(manual_config()));
    let j = sim.add_node(compacting(manual_config()));
    // It joins from node 0 (node 1 lags).
    let (now, lagging_id) = (sim.now, sim.nodes[1].id);
    sim.nodes[j].replica.remove_peer(now, lagging_id);
    sim.drain(j);
    sim.drop_broadcasts = false;
    sim.run_for(1);
    sim.deliver_all();
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    sim.assert_pair_converged(0, j);
    let d = sim.put(0, b"after", b"1");
    sim.deliver_all();
    assert!(sim.r(j).dag().is_applied(&d));
    assert!(!sim.r(j).has_pending());
    sim.assert_pair_converged(0, j);
}
