//! `tabmesh-base` tests. The same sources run natively and in headless Chromium.

mod bounded;
mod codec;
mod hash;
mod hlc;
mod kv;
mod rng;
