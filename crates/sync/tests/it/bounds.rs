//! Bounds on what a peer may ask or answer: oversized requests are refused, stray responses are
//! rejected, answers stay within their documented limits.

use tabmesh_testkit::test;

use tabmesh_base::{DeltaId, DetRng, EntityId, NodeId};
use tabmesh_sync::{
    Frame, Message, Refusal, Request, Response, SnapshotCursor, SyncConfig, SyncError, SyncEvent,
    TreeRef, MAX_DELTAS, MAX_ENTITIES, MAX_FRAME, MAX_IDS, MAX_TREE_NODES,
};

use super::support::{ctx, drain_outputs, events_in, node_id, response_in, Sim};

/// Node 0 with some history and state, node 1 as the asking peer.
fn server() -> Sim {
    let mut sim = Sim::manual(2);
    for k in 0..40u8 {
        sim.put(0, &[k], &[k; 8]);
    }
    sim.deliver_all();
    sim
}

fn ask(sim: &mut Sim, from: usize, request: Request) -> Response {
    let now = sim.now;
    let from_id = sim.nodes[from].id;
    sim.nodes[0]
        .replica
        .handle_request(now, from_id, 77, request);
    let out = drain_outputs(&mut sim.nodes[0].replica);
    response_in(&out)
}

fn random_ids(n: usize) -> Vec<DeltaId> {
    (0..n)
        .map(|i| DeltaId(DetRng::new(i as u64 + 1).bytes()))
        .collect()
}

#[test]
fn a_tree_request_over_the_bound_is_refused() {
    let mut sim = server();
    let nodes = vec![
        TreeRef {
            owner: None,
            path: vec![]
        };
        MAX_TREE_NODES + 1
    ];
    assert_eq!(
        ask(&mut sim, 1, Request::Tree { nodes }),
        Response::Refused(Refusal::Invalid)
    );
    // At the bound it is answered, one node per address.
    let nodes = vec![
        TreeRef {
            owner: None,
            path: vec![]
        };
        MAX_TREE_NODES
    ];
    match ask(&mut sim, 1, Request::Tree { nodes }) {
        Response::Tree { nodes } => assert_eq!(nodes.len(), MAX_TREE_NODES),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deltas_since_with_too_many_known_heads_is_refused() {
    let mut sim = server();
    let known = random_ids(tabmesh_dag::MAX_KNOWN_HEADS + 1);
    assert_eq!(
        ask(
            &mut sim,
            1,
            Request::DeltasSince {
                known,
                cursor: None
            }
        ),
        Response::Refused(Refusal::Invalid)
    );
    let known = random_ids(tabmesh_dag::MAX_KNOWN_HEADS);
    assert!(matches!(
        ask(
            &mut sim,
            1,
            Request::DeltasSince {
                known,
                cursor: None
            }
        ),
        Response::Deltas { .. }
    ));
}

#[test]
fn a_push_over_the_bound_is_refused_and_changes_nothing() {
    let mut sim = server();
    let root = sim.root(0);
    let one = sim.r(0).state().entities().next().unwrap().clone();
    assert_eq!(
        ask(
            &mut sim,
            1,
            Request::Push {
                entities: vec![one; MAX_ENTITIES + 1]
            }
        ),
        Response::Refused(Refusal::Invalid)
    );
    assert_eq!(sim.root(0), root);
}

#[test]
fn a_push_the_state_refuses_is_refused_and_reported() {
    let mut sim = server();
    let root = sim.root(0);
    // The test map's state from another replica where "m" is a counter: a type clash.
    let mut other = Sim::manual(1);
    other.write(0, |t| t.counter("m")?.increment(1));
    let entities: Vec<_> = other.r(0).state().entities().cloned().collect();
    assert_eq!(
        ask(&mut sim, 1, Request::Push { entities }),
        Response::Refused(Refusal::Invalid)
    );
    assert_eq!(sim.root(0), root);
}

#[test]
fn answers_to_large_requests_stay_within_their_bounds() {
    let mut sim = Sim::manual(2);
    for k in 0..300u32 {
        sim.put(0, &k.to_le_bytes(), &[1; 64]);
    }
    let all: Vec<DeltaId> = sim.nodes[0].broadcasts.iter().map(|e| e.id()).collect();
    let mut ids = all.clone();
    ids.extend(random_ids(MAX_IDS + 10 - ids.len()));
    match ask(&mut sim, 1, Request::Deltas { ids }) {
        Response::Deltas {
            deltas,
            unavailable,
            ..
        } => {
            assert!(deltas.len() <= MAX_DELTAS);
            assert!(deltas.len() + unavailable.len() <= MAX_IDS);
            let f = Frame {
                context: ctx(),
                message: Message::Response {
                    id: 1,
                    body: Response::Deltas {
                        deltas,
                        next: None,
                        unavailable,
                        history_pruned: false,
                    },
                },
            };
            assert!(f.encode().len() <= MAX_FRAME);
            assert!(
                Frame::decode(&f.encode()).is_ok(),
                "an answer must be decodable"
            );
        }
        other => panic!("{other:?}"),
    }
    match ask(
        &mut sim,
        1,
        Request::DeltasSince {
            known: vec![],
            cursor: None,
        },
    ) {
        Response::Deltas { deltas, next, .. } => {
            // A page is the configured size (never over the wire bound), and says more follow.
            assert_eq!(deltas.len(), SyncConfig::default().since_page);
            assert!(SyncConfig::default().since_page <= MAX_DELTAS);
            assert!(next.is_some());
        }
        other => panic!("{other:?}"),
    }
    let ids: Vec<EntityId> = sim.r(0).state().entities().map(|a| a.id()).collect();
    let mut asked = ids.clone();
    asked.extend((0..MAX_IDS).map(|i| EntityId(DetRng::new(i as u64).bytes())));
    match ask(&mut sim, 1, Request::Entities { ids: asked }) {
        Response::Entities { entities } => assert!(entities.len() <= MAX_ENTITIES),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_response_from_the_wrong_peer_is_rejected() {
    let mut sim = Sim::manual(3);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.sync_now(1);
    let packet = sim.queue.pop_front().unwrap();
    let Some(Request::Summary) = packet.request() else {
        panic!("{packet:?}")
    };
    let Message::Request { id, .. } = packet.frame().message else {
        unreachable!()
    };
    assert_eq!(sim.nodes[1].id, node_id(1));
    let to = sim.nodes[packet.to].id;
    // Node 2 (not asked) answers in the peer's place.
    let wrong = if to == node_id(0) {
        node_id(2)
    } else {
        node_id(0)
    };
    let now = sim.now;
    let summary = sim.r(0).summary();
    sim.nodes[1]
        .replica
        .handle_response(now, wrong, id, Response::Summary(summary.clone()));
    let events = events_in(&drain_outputs(&mut sim.nodes[1].replica));
    assert_eq!(
        events,
        vec![SyncEvent::Rejected {
            from: Some(wrong),
            error: SyncError::UnexpectedResponse { id }
        }]
    );
    // The real answer is still expected.
    assert!(!sim.r(1).is_idle());
    sim.nodes[1]
        .replica
        .handle_response(now, to, id, Response::Summary(summary));
    let events = events_in(&drain_outputs(&mut sim.nodes[1].replica));
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, SyncEvent::Rejected { .. })),
        "{events:?}"
    );
}

#[test]
fn a_response_with_an_unknown_id_is_rejected() {
    let mut sim = Sim::manual(2);
    let now = sim.now;
    let peer = node_id(0);
    let before = sim.r(1).summary();
    for id in [0, 12_345, u64::MAX] {
        sim.nodes[1]
            .replica
            .handle_response(now, peer, id, Response::PushAck { applied: 1 });
        let events = events_in(&drain_outputs(&mut sim.nodes[1].replica));
        assert_eq!(
            events,
            vec![SyncEvent::Rejected {
                from: Some(peer),
                error: SyncError::UnexpectedResponse { id }
            }]
        );
    }
    assert!(sim.r(1).is_idle());
    assert_eq!(sim.r(1).summary(), before, "nothing changed");
}

#[test]
fn a_duplicated_response_is_rejected() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    sim.sync_now(1);
    sim.step();
    let answer = sim.queue.front().unwrap().clone();
    sim.step();
    let before = sim.rejections(1).len();
    sim.deliver(answer);
    let rejections = sim.rejections(1);
    assert_eq!(rejections.len(), before + 1);
    assert!(matches!(
        rejections.last(),
        Some((_, SyncError::UnexpectedResponse { .. }))
    ));
}

/// Node 0 with 40 entries served 4 per snapshot page.
fn paged_server() -> Sim {
    let mut config = super::support::manual_config();
    config.snapshot_page_entities = 4;
    let mut sim = Sim::manual_with(3, config);
    for k in 0..40u8 {
        sim.put(0, &[k], b"v");
    }
    sim.deliver_all();
    sim
}

#[test]
fn a_snapshot_cursor_of_another_peer_is_refused() {
    let mut sim = paged_server();
    let Response::SnapshotPage {
        next: Some(cursor), ..
    } = ask(&mut sim, 1, Request::Snapshot { cursor: None })
    else {
        panic!("expected a first page with more to come")
    };
    assert_eq!(
        ask(
            &mut sim,
            2,
            Request::Snapshot {
                cursor: Some(cursor)
            }
        ),
        Response::Refused(Refusal::Invalid)
    );
    // The peer it was frozen for resumes it.
    assert!(matches!(
        ask(
            &mut sim,
            1,
            Request::Snapshot {
                cursor: Some(cursor)
            }
        ),
        Response::SnapshotPage { .. }
    ));
}

#[test]
fn snapshot_cursors_that_do_not_exist_are_refused() {
    let mut sim = paged_server();
    for cursor in [
        SnapshotCursor {
            snapshot: 0,
            index: 0,
        },
        SnapshotCursor {
            snapshot: 99,
            index: 1,
        },
        SnapshotCursor {
            snapshot: u64::MAX,
            index: u64::MAX,
        },
    ] {
        assert_eq!(
            ask(
                &mut sim,
                1,
                Request::Snapshot {
                    cursor: Some(cursor)
                }
            ),
            Response::Refused(Refusal::Invalid)
        );
    }
}

#[test]
fn a_snapshot_cursor_far_past_the_end_ends_the_stream() {
    let mut sim = paged_server();
    let Response::SnapshotPage {
        next: Some(cursor),
        total,
        ..
    } = ask(&mut sim, 1, Request::Snapshot { cursor: None })
    else {
        panic!()
    };
    assert_eq!(total, 41);
    let far = SnapshotCursor {
        snapshot: cursor.snapshot,
        index: u64::MAX,
    };
    match ask(&mut sim, 1, Request::Snapshot { cursor: Some(far) }) {
        Response::SnapshotPage { next, entities, .. } => {
            assert!(next.is_none());
            assert!(entities.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // That was the end of the stream: the copy is gone.
    assert_eq!(
        ask(
            &mut sim,
            1,
            Request::Snapshot {
                cursor: Some(cursor)
            }
        ),
        Response::Refused(Refusal::Invalid)
    );
}

#[test]
fn snapshot_streams_of_many_joiners_stay_bounded() {
    let mut sim = paged_server();
    let max = sim.nodes[0].config.max_snapshot_sessions;
    // More joiners than frozen copies allowed: the oldest copies go, the newest still resume.
    let mut cursors = Vec::new();
    for p in 0..(max + 2) {
        let now = sim.now;
        let peer = NodeId([200 + p as u8; 32]);
        sim.nodes[0]
            .replica
            .handle_request(now, peer, 1, Request::Snapshot { cursor: None });
        let Response::SnapshotPage { next: Some(c), .. } =
            response_in(&drain_outputs(&mut sim.nodes[0].replica))
        else {
            panic!()
        };
        cursors.push((peer, c));
    }
    let mut alive = 0;
    for (peer, c) in cursors {
        let now = sim.now;
        sim.nodes[0]
            .replica
            .handle_request(now, peer, 2, Request::Snapshot { cursor: Some(c) });
        if let Response::SnapshotPage { .. } =
            response_in(&drain_outputs(&mut sim.nodes[0].replica))
        {
            alive += 1;
        }
    }
    assert_eq!(alive, max);
}

#[test]
fn a_flood_of_requests_is_rate_limited_per_peer_and_the_budget_refills() {
    let mut config = super::support::manual_config();
    config.requests_per_sec = 100;
    config.request_burst = 20;
    let mut sim = Sim::manual_with(2, config);
    sim.put(0, b"k", b"v");
    sim.deliver_all();
    let now = sim.now;
    // Two peers that have not asked anything yet (the bucket is the server's, per peer id).
    let (flooder, other) = (NodeId([7; 32]), NodeId([8; 32]));
    let ask_at = |sim: &mut Sim, at: u64, from: NodeId| {
        sim.nodes[0]
            .replica
            .handle_request(at, from, 1, Request::Summary);
        let out = drain_outputs(&mut sim.nodes[0].replica);
        let answered = out.iter().any(|o| {
            matches!(
                o,
                tabmesh_sync::Output::Send {
                    message: Message::Response { .. },
                    ..
                }
            )
        });
        let limited = events_in(&out).iter().any(|e| {
            matches!(e, SyncEvent::Rejected { from: Some(f), error: SyncError::RateLimited { per_sec: 100 } } if *f == from)
        });
        assert_ne!(answered, limited, "either answered or reported as limited");
        answered
    };
    // The burst is served, then nothing more at the same instant.
    let served = (0..100).filter(|_| ask_at(&mut sim, now, flooder)).count();
    assert_eq!(served, 20);
    assert_eq!(sim.nodes[0].replica.metrics().requests_limited, 80);
    // Another peer has its own budget.
    assert!(ask_at(&mut sim, now, other));
    // 50 ms later, five more (100 per second).
    let served = (0..100)
        .filter(|_| ask_at(&mut sim, now + 50, flooder))
        .count();
    assert_eq!(served, 5);
    // After a long pause, a full burst again, never more.
    let served = (0..100)
        .filter(|_| ask_at(&mut sim, now + 60_000, flooder))
        .count();
    assert_eq!(served, 20);
    // The replica still works for everyone: its state is unchanged and it answers in time.
    assert!(ask_at(&mut sim, now + 61_000, flooder));
}
