//! Helpers shared by the test modules: ids, deltas, appliers, random DAGs.

use std::collections::BTreeSet;

use tabmesh_base::{DeltaId, DetRng, Hlc};
use tabmesh_dag::{AddOutcome, Cascade, CausalDelta, Dag, DagConfig};

/// The delta type of the tests.
pub(crate) type D = CausalDelta<Vec<u8>>;

/// The applier error of the tests.
pub(crate) type Err = String;

/// A deterministic id for test delta `n`: pseudo-random bytes (cheaper than a hash in debug
/// builds, and as well spread).
pub(crate) fn id(n: u64) -> DeltaId {
    DeltaId(DetRng::new(n).bytes())
}

/// Genesis delta `n`.
pub(crate) fn genesis(n: u64) -> D {
    CausalDelta::genesis(id(n), n.to_le_bytes().to_vec(), Hlc::new(n, 0))
}

/// Regular delta `n` with the given parent numbers.
pub(crate) fn delta(n: u64, parents: &[u64]) -> D {
    CausalDelta::new(
        id(n),
        parents.iter().map(|p| id(*p)).collect(),
        n.to_le_bytes().to_vec(),
        Hlc::new(n, 0),
    )
}

/// A DAG with the default configuration.
pub(crate) fn new_dag() -> Dag<Vec<u8>> {
    Dag::new(DagConfig::default())
}

/// An applier that accepts everything.
pub(crate) fn ok(_: &D) -> Result<(), Err> {
    Ok(())
}

/// Adds with the accepting applier at time 0, expecting success.
pub(crate) fn add(dag: &mut Dag<Vec<u8>>, d: D) -> AddOutcome<Err> {
    dag.add(d, 0, ok).unwrap()
}

/// The cascade of an `Applied` outcome; panics on any other.
pub(crate) fn applied(out: AddOutcome<Err>) -> Cascade<Err> {
    match out {
        AddOutcome::Applied(c) => c,
        other => panic!("expected Applied, got {other:?}"),
    }
}

/// The missing list of a `Pending` outcome; panics on any other.
pub(crate) fn pending(out: AddOutcome<Err>) -> (Vec<DeltaId>, Vec<DeltaId>) {
    match out {
        AddOutcome::Pending { missing, evicted } => (missing, evicted),
        other => panic!("expected Pending, got {other:?}"),
    }
}

/// Ids of numbers.
pub(crate) fn ids(ns: &[u64]) -> Vec<DeltaId> {
    ns.iter().map(|n| id(*n)).collect()
}

/// Ids of numbers, sorted (heads come back in id order).
pub(crate) fn sorted_ids(ns: &[u64]) -> Vec<DeltaId> {
    let mut v = ids(ns);
    v.sort();
    v
}

/// A random DAG of `n` deltas in a topological order: delta 0 is a genesis, every other one names
/// one to three distinct parents among the eight deltas before it.
pub(crate) fn random_dag(rng: &mut DetRng, n: u64) -> Vec<D> {
    let mut out = vec![genesis(0)];
    for i in 1..n {
        let window = i.min(8);
        let want = 1 + rng.below(3);
        let mut parents = BTreeSet::new();
        for _ in 0..want {
            parents.insert(i - 1 - rng.below(window));
        }
        let parents: Vec<u64> = parents.into_iter().collect();
        out.push(delta(i, &parents));
    }
    out
}

/// The heads of a set of deltas: those no delta of the set names as a parent, sorted.
pub(crate) fn expected_heads(deltas: &[D]) -> Vec<DeltaId> {
    let parents: BTreeSet<DeltaId> = deltas.iter().flat_map(|d| d.parents.clone()).collect();
    let mut heads: Vec<DeltaId> = deltas
        .iter()
        .map(|d| d.id)
        .filter(|i| !parents.contains(i))
        .collect();
    heads.sort();
    heads.dedup();
    heads
}

/// Every applied delta of `dag` in apply order (through `deltas_since` from nothing).
pub(crate) fn all_applied(dag: &Dag<Vec<u8>>) -> Vec<DeltaId> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = dag.deltas_since(&[], cursor, 1_000).unwrap();
        out.extend(page.deltas.iter().map(|d| d.id));
        out.extend(page.without_body.iter().copied());
        match page.next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}
