//! `tabmesh-node` tests: `NodeCore`'s contract (outputs, persistence, restart, bad input, apps,
//! governance), through its public API. The same sources run in headless Chromium.

#![allow(clippy::unwrap_used, clippy::panic)]

mod apps;
// Reads the built kv-store app from disk: native only.
#[cfg(not(target_family = "wasm"))]
mod blobs;
mod core;
// Reads the built example apps from disk: native only.
#[cfg(not(target_family = "wasm"))]
mod example_apps;
mod governance;
mod net;
