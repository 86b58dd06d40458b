use tabmesh_testkit::test;

use super::support::{assert_same, Replica};

fn members(r: &Replica) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = r
        .state
        .set("tags")
        .expect("handle")
        .iter()
        .map(<[u8]>::to_vec)
        .collect();
    v.sort();
    v
}

#[test]
fn a_concurrent_add_wins_over_a_remove() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let init = a.write(1_000, |t| t.set("tags")?.add(b"x"));
    b.receive(1_001, &init);
    // b removes what it saw; a concurrently re-adds (an older HLC than the remove, still wins).
    let re_add = a.write(2_000, |t| t.set("tags")?.add(b"x"));
    let remove = b.write(3_000, |t| t.set("tags")?.remove(b"x").map(|_| ()));
    a.receive(4_000, &remove);
    b.receive(4_000, &re_add);
    for r in [&a, &b] {
        assert!(r.state.set("tags").expect("handle").contains(b"x"));
        assert_eq!(r.state.set("tags").expect("handle").len(), 1);
    }
    assert_same(&a.state, &b.state, "add wins");
}

#[test]
fn a_remove_of_everything_observed_removes() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let x = a.write(1_000, |t| t.set("tags")?.add(b"x"));
    let y = b.write(1_000, |t| t.set("tags")?.add(b"x"));
    a.receive(1_500, &y);
    let rm = a.write(2_000, |t| {
        assert!(t.set("tags")?.remove(b"x")?);
        Ok(())
    });
    b.receive(3_000, &rm);
    b.receive(3_000, &x);
    for r in [&a, &b] {
        assert!(!r.state.set("tags").expect("handle").contains(b"x"));
        assert!(r.state.set("tags").expect("handle").is_empty());
    }
    // Re-adding after the remove brings it back.
    let back = b.write(4_000, |t| t.set("tags")?.add(b"x"));
    a.receive(5_000, &back);
    assert_eq!(members(&a), vec![b"x".to_vec()]);
    assert_same(&a.state, &b.state, "remove then re-add");
}

#[test]
fn removing_an_absent_member_does_nothing() {
    let mut a = Replica::new(1, 0);
    let actions = a.write(1_000, |t| {
        assert!(!t.set("tags")?.remove(b"nope")?);
        Ok(())
    });
    assert!(actions.is_empty());
}

#[test]
fn concurrent_adds_and_removes_of_many_members_converge() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let init = a.write(1_000, |t| {
        let mut s = t.set("tags")?;
        for v in [&b"p"[..], b"q", b"r"] {
            s.add(v)?;
        }
        Ok(())
    });
    b.receive(1_001, &init);
    let xa = a.write(2_000, |t| {
        let mut s = t.set("tags")?;
        s.remove(b"p")?;
        s.add(b"s")
    });
    let xb = b.write(2_000, |t| {
        let mut s = t.set("tags")?;
        s.remove(b"q")?;
        s.remove(b"p")?;
        s.add(b"q")
    });
    a.receive(3_000, &xb);
    b.receive(3_000, &xa);
    for r in [&a, &b] {
        assert_eq!(
            members(r),
            vec![b"q".to_vec(), b"r".to_vec(), b"s".to_vec()]
        );
    }
    assert_same(&a.state, &b.state, "set");
}
