//! The integration tests of `tabmesh-auth`: one binary, one module per primitive.
//!
//! Every module uses `tabmesh_testkit::test` so the same source runs natively and in a JS host.
//! Tests use only the public API.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

mod aead;
mod entropy;
mod invite;
mod keys;
mod link;
mod sealed_box;
mod symkey;
