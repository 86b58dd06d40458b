use tabmesh_base::{
    codec::{Reader, Writer, VERSION},
    CodecError, EntityId, Hash,
};
use tabmesh_testkit::{for_seeds, test};

#[test]
fn round_trip_of_every_primitive() {
    let id = EntityId::from(Hash::of(b"x"));
    let mut w = Writer::new();
    w.u8(7)
        .bool(true)
        .u32(0xdead_beef)
        .u64(u64::MAX)
        .i64(-5)
        .id(&id)
        .hash(&Hash::ZERO);
    w.bytes(b"hello").raw(b"zz");
    let bytes = w.finish();
    assert_eq!(bytes[0], VERSION);

    let mut r = Reader::new(&bytes).expect("version");
    assert_eq!(r.u8(), Ok(7));
    assert_eq!(r.bool(), Ok(true));
    assert_eq!(r.u32(), Ok(0xdead_beef));
    assert_eq!(r.u64(), Ok(u64::MAX));
    assert_eq!(r.i64(), Ok(-5));
    assert_eq!(r.id::<EntityId>(), Ok(id));
    assert_eq!(r.hash(), Ok(Hash::ZERO));
    assert_eq!(r.bytes("greeting", 5), Ok(&b"hello"[..]));
    assert_eq!(r.raw(2), Ok(&b"zz"[..]));
    assert_eq!(r.finish(), Ok(()));
}

#[test]
fn unknown_version_is_a_typed_error() {
    let err = Reader::new(&[VERSION + 1, 0, 0]).expect_err("newer version");
    assert_eq!(
        err,
        CodecError::UnknownVersion {
            found: VERSION + 1,
            supported: VERSION
        }
    );
    assert!(err.to_string().contains("unknown encoding version"));
    assert!(matches!(
        Reader::new(&[]),
        Err(CodecError::UnexpectedEnd { .. })
    ));
}

#[test]
fn bounds_and_truncation_are_typed_errors() {
    let mut w = Writer::new();
    w.bytes(&[1; 10]);
    let bytes = w.finish();
    let mut r = Reader::new(&bytes).expect("version");
    assert_eq!(
        r.clone().bytes("field", 9),
        Err(CodecError::TooLarge {
            what: "field",
            len: 10,
            max: 9
        })
    );
    let short = &bytes[..bytes.len() - 1];
    let mut r2 = Reader::new(short).expect("version");
    assert!(matches!(
        r2.bytes("field", 100),
        Err(CodecError::UnexpectedEnd { .. })
    ));
    assert_eq!(r.bytes("field", 10).map(<[u8]>::len), Ok(10));

    let mut r3 = Reader::unversioned(&[2]);
    assert_eq!(
        r3.bool(),
        Err(CodecError::InvalidTag {
            what: "bool",
            tag: 2
        })
    );
    assert_eq!(
        Reader::unversioned(&[1, 2]).finish(),
        Err(CodecError::TrailingBytes(2))
    );
}

#[test]
fn a_hostile_count_cannot_exceed_the_input() {
    // Claims 1000 items of 32 bytes with 4 bytes of input left: refused before allocating.
    let mut w = Writer::unversioned();
    w.u32(1000).u32(0);
    let bytes = w.finish();
    let mut r = Reader::unversioned(&bytes);
    assert!(matches!(
        r.count("items", 10_000, 32),
        Err(CodecError::UnexpectedEnd { .. })
    ));
    let mut r = Reader::unversioned(&bytes);
    assert!(matches!(
        r.count("items", 999, 1),
        Err(CodecError::TooLarge { .. })
    ));
}

#[test]
fn random_bytes_never_panic_the_reader() {
    for_seeds(0..200, |_, rng| {
        let len = rng.index(40);
        let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        if let Ok(mut r) = Reader::new(&bytes) {
            // Any sequence of reads either succeeds or returns an error.
            for _ in 0..8 {
                let _ = match rng.below(6) {
                    0 => r.u8().map(drop),
                    1 => r.u32().map(drop),
                    2 => r.u64().map(drop),
                    3 => r.bytes("b", 16).map(drop),
                    4 => r.count("c", 16, 4).map(drop),
                    _ => r.id::<EntityId>().map(drop),
                };
            }
        }
    });
}
