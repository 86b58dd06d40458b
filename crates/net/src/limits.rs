//! Every bound of the network shell, in one place. Each is a constant so that all peers agree
//! (gossip sizes) and so that no queue, cache or table can grow without limit.

use std::time::Duration;

use tabmesh_node::MAX_WIRE;

/// gossipsub's `max_transmit_size` on every peer and on the relay (libp2p's default is 64 KiB).
/// A message over it is dropped by every hop, so all peers must share it.
pub const GOSSIP_MAX: usize = 256 * 1024;

/// The largest delta frame published inline on gossip; a larger one is announced
/// ([`crate::GossipMsg::Announce`]) and fetched by request from its author. The margin covers
/// gossipsub's own framing (topic, source, sequence number, signature and key).
pub const INLINE_MAX: usize = GOSSIP_MAX - 4 * 1024;

/// The largest app module served to a joiner (the runtime's default module bound,
/// `tabmesh_runtime::MAX_MODULE_BYTES`; asserted in the tests).
pub const MODULE_MAX: usize = 8 << 20;

/// The largest request or response body on the sync protocol: one node wire frame or one app
/// module, plus our own tag, version and length.
pub const MESSAGE_MAX: usize = if MAX_WIRE > MODULE_MAX {
    MAX_WIRE
} else {
    MODULE_MAX
} + 64;

/// How long a request waits for its response before it fails (the sync layer has its own
/// timeouts above this one).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Concurrent request-response streams per connection.
pub const MAX_STREAMS: usize = 64;

/// Requests in flight to one peer. request-response queues requests to an unconnected peer
/// without bound while it dials; past this cap a send is dropped (counted) and the sync
/// layer's retries cover it.
pub const MAX_IN_FLIGHT_PER_PEER: usize = 32;

/// A connection with nothing to do stays open this long (libp2p's default is 10 s, and
/// gossipsub keeps a connection alive only while the peer is in a mesh).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Every connection is pinged this often; a ping unanswered for [`PING_TIMEOUT`] closes the
/// connection (libp2p's ping only reports it). This is how a silently dead relay or peer is
/// noticed — a WebRTC connection whose far end died may otherwise look alive for minutes.
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// See [`PING_EVERY`].
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Deltas waiting for a gossip peer (published while the relay was away), and their bytes. The
/// oldest is dropped past either bound (it stays in the DAG: catch-up sync carries it).
pub const OUTBOX_MAX: usize = 256;
/// See [`OUTBOX_MAX`].
pub const OUTBOX_BYTES: usize = 16 << 20;

/// Large deltas (over [`INLINE_MAX`]) kept to serve announce fetches: entries and bytes; the
/// oldest goes first, and an entry expires after [`LARGE_TTL_MS`].
pub const LARGE_MAX: usize = 64;
/// See [`LARGE_MAX`].
pub const LARGE_BYTES: usize = 32 << 20;
/// See [`LARGE_MAX`].
pub const LARGE_TTL_MS: u64 = 10 * 60 * 1000;

/// Announced deltas being fetched at once; further announcements are left to catch-up sync.
pub const MAX_FETCHES: usize = 8;

/// Peers remembered per context (heard on its topic). Past it, new peers are not tracked
/// until one expires.
pub const MAX_PEERS_PER_CONTEXT: usize = 256;

/// A peer not heard from on a context's topic for this long is forgotten (`peer_left`).
pub const PEER_TTL_MS: u64 = 120 * 1000;

/// How often a node says hello on each of its contexts' topics, so peers keep it.
pub const HELLO_EVERY_MS: u64 = 30 * 1000;

/// The least time between two hellos on one topic (a hello from a new peer is answered with
/// ours, at most this often).
pub const HELLO_MIN_GAP_MS: u64 = 500;

/// Reconnection to the relay: the first retry, the cap, and the factor between retries
/// (each with ±20 % jitter).
pub const BACKOFF_MIN_MS: u64 = 250;
/// See [`BACKOFF_MIN_MS`].
pub const BACKOFF_MAX_MS: u64 = 30 * 1000;

/// Commands queued to a running node (its handle's `send` waits past it).
pub const COMMAND_QUEUE: usize = 64;

/// Events queued for a node's consumer; past it the oldest are dropped and counted.
pub const EVENT_QUEUE: usize = 1024;

/// gossipsub's per-connection send queue (its default is 5 000 messages).
pub const GOSSIP_HANDLER_QUEUE: usize = 1024;

/// Topics (contexts) a peer may subscribe to on one connection, and in one request.
pub const MAX_TOPICS: usize = 4096;

/// Swarm events handled (when already waiting) before the core's outputs are drained: their
/// persist batches commit together, so a catch-up cascade is a few large transactions rather
/// than one per message.
pub const EVENTS_PER_DRAIN: usize = 64;

/// The most bytes of keys and values merged into one commit (well under storage's `MAX_BATCH`); a
/// drain with more commits several batches, in order.
pub const COMMIT_MERGE_BYTES: usize = 8 << 20;

/// After this long busy without waiting, the driver yields to its host's event loop (a zero-length
/// timer) before going on, so a page's main thread is never held for long (a browser counts tasks
/// over 50 ms as long tasks).
pub const BUSY_SLICE_MS: u64 = 12;

/// While the store refuses commits for quota, how often the driver retries them (it also retries
/// at every drain).
pub const QUOTA_RETRY_MS: u64 = 5_000;

/// The most bytes of writes a full store may leave waiting in memory; past it the node stops
/// (`NetError::Store(QuotaExceeded)`).
pub const STALLED_MAX_BYTES: usize = 32 << 20;

/// How often a node lacking a context's app module asks a peer for it (each time a random peer of
/// the context).
pub const MODULE_RETRY_MS: u64 = 5_000;

/// Blob ids in one [`GossipMsg::Have`](crate::GossipMsg::Have) announcement (32 bytes each: 2 KiB).
pub const HAVE_MAX: usize = 64;

/// Blobs being added (written from the host) at once; more are refused.
pub const MAX_UPLOADS: usize = 8;

/// Blobs being fetched at once; more are refused (the caller retries).
pub const MAX_BLOB_FETCHES: usize = 8;

/// Blob requests waiting to be served (each reads one chunk from the store, and its answer waits
/// in the swarm until written: at most 16 × 256 KiB = 4 MiB); past it a request is answered
/// "missing" at once and the asker tries elsewhere or later. Each fetcher keeps at most three
/// chunk requests in flight, so five fetch from one holder at full speed.
pub const MAX_BLOB_SERVES: usize = 16;

/// Holders remembered per blob from announcements, and blobs with announcements remembered; the
/// oldest blob is forgotten first.
pub const MAX_ANNOUNCERS: usize = 32;
/// See [`MAX_ANNOUNCERS`].
pub const MAX_ANNOUNCED_BLOBS: usize = 4096;

/// Contexts a blob is recorded as shared in (the rest still serve it if their state names it).
pub const MAX_BLOB_CONTEXTS: usize = 16;

/// A fetch with nobody to ask for this long fails (`NetError::BlobUnavailable`); chunks stored so
/// far stay, and a later fetch resumes from them.
pub const BLOB_PATIENCE_MS: u64 = 60_000;

/// A peer dropped from a fetch for bad chunks is not asked for any blob for this long.
pub const BLOB_PENALTY_MS: u64 = 10 * 60 * 1000;

/// A holder that refused a request (it does not know us as a member yet: it learns that from our
/// first sealed sync message), or whose request failed below the protocol (it went away), is not
/// asked again for this long.
pub const BLOB_REFUSED_BACKOFF_MS: u64 = 2_000;

/// While a fetch has nobody to ask, holders are looked for again this often.
pub const BLOB_STUCK_RETRY_MS: u64 = 1_000;

/// Penalised peers remembered; past it the oldest penalty is forgotten.
pub const MAX_PENALTIES: usize = 256;

/// Verified manifests kept in memory for serving (each at most 512 KiB; a 100 MB blob's is 12.5 KiB).
pub const MANIFEST_CACHE: usize = 16;
