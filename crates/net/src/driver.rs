//! The driver: [`NodeCore`] + an [`AsyncStore`] + the swarm + timers, as one future, and the
//! [`Node`] handle that talks to it.
//!
//! One loop waits on the swarm, the handle's commands and the earliest timer, feeds what arrived
//! to the core (up to [`EVENTS_PER_DRAIN`] swarm events already waiting), then drains the core's
//! outputs: its persist batches are committed first (merged into few transactions) and only then
//! is anything published or sent, and a command's reply is sent only after the outputs it caused
//! were handled — so an `execute` that resolves is durable. A failed commit stops the node
//! ([`NetError::Store`]). Busy for [`BUSY_SLICE_MS`], the loop yields to the host's event loop.
//!
//! **Finding peers.** A node keeps a reservation on its relay (listening on
//! `<relay>/p2p-circuit`; lost reservations are retried with backoff). It subscribes to each
//! context's topic and says hello there ([`GossipMsg::Hello`]): once reserved, every
//! [`HELLO_EVERY_MS`], and in answer to a newcomer's hello. Any message on a topic makes its
//! source a peer of that context (`peer_joined`), reachable at
//! `<relay>/p2p-circuit/p2p/<peer>`; a peer silent for [`PEER_TTL_MS`], or whose dial fails, is
//! forgotten (`peer_left`). Gossip goes through the relay hub; sync requests go over circuits.
//!
//! **Large deltas.** A delta frame over [`INLINE_MAX`] is kept (bounded) and announced; members
//! fetch it from the author by request and check its id.
//!
//! **Blobs** ([`blobs`]): kept in a [`BlobStore`] beside the node's store, added in pieces,
//! fetched chunk by chunk from the members that hold them, served only to members.

mod blobs;

use blobs::{BlobCommand, Blobs};
pub use blobs::{BlobEvent, BlobInfo, GcReport};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt as _, SinkExt as _, StreamExt as _};
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, relay, Multiaddr, PeerId, Swarm};
use tabmesh_auth::Keypair;
use tabmesh_base::{ContextId, DeltaId, DetRng, Hash, NodeId, WriteBatch};
use tabmesh_blobs::{BlobId, BlobRequest, Want};
use tabmesh_node::{NodeConfig, NodeCore, NodeEvent, Output, Seed, TimerKey};
use tabmesh_storage::{AsyncStore, BlobStore, StoreError};

use crate::behaviour::{build_swarm, Behaviour, BehaviourEvent};
use crate::gossip::{self, GossipMsg};
use crate::ids::{libp2p_keypair, node_id, peer_id};
use crate::limits::*;
use crate::proto::{Request, Response};
use crate::rt::{entropy, now_ms, yield_to_host};
use crate::topic::topic;
use crate::NetError;

/// How a node is started.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeOptions {
    /// The relay: a full address ending with `/p2p/<relay peer id>`.
    pub relay: Multiaddr,
    /// The core's configuration.
    pub node: NodeConfig,
    /// Test hook: serve blob chunks with a byte flipped (a peer serving bad data). Never set it
    /// otherwise.
    #[doc(hidden)]
    pub corrupt_served_chunks: bool,
}

impl NodeOptions {
    /// Options with the default node configuration.
    pub fn new(relay: Multiaddr) -> NodeOptions {
        NodeOptions {
            relay,
            node: NodeConfig::default(),
            corrupt_served_chunks: false,
        }
    }
}

/// What a running node reports to its handle's consumer ([`Node::next_event`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NetEvent {
    /// The core's event (sync, joins, handler outcomes, …).
    Node(NodeEvent),
    /// The relay accepted our reservation: peers can reach us.
    Reserved {
        /// The relay.
        relay: PeerId,
        /// The circuit limits it set, if any: (duration in s, bytes).
        limit: Option<(Option<u64>, Option<u64>)>,
    },
    /// The reservation (or the relay connection) was lost; a retry is scheduled.
    RelayLost,
    /// A peer of a context was heard for the first time (or again after it was forgotten).
    PeerJoined {
        /// The context.
        context: ContextId,
        /// The peer.
        peer: NodeId,
    },
    /// A peer of a context was forgotten (silent, or unreachable).
    PeerLeft {
        /// The context.
        context: ContextId,
        /// The peer.
        peer: NodeId,
    },
    /// A delta arrived by gossip.
    Gossiped {
        /// Its context.
        context: ContextId,
        /// Its id.
        delta: DeltaId,
        /// The node that published it.
        from: NodeId,
        /// The peer that forwarded it to us (the relay, for a hub).
        via: PeerId,
    },
    /// An announced (large) delta was fetched from its author.
    Fetched {
        /// Its context.
        context: ContextId,
        /// Its id.
        delta: DeltaId,
        /// Its frame's length.
        len: usize,
    },
    /// A relay circuit to or from a peer opened, with the relay's limits.
    Circuit {
        /// The other end (for an inbound circuit) or the relay (outbound).
        peer: PeerId,
        /// (duration in s, bytes), as the relay set them.
        limit: Option<(Option<u64>, Option<u64>)>,
    },
    /// The consumer was too slow: this many events were dropped before this one.
    Lagged(u64),
    /// The store refused a commit for quota (`held_bytes` > 0): the node keeps running, holding
    /// that write and what follows it in memory (not durable, not published; calls that write
    /// fail with [`NetError::NotDurable`] and their writes land later) and retrying; past
    /// [`STALLED_MAX_BYTES`] it stops. `held_bytes` = 0: the store took it all; back to normal.
    StoreFull {
        /// Bytes of keys and values waiting to be committed.
        held_bytes: usize,
    },
    /// A blob was added, fetched (progress, done, failed) or removed, or a peer served bad data.
    Blob(BlobEvent),
}

/// Counters of a running node's network side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// The relay holds our reservation.
    pub reserved: bool,
    /// Times a reservation was accepted (1 + reconnections).
    pub reservations: u64,
    /// Peers connected (the relay and circuit peers).
    pub connected: usize,
    /// Deltas published on gossip (inline or announced).
    pub published: u64,
    /// Deltas received by gossip.
    pub gossiped: u64,
    /// Gossip messages refused by validation.
    pub gossip_rejected: u64,
    /// Deltas waiting in the outbox for a gossip peer.
    pub outbox: usize,
    /// Outbox entries dropped (bound reached).
    pub outbox_dropped: u64,
    /// Sync messages sent and received by request.
    pub sent: u64,
    /// See [`NetStats::sent`].
    pub received: u64,
    /// Sends dropped (too many in flight to one peer, or no peer id for the node).
    pub send_dropped: u64,
    /// Requests that failed (timeout, dial failure, closed connection).
    pub send_failed: u64,
    /// Large deltas fetched after an announcement.
    pub fetched: u64,
    /// Events dropped because the consumer was slow.
    pub events_dropped: u64,
    /// Store commits (each one transaction; a drain merges its persist batches).
    pub commits: u64,
    /// The store is full: writes are held in memory, not durable (see [`NetEvent::StoreFull`]).
    pub store_full: bool,
    /// Commits refused for quota.
    pub quota_failures: u64,
    /// Blobs fetched whole.
    pub blobs_fetched: u64,
    /// Blob chunks served to members.
    pub blob_chunks_served: u64,
    /// Blob requests refused (not a member, or the blob not shared in that context).
    pub blob_refused: u64,
    /// Our blob requests a peer refused.
    pub blob_refused_by_peer: u64,
    /// Blob pieces received that failed verification.
    pub blob_bad_pieces: u64,
}

/// Sends a call's result, or the error that kept its writes from being durable.
type Reply = Box<dyn FnOnce(Option<NetError>) + Send>;
type Call = Box<dyn FnOnce(&mut NodeCore, u64) -> Reply + Send>;

enum Command {
    Call(Call),
    Stats(oneshot::Sender<NetStats>),
    Blob(BlobCommand),
    Stop,
}

/// The handle of a running node. Dropping every clone stops the node.
#[derive(Clone, Debug)]
pub struct Node {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    node_id: NodeId,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Call(_) => "Call",
            Command::Stats(_) => "Stats",
            Command::Blob(_) => "Blob",
            Command::Stop => "Stop",
        })
    }
}

/// The receiving end of a node's events.
#[derive(Debug)]
pub struct Events(mpsc::Receiver<NetEvent>);

impl Events {
    /// The next event, or `None` once the node stopped.
    pub async fn next(&mut self) -> Option<NetEvent> {
        self.0.next().await
    }
}

impl Node {
    /// Starts a node on `store`: loads it (or creates its key on first start and makes it
    /// durable), builds the swarm and asks the relay for a reservation. Returns the handle, the
    /// event stream, and the driver future, which the caller spawns (a tokio task natively,
    /// `spawn_local` in a JS host) and which ends when the node stops.
    pub async fn start<S: AsyncStore + 'static, B: BlobStore + 'static>(
        mut store: S,
        blob_store: B,
        options: NodeOptions,
    ) -> Result<(Node, Events, impl Future<Output = Result<(), NetError>>), NetError> {
        let Some(Protocol::P2p(relay_peer)) = options.relay.iter().last() else {
            return Err(NetError::BadRelay {
                addr: options.relay.to_string(),
                reason: "it must end with /p2p/<relay peer id>",
            });
        };
        let kv = store.load().await?;
        let now = now_ms();
        let seed = Seed(entropy());
        let core = match NodeCore::stored_node_key(&kv) {
            Some(key) => NodeCore::load(key, options.node.clone(), seed, now, &kv)?,
            None => NodeCore::new(Keypair::from_secret(entropy()), options.node.clone(), seed),
        };
        let key = libp2p_keypair(core.node_key());
        let mut swarm = build_swarm(key).await?;
        // Gossipsub may redial the relay (an explicit peer, once connected) by its peer id.
        swarm.add_peer_address(relay_peer, options.relay.clone());
        let peer = *swarm.local_peer_id();
        let node_id = core.id();
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let mut rng_seed = [0u8; 8];
        rng_seed.copy_from_slice(&entropy()[..8]);
        let mut driver = Driver {
            core,
            store,
            swarm,
            relay: RelayLink {
                addr: options.relay.clone(),
                peer: relay_peer,
                listener: None,
                reserved: false,
                retry_at: Some(now),
                backoff_ms: BACKOFF_MIN_MS,
            },
            timers: BTreeMap::new(),
            topics: HashMap::new(),
            in_flight: HashMap::new(),
            requests: HashMap::new(),
            outbox: VecDeque::new(),
            outbox_bytes: 0,
            large: VecDeque::new(),
            large_bytes: 0,
            fetching: HashSet::new(),
            stats: NetStats::default(),
            events: ev_tx,
            lagged: 0,
            stalled: Vec::new(),
            held: Vec::new(),
            module_asks: HashMap::new(),
            rng: DetRng::new(u64::from_le_bytes(rng_seed)),
            blob_store,
            blobs: Blobs::new(options.corrupt_served_chunks),
        };
        driver.load_blobs().await?;
        // The node key (first start) is durable before anyone learns this peer id.
        driver.core.flush();
        driver.drain().await?;
        let node = Node {
            commands: cmd_tx,
            peer_id: peer,
            node_id,
        };
        Ok((node, Events(ev_rx), driver.run(cmd_rx)))
    }

    /// This node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Runs `f` on the core at the driver's current time and returns its result once every
    /// output it caused was handled (its writes committed, its deltas published).
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut NodeCore, u64) -> R + Send + 'static,
    ) -> Result<R, NetError> {
        let (tx, rx) = oneshot::channel();
        let call: Call = Box::new(move |core, now| {
            let result = f(core, now);
            Box::new(move |error: Option<NetError>| {
                let _ = tx.send(match error {
                    None => Ok(result),
                    Some(e) => Err(e),
                });
            })
        });
        self.command(Command::Call(call)).await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Queues a command for the driver (`Stopped` once it has ended).
    async fn command(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .clone()
            .send(command)
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Queues the command `make` builds around a reply channel, and waits for the reply.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.command(make(tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// [`Node::call`] for an app call in `context`: when `f` fails after the app opened blobs
    /// that are not loaded here (`NodeCore::take_wanted_blobs`), they are fetched from the
    /// context's members, loaded into the core's read cache, and `f` runs once more (the failed
    /// run changed nothing). Blobs that cannot be had leave the first failure standing.
    pub async fn call_app<T: Send + 'static, E: Send + 'static>(
        &self,
        context: ContextId,
        f: impl Fn(&mut NodeCore, u64) -> Result<T, E> + Clone + Send + 'static,
    ) -> Result<Result<T, E>, NetError> {
        let (result, wanted) = self.call_wanting(f.clone()).await?;
        if result.is_ok() || wanted.is_empty() {
            return Ok(result);
        }
        let mut loaded = false;
        for blob in wanted {
            if self.blob_fetch(blob, Some(context)).await.is_ok() {
                loaded |= self.blob_cache_for_app(blob).await.unwrap_or(false);
            }
        }
        if !loaded {
            return Ok(result);
        }
        Ok(self.call_wanting(f).await?.0)
    }

    /// [`Node::call`], and the blobs the call wanted when it failed.
    async fn call_wanting<T: Send + 'static, E: Send + 'static>(
        &self,
        f: impl FnOnce(&mut NodeCore, u64) -> Result<T, E> + Send + 'static,
    ) -> Result<(Result<T, E>, Vec<BlobId>), NetError> {
        self.call(move |core, now| {
            let result = f(core, now);
            // Taken either way: what a call that succeeded wanted is not wanted any more.
            let wanted = core.take_wanted_blobs();
            (result, wanted)
        })
        .await
    }

    /// The network counters.
    pub async fn stats(&self) -> Result<NetStats, NetError> {
        self.ask(Command::Stats).await
    }

    async fn blob<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NetError>>) -> BlobCommand,
    ) -> Result<T, NetError> {
        self.ask(|tx| Command::Blob(make(tx))).await?
    }

    /// Starts adding a blob; returns the add's handle. `pin`: keep it until deleted (else only
    /// while a context's state names it); `context`: share it there (announced to its members
    /// once finished). At most [`MAX_UPLOADS`] adds at once.
    pub async fn blob_add_begin(
        &self,
        pin: bool,
        context: Option<ContextId>,
    ) -> Result<u64, NetError> {
        self.blob(|reply| BlobCommand::AddBegin {
            pin,
            context,
            reply,
        })
        .await
    }

    /// Appends bytes to a blob being added (full chunks are stored at once); returns the bytes
    /// written so far.
    pub async fn blob_add_write(&self, handle: u64, bytes: Vec<u8>) -> Result<u64, NetError> {
        self.blob(|reply| BlobCommand::AddWrite {
            handle,
            bytes,
            reply,
        })
        .await
    }

    /// Finishes a blob being added: it is stored whole, with its id.
    pub async fn blob_add_finish(&self, handle: u64) -> Result<BlobInfo, NetError> {
        self.blob(|reply| BlobCommand::AddFinish { handle, reply })
            .await
    }

    /// Abandons a blob being added (its chunks are removed).
    pub async fn blob_add_abort(&self, handle: u64) -> Result<(), NetError> {
        self.command(Command::Blob(BlobCommand::AddAbort { handle }))
            .await
    }

    /// Gets a blob whole into the store (at once if it is held), from the members of `context`
    /// (or of every context) that hold it; resolves once every chunk is verified and stored.
    /// Progress comes as [`NetEvent::Blob`] events.
    pub async fn blob_fetch(
        &self,
        blob: BlobId,
        context: Option<ContextId>,
    ) -> Result<BlobInfo, NetError> {
        self.blob(|reply| BlobCommand::Fetch {
            blob,
            context,
            reply,
        })
        .await
    }

    /// One chunk of a blob held here (whole or not), verified.
    pub async fn blob_read(&self, blob: BlobId, index: u32) -> Result<Vec<u8>, NetError> {
        self.blob(|reply| BlobCommand::Read { blob, index, reply })
            .await
    }

    /// What is known of a blob here (`None`: nothing).
    pub async fn blob_info(&self, blob: BlobId) -> Result<Option<BlobInfo>, NetError> {
        self.blob(|reply| BlobCommand::Info { blob, reply }).await
    }

    /// Every blob held here, whole or in part.
    pub async fn blob_list(&self) -> Result<Vec<BlobInfo>, NetError> {
        self.blob(|reply| BlobCommand::List { reply }).await
    }

    /// Unpins a blob and removes it unless a context's state names it; whether it was removed.
    pub async fn blob_delete(&self, blob: BlobId) -> Result<bool, NetError> {
        self.blob(|reply| BlobCommand::Delete { blob, reply }).await
    }

    /// Removes every blob that is not referenced (pinned, being fetched, or named by a context's
    /// state).
    pub async fn blob_gc(&self) -> Result<GcReport, NetError> {
        self.blob(|reply| BlobCommand::Gc { reply }).await
    }

    /// Loads a blob held whole here (at most `tabmesh_node::MAX_APP_READ_BLOB` bytes) into the
    /// core's read cache, where apps open it; whether it is there now.
    pub async fn blob_cache_for_app(&self, blob: BlobId) -> Result<bool, NetError> {
        self.blob(|reply| BlobCommand::CacheForApp { blob, reply })
            .await
    }

    /// Sends one blob request to one node as a member of `context` and returns its answer
    /// (`None`: it could not be sent or failed below the protocol). For diagnostics and tests.
    pub async fn blob_ask(
        &self,
        peer: NodeId,
        context: ContextId,
        request: BlobRequest,
    ) -> Result<Option<Response>, NetError> {
        self.ask(|reply| {
            Command::Blob(BlobCommand::Ask {
                peer,
                context,
                request,
                reply,
            })
        })
        .await
    }

    /// Stops the node: the driver future ends after closing its listeners.
    pub async fn stop(&self) {
        let _ = self.command(Command::Stop).await;
    }
}

/// The relay connection and reservation.
struct RelayLink {
    addr: Multiaddr,
    peer: PeerId,
    listener: Option<ListenerId>,
    reserved: bool,
    /// When to (re)try listening on the relay, if not listening.
    retry_at: Option<u64>,
    backoff_ms: u64,
}

impl RelayLink {
    fn circuit(&self) -> Multiaddr {
        self.addr.clone().with(Protocol::P2pCircuit)
    }

    fn peer_addr(&self, peer: PeerId) -> Multiaddr {
        self.circuit().with(Protocol::P2p(peer))
    }
}

/// A context's topic as this node sees it.
#[derive(Default)]
struct TopicState {
    /// Peers heard on it, with when they were last heard.
    peers: HashMap<NodeId, u64>,
    /// When we last said hello on it.
    hello_at: Option<u64>,
    /// A newcomer's hello came within [`HELLO_MIN_GAP_MS`] of ours: answer at this time.
    answer_at: Option<u64>,
}

enum Pending {
    Msg(PeerId),
    Fetch(PeerId, ContextId, DeltaId),
    Module(PeerId, ContextId, Hash),
    Blob(PeerId, BlobId, Want),
}

struct Driver<S, B> {
    core: NodeCore,
    store: S,
    swarm: Swarm<Behaviour>,
    relay: RelayLink,
    timers: BTreeMap<TimerKey, u64>,
    topics: HashMap<ContextId, TopicState>,
    in_flight: HashMap<PeerId, usize>,
    requests: HashMap<OutboundRequestId, Pending>,
    outbox: VecDeque<(ContextId, Vec<u8>)>,
    outbox_bytes: usize,
    large: VecDeque<(DeltaId, Vec<u8>, u64)>,
    large_bytes: usize,
    fetching: HashSet<DeltaId>,
    stats: NetStats,
    events: mpsc::Sender<NetEvent>,
    lagged: u64,
    /// Batches a full store refused (in order; see [`NetEvent::StoreFull`]), and the outputs
    /// that wait for them.
    stalled: Vec<WriteBatch>,
    held: Vec<Output>,
    /// When each context's missing app module was last asked for.
    module_asks: HashMap<ContextId, u64>,
    rng: DetRng,
    blob_store: B,
    blobs: Blobs,
}

impl<S: AsyncStore, B: BlobStore> Driver<S, B> {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) -> Result<(), NetError> {
        let mut slice_start = now_ms();
        loop {
            let now = now_ms();
            if now.saturating_sub(slice_start) >= BUSY_SLICE_MS {
                // Busy since the last wait: let the host's event loop run (input, rendering).
                yield_to_host().await;
                slice_start = now_ms();
            }
            let now = now_ms();
            let wait = self.next_deadline().saturating_sub(now);
            let mut sleep =
                futures_timer::Delay::new(std::time::Duration::from_millis(wait)).fuse();
            let mut reply = None;
            futures::select! {
                event = self.swarm.select_next_some() => {
                    self.on_swarm(event);
                    // What else already arrived is handled before the drain (one commit).
                    for _ in 1..EVENTS_PER_DRAIN {
                        match self.swarm.select_next_some().now_or_never() {
                            Some(event) => self.on_swarm(event),
                            None => break,
                        }
                    }
                }
                command = commands.next() => match command {
                    Some(Command::Call(f)) => reply = Some(f(&mut self.core, now_ms())),
                    Some(Command::Stats(tx)) => {
                        let _ = tx.send(self.stats());
                    }
                    Some(Command::Blob(cmd)) => self.blob_command(cmd).await,
                    Some(Command::Stop) | None => {
                        self.shutdown();
                        return Ok(());
                    }
                },
                _ = sleep => {
                    self.on_tick();
                    self.blob_tick(now_ms());
                }
            }
            let held = self.drain().await?;
            self.blob_work().await;
            if let Some(reply) = reply {
                // What the call wrote is held in memory (the store is full), not durable.
                reply(held.then_some(NetError::NotDurable(StoreError::QuotaExceeded)));
            }
        }
    }

    fn shutdown(&mut self) {
        if let Some(l) = self.relay.listener.take() {
            self.swarm.remove_listener(l);
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for p in peers {
            let _ = self.swarm.disconnect_peer_id(p);
        }
    }

    fn stats(&self) -> NetStats {
        NetStats {
            reserved: self.relay.reserved,
            connected: self.swarm.connected_peers().count(),
            outbox: self.outbox.len(),
            ..self.stats.clone()
        }
    }

    fn next_deadline(&self) -> u64 {
        let mut at = now_ms() + HELLO_EVERY_MS;
        if !self.stalled.is_empty() {
            at = at.min(now_ms() + QUOTA_RETRY_MS);
        }
        if let Some(t) = self.timers.values().min() {
            at = at.min(*t);
        }
        if let Some(t) = self.relay.retry_at {
            at = at.min(t);
        }
        if let Some(t) = self.blob_deadline() {
            at = at.min(t);
        }
        for t in self.topics.values() {
            if let Some(a) = t.answer_at {
                at = at.min(a);
            }
        }
        at
    }

    fn emit(&mut self, event: NetEvent) {
        if self.lagged > 0 {
            if self.events.try_send(NetEvent::Lagged(self.lagged)).is_err() {
                self.lagged += 1;
                self.stats.events_dropped += 1;
                return;
            }
            self.lagged = 0;
        }
        if self.events.try_send(event).is_err() {
            self.lagged += 1;
            self.stats.events_dropped += 1;
        }
    }

    // ---------------------------------------------------------------------------------------
    // The core's outputs.

    /// Handles the core's outputs: first every persist batch, merged into as few commits as
    /// [`COMMIT_MERGE_BYTES`] allows (in order), then the rest in order — all of which may
    /// depend only on batches before them, now durable. Returns whether new writes were held
    /// back by a full store.
    async fn drain(&mut self) -> Result<bool, NetError> {
        // What a full store held back goes first.
        let mut chunks = std::mem::take(&mut self.stalled);
        let mut rest = std::mem::take(&mut self.held);
        let mut chunk_bytes = chunks.last().map_or(0, WriteBatch::byte_len);
        let mut wrote = false;
        while let Some(out) = self.core.poll_output() {
            let Output::Persist(batch) = out else {
                rest.push(out);
                continue;
            };
            wrote = true;
            let bytes = batch.byte_len();
            match chunks.last_mut() {
                Some(last) if chunk_bytes + bytes <= COMMIT_MERGE_BYTES => last.extend(batch),
                _ => {
                    chunks.push(batch);
                    chunk_bytes = 0;
                }
            }
            chunk_bytes += bytes;
        }
        let mut chunks = chunks.into_iter();
        while let Some(chunk) = chunks.next() {
            match self.commit(&chunk).await {
                Ok(()) => {}
                Err(NetError::Store(StoreError::QuotaExceeded)) => {
                    // The node keeps running: this and what follows wait in memory (bounded),
                    // retried at every drain and every QUOTA_RETRY_MS; nothing that depends on
                    // them is published or acknowledged meanwhile.
                    self.stalled = std::iter::once(chunk).chain(chunks).collect();
                    self.held = rest;
                    let bytes: usize = self.stalled.iter().map(WriteBatch::byte_len).sum();
                    if bytes > STALLED_MAX_BYTES {
                        return Err(NetError::Store(StoreError::QuotaExceeded));
                    }
                    if !self.stats.store_full {
                        self.stats.store_full = true;
                        self.emit(NetEvent::StoreFull { held_bytes: bytes });
                    }
                    self.stats.quota_failures += 1;
                    return Ok(wrote);
                }
                Err(e) => return Err(e),
            }
        }
        if self.stats.store_full {
            self.stats.store_full = false;
            self.emit(NetEvent::StoreFull { held_bytes: 0 });
        }
        let now = now_ms();
        for out in rest {
            match out {
                Output::Subscribe(context) => {
                    if let Err(e) = self
                        .swarm
                        .behaviour_mut()
                        .gossip
                        .inner()
                        .subscribe(&topic(&context))
                    {
                        tracing::warn!(%e, "subscribing to a context topic failed");
                    }
                    self.topics.entry(context).or_default();
                    if self.relay.reserved {
                        self.hello(now, context, true);
                    }
                }
                Output::Publish {
                    context,
                    bytes,
                    delta,
                } => self.publish_delta(now, context, delta, bytes),
                Output::Send { to, bytes } => self.send(to, Request::Msg(bytes)),
                Output::ArmTimer { key, at_ms } => {
                    self.timers.insert(key, at_ms);
                }
                Output::CancelTimer(key) => {
                    self.timers.remove(&key);
                }
                Output::Notify(event) => self.emit(NetEvent::Node(event)),
                Output::StoreBlob {
                    context,
                    manifest,
                    chunks,
                } => self.store_app_blob(context, manifest, chunks).await,
                _ => {}
            }
        }
        self.want_modules(now);
        Ok(false)
    }

    async fn commit(&mut self, batch: &WriteBatch) -> Result<(), NetError> {
        self.store.commit(batch).await?;
        self.stats.commits += 1;
        Ok(())
    }

    fn publish_delta(&mut self, now: u64, context: ContextId, delta: DeltaId, bytes: Vec<u8>) {
        let msg = if bytes.len() <= INLINE_MAX {
            GossipMsg::Delta(bytes)
        } else {
            let len = bytes.len() as u32;
            self.keep_large(now, delta, bytes);
            GossipMsg::Announce {
                context,
                delta,
                len,
            }
        };
        self.stats.published += 1;
        let data = msg.encode();
        if !self.try_publish(context, &data) {
            self.outbox_bytes += data.len();
            self.outbox.push_back((context, data));
            while self.outbox.len() > OUTBOX_MAX || self.outbox_bytes > OUTBOX_BYTES {
                if let Some((_, old)) = self.outbox.pop_front() {
                    self.outbox_bytes -= old.len();
                    self.stats.outbox_dropped += 1;
                }
            }
        }
    }

    /// Publishes; `false` if there is no gossip peer yet (the caller keeps it for later).
    fn try_publish(&mut self, context: ContextId, data: &[u8]) -> bool {
        match self
            .swarm
            .behaviour_mut()
            .gossip
            .inner()
            .publish(topic(&context), data.to_vec())
        {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => true,
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => false,
            Err(e) => {
                // Queues full or too large: catch-up sync carries the delta.
                tracing::debug!(%e, "publish failed");
                true
            }
        }
    }

    fn flush_outbox(&mut self) {
        let pending = std::mem::take(&mut self.outbox);
        self.outbox_bytes = 0;
        for (context, data) in pending {
            if !self.try_publish(context, &data) {
                self.outbox_bytes += data.len();
                self.outbox.push_back((context, data));
            }
        }
    }

    fn keep_large(&mut self, now: u64, delta: DeltaId, bytes: Vec<u8>) {
        self.large_bytes += bytes.len();
        self.large.push_back((delta, bytes, now));
        while self.large.len() > LARGE_MAX || self.large_bytes > LARGE_BYTES {
            if let Some((_, old, _)) = self.large.pop_front() {
                self.large_bytes -= old.len();
            }
        }
    }

    fn send(&mut self, to: NodeId, request: Request) {
        let Some(peer) = peer_id(&to) else {
            self.stats.send_dropped += 1;
            return;
        };
        self.send_to(peer, request);
    }

    fn send_to(&mut self, peer: PeerId, request: Request) -> Option<OutboundRequestId> {
        let n = self.in_flight.entry(peer).or_default();
        if *n >= MAX_IN_FLIGHT_PER_PEER {
            self.stats.send_dropped += 1;
            return None;
        }
        *n += 1;
        let pending = match &request {
            Request::Fetch { context, delta } => Pending::Fetch(peer, *context, *delta),
            Request::Module { context, app } => Pending::Module(peer, *context, *app),
            Request::Blob { request, .. } => Pending::Blob(peer, request.blob, request.what),
            Request::Msg(_) => {
                self.stats.sent += 1;
                Pending::Msg(peer)
            }
        };
        let addr = self.relay.peer_addr(peer);
        let id =
            self.swarm
                .behaviour_mut()
                .sync
                .send_request_with_addresses(&peer, request, vec![addr]);
        self.requests.insert(id, pending);
        Some(id)
    }

    fn finish_request(&mut self, id: &OutboundRequestId) -> Option<Pending> {
        let pending = self.requests.remove(id)?;
        let peer = match &pending {
            Pending::Msg(p)
            | Pending::Fetch(p, ..)
            | Pending::Module(p, ..)
            | Pending::Blob(p, ..) => *p,
        };
        if let Some(n) = self.in_flight.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&peer);
            }
        }
        if let Pending::Fetch(_, _, d) = &pending {
            self.fetching.remove(d);
        }
        Some(pending)
    }

    // ---------------------------------------------------------------------------------------
    // App modules.

    /// Asks a peer of each context whose app module this node lacks for it (at most every
    /// [`MODULE_RETRY_MS`] per context, each time another peer).
    fn want_modules(&mut self, now: u64) {
        let wanted: Vec<(ContextId, Hash)> = self
            .topics
            .keys()
            .filter_map(|c| Some((*c, self.core.missing_app(c)?)))
            .collect();
        for (context, app) in wanted {
            if self
                .module_asks
                .get(&context)
                .is_some_and(|at| now < at + MODULE_RETRY_MS)
            {
                continue;
            }
            let peers: Vec<NodeId> = self
                .topics
                .get(&context)
                .map(|t| t.peers.keys().copied().collect())
                .unwrap_or_default();
            if peers.is_empty() {
                continue;
            }
            let node = peers[self.rng.index(peers.len())];
            if let Some(peer) = peer_id(&node) {
                self.module_asks.insert(context, now);
                self.send_to(peer, Request::Module { context, app });
            }
        }
        self.module_asks
            .retain(|c, _| self.core.missing_app(c).is_some());
    }

    /// A module is served only to a peer of its context (one that knows the context id, from an
    /// invitation) and only if the context runs it here.
    fn serve_module(&self, peer: PeerId, context: &ContextId, app: &Hash) -> Response {
        let known = node_id(&peer).is_some_and(|n| {
            self.topics
                .get(context)
                .is_some_and(|t| t.peers.contains_key(&n))
        });
        match self.core.module(app) {
            Some(bytes) if known && self.core.app(context) == Some(*app) => {
                Response::Module(bytes.to_vec())
            }
            _ => Response::Missing,
        }
    }

    /// A fetched module: checked against its hash, then given to the core.
    fn module_arrived(&mut self, now: u64, context: ContextId, app: Hash, bytes: &[u8]) {
        if Hash::of(bytes) != app {
            tracing::warn!(%context, "a peer served a module that is not the one asked for");
            return;
        }
        match self.core.attach_app(now, context, bytes) {
            Ok(()) => {
                self.module_asks.remove(&context);
            }
            Err(e) => tracing::warn!(%context, %e, "a fetched app module was refused"),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Peers and hellos.

    /// Says hello on a context's topic; `ask`: the peers should answer (we just (re)joined).
    fn hello(&mut self, now: u64, context: ContextId, ask: bool) {
        let nonce = self.rng.next_u64();
        let data = GossipMsg::Hello {
            context,
            nonce,
            ask,
        }
        .encode();
        if let Some(t) = self.topics.get_mut(&context) {
            t.hello_at = Some(now);
            t.answer_at = None;
        }
        // No gossip peer yet: the hello after the next reservation covers it.
        self.publish_once(context, data);
    }

    /// Publishes on a context's topic, best effort: a message that cannot go now (no gossip peer
    /// yet, queues full) is not kept (what calls this repeats it, or has another path).
    fn publish_once(&mut self, context: ContextId, data: Vec<u8>) {
        let _ = self
            .swarm
            .behaviour_mut()
            .gossip
            .inner()
            .publish(topic(&context), data);
    }

    /// Records `node` (libp2p `peer`) as a peer of `context`; `true` if it is new.
    fn peer_seen(&mut self, now: u64, context: ContextId, node: NodeId, peer: PeerId) -> bool {
        let Some(t) = self.topics.get_mut(&context) else {
            return false;
        };
        if let Some(seen) = t.peers.get_mut(&node) {
            *seen = now;
            return false;
        }
        if t.peers.len() >= MAX_PEERS_PER_CONTEXT {
            return false;
        }
        let first = t.peers.is_empty();
        t.peers.insert(node, now);
        self.swarm
            .add_peer_address(peer, self.relay.peer_addr(peer));
        self.core.peer_joined(now, context, node);
        if first {
            // The context's first peer since this node started or was cut off: what it missed
            // meanwhile comes now, not at the next sync tick.
            self.core.sync_now(now, context);
        }
        self.emit(NetEvent::PeerJoined {
            context,
            peer: node,
        });
        true
    }

    /// `node` is gone from every context it was heard on.
    fn forget_peer(&mut self, now: u64, node: NodeId) {
        let contexts: Vec<ContextId> = self
            .topics
            .iter()
            .filter(|(_, t)| t.peers.contains_key(&node))
            .map(|(c, _)| *c)
            .collect();
        for context in contexts {
            self.peer_left(now, context, node);
        }
    }

    /// `node` is no longer a peer of `context`.
    fn peer_left(&mut self, now: u64, context: ContextId, node: NodeId) {
        if let Some(t) = self.topics.get_mut(&context) {
            t.peers.remove(&node);
        }
        self.core.peer_left(now, context, node);
        self.blob_peer_left(now, context, node);
        self.emit(NetEvent::PeerLeft {
            context,
            peer: node,
        });
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        // The core's timers.
        let due: Vec<TimerKey> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            self.timers.remove(&key);
            self.core.handle_timer(now, key);
        }
        // The relay.
        if self.relay.retry_at.is_some_and(|t| t <= now) {
            self.relay.retry_at = None;
            self.listen_on_relay(now);
        }
        // Silent peers, then hellos.
        let silent: Vec<(ContextId, NodeId)> = self
            .topics
            .iter()
            .flat_map(|(c, t)| {
                t.peers
                    .iter()
                    .filter(|(_, seen)| **seen + PEER_TTL_MS <= now)
                    .map(|(n, _)| (*c, *n))
            })
            .collect();
        for (context, node) in silent {
            self.peer_left(now, context, node);
        }
        if self.relay.reserved {
            let due: Vec<ContextId> = self
                .topics
                .iter()
                .filter(|(_, t)| {
                    t.hello_at.is_none_or(|at| at + HELLO_EVERY_MS <= now)
                        || t.answer_at.is_some_and(|at| at <= now)
                })
                .map(|(c, _)| *c)
                .collect();
            for context in due {
                self.hello(now, context, false);
            }
        }
        while self
            .large
            .front()
            .is_some_and(|(_, _, at)| at + LARGE_TTL_MS <= now)
        {
            if let Some((_, old, _)) = self.large.pop_front() {
                self.large_bytes -= old.len();
            }
        }
        if !self.outbox.is_empty() {
            self.flush_outbox();
        }
    }

    fn listen_on_relay(&mut self, now: u64) {
        if self.relay.listener.is_some() {
            return;
        }
        match self.swarm.listen_on(self.relay.circuit()) {
            Ok(id) => self.relay.listener = Some(id),
            Err(e) => {
                tracing::warn!(%e, "listening on the relay failed");
                self.relay_lost(now);
            }
        }
    }

    fn relay_lost(&mut self, now: u64) {
        let was = self.relay.reserved;
        self.relay.reserved = false;
        if let Some(l) = self.relay.listener.take() {
            self.swarm.remove_listener(l);
        }
        if self.relay.retry_at.is_none() {
            // ±20 % jitter around the current backoff, which then doubles up to the cap.
            let b = self.relay.backoff_ms;
            let jitter = self.rng.below(b * 2 / 5 + 1);
            self.relay.retry_at = Some(now + b - b / 5 + jitter);
            self.relay.backoff_ms = (b * 2).min(BACKOFF_MAX_MS);
        }
        if was {
            self.emit(NetEvent::RelayLost);
        }
    }

    // ---------------------------------------------------------------------------------------
    // The swarm's events.

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = now_ms();
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.on_relay(now, e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(e)) => self.on_gossip(now, e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync(now, e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(libp2p::ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                tracing::info!(%peer, %error, "ping failed: closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if Some(listener_id) == self.relay.listener => {
                tracing::info!(?reason, "relay listener closed");
                self.relay.listener = None;
                self.relay_lost(now);
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == self.relay.peer => {
                // The relay is an explicit gossip peer both ways: everything is forwarded to it
                // and by it, outside any mesh. Added once connected: added earlier, gossipsub
                // dials it at once, racing the reservation's own dial (which then fails).
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .inner()
                    .add_explicit_peer(&peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if peer_id == self.relay.peer => {
                tracing::info!("relay connection closed");
                self.relay_lost(now);
            }
            _ => {}
        }
    }

    fn on_relay(&mut self, now: u64, event: relay::client::Event) {
        // The relay's `Limit` type is not exported: read it where it is known.
        macro_rules! limit {
            ($l:expr) => {
                $l.map(|l| (l.duration().map(|d| d.as_secs()), l.data_in_bytes()))
            };
        }
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                limit: l,
            } => {
                if !renewal || !self.relay.reserved {
                    self.stats.reservations += 1;
                }
                self.relay.reserved = true;
                self.relay.backoff_ms = BACKOFF_MIN_MS;
                self.emit(NetEvent::Reserved {
                    relay: relay_peer_id,
                    limit: limit!(l),
                });
                let contexts: Vec<ContextId> = self.topics.keys().copied().collect();
                for context in contexts {
                    self.hello(now, context, true);
                }
                self.flush_outbox();
            }
            relay::client::Event::OutboundCircuitEstablished {
                relay_peer_id,
                limit: l,
            } => self.emit(NetEvent::Circuit {
                peer: relay_peer_id,
                limit: limit!(l),
            }),
            relay::client::Event::InboundCircuitEstablished {
                src_peer_id,
                limit: l,
            } => self.emit(NetEvent::Circuit {
                peer: src_peer_id,
                limit: limit!(l),
            }),
        }
    }

    fn on_gossip(&mut self, now: u64, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let checked = gossip::validate(&message.topic, &message.data);
                let verdict = if checked.is_ok() {
                    gossipsub::MessageAcceptance::Accept
                } else {
                    self.stats.gossip_rejected += 1;
                    gossipsub::MessageAcceptance::Reject
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .inner()
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
                let (Ok(valid), Some(source)) = (checked, message.source) else {
                    return;
                };
                let Some(from) = node_id(&source) else {
                    return;
                };
                if from == self.core.id() {
                    return;
                }
                let context = valid.context;
                let new = self.peer_seen(now, context, from, source);
                match valid.msg {
                    GossipMsg::Delta(bytes) => {
                        self.stats.gossiped += 1;
                        if let Some(delta) = valid.delta {
                            self.emit(NetEvent::Gossiped {
                                context,
                                delta,
                                from,
                                via: propagation_source,
                            });
                        }
                        self.core.handle_message(now, from, &bytes);
                    }
                    GossipMsg::Announce { delta, .. } => {
                        let held = self
                            .core
                            .replica(&context)
                            .is_none_or(|r| r.dag().get(&delta).is_some());
                        if !held
                            && self.fetching.len() < MAX_FETCHES
                            && self.fetching.insert(delta)
                            && self
                                .send_to(source, Request::Fetch { context, delta })
                                .is_none()
                        {
                            self.fetching.remove(&delta);
                        }
                    }
                    GossipMsg::Hello { ask, .. } if ask || new => {
                        // Answer a peer that just (re)joined the topic or that we did not know (it
                        // may not know us), at most once per gap: at once, or when the gap since
                        // our last hello has passed. (A restarted peer is still "known" here.)
                        let Some(t) = self.topics.get_mut(&context) else {
                            return;
                        };
                        match t.hello_at {
                            Some(at) if at + HELLO_MIN_GAP_MS > now => {
                                t.answer_at = Some(at + HELLO_MIN_GAP_MS);
                            }
                            _ if self.relay.reserved => self.hello(now, context, false),
                            _ => {}
                        }
                    }
                    GossipMsg::Hello { .. } => {}
                    GossipMsg::Have { blobs, .. } => self.on_have(now, context, from, blobs),
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } if peer_id == self.relay.peer => {
                // The hub joined the topic: only now does it forward what we publish there (a
                // message on a topic it has not joined yet is dropped). Say hello, publish what
                // waited.
                if let Some(context) = crate::topic::context_of(&topic) {
                    if self.topics.contains_key(&context) {
                        self.hello(now, context, true);
                    }
                }
                self.flush_outbox();
            }
            _ => {}
        }
    }

    fn on_sync(&mut self, now: u64, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if let Request::Blob { context, request } = request {
                        self.on_blob_request(node_id(&peer), context, request, channel);
                        return;
                    }
                    let response = match &request {
                        Request::Msg(_) => Response::Ack,
                        Request::Blob { .. } => Response::Refused,
                        Request::Fetch { delta, .. } => self
                            .large
                            .iter()
                            .find(|(d, ..)| d == delta)
                            .map(|(_, b, _)| Response::Delta(b.clone()))
                            .unwrap_or(Response::Missing),
                        Request::Module { context, app } => self.serve_module(peer, context, app),
                    };
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                    if let (Request::Msg(bytes), Some(from)) = (request, node_id(&peer)) {
                        self.stats.received += 1;
                        self.core.handle_message(now, from, &bytes);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(ask) = self.blobs.asks.remove(&request_id) {
                        self.finish_request(&request_id);
                        let _ = ask.send(Some(response));
                        return;
                    }
                    let pending = self.finish_request(&request_id);
                    if let (Some(Pending::Blob(_, blob, what)), Some(from)) =
                        (&pending, node_id(&peer))
                    {
                        self.on_blob_response(now, from, *blob, *what, response);
                        return;
                    }
                    if let (Some(Pending::Module(_, context, app)), Response::Module(bytes)) =
                        (&pending, &response)
                    {
                        self.module_arrived(now, *context, *app, bytes);
                        return;
                    }
                    if let (Some(Pending::Fetch(_, context, delta)), Response::Delta(bytes)) =
                        (pending, response)
                    {
                        // The author serves the frame; it must be the announced delta.
                        if gossip::delta_frame(&bytes).is_ok_and(|(_, d)| d == delta) {
                            if let Some(from) = node_id(&peer) {
                                self.stats.fetched += 1;
                                self.emit(NetEvent::Fetched {
                                    context,
                                    delta,
                                    len: bytes.len(),
                                });
                                self.core.handle_message(now, from, &bytes);
                            }
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(ask) = self.blobs.asks.remove(&request_id) {
                    let _ = ask.send(None);
                }
                if let (Some(Pending::Blob(_, blob, _)), Some(node)) =
                    (self.finish_request(&request_id), node_id(&peer))
                {
                    self.on_blob_failure(now, node, blob);
                }
                self.stats.send_failed += 1;
                tracing::debug!(%peer, %error, "request failed");
                if matches!(error, OutboundFailure::DialFailure) {
                    if let Some(node) = node_id(&peer) {
                        self.forget_peer(now, node);
                    }
                }
            }
            _ => {}
        }
    }
}
