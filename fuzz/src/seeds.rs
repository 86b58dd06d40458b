//! Valid inputs of every target, made at run time by the real encoders from the fixture context
//! (see [`crate::fixture`]), so they follow every format change.

use tabmesh_abi::{encode_result, BlobOp, Op, OpError, OpErrorKind, Page, StorageOp, Value};
use tabmesh_base::codec::Writer;
use tabmesh_base::{
    ContextId, DeltaId, Hash, Hlc, HlcClock, MemberId, MemoryKv, WriteBatch, MAX_DRIFT_MS,
};
use tabmesh_dag::{CausalDelta, Dag};
use tabmesh_node::Wire;
use tabmesh_state::{encode_actions, Action, Stamp, State, StateError};
use tabmesh_sync::gov::encode_keys;
use tabmesh_sync::{AppEvent, DeltaPayload, Frame, GovOp, KeyMaterial, Message, Request, Response};

use crate::dag::FUZZ_DAG;
use crate::fixture::{material, member, node_material, T0};
use crate::kv::{kv_to_bytes, DAG_PREFIX, REPLICA_PREFIX, STATE_PREFIX};

type Seeds = Vec<Vec<u8>>;

fn versioned(encode: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    encode(&mut w);
    w.finish()
}

/// Every message a frame can carry: the fixture's deltas, one request of every kind (ids
/// `0..`), the creator's answers (id `response_id`).
fn frames(response_id: u64) -> Vec<Frame> {
    let m = material();
    let mut messages: Vec<Message> = m.envelopes.iter().cloned().map(Message::Delta).collect();
    messages.extend(
        m.requests
            .iter()
            .enumerate()
            .map(|(i, body)| Message::Request {
                id: i as u64,
                body: body.clone(),
            }),
    );
    messages.extend(m.responses.iter().map(|body| Message::Response {
        id: response_id,
        body: body.clone(),
    }));
    messages.push(Message::Response {
        id: response_id,
        body: Response::Summary(m.summary.clone()),
    });
    messages
        .into_iter()
        .map(|message| Frame {
            context: m.context,
            message,
        })
        .collect()
}

pub(crate) fn frame() -> Seeds {
    frames(7).iter().map(Frame::encode).collect()
}

pub(crate) fn envelope() -> Seeds {
    let m = material();
    m.envelopes
        .iter()
        .map(|env| versioned(|w| env.encode(w)))
        .collect()
}

fn gov_ops() -> Vec<GovOp> {
    let m = material();
    let mut ops: Vec<GovOp> = m.payloads.iter().filter_map(|p| p.gov.clone()).collect();
    ops.extend([
        GovOp::Join {
            invitation: Box::new(m.link.invitation.clone()),
            proof: m.link.prove(member(3).as_bytes()),
            keys: m.keys.iter().map(|k| k.id()).collect(),
        },
        GovOp::Remove { member: member(1) },
        GovOp::ChangeApp { app: Hash([7; 32]) },
    ]);
    ops
}

pub(crate) fn delta_payload() -> Seeds {
    let m = material();
    let mut payloads = m.payloads.clone();
    payloads.extend(gov_ops().into_iter().map(|op| DeltaPayload {
        gov: Some(op),
        ..DeltaPayload::default()
    }));
    payloads.push(DeltaPayload {
        actions: m.entities.clone(),
        events: vec![AppEvent {
            kind: "k".into(),
            data: vec![0; 3],
            handler: Some("h".into()),
        }],
        hop: 8,
        gov: None,
    });
    payloads.push(DeltaPayload::default());
    payloads
        .iter()
        .map(|p| p.encode().expect("a fixture payload encodes"))
        .collect()
}

pub(crate) fn gov_op() -> Seeds {
    gov_ops()
        .iter()
        .map(|op| versioned(|w| op.encode(w)))
        .collect()
}

pub(crate) fn key_material() -> Seeds {
    let m = material();
    vec![
        m.link.open_keys().expect("the fixture link opens"),
        KeyMaterial {
            keys: m.keys.clone(),
            heads: m.envelopes.iter().map(|e| e.id()).collect(),
        }
        .encode(),
        KeyMaterial::default().encode(),
    ]
}

pub(crate) fn decode_keys() -> Seeds {
    let m = material();
    vec![
        encode_keys(&m.keys),
        encode_keys(&m.keys[..1]),
        encode_keys(&[]),
    ]
}

pub(crate) fn sealed() -> Seeds {
    material()
        .sealed
        .iter()
        .map(|s| versioned(|w| s.encode(w)))
        .collect()
}

pub(crate) fn key_box() -> Seeds {
    material()
        .envelopes
        .iter()
        .flat_map(|e| e.keys.iter())
        .map(|b| versioned(|w| b.encode(w)))
        .collect()
}

pub(crate) fn wire() -> Seeds {
    let m = material();
    let mut out: Seeds = m
        .envelopes
        .iter()
        .map(|env| {
            Wire::Gossip(Box::new(Frame {
                context: m.context,
                message: Message::Delta(env.clone()),
            }))
            .encode()
        })
        .collect();
    out.extend(
        m.sealed
            .iter()
            .map(|s| Wire::Direct(Box::new(s.clone())).encode()),
    );
    out.push(
        Wire::KeyNeeded {
            context: m.context,
            epoch: m.envelopes[0].epoch,
        }
        .encode(),
    );
    out.extend(node_material().messages.iter().cloned());
    out
}

pub(crate) fn invite_link() -> Seeds {
    let link = material().link.to_link();
    vec![
        link.clone().into_bytes(),
        format!("https://example.invalid/app#{link}&x=1").into_bytes(),
        format!("  {link}\n").into_bytes(),
    ]
}

pub(crate) fn invitation() -> Seeds {
    let inv = &material().link.invitation;
    vec![versioned(|w| inv.encode(w))]
}

pub(crate) fn sealed_box() -> Seeds {
    material()
        .envelopes
        .iter()
        .flat_map(|e| e.keys.iter())
        .map(|b| versioned(|w| b.sealed.encode(w)))
        .collect()
}

fn all_actions() -> Vec<Action> {
    let m = material();
    let mut out = m.entities.clone();
    out.extend(m.payloads.iter().flat_map(|p| p.actions.iter().cloned()));
    out
}

pub(crate) fn action() -> Seeds {
    all_actions().iter().map(Action::to_bytes).collect()
}

pub(crate) fn actions() -> Seeds {
    let m = material();
    let mut out: Seeds = m
        .payloads
        .iter()
        .map(|p| encode_actions(&p.actions).expect("fixture actions encode"))
        .collect();
    out.push(encode_actions(&m.entities).expect("fixture entities encode"));
    out.push(encode_actions(&[]).expect("no actions encode"));
    out
}

pub(crate) fn stamp() -> Seeds {
    [
        Stamp::default(),
        Stamp::new(Hlc::new(T0, 3), member(0), 7),
        Stamp::new(Hlc::MAX, MemberId([0xff; 32]), u32::MAX),
    ]
    .iter()
    .map(|s| versioned(|w| s.encode(w)))
    .collect()
}

/// States written through transactions and persisted, then collected.
pub(crate) fn state_open() -> Seeds {
    let mut state = State::new(STATE_PREFIX);
    let mut kv = MemoryKv::new();
    let mut clock = HlcClock::new();
    let mut out = Vec::new();
    let mut write =
        |state: &mut State,
         kv: &mut MemoryKv,
         t: u64,
         f: &dyn Fn(&mut tabmesh_state::Txn<'_>) -> Result<(), StateError>| {
            let mut txn = state.txn(member(0), clock.tick(t));
            f(&mut txn).expect("a fixture write");
            kv.apply(&txn.commit().batch);
        };
    write(&mut state, &mut kv, T0, &|txn| {
        txn.register("r")?.set(b"v")?;
        txn.counter("c")?.increment(2)?;
        txn.pn_counter("p")?.add(-5)?;
        txn.map("m")?.insert(b"a", b"1")?;
        txn.map("m")?.set(b"s")?.add(b"x")?;
        txn.list("l")?.push(b"one")?;
        txn.text("t")?.push_str("hi")?;
        Ok(())
    });
    out.push(kv_to_bytes(STATE_PREFIX, &kv));
    write(&mut state, &mut kv, T0 + 10, &|txn| {
        txn.map("m")?.delete(b"a")?;
        txn.text("t")?.delete(0, 1)?;
        txn.list("l")?.remove(0)?;
        Ok(())
    });
    out.push(kv_to_bytes(STATE_PREFIX, &kv));
    kv.apply(&state.collect_garbage(Hlc::new(T0 + 100, 0)).batch);
    out.push(kv_to_bytes(STATE_PREFIX, &kv));
    let mut creator = State::new(STATE_PREFIX);
    let mut kv = MemoryKv::new();
    kv.apply(
        &creator
            .apply(&material().entities)
            .expect("the creator's entities apply"),
    );
    out.push(kv_to_bytes(STATE_PREFIX, &kv));
    out
}

/// DAG stores: built by adds, pending deltas, pruning and a checkpoint; and the fixture
/// creator's own DAG records (payload `Body`).
pub(crate) fn dag_restore() -> Seeds {
    let id = |n: u8| DeltaId([n; 32]);
    let mut dag: Dag<Vec<u8>> = Dag::new(FUZZ_DAG);
    let mut kv = MemoryKv::new();
    let mut out = Vec::new();
    let ok = |_: &CausalDelta<Vec<u8>>| Ok::<(), ()>(());
    let save = |dag: &mut Dag<Vec<u8>>, kv: &mut MemoryKv, out: &mut Seeds| {
        kv.apply(&dag.take_changes(DAG_PREFIX));
        out.push(kv_to_bytes(DAG_PREFIX, kv));
    };
    let adds = [
        CausalDelta::genesis(id(1), vec![1], Hlc::new(1, 0)),
        CausalDelta::new(id(2), vec![id(1)], vec![2], Hlc::new(2, 0)),
        CausalDelta::new(id(3), vec![id(1)], vec![3], Hlc::new(3, 0)),
        CausalDelta::new(id(4), vec![id(2), id(3)], vec![4], Hlc::new(4, 0)),
        CausalDelta::new(id(6), vec![id(5)], vec![6], Hlc::new(6, 0)),
    ];
    for d in adds {
        let _ = dag.add(d, 10, ok);
    }
    save(&mut dag, &mut kv, &mut out);
    let _ = dag.prune(1);
    save(&mut dag, &mut kv, &mut out);
    let _ = dag.restore_checkpoint(&[id(9)], Hash([9; 32]), ok);
    let _ = dag.add(
        CausalDelta::new(id(7), vec![id(8)], vec![7], Hlc::new(7, 0)),
        20,
        ok,
    );
    save(&mut dag, &mut kv, &mut out);
    // The creator's DAG, moved under `DAG_PREFIX`.
    let m = material();
    let from: Vec<u8> = [REPLICA_PREFIX, b"d/"].concat();
    let mut batch = WriteBatch::new();
    for (k, v) in m.store.iter().filter(|(k, _)| k.starts_with(&from)) {
        batch.put([DAG_PREFIX, &k[from.len()..]].concat(), v.clone());
    }
    let mut creator = MemoryKv::new();
    creator.apply(&batch);
    out.push(kv_to_bytes(DAG_PREFIX, &creator));
    out
}

/// Scripts (see [`crate::dag_insert`]): a genesis and a chain, a fork and its merge, a
/// self-parent, a two-cycle, a pending overflow, prune, eviction, checkpoint, satisfied marks,
/// discards and saves.
pub(crate) fn dag_insert() -> Seeds {
    vec![
        // Genesis 0, 1 on 0, 2 on 1, save.
        vec![0x20, 0, 1, 0x08, 1, 0, 2, 0x08, 2, 1, 3, 0x07],
        // Fork and merge: 1 and 2 on 0, 3 on both; prune; save.
        vec![
            0x20, 0, 1, 0x08, 1, 0, 2, 0x08, 2, 0, 3, 0x10, 3, 1, 2, 4, 0x03, 1, 0x07,
        ],
        // A self-parent, a duplicate parent, a two-cycle, no parents without the genesis flag.
        vec![
            0x20, 0, 1, 0x08, 4, 4, 1, 0x10, 5, 0, 0, 1, 0x08, 6, 7, 1, 0x08, 7, 6, 1, 0x00, 8, 1,
            0x07,
        ],
        // Pending overflow (cap 4), then the missing parent arrives; eviction by age.
        vec![
            0x48, 1, 9, 1, 0x48, 2, 9, 1, 0x48, 3, 9, 1, 0x48, 4, 9, 1, 0x48, 5, 9, 1, 0x48, 6, 9,
            1, 0x20, 9, 1, 0x04, 200, 0x07,
        ],
        // The applier refuses payload 5: its children wait; a checkpoint and a satisfied mark
        // unblock them; a discard; a save.
        vec![
            0x20, 0, 1, 0x08, 1, 0, 5, 0x08, 2, 1, 1, 0x2D, 1, 0x33, 0x0D, 1, 0, 0x08, 3, 11, 2,
            0x06, 0xff, 0x07,
        ],
    ]
}

pub(crate) fn hlc() -> Seeds {
    let seed = |h: Hlc, now: Option<u64>| {
        versioned(|w| {
            h.encode(w);
            if let Some(n) = now {
                w.u64(n);
            }
        })
    };
    vec![
        seed(Hlc::new(T0, 0), Some(T0)),
        seed(Hlc::new(T0 + MAX_DRIFT_MS + 5, 2), Some(T0)),
        seed(Hlc::MAX, Some(0)),
        seed(Hlc::new(u64::MAX, 0), Some(u64::MAX)),
        seed(Hlc::new(5, u32::MAX), None),
    ]
}

/// Scripts (see [`crate::codec_reader`]): reads of every kind over a real encoding.
pub(crate) fn codec_reader() -> Seeds {
    let input = versioned(|w| {
        w.u8(7)
            .bool(true)
            .u32(3)
            .u64(9)
            .i64(-1)
            .id(&DeltaId([1; 32]));
        w.hash(&Hash([2; 32])).len(3).bytes(b"abc").raw(b"xyz");
    });
    let with_ops = |ops: &[u8]| {
        let mut s = vec![u8::try_from(ops.len()).expect("a short script")];
        s.extend_from_slice(ops);
        s.extend_from_slice(&input);
        s
    };
    vec![
        with_ops(&[
            0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x77, 0x69, 0x3A, 0x0C,
        ]),
        with_ops(&[0x00, 0x08, 0x18, 0x78, 0x0B, 0x0C]),
        with_ops(&[0x10, 0x29, 0x59, 0xF9, 0x0A]),
        with_ops(&[]),
    ]
}

pub(crate) fn storage_op() -> Seeds {
    let page = Page {
        offset: 1,
        limit: 10,
    };
    let ops = [
        Op::RegisterGet,
        Op::RegisterSet { value: b"v" },
        Op::RegisterClear,
        Op::CounterGet,
        Op::CounterIncrement { by: 3 },
        Op::PnCounterGet,
        Op::PnCounterAdd { delta: -4 },
        Op::MapGet { key: b"k" },
        Op::MapInsert {
            key: b"k",
            value: b"v",
        },
        Op::MapDelete { key: b"k" },
        Op::MapContains { key: b"k" },
        Op::MapLen,
        Op::MapKeys(page),
        Op::SetAdd { member: b"m" },
        Op::SetRemove { member: b"m" },
        Op::SetContains { member: b"m" },
        Op::SetLen,
        Op::SetMembers(page),
        Op::ListGet { index: 0 },
        Op::ListLen,
        Op::ListInsert {
            index: 1,
            value: b"x",
        },
        Op::ListPush { value: b"x" },
        Op::ListSet {
            index: 2,
            value: b"y",
        },
        Op::ListRemove { index: 0 },
        Op::ListItems(page),
        Op::TextRead(page),
        Op::TextLen,
        Op::TextInsert {
            pos: 1,
            text: "héllo",
        },
        Op::TextPush { text: "!" },
        Op::TextDelete { pos: 0, len: 2 },
    ];
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let path: Vec<&[u8]> = match i % 3 {
                0 => Vec::new(),
                1 => vec![b"a"],
                _ => vec![b"a", b"bc"],
            };
            StorageOp {
                field: "field",
                path,
                op: *op,
            }
            .encode()
        })
        .collect()
}

pub(crate) fn blob_op() -> Seeds {
    [
        BlobOp::Create,
        BlobOp::Write {
            handle: 1,
            data: b"data",
        },
        BlobOp::Finish { handle: 1 },
        BlobOp::Open { id: Hash([4; 32]) },
        BlobOp::Read { handle: 2, max: 64 },
        BlobOp::Close { handle: 2 },
    ]
    .iter()
    .map(BlobOp::encode)
    .collect()
}

pub(crate) fn op_result() -> Seeds {
    let mut results = vec![
        Ok(Value::Unit),
        Ok(Value::Bool(true)),
        Ok(Value::U64(7)),
        Ok(Value::U128(u128::MAX)),
        Ok(Value::I128(i128::MIN)),
        Ok(Value::Absent),
        Ok(Value::Bytes(b"bytes".to_vec())),
        Ok(Value::List(vec![b"a".to_vec(), Vec::new()])),
        Ok(Value::Text("tëxt".into())),
        Ok(Value::Id(Hash([3; 32]))),
    ];
    results.extend(
        [
            OpErrorKind::WrongType,
            OpErrorKind::TooLarge,
            OpErrorKind::TooDeep,
            OpErrorKind::OutOfRange,
            OpErrorKind::Invalid,
            OpErrorKind::NotFound,
            OpErrorKind::Unsupported,
            OpErrorKind::Other,
        ]
        .into_iter()
        .map(|k| Err(OpError::new(k, "why"))),
    );
    results.iter().map(encode_result).collect()
}

pub(crate) fn storage_batch() -> Seeds {
    let mut batch = WriteBatch::new();
    batch.put(b"k".to_vec(), b"v".to_vec());
    batch.delete(b"gone".to_vec());
    batch.put(Vec::new(), Vec::new());
    let mut creator = WriteBatch::new();
    for (k, v) in material().store.iter() {
        creator.put(k.clone(), v.clone());
    }
    [WriteBatch::new(), batch, creator]
        .iter()
        .map(|b| tabmesh_storage::codec::encode(b).expect("a fixture batch encodes"))
        .collect()
}

pub(crate) fn replica_open() -> Seeds {
    vec![kv_to_bytes(REPLICA_PREFIX, &material().store)]
}

pub(crate) fn replica_receive() -> Seeds {
    let m = material();
    let mut out: Seeds = frames(m.session_request)
        .iter()
        .map(Frame::encode)
        .collect();
    // A summary answer that does not match the session's request id.
    out.push(
        Frame {
            context: m.context,
            message: Message::Response {
                id: m.session_request.wrapping_add(1),
                body: Response::Summary(m.summary.clone()),
            },
        }
        .encode(),
    );
    out.push(
        Frame {
            context: m.context,
            message: Message::Request {
                id: 1,
                body: Request::Summary,
            },
        }
        .encode(),
    );
    out
}

pub(crate) fn node_message() -> Seeds {
    node_material().messages.clone()
}

/// Valid payloads (those of [`delta_payload`]) under every author, parents and timestamp choice.
pub(crate) fn replica_delta() -> Seeds {
    let payloads = delta_payload();
    let mut out = Vec::new();
    for how in 0..=255u8 {
        let p = &payloads[usize::from(how) % payloads.len()];
        if how % 3 == 0 {
            out.push([&[how][..], p].concat());
        }
    }
    out
}

/// Real sync sessions of each receiver flavour with the fixture's creator.
pub(crate) fn replica_session() -> Seeds {
    material().transcripts.clone()
}

/// Manifests of an empty, a one-byte and a three-chunk blob.
fn manifests() -> Vec<tabmesh_blobs::Manifest> {
    [0usize, 1, 2 * tabmesh_blobs::CHUNK_SIZE + 7]
        .iter()
        .map(|&len| {
            let mut w = tabmesh_blobs::BlobWriter::new();
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            w.write(&data).expect("a fixture blob fits");
            w.finish().1
        })
        .collect()
}

pub(crate) fn blob_manifest() -> Seeds {
    manifests()
        .iter()
        .map(tabmesh_blobs::Manifest::encode)
        .collect()
}

pub(crate) fn blob_request() -> Seeds {
    use tabmesh_blobs::{BlobRequest, Want};
    let blob = manifests()[2].id;
    [Want::Manifest, Want::Chunk(0), Want::Chunk(u32::MAX)]
        .into_iter()
        .map(|what| BlobRequest { blob, what }.encode())
        .collect()
}

pub(crate) fn blob_response() -> Seeds {
    use tabmesh_blobs::{BlobResponse, Want};
    let m = &manifests()[2];
    let blob = m.id;
    vec![
        BlobResponse::Manifest {
            blob,
            bytes: m.encode(),
        }
        .encode(),
        BlobResponse::Chunk {
            blob,
            index: 2,
            bytes: vec![7; 7],
        }
        .encode(),
        BlobResponse::Missing {
            blob,
            what: Want::Chunk(1),
        }
        .encode(),
    ]
}

pub(crate) fn net_request() -> Seeds {
    use tabmesh_net::proto::Request;
    let blob = manifests()[2].id;
    let context = ContextId([4; 32]);
    vec![
        Request::Msg(vec![1, 2, 3]).encode(),
        Request::Fetch {
            context,
            delta: DeltaId([5; 32]),
        }
        .encode(),
        Request::Module {
            context,
            app: Hash([6; 32]),
        }
        .encode(),
        Request::Blob {
            context,
            request: tabmesh_blobs::BlobRequest {
                blob,
                what: tabmesh_blobs::Want::Chunk(3),
            },
        }
        .encode(),
    ]
}

pub(crate) fn net_response() -> Seeds {
    use tabmesh_net::proto::Response;
    let mut out: Seeds = [
        Response::Ack,
        Response::Delta(vec![9; 40]),
        Response::Missing,
        Response::Module(vec![0, 97, 115, 109]),
        Response::Refused,
    ]
    .iter()
    .map(Response::encode)
    .collect();
    out.extend(
        blob_response()
            .into_iter()
            .map(|b| Response::Blob(b).encode()),
    );
    out
}

pub(crate) fn gossip() -> Seeds {
    use tabmesh_net::GossipMsg;
    let context = crate::shell::GOSSIP_CONTEXT;
    let mut out: Seeds = vec![
        GossipMsg::Announce {
            context,
            delta: DeltaId([1; 32]),
            len: 300_000,
        }
        .encode(),
        GossipMsg::Hello {
            context,
            nonce: 7,
            ask: true,
        }
        .encode(),
        GossipMsg::Have {
            context,
            blobs: manifests().iter().map(|m| m.id).collect(),
        }
        .encode(),
    ];
    // A delta frame as gossip carries it (a well-formed frame of the fixture's context).
    out.extend(
        wire()
            .into_iter()
            .take(1)
            .map(|w| GossipMsg::Delta(w).encode()),
    );
    out
}

pub(crate) fn blob_record() -> Seeds {
    use tabmesh_net::record::{BlobRecord, Record};
    let blob = manifests()[2].id;
    vec![
        Record::Blob(BlobRecord {
            slot: blob,
            len: 2 * tabmesh_blobs::CHUNK_SIZE as u64 + 7,
            complete: true,
            pinned: false,
            contexts: [ContextId([1; 32]), ContextId([2; 32])].into(),
        })
        .encode(),
        Record::Upload.encode(),
        Record::SlotOf(blob).encode(),
    ]
}

pub(crate) fn blob_refs() -> Seeds {
    let ids: Vec<String> = manifests()
        .iter()
        .map(|m| tabmesh_blobs::ref_text(&m.id))
        .collect();
    vec![
        ids[0].clone().into_bytes(),
        format!("{{\"file\":\"{}\",\"other\":\"{}\"}}", ids[1], ids[2]).into_bytes(),
        format!("tabmesh-blob:{}", "g".repeat(64)).into_bytes(),
    ]
}

/// A node's whole store as it is after founding a context and writing to it (the records a
/// browser keeps in IndexedDB).
pub(crate) fn node_load() -> Seeds {
    use tabmesh_node::{NodeConfig, NodeCore, Output, Seed};
    let mut node = NodeCore::new(
        tabmesh_auth::Keypair::from_secret([5; 32]),
        NodeConfig::default(),
        Seed::from_u64(3),
    );
    node.flush();
    let (context, _) = node.create_context(T0, None, b"").expect("a plain context");
    node.commit(T0 + 1, context, |txn| {
        txn.map("m")?.insert(b"k", b"v")?;
        Ok(())
    })
    .expect("a write");
    let mut kv = MemoryKv::new();
    while let Some(out) = node.poll_output() {
        if let Output::Persist(batch) = out {
            kv.apply(&batch);
        }
    }
    vec![kv_to_bytes(b"", &kv)]
}
