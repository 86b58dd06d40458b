//! End-to-end tests with real processes on 127.0.0.1: the relay, native peers, and tabmesh pages
//! in headless Chromium. One test binary (one link); each test starts its own processes.

mod bench;
mod blobs;
mod chromium;
mod compare;
mod demo;
mod harness;
mod net;
mod nodejs;
mod tabs;
