//! Whether an input gets past a target's first decoder (so the rest of its body runs on a decoded
//! value): what the tests count, to show how deep the generated inputs reach.

use tabmesh_base::codec::Reader;
use tabmesh_base::CodecError;

use crate::fixture::material;
use crate::kv::{kv_from_bytes, DAG_PREFIX, REPLICA_PREFIX, STATE_PREFIX};

fn nested<T>(data: &[u8], decode: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>) -> bool {
    Reader::new(data).is_ok_and(|mut r| decode(&mut r).is_ok())
}

pub(crate) fn frame(data: &[u8]) -> bool {
    tabmesh_sync::Frame::decode(data).is_ok()
}

pub(crate) fn envelope(data: &[u8]) -> bool {
    nested(data, tabmesh_sync::Envelope::decode)
}

pub(crate) fn delta_payload(data: &[u8]) -> bool {
    tabmesh_sync::DeltaPayload::decode(data).is_ok()
}

pub(crate) fn gov_op(data: &[u8]) -> bool {
    nested(data, tabmesh_sync::GovOp::decode)
}

pub(crate) fn key_material(data: &[u8]) -> bool {
    tabmesh_sync::KeyMaterial::decode(data).is_ok()
}

pub(crate) fn decode_keys(data: &[u8]) -> bool {
    tabmesh_sync::gov::decode_keys(data).is_ok()
}

pub(crate) fn sealed(data: &[u8]) -> bool {
    nested(data, tabmesh_sync::Sealed::decode)
}

pub(crate) fn key_box(data: &[u8]) -> bool {
    nested(data, tabmesh_sync::KeyBox::decode)
}

pub(crate) fn wire(data: &[u8]) -> bool {
    tabmesh_node::Wire::decode(data).is_ok()
}

pub(crate) fn invite_link(data: &[u8]) -> bool {
    tabmesh_auth::InviteLink::parse(&String::from_utf8_lossy(data)).is_ok()
}

pub(crate) fn invitation(data: &[u8]) -> bool {
    nested(data, tabmesh_auth::Invitation::decode)
}

pub(crate) fn sealed_box(data: &[u8]) -> bool {
    nested(data, tabmesh_auth::SealedBox::decode)
}

pub(crate) fn action(data: &[u8]) -> bool {
    tabmesh_state::Action::from_bytes(data).is_ok()
}

pub(crate) fn actions(data: &[u8]) -> bool {
    tabmesh_state::decode_actions(data).is_ok()
}

pub(crate) fn stamp(data: &[u8]) -> bool {
    nested(data, tabmesh_state::Stamp::decode)
}

pub(crate) fn state_open(data: &[u8]) -> bool {
    tabmesh_state::State::open(STATE_PREFIX, &kv_from_bytes(STATE_PREFIX, data)).is_ok()
}

pub(crate) fn dag_restore(data: &[u8]) -> bool {
    let kv = kv_from_bytes(DAG_PREFIX, data);
    let config = crate::dag::FUZZ_DAG;
    tabmesh_dag::Dag::<Vec<u8>>::restore(DAG_PREFIX, &kv, config).is_ok()
        || tabmesh_dag::Dag::<tabmesh_sync::Body>::restore(DAG_PREFIX, &kv, config).is_ok()
}

pub(crate) fn hlc(data: &[u8]) -> bool {
    nested(data, tabmesh_base::Hlc::decode)
}

pub(crate) fn storage_op(data: &[u8]) -> bool {
    tabmesh_abi::StorageOp::decode(data).is_ok()
}

pub(crate) fn blob_op(data: &[u8]) -> bool {
    tabmesh_abi::BlobOp::decode(data).is_ok()
}

pub(crate) fn op_result(data: &[u8]) -> bool {
    tabmesh_abi::decode_result(data).is_ok()
}

pub(crate) fn storage_batch(data: &[u8]) -> bool {
    tabmesh_storage::codec::decode(data).is_ok()
}

pub(crate) fn replica_open(data: &[u8]) -> bool {
    tabmesh_sync::Replica::open(
        material().context,
        REPLICA_PREFIX,
        tabmesh_sync::SyncConfig::default(),
        3,
        crate::fixture::T0,
        &kv_from_bytes(REPLICA_PREFIX, data),
        tabmesh_auth::Entropy::from_seed([9; 32]),
    )
    .is_ok()
}

pub(crate) fn replica_receive(data: &[u8]) -> bool {
    tabmesh_sync::Frame::decode(data).is_ok_and(|f| f.context == material().context)
}

pub(crate) fn node_message(data: &[u8]) -> bool {
    tabmesh_node::Wire::decode(data).is_ok()
}

pub(crate) fn replica_delta(data: &[u8]) -> bool {
    data.split_first()
        .is_some_and(|(_, payload)| tabmesh_sync::DeltaPayload::decode(payload).is_ok())
}

pub(crate) fn replica_session(data: &[u8]) -> bool {
    let context = material().context;
    data.split_first().is_some_and(|(_, rest)| {
        crate::receive::records(rest)
            .any(|r| tabmesh_sync::Frame::decode(r).is_ok_and(|f| f.context == context))
    })
}

pub(crate) fn blob_manifest(data: &[u8]) -> bool {
    tabmesh_blobs::Manifest::decode(data).is_ok()
}

pub(crate) fn blob_request(data: &[u8]) -> bool {
    tabmesh_blobs::BlobRequest::decode(data).is_ok()
}

pub(crate) fn blob_response(data: &[u8]) -> bool {
    tabmesh_blobs::BlobResponse::decode(data).is_ok()
}

pub(crate) fn net_request(data: &[u8]) -> bool {
    tabmesh_net::proto::Request::decode(data).is_ok()
}

pub(crate) fn net_response(data: &[u8]) -> bool {
    tabmesh_net::proto::Response::decode(data).is_ok()
}

pub(crate) fn gossip(data: &[u8]) -> bool {
    tabmesh_net::GossipMsg::decode(data).is_ok()
}

pub(crate) fn blob_record(data: &[u8]) -> bool {
    tabmesh_net::record::Record::decode(data).is_ok()
}
