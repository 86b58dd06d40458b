use tabmesh_base::DetRng;
use tabmesh_testkit::test;

#[test]
fn same_seed_same_sequence_and_different_seeds_differ() {
    let a: Vec<u64> = (0..8)
        .scan(DetRng::new(1), |r, _| Some(r.next_u64()))
        .collect();
    let b: Vec<u64> = (0..8)
        .scan(DetRng::new(1), |r, _| Some(r.next_u64()))
        .collect();
    let c: Vec<u64> = (0..8)
        .scan(DetRng::new(2), |r, _| Some(r.next_u64()))
        .collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn below_stays_in_range_and_covers_it() {
    let mut r = DetRng::new(9);
    let mut seen = [false; 7];
    for _ in 0..1_000 {
        let v = r.below(7);
        assert!(v < 7);
        seen[v as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(r.below(0), 0);
}

#[test]
fn shuffle_is_a_permutation() {
    let mut r = DetRng::new(3);
    let mut v: Vec<u32> = (0..100).collect();
    r.shuffle(&mut v);
    assert_ne!(v, (0..100).collect::<Vec<_>>());
    v.sort_unstable();
    assert_eq!(v, (0..100).collect::<Vec<_>>());
}
