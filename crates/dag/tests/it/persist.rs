use tabmesh_testkit::test;

use tabmesh_base::{codec::VERSION, CodecError, Hash, KvRead, MemoryKv, WriteOp};
use tabmesh_dag::{Dag, DagConfig, RestoreError};

use super::support::{add, applied, delta, genesis, id, ids, new_dag, ok, pending};

const PREFIX: &[u8] = b"ctx/1/dag/";

type Bytes = Dag<Vec<u8>>;

/// A DAG with every kind of record: applied deltas with a fork, pending deltas, pruned ids, a
/// checkpoint boundary.
fn busy_dag() -> Bytes {
    let config = DagConfig {
        max_pruned: 3,
        ..DagConfig::default()
    };
    let mut dag = Dag::new(config);
    let _ = add(&mut dag, genesis(0));
    for n in 1..8u64 {
        let _ = applied(add(&mut dag, delta(n, &[n - 1])));
    }
    let _ = applied(add(&mut dag, delta(20, &[3])));
    assert_eq!(dag.prune(3), 6);
    let _ = dag
        .restore_checkpoint(&ids(&[40]), Hash::of(b"root"), ok)
        .unwrap();
    let _ = pending(dag.add(delta(31, &[30]), 1_000, ok).unwrap());
    let _ = pending(dag.add(delta(32, &[31, 7]), 2_000, ok).unwrap());
    let _ = pending(dag.add(delta(33, &[50]), 3_000, ok).unwrap());
    dag
}

fn restore(kv: &MemoryKv) -> Bytes {
    Dag::restore(
        PREFIX,
        kv,
        DagConfig {
            max_pruned: 3,
            ..DagConfig::default()
        },
    )
    .unwrap()
}

fn assert_same_answers(a: &Bytes, b: &Bytes) {
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.stats(5_000), b.stats(5_000));
    assert_eq!(a.missing_parents(100), b.missing_parents(100));
    assert_eq!(a.pending_ids(100), b.pending_ids(100));
    for n in [0, 3, 5, 7, 20, 31, 40, 50, 99] {
        assert_eq!(a.status(&id(n)), b.status(&id(n)), "status of {n}");
        assert_eq!(a.get(&id(n)), b.get(&id(n)), "body of {n}");
        assert_eq!(a.checkpoint_root(&id(n)), b.checkpoint_root(&id(n)));
    }
    for known in [vec![], ids(&[5]), ids(&[7, 20])] {
        let pa = a.deltas_since(&known, None, 100).unwrap();
        let pb = b.deltas_since(&known, None, 100).unwrap();
        assert_eq!(pa.deltas, pb.deltas);
        assert_eq!(pa.without_body, pb.without_body);
        assert_eq!(pa.next, pb.next);
    }
}

#[test]
fn restore_rebuilds_an_equal_dag() {
    let mut dag = busy_dag();
    let mut kv = MemoryKv::new();
    kv.apply(&dag.take_changes(PREFIX));
    assert!(!dag.has_changes());
    assert!(kv
        .iter()
        .all(|(k, v)| k.starts_with(PREFIX) && v.first() == Some(&VERSION)));
    let mut back = restore(&kv);
    assert_eq!(back, dag);
    assert!(!back.has_changes());
    assert_same_answers(&dag, &back);

    // Both continue identically: the missing parents arrive and everything cascades.
    for d in [delta(30, &[40]), delta(50, &[32])] {
        let a = add(&mut dag, d.clone());
        let b = add(&mut back, d);
        assert_eq!(a, b);
    }
    assert_eq!(dag.stats(0).pending, 0);
    assert_eq!(back, dag);
    assert_same_answers(&dag, &back);
    assert_eq!(dag.evict_stale(0), back.evict_stale(0));
}

#[test]
fn incremental_batches_equal_one_full_export() {
    let mut dag: Bytes = Dag::new(DagConfig {
        max_pending: 2,
        max_pruned: 2,
        ..DagConfig::default()
    });
    let mut incremental = MemoryKv::new();
    let mut step = |dag: &mut Bytes| incremental.apply(&dag.take_changes(PREFIX));
    let _ = add(&mut dag, genesis(0));
    step(&mut dag);
    for n in 1..6u64 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
        step(&mut dag);
    }
    // Pending churn: some evicted, some cascaded, some stale.
    let _ = dag.add(delta(8, &[7]), 10, ok).unwrap();
    step(&mut dag);
    let _ = dag.add(delta(7, &[6]), 20, ok).unwrap();
    let _ = dag.add(delta(11, &[10]), 30, ok).unwrap(); // evicts 8
    step(&mut dag);
    let _ = dag.add(delta(6, &[5]), 40, ok).unwrap(); // 6, 7 apply; 11 waits
    let _ = dag.prune(2);
    step(&mut dag);
    let _ = dag.prune(1);
    let _ = dag.evict_stale(1_000_000);
    step(&mut dag);

    let mut full = MemoryKv::new();
    let mut fresh: Bytes = Dag::restore(
        PREFIX,
        &incremental,
        DagConfig {
            max_pending: 2,
            max_pruned: 2,
            ..DagConfig::default()
        },
    )
    .unwrap();
    assert_eq!(fresh, dag);
    // A full export of the same DAG: a new DAG built by replaying the same calls, one batch.
    let mut replay: Bytes = Dag::new(DagConfig {
        max_pending: 2,
        max_pruned: 2,
        ..DagConfig::default()
    });
    let _ = add(&mut replay, genesis(0));
    for n in 1..6u64 {
        let _ = add(&mut replay, delta(n, &[n - 1]));
    }
    let _ = replay.add(delta(8, &[7]), 10, ok).unwrap();
    let _ = replay.add(delta(7, &[6]), 20, ok).unwrap();
    let _ = replay.add(delta(11, &[10]), 30, ok).unwrap();
    let _ = replay.add(delta(6, &[5]), 40, ok).unwrap();
    let _ = replay.prune(2);
    let _ = replay.prune(1);
    let _ = replay.evict_stale(1_000_000);
    full.apply(&replay.take_changes(PREFIX));
    assert_eq!(full, incremental, "same stored records either way");
    assert!(fresh.take_changes(PREFIX).is_empty());
}

#[test]
fn ids_added_and_removed_between_batches_leave_no_trace() {
    let mut dag = new_dag();
    let _ = dag.take_changes(PREFIX);
    let _ = pending(dag.add(delta(2, &[1]), 0, ok).unwrap());
    let _ = dag.evict_stale(u64::MAX);
    let batch = dag.take_changes(PREFIX);
    assert!(
        batch
            .ops()
            .iter()
            .all(|op| matches!(op, WriteOp::Put(k, _) if k.ends_with(b"m"))),
        "only the meta record: {batch:?}"
    );
}

#[test]
fn an_empty_store_restores_an_empty_dag() {
    let kv = MemoryKv::new();
    let dag = restore(&kv);
    assert_eq!(dag.stats(0), tabmesh_dag::DagStats::default());
    assert!(dag.heads().is_empty());
}

fn stored() -> MemoryKv {
    let mut dag = busy_dag();
    let mut kv = MemoryKv::new();
    kv.apply(&dag.take_changes(PREFIX));
    kv
}

fn with_value(kv: &MemoryKv, key: &[u8], value: Vec<u8>) -> MemoryKv {
    let mut batch = tabmesh_base::WriteBatch::new();
    batch.put(key.to_vec(), value);
    let mut kv = kv.clone();
    kv.apply(&batch);
    kv
}

fn key(tag: u8, n: Option<u64>) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.push(tag);
    if let Some(n) = n {
        k.extend_from_slice(id(n).as_bytes());
    }
    k
}

#[test]
fn an_unknown_record_version_is_a_typed_error() {
    let kv = stored();
    let k = key(b'a', Some(7));
    let mut value = kv.get(&k).unwrap();
    value[0] = VERSION + 1;
    let err = Dag::<Vec<u8>>::restore(PREFIX, &with_value(&kv, &k, value), DagConfig::default())
        .unwrap_err();
    assert_eq!(
        err,
        RestoreError::Record {
            table: "applied",
            id: Some(id(7)),
            source: CodecError::UnknownVersion {
                found: VERSION + 1,
                supported: VERSION
            },
        }
    );
    // The meta record too.
    let k = key(b'm', None);
    let mut value = kv.get(&k).unwrap();
    value[0] = 0xee;
    let err = Dag::<Vec<u8>>::restore(PREFIX, &with_value(&kv, &k, value), DagConfig::default())
        .unwrap_err();
    assert!(matches!(
        err,
        RestoreError::Record {
            table: "meta",
            source: CodecError::UnknownVersion { .. },
            ..
        }
    ));
}

#[test]
fn corrupt_stores_are_refused_with_a_reason() {
    let kv = stored();
    let restore_err =
        |kv: &MemoryKv| Dag::<Vec<u8>>::restore(PREFIX, kv, DagConfig::default()).unwrap_err();

    // Truncated pending record.
    let k = key(b'p', Some(31));
    let mut value = kv.get(&k).unwrap();
    value.truncate(value.len() - 1);
    assert!(matches!(
        restore_err(&with_value(&kv, &k, value)),
        RestoreError::Record {
            table: "pending",
            source: CodecError::UnexpectedEnd { .. },
            ..
        }
    ));

    // Trailing bytes.
    let k = key(b'x', Some(5));
    let mut value = kv.get(&k).unwrap();
    value.push(0);
    assert!(matches!(
        restore_err(&with_value(&kv, &k, value)),
        RestoreError::Record {
            source: CodecError::TrailingBytes(1),
            ..
        }
    ));

    // A key the DAG never writes.
    let err = restore_err(&with_value(&kv, &key(b'z', None), vec![VERSION]));
    assert!(matches!(err, RestoreError::UnknownKey { .. }));

    // A record stored under another delta's key.
    let value = kv.get(&key(b'a', Some(7))).unwrap();
    let err = restore_err(&with_value(&kv, &key(b'a', Some(77)), value));
    assert!(matches!(err, RestoreError::Inconsistent { .. }), "{err:?}");

    // No meta record.
    let mut batch = tabmesh_base::WriteBatch::new();
    batch.delete(key(b'm', None));
    let mut no_meta = kv.clone();
    no_meta.apply(&batch);
    assert_eq!(restore_err(&no_meta), RestoreError::MissingMeta);

    // A pending delta whose parents are all applied cannot exist.
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = pending(add(&mut dag, delta(2, &[1])));
    let mut kv = MemoryKv::new();
    kv.apply(&dag.take_changes(PREFIX));
    let _ = add(&mut dag, delta(1, &[0]));
    let batch = dag.take_changes(PREFIX);
    // Persist the applied record of 1 but not the removal of pending 2.
    let mut partial = tabmesh_base::WriteBatch::new();
    for op in batch.into_ops() {
        if let WriteOp::Put(k, v) = op {
            if k == key(b'a', Some(1)) || k == key(b'm', None) {
                partial.put(k, v);
            }
        }
    }
    kv.apply(&partial);
    let err = restore_err(&kv);
    assert!(
        matches!(err, RestoreError::Inconsistent { id: Some(i), .. } if i == id(2)),
        "{err:?}"
    );
}

#[test]
fn the_prefix_separates_dags() {
    let mut a = busy_dag();
    let mut b = new_dag();
    let _ = add(&mut b, genesis(100));
    let mut kv = MemoryKv::new();
    kv.apply(&a.take_changes(b"ctx/a/"));
    kv.apply(&b.take_changes(b"ctx/b/"));
    let ra: Bytes = Dag::restore(
        b"ctx/a/",
        &kv,
        DagConfig {
            max_pruned: 3,
            ..DagConfig::default()
        },
    )
    .unwrap();
    let rb: Bytes = Dag::restore(b"ctx/b/", &kv, DagConfig::default()).unwrap();
    assert_eq!(ra, a);
    assert_eq!(rb, b);
}
