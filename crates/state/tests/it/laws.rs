use tabmesh_testkit::test;

// Merge laws, per collection: join is commutative, associative and idempotent, on single entity
// states (`Action::join`) and on whole states (`State::apply` in any order and grouping).

use std::collections::BTreeMap;

use tabmesh_base::EntityId;
use tabmesh_state::{Action, State, StateError, Txn};
use tabmesh_testkit::{for_seeds, DetRng};

use super::support::{assert_same, Replica, PREFIX};

type Op = fn(&mut DetRng, &mut Txn<'_>) -> Result<(), StateError>;

/// Three replicas run random `op`s with partial exchange; returns every committed batch and every
/// replica's final full entity states.
fn fragments(rng: &mut DetRng, op: Op) -> (Vec<Vec<Action>>, Vec<Vec<Action>>) {
    let mut rs: Vec<Replica> = (1..=3).map(|n| Replica::new(n, rng.below(5_000))).collect();
    let mut batches: Vec<Vec<Action>> = Vec::new();
    for step in 0..14u64 {
        let t = 1_000 + step * 100;
        let i = rng.index(rs.len());
        let mut op_rng = rng.fork();
        let batch = rs[i].write(t, |txn| op(&mut op_rng, txn));
        batches.push(batch);
        if rng.chance(0.5) {
            let j = rng.index(rs.len());
            if let Some(b) = rng.pick(&batches) {
                let b = b.clone();
                rs[j].receive(t + 1, &b);
            }
        }
    }
    let finals = rs
        .iter()
        .map(|r| r.state.entities().cloned().collect())
        .collect();
    (batches, finals)
}

fn joined(a: &Action, b: &Action) -> Action {
    let mut x = a.clone();
    x.join(b).expect("join of honest states");
    x
}

/// Checks the laws on every pair and triple of states of each entity.
fn check_entity_laws(all: &[Action]) -> usize {
    let mut by_id: BTreeMap<EntityId, Vec<&Action>> = BTreeMap::new();
    for a in all {
        by_id.entry(a.id()).or_default().push(a);
    }
    let mut checked = 0;
    for group in by_id.values() {
        let group = &group[..group.len().min(6)];
        for a in group {
            assert_eq!(&joined(a, a), *a, "idempotent");
            for b in group {
                let ab = joined(a, b);
                assert_eq!(ab, joined(b, a), "commutative");
                assert_eq!(joined(&ab, b), ab, "absorbs");
                for c in group {
                    assert_eq!(joined(&ab, c), joined(a, &joined(b, c)), "associative");
                    checked += 1;
                }
            }
        }
    }
    checked
}

/// Applying batches in shuffled orders and groupings gives the same state.
fn check_state_laws(rng: &mut DetRng, batches: &[Vec<Action>]) {
    let mut reference = State::new(PREFIX);
    for b in batches {
        reference.apply(b).expect("apply");
    }
    for _ in 0..2 {
        let mut order: Vec<&Vec<Action>> = batches.iter().collect();
        rng.shuffle(&mut order);
        let mut s = State::new(PREFIX);
        let mut i = 0;
        while i < order.len() {
            // Group a random number of batches into one apply, sometimes re-applying one.
            let n = 1 + rng.index(3);
            let group: Vec<Action> = order[i..(i + n).min(order.len())]
                .iter()
                .flat_map(|b| b.iter().cloned())
                .collect();
            s.apply(&group).expect("apply group");
            if rng.chance(0.3) {
                s.apply(&group).expect("re-apply group");
            }
            i += n;
        }
        assert_same(&reference, &s, "any order, any grouping, duplicates");
    }
}

fn run_laws(op: Op) {
    let mut total = 0;
    for_seeds(0..20, |_, rng| {
        let (batches, finals) = fragments(rng, op);
        let mut all: Vec<Action> = batches.iter().flatten().cloned().collect();
        all.extend(finals.into_iter().flatten());
        total += check_entity_laws(&all);
        check_state_laws(rng, &batches);
    });
    assert!(total > 0, "no entity had states to compare");
}

fn value(rng: &mut DetRng) -> Vec<u8> {
    vec![b'a' + rng.below(3) as u8; 1 + rng.index(3)]
}

#[test]
fn register_laws() {
    run_laws(|rng, t| {
        if rng.chance(0.25) {
            t.register("r")?.clear().map(|_| ())
        } else {
            t.register("r")?.set(&value(rng))
        }
    });
}

#[test]
fn g_counter_laws() {
    run_laws(|rng, t| t.counter("c")?.increment(1 + rng.below(3)));
}

#[test]
fn pn_counter_laws() {
    run_laws(|rng, t| t.pn_counter("c")?.add(rng.below(7) as i64 - 3));
}

#[test]
fn map_laws() {
    run_laws(|rng, t| {
        // k0 holds registers, k1 nested maps, k2 nested maps of counters.
        let k = rng.below(3);
        let key = [b'k', b'0' + k as u8];
        let mut m = t.map("m")?;
        if rng.chance(0.3) {
            return m.delete(&key).map(|_| ());
        }
        match k {
            0 => m.insert(&key, &value(rng)),
            1 => m.map(&key)?.insert(b"inner", &value(rng)),
            _ => m.map(&key)?.counter(b"n")?.increment(1),
        }
    });
}

#[test]
fn set_laws() {
    run_laws(|rng, t| {
        let v = [b'v', b'0' + rng.below(3) as u8];
        let mut s = t.set("s")?;
        if rng.chance(0.4) {
            s.remove(&v).map(|_| ())
        } else {
            s.add(&v)
        }
    });
}

#[test]
fn list_laws() {
    run_laws(|rng, t| {
        let mut l = t.list("l")?;
        let len = l.view().len();
        match rng.below(4) {
            0 if len > 0 => l.remove(rng.index(len)),
            1 if len > 0 => l.set(rng.index(len), &value(rng)),
            _ => l.insert(rng.index(len + 1), &value(rng)),
        }
    });
}

#[test]
fn text_laws() {
    run_laws(|rng, t| {
        let mut d = t.text("d")?;
        let len = d.view().len();
        if len > 2 && rng.chance(0.3) {
            let pos = rng.index(len - 1);
            d.delete(pos, 1 + rng.index(len - pos).min(2))
        } else {
            let s: String = (0..1 + rng.index(3))
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect();
            d.insert(rng.index(len + 1), &s)
        }
    });
}
