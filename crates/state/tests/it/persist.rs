use tabmesh_testkit::test;

use tabmesh_base::{CodecError, MemoryKv, WriteBatch, WriteOp};
use tabmesh_state::{State, StateError};

use super::support::{assert_same, Replica, PREFIX};

#[test]
fn every_commit_is_one_batch_under_the_prefix() {
    let mut a = Replica::new(1, 0);
    let hlc = a.clock.tick(1_000);
    let mut t = a.state.txn(a.member, hlc);
    t.map("m")
        .expect("handle")
        .insert(b"k", b"v")
        .expect("insert");
    t.counter("c")
        .expect("handle")
        .increment(2)
        .expect("increment");
    let c = t.commit();
    // map, entry, counter: one record each.
    assert_eq!(c.actions.len(), 3);
    assert_eq!(c.batch.len(), 3);
    for op in c.batch.ops() {
        assert!(op.key().starts_with(PREFIX), "key outside the prefix");
        assert!(matches!(op, WriteOp::Put(..)));
    }
    let mut b = Replica::new(2, 0);
    let applied = b.state.apply(&c.actions).expect("apply");
    assert_eq!(applied.len(), 3);
    // Re-applying changes nothing and persists nothing.
    assert!(b.state.apply(&c.actions).expect("apply again").is_empty());
}

#[test]
fn reopening_from_persisted_batches_restores_everything() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 1_500);
    let x = a.write(1_000, |t| {
        t.register("title")?.set(b"t")?;
        t.pn_counter("score")?.add(-4)?;
        let mut users = t.map("users")?;
        users.map(b"ann")?.counter(b"visits")?.increment(3)?;
        users.insert(b"bob", b"x")?;
        t.set("tags")?.add(b"red")?;
        t.list("todo")?.push(b"one")?;
        t.text("doc")?.insert(0, "héllo")
    });
    let y = b.write(1_000, |t| {
        t.map("users")?.delete(b"bob").map(|_| ())?;
        t.set("tags")?.add(b"blue")?;
        t.text("doc")?.insert(0, ">> ")
    });
    b.receive(2_000, &x);
    a.receive(2_000, &y);
    a.write(3_000, |t| {
        t.text("doc")?.delete(0, 2)?;
        t.map("users")?.delete(b"bob").map(|_| ())?;
        t.list("todo")?.insert(0, b"zero")
    });
    for r in [&a, &b] {
        let reopened = r.reopen();
        assert_same(&r.state, &reopened, "reopen");
        let (x, y) = (&r.state, &reopened);
        assert_eq!(
            x.text("doc").expect("h").to_string(),
            y.text("doc").expect("h").to_string()
        );
        let items = |s: &State| {
            s.list("todo")
                .expect("h")
                .iter()
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        assert_eq!(items(x), items(y));
        assert_eq!(
            x.set("tags").expect("h").len(),
            y.set("tags").expect("h").len()
        );
        assert_eq!(
            x.map("users").expect("h").len(),
            y.map("users").expect("h").len()
        );
    }
    assert_eq!(a.reopen().text("doc").expect("h").to_string(), " héllo");
}

#[test]
fn a_record_of_an_unknown_version_is_a_typed_error() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| t.register("r")?.set(b"v"));
    let (key, mut value) =
        a.kv.iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .expect("one record");
    value[0] = 99;
    let mut kv = MemoryKv::new();
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    kv.apply(&batch);
    let err = State::open(PREFIX, &kv).err();
    assert_eq!(
        err,
        Some(StateError::Codec(CodecError::UnknownVersion {
            found: 99,
            supported: 1
        }))
    );
}

#[test]
fn a_record_under_the_wrong_key_is_refused() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        t.register("r")?.set(b"v")?;
        t.register("s")?.set(b"w")
    });
    let records: Vec<(Vec<u8>, Vec<u8>)> =
        a.kv.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut kv = MemoryKv::new();
    let mut batch = WriteBatch::new();
    batch.put(records[0].0.clone(), records[1].1.clone());
    kv.apply(&batch);
    assert!(matches!(
        State::open(PREFIX, &kv),
        Err(StateError::Corrupt(_))
    ));
}

#[test]
fn other_prefixes_are_ignored() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| t.register("r")?.set(b"v"));
    let mut batch = WriteBatch::new();
    batch.put(b"other/e-not-ours".to_vec(), b"garbage".to_vec());
    a.kv.apply(&batch);
    let reopened = a.reopen();
    assert_same(&a.state, &reopened, "other prefix");
    assert!(State::open(b"elsewhere/", &a.kv).expect("open").is_empty());
}
