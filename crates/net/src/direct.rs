//! [`DirectOnly`]: runs a behaviour on direct connections only.
//!
//! Nodes gossip through the relay (the hub), never over the relay circuits they open to each
//! other for sync: circuits carry only request-response. gossipsub has no per-connection switch,
//! so this wrapper hides relayed connections from the wrapped behaviour — it gets an inert
//! handler on them and never hears of them, and the connection counts it sees count direct
//! connections only.

use std::collections::{HashMap, HashSet};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Whether an address goes through a relay circuit.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// A behaviour that sees only direct (not relayed) connections.
#[derive(Debug)]
pub struct DirectOnly<B> {
    inner: B,
    relayed: HashSet<ConnectionId>,
    direct: HashMap<PeerId, usize>,
}

impl<B> DirectOnly<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        DirectOnly {
            inner,
            relayed: HashSet::new(),
            direct: HashMap::new(),
        }
    }

    /// The wrapped behaviour.
    pub fn inner(&mut self) -> &mut B {
        &mut self.inner
    }
}

type Handler<B> =
    either::Either<<B as NetworkBehaviour>::ConnectionHandler, dummy::ConnectionHandler>;

impl<B: NetworkBehaviour> NetworkBehaviour for DirectOnly<B> {
    type ConnectionHandler = Handler<B>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if is_relayed(local) || is_relayed(remote) {
            return Ok(());
        }
        self.inner
            .handle_pending_inbound_connection(id, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if is_relayed(local) || is_relayed(remote) {
            self.relayed.insert(id);
            return Ok(either::Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_inbound_connection(id, peer, local, remote)
            .map(either::Either::Left)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner
            .handle_pending_outbound_connection(id, peer, addresses, role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if is_relayed(addr) {
            self.relayed.insert(id);
            return Ok(either::Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_outbound_connection(id, peer, addr, role, port_use)
            .map(either::Either::Left)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                if self.relayed.contains(&e.connection_id) {
                    return;
                }
                let n = self.direct.entry(e.peer_id).or_default();
                let other_established = *n;
                *n += 1;
                self.inner.on_swarm_event(FromSwarm::ConnectionEstablished(
                    ConnectionEstablished {
                        other_established,
                        ..e
                    },
                ));
            }
            FromSwarm::ConnectionClosed(e) => {
                if self.relayed.remove(&e.connection_id) {
                    return;
                }
                let remaining_established = match self.direct.get_mut(&e.peer_id) {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        *n
                    }
                    _ => {
                        self.direct.remove(&e.peer_id);
                        0
                    }
                };
                self.inner
                    .on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
                        remaining_established,
                        ..e
                    }));
            }
            FromSwarm::AddressChange(e) if self.relayed.contains(&e.connection_id) => {}
            other => self.inner.on_swarm_event(other),
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            either::Either::Left(ev) => self.inner.on_connection_handler_event(peer, id, ev),
            either::Either::Right(never) => match never {},
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<B::ToSwarm, THandlerInEvent<Self>>> {
        self.inner
            .poll(cx)
            .map(|ev| ev.map_in(either::Either::Left))
    }
}
