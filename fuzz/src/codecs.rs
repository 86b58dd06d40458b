//! Bodies of the decoder targets: decode, refuse with a typed error or round-trip.

use std::fmt::{Debug, Display};

use tabmesh_abi::{decode_result, encode_result, BlobOp, StorageOp};
use tabmesh_auth::{open_sealed, Invitation, InviteLink, Keypair, SealedBox};
use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{CodecError, ContextId, Hlc, HlcClock, NodeId, MAX_DRIFT_MS};
use tabmesh_dag::Payload;
use tabmesh_node::Wire;
use tabmesh_state::{decode_actions, encode_actions, Action, Stamp, State};
use tabmesh_sync::gov::{decode_keys as sync_decode_keys, encode_keys};
use tabmesh_sync::{
    Body, DeltaPayload, Envelope, Frame, GovOp, KeyBox, KeyMaterial, Message, Sealed,
};

use crate::kv::{kv_from_bytes, STATE_PREFIX};

/// A refusal: any `Display`able error; rendering it must not panic either.
pub(crate) fn refused(e: &impl Display) {
    let _ = e.to_string();
}

/// The body of a decoder target: `decode` the input; a refusal must be a typed error (rendered),
/// and what decodes must survive `encode` and `decode` again unchanged.
pub(crate) fn decodes<T: PartialEq + Debug, E: Display>(
    what: &str,
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T) -> Vec<u8>,
) {
    match decode(data) {
        Ok(value) => round_trip(what, &value, &encode(&value), decode),
        Err(e) => refused(&e),
    }
}

/// Re-decodes `bytes` (the encoding of `value`, decoded from the input) and checks it gives
/// `value` back.
pub(crate) fn round_trip<T: PartialEq + Debug, E: Display>(
    what: &str,
    value: &T,
    bytes: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
) {
    match decode(bytes) {
        Ok(again) => assert!(
            again == *value,
            "{what}: decode(encode(x)) != x\n  x:     {value:?}\n  again: {again:?}"
        ),
        Err(e) => panic!("{what}: the encoding of a decoded value does not decode: {e}"),
    }
}

/// Decodes a value that is nested in a versioned message (its decoder takes a [`Reader`]): the
/// version byte, then the value; bytes after it are ignored (the enclosing message would read
/// them).
fn nested<T>(
    data: &[u8],
    decode: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    let mut r = Reader::new(data)?;
    decode(&mut r)
}

/// The versioned encoding of a nested value; [`nested_exact`] reads it back, refusing leftovers.
fn encode_nested(encode: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    encode(&mut w);
    w.finish()
}

fn nested_exact<T>(
    bytes: &[u8],
    decode: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    let mut r = Reader::new(bytes)?;
    let v = decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// A fixed key pair the bodies try to open boxes and sealed messages with.
fn stranger() -> Keypair {
    Keypair::from_secret([0x77; 32])
}

/// `tabmesh_sync::Frame::decode`; a decoded frame round-trips through `Frame::encode`.
pub fn frame(data: &[u8]) {
    decodes("Frame", data, Frame::decode, Frame::encode);
}

/// `tabmesh_sync::Envelope::decode` (after the version byte, as in a frame). A decoded envelope
/// round-trips, and so does its DAG form (`into_causal` / `from_causal` and the DAG record of its
/// `Body`); its id, associated data and signature check never panic.
pub fn envelope(data: &[u8]) {
    let env = match nested(data, Envelope::decode) {
        Ok(env) => env,
        Err(e) => return refused(&e),
    };
    let bytes = encode_nested(|w| env.encode(w));
    round_trip("Envelope", &env, &bytes, |b| {
        nested_exact(b, Envelope::decode)
    });
    let id = env.id();
    let _ = env.aad();
    if let Err(e) = env.verify_signature(&id) {
        refused(&e);
    }
    let causal = env.clone().into_causal(id);
    if let Err(e) = causal.validate() {
        refused(&e);
    }
    let back = Envelope::from_causal(env.context, &causal);
    assert!(
        back == env,
        "Envelope: from_causal(into_causal(x)) != x: {env:?}"
    );
    let body = &causal.payload;
    let bytes = encode_nested(|w| body.encode(w));
    round_trip("Body (DAG record)", body, &bytes, |b| {
        nested_exact(b, <Body as Payload>::decode)
    });
}

/// `tabmesh_sync::DeltaPayload::decode`; a decoded payload encodes (within its bounds) and
/// round-trips.
pub fn delta_payload(data: &[u8]) {
    match DeltaPayload::decode(data) {
        Ok(p) => match p.encode() {
            Ok(bytes) => round_trip("DeltaPayload", &p, &bytes, DeltaPayload::decode),
            Err(e) => panic!("DeltaPayload: a decoded payload does not encode: {e}: {p:?}"),
        },
        Err(e) => refused(&e),
    }
}

/// `tabmesh_sync::GovOp::decode`; round trip; a join's invitation and proof checks never panic.
pub fn gov_op(data: &[u8]) {
    let op = match nested(data, GovOp::decode) {
        Ok(op) => op,
        Err(e) => return refused(&e),
    };
    let bytes = encode_nested(|w| op.encode(w));
    round_trip("GovOp", &op, &bytes, |b| nested_exact(b, GovOp::decode));
    let _ = (op.name(), op.introduces_key());
    if let GovOp::Join {
        invitation, proof, ..
    } = &op
    {
        if let Err(e) = invitation.verify() {
            refused(&e);
        }
        if let Err(e) = invitation.check_proof(&invitation.invite_key, proof) {
            refused(&e);
        }
    }
}

/// `tabmesh_sync::KeyMaterial::decode`; round trip.
pub fn key_material(data: &[u8]) {
    decodes(
        "KeyMaterial",
        data,
        KeyMaterial::decode,
        KeyMaterial::encode,
    );
}

/// `tabmesh_sync::gov::decode_keys`; round trip through `encode_keys`.
pub fn decode_keys(data: &[u8]) {
    match sync_decode_keys(data) {
        Ok(keys) => round_trip("keys", &keys, &encode_keys(&keys), sync_decode_keys),
        Err(e) => refused(&e),
    }
}

/// `tabmesh_sync::Sealed::decode`; round trip; its digest and signature check never panic.
pub fn sealed(data: &[u8]) {
    let s = match nested(data, Sealed::decode) {
        Ok(s) => s,
        Err(e) => return refused(&e),
    };
    let bytes = encode_nested(|w| s.encode(w));
    round_trip("Sealed", &s, &bytes, |b| nested_exact(b, Sealed::decode));
    let (from, to) = (NodeId([1; 32]), NodeId([2; 32]));
    let _ = s.digest(&from, &to, false);
    if let Err(e) = s.verify(&from, &to) {
        refused(&e);
    }
}

/// `tabmesh_sync::KeyBox::decode`; round trip; opening it with a stranger's key never panics.
pub fn key_box(data: &[u8]) {
    let b = match nested(data, KeyBox::decode) {
        Ok(b) => b,
        Err(e) => return refused(&e),
    };
    let bytes = encode_nested(|w| b.encode(w));
    round_trip("KeyBox", &b, &bytes, |x| nested_exact(x, KeyBox::decode));
    if let Err(e) = b.open(&ContextId([3; 32]), &stranger()) {
        refused(&e);
    }
}

/// `tabmesh_node::Wire::decode`; round trip; `Wire::gossip_delta` agrees with the decoding
/// (a context and id exactly for a gossiped delta, those of that delta).
pub fn wire(data: &[u8]) {
    let decoded = Wire::decode(data);
    let gossip_id = Wire::gossip_delta(data);
    match decoded {
        Ok(w) => {
            round_trip("Wire", &w, &w.encode(), Wire::decode);
            let expected = match &w {
                Wire::Gossip(f) => match &f.message {
                    Message::Delta(env) => Some((f.context, env.id())),
                    _ => None,
                },
                _ => None,
            };
            assert_eq!(
                gossip_id, expected,
                "Wire::gossip_delta disagrees with decode"
            );
        }
        Err(e) => {
            refused(&e);
            assert_eq!(
                gossip_id, None,
                "Wire::gossip_delta of bytes that do not decode"
            );
        }
    }
}

/// `tabmesh_auth::InviteLink::parse` of the bytes as (lossy) UTF-8; a parsed link round-trips
/// through `to_link`, and opening its keys never panics.
pub fn invite_link(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match InviteLink::parse(&text) {
        Ok(link) => {
            round_trip("InviteLink", &link, link.to_link().as_bytes(), |b| {
                InviteLink::parse(&String::from_utf8_lossy(b))
            });
            if let Err(e) = link.open_keys() {
                refused(&e);
            }
            let _ = link.prove(&[5; 32]);
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_auth::Invitation::decode`; round trip; its checks never panic.
pub fn invitation(data: &[u8]) {
    let inv = match nested(data, Invitation::decode) {
        Ok(inv) => inv,
        Err(e) => return refused(&e),
    };
    let bytes = encode_nested(|w| inv.encode(w));
    round_trip("Invitation", &inv, &bytes, |b| {
        nested_exact(b, Invitation::decode)
    });
    let _ = inv.id();
    if let Err(e) = inv.verify() {
        refused(&e);
    }
    if let Err(e) = inv.check_proof(&[5; 32], &inv.signature) {
        refused(&e);
    }
}

/// `tabmesh_auth::SealedBox::decode`; round trip; opening it with a stranger's key never panics.
pub fn sealed_box(data: &[u8]) {
    let b = match nested(data, SealedBox::decode) {
        Ok(b) => b,
        Err(e) => return refused(&e),
    };
    let bytes = encode_nested(|w| b.encode(w));
    round_trip("SealedBox", &b, &bytes, |x| {
        nested_exact(x, SealedBox::decode)
    });
    if let Err(e) = open_sealed(&stranger(), b"aad", &b) {
        refused(&e);
    }
}

/// `tabmesh_state::Action::from_bytes`; round trip through `to_bytes`; `encoded_len` is one less
/// than the encoding's length (as documented); joining it into an empty state never panics.
pub fn action(data: &[u8]) {
    let a = match Action::from_bytes(data) {
        Ok(a) => a,
        Err(e) => return refused(&e),
    };
    let bytes = a.to_bytes();
    round_trip("Action", &a, &bytes, Action::from_bytes);
    assert_eq!(
        a.encoded_len() + 1,
        bytes.len(),
        "Action::encoded_len is not one less than to_bytes().len(): {a:?}"
    );
    if let Err(e) = State::new(STATE_PREFIX).apply(std::slice::from_ref(&a)) {
        refused(&e);
    }
}

/// `tabmesh_state::decode_actions`; round trip through `encode_actions`. The actions are joined
/// into an empty state (refused with a typed error or applied); an applied batch, persisted and
/// reopened with `State::open`, gives the same root.
pub fn actions(data: &[u8]) {
    let actions = match decode_actions(data) {
        Ok(a) => a,
        Err(e) => return refused(&e),
    };
    match encode_actions(&actions) {
        Ok(bytes) => round_trip("actions", &actions, &bytes, decode_actions),
        Err(e) => panic!("actions: decoded actions do not encode: {e}"),
    }
    let mut state = State::new(STATE_PREFIX);
    match state.apply(&actions) {
        Ok(batch) => {
            let mut kv = tabmesh_base::MemoryKv::new();
            kv.apply(&batch);
            match State::open(STATE_PREFIX, &kv) {
                Ok(reopened) => assert_eq!(
                    reopened.root_hash(),
                    state.root_hash(),
                    "actions: the state reopened from its batch has another root"
                ),
                Err(e) => panic!("actions: the batch of an applied state does not reopen: {e}"),
            }
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_state::Stamp::decode`; round trip.
pub fn stamp(data: &[u8]) {
    match nested(data, Stamp::decode) {
        Ok(s) => {
            let bytes = encode_nested(|w| s.encode(w));
            round_trip("Stamp", &s, &bytes, |b| nested_exact(b, Stamp::decode));
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_state::State::open` of a store read from the bytes ([`kv_from_bytes`] under
/// [`STATE_PREFIX`]). An opened state's root is a function of its entities: the same entities
/// joined into an empty state give the same root.
pub fn state_open(data: &[u8]) {
    let kv = kv_from_bytes(STATE_PREFIX, data);
    match State::open(STATE_PREFIX, &kv) {
        Ok(state) => {
            let entities: Vec<Action> = state.entities().cloned().collect();
            let mut again = State::new(STATE_PREFIX);
            match again.apply(&entities) {
                Ok(_) => assert_eq!(
                    again.root_hash(),
                    state.root_hash(),
                    "state_open: the opened entities joined into an empty state give another root"
                ),
                Err(e) => panic!("state_open: the entities of an opened state do not apply: {e}"),
            }
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_base::Hlc::decode`, then the clock: the input is `VERSION ‖ hlc ‖ now (u64, optional)`.
/// Round trip; `successor` never goes backwards; `HlcClock::tick` issues a stamp above the
/// resumed one (`Hlc::MAX` stays `Hlc::MAX`); `HlcClock::observe` never moves the clock past
/// `now + MAX_DRIFT_MS` because of a remote stamp.
pub fn hlc(data: &[u8]) {
    let mut r = match Reader::new(data) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let h = match Hlc::decode(&mut r) {
        Ok(h) => h,
        Err(e) => return refused(&e),
    };
    let bytes = encode_nested(|w| h.encode(w));
    round_trip("Hlc", &h, &bytes, |b| nested_exact(b, Hlc::decode));
    assert!(
        h.successor() >= h,
        "Hlc::successor went backwards from {h:?}"
    );
    assert!(
        h.successor() > h || h == Hlc::MAX,
        "Hlc::successor of {h:?} is not above it"
    );
    let now = r.u64().unwrap_or(0);
    let mut clock = HlcClock::resume(h);
    let t = clock.tick(now);
    assert!(
        t > h || h == Hlc::MAX,
        "HlcClock::tick({now}) after {h:?} gave {t:?}"
    );
    let mut fresh = HlcClock::new();
    let _ = fresh.observe(h, now);
    let ceiling = Hlc::new(now.saturating_add(MAX_DRIFT_MS), 0);
    assert!(
        fresh.last() <= ceiling.max(Hlc::default()),
        "HlcClock::observe({h:?}, {now}) moved a fresh clock to {:?}, past now + MAX_DRIFT_MS",
        fresh.last()
    );
}

/// The codec [`Reader`] driven by a script: the first byte `n` (capped by what follows) says how
/// many of the next bytes are operations; the rest is the input they read (unversioned). Every
/// read returns what it claims (exact byte counts, bounds respected) or a [`CodecError`].
pub fn codec_reader(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (ops, input) = rest.split_at(usize::from(n).min(rest.len()));
    match Reader::new(input) {
        Ok(_) => assert_eq!(
            input.first(),
            Some(&tabmesh_base::codec::VERSION),
            "Reader::new accepted version {:?}",
            input.first()
        ),
        Err(e) => {
            assert_ne!(input.first(), Some(&tabmesh_base::codec::VERSION));
            refused(&e);
        }
    }
    let mut r = Reader::unversioned(input);
    for &op in ops {
        let before = r.remaining();
        let max = [0usize, 1, 2, 31, 32, 33, 1 << 20, usize::MAX][usize::from(op >> 4) & 7];
        let expect_taken = |taken: usize, r: &Reader<'_>| {
            assert_eq!(
                before - r.remaining(),
                taken,
                "Reader op {op:#04x}: consumed {} bytes instead of {taken}",
                before - r.remaining()
            );
        };
        match op & 15 {
            0 => r.u8().map(|_| expect_taken(1, &r)),
            1 => r.bool().map(|_| expect_taken(1, &r)),
            2 => r.u32().map(|_| expect_taken(4, &r)),
            3 => r.u64().map(|_| expect_taken(8, &r)),
            4 => r.i64().map(|_| expect_taken(8, &r)),
            5 => r.id::<NodeId>().map(|_| expect_taken(32, &r)),
            6 => r.hash().map(|_| expect_taken(32, &r)),
            7 => r.len("len", max).map(|n| {
                assert!(n <= max, "Reader::len returned {n} over its max {max}");
                expect_taken(4, &r);
            }),
            8 => {
                let min_item = usize::from(op >> 4);
                r.count("count", max, min_item).map(|n| {
                    assert!(n <= max, "Reader::count returned {n} over its max {max}");
                    assert!(
                        n.saturating_mul(min_item.max(1)) <= r.remaining(),
                        "Reader::count returned {n} items of {min_item} bytes with only {} left",
                        r.remaining()
                    );
                    expect_taken(4, &r);
                })
            }
            9 => r.bytes("bytes", max).map(|b| {
                assert!(
                    b.len() <= max,
                    "Reader::bytes returned {} over {max}",
                    b.len()
                );
                expect_taken(4 + b.len(), &r);
            }),
            10 => {
                let n = usize::from(op >> 4);
                r.raw(n).map(|b| {
                    assert_eq!(b.len(), n);
                    expect_taken(n, &r);
                })
            }
            11 => {
                let b = r.rest();
                assert_eq!(b.len(), before);
                Ok(())
            }
            12 => {
                let done = r.clone().finish();
                assert_eq!(
                    done.is_ok(),
                    before == 0,
                    "Reader::finish with {before} left"
                );
                Ok(())
            }
            _ => Ok(()),
        }
        .unwrap_or_else(|e| refused(&e));
        assert!(r.remaining() <= before, "a Reader read made its input grow");
    }
}

/// `tabmesh_abi::StorageOp::decode`; round trip.
pub fn storage_op(data: &[u8]) {
    match StorageOp::decode(data) {
        Ok(op) => {
            let bytes = op.encode();
            match StorageOp::decode(&bytes) {
                Ok(again) => assert_eq!(again, op, "StorageOp: decode(encode(x)) != x"),
                Err(e) => panic!("StorageOp: the encoding of a decoded op does not decode: {e}"),
            }
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_abi::BlobOp::decode`; round trip.
pub fn blob_op(data: &[u8]) {
    match BlobOp::decode(data) {
        Ok(op) => {
            let bytes = op.encode();
            match BlobOp::decode(&bytes) {
                Ok(again) => assert_eq!(again, op, "BlobOp: decode(encode(x)) != x"),
                Err(e) => panic!("BlobOp: the encoding of a decoded op does not decode: {e}"),
            }
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_abi::decode_result`; round trip through `encode_result`.
pub fn op_result(data: &[u8]) {
    match decode_result(data) {
        Ok(res) => round_trip("OpResult", &res, &encode_result(&res), decode_result),
        Err(e) => refused(&e),
    }
}

/// `tabmesh_storage::codec::decode`; a decoded batch encodes (`encode` is `Ok`, its length is
/// `encoded_len`) and round-trips.
pub fn storage_batch(data: &[u8]) {
    use tabmesh_storage::codec;
    match codec::decode(data) {
        Ok(batch) => match codec::encode(&batch) {
            Ok(bytes) => {
                assert_eq!(
                    bytes.len(),
                    codec::encoded_len(&batch),
                    "storage codec: encoded_len disagrees with encode"
                );
                round_trip("WriteBatch", &batch, &bytes, codec::decode);
            }
            Err(e) => panic!("storage codec: a decoded batch does not encode: {e}"),
        },
        Err(e) => refused(&e),
    }
}

/// `tabmesh_blobs::Manifest::decode` (which checks the id against the chunk list and length); a
/// decoded manifest re-encodes to the same bytes' value.
pub fn blob_manifest(data: &[u8]) {
    use tabmesh_blobs::Manifest;
    match Manifest::decode(data) {
        Ok(m) => {
            let bytes = m.encode();
            round_trip("Manifest", &m, &bytes, Manifest::decode);
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_blobs::BlobRequest::decode`, and its round trip.
pub fn blob_request(data: &[u8]) {
    use tabmesh_blobs::BlobRequest;
    decodes(
        "BlobRequest",
        data,
        BlobRequest::decode,
        BlobRequest::encode,
    );
}

/// `tabmesh_blobs::BlobResponse::decode`, and its round trip.
pub fn blob_response(data: &[u8]) {
    use tabmesh_blobs::BlobResponse;
    decodes(
        "BlobResponse",
        data,
        BlobResponse::decode,
        BlobResponse::encode,
    );
}
