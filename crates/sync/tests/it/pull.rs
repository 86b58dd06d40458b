//! Missing-parent pulls: children delivered first, parents pulled from the sender (then others),
//! cascades, retries.

use tabmesh_testkit::test;

use tabmesh_dag::DeltaStatus;
use tabmesh_sync::{Request, SyncEvent};

use super::support::{manual_config, Sim};

fn is_pull(r: &Request) -> bool {
    matches!(r, Request::Deltas { .. })
}

#[test]
fn children_first_missing_parents_are_pulled_from_the_sender_and_cascade() {
    let mut sim = Sim::manual(3);
    let g = sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    let d1 = sim.put(0, b"k1", b"1");
    let d2 = sim.put(0, b"k2", b"2");
    let d3 = sim.put(0, b"k3", b"3");
    let envs = sim.nodes[0].broadcasts.clone();
    // Node 2 gets everything; node 1 only hears d3, relayed by node 2.
    for e in &envs[1..] {
        sim.gossip(0, 2, e);
    }
    sim.log.clear();
    sim.gossip(2, 1, &envs[3]);
    assert_eq!(sim.r(1).dag().status(&d3), DeltaStatus::Pending);
    sim.deliver_all();

    assert_eq!(sim.applied_ids(1), vec![g, d1, d2, d3]);
    assert!(!sim.r(1).has_pending());
    assert_eq!(sim.r(1).dag().heads(), vec![d3]);
    assert_eq!(
        sim.requests_sent(1, 2, is_pull),
        2,
        "d2, then d1, asked from the relay"
    );
    assert_eq!(sim.requests_sent(1, 0, is_pull), 0);
    assert_eq!(sim.r(1).metrics().parents_pulled, 2);
    sim.assert_converged();
}

#[test]
fn a_long_chain_delivered_backwards_cascades_in_one_pass() {
    let mut sim = Sim::manual(2);
    sim.drop_broadcasts = true;
    for k in 0..200u32 {
        sim.put(0, &k.to_le_bytes(), b"v");
    }
    let envs = sim.nodes[0].broadcasts.clone();
    for e in envs.iter().skip(1).rev() {
        sim.gossip(0, 1, e);
    }
    assert_eq!(sim.r(1).dag().stats(sim.now).pending, 199);
    assert!(sim.applied_ids(1).is_empty());
    // The first write (a child of the genesis) arrives last: everything applies, parents before
    // children, in one event.
    sim.gossip(0, 1, &envs[0]);
    let ids: Vec<_> = envs.iter().map(|e| e.id()).collect();
    let last = sim.nodes[1].events.iter().rev().find_map(|e| match e {
        SyncEvent::Applied { ids, .. } => Some(ids.clone()),
        _ => None,
    });
    assert_eq!(last, Some(ids));
    assert!(!sim.r(1).has_pending());
    sim.deliver_all();
    // The 200 writes, after the genesis.
    assert_eq!(sim.r(1).metrics().deltas_applied, 201);
    sim.assert_converged();
}

#[test]
fn a_pull_the_sender_does_not_answer_is_retried_with_another_peer() {
    let mut sim = Sim::manual(3);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    let d1 = sim.put(0, b"k1", b"1");
    let d2 = sim.put(0, b"k2", b"2");
    let envs = sim.nodes[0].broadcasts.clone();
    sim.gossip(0, 2, &envs[1]);
    sim.gossip(0, 2, &envs[2]);
    // Node 2 relays d2 to node 1, then becomes unreachable from node 1.
    sim.cut.insert((1, 2));
    sim.cut.insert((2, 1));
    sim.gossip(2, 1, &envs[2]);
    assert_eq!(sim.r(1).dag().status(&d2), DeltaStatus::Pending);

    let done = sim.run_until(60_000, |s| s.r(1).dag().is_applied(&d2));
    assert!(done, "the parent was never pulled from the other peer");
    assert!(sim.r(1).dag().is_applied(&d1));
    assert!(sim.r(1).metrics().timeouts >= 1);
    assert!(sim.requests_sent(1, 0, is_pull) >= 1);
    sim.assert_pair_converged(0, 1);
}

#[test]
fn nothing_waits_forever_once_the_link_heals() {
    let mut sim = Sim::new(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(0, b"k1", b"1");
    let d2 = sim.put(0, b"k2", b"2");
    let envs = sim.nodes[0].broadcasts.clone();
    sim.cut.insert((0, 1));
    sim.cut.insert((1, 0));
    sim.gossip(0, 1, &envs[2]);
    sim.run_for(120_000);
    assert_eq!(sim.r(1).dag().status(&d2), DeltaStatus::Pending);
    assert!(
        sim.r(1).metrics().timeouts >= 2,
        "pulls and sessions are retried"
    );

    sim.cut.clear();
    let done = sim.run_until(120_000, |s| {
        s.r(1).dag().is_applied(&d2) && !s.r(1).has_pending()
    });
    assert!(
        done,
        "the pending delta never applied after the link healed"
    );
    sim.assert_converged();
}

#[test]
fn a_parent_that_arrives_by_gossip_cancels_its_pull() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    let d1 = sim.put(0, b"k1", b"1");
    sim.put(0, b"k2", b"2");
    let envs = sim.nodes[0].broadcasts.clone();
    sim.cut.insert((1, 0));
    sim.gossip(0, 1, &envs[2]);
    assert!(sim.r(1).sync_timers_armed() >= 1);
    sim.gossip(0, 1, &envs[1]);
    assert!(sim.r(1).dag().is_applied(&d1));
    assert!(!sim.r(1).has_pending());
    // The pull in flight is answered by nobody: it times out harmlessly, nothing is re-asked.
    sim.run_for(60_000);
    assert_eq!(sim.r(1).sync_timers_armed(), 0);
    sim.assert_converged();
}

#[test]
fn an_overflowing_pending_buffer_evicts_the_oldest_and_recovers() {
    let mut config = manual_config();
    config.dag.max_pending = 5;
    config.tick_ms = 10_000;
    let mut sim = Sim::with_config(2, config);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    for k in 0..20u8 {
        sim.put(0, &[k], b"v");
    }
    let envs = sim.nodes[0].broadcasts.clone();
    // Node 1 hears every other delta, its pulls lost for now.
    sim.cut.insert((1, 0));
    for e in envs.iter().skip(2).step_by(2) {
        sim.gossip(0, 1, e);
    }
    assert!(sim.r(1).dag().stats(sim.now).pending <= 5);
    assert!(sim.r(1).metrics().pending_evicted >= 5);
    sim.cut.clear();
    assert!(sim.run_until(120_000, |s| s.root(1) == s.root(0) && !s.r(1).has_pending()));
    sim.assert_converged();
}

#[test]
fn stale_pending_deltas_are_evicted_and_recovered() {
    let mut config = manual_config();
    config.dag.max_pending_age_ms = 20_000;
    config.housekeeping_ms = 5_000;
    config.tick_ms = 10_000;
    let mut sim = Sim::with_config(2, config);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(0, b"a", b"1");
    let d2 = sim.put(0, b"b", b"2");
    let envs = sim.nodes[0].broadcasts.clone();
    sim.cut.insert((1, 0));
    sim.cut.insert((0, 1));
    sim.gossip(0, 1, &envs[2]);
    sim.run_for(40_000);
    assert_eq!(
        sim.r(1).dag().status(&d2),
        DeltaStatus::Unknown,
        "the stale delta was evicted"
    );
    assert!(sim.r(1).metrics().pending_evicted >= 1);
    assert!(!sim.r(1).has_pending());
    sim.cut.clear();
    assert!(sim.run_until(120_000, |s| s.r(1).dag().is_applied(&d2)));
    sim.assert_converged();
}
