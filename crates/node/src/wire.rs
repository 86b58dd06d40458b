//! What nodes send each other: a gossiped delta frame, or a sealed direct message.
//!
//! `VERSION ‖ tag ‖ body`: tag 0 is a [`Frame`] carrying a delta (published on the context's
//! topic, or sent to one peer: the delta is signed and its payload encrypted), tag 1 a [`Sealed`]
//! request or response (to one peer: encrypted and signed as a whole), tag 2 a [`Wire::KeyNeeded`]
//! notice. Anything longer than [`MAX_WIRE`] is refused unread.

use tabmesh_base::{
    codec::{Reader, Writer},
    CodecError, ContextId, DeltaId, Hash,
};
use tabmesh_sync::{Frame, Message, Sealed, SyncError, MAX_FRAME};

/// The largest message a node accepts: a frame, plus the sealing's overhead.
pub const MAX_WIRE: usize = MAX_FRAME + 64 * 1024;

/// A node-to-node message.
#[derive(Clone, Debug, PartialEq)]
pub enum Wire {
    /// A delta for the context's topic.
    Gossip(Box<Frame>),
    /// A sealed request or response for one peer.
    Direct(Box<Sealed>),
    /// "Your message was sealed with an epoch whose key I lack": the peer answers with the
    /// deltas that introduced that epoch (their key boxes carry the key to every member they
    /// were sealed to). Carries nothing secret.
    KeyNeeded {
        /// The context.
        context: ContextId,
        /// The epoch.
        epoch: Hash,
    },
}

impl Wire {
    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Wire::Gossip(frame) => {
                w.u8(0).raw(&frame.encode());
            }
            Wire::Direct(sealed) => {
                w.u8(1);
                sealed.encode(&mut w);
            }
            Wire::KeyNeeded { context, epoch } => {
                w.u8(2).id(context).hash(epoch);
            }
        }
        w.finish()
    }

    /// The context and id of the delta a gossiped message carries (the network deduplicates
    /// gossip by the id and checks the context against the topic), or `None` when the bytes are
    /// not a well-formed gossiped delta. Decodes once.
    pub fn gossip_delta(bytes: &[u8]) -> Option<(ContextId, DeltaId)> {
        match Wire::decode(bytes) {
            Ok(Wire::Gossip(frame)) => match frame.message {
                Message::Delta(env) => Some((frame.context, env.id())),
                _ => None,
            },
            _ => None,
        }
    }

    /// Decodes [`Wire::encode`]; a gossip frame must carry a delta.
    pub fn decode(bytes: &[u8]) -> Result<Wire, SyncError> {
        if bytes.len() > MAX_WIRE {
            return Err(SyncError::FrameTooLarge {
                len: bytes.len(),
                max: MAX_WIRE,
            });
        }
        let mut r = Reader::new(bytes)?;
        match r.u8()? {
            0 => {
                let frame = Frame::decode(r.rest())?;
                if !matches!(frame.message, Message::Delta(_)) {
                    return Err(SyncError::Protocol(
                        "a gossiped frame carries a delta, not a request or a response",
                    ));
                }
                Ok(Wire::Gossip(Box::new(frame)))
            }
            1 => {
                let sealed = Sealed::decode(&mut r)?;
                r.finish()?;
                Ok(Wire::Direct(Box::new(sealed)))
            }
            2 => {
                let context = r.id()?;
                let epoch = r.hash()?;
                r.finish()?;
                Ok(Wire::KeyNeeded { context, epoch })
            }
            tag => Err(CodecError::InvalidTag {
                what: "node message",
                tag,
            }
            .into()),
        }
    }
}
