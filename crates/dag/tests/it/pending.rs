use tabmesh_testkit::test;

use tabmesh_dag::{AddOutcome, Dag, DagConfig, DeltaStatus, DEFAULT_MAX_PENDING_AGE_MS};

use super::support::{add, applied, delta, genesis, id, ids, new_dag, ok, pending, D};

fn dag_with(config: DagConfig) -> Dag<Vec<u8>> {
    Dag::new(config)
}

#[test]
fn the_buffer_evicts_its_oldest_arrival_at_the_cap() {
    let mut dag = dag_with(DagConfig {
        max_pending: 3,
        ..DagConfig::default()
    });
    // Orphans 11..=13 wait for 1..=3.
    for n in 1..=3u64 {
        let (missing, evicted) = pending(add(&mut dag, delta(10 + n, &[n])));
        assert_eq!(missing, ids(&[n]));
        assert!(evicted.is_empty());
    }
    let (_, evicted) = pending(add(&mut dag, delta(14, &[4])));
    assert_eq!(evicted, ids(&[11]), "the oldest arrival goes first");
    let (_, evicted) = pending(add(&mut dag, delta(15, &[5])));
    assert_eq!(evicted, ids(&[12]));
    assert_eq!(dag.status(&id(11)), DeltaStatus::Unknown);
    assert_eq!(dag.status(&id(12)), DeltaStatus::Unknown);
    assert_eq!(dag.status(&id(13)), DeltaStatus::Pending);
    assert_eq!(dag.pending_ids(10), ids(&[13, 14, 15]));
    assert_eq!(dag.stats(0).pending, 3);
    // Nobody waits for 1 and 2 any more.
    assert_eq!(
        dag.missing_parents(10),
        super::support::sorted_ids(&[3, 4, 5])
    );
}

#[test]
fn an_evicted_parent_becomes_missing_and_its_children_keep_waiting() {
    let mut dag = dag_with(DagConfig {
        max_pending: 2,
        ..DagConfig::default()
    });
    let _ = add(&mut dag, genesis(0));
    // 2 waits for 1 (unknown), 3 waits for 2 (pending).
    let _ = pending(add(&mut dag, delta(2, &[1])));
    let _ = pending(add(&mut dag, delta(3, &[2])));
    assert_eq!(dag.missing_parents(10), ids(&[1]));
    // A third orphan evicts 2: now 2 is what 3 is missing.
    let (_, evicted) = pending(add(&mut dag, delta(9, &[8])));
    assert_eq!(evicted, ids(&[2]));
    assert_eq!(dag.missing_parents(10), super::support::sorted_ids(&[2, 8]));
    assert_eq!(dag.status(&id(3)), DeltaStatus::Pending);
    // Re-pulled: 1 then 2; the cascade reaches 3.
    let _ = applied(add(&mut dag, delta(1, &[0])));
    let cascade = applied(add(&mut dag, delta(2, &[1])));
    assert_eq!(cascade.applied, ids(&[2, 3]));
}

#[test]
fn stale_pending_deltas_are_evicted_by_age() {
    let mut dag = new_dag();
    let max = DEFAULT_MAX_PENDING_AGE_MS;
    assert_eq!(max, 300_000);
    let _ = pending(dag.add(delta(11, &[1]), 1_000, ok).unwrap());
    let _ = pending(dag.add(delta(12, &[2]), 100_000, ok).unwrap());
    let _ = pending(dag.add(delta(13, &[3]), 250_000, ok).unwrap());
    assert_eq!(dag.stats(1_000 + max).oldest_pending_age_ms, Some(max));
    // Exactly the maximum age is not stale yet.
    assert!(dag.evict_stale(1_000 + max).is_empty());
    assert_eq!(dag.evict_stale(1_001 + max), ids(&[11]));
    // A clock that went backwards makes nothing stale.
    assert!(dag.evict_stale(0).is_empty());
    assert_eq!(dag.evict_stale(u64::MAX), ids(&[12, 13]));
    assert_eq!(dag.stats(0).pending, 0);
    assert_eq!(dag.stats(0).oldest_pending_age_ms, None);
    assert!(dag.missing_parents(10).is_empty());
}

#[test]
fn stale_cleanup_uses_the_configured_age_and_receive_time_not_arrival() {
    let mut dag = dag_with(DagConfig {
        max_pending_age_ms: 10,
        ..DagConfig::default()
    });
    // Arrival order 21, 22 but 22 was received earlier (the caller's clock is not monotonic).
    let _ = pending(dag.add(delta(21, &[1]), 50, ok).unwrap());
    let _ = pending(dag.add(delta(22, &[2]), 30, ok).unwrap());
    assert_eq!(dag.stats(45).oldest_pending_age_ms, Some(15));
    assert_eq!(dag.evict_stale(45), ids(&[22]));
    assert_eq!(dag.evict_stale(61), ids(&[21]));
}

#[test]
fn missing_parents_is_bounded_by_the_limit_and_the_config() {
    let mut dag = dag_with(DagConfig {
        max_query_limit: 5,
        ..DagConfig::default()
    });
    for n in 0..20u64 {
        let _ = pending(add(&mut dag, delta(100 + n, &[n])));
    }
    assert_eq!(dag.stats(0).missing, 20);
    assert_eq!(dag.missing_parents(3).len(), 3);
    assert_eq!(dag.missing_parents(1_000).len(), 5);
    assert_eq!(dag.pending_ids(1_000).len(), 5);
    let all: Vec<_> = {
        let mut v: Vec<_> = (0..20).map(id).collect();
        v.sort();
        v
    };
    assert_eq!(dag.missing_parents(3), all[..3].to_vec(), "in id order");
}

#[test]
fn a_cap_of_zero_is_raised_to_one() {
    let mut dag = dag_with(DagConfig {
        max_pending: 0,
        ..DagConfig::default()
    });
    assert_eq!(dag.config().max_pending, 1);
    let _ = pending(add(&mut dag, delta(11, &[1])));
    let out = dag
        .add(delta(12, &[2]), 0, |_: &D| Ok::<_, String>(()))
        .unwrap();
    assert_eq!(
        out,
        AddOutcome::Pending {
            missing: ids(&[2]),
            evicted: ids(&[11])
        }
    );
}

#[test]
fn a_flood_of_large_orphans_stays_within_the_byte_bound_and_the_dag_still_works() {
    use tabmesh_base::Hlc;
    use tabmesh_dag::CausalDelta;
    let mut dag = dag_with(DagConfig {
        max_pending_bytes: 10_000,
        ..DagConfig::default()
    });
    applied(add(&mut dag, genesis(1)));
    // 1 000 orphans of 1 KB each, every one naming a parent nobody has.
    let mut evicted_total = 0;
    for n in 0..1_000u64 {
        let orphan = CausalDelta::new(
            id(10_000 + n),
            vec![id(50_000 + n)],
            vec![7; 1_000],
            Hlc::new(n, 0),
        );
        let (_, evicted) = pending(add(&mut dag, orphan));
        evicted_total += evicted.len();
        let stats = dag.stats(0);
        assert!(stats.pending_bytes <= 10_000, "{stats:?}");
    }
    let stats = dag.stats(0);
    assert_eq!((stats.pending, stats.pending_bytes), (10, 10_000));
    assert_eq!(evicted_total, 990);
    assert!(
        stats.missing <= 10,
        "only the kept orphans' parents are missing: {stats:?}"
    );
    // Honest deltas still apply on the genesis.
    applied(add(&mut dag, delta(2, &[1])));
    assert_eq!(dag.status(&id(2)), DeltaStatus::Applied);
}
