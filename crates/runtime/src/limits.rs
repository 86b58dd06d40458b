//! Every bound of the runtime, in one place. The defaults are the named constants below; a
//! [`Limits`] value carries them into a [`Runtime`](crate::Runtime). Exceeding one ends the call
//! with a typed [`RuntimeError`](crate::RuntimeError), never a panic and never silently.

/// Fuel one call may burn. Wasmi charges roughly one unit per executed instruction (more for
/// bulk memory operations); host calls charge [`HOST_CALL_FUEL`], [`STORAGE_OP_FUEL`] and
/// [`FUEL_PER_BYTE`]. About a second of interpretation inside a browser tab; ordinary calls use a
/// small fraction of it.
pub const DEFAULT_FUEL: u64 = 100_000_000;

/// Largest linear memory of an instance (32 MiB = 512 pages). Growing past it traps
/// ([`RuntimeError::MemoryLimit`](crate::RuntimeError::MemoryLimit)); so does a module that
/// declares more initial memory.
pub const MAX_MEMORY_BYTES: usize = 32 << 20;

/// Most table elements of an instance (function tables of compiled Rust stay far below).
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Deepest chain of nested wasm calls (wasmi's call stack lives on the heap, so this bounds
/// memory, not the native stack).
pub const MAX_RECURSION_DEPTH: usize = 1024;

/// Largest wasmi value stack, in bytes.
pub const MAX_STACK_BYTES: usize = 1 << 20;

/// Largest module, in bytes, checked before anything is parsed.
pub const MAX_MODULE_BYTES: usize = 8 << 20;

/// Most compiled modules the [`Runtime`](crate::Runtime) keeps; the least recently used one is
/// evicted first (a logical use counter, no clock).
pub const MAX_CACHED_MODULES: usize = 32;

/// Largest input (the call's arguments).
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// Largest return value.
pub const MAX_RETURN_BYTES: usize = 1 << 20;

/// Most log lines per call.
pub const MAX_LOGS: usize = 128;

/// Longest log line, in bytes.
pub const MAX_LOG_LINE_BYTES: usize = 4 << 10;

/// Most log bytes per call, all lines together.
pub const MAX_LOG_BYTES: usize = 64 << 10;

/// Most events per call.
pub const MAX_EVENTS: usize = 64;

/// Longest event kind, in bytes.
pub const MAX_EVENT_KIND_BYTES: usize = 128;

/// Largest data of one event.
pub const MAX_EVENT_DATA_BYTES: usize = 64 << 10;

/// Most event bytes per call (kinds, data and handler names together).
pub const MAX_EVENT_BYTES: usize = 256 << 10;

/// Largest argument of one host call: an encoded storage or blob operation, a failure payload.
pub const MAX_ARG_BYTES: usize = 128 << 10;

/// Largest encoded result a host call may leave in the result buffer (the call's input is
/// bounded separately by [`MAX_INPUT_BYTES`]).
pub const MAX_RESULT_BYTES: usize = 1 << 20;

/// Most random bytes one `random_bytes` call may ask for.
pub const MAX_RANDOM_BYTES: usize = 4 << 10;

/// Fuel every host call costs on top of the instructions that made it.
pub const HOST_CALL_FUEL: u64 = 100;

/// Extra fuel of a `storage` or `blob` host call.
pub const STORAGE_OP_FUEL: u64 = 1_000;

/// Fuel per byte a host call copies in or out of guest memory.
pub const FUEL_PER_BYTE: u64 = 1;

/// The bounds a [`Runtime`](crate::Runtime) enforces. [`Limits::default`] uses the constants of
/// this module; tests and embedders override single fields with `..Limits::default()`.
///
/// `max_recursion_depth` and `max_stack_bytes` configure the wasmi engine, so they are fixed when
/// the runtime is created; every other field applies per call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call ([`DEFAULT_FUEL`]).
    pub fuel: u64,
    /// Linear memory cap in bytes ([`MAX_MEMORY_BYTES`]).
    pub max_memory_bytes: usize,
    /// Table element cap ([`MAX_TABLE_ELEMENTS`]).
    pub max_table_elements: usize,
    /// Call depth cap ([`MAX_RECURSION_DEPTH`]).
    pub max_recursion_depth: usize,
    /// Value stack cap in bytes ([`MAX_STACK_BYTES`]).
    pub max_stack_bytes: usize,
    /// Module size cap ([`MAX_MODULE_BYTES`]).
    pub max_module_bytes: usize,
    /// Compiled-module cache size ([`MAX_CACHED_MODULES`], at least 1).
    pub max_cached_modules: usize,
    /// Input cap ([`MAX_INPUT_BYTES`]).
    pub max_input_bytes: usize,
    /// Return value cap ([`MAX_RETURN_BYTES`]).
    pub max_return_bytes: usize,
    /// Log line count cap ([`MAX_LOGS`]).
    pub max_logs: usize,
    /// Log line length cap ([`MAX_LOG_LINE_BYTES`]).
    pub max_log_line_bytes: usize,
    /// Total log bytes cap ([`MAX_LOG_BYTES`]).
    pub max_log_bytes: usize,
    /// Event count cap ([`MAX_EVENTS`]).
    pub max_events: usize,
    /// Event kind length cap ([`MAX_EVENT_KIND_BYTES`]).
    pub max_event_kind_bytes: usize,
    /// Event data cap ([`MAX_EVENT_DATA_BYTES`]).
    pub max_event_data_bytes: usize,
    /// Total event bytes cap ([`MAX_EVENT_BYTES`]).
    pub max_event_bytes: usize,
    /// Host-call argument cap ([`MAX_ARG_BYTES`]).
    pub max_arg_bytes: usize,
    /// Host-call result cap ([`MAX_RESULT_BYTES`]).
    pub max_result_bytes: usize,
    /// Random bytes per call cap ([`MAX_RANDOM_BYTES`]).
    pub max_random_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: DEFAULT_FUEL,
            max_memory_bytes: MAX_MEMORY_BYTES,
            max_table_elements: MAX_TABLE_ELEMENTS,
            max_recursion_depth: MAX_RECURSION_DEPTH,
            max_stack_bytes: MAX_STACK_BYTES,
            max_module_bytes: MAX_MODULE_BYTES,
            max_cached_modules: MAX_CACHED_MODULES,
            max_input_bytes: MAX_INPUT_BYTES,
            max_return_bytes: MAX_RETURN_BYTES,
            max_logs: MAX_LOGS,
            max_log_line_bytes: MAX_LOG_LINE_BYTES,
            max_log_bytes: MAX_LOG_BYTES,
            max_events: MAX_EVENTS,
            max_event_kind_bytes: MAX_EVENT_KIND_BYTES,
            max_event_data_bytes: MAX_EVENT_DATA_BYTES,
            max_event_bytes: MAX_EVENT_BYTES,
            max_arg_bytes: MAX_ARG_BYTES,
            max_result_bytes: MAX_RESULT_BYTES,
            max_random_bytes: MAX_RANDOM_BYTES,
        }
    }
}
