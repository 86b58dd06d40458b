//! `tabmesh-sim`: a deterministic simulation of many [`NodeCore`](tabmesh_node::NodeCore)s over a
//! faulty network.
//!
//! A [`Sim`] owns a virtual clock, a seeded generator and an event queue. Nodes are real
//! `NodeCore`s; the network delivers their frames with latency, jitter, loss, duplication and
//! reordering, cuts partitions that heal by themselves, crashes nodes and restarts them **only from
//! the write batches they asked to persist**, skews every node's clock (and makes one jump back).
//! Nodes keep writing through partitions and sync. After the last write the run checks, after every
//! event, the convergence properties:
//!
//! - C1 no message in flight;
//! - C2 every node up and idle (no sync session, no request in flight);
//! - C3 no pending deltas (nor deltas buffered during a snapshot);
//! - C4 no sync timers armed (request and session deadlines, parent-pull retries);
//! - C5 in every context, every member's Merkle root **and** values are equal.
//!
//! With [`SimConfig::handlers`] the contexts run the example app `kv-store-with-handlers` (the real
//! module, `target/apps/kv-store-with-handlers.wasm`, built by `scripts/build-apps.sh`; without it
//! the run fails at once, naming the script) and every write is `execute("set", {key, value})`,
//! whose event names the handler `on_set`; C3 also waits for due handlers, and after convergence
//! the run checks that each handler ran exactly once (at least once when nodes crashed) on every
//! member that applied the delta through its DAG, and never on the author ([`Metrics::handler_runs`] and the counters next to it).
//!
//! With [`SimConfig::byzantine`] the last node is a Byzantine member ([`Byzantine`]): it joined
//! like the others, then forges copies of its deltas, replays frames, equivocates (twin deltas
//! with its real deltas' parents and HLC, written by a copy of it loaded from its disk), floods
//! junk and withholds every direct message. C1–C5 hold among the honest nodes (its messages are
//! not waited for, like a removed member's), and after convergence [`Sim::check_byzantine`]
//! checks that no honest replica holds a forged delta, that every honest node handed junk or a
//! forged signature reported it (a rejection or a ban), and that no honest node banned another.
//!
//! Same seed, same run: [`Sim::trace_hash`] hashes every event processed.
//!
//! What it is not: a network or storage implementation (those are the drivers'), or a benchmark of
//! wall time (simulated time only). Dev-only: nothing ships with it.
//!
//! ```
//! use tabmesh_sim::{Chaos, Sim, SimConfig, Verdict};
//!
//! let mut sim = Sim::new(SimConfig::new(7, 3, Chaos::Light));
//! assert!(matches!(sim.run(), Verdict::Converged { .. }));
//! ```

mod app;
mod byzantine;
mod config;
mod metrics;
mod workload;
mod world;

pub use app::{handler_app, HANDLER_APP};
pub use config::{
    Byzantine, Chaos, Faults, Scenario, SimConfig, Workload, HOSTILE_TAIL_MS, REPLAY_MIN_AGE_MS,
    REPLAY_POOL,
};
pub use metrics::Metrics;
pub use world::{Sim, Verdict};
