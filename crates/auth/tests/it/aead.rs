use tabmesh_testkit::test;

use tabmesh_auth::{open, seal, AuthError, SymKey, NONCE_LEN};

use super::support::entropy;

fn setup() -> (SymKey, [u8; NONCE_LEN], Vec<u8>) {
    let mut e = entropy(10);
    let key = SymKey::generate(&mut e);
    let nonce = e.array();
    let ct = seal(&key, &nonce, b"aad", b"plaintext");
    (key, nonce, ct)
}

#[test]
fn seal_then_open_roundtrips() {
    let (key, nonce, ct) = setup();
    assert_eq!(ct.len(), b"plaintext".len() + 16);
    assert_ne!(&ct[..9], b"plaintext");
    assert_eq!(open(&key, &nonce, b"aad", &ct).unwrap(), b"plaintext");
    // Empty plaintext and aad work too.
    let ct = seal(&key, &nonce, b"", b"");
    assert_eq!(open(&key, &nonce, b"", &ct).unwrap(), b"");
}

#[test]
fn every_tampered_ciphertext_byte_fails() {
    let (key, nonce, ct) = setup();
    for i in 0..ct.len() {
        let mut bad = ct.clone();
        bad[i] ^= 0x80;
        assert_eq!(
            open(&key, &nonce, b"aad", &bad),
            Err(AuthError::Decrypt),
            "byte {i}"
        );
    }
    assert_eq!(
        open(&key, &nonce, b"aad", &ct[..ct.len() - 1]),
        Err(AuthError::Decrypt)
    );
    assert_eq!(open(&key, &nonce, b"aad", &[]), Err(AuthError::Decrypt));
}

#[test]
fn another_aad_nonce_or_key_fails() {
    let (key, nonce, ct) = setup();
    assert_eq!(open(&key, &nonce, b"aaD", &ct), Err(AuthError::Decrypt));
    let mut other_nonce = nonce;
    other_nonce[NONCE_LEN - 1] ^= 1;
    assert_eq!(
        open(&key, &other_nonce, b"aad", &ct),
        Err(AuthError::Decrypt)
    );
    let other = SymKey::generate(&mut entropy(11));
    assert_eq!(open(&other, &nonce, b"aad", &ct), Err(AuthError::Decrypt));
}
