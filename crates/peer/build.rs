//! The one cfg alias of shell crates: `js_host` = wasm32 inside a JS host (browser or Node.js).
fn main() {
    cfg_aliases::cfg_aliases! {
        js_host: { all(target_family = "wasm", target_os = "unknown") },
    }
}
