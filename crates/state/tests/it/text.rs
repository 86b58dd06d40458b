use tabmesh_testkit::test;

use tabmesh_state::StateError;

use super::support::{assert_same, Replica};

fn text(r: &Replica) -> String {
    r.state.text("doc").expect("handle").to_string()
}

#[test]
fn insert_and_delete_ranges() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut d = t.text("doc")?;
        d.insert(0, "hello world")?;
        d.delete(5, 6)?;
        d.push_str("!")?;
        d.insert(0, "¡")?;
        assert_eq!(d.view().len(), 7);
        Ok(())
    });
    assert_eq!(text(&a), "¡hello!");
    let chars: Vec<char> = a.state.text("doc").expect("handle").chars().collect();
    assert_eq!(chars.len(), 7);
    a.write(2_000, |t| t.text("doc")?.delete(1, 5));
    assert_eq!(text(&a), "¡!");
    assert_eq!(a.reopen().text("doc").expect("handle").to_string(), "¡!");
}

#[test]
fn ranges_past_the_end_are_refused() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| t.text("doc")?.insert(0, "abc"));
    let mut t = a.state.txn(a.member, tabmesh_base::Hlc::new(2_000, 0));
    let mut d = t.text("doc").expect("handle");
    assert_eq!(
        d.insert(4, "x"),
        Err(StateError::IndexOutOfRange { index: 4, len: 3 })
    );
    assert_eq!(
        d.delete(2, 2),
        Err(StateError::IndexOutOfRange { index: 4, len: 3 })
    );
    assert_eq!(d.view().to_string(), "abc");
}

#[test]
fn concurrent_inserts_at_one_position_do_not_interleave() {
    let mut rs: Vec<Replica> = (1..=4)
        .map(|n| Replica::new(n, (n as u64) * 7_000))
        .collect();
    let init = rs[0].write(1_000, |t| t.text("doc")?.insert(0, "[]"));
    for r in &mut rs[1..] {
        r.receive(1_001, &init);
    }
    let words = ["one", "two", "three", "four"];
    let mut batches = Vec::new();
    for (r, w) in rs.iter_mut().zip(words) {
        batches.push(r.write(2_000, |t| t.text("doc")?.insert(1, w)));
    }
    for (i, r) in rs.iter_mut().enumerate() {
        for j in 0..batches.len() {
            r.receive(3_000, &batches[(i + j) % batches.len()]);
        }
    }
    // Skews 7 s, 14 s, 21 s, 28 s: the newest HLC (replica 4) comes first, each run contiguous.
    for r in &rs {
        assert_eq!(text(r), "[fourthreetwoone]");
    }
    for r in &rs[1..] {
        assert_same(&rs[0].state, &r.state, "text");
    }
}

#[test]
fn a_delete_concurrent_with_an_insert_next_to_it_keeps_the_insert() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let init = a.write(1_000, |t| t.text("doc")?.insert(0, "abcd"));
    b.receive(1_001, &init);
    let del = a.write(2_000, |t| t.text("doc")?.delete(1, 2));
    let ins = b.write(1_500, |t| t.text("doc")?.insert(2, "XY"));
    a.receive(3_000, &ins);
    b.receive(3_000, &del);
    assert_eq!(text(&a), "aXYd");
    assert_same(&a.state, &b.state, "delete/insert");
}

#[test]
fn a_text_inside_a_map_entry() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let x = a.write(1_000, |t| t.map("docs")?.text(b"readme")?.insert(0, "hi"));
    let y = b.write(1_000, |t| t.map("docs")?.text(b"readme")?.insert(0, "yo"));
    a.receive(2_000, &y);
    b.receive(2_000, &x);
    for r in [&a, &b] {
        let docs = r.state.map("docs").expect("handle");
        assert_eq!(docs.text(b"readme").expect("handle").to_string(), "yohi");
    }
    assert_same(&a.state, &b.state, "nested text");
}
