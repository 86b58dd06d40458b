use tabmesh_testkit::test;

use tabmesh_base::Hlc;
use tabmesh_state::{State, StateError};

use super::support::{assert_same, member, Replica, PREFIX};

#[test]
fn concurrent_increments_add_up() {
    let mut rs: Vec<Replica> = (1..=3).map(|n| Replica::new(n, 0)).collect();
    let mut all = Vec::new();
    for (i, r) in rs.iter_mut().enumerate() {
        let by = i as u64 + 1;
        all.push(r.write(1_000, |t| t.counter("hits")?.increment(by)));
        all.push(r.write(1_100, |t| t.counter("hits")?.increment(10)));
    }
    for r in &mut rs {
        for a in &all {
            r.receive(2_000, a);
        }
        assert_eq!(
            r.state.counter("hits").expect("handle").value(),
            1 + 2 + 3 + 30
        );
    }
}

#[test]
fn redelivery_and_reordering_never_double_count() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let first = a.write(1_000, |t| t.counter("hits")?.increment(5));
    let second = a.write(2_000, |t| t.counter("hits")?.increment(7));
    // The slot's absolute value travels: the later action alone carries everything.
    b.receive(3_000, &second);
    assert_eq!(b.state.counter("hits").expect("handle").value(), 12);
    b.receive(3_001, &first);
    b.receive(3_002, &second);
    b.receive(3_003, &first);
    assert_eq!(b.state.counter("hits").expect("handle").value(), 12);
    assert_same(&a.state, &b.state, "gcounter");
}

#[test]
fn a_pn_counter_goes_both_ways_and_merges_per_slot() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let x = a.write(1_000, |t| {
        let mut c = t.pn_counter("score")?;
        c.add(10)?;
        c.add(-3)
    });
    let y = b.write(1_000, |t| t.pn_counter("score")?.add(-20));
    let z = a.write(2_000, |t| t.pn_counter("score")?.add(i64::MIN));
    b.receive(3_000, &z);
    b.receive(3_000, &x);
    b.receive(3_000, &z);
    a.receive(3_000, &y);
    let expected = 10 - 3 - 20 - (i128::from(i64::MAX) + 1);
    for r in [&a, &b] {
        assert_eq!(
            r.state.pn_counter("score").expect("handle").value(),
            expected
        );
    }
    assert_same(&a.state, &b.state, "pn");
}

#[test]
fn a_slot_that_would_overflow_is_refused() {
    let mut s = State::new(PREFIX);
    let mut t = s.txn(member(1), Hlc::new(1, 0));
    let mut c = t.counter("c").expect("handle");
    c.increment(u64::MAX).expect("fits");
    let id = c.id();
    assert_eq!(c.increment(1), Err(StateError::CounterOverflow { id }));
    assert_eq!(c.view().value(), u128::from(u64::MAX));
}

#[test]
fn a_map_of_counters_created_concurrently_merges() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let x = a.write(1_000, |t| t.map("votes")?.counter(b"post")?.increment(1));
    let y = b.write(1_000, |t| t.map("votes")?.counter(b"post")?.increment(2));
    a.receive(2_000, &y);
    b.receive(2_000, &x);
    for r in [&a, &b] {
        let votes = r.state.map("votes").expect("handle");
        assert_eq!(votes.len(), 1);
        assert_eq!(votes.counter(b"post").expect("handle").value(), 3);
    }
    assert_same(&a.state, &b.state, "map of counters");
}

#[test]
fn a_deleted_counter_entry_is_hidden_until_incremented_again() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| t.map("votes")?.counter(b"p")?.increment(4));
    a.write(2_000, |t| t.map("votes")?.delete(b"p").map(|_| ()));
    let votes = a.state.map("votes").expect("handle");
    assert!(!votes.contains_key(b"p"));
    assert_eq!(votes.counter(b"p").expect("handle").value(), 0);
    a.write(3_000, |t| t.map("votes")?.counter(b"p")?.increment(1));
    // Counters never go back: the revived entry shows its full merged value.
    assert_eq!(
        a.state
            .map("votes")
            .expect("handle")
            .counter(b"p")
            .expect("handle")
            .value(),
        5
    );
}
