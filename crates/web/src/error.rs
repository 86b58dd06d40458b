//! Errors as JS `Error`s with a stable `code` (the facade's `TabmeshError`).

use js_sys::Reflect;
use tabmesh_net::NetError;
use tabmesh_node::NodeError;
use tabmesh_storage::StoreError;
use wasm_bindgen::JsValue;

/// A JS `Error` named `TabmeshError` with `code` and `message`.
pub(crate) fn js_error(code: &str, message: impl std::fmt::Display) -> JsValue {
    let e = js_sys::Error::new(&message.to_string());
    e.set_name("TabmeshError");
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(&e, &"code".into(), &code.into());
    e.into()
}

/// The code of a node error (documented in the crate's error table).
pub(crate) fn node_code(e: &NodeError) -> &'static str {
    match e {
        NodeError::UnknownContext(_) => "UNKNOWN_CONTEXT",
        NodeError::TooManyContexts { .. } => "TOO_MANY_CONTEXTS",
        NodeError::ContextExists(_) => "CONTEXT_EXISTS",
        NodeError::NoApp(_) | NodeError::MissingModule(_) => "NO_APP",
        NodeError::AppMismatch { .. } => "APP_MISMATCH",
        NodeError::Runtime(_) | NodeError::HopLimit { .. } => "APP_ERROR",
        NodeError::Invitation(_) => "INVALID_INVITATION",
        NodeError::InvitationExpired { .. } => "INVITATION_EXPIRED",
        NodeError::Sync(_) => "REFUSED",
        NodeError::MigrationUnsupported { .. } => "UNSUPPORTED",
        _ => "NODE",
    }
}

/// The code of a store error.
pub(crate) fn store_code(e: &StoreError) -> &'static str {
    match e {
        StoreError::QuotaExceeded => "QUOTA_EXCEEDED",
        StoreError::NewerVersion { .. } => "NEWER_VERSION",
        StoreError::Blocked { .. } => "STORAGE_BLOCKED",
        _ => "STORAGE",
    }
}

/// The code of a network-shell error.
pub(crate) fn net_code(e: &NetError) -> &'static str {
    match e {
        NetError::Stopped => "STOPPED",
        NetError::BadRelay { .. } => "INVALID_ARGUMENT",
        NetError::Store(e) | NetError::NotDurable(e) | NetError::BlobStore(e) => store_code(e),
        NetError::UnknownBlob(_) => "UNKNOWN_BLOB",
        NetError::Blob(_) => "BLOB_INVALID",
        NetError::BlobUnavailable(_) => "BLOB_UNAVAILABLE",
        NetError::BlobFetch(_) | NetError::BlobFailed(_) => "BLOB_FAILED",
        NetError::BlobBusy { .. } => "BUSY",
        NetError::UnknownUpload(_) => "INVALID_ARGUMENT",
        NetError::UnknownContext(_) => "UNKNOWN_CONTEXT",
        NetError::Load(e) => match e {
            NodeError::Open(_) | NodeError::Codec(_) | NodeError::CorruptIndex => "STORAGE",
            other => node_code(other),
        },
        _ => "NETWORK",
    }
}

pub(crate) fn from_node(e: NodeError) -> JsValue {
    js_error(node_code(&e), e)
}

pub(crate) fn from_net(e: NetError) -> JsValue {
    js_error(net_code(&e), e)
}

pub(crate) fn from_store(e: StoreError) -> JsValue {
    js_error(store_code(&e), e)
}

pub(crate) fn invalid(message: impl std::fmt::Display) -> JsValue {
    js_error("INVALID_ARGUMENT", message)
}
