use tabmesh_testkit::test;

// The versioned action encoding: round trips, bounds, and hostile bytes.
//
// Wire layout of one action (after the list's version byte and `u32` count): parent flag (`u8`)
// and parent id, type tag (`u8`), key (`u32`-prefixed bytes; a 48-byte stamp for list/text
// elements), created and updated stamps, tombstone flag and stamp, then the type's body.

use tabmesh_base::codec::Writer;
use tabmesh_base::{CodecError, Hlc, MemberId, MemoryKv};
use tabmesh_state::{
    decode_actions, encode_actions, Action, Stamp, State, StateError, MAX_ACTIONS, MAX_KEY_LEN,
    MAX_VALUE_LEN,
};
use tabmesh_testkit::for_seeds;

use super::support::{assert_same, Replica, PREFIX};

fn sample() -> Vec<Action> {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let x = a.write(1_000, |t| {
        t.register("r")?.set(b"value")?;
        t.counter("g")?.increment(3)?;
        t.pn_counter("p")?.add(-2)?;
        t.map("m")?.map(b"inner")?.insert(b"k", b"v")?;
        t.set("s")?.add(b"member")?;
        t.list("l")?.push(b"item")?;
        t.text("d")?.insert(0, "hé")
    });
    b.receive(1_500, &x);
    let y = b.write(2_000, |t| {
        t.set("s")?.remove(b"member")?;
        t.list("l")?.remove(0)?;
        t.text("d")?.delete(0, 1)?;
        t.map("m")?.delete(b"inner").map(|_| ())
    });
    x.into_iter().chain(y).collect()
}

fn stamp(w: &mut Writer, wall: u64, who: u8) {
    Stamp::new(Hlc::new(wall, 0), MemberId([who; 32]), 1).encode(w);
}

/// A one-action list: a root-level register with the given key and value lengths.
fn forged_register(key_len: usize, value_len: usize) -> Vec<u8> {
    let mut w = Writer::new();
    w.len(1);
    w.u8(0); // no parent
    w.u8(0); // register
    w.bytes(&vec![b'k'; key_len]);
    stamp(&mut w, 1, 1);
    stamp(&mut w, 1, 1);
    w.u8(0); // no tombstone
    w.u8(1); // value present
    stamp(&mut w, 1, 1);
    w.bytes(&vec![b'v'; value_len]);
    w.finish()
}

#[test]
fn actions_round_trip() {
    let actions = sample();
    let bytes = encode_actions(&actions).expect("encode");
    assert_eq!(decode_actions(&bytes).expect("decode"), actions);
    for a in &actions {
        assert_eq!(&Action::from_bytes(&a.to_bytes()).expect("decode one"), a);
    }
}

/// `Txn::encoded_len` is each action's versioned encoding plus four bytes, for every kind of
/// action (writes, tombstones, set removals with tags, elements with origins).
#[test]
fn txn_encoded_len_matches_the_encoding() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let mut measured = Vec::new();
    let x = a.write(1_000, |t| {
        t.register("r")?.set(b"value")?;
        t.counter("g")?.increment(3)?;
        t.pn_counter("p")?.add(-2)?;
        t.map("m")?.map(b"inner")?.insert(b"k", b"v")?;
        t.set("s")?.add(b"member")?;
        t.list("l")?.push(b"item")?;
        t.text("d")?.insert(0, "hé")?;
        measured.push(t.encoded_len());
        Ok(())
    });
    b.receive(1_500, &x);
    let y = b.write(2_000, |t| {
        t.set("s")?.remove(b"member")?;
        t.list("l")?.remove(0)?;
        t.list("l")?.push(b"next")?;
        t.text("d")?.delete(0, 1)?;
        t.register("r")?.clear()?;
        t.map("m")?.delete(b"inner")?;
        measured.push(t.encoded_len());
        Ok(())
    });
    for (actions, len) in [x, y].iter().zip(measured) {
        let framed: usize = actions.iter().map(|a| a.to_bytes().len() + 4).sum();
        assert_eq!(len, framed);
        let list = encode_actions(actions).expect("encode").len();
        assert_eq!(len + 5, list + 5 * actions.len());
    }
}

#[test]
fn an_unknown_version_is_a_typed_error() {
    let mut bytes = encode_actions(&sample()).expect("encode");
    bytes[0] = 2;
    assert_eq!(
        decode_actions(&bytes),
        Err(StateError::Codec(CodecError::UnknownVersion {
            found: 2,
            supported: 1
        }))
    );
}

#[test]
fn every_truncation_and_any_trailing_byte_is_refused() {
    let bytes = encode_actions(&sample()[..6]).expect("encode");
    for n in 0..bytes.len() {
        assert!(
            decode_actions(&bytes[..n]).is_err(),
            "prefix of {n} bytes decoded"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        decode_actions(&longer),
        Err(StateError::Codec(CodecError::TrailingBytes(1)))
    );
}

#[test]
fn bounds_are_enforced() {
    assert!(decode_actions(&forged_register(MAX_KEY_LEN, MAX_VALUE_LEN)).is_ok());
    assert!(matches!(
        decode_actions(&forged_register(MAX_KEY_LEN + 1, 1)),
        Err(StateError::Codec(CodecError::TooLarge { what: "key", .. }))
    ));
    assert!(matches!(
        decode_actions(&forged_register(1, MAX_VALUE_LEN + 1)),
        Err(StateError::Codec(CodecError::TooLarge {
            what: "value",
            ..
        }))
    ));
    let mut w = Writer::new();
    w.len(MAX_ACTIONS + 1);
    assert!(matches!(
        decode_actions(&w.finish()),
        Err(StateError::Codec(CodecError::TooLarge {
            what: "actions",
            ..
        }))
    ));
    // A count the input cannot hold is refused before anything is allocated.
    let mut w = Writer::new();
    w.len(MAX_ACTIONS);
    assert!(matches!(
        decode_actions(&w.finish()),
        Err(StateError::Codec(CodecError::UnexpectedEnd { .. }))
    ));
    let one = sample().swap_remove(0);
    let too_many = vec![one; MAX_ACTIONS + 1];
    assert!(matches!(
        encode_actions(&too_many),
        Err(StateError::TooLarge {
            what: "actions",
            ..
        })
    ));
    let mut s = State::new(PREFIX);
    assert!(matches!(
        s.apply(&too_many),
        Err(StateError::TooLarge {
            what: "actions",
            ..
        })
    ));
}

#[test]
fn bad_tags_and_invalid_elements_are_refused() {
    let mut bytes = forged_register(1, 1);
    bytes[1 + 4 + 1] = 200; // the type tag
    assert!(matches!(
        decode_actions(&bytes),
        Err(StateError::Codec(CodecError::InvalidTag {
            what: "crdt kind",
            tag: 200
        }))
    ));

    // A text character whose origin is not older than itself.
    let text_char = |origin_wall: u64, with_parent: bool| {
        let mut w = Writer::new();
        w.len(1);
        if with_parent {
            w.u8(1).id(&MemberId([7; 32]));
        } else {
            w.u8(0);
        }
        w.u8(9); // text character
        stamp(&mut w, 100, 1); // its key: the inserting stamp
        stamp(&mut w, 100, 1);
        stamp(&mut w, 100, 1);
        w.u8(0);
        w.u8(1); // origin present
        stamp(&mut w, origin_wall, 1);
        w.u32(u32::from('x'));
        w.finish()
    };
    assert!(decode_actions(&text_char(99, true)).is_ok());
    assert!(matches!(
        decode_actions(&text_char(100, true)),
        Err(StateError::InvalidOrigin { .. })
    ));
    assert!(matches!(
        decode_actions(&text_char(500, true)),
        Err(StateError::InvalidOrigin { .. })
    ));
    assert!(matches!(
        decode_actions(&text_char(99, false)),
        Err(StateError::Codec(CodecError::Invalid(_)))
    ));
}

#[test]
fn corrupted_bytes_never_panic() {
    let bytes = encode_actions(&sample()).expect("encode");
    for_seeds(0..300, |_, rng| {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.index(4) {
            let i = 1 + rng.index(b.len() - 1);
            b[i] = rng.next_u64() as u8;
        }
        if let Ok(actions) = decode_actions(&b) {
            let mut s = State::new(PREFIX);
            let root = s.root_hash();
            match s.apply(&actions) {
                Err(_) => {
                    assert_eq!(s.root_hash(), root, "a refused batch changed the state");
                    assert!(s.is_empty());
                }
                Ok(batch) => {
                    // Whatever was accepted is idempotent and persists faithfully.
                    assert!(s.apply(&actions).expect("re-apply").is_empty());
                    let mut kv = MemoryKv::new();
                    kv.apply(&batch);
                    assert_same(&s, &State::open(PREFIX, &kv).expect("reopen"), "fuzzed");
                }
            }
        }
    });
}
