//! Periodic sync: summaries, delta sync (paged), failures.

use tabmesh_testkit::test;

use tabmesh_sync::{
    Message, Protocol, Request, Response, SessionFailure, SessionOutcome, MAX_DELTAS,
};

use super::support::Sim;

#[test]
fn a_replica_that_missed_broadcasts_catches_up_by_delta_sync() {
    let mut sim = Sim::new(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    for k in 0..10u8 {
        sim.put(0, &[k], &[k]);
    }
    let caught_up = sim.run_until(60_000, |s| s.root(1) == s.root(0));
    assert!(caught_up);
    sim.deliver_all();
    let id0 = sim.nodes[0].id;
    assert!(
        sim.sessions(1).contains(&(
            id0,
            Protocol::DeltaSync,
            SessionOutcome::Pulled { deltas: 10 }
        )),
        "{:?}",
        sim.sessions(1)
    );
    assert_eq!(sim.r(1).dag().heads(), sim.r(0).dag().heads());
    // The genesis, `g` and the 10 pulled.
    assert_eq!(sim.r(1).metrics().deltas_applied, 12);
    // The one ahead never needed anything.
    assert!(sim
        .sessions(0)
        .iter()
        .all(|(_, p, o)| *p == Protocol::None && *o == SessionOutcome::InSync));
    sim.assert_converged();
}

#[test]
fn delta_sync_pages_through_a_long_gap() {
    let mut sim = Sim::new(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    let n = 2 * MAX_DELTAS as u32 + 100;
    for k in 0..n {
        sim.put(0, &k.to_le_bytes(), b"");
    }
    let behind = n;
    assert!(sim.run_until(60_000, |s| s.root(1) == s.root(0)));
    sim.deliver_all();
    let id0 = sim.nodes[0].id;
    assert!(
        sim.sessions(1).contains(&(
            id0,
            Protocol::DeltaSync,
            SessionOutcome::Pulled {
                deltas: u64::from(behind)
            }
        )),
        "{:?}",
        sim.sessions(1)
    );
    let pages: Vec<(usize, Option<u64>)> = sim
        .log
        .iter()
        .filter(|d| d.to == 1)
        .filter_map(|d| match &d.message {
            Message::Response {
                body: Response::Deltas { deltas, next, .. },
                ..
            } => Some((deltas.len(), *next)),
            _ => None,
        })
        .collect();
    assert!(pages.len() >= 3, "{pages:?}");
    assert!(pages.iter().all(|(len, _)| *len <= MAX_DELTAS));
    assert_eq!(
        pages.iter().map(|(len, _)| *len as u32).sum::<u32>(),
        behind
    );
    assert_eq!(
        pages.iter().filter(|(_, next)| next.is_some()).count(),
        pages.len() - 1
    );
    assert_eq!(
        sim.requests_sent(1, 0, |r| matches!(
            r,
            Request::DeltasSince {
                cursor: Some(_),
                ..
            }
        )),
        pages.len() - 1
    );
    sim.assert_converged();
}

#[test]
fn concurrent_histories_converge_through_periodic_sync_alone() {
    let mut sim = Sim::new(3);
    sim.drop_broadcasts = true;
    // No shared genesis: each replica starts its own history.
    for i in 0..3 {
        for k in 0..4u8 {
            sim.put(i, &[i as u8, k], &[k]);
        }
        sim.write(i, |t| t.counter("c")?.increment(i as u64 + 1));
        sim.del(i, &[i as u8, 0]);
    }
    let done = sim.run_until(300_000, |s| (1..3).all(|i| s.root(i) == s.root(0)));
    assert!(done, "no convergence by periodic sync");
    sim.deliver_all();
    sim.assert_converged();
    for i in 0..3 {
        assert_eq!(sim.r(i).state().counter("c").unwrap().value(), 6);
        assert_eq!(sim.entries(i).len(), 9);
        assert!(!sim.r(i).has_pending());
    }
}

#[test]
fn the_replica_ahead_runs_no_protocol() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(0, b"k", b"v");
    let before = sim.r(0).metrics().sessions;
    sim.sync_now(0);
    sim.deliver_all();
    let id1 = sim.nodes[1].id;
    assert_eq!(
        sim.sessions(0),
        vec![(id1, Protocol::None, SessionOutcome::InSync)]
    );
    assert_ne!(sim.root(0), sim.root(1));
    let after = sim.r(0).metrics().sessions;
    assert_eq!(after[0], before[0] + 1);
    assert_eq!(after[1..], before[1..]);
    assert!(sim.r(0).is_idle());
}

#[test]
fn equal_states_run_no_protocol() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.sync_now(1);
    sim.deliver_all();
    let id0 = sim.nodes[0].id;
    assert_eq!(
        sim.sessions(1),
        vec![(id0, Protocol::None, SessionOutcome::InSync)]
    );
}

#[test]
fn a_session_with_an_unreachable_peer_times_out() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.cut.insert((1, 0));
    sim.sync_now(1);
    assert!(!sim.r(1).is_idle());
    sim.run_for(60_000);
    let id0 = sim.nodes[0].id;
    assert!(matches!(
        sim.sessions(1).as_slice(),
        [(p, _, SessionOutcome::Failed(SessionFailure::Timeout))] if *p == id0
    ));
    assert_eq!(sim.r(1).metrics().sessions_failed, 1);
    assert!(sim.r(1).metrics().timeouts >= 1);
    assert!(sim.r(1).is_idle());
}

#[test]
fn a_peer_that_leaves_fails_its_session_at_once() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.sync_now(1);
    let id0 = sim.nodes[0].id;
    let now = sim.now;
    sim.nodes[1].replica.remove_peer(now, id0);
    sim.drain(1);
    assert!(matches!(
        sim.sessions(1).as_slice(),
        [(p, _, SessionOutcome::Failed(SessionFailure::PeerGone))] if *p == id0
    ));
    assert!(sim.r(1).is_idle());
    // Its late answer is refused as unexpected.
    sim.deliver_all();
    assert!(!sim.rejections(1).is_empty());
    assert_eq!(sim.r(1).peers().count(), 0);
}

#[test]
fn deltas_written_during_a_paged_delta_sync_come_in_later_pages() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    for k in 0..(MAX_DELTAS as u32 + 50) {
        sim.put(0, &k.to_le_bytes(), b"");
    }
    sim.sync_now(1);
    // Between the first and the second page, the server writes more.
    let found = sim.deliver_until(|_, p| {
        p.from == 1
            && matches!(
                p.request(),
                Some(Request::DeltasSince {
                    cursor: Some(_),
                    ..
                })
            )
    });
    assert!(found);
    for k in 0..10u32 {
        sim.put(0, &(1_000_000 + k).to_le_bytes(), b"late");
    }
    sim.deliver_all();
    let id0 = sim.nodes[0].id;
    assert_eq!(
        sim.sessions(1),
        vec![(
            id0,
            Protocol::DeltaSync,
            SessionOutcome::Pulled {
                deltas: MAX_DELTAS as u64 + 60
            }
        )]
    );
    assert_eq!(sim.r(1).metrics().duplicates, 0, "no delta is sent twice");
    sim.assert_converged();
}

#[test]
fn a_delta_sync_after_concurrent_writes_sends_only_what_is_missing() {
    // 300 shared deltas, then one write on each side (both broadcasts lost). Catching up needs
    // one delta; the requester's head is unknown to the server, which must not make it resend the
    // whole shared history.
    let mut sim = Sim::manual(2);
    for k in 0..300u32 {
        sim.put(0, &k.to_le_bytes(), b"");
    }
    sim.deliver_all();
    sim.drop_broadcasts = true;
    sim.put(0, b"a", b"1");
    sim.put(1, b"b", b"2");
    sim.sync_now(1);
    sim.deliver_all();
    let id0 = sim.nodes[0].id;
    assert_eq!(
        sim.sessions(1),
        vec![(
            id0,
            Protocol::DeltaSync,
            SessionOutcome::Pulled { deltas: 1 }
        )],
        "{} duplicates received",
        sim.r(1).metrics().duplicates
    );
}
