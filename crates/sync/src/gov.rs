//! Context governance on the wire: the signed operations that found a context, admit and remove
//! members, rotate its key and change its app, the key boxes that deliver epoch keys, and the
//! rules every replica applies to them (the rules themselves live in the private `governance` module).
//!
//! # The model
//!
//! A context's id binds its creator: `context = H("tabmesh/context/v1" ‖ creator ‖ salt ‖ app)`
//! ([`context_id`]), so nobody can forge another genesis for it. Membership is a function of the
//! governance operations ([`GovOp`]) in a delta's **causal past**: the operations replicate inside
//! ordinary deltas (encrypted like any payload) and every replica evaluates the same past the same
//! way, whatever the arrival order.
//!
//! - [`GovOp::Create`] (the genesis, no parents) admits its founders with their roles.
//! - [`GovOp::Join`] is written by the joiner itself: it carries an [`Invitation`] signed by an
//!   admin and a proof that the joiner holds the link secret. It is valid if the inviter is an
//!   admin at the join's causal position and the join's HLC is not past the invitation's expiry.
//! - [`GovOp::Remove`] (an admin, or a member removing itself) and [`GovOp::Rotate`] (an admin)
//!   introduce a new key epoch; [`GovOp::ChangeApp`] (an admin) names a new app module.
//!
//! **Removal rule.** A removal cites its author's heads. The removed member's deltas (and joins on
//! its invitations) that are ancestors of the removal stand; every other one is **void**: it
//! stays in the DAG (honest members may have cited it) but its payload is never applied — on every
//! replica, in any arrival order: a replica that applied such a delta before the removal arrived
//! rebuilds its state without it. Citing old parents does not help a removed member: what counts
//! is whether its delta is an ancestor of the removal, and a delta written after it never is.
//! Concurrent cases, settled explicitly: a removal is judged by its causal past alone (two admins
//! removing each other concurrently both leave); a member admitted by a void join is not a member;
//! a removed member key never comes back (rejoin with a new key).
//!
//! **Keys.** Payloads are sealed with the key of the epoch current at the delta's causal position:
//! the key introduced by the maximal key operations (create, remove, rotate) of that past, several
//! concurrent ones combined ([`epoch_id`]), so two admins rotating across a partition agree on one
//! epoch once it heals. Keys travel in [`KeyBox`]es, sealed to each member's key, in the envelope
//! itself, so a member can open them before it can decrypt anything.

use tabmesh_auth::{Invitation, Role, SealedBox, Signature, SymKey};
use tabmesh_base::{
    codec::{Reader, Writer},
    hash_parts, CodecError, ContextId, DeltaId, Hash, MemberId,
};

pub(crate) mod governance;

/// The most founders a context's genesis admits.
pub const MAX_FOUNDERS: usize = 256;

/// The most key boxes one delta carries (one per member when a key rotates): a context has at
/// most this many members that can all read the newest epoch.
pub const MAX_KEY_BOXES: usize = 1024;

/// The most keys one key box (or an invitation's key material) carries.
pub const MAX_BOX_KEYS: usize = 64;

/// The most heads an invitation names.
pub const MAX_INVITE_HEADS: usize = 64;

/// The most epochs combined into one (concurrent key operations at one causal position).
pub const MAX_EPOCH_PARTS: usize = 16;

/// What a founder of a context is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Founder {
    /// Its member key.
    pub member: MemberId,
    /// Its role.
    pub role: Role,
}

/// A signed governance operation, carried in a delta's encrypted payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GovOp {
    /// The genesis: the context's creation. The author is an admin founder; the context id must be
    /// [`context_id`] of the author, `salt` and `app`.
    Create {
        /// The random salt of the context id.
        salt: [u8; 32],
        /// The app module's hash.
        app: Hash,
        /// Who is admitted with it (the author among them, as an admin).
        founders: Vec<Founder>,
    },
    /// The author joins with an invitation.
    Join {
        /// The inviter's signed invitation (its link secret is not in it).
        invitation: Box<Invitation>,
        /// The joiner's proof of holding the link secret.
        proof: Signature,
        /// Ids of the epoch keys the joiner already holds (from the invitation).
        keys: Vec<Hash>,
    },
    /// Removes `member` and introduces a new key epoch it does not get.
    Remove {
        /// Who leaves.
        member: MemberId,
    },
    /// Introduces a new key epoch.
    Rotate,
    /// Names a new app module (data migration is out of scope: the node reports it).
    ChangeApp {
        /// The new module's hash.
        app: Hash,
    },
}

impl GovOp {
    /// Whether it introduces a key epoch (its delta is sealed with the new key, delivered in the
    /// delta's key boxes).
    pub fn introduces_key(&self) -> bool {
        matches!(
            self,
            GovOp::Create { .. } | GovOp::Remove { .. } | GovOp::Rotate
        )
    }

    /// A short name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            GovOp::Create { .. } => "create",
            GovOp::Join { .. } => "join",
            GovOp::Remove { .. } => "remove",
            GovOp::Rotate => "rotate",
            GovOp::ChangeApp { .. } => "change-app",
        }
    }

    /// Appends the encoding: a tag, then the variant's fields.
    pub fn encode(&self, w: &mut Writer) {
        match self {
            GovOp::Create {
                salt,
                app,
                founders,
            } => {
                w.u8(1).raw(salt).hash(app).len(founders.len());
                for f in founders {
                    w.id(&f.member).u8(f.role.to_u8());
                }
            }
            GovOp::Join {
                invitation,
                proof,
                keys,
            } => {
                w.u8(2);
                invitation.encode(w);
                w.raw(&proof.0).len(keys.len());
                for k in keys {
                    w.hash(k);
                }
            }
            GovOp::Remove { member } => {
                w.u8(3).id(member);
            }
            GovOp::Rotate => {
                w.u8(4);
            }
            GovOp::ChangeApp { app } => {
                w.u8(5).hash(app);
            }
        }
    }

    /// Reads one operation, enforcing [`MAX_FOUNDERS`] and [`MAX_BOX_KEYS`].
    pub fn decode(r: &mut Reader<'_>) -> Result<GovOp, CodecError> {
        Ok(match r.u8()? {
            1 => {
                let salt = r.array()?;
                let app = r.hash()?;
                let n = r.count("founders", MAX_FOUNDERS, 33)?;
                let mut founders = Vec::with_capacity(n);
                for _ in 0..n {
                    let member = r.id()?;
                    founders.push(Founder {
                        member,
                        role: role(r)?,
                    });
                }
                GovOp::Create {
                    salt,
                    app,
                    founders,
                }
            }
            2 => {
                let invitation = Invitation::decode(r)?;
                let proof = Signature(r.array()?);
                let n = r.count("join keys", MAX_BOX_KEYS, 32)?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(r.hash()?);
                }
                GovOp::Join {
                    invitation: Box::new(invitation),
                    proof,
                    keys,
                }
            }
            3 => GovOp::Remove { member: r.id()? },
            4 => GovOp::Rotate,
            5 => GovOp::ChangeApp { app: r.hash()? },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "governance operation",
                    tag,
                })
            }
        })
    }
}

/// Epoch keys sealed to one member, in a delta's envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBox {
    /// The recipient's member key.
    pub to: MemberId,
    /// The ids of the keys inside (public: they tell every member who holds which key; the
    /// recipient ignores a box whose keys do not match them).
    pub ids: Vec<Hash>,
    /// The keys ([`encode_keys`]), sealed to `to` with the context id as associated data.
    pub sealed: SealedBox,
}

impl KeyBox {
    /// Seals `keys` to `to`.
    pub fn seal(
        context: &ContextId,
        to: MemberId,
        keys: &[SymKey],
        entropy: &mut tabmesh_auth::Entropy,
    ) -> Result<KeyBox, tabmesh_auth::AuthError> {
        let sealed = tabmesh_auth::seal_to(
            to.as_bytes(),
            context.as_bytes(),
            &encode_keys(keys),
            entropy,
        )?;
        let ids = keys.iter().map(SymKey::id).collect();
        Ok(KeyBox { to, ids, sealed })
    }

    /// Opens the box with the recipient's key pair.
    pub fn open(
        &self,
        context: &ContextId,
        me: &tabmesh_auth::Keypair,
    ) -> Result<Vec<SymKey>, tabmesh_auth::AuthError> {
        let plain = tabmesh_auth::open_sealed(me, context.as_bytes(), &self.sealed)?;
        let keys = decode_keys(&plain)?;
        if !keys.iter().map(SymKey::id).eq(self.ids.iter().copied()) {
            return Err(tabmesh_auth::AuthError::Decrypt);
        }
        Ok(keys)
    }

    /// Appends the encoding.
    pub fn encode(&self, w: &mut Writer) {
        w.id(&self.to).len(self.ids.len());
        for id in &self.ids {
            w.hash(id);
        }
        self.sealed.encode(w);
    }

    /// Reads one box.
    pub fn decode(r: &mut Reader<'_>) -> Result<KeyBox, CodecError> {
        let to = r.id()?;
        let n = r.count("key box ids", MAX_BOX_KEYS, 32)?;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(r.hash()?);
        }
        Ok(KeyBox {
            to,
            ids,
            sealed: SealedBox::decode(r)?,
        })
    }
}

/// The key material an invitation seals with its link secret: the epoch keys the inviter holds
/// (at most [`MAX_BOX_KEYS`], newest last) and its heads when it invited (at most
/// [`MAX_INVITE_HEADS`]); the joiner writes its join once it has applied them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyMaterial {
    /// Epoch keys.
    pub keys: Vec<SymKey>,
    /// The inviter's heads.
    pub heads: Vec<DeltaId>,
}

impl KeyMaterial {
    /// `VERSION ‖ keys (as [`encode_keys`] body) ‖ heads`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        write_keys(&mut w, &self.keys);
        w.len(self.heads.len());
        for h in &self.heads {
            w.id(h);
        }
        w.finish()
    }

    /// Decodes [`KeyMaterial::encode`], enforcing the bounds.
    pub fn decode(bytes: &[u8]) -> Result<KeyMaterial, CodecError> {
        let mut r = Reader::new(bytes)?;
        let keys = read_keys(&mut r)?;
        let n = r.count("invitation heads", MAX_INVITE_HEADS, 32)?;
        let mut heads = Vec::with_capacity(n);
        for _ in 0..n {
            heads.push(r.id()?);
        }
        r.finish()?;
        Ok(KeyMaterial { keys, heads })
    }
}

/// A list of keys: `VERSION ‖ u32 count ‖ 32 bytes each` (at most [`MAX_BOX_KEYS`]).
pub fn encode_keys(keys: &[SymKey]) -> Vec<u8> {
    let mut w = Writer::new();
    write_keys(&mut w, keys);
    w.finish()
}

/// Decodes [`encode_keys`].
pub fn decode_keys(bytes: &[u8]) -> Result<Vec<SymKey>, CodecError> {
    let mut r = Reader::new(bytes)?;
    let keys = read_keys(&mut r)?;
    r.finish()?;
    Ok(keys)
}

fn write_keys(w: &mut Writer, keys: &[SymKey]) {
    let keys = &keys[keys.len().saturating_sub(MAX_BOX_KEYS)..];
    w.len(keys.len());
    for k in keys {
        w.raw(&k.to_bytes());
    }
}

fn read_keys(r: &mut Reader<'_>) -> Result<Vec<SymKey>, CodecError> {
    let n = r.count("keys", MAX_BOX_KEYS, 32)?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(SymKey::from_bytes(r.array()?));
    }
    Ok(keys)
}

fn role(r: &mut Reader<'_>) -> Result<Role, CodecError> {
    let tag = r.u8()?;
    Role::from_u8(tag).ok_or(CodecError::InvalidTag { what: "role", tag })
}

/// The id of the context `creator` founds with `salt` for app `app`.
pub fn context_id(creator: &MemberId, salt: &[u8; 32], app: &Hash) -> ContextId {
    ContextId(
        hash_parts(
            b"tabmesh/context/v1",
            &[creator.as_bytes(), salt, app.as_bytes()],
        )
        .0,
    )
}

/// The id of the epoch made of key ids `parts` (the keys of the maximal key operations at a causal
/// position): the part itself when there is one, else a hash of the sorted parts. Public: it names
/// the key, it does not reveal it.
pub fn epoch_id(parts: &[Hash]) -> Hash {
    match parts {
        [one] => *one,
        _ => {
            let mut sorted = parts.to_vec();
            sorted.sort_unstable();
            let bytes: Vec<&[u8]> = sorted.iter().map(|h| h.as_bytes().as_slice()).collect();
            hash_parts(b"tabmesh/epoch/v1", &bytes)
        }
    }
}

/// The key of the epoch made of `keys` (see [`epoch_id`]).
pub fn epoch_key(keys: &[SymKey]) -> SymKey {
    match keys {
        [one] => one.clone(),
        _ => SymKey::combine(keys),
    }
}
