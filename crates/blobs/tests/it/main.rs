//! The integration tests of `tabmesh-blobs`: one binary, one module per subject, through the
//! public API only. Fetch scenarios run on the deterministic driver of `support.rs` (holders
//! serving through the real codecs, a virtual clock, the in-flight bounds checked after every
//! action).
//!
//! Every module uses `tabmesh_testkit::test` so the same source runs natively and in a JS host.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

mod chunking;
mod fetch;
mod hostile;
mod manifest;
mod random;
mod resume;
mod serve;
