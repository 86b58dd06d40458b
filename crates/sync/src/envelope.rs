//! The delta envelope: what travels on the wire, what its id commits to and what its author signs.

use tabmesh_auth::{Signature, NONCE_LEN};
use tabmesh_base::{
    codec::{Reader, Writer},
    CodecError, ContextId, DeltaId, Hash, Hasher, Hlc, MemberId,
};
use tabmesh_dag::{CausalDelta, Payload};

use crate::gov::{KeyBox, MAX_KEY_BOXES};

/// Domain tag of delta ids.
const DELTA_DOMAIN: &[u8] = b"tabmesh/delta/v2";

/// Domain tag of the author's signature over a delta id.
pub const DELTA_SIGNATURE_DOMAIN: &[u8] = b"tabmesh/delta-signature/v1";

/// Domain tag of the associated data that binds a payload's ciphertext to its envelope.
const AAD_DOMAIN: &[u8] = b"tabmesh/delta-aad/v1";

/// The largest payload (encoded actions, events and governance operation) one delta may carry
/// before encryption: 3 MiB, so a delta with its envelope and a full rotation's key boxes stays
/// within one wire frame ([`MAX_FRAME`](crate::MAX_FRAME), 4 MiB). Larger writes must be split by
/// the app or stored as blobs. (Gossip carries deltas up to the network's inline size; larger
/// ones are announced and fetched by request.)
pub const MAX_DELTA_PAYLOAD: usize = 3 << 20;

/// The largest ciphertext: [`MAX_DELTA_PAYLOAD`] plus the AEAD tag.
pub const MAX_DELTA_CIPHERTEXT: usize = MAX_DELTA_PAYLOAD + 16;

/// The most parents a delta may name (the DAG's structural bound).
pub const MAX_DELTA_PARENTS: usize = tabmesh_dag::MAX_PARENTS;

/// A delta as it travels. Its id is not sent: receivers recompute it from the content
/// ([`Envelope::id`]), check the author's signature over it, and only then — once the author's
/// membership at the delta's causal position is established — decrypt the payload. Nothing in
/// the clear but ids, keys' ids, stamps and sealed key boxes: app data only exists as ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The context the delta belongs to.
    pub context: ContextId,
    /// Who wrote it: the member's public key.
    pub author: MemberId,
    /// The author's heads when it wrote it (empty only for a context's genesis delta).
    pub parents: Vec<DeltaId>,
    /// The author's hybrid logical clock at the write.
    pub hlc: Hlc,
    /// The id of the key epoch that sealed the payload ([`epoch_id`](crate::epoch_id)).
    pub epoch: Hash,
    /// Epoch keys sealed to members (a key operation's new key, or keys shared with a member
    /// that lacks them); at most [`MAX_KEY_BOXES`].
    pub keys: Vec<KeyBox>,
    /// The AEAD nonce (random).
    pub nonce: [u8; NONCE_LEN],
    /// The encoded [`DeltaPayload`](crate::DeltaPayload), sealed with the epoch key
    /// (XChaCha20-Poly1305, associated data binding context, author, parents, HLC and epoch).
    pub ciphertext: Vec<u8>,
    /// The author's signature over the id ([`DELTA_SIGNATURE_DOMAIN`]).
    pub signature: Signature,
}

impl Envelope {
    /// `H(domain ‖ context ‖ author ‖ parents ‖ hlc ‖ epoch ‖ key boxes ‖ nonce ‖ ciphertext)`.
    pub fn id(&self) -> DeltaId {
        let mut h = Hasher::new(DELTA_DOMAIN);
        self.header(&mut h);
        let mut w = Writer::unversioned();
        write_boxes(&mut w, &self.keys);
        h.part(w.as_slice());
        h.fixed(&self.nonce);
        h.part(&self.ciphertext);
        DeltaId::from(h.finish())
    }

    /// The associated data of the payload's encryption.
    pub fn aad(&self) -> Hash {
        let mut h = Hasher::new(AAD_DOMAIN);
        self.header(&mut h);
        h.finish()
    }

    fn header(&self, h: &mut Hasher) {
        h.fixed(self.context.as_bytes())
            .fixed(self.author.as_bytes());
        h.fixed(&(self.parents.len() as u64).to_le_bytes());
        for p in &self.parents {
            h.fixed(p.as_bytes());
        }
        h.fixed(&self.hlc.wall_ms.to_le_bytes())
            .fixed(&self.hlc.logical.to_le_bytes())
            .fixed(self.epoch.as_bytes());
    }

    /// Checks the author's signature over `id` (the recomputed id).
    pub fn verify_signature(&self, id: &DeltaId) -> Result<(), tabmesh_auth::AuthError> {
        tabmesh_auth::verify(
            self.author.as_bytes(),
            DELTA_SIGNATURE_DOMAIN,
            id.as_bytes(),
            &self.signature,
        )
    }

    /// Appends the encoding (no version byte: it is part of a versioned message).
    pub fn encode(&self, w: &mut Writer) {
        w.id(&self.context).id(&self.author).len(self.parents.len());
        for p in &self.parents {
            w.id(p);
        }
        self.hlc.encode(w);
        Body::encode_parts(
            w,
            &self.epoch,
            &self.keys,
            &self.nonce,
            &self.ciphertext,
            &self.signature,
        );
    }

    /// Reads one envelope, enforcing [`MAX_DELTA_PARENTS`], [`MAX_KEY_BOXES`] and
    /// [`MAX_DELTA_CIPHERTEXT`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Envelope, CodecError> {
        let context = r.id()?;
        let author = r.id()?;
        let n = r.count("delta parents", MAX_DELTA_PARENTS, 32)?;
        let mut parents = Vec::with_capacity(n);
        for _ in 0..n {
            parents.push(r.id()?);
        }
        let hlc = Hlc::decode(r)?;
        let body = Body::decode_parts(r, author)?;
        Ok(Envelope {
            context,
            author,
            parents,
            hlc,
            epoch: body.epoch,
            keys: body.keys,
            nonce: body.nonce,
            ciphertext: body.ciphertext,
            signature: body.signature,
        })
    }

    /// The DAG form of this envelope under its id.
    pub fn into_causal(self, id: DeltaId) -> CausalDelta<Body> {
        let body = Body {
            author: self.author,
            epoch: self.epoch,
            keys: self.keys,
            nonce: self.nonce,
            ciphertext: self.ciphertext,
            signature: self.signature,
        };
        if self.parents.is_empty() {
            CausalDelta::genesis(id, body, self.hlc)
        } else {
            CausalDelta::new(id, self.parents, body, self.hlc)
        }
    }

    /// The envelope of a delta held by a context's DAG.
    pub fn from_causal(context: ContextId, delta: &CausalDelta<Body>) -> Envelope {
        let b = &delta.payload;
        Envelope {
            context,
            author: b.author,
            parents: delta.parents.clone(),
            hlc: delta.hlc,
            epoch: b.epoch,
            keys: b.keys.clone(),
            nonce: b.nonce,
            ciphertext: b.ciphertext.clone(),
            signature: b.signature,
        }
    }
}

/// What a context's DAG stores per delta besides id, parents and HLC: everything needed to serve
/// the envelope again and to decrypt it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// Who wrote it.
    pub author: MemberId,
    /// The key epoch of its payload.
    pub epoch: Hash,
    /// Its key boxes.
    pub keys: Vec<KeyBox>,
    /// The AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The sealed payload.
    pub ciphertext: Vec<u8>,
    /// The author's signature over the id.
    pub signature: Signature,
}

impl Body {
    fn encode_parts(
        w: &mut Writer,
        epoch: &Hash,
        keys: &[KeyBox],
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
        signature: &Signature,
    ) {
        w.hash(epoch);
        write_boxes(w, keys);
        w.raw(nonce).bytes(ciphertext).raw(&signature.0);
    }

    fn decode_parts(r: &mut Reader<'_>, author: MemberId) -> Result<Body, CodecError> {
        let epoch = r.hash()?;
        let n = r.count("key boxes", MAX_KEY_BOXES, 32)?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(KeyBox::decode(r)?);
        }
        let nonce = r.array()?;
        let ciphertext = r.bytes("delta ciphertext", MAX_DELTA_CIPHERTEXT)?.to_vec();
        let sig = r.array()?;
        Ok(Body {
            author,
            epoch,
            keys,
            nonce,
            ciphertext,
            signature: Signature(sig),
        })
    }
}

fn write_boxes(w: &mut Writer, keys: &[KeyBox]) {
    w.len(keys.len());
    for k in keys {
        k.encode(w);
    }
}

impl Payload for Body {
    fn encode(&self, w: &mut Writer) {
        w.id(&self.author);
        Body::encode_parts(
            w,
            &self.epoch,
            &self.keys,
            &self.nonce,
            &self.ciphertext,
            &self.signature,
        );
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let author = r.id()?;
        Body::decode_parts(r, author)
    }

    fn weight(&self) -> usize {
        // The ciphertext, the key boxes (each a sealed key, well under 256 bytes) and the fixed
        // fields.
        self.ciphertext.len() + self.keys.len() * 256 + 256
    }
}
