//! Signed invitations to a context and the links that carry them.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{hash_parts, CodecError, ContextId, Hash, Hasher, MemberId};

use crate::keys::verifying_key;
use crate::seal::TAG_LEN;
use crate::{open, seal, verify, AuthError, Entropy, Keypair, Signature, SymKey, NONCE_LEN};

/// What every invite link starts with.
pub const INVITE_PREFIX: &str = "tabmesh-invite:";

/// The bound on [`Invitation::relay`]: 512 bytes of UTF-8 (a multiaddr is far shorter).
pub const MAX_INVITE_RELAY: usize = 512;

/// The bound on [`Invitation::keys`]: 8 KiB of sealed key material, so at most
/// 8 176 bytes of plaintext (the AEAD tag takes 16).
pub const MAX_INVITE_KEYS: usize = 8 * 1024;

/// Domain tag of the inviter's signature and first field of [`Invitation::signing_bytes`].
const INVITATION_DOMAIN: &[u8] = b"tabmesh/invitation/v1";
/// Domain tag of [`Invitation::id`].
const INVITATION_ID_DOMAIN: &[u8] = b"tabmesh/invitation-id/v1";
/// Domain tag of the associated data the key material is sealed with.
const INVITATION_KEYS_DOMAIN: &[u8] = b"tabmesh/invitation-keys/v1";
/// Derives the invite key pair's secret from the link secret.
const INVITE_KEY_DOMAIN: &[u8] = b"tabmesh/invite-key/v1";
/// Derives the key that seals the key material from the link secret.
const INVITE_SEAL_DOMAIN: &[u8] = b"tabmesh/invite-seal/v1";
/// Domain tag of [`InviteLink::prove`]'s signature.
const INVITE_PROOF_DOMAIN: &[u8] = b"tabmesh/invite-proof/v1";

/// The longest encoded invitation: fixed fields, the two bounded byte strings and the signature.
const MAX_INVITATION_LEN: usize =
    32 + 32 + 32 + 1 + 8 + 4 + MAX_INVITE_RELAY + 32 + NONCE_LEN + 4 + MAX_INVITE_KEYS + 64;
/// The longest link payload: base64url (no padding) of version byte ‖ invitation ‖ secret. Longer
/// text is refused before it is decoded.
const MAX_LINK_PAYLOAD: usize = (4 * (1 + MAX_INVITATION_LEN + 32)).div_ceil(3);

/// The role an invitation grants. Encoded as one byte (its discriminant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A member: reads and writes the context.
    Member = 1,
    /// An administrator: a member who may also change the membership.
    Admin = 2,
}

impl Role {
    /// The wire byte.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// The role of a wire byte; `None` for an unknown one.
    pub fn from_u8(v: u8) -> Option<Role> {
        match v {
            1 => Some(Role::Member),
            2 => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A signed invitation to a context. The secret that protects the keys is NOT part of it: it
/// travels only in the link ([`InviteLink`]). Everything here is signed by the inviter.
///
/// Encoding (inside a versioned writer): `context ‖ app ‖ inviter ‖ role (u8) ‖ expires_ms (u64) ‖
/// relay (u32 length, ≤ MAX_INVITE_RELAY) ‖ invite_key ‖ keys_nonce ‖ keys (u32 length,
/// ≤ MAX_INVITE_KEYS) ‖ signature (64)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// The context the invitation is to.
    pub context: ContextId,
    /// The app module hash.
    pub app: Hash,
    /// The inviter's member public key.
    pub inviter: MemberId,
    /// The role granted.
    pub role: Role,
    /// When the invitation expires (ms since the Unix epoch). This crate does not check it.
    pub expires_ms: u64,
    /// A multiaddr to reach the context through, at most [`MAX_INVITE_RELAY`] bytes; may be empty.
    pub relay: String,
    /// The public key of the invite key pair, derived from the link secret: a joiner proves it
    /// holds the link with it ([`InviteLink::prove`]).
    pub invite_key: [u8; 32],
    /// The nonce `keys` is sealed with.
    pub keys_nonce: [u8; NONCE_LEN],
    /// The context key material, sealed with a key derived from the link secret (opaque here), at
    /// most [`MAX_INVITE_KEYS`] bytes.
    pub keys: Vec<u8>,
    /// The inviter's signature over [`Invitation::signing_bytes`].
    pub signature: Signature,
}

impl Invitation {
    /// Builds and signs an invitation; draws the link secret and nonce from `e`; `key_material` is
    /// sealed with a key derived from the secret (associated data: the signed fields before it).
    /// Returns the link (invitation + secret).
    ///
    /// [`AuthError::TooLarge`] if `relay` is over [`MAX_INVITE_RELAY`] bytes or `key_material`
    /// over [`MAX_INVITE_KEYS`] − 16 bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        inviter: &Keypair,
        context: ContextId,
        app: Hash,
        role: Role,
        expires_ms: u64,
        relay: &str,
        key_material: &[u8],
        e: &mut Entropy,
    ) -> Result<InviteLink, AuthError> {
        check_len("invitation relay", relay.len(), MAX_INVITE_RELAY)?;
        check_len(
            "invitation key material",
            key_material.len(),
            MAX_INVITE_KEYS - TAG_LEN,
        )?;
        let secret: [u8; 32] = e.array();
        let keys_nonce: [u8; NONCE_LEN] = e.array();
        let mut invitation = Invitation {
            context,
            app,
            inviter: MemberId(inviter.public()),
            role,
            expires_ms,
            relay: relay.to_owned(),
            invite_key: invite_keypair(&secret).public(),
            keys_nonce,
            keys: Vec::new(),
            signature: Signature([0; 64]),
        };
        invitation.keys = seal(
            &seal_key(&secret),
            &keys_nonce,
            &invitation.keys_aad(),
            key_material,
        );
        invitation.signature = inviter.sign(INVITATION_DOMAIN, &invitation.signing_bytes());
        Ok(InviteLink { invitation, secret })
    }

    /// The bytes the inviter signs: the domain tag `"tabmesh/invitation/v1"` and every field but
    /// the signature, in encoding order. (The signature itself is made under the same domain tag.)
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::unversioned();
        w.bytes(INVITATION_DOMAIN);
        self.write_fields(&mut w);
        w.finish()
    }

    /// Checks the field bounds and the inviter's signature. Not expiry: callers compare
    /// `expires_ms` with their notion of time.
    ///
    /// [`AuthError::TooLarge`] for an oversized field, [`AuthError::BadPublicKey`] if `inviter` or
    /// `invite_key` is not a valid key, [`AuthError::BadSignature`] if the signature does not
    /// verify.
    pub fn verify(&self) -> Result<(), AuthError> {
        check_len("invitation relay", self.relay.len(), MAX_INVITE_RELAY)?;
        check_len("invitation keys", self.keys.len(), MAX_INVITE_KEYS)?;
        verifying_key(&self.invite_key)?;
        verify(
            self.inviter.as_bytes(),
            INVITATION_DOMAIN,
            &self.signing_bytes(),
            &self.signature,
        )
    }

    /// The invitation's id: `H("tabmesh/invitation-id/v1" ‖ signing_bytes ‖ signature)`.
    pub fn id(&self) -> Hash {
        let mut h = Hasher::new(INVITATION_ID_DOMAIN);
        h.part(&self.signing_bytes()).fixed(&self.signature.0);
        h.finish()
    }

    /// Appends the invitation (no version byte: the caller's writer has one).
    pub fn encode(&self, w: &mut Writer) {
        self.write_fields(w);
        w.raw(&self.signature.0);
    }

    /// Reads an invitation written by [`Invitation::encode`]. Bounds: `relay` at most
    /// [`MAX_INVITE_RELAY`] bytes of UTF-8, `keys` at most [`MAX_INVITE_KEYS`] bytes; an unknown
    /// role byte is [`CodecError::InvalidTag`]. Does not check the signature
    /// ([`Invitation::verify`] does).
    pub fn decode(r: &mut Reader<'_>) -> Result<Invitation, CodecError> {
        let context = r.id()?;
        let app = r.hash()?;
        let inviter = r.id()?;
        let tag = r.u8()?;
        let role = Role::from_u8(tag).ok_or(CodecError::InvalidTag { what: "role", tag })?;
        let expires_ms = r.u64()?;
        let relay = String::from_utf8(r.bytes("invitation relay", MAX_INVITE_RELAY)?.to_vec())
            .map_err(|_| CodecError::Invalid("invitation relay (not UTF-8)"))?;
        let invite_key = r.array()?;
        let keys_nonce = r.array()?;
        let keys = r.bytes("invitation keys", MAX_INVITE_KEYS)?.to_vec();
        let signature = Signature(r.array()?);
        Ok(Invitation {
            context,
            app,
            inviter,
            role,
            expires_ms,
            relay,
            invite_key,
            keys_nonce,
            keys,
            signature,
        })
    }

    /// Verifies that `proof` was made with the link secret for `joiner` (see
    /// [`InviteLink::prove`]).
    ///
    /// [`AuthError::BadSignature`] if it was made for another joiner key, another invitation or
    /// without the secret.
    pub fn check_proof(&self, joiner: &[u8; 32], proof: &Signature) -> Result<(), AuthError> {
        verify(
            &self.invite_key,
            INVITE_PROOF_DOMAIN,
            &self.proof_message(joiner),
            proof,
        )
    }

    /// Every field but the signature, in encoding order.
    fn write_fields(&self, w: &mut Writer) {
        self.write_header(w);
        w.raw(&self.keys_nonce).bytes(&self.keys);
    }

    /// The fields before the sealed keys.
    fn write_header(&self, w: &mut Writer) {
        w.id(&self.context)
            .hash(&self.app)
            .id(&self.inviter)
            .u8(self.role.to_u8())
            .u64(self.expires_ms)
            .bytes(self.relay.as_bytes())
            .raw(&self.invite_key);
    }

    /// The associated data of the sealed keys: a domain tag and the fields before them.
    fn keys_aad(&self) -> Vec<u8> {
        let mut w = Writer::unversioned();
        w.bytes(INVITATION_KEYS_DOMAIN);
        self.write_header(&mut w);
        w.finish()
    }

    /// `context ‖ invitation id ‖ joiner`.
    fn proof_message(&self, joiner: &[u8; 32]) -> Vec<u8> {
        let mut w = Writer::unversioned();
        w.id(&self.context).hash(&self.id()).raw(joiner);
        w.finish()
    }
}

/// An invitation plus its link secret: what is pasted or shared as a link. Whoever holds it can
/// open the key material and prove it was invited; `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteLink {
    /// The signed invitation.
    pub invitation: Invitation,
    /// The link secret: the invite key pair and the key that seals the key material derive from
    /// it.
    pub secret: [u8; 32],
}

impl InviteLink {
    /// `tabmesh-invite:` + base64url (no padding) of the versioned encoding of
    /// `invitation ‖ secret`.
    pub fn to_link(&self) -> String {
        let mut w = Writer::new();
        self.invitation.encode(&mut w);
        w.raw(&self.secret);
        let mut link = String::from(INVITE_PREFIX);
        URL_SAFE_NO_PAD.encode_string(w.finish(), &mut link);
        link
    }

    /// Parses a link and checks it: the invitation's bounds and signature, and that the secret is
    /// the one the invitation was made with. Also accepts the text embedded anywhere after a `#` in
    /// a URL (e.g. `https://host/app#tabmesh-invite:...`; there the link ends at the first
    /// character outside the base64url alphabet). Surrounding whitespace is ignored.
    ///
    /// Errors: [`AuthError::BadLink`] for a missing prefix, bad base64 or a secret that does not
    /// match; [`AuthError::TooLarge`] for text longer than any valid link; [`AuthError::Codec`] for
    /// bytes that do not decode (truncated, trailing bytes, unknown version or role, a bound);
    /// [`Invitation::verify`]'s errors for a bad signature or key.
    pub fn parse(link: &str) -> Result<InviteLink, AuthError> {
        let text = link.trim();
        let payload = if let Some(rest) = text.strip_prefix(INVITE_PREFIX) {
            rest
        } else if let Some((_, fragment)) = text.split_once('#') {
            let rest = fragment
                .find(INVITE_PREFIX)
                .and_then(|at| fragment.get(at..))
                .and_then(|s| s.strip_prefix(INVITE_PREFIX))
                .ok_or(AuthError::BadLink(
                    "no tabmesh-invite: text after the # of the URL",
                ))?;
            rest.split(|c: char| !is_base64url(c))
                .next()
                .unwrap_or_default()
        } else {
            return Err(AuthError::BadLink(
                "not a tabmesh invite link (it must start with tabmesh-invite:)",
            ));
        };
        check_len("invite link", payload.len(), MAX_LINK_PAYLOAD)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::BadLink("the invite link is not valid base64url"))?;
        let mut r = Reader::new(&bytes)?;
        let invitation = Invitation::decode(&mut r)?;
        let secret = r.array()?;
        r.finish()?;
        invitation.verify()?;
        if invite_keypair(&secret).public() != invitation.invite_key {
            return Err(AuthError::BadLink(
                "the link secret does not match the invitation",
            ));
        }
        Ok(InviteLink { invitation, secret })
    }

    /// The sealed key material, opened with the secret. [`AuthError::Decrypt`] if the secret or
    /// the invitation's fields do not match what it was sealed with.
    pub fn open_keys(&self) -> Result<Vec<u8>, AuthError> {
        let inv = &self.invitation;
        open(
            &seal_key(&self.secret),
            &inv.keys_nonce,
            &inv.keys_aad(),
            &inv.keys,
        )
    }

    /// A proof of possession of the link secret for joiner key `joiner`: the invite key pair's
    /// signature over `context ‖ invitation id ‖ joiner` (domain `"tabmesh/invite-proof/v1"`).
    /// Checked by [`Invitation::check_proof`]; it is bound to this joiner and this invitation.
    pub fn prove(&self, joiner: &[u8; 32]) -> Signature {
        invite_keypair(&self.secret)
            .sign(INVITE_PROOF_DOMAIN, &self.invitation.proof_message(joiner))
    }
}

impl fmt::Debug for InviteLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviteLink")
            .field("invitation", &self.invitation)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The invite key pair of a link secret.
fn invite_keypair(secret: &[u8; 32]) -> Keypair {
    Keypair::from_secret(hash_parts(INVITE_KEY_DOMAIN, &[secret]).0)
}

/// The key that seals an invitation's key material.
fn seal_key(secret: &[u8; 32]) -> SymKey {
    SymKey::from_bytes(hash_parts(INVITE_SEAL_DOMAIN, &[secret]).0)
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), AuthError> {
    if len > max {
        return Err(AuthError::TooLarge { what, len, max });
    }
    Ok(())
}

fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}
