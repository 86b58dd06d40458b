//! `FileStore` on disk (native only): each test works in its own temporary directory; `crash`
//! runs it on a simulated disk that loses power.

mod compaction;
mod crash;
mod recovery;
mod store;
mod support;
