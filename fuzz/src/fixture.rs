//! The fixed governed context behind the valid seeds and the receive targets: deterministic keys,
//! entropy and clocks, built once per process.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use tabmesh_auth::{Entropy, InviteLink, Keypair, Role, SymKey};
use tabmesh_base::{ContextId, Hash, Hlc, MemberId, MemoryKv, NodeId};
use tabmesh_node::{NodeConfig, NodeCore, Seed};
use tabmesh_state::Action;
use tabmesh_sync::{
    Access, AppEvent, DeltaPayload, Envelope, Founder, GovOp, InviteeProof, Message, Output,
    Refusal, Replica, Request, Response, Sealed, SnapshotCursor, Summary, SyncConfig, SyncError,
    TreeRef,
};

use crate::kv::REPLICA_PREFIX;

/// Where the fixture's clocks start.
pub(crate) const T0: u64 = 1_000_000;

/// One day, in milliseconds.
const DAY: u64 = 86_400_000;

/// The peer every message to a receiver comes from.
pub(crate) const PEER: NodeId = NodeId([0xEE; 32]);

/// Where a receiving replica keeps its records.
const RECEIVER_PREFIX: &[u8] = b"r/";

/// The member key pair of test member `i` (0 founds the context, 1 is a founding member, 2 a
/// founding admin).
pub(crate) fn keypair(i: u8) -> Keypair {
    Keypair::from_secret([100 + i; 32])
}

/// The member id of test member `i`.
pub(crate) fn member(i: u8) -> MemberId {
    MemberId(keypair(i).public())
}

/// What test member `i` brings to a replica.
pub(crate) fn access(i: u8) -> Access {
    Access {
        me: keypair(i),
        entropy: Entropy::from_seed([i + 1; 32]),
        keys: Vec::new(),
    }
}

/// Drains a replica's outputs.
pub(crate) fn drain(r: &mut Replica) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

/// Everything the creator of the fixture context made, with the real encoders' inputs.
#[derive(Debug)]
pub(crate) struct Material {
    /// The context.
    pub(crate) context: ContextId,
    /// Its genesis delta.
    pub(crate) genesis: Envelope,
    /// Every delta of the creator, genesis first: two writes (one with events), a key rotation,
    /// a write in the new epoch.
    pub(crate) envelopes: Vec<Envelope>,
    /// Their decrypted payloads.
    pub(crate) payloads: Vec<DeltaPayload>,
    /// The epoch keys.
    pub(crate) keys: Vec<SymKey>,
    /// An invitation link the creator made.
    pub(crate) link: InviteLink,
    /// Sealed requests from the creator to [`PEER`] (one with an invitee proof).
    pub(crate) sealed: Vec<Sealed>,
    /// One request of every kind.
    pub(crate) requests: Vec<Request>,
    /// The creator's answers to them, and every refusal.
    pub(crate) responses: Vec<Response>,
    /// The creator's entity states.
    pub(crate) entities: Vec<Action>,
    /// The creator's summary.
    pub(crate) summary: Summary,
    /// The id of the summary request a fresh receiver ([`receiver`]) sends [`PEER`].
    pub(crate) session_request: u64,
    /// Everything the creator persisted, under [`REPLICA_PREFIX`].
    pub(crate) store: MemoryKv,
    /// Real sync sessions of each receiver flavour with the creator, as
    /// [`replica_session`](crate::replica_session) inputs.
    pub(crate) transcripts: Vec<Vec<u8>>,
}

/// The fixture, built once.
pub(crate) fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(build)
}

fn build() -> Material {
    let founders = [
        Founder {
            member: member(1),
            role: Role::Member,
        },
        Founder {
            member: member(2),
            role: Role::Admin,
        },
    ];
    let mut creator = Replica::create(
        REPLICA_PREFIX,
        SyncConfig::default(),
        0,
        T0,
        access(0),
        Hash::ZERO,
        &founders,
        Hlc::new(T0 - 1, 0),
        [0x5a; 32],
    )
    .expect("the fixture context is founded");
    let context = creator.context();
    let mut store = MemoryKv::new();
    let mut envelopes = Vec::new();
    let mut collect = |r: &mut Replica, envelopes: &mut Vec<Envelope>| {
        let mut sent = Vec::new();
        for o in drain(r) {
            match o {
                Output::Persist(b) => store.apply(&b),
                Output::Broadcast(env) => envelopes.push(env),
                Output::Send { message, .. } => sent.push(message),
                Output::Event(_) => {}
            }
        }
        sent
    };
    collect(&mut creator, &mut envelopes);
    creator
        .commit(T0 + 1, Hlc::new(T0 + 1, 0), |txn| {
            txn.register("title")?.set(b"hello")?;
            txn.counter("visits")?.increment(3)?;
            txn.map("m")?.insert(b"k", b"v")?;
            Ok::<(), SyncError>(())
        })
        .expect("the first write");
    collect(&mut creator, &mut envelopes);
    creator
        .commit_with(T0 + 2, Hlc::new(T0 + 2, 0), 1, None, |txn| {
            txn.text("doc")?.push_str("abc")?;
            txn.set("tags")?.add(b"x")?;
            txn.list("l")?.push(b"1")?;
            txn.pn_counter("pn")?.add(-2)?;
            txn.map("m")?.map(b"inner")?.insert(b"a", b"b")?;
            let events = vec![
                AppEvent {
                    kind: "changed".into(),
                    data: b"{\"n\":1}".to_vec(),
                    handler: Some("on_change".into()),
                },
                AppEvent {
                    kind: "note".into(),
                    data: Vec::new(),
                    handler: None,
                },
            ];
            Ok::<_, SyncError>(((), events))
        })
        .expect("the write with events");
    collect(&mut creator, &mut envelopes);
    creator
        .govern(T0 + 3, Hlc::new(T0 + 3, 0), GovOp::Rotate)
        .expect("the rotation");
    collect(&mut creator, &mut envelopes);
    creator
        .commit(T0 + 4, Hlc::new(T0 + 4, 0), |txn| {
            txn.map("m")?.delete(b"k")?;
            txn.register("title")?.clear()?;
            txn.text("doc")?.delete(1, 1)?;
            Ok::<(), SyncError>(())
        })
        .expect("a write in the new epoch");
    collect(&mut creator, &mut envelopes);
    assert_eq!(envelopes.len(), 5, "the fixture's deltas");
    let genesis = envelopes[0].clone();
    let envelopes_made = envelopes.clone();

    // The epoch keys, from the key boxes sealed to the creator; then every payload.
    let mut keys: BTreeMap<Hash, SymKey> = BTreeMap::new();
    for env in &envelopes {
        for b in env.keys.iter().filter(|b| b.to == member(0)) {
            for k in b
                .open(&context, &keypair(0))
                .expect("the creator's key box opens")
            {
                keys.insert(k.id(), k);
            }
        }
    }
    let payloads = envelopes
        .iter()
        .map(|env| {
            let key = keys
                .get(&env.epoch)
                .expect("the epoch key of a fixture delta");
            let plain = tabmesh_auth::open(key, &env.nonce, env.aad().as_bytes(), &env.ciphertext)
                .expect("a fixture payload decrypts");
            DeltaPayload::decode(&plain).expect("a fixture payload decodes")
        })
        .collect();

    let link = creator
        .invite(Role::Member, T0 + DAY, "/dns4/relay.example/tcp/443/wss")
        .expect("the creator invites");
    collect(&mut creator, &mut envelopes);

    let summary_request = Message::Request {
        id: 1,
        body: Request::Summary,
    };
    let from = NodeId([0x11; 32]);
    let sealed = vec![
        creator
            .seal_message(from, PEER, &summary_request, None, None)
            .expect("a sealed request"),
        creator
            .seal_message(
                from,
                PEER,
                &summary_request,
                None,
                Some(InviteeProof::new(&link, &member(3))),
            )
            .expect("a sealed request with an invitee proof"),
    ];

    let entities: Vec<Action> = creator.state().entities().cloned().collect();
    let entity_ids: Vec<_> = entities.iter().map(Action::id).collect();
    let delta_ids: Vec<_> = envelopes.iter().map(Envelope::id).collect();
    let requests = vec![
        Request::Summary,
        Request::DeltasSince {
            known: vec![delta_ids[0]],
            cursor: None,
        },
        Request::DeltasSince {
            known: Vec::new(),
            cursor: Some(1),
        },
        Request::Deltas {
            ids: vec![delta_ids[1], tabmesh_base::DeltaId([9; 32])],
        },
        Request::Tree {
            nodes: vec![
                TreeRef {
                    owner: None,
                    path: Vec::new(),
                },
                TreeRef {
                    owner: None,
                    path: vec![1],
                },
                TreeRef {
                    owner: Some(entity_ids[0]),
                    path: vec![0, 15],
                },
            ],
        },
        Request::Entities {
            ids: entity_ids.iter().take(4).copied().collect(),
        },
        Request::Push {
            entities: entities.iter().take(3).cloned().collect(),
        },
        Request::Snapshot { cursor: None },
        Request::Snapshot {
            cursor: Some(SnapshotCursor {
                snapshot: 1,
                index: 2,
            }),
        },
        Request::Have {
            ids: delta_ids.clone(),
        },
        Request::Governance { from: 0 },
        Request::Forget {
            horizon: Hlc::new(T0, 0),
            ids: entity_ids.iter().take(2).copied().collect(),
        },
    ];
    let mut responses = Vec::new();
    for (i, req) in requests.iter().enumerate() {
        creator.handle_request(T0 + 10, PEER, i as u64, req.clone());
        for message in collect(&mut creator, &mut envelopes) {
            if let Message::Response { body, .. } = message {
                responses.push(body);
            }
        }
    }
    responses.extend([
        Response::Refused(Refusal::Busy),
        Response::Refused(Refusal::UnknownContext),
        Response::Refused(Refusal::Invalid),
        Response::Refused(Refusal::NothingToSnapshot),
        Response::PushAck { applied: 3 },
    ]);

    // Real sessions: each receiver flavour against the creator, until it asks nothing more.
    let mut transcripts = Vec::new();
    for flavour in 0..FLAVOURS {
        let (mut r, mut outputs) = receiver_with_outputs(context, &genesis, flavour);
        let mut transcript = vec![flavour];
        for round in 0..64u64 {
            let asked = requests_to_peer(&outputs);
            if asked.is_empty() {
                break;
            }
            for (id, body) in asked {
                creator.handle_request(T0 + 20 + round, RECEIVER_NODE, id, body);
                for message in collect(&mut creator, &mut envelopes) {
                    if let Message::Response { id, body } = message {
                        let frame = tabmesh_sync::Frame {
                            context,
                            message: Message::Response {
                                id,
                                body: body.clone(),
                            },
                        };
                        push_record(&mut transcript, &frame.encode());
                        r.handle_response(T0 + 20 + round, PEER, id, body);
                    }
                }
            }
            outputs = drain(&mut r);
        }
        transcripts.push(transcript);
    }

    // A fresh receiver starts a session with `PEER`: the id its answer must carry.
    let (_, outputs) = receiver_with_outputs(context, &genesis, 0);
    let session_request = outputs
        .iter()
        .find_map(|o| match o {
            Output::Send {
                to,
                message:
                    Message::Request {
                        id,
                        body: Request::Summary,
                    },
            } if *to == PEER => Some(*id),
            _ => None,
        })
        .expect("a fresh receiver asks PEER for its summary");

    Material {
        context,
        genesis,
        envelopes: envelopes_made,
        payloads,
        keys: keys.into_values().collect(),
        link,
        sealed,
        requests,
        responses,
        summary: creator.summary(),
        entities,
        session_request,
        store,
        transcripts,
    }
}

/// The node id of a receiver (what the creator sees requests come from).
const RECEIVER_NODE: NodeId = NodeId([0xDD; 32]);

/// How many receiver flavours [`receiver_with_outputs`] builds.
pub(crate) const FLAVOURS: u8 = 3;

/// A fresh replica of founding member 1, and what it output while starting a session with
/// [`PEER`]. Flavour 0: it applied the genesis; 1: the same, configured to compare states by
/// Merkle trie whatever the gap; 2: empty (a joiner: the snapshot path).
fn receiver_with_outputs(
    context: ContextId,
    genesis: &Envelope,
    flavour: u8,
) -> (Replica, Vec<Output>) {
    let mut config = SyncConfig::default();
    if flavour == 1 {
        config.delta_gap_threshold = 0;
    }
    let mut r = Replica::new(context, RECEIVER_PREFIX, config, 7, T0, access(1));
    if flavour != 2 {
        r.handle_delta(T0, None, genesis.clone());
    }
    r.add_peer(T0, PEER);
    r.sync_now(T0);
    let outputs = drain(&mut r);
    (r, outputs)
}

/// A fresh replica of founding member 1 that applied the genesis and asked [`PEER`] for its
/// summary (a session waits for the answer, id [`Material::session_request`]).
pub(crate) fn receiver(m: &Material) -> Replica {
    receiver_with_outputs(m.context, &m.genesis, 0).0
}

/// A fresh receiver of flavour `flavour % FLAVOURS` (see [`receiver_with_outputs`]) and its
/// outputs so far.
pub(crate) fn receiver_of(m: &Material, flavour: u8) -> (Replica, Vec<Output>) {
    receiver_with_outputs(m.context, &m.genesis, flavour % FLAVOURS)
}

/// The requests a replica sent [`PEER`] among `outputs`.
pub(crate) fn requests_to_peer(outputs: &[Output]) -> Vec<(u64, Request)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: Message::Request { id, body },
            } if *to == PEER => Some((*id, body.clone())),
            _ => None,
        })
        .collect()
}

/// Appends one record of a session transcript: `u32` length (little-endian), then the frame.
pub(crate) fn push_record(out: &mut Vec<u8>, frame: &[u8]) {
    out.extend_from_slice(
        &u32::try_from(frame.len())
            .expect("a small frame")
            .to_le_bytes(),
    );
    out.extend_from_slice(frame);
}

/// The node-level fixture: a host node that founded a context, and a second node that joined it
/// with an invitation, whose messages to the host are the valid seeds.
#[derive(Debug)]
pub(crate) struct NodeMaterial {
    /// The host's context.
    pub(crate) context: ContextId,
    /// The joined node (every message to a host comes from it).
    pub(crate) peer: NodeId,
    /// Wire messages to the host: the joined node's sealed requests and gossip, the host's own
    /// later deltas (a fresh host has not seen them), a key request.
    pub(crate) messages: Vec<Vec<u8>>,
}

/// The host's node key, seed and founding time: a fresh [`host`] is the fixture's host as it was
/// right after founding its context.
fn host_node() -> NodeCore {
    NodeCore::new(
        Keypair::from_secret([1; 32]),
        NodeConfig::default(),
        Seed::from_u64(1),
    )
}

/// The node fixture, built once.
pub(crate) fn node_material() -> &'static NodeMaterial {
    static MATERIAL: OnceLock<NodeMaterial> = OnceLock::new();
    MATERIAL.get_or_init(build_nodes)
}

fn build_nodes() -> NodeMaterial {
    use tabmesh_node::Output as N;
    let mut a = host_node();
    let (context, _) = a
        .create_context(T0, None, b"")
        .expect("the host founds a context");
    while a.poll_output().is_some() {}
    let link = a
        .invite(context, Role::Member, T0 + DAY, "")
        .expect("the host invites");
    let mut b = NodeCore::new(
        Keypair::from_secret([2; 32]),
        NodeConfig::default(),
        Seed::from_u64(2),
    );
    let peer = b.id();
    b.join_context(T0 + 1, &link, None)
        .expect("the second node joins");
    a.peer_joined(T0 + 1, context, peer);
    b.peer_joined(T0 + 1, context, a.id());
    a.commit(T0 + 2, context, |txn| {
        txn.register("title")?.set(b"hello")?;
        Ok(())
    })
    .expect("the host writes");
    let mut messages = Vec::new();
    // Deliver between the two until quiet (timers aside), keeping what reaches the host.
    for now in T0 + 3..T0 + 67 {
        let mut to_a = Vec::new();
        let mut to_b = Vec::new();
        while let Some(o) = a.poll_output() {
            match o {
                N::Publish { bytes, .. } => {
                    messages.push(bytes.clone());
                    to_b.push(bytes);
                }
                N::Send { bytes, .. } => to_b.push(bytes),
                _ => {}
            }
        }
        while let Some(o) = b.poll_output() {
            if let N::Publish { bytes, .. } | N::Send { bytes, .. } = o {
                messages.push(bytes.clone());
                to_a.push(bytes);
            }
        }
        if to_a.is_empty() && to_b.is_empty() {
            break;
        }
        for bytes in to_a {
            a.handle_message(now, peer, &bytes);
        }
        for bytes in to_b {
            b.handle_message(now, a.id(), &bytes);
        }
    }
    assert!(b.member(&context).is_some(), "the second node is a member");
    let epoch = a
        .membership(&context)
        .and_then(|m| m.epoch)
        .expect("the context has an epoch");
    messages.push(tabmesh_node::Wire::KeyNeeded { context, epoch }.encode());
    messages.sort();
    messages.dedup();
    NodeMaterial {
        context,
        peer,
        messages,
    }
}

/// A fresh host: the fixture's host right after founding its context, with the joined node as a
/// peer.
pub(crate) fn host(m: &NodeMaterial) -> NodeCore {
    let mut n = host_node();
    let (context, _) = n
        .create_context(T0, None, b"")
        .expect("the host founds its context");
    assert_eq!(context, m.context, "the host is deterministic");
    n.peer_joined(T0, context, m.peer);
    while n.poll_output().is_some() {}
    n
}
