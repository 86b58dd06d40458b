//! Conversions between the node's types and JS values.

use js_sys::{Array, Object, Reflect, Uint8Array, JSON};
use serde_json::{json, Value};
use tabmesh_base::ContextId;
use tabmesh_node::ExecOutcome;
use tabmesh_peer::control::{hex, parse_context};
use tabmesh_storage::StoreError;
use wasm_bindgen::JsValue;

use crate::error::invalid;

/// A context id from its hex form.
pub(crate) fn context_id(hex: &str) -> Result<ContextId, JsValue> {
    parse_context(hex)
        .ok_or_else(|| invalid(format!("{hex:?} is not a context id (64 hex digits)")))
}

/// A JSON value as a plain JS value.
pub(crate) fn to_js(value: &Value) -> JsValue {
    // serde_json's output is always valid JSON.
    JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

fn set(object: &JsValue, key: &str, value: &JsValue) {
    // Setting a property of a plain object cannot fail.
    let _ = Reflect::set(object, &key.into(), value);
}

fn bytes(data: &[u8]) -> JsValue {
    Uint8Array::from(data).into()
}

/// An `execute` result (see `WebNode::execute`).
pub(crate) fn outcome(out: ExecOutcome, root: Option<String>) -> Result<JsValue, JsValue> {
    let result = to_js(&json!({
        "delta": out.delta.map(|d| hex(&d.0)),
        "root": root,
        "logs": out.logs,
    }));
    let ret = out.return_value.as_deref().map_or(JsValue::NULL, bytes);
    set(&result, "ret", &ret);
    let events = Array::new();
    for event in &out.events {
        let e = Object::new();
        set(&e, "kind", &event.kind.as_str().into());
        set(&e, "data", &bytes(&event.data));
        set(
            &e,
            "handler",
            &event
                .handler
                .as_deref()
                .map_or(JsValue::NULL, JsValue::from),
        );
        events.push(&e);
    }
    set(&result, "events", &events);
    Ok(result)
}

/// The file store in `dir` through the JS file-system object `fs` (Node.js).
pub(crate) fn open_file_store(
    fs: JsValue,
    dir: &str,
) -> Result<tabmesh_storage::FileStore<tabmesh_storage::JsDisk>, StoreError> {
    tabmesh_storage::FileStore::open_js(fs, dir, tabmesh_storage::Config::default())
}
