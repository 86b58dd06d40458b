//! Bodies of the receive targets: a replica and a node given one message from a peer, and a
//! replica reopened from an arbitrary store.

use tabmesh_auth::{Entropy, Signature, NONCE_LEN};
use tabmesh_base::Hlc;
use tabmesh_node::{NodeEvent, Output as NodeOutput, TimerKey, Wire};
use tabmesh_sync::{
    Envelope, Frame, Message, Output, Replica, SessionOutcome, SyncConfig, SyncEvent,
    DELTA_SIGNATURE_DOMAIN, MAX_FRAME,
};

use crate::fixture::{
    drain, host, keypair, material, member, node_material, receiver, receiver_of, requests_to_peer,
    PEER, T0,
};
use crate::kv::{kv_from_bytes, REPLICA_PREFIX};

/// Whether a replica event reports a change of its state or heads: deltas applied, states
/// joined (Merkle repair, push, snapshot), a rebuild, or a session that converged (a verified
/// repair or snapshot installs the peer's heads as checkpoints).
fn changes_state(e: &SyncEvent) -> bool {
    matches!(
        e,
        SyncEvent::Applied { .. }
            | SyncEvent::StateReplaced { .. }
            | SyncEvent::Rebuilt { .. }
            | SyncEvent::SessionEnded {
                outcome: SessionOutcome::Converged { .. },
                ..
            }
    )
}

/// Checks what a replica asks its driver to send: frames within [`MAX_FRAME`] that round-trip.
fn check_sent(context: tabmesh_base::ContextId, outputs: &[Output]) {
    for o in outputs {
        let message = match o {
            Output::Send { message, .. } => message.clone(),
            Output::Broadcast(env) => Message::Delta(env.clone()),
            _ => continue,
        };
        let frame = Frame { context, message };
        let bytes = frame.encode();
        assert!(
            bytes.len() <= MAX_FRAME,
            "a replica produced a frame of {} bytes",
            bytes.len()
        );
        assert!(
            Frame::decode(&bytes).as_ref() == Ok(&frame),
            "a frame a replica produced does not round-trip: {frame:?}"
        );
    }
}

/// A replica of founding member 1 of the fixture context (it applied the genesis and waits for
/// a fixed peer's summary in a session) gets the bytes as one frame from that peer:
/// `Frame::decode`, then `handle_delta`, `handle_request` or `handle_response` (frames of another
/// context are dropped, as a node does), then its outputs are drained and its timers fired. Never
/// panics; its state root and heads only move when it reports a change (`Applied`, `StateReplaced`,
/// `Rebuilt`, a session `Converged`); every frame it sends is within bounds and round-trips.
pub fn replica_receive(data: &[u8]) {
    let frame = match Frame::decode(data) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let m = material();
    if frame.context != m.context {
        return;
    }
    deliver(frame.message);
}

/// A delta whose payload is the bytes after the first, sealed with the fixture context's first
/// epoch key and signed by a real key, as a member (or a stranger) could send it: the receive path
/// past the signature and the decryption, into the payload's decoding, governance and the state.
/// The first byte picks the author (bits 0–1: the creator (an admin), the receiver's own member
/// key, the other admin, a stranger), the parents (bits 2–3: the genesis, none, the genesis and an
/// unknown id, an unknown id) and the timestamp (bits 4–7). Delivered to the same replica as
/// [`replica_receive`], with the same checks.
pub fn replica_delta(data: &[u8]) {
    let Some((&how, plaintext)) = data.split_first() else {
        return;
    };
    let m = material();
    let author = [0, 1, 2, 9][usize::from(how & 3)];
    let genesis = m.genesis.id();
    let unknown = tabmesh_base::DeltaId([0x42; 32]);
    let parents = match (how >> 2) & 3 {
        0 => vec![genesis],
        1 => Vec::new(),
        2 => vec![genesis, unknown],
        _ => vec![unknown],
    };
    let wall = [
        T0 + 5,
        T0 - 10,
        T0,
        0,
        T0 + 1_000_000_000,
        u64::MAX,
        T0 + 60_001,
        T0 + 7,
    ][usize::from(how >> 5)];
    let key = m
        .keys
        .iter()
        .find(|k| k.id() == m.genesis.epoch)
        .expect("the genesis epoch key");
    let mut env = Envelope {
        context: m.context,
        author: member(author),
        parents,
        hlc: Hlc::new(wall, u32::from((how >> 4) & 1)),
        epoch: key.id(),
        keys: Vec::new(),
        nonce: [how; NONCE_LEN],
        ciphertext: Vec::new(),
        signature: Signature([0; 64]),
    };
    env.ciphertext = tabmesh_auth::seal(key, &env.nonce, env.aad().as_bytes(), plaintext);
    env.signature = keypair(author).sign(DELTA_SIGNATURE_DOMAIN, env.id().as_bytes());
    deliver(Message::Delta(env));
}

/// Gives `message` from a fixed peer to a fresh receiver and checks what follows.
fn deliver(message: Message) {
    let m = material();
    let mut r = receiver(m);
    let now = T0 + 10;
    step(&mut r, now, message);
    finish(&mut r, now);
}

/// Gives `message` from a fixed peer to `r` at `now`: never panics; the state root and heads only
/// move when it reports a change; what it sends is well-formed. Returns its outputs.
fn step(r: &mut Replica, now: u64, message: Message) -> Vec<Output> {
    let context = r.context();
    let root = r.state().root_hash();
    let heads = r.dag().heads();
    match message {
        Message::Delta(env) => r.handle_delta(now, Some(PEER), env),
        Message::Request { id, body } => r.handle_request(now, PEER, id, body),
        Message::Response { id, body } => r.handle_response(now, PEER, id, body),
    }
    let outputs = drain(r);
    check_sent(context, &outputs);
    let changed = outputs
        .iter()
        .any(|o| matches!(o, Output::Event(e) if changes_state(e)));
    if !changed {
        assert_eq!(
            r.state().root_hash(),
            root,
            "the state root moved without a reported change"
        );
        assert_eq!(
            r.dag().heads(),
            heads,
            "the heads moved without a reported change"
        );
    }
    outputs
}

/// Fires the replica's timers past the request timeout and checks what it sends.
fn finish(r: &mut Replica, now: u64) {
    let later = now + SyncConfig::default().request_timeout_ms + 1;
    r.handle_timeout(later);
    let outputs = drain(r);
    check_sent(r.context(), &outputs);
    let _ = r.poll_timeout();
}

/// A sync session driven by the bytes: the first byte picks a receiver (the genesis applied; the
/// same comparing states by Merkle trie; an empty joiner), each of which started a session with a
/// fixed peer; then records `u32 length (little-endian) ‖ frame`, each delivered as from a fixed peer (as
/// [`replica_receive`] does) with the checks of [`replica_receive`] after every one. A response's
/// id is kept when the replica has that request outstanding, else replaced by its latest
/// outstanding request's, so mutated sessions still reach deep steps (Merkle walks, snapshot
/// pages, governance logs, delta pages). The valid seeds are real sessions with the fixture's
/// creator.
pub fn replica_session(data: &[u8]) {
    let Some((&flavour, rest)) = data.split_first() else {
        return;
    };
    let m = material();
    let (mut r, outputs) = receiver_of(m, flavour);
    let mut outstanding: Vec<u64> = requests_to_peer(&outputs)
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let mut now = T0 + 10;
    for record in records(rest) {
        now += 7;
        let Ok(frame) = Frame::decode(record) else {
            continue;
        };
        if frame.context != m.context {
            continue;
        }
        let message = match frame.message {
            Message::Response { id, body } => {
                let id = if outstanding.contains(&id) {
                    id
                } else {
                    outstanding.last().copied().unwrap_or(id)
                };
                outstanding.retain(|o| *o != id);
                Message::Response { id, body }
            }
            other => other,
        };
        let outputs = step(&mut r, now, message);
        outstanding.extend(requests_to_peer(&outputs).iter().map(|(id, _)| *id));
    }
    finish(&mut r, now);
}

/// The records of a session input: `u32 length (little-endian) ‖ bytes`, until the input ends (a
/// short last record takes what is left).
pub(crate) fn records(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (len, tail) = rest.split_at(4.min(rest.len()));
        let len = len
            .iter()
            .rev()
            .fold(0usize, |n, b| n << 8 | usize::from(*b));
        let (record, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        Some(record)
    })
}

/// A node hosting the fixture's node context (it founded it; the joined node is its peer) gets
/// the bytes with `handle_message(now, peer, data)`, then its context timer fires. Never panics;
/// bytes that are not a [`Wire`] message are refused with exactly one `NodeEvent::Rejected` and
/// nothing else; the context's state root, heads and membership only move when the node reports
/// a change; every message it sends or publishes decodes.
pub fn node_message(data: &[u8]) {
    let m = node_material();
    let mut n = host(m);
    let ctx = m.context;
    let root = n.state(&ctx).map(|s| s.root_hash());
    let heads = n.replica(&ctx).map(|r| r.dag().heads());
    let membership = n.membership(&ctx);
    let now = T0 + 10;
    n.handle_message(now, m.peer, data);
    let outputs: Vec<NodeOutput> = std::iter::from_fn(|| n.poll_output()).collect();
    check_node_outputs(&outputs);
    if let Err(e) = Wire::decode(data) {
        let _ = e.to_string();
        assert!(
            matches!(
                outputs.as_slice(),
                [NodeOutput::Notify(NodeEvent::Rejected { from, .. })] if *from == m.peer
            ),
            "bytes that are no message must give exactly one Rejected: {outputs:?}"
        );
    }
    let changed = outputs.iter().any(
        |o| matches!(o, NodeOutput::Notify(NodeEvent::Sync { event, .. }) if changes_state(event)),
    );
    if !changed {
        assert_eq!(
            n.state(&ctx).map(|s| s.root_hash()),
            root,
            "the state root moved without a reported change"
        );
        assert_eq!(
            n.replica(&ctx).map(|r| r.dag().heads()),
            heads,
            "the heads moved without a reported change"
        );
        assert_eq!(
            n.membership(&ctx),
            membership,
            "the membership moved without a reported change"
        );
    }
    let later = now + SyncConfig::default().request_timeout_ms + 1;
    n.handle_timer(later, TimerKey::Context(ctx));
    let outputs: Vec<NodeOutput> = std::iter::from_fn(|| n.poll_output()).collect();
    check_node_outputs(&outputs);
}

fn check_node_outputs(outputs: &[NodeOutput]) {
    for o in outputs {
        if let NodeOutput::Send { bytes, .. } | NodeOutput::Publish { bytes, .. } = o {
            if let Err(e) = Wire::decode(bytes) {
                panic!("a node produced a message that does not decode: {e}");
            }
        }
    }
}

/// `tabmesh_sync::Replica::open` of the fixture context from a store read from the bytes
/// ([`kv_from_bytes`] under [`REPLICA_PREFIX`]): a typed error or a replica, never a panic. An
/// opened replica answers a summary request and a tick.
pub fn replica_open(data: &[u8]) {
    let m = material();
    let kv = kv_from_bytes(REPLICA_PREFIX, data);
    let opened = Replica::open(
        m.context,
        REPLICA_PREFIX,
        SyncConfig::default(),
        3,
        T0,
        &kv,
        Entropy::from_seed([9; 32]),
    );
    let mut r = match opened {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (r.summary(), r.membership(), r.take_due());
    r.handle_request(T0 + 1, PEER, 1, tabmesh_sync::Request::Summary);
    r.add_peer(T0 + 1, PEER);
    r.handle_timeout(T0 + 60_000);
    let outputs = drain(&mut r);
    check_sent(m.context, &outputs);
}
