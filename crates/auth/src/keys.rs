//! Ed25519 key pairs and domain-separated signatures.

use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::{AuthError, Entropy};

/// The length of an ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// An ed25519 key pair (a member key, a node key, an invite key).
///
/// `Debug` prints only the public key; the secret is wiped from memory when the pair is dropped
/// (copies returned by [`Keypair::secret`] are the caller's to protect).
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A new key pair from 32 bytes of `e`.
    pub fn generate(e: &mut Entropy) -> Keypair {
        let mut secret: [u8; 32] = e.array();
        let pair = Keypair::from_secret(secret);
        zeroize::Zeroize::zeroize(&mut secret);
        pair
    }

    /// The key pair of a 32-byte ed25519 secret (seed). Every 32 bytes are a valid secret.
    pub fn from_secret(secret: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The 32-byte secret (seed): store it, then rebuild the pair with [`Keypair::from_secret`].
    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The 32-byte public key (a [`MemberId`](tabmesh_base::MemberId)'s bytes).
    pub fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Ed25519 over `u32-le len(domain) ‖ domain ‖ message` (domain separation: a signature made
    /// for one purpose never verifies for another). Deterministic: no randomness is drawn.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Signature {
        let framed = frame(domain, message);
        Signature(ed25519_dalek::Signer::sign(&self.signing, &framed).to_bytes())
    }

    /// The X25519 secret scalar bytes of this key (sealed boxes open with it).
    pub(crate) fn x25519_secret(&self) -> x25519_dalek::StaticSecret {
        let mut bytes = self.signing.to_scalar_bytes();
        let secret = x25519_dalek::StaticSecret::from(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        secret
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &short_hex(&self.public()))
            .finish_non_exhaustive()
    }
}

/// An ed25519 signature. `Debug` prints its first eight hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", short_hex(&self.0))
    }
}

/// Verifies `sig` by `public` over `u32-le len(domain) ‖ domain ‖ message` (the framing of
/// [`Keypair::sign`]), strictly (`verify_strict`: no small-order keys or `R`, canonical `S`).
///
/// [`AuthError::BadPublicKey`] if `public` is not a curve point or has small order;
/// [`AuthError::BadSignature`] if the signature does not verify.
pub fn verify(
    public: &[u8; 32],
    domain: &[u8],
    message: &[u8],
    sig: &Signature,
) -> Result<(), AuthError> {
    let key = verifying_key(public)?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
    key.verify_strict(&frame(domain, message), &sig)
        .map_err(|_| AuthError::BadSignature)
}

/// Decodes a public key, refusing non-points and small-order (weak) points.
pub(crate) fn verifying_key(public: &[u8; 32]) -> Result<VerifyingKey, AuthError> {
    let key = VerifyingKey::from_bytes(public).map_err(|_| AuthError::BadPublicKey)?;
    if key.is_weak() {
        return Err(AuthError::BadPublicKey);
    }
    Ok(key)
}

/// `u32-le len(domain) ‖ domain ‖ message`. Domains are short constants: a length over `u32::MAX`
/// (impossible on wasm32) saturates.
fn frame(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(domain.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + domain.len() + message.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(domain);
    out.extend_from_slice(message);
    out
}

/// The first four bytes as eight hex digits, then `…`.
pub(crate) fn short_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(11);
    for b in bytes.iter().take(4) {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    if bytes.len() > 4 {
        s.push('…');
    }
    s
}
