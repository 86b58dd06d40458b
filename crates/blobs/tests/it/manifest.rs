use tabmesh_testkit::test;

use tabmesh_base::{codec, CodecError};
use tabmesh_blobs::{
    chunk_bytes, BlobError, BlobId, ChunkId, Manifest, Slice, CHUNK_SIZE, MAX_BLOB_LEN, MAX_CHUNKS,
};

use super::support::data;

fn sample() -> (Vec<u8>, Manifest) {
    let bytes = data(3 * CHUNK_SIZE + 100, 1);
    let (_, m) = chunk_bytes(&bytes).unwrap();
    (bytes, m)
}

/// Offsets in the encoding: version (1), id (32), length (8), count (4), ids (32 each).
const LEN_AT: usize = 33;
const COUNT_AT: usize = 41;
const IDS_AT: usize = 45;

fn bad_manifest(r: Result<Manifest, BlobError>) -> bool {
    matches!(r, Err(BlobError::BadManifest { .. }))
}

#[test]
fn a_tampered_length_is_refused() {
    let (_, m) = sample();
    let good = m.encode();
    // Same chunk count, another length: the id no longer matches.
    let mut e = good.clone();
    e[LEN_AT] ^= 1;
    assert!(bad_manifest(Manifest::decode(&e)));
    // A length that needs another chunk count.
    let mut e = good.clone();
    e[LEN_AT..LEN_AT + 8].copy_from_slice(&(10 * CHUNK_SIZE as u64).to_le_bytes());
    assert!(bad_manifest(Manifest::decode(&e)));
    // And through the struct: fields changed by hand fail `verify`.
    let mut forged = m.clone();
    forged.len -= 1;
    assert!(matches!(
        forged.verify(),
        Err(BlobError::BadManifest { .. })
    ));
}

#[test]
fn a_tampered_chunk_id_is_refused() {
    let (_, m) = sample();
    let good = m.encode();
    for chunk in 0..m.chunks.len() {
        let mut e = good.clone();
        e[IDS_AT + 32 * chunk + 5] ^= 0x80;
        assert!(bad_manifest(Manifest::decode(&e)), "chunk {chunk}");
    }
    // Swapping two ids keeps the set but not the order.
    let mut forged = m.clone();
    forged.chunks.swap(0, 1);
    assert!(matches!(
        forged.verify(),
        Err(BlobError::BadManifest { .. })
    ));
    // A consistent manifest with a different id (recomputed) is a different blob.
    let mut other = m.clone();
    other.chunks[2] = ChunkId([9; 32]);
    let other = Manifest::new(other.len, other.chunks).unwrap();
    assert_ne!(other.id, m.id);
    assert_eq!(
        Manifest::decode_for(&m.id, &other.encode()),
        Err(BlobError::WrongBlob {
            expected: m.id,
            found: other.id
        })
    );
    // A tampered id.
    let mut e = good;
    e[1] ^= 1;
    assert!(bad_manifest(Manifest::decode(&e)));
}

#[test]
fn malformed_encodings_are_refused_with_a_codec_error() {
    let (_, m) = sample();
    let good = m.encode();
    // Unknown version.
    let mut e = good.clone();
    e[0] = 9;
    assert!(matches!(
        Manifest::decode(&e),
        Err(BlobError::Codec(CodecError::UnknownVersion {
            found: 9,
            ..
        }))
    ));
    // Truncated anywhere.
    for cut in [
        0,
        1,
        20,
        LEN_AT + 3,
        COUNT_AT + 2,
        IDS_AT + 31,
        good.len() - 1,
    ] {
        assert!(
            matches!(Manifest::decode(&good[..cut]), Err(BlobError::Codec(_))),
            "cut at {cut}"
        );
    }
    // Trailing bytes.
    let mut e = good.clone();
    e.push(0);
    assert_eq!(
        Manifest::decode(&e),
        Err(BlobError::Codec(CodecError::TrailingBytes(1)))
    );
    // A count over the bound is refused before anything is allocated.
    let mut e = good.clone();
    e[COUNT_AT..COUNT_AT + 4].copy_from_slice(&(MAX_CHUNKS + 1).to_le_bytes());
    assert!(matches!(
        Manifest::decode(&e),
        Err(BlobError::Codec(CodecError::TooLarge { .. }))
    ));
    // A huge count the input cannot hold.
    let mut e = good.clone();
    e[COUNT_AT..COUNT_AT + 4].copy_from_slice(&MAX_CHUNKS.to_le_bytes());
    assert!(matches!(
        Manifest::decode(&e),
        Err(BlobError::Codec(CodecError::UnexpectedEnd { .. }))
    ));
    // A length over the maximum blob.
    let mut e = good;
    e[LEN_AT..LEN_AT + 8].copy_from_slice(&(MAX_BLOB_LEN + 1).to_le_bytes());
    assert!(matches!(
        Manifest::decode(&e),
        Err(BlobError::TooLarge { .. })
    ));
    // Garbage never panics.
    for n in 0..64u8 {
        let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
        let _ = Manifest::decode(&junk);
    }
}

#[test]
fn a_manifest_of_the_largest_blob_round_trips() {
    let chunks: Vec<ChunkId> = (0..MAX_CHUNKS)
        .map(|i| ChunkId::from(tabmesh_base::Hash::of(&i.to_le_bytes())))
        .collect();
    let m = Manifest::new(MAX_BLOB_LEN, chunks).unwrap();
    let e = m.encode();
    assert_eq!(e.len(), tabmesh_blobs::MAX_MANIFEST_LEN);
    assert_eq!(Manifest::decode(&e).unwrap(), m);
    assert_eq!(m.chunk_len(MAX_CHUNKS - 1), Some(CHUNK_SIZE));
    assert_eq!(m.chunk_len(MAX_CHUNKS), None);
}

#[test]
fn chunk_verification_checks_index_length_and_hash() {
    let bytes = data(2 * CHUNK_SIZE + 10, 3);
    let (chunks, m) = chunk_bytes(&bytes).unwrap();
    m.verify_chunk(2, &chunks[2].bytes).unwrap();
    assert_eq!(
        m.verify_chunk(1, &chunks[2].bytes),
        Err(BlobError::ChunkMismatch { index: 1 })
    );
    let mut longer = chunks[2].bytes.clone();
    longer.push(0);
    assert_eq!(
        m.verify_chunk(2, &longer),
        Err(BlobError::ChunkMismatch { index: 2 })
    );
    assert_eq!(
        m.verify_chunk(3, &chunks[2].bytes),
        Err(BlobError::ChunkIndex { index: 3, count: 3 })
    );
}

#[test]
fn slices_name_the_chunks_holding_a_range() {
    let (bytes, m) = sample();
    let len = bytes.len() as u64;
    let c = CHUNK_SIZE as u64;
    let read = |start: u64, end: u64| -> Vec<u8> {
        let mut out = Vec::new();
        for s in m.slices(start..end).unwrap() {
            assert!(!s.is_empty());
            let off = s.index as usize * CHUNK_SIZE;
            let chunk = &bytes[off..(off + CHUNK_SIZE).min(bytes.len())];
            assert_eq!(s.offset, off as u64 + s.start as u64);
            out.extend_from_slice(&chunk[s.range()]);
        }
        out
    };
    for (start, end) in [
        (0, 0),
        (0, 1),
        (0, len),
        (c - 1, c + 1),
        (c, 2 * c),
        (5, 3 * c + 50),
        (len - 1, len),
        (len, len),
    ] {
        assert_eq!(
            read(start, end),
            bytes[start as usize..end as usize],
            "{start}..{end}"
        );
    }
    let one: Vec<Slice> = m.slices(c + 10..c + 20).unwrap().collect();
    assert_eq!(
        one,
        vec![Slice {
            index: 1,
            start: 10,
            end: 20,
            offset: c + 10
        }]
    );
    assert_eq!(one[0].len(), 10);
    let across: Vec<u32> = m
        .slices(c - 1..3 * c + 1)
        .unwrap()
        .map(|s| s.index)
        .collect();
    assert_eq!(across, vec![0, 1, 2, 3]);
    assert_eq!(m.chunk_of(0), Some(0));
    assert_eq!(m.chunk_of(c), Some(1));
    assert_eq!(m.chunk_of(len - 1), Some(3));
    assert_eq!(m.chunk_of(len), None);
    assert_eq!(m.chunk_offset(3), Some(3 * c));
    assert_eq!(m.chunk_offset(4), None);
    assert_eq!(m.chunk_len(3), Some(100));
    assert!(matches!(
        m.slices(0..len + 1),
        Err(BlobError::OutOfRange { .. })
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = m.slices(10..5);
    assert!(matches!(backwards, Err(BlobError::OutOfRange { .. })));
    let (_, empty) = chunk_bytes(b"").unwrap();
    assert_eq!(empty.slices(0..0).unwrap().count(), 0);
}

#[test]
fn ids_format_as_hex_and_convert() {
    let (_, m) = sample();
    let hex = m.id.to_string();
    assert_eq!(hex.len(), 64);
    let back = BlobId::from(tabmesh_base::Hash::from_hex(&hex).unwrap());
    assert_eq!(back, m.id);
    assert!(format!("{:?}", m.id).starts_with("BlobId("));
    let mut w = codec::Writer::new();
    w.id(&m.id);
    let bytes = w.finish();
    let mut r = codec::Reader::new(&bytes).unwrap();
    assert_eq!(r.id::<BlobId>().unwrap(), m.id);
}
