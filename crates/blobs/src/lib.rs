//! `tabmesh-blobs`: content-addressed blobs, the sans-IO core of blob sharing.
//!
//! A blob is cut into chunks of [`CHUNK_SIZE`] (256 KiB) bytes, each named by its hash
//! ([`ChunkId`] = `H("tabmesh/blob-chunk/v1" ‖ bytes)`); the blob is named by the hash of its
//! length and chunk ids ([`BlobId`] = `H("tabmesh/blob/v1" ‖ len ‖ chunk ids…)`), and its
//! [`Manifest`] is that list. Peers that share a context share blobs by id:
//!
//! - **Chunking**: [`BlobWriter`] cuts a blob as its bytes arrive (a 100 MB file never sits whole
//!   in memory) and returns the manifest at the end; [`chunk_bytes`] does it in one call.
//! - **Manifests**: a versioned, bounded encoding ([`Manifest::encode`], [`Manifest::decode`]
//!   verifies the id against the length and chunk ids); [`Manifest::slices`] says which chunks
//!   hold a byte range.
//! - **Fetching**: [`Fetch`] is the transfer machine: it gets the manifest from a holder, checks
//!   it against the id, then asks holders for chunks — spread over them, within
//!   [`Limits`] (requests and bytes in flight), retrying timeouts and bad chunks elsewhere with
//!   backoff, dropping holders that keep sending bad data — checks every chunk against the
//!   manifest and tells the driver to store it, reporting progress. [`Fetch::resume`] continues
//!   after a restart without asking again for what is stored.
//! - **References**: apps store a blob's id as text, [`REF_PREFIX`] (`tabmesh-blob:`) and 64
//!   lowercase hex digits ([`ref_text`], [`parse_ref`]); [`find_refs`] finds every such reference
//!   in any bytes (at most [`MAX_FOUND_REFS`] ids), so a garbage collector learns which blobs the
//!   state still names.
//! - **Serving**: [`serve`] answers a [`BlobRequest`] from what a [`BlobLookup`] holds
//!   ([`MemoryBlobs`] is one in memory); [`BlobRequest`] and [`BlobResponse`] have a versioned,
//!   bounded codec.
//!
//! Every bound is a named constant or a [`Limits`] field: [`MAX_BLOB_LEN`] (4 GiB),
//! [`MAX_CHUNKS`] (16 384), [`MAX_MANIFEST_LEN`] (≈ 512 KiB), [`MAX_IN_FLIGHT_CHUNKS`] (64),
//! [`MAX_IN_FLIGHT_BYTES`] (1 MiB), [`MAX_FOUND_REFS`] (65 536).
//!
//! What it deliberately is not: it does no IO (the driver stores chunks and carries messages),
//! reads no clock (`now_ms` is an argument) and draws no randomness (the holder choice comes from
//! a seed the caller passes); it has no target-specific code. It does not decide who may fetch or
//! serve a blob: the membership check belongs to the driver, before [`serve`] and before
//! [`Fetch::add_holder`]. It does not find holders (the driver announces and discovers them), does
//! not encrypt (the channel does), and does not decide which blobs to collect (it only finds the
//! references, [`find_refs`]).
//!
//! # Driving a fetch
//!
//! - Create it with [`Fetch::new`] (a blob id and the peers that announced it) or
//!   [`Fetch::resume`] (a stored manifest and the indices of the chunks stored).
//! - Drain [`Fetch::poll_action`] after every input: send each [`FetchAction::Request`] to its
//!   peer, persist [`FetchAction::StoreManifest`] and [`FetchAction::Store`], show
//!   [`FetchAction::Progress`], end on [`FetchAction::Done`] or [`FetchAction::Failed`].
//! - Feed answers to [`Fetch::on_response`], holders coming and going to [`Fetch::add_holder`] and
//!   [`Fetch::remove_holder`], and call [`Fetch::handle_timeout`] at [`Fetch::poll_timeout`].
//!
//! # Example: one blob, one holder
//!
//! ```
//! use tabmesh_base::NodeId;
//! use tabmesh_blobs::{
//!     serve, BlobRequest, BlobWriter, Fetch, FetchAction, Limits, MemoryBlobs, CHUNK_SIZE,
//! };
//!
//! // The holder writes a blob of 2.5 chunks in pieces and keeps it.
//! let data: Vec<u8> = (0..CHUNK_SIZE * 5 / 2).map(|i| (i % 251) as u8).collect();
//! let mut holder = MemoryBlobs::new();
//! let mut writer = BlobWriter::new();
//! let mut chunks = Vec::new();
//! for piece in data.chunks(100_000) {
//!     chunks.extend(writer.write(piece)?);
//! }
//! let (last, manifest) = writer.finish();
//! chunks.extend(last);
//! assert_eq!(chunks.len(), 3);
//! holder.insert_manifest(manifest.clone())?;
//! for c in chunks {
//!     holder.insert_chunk(&manifest.id, c.index, c.bytes)?;
//! }
//!
//! // Another node knows only the id, and that `peer` holds it.
//! let peer = NodeId([7; 32]);
//! let mut fetch = Fetch::new(0, manifest.id, [peer], Limits::default(), 42)?;
//! let mut mine = MemoryBlobs::new();
//! let mut done = None;
//! while let Some(action) = fetch.poll_action() {
//!     match action {
//!         FetchAction::Request { peer, what } => {
//!             // The network: the request and its answer, through their codecs.
//!             let request = BlobRequest { blob: *fetch.blob(), what }.encode();
//!             let served = serve(&holder, &BlobRequest::decode(&request)?);
//!             let response = tabmesh_blobs::BlobResponse::decode(&served.response.encode())?;
//!             fetch.on_response(1, peer, response);
//!         }
//!         FetchAction::StoreManifest(m) => mine.insert_manifest(m)?,
//!         FetchAction::Store { index, bytes } => mine.insert_chunk(&manifest.id, index, bytes)?,
//!         FetchAction::Done(m) => done = Some(m),
//!         _ => {}
//!     }
//! }
//! assert_eq!(done, Some(manifest.clone()));
//! assert_eq!(mine.read(&manifest.id), Some(data));
//!
//! // Bytes 300 000..600 000 are in chunks 1 and 2.
//! let slices: Vec<u32> = manifest.slices(300_000..600_000)?.map(|s| s.index).collect();
//! assert_eq!(slices, vec![1, 2]);
//! # Ok::<(), tabmesh_blobs::BlobError>(())
//! ```

mod chunk;
mod error;
mod fetch;
mod id;
mod manifest;
mod refs;
mod serve;
mod wire;

pub use chunk::{
    blob_id, chunk_bytes, chunk_count, chunk_id, BlobWriter, Chunk, CHUNK_SIZE, MAX_BLOB_LEN,
    MAX_CHUNKS, MAX_MANIFEST_LEN,
};
pub use error::{BlobError, FetchError};
pub use fetch::{
    Fetch, FetchAction, FetchEvent, FetchStats, Limits, MAX_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_CHUNKS,
};
pub use id::{BlobId, ChunkId};
pub use manifest::{Manifest, Slice, Slices};
pub use refs::{find_refs, parse_ref, ref_text, MAX_FOUND_REFS, REF_PREFIX, REF_TEXT_LEN};
pub use serve::{serve, BlobLookup, MemoryBlobs, Served};
pub use wire::{BlobRequest, BlobResponse, Want};
