use tabmesh_base::{codec::Writer, ContextId, Hlc, KvRead, MemoryKv, NodeId, MAX_DRIFT_MS};
use tabmesh_node::{NodeConfig, NodeCore, NodeError, NodeEvent, Output, TimerKey};
use tabmesh_sync::{Envelope, Frame, Message, Refusal, Request, Response, SyncError};
use tabmesh_testkit::test;

const CTX: ContextId = ContextId([3; 32]);
const T0: u64 = 1_767_225_600_000;

fn node(n: u8) -> NodeCore {
    NodeCore::new(NodeId([n; 32]), NodeConfig::default(), u64::from(n))
}

fn drain(node: &mut NodeCore, disk: &mut MemoryKv) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(o) = node.poll_output() {
        if let Output::Persist(b) = &o {
            disk.apply(b);
        }
        out.push(o);
    }
    out
}

#[test]
fn a_commit_persists_before_it_publishes_and_arms_the_context_timer() {
    let mut a = node(1);
    let mut disk = MemoryKv::new();
    a.open_context(T0, CTX).unwrap();
    let opened = drain(&mut a, &mut disk);
    assert!(opened.contains(&Output::Subscribe(CTX)));
    assert!(opened
        .iter()
        .any(|o| matches!(o, Output::ArmTimer { key: TimerKey::Context(c), .. } if *c == CTX)));

    let ((), id) = a
        .commit(T0 + 5, CTX, |txn| {
            txn.register("title")?.set(b"hi")?;
            Ok(())
        })
        .unwrap();
    let out = drain(&mut a, &mut disk);
    let persist = out
        .iter()
        .position(|o| matches!(o, Output::Persist(_)))
        .expect("a persist");
    let publish = out
        .iter()
        .position(|o| matches!(o, Output::Publish { .. }))
        .expect("a publish");
    assert!(persist < publish, "{out:?}");
    let Some(Output::Publish { delta, bytes, .. }) = out.get(publish) else {
        panic!()
    };
    assert_eq!(Some(*delta), id);
    let Message::Delta(env) = Frame::decode(bytes).unwrap().message else {
        panic!()
    };
    assert_eq!(env.id(), *delta);
    // Exactly one persist batch for the commit.
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Persist(_)))
            .count(),
        1
    );
}

#[test]
fn a_restarted_node_has_its_contexts_state_and_clock() {
    let mut a = node(1);
    let mut disk = MemoryKv::new();
    a.open_context(T0, CTX).unwrap();
    for i in 0..5u64 {
        a.commit(T0 + i, CTX, |txn| {
            txn.counter("n")?.increment(1)?;
            Ok(())
        })
        .unwrap();
    }
    drain(&mut a, &mut disk);
    let clock = a.clock();

    // Restart with the wall clock an hour behind: the clock resumes, it does not go back.
    let mut b = NodeCore::load(
        NodeId([1; 32]),
        NodeConfig::default(),
        9,
        T0 - 3_600_000,
        &disk,
    )
    .unwrap();
    let out = drain(&mut b, &mut MemoryKv::new());
    assert!(out.contains(&Output::Subscribe(CTX)));
    assert_eq!(b.contexts().collect::<Vec<_>>(), vec![CTX]);
    assert_eq!(b.state(&CTX).unwrap().counter("n").unwrap().value(), 5);
    assert_eq!(
        b.state(&CTX).unwrap().root_hash(),
        a.state(&CTX).unwrap().root_hash()
    );
    assert_eq!(b.clock(), clock);
    b.commit(T0 - 3_600_000, CTX, |txn| {
        txn.counter("n")?.increment(1)?;
        Ok(())
    })
    .unwrap();
    assert!(b.clock() > clock);
}

#[test]
fn two_nodes_converge_through_their_outputs() {
    let (mut a, mut b) = (node(1), node(2));
    let (mut da, mut db) = (MemoryKv::new(), MemoryKv::new());
    for n in [&mut a, &mut b] {
        n.open_context(T0, CTX).unwrap();
    }
    a.peer_joined(T0, CTX, b.id());
    b.peer_joined(T0, CTX, a.id());
    a.commit(T0 + 1, CTX, |txn| {
        txn.text("doc")?.insert(0, "hello")?;
        Ok(())
    })
    .unwrap();
    b.commit(T0 + 2, CTX, |txn| {
        txn.text("doc")?.insert(0, "world ")?;
        Ok(())
    })
    .unwrap();
    // Route publishes and sends until both are quiet.
    let mut now = T0 + 10;
    for _ in 0..50 {
        let oa = drain(&mut a, &mut da);
        let ob = drain(&mut b, &mut db);
        if oa
            .iter()
            .chain(&ob)
            .all(|o| !matches!(o, Output::Publish { .. } | Output::Send { .. }))
        {
            break;
        }
        for o in oa {
            match o {
                Output::Publish { bytes, .. } | Output::Send { bytes, .. } => {
                    b.handle_message(now, a.id(), &bytes)
                }
                _ => {}
            }
        }
        for o in ob {
            match o {
                Output::Publish { bytes, .. } | Output::Send { bytes, .. } => {
                    a.handle_message(now, b.id(), &bytes)
                }
                _ => {}
            }
        }
        now += 5;
    }
    let (sa, sb) = (a.state(&CTX).unwrap(), b.state(&CTX).unwrap());
    assert_eq!(sa.root_hash(), sb.root_hash());
    assert_eq!(
        sa.text("doc").unwrap().to_string(),
        sb.text("doc").unwrap().to_string()
    );
    assert_eq!(sa.text("doc").unwrap().len(), 11);
    // Both wrote their batches: reopening either gives the same root.
    let ra = NodeCore::load(a.id(), NodeConfig::default(), 1, now, &da).unwrap();
    assert_eq!(ra.state(&CTX).unwrap().root_hash(), sa.root_hash());
}

#[test]
fn garbage_bytes_are_reported_and_change_nothing() {
    let mut a = node(1);
    let mut disk = MemoryKv::new();
    a.open_context(T0, CTX).unwrap();
    drain(&mut a, &mut disk);
    let before = disk.clone();
    for bytes in [&b""[..], &[0xff, 1, 2][..], &[1; 40][..]] {
        a.handle_message(T0, NodeId([9; 32]), bytes);
        let out = drain(&mut a, &mut disk);
        assert!(
            matches!(
                out.as_slice(),
                [Output::Notify(NodeEvent::Rejected {
                    error: SyncError::Codec(_),
                    ..
                })]
            ),
            "{out:?}"
        );
    }
    assert_eq!(disk, before);
}

#[test]
fn a_request_about_an_unknown_context_is_refused() {
    let mut a = node(1);
    let req = Frame {
        context: ContextId([8; 32]),
        message: Message::Request {
            id: 77,
            body: Request::Summary,
        },
    };
    a.handle_message(T0, NodeId([2; 32]), &req.encode());
    let out = drain(&mut a, &mut MemoryKv::new());
    let [Output::Send { to, bytes }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(*to, NodeId([2; 32]));
    let frame = Frame::decode(bytes).unwrap();
    assert_eq!(
        frame.message,
        Message::Response {
            id: 77,
            body: Response::Refused(Refusal::UnknownContext)
        }
    );
}

#[test]
fn a_far_future_delta_is_accepted_and_reported_and_does_not_drag_the_clock() {
    let mut a = node(1);
    a.open_context(T0, CTX).unwrap();
    drain(&mut a, &mut MemoryKv::new());
    let future = Hlc::new(T0 + 24 * 3_600_000, 0);
    let payload = tabmesh_sync::DeltaPayload::default().encode().unwrap();
    let env = Envelope {
        context: CTX,
        author: tabmesh_base::MemberId([5; 32]),
        parents: vec![],
        hlc: future,
        payload,
    };
    let id = env.id();
    let frame = Frame {
        context: CTX,
        message: Message::Delta(env),
    };
    a.handle_message(T0, NodeId([5; 32]), &frame.encode());
    let out = drain(&mut a, &mut MemoryKv::new());
    assert!(out.iter().any(|o| matches!(o, Output::Notify(NodeEvent::ClockFarAhead { ahead_ms, .. }) if *ahead_ms == 24 * 3_600_000)));
    assert!(
        a.replica(&CTX).unwrap().dag().is_applied(&id),
        "acceptance never depends on our clock"
    );
    assert!(a.clock() <= Hlc::new(T0 + MAX_DRIFT_MS, 0));
}

#[test]
fn unknown_contexts_and_a_corrupt_store_are_typed_errors() {
    let mut a = node(1);
    let err = a.commit(T0, CTX, |_| Ok(())).unwrap_err();
    assert_eq!(err, NodeError::UnknownContext(CTX));

    let mut disk = MemoryKv::new();
    let mut batch = tabmesh_base::WriteBatch::new();
    batch.put(b"n/ctx/short".to_vec(), Vec::new());
    disk.apply(&batch);
    assert_eq!(
        NodeCore::load(NodeId([1; 32]), NodeConfig::default(), 1, T0, &disk).unwrap_err(),
        NodeError::CorruptIndex
    );
    let mut disk = MemoryKv::new();
    let mut batch = tabmesh_base::WriteBatch::new();
    let mut w = Writer::unversioned();
    w.u8(99);
    batch.put(b"n/clock".to_vec(), w.finish());
    disk.apply(&batch);
    assert!(matches!(
        NodeCore::load(NodeId([1; 32]), NodeConfig::default(), 1, T0, &disk),
        Err(NodeError::Codec(_))
    ));
    assert!(disk.get(b"n/clock").is_some());
}
