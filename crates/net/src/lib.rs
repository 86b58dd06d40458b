//! `tabmesh-net`: the network shell and the driver around [`tabmesh_node::NodeCore`].
//!
//! One libp2p stack natively (TCP and WebSocket) and in a JS host (the host's WebSocket, and
//! WebRTC-direct to the relay where a `window` exists — browser or Node.js is decided at run time),
//! with noise, yamux, the relay client, gossipsub, request-response, identify and ping. Browsers
//! cannot listen, so every node reserves a slot on a relay ([`NodeOptions::relay`]) and is reached
//! at `<relay>/p2p-circuit/p2p/<peer>`.
//!
//! - **Gossip** ([`gossip`]): one topic per context ([`topic`]); the relay is the hub (it
//!   forwards signed ciphertext it cannot read); the message id of a delta is the delta id;
//!   every peer shares [`GOSSIP_MAX`]; a delta larger than [`INLINE_MAX`] is announced and
//!   fetched by request; a delta published with no gossip peer waits in a bounded outbox (and
//!   stays in the DAG for catch-up sync either way).
//! - **Requests** ([`proto`]): the node's sealed sync messages and announced-delta fetches, over
//!   circuits only ([`DirectOnly`] keeps gossip off them), capped and timed out ([`limits`]).
//! - **The driver** ([`Node`]): runs the core, commits its batches to a
//!   [`AsyncStore`](tabmesh_storage::AsyncStore) before acting on what follows them, arms its timers, finds
//!   the peers of each context through hellos on its topic, and reconnects to the relay with
//!   backoff.
//!
//! What it deliberately is not: no protocol logic (sync, membership and validity are the core's);
//! no relay server (that is the `tabmesh-relay` binary, which reuses [`gossip`], [`topic`] and
//! [`behaviour::new_gossip`]); no discovery beyond the relay (no DHT, no mDNS).
//!
//! ```
//! use tabmesh_base::ContextId;
//! use tabmesh_net::{topic, GossipMsg};
//!
//! let ctx = ContextId([7; 32]);
//! let hello = GossipMsg::Hello { context: ctx, nonce: 1, ask: true }.encode();
//! // What any peer (the relay too) checks before forwarding: it decodes, and names its topic.
//! let valid = tabmesh_net::gossip::validate(&topic(&ctx).hash(), &hello).unwrap();
//! assert_eq!(valid.context, ctx);
//! ```

pub mod behaviour;
mod direct;
mod driver;
mod error;
pub mod gossip;
mod ids;
pub mod limits;
pub mod proto;
pub mod record;
mod rt;
mod topic;

pub use direct::{is_relayed, DirectOnly};
pub use driver::{BlobEvent, BlobInfo, Events, GcReport, NetEvent, NetStats, Node, NodeOptions};
pub use error::NetError;
pub use gossip::GossipMsg;
pub use ids::{libp2p_keypair, node_id, peer_id};
pub use libp2p;
pub use limits::{GOSSIP_MAX, INLINE_MAX};
#[cfg(not(js_host))]
pub use rt::run_binary;
pub use rt::{entropy, now_ms};
pub use topic::{context_of, topic, TOPIC_PREFIX};
