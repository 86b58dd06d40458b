use tabmesh_testkit::test;

// Tombstone garbage collection: what `collect_garbage` removes and keeps, determinism across
// replicas, persistence of the horizon, the resurrection guard of `apply_counted`, `forget`, and
// RGA order after deleted elements are collected.

use tabmesh_base::{DetRng, EntityId, Hlc};
use tabmesh_state::{entry_id, field_id, member_id, Action, State, StateError, Txn};
use tabmesh_testkit::for_seeds;

use super::convergence::{random_op, render};
use super::support::{assert_same, Replica, PREFIX};

fn h(ms: u64) -> Hlc {
    Hlc::new(ms, 0)
}

/// Collects at `horizon` and persists the batch like any other.
fn collect(r: &mut Replica, horizon: Hlc) -> usize {
    let c = r.state.collect_garbage(horizon);
    r.kv.apply(&c.batch);
    c.removed
}

fn text(s: &State, field: &str) -> String {
    s.text(field).expect("text").to_string()
}

fn list(s: &State) -> Vec<Vec<u8>> {
    s.list("todo")
        .expect("list")
        .iter()
        .map(<[u8]>::to_vec)
        .collect()
}

fn map_keys(s: &State, field: &str) -> Vec<Vec<u8>> {
    s.map(field)
        .expect("map")
        .keys()
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn collection_removes_old_tombstones_and_their_hidden_subtrees_only() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut m = t.map("m")?;
        m.insert(b"live", b"1")?;
        m.insert(b"old", b"2")?;
        m.insert(b"recent", b"3")?;
        m.map(b"nested")?.insert(b"x", b"4")?;
        m.map(b"nested")?.text(b"t")?.insert(0, "hi")?;
        t.register("title")?.set(b"t")?;
        let mut s = t.set("tags")?;
        s.add(b"a")?;
        s.add(b"b")
    });
    a.write(2_000, |t| {
        let mut m = t.map("m")?;
        m.delete(b"old")?;
        m.delete(b"nested")?;
        t.register("title")?.clear()?;
        t.set("tags")?.remove(b"a").map(|_| ())
    });
    a.write(9_000, |t| t.map("m")?.delete(b"recent").map(|_| ()));
    let m = field_id("m");
    let nested = entry_id(m, b"nested");
    let len = a.state.len();
    let keys = map_keys(&a.state, "m");
    let tags: Vec<Vec<u8>> = a
        .state
        .set("tags")
        .expect("read")
        .iter()
        .map(<[u8]>::to_vec)
        .collect();

    let removed = collect(&mut a, h(5_000));

    // `old`, `nested` with its entry, its text and two characters, the cleared register and the
    // removed set member: eight entities.
    assert_eq!(removed, 8);
    assert_eq!(a.state.len(), len - 8);
    for gone in [
        entry_id(m, b"old"),
        nested,
        entry_id(nested, b"x"),
        entry_id(nested, b"t"),
        field_id("title"),
        member_id(field_id("tags"), b"a"),
    ] {
        assert!(a.state.entity(&gone).is_none(), "{gone} was not collected");
    }
    // Live data and a tombstone newer than the horizon stay.
    assert!(a.state.is_visible(&entry_id(m, b"live")));
    let recent = entry_id(m, b"recent");
    assert!(a.state.entity(&recent).is_some() && !a.state.is_visible(&recent));
    assert!(a.state.is_visible(&member_id(field_id("tags"), b"b")));
    // Reads are unchanged.
    assert_eq!(map_keys(&a.state, "m"), keys);
    assert_eq!(keys, vec![b"live".to_vec()]);
    let after: Vec<Vec<u8>> = a
        .state
        .set("tags")
        .expect("read")
        .iter()
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(after, tags);
    assert_eq!(a.state.register("title").expect("read").get(), None);
    assert_eq!(a.state.gc_horizon(), h(5_000));

    // Collecting again at the same horizon removes nothing; a later one takes the recent tombstone.
    assert_eq!(collect(&mut a, h(5_000)), 0);
    assert_eq!(collect(&mut a, h(10_000)), 1);
    assert!(a.state.entity(&recent).is_none());
    assert_same(&a.state, &a.reopen(), "reopened after collection");
}

#[test]
fn the_horizon_never_goes_back_and_reopens() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| t.map("m")?.insert(b"k", b"v"));
    assert_eq!(a.state.gc_horizon(), Hlc::default());
    collect(&mut a, h(5_000));
    collect(&mut a, h(3_000));
    assert_eq!(a.state.gc_horizon(), h(5_000));
    let reopened = a.reopen();
    assert_eq!(reopened.gc_horizon(), h(5_000));
    assert_same(&a.state, &reopened, "reopened");
    // A state that never collected has no horizon record.
    let b = Replica::new(2, 0);
    assert_eq!(b.reopen().gc_horizon(), Hlc::default());
    // Adopting a horizon (a snapshot's) raises it without collecting, and persists it.
    let mut c = Replica::new(3, 0);
    c.write(1_000, |t| {
        t.map("m")?.insert(b"k", b"v")?;
        t.map("m")?.delete(b"k").map(|_| ())
    });
    let len = c.state.len();
    let batch = c.state.adopt_gc_horizon(h(7_000));
    c.kv.apply(&batch);
    assert!(c.state.adopt_gc_horizon(h(6_000)).is_empty());
    assert_eq!(c.state.len(), len);
    assert_eq!(c.reopen().gc_horizon(), h(7_000));
}

#[test]
fn replicas_that_applied_the_same_actions_collect_to_the_same_root() {
    let mut removed_total = 0;
    for_seeds(0..32, |seed, rng| {
        let n = 3;
        let mut rs: Vec<Replica> = (0..n)
            .map(|i| Replica::new(i as u8 + 1, rng.below(60_000)))
            .collect();
        let mut log: Vec<Vec<Action>> = Vec::new();
        for step in 0..60u64 {
            let t = 1_000_000 + step * 500;
            let i = rng.index(n);
            let mut op_rng = rng.fork();
            let actions = rs[i].write(t, |txn| random_op(&mut op_rng, txn));
            // Partial, reordered delivery while writing.
            for (j, r) in rs.iter_mut().enumerate() {
                if j != i && rng.chance(0.5) {
                    r.receive(t + 1, &actions);
                }
            }
            log.push(actions);
        }
        let end = 1_000_000 + 60 * 500 + 1_000;
        for r in &mut rs {
            let mut all: Vec<usize> = (0..log.len()).collect();
            rng.shuffle(&mut all);
            for k in all {
                r.receive(end, &log[k]);
            }
        }
        let horizon = h(1_000_000 + rng.below(90_000));
        let reads = render(&rs[0].state);
        let before = rs[0].state.clone();
        for r in &mut rs {
            removed_total += collect(r, horizon);
        }
        for (i, r) in rs.iter().enumerate() {
            let what = format!("seed {seed}, replica {i}");
            assert_same(&rs[0].state, &r.state, &what);
            assert_eq!(render(&r.state), reads, "{what}: reads changed");
            let reopened = r.reopen();
            assert_same(&r.state, &reopened, &format!("{what}: reopened"));
            assert_eq!(reopened.gc_horizon(), horizon);
        }
        // Collecting in two steps ends where collecting once does.
        let mut stepwise = before;
        let half = h(horizon.wall_ms.saturating_sub(rng.below(30_000)));
        stepwise.collect_garbage(half);
        stepwise.collect_garbage(horizon);
        assert_same(&rs[0].state, &stepwise, &format!("seed {seed}: stepwise"));
        // Full states of the collected state rebuild it.
        let states: Vec<Action> = rs[0].state.entities().cloned().collect();
        let mut fresh = State::new(PREFIX);
        fresh.apply(&states).expect("apply full states");
        assert_same(&rs[0].state, &fresh, &format!("seed {seed}: rebuilt"));
    });
    assert!(
        removed_total > 100,
        "too little was collected: {removed_total}"
    );
}

#[test]
fn the_resurrection_guard_drops_fragments_of_collected_entities() {
    let (mut a, mut b, mut c) = (Replica::new(1, 0), Replica::new(2, 0), Replica::new(3, 0));
    let write = a.write(1_000, |t| {
        let mut m = t.map("m")?;
        m.insert(b"k", b"v")?;
        m.map(b"n")?.insert(b"x", b"1")
    });
    b.receive(1_001, &write);
    let delete = b.write(2_000, |t| {
        let mut m = t.map("m")?;
        m.delete(b"k")?;
        m.delete(b"n").map(|_| ())
    });
    // A write made at 1 500 that reaches `b` only after it collected: older than the horizon.
    c.receive(1_002, &write);
    let late = c.write(1_500, |t| t.map("m")?.insert(b"z", b"late"));
    let kept = b.state.clone();
    assert_eq!(collect(&mut b, h(5_000)), 3);
    let root = b.state.root_hash();

    // The original write again: `k`, `n` and `n/x` are dropped (the map header joins, unchanged).
    let applied = b.state.apply_counted(&write).expect("apply");
    assert_eq!(applied.dropped, 3);
    assert!(applied.batch.is_empty());
    // The delete again, and full states from a replica that still holds the tombstones.
    assert_eq!(b.state.apply_counted(&delete).expect("apply").dropped, 2);
    let states: Vec<Action> = kept.entities().cloned().collect();
    assert_eq!(b.state.apply_counted(&states).expect("apply").dropped, 3);
    assert_eq!(b.state.root_hash(), root);
    assert!(map_keys(&b.state, "m").is_empty());
    // The retention's limitation: a write older than the horizon that never arrived is dropped
    // (its map header still joins: the map exists here).
    assert_eq!(b.state.apply_counted(&late).expect("apply").dropped, 1);
    assert!(map_keys(&b.state, "m").is_empty());

    // A state that never collected joins all of it.
    a.receive(2_001, &delete);
    assert_eq!(a.state.apply_counted(&late).expect("apply").dropped, 0);
    assert_eq!(map_keys(&a.state, "m"), vec![b"z".to_vec()]);

    // A write newer than the horizon creates the entry afresh.
    let again = a.write(6_000, |t| t.map("m")?.insert(b"k", b"new"));
    let applied = b.state.apply_counted(&again).expect("apply");
    assert_eq!(applied.dropped, 0);
    b.kv.apply(&applied.batch);
    assert_eq!(b.state.map("m").expect("read").get(b"k"), Some(&b"new"[..]));
    assert_same(&b.state, &b.reopen(), "reopened");
}

#[test]
fn an_entry_recreated_after_collection_converges_with_a_replica_that_kept_its_tombstone() {
    let (mut a, mut b) = (Replica::new(1, 0), Replica::new(2, 0));
    let w = a.write(1_000, |t| {
        let mut m = t.map("m")?;
        m.map(b"n")?.insert(b"x", b"1")?;
        m.counter(b"c")?.increment(5)?;
        t.set("s")?.add(b"v")
    });
    b.receive(1_001, &w);
    let d = a.write(2_000, |t| {
        let mut m = t.map("m")?;
        m.delete(b"n")?;
        m.delete(b"c")?;
        t.set("s")?.remove(b"v").map(|_| ())
    });
    b.receive(2_001, &d);
    // `a` collects, `b` has not yet; both see the same new writes.
    assert_eq!(collect(&mut a, h(5_000)), 4);
    let w2 = a.write(6_000, |t| {
        let mut m = t.map("m")?;
        m.map(b"n")?.insert(b"y", b"2")?;
        m.counter(b"c")?.increment(1)?;
        t.set("s")?.add(b"v")
    });
    b.receive(6_001, &w2);
    assert_eq!(map_keys(&a.state, "m"), map_keys(&b.state, "m"));
    assert!(b.state.set("s").expect("read").contains(b"v"));
    // The re-created counter: fresh slots on `a`, old ones joined on `b` (see `CounterRef`).
    assert_eq!(
        a.state
            .map("m")
            .expect("read")
            .counter(b"c")
            .expect("read")
            .value(),
        1
    );
    assert_eq!(
        b.state
            .map("m")
            .expect("read")
            .counter(b"c")
            .expect("read")
            .value(),
        5
    );
    // A state exchange both ways (Merkle repair) and `b`'s own collection converge them.
    let sa: Vec<Action> = a.state.entities().cloned().collect();
    let sb: Vec<Action> = b.state.entities().cloned().collect();
    let batch = a.state.apply(&sb).expect("apply");
    a.kv.apply(&batch);
    let batch = b.state.apply(&sa).expect("apply");
    b.kv.apply(&batch);
    collect(&mut b, h(5_000));
    assert_same(&a.state, &b.state, "after repair");
    assert_eq!(
        a.state
            .map("m")
            .expect("read")
            .counter(b"c")
            .expect("read")
            .value(),
        5
    );
    let inner = a.state.map("m").expect("read").map(b"n").expect("read");
    assert_eq!(inner.get(b"x"), None);
    assert_eq!(inner.get(b"y"), Some(&b"2"[..]));
}

#[test]
fn forget_removes_whole_subtrees_and_persists() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut m = t.map("m")?;
        m.map(b"n")?.insert(b"x", b"1")?;
        m.map(b"n")?.text(b"t")?.insert(0, "ab")?;
        m.insert(b"k", b"v")
    });
    let n = entry_id(field_id("m"), b"n");
    let len = a.state.len();
    let c = a.state.forget(&[n, n, EntityId::default()]);
    a.kv.apply(&c.batch);
    assert_eq!(c.removed, 5);
    assert_eq!(a.state.len(), len - 5);
    assert_eq!(map_keys(&a.state, "m"), vec![b"k".to_vec()]);
    // Forgetting is not collecting: the horizon stays.
    assert_eq!(a.state.gc_horizon(), Hlc::default());
    assert_same(&a.state, &a.reopen(), "reopened");
}

#[test]
fn deleted_characters_that_anchor_live_ones_stay() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        t.text("one")?.insert(0, "abcdef")?;
        t.text("two")?.insert(0, "abcdef")?;
        t.text("three")?.insert(0, "abcdef")
    });
    a.write(2_000, |t| {
        // "abef": `e` was inserted after `d`, `d` after `c`: both stay.
        t.text("one")?.delete(2, 2)?;
        // "abcd": nothing was inserted after `e` or `f`: both go.
        t.text("two")?.delete(4, 2)?;
        // "acd": `b` anchors `c` and stays, `e` and `f` go.
        let mut d = t.text("three")?;
        d.delete(4, 2)?;
        d.delete(1, 1)
    });
    let mut b = Replica::new(2, 0);
    b.state = a.state.clone();
    let len = a.state.len();
    assert_eq!(collect(&mut a, h(5_000)), 4);
    assert_eq!(a.state.len(), len - 4);
    assert_eq!(text(&a.state, "one"), "abef");
    assert_eq!(text(&a.state, "two"), "abcd");
    assert_eq!(text(&a.state, "three"), "acd");

    // Both replicas insert at every position, concurrently; `b` never collected.
    let mut batches = Vec::new();
    for (r, s) in [(&mut a, "X"), (&mut b, "Y")] {
        batches.push(r.write(6_000, |t| {
            for field in ["one", "two", "three"] {
                let mut d = t.text(field)?;
                let len = d.view().len();
                for pos in (0..=len).rev() {
                    d.insert(pos, s)?;
                }
            }
            Ok(())
        }));
    }
    a.receive(7_000, &batches[1]);
    b.receive(7_000, &batches[0]);
    for field in ["one", "two", "three"] {
        assert_eq!(text(&a.state, field), text(&b.state, field), "{field}");
    }
    assert_eq!(text(&a.state, "three"), "YXaYXcYXdYX");
    collect(&mut b, h(5_000));
    assert_same(&a.state, &b.state, "after both collected");
}

/// One random list or text operation (what RGA order depends on).
fn seq_op(rng: &mut DetRng, t: &mut Txn<'_>) -> Result<(), StateError> {
    if rng.chance(0.5) {
        let mut l = t.list("todo")?;
        let len = l.view().len();
        match rng.below(4) {
            0 if len > 0 => l.remove(rng.index(len)),
            1 if len > 0 => l.set(rng.index(len), &[b'a' + rng.below(26) as u8]),
            _ => l.insert(rng.index(len + 1), &[b'a' + rng.below(26) as u8]),
        }
    } else {
        let mut d = t.text("doc")?;
        let len = d.view().len();
        if len > 0 && rng.chance(0.4) {
            let pos = rng.index(len);
            d.delete(pos, 1 + rng.index((len - pos).min(3)))
        } else {
            let s: String = (0..1 + rng.index(3))
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect();
            d.insert(rng.index(len + 1), &s)
        }
    }
}

/// Random edits on three replicas with partial delivery, from `t0`; everyone gets everything at
/// the end. Returns every commit's actions.
fn edit(rs: &mut [Replica], rng: &mut DetRng, t0: u64, steps: u64) -> Vec<Vec<Action>> {
    let mut log: Vec<Vec<Action>> = Vec::new();
    let mut inbox: Vec<Vec<usize>> = vec![Vec::new(); rs.len()];
    for step in 0..steps {
        let t = t0 + step * 500;
        let i = rng.index(rs.len());
        let mut op_rng = rng.fork();
        let ops = 1 + rng.index(3);
        let actions = rs[i].write(t, |txn| {
            for _ in 0..ops {
                seq_op(&mut op_rng, txn)?;
            }
            Ok(())
        });
        for (j, b) in inbox.iter_mut().enumerate() {
            if j != i {
                b.push(log.len());
            }
        }
        log.push(actions);
        if rng.chance(0.5) {
            let j = rng.index(rs.len());
            let mut pending = std::mem::take(&mut inbox[j]);
            rng.shuffle(&mut pending);
            let take = rng.index(pending.len() + 1);
            for &k in &pending[..take] {
                rs[j].receive(t + 1, &log[k]);
            }
            inbox[j] = pending[take..].to_vec();
        }
    }
    let end = t0 + steps * 500 + 1_000;
    for (j, pending) in inbox.into_iter().enumerate() {
        for k in pending {
            rs[j].receive(end, &log[k]);
        }
    }
    log
}

fn seq_reads(s: &State) -> (String, Vec<Vec<u8>>) {
    (text(s, "doc"), list(s))
}

#[test]
fn rga_order_survives_collection_and_later_concurrent_edits() {
    let mut removed_total = 0;
    for_seeds(0..32, |seed, rng| {
        let mut rs: Vec<Replica> = (0..3)
            .map(|i| Replica::new(i as u8 + 1, rng.below(20_000)))
            .collect();
        edit(&mut rs, rng, 1_000_000, 60);
        // A witness that never collects.
        let mut witness = rs[0].state.clone();
        let reads = seq_reads(&rs[0].state);
        let horizon = h(1_000_000 + 5_000 + rng.below(40_000));
        for r in &mut rs {
            removed_total += collect(r, horizon);
            assert_eq!(seq_reads(&r.state), reads, "seed {seed}: reads changed");
        }
        // Concurrent edits after the collection, on top of what is left.
        let later = edit(&mut rs, rng, 2_000_000, 40);
        for actions in &later {
            assert_eq!(witness.apply_counted(actions).expect("apply").dropped, 0);
        }
        let reads = seq_reads(&rs[0].state);
        for (i, r) in rs.iter().enumerate() {
            let what = format!("seed {seed}, replica {i}");
            assert_same(&rs[0].state, &r.state, &what);
            assert_same(&r.state, &r.reopen(), &format!("{what}: reopened"));
        }
        assert_eq!(seq_reads(&witness), reads, "seed {seed}: witness reads");
        witness.collect_garbage(horizon);
        assert_same(
            &rs[0].state,
            &witness,
            &format!("seed {seed}: witness collected"),
        );
    });
    assert!(
        removed_total > 50,
        "too little was collected: {removed_total}"
    );
}

#[test]
fn collection_never_changes_what_a_reader_sees() {
    for_seeds(0..16, |seed, rng| {
        let mut a = Replica::new(1, 0);
        for step in 0..80u64 {
            let mut op_rng = rng.fork();
            a.write(1_000 + step * 100, |txn| random_op(&mut op_rng, txn));
        }
        let reads = render(&a.state);
        let mut horizon = 1_000;
        while horizon < 10_000 {
            horizon += rng.below(2_000);
            collect(&mut a, h(horizon));
            assert_eq!(render(&a.state), reads, "seed {seed}: at horizon {horizon}");
        }
    });
}
