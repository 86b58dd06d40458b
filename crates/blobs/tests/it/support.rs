//! A deterministic test driver for [`Fetch`]: holders serving from `MemoryBlobs` through the real
//! codecs, a FIFO network, a virtual clock, and a mirror of the requests the fetch has in flight,
//! rebuilt from its actions alone, against which the bounds are asserted after every action.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tabmesh_base::{DetRng, NodeId};
use tabmesh_blobs::{
    chunk_bytes, serve, BlobRequest, BlobResponse, Fetch, FetchAction, FetchError, FetchEvent,
    Limits, Manifest, MemoryBlobs, Want,
};

/// `len` deterministic pseudo-random bytes.
pub(crate) fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = DetRng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A peer id.
pub(crate) fn peer(n: u8) -> NodeId {
    NodeId([n; 32])
}

/// A store holding all of `data`, and its manifest.
pub(crate) fn full_store(data: &[u8]) -> (MemoryBlobs, Manifest) {
    let mut store = MemoryBlobs::new();
    let manifest = store.add(data).unwrap();
    (store, manifest)
}

/// How a holder answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Behaviour {
    /// Serves what it has.
    #[default]
    Honest,
    /// Never answers.
    Silent,
    /// Flips a byte of every chunk it sends.
    Corrupt,
}

/// Everything the driver saw.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Every request, in order, with the time it was made.
    pub requests: Vec<(u64, NodeId, Want)>,
    /// Store actions per chunk index.
    pub stores: BTreeMap<u32, u32>,
    /// Stored bytes per chunk index.
    pub stored: BTreeMap<u32, Vec<u8>>,
    /// Progress reports, in order.
    pub progress: Vec<(u64, u64)>,
    /// Events, in order, with the time.
    pub events: Vec<(u64, FetchEvent)>,
    /// Manifests the fetch asked to store.
    pub manifests: Vec<Manifest>,
    pub done: Option<Manifest>,
    pub failed: Option<FetchError>,
    /// The most chunk requests seen in flight at once.
    pub peak_chunks: usize,
    /// The most chunk bytes seen in flight at once.
    pub peak_bytes: usize,
}

impl Log {
    /// Requests made for `what`.
    pub(crate) fn requests_for(&self, what: Want) -> usize {
        self.requests.iter().filter(|(_, _, w)| *w == what).count()
    }

    /// Requests made to `peer`.
    pub(crate) fn requests_to(&self, peer: NodeId) -> usize {
        self.requests.iter().filter(|(_, p, _)| *p == peer).count()
    }

    /// Whether an event matching `f` was reported.
    pub(crate) fn has_event(&self, f: impl Fn(&FetchEvent) -> bool) -> bool {
        self.events.iter().any(|(_, e)| f(e))
    }
}

/// The driver.
#[derive(Debug)]
pub(crate) struct Driver {
    pub fetch: Fetch,
    pub limits: Limits,
    /// The manifest the test expects (for chunk lengths in the byte bound).
    pub manifest: Manifest,
    pub stores: BTreeMap<NodeId, MemoryBlobs>,
    pub behaviour: BTreeMap<NodeId, Behaviour>,
    /// Requests sent and not yet delivered to their holder.
    pub net: VecDeque<(NodeId, Want)>,
    /// The mirror: what the fetch has in flight, from its actions only.
    pub outstanding: BTreeMap<Want, NodeId>,
    pub now: u64,
    /// Chunks stored before this fetch started (a resumed one).
    pub pre: BTreeSet<u32>,
    pub log: Log,
}

impl Driver {
    /// A fresh fetch of `manifest.id` from `holders` (each with its store).
    pub(crate) fn new(
        manifest: &Manifest,
        holders: Vec<(NodeId, MemoryBlobs)>,
        limits: Limits,
        seed: u64,
    ) -> Driver {
        let peers: Vec<NodeId> = holders.iter().map(|(p, _)| *p).collect();
        let fetch = Fetch::new(0, manifest.id, peers, limits.clone(), seed).unwrap();
        Driver::with_fetch(fetch, manifest, holders, limits, BTreeSet::new())
    }

    /// A driver around an existing fetch (e.g. one resumed with the chunks `pre` stored).
    pub(crate) fn with_fetch(
        fetch: Fetch,
        manifest: &Manifest,
        holders: Vec<(NodeId, MemoryBlobs)>,
        limits: Limits,
        pre: BTreeSet<u32>,
    ) -> Driver {
        let mut d = Driver {
            fetch,
            limits,
            manifest: manifest.clone(),
            stores: holders.into_iter().collect(),
            behaviour: BTreeMap::new(),
            net: VecDeque::new(),
            outstanding: BTreeMap::new(),
            now: 0,
            pre,
            log: Log::default(),
        };
        d.drain();
        d
    }

    /// Sets how `peer` answers.
    pub(crate) fn set(&mut self, peer: NodeId, b: Behaviour) {
        self.behaviour.insert(peer, b);
    }

    /// Drains the fetch's actions into the log and the mirror, checking the bounds after each, and
    /// the mirror against the fetch at the end.
    pub(crate) fn drain(&mut self) {
        while let Some(action) = self.fetch.poll_action() {
            self.apply(action);
            self.check_bounds();
        }
        let chunks = self
            .outstanding
            .keys()
            .filter(|w| matches!(w, Want::Chunk(_)))
            .count();
        assert_eq!(self.fetch.in_flight_chunks(), chunks, "in-flight chunks");
        assert_eq!(
            self.fetch.in_flight_bytes(),
            self.outstanding_bytes(),
            "in-flight bytes"
        );
    }

    fn apply(&mut self, action: FetchAction) {
        assert!(
            self.log.done.is_none() && self.log.failed.is_none(),
            "an action after the end: {action:?}"
        );
        match action {
            FetchAction::Request { peer, what } => {
                assert!(
                    !self.outstanding.contains_key(&what),
                    "{what:?} asked twice at once"
                );
                if let Want::Chunk(i) = what {
                    assert!(
                        !self.log.stored.contains_key(&i),
                        "chunk {i} asked again after it was stored"
                    );
                    assert!(
                        !self.outstanding.contains_key(&Want::Manifest),
                        "a chunk asked while the manifest is"
                    );
                }
                self.outstanding.insert(what, peer);
                self.net.push_back((peer, what));
                self.log.requests.push((self.now, peer, what));
            }
            FetchAction::StoreManifest(m) => {
                assert_eq!(m, self.manifest);
                self.outstanding.remove(&Want::Manifest);
                self.log.manifests.push(m);
            }
            FetchAction::Store { index, bytes } => {
                self.manifest.verify_chunk(index, &bytes).unwrap();
                assert!(
                    !self.pre.contains(&index),
                    "chunk {index} was stored already"
                );
                self.outstanding.remove(&Want::Chunk(index));
                *self.log.stores.entry(index).or_default() += 1;
                assert!(
                    self.log.stored.insert(index, bytes).is_none(),
                    "chunk {index} stored twice"
                );
            }
            FetchAction::Progress { have_bytes, total } => {
                if let Some(&(last, last_total)) = self.log.progress.last() {
                    assert!(have_bytes > last, "progress {last} then {have_bytes}");
                    assert_eq!(total, last_total);
                }
                assert!(have_bytes <= total);
                let stored: u64 = self.log.stored.values().map(|b| b.len() as u64).sum();
                assert!(have_bytes >= stored);
                self.log.progress.push((have_bytes, total));
            }
            FetchAction::Event(e) => {
                match &e {
                    FetchEvent::TimedOut { peer, what } => {
                        assert_eq!(
                            self.outstanding.remove(what),
                            Some(*peer),
                            "timed out {e:?}"
                        );
                    }
                    FetchEvent::HolderDropped { peer } => {
                        self.outstanding.retain(|_, p| p != peer);
                    }
                    _ => {}
                }
                self.log.events.push((self.now, e));
            }
            FetchAction::Done(m) => {
                assert_eq!(m, self.manifest);
                assert_eq!(
                    self.log.stored.len() + self.pre.len(),
                    m.chunk_count() as usize
                );
                self.outstanding.clear();
                self.log.done = Some(m);
            }
            FetchAction::Failed(e) => {
                self.outstanding.clear();
                self.log.failed = Some(e);
            }
        }
    }

    fn outstanding_bytes(&self) -> usize {
        self.outstanding
            .keys()
            .map(|w| match w {
                Want::Chunk(i) => self.manifest.chunk_len(*i).unwrap(),
                Want::Manifest => 0,
            })
            .sum()
    }

    fn check_bounds(&mut self) {
        let chunks = self
            .outstanding
            .keys()
            .filter(|w| matches!(w, Want::Chunk(_)))
            .count();
        let bytes = self.outstanding_bytes();
        assert!(
            chunks <= self.limits.max_in_flight_chunks,
            "{chunks} chunk requests in flight"
        );
        assert!(
            bytes <= self.limits.max_in_flight_bytes,
            "{bytes} bytes in flight"
        );
        self.log.peak_chunks = self.log.peak_chunks.max(chunks);
        self.log.peak_bytes = self.log.peak_bytes.max(bytes);
    }

    /// The answer `peer` gives to `what` (`None`: it stays silent), through both codecs.
    pub(crate) fn answer_of(&self, peer: NodeId, what: Want) -> Option<BlobResponse> {
        let behaviour = self.behaviour.get(&peer).copied().unwrap_or_default();
        if behaviour == Behaviour::Silent {
            return None;
        }
        let store = self.stores.get(&peer)?;
        let request = BlobRequest {
            blob: self.manifest.id,
            what,
        };
        let request = BlobRequest::decode(&request.encode()).unwrap();
        let mut response = serve(store, &request).response;
        if behaviour == Behaviour::Corrupt {
            if let BlobResponse::Chunk { bytes, .. } = &mut response {
                bytes[0] ^= 0xff;
            }
        }
        Some(BlobResponse::decode(&response.encode()).unwrap())
    }

    /// Delivers one response from `peer` to the fetch and drains. A response from the holder the
    /// piece was asked of ends the mirror's request, as it ends the fetch's.
    pub(crate) fn deliver(&mut self, peer: NodeId, response: BlobResponse) {
        let what = match &response {
            BlobResponse::Manifest { .. } => Want::Manifest,
            BlobResponse::Chunk { index, .. } => Want::Chunk(*index),
            BlobResponse::Missing { what, .. } => *what,
        };
        let usable = self.fetch.holders().any(|h| *h == peer);
        if *response.blob() == self.manifest.id
            && self.outstanding.get(&what) == Some(&peer)
            && usable
        {
            self.outstanding.remove(&what);
        }
        self.fetch.on_response(self.now, peer, response);
        self.drain();
    }

    /// Delivers the oldest request in the network and its answer; `false` when none is left.
    pub(crate) fn step(&mut self) -> bool {
        let Some((peer, what)) = self.net.pop_front() else {
            return false;
        };
        if let Some(response) = self.answer_of(peer, what) {
            self.deliver(peer, response);
        }
        true
    }

    /// Delivers `n` requests (fewer if the network empties).
    pub(crate) fn steps(&mut self, n: usize) {
        for _ in 0..n {
            if !self.step() {
                break;
            }
        }
    }

    /// Moves the clock to the fetch's next timeout and handles it; `false` when it has none.
    pub(crate) fn advance(&mut self) -> bool {
        let Some(at) = self.fetch.poll_timeout() else {
            return false;
        };
        assert!(at > self.now || self.fetch.in_flight_chunks() > 0 || at == self.now);
        self.now = self.now.max(at);
        self.fetch.handle_timeout(self.now);
        self.drain();
        true
    }

    /// Runs until the fetch ends or nothing can happen: delivers the network, then timeouts.
    pub(crate) fn run(&mut self) {
        for _ in 0..100_000 {
            if self.fetch.is_finished() {
                return;
            }
            if !self.step() && !self.advance() {
                return;
            }
        }
        panic!("the fetch did not settle");
    }

    /// Adds a holder (with its store) and drains.
    pub(crate) fn add_holder(&mut self, peer: NodeId, store: MemoryBlobs) -> bool {
        self.stores.insert(peer, store);
        let added = self.fetch.add_holder(self.now, peer);
        self.drain();
        added
    }

    /// Removes a holder: the fetch forgets it, its store is gone, queued requests to it are lost.
    pub(crate) fn remove_holder(&mut self, peer: NodeId) {
        self.fetch.remove_holder(self.now, peer);
        self.outstanding.retain(|_, p| *p != peer);
        self.stores.remove(&peer);
        self.net.retain(|(p, _)| *p != peer);
        self.drain();
    }

    /// The blob as stored by the fetch, if complete.
    pub(crate) fn assembled(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..self.manifest.chunk_count() {
            out.extend_from_slice(&self.log.stored[&i]);
        }
        out
    }
}

/// The chunk indices of `manifest`.
pub(crate) fn all_indices(manifest: &Manifest) -> BTreeSet<u32> {
    (0..manifest.chunk_count()).collect()
}

/// A store holding `data`'s manifest and only the chunks `keep` selects.
pub(crate) fn partial_store(data: &[u8], keep: impl Fn(u32) -> bool) -> MemoryBlobs {
    let (chunks, manifest) = chunk_bytes(data).unwrap();
    let mut store = MemoryBlobs::new();
    store.insert_manifest(manifest.clone()).unwrap();
    for c in chunks {
        if keep(c.index) {
            store.insert_chunk(&manifest.id, c.index, c.bytes).unwrap();
        }
    }
    store
}
