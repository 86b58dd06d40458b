//! Sealed direct messages: every request and response between two nodes of a context travels
//! encrypted with an epoch key and signed by a member (or by an invitee holding a link), bound to
//! both nodes' ids. Only members (and invitees, for their catch-up) are answered; what a relay
//! or a non-member sees is ciphertext.

use tabmesh_auth::{Invitation, InviteLink, Signature, NONCE_LEN};
use tabmesh_base::{
    codec::{Reader, Writer},
    CodecError, ContextId, Hash, Hasher, MemberId, NodeId,
};

use crate::wire::MAX_FRAME;

/// Domain tag of the sender's signature over a sealed message.
const DIRECT_DOMAIN: &[u8] = b"tabmesh/direct/v1";

/// An invitee's credential: the invitation and its proof of holding the link secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteeProof {
    /// The inviter's signed invitation.
    pub invitation: Invitation,
    /// The link holder's signature for the sender's member key.
    pub proof: Signature,
}

impl InviteeProof {
    /// The credential of the holder of `link` writing as `member`.
    pub fn new(link: &InviteLink, member: &MemberId) -> InviteeProof {
        InviteeProof {
            invitation: link.invitation.clone(),
            proof: link.prove(member.as_bytes()),
        }
    }
}

/// A request or response sealed for one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The context.
    pub context: ContextId,
    /// The sender's member key.
    pub sender: MemberId,
    /// Present when the sender is not a member yet (an invitee catching up before its join).
    pub invitee: Option<InviteeProof>,
    /// The epoch whose key sealed it.
    pub epoch: Hash,
    /// The AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The encoded [`Message`](crate::Message), sealed.
    pub ciphertext: Vec<u8>,
    /// The sender's signature over [`Sealed::digest`].
    pub signature: Signature,
}

impl Sealed {
    /// What the sender signs (and the AEAD's associated data, without the ciphertext): context,
    /// sender, both node ids, the invitation's id, epoch, nonce, and the ciphertext's hash.
    pub fn digest(&self, from: &NodeId, to: &NodeId, with_ciphertext: bool) -> Hash {
        let mut h = Hasher::new(DIRECT_DOMAIN);
        h.fixed(self.context.as_bytes())
            .fixed(self.sender.as_bytes())
            .fixed(from.as_bytes())
            .fixed(to.as_bytes());
        match &self.invitee {
            Some(i) => h.fixed(&[1]).fixed(i.invitation.id().as_bytes()),
            None => h.fixed(&[0]),
        };
        h.fixed(self.epoch.as_bytes()).fixed(&self.nonce);
        if with_ciphertext {
            h.part(&self.ciphertext);
        }
        h.finish()
    }

    /// Checks the sender's signature for a message from `from` to `to`.
    pub fn verify(&self, from: &NodeId, to: &NodeId) -> Result<(), tabmesh_auth::AuthError> {
        tabmesh_auth::verify(
            self.sender.as_bytes(),
            DIRECT_DOMAIN,
            self.digest(from, to, true).as_bytes(),
            &self.signature,
        )
    }

    /// Signs it as `me` for a message from `from` to `to`.
    pub(crate) fn sign(&mut self, me: &tabmesh_auth::Keypair, from: &NodeId, to: &NodeId) {
        self.signature = me.sign(DIRECT_DOMAIN, self.digest(from, to, true).as_bytes());
    }

    /// Appends the encoding (no version byte: it is part of a versioned message).
    pub fn encode(&self, w: &mut Writer) {
        w.id(&self.context).id(&self.sender);
        match &self.invitee {
            None => {
                w.u8(0);
            }
            Some(i) => {
                w.u8(1);
                i.invitation.encode(w);
                w.raw(&i.proof.0);
            }
        }
        w.hash(&self.epoch)
            .raw(&self.nonce)
            .bytes(&self.ciphertext)
            .raw(&self.signature.0);
    }

    /// Reads one sealed message; the ciphertext is bounded by [`MAX_FRAME`] plus the AEAD tag.
    pub fn decode(r: &mut Reader<'_>) -> Result<Sealed, CodecError> {
        let context = r.id()?;
        let sender = r.id()?;
        let invitee = match r.u8()? {
            0 => None,
            1 => {
                let invitation = Invitation::decode(r)?;
                let proof = Signature(r.array()?);
                Some(InviteeProof { invitation, proof })
            }
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "sealed message sender",
                    tag,
                })
            }
        };
        let epoch = r.hash()?;
        let nonce = r.array()?;
        let ciphertext = r.bytes("sealed message", MAX_FRAME + 16)?.to_vec();
        let signature = Signature(r.array()?);
        Ok(Sealed {
            context,
            sender,
            invitee,
            epoch,
            nonce,
            ciphertext,
            signature,
        })
    }
}
