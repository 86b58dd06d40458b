//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use libp2p::Multiaddr;

/// The tabmesh relay: a circuit relay v2 server and gossip hub for browser nodes.
///
/// Prints each full listen address (`…/p2p/<peer id>`) on stdout, one per line, as soon as it
/// listens; logs go to stderr (`RUST_LOG` filters them). Stops cleanly on SIGINT or SIGTERM.
#[derive(Debug, Clone, Parser)]
#[command(name = "tabmesh-relay", version)]
pub struct Args {
    /// An address to listen on (repeatable): WebSocket (`…/tcp/<port>/ws`), TCP, or
    /// WebRTC-direct (`…/udp/<port>/webrtc-direct`, printed with its `/certhash/`).
    #[arg(
        long = "listen",
        default_values = ["/ip4/127.0.0.1/tcp/4001/ws", "/ip4/127.0.0.1/udp/4001/webrtc-direct"]
    )]
    pub listen: Vec<Multiaddr>,

    /// An address peers reach this relay at, given to them in reservations (repeatable; default:
    /// every listen address). libp2p refuses reservations while a relay has none.
    #[arg(long = "external-address")]
    pub external_address: Vec<Multiaddr>,

    /// The relay's key pair (libp2p protobuf encoding), created (mode 0600) if missing, so the
    /// peer id survives restarts. Default: a fresh key every start.
    #[arg(long)]
    pub identity: Option<PathBuf>,

    /// The WebRTC certificate (PEM), created if missing, so the `/certhash/` in the
    /// WebRTC-direct address survives restarts. Default: a fresh certificate every start.
    #[arg(long)]
    pub webrtc_cert: Option<PathBuf>,

    /// Most reservations held at once.
    #[arg(long, default_value_t = 1024)]
    pub max_reservations: usize,
    /// Most reservations of one peer.
    #[arg(long, default_value_t = 8)]
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before the peer renews it (e.g. `1h`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub reservation_duration: Duration,
    /// Most circuits open at once.
    #[arg(long, default_value_t = 1024)]
    pub max_circuits: usize,
    /// Most circuits of one peer.
    #[arg(long, default_value_t = 64)]
    pub max_circuits_per_peer: usize,
    /// A circuit is closed after this long (e.g. `2s`, `10m`, `24h`; libp2p's default, 2 min,
    /// would cut sync and blob streams).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub max_circuit_duration: Duration,
    /// A circuit is closed after relaying this many bytes each way (0: no limit; libp2p's
    /// default, 128 KiB, would cut sync and blob streams).
    #[arg(long, default_value_t = 0)]
    pub max_circuit_bytes: u64,
    /// Most connections at once.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: u32,
    /// Most connections of one peer.
    #[arg(long, default_value_t = 8)]
    pub max_connections_per_peer: u32,
    /// Most context topics the hub joins; a subscription past it is not joined (counted).
    #[arg(long, default_value_t = 1024)]
    pub max_topics: usize,
    /// Gossip messages one peer may send per second, sustained (a burst of 10× is allowed);
    /// past it messages are ignored (not forwarded) and counted.
    #[arg(long, default_value_t = 200)]
    pub max_peer_msgs_per_sec: u32,
    /// Serve Prometheus metrics over HTTP at this address (e.g. `127.0.0.1:9464`).
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
}

/// Parses `250ms`, `2s`, `10m`, `24h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 2s, 10m, 24h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("bad duration unit in {s:?}: use ms, s, m or h")),
    };
    if d.as_secs() > u64::from(u32::MAX) {
        return Err(format!("duration {s:?} is too long"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("2d").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn defaults_raise_libp2p_limits() {
        let args = Args::parse_from(["tabmesh-relay"]);
        assert_eq!(args.max_circuit_duration, Duration::from_secs(86_400));
        assert_eq!(args.max_circuit_bytes, 0);
        assert_eq!(args.listen.len(), 2, "WebSocket and WebRTC-direct");
    }
}
