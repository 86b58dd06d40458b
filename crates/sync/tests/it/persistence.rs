//! Persistence: the `Persist` batches a replica emits are enough to reopen it as it was.

use tabmesh_testkit::test;

use tabmesh_dag::DeltaStatus;
use tabmesh_sync::{Replica, SyncConfig};

use super::support::{
    assert_same_state, genesis_id, manual_config, merkle_config, reopen_replica, Sim,
};

/// Node `i` reopened from its store, next to the live one.
fn reopened(sim: &Sim, i: usize) -> Replica {
    reopen_replica(&sim.nodes[i], i, sim.now)
}

fn check_reopens(sim: &Sim, i: usize) {
    let live = sim.r(i);
    let back = reopened(sim, i);
    assert_same_state(live, &back, &format!("node {i} reopened"));
    assert_eq!(back.dag().heads(), live.dag().heads(), "node {i}: heads");
    assert!(
        back.dag() == live.dag(),
        "node {i}: the reopened DAG differs"
    );
    assert_eq!(back.summary(), live.summary(), "node {i}: summary");
    assert_eq!(back.has_pending(), live.has_pending());
    assert_eq!(back.member(), live.member(), "node {i}: member identity");
}

#[test]
fn an_empty_store_opens_an_empty_replica() {
    // Replicas that have not received the genesis yet (they only met a peer): only their
    // identity is stored.
    let mut sim = Sim::empty(1);
    sim.add_node(manual_config());
    sim.add_node(manual_config());
    check_reopens(&sim, 0);
    assert!(reopened(&sim, 0).summary().is_empty());
}

#[test]
fn a_founder_past_the_genesis_reopens_identically() {
    let mut sim = Sim::manual(1);
    check_reopens(&sim, 0);
    let back = reopened(&sim, 0);
    assert_eq!(back.dag().heads(), vec![genesis_id()]);
    assert_eq!(back.membership(), sim.nodes[0].replica.membership());
    // It still writes (it holds the epoch key).
    sim.nodes[0].replica = back;
    sim.put(0, b"k", b"v");
    check_reopens(&sim, 0);
}

#[test]
fn local_writes_reopen_identically() {
    let mut sim = Sim::manual(1);
    sim.put(0, b"a", b"1");
    sim.write(0, |t| {
        t.text("doc")?.insert(0, "hello")?;
        t.counter("c")?.increment(7)?;
        t.set("s")?.add(b"x")
    });
    sim.del(0, b"a");
    sim.put(0, b"b", b"2");
    assert!(sim.nodes[0].persists >= 4);
    check_reopens(&sim, 0);
    let back = reopened(&sim, 0);
    assert_eq!(back.state().text("doc").unwrap().to_string(), "hello");
    assert_eq!(back.state().counter("c").unwrap().value(), 7);
}

#[test]
fn received_cascades_and_pending_deltas_reopen_identically() {
    let mut sim = Sim::with_config(2, SyncConfig::default());
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    for k in 0..6u8 {
        sim.put(0, &[k], b"v");
    }
    let envs = sim.nodes[0].broadcasts.clone();
    // Node 1 gets 1 and 2 in order, then 4..6 without 3 (its pulls are lost).
    sim.cut.insert((1, 0));
    for e in [&envs[1], &envs[2], &envs[4], &envs[5], &envs[6]] {
        sim.gossip(0, 1, e);
    }
    assert_eq!(sim.r(1).dag().status(&envs[6].id()), DeltaStatus::Pending);
    check_reopens(&sim, 1);

    // Reopened, it still finds and pulls the missing parent.
    sim.reopen(1);
    sim.cut.clear();
    assert!(sim.run_until(120_000, |s| !s.r(1).has_pending() && s.root(1) == s.root(0)));
    sim.assert_converged();
    check_reopens(&sim, 1);
}

#[test]
fn a_merkle_repair_reopens_identically_on_both_sides() {
    let mut sim = Sim::manual_with(2, merkle_config());
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(0, b"a", b"1");
    sim.put(0, b"a2", b"1");
    sim.del(0, b"g");
    sim.put(1, b"b", b"2");
    sim.sync_now(1);
    sim.deliver_all();
    sim.assert_converged();
    check_reopens(&sim, 0);
    check_reopens(&sim, 1);
}

#[test]
fn an_installed_snapshot_reopens_identically() {
    let mut sim = Sim::manual(1);
    for k in 0..10u8 {
        sim.put(0, &[k], b"v");
    }
    let j = sim.add_node(manual_config());
    sim.run_for(1);
    sim.deliver_all();
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    check_reopens(&sim, j);
    // The reopened joiner still applies the server's next delta at once.
    sim.reopen(j);
    let d = sim.put(0, b"next", b"n");
    sim.deliver_all();
    assert!(sim.r(j).dag().is_applied(&d));
    sim.assert_converged();
}

#[test]
fn a_compacted_dag_reopens_identically() {
    let mut config = manual_config();
    config.compact_after = 5;
    config.compact_retain = 2;
    config.housekeeping_ms = 1_000;
    let mut sim = Sim::manual_with(1, config);
    for k in 0..20u8 {
        sim.put(0, &[k], b"v");
    }
    sim.run_for(1_500);
    assert!(sim.r(0).dag().stats(sim.now).pruned > 0);
    check_reopens(&sim, 0);
}

/// Where the first `Persist` stands among `outputs`, and where the first output that is neither
/// a `Persist` nor an event stands.
fn persist_and_first_action(outputs: &[tabmesh_sync::Output]) -> (Option<usize>, Option<usize>) {
    use tabmesh_sync::Output;
    let persist = outputs.iter().position(|o| matches!(o, Output::Persist(_)));
    let action = outputs
        .iter()
        .position(|o| matches!(o, Output::Broadcast(_) | Output::Send { .. }));
    (persist, action)
}

#[test]
fn a_commit_persists_its_delta_before_broadcasting_it() {
    let mut sim = Sim::manual(1);
    let now = sim.now;
    let r = &mut sim.nodes[0].replica;
    r.commit::<(), tabmesh_sync::SyncError>(now, tabmesh_base::Hlc::new(now, 0), |t| {
        Ok(t.map(super::support::MAP)?.insert(b"k", b"v")?)
    })
    .unwrap();
    let out = super::support::drain_outputs(r);
    let (persist, broadcast) = persist_and_first_action(&out);
    assert!(
        persist.is_some() && persist < broadcast,
        "the delta is broadcast before the batch that holds it is persisted: {out:?}"
    );
}

#[test]
fn a_served_push_persists_before_it_is_acknowledged() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"k", b"v");
    let entities = super::support::entity_states(sim.r(0));
    let now = sim.now;
    let r = &mut sim.nodes[1].replica;
    r.handle_request(
        now,
        tabmesh_base::NodeId([99; 32]),
        1,
        tabmesh_sync::Request::Push { entities },
    );
    let out = super::support::drain_outputs(r);
    let (persist, ack) = persist_and_first_action(&out);
    assert!(
        persist.is_some() && persist < ack,
        "the push is acknowledged before what it joined is persisted: {out:?}"
    );
}
