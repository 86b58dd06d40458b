//! Symmetric keys, XChaCha20-Poly1305 and boxes sealed to a member's public key.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{hash_parts, CodecError, Hash, Hasher};
use zeroize::Zeroize;

use crate::keys::verifying_key;
use crate::{AuthError, Entropy, Keypair};

/// The length of an XChaCha20-Poly1305 nonce in bytes. Nonces this long may be drawn at random
/// (from [`Entropy`]) without any realistic risk of reuse.
pub const NONCE_LEN: usize = 24;

/// The Poly1305 tag [`seal`] appends: a ciphertext is the plaintext's length plus this.
pub(crate) const TAG_LEN: usize = 16;

/// The bound on a [`SealedBox`]'s ciphertext: 4 KiB (a plaintext of at most 4 080 bytes). Sealed
/// boxes carry keys to one member, never bulk data; [`seal_to`] refuses larger plaintexts and
/// [`SealedBox::decode`] larger ciphertexts.
pub const MAX_SEALED_CIPHERTEXT: usize = 4 * 1024;

const DERIVE_DOMAIN: &[u8] = b"tabmesh/key-derive/v1";
const COMBINE_DOMAIN: &[u8] = b"tabmesh/key-combine/v1";
const KEY_ID_DOMAIN: &[u8] = b"tabmesh/key-id/v1";
const SEALED_BOX_DOMAIN: &[u8] = b"tabmesh/sealed-box/v1";

/// A 32-byte symmetric key for XChaCha20-Poly1305.
///
/// `Debug` redacts it; it is wiped from memory on drop; equality compares every byte without an
/// early exit.
#[derive(Clone)]
pub struct SymKey([u8; 32]);

impl SymKey {
    /// A new random key from `e`.
    pub fn generate(e: &mut Entropy) -> SymKey {
        SymKey(e.array())
    }

    /// The key of these bytes.
    pub fn from_bytes(b: [u8; 32]) -> SymKey {
        SymKey(b)
    }

    /// The raw bytes (a copy: the caller protects it).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// A key derived from this one for a purpose:
    /// `H("tabmesh/key-derive/v1" ‖ key ‖ domain ‖ count(parts) ‖ parts…)`, every variable piece
    /// length-prefixed ([`Hasher`]). The encoding is prefix-free (the part count comes first), so
    /// SHA-256 length extension of one derived key never yields another.
    pub fn derive(&self, domain: &[u8], parts: &[&[u8]]) -> SymKey {
        let mut h = Hasher::new(DERIVE_DOMAIN);
        h.fixed(&self.0)
            .part(domain)
            .fixed(&(parts.len() as u64).to_le_bytes());
        for p in parts {
            h.part(p);
        }
        SymKey(h.finish().0)
    }

    /// Combines several keys into one, domain-separated and independent of their order (they are
    /// sorted by bytes first): `H("tabmesh/key-combine/v1" ‖ count ‖ sorted keys…)`.
    ///
    /// Every key counts, duplicates included. Combining no keys gives a fixed, public value: pass
    /// at least one secret key.
    pub fn combine(keys: &[SymKey]) -> SymKey {
        let mut sorted: Vec<&[u8; 32]> = keys.iter().map(|k| &k.0).collect();
        sorted.sort_unstable();
        let mut h = Hasher::new(COMBINE_DOMAIN);
        h.fixed(&(sorted.len() as u64).to_le_bytes());
        for k in sorted {
            h.fixed(k);
        }
        SymKey(h.finish().0)
    }

    /// The key id: a public, non-secret fingerprint `H("tabmesh/key-id/v1" ‖ key)`, to say which
    /// key encrypted something without revealing it.
    pub fn id(&self) -> Hash {
        hash_parts(KEY_ID_DOMAIN, &[&self.0])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl PartialEq for SymKey {
    fn eq(&self, other: &SymKey) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for SymKey {}

impl Drop for SymKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymKey(<redacted>)")
    }
}

/// XChaCha20-Poly1305 encryption of `plaintext`, authenticating `aad` too: returns the ciphertext
/// followed by the 16-byte tag. Never reuse a `(key, nonce)` pair: draw nonces from [`Entropy`].
///
/// The cipher refuses only plaintexts over 256 GiB; for those (never reached in practice) this
/// returns an empty vector, which no [`open`] accepts.
pub fn seal(key: &SymKey, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    key.cipher()
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// Decrypts what [`seal`] produced with the same key, nonce and `aad`.
///
/// [`AuthError::Decrypt`] if the key is wrong or anything was altered.
pub fn open(
    key: &SymKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, AuthError> {
    key.cipher()
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| AuthError::Decrypt)
}

/// A message sealed to one ed25519 public key: only the holder of the matching [`Keypair`] opens
/// it ([`open_sealed`]), and nothing in it says who sealed it.
///
/// Construction: the recipient's ed25519 key is converted to X25519 (its Montgomery form); an
/// ephemeral X25519 key drawn from [`Entropy`] agrees on a shared secret with it; the box key is
/// `H("tabmesh/sealed-box/v1" ‖ shared ‖ ephemeral public ‖ recipient ed25519 public)`; the
/// plaintext is encrypted with XChaCha20-Poly1305 under a random nonce and the caller's `aad`.
///
/// Encoding: `ephemeral (32) ‖ nonce (24) ‖ u32 length ‖ ciphertext`, the ciphertext bounded by
/// [`MAX_SEALED_CIPHERTEXT`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBox {
    /// The ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// The AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The ciphertext and its tag.
    pub ciphertext: Vec<u8>,
}

impl SealedBox {
    /// Appends the box (no version byte: the caller's writer has one).
    pub fn encode(&self, w: &mut Writer) {
        w.raw(&self.ephemeral)
            .raw(&self.nonce)
            .bytes(&self.ciphertext);
    }

    /// Reads a box written by [`SealedBox::encode`]; a ciphertext over [`MAX_SEALED_CIPHERTEXT`]
    /// bytes is [`CodecError::TooLarge`].
    pub fn decode(r: &mut Reader<'_>) -> Result<SealedBox, CodecError> {
        let ephemeral = r.array()?;
        let nonce = r.array()?;
        let ciphertext = r
            .bytes("sealed box ciphertext", MAX_SEALED_CIPHERTEXT)?
            .to_vec();
        Ok(SealedBox {
            ephemeral,
            nonce,
            ciphertext,
        })
    }
}

/// Seals `plaintext` to the ed25519 public key `recipient`, binding `aad` (which the recipient must
/// pass to [`open_sealed`] unchanged). Draws the ephemeral key and the nonce from `e`.
///
/// [`AuthError::BadPublicKey`] if `recipient` is not a valid point or has small order;
/// [`AuthError::TooLarge`] if the ciphertext would be over [`MAX_SEALED_CIPHERTEXT`].
pub fn seal_to(
    recipient: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
    e: &mut Entropy,
) -> Result<SealedBox, AuthError> {
    let max = MAX_SEALED_CIPHERTEXT - TAG_LEN;
    if plaintext.len() > max {
        return Err(AuthError::TooLarge {
            what: "sealed box plaintext",
            len: plaintext.len(),
            max,
        });
    }
    let their = x25519_dalek::PublicKey::from(verifying_key(recipient)?.to_montgomery().to_bytes());
    let mut eph_bytes: [u8; 32] = e.array();
    let eph_secret = x25519_dalek::StaticSecret::from(eph_bytes);
    eph_bytes.zeroize();
    let ephemeral = x25519_dalek::PublicKey::from(&eph_secret).to_bytes();
    let shared = eph_secret.diffie_hellman(&their);
    if !shared.was_contributory() {
        return Err(AuthError::BadPublicKey);
    }
    let key = box_key(shared.as_bytes(), &ephemeral, recipient);
    let nonce: [u8; NONCE_LEN] = e.array();
    Ok(SealedBox {
        ephemeral,
        nonce,
        ciphertext: seal(&key, &nonce, aad, plaintext),
    })
}

/// Opens a box sealed to `me`'s public key with the same `aad`.
///
/// [`AuthError::Decrypt`] if it was sealed to another key, with another `aad`, or altered.
pub fn open_sealed(me: &Keypair, aad: &[u8], sealed: &SealedBox) -> Result<Vec<u8>, AuthError> {
    let ephemeral = x25519_dalek::PublicKey::from(sealed.ephemeral);
    let shared = me.x25519_secret().diffie_hellman(&ephemeral);
    if !shared.was_contributory() {
        return Err(AuthError::Decrypt);
    }
    let key = box_key(shared.as_bytes(), &sealed.ephemeral, &me.public());
    open(&key, &sealed.nonce, aad, &sealed.ciphertext)
}

fn box_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> SymKey {
    SymKey(hash_parts(SEALED_BOX_DOMAIN, &[shared, ephemeral, recipient]).0)
}
