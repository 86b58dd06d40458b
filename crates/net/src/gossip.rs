//! What travels on a context's gossip topic, its message id, and the gossipsub configuration
//! every peer (and the relay) shares.
//!
//! A gossip message is `VERSION ‖ kind ‖ body` ([`tabmesh_base::codec`]):
//!
//! - `0` [`GossipMsg::Delta`]: a node wire frame carrying one signed, encrypted delta, at most
//!   [`INLINE_MAX`] bytes;
//! - `1` [`GossipMsg::Announce`]: a larger delta's context, id and length; members fetch it from
//!   the message's source by request;
//! - `2` [`GossipMsg::Hello`]: "I host this context": how peers of a context find each other
//!   through the relay (the source, authenticated by gossipsub's signature, is the node); a hello
//!   sent on (re)joining the topic asks the others to answer;
//! - `3` [`GossipMsg::Have`]: "I hold these blobs, whole": members fetching one ask the
//!   announcers first (the relay sees the ids, never the content: blob ids are hashes).
//!
//! The **message id of a delta is the delta id**, so a delta arriving twice (through two paths,
//! or published again after a restart) is deduplicated by gossipsub itself. Other kinds hash their
//! bytes with their source.

use libp2p::gossipsub::{self, MessageId, TopicHash, ValidationMode};
use tabmesh_base::codec::{CodecError, Reader, Writer};
use tabmesh_base::{ContextId, DeltaId, Hasher};
use tabmesh_blobs::BlobId;
use tabmesh_node::Wire;

use crate::limits::{GOSSIP_HANDLER_QUEUE, GOSSIP_MAX, HAVE_MAX, INLINE_MAX};
use crate::topic::context_of;

/// A message on a context topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GossipMsg {
    /// A delta frame ([`tabmesh_node::Wire::Gossip`]).
    Delta(Vec<u8>),
    /// A delta too large to gossip inline: fetch it from the source.
    Announce {
        /// Its context.
        context: ContextId,
        /// Its id.
        delta: DeltaId,
        /// Its frame's length.
        len: u32,
    },
    /// The source hosts `context`.
    Hello {
        /// The context.
        context: ContextId,
        /// Makes each hello a new message (gossipsub drops repeats).
        nonce: u64,
        /// The source just (re)joined the topic and asks every peer to answer with a hello
        /// (the periodic hello and answers do not ask).
        ask: bool,
    },
    /// The source holds these blobs whole and serves them to the context's members (at most
    /// [`HAVE_MAX`] ids).
    Have {
        /// The context.
        context: ContextId,
        /// The blobs.
        blobs: Vec<BlobId>,
    },
}

/// Why a gossip message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// The bytes do not decode.
    #[error("malformed gossip message: {0}")]
    Codec(#[from] CodecError),
    /// A delta frame that is not a well-formed gossiped delta.
    #[error("the gossip message carries no well-formed delta")]
    NotADelta,
    /// The message names another context than its topic.
    #[error("the message's context is not its topic's")]
    WrongTopic,
    /// An inline delta over [`INLINE_MAX`].
    #[error("inline delta of {0} bytes, over {INLINE_MAX}")]
    TooLarge(usize),
}

impl GossipMsg {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            GossipMsg::Delta(bytes) => {
                w.u8(0).raw(bytes);
            }
            GossipMsg::Announce {
                context,
                delta,
                len,
            } => {
                w.u8(1).id(context).id(delta).u32(*len);
            }
            GossipMsg::Hello {
                context,
                nonce,
                ask,
            } => {
                w.u8(2).id(context).u64(*nonce).bool(*ask);
            }
            GossipMsg::Have { context, blobs } => {
                w.u8(3).id(context).len(blobs.len());
                for b in blobs {
                    w.id(b);
                }
            }
        }
        w.finish()
    }

    /// Decodes [`GossipMsg::encode`].
    pub fn decode(bytes: &[u8]) -> Result<GossipMsg, CodecError> {
        let mut r = Reader::new(bytes)?;
        let msg = match r.u8()? {
            0 => return Ok(GossipMsg::Delta(r.rest().to_vec())),
            1 => GossipMsg::Announce {
                context: r.id()?,
                delta: r.id()?,
                len: r.u32()?,
            },
            2 => GossipMsg::Hello {
                context: r.id()?,
                nonce: r.u64()?,
                ask: r.bool()?,
            },
            3 => {
                let context = r.id()?;
                let n = r.count("announced blobs", HAVE_MAX, 32)?;
                let mut blobs = Vec::with_capacity(n);
                for _ in 0..n {
                    blobs.push(r.id()?);
                }
                GossipMsg::Have { context, blobs }
            }
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "gossip message",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

/// The context and id of a delta frame ([`Wire::gossip_delta`]), or [`GossipError::NotADelta`].
pub fn delta_frame(bytes: &[u8]) -> Result<(ContextId, DeltaId), GossipError> {
    Wire::gossip_delta(bytes).ok_or(GossipError::NotADelta)
}

/// A gossip message that passed [`validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valid {
    /// The message.
    pub msg: GossipMsg,
    /// The context it is about (its topic's).
    pub context: ContextId,
    /// The delta it carries (inline) or announces.
    pub delta: Option<DeltaId>,
}

/// Structural validation of a gossip message on `topic` (everything the relay can check: it
/// cannot read the encrypted payload): it decodes, an inline delta is a well-formed delta frame
/// within [`INLINE_MAX`], and it names its topic's context.
pub fn validate(topic: &TopicHash, data: &[u8]) -> Result<Valid, GossipError> {
    let msg = GossipMsg::decode(data)?;
    let (context, delta) = match &msg {
        GossipMsg::Delta(bytes) => {
            if bytes.len() > INLINE_MAX {
                return Err(GossipError::TooLarge(bytes.len()));
            }
            let (context, delta) = delta_frame(bytes)?;
            (context, Some(delta))
        }
        GossipMsg::Announce { context, delta, .. } => (*context, Some(*delta)),
        GossipMsg::Hello { context, .. } | GossipMsg::Have { context, .. } => (*context, None),
    };
    if context_of(topic) != Some(context) {
        return Err(GossipError::WrongTopic);
    }
    Ok(Valid {
        msg,
        context,
        delta,
    })
}

/// gossipsub's message id: the delta id for a delta, else a hash of the source and bytes.
pub fn message_id(message: &gossipsub::Message) -> MessageId {
    if let Ok(GossipMsg::Delta(bytes)) = GossipMsg::decode(&message.data) {
        if let Ok((_, id)) = delta_frame(&bytes) {
            return MessageId::new(id.as_bytes());
        }
    }
    let mut h = Hasher::new(b"tabmesh/net/gossip-id/v1");
    h.part(&message.source.map(|p| p.to_bytes()).unwrap_or_default())
        .part(&message.data);
    MessageId::new(h.finish().as_bytes())
}

/// The gossipsub configuration of every tabmesh peer and relay: signed messages validated by the
/// application, ids from [`message_id`], [`GOSSIP_MAX`], a mesh sized for small groups.
pub fn config() -> gossipsub::Config {
    gossipsub::ConfigBuilder::default()
        .max_transmit_size(GOSSIP_MAX)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .connection_handler_queue_len(GOSSIP_HANDLER_QUEUE)
        // Small meshes: a context has a handful of members, all behind one relay.
        .mesh_n_low(1)
        .mesh_n(4)
        .mesh_n_high(8)
        .mesh_outbound_min(0)
        .flood_publish(true)
        .build()
        .unwrap_or_else(|e| unreachable!("a valid gossipsub config: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tabmesh_testkit::test]
    fn messages_round_trip_and_refuse_garbage() {
        let ctx = ContextId([1; 32]);
        for msg in [
            GossipMsg::Delta(vec![1, 2, 3]),
            GossipMsg::Announce {
                context: ctx,
                delta: DeltaId([2; 32]),
                len: 5 << 20,
            },
            GossipMsg::Hello {
                context: ctx,
                nonce: 9,
                ask: true,
            },
            GossipMsg::Have {
                context: ctx,
                blobs: vec![BlobId([3; 32]), BlobId([4; 32])],
            },
        ] {
            assert_eq!(GossipMsg::decode(&msg.encode()).ok(), Some(msg));
        }
        assert!(matches!(
            GossipMsg::decode(&[tabmesh_base::codec::VERSION, 7]),
            Err(CodecError::InvalidTag { tag: 7, .. })
        ));
        assert!(matches!(
            GossipMsg::decode(&[99, 0]),
            Err(CodecError::UnknownVersion { found: 99, .. })
        ));
        let mut hello = GossipMsg::Hello {
            context: ctx,
            nonce: 1,
            ask: true,
        }
        .encode();
        hello.push(0);
        assert!(matches!(
            GossipMsg::decode(&hello),
            Err(CodecError::TrailingBytes(1))
        ));
    }

    #[tabmesh_testkit::test]
    fn validation_checks_the_topic_and_the_frame() {
        let ctx = ContextId([1; 32]);
        let topic = crate::topic::topic(&ctx).hash();
        let other = crate::topic::topic(&ContextId([2; 32])).hash();
        let hello = GossipMsg::Hello {
            context: ctx,
            nonce: 1,
            ask: true,
        }
        .encode();
        let valid = validate(&topic, &hello).expect("valid");
        assert_eq!((valid.context, valid.delta), (ctx, None));
        assert!(matches!(
            validate(&other, &hello),
            Err(GossipError::WrongTopic)
        ));
        let junk = GossipMsg::Delta(vec![1, 2, 3]).encode();
        assert!(matches!(
            validate(&topic, &junk),
            Err(GossipError::NotADelta)
        ));
        // The config builds (its invariants hold).
        assert_eq!(config().max_transmit_size(), GOSSIP_MAX);
    }

    #[tabmesh_testkit::test]
    fn an_inline_delta_over_the_inline_bound_is_refused_before_it_is_parsed() {
        let topic = crate::topic::topic(&ContextId([1; 32])).hash();
        let over = GossipMsg::Delta(vec![0; INLINE_MAX + 1]).encode();
        assert!(matches!(
            validate(&topic, &over),
            Err(GossipError::TooLarge(n)) if n == INLINE_MAX + 1
        ));
        // Too many announced blob ids do not decode.
        let mut w = Writer::new();
        w.u8(3).id(&ContextId([1; 32])).len(HAVE_MAX + 1);
        for _ in 0..=HAVE_MAX {
            w.id(&BlobId([2; 32]));
        }
        assert!(GossipMsg::decode(&w.finish()).is_err());
    }
}
