use tabmesh_testkit::test;

use tabmesh_state::{StateError, Value};

use super::support::{assert_same, Replica};

fn sorted_keys(r: &Replica, field: &str) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = r
        .state
        .map(field)
        .expect("handle")
        .keys()
        .map(<[u8]>::to_vec)
        .collect();
    keys.sort();
    keys
}

#[test]
fn entries_merge_individually() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let x = a.write(1_000, |t| {
        let mut m = t.map("kv")?;
        m.insert(b"a", b"1")?;
        m.insert(b"b", b"2")
    });
    let y = b.write(1_000, |t| {
        let mut m = t.map("kv")?;
        m.insert(b"c", b"3")?;
        m.insert(b"b", b"two")
    });
    a.receive(2_000, &y);
    b.receive(2_000, &x);
    for r in [&a, &b] {
        assert_eq!(
            sorted_keys(r, "kv"),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        let m = r.state.map("kv").expect("handle");
        assert_eq!(m.len(), 3);
        // Same HLC: the larger writer id (b) wins the conflicting key.
        assert_eq!(m.get(b"b"), Some(&b"two"[..]));
    }
    assert_same(&a.state, &b.state, "map");
}

#[test]
fn concurrent_update_and_delete_of_one_key_follow_hlc() {
    for (upd_at, del_at, survives) in [(3_000, 2_000, true), (2_000, 3_000, false)] {
        let mut a = Replica::new(1, 0);
        let mut b = Replica::new(2, 0);
        let init = a.write(1_000, |t| t.map("kv")?.insert(b"k", b"v1"));
        b.receive(1_001, &init);
        let upd = a.write(upd_at, |t| t.map("kv")?.insert(b"k", b"v2"));
        let del = b.write(del_at, |t| t.map("kv")?.delete(b"k").map(|_| ()));
        a.receive(4_000, &del);
        b.receive(4_000, &upd);
        for r in [&a, &b] {
            let m = r.state.map("kv").expect("handle");
            assert_eq!(
                m.get(b"k").is_some(),
                survives,
                "update at {upd_at}, delete at {del_at}"
            );
            assert_eq!(m.len(), usize::from(survives));
        }
        assert_same(&a.state, &b.state, "update/delete");
    }
}

#[test]
fn maps_of_maps_created_concurrently_merge() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let x = a.write(1_000, |t| {
        t.map("users")?.map(b"ann")?.insert(b"age", b"31")
    });
    let y = b.write(1_000, |t| {
        t.map("users")?.map(b"ann")?.insert(b"city", b"Oslo")
    });
    a.receive(2_000, &y);
    b.receive(2_000, &x);
    for r in [&a, &b] {
        let users = r.state.map("users").expect("handle");
        assert_eq!(users.len(), 1);
        let ann = users.map(b"ann").expect("handle");
        assert_eq!(ann.get(b"age"), Some(&b"31"[..]));
        assert_eq!(ann.get(b"city"), Some(&b"Oslo"[..]));
        assert!(matches!(users.value(b"ann"), Some(Value::Map(_))));
    }
    assert_same(&a.state, &b.state, "map of maps");
}

#[test]
fn a_revived_nested_map_shows_only_what_was_written_after_the_delete() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let init = a.write(1_000, |t| {
        let mut users = t.map("users")?;
        let mut ann = users.map(b"ann")?;
        ann.insert(b"old", b"x")?;
        ann.counter(b"visits")?.increment(2)
    });
    b.receive(1_001, &init);
    let del = a.write(2_000, |t| t.map("users")?.delete(b"ann").map(|_| ()));
    assert_eq!(a.state.map("users").expect("handle").len(), 0);
    let revive = b.write(3_000, |t| t.map("users")?.map(b"ann")?.insert(b"new", b"y"));
    a.receive(4_000, &revive);
    b.receive(4_000, &del);
    for r in [&a, &b] {
        let users = r.state.map("users").expect("handle");
        assert_eq!(users.len(), 1);
        let ann = users.map(b"ann").expect("handle");
        assert_eq!(ann.get(b"new"), Some(&b"y"[..]));
        assert_eq!(ann.get(b"old"), None);
        assert_eq!(ann.len(), 1);
        assert_eq!(ann.counter(b"visits").expect("handle").value(), 0);
    }
    assert_same(&a.state, &b.state, "revived");
}

#[test]
fn entries_of_every_type_read_back() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut m = t.map("m")?;
        m.insert(b"reg", b"r")?;
        m.counter(b"g")?.increment(3)?;
        m.pn_counter(b"pn")?.add(-2)?;
        m.set(b"s")?.add(b"x")?;
        m.list(b"l")?.push(b"i")?;
        m.text(b"t")?.insert(0, "txt")?;
        m.map(b"mm")?.ensure()
    });
    let m = a.state.map("m").expect("handle");
    assert_eq!(m.len(), 7);
    let mut seen = 0;
    for (key, value) in m.entries() {
        seen += 1;
        match (key, value) {
            (b"reg", Value::Register(v)) => assert_eq!(v, b"r"),
            (b"g", Value::Counter(v)) => assert_eq!(v, 3),
            (b"pn", Value::PnCounter(v)) => assert_eq!(v, -2),
            (b"s", Value::Set(s)) => assert!(s.contains(b"x")),
            (b"l", Value::List(l)) => assert_eq!(l.get(0), Some(&b"i"[..])),
            (b"t", Value::Text(t)) => assert_eq!(t.to_string(), "txt"),
            (b"mm", Value::Map(mm)) => assert!(mm.is_empty()),
            (k, v) => panic!("unexpected entry {k:?} = {v:?}"),
        }
    }
    assert_eq!(seen, 7);
}

#[test]
fn an_entry_keeps_its_type() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| t.map("m")?.insert(b"k", b"v"));
    let mut t = a.state.txn(a.member, tabmesh_base::Hlc::new(2_000, 0));
    let mut m = t.map("m").expect("handle");
    let err = m.counter(b"k").err();
    assert!(
        matches!(err, Some(StateError::KindMismatch { .. })),
        "{err:?}"
    );
    t.abort();
    let read = a.state.map("m").expect("handle").map(b"k").err();
    assert!(
        matches!(read, Some(StateError::KindMismatch { .. })),
        "{read:?}"
    );
}

#[test]
fn nesting_deeper_than_the_bound_is_refused() {
    let mut a = Replica::new(1, 0);
    let mut t = a.state.txn(a.member, tabmesh_base::Hlc::new(1, 0));
    // Fields are at depth 1, each nested map one deeper.
    let result = (|| -> Result<(), StateError> {
        let mut m1 = t.map("m0")?;
        let mut m2 = m1.map(b"1")?;
        let mut m3 = m2.map(b"2")?;
        let mut m4 = m3.map(b"3")?;
        let mut m5 = m4.map(b"4")?;
        let mut m6 = m5.map(b"5")?;
        let mut m7 = m6.map(b"6")?; // depth 7: its children are at depth 8
        m7.insert(b"leaf", b"ok")?; // a register at depth 8 is fine
        assert_eq!(m7.view().get(b"leaf"), Some(&b"ok"[..]));
        m7.map(b"7").map(|_| ()) // a map at depth 8 could hold nothing
    })();
    assert!(
        matches!(result, Err(StateError::TooDeep { depth: 8, .. })),
        "{result:?}"
    );
    assert_eq!(tabmesh_state::MAX_DEPTH, 8);
}
