//! Sync configuration: every timer and bound of the protocols, with its default.

use tabmesh_dag::DagConfig;

/// Timers and bounds of a context's sync machinery. Times are milliseconds of the caller's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Period of the sync tick (periodic sync, parent re-pulls, housekeeping checks). Default 10 s.
    pub tick_ms: u64,
    /// Minimum time between two periodic sync sessions of one context. Default 5 s.
    pub min_interval_ms: u64,
    /// A whole sync session (heads exchange and catch-up) must end within this. Default 30 s.
    pub session_timeout_ms: u64,
    /// One request's answer must arrive within this (parent pull budget). Default 5 s.
    pub request_timeout_ms: u64,
    /// A peer more than this many applied deltas ahead is caught up by Merkle comparison instead
    /// of delta sync. Default 1 000.
    pub delta_gap_threshold: u64,
    /// Attempts to pull one missing parent (from the sender, then other peers) before giving up
    /// until the next periodic sync finds it. Default 6.
    pub max_pull_attempts: u32,
    /// Missing parents asked for in one request. Default 64.
    pub pull_batch: usize,
    /// Deltas per page this replica serves to a delta sync (at most `MAX_DELTAS`; default 64): the requester
    /// applies a page in one go, so a smaller page keeps each step short (a browser tab's main
    /// thread counts tasks over 50 ms as long) at the cost of more round trips.
    pub since_page: usize,
    /// Missing parents tracked at once (more wait for the next tick's re-scan). Default 10 000.
    pub max_wanted: usize,
    /// Upper bound of the per-peer failure backoff (free for two failures in a row, then doubling
    /// from 0.5 s). Default 30 s.
    pub max_backoff_ms: u64,
    /// Deltas buffered while a snapshot is being fetched (oldest dropped past it, counted, and
    /// re-pulled by the next sync). Default 10 000.
    pub snapshot_buffer: usize,
    /// Frozen snapshots served at once (the oldest is dropped past it). Default 4.
    pub max_snapshot_sessions: usize,
    /// A frozen snapshot is dropped this long after its last page was asked for. Default 60 s.
    pub snapshot_ttl_ms: u64,
    /// Entities per snapshot page. Default 512.
    pub snapshot_page_entities: usize,
    /// Requests one Merkle comparison may send before it gives up. Default 4 096.
    pub max_merkle_requests: u32,
    /// Housekeeping period: stale pending eviction, DAG compaction and tombstone garbage
    /// collection. Default 60 s.
    pub housekeeping_ms: u64,
    /// Compact the DAG once this many deltas are retained. Default 10 000.
    pub compact_after: usize,
    /// Deltas kept by a compaction (the rest lose their bodies). Default 1 000.
    pub compact_retain: usize,
    /// Tombstone retention. Default 7 days; `u64::MAX` keeps tombstones forever.
    ///
    /// Housekeeping collects every deleted entity entirely older than the GC horizon
    /// `min(now, last sync) − retention` ([`State::collect_garbage`](tabmesh_state::State::collect_garbage)),
    /// where *last sync* is the last time a session with a peer that has state ended in step with
    /// it (in sync, pulled, or converged) with no delta left waiting for parents. A replica that
    /// was cut off therefore does not advance its horizon past what it has seen, and one that
    /// never syncs (a lone replica) keeps its tombstones.
    ///
    /// The contract: **every write reaches every replica within the retention.** A replica offline
    /// for longer catches up by Merkle comparison without resurrecting what others deleted and
    /// collected meanwhile (fragments older than the horizon are dropped, entities a peer collected
    /// are forgotten). What it gives up: a write that did not reach the rest of the replicas within
    /// the retention (made offline, or inside a partition that lasted longer) and that nothing
    /// newer touched may be dropped, as a collected deletion would be.
    ///
    /// Why 7 days: tabs and laptops are closed over weekends and short holidays, and a tombstone
    /// costs one small record; a day (the upstream choice) drops too many offline edits for a
    /// browser node, while much longer keeps every tombstone of an editing-heavy app for weeks.
    pub tombstone_retention_ms: u64,
    /// Requests one peer may have served per second, sustained (a token bucket per peer,
    /// refilled at this rate). A request over the budget is dropped unanswered and reported
    /// ([`SyncError::RateLimited`](crate::SyncError::RateLimited)); the peer's session times out
    /// and retries with backoff. Default 200 (an honest catch-up sends one request per round
    /// trip).
    pub requests_per_sec: u32,
    /// The bucket's size: requests a peer may send at once before the rate applies. Default 400.
    pub request_burst: u32,
    /// The DAG's own bounds (pending cap, pending age, pruned ids, query limit).
    pub dag: DagConfig,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            tick_ms: 10_000,
            min_interval_ms: 5_000,
            session_timeout_ms: 30_000,
            request_timeout_ms: 5_000,
            delta_gap_threshold: 1_000,
            max_pull_attempts: 6,
            pull_batch: 64,
            since_page: 64,
            max_wanted: 10_000,
            max_backoff_ms: 30_000,
            snapshot_buffer: 10_000,
            max_snapshot_sessions: 4,
            snapshot_ttl_ms: 60_000,
            snapshot_page_entities: 512,
            max_merkle_requests: 4_096,
            housekeeping_ms: 60_000,
            compact_after: 10_000,
            compact_retain: 1_000,
            tombstone_retention_ms: 7 * 24 * 60 * 60 * 1_000,
            requests_per_sec: 200,
            request_burst: 400,
            dag: DagConfig::default(),
        }
    }
}
