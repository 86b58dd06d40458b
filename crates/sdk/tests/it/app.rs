use tabmesh_testkit::test;

use tabmesh_sdk::prelude::*;
use tabmesh_sdk::{Collection, Event, State};

#[app::state]
pub struct Demo {
    items: Map,
    per_key: Map<Counter>,
    nested: Map<Map<Set>>,
    r#type: Register,
    score: PnCounter,
    tags: Set,
    queue: List,
    doc: Text,
}

#[app::event]
pub enum DemoEvent {
    Named { key: String, n: u32 },
    One(String),
    Pair(u8, bool),
    Unit,
}

#[app::event]
pub struct Standalone {
    text: String,
}

#[app::logic]
impl Demo {
    #[app::init]
    pub fn setup(&mut self, greeting: Option<String>) -> Result<()> {
        self.r#type.set(greeting.unwrap_or_default())
    }

    pub fn set(&mut self, key: String, value: String) -> Result<()> {
        self.items.insert(&key, &value)?;
        emit!(DemoEvent::Named { key, n: 1 }, Self::bump)
    }

    pub fn bump(&mut self, key: String) -> Result<()> {
        self.per_key.entry_mut(&key).increment(1)
    }

    pub fn count(&self, key: String) -> Result<u128> {
        self.per_key.entry(&key).get()
    }

    pub fn plain(&self) -> u32 {
        7
    }

    pub fn strict(&self, n: u32) -> core::result::Result<u32, String> {
        if n > 3 {
            Err(format!("{n} is too many"))
        } else {
            Ok(n)
        }
    }

    fn helper(&self) -> bool {
        true
    }
}

#[test]
fn state_fields_address_collections_by_name() {
    let s = Demo::load();
    assert_eq!(s.items.field(), "items");
    assert_eq!(s.per_key.field(), "per_key");
    assert_eq!(s.r#type.field(), "type", "raw identifiers lose their r#");
    assert_eq!(s.doc.field(), "doc");
    assert!(s.score.path().is_empty() && s.tags.path().is_empty() && s.queue.path().is_empty());

    let inner = s.nested.entry("a");
    let leaf = inner.entry("b");
    assert_eq!(leaf.field(), "nested");
    assert_eq!(leaf.path(), [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(format!("{:?}", *leaf), "Set(nested[a][b])");
    assert!(s.helper());
}

#[test]
fn natively_every_host_call_is_a_typed_no_host_error() {
    let mut s = Demo::load();
    assert_eq!(s.set("k".into(), "v".into()), Err(Error::NoHost));
    assert_eq!(s.count("k".into()), Err(Error::NoHost));
    assert_eq!(s.doc.read(), Err(Error::NoHost));
    assert_eq!(s.items.keys(), Err(Error::NoHost));
    assert_eq!(tabmesh_sdk::env::time_now_ms(), Err(Error::NoHost));
    assert_eq!(emit!(Standalone { text: "x".into() }), Err(Error::NoHost));
    // Plain methods still run; the generated exports return quietly.
    assert_eq!(s.plain(), 7);
    assert_eq!(s.strict(9), Err("9 is too many".into()));
    __tabmesh_export_set();
    __tabmesh_export_setup();
    log!("dropped {}", 1);
}

#[test]
fn event_kinds_are_variant_names_and_data_their_fields() {
    let cases: Vec<(DemoEvent, &str, &str)> = vec![
        (
            DemoEvent::Named {
                key: "k".into(),
                n: 2,
            },
            "Named",
            r#"{"key":"k","n":2}"#,
        ),
        (DemoEvent::One("x".into()), "One", r#""x""#),
        (DemoEvent::Pair(1, true), "Pair", "[1,true]"),
        (DemoEvent::Unit, "Unit", "{}"),
    ];
    for (event, kind, data) in cases {
        assert_eq!(event.kind(), kind);
        assert_eq!(
            String::from_utf8(event.data().expect("encodes")).expect("utf8"),
            data
        );
    }
    let s = Standalone { text: "t".into() };
    assert_eq!(s.kind(), "Standalone");
    assert_eq!(s.data(), Ok(br#"{"text":"t"}"#.to_vec()));
}

#[test]
fn errors_encode_as_tagged_json() {
    use tabmesh_sdk::__private::serde_json;
    let json = |e: &Error| serde_json::to_string(e).expect("encodes");
    assert_eq!(json(&Error::NoHost), r#"{"kind":"no_host"}"#);
    assert_eq!(
        json(&Error::app("no such key")),
        r#"{"kind":"app","message":"no such key"}"#
    );
    let refused: Error = tabmesh_abi::OpError::new(tabmesh_abi::OpErrorKind::WrongType, "x").into();
    assert_eq!(
        json(&refused),
        r#"{"kind":"storage","reason":"wrong_type","message":"x"}"#
    );
    assert_eq!(
        refused.to_string(),
        "storage operation refused (wrong_type): x"
    );
}

#[test]
fn arguments_decode_from_a_json_object() {
    use tabmesh_sdk::__private::{args, ok, result};

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct A {
        key: String,
        n: Option<u32>,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct None_ {}

    assert_eq!(
        args::<A>(br#"{"key":"a","extra":true}"#),
        Ok(A {
            key: "a".into(),
            n: None
        })
    );
    assert_eq!(args::<None_>(b""), Ok(None_ {}));
    assert_eq!(args::<None_>(b" null "), Ok(None_ {}));
    let err = args::<A>(b"{}").expect_err("key is required");
    let err = String::from_utf8(err).expect("utf8");
    assert!(
        err.starts_with(r#"{"kind":"bad_input","message":"missing field `key`"#),
        "{err}"
    );

    assert_eq!(ok(&()), Ok(b"null".to_vec()));
    assert_eq!(ok(&Some("v")), Ok(br#""v""#.to_vec()));
    assert_eq!(
        result::<u8, Error>(&Err(Error::app("no"))),
        Err(br#"{"kind":"app","message":"no"}"#.to_vec())
    );
}
