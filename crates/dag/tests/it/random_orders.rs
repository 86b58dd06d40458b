use tabmesh_testkit::test;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tabmesh_base::{DeltaId, MemoryKv};
use tabmesh_dag::{AddOutcome, Dag, DagConfig};
use tabmesh_testkit::for_seeds;

use super::support::{expected_heads, random_dag, D};

const PREFIX: &[u8] = b"dag/";

/// Checks an apply log: every delta exactly once, each after its parents.
fn check_log(seed: u64, deltas: &[D], log: &[DeltaId]) {
    let parents: BTreeMap<DeltaId, &[DeltaId]> = deltas
        .iter()
        .map(|d| (d.id, d.parents.as_slice()))
        .collect();
    let mut seen = BTreeSet::new();
    for i in log {
        for p in parents.get(i).copied().unwrap_or_default() {
            assert!(
                seen.contains(p),
                "seed {seed}: {i} applied before its parent {p}"
            );
        }
        assert!(seen.insert(*i), "seed {seed}: {i} applied twice");
    }
    assert_eq!(seen.len(), deltas.len(), "seed {seed}: every delta applied");
}

#[test]
fn random_orders_with_duplicates_converge_to_the_same_dag() {
    for_seeds(0..150, |seed, rng| {
        let n = 20 + rng.below(60);
        let deltas = random_dag(rng, n);
        let heads = expected_heads(&deltas);

        // Every delta delivered one to three times, in a random order.
        let mut deliveries: Vec<D> = Vec::new();
        for d in &deltas {
            for _ in 0..1 + rng.below(3) {
                deliveries.push(d.clone());
            }
        }
        rng.shuffle(&mut deliveries);

        let config = DagConfig {
            max_pending: deltas.len(),
            ..DagConfig::default()
        };
        let mut dag: Dag<Vec<u8>> = Dag::new(config);
        let mut kv = MemoryKv::new();
        let mut log = Vec::new();
        for (t, d) in deliveries.into_iter().enumerate() {
            let out = dag
                .add(d, t as u64, |d: &D| {
                    log.push(d.id);
                    Ok::<_, String>(())
                })
                .unwrap();
            if let AddOutcome::Pending { evicted, .. } = &out {
                assert!(
                    evicted.is_empty(),
                    "seed {seed}: no eviction under this cap"
                );
            }
            kv.apply(&dag.take_changes(PREFIX));
            // Now and then the node restarts from its store.
            if rng.chance(0.05) {
                let back = Dag::restore(PREFIX, &kv, config).unwrap();
                assert_eq!(back, dag, "seed {seed}: restore after {t} deliveries");
                dag = back;
            }
        }
        check_log(seed, &deltas, &log);
        assert_eq!(dag.heads(), heads, "seed {seed}");
        let stats = dag.stats(0);
        assert_eq!(
            (stats.applied, stats.pending, stats.missing),
            (deltas.len(), 0, 0)
        );
        let applied: BTreeSet<DeltaId> = super::support::all_applied(&dag).into_iter().collect();
        let all: BTreeSet<DeltaId> = deltas.iter().map(|d| d.id).collect();
        assert_eq!(applied, all, "seed {seed}");
    });
}

/// With a tiny pending buffer, evicted deltas and missing parents are re-pulled until the DAG is
/// complete: the buffer bound costs round trips, never convergence.
#[test]
fn a_tiny_buffer_converges_by_re_pulling_what_it_evicts() {
    for_seeds(0..60, |seed, rng| {
        let deltas = random_dag(rng, 60);
        let by_id: BTreeMap<DeltaId, D> = deltas.iter().map(|d| (d.id, d.clone())).collect();
        let mut queue: VecDeque<D> = deltas.iter().cloned().collect();
        rng.shuffle(queue.make_contiguous());
        let config = DagConfig {
            max_pending: 1 + rng.index(4),
            ..DagConfig::default()
        };
        let mut dag: Dag<Vec<u8>> = Dag::new(config);
        let mut log = Vec::new();
        let mut steps = 0;
        loop {
            let Some(d) = queue.pop_front() else {
                // Nothing in flight: pull what the DAG says it is missing.
                let missing = dag.missing_parents(100);
                if missing.is_empty() {
                    break;
                }
                queue.extend(missing.iter().map(|i| by_id[i].clone()));
                continue;
            };
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: no progress");
            let out = dag
                .add(d, steps, |d: &D| {
                    log.push(d.id);
                    Ok::<_, String>(())
                })
                .unwrap();
            if let AddOutcome::Pending { evicted, .. } = out {
                queue.extend(evicted.iter().map(|i| by_id[i].clone()));
            }
        }
        check_log(seed, &deltas, &log);
        assert_eq!(dag.heads(), expected_heads(&deltas), "seed {seed}");
        assert_eq!(dag.stats(0).pending, 0, "seed {seed}");
    });
}
