//! Governance through replicas: only members write (signed by their key, sealed with the epoch
//! key), a removal voids the removed member's deltas that are not its ancestors on every replica
//! whatever the arrival order, a new epoch shuts the removed member out, concurrent rotations
//! agree on one epoch, and invitees join (with the inviter online or not, by snapshot included).

use tabmesh_testkit::test;

use tabmesh_auth::{Entropy, InviteLink, Keypair, Role, SymKey};
use tabmesh_base::{DeltaId, Hash, Hlc, MemberId};
use tabmesh_dag::DeltaStatus;
use tabmesh_state::{Action, State};
use tabmesh_sync::{
    context_id, epoch_id, Access, AccessError, DeltaPayload, Envelope, Founder, GovOp, KeyBox,
    KeyMaterial, Replica, Request, SyncError, SyncEvent, VoidReason,
};

use super::support::{
    access, ctx, drain_outputs, events_in, founded_replica, genesis, genesis_id, genesis_key,
    keypair, manual_config, member, node_id, seal_by_hand, sign, two_admin_genesis, Packet, Sim,
    MAP, T0,
};

/// Cuts node `i` off from every other node, both ways.
fn isolate(sim: &mut Sim, i: usize) {
    for j in 0..sim.nodes.len() {
        if j != i {
            sim.cut.insert((i, j));
            sim.cut.insert((j, i));
        }
    }
}

/// Every refusal of delta `id` node `i` reported, in order.
fn refusals(sim: &Sim, i: usize, id: DeltaId) -> Vec<SyncError> {
    sim.rejections(i)
        .into_iter()
        .filter_map(|(_, e)| match e {
            SyncError::Rejected { id: r, reason } if r == id => Some(*reason),
            _ => None,
        })
        .collect()
}

/// Why node `i` refused delta `id` (the last time it reported it).
fn refusal(sim: &Sim, i: usize, id: DeltaId) -> Option<SyncError> {
    refusals(sim, i, id).pop()
}

/// Node 0 refused the join `id` under the governance rules, and `joiner` is no member there.
fn assert_join_refused(sim: &Sim, id: DeltaId, joiner: &Keypair) {
    let why = refusal(sim, 0, id);
    assert!(
        matches!(
            why,
            Some(SyncError::Access(AccessError::Governance {
                op: "join",
                ..
            }))
        ),
        "{id:?}: {why:?}"
    );
    assert!(!sim
        .r(0)
        .membership()
        .members
        .contains_key(&member_of(joiner)));
}

/// The deltas node `i` reported void, with author and reason.
fn voided(sim: &Sim, i: usize) -> Vec<(DeltaId, MemberId, VoidReason)> {
    sim.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Voided { id, author, reason } => Some((*id, *author, *reason)),
            _ => None,
        })
        .collect()
}

/// How many rebuilds node `i` reported.
fn rebuilds(sim: &Sim, i: usize) -> usize {
    sim.nodes[i]
        .events
        .iter()
        .filter(|e| matches!(e, SyncEvent::Rebuilt { .. }))
        .count()
}

fn value(sim: &Sim, i: usize, key: &[u8]) -> Option<Vec<u8>> {
    sim.entries(i).get(key).cloned()
}

/// The actions of setting `key` in the test map, as `author` would write them.
fn put_actions(author: MemberId, hlc: Hlc, key: &[u8], value: &[u8]) -> Vec<Action> {
    let mut s = State::new(b"scratch/");
    let mut t = s.txn(author, hlc);
    t.map(MAP).unwrap().insert(key, value).unwrap();
    t.commit().actions
}

/// An identity with key pair `kp`, a generator seeded from `seed`, and `keys` held from the start.
fn access_with(kp: Keypair, seed: u8, keys: Vec<SymKey>) -> Access {
    Access {
        me: kp,
        entropy: Entropy::from_seed([seed; 32]),
        keys,
    }
}

// -------------------------------------------------------------------------------------------------
// Founding.

#[test]
fn a_context_is_founded_by_its_creator_and_no_one_else() {
    let g = genesis();
    let founder = founded_replica(3, b"f/", manual_config(), 1);
    assert_eq!(g.context, context_id(&member(0), &[0x5a; 32], &Hash::ZERO));
    assert!(g.envelope.parents.is_empty());
    assert_eq!(g.envelope.author, member(0));
    assert_eq!(
        g.envelope.keys.len(),
        16,
        "the first key, sealed to every founder"
    );
    let m = founder.membership();
    assert_eq!(m.members.len(), 16);
    assert_eq!(m.members.get(&member(0)), Some(&Role::Admin));
    assert!((1..16).all(|i| m.members.get(&member(i)) == Some(&Role::Member)));
    assert_eq!(m.app, Some(Hash::ZERO));
    assert_eq!(m.epoch, Some(g.envelope.epoch));
    assert!(m.removed.is_empty());
    assert_eq!(founder.dag().heads(), vec![genesis_id()]);

    // Node 1 cannot found the same context: a genesis it signs for it, on a founder that has
    // not seen the real one yet, is refused.
    let mut empty = Replica::new(ctx(), b"e/", manual_config(), 2, T0, access(4));
    let key = SymKey::from_bytes([11; 32]);
    let payload = DeltaPayload {
        gov: Some(GovOp::Create {
            salt: [0x5a; 32],
            app: Hash::ZERO,
            founders: vec![
                Founder {
                    member: member(1),
                    role: Role::Admin,
                },
                Founder {
                    member: member(4),
                    role: Role::Member,
                },
            ],
        }),
        ..DeltaPayload::default()
    };
    let mut forged = seal_by_hand(
        &keypair(1),
        vec![],
        Hlc::new(T0, 0),
        &key,
        &payload.encode().unwrap(),
        1,
    );
    forged.keys = vec![KeyBox::seal(
        &ctx(),
        member(4),
        std::slice::from_ref(&key),
        &mut Entropy::from_seed([4; 32]),
    )
    .unwrap()];
    sign(&mut forged, &keypair(1));
    empty.handle_delta(T0, Some(node_id(1)), forged.clone());
    let events = events_in(&drain_outputs(&mut empty));
    let [SyncEvent::Rejected {
        error: SyncError::Rejected { id, reason },
        ..
    }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(*id, forged.id());
    assert!(
        matches!(
            **reason,
            SyncError::Access(AccessError::Governance { op: "create", .. })
        ),
        "{reason:?}"
    );
    assert!(empty.dag().heads().is_empty());
    assert!(empty.membership().members.is_empty());
    // The real genesis still founds it there.
    empty.handle_delta(T0, Some(node_id(0)), g.envelope.clone());
    drain_outputs(&mut empty);
    assert_eq!(empty.membership(), founder.membership());
    // Node 1's own genesis founds another context: the id binds the creator.
    let other = Replica::create(
        b"o/",
        manual_config(),
        1,
        T0,
        access(1),
        Hash::ZERO,
        &[],
        Hlc::new(T0, 0),
        [0x5a; 32],
    )
    .unwrap();
    assert_ne!(other.context(), ctx());
    assert_eq!(
        other.context(),
        context_id(&member(1), &[0x5a; 32], &Hash::ZERO)
    );
}

// -------------------------------------------------------------------------------------------------
// Who may write.

#[test]
fn a_non_members_delta_is_rejected_and_changes_nothing() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"g", b"0");
    sim.deliver_all();
    let (now, heads, root) = (sim.now, sim.r(0).dag().heads(), sim.root(0));
    let outsider = member(50);

    // A replica of a non-founder past the genesis (even holding the leaked epoch key) refuses to
    // write: it is not a member at its heads.
    let mut r = Replica::new(
        ctx(),
        b"out/",
        manual_config(),
        50,
        now,
        access_with(keypair(50), 50, vec![genesis_key()]),
    );
    r.handle_delta(now, None, genesis().envelope.clone());
    drain_outputs(&mut r);
    assert_eq!(r.member(), outsider);
    assert!(!r.membership().members.contains_key(&outsider));
    let res = r.commit::<(), SyncError>(now, Hlc::new(now, 0), |t| {
        t.map(MAP)?.insert(b"evil", b"x")?;
        Ok(())
    });
    assert_eq!(
        res,
        Err(SyncError::Access(AccessError::NotAMember {
            author: outsider
        }))
    );
    let out = drain_outputs(&mut r);
    assert!(
        !out.iter()
            .any(|o| matches!(o, tabmesh_sync::Output::Broadcast(_))),
        "{out:?}"
    );
    assert!(r.state().map(MAP).unwrap().is_empty(), "nothing stays");

    // Sealed by hand, signed by the outsider: with the leaked key of the current epoch, and with
    // a key of its own. Members refuse both.
    let payload = DeltaPayload::actions(put_actions(outsider, Hlc::new(now, 1), b"evil", b"x"))
        .encode()
        .unwrap();
    for (n, key) in [genesis_key(), SymKey::from_bytes([50; 32])]
        .iter()
        .enumerate()
    {
        let env = seal_by_hand(
            &keypair(50),
            heads.clone(),
            Hlc::new(now, 1),
            key,
            &payload,
            n as u8,
        );
        let id = env.id();
        let rejected = sim.r(0).metrics().deltas_rejected;
        sim.gossip(1, 0, &env);
        assert_eq!(
            refusal(&sim, 0, id),
            Some(SyncError::Access(AccessError::NotAMember {
                author: outsider
            })),
            "key {n}"
        );
        assert_eq!(sim.r(0).metrics().deltas_rejected, rejected + 1);
        assert_eq!(sim.r(0).dag().status(&id), DeltaStatus::Unknown);
        assert_eq!(sim.r(0).dag().heads(), heads);
        assert_eq!(sim.root(0), root);
        assert_eq!(value(&sim, 0, b"evil"), None);
    }
}

#[test]
fn only_an_admin_invites_removes_rotates_and_changes_the_app() {
    let mut sim = Sim::manual(3);
    let m1 = member(1);
    let refused = |op: &'static str| SyncError::Access(AccessError::NotAllowed { author: m1, op });
    assert_eq!(
        sim.try_govern(1, GovOp::Remove { member: member(2) }),
        Err(refused("remove"))
    );
    assert_eq!(sim.try_govern(1, GovOp::Rotate), Err(refused("rotate")));
    assert_eq!(
        sim.try_govern(1, GovOp::ChangeApp { app: Hash([1; 32]) }),
        Err(refused("change-app"))
    );
    let now = sim.now;
    assert_eq!(
        sim.nodes[1]
            .replica
            .invite(Role::Member, now + 1_000, "")
            .map(|_| ()),
        Err(refused("invite"))
    );
    assert!(sim.nodes[1].broadcasts.is_empty(), "nothing was published");
    assert_eq!(sim.r(1).dag().heads(), vec![genesis_id()]);

    // The admin may; a member may remove itself.
    sim.govern(0, GovOp::ChangeApp { app: Hash([1; 32]) });
    sim.deliver_all();
    for i in 0..3 {
        assert_eq!(sim.r(i).membership().app, Some(Hash([1; 32])), "node {i}");
    }
    sim.govern(2, GovOp::Remove { member: member(2) });
    sim.deliver_all();
    for i in 0..2 {
        let m = sim.r(i).membership();
        assert!(m.removed.contains(&member(2)), "node {i}");
        assert!(!m.members.contains_key(&member(2)), "node {i}");
    }
}

// -------------------------------------------------------------------------------------------------
// Signatures and encryption.

#[test]
fn a_forged_signature_is_rejected_and_changes_nothing() {
    let mut sim = Sim::manual(3);
    sim.drop_broadcasts = true;
    let id = sim.put(1, b"k", b"v");
    let genuine = sim.nodes[1].broadcasts[0].clone();
    let root = sim.root(0);

    // A flipped byte, and a signature by another member's key (the author unchanged): the id is
    // the genuine one, the signature is not the author's.
    let mut flipped = genuine.clone();
    flipped.signature.0[7] ^= 0x10;
    let mut other_key = genuine.clone();
    sign(&mut other_key, &keypair(2));
    for (what, bad) in [("flipped", flipped), ("other key", other_key)] {
        assert_eq!(bad.id(), id);
        let before = refusals(&sim, 0, id).len();
        sim.gossip(2, 0, &bad);
        let after = refusals(&sim, 0, id);
        assert_eq!(
            after.len(),
            before + 1,
            "{what}: not checked (taken for a duplicate)"
        );
        assert_eq!(
            after.last(),
            Some(&SyncError::Access(AccessError::BadSignature)),
            "{what}"
        );
        assert_eq!(sim.r(0).dag().status(&id), DeltaStatus::Unknown, "{what}");
        assert_eq!(sim.root(0), root, "{what}");
    }
    // Claimed by another member (its key, its signature): the payload is bound to its author.
    let mut claimed = genuine.clone();
    claimed.author = member(2);
    sign(&mut claimed, &keypair(2));
    sim.gossip(2, 0, &claimed);
    assert_eq!(
        refusal(&sim, 0, claimed.id()),
        Some(SyncError::Access(AccessError::Decrypt))
    );
    assert_eq!(sim.root(0), root);
    assert_eq!(sim.r(0).dag().heads(), vec![genesis_id()]);

    // The forgeries change nothing: the genuine delta (same id as the first two) still applies
    // when it arrives, directly.
    sim.gossip(1, 0, &genuine);
    assert_eq!(
        sim.r(0).dag().status(&id),
        DeltaStatus::Applied,
        "a forged signature on a delta's id made the replica refuse the genuine delta"
    );
    assert_eq!(value(&sim, 0, b"k"), Some(b"v".to_vec()));
    sim.assert_pair_converged(0, 1);
}

#[test]
fn a_tampered_ciphertext_nonce_or_epoch_is_rejected() {
    // Node 0 receives the tampered envelopes as an attacker sends them, node 2 as if the author
    // had signed them (a separate replica: a refused id is remembered).
    let mut sim = Sim::manual(3);
    sim.drop_broadcasts = true;
    sim.put(1, b"k", b"v");
    let genuine = sim.nodes[1].broadcasts[0].clone();
    let root = sim.root(0);
    let kp = keypair(1);

    let mut ciphertext = genuine.clone();
    ciphertext.ciphertext[3] ^= 1;
    let mut nonce = genuine.clone();
    nonce.nonce[0] ^= 1;
    let mut truncated = genuine.clone();
    truncated.ciphertext.truncate(10);
    // As sent by an attacker (the author's signature no longer matches the id), and as if the
    // author's key had signed the altered envelope (the AEAD still refuses it).
    for (what, bad) in [
        ("ciphertext", ciphertext),
        ("nonce", nonce),
        ("truncated", truncated),
    ] {
        sim.gossip(1, 0, &bad);
        assert_eq!(
            refusal(&sim, 0, bad.id()),
            Some(SyncError::Access(AccessError::BadSignature)),
            "{what}"
        );
        let mut resigned = bad;
        sign(&mut resigned, &kp);
        sim.gossip(1, 2, &resigned);
        assert_eq!(
            refusal(&sim, 2, resigned.id()),
            Some(SyncError::Access(AccessError::Decrypt)),
            "{what}, re-signed"
        );
        assert_eq!(sim.root(0), root, "{what}");
        assert_eq!(sim.root(2), root, "{what}");
    }
    // Another epoch named (re-signed): a key this replica does not hold.
    let mut epoch = genuine.clone();
    epoch.epoch = Hash([9; 32]);
    sign(&mut epoch, &kp);
    sim.gossip(1, 0, &epoch);
    assert_eq!(
        refusal(&sim, 0, epoch.id()),
        Some(SyncError::Access(AccessError::KeyUnknown {
            epoch: Hash([9; 32])
        }))
    );
    assert_eq!(sim.r(0).metrics().key_unknown, 1);
    assert_eq!(sim.root(0), root);
    assert_eq!(sim.r(0).dag().heads(), vec![genesis_id()]);

    sim.gossip(1, 0, &genuine);
    assert_eq!(value(&sim, 0, b"k"), Some(b"v".to_vec()));
}

// -------------------------------------------------------------------------------------------------
// Removal.

#[test]
fn a_removed_members_later_deltas_are_void_everywhere() {
    let mut sim = Sim::manual(4);
    sim.put(0, b"base", b"0");
    // Node 2's write before the removal is one of its ancestors: it stands.
    let early = sim.put(2, b"early2", b"stands");
    sim.deliver_all();
    let old_heads = sim.r(2).dag().heads();

    // Node 2 is cut off; node 0 removes it.
    isolate(&mut sim, 2);
    let removal = sim.govern(0, GovOp::Remove { member: member(2) });
    sim.deliver_all();
    for i in [0, 1, 3] {
        let m = sim.r(i).membership();
        assert!(m.removed.contains(&member(2)) && !m.members.contains_key(&member(2)));
    }
    // Node 2 never saw it: it writes on its old heads, twice (a chain).
    let late = sim.put(2, b"late2", b"void");
    let later = sim.put(2, b"early2", b"overwritten?");
    let envs: Vec<Envelope> = sim.nodes[2].broadcasts[1..].to_vec();
    assert_eq!(
        envs[0].parents, old_heads,
        "written on the heads before the removal"
    );
    // A delta hand-sealed by node 2's key after the removal, citing the old parents.
    let forged = seal_by_hand(
        &keypair(2),
        old_heads.clone(),
        Hlc::new(sim.now + 5, 0),
        &genesis_key(),
        &DeltaPayload::actions(put_actions(member(2), Hlc::new(sim.now + 5, 0), b"f", b"2"))
            .encode()
            .unwrap(),
        1,
    );
    // Delivered to the others after the removal.
    for i in [0, 1, 3] {
        for env in envs.iter().chain([&forged]) {
            sim.gossip(2, i, env);
        }
    }
    sim.deliver_all();
    for i in [0, 1, 3] {
        for id in [late, later, forged.id()] {
            assert!(sim.r(i).is_void(&id), "node {i}: {id:?} is not void");
            // On parents held here, they stay in the DAG (void); on parents only their author
            // holds, they are not even buffered.
            let parents_held = envs
                .iter()
                .chain([&forged])
                .find(|e| e.id() == id)
                .is_some_and(|e| e.parents.iter().all(|p| sim.r(i).dag().is_applied(p)));
            assert!(
                !parents_held || sim.r(i).dag().is_applied(&id),
                "node {i}: a void delta on held parents stays in the DAG"
            );
        }
        assert!(!sim.r(i).is_void(&early) && !sim.r(i).is_void(&removal));
        assert_eq!(value(&sim, i, b"late2"), None, "node {i}");
        assert_eq!(value(&sim, i, b"f"), None, "node {i}");
        assert_eq!(
            value(&sim, i, b"early2"),
            Some(b"stands".to_vec()),
            "node {i}"
        );
        let void = voided(&sim, i);
        for id in [late, later, forged.id()] {
            assert!(
                void.contains(&(id, member(2), VoidReason::AuthorRemoved)),
                "node {i}: {void:?}"
            );
        }
        assert_eq!(sim.r(i).metrics().deltas_voided, 3, "node {i}");
        assert_eq!(
            rebuilds(&sim, i),
            0,
            "node {i}: nothing void was applied here"
        );
    }
    sim.assert_pair_converged(0, 1);
    sim.assert_pair_converged(0, 3);

    // Honest members keep writing on top (void deltas among their parents).
    let next = sim.put(1, b"next", b"1");
    sim.deliver_all();
    for i in [0, 1, 3] {
        assert!(sim.r(i).dag().is_applied(&next));
        assert_eq!(value(&sim, i, b"next"), Some(b"1".to_vec()));
    }
    sim.assert_pair_converged(0, 1);
    sim.assert_pair_converged(0, 3);
}

#[test]
fn a_delta_applied_before_the_removal_arrived_is_voided_by_a_rebuild() {
    let mut sim = Sim::manual(4);
    sim.put(0, b"base", b"0");
    sim.deliver_all();
    sim.drop_broadcasts = true;
    // Concurrent: node 0 removes node 2 while node 2 writes.
    let removal = sim.govern(0, GovOp::Remove { member: member(2) });
    let concurrent = sim.put(2, b"c2", b"x");
    sim.write(2, |t| t.counter("n")?.increment(5));
    let removal_env = sim.nodes[0].broadcasts.last().unwrap().clone();
    let writes: Vec<Envelope> = sim.nodes[2].broadcasts.clone();
    assert!(!writes[0].parents.contains(&removal));

    // Node 1 gets node 2's writes first: applied.
    for w in &writes {
        sim.gossip(2, 1, w);
    }
    assert_eq!(value(&sim, 1, b"c2"), Some(b"x".to_vec()));
    assert_eq!(sim.r(1).state().counter("n").unwrap().value(), 5);
    assert!(!sim.r(1).is_void(&concurrent));
    // Then the removal: node 1 rebuilds without them.
    sim.gossip(0, 1, &removal_env);
    assert_eq!(sim.r(1).metrics().rebuilds, 1);
    assert_eq!(rebuilds(&sim, 1), 1);
    let rebuilt_root = sim.nodes[1].events.iter().rev().find_map(|e| match e {
        SyncEvent::Rebuilt { root } => Some(*root),
        _ => None,
    });
    assert_eq!(rebuilt_root, Some(sim.root(1)));
    for w in &writes {
        assert!(sim.r(1).is_void(&w.id()));
    }
    assert_eq!(value(&sim, 1, b"c2"), None);
    assert_eq!(sim.r(1).state().counter("n").unwrap().value(), 0);
    assert_eq!(value(&sim, 1, b"base"), Some(b"0".to_vec()));
    let expected: Vec<(DeltaId, MemberId, VoidReason)> = writes
        .iter()
        .map(|w| (w.id(), member(2), VoidReason::AuthorRemoved))
        .collect();
    assert_eq!(voided(&sim, 1), expected, "each reported void once");
    assert_eq!(sim.r(1).metrics().deltas_voided, 2);

    // Node 3 gets the removal first: the writes are void on arrival, nothing to rebuild.
    sim.gossip(0, 3, &removal_env);
    for w in &writes {
        sim.gossip(2, 3, w);
    }
    // Node 0 wrote the removal: the writes arrive after it.
    for w in &writes {
        sim.gossip(2, 0, w);
    }
    for i in [0, 3] {
        assert_eq!(sim.r(i).metrics().rebuilds, 0, "node {i}");
        for w in &writes {
            assert!(sim.r(i).is_void(&w.id()), "node {i}");
        }
        assert_eq!(value(&sim, i, b"c2"), None, "node {i}");
    }
    sim.assert_pair_converged(0, 1);
    sim.assert_pair_converged(0, 3);

    // The rebuilt replica goes on: the next delta (the new epoch) applies everywhere, and its
    // state survives a restart.
    sim.drop_broadcasts = false;
    let after = sim.put(1, b"after", b"1");
    sim.deliver_all();
    for i in [0, 3] {
        assert!(sim.r(i).dag().is_applied(&after), "node {i}");
    }
    sim.assert_pair_converged(0, 1);
    sim.assert_pair_converged(0, 3);
    assert_eq!(sim.r(1).metrics().rebuilds, 1, "one removal, one rebuild");
    sim.reopen(1);
    sim.assert_pair_converged(0, 1);
    assert!(
        sim.r(1).is_void(&concurrent),
        "the cut is recomputed on open"
    );
    // (Node 2, the removed member, cannot open the removal: its replica keeps its own writes.
    // See `the_removed_member_cannot_read_the_new_epoch`.)
}

#[test]
fn the_removed_member_cannot_read_the_new_epoch() {
    let mut sim = Sim::manual(3);
    sim.put(0, b"base", b"0");
    sim.deliver_all();
    let old_epoch = sim.r(0).membership().epoch.unwrap();
    assert_eq!(old_epoch, genesis().envelope.epoch);

    isolate(&mut sim, 2);
    let removal = sim.govern(0, GovOp::Remove { member: member(2) });
    sim.deliver_all();
    let secret = sim.put(1, b"secret", b"s");
    sim.deliver_all();
    let new_epoch = sim.r(0).membership().epoch.unwrap();
    assert_ne!(new_epoch, old_epoch);
    assert_eq!(sim.r(1).membership().epoch, Some(new_epoch));
    let removal_env = sim.nodes[0].broadcasts.last().unwrap().clone();
    assert_eq!(removal_env.epoch, new_epoch);
    assert!(
        removal_env.keys.iter().all(|b| b.to != member(2)),
        "no key box for the removed member"
    );
    assert!(removal_env.keys.iter().any(|b| b.to == member(1)));
    let secret_env = sim.nodes[1].broadcasts.last().unwrap().clone();
    assert_eq!(secret_env.epoch, new_epoch);
    assert_eq!(value(&sim, 0, b"secret"), Some(b"s".to_vec()));

    // The removed member gets both: neither opens.
    sim.gossip(0, 2, &removal_env);
    sim.gossip(1, 2, &secret_env);
    assert_eq!(
        refusal(&sim, 2, removal),
        Some(SyncError::Access(AccessError::KeyUnknown {
            epoch: new_epoch
        }))
    );
    assert!(sim.r(2).metrics().key_unknown >= 1);
    assert!(!sim.r(2).dag().is_applied(&removal));
    assert!(!sim.r(2).dag().is_applied(&secret));
    assert_eq!(value(&sim, 2, b"secret"), None);
    // And the key boxes hold nothing for it: its key opens none of them.
    for b in &removal_env.keys {
        assert!(b.open(&ctx(), &keypair(2)).is_err());
    }
}

// -------------------------------------------------------------------------------------------------
// Keys.

#[test]
fn admins_rotating_concurrently_across_a_partition_agree_on_one_epoch() {
    let mut sim = Sim::founded_by(two_admin_genesis(), vec![manual_config(); 4]);
    sim.run_for(1);
    let first = sim.r(0).membership().epoch.unwrap();
    assert_eq!(
        sim.r(1).membership().members.get(&member(1)),
        Some(&Role::Admin)
    );

    // {0, 2} | {1, 3}: each admin rotates on its side, members write.
    for (a, b) in [(0, 1), (0, 3), (2, 1), (2, 3)] {
        sim.cut.extend([(a, b), (b, a)]);
    }
    sim.govern(0, GovOp::Rotate);
    sim.govern(1, GovOp::Rotate);
    sim.deliver_all();
    sim.put(2, b"left", b"2");
    sim.put(3, b"right", b"3");
    sim.deliver_all();
    let left = sim.r(0).membership().epoch.unwrap();
    let right = sim.r(1).membership().epoch.unwrap();
    assert_ne!(left, first);
    assert_ne!(right, first);
    assert_ne!(left, right);
    assert_eq!(sim.r(2).membership().epoch, Some(left));
    assert_eq!(sim.r(3).membership().epoch, Some(right));

    // Healed: one sync round each.
    sim.cut.clear();
    for i in 0..4 {
        sim.sync_now(i);
        sim.deliver_all();
    }
    let combined = epoch_id(&[left, right]);
    assert_eq!(combined, epoch_id(&[right, left]), "order-free");
    for i in 0..4 {
        assert_eq!(sim.r(i).membership().epoch, Some(combined), "node {i}");
    }
    sim.assert_converged();
    // A write after healing is sealed with the combined epoch and applies everywhere.
    let w = sim.put(3, b"after", b"heal");
    assert_eq!(sim.nodes[3].broadcasts.last().unwrap().epoch, combined);
    sim.deliver_all();
    for i in 0..4 {
        assert!(sim.r(i).dag().is_applied(&w), "node {i}");
        assert_eq!(value(&sim, i, b"after"), Some(b"heal".to_vec()), "node {i}");
    }
    sim.assert_converged();
}

#[test]
fn a_governance_operation_missed_while_cut_off_is_caught_up_by_periodic_sync() {
    // A rotation changes no state: the replica that missed it has the same root. The periodic
    // sync must still bring it (the summaries' governance digests differ).
    let mut sim = Sim::manual(3);
    isolate(&mut sim, 2);
    sim.govern(0, GovOp::Rotate);
    sim.deliver_all();
    let epoch = sim.r(0).membership().epoch;
    assert_eq!(sim.r(1).membership().epoch, epoch);
    assert_ne!(sim.r(2).membership().epoch, epoch);
    assert_eq!(sim.root(2), sim.root(0), "equal states");
    assert_ne!(sim.r(2).summary().governance, sim.r(0).summary().governance);

    sim.cut.clear();
    sim.sync_now(2);
    sim.deliver_all();
    assert_eq!(
        sim.r(2).membership().epoch,
        epoch,
        "sessions of node 2: {:?}",
        sim.sessions(2)
    );
    assert_eq!(sim.r(2).summary().governance, sim.r(0).summary().governance);
}

#[test]
fn a_member_that_joined_concurrently_with_a_rotation_gets_the_key_from_an_admin() {
    let mut sim = Sim::manual(2);
    let now = sim.now;
    let link = sim.nodes[0]
        .replica
        .invite(Role::Member, now + 60_000, "")
        .unwrap();
    let material = KeyMaterial::decode(&link.open_keys().unwrap()).unwrap();
    let joiner = keypair(70);
    let j = sim.add_node_with(
        manual_config(),
        access_with(joiner.clone(), 70, material.keys.clone()),
    );
    sim.run_for(1);
    assert!(!sim.r(j).dag().heads().is_empty(), "the joiner caught up");
    // The join and a rotation, concurrently; then each reaches the others.
    sim.drop_broadcasts = true;
    let join = sim.govern(j, join_op(&link, &joiner, &material));
    let rotation = sim.govern(0, GovOp::Rotate);
    sim.drop_broadcasts = false;
    let join_env = sim.nodes[j].broadcasts.last().unwrap().clone();
    let rotation_env = sim.nodes[0].broadcasts.last().unwrap().clone();
    for i in [0, 1] {
        sim.gossip(j, i, &join_env);
    }
    for i in [1, j] {
        sim.gossip(0, i, &rotation_env);
    }
    sim.deliver_all();
    let epoch = sim.r(0).membership().epoch.unwrap();
    assert_eq!(rotation_env.epoch, epoch);
    for i in [0, 1] {
        assert!(sim.r(i).dag().is_applied(&join), "node {i}");
        assert!(sim.r(i).dag().is_applied(&rotation), "node {i}");
        assert!(sim
            .r(i)
            .membership()
            .members
            .contains_key(&member_of(&joiner)));
        assert_eq!(sim.r(i).membership().epoch, Some(epoch), "node {i}");
    }
    // The rotation's key was sealed to the members of its position: not to the joiner, which
    // cannot apply it (it waits for the key, it is not refused for good).
    assert!(rotation_env.keys.iter().all(|b| b.to != member_of(&joiner)));
    assert_eq!(
        refusal(&sim, j, rotation),
        Some(SyncError::Access(AccessError::KeyUnknown { epoch }))
    );
    assert!(sim.r(j).metrics().key_unknown >= 1);
    assert!(!sim.r(j).dag().is_applied(&rotation));
    assert_ne!(sim.r(j).membership().epoch, Some(epoch));

    // An admin settles the debt: the key travels in a box to the joiner, which then applies the
    // rotation (pulled again) and writes in the new epoch.
    let (now, hlc) = (sim.now, sim.nodes[0].clock.tick(sim.now));
    let shared = sim.nodes[0].replica.settle_key_debts(now, hlc).unwrap();
    sim.drain(0);
    let share = shared.expect("the joiner lacks the rotation's key");
    let share_env = sim.nodes[0].broadcasts.last().unwrap().clone();
    assert_eq!(share_env.id(), share);
    assert!(share_env.keys.iter().any(|b| b.to == member_of(&joiner)));
    sim.deliver_all();
    assert!(sim.r(j).dag().is_applied(&rotation));
    assert!(sim.r(j).dag().is_applied(&share));
    assert_eq!(sim.r(j).membership().epoch, Some(epoch));
    let w = sim.put(j, b"j", b"1");
    assert_eq!(sim.nodes[j].broadcasts.last().unwrap().epoch, epoch);
    sim.deliver_all();
    for i in [0, 1] {
        assert!(sim.r(i).dag().is_applied(&w), "node {i}");
    }
    sim.assert_converged();
    // Nothing is owed any more.
    let (now, hlc) = (sim.now, sim.nodes[0].clock.tick(sim.now));
    assert_eq!(sim.nodes[0].replica.settle_key_debts(now, hlc), Ok(None));
}

// -------------------------------------------------------------------------------------------------
// Invitations.

fn member_of(kp: &Keypair) -> MemberId {
    MemberId(kp.public())
}

/// The join a holder of `link` writes with key pair `kp`.
fn join_op(link: &InviteLink, kp: &Keypair, material: &KeyMaterial) -> GovOp {
    GovOp::Join {
        invitation: Box::new(link.invitation.clone()),
        proof: link.prove(&kp.public()),
        keys: material.keys.iter().map(SymKey::id).collect(),
    }
}

/// Node 0 invites, valid for `ttl_ms` from now; the link travels as text; returns it and the key
/// material it opens to.
fn invite(sim: &mut Sim, role: Role, ttl_ms: u64) -> (InviteLink, KeyMaterial) {
    let link = sim.nodes[0]
        .replica
        .invite(role, sim.now + ttl_ms, "/dns4/relay.example/tcp/443/wss")
        .unwrap();
    let parsed = InviteLink::parse(&link.to_link()).unwrap();
    assert_eq!(parsed, link);
    assert_eq!(link.invitation.inviter, member(0));
    assert_eq!(link.invitation.context, ctx());
    let material = KeyMaterial::decode(&link.open_keys().unwrap()).unwrap();
    assert_eq!(material.heads, sim.r(0).dag().heads());
    (link, material)
}

#[test]
fn an_invitee_syncs_joins_and_writes_and_every_replica_accepts() {
    let mut sim = Sim::manual(3);
    sim.put(0, b"before", b"1");
    sim.put(1, b"other", b"2");
    sim.deliver_all();
    let (link, material) = invite(&mut sim, Role::Member, 60_000);
    assert!(material
        .keys
        .iter()
        .any(|k| k.id() == genesis().envelope.epoch));

    let joiner = keypair(60);
    let j = sim.add_node_with(
        manual_config(),
        access_with(joiner.clone(), 60, material.keys.clone()),
    );
    sim.run_for(1);
    // Caught up (by snapshot: it was empty), not a member yet.
    assert_eq!(value(&sim, j, b"before"), Some(b"1".to_vec()));
    for h in &material.heads {
        assert!(sim.r(j).dag().is_applied(h));
    }
    assert_eq!(
        sim.try_put(j, b"early", b"x"),
        Err(SyncError::Access(AccessError::NotAMember {
            author: member_of(&joiner)
        }))
    );

    let join = sim.govern(j, join_op(&link, &joiner, &material));
    sim.deliver_all();
    for i in 0..=j {
        assert!(sim.r(i).dag().is_applied(&join), "node {i}");
        assert!(!sim.r(i).is_void(&join), "node {i}");
        assert_eq!(
            sim.r(i).membership().members.get(&member_of(&joiner)),
            Some(&Role::Member),
            "node {i}"
        );
    }
    let w = sim.put(j, b"joiner", b"hi");
    sim.deliver_all();
    for i in 0..j {
        assert!(sim.r(i).dag().is_applied(&w), "node {i}");
        assert_eq!(value(&sim, i, b"joiner"), Some(b"hi".to_vec()), "node {i}");
    }
    sim.assert_converged();
    // A member now: later key operations seal the key to it too.
    sim.govern(0, GovOp::Rotate);
    sim.deliver_all();
    let w2 = sim.put(j, b"joiner", b"again");
    sim.deliver_all();
    assert!(sim.r(0).dag().is_applied(&w2));
    sim.assert_converged();
}

#[test]
fn a_join_stamped_after_the_invitations_expiry_is_rejected() {
    let mut sim = Sim::manual(2);
    let expires = sim.now + 1_000;
    let (link, material) = invite(&mut sim, Role::Member, 1_000);
    let joiner = keypair(61);
    let j = sim.add_node_with(
        manual_config(),
        access_with(joiner.clone(), 61, material.keys.clone()),
    );
    sim.run_for(1);
    assert!(!sim.r(j).dag().heads().is_empty());
    sim.now = expires + 5_000;

    // The joiner's replica checks its own join as peers will: nothing is published.
    let now = sim.now;
    let hlc = sim.nodes[j].clock.tick(now);
    assert_eq!(
        sim.nodes[j]
            .replica
            .govern(now, hlc, join_op(&link, &joiner, &material)),
        Err(SyncError::Access(AccessError::InvitationExpired {
            expires_ms: expires,
            at_ms: hlc.wall_ms
        }))
    );
    sim.drain(j);
    assert!(sim.nodes[j].broadcasts.is_empty());

    // Sealed by hand and sent anyway: every member refuses it.
    let payload = DeltaPayload {
        gov: Some(join_op(&link, &joiner, &material)),
        ..DeltaPayload::default()
    };
    let env = seal_by_hand(
        &joiner,
        sim.r(0).dag().heads(),
        hlc,
        &genesis_key(),
        &payload.encode().unwrap(),
        3,
    );
    for i in 0..2 {
        sim.gossip(j, i, &env);
        assert_eq!(
            refusal(&sim, i, env.id()),
            Some(SyncError::Access(AccessError::InvitationExpired {
                expires_ms: expires,
                at_ms: hlc.wall_ms
            })),
            "node {i}"
        );
        assert!(!sim
            .r(i)
            .membership()
            .members
            .contains_key(&member_of(&joiner)));
    }
    // Stamped before the expiry (its clock was behind), the same join is valid.
    let early = Hlc::new(expires - 1, 0);
    let env = seal_by_hand(
        &joiner,
        sim.r(0).dag().heads(),
        early,
        &genesis_key(),
        &payload.encode().unwrap(),
        4,
    );
    sim.gossip(j, 0, &env);
    assert!(sim.r(0).dag().is_applied(&env.id()));
    assert!(sim
        .r(0)
        .membership()
        .members
        .contains_key(&member_of(&joiner)));
}

#[test]
fn a_join_with_a_bad_proof_or_a_members_invitation_is_rejected() {
    let mut sim = Sim::manual(2);
    let (link, material) = invite(&mut sim, Role::Member, 60_000);
    let joiner = keypair(62);
    let heads = sim.r(0).dag().heads();
    let hlc = Hlc::new(sim.now, 0);
    let seal_join = |op: GovOp, n: u8| {
        let payload = DeltaPayload {
            gov: Some(op),
            ..DeltaPayload::default()
        };
        seal_by_hand(
            &joiner,
            heads.clone(),
            hlc,
            &genesis_key(),
            &payload.encode().unwrap(),
            n,
        )
    };
    // A proof made for another key (someone who saw the invitation but not the link secret
    // reuses another joiner's proof).
    let stolen = GovOp::Join {
        invitation: Box::new(link.invitation.clone()),
        proof: link.prove(&keypair(63).public()),
        keys: material.keys.iter().map(SymKey::id).collect(),
    };
    // An invitation whose fields were altered after signing (the role).
    let mut altered = link.invitation.clone();
    altered.role = Role::Admin;
    let promoted = GovOp::Join {
        invitation: Box::new(altered),
        proof: link.prove(&joiner.public()),
        keys: vec![],
    };
    for (n, op) in [stolen, promoted].into_iter().enumerate() {
        let env = seal_join(op, n as u8);
        sim.gossip(1, 0, &env);
        assert_join_refused(&sim, env.id(), &joiner);
    }
    // A member that is not an admin cannot invite (its replica refuses; see above), and a link it
    // forged itself is refused by peers.
    let forged = tabmesh_auth::Invitation::create(
        &keypair(1),
        ctx(),
        Hash::ZERO,
        Role::Member,
        sim.now + 60_000,
        "",
        &material.encode(),
        &mut Entropy::from_seed([1; 32]),
    )
    .unwrap();
    let env = seal_join(join_op(&forged, &joiner, &material), 9);
    sim.gossip(1, 0, &env);
    assert_join_refused(&sim, env.id(), &joiner);
}

#[test]
fn an_invitee_joins_while_the_inviter_is_offline() {
    let mut sim = Sim::manual(3);
    sim.put(0, b"before", b"1");
    sim.deliver_all();
    let (link, material) = invite(&mut sim, Role::Member, 600_000);
    // The inviter goes offline.
    isolate(&mut sim, 0);
    sim.put(1, b"meanwhile", b"1");
    sim.deliver_all();
    let joiner = keypair(64);
    let j = sim.add_node_with(
        manual_config(),
        access_with(joiner.clone(), 64, material.keys.clone()),
    );
    let now = sim.now;
    sim.nodes[j].replica.remove_peer(now, node_id(0));
    sim.drain(j);
    isolate(&mut sim, 0);
    sim.run_for(1);
    assert_eq!(
        value(&sim, j, b"meanwhile"),
        Some(b"1".to_vec()),
        "served by node 1 or 2"
    );
    let join = sim.govern(j, join_op(&link, &joiner, &material));
    let w = sim.put(j, b"joiner", b"hi");
    sim.deliver_all();
    for i in [1, 2] {
        assert!(sim.r(i).dag().is_applied(&join), "node {i}");
        assert!(sim
            .r(i)
            .membership()
            .members
            .contains_key(&member_of(&joiner)));
        assert_eq!(value(&sim, i, b"joiner"), Some(b"hi".to_vec()), "node {i}");
    }
    assert!(!sim.r(0).dag().is_applied(&join));
    // The inviter comes back and catches up from node 1 (a delta sync: node 1 has the whole
    // history).
    sim.cut.clear();
    let now = sim.now;
    for p in [node_id(2), node_id(j)] {
        sim.nodes[0].replica.remove_peer(now, p);
    }
    sim.drain(0);
    sim.sync_now(0);
    sim.deliver_all();
    assert!(sim.r(0).dag().is_applied(&w));
    assert!(sim
        .r(0)
        .membership()
        .members
        .contains_key(&member_of(&joiner)));
    sim.assert_converged();
    let w2 = sim.put(j, b"joiner", b"again");
    sim.deliver_all();
    assert!(sim.r(0).dag().is_applied(&w2));
    sim.assert_converged();
}

#[test]
fn a_replica_repaired_from_a_snapshot_joiner_learns_the_governance_it_missed() {
    // Node 0 is offline while an invitee joins by snapshot (from node 1) and writes. Node 0 then
    // catches up from the joiner alone: the joiner's history starts at its snapshot, so a delta
    // sync falls back to a Merkle repair. The join is among the deltas that repair covers: node
    // 0 must still know the joiner as a member, and accept its next deltas.
    let mut sim = Sim::manual(2);
    sim.put(0, b"before", b"1");
    sim.deliver_all();
    let (link, material) = invite(&mut sim, Role::Member, 600_000);
    isolate(&mut sim, 0);
    sim.put(1, b"meanwhile", b"1");
    let joiner = keypair(65);
    let j = sim.add_node_with(
        manual_config(),
        access_with(joiner.clone(), 65, material.keys.clone()),
    );
    let now = sim.now;
    sim.nodes[j].replica.remove_peer(now, node_id(0));
    sim.drain(j);
    isolate(&mut sim, 0);
    sim.run_for(1);
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    let join = sim.govern(j, join_op(&link, &joiner, &material));
    sim.put(j, b"joiner", b"hi");
    sim.deliver_all();
    assert!(sim.r(1).dag().is_applied(&join));

    sim.cut.clear();
    let now = sim.now;
    sim.nodes[0].replica.remove_peer(now, node_id(1));
    sim.drain(0);
    sim.sync_now(0);
    sim.deliver_all();
    sim.assert_pair_converged(0, j);
    assert!(sim.r(0).dag().is_applied(&join));
    let next = sim.put(j, b"joiner", b"next");
    sim.deliver_all();
    assert!(
        sim.r(0).dag().is_applied(&next),
        "the joiner's next delta is refused after a repair from it: {:?} (sessions {:?})",
        refusal(&sim, 0, next),
        sim.sessions(0)
    );
    assert!(
        sim.r(0)
            .membership()
            .members
            .contains_key(&member_of(&joiner)),
        "the repair covered the join without recording it"
    );
    assert_eq!(sim.r(0).summary().governance, sim.r(j).summary().governance);
}

// -------------------------------------------------------------------------------------------------
// Snapshot joiners.

#[test]
fn a_snapshot_joiner_installs_the_governance_log_then_accepts_members_deltas() {
    let mut sim = Sim::manual(4);
    sim.put(0, b"a", b"1");
    sim.put(3, b"by3", b"stands");
    sim.deliver_all();
    let old_heads = sim.r(3).dag().heads();
    sim.govern(0, GovOp::Remove { member: member(3) });
    // The removed member is gone from the network (its drivers' direct messages would be
    // refused: it is no member; this simulator carries them in the clear, so it is cut).
    isolate(&mut sim, 3);
    sim.govern(0, GovOp::ChangeApp { app: Hash([7; 32]) });
    sim.govern(0, GovOp::Rotate);
    sim.put(1, b"b", b"2");
    sim.deliver_all();

    // A founder that never saw the genesis joins by snapshot from node 0.
    let j = sim.add_node(manual_config());
    isolate(&mut sim, 3);
    for i in 1..j {
        let (now, id) = (sim.now, sim.nodes[i].id);
        sim.nodes[j].replica.remove_peer(now, id);
    }
    sim.drain(j);
    sim.run_for(1);
    assert_eq!(sim.r(j).metrics().snapshots_installed, 1);
    assert_eq!(
        sim.requests_sent(j, 0, |r| matches!(r, Request::Governance { .. })),
        1,
        "the governance log (four operations) fits one page"
    );
    sim.assert_pair_converged(0, j);
    assert_eq!(sim.r(j).membership(), sim.r(0).membership());
    assert_eq!(sim.r(j).summary().governance, sim.r(0).summary().governance);
    assert_eq!(sim.r(j).membership().app, Some(Hash([7; 32])));
    assert!(sim.r(j).membership().removed.contains(&member(3)));

    // A member's next delta (sealed with the newest epoch) applies there at once.
    let next = sim.put(1, b"next", b"3");
    sim.deliver_all();
    assert!(sim.r(j).dag().is_applied(&next));
    assert_eq!(value(&sim, j, b"next"), Some(b"3".to_vec()));
    // The removed member's delta on its old heads, relayed by node 0: void there too (the
    // joiner pulls its ancestors, from before its snapshot, from node 0).
    let late = seal_by_hand(
        &keypair(3),
        old_heads,
        Hlc::new(sim.now, 0),
        &genesis_key(),
        &DeltaPayload::actions(put_actions(member(3), Hlc::new(sim.now, 0), b"late", b"3"))
            .encode()
            .unwrap(),
        2,
    );
    for i in [0, j] {
        sim.gossip(0, i, &late);
    }
    sim.deliver_all();
    for i in [0, j] {
        // On parents held here: kept in the DAG, void.
        assert!(sim.r(i).dag().is_applied(&late.id()), "node {i}");
        assert!(sim.r(i).is_void(&late.id()), "node {i}");
        assert_eq!(value(&sim, i, b"late"), None, "node {i}");
    }
    sim.assert_pair_converged(0, j);
    assert_eq!(
        sim.r(j).summary().governance,
        sim.r(0).summary().governance,
        "history from before the snapshot, applied later, changes nothing in the governance log"
    );
    assert_eq!(sim.r(j).membership(), sim.r(0).membership());
    // The joiner writes; every member applies it.
    let mine = sim.put(j, b"joiner", b"j");
    sim.deliver_all();
    for i in 0..3 {
        assert!(sim.r(i).dag().is_applied(&mine), "node {i}");
    }
    sim.assert_pair_converged(0, j);
    sim.assert_pair_converged(0, 1);
    sim.assert_pair_converged(0, 2);
}

#[test]
fn two_admins_removing_each_other_concurrently_both_leave_in_any_order() {
    // A removal is judged by its causal past alone: whichever arrives first, both take effect.
    for first in [0, 1] {
        let mut sim = Sim::founded_by(two_admin_genesis(), vec![manual_config(); 4]);
        sim.run_for(1);
        for (a, b) in [(0, 1), (1, 0)] {
            sim.cut.insert((a, b));
        }
        // Each admin's removal is held back from the others until both exist.
        sim.drop_broadcasts = true;
        let r0 = sim.govern(0, GovOp::Remove { member: member(1) });
        let r1 = sim.govern(1, GovOp::Remove { member: member(0) });
        sim.drop_broadcasts = false;
        let env = |sim: &Sim, i: usize, id: DeltaId| {
            sim.nodes[i]
                .broadcasts
                .iter()
                .find(|e| e.id() == id)
                .cloned()
                .unwrap()
        };
        let (e0, e1) = (env(&sim, 0, r0), env(&sim, 1, r1));
        let order = if first == 0 { [&e0, &e1] } else { [&e1, &e0] };
        for i in [2, 3] {
            for e in order {
                sim.gossip(if e.id() == r0 { 0 } else { 1 }, i, e);
            }
        }
        sim.deliver_all();
        for i in [2, 3] {
            let m = sim.r(i).membership();
            assert!(
                m.removed.contains(&member(0)),
                "order {first}, node {i}: {m:?}"
            );
            assert!(
                m.removed.contains(&member(1)),
                "order {first}, node {i}: {m:?}"
            );
            assert!(!sim.r(i).is_void(&r0) && !sim.r(i).is_void(&r1));
        }
        assert_eq!(sim.r(2).summary().governance, sim.r(3).summary().governance);
    }
}

#[test]
fn a_removed_member_cannot_come_back_on_its_old_invitation() {
    let mut sim = Sim::manual(3);
    let (link, material) = invite(&mut sim, Role::Member, 3_600_000);
    let first = keypair(61);
    let j = sim.add_node_with(
        manual_config(),
        access_with(first.clone(), 61, material.keys.clone()),
    );
    sim.run_for(1);
    sim.govern(j, join_op(&link, &first, &material));
    sim.deliver_all();
    assert!(sim
        .r(0)
        .membership()
        .members
        .contains_key(&member_of(&first)));

    // Removed; it makes a fresh key pair and joins again with the same (unexpired) link.
    sim.govern(
        0,
        GovOp::Remove {
            member: member_of(&first),
        },
    );
    sim.deliver_all();
    let second = keypair(62);
    let k = sim.add_node_with(
        manual_config(),
        access_with(second.clone(), 62, material.keys.clone()),
    );
    sim.run_for(1);
    let again = sim.try_govern(k, join_op(&link, &second, &material));
    sim.deliver_all();
    for i in 0..3 {
        let m = sim.r(i).membership();
        assert!(
            !m.members.contains_key(&member_of(&second)),
            "node {i}: the old link let a removed member back in"
        );
        if let Ok(id) = again {
            assert!(
                sim.r(i).is_void(&id) || !sim.r(i).dag().is_applied(&id),
                "node {i}: the second join counts"
            );
        }
    }
}

// -------------------------------------------------------------------------------------------------
// Concurrent joiners.

/// How far joiner C's catch-up from A (a snapshot session) has gone when something happens: the
/// number of its session's requests A has received (0: no session yet), or [`CAUGHT_UP`].
type Stage = usize;

/// C installed its snapshot (its session asks A three things: a summary, the snapshot and the
/// governance log).
const CAUGHT_UP: Stage = 4;

/// Delivers queued packets in order until the next one is C's session request number `stage`
/// (1-based, left queued; `CAUGHT_UP`: everything), holding back C's parent pulls in `held` (a
/// slow network: they arrive last). `delivered` counts C's session requests delivered so far.
fn catch_up_until(
    sim: &mut Sim,
    c: usize,
    stage: Stage,
    delivered: &mut usize,
    held: &mut Vec<Packet>,
) {
    while let Some(p) = sim.queue.front() {
        let from_c = p.from == c;
        let pull = matches!(p.request(), Some(Request::Deltas { .. }));
        let session_request = from_c && !pull && p.request().is_some();
        if session_request && *delivered + 1 == stage {
            return;
        }
        let p = sim.queue.pop_front().unwrap();
        if from_c && pull {
            held.push(p);
            continue;
        }
        *delivered += usize::from(session_request);
        sim.deliver(p);
    }
}

/// A creates and writes; B and C join with invitations of A. B catches up first, then writes
/// its join and a value. The join reaches A at C's catch-up stage `a_join`, the value at
/// `a_write`; both reach C (the value first if `write_first`) at stage `c_gets`. Then C joins and
/// writes, and everyone syncs with everyone: all three must agree, count B and C as members
/// and apply their writes.
fn concurrent_joiners(
    a_join: Stage,
    a_write: Stage,
    c_gets: Stage,
    write_first: bool,
) -> Result<(), String> {
    let mut sim = Sim::manual(1);
    sim.put(0, b"a", b"from A");
    let (link_b, mat_b) = invite(&mut sim, Role::Member, 600_000);
    let (link_c, mat_c) = invite(&mut sim, Role::Member, 600_000);
    let kb = keypair(70);
    let b = sim.add_node_with(
        manual_config(),
        access_with(kb.clone(), 70, mat_b.keys.clone()),
    );
    let kc = keypair(71);
    let c = sim.add_node_with(
        manual_config(),
        access_with(kc.clone(), 71, mat_c.keys.clone()),
    );
    let (ida, idb, idc) = (node_id(0), node_id(b), node_id(c));
    // B catches up from A alone; C waits, with no peer.
    let now = sim.now;
    sim.nodes[b].replica.remove_peer(now, idc);
    sim.nodes[c].replica.remove_peer(now, ida);
    sim.nodes[c].replica.remove_peer(now, idb);
    sim.drain(b);
    sim.drain(c);
    sim.nodes[b].replica.handle_timeout(now);
    sim.drain(b);
    sim.deliver_all();
    assert!(mat_b.heads.iter().all(|h| sim.r(b).dag().is_applied(h)));
    // (A joiner's clock has not seen the stamps of the history its snapshot covers: time passes,
    // so its join is stamped after its parents.)
    sim.now += 100;
    let join_b = sim.govern(b, join_op(&link_b, &kb, &mat_b));
    let write_b = sim.put(b, b"b", b"from B");
    // B's gossip is held, then handed out stage by stage.
    let gossip: Vec<Packet> = sim.queue.drain(..).collect();
    let to = |j: usize| -> Vec<Packet> { gossip.iter().filter(|p| p.to == j).cloned().collect() };
    let (mut to_a, mut to_c) = (to(0), to(c));
    assert_eq!((to_a.len(), to_c.len()), (2, 2));
    if write_first {
        to_c.reverse();
    }
    let mut a_join_packet = Some(to_a.remove(0));
    let mut a_write_packet = Some(to_a.remove(0));
    let mut c_packets = Some(to_c);
    let mut at = |sim: &mut Sim, stage: Stage| {
        if a_join == stage {
            sim.deliver(a_join_packet.take().unwrap());
        }
        if a_write == stage {
            sim.deliver(a_write_packet.take().unwrap());
        }
        if c_gets == stage {
            for p in c_packets.take().unwrap() {
                sim.deliver(p);
            }
        }
    };
    let (mut delivered, mut held) = (0, Vec::new());
    at(&mut sim, 0);
    let now = sim.now;
    sim.nodes[c].replica.add_peer(now, ida);
    sim.drain(c);
    sim.nodes[c].replica.handle_timeout(now);
    sim.drain(c);
    for stage in 1..=CAUGHT_UP {
        catch_up_until(&mut sim, c, stage, &mut delivered, &mut held);
        at(&mut sim, stage);
    }
    if sim.r(c).metrics().snapshots_installed != 1 || delivered != CAUGHT_UP - 1 {
        return Err(format!(
            "C did not catch up by snapshot in three requests: {:?}",
            sim.sessions(c)
        ));
    }
    for p in held {
        sim.deliver(p);
    }
    sim.deliver_all();
    sim.now += 100;
    // C joins and writes; then the network is whole and everyone syncs with everyone.
    let join_c = sim.govern(c, join_op(&link_c, &kc, &mat_c));
    let write_c = sim.put(c, b"c", b"from C");
    sim.deliver_all();
    let now = sim.now;
    for (x, y) in [(b, c), (c, b)] {
        let id = sim.nodes[y].id;
        sim.nodes[x].replica.add_peer(now, id);
        sim.drain(x);
    }
    for _ in 0..3 {
        for i in 0..3 {
            sim.sync_now(i);
            sim.deliver_all();
        }
        sim.run_for(60_000);
    }
    let next_b = sim.put(b, b"b", b"again");
    let next_c = sim.put(c, b"c", b"again");
    sim.deliver_all();
    for i in 0..3 {
        for (what, id) in [
            ("B's join", join_b),
            ("B's write", write_b),
            ("C's join", join_c),
            ("C's write", write_c),
            ("B's next write", next_b),
            ("C's next write", next_c),
        ] {
            if !sim.r(i).dag().is_applied(&id) {
                return Err(format!(
                    "node {i} lacks {what}: refused {:?}; sessions {:?}",
                    refusals(&sim, i, id),
                    sim.sessions(i)
                ));
            }
        }
        for m in [&kb, &kc] {
            if !sim.r(i).membership().members.contains_key(&member_of(m)) {
                return Err(format!("node {i} does not count {m:?} as a member"));
            }
        }
    }
    for i in 1..3 {
        if sim.root(i) != sim.root(0) || sim.entries(i) != sim.entries(0) {
            return Err(format!("node {i} differs from node 0"));
        }
        if sim.r(i).summary().governance != sim.r(0).summary().governance {
            return Err(format!("node {i} has another governance log than node 0"));
        }
    }
    Ok(())
}

#[test]
fn concurrent_joiners_accept_each_other_whatever_reaches_whom_first() {
    // B's join and first write reach A and C before, during or after C's snapshot session with
    // A: the snapshot may cover neither, the join only, or both, and C may buffer them, hold them
    // pending on parents its snapshot brings, or receive them after it.
    let mut failures = Vec::new();
    for a_join in 0..=CAUGHT_UP {
        for a_write in a_join..=CAUGHT_UP {
            for c_gets in 0..=CAUGHT_UP {
                for write_first in [false, true] {
                    if let Err(e) = concurrent_joiners(a_join, a_write, c_gets, write_first) {
                        failures.push(format!(
                            "B's join reaches A at stage {a_join}, its write at {a_write}, C gets \
                             both at {c_gets} (write first: {write_first}): {e}"
                        ));
                    }
                }
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
