use tabmesh_testkit::test;

use tabmesh_base::Hlc;
use tabmesh_state::{ActionOp, State};

use super::support::{assert_same, member, Replica, PREFIX};

#[test]
fn the_newer_hlc_wins_whatever_the_arrival_order() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let old = a.write(1_000, |t| t.register("title")?.set(b"old"));
    let new = b.write(2_000, |t| t.register("title")?.set(b"new"));
    a.receive(3_000, &new);
    b.receive(3_000, &old);
    for r in [&a, &b] {
        assert_eq!(
            r.state.register("title").expect("handle").get(),
            Some(&b"new"[..])
        );
    }
    assert_same(&a.state, &b.state, "lww");
}

#[test]
fn equal_hlcs_are_broken_by_writer_id() {
    let hlc = Hlc::new(5_000, 0);
    let mut low = State::new(PREFIX);
    let mut high = State::new(PREFIX);
    let mut t = low.txn(member(1), hlc);
    t.register("r")
        .expect("handle")
        .set(b"from-low-zzz")
        .expect("set");
    let from_low = t.commit().actions;
    let mut t = high.txn(member(9), hlc);
    t.register("r")
        .expect("handle")
        .set(b"from-high")
        .expect("set");
    let from_high = t.commit().actions;
    low.apply(&from_high).expect("apply");
    high.apply(&from_low).expect("apply");
    for s in [&low, &high] {
        assert_eq!(
            s.register("r").expect("handle").get(),
            Some(&b"from-high"[..])
        );
    }
}

#[test]
fn equal_stamps_are_broken_by_value_bytes() {
    // Only a writer reusing a stamp can produce this; the merge still picks one value everywhere.
    let hlc = Hlc::new(5_000, 0);
    let mut x = State::new(PREFIX);
    let mut y = State::new(PREFIX);
    let mut t = x.txn(member(3), hlc);
    t.register("r").expect("handle").set(b"aaa").expect("set");
    let from_x = t.commit().actions;
    let mut t = y.txn(member(3), hlc);
    t.register("r").expect("handle").set(b"bbb").expect("set");
    let from_y = t.commit().actions;
    x.apply(&from_y).expect("apply");
    y.apply(&from_x).expect("apply");
    assert_same(&x, &y, "tie");
    assert_eq!(x.register("r").expect("handle").get(), Some(&b"bbb"[..]));
}

#[test]
fn a_second_write_in_one_transaction_replaces_the_first() {
    let mut s = State::new(PREFIX);
    let mut t = s.txn(member(1), Hlc::new(1, 0));
    let mut r = t.register("r").expect("handle");
    r.set(b"zzz").expect("set");
    r.set(b"aaa").expect("set");
    assert_eq!(r.view().get(), Some(&b"aaa"[..]));
    let c = t.commit();
    assert_eq!(c.actions.len(), 1);
    assert_eq!(s.register("r").expect("handle").get(), Some(&b"aaa"[..]));
}

#[test]
fn delete_versus_update_is_decided_by_hlc() {
    // Update newer than the delete: the value survives.
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let init = a.write(1_000, |t| t.register("r")?.set(b"v1"));
    b.receive(1_001, &init);
    let del = b.write(2_000, |t| t.register("r")?.clear().map(|_| ()));
    let upd = a.write(3_000, |t| t.register("r")?.set(b"v2"));
    assert_eq!(del.last().map(|x| x.op()), Some(ActionOp::Delete));
    a.receive(4_000, &del);
    b.receive(4_000, &upd);
    for r in [&a, &b] {
        assert_eq!(
            r.state.register("r").expect("handle").get(),
            Some(&b"v2"[..])
        );
    }
    assert_same(&a.state, &b.state, "update wins");

    // Delete newer than the update: the value is gone.
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let init = a.write(1_000, |t| t.register("r")?.set(b"v1"));
    b.receive(1_001, &init);
    let upd = a.write(2_000, |t| t.register("r")?.set(b"v2"));
    let del = b.write(3_000, |t| t.register("r")?.clear().map(|_| ()));
    a.receive(4_000, &del);
    b.receive(4_000, &upd);
    for r in [&a, &b] {
        assert_eq!(r.state.register("r").expect("handle").get(), None);
    }
    assert_same(&a.state, &b.state, "delete wins");
}

#[test]
fn a_write_after_observing_a_future_value_still_wins_locally() {
    // Bob's clock is far ahead; Alice observes his value, and her next write is lifted above it.
    let mut alice = Replica::new(1, 0);
    let mut bob = Replica::new(2, 3_600_000);
    let future = bob.write(1_000, |t| t.register("r")?.set(b"bob"));
    alice.receive(1_001, &future);
    let mine = alice.write(1_002, |t| t.register("r")?.set(b"alice"));
    assert_eq!(
        alice.state.register("r").expect("handle").get(),
        Some(&b"alice"[..])
    );
    bob.receive(1_003, &mine);
    assert_same(&alice.state, &bob.state, "lifted");
}

#[test]
fn metadata_records_creation_and_last_update() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| t.register("r")?.set(b"1"));
    a.write(2_000, |t| t.register("r")?.set(b"2"));
    let m = *a
        .state
        .register("r")
        .expect("handle")
        .metadata()
        .expect("exists");
    assert_eq!(m.created.hlc.wall_ms, 1_000);
    assert_eq!(m.updated.hlc.wall_ms, 2_000);
    assert_eq!(m.created.writer, member(1));
    assert_eq!(m.deleted, None);
}
