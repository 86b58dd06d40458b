//! Bodies of the DAG targets: restoring from arbitrary stored records, and arbitrary insertion
//! scripts.

use tabmesh_base::{DeltaId, Hash, Hlc, MemoryKv};
use tabmesh_dag::{AddOutcome, CausalDelta, Dag, DagConfig, DeltaStatus, Payload, SinceCursor};
use tabmesh_sync::Body;

use crate::kv::{kv_from_bytes, DAG_PREFIX};

/// The small bounds of the fuzzed DAGs: a pending cap the scripts overflow easily.
pub(crate) const FUZZ_DAG: DagConfig = DagConfig {
    max_pending: 4,
    max_pending_bytes: 64,
    max_pending_age_ms: 1_000,
    max_pruned: 6,
    max_query_limit: 8,
};

/// `tabmesh_dag::Dag::restore` (payloads `Vec<u8>`, and the sync crate's `Body`) from a store
/// read from the bytes ([`kv_from_bytes`] under [`DAG_PREFIX`]): an error, never a panic. A
/// restored DAG answers its queries, takes a new delta on its heads, and restores again from its
/// own batch to an equal DAG.
pub fn dag_restore(data: &[u8]) {
    let kv = kv_from_bytes(DAG_PREFIX, data);
    if let Err(e) = Dag::<Body>::restore(DAG_PREFIX, &kv, FUZZ_DAG) {
        let _ = e.to_string();
    }
    let mut dag = match Dag::<Vec<u8>>::restore(DAG_PREFIX, &kv, FUZZ_DAG) {
        Ok(dag) => dag,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(!dag.has_changes(), "a restored DAG has unsaved changes");
    check_invariants(&dag, 0);
    exercise_queries(&dag);
    let mut parents = dag.heads();
    parents.truncate(tabmesh_dag::MAX_PARENTS);
    let id = DeltaId([0xA5; 32]);
    let delta = if parents.is_empty() {
        CausalDelta::genesis(id, vec![1], Hlc::new(1, 0))
    } else {
        CausalDelta::new(id, parents, vec![1], Hlc::new(1, 0))
    };
    match dag.add(delta, 0, |_| Ok::<(), ()>(())) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
    check_invariants(&dag, 0);
    let _ = dag.prune(1);
    let _ = dag.evict_stale(10_000);
    check_invariants(&dag, 10_000);
    let mut kv = kv;
    kv.apply(&dag.take_changes(DAG_PREFIX));
    match Dag::<Vec<u8>>::restore(DAG_PREFIX, &kv, FUZZ_DAG) {
        Ok(again) => assert!(
            again == dag,
            "dag_restore: a restored DAG, changed and saved, restores to another DAG\n  \
             live:     {}\n  restored: {}",
            view(&dag),
            view(&again)
        ),
        Err(e) => panic!("dag_restore: a restored DAG, changed and saved, does not restore: {e}"),
    }
}

/// A small DAG's ids: `n & 15`.
fn small_id(n: u8) -> DeltaId {
    DeltaId([n & 15; 32])
}

/// `tabmesh_dag::Dag<Vec<u8>>` driven by a script of operations read from the bytes (ids and
/// parents from a space of 16, so self-references, duplicates and cycles are common): adds
/// (genesis, regular, refused by the applier), prunes, stale eviction, checkpoints, satisfied
/// marks, pending discards, queries, and save-and-restore. After every step the pending buffer
/// stays within its cap of 4 and the DAG's invariants hold (heads applied, missing parents
/// unknown, pending ids pending); every save restores to an equal DAG.
pub fn dag_insert(data: &[u8]) {
    let mut dag: Dag<Vec<u8>> = Dag::new(FUZZ_DAG);
    let mut kv = MemoryKv::new();
    let mut now = 0u64;
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    while let Some(op) = next() {
        let arg = |next: &mut dyn FnMut() -> Option<u8>| next().unwrap_or(0);
        let count = usize::from((op >> 3) & 3);
        match op & 7 {
            0..=2 => {
                let id = small_id(arg(&mut next));
                let parents: Vec<DeltaId> = (0..count).map(|_| small_id(arg(&mut next))).collect();
                let tag = arg(&mut next);
                let delta = if parents.is_empty() && op & 0x20 != 0 {
                    CausalDelta::genesis(id, vec![tag], Hlc::new(now, 0))
                } else {
                    CausalDelta::new(id, parents, vec![tag], Hlc::new(now, 0))
                };
                now += u64::from(op >> 6) * 400;
                // The applier refuses payloads that are multiples of 5.
                let outcome = dag.add(delta, now, |d| {
                    if d.payload.first().is_some_and(|b| b % 5 == 0) {
                        Err("refused")
                    } else {
                        Ok(())
                    }
                });
                match outcome {
                    Ok(AddOutcome::Pending { missing, evicted }) => {
                        for m in missing {
                            assert_eq!(dag.status(&m), DeltaStatus::Unknown, "missing {m:?}");
                        }
                        for e in evicted {
                            assert_ne!(dag.status(&e), DeltaStatus::Pending, "evicted {e:?}");
                        }
                    }
                    Ok(AddOutcome::Applied(cascade)) => {
                        for id in cascade.applied {
                            assert_ne!(dag.status(&id), DeltaStatus::Pending, "applied {id:?}");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = e.to_string();
                    }
                }
            }
            3 => {
                let _ = dag.prune(usize::from(arg(&mut next) & 7));
            }
            4 => {
                now += u64::from(arg(&mut next)) * 20;
                let _ = dag.evict_stale(now);
            }
            5 => {
                let heads: Vec<DeltaId> = (0..count).map(|_| small_id(arg(&mut next))).collect();
                let root = Hash([arg(&mut next); 32]);
                let applied = if op & 0x20 != 0 {
                    dag.restore_checkpoint(&heads, root, |_| Ok::<(), ()>(()))
                } else {
                    dag.mark_satisfied(&heads, |_| Ok::<(), ()>(()))
                };
                if let Err(e) = applied {
                    let _ = e.to_string();
                }
            }
            6 => {
                let mask = arg(&mut next);
                let _ = dag.discard_pending(|d, waited| {
                    d.payload.first().is_some_and(|b| b & mask != 0) && !(waited && op & 0x20 != 0)
                });
                exercise_queries(&dag);
            }
            _ => save_and_restore(&mut dag, &mut kv),
        }
        check_invariants(&dag, now);
    }
    save_and_restore(&mut dag, &mut kv);
}

/// Saves the changes, restores from the store, and checks the result equals `dag`.
fn save_and_restore(dag: &mut Dag<Vec<u8>>, kv: &mut MemoryKv) {
    kv.apply(&dag.take_changes(DAG_PREFIX));
    assert!(!dag.has_changes(), "changes remain after take_changes");
    match Dag::<Vec<u8>>::restore(DAG_PREFIX, kv, FUZZ_DAG) {
        Ok(again) => assert!(
            again == *dag,
            "dag_insert: a saved DAG restores to another DAG\n  live:     {}\n  restored: {}",
            view(dag),
            view(&again)
        ),
        Err(e) => panic!("dag_insert: a saved DAG does not restore: {e}"),
    }
}

/// What the public API shows of a DAG (for failure messages): ids by their first byte.
fn view<P: Payload>(dag: &Dag<P>) -> String {
    let short = |ids: Vec<DeltaId>| -> Vec<u8> { ids.iter().map(|i| i.0[0]).collect() };
    format!(
        "heads {:?}, pending {:?}, missing {:?}, applied {:?}, satisfied {:?}, {:?}",
        short(dag.heads()),
        short(dag.pending_ids(usize::MAX)),
        short(dag.missing_parents(usize::MAX)),
        short(dag.recent_ids(usize::MAX)),
        short(dag.satisfied_ids().collect()),
        dag.stats(0)
    )
}

/// The invariants visible through the public API.
fn check_invariants<P: Payload>(dag: &Dag<P>, now: u64) {
    let stats = dag.stats(now);
    assert!(
        stats.pending <= dag.config().max_pending,
        "pending {} over the cap {}",
        stats.pending,
        dag.config().max_pending
    );
    assert_eq!(stats.total, stats.applied + stats.pending);
    assert_eq!(stats.heads, dag.heads().len());
    for h in dag.heads() {
        assert_eq!(
            dag.status(&h),
            DeltaStatus::Applied,
            "head {h:?} is not applied"
        );
    }
    for m in dag.missing_parents(usize::MAX) {
        assert_eq!(
            dag.status(&m),
            DeltaStatus::Unknown,
            "missing parent {m:?} is known"
        );
        assert!(dag.is_missing(&m));
    }
    let missing = dag.missing_parents(usize::MAX);
    for p in dag.pending_ids(usize::MAX) {
        assert_eq!(
            dag.status(&p),
            DeltaStatus::Pending,
            "pending id {p:?} is not pending"
        );
        // `missing_parents`: "ids that pending deltas wait for and that are neither applied,
        // pruned nor pending" (when there are no more than the query limit).
        let Some(d) = dag.get(&p) else {
            panic!("pending delta {p:?} has no body");
        };
        for parent in &d.parents {
            if dag.status(parent) == DeltaStatus::Unknown
                && missing.len() < dag.config().max_query_limit
            {
                assert!(
                    missing.contains(parent),
                    "pending delta {:?} waits for {:?} (unknown: neither applied, pruned nor \
                     pending) but missing_parents() = {:?} omits it",
                    p.0[0],
                    parent.0[0],
                    missing.iter().map(|m| m.0[0]).collect::<Vec<_>>()
                );
            }
        }
    }
}

/// The read-only queries, with heads the DAG knows and ones it does not.
fn exercise_queries<P: Payload>(dag: &Dag<P>) {
    let mut known = dag.heads();
    known.push(DeltaId([0xEE; 32]));
    for cursor in [
        None,
        Some(SinceCursor::from_u64(1)),
        Some(SinceCursor::from_u64(u64::MAX)),
    ] {
        for heads in [&[][..], &known[..]] {
            match dag.deltas_since(heads, cursor, 3) {
                Ok(page) => {
                    for d in &page.deltas {
                        assert_eq!(dag.status(&d.id), DeltaStatus::Applied);
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
    let _ = dag.applied_in_order().count();
    let _ = dag.satisfied_ids().count();
    let _ = dag.recent_ids(usize::MAX);
}
