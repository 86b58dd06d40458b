use tabmesh_testkit::test;

use tabmesh_auth::SymKey;
use tabmesh_base::hash_parts;

use super::support::entropy;

fn keys() -> [SymKey; 3] {
    let mut e = entropy(20);
    [
        SymKey::generate(&mut e),
        SymKey::generate(&mut e),
        SymKey::generate(&mut e),
    ]
}

#[test]
fn combine_is_order_independent_and_differs_from_its_inputs() {
    let [a, b, c] = keys();
    let abc = SymKey::combine(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(abc, SymKey::combine(&[c.clone(), a.clone(), b.clone()]));
    assert_eq!(abc, SymKey::combine(&[b.clone(), c.clone(), a.clone()]));
    for k in [&a, &b, &c] {
        assert_ne!(&abc, k);
    }
    // Another set, a subset or a single key gives another key.
    assert_ne!(abc, SymKey::combine(&[a.clone(), b.clone()]));
    assert_ne!(SymKey::combine(std::slice::from_ref(&a)), a);
}

#[test]
fn derive_is_deterministic_and_domain_separated() {
    let [a, b, _] = keys();
    let d = a.derive(b"purpose", &[b"x", b"y"]);
    assert_eq!(d, a.derive(b"purpose", &[b"x", b"y"]));
    assert_ne!(d, a);
    assert_ne!(d, a.derive(b"other", &[b"x", b"y"]));
    assert_ne!(d, a.derive(b"purpose", &[b"xy"]));
    assert_ne!(d, a.derive(b"purpose", &[b"x", b"y", b""]));
    assert_ne!(d, b.derive(b"purpose", &[b"x", b"y"]));
}

#[test]
fn the_key_id_is_the_documented_fingerprint() {
    let [a, b, _] = keys();
    assert_eq!(a.id(), hash_parts(b"tabmesh/key-id/v1", &[&a.to_bytes()]));
    assert_ne!(a.id(), b.id());
    assert_ne!(a.id().0, a.to_bytes());
}

#[test]
fn bytes_roundtrip_and_debug_redacts() {
    let k = SymKey::from_bytes([0x5a; 32]);
    assert_eq!(k.to_bytes(), [0x5a; 32]);
    assert_eq!(SymKey::from_bytes(k.to_bytes()), k);
    let shown = format!("{k:?}");
    assert!(!shown.contains("5a") && !shown.contains("90"), "{shown}");
}
