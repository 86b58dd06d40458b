//! The node's side of an app call: a [`Host`] over a state transaction and the call's blobs.

use tabmesh_base::{ContextId, DeltaId, DetRng, Hasher, Hlc, MemberId};
use tabmesh_runtime::abi::{BlobOp, Op, OpError, OpErrorKind, Page, StorageOp, Value};
use tabmesh_runtime::Host;
use tabmesh_state::{MapMut, StateError, Txn};

use crate::blob::CallBlobs;

/// Domain tag of the seed of a call's random bytes.
const RANDOM_DOMAIN: &[u8] = b"tabmesh/node/call-random/v1";

/// The seed of a call's generator: `H(domain ‖ context ‖ parents ‖ hlc)`, so a re-run of the same
/// call on the same heads at the same stamp draws the same bytes.
pub(crate) fn call_seed(context: &ContextId, parents: &[DeltaId], hlc: Hlc) -> u64 {
    let mut h = Hasher::new(RANDOM_DOMAIN);
    h.fixed(context.as_bytes());
    h.fixed(&(parents.len() as u64).to_le_bytes());
    for p in parents {
        h.fixed(p.as_bytes());
    }
    h.fixed(&hlc.wall_ms.to_le_bytes())
        .fixed(&hlc.logical.to_le_bytes());
    let hash = h.finish();
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(seed)
}

/// One call's host: storage operations go into `txn` (committed by the caller only when the call
/// succeeds), blob operations to `blobs` (whose blobs the caller keeps only when the call
/// succeeds), time is the call's `now`, random bytes come from a generator seeded per call.
pub(crate) struct TxnHost<'a, 's, 'n> {
    pub(crate) txn: &'a mut Txn<'s>,
    pub(crate) blobs: &'a mut CallBlobs<'n>,
    pub(crate) context: ContextId,
    pub(crate) executor: MemberId,
    pub(crate) now_ms: u64,
    pub(crate) rng: DetRng,
}

impl Host for TxnHost<'_, '_, '_> {
    fn context_id(&self) -> ContextId {
        self.context
    }

    fn executor_id(&self) -> MemberId {
        self.executor
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn random_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn storage(&mut self, op: &StorageOp<'_>) -> Result<Value, OpError> {
        storage(self.txn, op).map_err(|e| match e {
            Refused::State(e) => op_error(&e),
            Refused::Op(e) => e,
        })
    }

    fn blob(&mut self, op: &BlobOp<'_>) -> Result<Value, OpError> {
        self.blobs.op(op)
    }
}

enum Refused {
    State(StateError),
    Op(OpError),
}

impl From<StateError> for Refused {
    fn from(e: StateError) -> Self {
        Refused::State(e)
    }
}

/// A state error as the ABI's error kinds.
fn op_error(e: &StateError) -> OpError {
    let kind = match e {
        StateError::KindMismatch { .. } | StateError::InvalidChild { .. } => OpErrorKind::WrongType,
        StateError::TooLarge { .. } | StateError::CounterOverflow { .. } => OpErrorKind::TooLarge,
        StateError::TooDeep { .. } => OpErrorKind::TooDeep,
        StateError::IndexOutOfRange { .. } => OpErrorKind::OutOfRange,
        StateError::Codec(_) => OpErrorKind::Invalid,
        _ => OpErrorKind::Other,
    };
    OpError::new(kind, e.to_string())
}

/// Runs `f` on the map reached from `map` through `keys` (each a nested map entry).
fn in_map<'s, R>(
    map: &mut MapMut<'_, 's>,
    keys: &[&[u8]],
    f: impl FnOnce(&mut MapMut<'_, 's>) -> Result<R, Refused>,
) -> Result<R, Refused> {
    match keys.split_first() {
        None => f(map),
        Some((k, rest)) => in_map(&mut map.map(k)?, rest, f),
    }
}

/// Runs `$body` with `$h` bound to the operation's target handle of kind `$kind` (the field
/// itself for an empty path, else the last key's entry in the map the other keys reach).
macro_rules! target {
    ($txn:expr, $op:expr, $kind:ident, |$h:ident| $body:expr) => {{
        match $op.path.split_last() {
            None => {
                #[allow(unused_mut)]
                let mut $h = $txn.$kind($op.field)?;
                $body
            }
            Some((last, parents)) => {
                let mut root = $txn.map($op.field)?;
                in_map(&mut root, parents, |m| {
                    #[allow(unused_mut)]
                    let mut $h = m.$kind(last)?;
                    $body
                })
            }
        }
    }};
}

fn u64_of(n: usize) -> Value {
    Value::U64(u64::try_from(n).unwrap_or(u64::MAX))
}

fn page<'a, T: 'a>(items: impl Iterator<Item = T> + 'a, p: Page) -> impl Iterator<Item = T> + 'a {
    items.skip(p.offset as usize).take(p.limit as usize)
}

fn index(i: u32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// One storage operation against the call's transaction.
fn storage(txn: &mut Txn<'_>, op: &StorageOp<'_>) -> Result<Value, Refused> {
    match op.op {
        Op::RegisterGet => target!(txn, op, register, |h| Ok(h
            .view()
            .get()
            .map_or(Value::Absent, |v| Value::Bytes(v.to_vec())))),
        Op::RegisterSet { value } => target!(txn, op, register, |h| {
            h.set(value)?;
            Ok(Value::Unit)
        }),
        Op::RegisterClear => target!(txn, op, register, |h| Ok(Value::Bool(h.clear()?))),
        Op::CounterGet => target!(txn, op, counter, |h| Ok(Value::U128(h.view().value()))),
        Op::CounterIncrement { by } => target!(txn, op, counter, |h| {
            h.increment(by)?;
            Ok(Value::Unit)
        }),
        Op::PnCounterGet => target!(txn, op, pn_counter, |h| Ok(Value::I128(h.view().value()))),
        Op::PnCounterAdd { delta } => target!(txn, op, pn_counter, |h| {
            h.add(delta)?;
            Ok(Value::Unit)
        }),
        Op::MapGet { key } => target!(txn, op, map, |h| Ok(h
            .view()
            .get(key)
            .map_or(Value::Absent, |v| Value::Bytes(v.to_vec())))),
        Op::MapInsert { key, value } => target!(txn, op, map, |h| {
            h.insert(key, value)?;
            Ok(Value::Unit)
        }),
        Op::MapDelete { key } => target!(txn, op, map, |h| Ok(Value::Bool(h.delete(key)?))),
        Op::MapContains { key } => {
            target!(txn, op, map, |h| Ok(Value::Bool(
                h.view().contains_key(key)
            )))
        }
        Op::MapLen => target!(txn, op, map, |h| Ok(u64_of(h.view().len()))),
        Op::MapKeys(p) => target!(txn, op, map, |h| {
            let view = h.view();
            Ok(Value::List(
                page(view.keys(), p).map(<[u8]>::to_vec).collect(),
            ))
        }),
        Op::SetAdd { member } => target!(txn, op, set, |h| {
            h.add(member)?;
            Ok(Value::Unit)
        }),
        Op::SetRemove { member } => target!(txn, op, set, |h| Ok(Value::Bool(h.remove(member)?))),
        Op::SetContains { member } => {
            target!(txn, op, set, |h| Ok(Value::Bool(h.view().contains(member))))
        }
        Op::SetLen => target!(txn, op, set, |h| Ok(u64_of(h.view().len()))),
        Op::SetMembers(p) => target!(txn, op, set, |h| {
            let view = h.view();
            Ok(Value::List(
                page(view.iter(), p).map(<[u8]>::to_vec).collect(),
            ))
        }),
        Op::ListGet { index: i } => target!(txn, op, list, |h| Ok(h
            .view()
            .get(index(i))
            .map_or(Value::Absent, |v| Value::Bytes(v.to_vec())))),
        Op::ListLen => target!(txn, op, list, |h| Ok(u64_of(h.view().len()))),
        Op::ListInsert { index: i, value } => target!(txn, op, list, |h| {
            h.insert(index(i), value)?;
            Ok(Value::Unit)
        }),
        Op::ListPush { value } => target!(txn, op, list, |h| {
            h.push(value)?;
            Ok(Value::Unit)
        }),
        Op::ListSet { index: i, value } => target!(txn, op, list, |h| {
            h.set(index(i), value)?;
            Ok(Value::Unit)
        }),
        Op::ListRemove { index: i } => target!(txn, op, list, |h| {
            h.remove(index(i))?;
            Ok(Value::Unit)
        }),
        Op::ListItems(p) => target!(txn, op, list, |h| {
            let view = h.view();
            Ok(Value::List(
                page(view.iter(), p).map(<[u8]>::to_vec).collect(),
            ))
        }),
        Op::TextRead(p) => target!(txn, op, text, |h| {
            let view = h.view();
            Ok(Value::Text(page(view.chars(), p).collect()))
        }),
        Op::TextLen => target!(txn, op, text, |h| Ok(u64_of(h.view().len()))),
        Op::TextInsert { pos, text } => target!(txn, op, text, |h| {
            h.insert(index(pos), text)?;
            Ok(Value::Unit)
        }),
        Op::TextPush { text } => target!(txn, op, text, |h| {
            h.push_str(text)?;
            Ok(Value::Unit)
        }),
        Op::TextDelete { pos, len } => target!(txn, op, text, |h| {
            h.delete(index(pos), index(len))?;
            Ok(Value::Unit)
        }),
        _ => Err(Refused::Op(OpError::unsupported("this storage operation"))),
    }
}
