//! The driver natively, offline (the relay address points at a closed loopback port): what it
//! does with its store, below the network.
#![cfg(not(all(target_family = "wasm", target_os = "unknown")))]

mod blobs;
mod quota;
