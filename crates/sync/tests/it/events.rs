//! The delta payload (actions, events, hop) and due handlers: recorded in the batch that applies a
//! remote delta through the DAG, never on its author, reloaded after a restart, completed in the
//! batch of the handler's delta.

use tabmesh_testkit::test;

use tabmesh_auth::Entropy;
use tabmesh_base::{Hlc, HlcClock, MemoryKv, NodeId};
use tabmesh_state::StateError;
use tabmesh_sync::{
    AppEvent, DeltaPayload, DueHandler, Envelope, GovOp, Output, Replica, SyncConfig, SyncError,
    MAX_DELTA_EVENTS, MAX_EVENT_KIND, PAYLOAD_FORMAT,
};

use super::support::{access, ctx, genesis, genesis_key, member, open_payload, T0};

/// The writer's node (a founding member).
const A: usize = 1;
/// The receiver's node (a founding member).
const B: usize = 2;
const PEER: NodeId = NodeId([1; 32]);

fn event(kind: &str, handler: Option<&str>) -> AppEvent {
    AppEvent {
        kind: kind.into(),
        data: kind.as_bytes().to_vec(),
        handler: handler.map(Into::into),
    }
}

/// Node `i`'s replica past the genesis, its persists in `kv`.
fn replica(i: usize, prefix: &[u8], kv: &mut MemoryKv) -> Replica {
    let mut r = Replica::new(ctx(), prefix, SyncConfig::default(), 1, T0, access(i));
    r.handle_delta(T0, None, genesis().envelope.clone());
    drain(&mut r, kv);
    r
}

/// The replica stored under `prefix` in `kv`, reopened.
fn reopen(prefix: &[u8], seed: u64, now: u64, kv: &MemoryKv) -> Replica {
    let entropy = Entropy::from_seed([seed as u8; 32]);
    Replica::open(ctx(), prefix, SyncConfig::default(), seed, now, kv, entropy).unwrap()
}

/// Drains outputs: persists into `kv`, returns the broadcasts and the number of persist batches.
fn drain(r: &mut Replica, kv: &mut MemoryKv) -> (Vec<Envelope>, usize) {
    let (mut sent, mut batches) = (Vec::new(), 0);
    while let Some(o) = r.poll_output() {
        match o {
            Output::Persist(b) => {
                kv.apply(&b);
                batches += 1;
            }
            Output::Broadcast(env) => sent.push(env),
            _ => {}
        }
    }
    (sent, batches)
}

/// `r`'s member writes one delta with `events` at `hop`; returns its envelope.
fn write(r: &mut Replica, n: u64, events: Vec<AppEvent>, hop: u8) -> Envelope {
    let mut clock = HlcClock::resume(Hlc::new(T0 + n, 0));
    r.commit_with::<(), SyncError>(T0 + n, clock.tick(T0 + n), hop, None, |t| {
        t.counter("n")?.increment(1)?;
        Ok(((), events))
    })
    .unwrap();
    let (mut sent, _) = drain(r, &mut MemoryKv::new());
    sent.remove(0)
}

#[test]
fn payloads_round_trip_and_every_bound_is_enforced() {
    let p = DeltaPayload {
        actions: Vec::new(),
        events: vec![event("a", None), event("b", Some("on_b"))],
        hop: 3,
        gov: None,
    };
    let bytes = p.encode().unwrap();
    assert_eq!(DeltaPayload::decode(&bytes).unwrap(), p);
    // A governance operation rides along, after the hop.
    let governed = DeltaPayload {
        gov: Some(GovOp::Remove { member: member(3) }),
        ..p.clone()
    };
    let gov_bytes = governed.encode().unwrap();
    assert_eq!(DeltaPayload::decode(&gov_bytes).unwrap(), governed);
    assert_eq!(&gov_bytes[..bytes.len() - 1], &bytes[..bytes.len() - 1]);
    assert_eq!(
        DeltaPayload::decode(&DeltaPayload::default().encode().unwrap()).unwrap(),
        DeltaPayload::default()
    );

    let many = DeltaPayload {
        events: vec![event("e", None); MAX_DELTA_EVENTS + 1],
        ..DeltaPayload::default()
    };
    assert!(matches!(many.encode(), Err(StateError::TooLarge { .. })));
    let long = DeltaPayload {
        events: vec![event(&"k".repeat(MAX_EVENT_KIND + 1), None)],
        ..DeltaPayload::default()
    };
    assert!(matches!(long.encode(), Err(StateError::TooLarge { .. })));
    let empty_handler = DeltaPayload {
        events: vec![event("e", Some(""))],
        ..DeltaPayload::default()
    };
    assert!(empty_handler.encode().is_err());

    // Another format byte, a truncation, trailing bytes: refused.
    for format in [1, PAYLOAD_FORMAT + 1] {
        let mut other = bytes.clone();
        other[1] = format;
        assert!(DeltaPayload::decode(&other).is_err(), "format {format}");
    }
    assert!(DeltaPayload::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(DeltaPayload::decode(&trailing).is_err());
    // A plain action list (the old payload) is not a delta payload.
    let plain = tabmesh_state::encode_actions(&[]).unwrap();
    assert!(DeltaPayload::decode(&plain).is_err());
}

#[test]
fn a_remote_delta_makes_its_handlers_due_in_the_batch_that_applies_it_never_on_the_author() {
    let mut a = replica(A, b"a/", &mut MemoryKv::new());
    let env = write(
        &mut a,
        1,
        vec![
            event("plain", None),
            event("x", Some("on_x")),
            event("y", Some("on_y")),
        ],
        2,
    );
    assert!(a.take_due().is_empty(), "never on the author");

    let mut kv = MemoryKv::new();
    let mut b = replica(B, b"b/", &mut kv);
    b.handle_delta(T0 + 10, Some(PEER), env.clone());
    let (_, batches) = drain(&mut b, &mut kv);
    assert_eq!(batches, 1, "the delta and its due records in one batch");
    let due = b.take_due();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].delta, env.id());
    assert_eq!((due[0].index, due[1].index), (1, 2));
    assert_eq!((due[0].author, due[0].hop), (member(A), 2));
    assert_eq!(due[0].event, event("x", Some("on_x")));
    assert!(b.take_due().is_empty(), "taken once");
    assert_eq!(b.metrics().handlers_due, 2);

    // A duplicate makes nothing due again.
    b.handle_delta(T0 + 20, Some(PEER), env.clone());
    drain(&mut b, &mut kv);
    assert!(b.take_due().is_empty());

    // After a restart every record still stored comes back (at least once).
    let mut reopened = reopen(b"b/", 2, T0 + 30, &kv);
    assert_eq!(reopened.take_due(), due);

    // Completing one in the batch of the handler's delta; giving the other up.
    reopened
        .commit_with::<(), SyncError>(T0 + 40, Hlc::new(T0 + 40, 0), 3, Some(&due[0]), |t| {
            t.counter("n")?.increment(1)?;
            Ok(((), vec![]))
        })
        .unwrap();
    let (sent, batches) = drain(&mut reopened, &mut kv);
    assert_eq!((sent.len(), batches), (1, 1));
    assert_eq!(sent[0].author, member(B));
    assert_eq!(open_payload(&sent[0], &genesis_key()).hop, 3);
    let left: Vec<DueHandler> = reopen(b"b/", 2, T0, &kv).take_due();
    assert_eq!(left, vec![due[1].clone()]);
    reopened.complete_due(&due[1]);
    drain(&mut reopened, &mut kv);
    let mut again = reopen(b"b/", 2, T0, &kv);
    assert!(again.take_due().is_empty());
}

#[test]
fn a_delta_applied_by_cascade_makes_its_handlers_due() {
    let mut a = replica(A, b"a/", &mut MemoryKv::new());
    let first = write(&mut a, 1, vec![event("1", Some("h"))], 0);
    let second = write(&mut a, 2, vec![event("2", Some("h"))], 0);
    let mut b = replica(B, b"b/", &mut MemoryKv::new());
    b.handle_delta(T0 + 10, Some(PEER), second.clone());
    drain(&mut b, &mut MemoryKv::new());
    assert!(b.take_due().is_empty(), "pending: not applied yet");
    b.handle_delta(T0 + 11, Some(PEER), first.clone());
    drain(&mut b, &mut MemoryKv::new());
    let due: Vec<_> = b.take_due().into_iter().map(|d| d.delta).collect();
    assert_eq!(due, vec![first.id(), second.id()], "in apply order");
}

#[test]
fn a_call_that_writes_nothing_but_emits_events_is_a_delta_and_one_that_does_neither_is_not() {
    let mut a = replica(A, b"a/", &mut MemoryKv::new());
    let (_, id) = a
        .commit_with::<(), SyncError>(T0, Hlc::new(T0, 0), 0, None, |_| {
            Ok(((), vec![event("ping", Some("pong"))]))
        })
        .unwrap();
    assert!(id.is_some());
    let (_, id) = a
        .commit_with::<(), SyncError>(T0, Hlc::new(T0, 1), 0, None, |_| Ok(((), vec![])))
        .unwrap();
    assert!(id.is_none());
    // Events over the bounds are refused before anything is written.
    let root = a.state().root_hash();
    let res = a.commit_with::<(), SyncError>(T0, Hlc::new(T0, 2), 0, None, |t| {
        t.counter("n")?.increment(1)?;
        Ok(((), vec![event("e", None); MAX_DELTA_EVENTS + 1]))
    });
    assert!(matches!(
        res,
        Err(SyncError::State(StateError::TooLarge { .. }))
    ));
    assert_eq!(a.state().root_hash(), root);
}
