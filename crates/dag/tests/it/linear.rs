use tabmesh_testkit::test;

use tabmesh_dag::{AddOutcome, DagStats, DeltaStatus};

use super::support::{add, applied, delta, genesis, id, ids, new_dag, D};

#[test]
fn linear_chain_applies_in_order_and_moves_the_head() {
    let mut dag = new_dag();
    let mut log = Vec::new();
    let out = dag
        .add(genesis(0), 0, |d: &D| {
            log.push(d.id);
            Ok::<_, String>(())
        })
        .unwrap();
    assert_eq!(applied(out).applied, ids(&[0]));
    assert_eq!(dag.heads(), ids(&[0]));
    for n in 1..100u64 {
        let out = dag
            .add(delta(n, &[n - 1]), n, |d: &D| {
                log.push(d.id);
                Ok::<_, String>(())
            })
            .unwrap();
        let cascade = applied(out);
        assert_eq!(cascade.applied, ids(&[n]), "delta {n} alone");
        assert!(cascade.failed.is_empty());
        assert_eq!(dag.heads(), ids(&[n]), "head after {n}");
        assert!(!dag.is_head(&id(n - 1)));
    }
    let expected: Vec<_> = (0..100).map(id).collect();
    assert_eq!(log, expected);
    assert_eq!(
        dag.stats(0),
        DagStats {
            total: 100,
            applied: 100,
            pending: 0,
            pending_bytes: 0,
            heads: 1,
            pruned: 0,
            missing: 0,
            oldest_pending_age_ms: None
        }
    );
    assert_eq!(super::support::all_applied(&dag), expected);
}

#[test]
fn duplicates_are_reported_and_never_reapplied() {
    let mut dag = new_dag();
    let mut calls = 0;
    let mut count = |_: &D| {
        calls += 1;
        Ok::<_, String>(())
    };
    assert!(matches!(
        dag.add(genesis(0), 0, &mut count).unwrap(),
        AddOutcome::Applied(_)
    ));
    assert_eq!(
        dag.add(genesis(0), 0, &mut count).unwrap(),
        AddOutcome::Duplicate
    );
    // A pending delta is a duplicate too.
    assert!(matches!(
        dag.add(delta(2, &[1]), 0, &mut count).unwrap(),
        AddOutcome::Pending { .. }
    ));
    assert_eq!(
        dag.add(delta(2, &[1]), 0, &mut count).unwrap(),
        AddOutcome::Duplicate
    );
    assert!(matches!(
        dag.add(delta(1, &[0]), 0, &mut count).unwrap(),
        AddOutcome::Applied(_)
    ));
    assert_eq!(
        dag.add(delta(1, &[0]), 0, &mut count).unwrap(),
        AddOutcome::Duplicate
    );
    assert_eq!(
        dag.add(delta(2, &[1]), 0, &mut count).unwrap(),
        AddOutcome::Duplicate
    );
    assert_eq!(calls, 3);
}

#[test]
fn status_and_get_follow_the_delta() {
    let mut dag = new_dag();
    assert_eq!(dag.status(&id(0)), DeltaStatus::Unknown);
    assert!(dag.get(&id(0)).is_none());
    let _ = add(&mut dag, genesis(0));
    assert_eq!(dag.status(&id(0)), DeltaStatus::Applied);
    assert!(dag.is_applied(&id(0)));
    assert_eq!(dag.get(&id(0)), Some(&genesis(0)));
    let _ = add(&mut dag, delta(2, &[1]));
    assert_eq!(dag.status(&id(2)), DeltaStatus::Pending);
    assert!(!dag.is_applied(&id(2)));
    assert_eq!(dag.get(&id(2)), Some(&delta(2, &[1])));
    assert_eq!(dag.checkpoint_root(&id(0)), None);
}

#[test]
fn several_genesis_deltas_are_concurrent_heads() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = add(&mut dag, genesis(1));
    assert_eq!(dag.heads(), super::support::sorted_ids(&[0, 1]));
    let _ = add(&mut dag, delta(2, &[0, 1]));
    assert_eq!(dag.heads(), ids(&[2]));
}
