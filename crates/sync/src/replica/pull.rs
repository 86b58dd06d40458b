//! Missing-parent pulls: which ids we want, from whom, and when to ask again.

use std::collections::BTreeMap;

use tabmesh_base::{DeltaId, NodeId};

use super::{Purpose, Replica, Response};
use crate::Request;

/// Parent-pull requests one replica keeps in flight at once.
pub const MAX_PULLS_IN_FLIGHT: usize = 4;

/// One missing delta we are fetching.
#[derive(Clone, Debug)]
struct Want {
    attempts: u32,
    /// Not asked again before this time.
    next_at: u64,
    /// Ask this peer first (the one that sent a child).
    prefer: Option<NodeId>,
    /// A request for it is in flight.
    asked: bool,
}

/// The bounded set of missing deltas being pulled.
#[derive(Clone, Debug)]
pub(super) struct Wanted {
    cap: usize,
    wants: BTreeMap<DeltaId, Want>,
}

impl Wanted {
    pub(super) fn new(cap: usize) -> Wanted {
        Wanted {
            cap,
            wants: BTreeMap::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.wants.len()
    }

    /// Starts fetching `ids` (already-wanted ones keep their state; past the cap they wait for the
    /// next tick's re-scan of the DAG's missing parents).
    pub(super) fn want(&mut self, now_ms: u64, ids: &[DeltaId], prefer: Option<NodeId>) {
        for id in ids {
            if self.wants.len() >= self.cap {
                return;
            }
            self.wants.entry(*id).or_insert(Want {
                attempts: 0,
                next_at: now_ms,
                prefer,
                asked: false,
            });
        }
    }

    pub(super) fn remove(&mut self, id: &DeltaId) {
        self.wants.remove(id);
    }

    /// A request for `ids` failed: back off exponentially and ask someone else next time; drop an
    /// id after `max_attempts`.
    pub(super) fn failed(
        &mut self,
        now_ms: u64,
        ids: &[DeltaId],
        max_attempts: u32,
        max_backoff_ms: u64,
    ) {
        for id in ids {
            let Some(w) = self.wants.get_mut(id) else {
                continue;
            };
            w.asked = false;
            w.attempts = w.attempts.saturating_add(1);
            w.prefer = None;
            if w.attempts >= max_attempts {
                self.wants.remove(id);
            } else {
                let wait = 500u64
                    .saturating_mul(1u64 << w.attempts.min(16))
                    .min(max_backoff_ms);
                w.next_at = now_ms.saturating_add(wait);
            }
        }
    }

    /// Asks again for `ids` no earlier than `until`, without counting an attempt.
    pub(super) fn defer(&mut self, ids: &[DeltaId], until: u64) {
        for id in ids {
            if let Some(w) = self.wants.get_mut(id) {
                w.next_at = w.next_at.max(until);
            }
        }
    }

    /// The earliest retry time of an id not in flight.
    pub(super) fn next_due(&self) -> Option<u64> {
        self.wants
            .values()
            .filter(|w| !w.asked)
            .map(|w| w.next_at)
            .min()
    }

    /// Due ids not in flight, grouped by preferred peer (`None`: any), each group at most `batch`.
    fn due(&self, now_ms: u64, batch: usize) -> Vec<(Option<NodeId>, Vec<DeltaId>)> {
        let mut groups: BTreeMap<Option<NodeId>, Vec<DeltaId>> = BTreeMap::new();
        for (id, w) in &self.wants {
            if !w.asked && w.next_at <= now_ms {
                let g = groups.entry(w.prefer).or_default();
                if g.len() < batch {
                    g.push(*id);
                }
            }
        }
        groups.into_iter().collect()
    }

    fn mark_asked(&mut self, ids: &[DeltaId]) {
        for id in ids {
            if let Some(w) = self.wants.get_mut(id) {
                w.asked = true;
            }
        }
    }
}

impl Replica {
    /// Sends a pull for every due group of wanted ids (one request per peer).
    pub(super) fn pump_pulls(&mut self, now_ms: u64) {
        let mut in_flight = self
            .inflight
            .values()
            .filter(|f| matches!(f.purpose, Purpose::Pull(_)))
            .count();
        for (prefer, mut ids) in self.wanted.due(now_ms, self.config.pull_batch) {
            if in_flight >= MAX_PULLS_IN_FLIGHT {
                break;
            }
            // Ids that arrived meanwhile need no request.
            ids.retain(|id| !self.dag.is_applied(id) && self.dag.get(id).is_none());
            let peer = match prefer {
                Some(p) if self.peers.contains(&p) => Some(p),
                _ => self.pick_peer(now_ms, None),
            };
            let Some(peer) = peer else {
                // Nobody to ask now: wait for the first peer to come out of its backoff (or the
                // next tick when there is no peer at all). Not an attempt: nobody failed.
                let until = self
                    .peers
                    .iter()
                    .filter_map(|p| self.backoff.get(p).map(|(_, until)| *until))
                    .min()
                    .unwrap_or(self.next_tick)
                    .max(now_ms.saturating_add(1));
                self.wanted.defer(&ids, until);
                continue;
            };
            if ids.is_empty() {
                continue;
            }
            self.wanted.mark_asked(&ids);
            in_flight += 1;
            self.metrics.parents_pulled += ids.len() as u64;
            self.send_request(
                now_ms,
                peer,
                Purpose::Pull(ids.clone()),
                Request::Deltas { ids },
            );
        }
        // Ids that are no longer missing (applied or arrived as pending) are done.
        let done: Vec<DeltaId> = self
            .wanted
            .wants
            .keys()
            .filter(|id| self.dag.is_applied(id) || self.dag.get(id).is_some())
            .copied()
            .collect();
        for id in done {
            self.wanted.remove(&id);
        }
    }

    pub(super) fn pull_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        ids: Vec<DeltaId>,
        response: Response,
    ) {
        match response {
            Response::Deltas {
                deltas,
                unavailable,
                history_pruned,
                ..
            } => {
                for env in deltas {
                    self.receive(now_ms, Some(from), env);
                }
                let missing: Vec<DeltaId> = ids
                    .iter()
                    .filter(|id| !self.dag.is_applied(id) && self.dag.get(id).is_none())
                    .copied()
                    .collect();
                self.wanted.failed(
                    now_ms,
                    &missing,
                    self.config.max_pull_attempts,
                    self.config.max_backoff_ms,
                );
                if history_pruned && !unavailable.is_empty() && self.session.is_none() {
                    // The peer applied them but dropped their bodies: repair by state instead;
                    // the verification step then records what the peer says it applied.
                    self.start_session(now_ms, Some(from));
                    if let Some(s) = self.session.as_mut() {
                        s.force_repair = true;
                    }
                } else if self.session.is_none() && !self.dag.missing_parents(1).is_empty() {
                    // The gap goes deeper than one pull: page through it with a delta sync rather
                    // than fetching one generation of parents per round trip.
                    self.start_session(now_ms, Some(from));
                }
            }
            _ => {
                let max = self.config.max_pull_attempts;
                self.wanted
                    .failed(now_ms, &ids, max, self.config.max_backoff_ms);
            }
        }
        self.pump_pulls(now_ms);
    }
}
