//! `deltas_since`: the applied deltas a peer lacks, given its heads, in pages.
//!
//! The answer is every retained applied delta that is not an ancestor of (or equal to) one of the
//! peer's heads that this node knows, in local apply order — a topological order, so the peer can
//! apply a page delta by delta without buffering.
//!
//! The walk goes down the apply sequence from the newest delta with a frontier of known ancestors:
//! a delta in the frontier is an ancestor (its parents join the frontier); any other is an answer.
//! Parents always have lower sequence numbers than their children, so the frontier is complete by
//! the time the walk reaches a delta. It stops early in two cases: the frontier is empty (everything
//! further down is an answer: take those in ascending order), or an ancestor was the only head when
//! it was applied (everything further down is its ancestor). A page therefore costs the number of
//! deltas applied since the peer's heads (plus `limit`), not the size of the DAG, in the common case
//! of a mostly linear history; the worst case (concurrent branches far back) is one pass over the
//! deltas above the cursor.

use std::collections::{BTreeSet, VecDeque};

use tabmesh_base::DeltaId;

use super::{Body, Dag};
use crate::{CausalDelta, DagError, MAX_KNOWN_HEADS};

/// Where the next page of [`Dag::deltas_since`] starts: an apply sequence number of the answering
/// node. The asking peer sends it back unchanged; any value is safe (a forged one only changes which
/// deltas the page holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SinceCursor(u64);

impl SinceCursor {
    /// The cursor carried as a number (on the wire).
    pub fn from_u64(v: u64) -> SinceCursor {
        SinceCursor(v)
    }

    /// The number to carry on the wire.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// One page of [`Dag::deltas_since`].
#[derive(Debug)]
pub struct SincePage<'a, P> {
    /// Deltas the peer lacks, in an order it can apply them (local apply order).
    pub deltas: Vec<&'a CausalDelta<P>>,
    /// Checkpoint boundaries the peer lacks: applied here without a body, so they cannot be sent.
    /// When this is not empty the peer cannot catch up from deltas alone (it needs a snapshot).
    pub without_body: Vec<DeltaId>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<SinceCursor>,
}

impl<P> Dag<P> {
    /// The applied deltas that are not ancestors of `known_heads` (the peer's heads), in local
    /// apply order, at most `limit` per page (clamped to `1..=`[`DagConfig::max_query_limit`]).
    /// Pass `None` for the first page, then each page's [`SincePage::next`].
    ///
    /// Heads this node has not applied (unknown, pending or pruned) are ignored: the answer may
    /// then hold deltas the peer has, which it reports as duplicates. Pruned deltas are never
    /// returned. Pages are consistent while the DAG only grows: deltas applied between two calls
    /// come in later pages; none is returned twice.
    ///
    /// [`DagConfig::max_query_limit`]: crate::DagConfig::max_query_limit
    pub fn deltas_since(
        &self,
        known_heads: &[DeltaId],
        cursor: Option<SinceCursor>,
        limit: usize,
    ) -> Result<SincePage<'_, P>, DagError> {
        if known_heads.len() > MAX_KNOWN_HEADS {
            return Err(DagError::TooManyKnownHeads {
                count: known_heads.len(),
                max: MAX_KNOWN_HEADS,
            });
        }
        let limit = limit.clamp(1, self.config.max_query_limit);
        let keep = limit.saturating_add(1);
        let from = cursor.map_or(0, SinceCursor::as_u64);
        let in_range = |id: &DeltaId| self.applied.get(id).is_some_and(|e| e.seq >= from);

        let mut frontier: BTreeSet<DeltaId> = known_heads
            .iter()
            .filter(|h| in_range(h))
            .copied()
            .collect();
        // The lowest `keep` answers found by the downward walk, highest first.
        let mut walked: VecDeque<(u64, DeltaId)> = VecDeque::new();
        // When set, every delta with a sequence number in `from..=top` is an answer.
        let mut rest_top = None;
        for (seq, id) in self.by_seq.range(from..).rev() {
            if frontier.is_empty() {
                rest_top = Some(*seq);
                break;
            }
            if frontier.remove(id) {
                let Some(entry) = self.applied.get(id) else {
                    continue;
                };
                if entry.sole_head {
                    break;
                }
                frontier.extend(entry.body.parents().iter().filter(|p| in_range(p)).copied());
            } else {
                walked.push_back((*seq, *id));
                if walked.len() > keep {
                    walked.pop_front();
                }
            }
        }

        let mut chosen: Vec<DeltaId> = Vec::new();
        if let Some(top) = rest_top {
            chosen.extend(self.by_seq.range(from..=top).take(keep).map(|(_, id)| *id));
        }
        let room = keep.saturating_sub(chosen.len());
        chosen.extend(walked.iter().rev().take(room).map(|(_, id)| *id));
        let next = if chosen.len() > limit {
            chosen.truncate(limit);
            chosen
                .last()
                .and_then(|id| self.applied.get(id))
                .map(|e| SinceCursor(e.seq.saturating_add(1)))
        } else {
            None
        };

        let mut page = SincePage {
            deltas: Vec::new(),
            without_body: Vec::new(),
            next,
        };
        for id in chosen {
            match self.applied.get(&id).map(|e| &e.body) {
                Some(Body::Delta(d)) => page.deltas.push(d),
                Some(Body::Checkpoint { .. }) => page.without_body.push(id),
                None => {}
            }
        }
        Ok(page)
    }
}
