use tabmesh_testkit::test;

// The convergence property: 3–5 replicas write concurrently, each against its own state with its
// own skewed clock; commits are exchanged in random orders with duplicates; at the end every
// replica has the same root, the same values and the same metadata for every entity, and so does
// every replica reopened from its persisted batches and a state rebuilt from full entity states.

use tabmesh_base::DetRng;
use tabmesh_state::{Action, State, StateError, Txn, Value};
use tabmesh_testkit::for_seeds;

use super::support::{assert_same, rebuilt_from_states, Replica};

fn small_value(rng: &mut DetRng) -> Vec<u8> {
    let n = 1 + rng.index(4);
    (0..n).map(|_| b'a' + rng.below(4) as u8).collect()
}

fn key(rng: &mut DetRng, prefix: u8, n: u64) -> [u8; 2] {
    [prefix, b'0' + rng.below(n) as u8]
}

/// One random operation. Small key spaces make concurrent writes to one key, one position and one
/// nested collection frequent.
pub(crate) fn random_op(rng: &mut DetRng, t: &mut Txn<'_>) -> Result<(), StateError> {
    match rng.below(11) {
        0 => t.register("title")?.set(&small_value(rng)),
        1 => t.counter("hits")?.increment(1 + rng.below(5)),
        2 => t.pn_counter("score")?.add(rng.below(9) as i64 - 4),
        3 => {
            // Concurrent update / delete of one key.
            let k = key(rng, b'k', 3);
            let mut m = t.map("kv")?;
            if rng.chance(0.35) {
                m.delete(&k).map(|_| ())
            } else {
                m.insert(&k, &small_value(rng))
            }
        }
        4 => {
            // Concurrent creation (and deletion) of nested collections: a map of maps and counters.
            let u = key(rng, b'u', 3);
            let mut users = t.map("users")?;
            match rng.below(5) {
                0 => users.delete(&u).map(|_| ()),
                1 => users.map(&u)?.counter(b"visits")?.increment(1),
                2 => users
                    .map(&u)?
                    .map(b"prefs")?
                    .insert(&key(rng, b'p', 2), &small_value(rng)),
                3 => users.map(&u)?.set(b"roles")?.add(&key(rng, b'r', 3)),
                _ => users.map(&u)?.insert(b"name", &small_value(rng)),
            }
        }
        5 => {
            let v = key(rng, b'v', 4);
            let mut s = t.set("tags")?;
            if rng.chance(0.4) {
                s.remove(&v).map(|_| ())
            } else {
                s.add(&v)
            }
        }
        6 | 7 => {
            let mut l = t.list("todo")?;
            let len = l.view().len();
            match rng.below(5) {
                0 if len > 0 => l.remove(rng.index(len)),
                1 if len > 0 => l.set(rng.index(len), &small_value(rng)),
                // Inserts favour position 0 and 1: concurrent inserts at one RGA position.
                2 => l.insert(rng.index(len.min(1) + 1), &small_value(rng)),
                _ => l.insert(rng.index(len + 1), &small_value(rng)),
            }
        }
        8 | 9 => {
            let mut d = t.text("doc")?;
            let len = d.view().len();
            if len > 0 && rng.chance(0.3) {
                let pos = rng.index(len);
                d.delete(pos, 1 + rng.index((len - pos).min(3)))
            } else {
                let s: String = (0..1 + rng.index(4))
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect();
                let pos = if rng.chance(0.5) {
                    0
                } else {
                    rng.index(len + 1)
                };
                d.insert(pos, &s)
            }
        }
        _ => {
            // A text inside a map entry, deleted and revived concurrently.
            let k = key(rng, b'd', 2);
            let mut docs = t.map("docs")?;
            if rng.chance(0.25) {
                docs.delete(&k).map(|_| ())
            } else {
                let mut d = docs.text(&k)?;
                let len = d.view().len();
                d.insert(rng.index(len + 1), "xy")
            }
        }
    }
}

/// Everything a reader can see, rendered deterministically.
pub(crate) fn render(s: &State) -> Vec<String> {
    fn value(v: Value<'_>) -> String {
        match v {
            Value::Register(b) => format!("{b:?}"),
            Value::Counter(c) => c.to_string(),
            Value::PnCounter(c) => c.to_string(),
            Value::Map(m) => {
                let mut e: Vec<String> = m
                    .entries()
                    .map(|(k, v)| format!("{k:?}={}", value(v)))
                    .collect();
                e.sort();
                format!("{{{}}}", e.join(","))
            }
            Value::Set(set) => {
                let mut e: Vec<&[u8]> = set.iter().collect();
                e.sort();
                format!("{e:?}")
            }
            Value::List(l) => format!("{:?}", l.iter().collect::<Vec<_>>()),
            Value::Text(t) => t.to_string(),
            _ => "?".to_owned(),
        }
    }
    let r = |e: Result<String, StateError>| e.expect("read");
    vec![
        r(s.register("title").map(|x| format!("{:?}", x.get()))),
        r(s.counter("hits").map(|x| x.value().to_string())),
        r(s.pn_counter("score").map(|x| x.value().to_string())),
        r(s.map("kv").map(|m| value(Value::Map(m)))),
        r(s.map("users").map(|m| value(Value::Map(m)))),
        r(s.set("tags").map(|x| value(Value::Set(x)))),
        r(s.list("todo").map(|x| value(Value::List(x)))),
        r(s.text("doc").map(|x| x.to_string())),
        r(s.map("docs").map(|m| value(Value::Map(m)))),
    ]
}

fn converge(seed: u64, rng: &mut DetRng) {
    let n = 3 + rng.index(3);
    // Clocks skewed by up to ±30 s around a common base.
    let mut rs: Vec<Replica> = (0..n)
        .map(|i| Replica::new(i as u8 + 1, 30_000 + rng.below(60_000) - 30_000))
        .collect();
    let mut log: Vec<Vec<Action>> = Vec::new();
    let mut inbox: Vec<Vec<usize>> = vec![Vec::new(); n];
    let steps = 40;
    for step in 0..steps {
        let t = 1_000_000 + step * 250;
        let i = rng.index(n);
        let mut op_rng = rng.fork();
        let ops = 1 + rng.index(3);
        let actions = rs[i].write(t, |txn| {
            for _ in 0..ops {
                random_op(&mut op_rng, txn)?;
            }
            Ok(())
        });
        let id = log.len();
        log.push(actions);
        for (j, b) in inbox.iter_mut().enumerate() {
            if j != i {
                b.push(id);
            }
        }
        // Some replica receives a random part of its inbox, in random order, with duplicates.
        if rng.chance(0.6) {
            let j = rng.index(n);
            let mut pending = std::mem::take(&mut inbox[j]);
            rng.shuffle(&mut pending);
            let take = rng.index(pending.len() + 1);
            for &k in &pending[..take] {
                rs[j].receive(t + 1, &log[k]);
                if rng.chance(0.2) {
                    rs[j].receive(t + 2, &log[k]);
                }
            }
            inbox[j] = pending[take..].to_vec();
            // Re-deliver something old now and then.
            if rng.chance(0.3) && !log.is_empty() {
                let k = rng.index(log.len());
                rs[j].receive(t + 3, &log[k]);
            }
        }
    }
    // Final exchange: everyone gets everything, shuffled, some twice.
    let end = 1_000_000 + steps * 250 + 1_000;
    for r in &mut rs {
        let mut all: Vec<usize> = (0..log.len()).collect();
        rng.shuffle(&mut all);
        for k in all {
            r.receive(end, &log[k]);
            if rng.chance(0.1) {
                r.receive(end, &log[k]);
            }
        }
    }
    let expected = render(&rs[0].state);
    for (i, r) in rs.iter().enumerate() {
        let what = format!("seed {seed}, replica {i}");
        assert_same(&rs[0].state, &r.state, &what);
        assert_eq!(render(&r.state), expected, "{what}: reads");
        let reopened = r.reopen();
        assert_same(&r.state, &reopened, &format!("{what}: reopened"));
        assert_eq!(render(&reopened), expected, "{what}: reopened reads");
    }
    let rebuilt = rebuilt_from_states(&rs[0].state);
    assert_same(
        &rs[0].state,
        &rebuilt,
        &format!("seed {seed}: rebuilt from states"),
    );
    assert_eq!(render(&rebuilt), expected, "seed {seed}: rebuilt reads");
}

#[test]
fn replicas_converge_under_concurrency_reordering_and_duplicates() {
    for_seeds(0..64, converge);
}
