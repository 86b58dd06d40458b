//! Shared fixtures.

use tabmesh_auth::{Entropy, Invitation, InviteLink, Keypair, Role};
use tabmesh_base::{hash_parts, ContextId, Hash};

/// A generator seeded from a small number.
pub(super) fn entropy(n: u8) -> Entropy {
    Entropy::from_seed([n; 32])
}

/// 32 bytes that are not the encoding of any curve point (y = 2 has no x).
pub(super) const NOT_A_POINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 2;
    b
};

/// The encoding of the identity point: a valid point of small order (a weak key).
pub(super) const IDENTITY_POINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

pub(super) fn context() -> ContextId {
    ContextId::from(hash_parts(b"tabmesh/test/context", &[]))
}

pub(super) fn app() -> Hash {
    Hash::of(b"app module")
}

pub(super) const KEY_MATERIAL: &[u8] = b"the context keys";

/// An inviter and a link to the test context, made from seed `n`.
pub(super) fn link(n: u8) -> (Keypair, InviteLink) {
    let mut e = entropy(n);
    let inviter = Keypair::generate(&mut e);
    let link = Invitation::create(
        &inviter,
        context(),
        app(),
        Role::Member,
        1_700_000_000_000,
        "/dns4/relay.example/tcp/443/wss",
        KEY_MATERIAL,
        &mut e,
    )
    .unwrap();
    (inviter, link)
}

/// `inv` re-signed by `by` (after a test changed a field).
pub(super) fn resign(inv: &mut Invitation, by: &Keypair) {
    // The signature is made under the invitation's own domain tag.
    inv.signature = by.sign(b"tabmesh/invitation/v1", &inv.signing_bytes());
}
