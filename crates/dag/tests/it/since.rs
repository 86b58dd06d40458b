use tabmesh_testkit::test;

use std::collections::{BTreeMap, BTreeSet};

use tabmesh_base::{DeltaId, DetRng};
use tabmesh_dag::{AddOutcome, Dag, DagConfig, DagError, SinceCursor, MAX_KNOWN_HEADS};
use tabmesh_testkit::for_seeds;

use super::support::{
    add, all_applied, delta, expected_heads, genesis, id, ids, new_dag, random_dag, D,
};

/// The ids of `picks` and all their ancestors within `deltas`.
fn closure(deltas: &[D], picks: &[DeltaId]) -> BTreeSet<DeltaId> {
    let parents: BTreeMap<DeltaId, Vec<DeltaId>> =
        deltas.iter().map(|d| (d.id, d.parents.clone())).collect();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<DeltaId> = picks.to_vec();
    while let Some(i) = stack.pop() {
        if seen.insert(i) {
            stack.extend(parents.get(&i).into_iter().flatten().copied());
        }
    }
    seen
}

/// A DAG holding every delta, delivered in a random order (so apply order differs from creation).
fn shuffled_dag(rng: &mut DetRng, deltas: &[D]) -> Dag<Vec<u8>> {
    let mut order = deltas.to_vec();
    rng.shuffle(&mut order);
    let config = DagConfig {
        max_pending: deltas.len(),
        ..DagConfig::default()
    };
    let mut dag = Dag::new(config);
    for d in order {
        let _ = add(&mut dag, d);
    }
    assert_eq!(dag.stats(0).applied, deltas.len());
    dag
}

/// Pages through `deltas_since(known)` with `limit`, returning the ids in page order.
fn page_all(dag: &Dag<Vec<u8>>, known: &[DeltaId], limit: usize) -> Vec<D> {
    let mut out = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = dag.deltas_since(known, cursor, limit).unwrap();
        assert!(page.deltas.len() <= limit);
        assert!(page.without_body.is_empty());
        out.extend(page.deltas.iter().map(|d| (*d).clone()));
        pages += 1;
        assert!(
            pages <= dag.stats(0).applied + 1,
            "pagination must terminate"
        );
        match page.next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

#[test]
fn pages_are_complete_without_duplicates_and_applicable_in_order() {
    for_seeds(0..24, |seed, rng| {
        let deltas = random_dag(rng, 200);
        let dag = shuffled_dag(rng, &deltas);
        // The peer holds an ancestor-closed part of the history.
        let picks: Vec<DeltaId> = (0..1 + rng.below(3))
            .map(|_| id(rng.below(deltas.len() as u64)))
            .collect();
        let peer_set = if seed % 6 == 0 {
            BTreeSet::new()
        } else {
            closure(&deltas, &picks)
        };
        let peer_deltas: Vec<D> = deltas
            .iter()
            .filter(|d| peer_set.contains(&d.id))
            .cloned()
            .collect();
        let known = expected_heads(&peer_deltas);
        let limit = 1 + rng.index(20);

        let got = page_all(&dag, &known, limit);
        let got_ids: Vec<DeltaId> = got.iter().map(|d| d.id).collect();
        let unique: BTreeSet<DeltaId> = got_ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            got_ids.len(),
            "seed {seed}: no duplicates across pages"
        );
        let expected: BTreeSet<DeltaId> = deltas
            .iter()
            .map(|d| d.id)
            .filter(|i| !peer_set.contains(i))
            .collect();
        assert_eq!(unique, expected, "seed {seed}: exactly what the peer lacks");

        // The peer applies the pages in order without ever buffering.
        let mut peer = new_dag();
        for d in peer_deltas {
            let _ = add(&mut peer, d);
        }
        for d in got {
            let out = add(&mut peer, d);
            assert!(
                matches!(out, AddOutcome::Applied(_)),
                "seed {seed}: {out:?}"
            );
        }
        assert_eq!(peer.heads(), dag.heads(), "seed {seed}");
    });
}

#[test]
fn a_peer_at_our_heads_gets_nothing() {
    let mut rng = DetRng::new(3);
    let deltas = random_dag(&mut rng, 100);
    let dag = shuffled_dag(&mut rng, &deltas);
    let page = dag.deltas_since(&dag.heads(), None, 10).unwrap();
    assert!(page.deltas.is_empty());
    assert!(page.next.is_none());
}

#[test]
fn a_peer_with_nothing_gets_everything_in_apply_order() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    for n in 1..10u64 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    let page = dag.deltas_since(&[], None, 4).unwrap();
    assert_eq!(
        page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids(&[0, 1, 2, 3])
    );
    let page = dag.deltas_since(&[], page.next, 4).unwrap();
    assert_eq!(
        page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids(&[4, 5, 6, 7])
    );
    let page = dag.deltas_since(&[], page.next, 4).unwrap();
    assert_eq!(
        page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids(&[8, 9])
    );
    assert!(page.next.is_none());
    // From the middle of the chain.
    let page = dag.deltas_since(&ids(&[6]), None, 100).unwrap();
    assert_eq!(
        page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids(&[7, 8, 9])
    );
}

#[test]
fn unknown_heads_are_ignored_and_the_answer_stays_complete() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    let _ = add(&mut dag, delta(1, &[0]));
    let _ = add(&mut dag, delta(2, &[1]));
    // The peer names a head we do not have (its own newer delta) and one we do.
    let page = dag.deltas_since(&ids(&[1, 99]), None, 100).unwrap();
    assert_eq!(
        page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids(&[2])
    );
    let page = dag.deltas_since(&ids(&[99]), None, 100).unwrap();
    assert_eq!(page.deltas.len(), 3);
}

#[test]
fn concurrent_branches_far_back_are_found() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    // An early side branch 100 that nobody merged, then a long main line.
    let _ = add(&mut dag, delta(100, &[0]));
    let _ = add(&mut dag, delta(1, &[0]));
    for n in 2..50u64 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    // The peer followed the main line only.
    let page = dag.deltas_since(&ids(&[49]), None, 100).unwrap();
    assert_eq!(
        page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids(&[100])
    );
    let page = dag.deltas_since(&ids(&[100]), None, 100).unwrap();
    assert_eq!(page.deltas.len(), 49);
}

#[test]
fn pages_stay_consistent_while_the_dag_grows() {
    let mut dag = new_dag();
    let _ = add(&mut dag, genesis(0));
    for n in 1..20u64 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    let first = dag.deltas_since(&ids(&[4]), None, 5).unwrap();
    let mut got: Vec<DeltaId> = first.deltas.iter().map(|d| d.id).collect();
    let mut cursor = first.next;
    // New deltas arrive between pages.
    for n in 20..25u64 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    while let Some(c) = cursor {
        let page = dag.deltas_since(&ids(&[4]), Some(c), 5).unwrap();
        got.extend(page.deltas.iter().map(|d| d.id));
        cursor = page.next;
    }
    let expected: Vec<DeltaId> = (5..25).map(id).collect();
    assert_eq!(got, expected);
}

#[test]
fn limits_are_clamped_and_bounded() {
    let mut dag: Dag<Vec<u8>> = Dag::new(DagConfig {
        max_query_limit: 2,
        ..DagConfig::default()
    });
    let _ = add(&mut dag, genesis(0));
    for n in 1..10u64 {
        let _ = add(&mut dag, delta(n, &[n - 1]));
    }
    assert_eq!(dag.deltas_since(&[], None, 100).unwrap().deltas.len(), 2);
    assert_eq!(dag.deltas_since(&[], None, 0).unwrap().deltas.len(), 1);
    // A cursor past the end gives an empty last page.
    let page = dag
        .deltas_since(&[], Some(SinceCursor::from_u64(u64::MAX)), 2)
        .unwrap();
    assert!(page.deltas.is_empty() && page.next.is_none());
    let too_many: Vec<u64> = (0..=MAX_KNOWN_HEADS as u64).collect();
    assert_eq!(
        dag.deltas_since(&ids(&too_many), None, 2).err(),
        Some(DagError::TooManyKnownHeads {
            count: MAX_KNOWN_HEADS + 1,
            max: MAX_KNOWN_HEADS
        })
    );
    assert_eq!(all_applied(&dag).len(), 10);
}
