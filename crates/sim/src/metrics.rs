//! What a run measured.

use std::collections::BTreeMap;

use tabmesh_sync::{Protocol, SessionOutcome};

/// Counters of one simulation run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Events processed.
    pub events: u64,
    /// Messages put on the wire (gossip copies and direct messages).
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages lost, blocked by a partition or sent to a crashed node.
    pub dropped: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
    /// Local transactions committed.
    pub writes: u64,
    /// Crashes and restarts.
    pub crashes: u64,
    /// Restarts from persisted batches.
    pub restarts: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Write batches persisted.
    pub persisted_batches: u64,
    /// Sync sessions by protocol: none, delta sync, Merkle, snapshot.
    pub sessions: [u64; 4],
    /// Sessions that converged, pulled, failed or diverged.
    pub session_outcomes: BTreeMap<&'static str, u64>,
    /// Snapshots installed per node.
    pub snapshots_by_node: BTreeMap<usize, u64>,
    /// Messages and deltas nodes refused.
    pub rejections: u64,
    /// A few refusal messages, for debugging.
    pub rejection_samples: Vec<String>,
    /// A few failed sessions, for debugging.
    pub failure_samples: Vec<String>,
    /// Errors the harness met (a write or restart that failed): a run with any is a failure.
    pub failures: Vec<String>,
    /// When convergence held (simulated ms from the start).
    pub converged_at_ms: Option<u64>,
    /// Entities removed by tombstone GC, summed over every replica at the end of the run (a
    /// restart resets a replica's counters).
    pub tombstones_collected: u64,
    /// Received fragments dropped as older than the GC horizon (same sum).
    pub ancient_dropped: u64,
    /// Entities forgotten because a peer had collected them (same sum).
    pub entities_forgotten: u64,
    /// Entities held at the end of the run, tombstones included, summed over every replica.
    pub entities_at_end: u64,
    /// App events that named a handler (handlers scenarios).
    pub handler_events: u64,
    /// Handler runs, over every node.
    pub handler_runs: u64,
    /// Handler runs per node.
    pub handler_runs_by_node: BTreeMap<usize, u64>,
    /// (event, member) pairs where the member applied the delta through its DAG: each must run
    /// the handler (exactly once without crashes).
    pub handler_pairs_due: u64,
    /// (event, member) pairs where the member got the delta's state another way (snapshot, Merkle
    /// repair): no handler runs there.
    pub handler_pairs_skipped: u64,
    /// Handler runs beyond the first for one (event, member) (only after crashes).
    pub handler_reruns: u64,
    /// Handlers that failed or hit the hop bound.
    pub handler_failures: u64,
    /// Deltas kept without effect by the removal cut, over every node (removal scenarios).
    pub voided: u64,
    /// State rebuilds after a removal voided deltas already applied, over every node.
    pub rebuilds: u64,
    /// Byzantine runs: forged copies of deltas the Byzantine member sent (messages).
    pub byz_forged: u64,
    /// Distinct forged deltas among them.
    pub byz_forged_deltas: u64,
    /// Refusals of a forged delta (by its id) reported by honest nodes.
    pub byz_forged_refused: u64,
    /// Rejections of the Byzantine member's messages reported by honest nodes (any reason).
    pub byz_rejections: u64,
    /// Bans of the Byzantine member by honest nodes.
    pub byz_bans: u64,
    /// Frames it sent again at random times.
    pub byz_replays: u64,
    /// Sealed messages (sync requests and answers it got) it replayed inside junk bursts.
    pub byz_burst_replays: u64,
    /// Its equivocating writes (each a twin delta with the real one's parents and HLC).
    pub byz_equivocations: u64,
    /// Junk messages it sent.
    pub byz_junk: u64,
    /// Direct messages it withheld (requests and answers).
    pub byz_withheld: u64,
    /// Bans of an honest peer by an honest node (a failure of a Byzantine run).
    pub honest_bans: u64,
    /// Honest nodes that were handed junk or a forged signature under a fresh id, each of which
    /// must have reported the Byzantine member (set when the run ends).
    pub byz_reporters: u64,
}

impl Metrics {
    pub(crate) fn count_session(&mut self, protocol: Protocol, outcome: &SessionOutcome) {
        let slot = match protocol {
            Protocol::None => 0,
            Protocol::DeltaSync => 1,
            Protocol::MerkleCompare => 2,
            Protocol::Snapshot => 3,
        };
        self.sessions[slot] += 1;
        let name = match outcome {
            SessionOutcome::InSync => "in-sync",
            SessionOutcome::Pulled { .. } => "pulled",
            SessionOutcome::Converged { .. } => "converged",
            SessionOutcome::Diverged { .. } => "diverged",
            SessionOutcome::Failed(_) => "failed",
            _ => "other",
        };
        *self.session_outcomes.entry(name).or_insert(0) += 1;
    }

    /// Snapshots installed in the whole run.
    pub fn snapshots(&self) -> u64 {
        self.snapshots_by_node.values().sum()
    }
}
