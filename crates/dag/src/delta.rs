//! Causal deltas, their kinds, structural validation and the payload trait that lets the DAG
//! persist them.

use tabmesh_base::{
    codec::{Reader, Writer},
    CodecError, DeltaId, Hash, Hlc,
};

use crate::{DagError, MAX_PARENTS};

/// A payload the DAG can persist: its encoding inside the DAG's versioned disk records.
///
/// `encode` writes without a version byte (the enclosing record carries it); `decode` must read
/// exactly what `encode` wrote and must bound every length it reads (the [`Reader`] methods take
/// explicit maxima).
pub trait Payload: Sized {
    /// Appends the encoding of `self`.
    fn encode(&self, w: &mut Writer);
    /// Reads a value written by [`Payload::encode`].
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError>;
    /// The bytes it holds, about (what [`DagConfig::max_pending_bytes`](crate::DagConfig)
    /// counts).
    fn weight(&self) -> usize;
}

/// Longest `Vec<u8>` payload the DAG decodes from its records: the whole `u32` length range.
///
/// The records are the DAG's own (sizes are bounded on the wire, before a delta reaches the DAG),
/// and [`Reader::bytes`] never takes more than the record holds, so a corrupt length prefix is an
/// error, never a large allocation.
const MAX_BYTES_PAYLOAD_LEN: usize = u32::MAX as usize;

/// Bytes: a `u32` length prefix, then the bytes.
impl Payload for Vec<u8> {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(r.bytes("payload", MAX_BYTES_PAYLOAD_LEN)?.to_vec())
    }

    fn weight(&self) -> usize {
        self.len()
    }
}

/// What a delta is, derived by the receiver (never a wire field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeltaKind {
    /// A first delta: names no parents.
    Genesis,
    /// An ordinary delta: names between 1 and [`MAX_PARENTS`] parents.
    Regular,
    /// A snapshot boundary installed locally by
    /// [`Dag::restore_checkpoint`](crate::Dag::restore_checkpoint): the state was replaced by a
    /// snapshot whose Merkle root is `root`. Never passed to [`Dag::add`](crate::Dag::add).
    Checkpoint {
        /// The Merkle root of the installed snapshot.
        root: Hash,
    },
}

/// One delta of the causal DAG, generic over its payload.
///
/// The DAG trusts `id` (the envelope layer derives and verifies it from the content and the
/// author's signature) and checks only the structure ([`CausalDelta::validate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CausalDelta<P> {
    /// The delta's id: the hash of its envelope.
    pub id: DeltaId,
    /// The deltas it builds on (the author's heads when it was written), in the author's order.
    pub parents: Vec<DeltaId>,
    /// What the applier applies.
    pub payload: P,
    /// The author's hybrid logical timestamp (orders concurrent writes; the DAG ignores it).
    pub hlc: Hlc,
    /// Genesis, regular or checkpoint.
    pub kind: DeltaKind,
}

impl<P> CausalDelta<P> {
    /// A regular delta.
    pub fn new(id: DeltaId, parents: Vec<DeltaId>, payload: P, hlc: Hlc) -> CausalDelta<P> {
        CausalDelta {
            id,
            parents,
            payload,
            hlc,
            kind: DeltaKind::Regular,
        }
    }

    /// A genesis delta: no parents.
    pub fn genesis(id: DeltaId, payload: P, hlc: Hlc) -> CausalDelta<P> {
        CausalDelta {
            id,
            parents: Vec::new(),
            payload,
            hlc,
            kind: DeltaKind::Genesis,
        }
    }

    /// Checks the structure: a genesis delta names no parents; any other names at least one and at
    /// most [`MAX_PARENTS`], never itself and never one twice.
    pub fn validate(&self) -> Result<(), DagError> {
        let id = self.id;
        let count = self.parents.len();
        if self.kind == DeltaKind::Genesis {
            if count != 0 {
                return Err(DagError::GenesisWithParents { id, count });
            }
            return Ok(());
        }
        if count == 0 {
            return Err(DagError::NoParents { id });
        }
        if count > MAX_PARENTS {
            return Err(DagError::TooManyParents {
                id,
                count,
                max: MAX_PARENTS,
            });
        }
        for (i, parent) in self.parents.iter().enumerate() {
            if *parent == id {
                return Err(DagError::SelfParent { id });
            }
            // Quadratic, but `count <= MAX_PARENTS` was checked above.
            if self.parents.iter().take(i).any(|p| p == parent) {
                return Err(DagError::DuplicateParent {
                    id,
                    parent: *parent,
                });
            }
        }
        Ok(())
    }
}

const KIND_GENESIS: u8 = 0;
const KIND_REGULAR: u8 = 1;
const KIND_CHECKPOINT: u8 = 2;

/// Appends the record encoding of a delta (no version byte: the enclosing record has it).
pub(crate) fn encode_delta<P: Payload>(d: &CausalDelta<P>, w: &mut Writer) {
    w.id(&d.id);
    match d.kind {
        DeltaKind::Genesis => {
            w.u8(KIND_GENESIS);
        }
        DeltaKind::Regular => {
            w.u8(KIND_REGULAR);
        }
        DeltaKind::Checkpoint { root } => {
            w.u8(KIND_CHECKPOINT).hash(&root);
        }
    }
    w.len(d.parents.len());
    for p in &d.parents {
        w.id(p);
    }
    d.hlc.encode(w);
    d.payload.encode(w);
}

/// Reads what [`encode_delta`] wrote; at most [`MAX_PARENTS`] parents.
pub(crate) fn decode_delta<P: Payload>(r: &mut Reader<'_>) -> Result<CausalDelta<P>, CodecError> {
    let id: DeltaId = r.id()?;
    let kind = match r.u8()? {
        KIND_GENESIS => DeltaKind::Genesis,
        KIND_REGULAR => DeltaKind::Regular,
        KIND_CHECKPOINT => DeltaKind::Checkpoint { root: r.hash()? },
        tag => {
            return Err(CodecError::InvalidTag {
                what: "delta kind",
                tag,
            })
        }
    };
    let count = r.count("parents", MAX_PARENTS, 32)?;
    let mut parents = Vec::with_capacity(count);
    for _ in 0..count {
        parents.push(r.id()?);
    }
    let hlc = Hlc::decode(r)?;
    let payload = P::decode(r)?;
    Ok(CausalDelta {
        id,
        parents,
        payload,
        hlc,
        kind,
    })
}
