//! The versioned binary codec behind every tabmesh wire and disk format.
//!
//! An encoding starts with one version byte ([`VERSION`]); [`Reader::new`] refuses any other value
//! with [`CodecError::UnknownVersion`]. After it: fixed-width little-endian integers, 32-byte ids and
//! hashes as raw bytes, variable-length byte strings with a `u32` length prefix that every reader
//! call bounds with an explicit maximum. Nothing here allocates more than the input holds, so a
//! hostile length prefix cannot make a decoder reserve memory it was not given.
//!
//! Hash preimages use [`Writer::unversioned`]: the same primitives without the version byte.

use thiserror::Error;

use crate::Hash;

/// The current codec version, written as the first byte of every versioned encoding.
pub const VERSION: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The version byte names an encoding this build does not know (newer, or garbage).
    #[error("unknown encoding version {found} (this build reads version {supported})")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The input ended early.
    #[error("input ended early: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd {
        /// Bytes the next field needed.
        needed: usize,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// A length prefix or count is over the bound for that field.
    #[error("{what} is {len}, over the limit of {max}")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// The length found.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Bytes remained after the last field.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// An enum tag has no meaning.
    #[error("invalid {what} tag {tag}")]
    InvalidTag {
        /// The enum being decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A field decoded but its value is not allowed.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Builds an encoding.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer whose output starts with [`VERSION`].
    pub fn new() -> Writer {
        Writer { buf: vec![VERSION] }
    }

    /// A writer without the version byte: for hash preimages and nested fields.
    pub fn unversioned() -> Writer {
        Writer { buf: Vec::new() }
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A `bool` as one byte (0 or 1).
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Little-endian `i64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A 32-byte id or hash, raw.
    pub fn id(&mut self, id: &impl AsRef<[u8; 32]>) -> &mut Self {
        self.buf.extend_from_slice(id.as_ref());
        self
    }

    /// A hash, raw.
    pub fn hash(&mut self, h: &Hash) -> &mut Self {
        self.buf.extend_from_slice(&h.0);
        self
    }

    /// A count or length as `u32`. Lengths over `u32::MAX` are a caller bug: callers bound sizes
    /// far below it before encoding.
    pub fn len(&mut self, n: usize) -> &mut Self {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.u32(n)
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.len(b.len());
        self.buf.extend_from_slice(b);
        self
    }

    /// Raw bytes without a prefix (an already-encoded nested value).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The encoding.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads an encoding. Every method fails with a [`CodecError`] instead of panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the version byte and reads what follows.
    pub fn new(bytes: &'a [u8]) -> Result<Reader<'a>, CodecError> {
        let mut r = Reader { rest: bytes };
        let found = r.u8()?;
        if found != VERSION {
            return Err(CodecError::UnknownVersion {
                found,
                supported: VERSION,
            });
        }
        Ok(r)
    }

    /// Reads bytes that carry no version byte.
    pub fn unversioned(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return Err(CodecError::UnexpectedEnd {
                needed: n,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// `N` raw bytes as an array (keys, nonces, signatures).
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    /// A `bool`; any byte other than 0 or 1 is an error.
    pub fn bool(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(CodecError::InvalidTag { what: "bool", tag }),
        }
    }

    /// Little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Little-endian `i64`.
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A 32-byte id.
    pub fn id<T: From<[u8; 32]>>(&mut self) -> Result<T, CodecError> {
        Ok(T::from(self.array()?))
    }

    /// A hash.
    pub fn hash(&mut self) -> Result<Hash, CodecError> {
        Ok(Hash(self.array()?))
    }

    /// A count or length, refused when over `max` (`what` names the field in the error).
    pub fn len(&mut self, what: &'static str, max: usize) -> Result<usize, CodecError> {
        let n = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if n > max {
            return Err(CodecError::TooLarge { what, len: n, max });
        }
        Ok(n)
    }

    /// A count of items that each take at least `min_item` bytes: bounded by `max` and by what the
    /// input can still hold, so `Vec::with_capacity(count)` is safe.
    pub fn count(
        &mut self,
        what: &'static str,
        max: usize,
        min_item: usize,
    ) -> Result<usize, CodecError> {
        let n = self.len(what, max)?;
        let need = n.saturating_mul(min_item.max(1));
        if need > self.rest.len() {
            return Err(CodecError::UnexpectedEnd {
                needed: need,
                remaining: self.rest.len(),
            });
        }
        Ok(n)
    }

    /// Length-prefixed bytes of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], CodecError> {
        let n = self.len(what, max)?;
        self.take(n)
    }

    /// `n` raw bytes.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.take(n)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Ends decoding: trailing bytes are an error.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes(self.rest.len()))
        }
    }
}
