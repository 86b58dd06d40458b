use tabmesh_base::{codec::Writer, ContextId, Hlc, KvRead, MemoryKv, NodeId, MAX_DRIFT_MS};
use tabmesh_node::{NodeConfig, NodeCore, NodeError, NodeEvent, Output, Seed, TimerKey, Wire};
use tabmesh_sync::{Message, SyncError};
use tabmesh_testkit::test;

use super::net::{drain, node, node_key, stranger_request, Net, T0};

#[test]
fn a_commit_persists_before_it_publishes_and_arms_the_context_timer() {
    let mut a = node(1);
    let mut disk = MemoryKv::new();
    let (ctx, created) = a.create_context(T0, None, b"").unwrap();
    assert_eq!(created.delta, None, "no app, no init delta");
    let opened = drain(&mut a, &mut disk);
    assert!(opened.contains(&Output::Subscribe(ctx)));
    assert!(opened
        .iter()
        .any(|o| matches!(o, Output::ArmTimer { key: TimerKey::Context(c), .. } if *c == ctx)));
    // The genesis is the context's first delta, published like any other.
    let genesis = a.replica(&ctx).unwrap().dag().heads();
    assert_eq!(genesis.len(), 1);
    assert!(opened
        .iter()
        .any(|o| matches!(o, Output::Publish { delta, .. } if *delta == genesis[0])));

    let ((), id) = a
        .commit(T0 + 5, ctx, |txn| {
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
    let Wire::Gossip(frame) = Wire::decode(bytes).unwrap() else {
        panic!("a delta is gossiped")
    };
    assert_eq!(frame.context, ctx);
    let Message::Delta(env) = frame.message else {
        panic!()
    };
    assert_eq!(env.id(), *delta);
    assert_eq!(env.parents, genesis);
    assert_eq!(env.author, a.member(&ctx).unwrap());
    // Exactly one persist batch for the commit.
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Persist(_)))
            .count(),
        1
    );
}

#[test]
fn a_restarted_node_has_its_key_contexts_state_and_clock() {
    let mut a = node(1);
    let mut disk = MemoryKv::new();
    let (ctx, _) = a.create_context(T0, None, b"").unwrap();
    for i in 0..5u64 {
        a.commit(T0 + i, ctx, |txn| {
            txn.counter("n")?.increment(1)?;
            Ok(())
        })
        .unwrap();
    }
    drain(&mut a, &mut disk);
    let clock = a.clock();

    // The node key is stored with the first batch.
    let key = NodeCore::stored_node_key(&disk).expect("the node key is stored");
    assert_eq!(key.public(), node_key(1).public());
    // Restart with the wall clock an hour behind: the clock resumes, it does not go back.
    let mut b = NodeCore::load(
        key,
        NodeConfig::default(),
        Seed::from_u64(9),
        T0 - 3_600_000,
        &disk,
    )
    .unwrap();
    assert_eq!(b.id(), a.id());
    assert_eq!(b.member(&ctx), a.member(&ctx), "the member key is stored");
    assert_eq!(b.membership(&ctx), a.membership(&ctx));
    let out = drain(&mut b, &mut MemoryKv::new());
    assert!(out.contains(&Output::Subscribe(ctx)));
    assert_eq!(b.contexts().collect::<Vec<_>>(), vec![ctx]);
    assert_eq!(b.state(&ctx).unwrap().counter("n").unwrap().value(), 5);
    assert_eq!(
        b.state(&ctx).unwrap().root_hash(),
        a.state(&ctx).unwrap().root_hash()
    );
    assert_eq!(b.clock(), clock);
    b.commit(T0 - 3_600_000, ctx, |txn| {
        txn.counter("n")?.increment(1)?;
        Ok(())
    })
    .unwrap();
    assert!(b.clock() > clock);
}

#[test]
fn two_nodes_converge_through_their_outputs() {
    let mut net = Net::start(2, None, b"");
    let ctx = net.ctx;
    let now = net.tick();
    net.nodes[0]
        .commit(now, ctx, |txn| {
            txn.text("doc")?.insert(0, "hello")?;
            Ok(())
        })
        .unwrap();
    net.nodes[1]
        .commit(now + 1, ctx, |txn| {
            txn.text("doc")?.insert(0, "world ")?;
            Ok(())
        })
        .unwrap();
    net.pump();
    let (sa, sb) = (
        net.nodes[0].state(&ctx).unwrap(),
        net.nodes[1].state(&ctx).unwrap(),
    );
    assert_eq!(sa.root_hash(), sb.root_hash());
    assert_eq!(
        sa.text("doc").unwrap().to_string(),
        sb.text("doc").unwrap().to_string()
    );
    assert_eq!(sa.text("doc").unwrap().len(), 11);
    // Both are members with their own keys.
    let m = net.nodes[0].membership(&ctx).unwrap();
    assert_eq!(m, net.nodes[1].membership(&ctx).unwrap());
    assert_eq!(m.members.len(), 2);
    assert_ne!(net.nodes[0].member(&ctx), net.nodes[1].member(&ctx));
    // Both wrote their batches: reopening either gives the same root.
    for i in 0..2 {
        let r = NodeCore::load(
            node_key(i as u8 + 1),
            NodeConfig::default(),
            Seed::from_u64(1),
            net.now,
            &net.disks[i],
        )
        .unwrap();
        assert_eq!(r.state(&ctx).unwrap().root_hash(), sa.root_hash());
    }
}

#[test]
fn garbage_bytes_are_reported_and_change_nothing() {
    let mut a = node(1);
    let mut disk = MemoryKv::new();
    a.create_context(T0, None, b"").unwrap();
    drain(&mut a, &mut disk);
    let before = disk.clone();
    for bytes in [&b""[..], &[0xff, 1, 2][..], &[1; 40][..], &[1, 7, 0][..]] {
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
fn a_request_about_an_unknown_context_gets_no_answer() {
    let mut a = node(1);
    let unknown = ContextId([8; 32]);
    let stranger = NodeId([2; 32]);
    a.handle_message(
        T0,
        stranger,
        &stranger_request(unknown, stranger, a.id(), 5),
    );
    let out = drain(&mut a, &mut MemoryKv::new());
    // Silence tells a stranger nothing, not even that the context is unknown here.
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_far_future_delta_is_accepted_and_reported_and_does_not_drag_the_clock() {
    let mut net = Net::start(2, None, b"");
    let ctx = net.ctx;
    // Node 1's wall clock is a day ahead.
    let future = net.now + 24 * 3_600_000;
    let ((), id) = net.nodes[1]
        .commit(future, ctx, |txn| {
            txn.register("r")?.set(b"from the future")?;
            Ok(())
        })
        .unwrap();
    let id = id.unwrap();
    let publish = std::iter::from_fn(|| net.nodes[1].poll_output())
        .find_map(|o| match o {
            Output::Publish { bytes, .. } => Some(bytes),
            _ => None,
        })
        .unwrap();
    let now = net.now;
    let from = net.nodes[1].id();
    let a = &mut net.nodes[0];
    a.handle_message(now, from, &publish);
    let out = drain(a, &mut MemoryKv::new());
    assert!(out.iter().any(|o| matches!(o, Output::Notify(NodeEvent::ClockFarAhead { ahead_ms, .. }) if *ahead_ms >= 24 * 3_600_000)), "{out:?}");
    assert!(
        a.replica(&ctx).unwrap().dag().is_applied(&id),
        "acceptance never depends on our clock"
    );
    assert!(a.clock() <= Hlc::new(now + MAX_DRIFT_MS, 0));
}

#[test]
fn unknown_contexts_and_a_corrupt_store_are_typed_errors() {
    let mut a = node(1);
    let ctx = ContextId([3; 32]);
    let err = a.commit(T0, ctx, |_| Ok(())).unwrap_err();
    assert_eq!(err, NodeError::UnknownContext(ctx));
    assert_eq!(a.rotate_key(T0, ctx), Err(NodeError::UnknownContext(ctx)));
    assert!(matches!(
        a.invite(ctx, tabmesh_auth::Role::Member, T0, ""),
        Err(NodeError::UnknownContext(_))
    ));

    let mut disk = MemoryKv::new();
    let mut batch = tabmesh_base::WriteBatch::new();
    batch.put(b"n/ctx/short".to_vec(), Vec::new());
    disk.apply(&batch);
    assert_eq!(
        NodeCore::load(
            node_key(1),
            NodeConfig::default(),
            Seed::from_u64(1),
            T0,
            &disk
        )
        .unwrap_err(),
        NodeError::CorruptIndex
    );
    let mut disk = MemoryKv::new();
    let mut batch = tabmesh_base::WriteBatch::new();
    let mut w = Writer::unversioned();
    w.u8(99);
    batch.put(b"n/clock".to_vec(), w.finish());
    disk.apply(&batch);
    assert!(matches!(
        NodeCore::load(
            node_key(1),
            NodeConfig::default(),
            Seed::from_u64(1),
            T0,
            &disk
        ),
        Err(NodeError::Codec(_))
    ));
    assert!(disk.get(b"n/clock").is_some());
}

#[test]
fn a_non_member_cannot_commit() {
    // A node that joined another context writes nothing here: it does not host this one, and a
    // replica whose member is not admitted refuses the write before it runs.
    let mut net = Net::start(2, None, b"");
    let now = net.tick();
    let (other, _) = net.nodes[1].create_context(now, None, b"").unwrap();
    assert_eq!(
        net.nodes[0].commit(now, other, |_| Ok(())).unwrap_err(),
        NodeError::UnknownContext(other)
    );
    // An invitee whose join is not written yet is not a member.
    let mut c = node(3);
    let link = net.nodes[0].invite(net.ctx, tabmesh_auth::Role::Member, net.now + 1_000, "");
    let ctx = c.join_context(now, &link.unwrap(), None).unwrap();
    assert!(c.is_joining(&ctx));
    let err = c
        .commit(now, ctx, |txn| {
            txn.register("r")?.set(b"x")?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Sync(SyncError::Access(
                tabmesh_sync::AccessError::NotAMember { .. }
            ))
        ),
        "{err:?}"
    );
    let out = drain(&mut c, &mut MemoryKv::new());
    assert!(
        !out.iter().any(|o| matches!(o, Output::Publish { .. })),
        "{out:?}"
    );
}

#[test]
fn a_new_node_flushes_its_key_before_any_input_and_gossip_names_its_delta() {
    let mut a = node(7);
    let mut disk = MemoryKv::new();
    assert_eq!(NodeCore::stored_node_key(&disk).map(|k| k.public()), None);
    a.flush();
    let out = drain(&mut a, &mut disk);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        NodeCore::stored_node_key(&disk).map(|k| k.public()),
        Some(node_key(7).public())
    );
    // Nothing left to flush: no output.
    a.flush();
    assert!(drain(&mut a, &mut disk).is_empty());

    // The network deduplicates gossip by the delta id the bytes carry.
    let (ctx, _) = a.create_context(T0, None, b"").unwrap();
    let published: Vec<(Vec<u8>, tabmesh_base::DeltaId)> = drain(&mut a, &mut disk)
        .into_iter()
        .filter_map(|o| match o {
            Output::Publish { bytes, delta, .. } => Some((bytes, delta)),
            _ => None,
        })
        .collect();
    assert!(!published.is_empty());
    for (bytes, delta) in &published {
        assert_eq!(Wire::gossip_delta(bytes), Some((ctx, *delta)));
    }
    assert_eq!(Wire::gossip_delta(b"junk"), None);
    let request = stranger_request(ctx, a.id(), a.id(), 3);
    assert_eq!(
        Wire::gossip_delta(&request),
        None,
        "a sealed request is no gossip"
    );
}

#[test]
fn a_peer_sending_garbage_is_banned_for_a_while_and_others_are_not() {
    use tabmesh_node::{BAN_MS, STRIKES_TO_BAN};
    let mut net = Net::start(2, None, b"");
    let ctx = net.ctx;
    let flooder = NodeId([9; 32]);
    let now = net.tick();
    let mut disk = MemoryKv::new();
    let a = &mut net.nodes[0];
    let mut banned_at = None;
    for i in 0..STRIKES_TO_BAN {
        a.handle_message(now + u64::from(i), flooder, &[0xff, 1, 2]);
        for out in drain(a, &mut disk) {
            if let Output::Notify(NodeEvent::PeerBanned { peer, until_ms }) = out {
                assert_eq!(peer, flooder);
                banned_at = Some(until_ms);
            }
        }
    }
    let until = banned_at.expect("banned after the last strike");
    assert_eq!(until, now + u64::from(STRIKES_TO_BAN - 1) + BAN_MS);
    // Banned: its bytes are dropped unread (not even reported).
    a.handle_message(now + 100, flooder, &[0xff, 1, 2]);
    assert!(drain(a, &mut disk).is_empty());
    assert_eq!(a.bans(now + 100), (1, 1));
    // The other member is unaffected: its write still arrives and applies.
    let t = net.tick();
    net.nodes[1]
        .commit(t, ctx, |txn| {
            txn.map("m")?.insert(b"k", b"v")?;
            Ok(())
        })
        .unwrap();
    net.pump();
    let has = |n: &NodeCore| n.state(&ctx).unwrap().map("m").unwrap().get(b"k").is_some();
    assert!(has(&net.nodes[0]));
    // After the ban, the peer is heard again (its garbage is reported again).
    let later = until + 1;
    net.nodes[0].handle_message(later, flooder, &[0xff, 1, 2]);
    let out = drain(&mut net.nodes[0], &mut disk);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Notify(NodeEvent::Rejected { .. }))),
        "{out:?}"
    );
    assert_eq!(net.nodes[0].bans(later).0, 0);
}

#[test]
fn an_unknown_wire_version_and_an_oversized_message_are_typed_errors_and_change_nothing() {
    use tabmesh_base::CodecError;
    use tabmesh_node::MAX_WIRE;
    let mut a = node(1);
    let mut disk = MemoryKv::new();
    a.create_context(T0, None, b"").unwrap();
    drain(&mut a, &mut disk);
    let before = disk.clone();
    let peer = NodeId([9; 32]);
    // A frame a newer build would write: version 99.
    a.handle_message(T0, peer, &[99, 0, 1, 2, 3]);
    let out = drain(&mut a, &mut disk);
    assert!(
        matches!(
            out.as_slice(),
            [Output::Notify(NodeEvent::Rejected {
                error: SyncError::Codec(CodecError::UnknownVersion { found: 99, .. }),
                ..
            })]
        ),
        "{out:?}"
    );
    // One byte over the bound: refused unread.
    a.handle_message(T0, peer, &vec![1; MAX_WIRE + 1]);
    let out = drain(&mut a, &mut disk);
    assert!(
        matches!(
            out.as_slice(),
            [Output::Notify(NodeEvent::Rejected {
                error: SyncError::FrameTooLarge { .. },
                ..
            })]
        ),
        "{out:?}"
    );
    assert_eq!(disk, before);
}

#[test]
fn a_replayed_delta_is_idempotent_live_and_after_a_restart() {
    let mut net = Net::start(2, None, b"");
    let ctx = net.ctx;
    let t = net.tick();
    net.nodes[0]
        .commit(t, ctx, |txn| {
            txn.counter("c")?.increment(5)?;
            Ok(())
        })
        .unwrap();
    let published = net.hold_published(0);
    assert_eq!(published.len(), 1);
    let from = net.nodes[0].id();
    net.inject(1, from, &published[0]);
    let root = |n: &NodeCore| n.state(&ctx).unwrap().root_hash();
    let once = root(&net.nodes[1]);
    assert_eq!(once, root(&net.nodes[0]));
    // The same frame ten more times (gossip duplicates, a hostile replay): nothing changes.
    for _ in 0..10 {
        net.inject(1, from, &published[0]);
    }
    assert_eq!(root(&net.nodes[1]), once);
    assert_eq!(
        net.nodes[1]
            .state(&ctx)
            .unwrap()
            .counter("c")
            .unwrap()
            .value(),
        5
    );
    assert!(net.nodes[1].replica(&ctx).unwrap().metrics().duplicates >= 10);
    // After a restart from its store, the replay is still a duplicate.
    let key = net.nodes[1].node_key().clone();
    let mut b = NodeCore::load(
        key,
        NodeConfig::default(),
        Seed::from_u64(2),
        net.now,
        &net.disks[1],
    )
    .unwrap();
    let mut disk = net.disks[1].clone();
    drain(&mut b, &mut disk);
    assert_eq!(root(&b), once);
    b.handle_message(net.now + 1, from, &published[0]);
    let out = drain(&mut b, &mut disk);
    // Nothing of the context is written (only the node's own clock and key records).
    for o in &out {
        if let Output::Persist(batch) = o {
            for op in batch.ops() {
                let key = match op {
                    tabmesh_base::WriteOp::Put(k, _) | tabmesh_base::WriteOp::Delete(k) => k,
                };
                assert!(
                    key.starts_with(b"n/key") || key.starts_with(b"n/clock"),
                    "{key:?}"
                );
            }
        }
    }
    assert_eq!(root(&b), once);
    assert_eq!(b.state(&ctx).unwrap().counter("c").unwrap().value(), 5);
}
