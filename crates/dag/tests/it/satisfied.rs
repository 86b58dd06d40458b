use tabmesh_dag::{AddOutcome, Dag, DagConfig, DagError, DeltaStatus};
use tabmesh_testkit::test;

use super::support::{add, delta, genesis, id, new_dag, ok, pending};

#[test]
fn marking_a_missing_parent_satisfied_cascades_its_children_without_making_it_a_head() {
    let mut dag = new_dag();
    assert!(matches!(add(&mut dag, genesis(0)), AddOutcome::Applied(_)));
    // 2 waits for 1, whose effects only a snapshot covered.
    let (missing, _) = pending(add(&mut dag, delta(2, &[1])));
    assert_eq!(missing, vec![id(1)]);

    let cascade = dag.mark_satisfied(&[id(1)], ok).unwrap();
    assert_eq!(cascade.applied, vec![id(2)]);
    assert_eq!(dag.status(&id(1)), DeltaStatus::Pruned);
    assert!(dag.missing_parents(10).is_empty());
    assert!(!dag.is_head(&id(1)));
    assert!(dag.is_head(&id(2)));
    assert!(dag.is_head(&id(0)));

    // Marking again, or marking an applied id, changes nothing.
    let again = dag.mark_satisfied(&[id(1), id(2)], ok).unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(dag.status(&id(2)), DeltaStatus::Applied);
}

#[test]
fn a_pending_delta_marked_satisfied_is_dropped_not_applied() {
    let mut dag = new_dag();
    let _ = pending(add(&mut dag, delta(5, &[4])));
    let cascade = dag.mark_satisfied(&[id(5)], ok).unwrap();
    assert!(cascade.applied.is_empty());
    assert_eq!(dag.status(&id(5)), DeltaStatus::Pruned);
    assert_eq!(dag.stats(1).pending, 0);
    assert!(dag.missing_parents(10).is_empty());
}

#[test]
fn marking_too_many_ids_at_once_is_refused() {
    let mut dag = Dag::<Vec<u8>>::new(DagConfig {
        max_query_limit: 2,
        ..DagConfig::default()
    });
    let err = dag.mark_satisfied(&[id(1), id(2), id(3)], ok).unwrap_err();
    assert_eq!(err, DagError::TooManyIds { count: 3, max: 2 });
}

#[test]
fn satisfied_ids_lists_applied_and_pruned_ids_in_order() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    for n in 1..6 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    assert_eq!(dag.prune(2), 4);
    let mut want: Vec<_> = (0..6).map(id).collect();
    want.sort();
    assert_eq!(dag.satisfied_ids().collect::<Vec<_>>(), want);
}

#[test]
fn recent_ids_are_the_newest_applied_first() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    for n in 1..6 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    assert_eq!(dag.recent_ids(3), vec![id(5), id(4), id(3)]);
    assert_eq!(dag.recent_ids(100).len(), 6);
}
