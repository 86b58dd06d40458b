//! The delta payload: the actions a delta applies, the app events it carries and its handler hop.

use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::CodecError;
use tabmesh_state::{decode_actions, encode_actions, Action, StateError};

use crate::{GovOp, MAX_DELTA_PAYLOAD};

/// The payload format this crate writes (after the codec's version byte). A payload of another
/// format is refused like any malformed payload.
pub const PAYLOAD_FORMAT: u8 = 2;

/// Most events one delta carries (the runtime's per-call bound).
pub const MAX_DELTA_EVENTS: usize = 64;

/// Longest event kind, in bytes.
pub const MAX_EVENT_KIND: usize = 128;

/// Largest data of one event.
pub const MAX_EVENT_DATA: usize = 64 << 10;

/// Longest handler name, in bytes.
pub const MAX_HANDLER_NAME: usize = 128;

/// Longest chain of handlers: a direct call's delta has hop 0, a handler run for an event of a
/// delta with hop `h` writes a delta with hop `h + 1`; an event whose handler would run past this
/// hop is dropped (and reported) instead.
pub const MAX_HOPS: u8 = 8;

/// An event an app emitted, sealed into the delta of the call that emitted it. When it names a
/// handler, every member that applies the delta through its DAG, except its author, runs that
/// handler with `data` as input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppEvent {
    /// What happened (the app's vocabulary, at most [`MAX_EVENT_KIND`] bytes).
    pub kind: String,
    /// Its payload (at most [`MAX_EVENT_DATA`] bytes).
    pub data: Vec<u8>,
    /// The method receivers run for it (at most [`MAX_HANDLER_NAME`] bytes), if any.
    pub handler: Option<String>,
}

/// What one delta carries: `VERSION ‖ PAYLOAD_FORMAT ‖ actions: bytes (encode_actions) ‖ events:
/// u32 count, each kind: bytes ‖ data: bytes ‖ handler: u8 flag [‖ bytes] ‖ hop: u8 ‖
/// governance: u8 flag [‖ GovOp]`.
///
/// Bounds: the whole payload ≤ [`MAX_DELTA_PAYLOAD`], ≤ [`MAX_DELTA_EVENTS`] events, each within
/// [`MAX_EVENT_KIND`], [`MAX_EVENT_DATA`] and [`MAX_HANDLER_NAME`], kinds and handler names UTF-8,
/// the actions within `tabmesh_state`'s bounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeltaPayload {
    /// The state changes.
    pub actions: Vec<Action>,
    /// The app's events, in emission order.
    pub events: Vec<AppEvent>,
    /// Handler hop: 0 for a direct call, one more than its cause for a handler's delta.
    pub hop: u8,
    /// The governance operation the delta carries, if any (see [`crate::gov`]).
    pub gov: Option<GovOp>,
}

impl DeltaPayload {
    /// A payload of plain actions (no events, hop 0).
    pub fn actions(actions: Vec<Action>) -> DeltaPayload {
        DeltaPayload {
            actions,
            events: Vec::new(),
            hop: 0,
            gov: None,
        }
    }

    /// The encoding (see the type's docs). Fails when a bound is exceeded.
    pub fn encode(&self) -> Result<Vec<u8>, StateError> {
        let too_large = |what, len, max| StateError::TooLarge { what, len, max };
        if self.events.len() > MAX_DELTA_EVENTS {
            return Err(too_large("events", self.events.len(), MAX_DELTA_EVENTS));
        }
        let actions = encode_actions(&self.actions)?;
        let mut w = Writer::new();
        w.u8(PAYLOAD_FORMAT).bytes(&actions).len(self.events.len());
        for e in &self.events {
            if e.kind.len() > MAX_EVENT_KIND {
                return Err(too_large("event kind", e.kind.len(), MAX_EVENT_KIND));
            }
            if e.data.len() > MAX_EVENT_DATA {
                return Err(too_large("event data", e.data.len(), MAX_EVENT_DATA));
            }
            w.bytes(e.kind.as_bytes()).bytes(&e.data);
            match &e.handler {
                None => {
                    w.u8(0);
                }
                Some(h) => {
                    if h.is_empty() || h.len() > MAX_HANDLER_NAME {
                        return Err(too_large("handler name", h.len(), MAX_HANDLER_NAME));
                    }
                    w.u8(1).bytes(h.as_bytes());
                }
            }
        }
        w.u8(self.hop);
        match &self.gov {
            None => {
                w.u8(0);
            }
            Some(op) => {
                w.u8(1);
                op.encode(&mut w);
            }
        }
        let bytes = w.finish();
        if bytes.len() > MAX_DELTA_PAYLOAD {
            return Err(too_large("delta payload", bytes.len(), MAX_DELTA_PAYLOAD));
        }
        Ok(bytes)
    }

    /// Decodes [`encode`](DeltaPayload::encode), enforcing every bound.
    pub fn decode(bytes: &[u8]) -> Result<DeltaPayload, StateError> {
        if bytes.len() > MAX_DELTA_PAYLOAD {
            return Err(StateError::TooLarge {
                what: "delta payload",
                len: bytes.len(),
                max: MAX_DELTA_PAYLOAD,
            });
        }
        let mut r = Reader::new(bytes)?;
        let format = r.u8()?;
        if format != PAYLOAD_FORMAT {
            return Err(CodecError::InvalidTag {
                what: "delta payload format",
                tag: format,
            }
            .into());
        }
        let actions = decode_actions(r.bytes("actions", MAX_DELTA_PAYLOAD)?)?;
        // Each event takes at least its two lengths and the handler flag.
        let n = r.count("events", MAX_DELTA_EVENTS, 9)?;
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = utf8(r.bytes("event kind", MAX_EVENT_KIND)?, "event kind")?;
            let data = r.bytes("event data", MAX_EVENT_DATA)?.to_vec();
            let handler = match r.u8()? {
                0 => None,
                1 => {
                    let h = utf8(r.bytes("handler name", MAX_HANDLER_NAME)?, "handler name")?;
                    if h.is_empty() {
                        return Err(CodecError::Invalid("empty handler name").into());
                    }
                    Some(h)
                }
                tag => {
                    return Err(CodecError::InvalidTag {
                        what: "event handler flag",
                        tag,
                    }
                    .into())
                }
            };
            events.push(AppEvent {
                kind,
                data,
                handler,
            });
        }
        let hop = r.u8()?;
        let gov = if r.bool()? {
            Some(GovOp::decode(&mut r)?)
        } else {
            None
        };
        r.finish()?;
        Ok(DeltaPayload {
            actions,
            events,
            hop,
            gov,
        })
    }
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, CodecError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| CodecError::Invalid(what))
}
