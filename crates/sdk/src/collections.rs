//! Typed handles on the context's CRDT collections. A handle is an address — a root-level field
//! name and a key path — and every method is one (or, for whole reads, a few) `storage` host
//! calls. Writes take `&mut self`, so a `&self` method cannot write; merge rules are those of
//! `tabmesh_state`'s collection of the same name.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;

use tabmesh_abi::{Op, Page, StorageOp, Value, MAX_PAGE, MAX_PATH};

use crate::{sys, Error, Result};

/// Where a collection lives: its root-level field and the keys from there.
#[derive(Clone, PartialEq, Eq)]
struct Loc {
    field: &'static str,
    path: Vec<Vec<u8>>,
}

impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.field)?;
        for key in &self.path {
            write!(f, "[{}]", String::from_utf8_lossy(key))?;
        }
        Ok(())
    }
}

impl Loc {
    fn child(&self, key: &[u8]) -> Loc {
        let mut path = self.path.clone();
        path.push(key.to_vec());
        Loc {
            field: self.field,
            path,
        }
    }

    fn run(&self, op: Op<'_>) -> Result<Value> {
        if self.path.len() > MAX_PATH {
            return Err(Error::Storage {
                reason: "too_deep",
                message: format!("{self:?} is nested deeper than {MAX_PATH} keys"),
            });
        }
        let op = StorageOp {
            field: self.field,
            path: self.path.iter().map(Vec::as_slice).collect(),
            op,
        };
        sys::storage(&op.encode())
    }

    /// Every item of a paginated read, page by page.
    fn all(&self, op: impl Fn(Page) -> Op<'static>, what: &'static str) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        loop {
            let page = Page {
                offset: u32::try_from(out.len()).unwrap_or(u32::MAX),
                limit: MAX_PAGE,
            };
            let items = list(self.run(op(page))?, what)?;
            let done = items.len() < MAX_PAGE as usize;
            out.extend(items);
            if done {
                return Ok(out);
            }
        }
    }
}

fn unit(v: Value, op: &'static str) -> Result<()> {
    match v {
        Value::Unit => Ok(()),
        _ => Err(Error::UnexpectedValue { op }),
    }
}

fn boolean(v: Value, op: &'static str) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(b),
        _ => Err(Error::UnexpectedValue { op }),
    }
}

fn count(v: Value, op: &'static str) -> Result<u64> {
    match v {
        Value::U64(n) => Ok(n),
        _ => Err(Error::UnexpectedValue { op }),
    }
}

fn maybe_bytes(v: Value, op: &'static str) -> Result<Option<Vec<u8>>> {
    match v {
        Value::Bytes(b) => Ok(Some(b)),
        Value::Absent => Ok(None),
        _ => Err(Error::UnexpectedValue { op }),
    }
}

fn list(v: Value, op: &'static str) -> Result<Vec<Vec<u8>>> {
    match v {
        Value::List(items) => Ok(items),
        _ => Err(Error::UnexpectedValue { op }),
    }
}

fn utf8(bytes: Option<Vec<u8>>) -> Result<Option<String>> {
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|_| Error::Codec {
                message: "stored bytes are not UTF-8".into(),
            })
        })
        .transpose()
}

mod sealed {
    pub trait Sealed {}
}

/// A collection type an app's state may hold. Sealed: the SDK's handles only.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tabmesh collection",
    note = "an app's state holds only Register, Counter, PnCounter, Map, Set, List or Text"
)]
pub trait Collection: sealed::Sealed + Sized {
    /// The handle on the root-level collection `field` (what `#[app::state]` calls).
    fn root(field: &'static str) -> Self;
    /// The root-level field this handle's collection hangs from.
    fn field(&self) -> &'static str;
    /// The keys from the field to this collection (empty: the field itself).
    fn path(&self) -> &[Vec<u8>];
    #[doc(hidden)]
    fn __at(field: &'static str, path: Vec<Vec<u8>>) -> Self;
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident $(<$v:ident $(= $default:ty)?>)?) => {
        $(#[$doc])*
        pub struct $name $(<$v $(= $default)?>)? {
            loc: Loc,
            $(_entries: PhantomData<fn() -> $v>,)?
        }

        impl $(<$v>)? fmt::Debug for $name $(<$v>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.loc)
            }
        }

        impl $(<$v: Collection>)? sealed::Sealed for $name $(<$v>)? {}

        impl $(<$v: Collection>)? Collection for $name $(<$v>)? {
            fn root(field: &'static str) -> Self {
                Self::__at(field, Vec::new())
            }
            fn field(&self) -> &'static str {
                self.loc.field
            }
            fn path(&self) -> &[Vec<u8>] {
                &self.loc.path
            }
            fn __at(field: &'static str, path: Vec<Vec<u8>>) -> Self {
                $name {
                    loc: Loc { field, path },
                    $(_entries: PhantomData::<fn() -> $v>,)?
                }
            }
        }
    };
}

handle!(
    /// A last-writer-wins register of bytes (concurrent sets: the later HLC wins).
    Register
);
handle!(
    /// A grow-only counter.
    Counter
);
handle!(
    /// A counter that goes both ways.
    PnCounter
);
handle!(
    /// A map from byte keys to entries of type `V` (registers by default; nest collections with
    /// `Map<Counter>`, `Map<Map<Set>>`, …: up to `tabmesh_abi::MAX_PATH` keys deep). Entries are
    /// created by their first write; deletes are observed-remove.
    Map<V = Register>
);
handle!(
    /// An add-wins set of byte strings.
    Set
);
handle!(
    /// An RGA list of byte strings.
    List
);
handle!(
    /// RGA text (positions count characters).
    Text
);

/// A read-only view of a nested collection (from [`Map::entry`]): it derefs to the handle, whose
/// writes need `&mut`, which this view does not give.
#[derive(Debug)]
pub struct ReadOnly<V>(V);

impl<V> Deref for ReadOnly<V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.0
    }
}

impl Register {
    /// The register's bytes (`None`: never set or cleared).
    pub fn get(&self) -> Result<Option<Vec<u8>>> {
        maybe_bytes(self.loc.run(Op::RegisterGet)?, "register get")
    }

    /// The register's bytes as UTF-8 text.
    pub fn get_string(&self) -> Result<Option<String>> {
        utf8(self.get()?)
    }

    /// Sets the register.
    pub fn set(&mut self, value: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::RegisterSet {
            value: value.as_ref(),
        };
        unit(self.loc.run(op)?, "register set")
    }

    /// Clears the register; whether it held a value.
    pub fn clear(&mut self) -> Result<bool> {
        boolean(self.loc.run(Op::RegisterClear)?, "register clear")
    }
}

impl Counter {
    /// The counter's value.
    pub fn get(&self) -> Result<u128> {
        match self.loc.run(Op::CounterGet)? {
            Value::U128(n) => Ok(n),
            _ => Err(Error::UnexpectedValue { op: "counter get" }),
        }
    }

    /// Adds `by`.
    pub fn increment(&mut self, by: u64) -> Result<()> {
        unit(
            self.loc.run(Op::CounterIncrement { by })?,
            "counter increment",
        )
    }
}

impl PnCounter {
    /// The counter's value.
    pub fn get(&self) -> Result<i128> {
        match self.loc.run(Op::PnCounterGet)? {
            Value::I128(n) => Ok(n),
            _ => Err(Error::UnexpectedValue {
                op: "pn-counter get",
            }),
        }
    }

    /// Adds `delta` (negative: subtracts).
    pub fn add(&mut self, delta: i64) -> Result<()> {
        unit(self.loc.run(Op::PnCounterAdd { delta })?, "pn-counter add")
    }
}

impl<V: Collection> Map<V> {
    /// Whether entry `key` is visible.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let op = Op::MapContains { key: key.as_ref() };
        boolean(self.loc.run(op)?, "map contains")
    }

    /// Number of visible entries.
    pub fn len(&self) -> Result<u64> {
        count(self.loc.run(Op::MapLen)?, "map len")
    }

    /// Whether the map has no visible entry.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A page of visible keys, in the map's deterministic order.
    pub fn keys_page(&self, page: Page) -> Result<Vec<Vec<u8>>> {
        list(self.loc.run(Op::MapKeys(page))?, "map keys")
    }

    /// Every visible key, in the map's deterministic order.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        self.loc.all(Op::MapKeys, "map keys")
    }

    /// Deletes entry `key` of any type; whether it was visible.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) -> Result<bool> {
        let op = Op::MapDelete { key: key.as_ref() };
        boolean(self.loc.run(op)?, "map delete")
    }

    /// A read-only view of entry `key` (it need not exist: reads answer as for an empty one).
    pub fn entry(&self, key: impl AsRef<[u8]>) -> ReadOnly<V> {
        ReadOnly(self.handle(key.as_ref()))
    }

    /// The handle on entry `key`; its first write creates it.
    pub fn entry_mut(&mut self, key: impl AsRef<[u8]>) -> V {
        self.handle(key.as_ref())
    }

    fn handle(&self, key: &[u8]) -> V {
        let loc = self.loc.child(key);
        V::__at(loc.field, loc.path)
    }
}

impl Map<Register> {
    /// Register entry `key`'s bytes.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let op = Op::MapGet { key: key.as_ref() };
        maybe_bytes(self.loc.run(op)?, "map get")
    }

    /// Register entry `key` as UTF-8 text.
    pub fn get_string(&self, key: impl AsRef<[u8]>) -> Result<Option<String>> {
        utf8(self.get(key)?)
    }

    /// Sets register entry `key`.
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::MapInsert {
            key: key.as_ref(),
            value: value.as_ref(),
        };
        unit(self.loc.run(op)?, "map insert")
    }

    /// Every visible entry with its bytes, in key order (one read per entry).
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for key in self.keys()? {
            if let Some(value) = self.get(&key)? {
                out.push((key, value));
            }
        }
        Ok(out)
    }
}

impl Set {
    /// Adds `member`.
    pub fn add(&mut self, member: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::SetAdd {
            member: member.as_ref(),
        };
        unit(self.loc.run(op)?, "set add")
    }

    /// Removes `member`; whether it was present.
    pub fn remove(&mut self, member: impl AsRef<[u8]>) -> Result<bool> {
        let op = Op::SetRemove {
            member: member.as_ref(),
        };
        boolean(self.loc.run(op)?, "set remove")
    }

    /// Whether `member` is present.
    pub fn contains(&self, member: impl AsRef<[u8]>) -> Result<bool> {
        let op = Op::SetContains {
            member: member.as_ref(),
        };
        boolean(self.loc.run(op)?, "set contains")
    }

    /// Number of members.
    pub fn len(&self) -> Result<u64> {
        count(self.loc.run(Op::SetLen)?, "set len")
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A page of members.
    pub fn members_page(&self, page: Page) -> Result<Vec<Vec<u8>>> {
        list(self.loc.run(Op::SetMembers(page))?, "set members")
    }

    /// Every member.
    pub fn members(&self) -> Result<Vec<Vec<u8>>> {
        self.loc.all(Op::SetMembers, "set members")
    }
}

impl List {
    /// Item `index` (`None`: past the end).
    pub fn get(&self, index: u32) -> Result<Option<Vec<u8>>> {
        maybe_bytes(self.loc.run(Op::ListGet { index })?, "list get")
    }

    /// Number of items.
    pub fn len(&self) -> Result<u64> {
        count(self.loc.run(Op::ListLen)?, "list len")
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Inserts before position `index` (`len` appends).
    pub fn insert(&mut self, index: u32, value: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::ListInsert {
            index,
            value: value.as_ref(),
        };
        unit(self.loc.run(op)?, "list insert")
    }

    /// Appends.
    pub fn push(&mut self, value: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::ListPush {
            value: value.as_ref(),
        };
        unit(self.loc.run(op)?, "list push")
    }

    /// Replaces item `index`.
    pub fn set(&mut self, index: u32, value: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::ListSet {
            index,
            value: value.as_ref(),
        };
        unit(self.loc.run(op)?, "list set")
    }

    /// Removes item `index`.
    pub fn remove(&mut self, index: u32) -> Result<()> {
        unit(self.loc.run(Op::ListRemove { index })?, "list remove")
    }

    /// A page of items.
    pub fn items_page(&self, page: Page) -> Result<Vec<Vec<u8>>> {
        list(self.loc.run(Op::ListItems(page))?, "list items")
    }

    /// Every item.
    pub fn items(&self) -> Result<Vec<Vec<u8>>> {
        self.loc.all(Op::ListItems, "list items")
    }
}

/// Characters one whole-text read asks for at a time (≤ 256 KiB of UTF-8, under the host's
/// result limit).
const TEXT_CHUNK: u32 = 64 << 10;

impl Text {
    /// Characters `[pos, pos + len)` (clipped at the end).
    pub fn read_range(&self, pos: u32, len: u32) -> Result<String> {
        let page = Page {
            offset: pos,
            limit: len,
        };
        match self.loc.run(Op::TextRead(page))? {
            Value::Text(s) => Ok(s),
            _ => Err(Error::UnexpectedValue { op: "text read" }),
        }
    }

    /// The whole text.
    pub fn read(&self) -> Result<String> {
        let mut out = String::new();
        let mut pos = 0u32;
        loop {
            let chunk = self.read_range(pos, TEXT_CHUNK)?;
            let chars = u32::try_from(chunk.chars().count()).unwrap_or(u32::MAX);
            out.push_str(&chunk);
            if chars < TEXT_CHUNK {
                return Ok(out);
            }
            pos = pos.saturating_add(chars);
        }
    }

    /// Number of characters.
    pub fn len(&self) -> Result<u64> {
        count(self.loc.run(Op::TextLen)?, "text len")
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Inserts `text` at character position `pos`.
    pub fn insert(&mut self, pos: u32, text: &str) -> Result<()> {
        unit(self.loc.run(Op::TextInsert { pos, text })?, "text insert")
    }

    /// Appends `text`.
    pub fn push(&mut self, text: &str) -> Result<()> {
        unit(self.loc.run(Op::TextPush { text })?, "text push")
    }

    /// Deletes `len` characters from `pos`.
    pub fn delete(&mut self, pos: u32, len: u32) -> Result<()> {
        unit(self.loc.run(Op::TextDelete { pos, len })?, "text delete")
    }
}
