use tabmesh_testkit::test;

use tabmesh_abi::{
    decode_result, encode_result, is_method_name, BlobOp, Op, OpError, OpErrorKind, OpResult, Page,
    StorageOp, Value, MAX_ERROR_MESSAGE_BYTES, MAX_PATH,
};
use tabmesh_base::{CodecError, Hash};

fn every_op() -> Vec<Op<'static>> {
    let page = Page {
        offset: 3,
        limit: 10,
    };
    vec![
        Op::RegisterGet,
        Op::RegisterSet { value: b"v" },
        Op::RegisterClear,
        Op::CounterGet,
        Op::CounterIncrement { by: u64::MAX },
        Op::PnCounterGet,
        Op::PnCounterAdd { delta: -5 },
        Op::MapGet { key: b"k" },
        Op::MapInsert {
            key: b"k",
            value: b"",
        },
        Op::MapDelete { key: b"k" },
        Op::MapContains { key: b"" },
        Op::MapLen,
        Op::MapKeys(page),
        Op::SetAdd { member: b"m" },
        Op::SetRemove { member: b"m" },
        Op::SetContains { member: b"m" },
        Op::SetLen,
        Op::SetMembers(page),
        Op::ListGet { index: 4 },
        Op::ListLen,
        Op::ListInsert {
            index: 0,
            value: b"x",
        },
        Op::ListPush { value: b"y" },
        Op::ListSet {
            index: 1,
            value: b"z",
        },
        Op::ListRemove { index: 2 },
        Op::ListItems(page),
        Op::TextRead(Page {
            offset: 0,
            limit: 100_000,
        }),
        Op::TextLen,
        Op::TextInsert {
            pos: 1,
            text: "héllo",
        },
        Op::TextPush { text: "!" },
        Op::TextDelete { pos: 0, len: 2 },
    ]
}

#[test]
fn every_storage_op_round_trips() {
    for op in every_op() {
        for path in [vec![], vec![&b"a"[..], b"bb"]] {
            let original = StorageOp {
                field: "field",
                path,
                op,
            };
            let bytes = original.encode();
            assert_eq!(StorageOp::decode(&bytes), Ok(original.clone()), "{op:?}");
            // Every truncation is an error, never a panic.
            for cut in 0..bytes.len() {
                assert!(
                    StorageOp::decode(&bytes[..cut]).is_err(),
                    "{op:?} cut at {cut}"
                );
            }
        }
    }
}

#[test]
fn every_blob_op_round_trips() {
    let ops = [
        BlobOp::Create,
        BlobOp::Write {
            handle: 1,
            data: b"chunk",
        },
        BlobOp::Finish { handle: 1 },
        BlobOp::Open {
            id: Hash::of(b"blob"),
        },
        BlobOp::Read {
            handle: 2,
            max: 4096,
        },
        BlobOp::Close { handle: 2 },
    ];
    for op in ops {
        assert_eq!(BlobOp::decode(&op.encode()), Ok(op));
    }
}

#[test]
fn hostile_operation_encodings_are_refused() {
    let good = StorageOp {
        field: "f",
        path: vec![],
        op: Op::RegisterGet,
    }
    .encode();

    let mut newer = good.clone();
    newer[0] = 2;
    assert!(matches!(
        StorageOp::decode(&newer),
        Err(CodecError::UnknownVersion { found: 2, .. })
    ));

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        StorageOp::decode(&trailing),
        Err(CodecError::TrailingBytes(1))
    );

    let mut unknown = good.clone();
    unknown[1] = 0xee;
    assert!(matches!(
        StorageOp::decode(&unknown),
        Err(CodecError::InvalidTag { tag: 0xee, .. })
    ));

    let deep = StorageOp {
        field: "f",
        path: vec![&b"k"[..]; MAX_PATH + 1],
        op: Op::RegisterGet,
    }
    .encode();
    assert!(matches!(
        StorageOp::decode(&deep),
        Err(CodecError::TooLarge { what: "path", .. })
    ));

    let page = StorageOp {
        field: "f",
        path: vec![],
        op: Op::MapKeys(Page {
            offset: 0,
            limit: 5000,
        }),
    }
    .encode();
    assert!(matches!(
        StorageOp::decode(&page),
        Err(CodecError::TooLarge { .. })
    ));

    // A field name that is not UTF-8.
    let mut bad_utf8 = good;
    let at = bad_utf8.len() - 5; // the field's single byte, before the empty path count
    bad_utf8[at] = 0xff;
    assert_eq!(
        StorageOp::decode(&bad_utf8),
        Err(CodecError::Invalid("field name"))
    );
}

#[test]
fn results_round_trip_and_long_messages_are_truncated_on_a_char_boundary() {
    let results: Vec<OpResult> = vec![
        Ok(Value::Unit),
        Ok(Value::Bool(true)),
        Ok(Value::U64(7)),
        Ok(Value::U128(u128::MAX)),
        Ok(Value::I128(i128::MIN)),
        Ok(Value::Absent),
        Ok(Value::Bytes(b"bytes".to_vec())),
        Ok(Value::List(vec![b"a".to_vec(), Vec::new()])),
        Ok(Value::Text("text ✓".into())),
        Ok(Value::Id(Hash::of(b"x"))),
        Err(OpError::new(OpErrorKind::OutOfRange, "index 9 of 3")),
        Err(OpError::unsupported("blobs")),
    ];
    for r in results {
        assert_eq!(decode_result(&encode_result(&r)), Ok(r.clone()));
    }

    let long = Err(OpError::new(
        OpErrorKind::Other,
        "é".repeat(MAX_ERROR_MESSAGE_BYTES),
    ));
    let Err(e) = decode_result(&encode_result(&long)).expect("decodes") else {
        panic!("an error")
    };
    assert!(e.message.len() <= MAX_ERROR_MESSAGE_BYTES);
    assert!(e.message.chars().all(|c| c == 'é'));
}

#[test]
fn method_names_are_bounded_and_the_hook_prefix_is_reserved() {
    assert!(is_method_name("set"));
    assert!(!is_method_name(""));
    assert!(!is_method_name("__tabmesh_init"));
    assert!(!is_method_name(&"m".repeat(129)));
}
