//! Snapshots: only for empty replicas, exactly once, verified before anything is applied, with the
//! deltas that arrive meanwhile buffered and replayed.

use tabmesh_testkit::test;

use tabmesh_base::{Hash, Hlc, HlcClock, NodeId};
use tabmesh_sync::{
    AccessError, GovOp, Message, Protocol, Replica, Request, Response, SessionFailure,
    SessionOutcome, Summary, SyncConfig, SyncError, SyncEvent,
};

use super::support::{
    access, ctx, drain_outputs, events_in, manual_config, member, requests_in, sessions_of, Sim, T0,
};

/// Node 0 with `n` entries in the test map (one delta each), and `config` for everyone.
fn populated(n: u32, config: SyncConfig) -> Sim {
    let mut sim = Sim::manual_with(1, config);
    for k in 0..n {
        sim.put(0, &k.to_le_bytes(), b"v");
    }
    sim
}

/// Small pages, so a snapshot of a few entities takes several round trips.
fn paged_config() -> SyncConfig {
    let mut c = manual_config();
    c.snapshot_page_entities = 4;
    c
}

/// Adds an empty node and runs its join tick: its summary request is queued.
fn join(sim: &mut Sim, config: SyncConfig) -> usize {
    let j = sim.add_node(config);
    sim.advance();
    assert!(matches!(
        sim.peek().and_then(|p| p.request()),
        Some(Request::Summary)
    ));
    j
}

/// Delivers until the joiner asks for a later snapshot page (the first one was served).
fn until_second_page(sim: &mut Sim, j: usize) {
    let found = sim.deliver_until(|_, p| {
        p.from == j && matches!(p.request(), Some(Request::Snapshot { cursor: Some(_) }))
    });
    assert!(found, "the snapshot took a single page");
}

#[test]
fn an_empty_replica_joins_by_exactly_one_snapshot() {
    let mut sim = populated(30, SyncConfig::default());
    let j = sim.add_node(SyncConfig::default());
    assert!(sim.run_until(60_000, |s| s.root(j) == s.root(0)));
    // Keep running: nobody takes another snapshot.
    sim.run_for(120_000);
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    assert_eq!(sim.r(0).metrics().snapshots_installed, 0);
    assert_eq!(sim.r(j).metrics().sessions[3], 1);
    assert_eq!(sim.r(0).metrics().sessions[3], 0);
    let snapshots: Vec<_> = sim
        .sessions(j)
        .into_iter()
        .filter(|(_, p, _)| *p == Protocol::Snapshot)
        .collect();
    assert_eq!(
        snapshots,
        vec![(
            sim.nodes[0].id,
            Protocol::Snapshot,
            SessionOutcome::Converged {
                pulled: 31,
                pushed: 0
            }
        )]
    );
    assert!(sim.nodes[j]
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::StateReplaced { .. })));
    assert!(!sim.r(j).has_pending());
    sim.assert_converged();
}

#[test]
fn after_a_snapshot_the_joiner_has_the_snapshot_heads() {
    let mut sim = populated(5, manual_config());
    let j = join(&mut sim, manual_config());
    sim.deliver_all();
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    sim.assert_converged();
    let heads = sim.r(0).dag().heads();
    for h in &heads {
        assert!(sim.r(j).dag().is_applied(h));
    }
    assert_eq!(
        sim.r(j).dag().heads(),
        heads,
        "the snapshot boundary is the joiner's heads"
    );
    assert_eq!(sim.r(j).summary().heads, heads);
}

#[test]
fn the_joiners_first_delta_builds_on_the_snapshot() {
    let mut sim = populated(5, manual_config());
    let j = join(&mut sim, manual_config());
    sim.deliver_all();
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    let e = sim.put(j, b"joiner", b"2");
    let env = sim.nodes[j].broadcasts.last().unwrap().clone();
    assert_eq!(
        env.parents,
        sim.r(0).dag().heads(),
        "the joiner's first delta is a second genesis instead of a child of the snapshot heads"
    );
    sim.deliver_all();
    assert!(sim.r(0).dag().is_applied(&e));
    assert_eq!(
        sim.r(0).dag().heads(),
        vec![e],
        "the server merges the joiner's delta"
    );
}

#[test]
fn after_a_snapshot_a_missed_delta_is_pulled_alone() {
    let mut sim = populated(5, manual_config());
    let j = join(&mut sim, manual_config());
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(0, b"missed", b"1");
    sim.nodes[j].events.clear();
    sim.sync_now(j);
    sim.deliver_all();
    sim.assert_converged();
    let id0 = sim.nodes[0].id;
    assert_eq!(
        sim.sessions(j),
        vec![(
            id0,
            Protocol::DeltaSync,
            SessionOutcome::Pulled { deltas: 1 }
        )],
        "the joiner should ask only for what followed its snapshot"
    );
}

#[test]
fn after_a_snapshot_deltas_flow_both_ways_without_pulls() {
    let mut sim = populated(5, manual_config());
    let j = join(&mut sim, manual_config());
    sim.deliver_all();
    sim.log.clear();
    // The server's next delta builds on the snapshot heads: the joiner applies it at once.
    let d = sim.put(0, b"next", b"1");
    sim.deliver_all();
    assert!(sim.r(j).dag().is_applied(&d));
    // The joiner's first delta builds on what the snapshot gave it.
    let heads = sim.r(j).dag().heads();
    let e = sim.put(j, b"joiner", b"2");
    let env = sim.nodes[j].broadcasts.last().unwrap().clone();
    assert_eq!(env.parents, heads);
    assert!(
        !env.parents.is_empty(),
        "the joiner's first delta must not be a second genesis"
    );
    sim.deliver_all();
    assert!(sim.r(0).dag().is_applied(&e));
    assert_eq!(sim.r(0).dag().heads(), vec![e]);
    assert_eq!(
        sim.requests_sent(0, j, |r| matches!(r, Request::Deltas { .. })),
        0
    );
    assert_eq!(
        sim.requests_sent(j, 0, |r| matches!(r, Request::Deltas { .. })),
        0
    );
    sim.assert_converged();
}

#[test]
fn deltas_broadcast_during_a_snapshot_are_buffered_then_applied() {
    let mut sim = populated(20, paged_config());
    let j = join(&mut sim, paged_config());
    until_second_page(&mut sim, j);
    // The server writes while the joiner is between pages: its frozen snapshot does not hold the
    // write, the broadcast reaches the joiner mid-snapshot.
    let during = sim.put(0, b"during", b"!");
    let during2 = sim.write(0, |t| t.counter("c")?.increment(4));
    sim.deliver_all();
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    assert_eq!(sim.r(j).metrics().buffered, 2);
    assert_eq!(sim.r(j).metrics().buffer_drops, 0);
    // Applied right after the snapshot, without waiting for another sync.
    assert!(sim.r(j).dag().is_applied(&during));
    assert!(sim.r(j).dag().is_applied(&during2));
    let applied = sim.applied_ids(j);
    assert!(
        applied.contains(&during) && applied.contains(&during2),
        "{applied:?}"
    );
    assert_eq!(
        sim.entries(j).get(&b"during"[..]).map(Vec::as_slice),
        Some(&b"!"[..])
    );
    assert_eq!(sim.r(j).state().counter("c").unwrap().value(), 4);
    assert!(!sim.r(j).has_pending());
    sim.assert_converged();
}

#[test]
fn a_full_snapshot_buffer_drops_the_oldest_and_recovers_it() {
    let mut config = paged_config();
    config.snapshot_buffer = 1;
    let mut sim = populated(20, config.clone());
    let j = join(&mut sim, config);
    until_second_page(&mut sim, j);
    let d1 = sim.put(0, b"d1", b"1");
    let d2 = sim.put(0, b"d2", b"2");
    sim.deliver_all();
    assert_eq!(sim.r(j).metrics().buffered, 2);
    assert_eq!(sim.r(j).metrics().buffer_drops, 1);
    // d2 replayed after the snapshot; its parent d1 was dropped and is pulled again.
    assert!(sim.r(j).dag().is_applied(&d1));
    assert!(sim.r(j).dag().is_applied(&d2));
    assert!(!sim.r(j).has_pending());
    sim.assert_converged();
}

#[test]
fn a_local_write_during_a_snapshot_is_kept_or_refused_without_a_trace() {
    // A joiner mid-snapshot has no heads yet. Whether its replica lets it write then (on the
    // governance it installed) or refuses (a delta without parents is a genesis), the outcome
    // must be consistent: a write it accepts reaches every replica once the snapshot is in, a
    // write it refuses leaves nothing behind (neither in its state nor on the wire).
    let mut sim = populated(20, paged_config());
    let j = join(&mut sim, paged_config());
    until_second_page(&mut sim, j);
    let res = sim.try_put(j, b"mine", b"j");
    match &res {
        Ok(_) => {
            sim.deliver_all();
            assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
            assert_eq!(sim.entries(j).len(), 21);
            sim.assert_converged();
            assert_eq!(
                sim.entries(0).get(&b"mine"[..]).map(Vec::as_slice),
                Some(&b"j"[..])
            );
        }
        Err(e) => {
            let me = sim.r(j).member();
            assert_eq!(
                *e,
                SyncError::Access(AccessError::NotAMember { author: me })
            );
            assert!(sim.nodes[j].broadcasts.is_empty());
            assert!(
                sim.entries(j).is_empty(),
                "the refused write stayed in the joiner's state: {:?}",
                sim.entries(j)
            );
            sim.deliver_all();
            assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
            assert_eq!(sim.entries(j).len(), 20);
            sim.assert_converged();
            // After the snapshot it writes on the snapshot heads.
            sim.put(j, b"mine", b"j");
            sim.deliver_all();
            assert_eq!(sim.entries(j).len(), 21);
            sim.assert_converged();
        }
    }
}

#[test]
fn a_non_empty_replica_never_takes_a_snapshot() {
    let mut sim = Sim::new(2);
    sim.drop_broadcasts = true;
    for k in 0..50u32 {
        sim.put(0, &k.to_le_bytes(), b"a");
    }
    // Node 1 has one write of its own: it is never overwritten by a snapshot.
    sim.put(1, b"own", b"b");
    assert!(sim.run_until(120_000, |s| s.root(0) == s.root(1)));
    sim.run_for(60_000);
    for i in 0..2 {
        assert_eq!(sim.r(i).metrics().snapshots_installed, 0, "node {i}");
        assert_eq!(sim.r(i).metrics().sessions[3], 0, "node {i}");
    }
    assert_eq!(
        sim.entries(1).get(&b"own"[..]).map(Vec::as_slice),
        Some(&b"b"[..])
    );
    sim.assert_converged();
}

/// A lone replica (a founder that has not seen the genesis) whose only peer is driven by hand:
/// told of a peer with state, it asks for the snapshot (the governance log comes after its
/// pages). Returns the id of its snapshot request.
fn joiner_asking_for_a_snapshot(peer: NodeId) -> (Replica, u64) {
    let mut r = Replica::new(ctx(), b"j/", manual_config(), 3, T0, access(3));
    r.add_peer(T0, peer);
    r.handle_timeout(T0);
    let out = drain_outputs(&mut r);
    let [(to, id, Request::Summary)] = requests_in(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(to, peer);
    let remote = Summary {
        heads: vec![],
        root: Hash([1; 32]),
        entities: 3,
        applied: 3,
        pruned: false,
        pending: 0,
        gc_horizon: Hlc::default(),
        governance: Hash([2; 32]),
        heads_stamp: Hlc::default(),
    };
    r.handle_response(T0, peer, id, Response::Summary(remote));
    let out = drain_outputs(&mut r);
    let [(_, id, Request::Snapshot { cursor: None })] = requests_in(&out)[..] else {
        panic!("{out:?}")
    };
    assert!(r.dag().heads().is_empty());
    (r, id)
}

fn server_entities() -> (Hash, Vec<tabmesh_state::Action>) {
    let mut sim = Sim::manual(1);
    for k in 0..3u8 {
        sim.put(0, &[k], b"v");
    }
    (sim.root(0), sim.r(0).state().entities().cloned().collect())
}

#[test]
fn a_snapshot_that_does_not_hash_to_its_root_installs_nothing() {
    let peer = NodeId([9; 32]);
    let (mut r, id) = joiner_asking_for_a_snapshot(peer);
    let (_, entities) = server_entities();
    let page = Response::SnapshotPage {
        heads: vec![],
        heads_stamp: Hlc::default(),
        root: Hash([1; 32]),
        total: entities.len() as u64,
        entities,
        satisfied: vec![],
        next: None,
    };
    r.handle_response(T0, peer, id, page);
    let events = events_in(&drain_outputs(&mut r));
    assert_eq!(
        sessions_of(&events),
        vec![(
            peer,
            Protocol::Snapshot,
            SessionOutcome::Failed(SessionFailure::Invalid(SyncError::SnapshotMismatch))
        )]
    );
    assert!(r.state().is_empty());
    assert!(r.dag().heads().is_empty());
    assert_eq!(r.metrics().snapshots_installed, 0);
    assert!(
        r.summary().is_empty(),
        "it can still take a correct snapshot later"
    );
}

#[test]
fn snapshot_pages_that_disagree_on_their_boundary_fail() {
    let peer = NodeId([9; 32]);
    let (mut r, id) = joiner_asking_for_a_snapshot(peer);
    let (root, mut entities) = server_entities();
    // Parents first, as a server orders them.
    entities.sort_by_key(|a| a.parent().is_some());
    let first = Response::SnapshotPage {
        heads: vec![],
        heads_stamp: Hlc::default(),
        root,
        total: 3,
        entities: entities[..1].to_vec(),
        satisfied: vec![],
        next: Some(tabmesh_sync::SnapshotCursor {
            snapshot: 1,
            index: 1,
        }),
    };
    r.handle_response(T0, peer, id, first);
    let out = drain_outputs(&mut r);
    let [(_, id, Request::Snapshot { cursor: Some(_) })] = requests_in(&out)[..] else {
        panic!("{out:?}")
    };
    let second = Response::SnapshotPage {
        heads: vec![],
        heads_stamp: Hlc::default(),
        root: Hash([2; 32]),
        total: 3,
        entities: entities[1..].to_vec(),
        satisfied: vec![],
        next: None,
    };
    r.handle_response(T0, peer, id, second);
    let events = events_in(&drain_outputs(&mut r));
    assert!(
        matches!(
            sessions_of(&events).as_slice(),
            [(
                _,
                Protocol::Snapshot,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(_)))
            )]
        ),
        "{events:?}"
    );
    assert!(r.state().is_empty());
}

#[test]
fn a_peer_with_nothing_refuses_to_snapshot() {
    // Two founders that have not received the genesis: nothing to snapshot.
    let mut sim = Sim::empty(1);
    sim.add_node(manual_config());
    sim.add_node(manual_config());
    let (now, asker) = (sim.now, sim.nodes[1].id);
    sim.nodes[0]
        .replica
        .handle_request(now, asker, 5, Request::Snapshot { cursor: None });
    let out = drain_outputs(&mut sim.nodes[0].replica);
    assert!(matches!(
        out.as_slice(),
        [tabmesh_sync::Output::Send {
            message: Message::Response {
                id: 5,
                body: Response::Refused(tabmesh_sync::Refusal::NothingToSnapshot)
            },
            ..
        }]
    ));
}

#[test]
fn a_state_of_large_values_is_snapshotted_in_frames_under_max_frame() {
    // 70 registers of 64 KiB: 4.4 MiB of state, more than one frame. Every page must fit in a
    // frame (the driver checks each one), whatever the entity count per page.
    let mut sim = Sim::manual(1);
    let value = vec![7u8; tabmesh_state::MAX_VALUE_LEN];
    for k in 0..70u8 {
        sim.put(0, &[k], &value);
    }
    let j = join(&mut sim, manual_config());
    sim.deliver_all();
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    sim.assert_converged();
}

#[test]
fn a_snapshot_longer_than_it_announced_is_refused() {
    // A peer announces 3 entities and never stops sending pages of new ones: the joiner must stop
    // once it has received more than announced, not stage an unbounded state.
    let peer = NodeId([9; 32]);
    let (mut r, mut id) = joiner_asking_for_a_snapshot(peer);
    let mut writer = Sim::manual(1);
    for page in 0..50u32 {
        writer.put(0, &page.to_le_bytes(), b"v");
        let entities: Vec<_> = writer.r(0).state().entities().cloned().collect();
        let response = Response::SnapshotPage {
            heads: vec![],
            heads_stamp: Hlc::default(),
            root: Hash([1; 32]),
            total: 3,
            entities,
            satisfied: vec![],
            next: Some(tabmesh_sync::SnapshotCursor {
                snapshot: 1,
                index: u64::from(page) + 1,
            }),
        };
        r.handle_response(T0, peer, id, response);
        let out = drain_outputs(&mut r);
        match requests_in(&out)[..] {
            [(_, next, Request::Snapshot { cursor: Some(_) })] => id = next,
            _ => {
                let events = events_in(&out);
                assert!(
                    matches!(
                        sessions_of(&events).as_slice(),
                        [(_, Protocol::Snapshot, SessionOutcome::Failed(_))]
                    ),
                    "{events:?}"
                );
                assert!(page >= 1);
                assert!(r.state().is_empty());
                return;
            }
        }
    }
    panic!(
        "the joiner accepted 50 pages (and ~1300 entities) of a snapshot announced as 3 entities"
    );
}

#[test]
fn joiners_contending_for_snapshot_slots_all_join() {
    let mut config = paged_config();
    config.max_snapshot_sessions = 1;
    config.tick_ms = 10_000;
    let mut sim = populated(20, config.clone());
    let joiners: Vec<usize> = (0..3).map(|_| sim.add_node(config.clone())).collect();
    for &j in &joiners {
        // They join from the populated node only.
        for &other in &joiners {
            if other != j {
                let (now, id) = (sim.now, sim.nodes[other].id);
                sim.nodes[j].replica.remove_peer(now, id);
                sim.drain(j);
            }
        }
    }
    let done = sim.run_until(300_000, |s| joiners.iter().all(|j| s.root(*j) == s.root(0)));
    assert!(done, "a joiner never got a snapshot");
    for &j in &joiners {
        assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    }
    sim.assert_converged();
}

/// S (0) and K (1) share a genesis; K misses S's next five deltas (S's clock `ahead_ms` ahead).
fn s_writes_what_k_misses(ahead_ms: u64) -> (Sim, SyncConfig) {
    let mut config = manual_config();
    config.tick_ms = 10_000;
    let mut sim = Sim::manual_with(2, config.clone());
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    if ahead_ms > 0 {
        sim.nodes[0].clock = HlcClock::resume(Hlc::new(sim.now + ahead_ms, 0));
    }
    for k in 0..5u8 {
        sim.put(0, &[k], b"from s");
    }
    (sim, config)
}

/// J joins from S alone (not K), by snapshot; returns J.
fn j_joins_from_s(sim: &mut Sim, config: SyncConfig) -> usize {
    let j = sim.add_node(config);
    let (now, k_id) = (sim.now, sim.nodes[1].id);
    sim.nodes[j].replica.remove_peer(now, k_id);
    sim.drain(j);
    sim.run_for(1);
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    j
}

/// S leaves for good: K and J only have each other.
fn s_leaves(sim: &mut Sim, j: usize) {
    let (now, s_id, k_id) = (sim.now, sim.nodes[0].id, sim.nodes[1].id);
    sim.nodes[j].replica.add_peer(now, k_id);
    sim.drain(j);
    for i in [1, j] {
        sim.nodes[i].replica.remove_peer(now, s_id);
        sim.drain(i);
    }
    sim.cut.extend([(0, 1), (1, 0), (0, j), (j, 0)]);
    sim.drop_broadcasts = false;
}

#[test]
fn a_joiner_passes_on_what_its_snapshot_holds() {
    // S (0) and K (1) share a genesis; K misses S's next deltas. J (2) joins from S by snapshot.
    // Then S leaves for good: K can only catch up from J, which holds S's whole state.
    let (mut sim, config) = s_writes_what_k_misses(0);
    let j = j_joins_from_s(&mut sim, config);
    sim.assert_pair_converged(0, j);
    s_leaves(&mut sim, j);

    let done = sim.run_until(300_000, |s| s.root(1) == s.root(j));
    assert!(
        done,
        "K and J never converge; their last sessions: K {:?}, J {:?}",
        sim.sessions(1).last(),
        sim.sessions(j).last()
    );
    sim.assert_pair_converged(1, j);
}

#[test]
fn a_failed_snapshot_loses_none_of_its_buffered_deltas() {
    let mut config = paged_config();
    config.tick_ms = 10_000;
    let mut sim = Sim::manual_with(2, config.clone());
    for k in 0..20u8 {
        sim.put(0, &[k], b"v");
    }
    sim.deliver_all();
    sim.assert_converged();
    let j = join(&mut sim, config);
    until_second_page(&mut sim, j);
    // The snapshot's server vanishes mid-stream; the other server keeps writing.
    let server = sim.peek().unwrap().to;
    let other = 1 - server;
    sim.cut.extend([(j, server), (server, j)]);
    let d = sim.put(other, b"during", b"!");
    sim.deliver_all();
    assert!(sim.r(j).metrics().buffered >= 1);
    assert_eq!(sim.r(j).metrics().snapshots_installed, 0);
    let done = sim.run_until(300_000, |s| {
        s.root(j) == s.root(other) && !s.r(j).has_pending()
    });
    assert!(done, "sessions: {:?}", sim.sessions(j));
    assert!(sim
        .sessions(j)
        .iter()
        .any(|(_, p, o)| *p == Protocol::Snapshot && matches!(o, SessionOutcome::Failed(_))));
    // It caught up by a second snapshot, or by pulling the replayed delta's ancestry: either way
    // the delta that arrived mid-snapshot was not lost.
    assert!(sim.r(j).metrics().snapshots_installed <= 1);
    assert!(sim.r(j).dag().is_applied(&d));
    sim.assert_pair_converged(j, other);
}

#[test]
fn an_empty_replica_whose_peer_is_empty_too_asks_another_peer_at_once() {
    // Two replicas catch up at once (two joiners): C asks B first, which holds nothing either;
    // meanwhile it learned of A, which has state. It asks A as soon as B's answer shows
    // nothing, not a sync tick later.
    let mut sim = Sim::manual(1);
    sim.put(0, b"a", b"1");
    let b = sim.add_node(manual_config());
    let c = sim.add_node(manual_config());
    let (ida, idb) = (sim.nodes[0].id, sim.nodes[b].id);
    let now = sim.now;
    for (i, peer) in [(b, ida), (c, ida)] {
        sim.nodes[i].replica.remove_peer(now, peer);
        sim.drain(i);
    }
    sim.nodes[c].replica.handle_timeout(now);
    sim.drain(c);
    sim.nodes[c].replica.add_peer(now, ida);
    sim.drain(c);
    sim.deliver_all();
    // B's answer showed nothing: C's timer is due at once (a session with B just ended, but a
    // replica holding nothing does not wait out the interval between sessions).
    assert_eq!(sim.nodes[c].replica.poll_timeout(), now);
    sim.nodes[c].replica.handle_timeout(now);
    sim.drain(c);
    sim.deliver_all();
    assert_eq!(sim.now, now, "no time passed");
    let sessions = sim.sessions(c);
    assert!(
        matches!(
            sessions.as_slice(),
            [
                (p, Protocol::None, SessionOutcome::InSync),
                (q, Protocol::Snapshot, SessionOutcome::Converged { .. }),
            ] if *p == idb && *q == ida
        ),
        "{sessions:?}"
    );
    sim.assert_pair_converged(0, c);
    // B, alone with C, found it empty and has no one else to ask: no session storm.
    let sessions = sim.sessions(b);
    assert!(sessions.len() <= 1, "{sessions:?}");
}

#[test]
fn covered_heads_keep_the_stamp_their_peer_vouched_for_through_a_snapshot_a_repair_and_a_restart() {
    // S (0), whose clock is 20 s ahead, writes what K (1) misses; J (2) joins from S by
    // snapshot, holding S's heads as state only; then K catches up from J alone (a state
    // comparison: J has no deltas to send). Neither holds those heads' deltas, yet a governance
    // operation either writes on them (a join, on a real invitee) must be stamped after them:
    // the stamp travels with the snapshot and the summary, and is kept across a restart.
    let (mut sim, config) = s_writes_what_k_misses(20_000);
    let heads = sim.r(0).dag().heads();
    let stamp = heads
        .iter()
        .map(|h| sim.r(0).dag().get(h).unwrap().hlc)
        .max()
        .unwrap();
    assert!(stamp > Hlc::new(sim.now + 10_000, 0));
    assert_eq!(sim.r(0).summary().heads_stamp, stamp);
    let j = j_joins_from_s(&mut sim, config);
    assert_eq!(sim.r(j).dag().heads(), heads);
    assert!(heads.iter().all(|h| sim.r(j).dag().get(h).is_none()));
    assert_eq!(sim.r(j).heads_stamp(), stamp);
    assert_eq!(sim.r(j).summary().heads_stamp, stamp);

    // S leaves; K catches up from J.
    s_leaves(&mut sim, j);
    let done = sim.run_until(300_000, |s| {
        heads.iter().all(|h| s.r(1).dag().is_applied(h))
    });
    assert!(
        done,
        "K never covered S's heads: {:?}",
        sim.sessions(1).last()
    );
    assert!(heads.iter().all(|h| sim.r(1).dag().get(h).is_none()));
    assert_eq!(sim.r(1).heads_stamp(), stamp);

    for i in [1, j] {
        sim.reopen(i);
        assert_eq!(sim.r(i).heads_stamp(), stamp, "node {i} after a restart");
    }
    // K's clock is behind those stamps; what it governs on them is stamped after them anyway.
    let before = sim.r(1).dag().heads();
    let removal = sim.govern(1, GovOp::Remove { member: member(1) });
    let env = sim.nodes[1].broadcasts.last().unwrap().clone();
    assert_eq!(env.id(), removal);
    assert_eq!(env.parents, before);
    assert!(env.hlc > stamp, "{:?} after {stamp:?}", env.hlc);
}
