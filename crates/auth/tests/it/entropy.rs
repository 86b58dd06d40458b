use tabmesh_testkit::test;

use tabmesh_auth::Entropy;

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let mut a = Entropy::from_seed([1; 32]);
    let mut b = Entropy::from_seed([1; 32]);
    assert_eq!(a.array::<64>(), b.array::<64>());
    let (mut x, mut y) = ([0u8; 100], [0u8; 100]);
    a.fill(&mut x);
    b.fill(&mut y);
    assert_eq!(x, y);
    assert_ne!(a.array::<32>(), Entropy::from_seed([2; 32]).array::<32>());
}

#[test]
fn the_stream_moves_on() {
    let mut a = Entropy::from_seed([3; 32]);
    let first: [u8; 32] = a.array();
    let second: [u8; 32] = a.array();
    assert_ne!(first, second);
    assert_ne!(first, [0; 32]);
}

#[test]
fn forks_are_deterministic_and_differ() {
    let mut a = Entropy::from_seed([4; 32]);
    let mut b = Entropy::from_seed([4; 32]);
    let mut fa = a.fork(b"keys");
    let mut fb = b.fork(b"keys");
    let child: [u8; 32] = fa.array();
    assert_eq!(child, fb.array::<32>());
    // The parent continues differently from the child, and another label gives another child.
    assert_ne!(a.array::<32>(), child);
    let mut c = Entropy::from_seed([4; 32]);
    assert_ne!(c.fork(b"nonces").array::<32>(), child);
    // A second fork with the same label is another stream.
    assert_ne!(a.fork(b"keys").array::<32>(), child);
}

#[test]
fn debug_does_not_print_the_state() {
    let e = Entropy::from_seed([0x77; 32]);
    assert_eq!(format!("{e:?}"), "Entropy { .. }");
}
