use tabmesh_testkit::test;

use tabmesh_base::{CodecError, WriteBatch};
use tabmesh_storage::codec::{decode, encode, encoded_len};
use tabmesh_storage::{StoreError, MAX_BATCH, MAX_RECORD, RECORD_OVERHEAD};

use super::support::{deletes, puts, random_batch};

#[test]
fn random_batches_round_trip() {
    tabmesh_testkit::for_seeds(0..20, |_, rng| {
        for _ in 0..20 {
            let batch = random_batch(rng);
            let bytes = encode(&batch).unwrap();
            assert_eq!(bytes.len(), encoded_len(&batch));
            assert_eq!(decode(&bytes).unwrap(), batch);
        }
    });
}

#[test]
fn the_layout_is_version_count_then_tagged_ops() {
    let mut batch = puts(&[("k", "v")]);
    batch.extend(deletes(&["d"]));
    let bytes = encode(&batch).unwrap();
    #[rustfmt::skip]
    let expected = [
        1, // version
        2, 0, 0, 0, // two ops
        0, 1, 0, 0, 0, b'k', 1, 0, 0, 0, b'v', // put k = v
        1, 1, 0, 0, 0, b'd', // delete d
    ];
    assert_eq!(bytes, expected);
    assert_eq!(encode(&WriteBatch::new()).unwrap(), [1, 0, 0, 0, 0]);
}

#[test]
fn an_unknown_version_is_refused() {
    let mut bytes = encode(&puts(&[("k", "v")])).unwrap();
    bytes[0] = 2;
    assert_eq!(
        decode(&bytes),
        Err(CodecError::UnknownVersion {
            found: 2,
            supported: 1
        })
    );
}

#[test]
fn every_truncation_and_trailing_bytes_are_refused() {
    let mut batch = puts(&[("key", "value"), ("", "")]);
    batch.extend(deletes(&["gone"]));
    let bytes = encode(&batch).unwrap();
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode(&longer), Err(CodecError::TrailingBytes(1)));
}

#[test]
fn an_unknown_op_tag_is_refused() {
    let bytes = [1, 1, 0, 0, 0, 7, 0, 0, 0, 0];
    assert_eq!(
        decode(&bytes),
        Err(CodecError::InvalidTag {
            what: "batch op",
            tag: 7
        })
    );
}

#[test]
fn hostile_counts_and_lengths_are_refused_without_allocating() {
    // A count the input cannot hold.
    let bytes = [1, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(
        decode(&bytes),
        Err(CodecError::TooLarge { .. } | CodecError::UnexpectedEnd { .. })
    ));
    // A key length over the bound.
    let bytes = [1, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        decode(&bytes),
        Err(CodecError::TooLarge { what: "key", .. })
    ));
    // A key length under the bound but over the input.
    let bytes = [1, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    assert!(matches!(
        decode(&bytes),
        Err(CodecError::UnexpectedEnd { .. })
    ));
}

#[test]
fn a_batch_over_max_record_is_refused() {
    assert_eq!(MAX_BATCH + RECORD_OVERHEAD, MAX_RECORD);
    // One put: version, count, tag, two lengths, a one-byte key.
    let overhead = 1 + 4 + 1 + 4 + 4 + 1;
    let mut fits = WriteBatch::new();
    fits.put(b"k".to_vec(), vec![0; MAX_BATCH - overhead]);
    assert_eq!(encoded_len(&fits), MAX_BATCH);
    let mut over = WriteBatch::new();
    over.put(b"k".to_vec(), vec![0; MAX_BATCH - overhead + 1]);
    match encode(&over) {
        Err(StoreError::TooLarge { len, max }) => {
            assert_eq!((len, max), (MAX_RECORD + 1, MAX_RECORD));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}
