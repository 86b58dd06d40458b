//! The one cfg alias of shell crates: `js_host` = wasm32 inside a JS host (browser or Node.js).
//! There `FileStore` reaches the file system only through a JS object (`JsDisk`, in Node.js), and
//! `IdbStore` exists.
fn main() {
    cfg_aliases::cfg_aliases! {
        js_host: { all(target_family = "wasm", target_os = "unknown") },
    }
}
