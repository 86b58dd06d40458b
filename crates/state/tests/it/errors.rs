use tabmesh_testkit::test;

// Hostile or confused input is a typed error and changes nothing; dropped transactions undo.

use tabmesh_base::Hlc;
use tabmesh_state::{State, StateError};

use super::support::{assert_same, member, Replica};

#[test]
fn a_counter_action_for_a_map_entity_is_refused_and_changes_nothing() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    a.write(1_000, |t| t.map("x")?.insert(b"k", b"v"));
    let bad = b.write(1_000, |t| {
        t.register("fine")?.set(b"ok")?;
        t.counter("x")?.increment(1)
    });
    let before = a.state.clone();
    let err = a.state.apply(&bad).err();
    assert!(
        matches!(
            err,
            Some(StateError::KindMismatch {
                existing: tabmesh_state::CrdtKind::Map,
                ..
            })
        ),
        "{err:?}"
    );
    assert_same(&before, &a.state, "refused batch");
    assert_eq!(a.state.register("fine").expect("handle").get(), None);
}

#[test]
fn children_need_a_known_parent_of_the_right_type() {
    let mut a = Replica::new(1, 0);
    let chars = a.write(1_000, |t| t.text("doc")?.insert(0, "ab"));
    // Without the text's own action first, the characters have no parent.
    let mut fresh = State::new(super::support::PREFIX);
    let err = fresh.apply(&chars[1..]).err();
    assert!(
        matches!(err, Some(StateError::MissingParent { .. })),
        "{err:?}"
    );
    assert!(fresh.is_empty());
    // Where "doc" is a map, text characters cannot sit under it.
    let mut b = Replica::new(2, 0);
    b.write(1_000, |t| t.map("doc")?.insert(b"k", b"v"));
    let root = b.state.root_hash();
    let err = b.state.apply(&chars[1..]).err();
    assert!(
        matches!(err, Some(StateError::InvalidChild { .. })),
        "{err:?}"
    );
    assert_eq!(b.state.root_hash(), root);
}

#[test]
fn a_reused_stamp_with_other_content_joins_to_one_element_whatever_the_order() {
    // Only an equivocating author reuses a stamp; every replica must still end the same.
    let base = {
        let mut s = State::new(super::support::PREFIX);
        let mut t = s.txn(member(2), Hlc::new(500, 0));
        t.text("doc").expect("h").insert(0, "pq").expect("insert");
        t.commit().actions
    };
    let hlc = Hlc::new(1_000, 0);
    let write = |at: usize, text: &str| {
        let mut s = State::new(super::support::PREFIX);
        s.apply(&base).expect("base");
        let mut t = s.txn(member(1), hlc);
        t.text("doc").expect("h").insert(at, text).expect("insert");
        let actions = t.commit().actions;
        (s, actions)
    };
    // Same origin, other characters; then other origins (after "p" on one side, "q" on the other).
    for ((at_x, tx), (at_y, ty)) in [
        ((1, "a"), (1, "b")),
        ((1, "a"), (2, "a")),
        ((0, "z"), (2, "y")),
    ] {
        let (mut x, from_x) = write(at_x, tx);
        let (mut y, from_y) = write(at_y, ty);
        x.apply(&from_y).expect("joins");
        y.apply(&from_x).expect("joins");
        assert_eq!(x.root_hash(), y.root_hash());
        let (a, b) = (
            x.text("doc").expect("h").to_string(),
            y.text("doc").expect("h").to_string(),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 3, "one element under the reused stamp: {a:?}");
        // Idempotent: applying either again changes nothing.
        let root = x.root_hash();
        x.apply(&from_x).expect("again");
        x.apply(&from_y).expect("again");
        assert_eq!(x.root_hash(), root);
    }
}

#[test]
fn joining_states_of_different_entities_is_refused() {
    let mut a = Replica::new(1, 0);
    let actions = a.write(1_000, |t| {
        t.register("r")?.set(b"1")?;
        t.register("s")?.set(b"2")
    });
    let mut first = actions[0].clone();
    let err = first.join(&actions[1]).err();
    assert!(
        matches!(err, Some(StateError::DifferentEntities { .. })),
        "{err:?}"
    );
    assert_eq!(first, actions[0]);
}

#[test]
fn a_dropped_or_aborted_transaction_undoes_everything() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut m = t.map("m")?;
        m.insert(b"k", b"v")?;
        for i in 0..40u32 {
            m.insert(&i.to_be_bytes(), b"old")?;
        }
        t.text("doc")?.insert(0, "keep")?;
        t.list("l")?.push(b"x")
    });
    let before = a.state.clone();
    {
        let mut t = a.state.txn(a.member, Hlc::new(2_000, 0));
        let mut m = t.map("m").expect("h");
        m.insert(b"k2", b"new").expect("insert");
        // Enough new entries to grow the map's trie a level, so undoing must collapse it.
        for i in 100..400u32 {
            m.insert(&i.to_be_bytes(), b"new").expect("insert");
        }
        t.map("m").expect("h").delete(b"k").expect("delete");
        t.text("doc").expect("h").insert(2, "XYZ").expect("insert");
        t.text("doc").expect("h").delete(0, 1).expect("delete");
        t.list("l").expect("h").insert(0, b"y").expect("insert");
        t.set("fresh").expect("h").add(b"m").expect("add");
        assert_eq!(t.state().text("doc").expect("h").to_string(), "eXYZep");
        assert_ne!(t.state().root_hash(), before.root_hash());
    }
    assert_same(&before, &a.state, "dropped txn");
    assert_eq!(a.state.text("doc").expect("h").to_string(), "keep");
    let mut t = a.state.txn(a.member, Hlc::new(3_000, 0));
    t.register("r").expect("h").set(b"gone").expect("set");
    t.abort();
    assert_same(&before, &a.state, "aborted txn");
    // The state is still fully usable afterwards.
    a.write(4_000, |t| t.text("doc")?.insert(4, "!"));
    assert_eq!(a.state.text("doc").expect("h").to_string(), "keep!");
    assert_same(&a.state, &a.reopen(), "after undo");
}

#[test]
fn keys_and_values_over_their_bounds_are_refused_locally() {
    let mut s = State::new(super::support::PREFIX);
    let mut t = s.txn(member(1), Hlc::new(1, 0));
    let long_key = vec![0u8; tabmesh_state::MAX_KEY_LEN + 1];
    let err = t.map("m").expect("h").register(&long_key).err();
    assert!(
        matches!(err, Some(StateError::TooLarge { what: "key", .. })),
        "{err:?}"
    );
    let err = t.set("s").expect("h").add(&long_key).err();
    assert!(matches!(err, Some(StateError::TooLarge { .. })), "{err:?}");
    let long_value = vec![0u8; tabmesh_state::MAX_VALUE_LEN + 1];
    let err = t.register("r").expect("h").set(&long_value).err();
    assert!(
        matches!(err, Some(StateError::TooLarge { what: "value", .. })),
        "{err:?}"
    );
    assert!(t.is_empty());
}
