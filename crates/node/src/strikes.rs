//! Peer penalties: a peer whose messages keep failing in ways no honest peer's do (malformed
//! bytes, forged signatures, a stranger's sealed messages, structurally invalid deltas, requests
//! over its rate) is ignored for a while.
//!
//! Each such failure is a strike; [`STRIKES_TO_BAN`] strikes within [`STRIKE_WINDOW_MS`] ban the
//! peer for [`BAN_MS`]: its messages are dropped unread (gossip and direct alike) and counted. What
//! an honest peer may cause — a late response, a key it has and this node lacks, a delta whose
//! state conflicts with one applied here (an equivocating author's, forwarded in good faith), a
//! governance race — is not a strike.

use std::collections::BTreeMap;

use tabmesh_base::{make_room, NodeId};
use tabmesh_sync::{AccessError, SyncError};

/// Strikes within [`STRIKE_WINDOW_MS`] that ban a peer.
pub const STRIKES_TO_BAN: u32 = 16;

/// The window strikes are counted in (it starts at a peer's first strike).
pub const STRIKE_WINDOW_MS: u64 = 60_000;

/// How long a banned peer is ignored.
pub const BAN_MS: u64 = 10 * 60 * 1000;

/// Peers with strikes or bans remembered at once; past it the oldest record is forgotten (a
/// flood of fresh identities cannot grow the table).
pub const MAX_STRIKE_RECORDS: usize = 4096;

/// Whether a refusal tells a hostile (or broken) peer from an honest one.
pub fn is_strike(error: &SyncError) -> bool {
    match error {
        SyncError::Codec(_)
        | SyncError::FrameTooLarge { .. }
        | SyncError::PayloadTooLarge { .. }
        | SyncError::WrongContext { .. }
        | SyncError::Protocol(_)
        | SyncError::RateLimited { .. }
        | SyncError::Dag(_) => true,
        SyncError::Access(a) => matches!(
            a,
            AccessError::BadSignature | AccessError::NotAMember { .. } | AccessError::Decrypt
        ),
        SyncError::Rejected { reason, .. } => is_strike(reason),
        _ => false,
    }
}

/// Strikes and bans per peer.
#[derive(Debug, Default)]
pub(crate) struct Strikes {
    /// Per peer: strikes in the current window, and when the window started.
    strikes: BTreeMap<NodeId, (u32, u64)>,
    /// Banned peers, until when.
    banned: BTreeMap<NodeId, u64>,
    /// Messages dropped because their sender was banned.
    pub(crate) dropped: u64,
}

impl Strikes {
    /// Whether `peer` is banned at `now_ms` (an expired ban is forgotten).
    pub(crate) fn is_banned(&mut self, now_ms: u64, peer: &NodeId) -> bool {
        match self.banned.get(peer) {
            Some(until) if *until > now_ms => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    /// Records a strike; returns the end of the ban it caused, if it banned the peer.
    pub(crate) fn strike(&mut self, now_ms: u64, peer: NodeId) -> Option<u64> {
        make_room(&mut self.strikes, &peer, MAX_STRIKE_RECORDS, |(_, at)| *at);
        let (count, since) = self.strikes.entry(peer).or_insert((0, now_ms));
        if now_ms.saturating_sub(*since) > STRIKE_WINDOW_MS {
            *count = 0;
            *since = now_ms;
        }
        *count += 1;
        if *count < STRIKES_TO_BAN {
            return None;
        }
        self.strikes.remove(&peer);
        make_room(&mut self.banned, &peer, MAX_STRIKE_RECORDS, |until| *until);
        let until = now_ms + BAN_MS;
        self.banned.insert(peer, until);
        Some(until)
    }

    /// Peers banned now.
    pub(crate) fn banned(&self, now_ms: u64) -> usize {
        self.banned.values().filter(|t| **t > now_ms).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tabmesh_testkit::test]
    fn sixteen_strikes_in_a_minute_ban_for_ten_minutes_and_slow_ones_never_do() {
        let mut s = Strikes::default();
        let bad = NodeId([1; 32]);
        for i in 0..STRIKES_TO_BAN - 1 {
            assert_eq!(s.strike(u64::from(i), bad), None);
        }
        assert_eq!(s.strike(100, bad), Some(100 + BAN_MS));
        assert!(s.is_banned(200, &bad));
        assert!(!s.is_banned(100 + BAN_MS, &bad));
        // One strike every five seconds never adds up to a ban.
        let slow = NodeId([2; 32]);
        for i in 0..100 {
            assert_eq!(s.strike(i * 5_000, slow), None);
        }
        assert_eq!(s.banned(0), 0);
    }

    #[tabmesh_testkit::test]
    fn honest_failures_are_not_strikes() {
        assert!(is_strike(&SyncError::Access(AccessError::BadSignature)));
        assert!(is_strike(&SyncError::RateLimited { per_sec: 1 }));
        assert!(!is_strike(&SyncError::UnexpectedResponse { id: 3 }));
        assert!(!is_strike(&SyncError::SnapshotMismatch));
    }
}
