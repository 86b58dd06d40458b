//! `tabmesh-abi`: the app ABI — what a guest module imports and exports, and the encoded
//! operations it passes to the `storage` and `blob` host calls. Pure and dependency-light
//! (`tabmesh-base` only) so that both sides share it: the host (`tabmesh-runtime`, which
//! re-exports it as `tabmesh_runtime::abi`) and the guest SDK (`tabmesh-sdk`, compiled into app
//! modules, which must not link wasmi).
//!
//! # Imports
//!
//! Every import comes from the module [`IMPORT_MODULE`] (`"tabmesh"`). Pointers and lengths are
//! `i32` read as `u32` offsets into the guest's exported memory; a range outside it ends the call
//! with the runtime's `RuntimeError::BadPointer`.
//!
//! | import | type | effect |
//! |---|---|---|
//! | `input` | `() -> i32` | puts the call's input into the result buffer, returns its length |
//! | `read_result` | `(ptr, len)` | copies the first `len` bytes of the result buffer to `ptr` (`len` ≤ its length) |
//! | `return_value` | `(ptr, len)` | sets the call's return value (a later call replaces it) |
//! | `fail` | `(ptr, len)` | ends the call with the runtime's `RuntimeError::Failed` carrying these bytes |
//! | `log` | `(ptr, len)` | appends a UTF-8 log line (invalid UTF-8 is replaced) |
//! | `emit` | `(kind_ptr, kind_len, data_ptr, data_len, handler_ptr, handler_len)` | appends an event; `handler_len == 0`: no handler, else the name of an exported method |
//! | `storage` | `(ptr, len) -> i32` | runs an encoded [`StorageOp`]; the result buffer holds the encoded [`OpResult`], its length is returned |
//! | `blob` | `(ptr, len) -> i32` | the same for an encoded [`BlobOp`] |
//! | `context_id` | `(ptr)` | writes the 32-byte context id |
//! | `executor_id` | `(ptr)` | writes the 32-byte id of the member executing the call |
//! | `time_now` | `() -> i64` | the host's time in ms since the Unix epoch (fixed by the host, e.g. per call) |
//! | `random_bytes` | `(ptr, len)` | fills `len` bytes from the host's deterministic generator |
//!
//! There is one result buffer per call; each `input`, `storage` and `blob` call replaces it.
//!
//! # Exports
//!
//! - `memory`: the linear memory (required).
//! - Methods: every exported function of type `() -> ()` is a method the node may call by name
//!   (at most [`MAX_METHOD_NAME_BYTES`]). A method reads its arguments with `input` and answers
//!   with `return_value`; returning normally ends the call successfully. Names starting with
//!   [`RESERVED_PREFIX`] are reserved for hooks: [`INIT_HOOK`] (`__tabmesh_init`), the optional
//!   initialisation the node runs once on the creator.
//! - No merge hook: custom merge functions are out of scope (an app's state merges exactly as its
//!   collections do). A module exporting anything named [`MERGE_HOOK_PREFIX`]`…`
//!   (`__tabmesh_merge…`, of any type) is refused at load with the runtime's
//!   `RuntimeError::Unsupported`.
//! - Event handlers are methods too: an event naming a handler makes the node call that method on
//!   the receiving members, with the event's data as input.
//!
//! A module may import nothing else, must not have a start function, and must not import its
//! memory or tables.
//!
//! # Operations
//!
//! An operation is encoded with [`tabmesh_base::codec`] (version byte first):
//! `tag: u8 ‖ field: bytes ‖ path: u32 count, bytes each ‖ operands`. It acts on the collection
//! reached from the root-level field `field` through `path`: with an empty path the field itself,
//! otherwise each key but the last selects a nested map entry and the last selects the target
//! entry of the map before it (its type is the one the operation names). Lengths are `u32`,
//! integers little-endian, counts and sizes bounded ([`MAX_NAME_BYTES`], [`MAX_PATH`],
//! [`MAX_PAGE`], the call's argument limit). The answer is an [`OpResult`]: `0 ‖ Value` or
//! `1 ‖ OpError`, also versioned.

use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::CodecError;

/// The 32-byte id of [`BlobOp::Open`] and [`Value::Id`] (re-exported so that the guest SDK needs
/// no other crate to name it).
pub use tabmesh_base::Hash;

/// The module every import comes from.
pub const IMPORT_MODULE: &str = "tabmesh";

/// The name under which a module exports its linear memory.
pub const MEMORY_EXPORT: &str = "memory";

/// Method names starting with this are reserved for runtime hooks.
pub const RESERVED_PREFIX: &str = "__tabmesh";

/// The init hook: an export of type `() -> ()` that the node calls once, on the context's
/// creator, inside the genesis delta, with the creation arguments as input (joiners never call
/// it). Optional: a module without it has nothing to initialise. Being reserved, it is not a
/// method users can call.
pub const INIT_HOOK: &str = "__tabmesh_init";

/// Exports whose names start with this would be custom merge functions, which are out of scope:
/// the runtime refuses a module exporting one (any type) when it loads it. The SDK refuses
/// `#[app::state(merge = …)]` at compile time for the same reason.
pub const MERGE_HOOK_PREFIX: &str = "__tabmesh_merge";

/// The ABI's version. A change of the import set or of an encoding bumps it (the codec version
/// byte also guards every encoding).
pub const ABI_VERSION: u32 = 1;

/// Longest method or handler name.
pub const MAX_METHOD_NAME_BYTES: usize = 128;

/// Longest field name, map key, set member or blob-free name in an operation (mirrors
/// `tabmesh_state::MAX_KEY_LEN`).
pub const MAX_NAME_BYTES: usize = 1024;

/// Most keys in an operation's path (a field plus seven keys reaches `tabmesh_state::MAX_DEPTH`).
pub const MAX_PATH: usize = 7;

/// Most items one paginated read returns.
pub const MAX_PAGE: u32 = 1024;

/// Longest error message in an [`OpError`].
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// Largest byte string in an operation or a result (values, text, blob chunks). The call's
/// argument and result limits bound them further.
pub const MAX_BYTES: usize = 1 << 20;

/// Value types of the ABI's imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValType {
    /// `i32`.
    I32,
    /// `i64`.
    I64,
}

/// One import of the ABI: its name and type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportSig {
    /// The field name under [`IMPORT_MODULE`].
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [ValType],
    /// Result types.
    pub results: &'static [ValType],
}

use ValType::{I32, I64};

/// Every import the runtime provides (see the module docs for what each does).
pub const IMPORTS: &[ImportSig] = &[
    ImportSig {
        name: "input",
        params: &[],
        results: &[I32],
    },
    ImportSig {
        name: "read_result",
        params: &[I32, I32],
        results: &[],
    },
    ImportSig {
        name: "return_value",
        params: &[I32, I32],
        results: &[],
    },
    ImportSig {
        name: "fail",
        params: &[I32, I32],
        results: &[],
    },
    ImportSig {
        name: "log",
        params: &[I32, I32],
        results: &[],
    },
    ImportSig {
        name: "emit",
        params: &[I32, I32, I32, I32, I32, I32],
        results: &[],
    },
    ImportSig {
        name: "storage",
        params: &[I32, I32],
        results: &[I32],
    },
    ImportSig {
        name: "blob",
        params: &[I32, I32],
        results: &[I32],
    },
    ImportSig {
        name: "context_id",
        params: &[I32],
        results: &[],
    },
    ImportSig {
        name: "executor_id",
        params: &[I32],
        results: &[],
    },
    ImportSig {
        name: "time_now",
        params: &[],
        results: &[I64],
    },
    ImportSig {
        name: "random_bytes",
        params: &[I32, I32],
        results: &[],
    },
];

/// Whether `name` is a valid method or handler name: non-empty, at most
/// [`MAX_METHOD_NAME_BYTES`], not starting with [`RESERVED_PREFIX`].
pub fn is_method_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_METHOD_NAME_BYTES && !name.starts_with(RESERVED_PREFIX)
}

/// A range of a paginated read: skip `offset` items, return at most `limit` (≤ [`MAX_PAGE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Items to skip.
    pub offset: u32,
    /// Most items to return.
    pub limit: u32,
}

/// What a storage operation does to the collection it addresses. The node maps each one onto
/// the `tabmesh_state` handle of the same name; their merge rules are documented there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op<'a> {
    /// LWW register: its bytes ([`Value::Bytes`] or [`Value::Absent`]).
    RegisterGet,
    /// LWW register: set ([`Value::Unit`]).
    RegisterSet {
        /// The new bytes.
        value: &'a [u8],
    },
    /// LWW register: clear ([`Value::Bool`]: whether it held a value).
    RegisterClear,
    /// Grow-only counter: its value ([`Value::U128`]).
    CounterGet,
    /// Grow-only counter: add `by` ([`Value::Unit`]).
    CounterIncrement {
        /// The increment.
        by: u64,
    },
    /// PN-counter: its value ([`Value::I128`]).
    PnCounterGet,
    /// PN-counter: add `delta` ([`Value::Unit`]).
    PnCounterAdd {
        /// The signed change.
        delta: i64,
    },
    /// Map: the register entry `key` ([`Value::Bytes`] or [`Value::Absent`]).
    MapGet {
        /// The entry.
        key: &'a [u8],
    },
    /// Map: set register entry `key` ([`Value::Unit`]).
    MapInsert {
        /// The entry.
        key: &'a [u8],
        /// Its bytes.
        value: &'a [u8],
    },
    /// Map: delete entry `key` of any type ([`Value::Bool`]: whether it was visible).
    MapDelete {
        /// The entry.
        key: &'a [u8],
    },
    /// Map: whether entry `key` is visible ([`Value::Bool`]).
    MapContains {
        /// The entry.
        key: &'a [u8],
    },
    /// Map: number of visible entries ([`Value::U64`]).
    MapLen,
    /// Map: a page of visible keys in the map's deterministic order ([`Value::List`]).
    MapKeys(Page),
    /// Add-wins set: add `member` ([`Value::Unit`]).
    SetAdd {
        /// The member.
        member: &'a [u8],
    },
    /// Add-wins set: remove `member` ([`Value::Bool`]: whether it was present).
    SetRemove {
        /// The member.
        member: &'a [u8],
    },
    /// Add-wins set: whether `member` is present ([`Value::Bool`]).
    SetContains {
        /// The member.
        member: &'a [u8],
    },
    /// Add-wins set: number of members ([`Value::U64`]).
    SetLen,
    /// Add-wins set: a page of members ([`Value::List`]).
    SetMembers(Page),
    /// RGA list: item `index` ([`Value::Bytes`] or [`Value::Absent`]).
    ListGet {
        /// Position.
        index: u32,
    },
    /// RGA list: number of items ([`Value::U64`]).
    ListLen,
    /// RGA list: insert before position `index` (`len` appends) ([`Value::Unit`]).
    ListInsert {
        /// Position.
        index: u32,
        /// The item.
        value: &'a [u8],
    },
    /// RGA list: append ([`Value::Unit`]).
    ListPush {
        /// The item.
        value: &'a [u8],
    },
    /// RGA list: replace item `index` ([`Value::Unit`]).
    ListSet {
        /// Position.
        index: u32,
        /// The new item.
        value: &'a [u8],
    },
    /// RGA list: remove item `index` ([`Value::Unit`]).
    ListRemove {
        /// Position.
        index: u32,
    },
    /// RGA list: a page of items ([`Value::List`]).
    ListItems(Page),
    /// Text: characters `[page.offset, page.offset + page.limit)` ([`Value::Text`]); here the
    /// limit counts characters and is bounded by the result limit, not by [`MAX_PAGE`].
    TextRead(Page),
    /// Text: number of characters ([`Value::U64`]).
    TextLen,
    /// Text: insert at character position `pos` ([`Value::Unit`]).
    TextInsert {
        /// Position in characters.
        pos: u32,
        /// The text.
        text: &'a str,
    },
    /// Text: append ([`Value::Unit`]).
    TextPush {
        /// The text.
        text: &'a str,
    },
    /// Text: delete `len` characters from `pos` ([`Value::Unit`]).
    TextDelete {
        /// Position in characters.
        pos: u32,
        /// Characters to delete.
        len: u32,
    },
}

/// One storage operation: the collection it addresses and what it does. See the module docs for
/// the addressing rule and the encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageOp<'a> {
    /// The root-level field.
    pub field: &'a str,
    /// Keys from the field to the target (empty: the field itself).
    pub path: Vec<&'a [u8]>,
    /// What to do.
    pub op: Op<'a>,
}

/// One blob operation. Handles are small numbers the host hands out per call. A blob id is a
/// `tabmesh_blobs::BlobId`: the hash of the blob's manifest, `H("tabmesh/blob/v1" ‖ len ‖ chunk
/// ids…)` (the blob is cut into 256 KiB chunks, each named by its own hash), not the hash of the
/// content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobOp<'a> {
    /// Start writing a new blob ([`Value::U64`]: a handle).
    Create,
    /// Append bytes to a blob being written ([`Value::Unit`]).
    Write {
        /// The handle from `Create`.
        handle: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// Finish a blob being written ([`Value::Id`]: its id).
    Finish {
        /// The handle from `Create`.
        handle: u64,
    },
    /// Open a blob for reading ([`Value::U64`]: a handle).
    Open {
        /// The blob id.
        id: Hash,
    },
    /// Read up to `max` bytes ([`Value::Bytes`]; empty at the end).
    Read {
        /// The handle from `Open`.
        handle: u64,
        /// Most bytes to return.
        max: u32,
    },
    /// Release a handle ([`Value::Unit`]).
    Close {
        /// The handle.
        handle: u64,
    },
}

/// The value an operation answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// Nothing (writes).
    Unit,
    /// A yes/no answer.
    Bool(bool),
    /// A count, length or handle.
    U64(u64),
    /// A grow-only counter's value.
    U128(u128),
    /// A PN-counter's value.
    I128(i128),
    /// No such value (an absent register, entry or item).
    Absent,
    /// Bytes.
    Bytes(Vec<u8>),
    /// A page of byte strings.
    List(Vec<Vec<u8>>),
    /// A piece of text.
    Text(String),
    /// A 32-byte id (a blob id).
    Id(Hash),
}

/// Why an operation was refused. The guest gets it back as a value and decides what to do; the
/// refused operation itself changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpErrorKind {
    /// The addressed entity exists with another type.
    WrongType,
    /// A value, key or the transaction is over a bound of the state.
    TooLarge,
    /// The path is deeper than the state allows.
    TooDeep,
    /// An index or position is past the end.
    OutOfRange,
    /// An argument is not acceptable (e.g. an unknown handle).
    Invalid,
    /// No such thing (e.g. an unknown blob).
    NotFound,
    /// The host does not provide this operation.
    Unsupported,
    /// Anything else.
    Other,
}

impl OpErrorKind {
    fn tag(self) -> u8 {
        match self {
            OpErrorKind::WrongType => 1,
            OpErrorKind::TooLarge => 2,
            OpErrorKind::TooDeep => 3,
            OpErrorKind::OutOfRange => 4,
            OpErrorKind::Invalid => 5,
            OpErrorKind::NotFound => 6,
            OpErrorKind::Unsupported => 7,
            OpErrorKind::Other => 8,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, CodecError> {
        Ok(match tag {
            1 => OpErrorKind::WrongType,
            2 => OpErrorKind::TooLarge,
            3 => OpErrorKind::TooDeep,
            4 => OpErrorKind::OutOfRange,
            5 => OpErrorKind::Invalid,
            6 => OpErrorKind::NotFound,
            7 => OpErrorKind::Unsupported,
            8 => OpErrorKind::Other,
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "op error kind",
                    tag,
                })
            }
        })
    }
}

/// A refused operation: a kind the guest can match on and a message for humans (truncated to
/// [`MAX_ERROR_MESSAGE_BYTES`] when encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    /// What went wrong.
    pub kind: OpErrorKind,
    /// Details.
    pub message: String,
}

impl OpError {
    /// An error of `kind` with `message`.
    pub fn new(kind: OpErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            message: message.into(),
        }
    }

    /// The host does not provide `what`.
    pub fn unsupported(what: &str) -> OpError {
        OpError::new(
            OpErrorKind::Unsupported,
            format!("{what} not supported by this host"),
        )
    }
}

/// What the `storage` and `blob` host calls leave in the result buffer, encoded.
pub type OpResult = Result<Value, OpError>;

mod tag {
    pub(super) const REGISTER_GET: u8 = 0x01;
    pub(super) const REGISTER_SET: u8 = 0x02;
    pub(super) const REGISTER_CLEAR: u8 = 0x03;
    pub(super) const COUNTER_GET: u8 = 0x10;
    pub(super) const COUNTER_INCREMENT: u8 = 0x11;
    pub(super) const PN_COUNTER_GET: u8 = 0x18;
    pub(super) const PN_COUNTER_ADD: u8 = 0x19;
    pub(super) const MAP_GET: u8 = 0x20;
    pub(super) const MAP_INSERT: u8 = 0x21;
    pub(super) const MAP_DELETE: u8 = 0x22;
    pub(super) const MAP_CONTAINS: u8 = 0x23;
    pub(super) const MAP_LEN: u8 = 0x24;
    pub(super) const MAP_KEYS: u8 = 0x25;
    pub(super) const SET_ADD: u8 = 0x30;
    pub(super) const SET_REMOVE: u8 = 0x31;
    pub(super) const SET_CONTAINS: u8 = 0x32;
    pub(super) const SET_LEN: u8 = 0x33;
    pub(super) const SET_MEMBERS: u8 = 0x34;
    pub(super) const LIST_GET: u8 = 0x40;
    pub(super) const LIST_LEN: u8 = 0x41;
    pub(super) const LIST_INSERT: u8 = 0x42;
    pub(super) const LIST_PUSH: u8 = 0x43;
    pub(super) const LIST_SET: u8 = 0x44;
    pub(super) const LIST_REMOVE: u8 = 0x45;
    pub(super) const LIST_ITEMS: u8 = 0x46;
    pub(super) const TEXT_READ: u8 = 0x50;
    pub(super) const TEXT_LEN: u8 = 0x51;
    pub(super) const TEXT_INSERT: u8 = 0x52;
    pub(super) const TEXT_PUSH: u8 = 0x53;
    pub(super) const TEXT_DELETE: u8 = 0x54;

    pub(super) const BLOB_CREATE: u8 = 0x01;
    pub(super) const BLOB_WRITE: u8 = 0x02;
    pub(super) const BLOB_FINISH: u8 = 0x03;
    pub(super) const BLOB_OPEN: u8 = 0x04;
    pub(super) const BLOB_READ: u8 = 0x05;
    pub(super) const BLOB_CLOSE: u8 = 0x06;

    pub(super) const VALUE_UNIT: u8 = 0;
    pub(super) const VALUE_BOOL: u8 = 1;
    pub(super) const VALUE_U64: u8 = 2;
    pub(super) const VALUE_U128: u8 = 3;
    pub(super) const VALUE_I128: u8 = 4;
    pub(super) const VALUE_ABSENT: u8 = 5;
    pub(super) const VALUE_BYTES: u8 = 6;
    pub(super) const VALUE_LIST: u8 = 7;
    pub(super) const VALUE_TEXT: u8 = 8;
    pub(super) const VALUE_ID: u8 = 9;

    pub(super) const RESULT_OK: u8 = 0;
    pub(super) const RESULT_ERR: u8 = 1;
}

fn write_page(w: &mut Writer, p: Page) {
    w.u32(p.offset).u32(p.limit);
}

fn read_page(r: &mut Reader<'_>) -> Result<Page, CodecError> {
    let offset = r.u32()?;
    let limit = r.u32()?;
    if limit > MAX_PAGE {
        return Err(CodecError::TooLarge {
            what: "page limit",
            len: usize::try_from(limit).unwrap_or(usize::MAX),
            max: MAX_PAGE as usize,
        });
    }
    Ok(Page { offset, limit })
}

fn read_str<'a>(r: &mut Reader<'a>, what: &'static str, max: usize) -> Result<&'a str, CodecError> {
    std::str::from_utf8(r.bytes(what, max)?).map_err(|_| CodecError::Invalid(what))
}

impl Op<'_> {
    fn tag(&self) -> u8 {
        match self {
            Op::RegisterGet => tag::REGISTER_GET,
            Op::RegisterSet { .. } => tag::REGISTER_SET,
            Op::RegisterClear => tag::REGISTER_CLEAR,
            Op::CounterGet => tag::COUNTER_GET,
            Op::CounterIncrement { .. } => tag::COUNTER_INCREMENT,
            Op::PnCounterGet => tag::PN_COUNTER_GET,
            Op::PnCounterAdd { .. } => tag::PN_COUNTER_ADD,
            Op::MapGet { .. } => tag::MAP_GET,
            Op::MapInsert { .. } => tag::MAP_INSERT,
            Op::MapDelete { .. } => tag::MAP_DELETE,
            Op::MapContains { .. } => tag::MAP_CONTAINS,
            Op::MapLen => tag::MAP_LEN,
            Op::MapKeys(_) => tag::MAP_KEYS,
            Op::SetAdd { .. } => tag::SET_ADD,
            Op::SetRemove { .. } => tag::SET_REMOVE,
            Op::SetContains { .. } => tag::SET_CONTAINS,
            Op::SetLen => tag::SET_LEN,
            Op::SetMembers(_) => tag::SET_MEMBERS,
            Op::ListGet { .. } => tag::LIST_GET,
            Op::ListLen => tag::LIST_LEN,
            Op::ListInsert { .. } => tag::LIST_INSERT,
            Op::ListPush { .. } => tag::LIST_PUSH,
            Op::ListSet { .. } => tag::LIST_SET,
            Op::ListRemove { .. } => tag::LIST_REMOVE,
            Op::ListItems(_) => tag::LIST_ITEMS,
            Op::TextRead(_) => tag::TEXT_READ,
            Op::TextLen => tag::TEXT_LEN,
            Op::TextInsert { .. } => tag::TEXT_INSERT,
            Op::TextPush { .. } => tag::TEXT_PUSH,
            Op::TextDelete { .. } => tag::TEXT_DELETE,
        }
    }

    fn write_operands(&self, w: &mut Writer) {
        match self {
            Op::RegisterGet
            | Op::RegisterClear
            | Op::CounterGet
            | Op::PnCounterGet
            | Op::MapLen
            | Op::SetLen
            | Op::ListLen
            | Op::TextLen => {}
            Op::CounterIncrement { by } => {
                w.u64(*by);
            }
            Op::PnCounterAdd { delta } => {
                w.i64(*delta);
            }
            Op::RegisterSet { value } | Op::ListPush { value } => {
                w.bytes(value);
            }
            Op::MapGet { key } | Op::MapDelete { key } | Op::MapContains { key } => {
                w.bytes(key);
            }
            Op::SetAdd { member } | Op::SetRemove { member } | Op::SetContains { member } => {
                w.bytes(member);
            }
            Op::MapInsert { key, value } => {
                w.bytes(key).bytes(value);
            }
            Op::MapKeys(p) | Op::SetMembers(p) | Op::ListItems(p) | Op::TextRead(p) => {
                write_page(w, *p);
            }
            Op::ListGet { index } | Op::ListRemove { index } => {
                w.u32(*index);
            }
            Op::ListInsert { index, value } | Op::ListSet { index, value } => {
                w.u32(*index).bytes(value);
            }
            Op::TextInsert { pos, text } => {
                w.u32(*pos).bytes(text.as_bytes());
            }
            Op::TextPush { text } => {
                w.bytes(text.as_bytes());
            }
            Op::TextDelete { pos, len } => {
                w.u32(*pos).u32(*len);
            }
        }
    }
}

impl<'a> StorageOp<'a> {
    /// The versioned encoding the guest passes to `storage`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.op.tag())
            .bytes(self.field.as_bytes())
            .len(self.path.len());
        for key in &self.path {
            w.bytes(key);
        }
        self.op.write_operands(&mut w);
        w.finish()
    }

    /// Decodes an operation, borrowing its strings from `bytes`. Every length is bounded; the
    /// whole input must be consumed.
    pub fn decode(bytes: &'a [u8]) -> Result<StorageOp<'a>, CodecError> {
        let mut r = Reader::new(bytes)?;
        let t = r.u8()?;
        let field = read_str(&mut r, "field name", MAX_NAME_BYTES)?;
        let n = r.count("path", MAX_PATH, 4)?;
        let mut path = Vec::with_capacity(n);
        for _ in 0..n {
            path.push(r.bytes("path key", MAX_NAME_BYTES)?);
        }
        let key = |r: &mut Reader<'a>| r.bytes("key", MAX_NAME_BYTES);
        let value = |r: &mut Reader<'a>| r.bytes("value", MAX_BYTES);
        let text = |r: &mut Reader<'a>| read_str(r, "text", MAX_BYTES);
        let op = match t {
            tag::REGISTER_GET => Op::RegisterGet,
            tag::REGISTER_SET => Op::RegisterSet {
                value: value(&mut r)?,
            },
            tag::REGISTER_CLEAR => Op::RegisterClear,
            tag::COUNTER_GET => Op::CounterGet,
            tag::COUNTER_INCREMENT => Op::CounterIncrement { by: r.u64()? },
            tag::PN_COUNTER_GET => Op::PnCounterGet,
            tag::PN_COUNTER_ADD => Op::PnCounterAdd { delta: r.i64()? },
            tag::MAP_GET => Op::MapGet { key: key(&mut r)? },
            tag::MAP_INSERT => Op::MapInsert {
                key: key(&mut r)?,
                value: value(&mut r)?,
            },
            tag::MAP_DELETE => Op::MapDelete { key: key(&mut r)? },
            tag::MAP_CONTAINS => Op::MapContains { key: key(&mut r)? },
            tag::MAP_LEN => Op::MapLen,
            tag::MAP_KEYS => Op::MapKeys(read_page(&mut r)?),
            tag::SET_ADD => Op::SetAdd {
                member: key(&mut r)?,
            },
            tag::SET_REMOVE => Op::SetRemove {
                member: key(&mut r)?,
            },
            tag::SET_CONTAINS => Op::SetContains {
                member: key(&mut r)?,
            },
            tag::SET_LEN => Op::SetLen,
            tag::SET_MEMBERS => Op::SetMembers(read_page(&mut r)?),
            tag::LIST_GET => Op::ListGet { index: r.u32()? },
            tag::LIST_LEN => Op::ListLen,
            tag::LIST_INSERT => Op::ListInsert {
                index: r.u32()?,
                value: value(&mut r)?,
            },
            tag::LIST_PUSH => Op::ListPush {
                value: value(&mut r)?,
            },
            tag::LIST_SET => Op::ListSet {
                index: r.u32()?,
                value: value(&mut r)?,
            },
            tag::LIST_REMOVE => Op::ListRemove { index: r.u32()? },
            tag::LIST_ITEMS => Op::ListItems(read_page(&mut r)?),
            tag::TEXT_READ => {
                let offset = r.u32()?;
                let limit = r.u32()?;
                Op::TextRead(Page { offset, limit })
            }
            tag::TEXT_LEN => Op::TextLen,
            tag::TEXT_INSERT => Op::TextInsert {
                pos: r.u32()?,
                text: text(&mut r)?,
            },
            tag::TEXT_PUSH => Op::TextPush {
                text: text(&mut r)?,
            },
            tag::TEXT_DELETE => Op::TextDelete {
                pos: r.u32()?,
                len: r.u32()?,
            },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "storage op",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(StorageOp { field, path, op })
    }
}

impl<'a> BlobOp<'a> {
    /// The versioned encoding the guest passes to `blob`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            BlobOp::Create => {
                w.u8(tag::BLOB_CREATE);
            }
            BlobOp::Write { handle, data } => {
                w.u8(tag::BLOB_WRITE).u64(*handle).bytes(data);
            }
            BlobOp::Finish { handle } => {
                w.u8(tag::BLOB_FINISH).u64(*handle);
            }
            BlobOp::Open { id } => {
                w.u8(tag::BLOB_OPEN).hash(id);
            }
            BlobOp::Read { handle, max } => {
                w.u8(tag::BLOB_READ).u64(*handle).u32(*max);
            }
            BlobOp::Close { handle } => {
                w.u8(tag::BLOB_CLOSE).u64(*handle);
            }
        }
        w.finish()
    }

    /// Decodes a blob operation, borrowing its data from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<BlobOp<'a>, CodecError> {
        let mut r = Reader::new(bytes)?;
        let op = match r.u8()? {
            tag::BLOB_CREATE => BlobOp::Create,
            tag::BLOB_WRITE => BlobOp::Write {
                handle: r.u64()?,
                data: r.bytes("blob data", MAX_BYTES)?,
            },
            tag::BLOB_FINISH => BlobOp::Finish { handle: r.u64()? },
            tag::BLOB_OPEN => BlobOp::Open { id: r.hash()? },
            tag::BLOB_READ => BlobOp::Read {
                handle: r.u64()?,
                max: r.u32()?,
            },
            tag::BLOB_CLOSE => BlobOp::Close { handle: r.u64()? },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "blob op",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(op)
    }
}

/// The versioned encoding of an operation's result.
pub fn encode_result(result: &OpResult) -> Vec<u8> {
    let mut w = Writer::new();
    match result {
        Ok(value) => {
            w.u8(tag::RESULT_OK);
            match value {
                Value::Unit => {
                    w.u8(tag::VALUE_UNIT);
                }
                Value::Bool(b) => {
                    w.u8(tag::VALUE_BOOL).bool(*b);
                }
                Value::U64(v) => {
                    w.u8(tag::VALUE_U64).u64(*v);
                }
                Value::U128(v) => {
                    w.u8(tag::VALUE_U128).raw(&v.to_le_bytes());
                }
                Value::I128(v) => {
                    w.u8(tag::VALUE_I128).raw(&v.to_le_bytes());
                }
                Value::Absent => {
                    w.u8(tag::VALUE_ABSENT);
                }
                Value::Bytes(b) => {
                    w.u8(tag::VALUE_BYTES).bytes(b);
                }
                Value::List(items) => {
                    w.u8(tag::VALUE_LIST).len(items.len());
                    for item in items {
                        w.bytes(item);
                    }
                }
                Value::Text(s) => {
                    w.u8(tag::VALUE_TEXT).bytes(s.as_bytes());
                }
                Value::Id(h) => {
                    w.u8(tag::VALUE_ID).hash(h);
                }
            }
        }
        Err(e) => {
            let mut end = e.message.len().min(MAX_ERROR_MESSAGE_BYTES);
            while !e.message.is_char_boundary(end) {
                end -= 1;
            }
            w.u8(tag::RESULT_ERR)
                .u8(e.kind.tag())
                .bytes(&e.message.as_bytes()[..end]);
        }
    }
    w.finish()
}

/// Decodes an operation's result (what the guest SDK does with the result buffer).
pub fn decode_result(bytes: &[u8]) -> Result<OpResult, CodecError> {
    let mut r = Reader::new(bytes)?;
    let result = match r.u8()? {
        tag::RESULT_OK => Ok(match r.u8()? {
            tag::VALUE_UNIT => Value::Unit,
            tag::VALUE_BOOL => Value::Bool(r.bool()?),
            tag::VALUE_U64 => Value::U64(r.u64()?),
            tag::VALUE_U128 => Value::U128(u128::from_le_bytes(r.array::<16>()?)),
            tag::VALUE_I128 => Value::I128(i128::from_le_bytes(r.array::<16>()?)),
            tag::VALUE_ABSENT => Value::Absent,
            tag::VALUE_BYTES => Value::Bytes(r.bytes("bytes", MAX_BYTES)?.to_vec()),
            tag::VALUE_LIST => {
                let n = r.count("list", MAX_PAGE as usize, 4)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(r.bytes("list item", MAX_BYTES)?.to_vec());
                }
                Value::List(items)
            }
            tag::VALUE_TEXT => Value::Text(read_str(&mut r, "text", MAX_BYTES)?.to_owned()),
            tag::VALUE_ID => Value::Id(r.hash()?),
            tag => return Err(CodecError::InvalidTag { what: "value", tag }),
        }),
        tag::RESULT_ERR => {
            let kind = OpErrorKind::from_tag(r.u8()?)?;
            let message = read_str(&mut r, "error message", MAX_ERROR_MESSAGE_BYTES)?.to_owned();
            Err(OpError { kind, message })
        }
        tag => {
            return Err(CodecError::InvalidTag {
                what: "op result",
                tag,
            })
        }
    };
    r.finish()?;
    Ok(result)
}
