//! DAG benchmarks: a linear chain added in order, the same chain delivered in reverse (one long
//! cascade), and `deltas_since` paging. No timings are asserted anywhere.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tabmesh_base::{DeltaId, DetRng, Hlc};
use tabmesh_dag::{CausalDelta, Dag, DagConfig};

type D = CausalDelta<Vec<u8>>;

fn id(n: u64) -> DeltaId {
    DeltaId(DetRng::new(n).bytes())
}

/// A chain of `n` deltas with 64-byte payloads: a genesis, then each naming the previous one.
fn chain(n: u64) -> Vec<D> {
    (0..n)
        .map(|i| {
            let payload = vec![(i % 251) as u8; 64];
            if i == 0 {
                CausalDelta::genesis(id(0), payload, Hlc::new(0, 0))
            } else {
                CausalDelta::new(id(i), vec![id(i - 1)], payload, Hlc::new(i, 0))
            }
        })
        .collect()
}

fn config(n: u64) -> DagConfig {
    DagConfig {
        max_pending: n as usize,
        ..DagConfig::default()
    }
}

fn ok(_: &D) -> Result<(), ()> {
    Ok(())
}

fn add_all(dag: &mut Dag<Vec<u8>>, deltas: Vec<D>) -> usize {
    let mut applied = 0;
    for d in deltas {
        if let Ok(tabmesh_dag::AddOutcome::Applied(c)) = dag.add(d, 0, ok) {
            applied += c.applied.len();
        }
    }
    applied
}

fn bench_add(c: &mut Criterion) {
    let mut group = c.benchmark_group("add");
    for n in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(n));
        let deltas = chain(n);
        group.bench_with_input(BenchmarkId::new("in_order", n), &deltas, |b, deltas| {
            b.iter_batched(
                || (Dag::new(config(n)), deltas.clone()),
                |(mut dag, ds)| {
                    let applied = add_all(&mut dag, ds);
                    assert_eq!(applied, n as usize);
                    dag
                },
                BatchSize::LargeInput,
            );
        });
        let mut reversed = deltas.clone();
        reversed.reverse();
        group.bench_with_input(
            BenchmarkId::new("reverse_cascade", n),
            &reversed,
            |b, deltas| {
                b.iter_batched(
                    || (Dag::new(config(n)), deltas.clone()),
                    |(mut dag, ds)| {
                        let applied = add_all(&mut dag, ds);
                        assert_eq!(applied, n as usize);
                        dag
                    },
                    BatchSize::LargeInput,
                );
            },
        );
    }
    group.finish();
}

/// Pages through `deltas_since(known)` 1 000 at a time; returns how many deltas came back.
fn page_through(dag: &Dag<Vec<u8>>, known: &[DeltaId]) -> usize {
    let mut cursor = None;
    let mut total = 0;
    while let Ok(page) = dag.deltas_since(known, cursor, 1_000) {
        total += page.deltas.len();
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    total
}

fn bench_since(c: &mut Criterion) {
    let mut group = c.benchmark_group("deltas_since");
    let n = 10_000u64;
    let mut dag = Dag::new(config(n));
    let _ = add_all(&mut dag, chain(n));

    // A peer 100 deltas behind: one page.
    let near = [id(n - 101)];
    group.throughput(Throughput::Elements(100));
    group.bench_function("behind_100_of_10k", |b| {
        b.iter(|| {
            let page = dag.deltas_since(&near, None, 1_000).map(|p| p.deltas.len());
            assert_eq!(page, Ok(100));
        });
    });

    // A peer with nothing: every page of 1 000 until the end.
    group.throughput(Throughput::Elements(n));
    group.bench_function("all_10k_in_pages_of_1000", |b| {
        b.iter(|| assert_eq!(page_through(&dag, &[]), n as usize));
    });

    // A peer half-way: 5 000 deltas in pages of 1 000.
    let half = [id(n / 2 - 1)];
    group.throughput(Throughput::Elements(n / 2));
    group.bench_function("half_of_10k_in_pages_of_1000", |b| {
        b.iter(|| assert_eq!(page_through(&dag, &half), (n / 2) as usize));
    });
    group.finish();
}

criterion_group!(benches, bench_add, bench_since);
criterion_main!(benches);
