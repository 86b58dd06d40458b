use tabmesh_base::{hash_parts, DeltaId, Hash, Hasher};
use tabmesh_testkit::test;

#[test]
fn sha256_known_answer() {
    assert_eq!(
        Hash::of(b"abc").to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn parts_are_length_prefixed_and_domain_separated() {
    assert_ne!(
        hash_parts(b"d", &[b"ab", b"c"]),
        hash_parts(b"d", &[b"a", b"bc"])
    );
    assert_ne!(hash_parts(b"d1", &[b"x"]), hash_parts(b"d2", &[b"x"]));
    let mut h = Hasher::new(b"d");
    h.part(b"ab").part(b"c");
    assert_eq!(h.finish(), hash_parts(b"d", &[b"ab", b"c"]));
}

#[test]
fn hex_round_trip_and_rejects_garbage() {
    let h = Hash::of(b"x");
    assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
    assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Some(h));
    assert_eq!(Hash::from_hex("zz"), None);
    assert_eq!(Hash::from_hex(&"g".repeat(64)), None);
    let id = DeltaId::from(h);
    assert_eq!(format!("{id}"), h.to_hex());
    assert!(format!("{id:?}").starts_with("DeltaId("));
}
