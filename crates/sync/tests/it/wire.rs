//! The wire codec: every variant round-trips; malformed, truncated, oversized, unknown-version and
//! random bytes are typed errors, never panics.

use tabmesh_testkit::test;

use tabmesh_auth::{SealedBox, Signature};
use tabmesh_base::{codec::Writer, CodecError, DeltaId, DetRng, EntityId, Hash, Hlc, MemberId};
use tabmesh_state::{Action, State, TrieSlot};
use tabmesh_sync::{
    Envelope, Frame, GovEntry, KeyBox, Message, Refusal, Request, Response, SnapshotCursor,
    Summary, SyncError, TreeNode, TreeRef, MAX_DELTAS, MAX_DELTA_CIPHERTEXT, MAX_DELTA_PARENTS,
    MAX_ENTITIES, MAX_FRAME, MAX_GOV_ENTRIES, MAX_IDS, MAX_KEY_BOXES, MAX_PATH, MAX_TREE_NODES,
};

use super::support::ctx;

fn did(n: u8) -> DeltaId {
    DeltaId([n; 32])
}

fn eid(n: u8) -> EntityId {
    EntityId([n; 32])
}

/// Real entity states (a map with entries, a counter, a text), to ship in frames.
pub(super) fn sample_actions() -> Vec<Action> {
    let mut s = State::new(b"wire/");
    let mut t = s.txn(MemberId([1; 32]), Hlc::new(5, 0));
    t.map("m").unwrap().insert(b"k", b"v").unwrap();
    t.counter("c").unwrap().increment(3).unwrap();
    t.text("t").unwrap().insert(0, "hi").unwrap();
    t.commit();
    s.entities().cloned().collect()
}

/// A well-formed envelope (the codec neither decrypts nor checks signatures: any bytes do).
pub(super) fn envelope(parents: usize, ciphertext: &[u8]) -> Envelope {
    Envelope {
        context: ctx(),
        author: MemberId([3; 32]),
        parents: (0..parents).map(|i| did(i as u8)).collect(),
        hlc: Hlc::new(123_456, 7),
        epoch: Hash([4; 32]),
        keys: Vec::new(),
        nonce: [5; 24],
        ciphertext: ciphertext.to_vec(),
        signature: Signature([6; 64]),
    }
}

/// A key box with `ids` keys named (its sealed bytes are arbitrary).
fn key_box(to: u8, ids: usize) -> KeyBox {
    KeyBox {
        to: MemberId([to; 32]),
        ids: (0..ids).map(|i| Hash([i as u8 + 10; 32])).collect(),
        sealed: SealedBox {
            ephemeral: [to; 32],
            nonce: [to ^ 0xff; 24],
            ciphertext: vec![to; 48],
        },
    }
}

/// An envelope that carries key boxes.
fn envelope_with_keys() -> Envelope {
    Envelope {
        keys: vec![key_box(1, 2), key_box(2, 0)],
        ..envelope(2, b"sealed")
    }
}

fn req(id: u64, body: Request) -> Frame {
    Frame {
        context: ctx(),
        message: Message::Request { id, body },
    }
}

fn resp(id: u64, body: Response) -> Frame {
    Frame {
        context: ctx(),
        message: Message::Response { id, body },
    }
}

/// One frame of every message, request and response variant (and the optional fields both ways).
pub(super) fn sample_frames() -> Vec<Frame> {
    let actions = sample_actions();
    let slots = vec![
        (0u8, TrieSlot::Subtree(Hash([9; 32]))),
        (3, TrieSlot::Entity(eid(4), Hash([5; 32]))),
        (15, TrieSlot::Entity(eid(6), Hash([7; 32]))),
    ];
    vec![
        Frame {
            context: ctx(),
            message: Message::Delta(envelope(0, b"")),
        },
        Frame {
            context: ctx(),
            message: Message::Delta(envelope(3, b"payload")),
        },
        Frame {
            context: ctx(),
            message: Message::Delta(envelope_with_keys()),
        },
        req(33, Request::Governance { from: 0 }),
        req(34, Request::Governance { from: u32::MAX }),
        req(0, Request::Summary),
        req(
            u64::MAX,
            Request::DeltasSince {
                known: vec![],
                cursor: None,
            },
        ),
        req(
            2,
            Request::DeltasSince {
                known: vec![did(1), did(2)],
                cursor: Some(99),
            },
        ),
        req(
            3,
            Request::Deltas {
                ids: vec![did(1), did(9)],
            },
        ),
        req(
            4,
            Request::Tree {
                nodes: vec![
                    TreeRef {
                        owner: None,
                        path: vec![],
                    },
                    TreeRef {
                        owner: Some(eid(1)),
                        path: vec![0, 15, 3],
                    },
                ],
            },
        ),
        req(
            5,
            Request::Entities {
                ids: vec![eid(1), eid(2)],
            },
        ),
        req(
            6,
            Request::Push {
                entities: actions.clone(),
            },
        ),
        req(7, Request::Push { entities: vec![] }),
        req(8, Request::Snapshot { cursor: None }),
        req(
            30,
            Request::Have {
                ids: vec![did(1), did(2)],
            },
        ),
        req(
            31,
            Request::Forget {
                horizon: Hlc::new(1_767_225_600_000, 2),
                ids: vec![eid(1), eid(2)],
            },
        ),
        req(
            32,
            Request::Forget {
                horizon: Hlc::default(),
                ids: vec![],
            },
        ),
        req(
            9,
            Request::Snapshot {
                cursor: Some(SnapshotCursor {
                    snapshot: 3,
                    index: 4,
                }),
            },
        ),
        resp(
            10,
            Response::Summary(Summary {
                heads: vec![did(1), did(2)],
                root: Hash([3; 32]),
                entities: 10,
                applied: 20,
                pruned: true,
                pending: 0,
                gc_horizon: Hlc::new(1_767_225_600_000, 7),
                governance: Hash([4; 32]),
                heads_stamp: Hlc::new(1_767_225_630_000, 2),
            }),
        ),
        resp(
            40,
            Response::Governance {
                entries: vec![
                    GovEntry {
                        envelope: envelope(0, b"genesis"),
                        past: vec![],
                        void: false,
                    },
                    GovEntry {
                        envelope: envelope_with_keys(),
                        past: vec![did(0), did(3), did(9)],
                        void: true,
                    },
                ],
                next: Some(5),
            },
        ),
        resp(
            41,
            Response::Governance {
                entries: vec![],
                next: None,
            },
        ),
        resp(11, Response::Summary(Summary::default())),
        resp(
            12,
            Response::Deltas {
                deltas: vec![envelope(1, b"a"), envelope(2, b"bb")],
                next: Some(77),
                unavailable: vec![did(4)],
                history_pruned: true,
            },
        ),
        resp(
            13,
            Response::Deltas {
                deltas: vec![],
                next: None,
                unavailable: vec![],
                history_pruned: false,
            },
        ),
        resp(
            14,
            Response::Tree {
                nodes: vec![
                    TreeNode {
                        at: TreeRef {
                            owner: None,
                            path: vec![],
                        },
                        slots: Some(slots),
                    },
                    TreeNode {
                        at: TreeRef {
                            owner: Some(eid(2)),
                            path: vec![1],
                        },
                        slots: None,
                    },
                    TreeNode {
                        at: TreeRef {
                            owner: None,
                            path: vec![2],
                        },
                        slots: Some(vec![]),
                    },
                ],
            },
        ),
        resp(
            15,
            Response::Entities {
                entities: actions.clone(),
            },
        ),
        resp(16, Response::PushAck { applied: 42 }),
        resp(
            31,
            Response::Have {
                applied: vec![did(2)],
            },
        ),
        resp(
            17,
            Response::SnapshotPage {
                heads: vec![did(8)],
                heads_stamp: Hlc::new(1_767_225_600_000, 1),
                root: Hash([1; 32]),
                total: 3,
                entities: actions,
                satisfied: vec![did(8), did(9)],
                next: Some(SnapshotCursor {
                    snapshot: 1,
                    index: 1,
                }),
            },
        ),
        resp(
            18,
            Response::SnapshotPage {
                heads: vec![],
                heads_stamp: Hlc::default(),
                root: Hash::ZERO,
                total: 0,
                entities: vec![],
                satisfied: vec![],
                next: None,
            },
        ),
        resp(19, Response::Refused(Refusal::Busy)),
        resp(20, Response::Refused(Refusal::UnknownContext)),
        resp(21, Response::Refused(Refusal::Invalid)),
        resp(22, Response::Refused(Refusal::NothingToSnapshot)),
    ]
}

fn codec_err(bytes: &[u8]) -> CodecError {
    match Frame::decode(bytes) {
        Err(SyncError::Codec(e)) => e,
        other => panic!("expected a codec error, got {other:?}"),
    }
}

#[test]
fn every_variant_round_trips() {
    for f in sample_frames() {
        let bytes = f.encode();
        assert_eq!(
            bytes[0],
            tabmesh_base::codec::VERSION,
            "frames start with the version"
        );
        assert_eq!(Frame::decode(&bytes), Ok(f.clone()), "{f:?}");
        // Encoding is deterministic.
        assert_eq!(f.encode(), bytes);
    }
}

#[test]
fn an_unknown_version_is_a_typed_error() {
    for f in sample_frames() {
        let mut bytes = f.encode();
        for v in [0u8, 2, 0xff] {
            bytes[0] = v;
            assert_eq!(
                Frame::decode(&bytes),
                Err(SyncError::Codec(CodecError::UnknownVersion {
                    found: v,
                    supported: tabmesh_base::codec::VERSION
                }))
            );
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    for f in sample_frames() {
        let bytes = f.encode();
        for cut in 0..bytes.len() {
            match Frame::decode(&bytes[..cut]) {
                Err(SyncError::Codec(CodecError::UnexpectedEnd { .. })) => {}
                other => panic!("{f:?} cut at {cut}: expected UnexpectedEnd, got {other:?}"),
            }
        }
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    for f in sample_frames() {
        let mut bytes = f.encode();
        bytes.push(0);
        assert_eq!(codec_err(&bytes), CodecError::TrailingBytes(1));
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(codec_err(&bytes), CodecError::TrailingBytes(4));
    }
}

#[test]
fn bad_tags_are_typed_errors() {
    // Layout: version (1) ‖ context (32) ‖ message tag (1) ‖ request id (8) ‖ body tag (1) ‖ …
    let mut delta = Frame {
        context: ctx(),
        message: Message::Delta(envelope(0, b"")),
    }
    .encode();
    delta[33] = 3;
    assert_eq!(
        codec_err(&delta),
        CodecError::InvalidTag {
            what: "message",
            tag: 3
        }
    );

    let mut r = req(1, Request::Summary).encode();
    assert_eq!(r[42], 0);
    // Tag 9 is the governance request (the last one).
    r[42] = 10;
    assert_eq!(
        codec_err(&r),
        CodecError::InvalidTag {
            what: "request",
            tag: 10
        }
    );

    // Tag 8 is the governance page (the last response).
    let mut p = resp(1, Response::PushAck { applied: 0 }).encode();
    p[42] = 9;
    assert_eq!(
        codec_err(&p),
        CodecError::InvalidTag {
            what: "response",
            tag: 9
        }
    );

    let mut refused = resp(1, Response::Refused(Refusal::Busy)).encode();
    let last = refused.len() - 1;
    refused[last] = 4;
    assert_eq!(
        codec_err(&refused),
        CodecError::InvalidTag {
            what: "refusal",
            tag: 4
        }
    );

    // An optional field's presence byte is a strict bool.
    let mut snap = req(1, Request::Snapshot { cursor: None }).encode();
    let last = snap.len() - 1;
    snap[last] = 2;
    assert_eq!(
        codec_err(&snap),
        CodecError::InvalidTag {
            what: "bool",
            tag: 2
        }
    );

    // A trie slot with an unknown kind.
    let node = TreeNode {
        at: TreeRef {
            owner: None,
            path: vec![],
        },
        slots: Some(vec![(1, TrieSlot::Subtree(Hash([1; 32])))]),
    };
    let mut tree = resp(1, Response::Tree { nodes: vec![node] }).encode();
    // … ‖ slot nibble ‖ slot kind ‖ hash (32): the kind is 33 bytes from the end.
    let at = tree.len() - 33;
    assert_eq!(tree[at], 0);
    tree[at] = 5;
    assert_eq!(
        codec_err(&tree),
        CodecError::InvalidTag {
            what: "trie slot",
            tag: 5
        }
    );
}

#[test]
fn invalid_trie_addresses_and_slots_are_refused() {
    let bad_nibble = req(
        1,
        Request::Tree {
            nodes: vec![TreeRef {
                owner: None,
                path: vec![16],
            }],
        },
    );
    assert_eq!(
        codec_err(&bad_nibble.encode()),
        CodecError::Invalid("trie path nibble")
    );

    let too_deep = req(
        1,
        Request::Tree {
            nodes: vec![TreeRef {
                owner: None,
                path: vec![0; MAX_PATH + 1],
            }],
        },
    );
    assert_eq!(
        codec_err(&too_deep.encode()),
        CodecError::TooLarge {
            what: "trie path",
            len: MAX_PATH + 1,
            max: MAX_PATH
        }
    );
    let deepest = req(
        1,
        Request::Tree {
            nodes: vec![TreeRef {
                owner: None,
                path: vec![15; MAX_PATH],
            }],
        },
    );
    assert_eq!(Frame::decode(&deepest.encode()), Ok(deepest));

    let slot = |n: u8| (n, TrieSlot::Subtree(Hash([n; 32])));
    let node = |slots| TreeNode {
        at: TreeRef {
            owner: None,
            path: vec![],
        },
        slots: Some(slots),
    };
    for slots in [
        vec![slot(3), slot(2)],
        vec![slot(2), slot(2)],
        vec![slot(16)],
    ] {
        let f = resp(
            1,
            Response::Tree {
                nodes: vec![node(slots)],
            },
        );
        assert_eq!(
            codec_err(&f.encode()),
            CodecError::Invalid("trie slot order")
        );
    }
    let f = resp(
        1,
        Response::Tree {
            nodes: vec![node((0..17).map(|n| slot(n % 16)).collect())],
        },
    );
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "trie slots",
            len: 17,
            max: 16
        }
    );
}

#[test]
fn counts_over_their_bound_are_refused() {
    let ids: Vec<DeltaId> = (0..=MAX_IDS)
        .map(|i| DeltaId(DetRng::new(i as u64).bytes()))
        .collect();
    let f = req(
        1,
        Request::DeltasSince {
            known: ids.clone(),
            cursor: None,
        },
    );
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "known heads",
            len: MAX_IDS + 1,
            max: MAX_IDS
        }
    );
    let f = req(1, Request::Deltas { ids: ids.clone() });
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "delta ids",
            len: MAX_IDS + 1,
            max: MAX_IDS
        }
    );
    // Exactly at the bound is fine.
    let f = req(
        1,
        Request::Deltas {
            ids: ids[..MAX_IDS].to_vec(),
        },
    );
    assert_eq!(Frame::decode(&f.encode()), Ok(f));

    let f = resp(
        1,
        Response::Deltas {
            deltas: vec![envelope(1, b"x"); MAX_DELTAS + 1],
            next: None,
            unavailable: vec![],
            history_pruned: false,
        },
    );
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "deltas",
            len: MAX_DELTAS + 1,
            max: MAX_DELTAS
        }
    );

    let refs = vec![
        TreeRef {
            owner: None,
            path: vec![]
        };
        MAX_TREE_NODES + 1
    ];
    assert_eq!(
        codec_err(&req(1, Request::Tree { nodes: refs }).encode()),
        CodecError::TooLarge {
            what: "trie nodes",
            len: MAX_TREE_NODES + 1,
            max: MAX_TREE_NODES
        }
    );

    let one = sample_actions().remove(0);
    let f = req(
        1,
        Request::Push {
            entities: vec![one; MAX_ENTITIES + 1],
        },
    );
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "entities",
            len: MAX_ENTITIES + 1,
            max: MAX_ENTITIES
        }
    );

    let f = Frame {
        context: ctx(),
        message: Message::Delta(envelope(MAX_DELTA_PARENTS + 1, b"")),
    };
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "delta parents",
            len: MAX_DELTA_PARENTS + 1,
            max: MAX_DELTA_PARENTS
        }
    );

    let big = vec![0u8; MAX_DELTA_CIPHERTEXT + 1];
    let f = Frame {
        context: ctx(),
        message: Message::Delta(envelope(1, &big)),
    };
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "delta ciphertext",
            len: MAX_DELTA_CIPHERTEXT + 1,
            max: MAX_DELTA_CIPHERTEXT
        }
    );
    // At the bound, it decodes.
    let f = Frame {
        context: ctx(),
        message: Message::Delta(envelope(1, &big[1..])),
    };
    assert_eq!(Frame::decode(&f.encode()), Ok(f));

    let f = Frame {
        context: ctx(),
        message: Message::Delta(Envelope {
            keys: vec![key_box(1, 0); MAX_KEY_BOXES + 1],
            ..envelope(1, b"")
        }),
    };
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "key boxes",
            len: MAX_KEY_BOXES + 1,
            max: MAX_KEY_BOXES
        }
    );

    let entry = GovEntry {
        envelope: envelope(0, b""),
        past: vec![],
        void: false,
    };
    let f = resp(
        1,
        Response::Governance {
            entries: vec![entry; MAX_GOV_ENTRIES + 1],
            next: None,
        },
    );
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "governance entries",
            len: MAX_GOV_ENTRIES + 1,
            max: MAX_GOV_ENTRIES
        }
    );
    // A governance entry's position names at most MAX_IDS operations.
    let f = resp(
        1,
        Response::Governance {
            entries: vec![GovEntry {
                envelope: envelope(0, b""),
                past: vec![did(1); MAX_IDS + 1],
                void: false,
            }],
            next: None,
        },
    );
    assert_eq!(
        codec_err(&f.encode()),
        CodecError::TooLarge {
            what: "governance entry position",
            len: MAX_IDS + 1,
            max: MAX_IDS
        }
    );
}

#[test]
fn a_count_larger_than_the_input_is_refused_before_allocating() {
    // Request::Deltas with no ids, then its count patched to claim 1000 (and then u32::MAX) ids.
    let mut bytes = req(1, Request::Deltas { ids: vec![] }).encode();
    assert_eq!(bytes.len(), 47);
    bytes[43..47].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(
        codec_err(&bytes),
        CodecError::UnexpectedEnd {
            needed: 32_000,
            remaining: 0
        }
    );
    bytes[43..47].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        codec_err(&bytes),
        CodecError::TooLarge {
            what: "delta ids",
            ..
        }
    ));

    // A ciphertext length far beyond the input.
    let mut w = Writer::new();
    w.id(&ctx()).u8(0).id(&ctx()).id(&MemberId([1; 32])).len(0);
    Hlc::new(1, 0).encode(&mut w);
    w.hash(&Hash([1; 32])).len(0).raw(&[0; 24]);
    w.u32(1_000);
    assert!(matches!(
        codec_err(&w.finish()),
        CodecError::UnexpectedEnd { .. }
    ));
    // A key-box count far beyond the input.
    let mut w = Writer::new();
    w.id(&ctx()).u8(0).id(&ctx()).id(&MemberId([1; 32])).len(0);
    Hlc::new(1, 0).encode(&mut w);
    w.hash(&Hash([1; 32])).len(1_000);
    assert!(matches!(
        codec_err(&w.finish()),
        CodecError::UnexpectedEnd { .. }
    ));
}

#[test]
fn a_malformed_entity_state_is_a_state_error() {
    let mut w = Writer::new();
    w.id(&ctx())
        .u8(1)
        .u64(7)
        .u8(5)
        .len(1)
        .bytes(b"not an entity state");
    assert!(matches!(
        Frame::decode(&w.finish()),
        Err(SyncError::State(_))
    ));

    let mut w = Writer::new();
    w.id(&ctx()).u8(2).u64(7).u8(3).len(1).bytes(&[]);
    assert!(matches!(
        Frame::decode(&w.finish()),
        Err(SyncError::State(_))
    ));
}

#[test]
fn a_frame_over_max_frame_is_refused_unread() {
    let bytes = vec![0u8; MAX_FRAME + 1];
    assert_eq!(
        Frame::decode(&bytes),
        Err(SyncError::FrameTooLarge {
            len: MAX_FRAME + 1,
            max: MAX_FRAME
        })
    );
    // The check comes before the version byte is read.
    let mut bytes = bytes;
    bytes[0] = tabmesh_base::codec::VERSION;
    assert!(matches!(
        Frame::decode(&bytes),
        Err(SyncError::FrameTooLarge { .. })
    ));
}

#[test]
fn the_empty_input_is_an_error() {
    assert_eq!(
        codec_err(&[]),
        CodecError::UnexpectedEnd {
            needed: 1,
            remaining: 0
        }
    );
}

/// Whatever decodes must re-encode to something that decodes to the same frame.
fn check_decoded(bytes: &[u8], what: &str) {
    if let Ok(f) = Frame::decode(bytes) {
        assert_eq!(
            Frame::decode(&f.encode()),
            Ok(f),
            "{what}: a decoded frame must round-trip"
        );
    }
}

#[test]
fn random_bytes_never_panic() {
    tabmesh_testkit::for_seeds(0..3_000, |seed, rng| {
        let len = rng.index(160);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        // Most inputs get past the version and the context to reach the message decoders.
        if len > 43 && rng.chance(0.8) {
            bytes[0] = tabmesh_base::codec::VERSION;
            bytes[33] = rng.below(3) as u8;
            bytes[42] = rng.below(10) as u8;
        }
        check_decoded(&bytes, &format!("seed {seed}"));
    });
}

#[test]
fn mutated_frames_never_panic() {
    let frames: Vec<Vec<u8>> = sample_frames().iter().map(Frame::encode).collect();
    tabmesh_testkit::for_seeds(0..2_000, |seed, rng| {
        let mut bytes = frames[rng.index(frames.len())].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(4) {
                0 | 1 => {
                    // Flip a byte (past the version, which is tested on its own).
                    let at = 1 + rng.index(bytes.len() - 1);
                    bytes[at] = rng.next_u64() as u8;
                }
                2 => {
                    let at = rng.index(bytes.len() + 1);
                    bytes.insert(at, rng.next_u64() as u8);
                }
                _ => {
                    let at = 1 + rng.index(bytes.len() - 1);
                    bytes.remove(at);
                }
            }
            if bytes.len() < 2 {
                break;
            }
        }
        check_decoded(&bytes, &format!("seed {seed}"));
    });
}

#[test]
fn a_summary_ends_with_the_gc_horizon_the_governance_digest_then_the_heads_stamp() {
    let horizon = Hlc::new(1_767_225_600_000, 3);
    let stamp = Hlc::new(1_767_225_630_000, 1);
    let summary = |gc_horizon, heads_stamp| {
        Frame {
            context: ctx(),
            message: Message::Response {
                id: 1,
                body: Response::Summary(Summary {
                    heads: vec![did(1)],
                    root: Hash([2; 32]),
                    entities: 3,
                    applied: 4,
                    pruned: false,
                    pending: 5,
                    gc_horizon,
                    governance: Hash([9; 32]),
                    heads_stamp,
                }),
            },
        }
        .encode()
    };
    let bytes = summary(horizon, stamp);
    let encoded = |hlc: Hlc| {
        let mut w = Writer::unversioned();
        hlc.encode(&mut w);
        w.as_slice().to_vec()
    };
    let stamp_at = bytes.len() - Hlc::ENCODED_LEN;
    assert_eq!(&bytes[stamp_at..], encoded(stamp).as_slice());
    let digest_at = stamp_at - 32;
    assert_eq!(&bytes[digest_at..stamp_at], &[9; 32]);
    assert_eq!(
        &bytes[digest_at - Hlc::ENCODED_LEN..digest_at],
        encoded(horizon).as_slice()
    );
    // Without them (the layouts before the heads' stamp, before the digest, and before the
    // horizon), the summary is truncated.
    for short in [
        &bytes[..stamp_at],
        &bytes[..digest_at],
        &bytes[..digest_at - Hlc::ENCODED_LEN],
    ] {
        assert!(matches!(
            Frame::decode(short),
            Err(SyncError::Codec(CodecError::UnexpectedEnd { .. }))
        ));
    }
    assert_ne!(bytes, summary(Hlc::default(), stamp));
    assert_ne!(bytes, summary(horizon, Hlc::default()));
}
