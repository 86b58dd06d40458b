//! Blob sharing in the driver: the [`BlobStore`], adds from the host, fetches driven by the
//! sans-IO [`Fetch`] machine, serving members, announcements and garbage collection. The records
//! it keeps per blob are [`crate::record`]'s.
//!
//! - **Adding**: the host writes a blob in pieces ([`BlobCommand::AddBegin`], `AddWrite`,
//!   `AddFinish`); each full chunk is stored as soon as it is cut, so memory holds at most one
//!   partial chunk per add. The finished blob is pinned (kept until deleted) and, with a context,
//!   announced there.
//! - **Fetching**: announcers of the blob in a context this node shares are asked first, then the
//!   context's other peers (when nobody is left to ask). Every piece is checked by the machine
//!   before it is stored; a peer dropped for bad chunks is not asked again for
//!   [`BLOB_PENALTY_MS`]. A fetch resumes from the chunks stored by an earlier one. Nobody to ask
//!   for [`BLOB_PATIENCE_MS`] fails it.
//! - **Serving**: a request names a context; it is answered only if the requester's sealed sync
//!   messages in that context were opened here and it is a current member
//!   ([`NodeCore::peer_is_member`]), and if the blob was added to or fetched in that context, or
//!   that context's state names it. Otherwise [`Response::Refused`].
//! - **Referenced** blobs: pinned, being added or fetched, or named by a `BlobRef` in any local
//!   context's state. [`BlobCommand::Gc`] removes every other blob, chunks and all.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use futures::channel::oneshot;
use libp2p::request_response::ResponseChannel;
use tabmesh_base::{make_room, ContextId, Hash, NodeId};
use tabmesh_blobs::{
    BlobId, BlobRequest, BlobResponse, BlobWriter, Fetch, FetchAction, FetchEvent, FetchStats,
    Limits, Manifest, Want,
};
use tabmesh_storage::{AsyncStore, BlobStore, StoreError};

use super::{Driver, NetEvent};
use crate::gossip::GossipMsg;
use crate::limits::*;
use crate::proto::{Request, Response};
use crate::record::{BlobRecord, Record};
use crate::rt::now_ms;
use crate::NetError;

/// What is known of one blob here ([`Node::blob_info`](crate::Node::blob_info)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobInfo {
    /// Its id.
    pub id: BlobId,
    /// Its length in bytes.
    pub len: u64,
    /// How many chunks it has.
    pub chunks: u32,
    /// Every chunk is stored here.
    pub complete: bool,
    /// Kept until deleted, whatever the contexts' states say.
    pub pinned: bool,
    /// The contexts it was added to or fetched in.
    pub contexts: Vec<ContextId>,
}

/// How a blob changed, for the node's consumer ([`NetEvent::Blob`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobEvent {
    /// Bytes verified and stored so far by a fetch (or written by an add).
    Progress {
        /// The blob (for an add: the upload's handle, as a number, until its id is known).
        blob: Option<BlobId>,
        /// An add's handle, when this is an add's progress.
        upload: Option<u64>,
        /// Bytes done.
        done: u64,
        /// The total, when known.
        total: Option<u64>,
    },
    /// A blob is whole here (added or fetched).
    Stored {
        /// The blob.
        blob: BlobId,
        /// Its length.
        len: u64,
        /// For a fetch, its counters.
        fetch: Option<FetchStats>,
    },
    /// A fetch failed (chunks stored so far are kept for a later fetch).
    Failed {
        /// The blob.
        blob: BlobId,
        /// Why.
        error: String,
    },
    /// A peer sent a piece that failed verification; after a few it is dropped and penalised.
    BadPeer {
        /// The peer.
        peer: NodeId,
        /// The blob.
        blob: BlobId,
        /// Whether it is now penalised (dropped from the fetch).
        dropped: bool,
    },
    /// A blob was removed (deleted or collected).
    Removed {
        /// The blob.
        blob: BlobId,
    },
}

/// What [`BlobCommand::Gc`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Blobs removed.
    pub blobs: usize,
    /// Their bytes (chunks stored, whole or partial).
    pub bytes: u64,
    /// Blobs kept (referenced).
    pub kept: usize,
}

type Reply<T> = oneshot::Sender<Result<T, NetError>>;

/// The blob operations a [`Node`](crate::Node) handle sends its driver.
pub(crate) enum BlobCommand {
    AddBegin {
        pin: bool,
        context: Option<ContextId>,
        reply: Reply<u64>,
    },
    AddWrite {
        handle: u64,
        bytes: Vec<u8>,
        reply: Reply<u64>,
    },
    AddFinish {
        handle: u64,
        reply: Reply<BlobInfo>,
    },
    AddAbort {
        handle: u64,
    },
    Fetch {
        blob: BlobId,
        context: Option<ContextId>,
        reply: Reply<BlobInfo>,
    },
    Read {
        blob: BlobId,
        index: u32,
        reply: Reply<Vec<u8>>,
    },
    Info {
        blob: BlobId,
        reply: Reply<Option<BlobInfo>>,
    },
    List {
        reply: Reply<Vec<BlobInfo>>,
    },
    Delete {
        blob: BlobId,
        reply: Reply<bool>,
    },
    Gc {
        reply: Reply<GcReport>,
    },
    CacheForApp {
        blob: BlobId,
        reply: Reply<bool>,
    },
    Ask {
        peer: NodeId,
        context: ContextId,
        request: BlobRequest,
        reply: oneshot::Sender<Option<Response>>,
    },
}

struct Upload {
    slot: BlobId,
    writer: BlobWriter,
    pin: bool,
    context: Option<ContextId>,
}

struct Fetching {
    fetch: Fetch,
    slot: BlobId,
    /// Where holders are looked for: the context the caller named, else every context here.
    contexts: BTreeSet<ContextId>,
    /// The contexts callers named: the blob is recorded as shared there (and, once whole,
    /// announced there and in the contexts whose state names it — never anywhere else).
    shared: BTreeSet<ContextId>,
    /// The context each holder is asked in.
    via: HashMap<NodeId, ContextId>,
    waiters: Vec<Reply<BlobInfo>>,
    /// Since when nobody could be asked.
    stuck_since: Option<u64>,
    /// When to look for holders again while stuck.
    retry_at: Option<u64>,
}

struct Serve {
    channel: ResponseChannel<Response>,
    from: NodeId,
    context: ContextId,
    request: BlobRequest,
}

/// The driver's blob state (the store is the driver's `blob_store`).
#[derive(Default)]
pub(super) struct Blobs {
    records: HashMap<BlobId, BlobRecord>,
    uploads: HashMap<u64, Upload>,
    next_upload: u64,
    fetches: HashMap<BlobId, Fetching>,
    /// Announcers of each blob (node, the context it announced in), oldest blob first.
    announced: HashMap<BlobId, VecDeque<(NodeId, ContextId)>>,
    announced_order: VecDeque<BlobId>,
    serves: VecDeque<Serve>,
    /// Peers not asked for blobs until when: dropped for bad chunks ([`BLOB_PENALTY_MS`]), or
    /// refusing us ([`BLOB_REFUSED_BACKOFF_MS`]).
    penalties: BTreeMap<NodeId, u64>,
    /// Each context's referenced blobs, at a state root.
    refs: HashMap<ContextId, (Hash, BTreeSet<BlobId>)>,
    manifests: VecDeque<Manifest>,
    /// Outstanding low-level asks (tests, diagnostics).
    pub(super) asks:
        HashMap<libp2p::request_response::OutboundRequestId, oneshot::Sender<Option<Response>>>,
    /// Test hook: serve chunks with one byte flipped.
    corrupt_serving: bool,
}

impl Blobs {
    /// Empty; `corrupt_serving` is the test hook of `NodeOptions::corrupt_served_chunks`.
    pub(super) fn new(corrupt_serving: bool) -> Blobs {
        Blobs {
            corrupt_serving,
            ..Blobs::default()
        }
    }

    /// Asks nothing of `node` before `until` (a longer penalty already there stands).
    fn penalise(&mut self, node: NodeId, until: u64) {
        if self.penalties.get(&node).is_some_and(|t| *t >= until) {
            return;
        }
        make_room(&mut self.penalties, &node, MAX_PENALTIES, |until| *until);
        self.penalties.insert(node, until);
    }

    fn penalised(&self, node: &NodeId, now: u64) -> bool {
        self.penalties.get(node).is_some_and(|until| *until > now)
    }

    fn cached_manifest(&self, blob: &BlobId) -> Option<&Manifest> {
        self.manifests.iter().find(|m| m.id == *blob)
    }

    fn keep_manifest(&mut self, manifest: Manifest) {
        if self.cached_manifest(&manifest.id).is_none() {
            self.manifests.push_back(manifest);
            while self.manifests.len() > MANIFEST_CACHE {
                self.manifests.pop_front();
            }
        }
    }

    fn info(&self, id: &BlobId) -> Option<BlobInfo> {
        self.records.get(id).map(|r| BlobInfo {
            id: *id,
            len: r.len,
            chunks: tabmesh_blobs::chunk_count(r.len),
            complete: r.complete,
            pinned: r.pinned,
            contexts: r.contexts.iter().copied().collect(),
        })
    }
}

fn store_err(e: StoreError) -> NetError {
    NetError::BlobStore(e)
}

impl<S: AsyncStore, B: BlobStore> Driver<S, B> {
    /// Reads the blob records at start; removes uploads that never finished and orphan slots.
    pub(super) async fn load_blobs(&mut self) -> Result<(), NetError> {
        let mut slots = Vec::new();
        for (id, bytes) in self.blob_store.records().await.map_err(store_err)? {
            match Record::decode(&bytes) {
                Ok(Record::Blob(r)) => {
                    self.blobs.records.insert(id, r);
                }
                Ok(Record::Upload) => slots.push((id, None)),
                Ok(Record::SlotOf(owner)) => slots.push((id, Some(owner))),
                Err(e) => {
                    // A record this build cannot read (a newer build's, or damage): left alone.
                    tracing::warn!(blob = %id, %e, "a blob record does not decode; left as it is");
                }
            }
        }
        for (slot, owner) in slots {
            let owned =
                owner.is_some_and(|o| self.blobs.records.get(&o).is_some_and(|r| r.slot == slot));
            if !owned {
                self.blob_store.delete(&slot).await.map_err(store_err)?;
            }
        }
        Ok(())
    }

    pub(super) async fn blob_command(&mut self, cmd: BlobCommand) {
        let now = now_ms();
        match cmd {
            BlobCommand::AddBegin {
                pin,
                context,
                reply,
            } => {
                let _ = reply.send(self.add_begin(now, pin, context).await);
            }
            BlobCommand::AddWrite {
                handle,
                bytes,
                reply,
            } => {
                let _ = reply.send(self.add_write(handle, &bytes).await);
            }
            BlobCommand::AddFinish { handle, reply } => {
                let _ = reply.send(self.add_finish(handle).await);
            }
            BlobCommand::AddAbort { handle } => {
                if let Some(u) = self.blobs.uploads.remove(&handle) {
                    let _ = self.blob_store.delete(&u.slot).await;
                }
            }
            BlobCommand::Fetch {
                blob,
                context,
                reply,
            } => self.fetch_blob(now, blob, context, reply).await,
            BlobCommand::Read { blob, index, reply } => {
                let _ = reply.send(self.read_chunk(blob, index).await);
            }
            BlobCommand::Info { blob, reply } => {
                let _ = reply.send(Ok(self.blobs.info(&blob)));
            }
            BlobCommand::List { reply } => {
                let mut all: Vec<BlobInfo> = self
                    .blobs
                    .records
                    .keys()
                    .filter_map(|id| self.blobs.info(id))
                    .collect();
                all.sort_by_key(|i| i.id);
                let _ = reply.send(Ok(all));
            }
            BlobCommand::Delete { blob, reply } => {
                let _ = reply.send(self.delete_blob(blob).await);
            }
            BlobCommand::Gc { reply } => {
                let _ = reply.send(self.collect_blobs().await);
            }
            BlobCommand::CacheForApp { blob, reply } => {
                let _ = reply.send(self.cache_for_app(blob).await);
            }
            BlobCommand::Ask {
                peer,
                context,
                request,
                reply,
            } => {
                let sent = crate::ids::peer_id(&peer)
                    .and_then(|p| self.send_to(p, Request::Blob { context, request }));
                match sent {
                    Some(id) => {
                        self.blobs.asks.insert(id, reply);
                    }
                    None => {
                        let _ = reply.send(None);
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Adding.

    async fn add_begin(
        &mut self,
        now: u64,
        pin: bool,
        context: Option<ContextId>,
    ) -> Result<u64, NetError> {
        if self.blobs.uploads.len() >= MAX_UPLOADS {
            return Err(NetError::BlobBusy {
                what: "blobs being added",
                max: MAX_UPLOADS,
            });
        }
        if let Some(c) = context {
            if self.core.replica(&c).is_none() {
                return Err(NetError::UnknownContext(c));
            }
        }
        let mut h = tabmesh_base::Hasher::new(b"tabmesh/net/blob-slot/v1");
        h.fixed(self.core.id().as_bytes())
            .fixed(&now.to_le_bytes())
            .fixed(&self.rng.next_u64().to_le_bytes());
        let slot = BlobId::from(h.finish());
        self.blob_store
            .put_record(&slot, &Record::Upload.encode())
            .await
            .map_err(store_err)?;
        self.blobs.next_upload += 1;
        let handle = self.blobs.next_upload;
        self.blobs.uploads.insert(
            handle,
            Upload {
                slot,
                writer: BlobWriter::new(),
                pin,
                context,
            },
        );
        Ok(handle)
    }

    async fn add_write(&mut self, handle: u64, bytes: &[u8]) -> Result<u64, NetError> {
        let upload = self
            .blobs
            .uploads
            .get_mut(&handle)
            .ok_or(NetError::UnknownUpload(handle))?;
        let chunks = upload.writer.write(bytes)?;
        let slot = upload.slot;
        let written = upload.writer.len();
        for c in chunks {
            self.blob_store
                .put_chunk(&slot, c.index, &c.bytes)
                .await
                .map_err(store_err)?;
        }
        self.emit(NetEvent::Blob(BlobEvent::Progress {
            blob: None,
            upload: Some(handle),
            done: written,
            total: None,
        }));
        Ok(written)
    }

    async fn add_finish(&mut self, handle: u64) -> Result<BlobInfo, NetError> {
        let upload = self
            .blobs
            .uploads
            .remove(&handle)
            .ok_or(NetError::UnknownUpload(handle))?;
        let (last, manifest) = upload.writer.finish();
        let slot = upload.slot;
        if let Some(c) = last {
            self.blob_store
                .put_chunk(&slot, c.index, &c.bytes)
                .await
                .map_err(store_err)?;
        }
        let id = manifest.id;
        // A fetch of the same blob in progress ends here: this copy is whole (its chunks, stored
        // under the id, are replaced below).
        let fetching = self.blobs.fetches.remove(&id);
        let record = match self.blobs.records.get(&id).cloned() {
            Some(mut existing) if existing.complete => {
                // The same content is held already: keep that copy.
                self.blob_store.delete(&slot).await.map_err(store_err)?;
                existing.pinned |= upload.pin;
                existing.share(upload.context);
                existing
            }
            previous => {
                if let Some(p) = &previous {
                    // A partial copy (an interrupted fetch): this one replaces it.
                    if p.slot != slot {
                        self.blob_store.delete(&p.slot).await.map_err(store_err)?;
                    }
                }
                self.blob_store
                    .put_manifest(&manifest)
                    .await
                    .map_err(store_err)?;
                self.blob_store
                    .put_record(&slot, &Record::SlotOf(id).encode())
                    .await
                    .map_err(store_err)?;
                let mut r = BlobRecord {
                    slot,
                    len: manifest.len,
                    complete: true,
                    pinned: upload.pin,
                    contexts: previous.map(|p| p.contexts).unwrap_or_default(),
                };
                r.share(upload.context);
                r
            }
        };
        self.put_blob_record(id, record).await?;
        self.blobs.keep_manifest(manifest.clone());
        self.emit(NetEvent::Blob(BlobEvent::Stored {
            blob: id,
            len: manifest.len,
            fetch: None,
        }));
        if let Some(c) = upload.context {
            self.announce(c, id);
        }
        let info = self.blobs.info(&id).ok_or(NetError::UnknownBlob(id))?;
        for w in fetching.into_iter().flat_map(|f| f.waiters) {
            let _ = w.send(Ok(info.clone()));
        }
        Ok(info)
    }

    /// Stores a blob an app call created (before the call's delta, which names it, is
    /// published): held whole, shared in the call's context, kept while a state names it.
    pub(super) async fn store_app_blob(
        &mut self,
        context: ContextId,
        manifest: Manifest,
        chunks: Vec<tabmesh_blobs::Chunk>,
    ) {
        let id = manifest.id;
        let stored = async {
            if !self.blobs.records.get(&id).is_some_and(|r| r.complete) {
                self.blob_store
                    .put_manifest(&manifest)
                    .await
                    .map_err(store_err)?;
                for c in &chunks {
                    self.blob_store
                        .put_chunk(&id, c.index, &c.bytes)
                        .await
                        .map_err(store_err)?;
                }
            }
            let mut record = match self.blobs.records.get(&id).cloned() {
                Some(r) if r.complete => r,
                // Nothing, or an interrupted fetch (its slot is the id): whole now.
                previous => BlobRecord {
                    slot: id,
                    len: manifest.len,
                    complete: true,
                    pinned: false,
                    contexts: previous.map(|p| p.contexts).unwrap_or_default(),
                },
            };
            record.share(Some(context));
            self.put_blob_record(id, record).await
        }
        .await;
        match stored {
            Ok(()) => {
                self.blobs.keep_manifest(manifest.clone());
                self.emit(NetEvent::Blob(BlobEvent::Stored {
                    blob: id,
                    len: manifest.len,
                    fetch: None,
                }));
                self.announce(context, id);
            }
            // The call's delta still goes out; members asking for the blob hear "missing".
            Err(e) => tracing::warn!(blob = %id, %e, "storing a blob an app created failed"),
        }
    }

    async fn put_blob_record(&mut self, id: BlobId, record: BlobRecord) -> Result<(), NetError> {
        self.blob_store
            .put_record(&id, &Record::Blob(record.clone()).encode())
            .await
            .map_err(store_err)?;
        self.blobs.records.insert(id, record);
        Ok(())
    }

    /// Tells the context's members this node holds `blob` whole (best effort: fetchers fall back
    /// to asking every peer).
    fn announce(&mut self, context: ContextId, blob: BlobId) {
        let data = GossipMsg::Have {
            context,
            blobs: vec![blob],
        }
        .encode();
        self.publish_once(context, data);
    }

    // -----------------------------------------------------------------------------------------
    // Reading, deleting, collecting.

    async fn manifest_of(&mut self, blob: &BlobId) -> Result<Manifest, NetError> {
        if let Some(m) = self.blobs.cached_manifest(blob) {
            return Ok(m.clone());
        }
        let m = self
            .blob_store
            .manifest(blob)
            .await
            .map_err(store_err)?
            .ok_or(NetError::UnknownBlob(*blob))?;
        self.blobs.keep_manifest(m.clone());
        Ok(m)
    }

    /// One chunk of a blob held here, verified against its manifest. A chunk that fails (the
    /// store was damaged) is removed and the blob marked incomplete: a fetch gets it again.
    async fn read_chunk(&mut self, blob: BlobId, index: u32) -> Result<Vec<u8>, NetError> {
        let record = self
            .blobs
            .records
            .get(&blob)
            .cloned()
            .ok_or(NetError::UnknownBlob(blob))?;
        let manifest = self.manifest_of(&blob).await?;
        if index >= manifest.chunk_count() {
            return Err(tabmesh_blobs::BlobError::ChunkIndex {
                index,
                count: manifest.chunk_count(),
            }
            .into());
        }
        let Some(bytes) = self
            .blob_store
            .chunk(&record.slot, index)
            .await
            .map_err(store_err)?
        else {
            // Gone from a blob recorded whole (a chunk written with relaxed durability lost in a
            // crash): no longer whole, so a fetch gets it again.
            if record.complete {
                let mut r = record;
                r.complete = false;
                self.put_blob_record(blob, r).await?;
            }
            return Err(NetError::UnknownBlob(blob));
        };
        if let Err(e) = manifest.verify_chunk(index, &bytes) {
            tracing::warn!(%blob, index, "a stored chunk is damaged: removed");
            self.blob_store
                .delete_chunk(&record.slot, index)
                .await
                .map_err(store_err)?;
            if record.complete {
                let mut r = record;
                r.complete = false;
                self.put_blob_record(blob, r).await?;
            }
            return Err(e.into());
        }
        Ok(bytes)
    }

    /// Loads a whole (small) blob into the core's read cache for an app's `open`.
    async fn cache_for_app(&mut self, blob: BlobId) -> Result<bool, NetError> {
        let Some(r) = self.blobs.records.get(&blob) else {
            return Ok(false);
        };
        if !r.complete || r.len > tabmesh_node::MAX_APP_READ_BLOB as u64 {
            return Ok(false);
        }
        let count = tabmesh_blobs::chunk_count(r.len);
        let mut bytes = Vec::with_capacity(r.len as usize);
        for index in 0..count {
            bytes.extend(self.read_chunk(blob, index).await?);
        }
        Ok(self.core.cache_blob(blob, bytes))
    }

    /// The blobs a context's state names (cached per state root).
    fn context_refs(&mut self, context: &ContextId) -> BTreeSet<BlobId> {
        let Some(root) = self.core.state(context).map(|s| s.root_hash()) else {
            return BTreeSet::new();
        };
        if let Some((at, refs)) = self.blobs.refs.get(context) {
            if *at == root {
                return refs.clone();
            }
        }
        let refs = self.core.blob_refs_in(context);
        self.blobs.refs.insert(*context, (root, refs.clone()));
        refs
    }

    fn referenced(&mut self) -> BTreeSet<BlobId> {
        let contexts: Vec<ContextId> = self.core.contexts().collect();
        let mut refs: BTreeSet<BlobId> = BTreeSet::new();
        for c in contexts {
            refs.extend(self.context_refs(&c));
        }
        refs.extend(self.blobs.fetches.keys().copied());
        refs.extend(
            self.blobs
                .records
                .iter()
                .filter(|(_, r)| r.pinned)
                .map(|(id, _)| *id),
        );
        refs
    }

    async fn remove_blob(&mut self, blob: BlobId) -> Result<u64, NetError> {
        let Some(r) = self.blobs.records.remove(&blob) else {
            return Ok(0);
        };
        let held = self.blob_store.held(&r.slot).await.map_err(store_err)?;
        let bytes = (held.len() as u64 * tabmesh_blobs::CHUNK_SIZE as u64).min(r.len);
        if r.slot != blob {
            self.blob_store.delete(&r.slot).await.map_err(store_err)?;
        }
        self.blob_store.delete(&blob).await.map_err(store_err)?;
        self.blobs.manifests.retain(|m| m.id != blob);
        self.emit(NetEvent::Blob(BlobEvent::Removed { blob }));
        Ok(bytes)
    }

    /// Unpins a blob and removes it unless a context's state still names it. Returns whether
    /// it was removed.
    async fn delete_blob(&mut self, blob: BlobId) -> Result<bool, NetError> {
        let Some(mut r) = self.blobs.records.get(&blob).cloned() else {
            return Ok(false);
        };
        if r.pinned {
            r.pinned = false;
            self.put_blob_record(blob, r).await?;
        }
        if self.referenced().contains(&blob) {
            return Ok(false);
        }
        self.remove_blob(blob).await?;
        Ok(true)
    }

    async fn collect_blobs(&mut self) -> Result<GcReport, NetError> {
        let refs = self.referenced();
        let unreferenced: Vec<BlobId> = self
            .blobs
            .records
            .keys()
            .filter(|id| !refs.contains(id))
            .copied()
            .collect();
        let mut report = GcReport {
            kept: self.blobs.records.len() - unreferenced.len(),
            ..GcReport::default()
        };
        for blob in unreferenced {
            report.bytes += self.remove_blob(blob).await?;
            report.blobs += 1;
        }
        Ok(report)
    }

    // -----------------------------------------------------------------------------------------
    // Fetching.

    async fn fetch_blob(
        &mut self,
        now: u64,
        blob: BlobId,
        context: Option<ContextId>,
        reply: Reply<BlobInfo>,
    ) {
        if let Some(r) = self.blobs.records.get(&blob) {
            if r.complete {
                let mut r = r.clone();
                if r.share(context) {
                    if let Err(e) = self.put_blob_record(blob, r).await {
                        let _ = reply.send(Err(e));
                        return;
                    }
                }
                let _ = reply.send(self.blobs.info(&blob).ok_or(NetError::UnknownBlob(blob)));
                return;
            }
        }
        if let Some(f) = self.blobs.fetches.get_mut(&blob) {
            f.waiters.push(reply);
            if let Some(c) = context {
                f.contexts.insert(c);
                f.shared.insert(c);
            }
            return;
        }
        if self.blobs.fetches.len() >= MAX_BLOB_FETCHES {
            let _ = reply.send(Err(NetError::BlobBusy {
                what: "blobs being fetched",
                max: MAX_BLOB_FETCHES,
            }));
            return;
        }
        let contexts: BTreeSet<ContextId> = match context {
            Some(c) => [c].into(),
            None => self.core.contexts().collect(),
        };
        let seed = self.rng.next_u64();
        // Resume from what an earlier fetch stored.
        let started = match self.blobs.records.get(&blob).cloned() {
            Some(r) => match self.manifest_of(&blob).await {
                Ok(m) => match self.blob_store.held(&r.slot).await {
                    Ok(held) => {
                        Fetch::resume(now, m, held, Vec::<NodeId>::new(), Limits::default(), seed)
                            .map(|f| (f, r.slot))
                            .map_err(NetError::from)
                    }
                    Err(e) => Err(store_err(e)),
                },
                Err(e) => Err(e),
            },
            None => Fetch::new(now, blob, Vec::<NodeId>::new(), Limits::default(), seed)
                .map(|f| (f, blob))
                .map_err(NetError::from),
        };
        let (fetch, slot) = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.blobs.fetches.insert(
            blob,
            Fetching {
                fetch,
                slot,
                contexts,
                shared: context.into_iter().collect(),
                via: HashMap::new(),
                waiters: vec![reply],
                stuck_since: None,
                retry_at: None,
            },
        );
        self.add_holders(now, blob, true);
        self.pump_fetch(blob).await;
    }

    /// Adds holders to a fetch: the announcers in its contexts; with `all` (or when there is no
    /// announcer), every peer of its contexts too. Penalised peers are left out.
    fn add_holders(&mut self, now: u64, blob: BlobId, all: bool) {
        let Some(f) = self.blobs.fetches.get(&blob) else {
            return;
        };
        let mut candidates: Vec<(NodeId, ContextId)> = self
            .blobs
            .announced
            .get(&blob)
            .map(|a| {
                a.iter()
                    .filter(|(_, c)| f.contexts.contains(c))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        if all || candidates.is_empty() {
            for c in &f.contexts {
                if let Some(t) = self.topics.get(c) {
                    candidates.extend(t.peers.keys().map(|n| (*n, *c)));
                }
            }
        }
        let me = self.core.id();
        let penalised: Vec<bool> = candidates
            .iter()
            .map(|(n, _)| self.blobs.penalised(n, now))
            .collect();
        let Some(f) = self.blobs.fetches.get_mut(&blob) else {
            return;
        };
        for ((node, context), bad) in candidates.into_iter().zip(penalised) {
            if node == me || bad {
                continue;
            }
            f.via.entry(node).or_insert(context);
            f.fetch.add_holder(now, node);
        }
    }

    /// Carries out what a fetch asks for: requests, stores, progress, its end.
    pub(super) async fn pump_fetch(&mut self, blob: BlobId) {
        loop {
            let Some(f) = self.blobs.fetches.get_mut(&blob) else {
                return;
            };
            let Some(action) = f.fetch.poll_action() else {
                return;
            };
            let now = now_ms();
            match action {
                FetchAction::Request { peer, what } => {
                    let context = f.via.get(&peer).copied();
                    f.stuck_since = None;
                    f.retry_at = None;
                    let sent = context
                        .zip(crate::ids::peer_id(&peer))
                        .and_then(|(context, p)| {
                            self.send_to(
                                p,
                                Request::Blob {
                                    context,
                                    request: BlobRequest { blob, what },
                                },
                            )
                        });
                    if sent.is_none() {
                        if let Some(f) = self.blobs.fetches.get_mut(&blob) {
                            f.fetch.remove_holder(now, peer);
                        }
                    }
                }
                FetchAction::StoreManifest(m) => {
                    let slot = f.slot;
                    let contexts = f.shared.clone();
                    let stored = async {
                        self.blob_store.put_manifest(&m).await.map_err(store_err)?;
                        let record = BlobRecord {
                            slot,
                            len: m.len,
                            complete: false,
                            pinned: false,
                            contexts: contexts.into_iter().take(MAX_BLOB_CONTEXTS).collect(),
                        };
                        self.put_blob_record(blob, record).await
                    }
                    .await;
                    self.blobs.keep_manifest(m);
                    if let Err(e) = stored {
                        self.end_fetch(blob, Err(e));
                        return;
                    }
                }
                FetchAction::Store { index, bytes } => {
                    let slot = f.slot;
                    if let Err(e) = self.blob_store.put_chunk(&slot, index, &bytes).await {
                        self.end_fetch(blob, Err(store_err(e)));
                        return;
                    }
                }
                FetchAction::Progress { have_bytes, total } => {
                    self.emit(NetEvent::Blob(BlobEvent::Progress {
                        blob: Some(blob),
                        upload: None,
                        done: have_bytes,
                        total: Some(total),
                    }));
                }
                FetchAction::Event(event) => self.on_fetch_event(now, blob, event),
                FetchAction::Done(m) => {
                    let stats = f.fetch.stats();
                    let shared = f.shared.clone();
                    let looked_in: Vec<ContextId> = f.contexts.iter().copied().collect();
                    let mut record = self
                        .blobs
                        .records
                        .get(&blob)
                        .cloned()
                        .unwrap_or(BlobRecord {
                            slot: f.slot,
                            len: m.len,
                            complete: false,
                            pinned: false,
                            contexts: BTreeSet::new(),
                        });
                    record.complete = true;
                    for c in &shared {
                        record.share(Some(*c));
                    }
                    let stored = self.put_blob_record(blob, record).await;
                    if stored.is_ok() {
                        self.stats.blobs_fetched += 1;
                        self.emit(NetEvent::Blob(BlobEvent::Stored {
                            blob,
                            len: m.len,
                            fetch: Some(stats),
                        }));
                        let named: Vec<ContextId> = looked_in
                            .into_iter()
                            .filter(|c| shared.contains(c) || self.context_refs(c).contains(&blob))
                            .collect();
                        for c in named {
                            self.announce(c, blob);
                        }
                    }
                    let result = stored
                        .and_then(|()| self.blobs.info(&blob).ok_or(NetError::UnknownBlob(blob)));
                    self.end_fetch(blob, result);
                    return;
                }
                FetchAction::Failed(e) => {
                    self.emit(NetEvent::Blob(BlobEvent::Failed {
                        blob,
                        error: e.to_string(),
                    }));
                    self.end_fetch(blob, Err(NetError::BlobFetch(e)));
                    return;
                }
            }
        }
    }

    fn end_fetch(&mut self, blob: BlobId, result: Result<BlobInfo, NetError>) {
        let Some(f) = self.blobs.fetches.remove(&blob) else {
            return;
        };
        let mut result = Some(result);
        let n = f.waiters.len();
        for (i, w) in f.waiters.into_iter().enumerate() {
            let r = if i + 1 == n {
                result.take().unwrap_or(Err(NetError::Stopped))
            } else {
                match result.as_ref() {
                    Some(Ok(info)) => Ok(info.clone()),
                    Some(Err(e)) => Err(NetError::BlobFailed(e.to_string())),
                    None => Err(NetError::Stopped),
                }
            };
            let _ = w.send(r);
        }
    }

    fn on_fetch_event(&mut self, now: u64, blob: BlobId, event: FetchEvent) {
        match event {
            FetchEvent::BadChunk { peer, .. } | FetchEvent::BadManifest { peer, .. } => {
                self.stats.blob_bad_pieces += 1;
                self.emit(NetEvent::Blob(BlobEvent::BadPeer {
                    peer,
                    blob,
                    dropped: false,
                }));
            }
            FetchEvent::HolderDropped { peer } => {
                self.blobs.penalise(peer, now + BLOB_PENALTY_MS);
                self.emit(NetEvent::Blob(BlobEvent::BadPeer {
                    peer,
                    blob,
                    dropped: true,
                }));
            }
            FetchEvent::NoHolders => {
                if let Some(f) = self.blobs.fetches.get_mut(&blob) {
                    f.stuck_since.get_or_insert(now);
                    f.retry_at = Some(now + BLOB_STUCK_RETRY_MS);
                }
                self.add_holders(now, blob, true);
            }
            _ => {}
        }
    }

    /// A blob answer (or refusal) from `peer`.
    pub(super) fn on_blob_response(
        &mut self,
        now: u64,
        peer: NodeId,
        blob: BlobId,
        what: Want,
        response: Response,
    ) {
        let Some(f) = self.blobs.fetches.get_mut(&blob) else {
            return;
        };
        match response {
            Response::Blob(bytes) => match BlobResponse::decode(&bytes) {
                Ok(r) => f.fetch.on_response(now, peer, r),
                Err(e) => {
                    tracing::debug!(%peer, %e, "a blob answer does not decode");
                    f.fetch.on_manifest(now, peer, &[]);
                }
            },
            Response::Refused => {
                // Not known there as a member yet: leave it alone for a while (the fetch asks
                // others, or looks again once stuck).
                self.stats.blob_refused_by_peer += 1;
                f.fetch.on_missing(now, peer, what);
                f.fetch.remove_holder(now, peer);
                self.blobs.penalise(peer, now + BLOB_REFUSED_BACKOFF_MS);
            }
            _ => f.fetch.on_missing(now, peer, what),
        }
    }

    /// A blob request to `peer` failed below the protocol (closed, unreachable): its pieces are
    /// asked of others.
    /// It is left alone for [`BLOB_REFUSED_BACKOFF_MS`]: a peer that went away fails every
    /// request at once, and asking it again at once would spin.
    pub(super) fn on_blob_failure(&mut self, now: u64, peer: NodeId, blob: BlobId) {
        if let Some(f) = self.blobs.fetches.get_mut(&blob) {
            f.fetch.remove_holder(now, peer);
            self.blobs.penalise(peer, now + BLOB_REFUSED_BACKOFF_MS);
        }
    }

    /// A peer left a context: it stops being asked in fetches there.
    pub(super) fn blob_peer_left(&mut self, now: u64, context: ContextId, peer: NodeId) {
        for f in self.blobs.fetches.values_mut() {
            if f.via.get(&peer) == Some(&context) {
                f.via.remove(&peer);
                f.fetch.remove_holder(now, peer);
            }
        }
    }

    /// A peer announced blobs it holds in `context`.
    pub(super) fn on_have(
        &mut self,
        now: u64,
        context: ContextId,
        from: NodeId,
        blobs: Vec<BlobId>,
    ) {
        for blob in blobs {
            let list = match self.blobs.announced.get_mut(&blob) {
                Some(list) => list,
                None => {
                    if self.blobs.announced.len() >= MAX_ANNOUNCED_BLOBS {
                        if let Some(old) = self.blobs.announced_order.pop_front() {
                            self.blobs.announced.remove(&old);
                        }
                    }
                    self.blobs.announced_order.push_back(blob);
                    self.blobs.announced.entry(blob).or_default()
                }
            };
            if !list.iter().any(|(n, c)| *n == from && *c == context) {
                list.push_back((from, context));
                if list.len() > MAX_ANNOUNCERS {
                    list.pop_front();
                }
            }
            if self.blobs.fetches.contains_key(&blob) {
                self.add_holders(now, blob, false);
            }
        }
    }

    /// The earliest time a fetch needs [`Driver::blob_tick`].
    pub(super) fn blob_deadline(&self) -> Option<u64> {
        self.blobs
            .fetches
            .values()
            .flat_map(|f| {
                [
                    f.fetch.poll_timeout(),
                    f.stuck_since.map(|s| s + BLOB_PATIENCE_MS),
                    f.retry_at,
                ]
            })
            .flatten()
            .min()
    }

    /// Timeouts of every fetch; a fetch stuck past [`BLOB_PATIENCE_MS`] fails.
    pub(super) fn blob_tick(&mut self, now: u64) {
        let ids: Vec<BlobId> = self.blobs.fetches.keys().copied().collect();
        for blob in ids {
            let Some(f) = self.blobs.fetches.get_mut(&blob) else {
                continue;
            };
            if f.stuck_since.is_some_and(|s| s + BLOB_PATIENCE_MS <= now) {
                self.emit(NetEvent::Blob(BlobEvent::Failed {
                    blob,
                    error: "nobody holding it answered".into(),
                }));
                self.end_fetch(blob, Err(NetError::BlobUnavailable(blob)));
                continue;
            }
            if f.fetch.poll_timeout().is_some_and(|t| t <= now) {
                f.fetch.handle_timeout(now);
            }
            if f.retry_at.is_some_and(|t| t <= now) {
                f.retry_at = Some(now + BLOB_STUCK_RETRY_MS);
                self.add_holders(now, blob, true);
            }
        }
    }

    /// Moves every fetch on and answers waiting requests (after a drain).
    pub(super) async fn blob_work(&mut self) {
        let ids: Vec<BlobId> = self.blobs.fetches.keys().copied().collect();
        for blob in ids {
            self.pump_fetch(blob).await;
        }
        while let Some(serve) = self.blobs.serves.pop_front() {
            let response = self.serve_blob(&serve).await;
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(serve.channel, response);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Serving.

    /// Queues a peer's blob request (answered after the drain, reading the store).
    pub(super) fn on_blob_request(
        &mut self,
        from: Option<NodeId>,
        context: ContextId,
        request: BlobRequest,
        channel: ResponseChannel<Response>,
    ) {
        let Some(from) = from else {
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, Response::Refused);
            return;
        };
        if self.blobs.serves.len() >= MAX_BLOB_SERVES {
            let response = Response::Blob(
                BlobResponse::Missing {
                    blob: request.blob,
                    what: request.what,
                }
                .encode(),
            );
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, response);
            return;
        }
        self.blobs.serves.push_back(Serve {
            channel,
            from,
            context,
            request,
        });
    }

    async fn serve_blob(&mut self, serve: &Serve) -> Response {
        let blob = serve.request.blob;
        let missing = || {
            Response::Blob(
                BlobResponse::Missing {
                    blob,
                    what: serve.request.what,
                }
                .encode(),
            )
        };
        let member = self.core.peer_is_member(&serve.context, &serve.from);
        let shared = member
            && (self
                .blobs
                .records
                .get(&blob)
                .is_some_and(|r| r.contexts.contains(&serve.context))
                || self.context_refs(&serve.context).contains(&blob));
        if !shared {
            self.stats.blob_refused += 1;
            tracing::debug!(peer = %serve.from, context = %serve.context, %blob, "blob request refused");
            return Response::Refused;
        }
        let Some(record) = self.blobs.records.get(&blob).cloned() else {
            return missing();
        };
        let Ok(manifest) = self.manifest_of(&blob).await else {
            return missing();
        };
        let response = match serve.request.what {
            Want::Manifest => BlobResponse::Manifest {
                blob,
                bytes: manifest.encode(),
            },
            Want::Chunk(index) => {
                let Ok(Some(mut bytes)) = self.blob_store.chunk(&record.slot, index).await else {
                    return missing();
                };
                if manifest.verify_chunk(index, &bytes).is_err() {
                    // Damaged here: never serve it (and drop it, so a fetch can repair it).
                    let _ = self.blob_store.delete_chunk(&record.slot, index).await;
                    return missing();
                }
                if self.blobs.corrupt_serving {
                    if let Some(b) = bytes.first_mut() {
                        *b ^= 0xff;
                    }
                }
                self.stats.blob_chunks_served += 1;
                BlobResponse::Chunk { blob, index, bytes }
            }
        };
        Response::Blob(response.encode())
    }
}
