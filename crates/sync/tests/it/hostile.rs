//! Nothing a peer sends may panic a replica: random (but well-formed on the wire) requests,
//! responses and deltas, over many seeds, against a replica in the middle of its protocols.

use tabmesh_testkit::test;

use std::sync::OnceLock;
use tabmesh_auth::{Entropy, Signature};

use tabmesh_base::{DeltaId, DetRng, EntityId, Hash, Hlc, MemberId, MemoryKv, NodeId};
use tabmesh_state::{Action, State, TrieSlot};
use tabmesh_sync::{
    Envelope, Frame, GovEntry, Message, Output, Refusal, Replica, Request, Response,
    SnapshotCursor, Summary, SyncConfig, SyncError, TreeNode, TreeRef,
};

use super::support::{
    ctx, drain_outputs, genesis, genesis_key, keypair, requests_in, seal_by_hand, Sim, MAP,
};

const PEERS: [NodeId; 2] = [NodeId([50; 32]), NodeId([51; 32])];

/// What a hostile peer draws its messages from: real ids, envelopes and entity states (so the
/// messages reach deep into the protocols), and random ones.
struct Material {
    deltas: Vec<Envelope>,
    /// Governance log entries (real and forged positions).
    gov: Vec<GovEntry>,
    governance: Vec<Hash>,
    ids: Vec<DeltaId>,
    actions: Vec<Action>,
    entity_ids: Vec<EntityId>,
    roots: Vec<Hash>,
}

fn material(victim: &Replica) -> Material {
    // Another member's history on the same genesis (valid deltas the victim has not seen),
    // compatible types.
    let mut other = Sim::manual(2);
    for k in 0..6u8 {
        other.put(1, &[k], b"x");
    }
    other.write(1, |t| t.counter("c")?.increment(5));
    other.write(1, |t| t.text("t")?.insert(0, "hey"));
    let mut deltas = other.nodes[1].broadcasts.clone();
    // Clashing types: "m" as a counter.
    let mut clash = State::new(b"c/");
    let mut t = clash.txn(MemberId([66; 32]), Hlc::new(5, 0));
    t.counter(MAP).unwrap().increment(1).unwrap();
    t.commit();
    let mut actions: Vec<Action> = other.r(1).state().entities().cloned().collect();
    actions.extend(victim.state().entities().cloned());
    actions.extend(clash.entities().cloned());
    let mut entity_ids: Vec<EntityId> = actions.iter().map(Action::id).collect();
    entity_ids.push(EntityId([3; 32]));
    let mut ids: Vec<DeltaId> = deltas.iter().map(Envelope::id).collect();
    ids.extend(victim.dag().heads());
    ids.push(DeltaId([1; 32]));
    // A few envelopes on real parents: garbage ciphertext under a bad signature, and garbage
    // plaintext properly sealed and signed by a member and by a non-member.
    let key = genesis_key();
    for (n, p) in ids.clone().iter().enumerate().take(3) {
        deltas.push(Envelope {
            context: ctx(),
            author: MemberId([9; 32]),
            parents: vec![*p],
            hlc: Hlc::new(n as u64, 0),
            epoch: Hash([n as u8; 32]),
            keys: Vec::new(),
            nonce: [n as u8; 24],
            ciphertext: vec![n as u8; n * 7],
            signature: Signature([n as u8; 64]),
        });
        for author in [3, 50] {
            deltas.push(seal_by_hand(
                &keypair(author),
                vec![*p],
                Hlc::new(n as u64, 1),
                &key,
                &vec![n as u8; n * 7],
                n as u8,
            ));
        }
    }
    // Governance entries: the genesis at its true position and at forged ones, and a data delta
    // posing as an operation.
    let g = genesis().envelope.clone();
    let gov = vec![
        GovEntry {
            envelope: g.clone(),
            past: vec![],
            void: false,
        },
        GovEntry {
            envelope: g.clone(),
            past: vec![g.id(), DeltaId([7; 32])],
            void: true,
        },
        GovEntry {
            envelope: deltas[0].clone(),
            past: vec![g.id()],
            void: false,
        },
    ];
    let governance = vec![victim.summary().governance, Hash::ZERO, Hash([6; 32])];
    let roots = vec![
        victim.state().root_hash(),
        other.root(1),
        Hash::ZERO,
        Hash([4; 32]),
    ];
    Material {
        deltas,
        gov,
        governance,
        ids,
        actions,
        entity_ids,
        roots,
    }
}

fn some<T: Clone>(rng: &mut DetRng, from: &[T], max: u64) -> Vec<T> {
    (0..rng.below(max + 1))
        .filter_map(|_| rng.pick(from).cloned())
        .collect()
}

fn any_u64(rng: &mut DetRng) -> u64 {
    match rng.below(4) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.below(10),
        _ => rng.next_u64(),
    }
}

fn tree_ref(rng: &mut DetRng, m: &Material) -> TreeRef {
    TreeRef {
        owner: if rng.chance(0.5) {
            None
        } else {
            rng.pick(&m.entity_ids).copied()
        },
        path: {
            let len = if rng.chance(0.1) { 65 } else { rng.below(4) };
            (0..len).map(|_| rng.below(16) as u8).collect()
        },
    }
}

fn cursor(rng: &mut DetRng) -> Option<SnapshotCursor> {
    rng.chance(0.7).then(|| SnapshotCursor {
        snapshot: any_u64(rng),
        index: any_u64(rng),
    })
}

fn random_response(rng: &mut DetRng, m: &Material) -> Response {
    match rng.below(8) {
        0 => Response::Summary(Summary {
            heads: some(rng, &m.ids, 4),
            root: *rng.pick(&m.roots).unwrap(),
            entities: any_u64(rng),
            applied: any_u64(rng),
            pruned: rng.chance(0.5),
            pending: 0,
            gc_horizon: Hlc::new(any_u64(rng), rng.below(3) as u32),
            governance: *rng.pick(&m.governance).unwrap(),
            heads_stamp: Hlc::new(any_u64(rng), rng.below(3) as u32),
        }),
        1 => Response::Deltas {
            deltas: some(rng, &m.deltas, 5),
            next: rng.chance(0.5).then(|| any_u64(rng)),
            unavailable: some(rng, &m.ids, 3),
            history_pruned: rng.chance(0.5),
        },
        2 => Response::Tree {
            nodes: (0..rng.below(5))
                .map(|_| {
                    let at = tree_ref(rng, m);
                    let slots = rng.chance(0.8).then(|| {
                        let present: Vec<u8> = (0..16u8).filter(|_| rng.chance(0.3)).collect();
                        let mut s: Vec<(u8, TrieSlot)> = present
                            .into_iter()
                            .map(|n| {
                                let slot = if rng.chance(0.5) {
                                    TrieSlot::Subtree(Hash(rng.bytes()))
                                } else {
                                    TrieSlot::Entity(
                                        *rng.pick(&m.entity_ids).unwrap(),
                                        Hash(rng.bytes()),
                                    )
                                };
                                (n, slot)
                            })
                            .collect();
                        s.sort_by_key(|(n, _)| *n);
                        s
                    });
                    TreeNode { at, slots }
                })
                .collect(),
        },
        3 => Response::Entities {
            entities: some(rng, &m.actions, 6),
        },
        4 => Response::PushAck {
            applied: rng.next_u64() as u32,
        },
        5 => Response::SnapshotPage {
            heads: some(rng, &m.ids, 3),
            heads_stamp: Hlc::new(any_u64(rng), rng.below(3) as u32),
            root: *rng.pick(&m.roots).unwrap(),
            total: any_u64(rng),
            entities: some(rng, &m.actions, 8),
            satisfied: some(rng, &m.ids, 5),
            next: cursor(rng),
        },
        6 => Response::Governance {
            entries: some(rng, &m.gov, 3),
            next: rng.chance(0.3).then(|| rng.below(4) as u32),
        },
        _ => Response::Refused(
            *rng.pick(&[Refusal::Busy, Refusal::Invalid, Refusal::NothingToSnapshot])
                .unwrap(),
        ),
    }
}

fn random_request(rng: &mut DetRng, m: &Material) -> Request {
    match rng.below(9) {
        0 => Request::Summary,
        1 => Request::DeltasSince {
            known: some(rng, &m.ids, 4),
            cursor: rng.chance(0.5).then(|| any_u64(rng)),
        },
        2 => Request::Deltas {
            ids: some(rng, &m.ids, 6),
        },
        3 => Request::Tree {
            nodes: (0..rng.below(6)).map(|_| tree_ref(rng, m)).collect(),
        },
        4 => Request::Entities {
            ids: some(rng, &m.entity_ids, 6),
        },
        5 => Request::Push {
            entities: some(rng, &m.actions, 6),
        },
        6 => Request::Forget {
            horizon: Hlc::new(any_u64(rng), 0),
            ids: some(rng, &m.entity_ids, 6),
        },
        7 => Request::Governance {
            from: any_u64(rng) as u32,
        },
        _ => Request::Snapshot {
            cursor: cursor(rng),
        },
    }
}

/// Only what the wire can carry reaches a replica.
fn on_the_wire(message: Message) -> Option<Message> {
    let frame = Frame {
        context: ctx(),
        message,
    };
    Frame::decode(&frame.encode()).ok().map(|f| f.message)
}

/// The victim's store: node 0 with some history and state (built once, whatever the seed).
fn victim_store() -> &'static (MemoryKv, u64) {
    static STORE: OnceLock<(MemoryKv, u64)> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut sim = Sim::manual(1);
        for k in 0..8u8 {
            sim.put(0, &[k], b"v");
        }
        sim.write(0, |t| t.counter("c")?.increment(1));
        (sim.nodes[0].kv.clone(), sim.now)
    })
}

fn victim(seed: u64) -> Replica {
    let (kv, now) = victim_store();
    let mut config = SyncConfig::default();
    config.snapshot_page_entities = 3;
    config.max_merkle_requests = 64;
    let entropy = Entropy::from_seed([seed as u8; 32]);
    let mut r = Replica::open(ctx(), b"n0/", config, seed, *now, kv, entropy).unwrap();
    for p in PEERS {
        r.add_peer(*now, p);
    }
    r
}

fn record(out: &[Output], outstanding: &mut Vec<(NodeId, u64)>) {
    for (to, id, _) in requests_in(out) {
        outstanding.push((to, id));
    }
}

#[test]
fn random_peer_input_never_panics_a_replica() {
    let m = material(&victim(0));
    tabmesh_testkit::for_seeds(0..80, |seed, rng| {
        let mut r = victim(seed);
        let mut now = super::support::T0 + 10;
        let mut outstanding: Vec<(NodeId, u64)> = Vec::new();
        for _ in 0..60 {
            match rng.below(6) {
                0 => r.sync_now(now),
                1 | 2 => {
                    // Answer one of our requests (or a stray id) with something.
                    let (peer, id) = if !outstanding.is_empty() && rng.chance(0.9) {
                        outstanding.remove(rng.index(outstanding.len()))
                    } else {
                        (PEERS[rng.index(2)], any_u64(rng))
                    };
                    let body = random_response(rng, &m);
                    if let Some(Message::Response { id, body }) =
                        on_the_wire(Message::Response { id, body })
                    {
                        r.handle_response(now, peer, id, body);
                    }
                }
                3 => {
                    let body = random_request(rng, &m);
                    if let Some(Message::Request { id, body }) =
                        on_the_wire(Message::Request { id: 9, body })
                    {
                        r.handle_request(now, PEERS[rng.index(2)], id, body);
                        let out = drain_outputs(&mut r);
                        let answers = out
                            .iter()
                            .filter(|o| {
                                matches!(
                                    o,
                                    Output::Send {
                                        message: Message::Response { .. },
                                        ..
                                    }
                                )
                            })
                            .count();
                        assert_eq!(answers, 1, "seed {seed}: one answer per request");
                        record(&out, &mut outstanding);
                    }
                }
                4 => {
                    let env = rng.pick(&m.deltas).unwrap().clone();
                    r.handle_delta(now, Some(PEERS[rng.index(2)]), env);
                }
                _ => {
                    now += rng.below(20_000);
                    if r.poll_timeout() <= now {
                        r.handle_timeout(now);
                    }
                }
            }
            let out = drain_outputs(&mut r);
            record(&out, &mut outstanding);
            assert!(r.poll_timeout() > 0);
        }
        // Still a working replica: it commits, and its summary matches its state.
        let before = r.summary().applied;
        let res = r.commit::<(), SyncError>(now, Hlc::new(now + 1, 0), |t| {
            t.map("after")?.insert(b"k", b"v")?;
            Ok(())
        });
        assert!(res.is_ok(), "seed {seed}: {res:?}");
        drain_outputs(&mut r);
        assert!(r.summary().applied > before || r.summary().applied > 0);
        assert_eq!(r.summary().root, r.state().root_hash());
    });
}

#[test]
fn random_responses_to_every_session_step_never_panic() {
    // Drive sessions deliberately: always answer the latest request, so walks go deep.
    let m = material(&victim(0));
    tabmesh_testkit::for_seeds(0..80, |seed, rng| {
        let mut r = victim(seed ^ 0xabc);
        let mut now = super::support::T0 + 10;
        for _ in 0..5 {
            r.sync_now(now);
            for _ in 0..30 {
                let out = drain_outputs(&mut r);
                let Some((peer, id, _)) = requests_in(&out).pop() else {
                    break;
                };
                let body = random_response(rng, &m);
                if let Some(Message::Response { id, body }) =
                    on_the_wire(Message::Response { id, body })
                {
                    r.handle_response(now, peer, id, body);
                }
            }
            now += 40_000;
            r.handle_timeout(now);
            drain_outputs(&mut r);
            assert!(
                r.is_idle() || r.poll_timeout() <= now + 40_000,
                "seed {seed}"
            );
        }
        let _ = drain_outputs(&mut r);
    });
}
