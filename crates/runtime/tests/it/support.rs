use tabmesh_testkit::test;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use tabmesh_base::{ContextId, MemberId};
use tabmesh_runtime::abi::{Op, OpError, OpErrorKind, StorageOp, Value};
use tabmesh_runtime::{Host, ModuleRef, Outcome, Runtime, RuntimeError};

pub(crate) const CONTEXT: ContextId = ContextId([7; 32]);
pub(crate) const EXECUTOR: MemberId = MemberId([9; 32]);
pub(crate) const NOW_MS: u64 = 1_700_000_000_123;

/// A collection addressed by field and path.
pub(crate) type Key = (String, Vec<Vec<u8>>);

/// What the test host stores at a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Register(Vec<u8>),
    Counter(u128),
    Map(BTreeMap<Vec<u8>, Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
}

/// An in-memory host below the `Host` trait. Writes go to `working`, a copy of `committed`;
/// [`call`] commits it only when the call succeeds, as the node will.
#[derive(Debug, Default)]
pub(crate) struct TestHost {
    pub(crate) committed: BTreeMap<Key, Entry>,
    working: BTreeMap<Key, Entry>,
    /// Storage operations seen (including refused ones).
    pub(crate) ops: usize,
    random_counter: u8,
}

impl TestHost {
    pub(crate) fn commit(&mut self) {
        self.committed = self.working.clone();
    }

    pub(crate) fn rollback(&mut self) {
        self.working = self.committed.clone();
    }

    pub(crate) fn get(&self, field: &str) -> Option<&Entry> {
        self.committed.get(&(field.to_owned(), Vec::new()))
    }

    fn wrong_type(key: &Key) -> OpError {
        OpError::new(OpErrorKind::WrongType, format!("{key:?} has another type"))
    }

    fn entry(&mut self, key: Key, new: impl FnOnce() -> Entry) -> &mut Entry {
        self.working.entry(key).or_insert_with(new)
    }
}

impl Host for TestHost {
    fn context_id(&self) -> ContextId {
        CONTEXT
    }

    fn executor_id(&self) -> MemberId {
        EXECUTOR
    }

    fn now_ms(&self) -> u64 {
        NOW_MS
    }

    fn random_bytes(&mut self, out: &mut [u8]) {
        for b in out {
            self.random_counter = self.random_counter.wrapping_add(1);
            *b = self.random_counter;
        }
    }

    fn storage(&mut self, op: &StorageOp<'_>) -> Result<Value, OpError> {
        self.ops += 1;
        let key: Key = (
            op.field.to_owned(),
            op.path.iter().map(|k| k.to_vec()).collect(),
        );
        let current = self.working.get(&key);
        match op.op {
            Op::RegisterGet => match current {
                None => Ok(Value::Absent),
                Some(Entry::Register(v)) => Ok(Value::Bytes(v.clone())),
                Some(_) => Err(Self::wrong_type(&key)),
            },
            Op::RegisterSet { value } => match current {
                None | Some(Entry::Register(_)) => {
                    self.working.insert(key, Entry::Register(value.to_vec()));
                    Ok(Value::Unit)
                }
                Some(_) => Err(Self::wrong_type(&key)),
            },
            Op::CounterGet => match current {
                None => Ok(Value::U128(0)),
                Some(Entry::Counter(n)) => Ok(Value::U128(*n)),
                Some(_) => Err(Self::wrong_type(&key)),
            },
            Op::CounterIncrement { by } => match self.entry(key.clone(), || Entry::Counter(0)) {
                Entry::Counter(n) => {
                    *n += u128::from(by);
                    Ok(Value::Unit)
                }
                _ => Err(Self::wrong_type(&key)),
            },
            Op::MapGet { key: k } => match current {
                None => Ok(Value::Absent),
                Some(Entry::Map(m)) => {
                    Ok(m.get(k).map_or(Value::Absent, |v| Value::Bytes(v.clone())))
                }
                Some(_) => Err(Self::wrong_type(&key)),
            },
            Op::MapInsert { key: k, value } => {
                match self.entry(key.clone(), || Entry::Map(BTreeMap::new())) {
                    Entry::Map(m) => {
                        m.insert(k.to_vec(), value.to_vec());
                        Ok(Value::Unit)
                    }
                    _ => Err(Self::wrong_type(&key)),
                }
            }
            Op::SetAdd { member } => {
                match self.entry(key.clone(), || Entry::Set(BTreeSet::new())) {
                    Entry::Set(s) => {
                        s.insert(member.to_vec());
                        Ok(Value::Unit)
                    }
                    _ => Err(Self::wrong_type(&key)),
                }
            }
            Op::SetLen => match current {
                None => Ok(Value::U64(0)),
                Some(Entry::Set(s)) => Ok(Value::U64(s.len() as u64)),
                Some(_) => Err(Self::wrong_type(&key)),
            },
            _ => Err(OpError::unsupported("this operation in the test host")),
        }
    }
}

/// Runs a call the way the node will: commit on success, discard on failure.
pub(crate) fn call<'m>(
    rt: &mut Runtime,
    module: impl Into<ModuleRef<'m>>,
    method: &str,
    input: &[u8],
    host: &mut TestHost,
) -> Result<Outcome, RuntimeError> {
    let r = rt.execute(module, method, input, host);
    if r.is_ok() {
        host.commit();
    } else {
        host.rollback();
    }
    r
}

/// `bytes` as a WAT string literal body.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        let _ = write!(s, "\\{b:02x}");
    }
    s
}

/// WAT text to module bytes (the `wat` crate also runs on wasm32).
pub(crate) fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("valid WAT")
}

/// Every ABI import, named `$<import>`.
pub(crate) const IMPORTS: &str = r#"
  (import "tabmesh" "input" (func $input (result i32)))
  (import "tabmesh" "read_result" (func $read_result (param i32 i32)))
  (import "tabmesh" "return_value" (func $return_value (param i32 i32)))
  (import "tabmesh" "fail" (func $fail (param i32 i32)))
  (import "tabmesh" "log" (func $log (param i32 i32)))
  (import "tabmesh" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "tabmesh" "storage" (func $storage (param i32 i32) (result i32)))
  (import "tabmesh" "blob" (func $blob (param i32 i32) (result i32)))
  (import "tabmesh" "context_id" (func $context_id (param i32)))
  (import "tabmesh" "executor_id" (func $executor_id (param i32)))
  (import "tabmesh" "time_now" (func $time_now (result i64)))
  (import "tabmesh" "random_bytes" (func $random_bytes (param i32 i32)))
"#;

/// A module with every import, `pages` of exported memory, and `body` (funcs, data).
pub(crate) fn module(pages: u32, body: &str) -> Vec<u8> {
    wasm(&format!(
        "(module {IMPORTS} (memory (export \"memory\") {pages}) {body})"
    ))
}

/// A method of a generated storage app: it runs the encoded operation `op`. When `dynamic`, the
/// operation's last field is a byte string that the method fills with the call's input (`op`
/// must then end with that field's zero length). The method returns the encoded result.
pub(crate) struct Method {
    pub(crate) name: &'static str,
    pub(crate) op: Vec<u8>,
    pub(crate) dynamic: bool,
}

pub(crate) fn method(name: &'static str, op: StorageOp<'_>, dynamic: bool) -> Method {
    Method {
        name,
        op: op.encode(),
        dynamic,
    }
}

/// A storage app: one method per [`Method`]. Layout: operation templates from 0x1000, the
/// operation being built at 0x8000, results read to 0x10000 (memory: 2 pages).
pub(crate) fn storage_app(methods: &[Method]) -> Vec<u8> {
    let mut body = String::new();
    for (i, m) in methods.iter().enumerate() {
        let at = 0x1000 + i * 0x400;
        assert!(m.op.len() < 0x400, "operation template too long");
        let len = m.op.len();
        let _ = write!(body, "(data (i32.const {at}) \"{}\")", escape(&m.op));
        let run = if m.dynamic {
            format!(
                "(memory.copy (i32.const 0x8000) (i32.const {at}) (i32.const {len}))
                 (local.set $n (call $input))
                 (i32.store (i32.const {patch}) (local.get $n))
                 (call $read_result (i32.const {tail}) (local.get $n))
                 (local.set $r (call $storage (i32.const 0x8000) (i32.add (i32.const {len}) (local.get $n))))",
                patch = 0x8000 + len - 4,
                tail = 0x8000 + len,
            )
        } else {
            format!("(local.set $r (call $storage (i32.const {at}) (i32.const {len})))")
        };
        let _ = write!(
            body,
            "(func (export \"{name}\") (local $n i32) (local $r i32)
               {run}
               (call $read_result (i32.const 0x10000) (local.get $r))
               (call $return_value (i32.const 0x10000) (local.get $r)))",
            name = m.name,
        );
    }
    module(2, &body)
}

#[test]
fn the_test_host_keeps_writes_only_when_committed() {
    let mut host = TestHost::default();
    let op = StorageOp {
        field: "x",
        path: vec![],
        op: Op::RegisterSet { value: b"1" },
    };
    assert_eq!(host.storage(&op), Ok(Value::Unit));
    host.rollback();
    assert_eq!(host.get("x"), None);
    assert_eq!(host.storage(&op), Ok(Value::Unit));
    host.commit();
    assert_eq!(host.get("x"), Some(&Entry::Register(b"1".to_vec())));
}
