//! `select_protocol`: which catch-up a heads exchange leads to.

use crate::Summary;

/// The catch-up protocols a periodic sync session can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Nothing to fetch from this peer.
    None,
    /// Page through the deltas the peer has and we lack ([`Request::DeltasSince`]).
    ///
    /// [`Request::DeltasSince`]: crate::Request::DeltasSince
    DeltaSync,
    /// Walk both Merkle tries from the root and exchange differing entities both ways.
    MerkleCompare,
    /// Copy the peer's whole state (only ever for an empty replica).
    Snapshot,
}

/// Chooses the protocol for a session, from our summary, the peer's, whether every one of the
/// peer's heads is already applied (or pruned) here, and the delta-gap threshold. The rules, in
/// order:
///
/// 1. the peer has neither state nor history → [`Protocol::None`] (it will pull from others);
/// 2. we have neither → [`Protocol::Snapshot`]: the only case a snapshot is allowed, so a replica
///    with state is never overwritten;
/// 3. equal roots → [`Protocol::None`]: the states are equal, whatever the DAGs;
/// 4. the same heads but different roots → [`Protocol::MerkleCompare`] (the DAGs agree but the
///    states do not: repair them). "The same" also covers a peer whose heads we all have and that
///    names every one of ours (its extra heads are ancestors of ours here): both know the same
///    history. States can differ under equal histories once tombstones are collected, since a
///    replica drops fragments older than its GC horizon when it applies them;
/// 5. the peer names heads and we already have every one of them → [`Protocol::None`]: we are
///    ahead; the peer pulls from us when it syncs;
/// 6. nothing waits in our pending buffer and the peer is more than `delta_gap_threshold`
///    applied deltas ahead of us → [`Protocol::MerkleCompare`] (cheaper than replaying a long
///    history; with deltas pending, their history is what we need, so we page through it);
/// 7. otherwise → [`Protocol::DeltaSync`]. (A delta sync that meets pruned history falls back to
///    Merkle comparison at run time.)
///
/// The same inputs always give the same answer; both sides of a pair may choose differently, since
/// each session pulls what its initiator lacks.
pub fn select_protocol(
    local: &Summary,
    remote: &Summary,
    remote_heads_known: bool,
    delta_gap_threshold: u64,
) -> Protocol {
    if remote.is_empty() {
        return Protocol::None;
    }
    if local.is_empty() {
        return Protocol::Snapshot;
    }
    if local.root == remote.root {
        return Protocol::None;
    }
    let same_history = local.heads == remote.heads
        || (remote_heads_known
            && !local.heads.is_empty()
            && local.heads.iter().all(|h| remote.heads.contains(h)));
    if same_history {
        return Protocol::MerkleCompare;
    }
    if remote_heads_known && !remote.heads.is_empty() {
        return Protocol::None;
    }
    if local.pending == 0 && remote.applied.saturating_sub(local.applied) > delta_gap_threshold {
        return Protocol::MerkleCompare;
    }
    Protocol::DeltaSync
}
