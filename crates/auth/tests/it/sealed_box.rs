use tabmesh_testkit::test;

use tabmesh_auth::{open_sealed, seal_to, AuthError, Keypair, SealedBox, MAX_SEALED_CIPHERTEXT};
use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::CodecError;

use super::support::{entropy, IDENTITY_POINT, NOT_A_POINT};

#[test]
fn a_box_opens_only_with_the_recipients_key() {
    let mut e = entropy(30);
    let alice = Keypair::generate(&mut e);
    let bob = Keypair::generate(&mut e);
    let sealed = seal_to(&alice.public(), b"aad", b"for alice", &mut e).unwrap();
    assert_eq!(open_sealed(&alice, b"aad", &sealed).unwrap(), b"for alice");
    // The same key rebuilt from its secret opens it too.
    let again = Keypair::from_secret(alice.secret());
    assert_eq!(open_sealed(&again, b"aad", &sealed).unwrap(), b"for alice");
    assert_eq!(open_sealed(&bob, b"aad", &sealed), Err(AuthError::Decrypt));
}

#[test]
fn the_aad_is_bound() {
    let mut e = entropy(31);
    let alice = Keypair::generate(&mut e);
    let sealed = seal_to(&alice.public(), b"context 1", b"key", &mut e).unwrap();
    assert_eq!(
        open_sealed(&alice, b"context 2", &sealed),
        Err(AuthError::Decrypt)
    );
    assert_eq!(open_sealed(&alice, b"", &sealed), Err(AuthError::Decrypt));
}

#[test]
fn tampered_parts_fail() {
    let mut e = entropy(32);
    let alice = Keypair::generate(&mut e);
    let sealed = seal_to(&alice.public(), b"aad", b"for alice", &mut e).unwrap();
    let mut eph = sealed.clone();
    eph.ephemeral[3] ^= 1;
    let mut nonce = sealed.clone();
    nonce.nonce[0] ^= 1;
    let mut ct = sealed.clone();
    ct.ciphertext[0] ^= 1;
    let mut short = sealed.clone();
    short.ciphertext.pop();
    let mut zero = sealed.clone();
    zero.ephemeral = [0; 32]; // a low-order point: no shared secret
    for bad in [eph, nonce, ct, short, zero] {
        assert_eq!(open_sealed(&alice, b"aad", &bad), Err(AuthError::Decrypt));
    }
}

#[test]
fn two_boxes_of_the_same_message_differ() {
    let mut e = entropy(33);
    let alice = Keypair::generate(&mut e);
    let a = seal_to(&alice.public(), b"", b"same", &mut e).unwrap();
    let b = seal_to(&alice.public(), b"", b"same", &mut e).unwrap();
    assert_ne!(a.ephemeral, b.ephemeral);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn an_invalid_recipient_is_bad_public_key() {
    let mut e = entropy(34);
    for key in [NOT_A_POINT, IDENTITY_POINT] {
        assert_eq!(
            seal_to(&key, b"", b"x", &mut e),
            Err(AuthError::BadPublicKey)
        );
    }
}

#[test]
fn a_box_encodes_and_decodes() {
    let mut e = entropy(35);
    let alice = Keypair::generate(&mut e);
    let sealed = seal_to(&alice.public(), b"aad", b"for alice", &mut e).unwrap();
    let mut w = Writer::new();
    sealed.encode(&mut w);
    let bytes = w.finish();
    let mut r = Reader::new(&bytes).unwrap();
    let back = SealedBox::decode(&mut r).unwrap();
    r.finish().unwrap();
    assert_eq!(back, sealed);
    assert_eq!(open_sealed(&alice, b"aad", &back).unwrap(), b"for alice");
    // Truncated input is an error, not a panic.
    for n in 1..bytes.len() {
        let mut r = Reader::new(&bytes[..n]).unwrap();
        assert!(SealedBox::decode(&mut r).is_err(), "prefix of {n} bytes");
    }
}

#[test]
fn the_ciphertext_is_bounded() {
    let mut e = entropy(36);
    let alice = Keypair::generate(&mut e);
    // The largest plaintext fits; one more byte is refused.
    let max = vec![7u8; MAX_SEALED_CIPHERTEXT - 16];
    let sealed = seal_to(&alice.public(), b"", &max, &mut e).unwrap();
    assert_eq!(sealed.ciphertext.len(), MAX_SEALED_CIPHERTEXT);
    let mut w = Writer::new();
    sealed.encode(&mut w);
    let bytes = w.finish();
    assert!(SealedBox::decode(&mut Reader::new(&bytes).unwrap()).is_ok());
    let over = vec![7u8; MAX_SEALED_CIPHERTEXT - 15];
    assert!(matches!(
        seal_to(&alice.public(), b"", &over, &mut e),
        Err(AuthError::TooLarge { .. })
    ));
    // A decoder refuses an oversized ciphertext length before reading it.
    let mut w = Writer::new();
    w.raw(&[0; 32])
        .raw(&[0; 24])
        .bytes(&vec![0; MAX_SEALED_CIPHERTEXT + 1]);
    let bytes = w.finish();
    assert!(matches!(
        SealedBox::decode(&mut Reader::new(&bytes).unwrap()),
        Err(CodecError::TooLarge { .. })
    ));
}
