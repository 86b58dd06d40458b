//! Snapshots: a frozen copy served page by page, and its verified installation on an empty
//! replica.

use std::collections::BTreeMap;

use tabmesh_base::{DeltaId, EntityId, Hash, Hlc, NodeId, WriteBatch};
use tabmesh_state::{Action, State};

use super::{Purpose, Replica, SessionFailure, SessionOutcome, Step};
use crate::{Refusal, Request, Response, SnapshotCursor, SyncError, MAX_IDS};

/// Bytes of entity states in one snapshot page (well under [`MAX_FRAME`](crate::MAX_FRAME)).
const PAGE_BUDGET: usize = 1 << 20;

/// A snapshot frozen for one joiner: pages are served from this copy, so writes made meanwhile
/// cannot make its pages inconsistent with its root.
#[derive(Debug)]
pub(super) struct Frozen {
    created: u64,
    pub(super) expires: u64,
    peer: NodeId,
    heads: Vec<DeltaId>,
    /// The largest stamp among `heads` when it froze.
    heads_stamp: Hlc,
    root: Hash,
    /// Entity states, parents before children.
    entities: Vec<Action>,
    satisfied: Vec<DeltaId>,
}

/// The joiner's side: pages verified against the announced root before anything is applied.
#[derive(Debug, Default)]
pub(super) struct SnapshotJoin {
    /// Entities the first page announced.
    total: Option<u64>,
    staging: Option<State>,
    staged: WriteBatch,
    heads: Vec<DeltaId>,
    heads_stamp: Hlc,
    root: Hash,
    satisfied: Vec<DeltaId>,
    received: u64,
}

/// Orders entity states parents first (depth is bounded by the state's nesting limit).
fn parents_first(entities: Vec<Action>) -> Vec<Action> {
    let parent: BTreeMap<EntityId, Option<EntityId>> =
        entities.iter().map(|a| (a.id(), a.parent())).collect();
    let depth = |mut id: EntityId| {
        let mut d = 0usize;
        while let Some(Some(p)) = parent.get(&id) {
            d += 1;
            id = *p;
            if d > 64 {
                break;
            }
        }
        d
    };
    let mut keyed: Vec<(usize, Action)> =
        entities.into_iter().map(|a| (depth(a.id()), a)).collect();
    keyed.sort_by_key(|(d, a)| (*d, a.id()));
    keyed.into_iter().map(|(_, a)| a).collect()
}

impl Replica {
    pub(super) fn serve_snapshot(
        &mut self,
        now_ms: u64,
        from: NodeId,
        cursor: Option<SnapshotCursor>,
    ) -> Response {
        let (key, page) = match cursor {
            None => {
                if self.summary().is_empty() {
                    return Response::Refused(Refusal::NothingToSnapshot);
                }
                // A joiner restarting its snapshot right away gets "busy": each start copies the
                // whole state.
                let min_gap = self.config.min_interval_ms;
                if self
                    .frozen
                    .values()
                    .any(|f| f.peer == from && now_ms.saturating_sub(f.created) < min_gap)
                {
                    return Response::Refused(Refusal::Busy);
                }
                // One frozen copy per joiner; the oldest goes when too many are open.
                self.frozen
                    .retain(|_, f| f.peer != from && f.expires > now_ms);
                while self.frozen.len() >= self.config.max_snapshot_sessions.max(1) {
                    let Some(oldest) = self.frozen.keys().next().copied() else {
                        break;
                    };
                    self.frozen.remove(&oldest);
                }
                let key = self.next_frozen;
                self.next_frozen += 1;
                let mut heads = self.dag.heads();
                heads.truncate(tabmesh_dag::MAX_CHECKPOINT_HEADS);
                let heads_stamp = self.gov.heads_stamp(&heads);
                self.frozen.insert(
                    key,
                    Frozen {
                        created: now_ms,
                        expires: 0,
                        peer: from,
                        heads,
                        heads_stamp,
                        root: self.state.root_hash(),
                        entities: parents_first(self.state.entities().cloned().collect()),
                        satisfied: self
                            .dag
                            .satisfied_ids()
                            .take(self.config.dag.max_pruned)
                            .collect(),
                    },
                );
                (key, 0)
            }
            Some(c) => (c.snapshot, c.index),
        };
        let ttl = self.config.snapshot_ttl_ms;
        let per_page = self
            .config
            .snapshot_page_entities
            .clamp(1, crate::MAX_ENTITIES);
        let Some(frozen) = self.frozen.get_mut(&key).filter(|f| f.peer == from) else {
            return Response::Refused(Refusal::Invalid);
        };
        frozen.expires = now_ms.saturating_add(ttl);
        // The cursor counts entities, then satisfied ids after them. A page holds entities up to
        // a byte budget (at least one, which always fits a frame), then, once they are all sent,
        // up to MAX_IDS ids.
        let n = frozen.entities.len();
        let offset = usize::try_from(page).unwrap_or(usize::MAX);
        let e_start = offset.min(n);
        let mut e_end = e_start;
        let mut bytes = 0;
        while e_end < n && e_end - e_start < per_page {
            let len = frozen.entities.get(e_end).map_or(0, |a| a.encoded_len());
            if e_end > e_start && bytes + len > PAGE_BUDGET {
                break;
            }
            bytes += len;
            e_end += 1;
        }
        let (s_start, s_end) = if e_end == n {
            let s_start = offset.saturating_sub(n).min(frozen.satisfied.len());
            (
                s_start,
                s_start.saturating_add(MAX_IDS).min(frozen.satisfied.len()),
            )
        } else {
            (0, 0)
        };
        let last = e_end == n && s_end == frozen.satisfied.len();
        let response = Response::SnapshotPage {
            heads: frozen.heads.clone(),
            heads_stamp: frozen.heads_stamp,
            root: frozen.root,
            total: n as u64,
            entities: frozen.entities[e_start..e_end].to_vec(),
            satisfied: frozen.satisfied[s_start..s_end].to_vec(),
            next: (!last).then(|| SnapshotCursor {
                snapshot: key,
                index: (if e_end < n { e_end } else { n + s_end }) as u64,
            }),
        };
        if last {
            self.frozen.remove(&key);
        }
        response
    }

    pub(super) fn snapshot_response(
        &mut self,
        now_ms: u64,
        peer: NodeId,
        mut join: Box<SnapshotJoin>,
        response: Response,
    ) {
        let Response::SnapshotPage {
            heads,
            heads_stamp,
            root,
            total,
            entities,
            satisfied,
            next,
        } = response
        else {
            self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                    "unexpected response during a snapshot",
                ))),
            );
            return;
        };
        if join.staging.is_none() {
            join.staging = Some(State::new(self.state.prefix()));
            join.heads = heads;
            join.heads_stamp = heads_stamp;
            join.root = root;
        } else if join.heads != heads || join.heads_stamp != heads_stamp || join.root != root {
            self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                    "snapshot pages disagree on their boundary",
                ))),
            );
            return;
        }
        let pages = self.session.as_mut().map_or(0, |s| {
            s.pages += 1;
            s.pages
        });
        if pages > super::MAX_SESSION_PAGES {
            self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                    "a snapshot ran past its page budget",
                ))),
            );
            return;
        }
        if join.total.is_some_and(|t| t != total) {
            join.received = u64::MAX;
        }
        join.total = Some(total);
        join.received = join.received.saturating_add(entities.len() as u64);
        if join.received > total {
            self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                    "a snapshot sent more entities than it announced",
                ))),
            );
            return;
        }
        if join.satisfied.len() + satisfied.len() <= self.config.dag.max_pruned {
            join.satisfied.extend(satisfied);
        }
        let applied = join.staging.as_mut().map(|s| s.apply(&entities));
        match applied {
            Some(Ok(batch)) => join.staged.extend(batch),
            Some(Err(e)) => {
                self.end_session(
                    now_ms,
                    SessionOutcome::Failed(SessionFailure::Invalid(e.into())),
                );
                return;
            }
            None => {}
        }
        if let Some(cursor) = next {
            self.set_step(None, Step::Snapshot(join));
            self.send_request(
                now_ms,
                peer,
                Purpose::Session,
                Request::Snapshot {
                    cursor: Some(cursor),
                },
            );
            return;
        }
        if join.staging.as_ref().map(State::root_hash) != Some(join.root) {
            self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::Invalid(SyncError::SnapshotMismatch)),
            );
            return;
        }
        // Every page is staged and verified: now the peer's governance log. Asked after the
        // snapshot froze, it holds every governance operation the snapshot covers (a log fetched
        // before could miss one the peer applied meanwhile — a join — and deltas citing it would
        // be checked here at a position without it).
        self.set_step(None, Step::SnapshotGovernance(join));
        self.send_request(
            now_ms,
            peer,
            Purpose::Session,
            Request::Governance { from: 0 },
        );
    }

    /// A page of the peer's governance log after a snapshot's pages: installed, then the next
    /// page, or the snapshot.
    pub(super) fn snapshot_governance(
        &mut self,
        now_ms: u64,
        peer: NodeId,
        join: Box<SnapshotJoin>,
        entries: Vec<crate::GovEntry>,
        next: Option<u32>,
    ) {
        if let Err(e) = self.gov.install(entries) {
            self.end_session(now_ms, SessionOutcome::Failed(SessionFailure::Invalid(e)));
            return;
        }
        if let Some(from) = next {
            self.set_step(None, Step::SnapshotGovernance(join));
            self.send_request(now_ms, peer, Purpose::Session, Request::Governance { from });
            return;
        }
        self.install_snapshot(now_ms, peer, *join);
    }

    fn install_snapshot(&mut self, now_ms: u64, peer: NodeId, join: SnapshotJoin) {
        // (Verified against its root when its last page arrived.)
        let Some(staging) = join.staging else {
            return;
        };
        if self.state.is_empty() {
            // The common case: nothing local to keep, take the verified state as it is.
            self.state = staging;
            self.batch.extend(join.staged);
        } else {
            // Local writes happened during the snapshot: join the snapshot into them.
            let states = parents_first(staging.entities().cloned().collect());
            for chunk in states.chunks(tabmesh_state::MAX_ACTIONS) {
                match self.state.apply_counted(chunk) {
                    Ok(applied) => {
                        self.batch.extend(applied.batch);
                        self.metrics.ancient_dropped += applied.dropped as u64;
                    }
                    Err(e) => {
                        self.end_session(
                            now_ms,
                            SessionOutcome::Failed(SessionFailure::Invalid(e.into())),
                        );
                        return;
                    }
                }
            }
        }
        // The snapshot lacks what the peer collected: take its GC horizon (from the summary that
        // started the session, so never newer than the snapshot's), so fragments of those
        // entities are dropped here too.
        let horizon = self
            .session
            .as_ref()
            .map_or(Hlc::default(), |s| s.peer_horizon);
        let batch = self.state.adopt_gc_horizon(horizon);
        self.batch.extend(batch);
        self.state_replaced = true;
        self.metrics.snapshots_installed += 1;

        // The heads' stamps stay known here as the bound the snapshot vouched for: a join
        // citing them must be stamped after them, or every member (who holds their deltas)
        // refuses it.
        self.cover(&join.heads, join.heads_stamp, &join.satisfied, join.root);
        // Operations the peer applied after its snapshot froze come through the DAG.
        self.pull_unapplied(now_ms, peer);
        let pulled = join.received;
        self.end_session(now_ms, SessionOutcome::Converged { pulled, pushed: 0 });
    }
}
