//! `tabmesh-sdk`: write a tabmesh app in Rust and compile it to a WebAssembly module.
//!
//! An app is a **state** struct whose fields are CRDT collections, a **logic** impl whose `pub`
//! methods become the module's exported methods, optional **events**, and an optional **init**.
//!
//! ```
//! use tabmesh_sdk::prelude::*;
//!
//! #[app::state]
//! pub struct KvStore {
//!     items: Map<Register>, // the collection id derives from the field name: "items"
//!     writes: Counter,
//! }
//!
//! #[app::event]
//! pub enum KvEvent {
//!     Inserted { key: String, value: String },
//!     Removed { key: String },
//! }
//!
//! #[app::logic]
//! impl KvStore {
//!     /// Runs once, on the context's creator, inside the genesis delta (export `__tabmesh_init`).
//!     #[app::init]
//!     pub fn init(&mut self) -> Result<()> {
//!         self.items.insert("created", "yes")
//!     }
//!
//!     /// `ctx.execute("set", { key: "a", value: "1" })` → `null`.
//!     pub fn set(&mut self, key: String, value: String) -> Result<()> {
//!         self.items.insert(&key, &value)?;
//!         self.writes.increment(1)?;
//!         emit!(KvEvent::Inserted { key, value })
//!     }
//!
//!     /// Read-only (`&self`): collection writes need `&mut self`.
//!     pub fn get(&self, key: String) -> Result<Option<String>> {
//!         self.items.get_string(&key)
//!     }
//! }
//!
//! // Natively there is no host: every host call is a typed error (see below).
//! let kv = <KvStore as tabmesh_sdk::State>::load();
//! assert_eq!(kv.get("a".into()), Err(Error::NoHost));
//! ```
//!
//! A state field that is not a collection does not compile ("field `name` of app state `Bad` has
//! type `String`: an app's state holds only tabmesh collections …"):
//!
//! ```compile_fail
//! use tabmesh_sdk::prelude::*;
//!
//! #[app::state]
//! pub struct Bad {
//!     name: String,
//! }
//! ```
//!
//! Nor does a read-only method that writes, even through a nested entry:
//!
//! ```compile_fail
//! use tabmesh_sdk::prelude::*;
//!
//! #[app::state]
//! pub struct Hits {
//!     per_page: Map<Counter>,
//! }
//!
//! #[app::logic]
//! impl Hits {
//!     pub fn peek(&self, page: String) -> Result<()> {
//!         self.per_page.entry(&page).increment(1)
//!     }
//! }
//! ```
//!
//! # The app model
//!
//! - [`app::state`] on a struct with named fields, every one of an SDK collection type
//!   ([`Register`], [`Counter`], [`PnCounter`], [`Map`], [`Set`], [`List`], [`Text`]; written out,
//!   not through an alias). Anything else is a compile error. Each field is a handle on the
//!   root-level collection named after the field, so collection ids are deterministic and the
//!   root holds no value of its own. Custom merge functions are out of scope: the state merges
//!   exactly as its collections do (`#[app::state(merge = …)]` is a compile error).
//! - [`app::logic`] on the state's inherent impl: every `pub fn` taking `&self` (read-only: the
//!   handles' writes need `&mut self`) or `&mut self` is exported under its own name. Arguments
//!   are decoded from the call's input, a JSON object with one member per argument (owned,
//!   [`serde::Deserialize`] types; an empty input or `null` is `{}`; missing `Option` members are
//!   `None`). The return value is encoded as JSON (`()` is `null`). A method returning a type
//!   named `Result` (e.g. [`Result<T>`](Result)) answers `Ok(v)` with `v` and ends `Err(e)` with
//!   the ABI's `fail`, whose bytes are `e` as JSON (the call fails and the node discards its
//!   writes). Names starting with `__tabmesh` are refused. Other methods are private helpers.
//! - [`app::init`] marks at most one logic method as the init hook: it is exported as
//!   [`INIT_HOOK`] (`__tabmesh_init`) instead of its name, so users cannot call it; the node calls
//!   it once, on the creator, inside the genesis delta, with the creation arguments as input
//!   (joiners never run it). An app without one exports no hook.
//! - [`app::event`] on an enum (or struct) implements [`Event`]: the kind is the variant's name,
//!   the data the variant's fields as a JSON object (a one-field tuple variant: that value).
//!   [`emit!`]`(event)` emits it; [`emit!`]`(event, Self::handler)` also names an exported method
//!   that the node calls on receiving members with the data as input — so the handler's
//!   arguments are named like the event's fields. Handlers run after the write commits, possibly
//!   more than once: keep them commutative and idempotent-friendly (counters, sets).
//! - [`blob`]: large byte strings beside the state. [`blob::create`] → [`BlobWriter`] →
//!   [`BlobRef`], the reference an app stores in a collection (its text, `tabmesh-blob:` + 64
//!   hex digits, replicates with the delta; the bytes travel separately); [`blob::open`] →
//!   [`BlobReader`].
//!
//! # Native builds
//!
//! The SDK is a guest crate, compiled into app modules for `wasm32-unknown-unknown`. It also
//! compiles natively (the workspace is built, linted and tested natively): there the host imports
//! are replaced by functions answering [`Error::NoHost`], so every collection operation,
//! [`emit!`], [`blob`] and [`env`](mod@env) call returns that typed error, and the macros' export
//! functions keep mangled names (a method named `write` must not shadow libc's in a native
//! cdylib). This is the one target-specific choice in the SDK (`src/sys.rs`).
//!
//! Panics end the call with a trap (no message). Keep modules small: the SDK pulls in `serde`
//! and `serde_json` only; build apps with `scripts/build-apps.sh` (opt-level `z`, LTO).

pub mod blob;
mod collections;
pub mod env;
mod error;
mod event;
mod sys;

#[doc(hidden)]
pub mod __private;

pub use blob::{BlobReader, BlobRef, BlobWriter, BLOB_REF_PREFIX};
pub use collections::{Collection, Counter, List, Map, PnCounter, ReadOnly, Register, Set, Text};
pub use error::{Error, Result};
pub use event::{emit_event, Event};
pub use tabmesh_abi::{Page, INIT_HOOK, MAX_PAGE};

/// The app macros: `#[app::state]`, `#[app::logic]`, `#[app::init]`, `#[app::event]` (see the
/// crate docs).
pub mod app {
    pub use tabmesh_sdk_macros::{event, init, logic, state};
}

/// What an app needs in scope.
pub mod prelude {
    pub use crate::{
        app, emit, log, BlobRef, Collection as _, Counter, Error, Event, List, Map, PnCounter,
        Register, Result, Set, State as _, Text,
    };
}

/// An app's state: a bundle of collection handles, one per field, built by `#[app::state]`.
pub trait State: Sized {
    /// The handles, each addressing the root-level collection named after its field.
    fn load() -> Self;
}

/// Emits an event: `emit!(event)`, or `emit!(event, Self::handler)` to name the exported method
/// the node calls on receiving members (a string also works: `emit!(event, "handler")`, without
/// the compile-time check). Evaluates to [`Result<()>`](Result).
#[macro_export]
macro_rules! emit {
    ($event:expr $(,)?) => {
        $crate::emit_event(&$event, ::core::option::Option::None)
    };
    ($event:expr, Self::$handler:ident $(,)?) => {{
        let _ = Self::$handler;
        $crate::emit_event(
            &$event,
            ::core::option::Option::Some(::core::stringify!($handler)),
        )
    }};
    ($event:expr, $handler:expr $(,)?) => {
        $crate::emit_event(&$event, ::core::option::Option::Some($handler))
    };
}

/// Appends a log line to the call's outcome (`format!` syntax). Logging never fails the method:
/// outside a host the line is dropped.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        let _ = $crate::env::log(&::std::format!($($arg)*));
    };
}
