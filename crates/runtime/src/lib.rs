//! `tabmesh-runtime`: runs app modules (WebAssembly) in [wasmi], metered, against a [`Host`].
//!
//! A tabmesh app is a WebAssembly module. The node calls one of its **methods** (an exported
//! function `() -> ()`) with some input bytes; the method reads the input, reads and writes the
//! context's CRDT collections, logs, emits events and sets a return value — all through a dozen
//! host functions imported from the module `"tabmesh"`. The [`abi`] module documents those
//! imports, the exports a module must have and the encoded storage and blob operations, and holds
//! the types and codec the guest SDK shares.
//!
//! - [`Runtime`] owns one wasmi engine (fuel metering on, eager compilation, NaNs canonicalised,
//!   no start functions) and a bounded cache of compiled modules keyed by their SHA-256:
//!   [`Runtime::load`] validates and compiles once, [`Runtime::execute`] instantiates per call in
//!   a fresh store.
//! - [`Host`] is everything the app reaches of the node: storage operations, blob operations
//!   (unsupported by default), the context and executor ids, the time and random bytes. The node
//!   implements it over a transaction that it **commits only when the call returns `Ok`**.
//! - Every call is bounded ([`Limits`], documented constants): fuel, memory, call depth and value
//!   stack, log lines and bytes, events and event bytes, return value, host-call arguments and
//!   results, random bytes, input, module size. Exceeding any of them, trapping, or breaking the
//!   ABI ends the call with a typed [`RuntimeError`], never a panic.
//! - A successful call yields an [`Outcome`]: return value, logs, events (each optionally naming a
//!   handler method) and the fuel used.
//!
//! What this crate deliberately is not: it does no IO, reads no clock and draws no randomness (the
//! host supplies time and random bytes), has no target-specific code, and knows nothing of the
//! state, deltas, the network or storage: `tabmesh-base` and `tabmesh-abi` are its only tabmesh
//! dependencies. It does
//! not decide what an event means, which member runs a handler, or when writes are committed.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tabmesh_base::{ContextId, MemberId};
//! use tabmesh_runtime::abi::{Op, OpError, StorageOp, Value};
//! use tabmesh_runtime::{Host, Limits, Runtime, RuntimeError};
//!
//! /// A host whose storage is a map of registers; `pending` is the call's transaction.
//! #[derive(Default)]
//! struct TinyHost {
//!     committed: BTreeMap<String, Vec<u8>>,
//!     pending: BTreeMap<String, Vec<u8>>,
//! }
//!
//! impl Host for TinyHost {
//!     fn context_id(&self) -> ContextId { ContextId([1; 32]) }
//!     fn executor_id(&self) -> MemberId { MemberId([2; 32]) }
//!     fn now_ms(&self) -> u64 { 1_700_000_000_000 }
//!     fn random_bytes(&mut self, out: &mut [u8]) { out.fill(4) }
//!     fn storage(&mut self, op: &StorageOp<'_>) -> Result<Value, OpError> {
//!         match op.op {
//!             Op::RegisterSet { value } => {
//!                 self.pending.insert(op.field.to_owned(), value.to_vec());
//!                 Ok(Value::Unit)
//!             }
//!             _ => Err(OpError::unsupported("this operation")),
//!         }
//!     }
//! }
//!
//! // The app: `greet` sets the register `greeting` and logs; `spin` never ends.
//! let op = StorageOp { field: "greeting", path: vec![], op: Op::RegisterSet { value: b"hello" } };
//! let op = op.encode();
//! let escaped: String = op.iter().map(|b| format!("\\{b:02x}")).collect();
//! let wasm = wat::parse_str(format!(r#"(module
//!     (import "tabmesh" "storage" (func $storage (param i32 i32) (result i32)))
//!     (import "tabmesh" "log" (func $log (param i32 i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 0) "{escaped}")
//!     (data (i32.const 1024) "greeted")
//!     (func (export "greet")
//!         (drop (call $storage (i32.const 0) (i32.const {len})))
//!         (call $log (i32.const 1024) (i32.const 7)))
//!     (func (export "spin") (loop (br 0))))"#, len = op.len()))?;
//!
//! let mut runtime = Runtime::new(Limits { fuel: 1_000_000, ..Limits::default() });
//! let app = runtime.load(&wasm)?; // validated and compiled once, cached by SHA-256
//!
//! let mut host = TinyHost::default();
//! let outcome = runtime.execute(app, "greet", b"", &mut host)?;
//! host.committed.append(&mut host.pending); // success: the caller commits
//! assert_eq!(outcome.logs, ["greeted"]);
//! assert_eq!(host.committed["greeting"], b"hello");
//!
//! // A runaway call ends with a typed error; the caller discards its writes.
//! let err = runtime.execute(app, "spin", b"", &mut host).unwrap_err();
//! assert_eq!(err, RuntimeError::OutOfFuel { budget: 1_000_000 });
//! host.pending.clear();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [wasmi]: https://docs.rs/wasmi

/// The app ABI (the `tabmesh-abi` crate, shared with the guest SDK).
#[doc(inline)]
pub use tabmesh_abi as abi;
mod error;
mod host;
mod imports;
pub mod limits;
mod runtime;

pub use error::{Limit, RuntimeError};
pub use host::{Event, Host, Outcome};
pub use limits::Limits;
pub use runtime::{CacheStats, ModuleRef, Runtime};

#[doc(no_inline)]
pub use tabmesh_base::{ContextId, Hash, MemberId};
