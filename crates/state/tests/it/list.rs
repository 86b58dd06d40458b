use tabmesh_testkit::test;

use tabmesh_state::StateError;

use super::support::{assert_same, Replica};

fn items(r: &Replica) -> Vec<Vec<u8>> {
    r.state
        .list("todo")
        .expect("handle")
        .iter()
        .map(<[u8]>::to_vec)
        .collect()
}

fn v(xs: &[&str]) -> Vec<Vec<u8>> {
    xs.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn insert_push_set_remove() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut l = t.list("todo")?;
        l.push(b"b")?;
        l.insert(0, b"a")?;
        l.push(b"d")?;
        l.insert(2, b"c")?;
        assert_eq!(l.view().len(), 4);
        Ok(())
    });
    assert_eq!(items(&a), v(&["a", "b", "c", "d"]));
    a.write(2_000, |t| {
        let mut l = t.list("todo")?;
        l.set(1, b"B")?;
        l.remove(2)
    });
    assert_eq!(items(&a), v(&["a", "B", "d"]));
    let l = a.state.list("todo").expect("handle");
    assert_eq!(l.get(2), Some(&b"d"[..]));
    assert_eq!(l.get(3), None);
    let reopened = a.reopen();
    assert_eq!(reopened.list("todo").expect("handle").len(), 3);
}

#[test]
fn positions_past_the_end_are_refused() {
    let mut a = Replica::new(1, 0);
    let mut t = a.state.txn(a.member, tabmesh_base::Hlc::new(1, 0));
    let mut l = t.list("todo").expect("handle");
    assert_eq!(
        l.insert(1, b"x"),
        Err(StateError::IndexOutOfRange { index: 1, len: 0 })
    );
    assert_eq!(
        l.remove(0),
        Err(StateError::IndexOutOfRange { index: 0, len: 0 })
    );
    assert_eq!(
        l.set(0, b"x"),
        Err(StateError::IndexOutOfRange { index: 0, len: 0 })
    );
}

#[test]
fn concurrent_inserts_at_one_position_are_ordered_newest_first() {
    let mut rs: Vec<Replica> = (1..=3).map(|n| Replica::new(n, 0)).collect();
    let init = rs[0].write(1_000, |t| {
        let mut l = t.list("todo")?;
        l.push(b"start")?;
        l.push(b"end")
    });
    for r in &mut rs[1..] {
        r.receive(1_001, &init);
    }
    let mut batches = Vec::new();
    for (i, r) in rs.iter_mut().enumerate() {
        let at = 2_000 + i as u64 * 10;
        let label = format!("r{i}");
        batches.push(r.write(at, |t| {
            let mut l = t.list("todo")?;
            l.insert(1, label.as_bytes())?;
            l.insert(2, format!("{label}'").as_bytes())
        }));
    }
    for r in &mut rs {
        for b in batches.iter().rev() {
            r.receive(3_000, b);
        }
    }
    for r in &rs {
        assert_eq!(
            items(r),
            v(&["start", "r2", "r2'", "r1", "r1'", "r0", "r0'", "end"])
        );
    }
    assert_same(&rs[0].state, &rs[1].state, "list");
    assert_same(&rs[0].state, &rs[2].state, "list");
}

#[test]
fn concurrent_set_and_remove_of_one_element_follow_hlc() {
    for (set_at, rm_at, survives) in [(3_000, 2_000, true), (2_000, 3_000, false)] {
        let mut a = Replica::new(1, 0);
        let mut b = Replica::new(2, 0);
        let init = a.write(1_000, |t| t.list("todo")?.push(b"x"));
        b.receive(1_001, &init);
        let set = a.write(set_at, |t| t.list("todo")?.set(0, b"y"));
        let rm = b.write(rm_at, |t| t.list("todo")?.remove(0));
        a.receive(4_000, &rm);
        b.receive(4_000, &set);
        let expected = if survives { v(&["y"]) } else { Vec::new() };
        assert_eq!(items(&a), expected);
        assert_same(&a.state, &b.state, "set/remove");
    }
}
