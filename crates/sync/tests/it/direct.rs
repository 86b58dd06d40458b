//! Sealed direct messages ([`Replica::seal_message`] / [`Replica::open_message`]): requests and
//! responses between two nodes travel encrypted with a context key and signed by a member (or an
//! invitee holding a link), bound to both node ids; only members and valid invitees are answered.

use tabmesh_testkit::test;

use tabmesh_auth::{Entropy, Role};
use tabmesh_base::{
    codec::{Reader, Writer},
    Hash,
};
use tabmesh_sync::{
    Access, AccessError, GovOp, InviteeProof, KeyMaterial, Message, Replica, Request, Response,
    Sealed, Summary, SyncError,
};

use super::support::{
    ctx, drain_outputs, founded_replica, genesis, genesis_key, keypair, manual_config, member,
    node_id, OTHER_CTX, T0,
};

fn summary_request() -> Message {
    Message::Request {
        id: 7,
        body: Request::Summary,
    }
}

fn founder(i: usize) -> Replica {
    founded_replica(i, format!("d{i}/").as_bytes(), manual_config(), i as u64)
}

#[test]
fn a_members_sealed_message_opens_at_its_recipient_only() {
    let (n0, n1, n2) = (node_id(0), node_id(1), node_id(2));
    let mut r0 = founder(0);
    let mut r1 = founder(1);
    let message = summary_request();
    let sealed = r1.seal_message(n1, n0, &message, None, None).unwrap();
    assert_eq!(sealed.sender, member(1));
    assert_eq!(sealed.context, ctx());
    assert_eq!(sealed.epoch, genesis().envelope.epoch);
    assert!(sealed.invitee.is_none());
    // Nothing of the message in the clear.
    let plain = tabmesh_sync::Frame {
        context: ctx(),
        message: message.clone(),
    }
    .encode();
    assert!(!sealed.ciphertext.windows(plain.len()).any(|w| w == plain));

    // Through the codec, it opens at its recipient.
    let mut w = Writer::new();
    sealed.encode(&mut w);
    let bytes = w.finish();
    let mut r = Reader::new(&bytes).unwrap();
    let decoded = Sealed::decode(&mut r).unwrap();
    r.finish().unwrap();
    assert_eq!(decoded, sealed);
    assert_eq!(r0.open_message(T0, n1, n0, &decoded), Ok(message.clone()));

    // Bound to both node ids: relayed to another node, or claimed from another, it is refused.
    let bad = Err(SyncError::Access(AccessError::BadSignature));
    assert_eq!(r0.open_message(T0, n2, n0, &sealed), bad);
    let mut r2 = founder(2);
    assert_eq!(r2.open_message(T0, n1, n2, &sealed), bad);
    // Any altered field breaks the signature.
    let mut c = sealed.clone();
    c.ciphertext[0] ^= 1;
    assert_eq!(r0.open_message(T0, n1, n0, &c), bad);
    let mut c = sealed.clone();
    c.nonce[0] ^= 1;
    assert_eq!(r0.open_message(T0, n1, n0, &c), bad);
    let mut c = sealed.clone();
    c.epoch = Hash([1; 32]);
    assert_eq!(r0.open_message(T0, n1, n0, &c), bad);
    let mut c = sealed.clone();
    c.sender = member(2);
    assert_eq!(r0.open_message(T0, n1, n0, &c), bad);
    let mut c = sealed.clone();
    c.signature.0[0] ^= 1;
    assert_eq!(r0.open_message(T0, n1, n0, &c), bad);
    // Another context's message.
    let mut c = sealed.clone();
    c.context = OTHER_CTX;
    assert_eq!(
        r0.open_message(T0, n1, n0, &c),
        Err(SyncError::WrongContext {
            expected: ctx(),
            found: OTHER_CTX
        })
    );

    // A response travels the same way.
    let response = Message::Response {
        id: 7,
        body: Response::Summary(Summary::default()),
    };
    let sealed = r0.seal_message(n0, n1, &response, None, None).unwrap();
    assert_eq!(r1.open_message(T0, n0, n1, &sealed), Ok(response));
}

#[test]
fn a_non_member_or_a_removed_member_is_not_answered() {
    let (n0, n1, n9) = (node_id(0), node_id(1), node_id(9));
    let mut r0 = founder(0);
    // An outsider that somehow holds the context key.
    let mut outsider = Replica::new(
        ctx(),
        b"out/",
        manual_config(),
        9,
        T0,
        Access {
            me: keypair(50),
            entropy: Entropy::from_seed([50; 32]),
            keys: vec![genesis_key()],
        },
    );
    outsider.handle_delta(T0, None, genesis().envelope.clone());
    drain_outputs(&mut outsider);
    let sealed = outsider
        .seal_message(n9, n0, &summary_request(), None, None)
        .unwrap();
    assert_eq!(
        r0.open_message(T0, n9, n0, &sealed),
        Err(SyncError::Access(AccessError::NotAMember {
            author: member(50)
        }))
    );

    // Node 1 is removed: its old replica still holds the old key, and is refused.
    let mut r1 = founder(1);
    let before = r1
        .seal_message(n1, n0, &summary_request(), None, None)
        .unwrap();
    assert!(r0.open_message(T0, n1, n0, &before).is_ok());
    r0.govern(
        T0,
        tabmesh_base::Hlc::new(T0, 5),
        GovOp::Remove { member: member(1) },
    )
    .unwrap();
    drain_outputs(&mut r0);
    let after = r1
        .seal_message(n1, n0, &summary_request(), None, None)
        .unwrap();
    assert_eq!(
        r0.open_message(T0, n1, n0, &after),
        Err(SyncError::Access(AccessError::NotAMember {
            author: member(1)
        }))
    );
}

#[test]
fn an_invitee_is_answered_until_its_invitation_expires() {
    let (n0, n7) = (node_id(0), node_id(7));
    let mut r0 = founder(0);
    let expires = T0 + 10_000;
    let link = r0.invite(Role::Member, expires, "").unwrap();
    let material = KeyMaterial::decode(&link.open_keys().unwrap()).unwrap();
    let joiner = keypair(60);
    let joiner_id = tabmesh_base::MemberId(joiner.public());
    // The invitee has no history yet, only the invitation's keys.
    let mut inv = Replica::new(
        ctx(),
        b"inv/",
        manual_config(),
        7,
        T0,
        Access {
            me: joiner.clone(),
            entropy: Entropy::from_seed([60; 32]),
            keys: material.keys.clone(),
        },
    );
    let proof = InviteeProof::new(&link, &joiner_id);
    let sealed = inv
        .seal_message(n7, n0, &summary_request(), None, Some(proof.clone()))
        .unwrap();
    assert_eq!(sealed.invitee, Some(proof.clone()));
    assert_eq!(r0.open_message(T0, n7, n0, &sealed), Ok(summary_request()));
    assert_eq!(
        r0.open_message(expires + 1, n7, n0, &sealed),
        Err(SyncError::Access(AccessError::InvitationExpired {
            expires_ms: expires,
            at_ms: expires + 1
        }))
    );
    // Without the invitation, or with a proof made for another key: not answered.
    let bare = inv
        .seal_message(n7, n0, &summary_request(), None, None)
        .unwrap();
    let refused = Err(SyncError::Access(AccessError::NotAMember {
        author: joiner_id,
    }));
    assert_eq!(r0.open_message(T0, n7, n0, &bare), refused);
    let stolen = InviteeProof {
        invitation: link.invitation.clone(),
        proof: link.prove(&keypair(61).public()),
    };
    let sealed = inv
        .seal_message(n7, n0, &summary_request(), None, Some(stolen))
        .unwrap();
    assert_eq!(r0.open_message(T0, n7, n0, &sealed), refused);

    // The invitee opens the member's answer with the invitation's key (it knows no governance
    // yet: the key is the proof).
    let answer = Message::Response {
        id: 7,
        body: Response::Summary(r0.summary()),
    };
    let sealed = r0.seal_message(n0, n7, &answer, None, None).unwrap();
    assert_eq!(inv.open_message(T0, n0, n7, &sealed), Ok(answer));
    // Sealed with a key it does not hold, it cannot.
    r0.govern(T0, tabmesh_base::Hlc::new(T0, 1), GovOp::Rotate)
        .unwrap();
    drain_outputs(&mut r0);
    // (Without a hint the member would answer in the epoch of the invitee's latest message;
    // name the new epoch explicitly.)
    let current = r0.membership().epoch;
    let sealed = r0
        .seal_message(n0, n7, &summary_request(), current, None)
        .unwrap();
    assert_ne!(sealed.epoch, genesis().envelope.epoch);
    assert_eq!(
        inv.open_message(T0, n0, n7, &sealed),
        Err(SyncError::Access(AccessError::KeyUnknown {
            epoch: sealed.epoch
        }))
    );
    // Asked in the epoch the invitee holds (the hint), the member answers in it.
    let sealed = r0
        .seal_message(
            n0,
            n7,
            &summary_request(),
            Some(genesis().envelope.epoch),
            None,
        )
        .unwrap();
    assert_eq!(sealed.epoch, genesis().envelope.epoch);
    assert!(inv.open_message(T0, n0, n7, &sealed).is_ok());
    // Without a hint, the member answers in the epoch of the invitee's latest message it opened.
    let sealed = r0
        .seal_message(n0, n7, &summary_request(), None, None)
        .unwrap();
    assert_eq!(sealed.epoch, genesis().envelope.epoch);
    assert!(inv.open_message(T0, n0, n7, &sealed).is_ok());
}

#[test]
fn a_sealed_message_carries_no_delta() {
    let (n0, n1) = (node_id(0), node_id(1));
    let mut r0 = founder(0);
    let mut r1 = founder(1);
    let sealed = r1
        .seal_message(
            n1,
            n0,
            &Message::Delta(genesis().envelope.clone()),
            None,
            None,
        )
        .unwrap();
    assert!(matches!(
        r0.open_message(T0, n1, n0, &sealed),
        Err(SyncError::Protocol(_))
    ));
}
