//! `tabmesh-peer`: a headless native tabmesh node (an IO shell).
//!
//! `tabmesh-peer --relay <relay multiaddr …/p2p/<id>> --dir <store directory>` starts a node on a
//! file store ([`tabmesh_storage::FileStore`]; a restart resumes from it), reserves a slot on the
//! relay and serves **JSON lines**: one command per line on stdin, one reply or event per line on
//! stdout (logs go to stderr).
//!
//! Commands (`{"id": n, "cmd": …}`; the reply is `{"id": n, "ok": …}` or
//! `{"id": n, "err": "…"}`):
//!
//! | `cmd` | fields | `ok` |
//! |---|---|---|
//! | `create` | `app` (module path; absent: plain state) | `{"ctx"}` |
//! | `invite` | `ctx`, `ttl_ms` (default 1 h) | `{"link"}` |
//! | `join` | `link`, `app` | `{"ctx"}` |
//! | `exec` | `ctx`, `method`, `args` (JSON text) | `{"ret", "delta"}` |
//! | `fill` | `ctx`, `kib` | `{"delta"}`: one plain write of `kib` KiB (map `fill`) |
//! | `state` | `ctx` | `{"root", "heads", "applied", "pending", "entities", "member", "peers"}` |
//! | `sync` | `ctx` | `{}` (a sync round now) |
//! | `stats` | | the network counters |
//! | `quit` | | `{}`, then the process exits 0 |
//!
//! Events: `{"ev": "ready", "peer", "node"}` first, then `reserved`, `relay_lost`, `peer_joined`,
//! `peer_left`, `gossiped` (with `via`, the forwarding peer), `fetched`, `circuit` (with the
//! relay's limits), `joined`, and `node` (any other core event, in debug form). Every line has
//! `t_ms`, the wall clock.
//!
//! What it deliberately is not: a user interface or an API server (it is the native node of the
//! tests, benchmarks and scripts); the browser and Node.js node is the npm package.
//!
//! The protocol itself ([`control`]) compiles everywhere: the Chromium test page speaks it too.
//!
//! ```no_run
//! // The binary's `main`; tests spawn it as a process and talk JSON lines to it.
//! # #[cfg(not(target_family = "wasm"))]
//! let _ = tabmesh_peer::main();
//! ```

pub mod control;
#[cfg(not(js_host))]
mod native;

pub use control::{command, event_line};
#[cfg(not(js_host))]
pub use native::{main, run, Args};
