//! Blobs: large immutable byte strings kept beside the state, not in it. An app writes one with
//! [`create`] → [`BlobWriter::write`] → [`BlobWriter::finish`], which gives its [`BlobRef`]; it
//! stores that reference in its state like any value (it replicates with the delta, the bytes do
//! not), and reads the blob back with [`open`] → [`BlobReader::read`].
//!
//! ```
//! use tabmesh_sdk::prelude::*;
//! use tabmesh_sdk::blob::{self, BlobRef};
//!
//! #[app::state]
//! pub struct Files {
//!     files: Map<Register>,
//! }
//!
//! #[app::logic]
//! impl Files {
//!     pub fn put(&mut self, name: String, text: String) -> Result<BlobRef> {
//!         let mut w = blob::create()?;
//!         w.write(text.as_bytes())?;
//!         let r = w.finish()?;
//!         self.files.insert(&name, r)?; // stored as its text, `tabmesh-blob:…`
//!         Ok(r)
//!     }
//!
//!     pub fn read(&self, name: String) -> Result<Vec<u8>> {
//!         let stored = self.files.get(&name)?.ok_or_else(|| Error::app("no such file"))?;
//!         let r = BlobRef::parse(&stored).ok_or_else(|| Error::app("not a blob reference"))?;
//!         blob::open(&r)?.read_to_end()
//!     }
//! }
//! # let id = [7u8; 32];
//! let r = BlobRef::from_id(id);
//! assert_eq!(r.as_text(), format!("tabmesh-blob:{}", "07".repeat(32)));
//! assert_eq!(BlobRef::parse(r.as_ref()), Some(r));
//! ```
//!
//! **Where the bytes are.** A blob this call created is readable at once here and, once the call
//! succeeds, stored by the node (a blob created by a failing call never existed). On other members
//! the reference arrives with the delta and the bytes later: until the node holds them,
//! [`open`] fails with [`Error::Blob`] `{reason: "not_found"}` and the node asks its peers for the
//! blob — try again later. The host bounds what one call may do (open handles, bytes written) and
//! which blobs it reads whole (see the node's documentation); a refusal is [`Error::Blob`].

use core::fmt;
use core::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};
use tabmesh_abi::{BlobOp, Hash, Value};

use crate::{sys, Error, Result};

/// What every blob reference's text starts with (`tabmesh_blobs::REF_PREFIX`, the same string:
/// the node finds references in state by it).
pub const BLOB_REF_PREFIX: &str = "tabmesh-blob:";

/// Length of a reference's text: the prefix and 64 lowercase hex digits (77 bytes).
pub const BLOB_REF_LEN: usize = BLOB_REF_PREFIX.len() + 64;

/// Bytes per `blob` host call when writing: an encoded write stays well under the runtime's
/// host-call argument limit (128 KiB).
const WRITE_PIECE: usize = 64 << 10;

/// Bytes [`BlobReader::read_to_end`] asks for per host call (the host may answer with fewer).
const READ_PIECE: u32 = 256 << 10;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A reference to a blob: its 32-byte id, and the one text form apps store and replicate,
/// [`BLOB_REF_PREFIX`] followed by the id in 64 lowercase hex digits (77 bytes). It is that text
/// as bytes ([`AsRef<[u8]>`]), so it goes straight into any collection
/// (`map.insert(key, blob_ref)`), and (de)serializes as that string, so a reference inside a
/// JSON value keeps the same text — the node finds it there too.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobRef {
    id: [u8; 32],
    text: [u8; BLOB_REF_LEN],
}

impl BlobRef {
    /// The reference to the blob with id `id`.
    pub fn from_id(id: [u8; 32]) -> BlobRef {
        let mut text = [0u8; BLOB_REF_LEN];
        let (prefix, hex) = text.split_at_mut(BLOB_REF_PREFIX.len());
        prefix.copy_from_slice(BLOB_REF_PREFIX.as_bytes());
        for (pair, b) in hex.chunks_exact_mut(2).zip(id) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
        BlobRef { id, text }
    }

    /// The reference whose text is exactly `text` ([`BLOB_REF_LEN`] bytes: the prefix, then 64
    /// lowercase hex digits); `None` for anything else (uppercase digits included).
    pub fn parse(text: &[u8]) -> Option<BlobRef> {
        if text.len() != BLOB_REF_LEN {
            return None;
        }
        let hex = text.strip_prefix(BLOB_REF_PREFIX.as_bytes())?;
        let mut id = [0u8; 32];
        for (b, pair) in id.iter_mut().zip(hex.chunks_exact(2)) {
            *b = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
        }
        Some(BlobRef::from_id(id))
    }

    /// The blob's id.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// The reference's text.
    pub fn as_text(&self) -> &str {
        // The prefix and hex digits are ASCII.
        core::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The reference's text, owned.
    pub fn to_text(&self) -> String {
        self.as_text().to_owned()
    }
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl AsRef<[u8]> for BlobRef {
    fn as_ref(&self) -> &[u8] {
        &self.text
    }
}

impl From<[u8; 32]> for BlobRef {
    fn from(id: [u8; 32]) -> BlobRef {
        BlobRef::from_id(id)
    }
}

impl fmt::Display for BlobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_text())
    }
}

impl fmt::Debug for BlobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobRef({})", self.as_text())
    }
}

/// Why a string is not a [`BlobRef`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a blob reference (`{BLOB_REF_PREFIX}` and 64 lowercase hex digits)")]
#[non_exhaustive]
pub struct NotABlobRef;

impl FromStr for BlobRef {
    type Err = NotABlobRef;
    fn from_str(s: &str) -> core::result::Result<BlobRef, NotABlobRef> {
        BlobRef::parse(s.as_bytes()).ok_or(NotABlobRef)
    }
}

impl Serialize for BlobRef {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_text())
    }
}

impl<'de> Deserialize<'de> for BlobRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<BlobRef, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = BlobRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a blob reference (`{BLOB_REF_PREFIX}` and 64 lowercase hex digits)"
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> core::result::Result<BlobRef, E> {
                BlobRef::parse(v.as_bytes())
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> core::result::Result<BlobRef, E> {
                BlobRef::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Bytes(v), &self))
            }
        }
        d.deserialize_str(Text)
    }
}

fn run(op: BlobOp<'_>) -> Result<Value> {
    sys::blob(&op.encode())
}

fn handle(v: Value, op: &'static str) -> Result<u64> {
    match v {
        Value::U64(h) => Ok(h),
        _ => Err(Error::UnexpectedValue { op }),
    }
}

/// Starts a new blob.
pub fn create() -> Result<BlobWriter> {
    let handle = handle(run(BlobOp::Create)?, "blob create")?;
    Ok(BlobWriter {
        handle: Some(handle),
    })
}

/// Opens the blob `r` names for reading. [`Error::Blob`] `{reason: "not_found"}`: the node does
/// not hold it (yet; it asks its peers).
pub fn open(r: &BlobRef) -> Result<BlobReader> {
    let handle = handle(run(BlobOp::Open { id: Hash(r.id) })?, "blob open")?;
    Ok(BlobReader {
        handle: Some(handle),
    })
}

/// A blob being written (from [`create`]). Dropping it unfinished abandons the blob.
#[derive(Debug)]
pub struct BlobWriter {
    /// `None` once finished.
    handle: Option<u64>,
}

impl BlobWriter {
    /// Appends `data` (in as many host calls as its size needs).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let handle = self
            .handle
            .ok_or(Error::UnexpectedValue { op: "blob write" })?;
        for piece in data.chunks(WRITE_PIECE) {
            match run(BlobOp::Write {
                handle,
                data: piece,
            })? {
                Value::Unit => {}
                _ => return Err(Error::UnexpectedValue { op: "blob write" }),
            }
        }
        Ok(())
    }

    /// Ends the blob: its reference.
    pub fn finish(mut self) -> Result<BlobRef> {
        let handle = self
            .handle
            .take()
            .ok_or(Error::UnexpectedValue { op: "blob finish" })?;
        match run(BlobOp::Finish { handle })? {
            Value::Id(id) => Ok(BlobRef::from_id(id.0)),
            _ => Err(Error::UnexpectedValue { op: "blob finish" }),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = run(BlobOp::Close { handle });
        }
    }
}

/// A blob open for reading (from [`open`]), from its start. Closed when dropped.
#[derive(Debug)]
pub struct BlobReader {
    handle: Option<u64>,
}

impl BlobReader {
    /// Up to `max` more bytes (the host may return fewer); empty at the end.
    pub fn read(&mut self, max: u32) -> Result<Vec<u8>> {
        let handle = self
            .handle
            .ok_or(Error::UnexpectedValue { op: "blob read" })?;
        match run(BlobOp::Read { handle, max })? {
            Value::Bytes(b) => Ok(b),
            _ => Err(Error::UnexpectedValue { op: "blob read" }),
        }
    }

    /// Every byte from the current position to the end.
    pub fn read_to_end(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let piece = self.read(READ_PIECE)?;
            if piece.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&piece);
        }
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = run(BlobOp::Close { handle });
        }
    }
}
