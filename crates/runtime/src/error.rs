//! Why a module was refused or a call failed.

use tabmesh_base::{CodecError, Hash};
use thiserror::Error;

/// Which bound a call exceeded (see [`Limits`](crate::Limits) for the values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// The call's input.
    Input,
    /// The return value.
    ReturnValue,
    /// The number of log lines.
    LogCount,
    /// One log line.
    LogLine,
    /// All log lines together.
    LogBytes,
    /// The number of events.
    EventCount,
    /// One event's kind.
    EventKind,
    /// One event's data.
    EventData,
    /// All events together.
    EventBytes,
    /// One host-call argument (an encoded operation, a failure payload).
    Argument,
    /// A host call's result.
    Result,
    /// One `random_bytes` request.
    Random,
    /// A method or handler name.
    MethodName,
}

impl Limit {
    /// [`RuntimeError::LimitExceeded`] when `len` is over `max`.
    pub(crate) fn check(self, len: usize, max: usize) -> Result<(), RuntimeError> {
        if len > max {
            return Err(RuntimeError::LimitExceeded {
                limit: self,
                len,
                max,
            });
        }
        Ok(())
    }
}

/// Why a module was refused or a call failed. Every failed call's writes must be discarded by the
/// caller (see [`Host`](crate::Host)).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The module is larger than [`Limits::max_module_bytes`](crate::Limits::max_module_bytes).
    #[error("module is {len} bytes, over the limit of {max}")]
    ModuleTooLarge {
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The bytes are not a valid module for this runtime (malformed, fails validation, has a
    /// start function, uses a disabled feature, exceeds wasmi's structural limits).
    #[error("invalid module: {0}")]
    InvalidModule(Box<str>),
    /// The module imports something the ABI does not provide.
    #[error("module imports unknown {module}.{name}")]
    UnknownImport {
        /// The import's module name.
        module: Box<str>,
        /// The import's field name.
        name: Box<str>,
    },
    /// The module imports an ABI function with the wrong signature.
    #[error("module imports tabmesh.{0} with the wrong type")]
    ImportMismatch(Box<str>),
    /// The module asks for something tabmesh deliberately does not support; `feature` names it.
    /// Today: custom merge functions (an export named `__tabmesh_merge…`,
    /// [`abi::MERGE_HOOK_PREFIX`](crate::abi::MERGE_HOOK_PREFIX)): an app's state merges exactly
    /// as its collections do.
    #[error("unsupported: {feature} (export `{export}`)")]
    Unsupported {
        /// What is not supported, e.g. `"custom merge functions"`.
        feature: &'static str,
        /// The export that asked for it.
        export: Box<str>,
    },
    /// The module does not export its linear memory as `memory`.
    #[error("module does not export a memory named `memory`")]
    MissingMemory,
    /// No module with this hash is loaded (load it with its bytes first).
    #[error("no module {0} is loaded")]
    UnknownModule(Hash),
    /// The module exports no method of this name (a function `() -> ()`).
    #[error("module has no method `{0}`")]
    UnknownMethod(Box<str>),
    /// An event names a handler the module does not export as a method.
    #[error("event names handler `{0}`, which the module does not export")]
    UnknownHandler(Box<str>),
    /// The call ran out of fuel.
    #[error("out of fuel (budget {budget})")]
    OutOfFuel {
        /// The budget it had.
        budget: u64,
    },
    /// Linear memory would grow past
    /// [`Limits::max_memory_bytes`](crate::Limits::max_memory_bytes) (or a table past its cap).
    #[error("memory limit exceeded")]
    MemoryLimit,
    /// Calls nested deeper than the recursion or stack limit.
    #[error("stack overflow (call depth or value stack over its limit)")]
    StackOverflow,
    /// A size or count bound of the call was exceeded.
    #[error("{limit:?} is {len}, over the limit of {max}")]
    LimitExceeded {
        /// Which bound.
        limit: Limit,
        /// The size or count asked for.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A host call named guest memory outside the instance's linear memory.
    #[error("host call argument at {ptr:#x}+{len} is outside guest memory")]
    BadPointer {
        /// The pointer the guest passed.
        ptr: u32,
        /// The length the guest passed.
        len: u32,
    },
    /// An encoded operation passed to a host call could not be decoded.
    #[error("malformed host call argument: {0}")]
    BadArgument(#[from] CodecError),
    /// A host call was used against the ABI's rules (e.g. a name that is not UTF-8, reading past
    /// the result buffer).
    #[error("ABI violation: {0}")]
    AbiViolation(&'static str),
    /// The app ended the call with `fail`; the payload is its error, encoded as the app likes.
    #[error("the app failed ({} byte payload)", payload.len())]
    Failed {
        /// What the app passed to `fail`.
        payload: Box<[u8]>,
    },
    /// Any other trap (unreachable, out-of-bounds access, division by zero, …).
    #[error("trap: {0}")]
    Trap(Box<str>),
}
