use tabmesh_testkit::test;

use super::support::{add, applied, delta, genesis, ids, new_dag, sorted_ids};

#[test]
fn concurrent_deltas_fork_and_a_merge_joins_them() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    // Three writers build on the genesis concurrently.
    for n in [1, 2, 3] {
        let _ = applied(add(&mut dag, delta(n, &[0])));
    }
    assert_eq!(dag.heads(), sorted_ids(&[1, 2, 3]));
    // One branch grows: its head moves, the others stay.
    let _ = applied(add(&mut dag, delta(4, &[1])));
    assert_eq!(dag.heads(), sorted_ids(&[2, 3, 4]));
    // A merge of two of them leaves the third a head.
    let _ = applied(add(&mut dag, delta(5, &[4, 2])));
    assert_eq!(dag.heads(), sorted_ids(&[3, 5]));
    // The final merge names every head: one head again.
    let _ = applied(add(&mut dag, delta(6, &[5, 3])));
    assert_eq!(dag.heads(), ids(&[6]));
    assert_eq!(dag.stats(0).heads, 1);
    assert_eq!(dag.stats(0).applied, 7);
}

#[test]
fn a_merge_arriving_before_a_branch_waits_for_it() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = add(&mut dag, delta(1, &[0]));
    // The merge of 1 and 2 arrives before 2.
    let (missing, evicted) = super::support::pending(add(&mut dag, delta(3, &[1, 2])));
    assert_eq!(missing, ids(&[2]));
    assert!(evicted.is_empty());
    assert_eq!(dag.heads(), ids(&[1]));
    let cascade = applied(add(&mut dag, delta(2, &[0])));
    assert_eq!(cascade.applied, ids(&[2, 3]));
    assert_eq!(dag.heads(), ids(&[3]));
}

#[test]
fn a_fork_of_a_fork_keeps_every_tip() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = add(&mut dag, delta(1, &[0]));
    let _ = add(&mut dag, delta(2, &[1]));
    let _ = add(&mut dag, delta(3, &[1]));
    let _ = add(&mut dag, delta(4, &[0]));
    assert_eq!(dag.heads(), sorted_ids(&[2, 3, 4]));
    // A delta naming an old, non-head parent adds a head without removing any.
    let _ = add(&mut dag, delta(5, &[1]));
    assert_eq!(dag.heads(), sorted_ids(&[2, 3, 4, 5]));
}
