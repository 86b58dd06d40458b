//! Answering peers' requests.

use tabmesh_base::{DeltaId, EntityId, Hlc, NodeId};
use tabmesh_dag::{DeltaStatus, SinceCursor};
use tabmesh_state::Action;

use super::Replica;
use crate::{
    Envelope, Refusal, Request, Response, TreeNode, MAX_DELTAS, MAX_ENTITIES, MAX_FRAME, MAX_IDS,
    MAX_TREE_NODES,
};

/// Byte budget of one response's deltas or entities: half a frame leaves room for the rest.
const RESPONSE_BUDGET: usize = MAX_FRAME / 2;

impl Replica {
    pub(super) fn serve(&mut self, now_ms: u64, from: NodeId, request: Request) -> Response {
        match request {
            Request::Summary => Response::Summary(self.summary()),
            Request::DeltasSince { known, cursor } => self.serve_since(&known, cursor),
            Request::Deltas { ids } => self.serve_deltas(&ids),
            Request::Tree { nodes } => {
                if nodes.len() > MAX_TREE_NODES {
                    return Response::Refused(Refusal::Invalid);
                }
                let nodes = nodes
                    .into_iter()
                    .map(|at| {
                        let slots = self
                            .state
                            .trie_node(at.owner.as_ref(), &at.path)
                            .map(|n| n.slots().collect());
                        TreeNode { at, slots }
                    })
                    .collect();
                Response::Tree { nodes }
            }
            Request::Entities { ids } => {
                let mut entities = Vec::new();
                let mut bytes = 0;
                for id in ids.iter().take(MAX_IDS) {
                    if let Some(e) = self.state.entity(id) {
                        bytes += e.encoded_len();
                        if bytes > RESPONSE_BUDGET && !entities.is_empty() {
                            break;
                        }
                        entities.push(e.clone());
                    }
                }
                Response::Entities { entities }
            }
            Request::Push { entities } => self.serve_push(from, entities),
            Request::Snapshot { cursor } => self.serve_snapshot(now_ms, from, cursor),
            Request::Have { ids } => Response::Have {
                applied: ids
                    .into_iter()
                    .filter(|id| self.dag.is_applied(id))
                    .collect(),
            },
            Request::Forget { horizon, ids } => self.serve_forget(now_ms, &ids, horizon),
            Request::Governance { from } => {
                let (entries, next) = self.gov.entries(from, RESPONSE_BUDGET);
                Response::Governance { entries, next }
            }
        }
    }

    /// Forgets the named entities that are entirely older than the requester's horizon (capped by
    /// our retention): it pulled them from us and dropped them as deletions it collected.
    fn serve_forget(&mut self, now_ms: u64, ids: &[EntityId], horizon: Hlc) -> Response {
        if ids.len() > MAX_IDS {
            return Response::Refused(Refusal::Invalid);
        }
        let horizon = self.peer_horizon(now_ms, horizon);
        let ancient: Vec<EntityId> = ids
            .iter()
            .filter(|id| {
                self.state
                    .entity(id)
                    .is_some_and(|e| e.newest_stamp().hlc < horizon)
            })
            .copied()
            .collect();
        let removed = self.forget_entities(&ancient);
        Response::PushAck {
            applied: u32::try_from(removed).unwrap_or(u32::MAX),
        }
    }

    fn serve_since(&self, known: &[DeltaId], cursor: Option<u64>) -> Response {
        // With pruned history, the requester may lack deltas we can no longer send. When it names
        // at least one delta we still hold with its body, what it lacks came after that (or is
        // caught by its own pulls, which fall back to a repair); when it names none, it may be
        // behind our pruning point: say so, and it compares states instead.
        let history_pruned = self.has_pruned_history()
            && !known
                .iter()
                .any(|h| self.dag.status(h) == DeltaStatus::Applied && self.dag.get(h).is_some());
        let mut limit = self.config.since_page.clamp(1, MAX_DELTAS);
        loop {
            let Ok(page) = self
                .dag
                .deltas_since(known, cursor.map(SinceCursor::from_u64), limit)
            else {
                return Response::Refused(Refusal::Invalid);
            };
            let bytes: usize = page
                .deltas
                .iter()
                .map(|d| d.payload.ciphertext.len() + 200)
                .sum();
            if bytes > RESPONSE_BUDGET && limit > 1 {
                limit /= 2;
                continue;
            }
            let deltas = page
                .deltas
                .iter()
                .map(|d| Envelope::from_causal(self.context, d))
                .collect();
            return Response::Deltas {
                deltas,
                next: page.next.map(|c| c.as_u64()),
                unavailable: Vec::new(),
                history_pruned: history_pruned || !page.without_body.is_empty(),
            };
        }
    }

    fn serve_deltas(&self, ids: &[DeltaId]) -> Response {
        let mut deltas = Vec::new();
        let mut unavailable = Vec::new();
        let mut pruned = false;
        let mut bytes = 0;
        for id in ids.iter().take(MAX_IDS) {
            match self.dag.get(id) {
                Some(d)
                    if deltas.len() < MAX_DELTAS
                        && bytes + d.payload.ciphertext.len() <= RESPONSE_BUDGET =>
                {
                    bytes += d.payload.ciphertext.len() + 200;
                    deltas.push(Envelope::from_causal(self.context, d));
                }
                Some(_) => {}
                None => match self.gov.record_envelope(id) {
                    // Governance deltas outlive pruning: who is a member must stay learnable.
                    Some(env)
                        if deltas.len() < MAX_DELTAS
                            && bytes + env.ciphertext.len() <= RESPONSE_BUDGET =>
                    {
                        bytes += env.ciphertext.len() + 200;
                        deltas.push(env.clone());
                    }
                    _ => {
                        if self.dag.is_applied(id) {
                            pruned = true;
                        }
                        unavailable.push(*id);
                    }
                },
            }
        }
        Response::Deltas {
            deltas,
            next: None,
            unavailable,
            history_pruned: pruned,
        }
    }

    fn serve_push(&mut self, from: NodeId, entities: Vec<Action>) -> Response {
        if entities.len() > MAX_ENTITIES {
            return Response::Refused(Refusal::Invalid);
        }
        match self.join_states(&entities) {
            Ok(_) => Response::PushAck {
                applied: entities.len() as u32,
            },
            Err(e) => {
                self.reject(Some(from), e.into());
                Response::Refused(Refusal::Invalid)
            }
        }
    }
}
