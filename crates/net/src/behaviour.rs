//! The node's libp2p behaviour and swarm: one stack natively (TCP and WebSocket) and in a JS
//! host (the browser WebSocket, and WebRTC-direct where a `window` exists), always with noise,
//! yamux and the relay client.

use libp2p::{gossipsub, identify, identity, ping, relay, request_response, Swarm};

use crate::direct::DirectOnly;
use crate::gossip;
use crate::limits::{
    IDLE_TIMEOUT, MAX_STREAMS, MAX_TOPICS, PING_EVERY, PING_TIMEOUT, REQUEST_TIMEOUT,
};
use crate::proto::{self, Codec};
use crate::NetError;

/// The identify protocol version of tabmesh peers.
pub const IDENTIFY_PROTOCOL: &str = "/tabmesh/1";

/// gossipsub with an explicit subscription filter (the default caps topics at 100).
pub type Gossip = gossipsub::Behaviour<
    gossipsub::IdentityTransform,
    gossipsub::MaxCountSubscriptionFilter<gossipsub::AllowAllSubscriptionFilter>,
>;

/// A node's behaviours.
#[derive(libp2p::swarm::NetworkBehaviour)]
#[allow(missing_debug_implementations)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub struct Behaviour {
    /// Reserves a slot on the relay and dials peers through it.
    pub relay: relay::client::Behaviour,
    /// Context topics, on direct connections (the relay) only.
    pub gossip: DirectOnly<Gossip>,
    /// Sync messages and fetches, over relay circuits.
    pub sync: request_response::Behaviour<Codec>,
    /// Tells the relay our listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
}

/// gossipsub as every tabmesh peer runs it (the relay too).
pub fn new_gossip(key: &identity::Keypair) -> Result<Gossip, NetError> {
    gossipsub::Behaviour::new_with_subscription_filter(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip::config(),
        gossipsub::MaxCountSubscriptionFilter {
            filter: gossipsub::AllowAllSubscriptionFilter {},
            max_subscribed_topics: MAX_TOPICS,
            max_subscriptions_per_request: MAX_TOPICS,
        },
    )
    .map_err(|e| NetError::Setup(e.to_string()))
}

/// identify as every tabmesh peer runs it.
pub fn new_identify(key: &identity::Keypair) -> identify::Behaviour {
    identify::Behaviour::new(identify::Config::new(
        IDENTIFY_PROTOCOL.to_string(),
        key.public(),
    ))
}

/// ping as every tabmesh peer runs it ([`PING_EVERY`], [`PING_TIMEOUT`]); the owner closes a
/// connection whose ping fails.
pub fn new_ping() -> ping::Behaviour {
    ping::Behaviour::new(
        ping::Config::new()
            .with_interval(PING_EVERY)
            .with_timeout(PING_TIMEOUT),
    )
}

impl Behaviour {
    fn new(key: &identity::Keypair, relay: relay::client::Behaviour) -> Result<Self, NetError> {
        Ok(Behaviour {
            relay,
            gossip: DirectOnly::new(new_gossip(key)?),
            sync: request_response::Behaviour::with_codec(
                Codec,
                [(proto::PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(MAX_STREAMS),
            ),
            identify: new_identify(key),
            ping: new_ping(),
        })
    }
}

fn setup(e: impl std::fmt::Display) -> NetError {
    NetError::Setup(e.to_string())
}

/// A node's swarm: TCP, WebSocket and the relay client, on tokio.
#[cfg(not(js_host))]
pub async fn build_swarm(key: identity::Keypair) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::{noise, tcp, yamux};
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(setup)?
        .with_dns()
        .map_err(setup)?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(setup)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(setup)?
        .with_behaviour(|key, relay| Behaviour::new(key, relay).map_err(Into::into))
        .map_err(setup)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build())
}

/// A node's swarm in a JS host: the host's WebSocket, WebRTC-direct where a `window` exists
/// (decided at run time: Node.js and workers have none), and the relay client.
#[cfg(js_host)]
pub async fn build_swarm(key: identity::Keypair) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::core::transport::{OptionalTransport, Transport as _};
    use libp2p::core::upgrade::Version;
    use libp2p::{noise, webrtc_websys, websocket_websys, yamux};
    let has_window = js_sys::Reflect::has(&js_sys::global(), &"window".into()).unwrap_or(false);
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_wasm_bindgen()
        .with_other_transport(|k| {
            Ok(websocket_websys::Transport::default()
                .upgrade(Version::V1Lazy)
                .authenticate(noise::Config::new(k)?)
                .multiplex(yamux::Config::default()))
        })
        .map_err(setup)?
        .with_other_transport(|k| {
            Ok(if has_window {
                OptionalTransport::some(webrtc_websys::Transport::new(webrtc_websys::Config::new(
                    k,
                )))
            } else {
                OptionalTransport::none()
            })
        })
        .map_err(setup)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(setup)?
        .with_behaviour(|key, relay| Behaviour::new(key, relay).map_err(Into::into))
        .map_err(setup)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build())
}
