//! `tabmesh-auth`: the cryptographic primitives of contexts.
//!
//! - [`Entropy`]: the seeded ChaCha20 generator every key, nonce and link secret is drawn from;
//! - [`Keypair`], [`Signature`], [`verify`]: ed25519 with domain separation (a signature made for
//!   one purpose never verifies for another) and strict verification;
//! - [`SymKey`], [`seal`], [`open`]: XChaCha20-Poly1305 with 24-byte random nonces, plus key
//!   derivation ([`SymKey::derive`]), combination ([`SymKey::combine`]) and public key ids
//!   ([`SymKey::id`]);
//! - [`SealedBox`], [`seal_to`], [`open_sealed`]: anonymous encryption to a member's ed25519 public
//!   key (X25519 with an ephemeral key);
//! - [`Invitation`], [`InviteLink`]: a signed invitation to a context and the link that carries it
//!   with its secret, which seals the context's key material and lets the joiner prove it holds
//!   the link ([`InviteLink::prove`], [`Invitation::check_proof`]).
//!
//! Bounds, each documented where it is defined: [`MAX_SEALED_CIPHERTEXT`] (4 KiB),
//! [`MAX_INVITE_RELAY`] (512 bytes), [`MAX_INVITE_KEYS`] (8 KiB); a link longer than the longest
//! valid one is refused before it is decoded. Every decoder bounds every length and none panics on
//! untrusted input.
//!
//! What it deliberately is not: it reads no clock (an invitation's `expires_ms` is compared by the
//! caller) and no OS randomness (the driver seeds [`Entropy`] with 32 bytes from the OS; the
//! simulator from its seed), so it compiles for every target without target-specific code. It has
//! no policy: who may sign, invite or hold which key is decided by `tabmesh-sync`'s governance.
//! It stores nothing: secrets are returned to the caller, which keeps them.
//!
//! # Example
//!
//! ```
//! use tabmesh_auth::{open, open_sealed, seal, seal_to, verify, AuthError, Entropy, Keypair, SymKey};
//!
//! // The driver seeds this once from the OS; tests and the simulator use a fixed seed.
//! let mut e = Entropy::from_seed([7; 32]);
//!
//! // Signatures are domain-separated.
//! let alice = Keypair::generate(&mut e);
//! let sig = alice.sign(b"tabmesh/example/v1", b"hello");
//! verify(&alice.public(), b"tabmesh/example/v1", b"hello", &sig).unwrap();
//! assert_eq!(
//!     verify(&alice.public(), b"tabmesh/other/v1", b"hello", &sig),
//!     Err(AuthError::BadSignature)
//! );
//!
//! // Authenticated encryption with associated data.
//! let key = SymKey::generate(&mut e);
//! let nonce = e.array();
//! let ciphertext = seal(&key, &nonce, b"header", b"secret");
//! assert_eq!(open(&key, &nonce, b"header", &ciphertext).unwrap(), b"secret");
//! assert_eq!(open(&key, &nonce, b"other", &ciphertext), Err(AuthError::Decrypt));
//!
//! // A box only alice can open.
//! let sealed = seal_to(&alice.public(), b"aad", b"for alice", &mut e).unwrap();
//! assert_eq!(open_sealed(&alice, b"aad", &sealed).unwrap(), b"for alice");
//! let bob = Keypair::generate(&mut e);
//! assert!(open_sealed(&bob, b"aad", &sealed).is_err());
//! ```

mod entropy;
mod error;
mod invite;
mod keys;
mod seal;

pub use entropy::Entropy;
pub use error::AuthError;
pub use invite::{Invitation, InviteLink, Role, INVITE_PREFIX, MAX_INVITE_KEYS, MAX_INVITE_RELAY};
pub use keys::{verify, Keypair, Signature, SIGNATURE_LEN};
pub use seal::{
    open, open_sealed, seal, seal_to, SealedBox, SymKey, MAX_SEALED_CIPHERTEXT, NONCE_LEN,
};
