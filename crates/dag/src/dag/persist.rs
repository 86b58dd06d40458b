//! Export through write batches and restore from a key-value store.
//!
//! # Layout
//!
//! Every key starts with the caller's prefix, then one tag byte:
//!
//! | key | value (after the codec version byte) |
//! |---|---|
//! | `prefix ‖ "m"` | meta: `next_seq u64`, `next_arrival u64`, `next_pruned u64`, heads (`u32` count, ids) |
//! | `prefix ‖ "a" ‖ id` | applied: `seq u64`, `sole_head bool`, then `0 ‖ delta` or `1 ‖ root` (checkpoint) |
//! | `prefix ‖ "p" ‖ id` | pending: `arrival u64`, `received_ms u64`, delta |
//! | `prefix ‖ "x" ‖ id` | pruned: FIFO number `u64` |
//!
//! A delta is `id`, a kind tag (`0` genesis, `1` regular, `2 ‖ root` checkpoint), parents (`u32`
//! count ≤ [`MAX_PARENTS`](crate::MAX_PARENTS), ids), the 12-byte HLC and the [`Payload`] encoding.
//!
//! Change tracking is state-based: each table remembers which ids changed since the last
//! [`Dag::take_changes`] and whether the id was stored then; the batch puts the current record of
//! every changed id that exists and deletes the stored ones that no longer do. An id added and
//! removed between two batches leaves no trace, so the tracking never outgrows the stored state plus
//! the live state.

use std::collections::BTreeMap;

use tabmesh_base::{
    codec::{Reader, Writer},
    CodecError, DeltaId, KvRead, WriteBatch,
};

use super::{AppliedEntry, Body, Dag, PendingEntry};
use crate::{
    delta::{decode_delta, encode_delta},
    DagConfig, DeltaKind, Payload, RestoreError,
};

const TAG_META: u8 = b'm';
const TAG_APPLIED: u8 = b'a';
const TAG_PENDING: u8 = b'p';
const TAG_PRUNED: u8 = b'x';

const BODY_DELTA: u8 = 0;
const BODY_CHECKPOINT: u8 = 1;

/// Most heads the meta record decodes: bounded by what the record holds (32 bytes each); the count
/// field is a `u32`.
const MAX_STORED_HEADS: usize = u32::MAX as usize;

/// Ids of one table changed since the last batch → whether the id was stored at that batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dirty {
    ids: BTreeMap<DeltaId, bool>,
}

impl Dirty {
    /// `id` entered the table.
    pub(crate) fn inserted(&mut self, id: DeltaId) {
        self.ids.entry(id).or_insert(false);
    }

    /// `id` left the table.
    pub(crate) fn removed(&mut self, id: DeltaId) {
        match self.ids.get(&id) {
            // Added since the last batch, never stored: forget it.
            Some(false) => {
                self.ids.remove(&id);
            }
            Some(true) => {}
            None => {
                self.ids.insert(id, true);
            }
        }
    }

    /// Puts the current record of every changed id that exists (`record`) and deletes the stored
    /// ones that no longer do, under `prefix ‖ tag ‖ id`.
    fn write(
        self,
        batch: &mut WriteBatch,
        prefix: &[u8],
        tag: u8,
        record: impl Fn(&DeltaId) -> Option<Vec<u8>>,
    ) {
        for (id, stored) in self.ids {
            let k = key(prefix, tag, Some(&id));
            match record(&id) {
                Some(value) => batch.put(k, value),
                None if stored => batch.delete(k),
                None => {}
            }
        }
    }
}

/// Everything changed since the last batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Changes {
    pub(crate) applied: Dirty,
    pub(crate) pending: Dirty,
    pub(crate) pruned: Dirty,
    /// Counters or heads changed.
    pub(crate) meta: bool,
}

impl Changes {
    fn is_empty(&self) -> bool {
        !self.meta
            && self.applied.ids.is_empty()
            && self.pending.ids.is_empty()
            && self.pruned.ids.is_empty()
    }
}

fn key(prefix: &[u8], tag: u8, id: Option<&DeltaId>) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len().saturating_add(33));
    k.extend_from_slice(prefix);
    k.push(tag);
    if let Some(id) = id {
        k.extend_from_slice(id.as_bytes());
    }
    k
}

impl<P> Dag<P> {
    /// Whether [`Dag::take_changes`] has anything to return.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}

impl<P: Payload> Dag<P> {
    /// Every change since the last call (or since [`Dag::new`] / [`Dag::restore`]) as one batch of
    /// puts and deletes under `prefix`, in a deterministic order. Persist it atomically, in call
    /// order, with the same `prefix` every time; then [`Dag::restore`] rebuilds this DAG. The
    /// prefix must not be a prefix of another store's keys.
    pub fn take_changes(&mut self, prefix: &[u8]) -> WriteBatch {
        let changes = std::mem::take(&mut self.changes);
        let mut batch = WriteBatch::new();
        changes
            .applied
            .write(&mut batch, prefix, TAG_APPLIED, |id| {
                self.applied.get(id).map(encode_applied)
            });
        changes
            .pending
            .write(&mut batch, prefix, TAG_PENDING, |id| {
                self.pending.get(id).map(encode_pending)
            });
        changes.pruned.write(&mut batch, prefix, TAG_PRUNED, |id| {
            self.pruned.get(id).map(|order| {
                let mut w = Writer::new();
                w.u64(*order);
                w.finish()
            })
        });
        if changes.meta {
            batch.put(key(prefix, TAG_META, None), self.encode_meta());
        }
        batch
    }

    /// Rebuilds the DAG whose batches were persisted under `prefix` (an empty DAG when nothing is
    /// stored there). The result equals the DAG that produced the batches and has no unsaved
    /// changes. `config` may differ from the original one; lowered caps take effect at the next
    /// insertion.
    pub fn restore(
        prefix: &[u8],
        kv: &impl KvRead,
        config: DagConfig,
    ) -> Result<Dag<P>, RestoreError> {
        let mut dag = Dag::new(config);
        let rows = kv.scan_prefix(prefix);
        if rows.is_empty() {
            return Ok(dag);
        }
        let mut meta = None;
        let mut pending = Vec::new();
        for (k, value) in rows {
            let suffix = k.get(prefix.len()..).unwrap_or_default();
            match suffix.split_first() {
                Some((&TAG_META, [])) => {
                    meta = Some(decode_record("meta", None, &value, decode_meta)?);
                }
                Some((&TAG_APPLIED, rest)) if rest.len() == 32 => {
                    let id = id_from(rest);
                    let entry = decode_record("applied", Some(id), &value, decode_applied::<P>)?;
                    dag.restore_applied(id, entry)?;
                }
                Some((&TAG_PENDING, rest)) if rest.len() == 32 => {
                    let id = id_from(rest);
                    let entry = decode_record("pending", Some(id), &value, decode_pending::<P>)?;
                    if entry.delta.id != id {
                        return inconsistent(
                            "pending record holds another id than its key",
                            Some(id),
                        );
                    }
                    pending.push(entry);
                }
                Some((&TAG_PRUNED, rest)) if rest.len() == 32 => {
                    let id = id_from(rest);
                    let order = decode_record("pruned", Some(id), &value, |r| r.u64())?;
                    if dag.pruned_order.insert(order, id).is_some() {
                        return inconsistent("two pruned ids share a FIFO number", Some(id));
                    }
                    dag.pruned.insert(id, order);
                }
                _ => return Err(RestoreError::UnknownKey { key: k }),
            }
        }
        let Some(meta) = meta else {
            return Err(RestoreError::MissingMeta);
        };
        for entry in pending {
            dag.restore_pending(entry)?;
        }
        dag.restore_meta(meta)?;
        dag.restore_edges()?;
        Ok(dag)
    }

    fn encode_meta(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.next_seq)
            .u64(self.next_arrival)
            .u64(self.next_pruned);
        w.len(self.heads.len());
        for h in &self.heads {
            w.id(h);
        }
        w.finish()
    }

    fn restore_applied(&mut self, id: DeltaId, entry: AppliedEntry<P>) -> Result<(), RestoreError> {
        if let Body::Delta(d) = &entry.body {
            if d.id != id {
                return inconsistent("applied record holds another id than its key", Some(id));
            }
            if d.validate().is_err() || matches!(d.kind, DeltaKind::Checkpoint { .. }) {
                return inconsistent("applied delta is malformed", Some(id));
            }
        }
        if self.by_seq.insert(entry.seq, id).is_some() {
            return inconsistent("two applied deltas share an apply sequence", Some(id));
        }
        self.applied.insert(id, entry);
        Ok(())
    }

    fn restore_pending(&mut self, entry: PendingEntry<P>) -> Result<(), RestoreError> {
        let id = entry.delta.id;
        if entry.delta.validate().is_err()
            || matches!(entry.delta.kind, DeltaKind::Checkpoint { .. })
        {
            return inconsistent("pending delta is malformed", Some(id));
        }
        if self.is_satisfied(&id) {
            return inconsistent("id both pending and applied or pruned", Some(id));
        }
        if self.by_arrival.insert(entry.arrival, id).is_some() {
            return inconsistent("two pending deltas share an arrival number", Some(id));
        }
        self.by_received.insert((entry.received_ms, entry.arrival));
        self.pending_bytes += entry.delta.payload.weight();
        self.pending.insert(id, entry);
        Ok(())
    }

    fn restore_meta(&mut self, meta: Meta) -> Result<(), RestoreError> {
        for head in &meta.heads {
            if !self.applied.contains_key(head) {
                return inconsistent("a head is not an applied delta", Some(*head));
            }
        }
        self.heads = meta.heads.into_iter().collect();
        let above = |next: u64, max: Option<u64>| max.is_none_or(|m| next > m);
        if !above(meta.next_seq, self.by_seq.last_key_value().map(|(s, _)| *s))
            || !above(
                meta.next_arrival,
                self.by_arrival.last_key_value().map(|(a, _)| *a),
            )
            || !above(
                meta.next_pruned,
                self.pruned_order.last_key_value().map(|(o, _)| *o),
            )
        {
            return inconsistent("a counter is not above the numbers in use", None);
        }
        self.next_seq = meta.next_seq;
        self.next_arrival = meta.next_arrival;
        self.next_pruned = meta.next_pruned;
        for id in self.pruned.keys() {
            if self.applied.contains_key(id) {
                return inconsistent("id both applied and pruned", Some(*id));
            }
        }
        Ok(())
    }

    /// Rebuilds the reverse edges and the missing set from the pending deltas.
    fn restore_edges(&mut self) -> Result<(), RestoreError> {
        let mut edges = Vec::new();
        for (id, entry) in &self.pending {
            let before = edges.len();
            for parent in &entry.delta.parents {
                if !self.is_satisfied(parent) {
                    edges.push((*parent, *id));
                }
            }
            if edges.len() == before {
                return inconsistent("pending delta has every parent applied", Some(*id));
            }
        }
        for (parent, child) in edges {
            self.waiting.insert((parent, child));
            self.refresh_missing(parent);
        }
        Ok(())
    }
}

fn inconsistent<T>(reason: &'static str, id: Option<DeltaId>) -> Result<T, RestoreError> {
    Err(RestoreError::Inconsistent { reason, id })
}

fn id_from(bytes: &[u8]) -> DeltaId {
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    DeltaId(out)
}

/// Checks the version byte, decodes with `f`, refuses trailing bytes.
fn decode_record<T>(
    table: &'static str,
    id: Option<DeltaId>,
    value: &[u8],
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>,
) -> Result<T, RestoreError> {
    let run = || {
        let mut r = Reader::new(value)?;
        let out = f(&mut r)?;
        r.finish()?;
        Ok(out)
    };
    run().map_err(|source| RestoreError::Record { table, id, source })
}

fn encode_applied<P: Payload>(entry: &AppliedEntry<P>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(entry.seq).bool(entry.sole_head);
    match &entry.body {
        Body::Delta(d) => {
            w.u8(BODY_DELTA);
            encode_delta(d, &mut w);
        }
        Body::Checkpoint { root } => {
            w.u8(BODY_CHECKPOINT).hash(root);
        }
    }
    w.finish()
}

fn decode_applied<P: Payload>(r: &mut Reader<'_>) -> Result<AppliedEntry<P>, CodecError> {
    let seq = r.u64()?;
    let sole_head = r.bool()?;
    let body = match r.u8()? {
        BODY_DELTA => Body::Delta(decode_delta(r)?),
        BODY_CHECKPOINT => Body::Checkpoint { root: r.hash()? },
        tag => {
            return Err(CodecError::InvalidTag {
                what: "applied body",
                tag,
            })
        }
    };
    Ok(AppliedEntry {
        seq,
        sole_head,
        body,
    })
}

fn encode_pending<P: Payload>(entry: &PendingEntry<P>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(entry.arrival).u64(entry.received_ms);
    encode_delta(&entry.delta, &mut w);
    w.finish()
}

fn decode_pending<P: Payload>(r: &mut Reader<'_>) -> Result<PendingEntry<P>, CodecError> {
    let arrival = r.u64()?;
    let received_ms = r.u64()?;
    let delta = decode_delta(r)?;
    Ok(PendingEntry {
        delta,
        received_ms,
        arrival,
    })
}

struct Meta {
    next_seq: u64,
    next_arrival: u64,
    next_pruned: u64,
    heads: Vec<DeltaId>,
}

fn decode_meta(r: &mut Reader<'_>) -> Result<Meta, CodecError> {
    let next_seq = r.u64()?;
    let next_arrival = r.u64()?;
    let next_pruned = r.u64()?;
    let count = r.count("heads", MAX_STORED_HEADS, 32)?;
    let mut heads = Vec::with_capacity(count);
    for _ in 0..count {
        heads.push(r.id()?);
    }
    Ok(Meta {
        next_seq,
        next_arrival,
        next_pruned,
        heads,
    })
}
