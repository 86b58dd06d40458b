//! Node ids and libp2p peer ids: the same ed25519 public key.

use libp2p::identity::{self, PeerId};
use tabmesh_auth::Keypair;
use tabmesh_base::NodeId;

/// The libp2p identity of a node key (same secret, same public key).
pub fn libp2p_keypair(key: &Keypair) -> identity::Keypair {
    // An ed25519 secret is any 32 bytes, so this cannot fail.
    let mut secret = key.secret();
    identity::Keypair::ed25519_from_bytes(&mut secret)
        .unwrap_or_else(|_| unreachable!("any 32 bytes are an ed25519 secret key"))
}

/// The peer id of a node id, or `None` if the bytes are not an ed25519 public key.
pub fn peer_id(node: &NodeId) -> Option<PeerId> {
    let public = identity::ed25519::PublicKey::try_from_bytes(node.as_bytes()).ok()?;
    Some(identity::PublicKey::from(public).to_peer_id())
}

/// The node id of a peer id, or `None` if it does not inline an ed25519 key (every tabmesh
/// node's does; other libp2p peers, such as a relay with another key type, have none).
pub fn node_id(peer: &PeerId) -> Option<NodeId> {
    let multihash = peer.as_ref();
    // Identity multihash (code 0): the digest is the protobuf-encoded public key.
    if multihash.code() != 0 {
        return None;
    }
    let public = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = public.try_into_ed25519().ok()?;
    Some(NodeId(ed.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tabmesh_testkit::test]
    fn node_and_peer_ids_round_trip() {
        let key = Keypair::from_secret([7; 32]);
        let node = NodeId(key.public());
        let peer = peer_id(&node).expect("an ed25519 key");
        assert_eq!(libp2p_keypair(&key).public().to_peer_id(), peer);
        assert_eq!(node_id(&peer), Some(node));
        // A random (sha256-hashed) peer id names no ed25519 key.
        assert_eq!(node_id(&PeerId::random()), None);
    }
}
