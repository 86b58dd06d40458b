//! Fuzz bodies for what the shells decode: the network protocol's requests and responses
//! ([`net_request`], [`net_response`]), gossip messages and their validation ([`gossip`]), the
//! driver's blob records ([`blob_record`]), blob references found in state bytes ([`blob_refs`]),
//! and a node loaded from an arbitrary store ([`node_load`]: what IndexedDB or a directory holds,
//! written by any version or damaged).

use std::collections::BTreeSet;

use tabmesh_auth::Keypair;
use tabmesh_base::ContextId;
use tabmesh_node::{NodeConfig, NodeCore, Seed};

use crate::codecs::{decodes, refused};
use crate::fixture::T0;
use crate::kv::kv_from_bytes;

/// The context whose topic [`gossip`] validates against.
pub(crate) const GOSSIP_CONTEXT: ContextId = ContextId([3; 32]);

/// `tabmesh_net::proto::Request::decode` (bounded: a wire frame, a module request, a blob
/// request), and its round trip.
pub fn net_request(data: &[u8]) {
    use tabmesh_net::proto::Request;
    decodes("Request", data, Request::decode, Request::encode);
}

/// `tabmesh_net::proto::Response::decode` (bounded per kind), and its round trip.
pub fn net_response(data: &[u8]) {
    use tabmesh_net::proto::Response;
    decodes("Response", data, Response::decode, Response::encode);
}

/// `tabmesh_net::GossipMsg::decode` and its round trip; `gossip::validate` on the topic of
/// [`GOSSIP_CONTEXT`] (what every peer and the relay run on a message before forwarding it)
/// never panics, and accepts only what decodes and names that context.
pub fn gossip(data: &[u8]) {
    use tabmesh_net::{gossip, topic, GossipMsg};
    decodes("GossipMsg", data, GossipMsg::decode, GossipMsg::encode);
    match gossip::validate(&topic(&GOSSIP_CONTEXT).hash(), data) {
        Ok(valid) => {
            assert_eq!(valid.context, GOSSIP_CONTEXT, "validated for another topic");
            assert!(
                GossipMsg::decode(data).is_ok(),
                "validated but does not decode"
            );
        }
        Err(e) => refused(&e),
    }
}

/// `tabmesh_net::record::Record::decode` (the driver's per-blob record, read back from a blob
/// store), and its round trip.
pub fn blob_record(data: &[u8]) {
    use tabmesh_net::record::Record;
    decodes("Record", data, Record::decode, Record::encode);
}

/// `tabmesh_blobs::find_refs` over any bytes (it scans state written by peers): every id it finds
/// is really written in the bytes as a reference, and `parse_ref` accepts exactly one
/// reference's text.
pub fn blob_refs(data: &[u8]) {
    use tabmesh_blobs::{find_refs, parse_ref, ref_text};
    let mut found = BTreeSet::new();
    let complete = find_refs(data, &mut found);
    assert!(complete, "a few KiB cannot name more ids than the bound");
    for id in &found {
        let text = ref_text(id);
        assert!(
            data.windows(text.len()).any(|w| w == text.as_bytes()),
            "found {id}, which the bytes do not name"
        );
    }
    if let Some(id) = parse_ref(data) {
        assert_eq!(
            data,
            ref_text(&id).as_bytes(),
            "parse_ref took more than one reference"
        );
        assert!(found.contains(&id));
    }
}

/// `tabmesh_node::NodeCore::load` from a store read from the bytes (any key, any value: records
/// of an older or newer build, damage): a typed error, or a node that then runs (its timers fire,
/// a context of its can be written to) without panicking.
pub fn node_load(data: &[u8]) {
    let kv = kv_from_bytes(b"", data);
    let key = NodeCore::stored_node_key(&kv).unwrap_or_else(|| Keypair::from_secret([5; 32]));
    match NodeCore::load(key, NodeConfig::default(), Seed::from_u64(9), T0, &kv) {
        Ok(mut node) => {
            while node.poll_output().is_some() {}
            let contexts: Vec<ContextId> = node.contexts().collect();
            for context in contexts {
                node.handle_timer(T0 + 60_000, tabmesh_node::TimerKey::Context(context));
                let _ = node.commit(T0 + 60_001, context, |txn| {
                    txn.map("fuzz")?.insert(b"k", b"v")?;
                    Ok(())
                });
                while node.poll_output().is_some() {}
            }
        }
        Err(e) => refused(&e),
    }
}
