//! The relay's counters and gauges, served as Prometheus text over plain HTTP.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the relay counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open connections.
    pub connections: AtomicI64,
    /// Reservations held.
    pub reservations: AtomicI64,
    /// Circuits open.
    pub circuits: AtomicI64,
    /// Context topics joined.
    pub topics: AtomicI64,
    /// Subscriptions not joined (`--max-topics` reached).
    pub topics_refused: AtomicU64,
    /// Gossip messages accepted (forwarded) and their bytes.
    pub gossip_messages: AtomicU64,
    /// See [`Metrics::gossip_messages`].
    pub gossip_bytes: AtomicU64,
    /// Gossip messages refused by validation.
    pub gossip_rejected: AtomicU64,
    /// Gossip messages ignored by the per-peer rate cap.
    pub gossip_rate_limited: AtomicU64,
    /// Circuits closed (by their limits or their ends).
    pub circuits_closed: AtomicU64,
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauges: [(&str, &str, &AtomicI64); 4] = [
            ("connections", "open connections", &self.connections),
            ("reservations", "reservations held", &self.reservations),
            ("circuits", "circuits open", &self.circuits),
            ("topics", "context topics joined by the hub", &self.topics),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP tabmesh_relay_{name} {help}\n# TYPE tabmesh_relay_{name} gauge\ntabmesh_relay_{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let counters: [(&str, &str, &AtomicU64); 6] = [
            (
                "topics_refused",
                "subscriptions not joined (max topics)",
                &self.topics_refused,
            ),
            (
                "gossip_messages",
                "gossip messages forwarded",
                &self.gossip_messages,
            ),
            ("gossip_bytes", "gossip bytes forwarded", &self.gossip_bytes),
            (
                "gossip_rejected",
                "gossip messages refused",
                &self.gossip_rejected,
            ),
            (
                "gossip_rate_limited",
                "gossip messages over the peer rate",
                &self.gossip_rate_limited,
            ),
            ("circuits_closed", "circuits closed", &self.circuits_closed),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP tabmesh_relay_{name}_total {help}\n# TYPE tabmesh_relay_{name}_total counter\ntabmesh_relay_{name}_total {}",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Serves `GET /metrics` (any path, in fact) at `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    loop {
        let (mut sock, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request itself does not matter; read (bounded) what the client sent first.
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let body = metrics.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
