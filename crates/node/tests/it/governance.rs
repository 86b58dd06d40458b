//! Governance through `NodeCore`: who may write, read and be answered in a context, and what a
//! removed member, a forger or a stranger can (not) do. Every scenario runs on the deterministic
//! [`Net`]: fixed seeds, virtual time.

use tabmesh_auth::{Entropy, InviteLink, Keypair, Role};
use tabmesh_base::{DeltaId, Hash, Hlc, MemberId, NodeId, MAX_DRIFT_MS};
use tabmesh_node::{NodeError, NodeEvent, Wire};
use tabmesh_sync::{
    Access, AccessError, Envelope, Frame, InviteeProof, KeyMaterial, Message, Replica, Request,
    SyncConfig, SyncError, SyncEvent, VoidReason, DELTA_SIGNATURE_DOMAIN,
};
use tabmesh_testkit::test;

use super::apps::{handler_app, put as put_op};
use super::net::{epoch_keys, node, open_payload, stranger_request, Net, FAR, T0};

/// The map every write of these tests goes to.
const MAP: &str = "m";

/// Node `i` writes `MAP[key] = value` in `net.ctx`; the delta.
fn put(net: &mut Net, i: usize, key: &[u8], value: &[u8]) -> DeltaId {
    net.tick();
    let now = net.local(i);
    let ctx = net.ctx;
    let ((), id) = net.nodes[i]
        .commit(now, ctx, |txn| {
            txn.map(MAP)?.insert(key, value)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("node {i} writes: {e}"));
    id.expect("a write is a delta")
}

/// `MAP[key]` on node `i`.
fn get(net: &Net, i: usize, key: &[u8]) -> Option<Vec<u8>> {
    let state = net.nodes[i].state(&net.ctx)?;
    Some(state.map(MAP).ok()?.get(key)?.to_vec())
}

/// Every `MAP` entry on node `i`, sorted by key.
fn entries(net: &Net, i: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Some(state) = net.nodes[i].state(&net.ctx) else {
        return Vec::new();
    };
    let Ok(map) = state.map(MAP) else {
        return Vec::new();
    };
    let mut all: Vec<(Vec<u8>, Vec<u8>)> = map
        .keys()
        .map(|k| (k.to_vec(), map.get(k).unwrap_or_default().to_vec()))
        .collect();
    all.sort();
    all
}

/// The delta a gossiped message carries.
fn envelope(bytes: &[u8]) -> Envelope {
    let Ok(Wire::Gossip(frame)) = Wire::decode(bytes) else {
        panic!("not a gossiped delta")
    };
    let Message::Delta(env) = frame.message else {
        panic!("not a gossiped delta")
    };
    env
}

/// `env` gossiped on its context.
fn gossip(env: Envelope) -> Vec<u8> {
    Wire::Gossip(Box::new(Frame {
        context: env.context,
        message: Message::Delta(env),
    }))
    .encode()
}

/// (Re)signs `env` with `key` over its current id.
fn sign(env: &mut Envelope, key: &Keypair) {
    let id = env.id();
    env.signature = key.sign(DELTA_SIGNATURE_DOMAIN, id.as_bytes());
}

/// Whether node `i` reported delta `id` refused with a reason `reason` accepts.
fn refused(net: &Net, i: usize, id: DeltaId, reason: impl Fn(&SyncError) -> bool) -> bool {
    net.sync_events(i).iter().any(|e| {
        matches!(e, SyncEvent::Rejected { error: SyncError::Rejected { id: r, reason: why }, .. }
            if *r == id && reason(why))
    })
}

/// Whether node `i` reported delta `id` void because its author was removed.
fn voided(net: &Net, i: usize, id: DeltaId) -> bool {
    net.sync_events(i).iter().any(|e| {
        matches!(e, SyncEvent::Voided { id: v, reason: VoidReason::AuthorRemoved, .. } if *v == id)
    })
}

/// Whether delta `id` is applied in node `i`'s DAG.
fn applied(net: &Net, i: usize, id: &DeltaId) -> bool {
    net.nodes[i]
        .replica(&net.ctx)
        .is_some_and(|r| r.dag().is_applied(id))
}

fn same_roots(net: &Net, nodes: &[usize]) {
    let roots: Vec<Hash> = nodes.iter().map(|&i| net.root(i)).collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]), "{roots:?}");
}

#[test]
fn a_delta_from_a_non_member_is_rejected_and_the_receiver_loses_nothing() {
    let mut net = Net::start(2, None, b"");
    let ctx = net.ctx;
    put(&mut net, 0, b"before", b"0");
    net.pump();
    // A member's genuine write, held back.
    let genuine = put(&mut net, 1, b"k", b"member");
    let [bytes] = &net.hold_published(1)[..] else {
        panic!("one publish")
    };
    let env = envelope(bytes);
    assert_eq!(env.id(), genuine);

    let stranger = Keypair::from_secret([0x77; 32]);
    let stranger_node = NodeId([0x77; 32]);
    // 1. The member's delta, re-authored by a stranger and signed by it: a valid signature, but
    //    the payload was sealed for its real author and the stranger is no member.
    let mut reauthored = env.clone();
    reauthored.author = MemberId(stranger.public());
    sign(&mut reauthored, &stranger);
    // 2. A stranger holding an unused invitation link (so: the epoch key) seals a payload of its
    //    own, properly, and signs it.
    let keys = epoch_keys(&mut net.nodes[0], ctx);
    let payload = open_payload(&env, &keys);
    let key = keys.iter().find(|k| k.id() == env.epoch).unwrap();
    let mut sealed = Envelope {
        author: MemberId(stranger.public()),
        nonce: [9; tabmesh_auth::NONCE_LEN],
        ciphertext: Vec::new(),
        keys: Vec::new(),
        ..env.clone()
    };
    sealed.ciphertext = tabmesh_auth::seal(
        key,
        &sealed.nonce,
        sealed.aad().as_bytes(),
        &payload.encode().unwrap(),
    );
    sign(&mut sealed, &stranger);

    let root = net.root(0);
    let reauthored_id = reauthored.id();
    for forged in [reauthored, sealed.clone()] {
        let id = forged.id();
        net.inject(0, stranger_node, &gossip(forged));
        net.pump();
        assert!(
            refused(&net, 0, id, |r| matches!(r, SyncError::Access(_))),
            "{:?}",
            net.sync_events(0)
        );
        assert!(!applied(&net, 0, &id));
        assert_eq!(net.root(0), root, "nothing of it applied");
        assert_eq!(get(&net, 0, b"k"), None);
    }
    // The copy does not decrypt under its new author (the author is bound into the payload's
    // associated data); the one sealed with the right key is refused for what it is: its author
    // is no member.
    assert!(refused(&net, 0, reauthored_id, |r| *r
        == SyncError::Access(AccessError::Decrypt)));
    assert!(refused(&net, 0, sealed.id(), |r| matches!(
        r,
        SyncError::Access(AccessError::NotAMember { author }) if *author == MemberId(stranger.public())
    )));

    // The receiver keeps running and loses nothing: the genuine delta applies, both keep writing.
    let from = net.nodes[1].id();
    net.inject(0, from, bytes);
    net.pump();
    assert!(applied(&net, 0, &genuine));
    assert_eq!(get(&net, 0, b"k").as_deref(), Some(&b"member"[..]));
    let after = put(&mut net, 0, b"after", b"1");
    net.pump();
    assert!(applied(&net, 1, &after));
    same_roots(&net, &[0, 1]);
    assert_eq!(entries(&net, 0).len(), 3);
}

#[test]
fn a_forged_signature_is_rejected_as_bad_signature() {
    let mut net = Net::start(2, None, b"");
    let genuine = put(&mut net, 1, b"k", b"v");
    let [bytes] = &net.hold_published(1)[..] else {
        panic!("one publish")
    };
    let from = net.nodes[1].id();
    let root = net.root(0);
    // A flipped signature byte (same id), then a flipped ciphertext byte (another id, the
    // signature no longer matches it).
    let mut bad_sig = envelope(bytes);
    bad_sig.signature.0[7] ^= 0x01;
    let mut bad_body = envelope(bytes);
    bad_body.ciphertext[0] ^= 0x01;
    let tampered_id = bad_body.id();
    for forged in [bad_sig, bad_body] {
        let id = forged.id();
        net.inject(0, from, &gossip(forged));
        net.pump();
        assert!(
            refused(&net, 0, id, |r| *r
                == SyncError::Access(AccessError::BadSignature)),
            "{:?}",
            net.sync_events(0)
        );
        assert!(!applied(&net, 0, &id));
        assert_eq!(net.root(0), root);
    }
    assert_ne!(tampered_id, genuine);
    // The node keeps running.
    let ours = put(&mut net, 0, b"ours", b"1");
    net.pump();
    assert!(applied(&net, 1, &ours));
}

#[test]
fn a_forged_copy_does_not_keep_the_genuine_delta_out() {
    // Anyone relaying gossip can flip a byte of a delta's signature: the copy has the genuine
    // delta's id. The receiver must refuse the copy without refusing the genuine delta later.
    let mut net = Net::start(2, None, b"");
    let genuine = put(&mut net, 1, b"k", b"v");
    let [bytes] = &net.hold_published(1)[..] else {
        panic!("one publish")
    };
    let from = net.nodes[1].id();
    let mut forged = envelope(bytes);
    forged.signature.0[0] ^= 0x80;
    net.inject(0, NodeId([0x55; 32]), &gossip(forged));
    net.pump();
    assert!(refused(&net, 0, genuine, |r| *r
        == SyncError::Access(AccessError::BadSignature)));
    // The genuine delta arrives: it applies.
    net.inject(0, from, bytes);
    net.pump();
    // And periodic sync has every chance to repair it otherwise.
    net.advance(60_000);
    assert!(
        applied(&net, 0, &genuine),
        "the genuine delta was refused because a forged copy with its id came first"
    );
    assert_eq!(get(&net, 0, b"k").as_deref(), Some(&b"v"[..]));
    same_roots(&net, &[0, 1]);
}

/// Node 0 (the admin) removes node 2 while node 2, partitioned with node 1, keeps writing;
/// node 2 keeps running and subscribed after the partition heals. With `from_history`, the
/// members joined through their DAGs; otherwise from snapshots.
fn removal_scenario(from_history: bool) {
    let mut net = Net::start_with(3, None, b"", from_history);
    let ctx = net.ctx;
    put(&mut net, 0, b"a0", b"A");
    put(&mut net, 1, b"b0", b"B");
    let c0 = put(&mut net, 2, b"c0", b"C before");
    net.pump();
    let removed = net.nodes[2].member(&ctx).unwrap();
    let epoch_before = net.nodes[0].membership(&ctx).unwrap().epoch;

    // The admin removes node 2 on its side of a partition; node 2, with node 1, never hears of
    // it: it writes (on old parents), node 1 applies that and writes on top of it.
    net.partition(&[0, 1, 1]);
    let now = net.tick();
    let removal = net.nodes[0].remove_member(now, ctx, removed).unwrap();
    net.pump();
    let m = net.nodes[0].membership(&ctx).unwrap();
    assert!(m.removed.contains(&removed) && !m.members.contains_key(&removed));
    assert_ne!(m.epoch, epoch_before, "a removal rotates the key");
    let x1 = put(&mut net, 2, b"x1", b"C cut off");
    net.pump();
    assert_eq!(get(&net, 1, b"x1").as_deref(), Some(&b"C cut off"[..]));
    let y1 = put(&mut net, 1, b"y1", b"B in the partition");
    net.pump();

    // Healed: the removal reaches nodes 1 and 2 (the gossip they missed is delivered again) and
    // periodic sync brings node 1's history to node 0.
    net.heal();
    net.replay_lost();
    net.advance(120_000);
    for i in [0, 1] {
        assert!(applied(&net, i, &removal), "node {i}");
        assert!(applied(&net, i, &y1), "node {i}");
        assert!(voided(&net, i, x1), "node {i}: {:?}", net.sync_events(i));
        assert_eq!(get(&net, i, b"x1"), None, "node {i}");
        assert_eq!(
            get(&net, i, b"y1").as_deref(),
            Some(&b"B in the partition"[..])
        );
    }
    assert!(
        net.sync_events(1)
            .iter()
            .any(|e| matches!(e, SyncEvent::Rebuilt { .. })),
        "node 1 applied x1 before the removal: it rebuilds without it"
    );
    for i in [0, 1] {
        let m = net.nodes[i].membership(&ctx).unwrap();
        assert_eq!(m.members.len(), 2, "node {i}: {m:?}");
        assert!(m.removed.contains(&removed), "node {i}: {m:?}");
        assert_ne!(m.epoch, epoch_before, "node {i}: {m:?}");
    }
    same_roots(&net, &[0, 1]);

    // Node 2 keeps running and subscribed: it receives the removal and what follows, but holds
    // no key of the new epoch.
    let z1 = put(&mut net, 0, b"z1", b"A after");
    net.pump();
    assert!(
        refused(&net, 2, removal, |r| matches!(
            r,
            SyncError::Access(AccessError::KeyUnknown { .. })
        )),
        "{:?}",
        net.sync_events(2)
    );
    assert!(!applied(&net, 2, &removal));
    assert!(!applied(&net, 2, &z1));
    assert_eq!(get(&net, 2, b"z1"), None);

    // It writes again, on the history it knows.
    let x2 = put(&mut net, 2, b"x2", b"C after");
    net.pump();
    let y2 = put(&mut net, 1, b"y2", b"B after");
    net.pump();
    net.advance(60_000);

    for i in [0, 1] {
        assert!(voided(&net, i, x2), "node {i}: {:?}", net.sync_events(i));
        assert!(applied(&net, i, &z1) && applied(&net, i, &y2), "node {i}");
        assert_eq!(get(&net, i, b"x1"), None, "node {i}");
        assert_eq!(get(&net, i, b"x2"), None, "node {i}");
        // What it wrote before the removal stands.
        assert!(applied(&net, i, &c0));
        assert_eq!(get(&net, i, b"c0").as_deref(), Some(&b"C before"[..]));
    }
    same_roots(&net, &[0, 1]);
    assert_eq!(entries(&net, 0), entries(&net, 1));
    let keys: Vec<Vec<u8>> = entries(&net, 0).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [&b"a0"[..], b"b0", b"c0", b"y1", b"y2", b"z1"]
            .iter()
            .map(|k| k.to_vec())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        net.nodes[0].membership(&ctx).unwrap().epoch,
        net.nodes[1].membership(&ctx).unwrap().epoch
    );
    // The removed member's own writes stay where it is: it is the only one to see them.
    assert_eq!(get(&net, 2, b"x2").as_deref(), Some(&b"C after"[..]));
}

#[test]
fn a_removed_member_keeps_running_but_nothing_it_writes_after_the_removal_counts() {
    removal_scenario(true);
}

#[test]
fn a_removal_that_voids_applied_deltas_keeps_a_snapshot_joiners_membership() {
    // The same, with members that joined from snapshots: node 1 rebuilds its state without the
    // removed member's delta it had applied, and must stay a member doing so.
    removal_scenario(false);
}

#[test]
fn peer_is_member_holds_for_current_members_heard_from_and_no_one_else() {
    let mut net = Net::start(3, None, b"");
    let ctx = net.ctx;
    // A sync round, so every node has opened sealed messages from the others.
    for i in 0..3 {
        net.tick();
        let now = net.local(i);
        net.nodes[i].sync_now(now, ctx);
        net.pump();
    }
    let ids: Vec<NodeId> = net.nodes.iter().map(|n| n.id()).collect();
    for (i, j) in [(0, 1), (0, 2), (1, 0), (2, 0)] {
        assert!(net.nodes[i].peer_is_member(&ctx, &ids[j]), "{i} → {j}");
    }
    // A node outside the context, even one that sends a sealed request; a context not hosted.
    let stranger = node(9).id();
    let mark = net.events[0].len();
    net.inject(0, stranger, &stranger_request(ctx, stranger, ids[0], 7));
    assert!(net
        .events_since(0, mark)
        .iter()
        .any(|e| matches!(e, NodeEvent::Rejected { from, .. } if *from == stranger)));
    assert!(!net.nodes[0].peer_is_member(&ctx, &stranger));
    let elsewhere = tabmesh_base::ContextId([7; 32]);
    assert!(!net.nodes[0].peer_is_member(&elsewhere, &ids[1]));

    // Removed: no longer a member, on the admin and on the other members.
    let removed = net.nodes[2].member(&ctx).unwrap();
    let now = net.tick();
    net.nodes[0].remove_member(now, ctx, removed).unwrap();
    net.pump();
    assert!(!net.nodes[0].peer_is_member(&ctx, &ids[2]));
    assert!(!net.nodes[1].peer_is_member(&ctx, &ids[2]));
    assert!(net.nodes[0].peer_is_member(&ctx, &ids[1]));
    assert!(net.nodes[1].peer_is_member(&ctx, &ids[0]));
}

#[test]
fn an_expired_invitation_is_refused() {
    let mut a = node(1);
    let (ctx, _) = a.create_context(T0, None, b"").unwrap();
    let link = a.invite(ctx, Role::Member, T0 + 1_000, "").unwrap();
    let mut b = node(2);
    assert_eq!(
        b.join_context(T0 + 2_000, &link, None),
        Err(NodeError::InvitationExpired {
            expires_ms: T0 + 1_000,
            now_ms: T0 + 2_000
        })
    );
    assert!(b.replica(&ctx).is_none() && !b.is_joining(&ctx));
    // Malformed links are typed errors too, and leave nothing behind.
    assert!(matches!(
        b.join_context(T0, "tabmesh-invite:AAAA", None),
        Err(NodeError::Invitation(_))
    ));
    let mut tampered = link.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        b.join_context(T0, &tampered, None),
        Err(NodeError::Invitation(_))
    ));
    assert_eq!(b.contexts().count(), 0);
    // Before the expiry, the same link is accepted.
    assert_eq!(b.join_context(T0 + 1_000, &link, None), Ok(ctx));
    assert!(b.is_joining(&ctx));
}

#[test]
fn a_join_that_cannot_catch_up_before_the_expiry_fails_for_good() {
    let mut net = Net::new(2);
    let ctx = net.plain_context();
    let expires = net.now + 1_000;
    let link = net.nodes[0].invite(ctx, Role::Member, expires, "").unwrap();
    // The inviter goes offline before the joiner can reach it, and comes back after the expiry.
    net.set_offline(0, true);
    let now = net.tick();
    net.nodes[1].join_context(now, &link, None).unwrap();
    net.advance(5_000);
    net.set_offline(0, false);
    net.advance(120_000);
    assert_eq!(net.joined(1), None);
    let failed = net.events[1]
        .iter()
        .any(|e| matches!(e, NodeEvent::JoinFailed { context, .. } if *context == ctx));
    assert!(
        failed && !net.nodes[1].is_joining(&ctx),
        "the joiner still waits, {} ms after its invitation expired: {:?}",
        net.now - expires,
        net.events[1]
    );
    assert!(!net.nodes[0]
        .membership(&ctx)
        .unwrap()
        .members
        .contains_key(&net.nodes[1].member(&ctx).unwrap_or(MemberId([0; 32]))));
}

#[test]
fn a_joiner_catches_up_from_any_member_while_the_inviter_is_offline() {
    let mut net = Net::new(3);
    let ctx = net.plain_context();
    put(&mut net, 0, b"a", b"from A");
    net.pump();
    let link_c = net.nodes[0].invite(ctx, Role::Member, FAR, "").unwrap();
    net.join(1, 0, Role::Member, None);
    put(&mut net, 1, b"b", b"from B");
    net.pump();

    // A goes offline; C joins with A's link and catches up from B alone.
    net.set_offline(0, true);
    let now = net.tick();
    assert_eq!(net.nodes[2].join_context(now, &link_c, None), Ok(ctx));
    net.pump();
    net.advance(30_000);
    assert!(!net.nodes[2].is_joining(&ctx), "{:?}", net.events[2]);
    let join = net.joined(2).expect("C wrote its join");
    assert!(applied(&net, 1, &join), "B applied C's join");
    let c = net.nodes[2].member(&ctx).unwrap();
    assert!(net.nodes[1]
        .membership(&ctx)
        .unwrap()
        .members
        .contains_key(&c));
    assert_eq!(get(&net, 2, b"a").as_deref(), Some(&b"from A"[..]));
    assert_eq!(get(&net, 2, b"b").as_deref(), Some(&b"from B"[..]));
    let w = put(&mut net, 2, b"c", b"from C");
    net.pump();
    assert!(applied(&net, 1, &w));
    assert_eq!(get(&net, 1, b"c").as_deref(), Some(&b"from C"[..]));
    same_roots(&net, &[1, 2]);

    // A comes back and catches up too.
    net.set_offline(0, false);
    net.advance(60_000);
    assert!(applied(&net, 0, &w));
    same_roots(&net, &[0, 1, 2]);
}

/// A creates and writes; B and C join concurrently with invitations of A. B joins first and
/// writes; its join and its write, gossiped, are held back and handed to A once A has received
/// `a_after` of C's messages, and to C once C has received `c_after` of A's answers: before,
/// during or after C's catch-up (a snapshot from A, taken before or after A applied them; B is
/// unreachable meanwhile). Then everyone is reachable and time passes: all three must agree, and
/// each must apply the others' writes.
fn concurrent_join(a_after: usize, c_after: usize) -> Result<(), String> {
    let mut net = Net::new(3);
    let ctx = net.plain_context();
    put(&mut net, 0, b"a", b"from A");
    net.pump();
    let link_b = net.nodes[0].invite(ctx, Role::Member, FAR, "").unwrap();
    let link_c = net.nodes[0].invite(ctx, Role::Member, FAR, "").unwrap();

    // B joins; its join is held back as soon as it is written, and so is its first write.
    let now = net.tick();
    assert_eq!(net.nodes[1].join_context(now, &link_b, None), Ok(ctx));
    while net.joined(1).is_none() {
        assert!(net.step(), "B never joined: {:?}", net.events[1]);
    }
    let mut held = net.hold_published(1);
    net.advance(1_000);
    let write_b = put(&mut net, 1, b"b", b"from B");
    held.extend(net.hold_published(1));
    assert_eq!(held.len(), 2, "B's join and write");
    let b_id = net.nodes[1].id();
    net.set_offline(1, true);

    // C joins and catches up from A, step by step.
    let now = net.tick();
    assert_eq!(net.nodes[2].join_context(now, &link_c, None), Ok(ctx));
    let (mut to_a, mut to_c) = (Some(held.clone()), Some(held));
    let (mut c_to_a, mut a_to_c) = (0, 0);
    loop {
        net.settle();
        if c_to_a >= a_after {
            for bytes in to_a.take().unwrap_or_default() {
                net.inject(0, b_id, &bytes);
            }
        }
        if a_to_c >= c_after {
            for bytes in to_c.take().unwrap_or_default() {
                net.inject(2, b_id, &bytes);
            }
        }
        c_to_a += usize::from(net.next_is_send(2, 0));
        a_to_c += usize::from(net.next_is_send(0, 2));
        if !net.step() {
            break;
        }
    }
    for (to, held) in [(0, to_a), (2, to_c)] {
        for bytes in held.unwrap_or_default() {
            net.inject(to, b_id, &bytes);
        }
    }
    net.set_offline(1, false);
    net.advance(60_000);
    let Some(join_c) = net.joined(2) else {
        return Err(format!("C did not join: {:?}", net.sync_events(2)));
    };
    let write_c = put(&mut net, 2, b"c", b"from C");
    net.advance(30_000);
    let next_b = put(&mut net, 1, b"b", b"again");
    net.advance(30_000);
    let join_b = net.joined(1).unwrap();
    for i in 0..3 {
        for (what, id) in [
            ("B's join", join_b),
            ("B's write", write_b),
            ("C's join", join_c),
            ("C's write", write_c),
            ("B's next write", next_b),
        ] {
            if !applied(&net, i, &id) {
                let refusals: Vec<SyncEvent> = net
                    .sync_events(i)
                    .into_iter()
                    .filter(|e| matches!(e, SyncEvent::Rejected { .. }))
                    .collect();
                return Err(format!("node {i} lacks {what}; refusals: {refusals:?}"));
            }
        }
    }
    let roots: Vec<Hash> = (0..3).map(|i| net.root(i)).collect();
    if roots.windows(2).any(|w| w[0] != w[1])
        || (1..3).any(|i| entries(&net, i) != entries(&net, 0))
    {
        return Err(format!("the replicas differ: {roots:?}"));
    }
    if entries(&net, 0).len() != 3 {
        return Err(format!("entries: {:?}", entries(&net, 0)));
    }
    Ok(())
}

#[test]
fn concurrent_joiners_converge_whatever_reaches_whom_first() {
    let mut failures = Vec::new();
    for a_after in 0..=5 {
        for c_after in 0..=5 {
            if let Err(e) = concurrent_join(a_after, c_after) {
                failures.push(format!(
                    "B's join and write reach A after {a_after} of C's messages, C after \
                     {c_after} of A's: {e}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} orders fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Node `i`'s refusals in `net.ctx`.
fn refusals(net: &Net, i: usize) -> Vec<SyncEvent> {
    net.sync_events(i)
        .into_iter()
        .filter(|e| matches!(e, SyncEvent::Rejected { .. }))
        .collect()
}

/// Delta `id` as node `i` published it.
fn published(net: &Net, i: usize, id: DeltaId) -> Envelope {
    net.wire
        .iter()
        .filter(|s| s.from == i && s.to.is_none())
        .filter_map(|s| match Wire::decode(&s.bytes) {
            Ok(Wire::Gossip(f)) => match f.message {
                Message::Delta(env) => Some(env),
                _ => None,
            },
            _ => None,
        })
        .find(|env| env.id() == id)
        .unwrap_or_else(|| panic!("node {i} did not publish {id:?}"))
}

/// The stamp of delta `id` as node `i` holds it.
fn stamp(net: &Net, i: usize, id: &DeltaId) -> Hlc {
    net.nodes[i]
        .replica(&net.ctx)
        .unwrap()
        .dag()
        .get(id)
        .unwrap()
        .hlc
}

/// Whether node `i` counts node `j` as a member of `net.ctx`.
fn counts(net: &Net, i: usize, j: usize) -> bool {
    let m = net.nodes[j].member(&net.ctx).unwrap();
    net.nodes[i]
        .membership(&net.ctx)
        .unwrap()
        .members
        .contains_key(&m)
}

#[test]
fn a_snapshot_joiner_whose_clock_lags_stamps_its_join_after_the_heads_it_cites() {
    // B's clock is 20 s behind A's. B catches up by snapshot: it holds A's head as state, not
    // as a delta, so not its stamp, and cites it in its join; A holds the delta and refuses a
    // join stamped before its parents. The snapshot carries the heads' stamp.
    let mut net = Net::new(2);
    net.skew[1] = -20_000;
    let ctx = net.plain_context();
    let head = put(&mut net, 0, b"a", b"from A");
    net.pump();
    let join = net.join(1, 0, Role::Member, None);
    let b = net.nodes[1].replica(&ctx).unwrap();
    assert_eq!(
        b.metrics().snapshots_installed,
        1,
        "B caught up by snapshot"
    );
    assert!(
        b.dag().get(&head).is_none(),
        "B holds A's head as state only"
    );
    assert!(
        applied(&net, 0, &join),
        "A refused B's join: {:?}",
        refusals(&net, 0)
    );
    assert!(counts(&net, 0, 1));
    let env = published(&net, 1, join);
    assert_eq!(env.parents, vec![head]);
    assert!(env.hlc > stamp(&net, 0, &head));
    let w = put(&mut net, 1, b"b", b"from B");
    net.pump();
    assert!(applied(&net, 0, &w), "{:?}", refusals(&net, 0));
    assert_eq!(get(&net, 0, b"b").as_deref(), Some(&b"from B"[..]));
    same_roots(&net, &[0, 1]);
}

#[test]
fn a_join_on_heads_far_ahead_is_stamped_past_them_and_the_joiners_clock_stays() {
    // A's clock is two hours ahead, far beyond what B's clock follows (MAX_DRIFT_MS). B's join
    // is stamped just past A's head all the same (a stamp only orders): one member's clock
    // cannot keep others out. B's clock does not follow it, and B says so.
    let mut net = Net::new(2);
    net.skew[0] = 2 * 3_600_000;
    net.plain_context();
    let head = put(&mut net, 0, b"a", b"from A");
    net.pump();
    let join = net.join(1, 0, Role::Member, None);
    let env = published(&net, 1, join);
    assert!(env.hlc > stamp(&net, 0, &head));
    assert!(
        applied(&net, 0, &join),
        "A refused B's join: {:?}",
        refusals(&net, 0)
    );
    assert!(counts(&net, 0, 1));
    assert!(
        net.events[1].iter().any(|e| matches!(
            e,
            NodeEvent::ClockFarAhead { from: None, ahead_ms } if *ahead_ms > MAX_DRIFT_MS
        )),
        "{:?}",
        net.events[1]
    );
    let ceiling = |net: &Net| Hlc::new(net.local(1) + MAX_DRIFT_MS, 0);
    assert!(net.nodes[1].clock() <= ceiling(&net));
    // B's writes are stamped by its own clock, and count.
    let w = put(&mut net, 1, b"b", b"from B");
    net.pump();
    assert!(published(&net, 1, w).hlc <= ceiling(&net).successor());
    assert!(applied(&net, 0, &w), "{:?}", refusals(&net, 0));
    same_roots(&net, &[0, 1]);
}

#[test]
fn a_join_waits_while_the_heads_it_would_cite_are_stamped_past_its_invitation() {
    // B's clock is two hours ahead and B wrote the only head. C's invitation expires in an
    // hour: a join citing B's head would be stamped past the expiry, and refused everywhere.
    // C catches up and waits; once A writes on B's head (stamped by A's clock), C joins on it.
    let mut net = Net::new(3);
    net.skew[1] = 2 * 3_600_000;
    let ctx = net.plain_context();
    net.join(1, 0, Role::Member, None);
    let far = put(&mut net, 1, b"b", b"from B");
    net.pump();
    assert_eq!(net.nodes[0].replica(&ctx).unwrap().dag().heads(), vec![far]);
    let expires = net.local(0) + 3_600_000;
    assert!(stamp(&net, 0, &far).wall_ms > expires);
    let link = net.nodes[0].invite(ctx, Role::Member, expires, "").unwrap();
    net.tick();
    let now = net.local(2);
    assert_eq!(net.nodes[2].join_context(now, &link, None), Ok(ctx));
    net.advance(60_000);
    assert!(
        applied(&net, 2, &far),
        "C caught up: {:?}",
        net.sync_events(2)
    );
    assert!(
        net.nodes[2].is_joining(&ctx) && net.joined(2).is_none(),
        "C waits: {:?}",
        net.events[2]
    );
    let next = put(&mut net, 0, b"a", b"from A");
    net.pump();
    let join = net
        .joined(2)
        .unwrap_or_else(|| panic!("{:?}", net.events[2]));
    let env = published(&net, 2, join);
    assert_eq!(env.parents, vec![next]);
    assert!(env.hlc.wall_ms <= expires && env.hlc > stamp(&net, 0, &next));
    for i in 0..2 {
        assert!(
            applied(&net, i, &join) && counts(&net, i, 2),
            "node {i}: {:?}",
            refusals(&net, i)
        );
    }
    let w = put(&mut net, 2, b"c", b"from C");
    net.pump();
    assert!(applied(&net, 0, &w) && applied(&net, 1, &w));
    same_roots(&net, &[0, 1, 2]);
}

#[test]
fn a_member_that_missed_a_join_takes_it_from_the_joiners_answer_to_its_pull() {
    // B joins; the gossip of its join never reaches A, the only other member. A cannot open
    // what B seals (B's key is not a member as far as A knows), and B is the only peer holding
    // the join. Once B writes, A pulls the missing parent from B: B's answer carries deltas,
    // each checked like a gossiped one, so A takes it — and only that.
    let mut net = Net::new(2);
    let ctx = net.plain_context();
    put(&mut net, 0, b"a", b"from A");
    net.pump();
    let link = net.nodes[0].invite(ctx, Role::Member, FAR, "").unwrap();
    let now = net.tick();
    assert_eq!(net.nodes[1].join_context(now, &link, None), Ok(ctx));
    while net.joined(1).is_none() {
        assert!(net.step(), "B never joined: {:?}", net.events[1]);
    }
    let join = net.joined(1).unwrap();
    assert_eq!(net.hold_published(1).len(), 1, "B's join, lost");
    let seen = net.events[0].len();
    net.advance(60_000);
    assert!(!applied(&net, 0, &join) && !counts(&net, 0, 1));
    assert!(
        net.events_since(0, seen).iter().any(|e| matches!(
            e,
            NodeEvent::Rejected {
                error: SyncError::Access(AccessError::NotAMember { .. }),
                ..
            }
        )),
        "A refuses B's sync messages: it does not know B as a member, and B's summaries are \
         not taken on its word"
    );
    let w = put(&mut net, 1, b"b", b"from B");
    net.advance(30_000);
    assert!(
        applied(&net, 0, &join) && applied(&net, 0, &w),
        "{:?}",
        net.sync_events(0)
    );
    assert!(counts(&net, 0, 1));
    let next = put(&mut net, 0, b"a", b"again");
    net.advance(30_000);
    assert!(applied(&net, 1, &next));
    same_roots(&net, &[0, 1]);
}

/// Admins 0 and 1 rotate the key concurrently, on either side of a partition ({0} | {1, 2});
/// both sides keep writing; then the partition heals, with (`replay`) or without the gossip each
/// side missed being delivered again.
fn concurrent_rotations(replay: bool) {
    let mut net = Net::new(3);
    let ctx = net.plain_context();
    net.join(1, 0, Role::Admin, None);
    net.join(2, 0, Role::Member, None);
    put(&mut net, 2, b"before", b"1");
    net.pump();
    let first = net.nodes[0].membership(&ctx).unwrap().epoch;
    assert_eq!(
        net.nodes[0].membership(&ctx).unwrap().members[&net.nodes[1].member(&ctx).unwrap()],
        Role::Admin
    );

    net.partition(&[0, 1, 1]);
    let now = net.tick();
    let ra = net.nodes[0].rotate_key(now, ctx).unwrap();
    let rb = net.nodes[1].rotate_key(now, ctx).unwrap();
    net.pump();
    let ea = net.nodes[0].membership(&ctx).unwrap().epoch;
    let eb = net.nodes[1].membership(&ctx).unwrap().epoch;
    assert_ne!(ea, first);
    assert_ne!(eb, first);
    assert_ne!(ea, eb);
    assert_eq!(net.nodes[2].membership(&ctx).unwrap().epoch, eb);
    // Both sides keep writing in their epochs.
    put(&mut net, 0, b"a", b"A in the partition");
    put(&mut net, 2, b"c", b"C in the partition");
    net.pump();

    net.heal();
    if replay {
        net.replay_lost();
    }
    // Both sides write after healing: their gossip crosses the old partition line.
    put(&mut net, 0, b"h0", b"A healed");
    put(&mut net, 1, b"h1", b"B healed");
    net.pump();
    net.advance(120_000);
    for i in 0..3 {
        assert!(
            applied(&net, i, &ra) && applied(&net, i, &rb),
            "node {i} lacks a rotation: {:?}",
            net.sync_events(i)
        );
    }
    let epochs: Vec<Option<Hash>> = (0..3)
        .map(|i| net.nodes[i].membership(&ctx).unwrap().epoch)
        .collect();
    assert!(epochs.windows(2).all(|w| w[0] == w[1]), "{epochs:?}");
    assert_ne!(epochs[0], ea);
    assert_ne!(epochs[0], eb);
    // A write after healing, by the member that is no admin: applied everywhere.
    let after = put(&mut net, 2, b"after", b"healed");
    net.pump();
    for i in 0..3 {
        assert!(applied(&net, i, &after), "node {i}");
        assert_eq!(get(&net, i, b"after").as_deref(), Some(&b"healed"[..]));
        assert_eq!(entries(&net, i).len(), 6);
    }
    same_roots(&net, &[0, 1, 2]);
}

#[test]
fn concurrent_rotations_across_a_partition_end_in_one_epoch() {
    // Healing through periodic sync alone: each side seals its requests in an epoch the other
    // side does not hold yet.
    concurrent_rotations(false);
}

#[test]
fn concurrent_rotations_end_in_one_epoch_once_each_side_has_the_others() {
    concurrent_rotations(true);
}

#[test]
fn what_an_app_writes_never_travels_in_the_clear() {
    // A random 32-byte marker, written through an app call (as data, inside an event and by the
    // handlers that event runs) and through a plain commit; a third node joins afterwards and
    // gets it all from a snapshot.
    let marker: [u8; 32] = Entropy::from_seed([42; 32]).array();
    let app = handler_app();
    let mut net = Net::new(3);
    let now = net.tick();
    let (ctx, _) = net.nodes[0].create_context(now, Some(&app), b"").unwrap();
    net.ctx = ctx;
    net.pump();
    net.join(1, 0, Role::Member, Some(&app));
    let now = net.tick();
    net.nodes[0]
        .execute(now, ctx, "op", &put_op("kv", b"k", &marker))
        .unwrap();
    let now = net.tick();
    net.nodes[1]
        .execute(now, ctx, "op_emit", &put_op("kv", &marker, b"as a key"))
        .unwrap();
    net.pump();
    assert_eq!(
        net.ran(0).len(),
        1,
        "node 0 ran the handler of node 1's event"
    );
    let now = net.tick();
    net.nodes[0]
        .commit(now, ctx, |txn| {
            txn.register("secret")?.set(&marker)?;
            Ok(())
        })
        .unwrap();
    net.pump();
    net.join(2, 0, Role::Member, Some(&app));
    net.advance(60_000);

    for i in 0..3 {
        let s = net.nodes[i].state(&ctx).unwrap();
        assert_eq!(
            s.map("kv").unwrap().get(b"k"),
            Some(&marker[..]),
            "node {i}"
        );
        assert!(s.map("kv").unwrap().contains_key(&marker), "node {i}");
        assert_eq!(s.register("secret").unwrap().get(), Some(&marker[..]));
    }
    same_roots(&net, &[0, 1, 2]);
    assert!(net.wire.len() > 10, "messages were exchanged");
    assert!(net.wire.iter().any(|s| s.to.is_some()), "and sent directly");
    for sent in &net.wire {
        assert!(
            !sent.bytes.windows(marker.len()).any(|w| w == marker),
            "node {} emitted the marker in the clear (to {:?})",
            sent.from,
            sent.to
        );
    }
}

#[test]
fn a_sync_request_from_a_non_member_gets_no_answer() {
    let mut net = Net::start(2, None, b"");
    let ctx = net.ctx;
    put(&mut net, 0, b"k", b"v");
    net.pump();
    let a = net.nodes[0].id();
    let stranger = NodeId([0x66; 32]);

    // What node 0 does with `bytes` from `from`: its sends and its rejections.
    let ask = |net: &mut Net, from: NodeId, bytes: &[u8]| {
        let mark = net.events[0].len();
        net.inject(0, from, bytes);
        let sends: Vec<_> = net
            .hold(0)
            .into_iter()
            .filter(|(to, _)| to.is_some())
            .collect();
        let rejected: Vec<SyncError> = net
            .events_since(0, mark)
            .iter()
            .filter_map(|e| match e {
                NodeEvent::Rejected { from: f, error } if *f == from => Some(error.clone()),
                _ => None,
            })
            .collect();
        (sends, rejected)
    };

    // 1. A stranger sealing with a key of its own.
    let bytes = stranger_request(ctx, stranger, a, 7);
    let (sends, rejected) = ask(&mut net, stranger, &bytes);
    assert!(sends.is_empty(), "{sends:?}");
    assert!(
        matches!(
            rejected.as_slice(),
            [SyncError::Access(AccessError::NotAMember { .. })]
        ),
        "{rejected:?}"
    );

    // 2. A member's genuine request, replayed by a stranger: it is bound to the member's node.
    let now = net.tick();
    net.nodes[1].sync_now(now, ctx);
    let held = net.hold(1);
    let genuine = held
        .iter()
        .find(|(to, _)| *to == Some(a))
        .map(|(_, b)| b.clone())
        .expect("node 1 asks node 0");
    let (sends, rejected) = ask(&mut net, stranger, &genuine);
    assert!(sends.is_empty(), "{sends:?}");
    assert_eq!(rejected, vec![SyncError::Access(AccessError::BadSignature)]);

    // 3. A stranger claiming a member's key as the sender.
    let Ok(Wire::Direct(mut sealed)) = Wire::decode(&stranger_request(ctx, stranger, a, 8)) else {
        panic!()
    };
    sealed.sender = net.nodes[1].member(&ctx).unwrap();
    let (sends, rejected) = ask(&mut net, stranger, &Wire::Direct(sealed).encode());
    assert!(sends.is_empty(), "{sends:?}");
    assert_eq!(rejected, vec![SyncError::Access(AccessError::BadSignature)]);

    // 4. A link holder whose invitation expired, with a valid invitee proof.
    let link = net.nodes[0]
        .invite(ctx, Role::Member, net.now + 1_000, "")
        .unwrap();
    let link = InviteLink::parse(&link).unwrap();
    let material = KeyMaterial::decode(&link.open_keys().unwrap()).unwrap();
    let mut entropy = Entropy::from_seed([9; 32]);
    let me = Keypair::generate(&mut entropy);
    let member = MemberId(me.public());
    let mut r = Replica::new(
        ctx,
        b"i/",
        SyncConfig::default(),
        1,
        T0,
        Access {
            me,
            entropy,
            keys: material.keys,
        },
    );
    let request = Message::Request {
        id: 5,
        body: Request::Summary,
    };
    let invitee = NodeId([0x44; 32]);
    let sealed = r
        .seal_message(
            invitee,
            a,
            &request,
            None,
            Some(InviteeProof::new(&link, &member)),
        )
        .unwrap();
    let bytes = Wire::Direct(Box::new(sealed)).encode();
    // Before the expiry it is answered (an invitee catches up) ...
    let (sends, rejected) = ask(&mut net, invitee, &bytes);
    assert_eq!((sends.len(), rejected.len()), (1, 0), "{rejected:?}");
    // ... after it, not.
    net.now += 2_000;
    let (sends, rejected) = ask(&mut net, invitee, &bytes);
    assert!(sends.is_empty(), "{sends:?}");
    assert!(
        matches!(
            rejected.as_slice(),
            [SyncError::Access(AccessError::InvitationExpired { .. })]
        ),
        "{rejected:?}"
    );

    // The member's own request is still answered.
    let from = net.nodes[1].id();
    let (sends, rejected) = ask(&mut net, from, &genuine);
    assert_eq!((sends.len(), rejected.len()), (1, 0), "{rejected:?}");
}

#[test]
fn an_admin_changes_the_app_and_every_member_runs_it_once_it_holds_the_module() {
    let first = handler_app();
    let mut net = Net::start(3, Some(&first), b"");
    let ctx = net.ctx;
    // Another module (a different hash); a module that asks for a data migration is refused.
    let second =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "ping")))"#).unwrap();
    let migrating = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "ping"))
                   (func (export "__tabmesh_migrate")))"#,
    )
    .unwrap();
    let now = net.tick();
    assert_eq!(
        net.nodes[0].change_app(now, ctx, &migrating),
        Err(NodeError::MigrationUnsupported {
            app: Hash::of(&migrating)
        })
    );
    // Only an admin may change it.
    let now = net.tick();
    assert!(matches!(
        net.nodes[1].change_app(now, ctx, &second),
        Err(NodeError::Sync(_))
    ));
    let now = net.tick();
    net.nodes[0].change_app(now, ctx, &second).unwrap();
    net.pump();
    for i in 0..3 {
        assert_eq!(
            net.nodes[i].membership(&ctx).unwrap().app,
            Some(Hash::of(&second)),
            "node {i}"
        );
    }
    assert_eq!(net.nodes[0].app(&ctx), Some(Hash::of(&second)));
    // The others do not hold the new module: told so, and calls wait for it.
    for i in [1, 2] {
        assert!(
            net.events[i].iter().any(|e| matches!(e,
                NodeEvent::AppChanged { context, app, available: false }
                    if *context == ctx && *app == Hash::of(&second))),
            "node {i}: {:?}",
            net.events[i]
        );
        let now = net.tick();
        assert_eq!(
            net.nodes[i].execute(now, ctx, "ping", b"").map(|_| ()),
            Err(NodeError::NoApp(ctx))
        );
        // The old module is refused, the new one attached.
        let now = net.tick();
        assert!(matches!(
            net.nodes[i].attach_app(now, ctx, &first),
            Err(NodeError::AppMismatch { .. })
        ));
        let now = net.tick();
        net.nodes[i].attach_app(now, ctx, &second).unwrap();
        let now = net.tick();
        assert!(
            net.nodes[i].execute(now, ctx, "ping", b"").is_ok(),
            "node {i}"
        );
    }
}
