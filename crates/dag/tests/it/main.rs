//! The integration tests of `tabmesh-dag`: one binary, one module per scenario.
//!
//! Every module uses `tabmesh_testkit::test` so the same source runs natively and in a JS host.
//! Tests use only the public API.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

mod applier;
mod checkpoint;
mod fork_merge;
mod linear;
mod out_of_order;
mod pending;
mod persist;
mod pruning;
mod random_orders;
mod satisfied;
mod since;
mod structural;
