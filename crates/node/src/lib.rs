//! `tabmesh-node`: the node.
//!
//! [`NodeCore`] is the sans-IO state machine of one node with any number of contexts. Inputs are
//! method calls, each with `now_ms`: opening a context, a local commit (from an app call), bytes
//! from a peer, a peer joining or leaving a context, a timer firing; a restart rebuilds the core
//! with [`NodeCore::load`] from what its earlier persist batches wrote. Outputs are drained with
//! [`NodeCore::poll_output`]: subscribe, publish on a context's topic, send to a peer, persist a
//! write batch, arm or cancel a timer, notify subscribers.
//!
//! **Apps.** A context runs an app module ([`NodeCore::create_context`],
//! [`NodeCore::join_context`]); [`NodeCore::execute`] calls one of its methods in one state
//! transaction that becomes one delta on success and vanishes on any error. Events naming a
//! handler run that handler on every member that applies the delta through its DAG except the
//! author, as a new delta with a hop count bounded by [`MAX_HOPS`](tabmesh_sync::MAX_HOPS); due
//! handlers are persisted with the delta that made them due and replayed after a restart
//! (at least once; exactly once without crashes). Handler outcomes are [`NodeEvent::HandlerRan`]
//! and [`NodeEvent::HandlerFailed`], never fatal.
//!
//! What it deliberately is not: it reads no clock, draws no randomness (a seed drives every
//! choice), does no IO and spawns nothing. The browser, Node.js and native drivers (async shells
//! owning timers, storage and the network) and the deterministic simulator wrap it; they are the
//! only code that touches the outside world.
//!
//! ```
//! use tabmesh_base::{ContextId, MemoryKv, NodeId};
//! use tabmesh_node::{NodeConfig, NodeCore, Output};
//!
//! let ctx = ContextId([9; 32]);
//! let mut node = NodeCore::new(NodeId([1; 32]), NodeConfig::default(), 42);
//! node.open_context(0, ctx)?;
//! node.commit(5, ctx, |txn| {
//!     txn.counter("visits")?.increment(1)?;
//!     Ok(())
//! })?;
//!
//! // The driver persists, publishes and arms timers; here we only keep the writes.
//! let mut disk = MemoryKv::new();
//! while let Some(out) = node.poll_output() {
//!     if let Output::Persist(batch) = out {
//!         disk.apply(&batch);
//!     }
//! }
//! // A restart rebuilds the node from what it persisted.
//! let restarted = NodeCore::load(NodeId([1; 32]), NodeConfig::default(), 42, 10, &disk)?;
//! assert_eq!(restarted.state(&ctx).map(|s| s.counter("visits").map(|c| c.value())), Some(Ok(1)));
//! # Ok::<(), tabmesh_node::NodeError>(())
//! ```

mod app;
mod core;
mod error;

pub use crate::core::{
    ExecOutcome, NodeConfig, NodeCore, NodeEvent, Output, TimerKey, MAX_CONTEXTS,
    MAX_HANDLERS_PER_INPUT,
};
pub use error::NodeError;
