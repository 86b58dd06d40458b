//! [`Fetch`]: the sans-IO machine that gets one blob from its holders, manifest first, then every
//! chunk, each verified before it is stored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tabmesh_base::{DetRng, NodeId};

use crate::chunk::{CHUNK_SIZE, MAX_BLOB_LEN, MAX_MANIFEST_LEN};
use crate::{BlobError, BlobId, BlobResponse, FetchError, Manifest, Want};

/// Most chunk requests one fetch may have in flight, whatever its [`Limits`] say: 64.
pub const MAX_IN_FLIGHT_CHUNKS: usize = 64;

/// Most chunk bytes one fetch may have in flight, whatever its [`Limits`] say: 1 MiB. A peer's
/// answers share one connection, and websocket-websys closes a connection whose read buffer passes
/// 1 MiB; keeping what we asked for under it means that even with every request on one holder our
/// own requests cannot overflow it.
pub const MAX_IN_FLIGHT_BYTES: usize = 1024 * 1024;

// One chunk, and the largest manifest, each fit the in-flight budget (one message each).
const _: () = assert!(CHUNK_SIZE <= MAX_IN_FLIGHT_BYTES && MAX_MANIFEST_LEN <= MAX_IN_FLIGHT_BYTES);

/// The bounds and timers of one fetch. Times are milliseconds of the caller's clock.
/// [`Fetch::new`] and [`Fetch::resume`] refuse limits a fetch cannot run with
/// ([`BlobError::InvalidLimits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Chunk requests in flight at once, over all holders. Default 3; 1 to
    /// [`MAX_IN_FLIGHT_CHUNKS`]. (The manifest is fetched alone, before any chunk.)
    pub max_in_flight_chunks: usize,
    /// Chunk bytes in flight at once (the lengths the manifest gives the requested chunks).
    /// Default 768 KiB (three chunks: below websocket-websys's 1 MiB read buffer with room for
    /// framing and for an answer that arrives after its request timed out — such late answers are
    /// not counted); [`CHUNK_SIZE`] to [`MAX_IN_FLIGHT_BYTES`].
    pub max_in_flight_bytes: usize,
    /// An unanswered request is given up after this, and the piece asked of another holder.
    /// Default 10 s (a 256 KiB answer through a relay normally takes well under a second); at
    /// least 1.
    pub request_timeout_ms: u64,
    /// Failed attempts at one piece (the manifest or a chunk) before the fetch fails: timeouts and
    /// bad answers count, "I don't have it" does not. Default 8; at least 1.
    pub max_attempts_per_chunk: u32,
    /// Bad chunks or manifests from one holder before it is dropped from this fetch for good.
    /// Default 3; at least 1.
    pub max_bad_per_holder: u32,
    /// Backoff of a holder after its first failure in a row (timeout or bad answer); it doubles
    /// with each further failure in a row, and a good answer resets the count. Default 1 s.
    pub backoff_base_ms: u64,
    /// Upper bound of that backoff. Default 30 s; at least `backoff_base_ms`.
    pub max_backoff_ms: u64,
    /// Holders tracked at once, dropped ones included (more are refused by
    /// [`Fetch::add_holder`]). Default 64; at least 1.
    pub max_holders: usize,
    /// Longest blob this fetch accepts; a manifest announcing more fails the fetch with
    /// [`FetchError::TooLarge`]. Default and maximum [`MAX_BLOB_LEN`].
    pub max_blob_len: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight_chunks: 3,
            max_in_flight_bytes: 3 * CHUNK_SIZE,
            request_timeout_ms: 10_000,
            max_attempts_per_chunk: 8,
            max_bad_per_holder: 3,
            backoff_base_ms: 1_000,
            max_backoff_ms: 30_000,
            max_holders: 64,
            max_blob_len: MAX_BLOB_LEN,
        }
    }
}

impl Limits {
    /// Checks every bound is in its documented range.
    pub fn validate(&self) -> Result<(), BlobError> {
        let bad = |reason| Err(BlobError::InvalidLimits { reason });
        if !(1..=MAX_IN_FLIGHT_CHUNKS).contains(&self.max_in_flight_chunks) {
            return bad("max_in_flight_chunks must be 1 to MAX_IN_FLIGHT_CHUNKS");
        }
        if !(CHUNK_SIZE..=MAX_IN_FLIGHT_BYTES).contains(&self.max_in_flight_bytes) {
            return bad("max_in_flight_bytes must be CHUNK_SIZE to MAX_IN_FLIGHT_BYTES");
        }
        if self.request_timeout_ms == 0 {
            return bad("request_timeout_ms must be at least 1");
        }
        if self.max_attempts_per_chunk == 0 {
            return bad("max_attempts_per_chunk must be at least 1");
        }
        if self.max_bad_per_holder == 0 {
            return bad("max_bad_per_holder must be at least 1");
        }
        if self.max_backoff_ms < self.backoff_base_ms {
            return bad("max_backoff_ms must be at least backoff_base_ms");
        }
        if self.max_holders == 0 {
            return bad("max_holders must be at least 1");
        }
        if self.max_blob_len > MAX_BLOB_LEN {
            return bad("max_blob_len must be at most MAX_BLOB_LEN");
        }
        Ok(())
    }
}

/// What the driver must do, in order ([`Fetch::poll_action`]).
#[derive(Clone, PartialEq, Eq)]
pub enum FetchAction {
    /// Send `peer` a [`BlobRequest`](crate::BlobRequest) for `what` of [`Fetch::blob`], and pass
    /// its answer back ([`Fetch::on_response`]). No answer within
    /// [`Limits::request_timeout_ms`] is a timeout: call [`Fetch::handle_timeout`] at
    /// [`Fetch::poll_timeout`].
    Request {
        /// The holder to ask.
        peer: NodeId,
        /// The piece.
        what: Want,
    },
    /// Persist the verified manifest (before any chunk): with it and the chunks stored so far,
    /// [`Fetch::resume`] continues after a restart.
    StoreManifest(Manifest),
    /// Persist one verified chunk. Each index is stored once.
    Store {
        /// The chunk's index.
        index: u32,
        /// Its bytes (checked against the manifest).
        bytes: Vec<u8>,
    },
    /// Bytes verified so far out of the total; never decreases, and ends at `total`.
    Progress {
        /// Bytes of the chunks stored so far.
        have_bytes: u64,
        /// The blob's length.
        total: u64,
    },
    /// Something worth knowing that needs no action (a bad peer, a timeout, nobody to ask).
    Event(FetchEvent),
    /// Every chunk is stored: the fetch is over. Nothing follows.
    Done(Manifest),
    /// The fetch gave up. Nothing follows; chunks already stored stay valid for a later
    /// [`Fetch::resume`].
    Failed(FetchError),
}

impl std::fmt::Debug for FetchAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchAction::Request { peer, what } => f
                .debug_struct("Request")
                .field("peer", peer)
                .field("what", what)
                .finish(),
            FetchAction::StoreManifest(m) => f.debug_tuple("StoreManifest").field(m).finish(),
            FetchAction::Store { index, bytes } => f
                .debug_struct("Store")
                .field("index", index)
                .field("len", &bytes.len())
                .finish(),
            FetchAction::Progress { have_bytes, total } => f
                .debug_struct("Progress")
                .field("have_bytes", have_bytes)
                .field("total", total)
                .finish(),
            FetchAction::Event(e) => f.debug_tuple("Event").field(e).finish(),
            FetchAction::Done(m) => f.debug_tuple("Done").field(m).finish(),
            FetchAction::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

/// Reports of a [`Fetch`] ([`FetchAction::Event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchEvent {
    /// A holder sent a manifest that does not decode or is not this blob's. It is penalised like a
    /// bad chunk.
    BadManifest {
        /// The holder.
        peer: NodeId,
        /// What was wrong.
        error: BlobError,
    },
    /// A holder sent a chunk that does not match the manifest (or an index past the end). It is
    /// not asked again until its backoff ends, is dropped after
    /// [`Limits::max_bad_per_holder`] of these, and the chunk is asked of another holder.
    BadChunk {
        /// The holder.
        peer: NodeId,
        /// The chunk.
        index: u32,
    },
    /// A request got no answer in time; the piece is asked again, of another holder if one can
    /// be asked. (A late answer is still accepted.)
    TimedOut {
        /// The holder asked.
        peer: NodeId,
        /// The piece.
        what: Want,
    },
    /// A holder was dropped from this fetch for bad answers; it is never asked again, and
    /// [`Fetch::add_holder`] refuses it.
    HolderDropped {
        /// The holder.
        peer: NodeId,
    },
    /// Nothing is in flight and no holder can be asked for anything that remains: none is known,
    /// all were dropped, or all said they lack it. The fetch waits for [`Fetch::add_holder`];
    /// reported once each time it gets stuck.
    NoHolders,
}

/// Counters of one fetch, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchStats {
    /// Requests sent (manifest and chunks).
    pub requests: u64,
    /// Chunks verified and stored.
    pub stored: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Bad chunks received.
    pub bad_chunks: u64,
    /// Bad manifests received.
    pub bad_manifests: u64,
    /// "I don't have it" answers.
    pub missing: u64,
    /// Requests given up because their holder went away ([`Fetch::remove_holder`]); their pieces
    /// were asked again elsewhere.
    pub requeued: u64,
    /// Answers ignored: from a peer that is not a usable holder, for another blob, for a piece
    /// already stored, or a chunk before the manifest.
    pub ignored: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Done,
    Failed,
}

/// One request in flight.
#[derive(Clone, Copy, Debug)]
struct Pending {
    peer: NodeId,
    deadline: u64,
    bytes: usize,
}

/// Failed attempts at one piece.
#[derive(Clone, Copy, Debug)]
struct Attempts {
    count: u32,
    /// The holder that failed last: another one is preferred for the next try.
    last: NodeId,
}

#[derive(Clone, Debug, Default)]
struct Holder {
    /// Requests in flight to it.
    in_flight: usize,
    /// Failures in a row (timeouts, bad answers); reset by a good answer.
    failures: u32,
    /// Bad chunks and manifests, in total.
    bad: u32,
    /// Not asked before this time (its backoff).
    ready_at: u64,
    /// Dropped for bad answers: never asked again.
    dropped: bool,
    /// Removed ([`Fetch::remove_holder`]): not asked until added again, its penalties kept.
    absent: bool,
    /// Pieces it said it does not have (forgotten when it is added again).
    lacks: BTreeSet<Want>,
}

/// Records kept per holder slot ([`Limits::max_holders`]): dropped and absent holders are
/// remembered (their penalties) up to this many times the bound.
const HOLDER_RECORDS: usize = 4;

impl Holder {
    /// Present and not dropped: it may be asked.
    fn askable(&self) -> bool {
        !self.dropped && !self.absent
    }

    /// Whether it may have `what`: it did not say it lacks it, nor (for a chunk) the manifest — a
    /// holder without the manifest cannot serve chunks ([`serve`](crate::serve) needs it).
    fn may_have(&self, what: Want) -> bool {
        !self.lacks.contains(&what)
            && (what == Want::Manifest || !self.lacks.contains(&Want::Manifest))
    }
}

/// Fetches one blob from the peers that hold it: the manifest first (checked against the
/// [`BlobId`]), then every chunk (checked against the manifest) — sans IO.
///
/// Inputs (each takes the caller's `now_ms`): [`Fetch::add_holder`], [`Fetch::remove_holder`],
/// [`Fetch::on_manifest`], [`Fetch::on_chunk`], [`Fetch::on_missing`] (or [`Fetch::on_response`]
/// for all three), [`Fetch::handle_timeout`]. Outputs: drain [`Fetch::poll_action`] after every
/// input, and call [`Fetch::handle_timeout`] at [`Fetch::poll_timeout`].
///
/// Guarantees:
/// - only verified bytes are stored, each chunk once; a fetch [`resumed`](Fetch::resume) never
///   asks for a chunk it already has;
/// - at most [`Limits::max_in_flight_chunks`] chunk requests and [`Limits::max_in_flight_bytes`]
///   bytes are in flight, one request per piece at a time; a request stops counting once it is
///   answered, times out, or its holder is removed or dropped (a late answer is still accepted);
/// - requests go to the least-loaded holder that can be asked (not in backoff, not known to lack
///   the piece), avoiding the holder that last failed that piece; ties are broken by a generator
///   seeded by the caller, so the same inputs give the same actions;
/// - a fetch ends with exactly one [`FetchAction::Done`] or [`FetchAction::Failed`] and then does
///   nothing; it never fails just because nobody can be asked (it reports
///   [`FetchEvent::NoHolders`] and waits).
///
/// Memory: the manifest, one bit and a little per chunk, and per holder the set of pieces it said
/// it lacks — all bounded by [`MAX_CHUNKS`](crate::MAX_CHUNKS) and [`Limits::max_holders`]. The
/// action queue holds what one input produced (a few actions, one request per free slot), as long
/// as the driver drains it. Chunk bytes pass through: the fetch keeps none.
///
/// What it does not do: it does not check that the holders are members of anything (the driver
/// only adds peers it would accept a blob from), and it does not re-verify chunks passed to
/// [`Fetch::resume`] (they were verified when stored).
#[derive(Debug)]
pub struct Fetch {
    blob: BlobId,
    limits: Limits,
    rng: DetRng,
    /// The latest `now_ms` seen (a clock going backwards is ignored).
    now: u64,
    phase: Phase,
    manifest: Option<Manifest>,
    /// Per chunk: stored.
    have: Vec<bool>,
    have_count: u32,
    have_bytes: u64,
    /// Chunks neither stored nor in flight.
    wanted: BTreeSet<u32>,
    in_flight: BTreeMap<Want, Pending>,
    in_flight_bytes: usize,
    attempts: BTreeMap<Want, Attempts>,
    holders: BTreeMap<NodeId, Holder>,
    out: VecDeque<FetchAction>,
    /// `NoHolders` reported and no request sent since.
    stalled: bool,
    stats: FetchStats,
}

impl Fetch {
    /// A fetch of `blob` from `holders`, starting with its manifest. `seed` drives the choice
    /// among equally good holders. The first requests are queued at once.
    pub fn new(
        now_ms: u64,
        blob: BlobId,
        holders: impl IntoIterator<Item = NodeId>,
        limits: Limits,
        seed: u64,
    ) -> Result<Fetch, BlobError> {
        limits.validate()?;
        let mut f = Fetch::empty(now_ms, blob, limits, seed);
        for peer in holders {
            f.insert_holder(peer);
        }
        f.pump();
        Ok(f)
    }

    /// A fetch that continues after a restart: the (stored) manifest and the indices of the
    /// chunks already stored. Only the others are requested; if there are none, the fetch is
    /// [`Done`](FetchAction::Done) at once. Refuses a manifest that does not
    /// [`verify`](Manifest::verify), one longer than [`Limits::max_blob_len`], and an index past
    /// the end (duplicates are fine).
    pub fn resume(
        now_ms: u64,
        manifest: Manifest,
        have: impl IntoIterator<Item = u32>,
        holders: impl IntoIterator<Item = NodeId>,
        limits: Limits,
        seed: u64,
    ) -> Result<Fetch, BlobError> {
        limits.validate()?;
        manifest.verify()?;
        if manifest.len > limits.max_blob_len {
            return Err(BlobError::TooLarge {
                len: manifest.len,
                max: limits.max_blob_len,
            });
        }
        let count = manifest.chunk_count();
        let mut stored = vec![false; count as usize];
        for index in have {
            match stored.get_mut(index as usize) {
                Some(slot) => *slot = true,
                None => return Err(BlobError::ChunkIndex { index, count }),
            }
        }
        let mut f = Fetch::empty(now_ms, manifest.id, limits, seed);
        for peer in holders {
            f.insert_holder(peer);
        }
        f.install(manifest, stored);
        f.pump();
        Ok(f)
    }

    fn empty(now_ms: u64, blob: BlobId, limits: Limits, seed: u64) -> Fetch {
        Fetch {
            blob,
            limits,
            rng: DetRng::new(seed),
            now: now_ms,
            phase: Phase::Running,
            manifest: None,
            have: Vec::new(),
            have_count: 0,
            have_bytes: 0,
            wanted: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            in_flight_bytes: 0,
            attempts: BTreeMap::new(),
            holders: BTreeMap::new(),
            out: VecDeque::new(),
            stalled: false,
            stats: FetchStats::default(),
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Queries.

    /// The blob being fetched.
    pub fn blob(&self) -> &BlobId {
        &self.blob
    }

    /// The verified manifest, once known.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Bytes verified and stored so far.
    pub fn have_bytes(&self) -> u64 {
        self.have_bytes
    }

    /// The blob's length, once the manifest is known.
    pub fn total(&self) -> Option<u64> {
        self.manifest.as_ref().map(|m| m.len)
    }

    /// Whether chunk `index` is stored.
    pub fn has_chunk(&self, index: u32) -> bool {
        self.have.get(index as usize).copied().unwrap_or(false)
    }

    /// Whether every chunk is stored ([`FetchAction::Done`] was queued).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the fetch is over, done or failed.
    pub fn is_finished(&self) -> bool {
        self.phase != Phase::Running
    }

    /// Chunk requests in flight.
    pub fn in_flight_chunks(&self) -> usize {
        self.in_flight
            .keys()
            .filter(|w| matches!(w, Want::Chunk(_)))
            .count()
    }

    /// Chunk bytes in flight.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes
    }

    /// Holders that may still be asked (known and not dropped), in id order.
    pub fn holders(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.holders
            .iter()
            .filter(|(_, h)| h.askable())
            .map(|(p, _)| p)
    }

    /// The counters.
    pub fn stats(&self) -> FetchStats {
        self.stats
    }

    // ---------------------------------------------------------------------------------------------
    // Outputs.

    /// The next action, `None` once drained. Drain after every input.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<FetchAction> {
        self.out.pop_front()
    }

    /// The earliest time [`Fetch::handle_timeout`] has something to do: a request's deadline, or
    /// the end of a holder's backoff while there is something to ask. `None` when finished or
    /// when only an input can move the fetch on.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.phase != Phase::Running {
            return None;
        }
        let mut at = self.in_flight.values().map(|p| p.deadline).min();
        let work = match &self.manifest {
            None => !self.in_flight.contains_key(&Want::Manifest),
            Some(_) => {
                !self.wanted.is_empty() && self.in_flight.len() < self.limits.max_in_flight_chunks
            }
        };
        if work {
            let backoff = self
                .holders
                .values()
                .filter(|h| h.askable() && h.ready_at > self.now)
                .map(|h| h.ready_at)
                .min();
            at = match (at, backoff) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        at
    }

    // ---------------------------------------------------------------------------------------------
    // Inputs.

    /// A peer that holds the blob (or may). Returns `false`, changing nothing, when the fetch is
    /// over, the peer was dropped for bad answers, or [`Limits::max_holders`] are tracked. A
    /// holder added again forgets what it said it lacked (it may have more now) but keeps its
    /// penalties.
    pub fn add_holder(&mut self, now_ms: u64, peer: NodeId) -> bool {
        self.tick(now_ms);
        if self.phase != Phase::Running {
            return false;
        }
        let added = self.insert_holder(peer);
        if added {
            self.pump();
        }
        added
    }

    /// A holder went away: its requests in flight are asked of others at once (no attempt is
    /// charged). A dropped holder stays known as dropped.
    pub fn remove_holder(&mut self, now_ms: u64, peer: NodeId) {
        self.tick(now_ms);
        if self.phase != Phase::Running {
            return;
        }
        self.stats.requeued += self.release_peer(&peer);
        // Its strikes and backoff stay: leaving and coming back must not clear a bad record.
        if let Some(h) = self.holders.get_mut(&peer) {
            h.absent = true;
        }
        self.pump();
    }

    /// A peer's answer, dispatched to [`Fetch::on_manifest`], [`Fetch::on_chunk`] or
    /// [`Fetch::on_missing`]; an answer about another blob is ignored.
    pub fn on_response(&mut self, now_ms: u64, peer: NodeId, response: BlobResponse) {
        if *response.blob() != self.blob {
            self.tick(now_ms);
            self.stats.ignored += 1;
            return;
        }
        match response {
            BlobResponse::Manifest { bytes, .. } => self.on_manifest(now_ms, peer, &bytes),
            BlobResponse::Chunk { index, bytes, .. } => self.on_chunk(now_ms, peer, index, bytes),
            BlobResponse::Missing { what, .. } => self.on_missing(now_ms, peer, what),
        }
    }

    /// A holder's encoded manifest. Accepted if it decodes and is this blob's
    /// ([`Manifest::decode_for`]), whether or not it was asked of this holder; then
    /// [`FetchAction::StoreManifest`] and the chunk requests follow. A bad one is reported
    /// ([`FetchEvent::BadManifest`]), penalises the holder and, if it was the answer to our
    /// request, counts as a failed attempt.
    pub fn on_manifest(&mut self, now_ms: u64, peer: NodeId, bytes: &[u8]) {
        self.tick(now_ms);
        if !self.is_usable(&peer) || self.manifest.is_some() {
            self.stats.ignored += 1;
            return;
        }
        let solicited = self.asked(&peer, Want::Manifest);
        match Manifest::decode_for(&self.blob, bytes) {
            Ok(manifest) => {
                // Whoever it was asked of, the request is answered.
                self.release(Want::Manifest);
                self.answered(&peer);
                if manifest.len > self.limits.max_blob_len {
                    let err = FetchError::TooLarge {
                        len: manifest.len,
                        max: self.limits.max_blob_len,
                    };
                    self.fail(err);
                    return;
                }
                self.out
                    .push_back(FetchAction::StoreManifest(manifest.clone()));
                let count = manifest.chunk_count() as usize;
                self.install(manifest, vec![false; count]);
            }
            Err(error) => {
                self.stats.bad_manifests += 1;
                self.event(FetchEvent::BadManifest { peer, error });
                if solicited {
                    self.release(Want::Manifest);
                    if !self.charge(Want::Manifest, peer) {
                        return;
                    }
                }
                self.penalise(peer);
            }
        }
        self.pump();
    }

    /// A holder's chunk. Checked against the manifest; a good chunk is stored (whoever sent it,
    /// asked or late) and the request for it, if any, ends. A bad one (or an index past the
    /// end) is reported ([`FetchEvent::BadChunk`]), penalises the holder and, if it answered our
    /// request to that holder, counts as a failed attempt and is asked elsewhere. Ignored before
    /// the manifest is known and for chunks already stored.
    pub fn on_chunk(&mut self, now_ms: u64, peer: NodeId, index: u32, bytes: Vec<u8>) {
        self.tick(now_ms);
        let Some(manifest) = self.manifest.as_ref().filter(|_| self.is_usable(&peer)) else {
            self.stats.ignored += 1;
            return;
        };
        let what = Want::Chunk(index);
        let solicited = self.asked(&peer, what);
        if self.has_chunk(index) {
            if solicited {
                self.release(what);
            }
            self.stats.ignored += 1;
            self.pump();
            return;
        }
        if manifest.verify_chunk(index, &bytes).is_ok() {
            self.release(what);
            self.answered(&peer);
            self.store(index, bytes);
        } else {
            self.stats.bad_chunks += 1;
            self.event(FetchEvent::BadChunk { peer, index });
            if solicited {
                self.release(what);
                if !self.charge(what, peer) {
                    return;
                }
            }
            self.penalise(peer);
        }
        self.pump();
    }

    /// A holder does not have `what`: it is not asked for it again (until it is added again), and
    /// a request for it ends and is asked elsewhere. Not a failed attempt. A holder without the
    /// manifest is taken to have no chunk either.
    pub fn on_missing(&mut self, now_ms: u64, peer: NodeId, what: Want) {
        self.tick(now_ms);
        let in_range = match (what, &self.manifest) {
            (Want::Manifest, None) => true,
            (Want::Chunk(i), Some(m)) => i < m.chunk_count(),
            _ => false,
        };
        if !in_range || !self.is_usable(&peer) {
            self.stats.ignored += 1;
            return;
        }
        self.stats.missing += 1;
        if self.asked(&peer, what) {
            self.release(what);
        }
        self.answered(&peer);
        if let Some(h) = self.holders.get_mut(&peer) {
            h.lacks.insert(what);
        }
        self.pump();
    }

    /// Time passed: requests past their deadline are given up ([`FetchEvent::TimedOut`], the
    /// holder backs off, the attempt counts) and asked again elsewhere; holders whose backoff
    /// ended may be asked again.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.tick(now_ms);
        if self.phase != Phase::Running {
            return;
        }
        let expired: Vec<(Want, NodeId)> = self
            .in_flight
            .iter()
            .filter(|(_, p)| p.deadline <= self.now)
            .map(|(w, p)| (*w, p.peer))
            .collect();
        for (what, peer) in expired {
            self.release(what);
            self.stats.timeouts += 1;
            self.event(FetchEvent::TimedOut { peer, what });
            self.failed(&peer);
            if !self.charge(what, peer) {
                return;
            }
        }
        self.pump();
    }

    // ---------------------------------------------------------------------------------------------
    // Internals.

    fn tick(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
    }

    fn event(&mut self, e: FetchEvent) {
        self.out.push_back(FetchAction::Event(e));
    }

    fn insert_holder(&mut self, peer: NodeId) -> bool {
        // Only holders that may be asked count against the bound (dropped ones must not keep
        // honest ones out); the records kept of dropped and absent ones are bounded too.
        let askable = self.holders.values().filter(|h| h.askable()).count();
        let full = askable >= self.limits.max_holders
            || self.holders.len() >= self.limits.max_holders.saturating_mul(HOLDER_RECORDS);
        match self.holders.get_mut(&peer) {
            Some(h) if h.dropped => false,
            Some(h) if h.absent && askable >= self.limits.max_holders => false,
            Some(h) => {
                h.lacks.clear();
                h.absent = false;
                true
            }
            None if full => false,
            None => {
                self.holders.insert(peer, Holder::default());
                true
            }
        }
    }

    fn is_usable(&self, peer: &NodeId) -> bool {
        self.phase == Phase::Running && self.holders.get(peer).is_some_and(Holder::askable)
    }

    /// Whether `what` is in flight to `peer`.
    fn asked(&self, peer: &NodeId, what: Want) -> bool {
        self.in_flight.get(&what).is_some_and(|p| p.peer == *peer)
    }

    /// Ends the request for `what`, if any; an unstored chunk becomes wanted again.
    fn release(&mut self, what: Want) {
        let Some(p) = self.in_flight.remove(&what) else {
            return;
        };
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(p.bytes);
        if let Some(h) = self.holders.get_mut(&p.peer) {
            h.in_flight = h.in_flight.saturating_sub(1);
        }
        if let Want::Chunk(i) = what {
            if !self.has_chunk(i) {
                self.wanted.insert(i);
            }
        }
    }

    /// Ends every request in flight to `peer`; returns how many there were.
    fn release_peer(&mut self, peer: &NodeId) -> u64 {
        let mine: Vec<Want> = self
            .in_flight
            .iter()
            .filter(|(_, p)| p.peer == *peer)
            .map(|(w, _)| *w)
            .collect();
        let n = mine.len() as u64;
        for what in mine {
            self.release(what);
        }
        n
    }

    /// A good answer from `peer` (a verified piece, or an honest "don't have"): its failures in a
    /// row start again from zero. Its current backoff, a penalty included, still runs.
    fn answered(&mut self, peer: &NodeId) {
        if let Some(h) = self.holders.get_mut(peer) {
            h.failures = 0;
        }
    }

    /// A failure of `peer` (timeout, bad answer): one more in a row, and a backoff.
    fn failed(&mut self, peer: &NodeId) {
        let (base, max, now) = (
            self.limits.backoff_base_ms,
            self.limits.max_backoff_ms,
            self.now,
        );
        if let Some(h) = self.holders.get_mut(peer) {
            h.failures = h.failures.saturating_add(1);
            let doublings = (h.failures - 1).min(32);
            let backoff = base.saturating_mul(1u64 << doublings).min(max);
            h.ready_at = h.ready_at.max(now.saturating_add(backoff));
        }
    }

    /// A bad answer from `peer`: a failure, and one more strike towards being dropped.
    fn penalise(&mut self, peer: NodeId) {
        self.failed(&peer);
        let max_bad = self.limits.max_bad_per_holder;
        let Some(h) = self.holders.get_mut(&peer) else {
            return;
        };
        h.bad = h.bad.saturating_add(1);
        if h.bad >= max_bad && !h.dropped {
            h.dropped = true;
            h.lacks.clear();
            self.stats.requeued += self.release_peer(&peer);
            self.event(FetchEvent::HolderDropped { peer });
        }
    }

    /// Counts a failed attempt at `what` by `peer`; fails the fetch (returning `false`) past
    /// [`Limits::max_attempts_per_chunk`].
    fn charge(&mut self, what: Want, peer: NodeId) -> bool {
        let a = self.attempts.entry(what).or_insert(Attempts {
            count: 0,
            last: peer,
        });
        a.count += 1;
        a.last = peer;
        let attempts = a.count;
        if attempts >= self.limits.max_attempts_per_chunk {
            self.fail(FetchError::Attempts { what, attempts });
            return false;
        }
        true
    }

    /// The verified manifest is known: the chunk table, and the first progress report.
    fn install(&mut self, manifest: Manifest, have: Vec<bool>) {
        self.wanted = (0..manifest.chunk_count())
            .filter(|i| !have[*i as usize])
            .collect();
        self.have_count = 0;
        self.have_bytes = 0;
        for (i, stored) in have.iter().enumerate() {
            if *stored {
                self.have_count += 1;
                // `have` has one entry per chunk: every index is in range.
                self.have_bytes += manifest.chunk_len(i as u32).unwrap_or(0) as u64;
            }
        }
        self.have = have;
        self.attempts.clear();
        self.out.push_back(FetchAction::Progress {
            have_bytes: self.have_bytes,
            total: manifest.len,
        });
        let complete = self.have_count == manifest.chunk_count();
        self.manifest = Some(manifest);
        if complete {
            self.finish();
        }
    }

    fn store(&mut self, index: u32, bytes: Vec<u8>) {
        let Some(total) = self.total() else {
            return;
        };
        self.have[index as usize] = true;
        self.have_count += 1;
        self.have_bytes += bytes.len() as u64;
        self.wanted.remove(&index);
        self.attempts.remove(&Want::Chunk(index));
        self.stats.stored += 1;
        self.out.push_back(FetchAction::Store { index, bytes });
        self.out.push_back(FetchAction::Progress {
            have_bytes: self.have_bytes,
            total,
        });
        if self.have_count as usize == self.have.len() {
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.clear();
        if let Some(m) = &self.manifest {
            self.out.push_back(FetchAction::Done(m.clone()));
        }
    }

    fn fail(&mut self, error: FetchError) {
        self.phase = Phase::Failed;
        self.clear();
        self.out.push_back(FetchAction::Failed(error));
    }

    fn clear(&mut self) {
        self.in_flight.clear();
        self.in_flight_bytes = 0;
        self.wanted.clear();
        for h in self.holders.values_mut() {
            h.in_flight = 0;
        }
    }

    fn send(&mut self, peer: NodeId, what: Want, bytes: usize) {
        let deadline = self.now.saturating_add(self.limits.request_timeout_ms);
        self.in_flight.insert(
            what,
            Pending {
                peer,
                deadline,
                bytes,
            },
        );
        self.in_flight_bytes += bytes;
        if let Some(h) = self.holders.get_mut(&peer) {
            h.in_flight += 1;
        }
        if let Want::Chunk(i) = what {
            self.wanted.remove(&i);
        }
        self.stats.requests += 1;
        self.stalled = false;
        self.out.push_back(FetchAction::Request { peer, what });
    }

    /// Sends what the bounds allow, then reports being stuck if nothing can move.
    fn pump(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let mut ready: Vec<(NodeId, usize)> = self
            .holders
            .iter()
            .filter(|(_, h)| h.askable() && h.ready_at <= self.now)
            .map(|(p, h)| (*p, h.in_flight))
            .collect();
        let Some(manifest) = &self.manifest else {
            if !self.in_flight.contains_key(&Want::Manifest) {
                let pick = choose(
                    &mut self.rng,
                    &self.holders,
                    &self.attempts,
                    &ready,
                    Want::Manifest,
                );
                match pick {
                    Some(j) => self.send(ready[j].0, Want::Manifest, 0),
                    None => self.check_stuck(),
                }
            }
            return;
        };
        let mut picks: Vec<(u32, NodeId, usize)> = Vec::new();
        let (mut slots, mut bytes) = (self.in_flight.len(), self.in_flight_bytes);
        if !ready.is_empty() {
            for &index in &self.wanted {
                let len = manifest.chunk_len(index).unwrap_or(0);
                if slots >= self.limits.max_in_flight_chunks
                    || bytes + len > self.limits.max_in_flight_bytes
                {
                    break;
                }
                let what = Want::Chunk(index);
                let pick = choose(&mut self.rng, &self.holders, &self.attempts, &ready, what);
                if let Some(j) = pick {
                    ready[j].1 += 1;
                    slots += 1;
                    bytes += len;
                    picks.push((index, ready[j].0, len));
                }
            }
        }
        for (index, peer, len) in picks {
            self.send(peer, Want::Chunk(index), len);
        }
        self.check_stuck();
    }

    /// Reports [`FetchEvent::NoHolders`] (once) when nothing is in flight and no holder, in
    /// backoff or not, could ever be asked for anything that remains.
    fn check_stuck(&mut self) {
        if self.stalled || !self.in_flight.is_empty() {
            return;
        }
        let remaining: Vec<Want> = match &self.manifest {
            None => vec![Want::Manifest],
            Some(_) => self.wanted.iter().map(|&i| Want::Chunk(i)).collect(),
        };
        let someone = self
            .holders
            .values()
            .any(|h| h.askable() && remaining.iter().any(|w| h.may_have(*w)));
        if !someone {
            self.stalled = true;
            self.event(FetchEvent::NoHolders);
        }
    }
}

/// Picks the holder for `what` among `ready` (holders with their loads): not known to lack it,
/// preferring one that did not fail it last, then the least loaded; ties broken by the seeded
/// generator.
fn choose(
    rng: &mut DetRng,
    holders: &BTreeMap<NodeId, Holder>,
    attempts: &BTreeMap<Want, Attempts>,
    ready: &[(NodeId, usize)],
    what: Want,
) -> Option<usize> {
    let last = attempts.get(&what).map(|a| a.last);
    let key = |j: usize| (Some(ready[j].0) == last, ready[j].1);
    let candidates: Vec<usize> = (0..ready.len())
        .filter(|&j| holders.get(&ready[j].0).is_some_and(|h| h.may_have(what)))
        .collect();
    let best = candidates.iter().map(|&j| key(j)).min()?;
    let ties: Vec<usize> = candidates.into_iter().filter(|&j| key(j) == best).collect();
    ties.get(rng.index(ties.len())).copied()
}
