//! Benchmarks of the state: writes with Merkle upkeep into wide maps, remote apply, text edits.
//!
//! `cargo bench -p tabmesh-state -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tabmesh_base::{DetRng, Hlc, MemberId};
use tabmesh_state::{Action, State};

const AUTHOR: MemberId = MemberId([1; 32]);
const PEER: MemberId = MemberId([2; 32]);

/// A state whose map `m` has `k` register entries (written in transactions of 10 000).
fn wide_map(k: u32) -> State {
    let mut s = State::new(b"bench/");
    let mut i = 0;
    while i < k {
        let mut t = s.txn(AUTHOR, Hlc::new(1_000 + u64::from(i), 0));
        let mut m = t.map("m").expect("map");
        for j in i..k.min(i + 10_000) {
            m.insert(&j.to_le_bytes(), b"initial value")
                .expect("insert");
        }
        t.commit();
        i += 10_000;
    }
    s
}

/// One write to an existing entry of a map with K entries: the cost should barely grow with K.
fn map_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_write");
    group.sample_size(30);
    for k in [1_000u32, 10_000, 100_000] {
        let mut state = wide_map(k);
        let mut n = 0u64;
        group.bench_with_input(BenchmarkId::new("update_one_entry", k), &k, |b, &k| {
            b.iter(|| {
                n += 1;
                let mut t = state.txn(AUTHOR, Hlc::new(1_000_000 + n, 0));
                let key = (n as u32).wrapping_mul(2_654_435_761) % k;
                t.map("m")
                    .expect("map")
                    .insert(&key.to_le_bytes(), b"v")
                    .expect("insert");
                black_box(t.commit())
            });
        });
        let mut fresh = 0u32;
        group.bench_with_input(BenchmarkId::new("insert_new_entry", k), &k, |b, _| {
            b.iter(|| {
                fresh += 1;
                let mut t = state.txn(AUTHOR, Hlc::new(2_000_000 + u64::from(fresh), 0));
                let key = [&b"new"[..], &fresh.to_le_bytes()].concat();
                t.map("m").expect("map").insert(&key, b"v").expect("insert");
                black_box(t.commit())
            });
        });
    }
    group.finish();
}

/// Applying a peer's delta: one entry update, and a 100-entry transaction, into a 10k-entry map.
fn remote_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("remote_apply");
    group.sample_size(30);
    let base = wide_map(10_000);
    let mut peer = base.clone();
    let mut t = peer.txn(PEER, Hlc::new(5_000_000, 0));
    t.map("m")
        .expect("map")
        .insert(&7u32.to_le_bytes(), b"peer")
        .expect("insert");
    let one: Vec<Action> = t.commit().actions;
    let mut t = peer.txn(PEER, Hlc::new(5_000_001, 0));
    let mut m = t.map("m").expect("map");
    for i in 0..100u32 {
        m.insert(&(i * 97).to_le_bytes(), b"peer").expect("insert");
    }
    let hundred: Vec<Action> = t.commit().actions;
    for (name, actions) in [("one_entry", &one), ("hundred_entries", &hundred)] {
        group.throughput(Throughput::Elements(actions.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || base.clone(),
                // Return the state so dropping it is not timed.
                |mut s| {
                    let batch = s.apply(actions).expect("apply");
                    (s, black_box(batch))
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// Typing one character per transaction at random positions of a text of N characters.
fn text_inserts(c: &mut Criterion) {
    let mut group = c.benchmark_group("text_insert");
    group.sample_size(30);
    for n in [1_000usize, 10_000, 100_000] {
        let mut state = State::new(b"bench/");
        let chunk: String = "lorem ipsum dolor sit amet "
            .chars()
            .cycle()
            .take(10_000)
            .collect();
        let mut written = 0;
        while written < n {
            let mut t = state.txn(AUTHOR, Hlc::new(1_000 + written as u64, 0));
            let take: String = chunk.chars().take((n - written).min(10_000)).collect();
            t.text("doc")
                .expect("text")
                .push_str(&take)
                .expect("insert");
            t.commit();
            written += take.chars().count();
        }
        let mut rng = DetRng::new(n as u64);
        let mut k = 0u64;
        group.bench_with_input(BenchmarkId::new("one_char_random_pos", n), &n, |b, _| {
            b.iter(|| {
                k += 1;
                let mut t = state.txn(AUTHOR, Hlc::new(10_000_000 + k, 0));
                let mut d = t.text("doc").expect("text");
                let pos = rng.index(d.view().len() + 1);
                d.insert(pos, "x").expect("insert");
                black_box(t.commit())
            });
        });
    }
    let mut state = State::new(b"bench/");
    let para: String = "The quick brown fox jumps over the lazy dog. ".repeat(23); // ~1 KiB
    group.throughput(Throughput::Elements(para.chars().count() as u64));
    let mut k = 0u64;
    group.bench_function("paste_1k_chars", |b| {
        b.iter(|| {
            k += 1;
            let mut t = state.txn(AUTHOR, Hlc::new(20_000_000 + k, 0));
            t.text("doc")
                .expect("text")
                .insert(0, &para)
                .expect("insert");
            black_box(t.commit())
        });
    });
    group.finish();
}

criterion_group!(benches, map_writes, remote_apply, text_inserts);
criterion_main!(benches);
