use tabmesh_testkit::test;

use tabmesh_base::CodecError;
use tabmesh_blobs::{
    chunk_bytes, serve, BlobError, BlobId, BlobLookup, BlobRequest, BlobResponse, Manifest,
    MemoryBlobs, Served, Want, CHUNK_SIZE, MAX_MANIFEST_LEN,
};

use super::support::{data, full_store, partial_store};

fn ask(lookup: &impl BlobLookup, blob: BlobId, what: Want) -> Served {
    serve(lookup, &BlobRequest { blob, what })
}

#[test]
fn serves_the_manifest_chunks_and_missing() {
    let bytes = data(2 * CHUNK_SIZE + 5, 1);
    let (store, m) = full_store(&bytes);
    let Served { response, corrupt } = ask(&store, m.id, Want::Manifest);
    assert_eq!(corrupt, None);
    let BlobResponse::Manifest {
        blob,
        bytes: encoded,
    } = response
    else {
        panic!("{response:?}")
    };
    assert_eq!(blob, m.id);
    assert_eq!(Manifest::decode_for(&m.id, &encoded).unwrap(), m);
    for i in 0..3 {
        let served = ask(&store, m.id, Want::Chunk(i));
        let BlobResponse::Chunk {
            index, bytes: c, ..
        } = served.response
        else {
            panic!()
        };
        assert_eq!(index, i);
        m.verify_chunk(i, &c).unwrap();
    }
    // Past the end, and an unknown blob: missing, not an error.
    for (blob, what) in [
        (m.id, Want::Chunk(3)),
        (m.id, Want::Chunk(u32::MAX)),
        (BlobId([1; 32]), Want::Manifest),
        (BlobId([1; 32]), Want::Chunk(0)),
    ] {
        let served = ask(&store, blob, what);
        assert_eq!(
            served,
            Served {
                response: BlobResponse::Missing { blob, what },
                corrupt: None
            }
        );
    }
    // A holder of some chunks only.
    let partial = partial_store(&bytes, |i| i == 1);
    assert!(matches!(
        ask(&partial, m.id, Want::Chunk(0)).response,
        BlobResponse::Missing { .. }
    ));
    assert!(matches!(
        ask(&partial, m.id, Want::Chunk(1)).response,
        BlobResponse::Chunk { index: 1, .. }
    ));
    assert_eq!(partial.held(&m.id), vec![1]);
    assert!(!partial.is_complete(&m.id));
    assert_eq!(partial.read(&m.id), None);
    assert!(store.is_complete(&m.id));
    assert_eq!(store.read(&m.id), Some(bytes));
}

/// A store whose chunk 1 is damaged.
struct Damaged {
    manifest: Manifest,
    chunks: Vec<Vec<u8>>,
}

impl BlobLookup for Damaged {
    fn manifest(&self, blob: &BlobId) -> Option<&Manifest> {
        (*blob == self.manifest.id).then_some(&self.manifest)
    }
    fn chunk(&self, blob: &BlobId, index: u32) -> Option<&[u8]> {
        (*blob == self.manifest.id)
            .then(|| self.chunks.get(index as usize).map(Vec::as_slice))
            .flatten()
    }
}

#[test]
fn a_damaged_chunk_is_answered_missing_and_reported() {
    let bytes = data(2 * CHUNK_SIZE + 5, 2);
    let (chunks, manifest) = chunk_bytes(&bytes).unwrap();
    let mut chunks: Vec<Vec<u8>> = chunks.into_iter().map(|c| c.bytes).collect();
    chunks[1][100] ^= 1;
    let store = Damaged { manifest, chunks };
    let id = store.manifest.id;
    let served = ask(&store, id, Want::Chunk(1));
    assert_eq!(
        served,
        Served {
            response: BlobResponse::Missing {
                blob: id,
                what: Want::Chunk(1)
            },
            corrupt: Some(1)
        }
    );
    assert!(matches!(
        ask(&store, id, Want::Chunk(0)).response,
        BlobResponse::Chunk { index: 0, .. }
    ));
}

#[test]
fn memory_blobs_verify_what_they_store() {
    let bytes = data(CHUNK_SIZE + 1, 3);
    let (chunks, m) = chunk_bytes(&bytes).unwrap();
    let mut s = MemoryBlobs::new();
    assert_eq!(
        s.insert_chunk(&m.id, 0, chunks[0].bytes.clone()),
        Err(BlobError::UnknownBlob { blob: m.id })
    );
    let mut forged = m.clone();
    forged.len += 1;
    assert!(s.insert_manifest(forged).is_err());
    s.insert_manifest(m.clone()).unwrap();
    assert_eq!(
        s.insert_chunk(&m.id, 0, chunks[1].bytes.clone()),
        Err(BlobError::ChunkMismatch { index: 0 })
    );
    assert_eq!(
        s.insert_chunk(&m.id, 2, chunks[1].bytes.clone()),
        Err(BlobError::ChunkIndex { index: 2, count: 2 })
    );
    s.insert_chunk(&m.id, 1, chunks[1].bytes.clone()).unwrap();
    s.insert_chunk(&m.id, 0, chunks[0].bytes.clone()).unwrap();
    assert_eq!(s.read(&m.id), Some(bytes));
    assert!(s.remove_chunk(&m.id, 0));
    assert!(!s.remove_chunk(&m.id, 0));
    assert_eq!(s.held(&m.id), vec![1]);
    assert!(s.remove(&m.id));
    assert!(s.held(&m.id).is_empty());
}

#[test]
fn requests_and_responses_round_trip_through_their_codec() {
    let blob = BlobId([4; 32]);
    for what in [Want::Manifest, Want::Chunk(0), Want::Chunk(u32::MAX)] {
        let r = BlobRequest { blob, what };
        assert_eq!(BlobRequest::decode(&r.encode()).unwrap(), r);
    }
    let responses = [
        BlobResponse::Manifest {
            blob,
            bytes: vec![1, 2, 3],
        },
        BlobResponse::Chunk {
            blob,
            index: 7,
            bytes: vec![9; CHUNK_SIZE],
        },
        BlobResponse::Chunk {
            blob,
            index: 0,
            bytes: vec![],
        },
        BlobResponse::Missing {
            blob,
            what: Want::Chunk(3),
        },
        BlobResponse::Missing {
            blob,
            what: Want::Manifest,
        },
    ];
    for r in responses {
        assert_eq!(BlobResponse::decode(&r.encode()).unwrap(), r);
        assert_eq!(*r.blob(), blob);
    }
}

#[test]
fn oversized_or_malformed_messages_are_refused() {
    let blob = BlobId([4; 32]);
    let too_big = BlobResponse::Chunk {
        blob,
        index: 0,
        bytes: vec![0; CHUNK_SIZE + 1],
    };
    assert!(matches!(
        BlobResponse::decode(&too_big.encode()),
        Err(BlobError::Codec(CodecError::TooLarge { what: "chunk", .. }))
    ));
    let too_big = BlobResponse::Manifest {
        blob,
        bytes: vec![0; MAX_MANIFEST_LEN + 1],
    };
    assert!(matches!(
        BlobResponse::decode(&too_big.encode()),
        Err(BlobError::Codec(CodecError::TooLarge {
            what: "manifest",
            ..
        }))
    ));
    let mut bad_tag = BlobResponse::Missing {
        blob,
        what: Want::Manifest,
    }
    .encode();
    bad_tag[1] = 0x7f;
    assert!(matches!(
        BlobResponse::decode(&bad_tag),
        Err(BlobError::Codec(CodecError::InvalidTag { .. }))
    ));
    let mut bad_want = BlobRequest {
        blob,
        what: Want::Manifest,
    }
    .encode();
    *bad_want.last_mut().unwrap() = 9;
    assert!(matches!(
        BlobRequest::decode(&bad_want),
        Err(BlobError::Codec(CodecError::InvalidTag {
            what: "want",
            ..
        }))
    ));
    let mut trailing = BlobRequest {
        blob,
        what: Want::Chunk(1),
    }
    .encode();
    trailing.push(0);
    assert!(BlobRequest::decode(&trailing).is_err());
    for n in 0..80u8 {
        let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(91) ^ 1).collect();
        let _ = BlobRequest::decode(&junk);
        let _ = BlobResponse::decode(&junk);
    }
}
