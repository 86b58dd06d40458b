//! Due handlers: events of applied remote deltas that name a handler, persisted until it ran.

use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{CodecError, DeltaId, KvRead, MemberId};

use crate::payload::{MAX_EVENT_DATA, MAX_EVENT_KIND, MAX_HANDLER_NAME};
use crate::AppEvent;

/// A handler to run: event `index` of delta `delta` (by `author`, with handler hop `hop`) named
/// a handler and the delta applied here through the DAG.
///
/// Recorded under `<context prefix>h/<delta id><index: u16 BE>` in the same write batch that
/// applies the delta; deleted in the batch of the delta the handler produces
/// ([`Replica::commit_with`](crate::Replica::commit_with) with `completes`) or when the handler
/// is given up ([`Replica::complete_due`](crate::Replica::complete_due)). A restarted replica
/// reloads every record still stored, so a handler runs at least once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueHandler {
    /// The delta that carried the event.
    pub delta: DeltaId,
    /// The event's position in that delta.
    pub index: u16,
    /// Who wrote that delta.
    pub author: MemberId,
    /// That delta's hop (the handler's delta gets `hop + 1`).
    pub hop: u8,
    /// The event (its `handler` is `Some`).
    pub event: AppEvent,
}

impl DueHandler {
    /// The key of its record under `prefix` (the due-record prefix of a context).
    pub(crate) fn key(&self, prefix: &[u8]) -> Vec<u8> {
        due_key(prefix, &self.delta, self.index)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.id(&self.author).u8(self.hop);
        w.bytes(self.event.kind.as_bytes()).bytes(&self.event.data);
        w.bytes(self.event.handler.as_deref().unwrap_or_default().as_bytes());
        w.finish()
    }

    fn decode(key: &[u8], prefix: &[u8], bytes: &[u8]) -> Result<DueHandler, CodecError> {
        let raw = key
            .get(prefix.len()..)
            .ok_or(CodecError::Invalid("due handler key"))?;
        if raw.len() != 34 {
            return Err(CodecError::Invalid("due handler key"));
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&raw[..32]);
        let index = u16::from_be_bytes([raw[32], raw[33]]);
        let mut r = Reader::new(bytes)?;
        let author = r.id()?;
        let hop = r.u8()?;
        let text = |b: &[u8], what| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| CodecError::Invalid(what))
        };
        let kind = text(r.bytes("event kind", MAX_EVENT_KIND)?, "event kind")?;
        let data = r.bytes("event data", MAX_EVENT_DATA)?.to_vec();
        let handler = text(r.bytes("handler name", MAX_HANDLER_NAME)?, "handler name")?;
        r.finish()?;
        if handler.is_empty() {
            return Err(CodecError::Invalid("due handler without a handler"));
        }
        Ok(DueHandler {
            delta: DeltaId(id),
            index,
            author,
            hop,
            event: AppEvent {
                kind,
                data,
                handler: Some(handler),
            },
        })
    }
}

pub(crate) fn due_key(prefix: &[u8], delta: &DeltaId, index: u16) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(delta.as_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Every due record stored under `prefix`, in key order.
pub(crate) fn load(prefix: &[u8], kv: &impl KvRead) -> Result<Vec<DueHandler>, CodecError> {
    kv.scan_prefix(prefix)
        .into_iter()
        .map(|(k, v)| DueHandler::decode(&k, prefix, &v))
        .collect()
}
