use tabmesh_testkit::test;

use tabmesh_base::DetRng;
use tabmesh_dag::{Dag, DagConfig};

use super::support::{add, applied, delta, genesis, id, ids, new_dag, pending, D};

#[test]
fn out_of_order_arrivals_wait_then_cascade_in_causal_order() {
    let mut dag = new_dag();
    // Chain 0 <- 1 <- 2 <- 3 <- 4 delivered as 3, 1, 4, 2, 0.
    let (missing, _) = pending(add(&mut dag, delta(3, &[2])));
    assert_eq!(missing, ids(&[2]));
    let (missing, _) = pending(add(&mut dag, delta(1, &[0])));
    assert_eq!(missing, ids(&[0]));
    let (missing, _) = pending(add(&mut dag, delta(4, &[3])));
    // 3 is pending, not missing: nothing to fetch for 4 itself.
    assert!(missing.is_empty());
    let (missing, _) = pending(add(&mut dag, delta(2, &[1])));
    assert!(missing.is_empty());
    assert_eq!(dag.missing_parents(10), ids(&[0]));
    assert!(dag.heads().is_empty());
    assert_eq!(dag.stats(0).pending, 4);

    let cascade = applied(add(&mut dag, genesis(0)));
    assert_eq!(cascade.applied, ids(&[0, 1, 2, 3, 4]));
    assert_eq!(dag.heads(), ids(&[4]));
    assert_eq!(dag.stats(0).pending, 0);
    assert!(dag.missing_parents(10).is_empty());
}

#[test]
fn a_delta_with_two_missing_parents_waits_for_both() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let (missing, _) = pending(add(&mut dag, delta(3, &[1, 2])));
    assert_eq!(missing, ids(&[1, 2]));
    assert_eq!(dag.missing_parents(10), super::support::sorted_ids(&[1, 2]));
    let cascade = applied(add(&mut dag, delta(1, &[0])));
    assert_eq!(cascade.applied, ids(&[1]), "3 still waits for 2");
    assert_eq!(dag.missing_parents(10), ids(&[2]));
    let cascade = applied(add(&mut dag, delta(2, &[0])));
    assert_eq!(cascade.applied, ids(&[2, 3]));
    assert_eq!(dag.heads(), ids(&[3]));
}

#[test]
fn a_wide_fan_out_cascades_every_child_once() {
    let mut dag = new_dag();
    let mut rng = DetRng::new(7);
    let mut children: Vec<D> = (1..=1_000).map(|n| delta(n, &[0])).collect();
    rng.shuffle(&mut children);
    for c in children {
        let _ = pending(add(&mut dag, c));
    }
    assert_eq!(dag.missing_parents(10), ids(&[0]));
    let cascade = applied(add(&mut dag, genesis(0)));
    assert_eq!(cascade.applied.len(), 1_001);
    assert_eq!(cascade.applied.first(), Some(&id(0)));
    let mut rest = cascade.applied[1..].to_vec();
    rest.sort();
    rest.dedup();
    assert_eq!(rest.len(), 1_000);
    assert_eq!(dag.heads().len(), 1_000);
}

/// 100 000 deltas delivered newest first: each waits, the genesis unblocks all of them in one
/// iterative cascade (no recursion, no quadratic rescans).
#[test]
fn a_100k_chain_delivered_in_reverse_applies_in_one_cascade() {
    const N: u64 = 100_000;
    let config = DagConfig {
        max_pending: N as usize,
        ..DagConfig::default()
    };
    let mut dag: Dag<Vec<u8>> = Dag::new(config);
    for n in (1..N).rev() {
        let (missing, evicted) = pending(add(&mut dag, delta(n, &[n - 1])));
        assert_eq!(missing, ids(&[n - 1]));
        assert!(evicted.is_empty());
        if n % 10_000 == 0 {
            assert_eq!(dag.missing_parents(10), ids(&[n - 1]), "after {n}");
        }
    }
    assert_eq!(dag.stats(0).pending, (N - 1) as usize);
    let cascade = applied(add(&mut dag, genesis(0)));
    assert!(cascade.failed.is_empty());
    assert_eq!(cascade.applied.len(), N as usize);
    assert!(
        cascade
            .applied
            .iter()
            .zip(0..N)
            .all(|(got, n)| *got == id(n)),
        "in chain order"
    );
    assert_eq!(dag.heads(), ids(&[N - 1]));
    let stats = dag.stats(0);
    assert_eq!(
        (stats.applied, stats.pending, stats.missing),
        (N as usize, 0, 0)
    );
}
