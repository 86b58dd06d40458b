//! Merkle comparison: walk both tries from the root, skip equal subtrees, pull the peer's
//! differing entities, push ours; then verify against the peer's live root.
//!
//! **Collected deletions.** An entity of ours that the peer lacks, and whose every stamp is older
//! than the peer's GC horizon ([`Summary::gc_horizon`](crate::Summary::gc_horizon), capped by our
//! retention), is a deletion the peer collected (or a write that never reached it within the
//! retention, which the retention's contract gives up on): we forget it with its subtree
//! ([`State::forget`]) instead of pushing it, which the peer would drop anyway. The other way
//! round, an entity we pull and drop as ancient (our own guard) is one the peer must forget: once
//! the pushes are done we name them in [`Request::Forget`] (the peer checks them against our
//! horizon, capped by its retention). That is how a replica offline for longer than the retention
//! converges without resurrecting deleted data, whichever side starts the comparison.

use std::collections::{BTreeSet, VecDeque};

use tabmesh_base::{EntityId, NodeId};
use tabmesh_state::{Action, State, TrieSlot};

use super::{Purpose, Replica, SessionFailure, SessionOutcome, Step};
use crate::{
    Request, Response, SyncError, TreeNode, TreeRef, MAX_ENTITIES, MAX_IDS, MAX_PATH,
    MAX_TREE_NODES,
};

/// Entities per pull request (their states come back in one response).
const PULL_BATCH: usize = 64;
/// Byte budget of one push request.
const PUSH_BUDGET: usize = 1 << 20;

/// The state of one Merkle comparison.
#[derive(Debug, Default)]
pub(super) struct MerkleWalk {
    /// Trie nodes of the peer still to fetch.
    frontier: VecDeque<TreeRef>,
    /// Peer entities to pull (and whose children trie to compare next).
    pull: BTreeSet<EntityId>,
    /// Our entities to push, in discovery order, each with its whole subtree (`true`: the peer
    /// lacks the entity) or alone (`false`: the peer has it; its children are compared apart).
    push: VecDeque<(EntityId, bool)>,
    pushed_set: BTreeSet<EntityId>,
    /// Our entity states queued for the next push request.
    push_states: VecDeque<Action>,
    requests: u32,
    started: bool,
    /// The addresses of the Tree request in flight.
    asked_nodes: Vec<TreeRef>,
    /// The ids of the Entities request in flight.
    asked_entities: BTreeSet<EntityId>,
    /// Our entities queued whole where the peer has a subtree: the peer may hold them deeper.
    ambiguous: BTreeSet<EntityId>,
    /// Of those, the ones found deeper in the peer's trie.
    at_peer: BTreeSet<EntityId>,
    /// Entities we pulled and dropped as ancient: the peer is asked to forget them.
    dropped: Vec<EntityId>,
}

/// Trie nodes, entities to pull and entities to push one walk may queue at once (a peer claiming
/// more differences than this is cut off; the next session starts afresh).
pub const MAX_WALK_QUEUE: usize = 100_000;

impl MerkleWalk {
    pub(super) fn new() -> MerkleWalk {
        MerkleWalk::default()
    }
}

impl Replica {
    /// Sends the walk's next request, or moves to verification when nothing is left.
    pub(super) fn merkle_next(&mut self, now_ms: u64, peer: NodeId) {
        let Some(Step::Merkle(mut walk)) = self
            .session
            .as_mut()
            .map(|s| std::mem::replace(&mut s.step, Step::Summary))
        else {
            return;
        };
        if !walk.started {
            walk.started = true;
            walk.frontier.push_back(TreeRef {
                owner: None,
                path: Vec::new(),
            });
        }
        if walk.requests >= self.config.max_merkle_requests {
            self.end_session(
                now_ms,
                SessionOutcome::Failed(SessionFailure::TooManyRequests),
            );
            return;
        }
        let request = if !walk.pull.is_empty() {
            let ids: Vec<EntityId> = walk
                .pull
                .iter()
                .take(PULL_BATCH.min(MAX_IDS))
                .copied()
                .collect();
            walk.asked_entities = ids.iter().copied().collect();
            for id in &ids {
                walk.pull.remove(id);
                // After its state arrives, compare its children.
                walk.frontier.push_back(TreeRef {
                    owner: Some(*id),
                    path: Vec::new(),
                });
            }
            Some(Request::Entities { ids })
        } else if !walk.frontier.is_empty() {
            let n = walk.frontier.len().min(MAX_TREE_NODES);
            let nodes: Vec<TreeRef> = walk.frontier.drain(..n).collect();
            walk.asked_nodes = nodes.clone();
            Some(Request::Tree { nodes })
        } else {
            self.fill_push(&mut walk);
            if walk.push_states.is_empty() {
                if walk.dropped.is_empty() {
                    None
                } else {
                    let n = walk.dropped.len().min(MAX_IDS);
                    let ids: Vec<EntityId> = walk.dropped.drain(..n).collect();
                    Some(Request::Forget {
                        horizon: self.state.gc_horizon(),
                        ids,
                    })
                }
            } else {
                let mut entities = Vec::new();
                let mut bytes = 0;
                while let Some(a) = walk.push_states.front() {
                    let len = a.encoded_len();
                    if !entities.is_empty()
                        && (bytes + len > PUSH_BUDGET || entities.len() >= MAX_ENTITIES)
                    {
                        break;
                    }
                    bytes += len;
                    if let Some(a) = walk.push_states.pop_front() {
                        entities.push(a);
                    }
                }
                if let Some(s) = self.session.as_mut() {
                    s.pushed += entities.len() as u64;
                }
                self.metrics.entities_pushed += entities.len() as u64;
                Some(Request::Push { entities })
            }
        };
        match request {
            Some(request) => {
                walk.requests += 1;
                self.set_step(None, Step::Merkle(walk));
                self.send_request(now_ms, peer, Purpose::Session, request);
            }
            None => self.start_verify(now_ms, peer),
        }
    }

    pub(super) fn merkle_response(
        &mut self,
        now_ms: u64,
        peer: NodeId,
        mut walk: Box<MerkleWalk>,
        response: Response,
    ) {
        match response {
            Response::Tree { nodes } => {
                // Answers must be the nodes asked for, in order.
                let asked = std::mem::take(&mut walk.asked_nodes);
                if nodes.len() != asked.len() || nodes.iter().zip(&asked).any(|(n, a)| n.at != *a) {
                    self.end_session(
                        now_ms,
                        SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                            "Merkle nodes that were not asked for",
                        ))),
                    );
                    return;
                }
                for node in nodes {
                    compare_node(&self.state, &mut walk, node);
                }
                if walk.frontier.len() + walk.pull.len() + walk.push.len() > MAX_WALK_QUEUE {
                    self.end_session(
                        now_ms,
                        SessionOutcome::Failed(SessionFailure::TooManyRequests),
                    );
                    return;
                }
            }
            Response::Entities { entities } => {
                // Only states we asked for are joined.
                let asked = std::mem::take(&mut walk.asked_entities);
                let entities: Vec<_> = entities
                    .into_iter()
                    .filter(|e| asked.contains(&e.id()))
                    .collect();
                let n = entities.len() as u64;
                match self.join_states(&entities) {
                    Ok(dropped) => {
                        if dropped > 0 {
                            // Dropped as ancient: the peer holds a deletion we collected.
                            for e in &entities {
                                if self.state.entity(&e.id()).is_none()
                                    && walk.dropped.len() < MAX_WALK_QUEUE
                                {
                                    walk.dropped.push(e.id());
                                }
                            }
                        }
                        if let Some(s) = self.session.as_mut() {
                            s.pulled += n;
                        }
                        self.metrics.entities_pulled += n;
                    }
                    Err(e) => {
                        self.reject(Some(peer), e.into());
                    }
                }
                // Children of an entity we do not hold (dropped, or not sent) cannot be joined.
                let state = &self.state;
                walk.frontier
                    .retain(|t| t.owner.is_none_or(|o| state.entity(&o).is_some()));
            }
            Response::PushAck { .. } => {}
            _ => {
                self.end_session(
                    now_ms,
                    SessionOutcome::Failed(SessionFailure::Invalid(SyncError::Protocol(
                        "unexpected response during a Merkle comparison",
                    ))),
                );
                return;
            }
        }
        self.set_step(None, Step::Merkle(walk));
        self.merkle_next(now_ms, peer);
    }

    /// Moves queued push roots into states (each with its whole subtree, parents first), and
    /// forgets what the peer lacks and collected (see the module docs).
    fn fill_push(&mut self, walk: &mut MerkleWalk) {
        let horizon = self
            .session
            .as_ref()
            .map_or(tabmesh_base::Hlc::default(), |s| s.peer_horizon);
        let mut forget = Vec::new();
        while walk.push_states.len() < MAX_ENTITIES {
            let Some((root, deep)) = walk.push.pop_front() else {
                break;
            };
            // Does the peer lack `root`? Only when it is queued whole and was not found deeper.
            let lacks = deep && !walk.at_peer.contains(&root);
            let mut stack = vec![(root, lacks)];
            while let Some((id, lacks)) = stack.pop() {
                let Some(state) = self.state.entity(&id) else {
                    continue;
                };
                if lacks && state.newest_stamp().hlc < horizon {
                    forget.push(id);
                    continue;
                }
                walk.push_states.push_back(state.clone());
                if deep {
                    // Children of an entity the peer lacks are lacking too; under one it has
                    // (found deeper), their tries are compared apart, so push, never forget.
                    stack.extend(self.state.children(Some(&id)).map(|c| (c, lacks)));
                }
            }
        }
        if !forget.is_empty() {
            self.forget_entities(&forget);
        }
    }
}

fn queue_push(walk: &mut MerkleWalk, id: EntityId, deep: bool) {
    if walk.pushed_set.insert(id) {
        walk.push.push_back((id, deep));
    }
}

/// Every entity of ours under a trie node (iterative).
fn local_entities_under(state: &State, at: &TreeRef, out: &mut Vec<EntityId>) {
    let mut stack = vec![at.path.clone()];
    while let Some(path) = stack.pop() {
        let Some(node) = state.trie_node(at.owner.as_ref(), &path) else {
            continue;
        };
        for (nibble, slot) in node.slots() {
            match slot {
                TrieSlot::Entity(id, _) => out.push(id),
                TrieSlot::Subtree(_) => {
                    let mut p = path.clone();
                    p.push(nibble);
                    stack.push(p);
                }
            }
        }
    }
}

/// Compares one of the peer's trie nodes with ours and queues what differs.
fn compare_node(state: &State, walk: &mut MerkleWalk, node: TreeNode) {
    let mut local: [Option<TrieSlot>; 16] = [None; 16];
    if let Some(n) = state.trie_node(node.at.owner.as_ref(), &node.at.path) {
        for (nibble, slot) in n.slots() {
            if let Some(s) = local.get_mut(usize::from(nibble)) {
                *s = Some(slot);
            }
        }
    } else if node.at.path.is_empty() {
        // No trie here locally (an entity with no children, or one we lack): nothing local below.
    } else {
        // Our trie holds at most one entity where the peer has a subtree: the parent handled it.
    }
    let mut remote: [Option<TrieSlot>; 16] = [None; 16];
    for (nibble, slot) in node.slots.into_iter().flatten() {
        if let Some(s) = remote.get_mut(usize::from(nibble)) {
            *s = Some(slot);
        }
    }
    for nibble in 0..16u8 {
        let (l, r) = (local[usize::from(nibble)], remote[usize::from(nibble)]);
        if l == r {
            continue;
        }
        let mut child_path = node.at.path.clone();
        child_path.push(nibble);
        let child = TreeRef {
            owner: node.at.owner,
            path: child_path,
        };
        match (l, r) {
            (_, Some(TrieSlot::Subtree(_))) => {
                if child.path.len() <= MAX_PATH {
                    walk.frontier.push_back(child.clone());
                }
                if let Some(TrieSlot::Entity(id, _)) = l {
                    // The peer holds a subtree here: ours may be among its entities or not;
                    // pushing it whole is safe (joins are idempotent). Whether the peer lacks it
                    // is known once the walk has been down that subtree.
                    if walk.pushed_set.insert(id) {
                        walk.push.push_back((id, true));
                        walk.ambiguous.insert(id);
                    }
                }
            }
            (l, Some(TrieSlot::Entity(rid, rh))) => {
                if walk.ambiguous.remove(&rid) {
                    walk.at_peer.insert(rid);
                }
                let same = state.entity_hashes(&rid).is_some_and(|h| h.full == rh);
                if !same {
                    walk.pull.insert(rid);
                    if state.entity(&rid).is_some() {
                        // Both have it: exchange its own state; its children are compared apart.
                        queue_push(walk, rid, false);
                    }
                }
                match l {
                    Some(TrieSlot::Entity(lid, _)) if lid != rid => queue_push(walk, lid, true),
                    Some(TrieSlot::Subtree(_)) => {
                        let mut ids = Vec::new();
                        local_entities_under(state, &child, &mut ids);
                        for id in ids.into_iter().filter(|id| *id != rid) {
                            queue_push(walk, id, true);
                        }
                    }
                    _ => {}
                }
            }
            (Some(TrieSlot::Entity(lid, _)), None) => queue_push(walk, lid, true),
            (Some(TrieSlot::Subtree(_)), None) => {
                let mut ids = Vec::new();
                local_entities_under(state, &child, &mut ids);
                for id in ids {
                    queue_push(walk, id, true);
                }
            }
            (None, None) => {}
        }
    }
}
