//! The blob protocol's two messages, [`BlobRequest`] and [`BlobResponse`], and their versioned,
//! bounded codec. How they travel (a stream, a sealed direct message) is the driver's business.

use tabmesh_base::codec::{Reader, Writer};

use crate::chunk::{CHUNK_SIZE, MAX_MANIFEST_LEN};
use crate::{BlobError, BlobId};

/// One piece of a blob: its manifest or one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Want {
    /// The manifest (always fetched first: it is what chunks are checked against).
    Manifest,
    /// The chunk at this index.
    Chunk(u32),
}

/// A request for one piece of one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRequest {
    /// The blob.
    pub blob: BlobId,
    /// The piece.
    pub what: Want,
}

/// The answer to a [`BlobRequest`].
#[derive(Clone, PartialEq, Eq)]
pub enum BlobResponse {
    /// The encoded [`Manifest`](crate::Manifest) (at most
    /// [`MAX_MANIFEST_LEN`](crate::MAX_MANIFEST_LEN) bytes); the receiver decodes and checks it
    /// ([`Manifest::decode_for`](crate::Manifest::decode_for)).
    Manifest {
        /// The blob.
        blob: BlobId,
        /// [`Manifest::encode`](crate::Manifest::encode)'s output.
        bytes: Vec<u8>,
    },
    /// One chunk's bytes (at most [`CHUNK_SIZE`]); the receiver checks them against the manifest.
    Chunk {
        /// The blob.
        blob: BlobId,
        /// The chunk's index.
        index: u32,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// The responder does not have this piece.
    Missing {
        /// The blob.
        blob: BlobId,
        /// The piece asked for.
        what: Want,
    },
}

impl std::fmt::Debug for BlobResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobResponse::Manifest { blob, bytes } => f
                .debug_struct("Manifest")
                .field("blob", blob)
                .field("len", &bytes.len())
                .finish(),
            BlobResponse::Chunk { blob, index, bytes } => f
                .debug_struct("Chunk")
                .field("blob", blob)
                .field("index", index)
                .field("len", &bytes.len())
                .finish(),
            BlobResponse::Missing { blob, what } => f
                .debug_struct("Missing")
                .field("blob", blob)
                .field("what", what)
                .finish(),
        }
    }
}

mod tag {
    pub(super) const WANT_MANIFEST: u8 = 0x01;
    pub(super) const WANT_CHUNK: u8 = 0x02;
    pub(super) const MANIFEST: u8 = 0x01;
    pub(super) const CHUNK: u8 = 0x02;
    pub(super) const MISSING: u8 = 0x03;
}

impl Want {
    fn encode(&self, w: &mut Writer) {
        match self {
            Want::Manifest => {
                w.u8(tag::WANT_MANIFEST);
            }
            Want::Chunk(index) => {
                w.u8(tag::WANT_CHUNK).u32(*index);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Want, BlobError> {
        match r.u8()? {
            tag::WANT_MANIFEST => Ok(Want::Manifest),
            tag::WANT_CHUNK => Ok(Want::Chunk(r.u32()?)),
            tag => Err(tabmesh_base::CodecError::InvalidTag { what: "want", tag }.into()),
        }
    }
}

impl BlobRequest {
    /// The versioned encoding: `VERSION ‖ blob ‖ want` (at most 38 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.id(&self.blob);
        self.what.encode(&mut w);
        w.finish()
    }

    /// Decodes a request (the index is not checked: only the manifest knows the chunk count).
    pub fn decode(bytes: &[u8]) -> Result<BlobRequest, BlobError> {
        let mut r = Reader::new(bytes)?;
        let blob = r.id()?;
        let what = Want::decode(&mut r)?;
        r.finish()?;
        Ok(BlobRequest { blob, what })
    }
}

impl BlobResponse {
    /// The blob the response is about.
    pub fn blob(&self) -> &BlobId {
        match self {
            BlobResponse::Manifest { blob, .. }
            | BlobResponse::Chunk { blob, .. }
            | BlobResponse::Missing { blob, .. } => blob,
        }
    }

    /// The versioned encoding: `VERSION ‖ tag ‖ blob ‖ …`; a chunk's bytes are at most
    /// [`CHUNK_SIZE`], a manifest's at most [`MAX_MANIFEST_LEN`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            BlobResponse::Manifest { blob, bytes } => {
                w.u8(tag::MANIFEST).id(blob).bytes(bytes);
            }
            BlobResponse::Chunk { blob, index, bytes } => {
                w.u8(tag::CHUNK).id(blob).u32(*index).bytes(bytes);
            }
            BlobResponse::Missing { blob, what } => {
                w.u8(tag::MISSING).id(blob);
                what.encode(&mut w);
            }
        }
        w.finish()
    }

    /// Decodes a response, refusing byte strings over their bounds before copying them. The
    /// contents are not checked here: [`Fetch`](crate::Fetch) verifies them.
    pub fn decode(bytes: &[u8]) -> Result<BlobResponse, BlobError> {
        let mut r = Reader::new(bytes)?;
        let response = match r.u8()? {
            tag::MANIFEST => BlobResponse::Manifest {
                blob: r.id()?,
                bytes: r.bytes("manifest", MAX_MANIFEST_LEN)?.to_vec(),
            },
            tag::CHUNK => BlobResponse::Chunk {
                blob: r.id()?,
                index: r.u32()?,
                bytes: r.bytes("chunk", CHUNK_SIZE)?.to_vec(),
            },
            tag::MISSING => BlobResponse::Missing {
                blob: r.id()?,
                what: Want::decode(&mut r)?,
            },
            tag => {
                return Err(tabmesh_base::CodecError::InvalidTag {
                    what: "blob response",
                    tag,
                }
                .into())
            }
        };
        r.finish()?;
        Ok(response)
    }
}
