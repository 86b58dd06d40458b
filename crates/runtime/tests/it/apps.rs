use tabmesh_testkit::test;

// The example apps (crates/apps/*, built with tabmesh-sdk) run end to end in the runtime against an
// in-memory host. Native only (`main.rs` leaves this module out of wasm32 builds): the modules
// are read at test time from `target/apps/<name>.wasm`, which `scripts/build-apps.sh` writes
// (scripts/test.sh runs it before the native tests); a missing module fails the test, naming
// that script. `TABMESH_APPS_DIR`, else `$CARGO_TARGET_DIR/apps`, overrides the directory
// (`tabmesh_testkit::apps_dir`).

use std::collections::BTreeMap;

use tabmesh_base::{ContextId, MemberId};
use tabmesh_runtime::abi::{Op, OpError, OpErrorKind, StorageOp, Value, INIT_HOOK, MAX_PAGE};
use tabmesh_runtime::{Host, Outcome, Runtime, RuntimeError};

use super::support::{CONTEXT, EXECUTOR, NOW_MS};

fn app(name: &str) -> Vec<u8> {
    tabmesh_testkit::example_app(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A collection addressed by field and path.
type Key = (String, Vec<Vec<u8>>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Register(Vec<u8>),
    Counter(u128),
    Text(Vec<char>),
}

/// An in-memory host with every collection the example apps use. A map entry is the collection
/// one key below the map (`MapInsert { key }` at `p` is the register at `p + [key]`); a map's keys
/// are the distinct next keys of the collections below it. Writes go to `working`; [`AppHost::call`]
/// keeps them only when the call succeeds, as the node will.
#[derive(Clone, Debug, Default)]
struct AppHost {
    committed: BTreeMap<Key, Node>,
    working: BTreeMap<Key, Node>,
}

fn wrong_type(key: &Key) -> OpError {
    OpError::new(OpErrorKind::WrongType, format!("{key:?} has another type"))
}

fn child(key: &Key, k: &[u8]) -> Key {
    let mut path = key.1.clone();
    path.push(k.to_vec());
    (key.0.clone(), path)
}

impl AppHost {
    fn call(
        &mut self,
        rt: &mut Runtime,
        wasm: &[u8],
        method: &str,
        input: &str,
    ) -> Result<Outcome, RuntimeError> {
        let r = rt.execute(wasm, method, input.as_bytes(), self);
        if r.is_ok() {
            self.committed = self.working.clone();
        } else {
            self.working = self.committed.clone();
        }
        r
    }

    /// Every collection at or below `key`.
    fn below(&self, key: &Key) -> Vec<Key> {
        self.working
            .keys()
            .filter(|(f, p)| *f == key.0 && p.starts_with(&key.1))
            .cloned()
            .collect()
    }

    /// The visible keys of the map at `key`.
    fn map_keys(&self, key: &Key) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .below(key)
            .into_iter()
            .filter(|(_, p)| p.len() > key.1.len())
            .map(|(_, p)| p[key.1.len()].clone())
            .collect();
        keys.dedup();
        keys
    }

    fn text(&mut self, key: &Key) -> Result<&mut Vec<char>, OpError> {
        match self
            .working
            .entry(key.clone())
            .or_insert(Node::Text(Vec::new()))
        {
            Node::Text(t) => Ok(t),
            _ => Err(wrong_type(key)),
        }
    }
}

fn range(t: &[char], pos: u32, len: u32) -> Result<(usize, usize), OpError> {
    let pos = pos as usize;
    let end = pos.saturating_add(len as usize);
    if end > t.len() {
        return Err(OpError::new(
            OpErrorKind::OutOfRange,
            format!("{pos}+{len} of {}", t.len()),
        ));
    }
    Ok((pos, end))
}

impl Host for AppHost {
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
        out.fill(1);
    }

    fn storage(&mut self, op: &StorageOp<'_>) -> Result<Value, OpError> {
        let key: Key = (
            op.field.to_owned(),
            op.path.iter().map(|k| k.to_vec()).collect(),
        );
        let register_get = |host: &AppHost, key: &Key| match host.working.get(key) {
            None => Ok(Value::Absent),
            Some(Node::Register(v)) => Ok(Value::Bytes(v.clone())),
            Some(_) => Err(wrong_type(key)),
        };
        match op.op {
            Op::RegisterGet => register_get(self, &key),
            Op::MapGet { key: k } => register_get(self, &child(&key, k)),
            Op::RegisterSet { value } | Op::MapInsert { value, .. } => {
                let key = match op.op {
                    Op::MapInsert { key: k, .. } => child(&key, k),
                    _ => key,
                };
                match self.working.get(&key) {
                    None | Some(Node::Register(_)) => {
                        self.working.insert(key, Node::Register(value.to_vec()));
                        Ok(Value::Unit)
                    }
                    Some(_) => Err(wrong_type(&key)),
                }
            }
            Op::CounterGet => match self.working.get(&key) {
                None => Ok(Value::U128(0)),
                Some(Node::Counter(n)) => Ok(Value::U128(*n)),
                Some(_) => Err(wrong_type(&key)),
            },
            Op::CounterIncrement { by } => {
                match self.working.entry(key.clone()).or_insert(Node::Counter(0)) {
                    Node::Counter(n) => {
                        *n += u128::from(by);
                        Ok(Value::Unit)
                    }
                    _ => Err(wrong_type(&key)),
                }
            }
            Op::MapContains { key: k } => Ok(Value::Bool(!self.below(&child(&key, k)).is_empty())),
            Op::MapDelete { key: k } => {
                let gone = self.below(&child(&key, k));
                for g in &gone {
                    self.working.remove(g);
                }
                Ok(Value::Bool(!gone.is_empty()))
            }
            Op::MapLen => Ok(Value::U64(self.map_keys(&key).len() as u64)),
            Op::MapKeys(page) => {
                assert!(page.limit <= MAX_PAGE);
                let keys = self.map_keys(&key);
                Ok(Value::List(
                    keys.into_iter()
                        .skip(page.offset as usize)
                        .take(page.limit as usize)
                        .collect(),
                ))
            }
            Op::TextLen => Ok(Value::U64(self.text(&key)?.len() as u64)),
            Op::TextRead(page) => {
                let t = self.text(&key)?;
                let start = (page.offset as usize).min(t.len());
                let end = start.saturating_add(page.limit as usize).min(t.len());
                Ok(Value::Text(t[start..end].iter().collect()))
            }
            Op::TextInsert { pos, text } => {
                let t = self.text(&key)?;
                let (pos, _) = range(t, pos, 0)?;
                t.splice(pos..pos, text.chars());
                Ok(Value::Unit)
            }
            Op::TextPush { text } => {
                self.text(&key)?.extend(text.chars());
                Ok(Value::Unit)
            }
            Op::TextDelete { pos, len } => {
                let t = self.text(&key)?;
                let (pos, end) = range(t, pos, len)?;
                t.drain(pos..end);
                Ok(Value::Unit)
            }
            _ => Err(OpError::unsupported("this operation in the app test host")),
        }
    }
}

fn text(bytes: Option<Vec<u8>>) -> String {
    String::from_utf8(bytes.expect("a return value")).expect("UTF-8")
}

fn ret(outcome: &Outcome) -> String {
    text(outcome.return_value.clone())
}

fn failed(r: Result<Outcome, RuntimeError>) -> String {
    match r {
        Err(RuntimeError::Failed { payload }) => text(Some(payload.into())),
        other => panic!("expected the app to fail, got {other:?}"),
    }
}

fn events(outcome: &Outcome) -> Vec<(String, String, Option<String>)> {
    outcome
        .events
        .iter()
        .map(|e| {
            (
                e.kind.clone(),
                text(Some(e.data.clone())),
                e.handler.clone(),
            )
        })
        .collect()
}

#[test]
fn the_sdk_apps_export_their_methods_and_import_only_the_abi() {
    let mut rt = Runtime::default();
    for (name, methods) in [
        (
            "kv-store",
            &["count", "entries", "get", "remove", "set"][..],
        ),
        (
            "kv-store-with-handlers",
            &["get", "handled", "on_set", "set"],
        ),
        (
            "collab-text",
            &["append", "delete", "insert", "length", "read"],
        ),
    ] {
        let wasm = app(name);
        rt.load(&wasm)
            .unwrap_or_else(|e| panic!("{name} loads: {e}"));
        let mut host = AppHost::default();
        for method in methods {
            // Every method exists (a read or a call with missing arguments, never UnknownMethod).
            let r = host.call(&mut rt, &wasm, method, "{}");
            assert!(
                !matches!(r, Err(RuntimeError::UnknownMethod(_))),
                "{name}.{method}: {r:?}"
            );
        }
        // Only collab-text has an init hook; hooks are never callable as methods.
        let hash = rt.load(&wasm).expect("cached");
        assert_eq!(
            rt.has_hook(&hash, INIT_HOOK),
            name == "collab-text",
            "{name}"
        );
        assert!(matches!(
            host.call(&mut rt, &wasm, INIT_HOOK, ""),
            Err(RuntimeError::UnknownMethod(_))
        ));
    }
}

#[test]
fn the_init_hook_runs_the_apps_init_with_the_creation_arguments() {
    let mut rt = Runtime::default();
    let wasm = app("collab-text");
    let mut host = AppHost::default();
    let outcome = rt
        .execute_hook(&wasm[..], INIT_HOOK, br#"{"text":"draft"}"#, &mut host)
        .expect("init runs")
        .expect("collab-text has an init hook");
    assert_eq!(outcome.return_value.as_deref(), Some(&b"null"[..]));
    host.committed = host.working.clone();
    assert_eq!(
        ret(&host.call(&mut rt, &wasm, "read", "").expect("read")),
        r#""draft""#
    );

    // Without arguments (`Option` members may be missing), init leaves the document empty.
    let mut empty = AppHost::default();
    rt.execute_hook(&wasm[..], INIT_HOOK, b"", &mut empty)
        .expect("init runs");
    assert!(empty.working.is_empty());

    // An app without `#[app::init]` exports no hook: nothing to run.
    let kv = app("kv-store");
    assert_eq!(
        rt.execute_hook(&kv[..], INIT_HOOK, b"", &mut empty),
        Ok(None)
    );
}

#[test]
fn kv_store_sets_gets_removes_and_lists_with_events() {
    let mut rt = Runtime::default();
    let wasm = app("kv-store");
    let mut host = AppHost::default();

    let set = host
        .call(&mut rt, &wasm, "set", r#"{"key":"a","value":"1"}"#)
        .expect("set");
    assert_eq!(ret(&set), "null");
    assert_eq!(
        events(&set),
        [("Inserted".into(), r#"{"key":"a","value":"1"}"#.into(), None)]
    );
    let update = host
        .call(&mut rt, &wasm, "set", r#"{"key":"a","value":"2"}"#)
        .expect("set");
    assert_eq!(
        events(&update),
        [("Updated".into(), r#"{"key":"a","value":"2"}"#.into(), None)]
    );
    host.call(&mut rt, &wasm, "set", r#"{"value":"3","key":"b"}"#)
        .expect("set");

    let get = |host: &mut AppHost, rt: &mut Runtime, key: &str| {
        ret(&host
            .call(rt, &wasm, "get", &format!(r#"{{"key":"{key}"}}"#))
            .expect("get"))
    };
    assert_eq!(get(&mut host, &mut rt, "a"), r#""2""#);
    assert_eq!(get(&mut host, &mut rt, "zzz"), "null");
    let entries = host.call(&mut rt, &wasm, "entries", "").expect("entries");
    assert_eq!(ret(&entries), r#"[["a","2"],["b","3"]]"#);
    assert!(entries.events.is_empty(), "reads emit nothing");
    assert_eq!(
        ret(&host.call(&mut rt, &wasm, "count", "null").expect("count")),
        "2"
    );

    let removed = host
        .call(&mut rt, &wasm, "remove", r#"{"key":"a"}"#)
        .expect("remove");
    assert_eq!(ret(&removed), "true");
    assert_eq!(
        events(&removed),
        [("Removed".into(), r#"{"key":"a"}"#.into(), None)]
    );
    let again = host
        .call(&mut rt, &wasm, "remove", r#"{"key":"a"}"#)
        .expect("remove");
    assert_eq!(ret(&again), "false");
    assert!(again.events.is_empty());
    assert_eq!(get(&mut host, &mut rt, "a"), "null");
    assert_eq!(
        ret(&host.call(&mut rt, &wasm, "entries", "{}").expect("entries")),
        r#"[["b","3"]]"#
    );
}

#[test]
fn bad_arguments_and_refused_operations_fail_the_call_as_json() {
    let mut rt = Runtime::default();
    let wasm = app("kv-store");
    let mut host = AppHost::default();

    let missing = failed(host.call(&mut rt, &wasm, "set", r#"{"key":"a"}"#));
    assert!(
        missing.starts_with(r#"{"kind":"bad_input","message":"missing field `value`"#),
        "{missing}"
    );
    let not_json = failed(host.call(&mut rt, &wasm, "get", "key=a"));
    assert!(not_json.starts_with(r#"{"kind":"bad_input""#), "{not_json}");

    // A collection of another type under the map's entry: the host refuses, the app fails the
    // call with the SDK's error, and the node discards the call's writes.
    host.committed
        .insert(("items".into(), vec![b"c".to_vec()]), Node::Counter(1));
    host.working = host.committed.clone();
    let refused = failed(host.call(&mut rt, &wasm, "set", r#"{"key":"c","value":"x"}"#));
    assert!(
        refused.starts_with(r#"{"kind":"storage","reason":"wrong_type""#),
        "{refused}"
    );
    assert_eq!(
        host.committed.get(&("items".into(), vec![b"c".to_vec()])),
        Some(&Node::Counter(1))
    );
}

#[test]
fn kv_store_with_handlers_names_its_handler_which_counts_on_receivers() {
    let mut rt = Runtime::default();
    let wasm = app("kv-store-with-handlers");
    let mut writer = AppHost::default();
    let mut receiver = AppHost::default();

    let set = writer
        .call(&mut rt, &wasm, "set", r#"{"key":"k","value":"v"}"#)
        .expect("set");
    assert_eq!(
        events(&set),
        [(
            "Set".into(),
            r#"{"key":"k","value":"v"}"#.into(),
            Some("on_set".into())
        )]
    );
    // The writer does not run its own handler.
    assert_eq!(
        ret(&writer
            .call(&mut rt, &wasm, "handled", r#"{"key":"k"}"#)
            .expect("handled")),
        "0"
    );

    // What the node does on a receiving member: the handler, with the event's data as input.
    let event = &set.events[0];
    let data = String::from_utf8(event.data.clone()).expect("UTF-8");
    let handler = event.handler.as_deref().expect("a handler");
    for round in 1..=2 {
        let handled = receiver
            .call(&mut rt, &wasm, handler, &data)
            .expect("handler");
        assert_eq!(handled.logs, ["handled a set of k"]);
        assert_eq!(
            ret(&receiver
                .call(&mut rt, &wasm, "handled", r#"{"key":"k"}"#)
                .expect("handled")),
            round.to_string()
        );
    }
    assert_eq!(
        ret(&receiver
            .call(&mut rt, &wasm, "handled", r#"{"key":"other"}"#)
            .expect("handled")),
        "0"
    );
}

#[test]
fn collab_text_inserts_deletes_and_reads() {
    let mut rt = Runtime::default();
    let wasm = app("collab-text");
    let mut host = AppHost::default();
    let read = |host: &mut AppHost, rt: &mut Runtime| {
        ret(&host.call(rt, &wasm, "read", "").expect("read"))
    };

    assert_eq!(read(&mut host, &mut rt), r#""""#);
    let ins = host
        .call(&mut rt, &wasm, "insert", r#"{"pos":0,"text":"hello"}"#)
        .expect("insert");
    assert_eq!(
        events(&ins),
        [(
            "Inserted".into(),
            r#"{"pos":0,"text":"hello"}"#.into(),
            None
        )]
    );
    host.call(&mut rt, &wasm, "append", r#"{"text":" wörld"}"#)
        .expect("append");
    host.call(&mut rt, &wasm, "insert", r#"{"pos":5,"text":","}"#)
        .expect("insert");
    assert_eq!(read(&mut host, &mut rt), r#""hello, wörld""#);
    assert_eq!(
        ret(&host.call(&mut rt, &wasm, "length", "").expect("length")),
        "12"
    );

    let del = host
        .call(&mut rt, &wasm, "delete", r#"{"pos":5,"len":7}"#)
        .expect("delete");
    assert_eq!(
        events(&del),
        [("Deleted".into(), r#"{"pos":5,"len":7}"#.into(), None)]
    );
    assert_eq!(read(&mut host, &mut rt), r#""hello""#);

    let past = failed(host.call(&mut rt, &wasm, "delete", r#"{"pos":3,"len":9}"#));
    assert!(
        past.starts_with(r#"{"kind":"storage","reason":"out_of_range""#),
        "{past}"
    );
    assert_eq!(read(&mut host, &mut rt), r#""hello""#);
}
