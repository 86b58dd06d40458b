use tabmesh_testkit::test;

use tabmesh_auth::{verify, AuthError, Keypair, Signature, SIGNATURE_LEN};

use super::support::{entropy, IDENTITY_POINT, NOT_A_POINT};

const DOMAIN: &[u8] = b"tabmesh/test/v1";

#[test]
fn a_signature_verifies_with_the_same_key_domain_and_message() {
    let kp = Keypair::generate(&mut entropy(1));
    let sig = kp.sign(DOMAIN, b"message");
    assert_eq!(sig.0.len(), SIGNATURE_LEN);
    verify(&kp.public(), DOMAIN, b"message", &sig).unwrap();
    // Ed25519 is deterministic.
    assert_eq!(kp.sign(DOMAIN, b"message"), sig);
}

#[test]
fn a_signature_for_another_domain_message_or_key_is_refused() {
    let mut e = entropy(2);
    let kp = Keypair::generate(&mut e);
    let other = Keypair::generate(&mut e);
    let sig = kp.sign(DOMAIN, b"message");
    let bad = Err(AuthError::BadSignature);
    assert_eq!(
        verify(&kp.public(), b"tabmesh/other/v1", b"message", &sig),
        bad
    );
    assert_eq!(verify(&kp.public(), DOMAIN, b"messagE", &sig), bad);
    assert_eq!(verify(&other.public(), DOMAIN, b"message", &sig), bad);
}

#[test]
fn the_domain_framing_is_unambiguous() {
    // ("ab", "c") and ("a", "bc") are different signed messages.
    let kp = Keypair::generate(&mut entropy(3));
    let sig = kp.sign(b"ab", b"c");
    assert_eq!(
        verify(&kp.public(), b"a", b"bc", &sig),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify(&kp.public(), b"", b"abc", &sig),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn every_tampered_signature_byte_is_refused() {
    let kp = Keypair::generate(&mut entropy(4));
    let sig = kp.sign(DOMAIN, b"message");
    for i in 0..SIGNATURE_LEN {
        let mut bad = sig;
        bad.0[i] ^= 0x01;
        assert_eq!(
            verify(&kp.public(), DOMAIN, b"message", &bad),
            Err(AuthError::BadSignature),
            "byte {i}"
        );
    }
    assert_eq!(
        verify(&kp.public(), DOMAIN, b"message", &Signature([0; 64])),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn an_invalid_public_key_is_bad_public_key() {
    let kp = Keypair::generate(&mut entropy(5));
    let sig = kp.sign(DOMAIN, b"message");
    for key in [NOT_A_POINT, IDENTITY_POINT] {
        assert_eq!(
            verify(&key, DOMAIN, b"message", &sig),
            Err(AuthError::BadPublicKey)
        );
    }
}

#[test]
fn a_keypair_rebuilds_from_its_secret() {
    let kp = Keypair::generate(&mut entropy(6));
    let again = Keypair::from_secret(kp.secret());
    assert_eq!(again.public(), kp.public());
    let sig = again.sign(DOMAIN, b"m");
    verify(&kp.public(), DOMAIN, b"m", &sig).unwrap();
    assert_ne!(Keypair::generate(&mut entropy(7)).public(), kp.public());
}

#[test]
fn debug_shows_no_secret() {
    let kp = Keypair::from_secret([0xab; 32]);
    let shown = format!("{kp:?}");
    assert!(!shown.contains("abab"), "{shown}");
    assert!(shown.contains("public"), "{shown}");
    let sig = format!("{:?}", kp.sign(DOMAIN, b"m"));
    assert!(sig.starts_with("Signature(") && sig.len() < 30, "{sig}");
}
