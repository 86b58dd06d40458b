//! Why a key, signature, ciphertext or invitation was refused.

use tabmesh_base::CodecError;
use thiserror::Error;

/// Why a call of this crate failed. Errors say what was wrong, never which secret would have been
/// right.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// 32 bytes that are not a usable ed25519 public key: not the encoding of a curve point, or a
    /// point of small order (a weak key that signs nothing and agrees on no secret).
    #[error("not a valid ed25519 public key")]
    BadPublicKey,
    /// The signature does not verify for this key, domain and message.
    #[error("the signature does not verify")]
    BadSignature,
    /// Authenticated decryption failed: wrong key, or the ciphertext, nonce or associated data was
    /// altered.
    #[error(
        "decryption failed: wrong key, or the ciphertext, nonce or associated data was altered"
    )]
    Decrypt,
    /// Bytes that do not decode.
    #[error("cannot decode: {0}")]
    Codec(#[from] CodecError),
    /// An invite link that is not one (the reason says what is wrong with it).
    #[error("bad invite link: {0}")]
    BadLink(&'static str),
    /// An input over one of the crate's bounds.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The input.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
}
