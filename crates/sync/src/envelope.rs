//! The delta envelope: what travels on the wire and what its id commits to.

use tabmesh_base::{
    codec::{Reader, Writer},
    CodecError, ContextId, DeltaId, Hasher, Hlc, MemberId,
};
use tabmesh_dag::{CausalDelta, Payload};

/// Domain tag of delta ids.
const DELTA_DOMAIN: &[u8] = b"tabmesh/delta/v1";

/// The largest payload (encoded actions and events) one delta may carry: 1 MiB. Larger writes
/// must be split by the app or stored as blobs.
pub const MAX_DELTA_PAYLOAD: usize = 1 << 20;

/// The most parents a delta may name (the DAG's structural bound).
pub const MAX_DELTA_PARENTS: usize = tabmesh_dag::MAX_PARENTS;

/// A delta as it travels: its id is not sent, receivers recompute it from the content
/// ([`Envelope::id`]), so a delta cannot claim an id its content does not hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The context the delta belongs to.
    pub context: ContextId,
    /// Who wrote it.
    pub author: MemberId,
    /// The author's heads when it wrote it (empty only for a context's genesis delta).
    pub parents: Vec<DeltaId>,
    /// The author's hybrid logical clock at the write.
    pub hlc: Hlc,
    /// The encoded [`DeltaPayload`](crate::DeltaPayload): actions, app events, handler hop.
    pub payload: Vec<u8>,
}

impl Envelope {
    /// `H(domain ‖ context ‖ author ‖ parents ‖ hlc ‖ payload)`.
    pub fn id(&self) -> DeltaId {
        let mut h = Hasher::new(DELTA_DOMAIN);
        h.fixed(self.context.as_bytes())
            .fixed(self.author.as_bytes());
        h.fixed(&(self.parents.len() as u64).to_le_bytes());
        for p in &self.parents {
            h.fixed(p.as_bytes());
        }
        h.fixed(&self.hlc.wall_ms.to_le_bytes())
            .fixed(&self.hlc.logical.to_le_bytes());
        h.part(&self.payload);
        DeltaId::from(h.finish())
    }

    /// Appends the encoding (no version byte: it is part of a versioned message).
    pub fn encode(&self, w: &mut Writer) {
        w.id(&self.context).id(&self.author).len(self.parents.len());
        for p in &self.parents {
            w.id(p);
        }
        self.hlc.encode(w);
        w.bytes(&self.payload);
    }

    /// Reads one envelope, enforcing [`MAX_DELTA_PARENTS`] and [`MAX_DELTA_PAYLOAD`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Envelope, CodecError> {
        let context = r.id()?;
        let author = r.id()?;
        let n = r.count("delta parents", MAX_DELTA_PARENTS, 32)?;
        let mut parents = Vec::with_capacity(n);
        for _ in 0..n {
            parents.push(r.id()?);
        }
        let hlc = Hlc::decode(r)?;
        let payload = r.bytes("delta payload", MAX_DELTA_PAYLOAD)?.to_vec();
        Ok(Envelope {
            context,
            author,
            parents,
            hlc,
            payload,
        })
    }

    /// The DAG form of this envelope under its id.
    pub fn into_causal(self, id: DeltaId) -> CausalDelta<Body> {
        let body = Body {
            author: self.author,
            payload: self.payload,
        };
        if self.parents.is_empty() {
            CausalDelta::genesis(id, body, self.hlc)
        } else {
            CausalDelta::new(id, self.parents, body, self.hlc)
        }
    }

    /// The envelope of a delta held by a context's DAG.
    pub fn from_causal(context: ContextId, delta: &CausalDelta<Body>) -> Envelope {
        Envelope {
            context,
            author: delta.payload.author,
            parents: delta.parents.clone(),
            hlc: delta.hlc,
            payload: delta.payload.payload.clone(),
        }
    }
}

/// What a context's DAG stores per delta besides id, parents and HLC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// Who wrote it.
    pub author: MemberId,
    /// The encoded [`DeltaPayload`](crate::DeltaPayload).
    pub payload: Vec<u8>,
}

impl Payload for Body {
    fn encode(&self, w: &mut Writer) {
        w.id(&self.author).bytes(&self.payload);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Body {
            author: r.id()?,
            payload: r.bytes("delta payload", MAX_DELTA_PAYLOAD)?.to_vec(),
        })
    }
}
