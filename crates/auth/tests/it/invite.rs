use tabmesh_testkit::test;

use tabmesh_auth::{
    AuthError, Entropy, Invitation, InviteLink, Keypair, Role, Signature, MAX_INVITE_KEYS,
    MAX_INVITE_RELAY,
};
use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{CodecError, MemberId};

use super::support::{app, context, entropy, link, resign, KEY_MATERIAL};

fn encode(inv: &Invitation) -> Vec<u8> {
    let mut w = Writer::new();
    inv.encode(&mut w);
    w.finish()
}

fn decode(bytes: &[u8]) -> Result<Invitation, CodecError> {
    let mut r = Reader::new(bytes)?;
    let inv = Invitation::decode(&mut r)?;
    r.finish()?;
    Ok(inv)
}

#[test]
fn a_created_invitation_verifies_and_opens() {
    let (inviter, link) = link(40);
    let inv = &link.invitation;
    inv.verify().unwrap();
    assert_eq!(inv.inviter, MemberId(inviter.public()));
    assert_eq!(inv.context, context());
    assert_eq!(inv.app, app());
    assert_eq!(inv.role, Role::Member);
    assert_eq!(link.open_keys().unwrap(), KEY_MATERIAL);
    // The key material is sealed, not in clear.
    assert!(!inv
        .keys
        .windows(KEY_MATERIAL.len())
        .any(|w| w == KEY_MATERIAL));
    // The secret is not in the invitation.
    assert!(!encode(inv).windows(32).any(|w| w == link.secret));
}

#[test]
fn an_invitation_encodes_and_decodes() {
    let (_, link) = link(41);
    let bytes = encode(&link.invitation);
    let back = decode(&bytes).unwrap();
    assert_eq!(back, link.invitation);
    assert_eq!(back.id(), link.invitation.id());
    for n in 1..bytes.len() {
        assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
    }
}

#[test]
fn a_tampered_field_breaks_the_signature() {
    let (_, link) = link(42);
    let inv = link.invitation;
    let mut cases = Vec::new();
    let mut role = inv.clone();
    role.role = Role::Admin;
    cases.push(role);
    let mut expires = inv.clone();
    expires.expires_ms += 1;
    cases.push(expires);
    let mut relay = inv.clone();
    relay.relay.push('x');
    cases.push(relay);
    let mut app = inv.clone();
    app.app.0[0] ^= 1;
    cases.push(app);
    let mut ctx = inv.clone();
    ctx.context.0[0] ^= 1;
    cases.push(ctx);
    let mut keys = inv.clone();
    keys.keys[0] ^= 1;
    cases.push(keys);
    let mut nonce = inv.clone();
    nonce.keys_nonce[0] ^= 1;
    cases.push(nonce);
    let mut invite_key = inv.clone();
    invite_key.invite_key = Keypair::from_secret([9; 32]).public();
    cases.push(invite_key);
    let mut inviter = inv.clone();
    inviter.inviter = MemberId(Keypair::from_secret([8; 32]).public());
    cases.push(inviter);
    let mut sig = inv.clone();
    sig.signature.0[10] ^= 1;
    cases.push(sig);
    for (i, bad) in cases.iter().enumerate() {
        assert_eq!(bad.verify(), Err(AuthError::BadSignature), "case {i}");
        assert_ne!(bad.id(), inv.id(), "case {i}");
    }
}

#[test]
fn the_keys_are_bound_to_the_signed_fields() {
    // Someone who re-signs an invitation with other fields cannot reuse the sealed keys.
    let (inviter, link) = link(43);
    let mut other = link.clone();
    other.invitation.role = Role::Admin;
    resign(&mut other.invitation, &inviter);
    other.invitation.verify().unwrap();
    assert_eq!(other.open_keys(), Err(AuthError::Decrypt));
    // Another secret does not open them either.
    let mut wrong = link.clone();
    wrong.secret[0] ^= 1;
    assert_eq!(wrong.open_keys(), Err(AuthError::Decrypt));
}

#[test]
fn a_proof_by_the_link_holder_verifies() {
    let (_, link) = link(44);
    let joiner = Keypair::generate(&mut entropy(45)).public();
    let proof = link.prove(&joiner);
    link.invitation.check_proof(&joiner, &proof).unwrap();
}

#[test]
fn a_proof_for_another_joiner_or_from_another_secret_fails() {
    let (_, link_a) = link(46);
    let mut e = entropy(47);
    let joiner = Keypair::generate(&mut e).public();
    let other_joiner = Keypair::generate(&mut e).public();
    let proof = link_a.prove(&joiner);
    assert_eq!(
        link_a.invitation.check_proof(&other_joiner, &proof),
        Err(AuthError::BadSignature)
    );
    // Another link's secret (another invitation, same context) does not prove this one.
    let (_, link_b) = link(48);
    let forged = link_b.prove(&joiner);
    assert_eq!(
        link_a.invitation.check_proof(&joiner, &forged),
        Err(AuthError::BadSignature)
    );
    // Nor does a guessed secret on this invitation.
    let mut guessed = link_a.clone();
    guessed.secret = [0; 32];
    assert_eq!(
        link_a
            .invitation
            .check_proof(&joiner, &guessed.prove(&joiner)),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        link_a.invitation.check_proof(&joiner, &Signature([0; 64])),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn create_enforces_the_bounds() {
    let mut e = entropy(49);
    let inviter = Keypair::generate(&mut e);
    let create = |relay: &str, keys: &[u8], e: &mut Entropy| {
        Invitation::create(&inviter, context(), app(), Role::Admin, 0, relay, keys, e)
    };
    let relay = "r".repeat(MAX_INVITE_RELAY);
    let keys = vec![1u8; MAX_INVITE_KEYS - 16];
    let link = create(&relay, &keys, &mut e).unwrap();
    assert_eq!(link.invitation.keys.len(), MAX_INVITE_KEYS);
    assert_eq!(link.open_keys().unwrap(), keys);
    assert_eq!(decode(&encode(&link.invitation)).unwrap(), link.invitation);
    assert_eq!(
        InviteLink::parse(&link.to_link()).unwrap(),
        link,
        "the largest invitation parses"
    );
    let relay_over = "r".repeat(MAX_INVITE_RELAY + 1);
    assert!(matches!(
        create(&relay_over, b"k", &mut e),
        Err(AuthError::TooLarge {
            what: "invitation relay",
            ..
        })
    ));
    assert!(matches!(
        create("", &vec![1u8; MAX_INVITE_KEYS - 15], &mut e),
        Err(AuthError::TooLarge { .. })
    ));
    // An empty relay and empty key material are fine.
    create("", b"", &mut e)
        .unwrap()
        .invitation
        .verify()
        .unwrap();
}

#[test]
fn decode_enforces_the_bounds() {
    let (inviter, link) = link(50);
    let mut relay = link.invitation.clone();
    relay.relay = "r".repeat(MAX_INVITE_RELAY + 1);
    resign(&mut relay, &inviter);
    assert!(matches!(
        decode(&encode(&relay)),
        Err(CodecError::TooLarge {
            what: "invitation relay",
            ..
        })
    ));
    assert!(matches!(relay.verify(), Err(AuthError::TooLarge { .. })));
    let mut keys = link.invitation.clone();
    keys.keys = vec![0; MAX_INVITE_KEYS + 1];
    resign(&mut keys, &inviter);
    assert!(matches!(
        decode(&encode(&keys)),
        Err(CodecError::TooLarge {
            what: "invitation keys",
            ..
        })
    ));
    assert!(matches!(keys.verify(), Err(AuthError::TooLarge { .. })));
}

#[test]
fn decode_refuses_an_unknown_role_and_bad_utf8() {
    let (_, link) = link(51);
    let mut bytes = encode(&link.invitation);
    // version, context, app, inviter, then the role byte.
    let role_at = 1 + 32 * 3;
    assert_eq!(bytes[role_at], Role::Member.to_u8());
    bytes[role_at] = 3;
    assert_eq!(
        decode(&bytes),
        Err(CodecError::InvalidTag {
            what: "role",
            tag: 3
        })
    );
    let mut bytes = encode(&link.invitation);
    // role, expires_ms, relay length, then the first relay byte.
    bytes[role_at + 1 + 8 + 4] = 0xff;
    assert!(matches!(decode(&bytes), Err(CodecError::Invalid(_))));
}

#[test]
fn roles_roundtrip_through_their_byte() {
    for role in [Role::Member, Role::Admin] {
        assert_eq!(Role::from_u8(role.to_u8()), Some(role));
    }
    assert_eq!(Role::Member.to_u8(), 1);
    assert_eq!(Role::Admin.to_u8(), 2);
    assert_eq!(Role::from_u8(0), None);
    assert_eq!(Role::from_u8(3), None);
    assert!(Role::Member < Role::Admin);
}
