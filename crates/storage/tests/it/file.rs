//! `FileStore` on disk (native only): each test works in its own temporary directory.

mod compaction;
mod recovery;
mod store;
mod support;
