//! `tabmesh-relay`: the native relay that connects browser nodes (which cannot listen).
//!
//! - **Circuit relay v2 server** with libp2p's defaults raised (2 min / 128 KiB per circuit would
//!   cut sync and blob streams): 24 h and no byte cap per circuit, 1024 reservations and circuits,
//!   8 reservations and 64 circuits per peer, no rate limiters (per-IP limits hit every tab behind
//!   one NAT), all set by flags ([`cli::Args`]). Nodes reach each other at
//!   `<relay>/p2p-circuit/p2p/<peer>`; circuits carry only request-response sync (and blobs).
//! - **Gossip hub**: the relay joins gossipsub on every context topic a connected peer subscribes
//!   to (at most `--max-topics`), treats every connected peer as an explicit gossip peer so each
//!   message reaches every subscriber, validates structure only (it forwards signed ciphertext
//!   it cannot read), and caps each peer's message rate and size.
//! - **Transports**: WebSocket (and TCP) for browsers and native nodes, and WebRTC-direct
//!   (`…/udp/<port>/webrtc-direct/certhash/…`), which a browser dials by certificate hash without
//!   a CA-signed certificate; `--webrtc-cert` keeps the certificate (and so the address) across
//!   restarts.
//! - identify, ping, connection limits, Prometheus metrics (`--metrics`), tracing logs on stderr,
//!   graceful shutdown on SIGINT/SIGTERM.
//!
//! On start it prints each full listen address, `<addr>/p2p/<peer id>`, on stdout, one per line.
//!
//! What it deliberately is not: a member of any context (it holds no keys and runs no node), a
//! store (it keeps nothing across restarts but its identity), or a rendezvous service (peers find
//! each other through hellos on their context topics, forwarded by the hub).
//!
//! ```no_run
//! // The binary's `main`; tests spawn it as a process.
//! std::process::exit(match tabmesh_relay::main() {
//!     std::process::ExitCode::SUCCESS => 0,
//!     _ => 1,
//! });
//! ```

pub mod cli;
pub mod hub;
pub mod metrics;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use futures::StreamExt as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::Transport as _;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::Swarm;
use libp2p::{connection_limits, gossipsub, identify, identity, noise, ping, relay, tcp, yamux};
use libp2p_webrtc as webrtc;
use tabmesh_net::behaviour::{new_gossip, new_identify, Gossip};
use tabmesh_net::limits::IDLE_TIMEOUT;
use tabmesh_net::now_ms;

pub use cli::Args;
pub use hub::Hub;
pub use metrics::Metrics;

/// The relay's behaviours.
#[derive(NetworkBehaviour)]
#[allow(missing_debug_implementations)]
pub struct Behaviour {
    /// Circuit relay v2 server.
    pub relay: relay::Behaviour,
    /// The gossip hub.
    pub gossip: Gossip,
    /// Peers learn their observed addresses and our protocols.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Connection caps.
    pub limits: connection_limits::Behaviour,
}

/// The binary's entry point: parses the command line, runs until SIGINT/SIGTERM.
pub fn main() -> ExitCode {
    tabmesh_net::run_binary("tabmesh-relay", run(Args::parse()))
}

/// Loads the key pair at `path`, or creates it there (mode 0600).
pub fn load_or_create_identity(path: &Path) -> anyhow::Result<identity::Keypair> {
    if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return identity::Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a libp2p key pair", path.display()));
    }
    let key = identity::Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .context("encoding the key pair")?;
    write_secret(path, &bytes)?;
    Ok(key)
}

/// Loads the WebRTC certificate at `path`, or creates it there (mode 0600).
pub fn load_or_create_certificate(path: &Path) -> anyhow::Result<webrtc::tokio::Certificate> {
    if path.exists() {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cert = webrtc::tokio::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a WebRTC certificate (PEM)", path.display()))?;
        if certificate_expires(&pem).is_none_or(|t| t > std::time::SystemTime::now()) {
            return Ok(cert);
        }
        tracing::warn!(path = %path.display(), "the WebRTC certificate expired: replacing it (the certhash changes)");
    }
    let cert = new_certificate()?;
    write_secret(path, cert.serialize_pem().as_bytes())?;
    Ok(cert)
}

/// When a certificate PEM (as `serialize_pem` writes it) expires: its `EXPIRES` block holds
/// the Unix time in seconds, 8 bytes little-endian.
fn certificate_expires(pem: &str) -> Option<std::time::SystemTime> {
    use base64::Engine as _;
    let body = pem
        .split("-----BEGIN EXPIRES-----")
        .nth(1)?
        .split("-----END EXPIRES-----")
        .next()?;
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let secs = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    std::time::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn new_certificate() -> anyhow::Result<webrtc::tokio::Certificate> {
    webrtc::tokio::Certificate::generate(&mut rand::rng()).context("generating a certificate")
}

/// Writes a secret file atomically (temporary file, fsync, rename), readable by its owner only.
fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn relay_config(args: &Args) -> relay::Config {
    relay::Config {
        max_reservations: args.max_reservations,
        max_reservations_per_peer: args.max_reservations_per_peer,
        reservation_duration: args.reservation_duration,
        reservation_rate_limiters: Vec::new(),
        max_circuits: args.max_circuits,
        max_circuits_per_peer: args.max_circuits_per_peer,
        max_circuit_duration: args.max_circuit_duration,
        max_circuit_bytes: args.max_circuit_bytes,
        circuit_src_rate_limiters: Vec::new(),
    }
}

async fn build(args: &Args, key: identity::Keypair) -> anyhow::Result<Swarm<Behaviour>> {
    let relay_cfg = relay_config(args);
    let cert = match &args.webrtc_cert {
        Some(path) => load_or_create_certificate(path)?,
        None => new_certificate()?,
    };
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(args.max_connections))
        .with_max_established_per_peer(Some(args.max_connections_per_peer));
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_other_transport(|key| {
            webrtc::tokio::Transport::new(key.clone(), cert)
                .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)))
        })?
        .with_dns()?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await?
        .with_behaviour(|key| {
            Ok(Behaviour {
                relay: relay::Behaviour::new(key.public().to_peer_id(), relay_cfg),
                gossip: new_gossip(key)?,
                identify: new_identify(key),
                ping: tabmesh_net::behaviour::new_ping(),
                limits: connection_limits::Behaviour::new(limits),
            })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build())
}

/// Runs the relay until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let key = match &args.identity {
        Some(path) => load_or_create_identity(path)?,
        None => identity::Keypair::generate_ed25519(),
    };
    let mut swarm = build(&args, key).await?;
    let me = *swarm.local_peer_id();
    tracing::info!(peer = %me, "relay starting");
    for addr in &args.listen {
        swarm
            .listen_on(addr.clone())
            .with_context(|| format!("listening on {addr}"))?;
    }
    for addr in &args.external_address {
        swarm.add_external_address(addr.clone());
    }
    // HOP is advertised only with an external address or this status.
    swarm
        .behaviour_mut()
        .relay
        .set_status(Some(relay::Status::Enable));

    let metrics = Arc::new(Metrics::default());
    let metrics_task = args
        .metrics
        .map(|addr| tokio::spawn(metrics::serve(addr, metrics.clone())));
    let mut hub = Hub::new(args.max_topics, args.max_peer_msgs_per_sec);
    let mut housekeeping = tokio::time::interval(Duration::from_secs(10));
    let mut sigterm = terminate_signal()?;
    loop {
        tokio::select! {
            event = swarm.select_next_some() => on_event(&args, &mut swarm, &mut hub, &metrics, me, event),
            _ = housekeeping.tick() => {
                for topic in hub.expired(now_ms()) {
                    swarm.behaviour_mut().gossip.unsubscribe(&gossipsub::IdentTopic::new(topic.into_string()));
                }
                metrics.topics.store(hub.topics() as i64, Ordering::Relaxed);
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    tracing::info!("shutting down");
    if let Some(t) = metrics_task {
        t.abort();
    }
    let peers: Vec<_> = swarm.connected_peers().copied().collect();
    for p in peers {
        let _ = swarm.disconnect_peer_id(p);
    }
    // Let the close frames go out (bounded).
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while swarm.connected_peers().next().is_some() {
            swarm.select_next_some().await;
        }
    })
    .await;
    Ok(())
}

#[cfg(unix)]
fn terminate_signal() -> anyhow::Result<tokio::signal::unix::Signal> {
    Ok(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    )?)
}

fn on_event(
    args: &Args,
    swarm: &mut Swarm<Behaviour>,
    hub: &mut Hub,
    metrics: &Metrics,
    me: libp2p::PeerId,
    event: SwarmEvent<BehaviourEvent>,
) {
    let now = now_ms();
    match event {
        SwarmEvent::NewListenAddr { address, .. } => {
            if args.external_address.is_empty() {
                swarm.add_external_address(address.clone());
            }
            let full = address.with(Protocol::P2p(me));
            let mut out = std::io::stdout().lock();
            #[allow(clippy::print_stdout)]
            {
                let _ = writeln!(out, "{full}");
            }
            let _ = out.flush();
        }
        SwarmEvent::ConnectionEstablished {
            peer_id, endpoint, ..
        } => {
            metrics.connections.fetch_add(1, Ordering::Relaxed);
            if !endpoint.is_relayed() {
                swarm.behaviour_mut().gossip.add_explicit_peer(&peer_id);
            }
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established,
            ..
        } => {
            metrics.connections.fetch_sub(1, Ordering::Relaxed);
            if num_established == 0 {
                swarm.behaviour_mut().gossip.remove_explicit_peer(&peer_id);
                hub.disconnected(now, &peer_id);
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Gossip(e)) => match e {
            gossipsub::Event::Subscribed { peer_id, topic } => {
                match hub.subscribed(peer_id, &topic) {
                    hub::Join::Join => {
                        let t = gossipsub::IdentTopic::new(topic.into_string());
                        if let Err(e) = swarm.behaviour_mut().gossip.subscribe(&t) {
                            tracing::warn!(%e, "joining a topic failed");
                        }
                        metrics.topics.store(hub.topics() as i64, Ordering::Relaxed);
                    }
                    hub::Join::Already => {}
                    hub::Join::Refuse => {
                        metrics.topics_refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                hub.unsubscribed(now, &peer_id, &topic);
            }
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let verdict = if !hub.allow(now, propagation_source) {
                    metrics.gossip_rate_limited.fetch_add(1, Ordering::Relaxed);
                    gossipsub::MessageAcceptance::Ignore
                } else if tabmesh_net::gossip::validate(&message.topic, &message.data).is_err() {
                    metrics.gossip_rejected.fetch_add(1, Ordering::Relaxed);
                    gossipsub::MessageAcceptance::Reject
                } else {
                    metrics.gossip_messages.fetch_add(1, Ordering::Relaxed);
                    metrics
                        .gossip_bytes
                        .fetch_add(message.data.len() as u64, Ordering::Relaxed);
                    gossipsub::MessageAcceptance::Accept
                };
                let _ = swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
            }
            _ => {}
        },
        SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
            peer,
            connection,
            result: Err(error),
        })) => {
            tracing::info!(%peer, %error, "ping failed: closing the connection");
            swarm.close_connection(connection);
        }
        SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => match e {
            relay::Event::ReservationReqAccepted { renewed, .. } => {
                if !renewed {
                    metrics.reservations.fetch_add(1, Ordering::Relaxed);
                }
            }
            relay::Event::ReservationClosed { .. } | relay::Event::ReservationTimedOut { .. } => {
                metrics.reservations.fetch_sub(1, Ordering::Relaxed);
            }
            relay::Event::CircuitReqAccepted { .. } => {
                metrics.circuits.fetch_add(1, Ordering::Relaxed);
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                error,
            } => {
                metrics.circuits.fetch_sub(1, Ordering::Relaxed);
                metrics.circuits_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%src_peer_id, %dst_peer_id, ?error, "circuit closed");
            }
            other => tracing::debug!(?other, "relay event"),
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_certificate_survive_restarts() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("tabmesh-relay-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (key, cert) = (dir.join("key"), dir.join("cert.pem"));
        let k1 = load_or_create_identity(&key)?;
        let k2 = load_or_create_identity(&key)?;
        assert_eq!(k1.public(), k2.public());
        let c1 = load_or_create_certificate(&cert)?;
        let c2 = load_or_create_certificate(&cert)?;
        assert_eq!(c1.fingerprint(), c2.fingerprint());
        let pem = std::fs::read_to_string(&cert)?;
        let expires = certificate_expires(&pem).expect("an EXPIRES block");
        assert!(expires > std::time::SystemTime::now());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
