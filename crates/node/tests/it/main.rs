//! `tabmesh-node` tests: `NodeCore`'s contract (outputs, persistence, restart, bad input), through
//! its public API. The same sources run in headless Chromium.

#![allow(clippy::unwrap_used, clippy::panic)]

mod apps;
mod core;
