//! Blob benchmarks, in bytes per second: hashing one chunk, chunking a blob through `BlobWriter`,
//! decoding (and verifying) the largest manifest, and a whole fetch from two in-memory holders
//! (every chunk verified by the holder before it is served and by the fetch before it is stored).
//! No timings are asserted anywhere.
//!
//! `cargo bench -p tabmesh-blobs -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tabmesh_base::{DetRng, Hash, NodeId};
use tabmesh_blobs::{
    chunk_id, serve, BlobRequest, BlobWriter, ChunkId, Fetch, FetchAction, Limits, Manifest,
    MemoryBlobs, CHUNK_SIZE, MAX_BLOB_LEN, MAX_CHUNKS,
};

const MIB: usize = 1024 * 1024;

fn bytes(len: usize) -> Vec<u8> {
    let mut rng = DetRng::new(len as u64);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    let chunk = bytes(CHUNK_SIZE);
    group.throughput(Throughput::Bytes(CHUNK_SIZE as u64));
    group.bench_function("chunk_id_256KiB", |b| {
        b.iter(|| chunk_id(black_box(&chunk)))
    });
    group.finish();
}

fn chunking(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk");
    group.sample_size(20);
    let len = 16 * MIB;
    let data = bytes(len);
    group.throughput(Throughput::Bytes(len as u64));
    for piece in [64 * 1024, MIB] {
        group.bench_with_input(
            BenchmarkId::new("writer_16MiB", piece),
            &piece,
            |b, &piece| {
                b.iter(|| {
                    let mut w = BlobWriter::new();
                    let mut n = 0;
                    for p in data.chunks(piece) {
                        n += w.write(p).expect("write").len();
                    }
                    let (last, manifest) = w.finish();
                    assert_eq!(n + usize::from(last.is_some()), 64);
                    manifest
                });
            },
        );
    }
    group.finish();
}

fn manifests(c: &mut Criterion) {
    let mut group = c.benchmark_group("manifest");
    let ids: Vec<ChunkId> = (0..MAX_CHUNKS)
        .map(|i| ChunkId::from(Hash::of(&i.to_le_bytes())))
        .collect();
    let manifest = Manifest::new(MAX_BLOB_LEN, ids).expect("manifest");
    let encoded = manifest.encode();
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("decode_largest", |b| {
        b.iter(|| Manifest::decode(black_box(&encoded)).expect("decode"));
    });
    group.bench_function("encode_largest", |b| {
        b.iter(|| black_box(&manifest).encode())
    });
    group.finish();
}

/// One whole fetch of `data`'s blob from two holders sharing `store`, answers delivered in order.
fn fetch_once(store: &MemoryBlobs, manifest: &Manifest) -> u64 {
    let holders = [NodeId([1; 32]), NodeId([2; 32])];
    let mut fetch =
        Fetch::new(0, manifest.id, holders, Limits::default(), 1).expect("limits are valid");
    let mut queue = std::collections::VecDeque::new();
    let mut stored = 0;
    loop {
        while let Some(action) = fetch.poll_action() {
            match action {
                FetchAction::Request { peer, what } => queue.push_back((peer, what)),
                FetchAction::Store { bytes, .. } => stored += bytes.len() as u64,
                FetchAction::Done(_) => return stored,
                FetchAction::Failed(e) => panic!("{e}"),
                _ => {}
            }
        }
        let (peer, what) = queue.pop_front().expect("a request to answer");
        let served = serve(
            store,
            &BlobRequest {
                blob: manifest.id,
                what,
            },
        );
        fetch.on_response(0, peer, served.response);
    }
}

fn fetching(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch");
    group.sample_size(20);
    let len = 16 * MIB;
    let mut store = MemoryBlobs::new();
    let manifest = store.add(&bytes(len)).expect("add");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("two_holders_16MiB", |b| {
        b.iter(|| assert_eq!(fetch_once(&store, &manifest), len as u64));
    });
    group.finish();
}

criterion_group!(benches, hashing, chunking, manifests, fetching);
criterion_main!(benches);
