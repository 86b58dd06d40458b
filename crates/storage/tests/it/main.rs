//! `tabmesh-storage` tests: the batch codec, `MemoryStore` and `MemoryBlobStore` everywhere,
//! `FileStore` and `FileBlobStore` on disk natively, `IdbStore` and `IdbBlobStore` in headless
//! Chromium's IndexedDB. The same sources run in headless Chromium (without the file tests).
//! Tests use only the public API.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

mod blob;
mod codec;
mod memory;
// IndexedDB: in a JS host only.
#[cfg(target_family = "wasm")]
mod idb;
// Files on disk: native only (in a JS host `FileStore` runs on a JS file system, which the
// Node.js end-to-end tests exercise).
#[cfg(not(target_family = "wasm"))]
mod file;
