//! The integration tests of `tabmesh-sync`: one binary, one module per scenario, through the public
//! API only. Most scenarios run replicas on the deterministic driver of `support.rs` (virtual clock,
//! message queue, every message round-tripped through the codec).
//!
//! Every module uses `tabmesh_testkit::test` so the same source runs natively and in a JS host.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

mod bounds;
mod commit;
mod convergence;
mod direct;
mod events;
mod gc;
mod governance;
mod hostile;
mod merkle;
mod periodic;
mod persistence;
mod pruned;
mod pull;
mod receive;
mod select;
mod snapshot;
mod wire;
