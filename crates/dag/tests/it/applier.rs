use tabmesh_testkit::test;

use tabmesh_base::DeltaId;
use tabmesh_dag::{AddOutcome, ApplyFailure, DeltaStatus};

use super::support::{add, applied, delta, genesis, id, ids, new_dag, pending, D};

/// An applier that refuses the deltas in `bad` and logs the others.
fn refusing<'a>(
    bad: &'a [DeltaId],
    log: &'a mut Vec<DeltaId>,
) -> impl FnMut(&D) -> Result<(), String> + 'a {
    move |d: &D| {
        if bad.contains(&d.id) {
            Err(format!("refused {}", d.id))
        } else {
            log.push(d.id);
            Ok(())
        }
    }
}

#[test]
fn a_refused_delta_is_dropped_and_reported() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = dag.take_changes(b"d/");
    let mut log = Vec::new();
    let bad = ids(&[1]);
    let out = dag
        .add(delta(1, &[0]), 0, refusing(&bad, &mut log))
        .unwrap();
    assert_eq!(
        out,
        AddOutcome::Failed {
            error: format!("refused {}", id(1))
        }
    );
    assert!(log.is_empty());
    assert_eq!(dag.status(&id(1)), DeltaStatus::Unknown);
    assert_eq!(dag.heads(), ids(&[0]));
    assert!(!dag.has_changes(), "nothing to persist");
    // It can be sent again later and applies when the applier accepts it.
    let cascade = applied(add(&mut dag, delta(1, &[0])));
    assert_eq!(cascade.applied, ids(&[1]));
}

#[test]
fn a_refused_delta_keeps_its_children_pending_and_becomes_missing() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = pending(add(&mut dag, delta(2, &[1])));
    let _ = pending(add(&mut dag, delta(3, &[2])));
    let mut log = Vec::new();
    let bad = ids(&[1]);
    let out = dag
        .add(delta(1, &[0]), 0, refusing(&bad, &mut log))
        .unwrap();
    assert!(matches!(out, AddOutcome::Failed { .. }));
    assert_eq!(dag.status(&id(2)), DeltaStatus::Pending);
    assert_eq!(dag.status(&id(3)), DeltaStatus::Pending);
    assert_eq!(dag.missing_parents(10), ids(&[1]));
}

#[test]
fn a_refusal_inside_a_cascade_stops_that_branch_only() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    // Two branches wait for 1: 2 <- 3 and 4 <- 5.
    for (n, p) in [(3, 2), (2, 1), (5, 4), (4, 1)] {
        let _ = pending(add(&mut dag, delta(n, &[p])));
    }
    let mut log = Vec::new();
    let bad = ids(&[2]);
    let out = dag
        .add(delta(1, &[0]), 0, refusing(&bad, &mut log))
        .unwrap();
    let cascade = applied(out);
    assert_eq!(cascade.applied, ids(&[1, 4, 5]));
    assert_eq!(log, ids(&[1, 4, 5]));
    assert_eq!(
        cascade.failed,
        vec![ApplyFailure {
            id: id(2),
            error: format!("refused {}", id(2))
        }]
    );
    assert_eq!(dag.status(&id(2)), DeltaStatus::Unknown, "dropped");
    assert_eq!(
        dag.status(&id(3)),
        DeltaStatus::Pending,
        "its child keeps waiting"
    );
    assert_eq!(dag.missing_parents(10), ids(&[2]));
    assert_eq!(dag.heads(), ids(&[5]));
    // Re-pulled and accepted: the branch completes.
    let cascade = applied(add(&mut dag, delta(2, &[1])));
    assert_eq!(cascade.applied, ids(&[2, 3]));
    assert_eq!(dag.heads(), super::support::sorted_ids(&[3, 5]));
}
