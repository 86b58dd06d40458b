use tabmesh_testkit::test;

use tabmesh_base::Hash;
use tabmesh_dag::{DagError, DeltaStatus, MAX_CHECKPOINT_HEADS};

use super::support::{add, applied, delta, genesis, id, ids, new_dag, ok, pending, sorted_ids, D};

fn root() -> Hash {
    Hash::of(b"snapshot root")
}

#[test]
fn a_checkpoint_installs_applied_heads_without_bodies() {
    let mut dag = new_dag();
    let cascade = dag.restore_checkpoint(&ids(&[5, 6]), root(), ok).unwrap();
    assert!(cascade.applied.is_empty());
    assert_eq!(dag.heads(), sorted_ids(&[5, 6]));
    for n in [5, 6] {
        assert_eq!(dag.status(&id(n)), DeltaStatus::Applied);
        assert!(dag.get(&id(n)).is_none(), "no body");
        assert_eq!(dag.checkpoint_root(&id(n)), Some(root()));
    }
    // A delta on the boundary applies at once and merges it.
    let cascade = applied(add(&mut dag, delta(7, &[5, 6])));
    assert_eq!(cascade.applied, ids(&[7]));
    assert_eq!(dag.heads(), ids(&[7]));
    // The boundary ids are duplicates if someone sends them.
    assert_eq!(
        add(&mut dag, delta(5, &[4])),
        tabmesh_dag::AddOutcome::Duplicate
    );
}

#[test]
fn a_checkpoint_cascades_into_deltas_waiting_for_it() {
    let mut dag = new_dag();
    // Deltas that arrived during the snapshot transfer.
    let _ = pending(add(&mut dag, delta(11, &[10])));
    let _ = pending(add(&mut dag, delta(12, &[11])));
    // 10 itself arrived too, waiting for 9 that the snapshot covers.
    let _ = pending(add(&mut dag, delta(10, &[9])));
    assert_eq!(dag.missing_parents(10), ids(&[9]));
    let mut log = Vec::new();
    let cascade = dag
        .restore_checkpoint(&ids(&[10]), root(), |d: &D| {
            log.push(d.id);
            Ok::<_, String>(())
        })
        .unwrap();
    // 10 is in the snapshot: it becomes the boundary (its pending body is dropped, not applied).
    assert_eq!(cascade.applied, ids(&[11, 12]));
    assert_eq!(log, ids(&[11, 12]));
    assert_eq!(dag.get(&id(10)), None);
    assert_eq!(dag.heads(), ids(&[12]));
    let stats = dag.stats(0);
    assert_eq!((stats.pending, stats.missing, stats.applied), (0, 0, 3));
}

#[test]
fn known_ids_are_left_alone_by_a_checkpoint() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = add(&mut dag, delta(1, &[0]));
    let _ = dag.restore_checkpoint(&ids(&[1, 8]), root(), ok).unwrap();
    // 1 keeps its body; 8 is a new boundary and a new head beside 1.
    assert_eq!(dag.get(&id(1)), Some(&delta(1, &[0])));
    assert_eq!(dag.checkpoint_root(&id(1)), None);
    assert_eq!(dag.checkpoint_root(&id(8)), Some(root()));
    assert_eq!(dag.heads(), sorted_ids(&[1, 8]));
}

#[test]
fn a_checkpoint_is_refused_when_malformed() {
    let mut dag = new_dag();
    assert_eq!(
        dag.restore_checkpoint(&[], root(), ok),
        Err(DagError::EmptyCheckpoint)
    );
    assert_eq!(
        dag.restore_checkpoint(&ids(&[1, 2, 1]), root(), ok),
        Err(DagError::DuplicateCheckpointHead { id: id(1) })
    );
    let many: Vec<u64> = (0..=MAX_CHECKPOINT_HEADS as u64).collect();
    assert_eq!(
        dag.restore_checkpoint(&ids(&many), root(), ok),
        Err(DagError::TooManyCheckpointHeads {
            count: MAX_CHECKPOINT_HEADS + 1,
            max: MAX_CHECKPOINT_HEADS
        })
    );
    assert_eq!(dag.stats(0), tabmesh_dag::DagStats::default());
    assert!(!dag.has_changes());
}

#[test]
fn deltas_since_reports_boundaries_it_cannot_send() {
    let mut dag = new_dag();
    let _ = dag.restore_checkpoint(&ids(&[5]), root(), ok).unwrap();
    let _ = add(&mut dag, delta(6, &[5]));
    // A peer with nothing needs the boundary: it cannot get it as a delta.
    let page = dag.deltas_since(&[], None, 10).unwrap();
    assert_eq!(page.without_body, ids(&[5]));
    assert_eq!(
        page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids(&[6])
    );
    // A peer at the boundary gets just the delta.
    let page = dag.deltas_since(&ids(&[5]), None, 10).unwrap();
    assert!(page.without_body.is_empty());
    assert_eq!(page.deltas.len(), 1);
}
