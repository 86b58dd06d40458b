use tabmesh_testkit::test;

use tabmesh_base::{Hash, Hlc};
use tabmesh_dag::{AddOutcome, CausalDelta, DagError, DeltaKind, MAX_PARENTS};

use super::support::{add, delta, genesis, id, ids, new_dag, ok};

#[test]
fn structurally_bad_deltas_are_refused_and_change_nothing() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = dag.take_changes(b"d/");
    let before = dag.clone();

    let no_parents = CausalDelta::new(id(1), vec![], vec![], Hlc::default());
    assert_eq!(
        dag.add(no_parents, 0, ok),
        Err(DagError::NoParents { id: id(1) })
    );

    let mut genesis_with_parents = genesis(2);
    genesis_with_parents.parents = ids(&[0]);
    assert_eq!(
        dag.add(genesis_with_parents, 0, ok),
        Err(DagError::GenesisWithParents {
            id: id(2),
            count: 1
        })
    );

    assert_eq!(
        dag.add(delta(3, &[0, 3]), 0, ok),
        Err(DagError::SelfParent { id: id(3) })
    );
    assert_eq!(
        dag.add(delta(4, &[0, 9, 0]), 0, ok),
        Err(DagError::DuplicateParent {
            id: id(4),
            parent: id(0)
        })
    );

    let too_many: Vec<u64> = (100..100 + MAX_PARENTS as u64 + 1).collect();
    assert_eq!(
        dag.add(delta(5, &too_many), 0, ok),
        Err(DagError::TooManyParents {
            id: id(5),
            count: MAX_PARENTS + 1,
            max: MAX_PARENTS
        })
    );

    let mut checkpoint = delta(6, &[0]);
    checkpoint.kind = DeltaKind::Checkpoint { root: Hash::ZERO };
    assert_eq!(
        dag.add(checkpoint, 0, ok),
        Err(DagError::CheckpointNotAddable { id: id(6) })
    );

    assert_eq!(dag, before);
    assert!(!dag.has_changes());
    assert_eq!(dag.stats(0), before.stats(0));
}

#[test]
fn a_known_id_with_a_bad_structure_is_still_refused() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = add(&mut dag, delta(1, &[0]));
    assert_eq!(
        dag.add(delta(1, &[0, 0]), 0, ok),
        Err(DagError::DuplicateParent {
            id: id(1),
            parent: id(0)
        })
    );
}

#[test]
fn the_parent_bound_is_inclusive() {
    let mut dag = new_dag();
    let roots: Vec<u64> = (100..100 + MAX_PARENTS as u64).collect();
    for r in &roots {
        let _ = add(&mut dag, genesis(*r));
    }
    assert_eq!(dag.heads().len(), MAX_PARENTS);
    let out = add(&mut dag, delta(1, &roots));
    assert!(matches!(out, AddOutcome::Applied(_)));
    assert_eq!(dag.heads(), ids(&[1]));
}

#[test]
fn errors_have_clear_messages() {
    let err = DagError::TooManyParents {
        id: id(5),
        count: 65,
        max: 64,
    };
    let msg = err.to_string();
    assert!(msg.contains("65 parents"), "{msg}");
    assert!(msg.contains("limit of 64"), "{msg}");
    assert!(msg.contains(&id(5).to_string()), "{msg}");
}

#[test]
fn cyclic_parents_never_apply_stay_bounded_and_leave_the_dag_working() {
    use tabmesh_dag::DeltaStatus;
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    // A two-cycle (10 ↔ 11) and a three-cycle (20 → 21 → 22 → 20), each also naming the genesis:
    // every member waits for another member, so none can ever apply.
    for (n, parents) in [
        (10, vec![0, 11]),
        (11, vec![0, 10]),
        (20, vec![0, 21]),
        (21, vec![0, 22]),
        (22, vec![0, 20]),
    ] {
        let out = add(&mut dag, delta(n, &parents));
        assert!(
            matches!(out, AddOutcome::Pending { .. }),
            "{n} waits for its cycle: {out:?}"
        );
    }
    for n in [10, 11, 20, 21, 22] {
        assert_eq!(dag.status(&id(n)), DeltaStatus::Pending);
    }
    // The cycle's members are pending, not missing: nothing to pull for them.
    assert!(dag.missing_parents(10).is_empty());
    // The DAG still takes honest deltas, and the cycle goes away with age.
    let _ = add(&mut dag, delta(1, &[0]));
    assert_eq!(dag.status(&id(1)), DeltaStatus::Applied);
    let evicted = dag.evict_stale(tabmesh_dag::DEFAULT_MAX_PENDING_AGE_MS + 1);
    assert_eq!(evicted.len(), 5);
    assert_eq!(dag.stats(0).pending, 0);
}
