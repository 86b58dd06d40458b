//! `FileStore` and `FileBlobStore` on disk (native only): each test works in its own temporary
//! directory; `crash` runs the store on a simulated disk that loses power.

mod blob;
mod compaction;
mod crash;
mod recovery;
mod store;
mod support;
