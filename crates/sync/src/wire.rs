//! The sync wire format: every message a node sends another, in one versioned codec.
//!
//! A [`Frame`] names its context and carries a [`Message`]: a gossiped delta, a request (with an id
//! the response echoes) or a response. Every count and size is bounded by a constant below, checked
//! while decoding before anything is allocated; a frame over [`MAX_FRAME`] is refused unread.

use tabmesh_base::{
    codec::{Reader, Writer},
    CodecError, ContextId, DeltaId, EntityId, Hash, Hlc,
};
use tabmesh_state::{Action, TrieSlot};

use crate::{Envelope, SyncError};

/// The largest encoded frame: 4 MiB. Pages and batches are sized to stay well below it.
pub const MAX_FRAME: usize = 4 << 20;
/// The most delta ids one message carries (heads, pulls, satisfied ids of a snapshot page).
pub const MAX_IDS: usize = 1024;
/// The most deltas one response carries.
pub const MAX_DELTAS: usize = 256;
/// The most trie nodes one Merkle request or response names.
pub const MAX_TREE_NODES: usize = 256;
/// The most entity states one message carries.
pub const MAX_ENTITIES: usize = 1024;
/// The largest encoded entity state (a counter or set at its slot/tag bounds fits).
pub const MAX_ENTITY_BYTES: usize = 512 << 10;
/// The longest trie path (nibbles of a 32-byte id).
pub const MAX_PATH: usize = 64;

/// One message about one context.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// The context it is about.
    pub context: ContextId,
    /// The message.
    pub message: Message,
}

/// What a frame carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A delta, broadcast on the context's topic.
    Delta(Envelope),
    /// A request to one peer.
    Request {
        /// Chosen by the requester; echoed by the response.
        id: u64,
        /// What is asked.
        body: Request,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// The answer.
        body: Response,
    },
}

/// A replica's sync summary: what a heads exchange compares.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    /// DAG heads (at most [`MAX_IDS`]; a replica with more sends the first ones).
    pub heads: Vec<DeltaId>,
    /// Merkle root of the state.
    pub root: Hash,
    /// Number of entities (tombstones included).
    pub entities: u64,
    /// Number of applied deltas retained, with or without bodies.
    pub applied: u64,
    /// Whether the replica dropped history (pruned deltas or a snapshot boundary): it may be unable
    /// to serve old deltas.
    pub pruned: bool,
    /// Number of deltas waiting for parents.
    pub pending: u64,
    /// The sender's GC horizon ([`State::gc_horizon`](tabmesh_state::State::gc_horizon)): it may
    /// have collected any deleted entity whose every stamp is older. In a Merkle comparison, an
    /// entity the sender lacks that is entirely older than this is its collected deletion, and the
    /// other side forgets it instead of pushing it back.
    pub gc_horizon: Hlc,
    /// A digest of the governance operations the sender applied: replicas that differ in it do
    /// not compare states (a state may still hold what a removal voids), they exchange deltas.
    pub governance: Hash,
    /// The largest stamp among `heads` as the sender knows them: a head it holds only as
    /// covered (a checkpoint of a snapshot or a Merkle repair) counts as the bound the peer that
    /// covered it vouched for. A replica that covers `heads` by a Merkle repair keeps it, so a
    /// governance operation it writes on them (a join) is stamped after them.
    pub heads_stamp: Hlc,
}

impl Summary {
    /// Neither state nor history.
    pub fn is_empty(&self) -> bool {
        self.entities == 0 && self.applied == 0
    }
}

/// An address in a Merkle trie: the trie over `owner`'s children (`None`: the root fields), and a
/// path of nibbles from its top.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TreeRef {
    /// Whose children.
    pub owner: Option<EntityId>,
    /// Nibbles (each `0..16`) from the top.
    pub path: Vec<u8>,
}

/// One trie node in a Merkle response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// Where.
    pub at: TreeRef,
    /// Its non-empty slots in nibble order; `None` when the responder has no node there.
    pub slots: Option<Vec<(u8, TrieSlot)>>,
}

/// Resumes a snapshot stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotCursor {
    /// The responder's frozen snapshot.
    pub snapshot: u64,
    /// Index of the next entity.
    pub index: u64,
}

/// What one peer asks another.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// The peer's [`Summary`].
    Summary,
    /// The deltas the requester lacks given its heads, one page from `cursor`.
    DeltasSince {
        /// The requester's heads.
        known: Vec<DeltaId>,
        /// Where the previous page ended.
        cursor: Option<u64>,
    },
    /// These deltas (missing parents).
    Deltas {
        /// Their ids.
        ids: Vec<DeltaId>,
    },
    /// These Merkle trie nodes.
    Tree {
        /// Their addresses.
        nodes: Vec<TreeRef>,
    },
    /// These entities' full states.
    Entities {
        /// Their ids.
        ids: Vec<EntityId>,
    },
    /// Join these entity states (the other half of a Merkle repair).
    Push {
        /// Full entity states.
        entities: Vec<Action>,
    },
    /// A page of the peer's snapshot (`None`: start a new one).
    Snapshot {
        /// Where the previous page ended.
        cursor: Option<SnapshotCursor>,
    },
    /// Which of these deltas the peer has applied (with or without their bodies).
    Have {
        /// Their ids.
        ids: Vec<DeltaId>,
    },
    /// The responder's governance log from index `from` (a snapshot joiner asks for it after the
    /// snapshot's pages and installs it before the state, so it knows who may write).
    Governance {
        /// The first index wanted.
        from: u32,
    },
    /// Forget these entities: the requester pulled them in a Merkle comparison and dropped them,
    /// each being entirely older than its GC horizon `horizon` (a deletion it collected). The
    /// responder forgets, with its subtree, each one it holds that is entirely older than
    /// `horizon` capped by its own retention, and answers [`Response::PushAck`] with how many.
    Forget {
        /// The requester's GC horizon.
        horizon: Hlc,
        /// The entities (at most [`MAX_IDS`]).
        ids: Vec<EntityId>,
    },
}

/// One governance operation as a peer installs it: the delta, the maximal governance operations
/// of its causal past (earlier in the responder's log) and whether the removal cut voided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GovEntry {
    /// The governance delta.
    pub envelope: Envelope,
    /// The maximal governance operations of its causal past (at most [`MAX_IDS`]).
    pub past: Vec<DeltaId>,
    /// Voided by the removal cut at the responder (for inspection: a receiver derives voids from
    /// the removals it records itself).
    pub void: bool,
}

/// The most governance entries one response carries.
pub const MAX_GOV_ENTRIES: usize = 256;

/// Why a peer did not answer a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Too many requests or sessions right now: try later or elsewhere.
    Busy,
    /// The responder does not host the context.
    UnknownContext,
    /// The request broke a protocol rule (bounds, ids, a snapshot that expired).
    Invalid,
    /// The responder has nothing to snapshot.
    NothingToSnapshot,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// The responder's summary.
    Summary(Summary),
    /// Deltas in an order the requester can apply.
    Deltas {
        /// The deltas.
        deltas: Vec<Envelope>,
        /// More pages follow from this cursor (for [`Request::DeltasSince`]).
        next: Option<u64>,
        /// Requested ids the responder cannot serve (unknown, or pruned).
        unavailable: Vec<DeltaId>,
        /// The responder dropped history the requester may need: fall back to Merkle comparison.
        history_pruned: bool,
    },
    /// Merkle trie nodes.
    Tree {
        /// One per requested address, in request order.
        nodes: Vec<TreeNode>,
    },
    /// Entity states (ids the responder lacks are left out).
    Entities {
        /// Full entity states.
        entities: Vec<Action>,
    },
    /// A push was joined (or a [`Request::Forget`] done).
    PushAck {
        /// How many states it held (how many entities were forgotten).
        applied: u32,
    },
    /// A page of a frozen snapshot.
    SnapshotPage {
        /// The snapshot's DAG heads.
        heads: Vec<DeltaId>,
        /// The largest stamp among `heads` (as [`Summary::heads_stamp`]): the joiner holds the
        /// heads without their deltas, and its join, citing them, must be stamped after them.
        heads_stamp: Hlc,
        /// The snapshot's Merkle root (the joiner verifies it before applying anything).
        root: Hash,
        /// Total entities in the snapshot.
        total: u64,
        /// This page's entity states.
        entities: Vec<Action>,
        /// Delta ids the snapshot covers (the joiner records them as satisfied).
        satisfied: Vec<DeltaId>,
        /// The next page, or `None` when this was the last.
        next: Option<SnapshotCursor>,
    },
    /// The requested ids the responder has applied.
    Have {
        /// Those ids.
        applied: Vec<DeltaId>,
    },
    /// A page of the responder's governance log.
    Governance {
        /// Entries from the requested index on, in log order.
        entries: Vec<GovEntry>,
        /// The index of the next page, or `None` when the log ends here.
        next: Option<u32>,
    },
    /// Not answered.
    Refused(Refusal),
}

impl Frame {
    /// The versioned encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.id(&self.context);
        match &self.message {
            Message::Delta(env) => {
                w.u8(0);
                env.encode(&mut w);
            }
            Message::Request { id, body } => {
                w.u8(1).u64(*id);
                encode_request(&mut w, body);
            }
            Message::Response { id, body } => {
                w.u8(2).u64(*id);
                encode_response(&mut w, body);
            }
        }
        w.finish()
    }

    /// Decodes a frame: unknown versions, bad tags, bounds, trailing bytes and malformed entity
    /// states are all [`SyncError`]s.
    pub fn decode(bytes: &[u8]) -> Result<Frame, SyncError> {
        if bytes.len() > MAX_FRAME {
            return Err(SyncError::FrameTooLarge {
                len: bytes.len(),
                max: MAX_FRAME,
            });
        }
        let mut r = Reader::new(bytes)?;
        let context = r.id()?;
        let message = match r.u8()? {
            0 => Message::Delta(Envelope::decode(&mut r)?),
            1 => {
                let id = r.u64()?;
                Message::Request {
                    id,
                    body: decode_request(&mut r)?,
                }
            }
            2 => {
                let id = r.u64()?;
                Message::Response {
                    id,
                    body: decode_response(&mut r)?,
                }
            }
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "message",
                    tag,
                }
                .into())
            }
        };
        r.finish()?;
        Ok(Frame { context, message })
    }
}

fn encode_ids<T: AsRef<[u8; 32]>>(w: &mut Writer, ids: &[T]) {
    w.len(ids.len());
    for id in ids {
        w.id(id);
    }
}

fn decode_ids<T: From<[u8; 32]>>(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<Vec<T>, CodecError> {
    let n = r.count(what, MAX_IDS, 32)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.id()?);
    }
    Ok(out)
}

fn encode_opt_u64(w: &mut Writer, v: Option<u64>) {
    match v {
        None => w.u8(0),
        Some(v) => w.u8(1).u64(v),
    };
}

fn decode_opt_u64(r: &mut Reader<'_>) -> Result<Option<u64>, CodecError> {
    Ok(if r.bool()? { Some(r.u64()?) } else { None })
}

fn encode_cursor(w: &mut Writer, c: Option<SnapshotCursor>) {
    match c {
        None => w.u8(0),
        Some(c) => w.u8(1).u64(c.snapshot).u64(c.index),
    };
}

fn decode_cursor(r: &mut Reader<'_>) -> Result<Option<SnapshotCursor>, CodecError> {
    Ok(if r.bool()? {
        Some(SnapshotCursor {
            snapshot: r.u64()?,
            index: r.u64()?,
        })
    } else {
        None
    })
}

fn encode_tree_ref(w: &mut Writer, t: &TreeRef) {
    match &t.owner {
        None => w.u8(0),
        Some(id) => w.u8(1).id(id),
    };
    w.bytes(&t.path);
}

fn decode_tree_ref(r: &mut Reader<'_>) -> Result<TreeRef, CodecError> {
    let owner = if r.bool()? { Some(r.id()?) } else { None };
    let path = r.bytes("trie path", MAX_PATH)?.to_vec();
    if path.iter().any(|n| *n >= 16) {
        return Err(CodecError::Invalid("trie path nibble"));
    }
    Ok(TreeRef { owner, path })
}

fn encode_entities(w: &mut Writer, entities: &[Action]) {
    w.len(entities.len());
    for e in entities {
        w.bytes(&e.to_bytes());
    }
}

fn decode_entities(r: &mut Reader<'_>) -> Result<Vec<Action>, SyncError> {
    let n = r.count("entities", MAX_ENTITIES, 4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let bytes = r.bytes("entity state", MAX_ENTITY_BYTES)?;
        out.push(Action::from_bytes(bytes)?);
    }
    Ok(out)
}

fn encode_request(w: &mut Writer, req: &Request) {
    match req {
        Request::Summary => {
            w.u8(0);
        }
        Request::DeltasSince { known, cursor } => {
            w.u8(1);
            encode_ids(w, known);
            encode_opt_u64(w, *cursor);
        }
        Request::Deltas { ids } => {
            w.u8(2);
            encode_ids(w, ids);
        }
        Request::Tree { nodes } => {
            w.u8(3).len(nodes.len());
            for n in nodes {
                encode_tree_ref(w, n);
            }
        }
        Request::Entities { ids } => {
            w.u8(4);
            encode_ids(w, ids);
        }
        Request::Push { entities } => {
            w.u8(5);
            encode_entities(w, entities);
        }
        Request::Snapshot { cursor } => {
            w.u8(6);
            encode_cursor(w, *cursor);
        }
        Request::Have { ids } => {
            w.u8(7);
            encode_ids(w, ids);
        }
        Request::Governance { from } => {
            w.u8(9).u32(*from);
        }
        Request::Forget { horizon, ids } => {
            w.u8(8);
            horizon.encode(w);
            encode_ids(w, ids);
        }
    }
}

fn decode_request(r: &mut Reader<'_>) -> Result<Request, SyncError> {
    Ok(match r.u8()? {
        0 => Request::Summary,
        1 => Request::DeltasSince {
            known: decode_ids(r, "known heads")?,
            cursor: decode_opt_u64(r)?,
        },
        2 => Request::Deltas {
            ids: decode_ids(r, "delta ids")?,
        },
        3 => {
            let n = r.count("trie nodes", MAX_TREE_NODES, 5)?;
            let mut nodes = Vec::with_capacity(n);
            for _ in 0..n {
                nodes.push(decode_tree_ref(r)?);
            }
            Request::Tree { nodes }
        }
        4 => Request::Entities {
            ids: decode_ids(r, "entity ids")?,
        },
        5 => Request::Push {
            entities: decode_entities(r)?,
        },
        6 => Request::Snapshot {
            cursor: decode_cursor(r)?,
        },
        7 => Request::Have {
            ids: decode_ids(r, "delta ids")?,
        },
        8 => Request::Forget {
            horizon: Hlc::decode(r)?,
            ids: decode_ids(r, "entity ids")?,
        },
        9 => Request::Governance { from: r.u32()? },
        tag => {
            return Err(CodecError::InvalidTag {
                what: "request",
                tag,
            }
            .into())
        }
    })
}

fn encode_response(w: &mut Writer, resp: &Response) {
    match resp {
        Response::Summary(s) => {
            w.u8(0);
            encode_ids(w, &s.heads);
            w.hash(&s.root)
                .u64(s.entities)
                .u64(s.applied)
                .bool(s.pruned)
                .u64(s.pending);
            s.gc_horizon.encode(w);
            w.hash(&s.governance);
            s.heads_stamp.encode(w);
        }
        Response::Deltas {
            deltas,
            next,
            unavailable,
            history_pruned,
        } => {
            w.u8(1).len(deltas.len());
            for d in deltas {
                d.encode(w);
            }
            encode_opt_u64(w, *next);
            encode_ids(w, unavailable);
            w.bool(*history_pruned);
        }
        Response::Tree { nodes } => {
            w.u8(2).len(nodes.len());
            for n in nodes {
                encode_tree_ref(w, &n.at);
                match &n.slots {
                    None => {
                        w.u8(0);
                    }
                    Some(slots) => {
                        w.u8(1).len(slots.len());
                        for (nibble, slot) in slots {
                            w.u8(*nibble);
                            match slot {
                                TrieSlot::Subtree(h) => w.u8(0).hash(h),
                                TrieSlot::Entity(id, h) => w.u8(1).id(id).hash(h),
                            };
                        }
                    }
                }
            }
        }
        Response::Entities { entities } => {
            w.u8(3);
            encode_entities(w, entities);
        }
        Response::PushAck { applied } => {
            w.u8(4).u32(*applied);
        }
        Response::SnapshotPage {
            heads,
            heads_stamp,
            root,
            total,
            entities,
            satisfied,
            next,
        } => {
            w.u8(5);
            encode_ids(w, heads);
            heads_stamp.encode(w);
            w.hash(root).u64(*total);
            encode_entities(w, entities);
            encode_ids(w, satisfied);
            encode_cursor(w, *next);
        }
        Response::Governance { entries, next } => {
            w.u8(8).len(entries.len());
            for g in entries {
                g.envelope.encode(w);
                encode_ids(w, &g.past);
                w.bool(g.void);
            }
            match next {
                None => w.u8(0),
                Some(n) => w.u8(1).u32(*n),
            };
        }
        Response::Have { applied } => {
            w.u8(7);
            encode_ids(w, applied);
        }
        Response::Refused(why) => {
            let code = match why {
                Refusal::Busy => 0,
                Refusal::UnknownContext => 1,
                Refusal::Invalid => 2,
                Refusal::NothingToSnapshot => 3,
            };
            w.u8(6).u8(code);
        }
    }
}

fn decode_response(r: &mut Reader<'_>) -> Result<Response, SyncError> {
    Ok(match r.u8()? {
        0 => Response::Summary(Summary {
            heads: decode_ids(r, "heads")?,
            root: r.hash()?,
            entities: r.u64()?,
            applied: r.u64()?,
            pruned: r.bool()?,
            pending: r.u64()?,
            gc_horizon: Hlc::decode(r)?,
            governance: r.hash()?,
            heads_stamp: Hlc::decode(r)?,
        }),
        1 => {
            let n = r.count("deltas", MAX_DELTAS, 80)?;
            let mut deltas = Vec::with_capacity(n);
            for _ in 0..n {
                deltas.push(Envelope::decode(r)?);
            }
            Response::Deltas {
                deltas,
                next: decode_opt_u64(r)?,
                unavailable: decode_ids(r, "unavailable ids")?,
                history_pruned: r.bool()?,
            }
        }
        2 => {
            let n = r.count("trie nodes", MAX_TREE_NODES, 6)?;
            let mut nodes = Vec::with_capacity(n);
            for _ in 0..n {
                let at = decode_tree_ref(r)?;
                let slots = if r.bool()? {
                    let k = r.count("trie slots", 16, 34)?;
                    let mut slots = Vec::with_capacity(k);
                    let mut last: Option<u8> = None;
                    for _ in 0..k {
                        let nibble = r.u8()?;
                        if nibble >= 16 || last.is_some_and(|l| l >= nibble) {
                            return Err(CodecError::Invalid("trie slot order").into());
                        }
                        last = Some(nibble);
                        let slot = match r.u8()? {
                            0 => TrieSlot::Subtree(r.hash()?),
                            1 => TrieSlot::Entity(r.id()?, r.hash()?),
                            tag => {
                                return Err(CodecError::InvalidTag {
                                    what: "trie slot",
                                    tag,
                                }
                                .into())
                            }
                        };
                        slots.push((nibble, slot));
                    }
                    Some(slots)
                } else {
                    None
                };
                nodes.push(TreeNode { at, slots });
            }
            Response::Tree { nodes }
        }
        3 => Response::Entities {
            entities: decode_entities(r)?,
        },
        4 => Response::PushAck { applied: r.u32()? },
        5 => Response::SnapshotPage {
            heads: decode_ids(r, "snapshot heads")?,
            heads_stamp: Hlc::decode(r)?,
            root: r.hash()?,
            total: r.u64()?,
            entities: decode_entities(r)?,
            satisfied: decode_ids(r, "satisfied ids")?,
            next: decode_cursor(r)?,
        },
        6 => Response::Refused(match r.u8()? {
            0 => Refusal::Busy,
            1 => Refusal::UnknownContext,
            2 => Refusal::Invalid,
            3 => Refusal::NothingToSnapshot,
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "refusal",
                    tag,
                }
                .into())
            }
        }),
        7 => Response::Have {
            applied: decode_ids(r, "delta ids")?,
        },
        8 => {
            let n = r.count("governance entries", MAX_GOV_ENTRIES, 150)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let envelope = Envelope::decode(r)?;
                let past = decode_ids(r, "governance entry position")?;
                entries.push(GovEntry {
                    envelope,
                    past,
                    void: r.bool()?,
                });
            }
            let next = if r.bool()? { Some(r.u32()?) } else { None };
            Response::Governance { entries, next }
        }
        tag => {
            return Err(CodecError::InvalidTag {
                what: "response",
                tag,
            }
            .into())
        }
    })
}
