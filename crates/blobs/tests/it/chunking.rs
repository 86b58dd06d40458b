use tabmesh_testkit::test;

use tabmesh_base::{hash_parts, DetRng, Hasher};
use tabmesh_blobs::{
    blob_id, chunk_bytes, chunk_count, chunk_id, BlobError, BlobWriter, ChunkId, Manifest,
    CHUNK_SIZE, MAX_BLOB_LEN, MAX_CHUNKS, MAX_MANIFEST_LEN,
};

use super::support::data;

/// The ids as the format defines them, computed without the crate's helpers.
fn expected_ids(bytes: &[u8]) -> (Vec<ChunkId>, [u8; 32]) {
    let ids: Vec<ChunkId> = bytes
        .chunks(CHUNK_SIZE)
        .map(|c| ChunkId::from(hash_parts(b"tabmesh/blob-chunk/v1", &[c])))
        .collect();
    let mut h = Hasher::new(b"tabmesh/blob/v1");
    h.fixed(&(bytes.len() as u64).to_le_bytes());
    for id in &ids {
        h.fixed(id.as_bytes());
    }
    (ids, h.finish().0)
}

#[test]
fn boundaries_give_the_defined_ids_and_manifests_that_round_trip() {
    let sizes = [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        2 * CHUNK_SIZE,
        5 * 1024 * 1024 + 7,
    ];
    for len in sizes {
        let bytes = data(len, len as u64);
        let (chunks, manifest) = chunk_bytes(&bytes).unwrap();
        let (ids, id) = expected_ids(&bytes);
        assert_eq!(manifest.id.0, id, "len {len}");
        assert_eq!(manifest.len, len as u64);
        assert_eq!(manifest.chunks, ids, "len {len}");
        assert_eq!(chunks.len(), len.div_ceil(CHUNK_SIZE), "len {len}");
        assert_eq!(manifest.chunk_count() as usize, chunks.len());
        assert_eq!(chunk_count(len as u64) as usize, chunks.len());
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index as usize, i);
            assert_eq!(c.id, ids[i]);
            assert_eq!(c.id, chunk_id(&c.bytes));
            let last = i + 1 == chunks.len();
            if !last {
                assert_eq!(c.bytes.len(), CHUNK_SIZE, "len {len}: chunk {i} is full");
            } else {
                assert!((1..=CHUNK_SIZE).contains(&c.bytes.len()));
            }
            assert_eq!(manifest.chunk_len(c.index), Some(c.bytes.len()));
            manifest.verify_chunk(c.index, &c.bytes).unwrap();
        }
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
        assert_eq!(joined, bytes);
        assert_eq!(blob_id(manifest.len, &manifest.chunks), manifest.id);
        manifest.verify().unwrap();
        let encoded = manifest.encode();
        assert_eq!(encoded.len(), 1 + 32 + 8 + 4 + 32 * chunks.len());
        assert_eq!(Manifest::decode(&encoded).unwrap(), manifest);
        assert_eq!(
            Manifest::decode_for(&manifest.id, &encoded).unwrap(),
            manifest
        );
        // Same bytes, same id: ids are a function of the content only.
        assert_eq!(chunk_bytes(&bytes).unwrap().1, manifest);
    }
}

#[test]
fn ids_are_stable() {
    // Pinned: a change here changes every blob id ever shared.
    let (_, empty) = chunk_bytes(b"").unwrap();
    assert_eq!(
        empty.id.to_string(),
        "2285ec874fd6acbc8ecf58e9b5cde472c7d048d5f0e06ef9dd0ae95d10075410"
    );
    assert!(empty.chunks.is_empty());
    let (_, one) = chunk_bytes(b"x").unwrap();
    assert_eq!(
        one.chunks[0].to_string(),
        "2449ddae625a204d24aadab1c570b8bbc5672dfee6550259606afc631a1ffa45"
    );
    assert_eq!(
        one.id.to_string(),
        "8adcd77b4858323538013e1210e4440d307e58e6645f68146eb45b723de4297d"
    );
    // Length is part of the id: a blob is never confused with its prefix.
    let zeros = vec![0u8; CHUNK_SIZE + 1];
    let (_, a) = chunk_bytes(&zeros).unwrap();
    let (_, b) = chunk_bytes(&zeros[..CHUNK_SIZE]).unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.chunks[0], b.chunks[0]);
}

#[test]
fn streaming_in_odd_pieces_gives_the_one_shot_result() {
    let bytes = data(3 * CHUNK_SIZE + 12_345, 9);
    let (one_chunks, one) = chunk_bytes(&bytes).unwrap();
    let mut rng = DetRng::new(4);
    for round in 0..4 {
        let mut w = BlobWriter::new();
        let mut chunks = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = match round {
                0 => 1,
                1 => 7919,
                2 => CHUNK_SIZE + 3,
                _ => 1 + rng.index(3 * CHUNK_SIZE / 2),
            }
            .min(rest.len());
            let (piece, tail) = rest.split_at(n);
            // An empty write changes nothing.
            assert!(w.write(&[]).unwrap().is_empty());
            for c in w.write(piece).unwrap() {
                // A chunk is returned as soon as it fills.
                assert_eq!(c.index as usize, chunks.len());
                assert_eq!(w.len(), (bytes.len() - tail.len()) as u64);
                chunks.push(c);
            }
            rest = tail;
            // Never more than one partial chunk held back.
            assert!(w.len() as usize - chunks.len() * CHUNK_SIZE < CHUNK_SIZE);
        }
        let (last, manifest) = w.finish();
        chunks.extend(last);
        assert_eq!(manifest, one, "round {round}");
        assert_eq!(chunks, one_chunks, "round {round}");
    }
}

#[test]
fn a_length_multiple_of_the_chunk_size_has_no_partial_chunk() {
    let mut w = BlobWriter::new();
    assert!(w.is_empty());
    let full = w.write(&vec![1u8; 2 * CHUNK_SIZE]).unwrap();
    assert_eq!(full.len(), 2);
    let (last, manifest) = w.finish();
    assert!(last.is_none());
    assert_eq!(manifest.chunks.len(), 2);
    let (last, empty) = BlobWriter::new().finish();
    assert!(last.is_none());
    assert_eq!(empty.len, 0);
    assert_eq!(empty.chunk_count(), 0);
}

#[test]
fn the_bounds_fit_together_and_an_over_long_blob_is_refused() {
    assert_eq!(u64::from(MAX_CHUNKS) * CHUNK_SIZE as u64, MAX_BLOB_LEN);
    assert_eq!(MAX_MANIFEST_LEN, 1 + 32 + 8 + 4 + 32 * 16_384);
    assert_eq!(chunk_count(MAX_BLOB_LEN), MAX_CHUNKS);
    assert_eq!(chunk_count(MAX_BLOB_LEN + 1), MAX_CHUNKS + 1);
    let err = Manifest::new(MAX_BLOB_LEN + 1, vec![]).unwrap_err();
    assert_eq!(
        err,
        BlobError::TooLarge {
            len: MAX_BLOB_LEN + 1,
            max: MAX_BLOB_LEN
        }
    );
    assert!(matches!(
        Manifest::new(10, vec![]),
        Err(BlobError::BadManifest { .. })
    ));
}
