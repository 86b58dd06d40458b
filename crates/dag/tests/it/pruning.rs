use tabmesh_testkit::test;

use tabmesh_dag::{AddOutcome, Dag, DagConfig, DeltaStatus};

use super::support::{add, applied, delta, genesis, id, ids, new_dag, sorted_ids};

/// 0 <- 1 <- ... <- 9, plus a side branch 20 off 2 that stays a head.
fn history() -> Dag<Vec<u8>> {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    for n in 1..10u64 {
        let _ = applied(add(&mut dag, delta(n, &[n - 1])));
        if n == 2 {
            let _ = applied(add(&mut dag, delta(20, &[2])));
        }
    }
    dag
}

#[test]
fn pruning_keeps_recent_deltas_and_heads() {
    let mut dag = history();
    assert_eq!(dag.heads(), sorted_ids(&[9, 20]));
    // Apply order: 0 1 2 20 3 4 5 6 7 8 9; keep the 3 most recent (7 8 9) and the heads (20).
    assert_eq!(dag.prune(3), 7);
    for n in [0, 1, 2, 3, 4, 5, 6] {
        assert_eq!(dag.status(&id(n)), DeltaStatus::Pruned, "{n}");
        assert!(dag.get(&id(n)).is_none());
        assert!(dag.is_applied(&id(n)));
    }
    for n in [7, 8, 9, 20] {
        assert_eq!(dag.status(&id(n)), DeltaStatus::Applied, "{n}");
        assert!(dag.get(&id(n)).is_some());
    }
    assert_eq!(dag.heads(), sorted_ids(&[9, 20]), "heads survive");
    let stats = dag.stats(0);
    assert_eq!((stats.applied, stats.pruned, stats.heads), (4, 7, 2));
    // Pruning again with the same bound prunes nothing.
    assert_eq!(dag.prune(3), 0);
    // Retaining more than there is prunes nothing.
    assert_eq!(dag.prune(100), 0);
}

#[test]
fn pruned_parents_count_as_applied_and_pruned_ids_as_duplicates() {
    let mut dag = history();
    let _ = dag.prune(0);
    assert_eq!(dag.stats(0).applied, 2, "only the heads are left");
    // A late delta on a pruned parent applies at once.
    let cascade = applied(add(&mut dag, delta(30, &[5])));
    assert_eq!(cascade.applied, ids(&[30]));
    assert_eq!(dag.heads(), sorted_ids(&[9, 20, 30]));
    // A merge naming a pruned parent and a head applies too.
    let _ = applied(add(&mut dag, delta(31, &[3, 9, 20, 30])));
    assert_eq!(dag.heads(), ids(&[31]));
    // A pruned delta sent again is a duplicate, not applied twice.
    assert_eq!(add(&mut dag, delta(4, &[3])), AddOutcome::Duplicate);
    // Pruned ids are never reported missing.
    let _ = super::support::pending(add(&mut dag, delta(41, &[40, 1])));
    assert_eq!(dag.missing_parents(10), ids(&[40]));
}

#[test]
fn pruned_deltas_are_not_served_by_deltas_since() {
    let mut dag = history();
    let _ = dag.prune(2);
    let page = dag.deltas_since(&[], None, 100).unwrap();
    let got: Vec<_> = page.deltas.iter().map(|d| d.id).collect();
    // Retained: the head 20 (old) and the two most recent, 8 and 9, in apply order.
    assert_eq!(got, ids(&[20, 8, 9]));
}

#[test]
fn the_pruned_set_is_a_bounded_fifo() {
    let mut dag: Dag<Vec<u8>> = Dag::new(DagConfig {
        max_pruned: 4,
        ..DagConfig::default()
    });
    let _ = add(&mut dag, genesis(0));
    for n in 1..10u64 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    assert_eq!(dag.prune(1), 9);
    assert_eq!(dag.stats(0).pruned, 4);
    // The oldest pruned ids were forgotten first.
    for n in 0..5 {
        assert_eq!(dag.status(&id(n)), DeltaStatus::Unknown, "{n}");
    }
    for n in 5..9 {
        assert_eq!(dag.status(&id(n)), DeltaStatus::Pruned, "{n}");
    }
    // A delta naming a forgotten id waits for it like for any unknown id.
    let (missing, _) = super::support::pending(add(&mut dag, delta(50, &[2])));
    assert_eq!(missing, ids(&[2]));
}

#[test]
fn a_forgotten_pruned_parent_becomes_missing_instead_of_blocking_silently() {
    let mut dag: Dag<Vec<u8>> = Dag::new(DagConfig {
        max_pruned: 1,
        ..DagConfig::default()
    });
    let _ = add(&mut dag, genesis(0));
    let _ = add(&mut dag, delta(1, &[0]));
    let _ = add(&mut dag, delta(2, &[1]));
    assert_eq!(dag.prune(1), 2);
    assert_eq!(dag.status(&id(1)), DeltaStatus::Pruned);
    // 5 waits for 4 (unknown) and names pruned 1 (satisfied).
    let (missing, _) = super::support::pending(add(&mut dag, delta(5, &[1, 4])));
    assert_eq!(missing, ids(&[4]));
    // Pruning 2 forgets 1.
    let _ = add(&mut dag, delta(3, &[2]));
    assert_eq!(dag.prune(1), 1);
    assert_eq!(dag.status(&id(1)), DeltaStatus::Unknown);
    // 4 arrives: 5 is not ready (1 is unknown now) and 1 is reported missing.
    let cascade = applied(add(&mut dag, delta(4, &[3])));
    assert_eq!(cascade.applied, ids(&[4]));
    assert_eq!(dag.status(&id(5)), DeltaStatus::Pending);
    assert_eq!(dag.missing_parents(10), ids(&[1]));
}

#[test]
fn a_pending_delta_waits_again_for_a_pruned_parent_the_dag_forgets() {
    // Found by the fuzz body `dag_insert`: with the pruned memory full, the oldest pruned id is
    // forgotten; a pending delta citing it must list it as missing again (as a restore would).
    let mut dag = Dag::new(DagConfig {
        max_pruned: 2,
        ..DagConfig::default()
    });
    let _ = add(&mut dag, genesis(0));
    for n in 1..6u64 {
        let _ = applied(add(&mut dag, delta(n, &[n - 1])));
    }
    // 50 waits for 99 (unknown) and cites 0 (applied).
    assert!(matches!(
        add(&mut dag, delta(50, &[0, 99])),
        AddOutcome::Pending { .. }
    ));
    assert_eq!(dag.missing_parents(10), ids(&[99]));
    // Prune everything but the head: 0 .. 4 are pruned, and only the 2 newest are remembered.
    dag.prune(1);
    assert!(!dag.is_applied(&id(0)), "0 is forgotten");
    assert_eq!(dag.missing_parents(10), sorted_ids(&[0, 99]));
    // The saved DAG restores to the same DAG.
    let mut kv = tabmesh_base::MemoryKv::new();
    kv.apply(&dag.take_changes(b"d/"));
    let restored: Dag<Vec<u8>> = Dag::restore(b"d/", &kv, *dag.config()).unwrap();
    assert_eq!(restored.missing_parents(10), dag.missing_parents(10));
}
