//! Local commits: a transaction becomes one delta on the current heads, or nothing at all.

use tabmesh_testkit::test;

use tabmesh_base::Hlc;
use tabmesh_state::{StateError, MAX_VALUE_LEN};
use tabmesh_sync::{Output, SyncError, MAX_DELTA_PAYLOAD};

use super::support::{drain_outputs, genesis_id, Sim, MAP};

#[test]
fn a_transaction_that_writes_nothing_makes_no_delta() {
    let mut sim = Sim::manual(2);
    let now = sim.now;
    let r = &mut sim.nodes[0].replica;
    let (len, id) = r
        .commit::<usize, SyncError>(now, Hlc::new(now, 0), |t| Ok(t.state().map(MAP)?.len()))
        .unwrap();
    assert_eq!((len, id), (0, None));
    assert!(drain_outputs(r).is_empty());
    // The genesis stays the only head.
    assert_eq!(r.dag().heads(), vec![genesis_id()]);
}

#[test]
fn a_failing_transaction_changes_nothing() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"a", b"1");
    let (root, heads) = (sim.root(0), sim.r(0).dag().heads());
    let now = sim.now;
    let r = &mut sim.nodes[0].replica;
    let res = r.commit::<(), SyncError>(now, Hlc::new(now, 9), |t| {
        t.map(MAP)?.insert(b"b", b"2")?;
        Err(SyncError::Protocol("the app gave up"))
    });
    assert_eq!(res, Err(SyncError::Protocol("the app gave up")));
    assert!(drain_outputs(r).is_empty());
    assert_eq!(sim.root(0), root);
    assert_eq!(sim.r(0).dag().heads(), heads);
    assert!(!sim.entries(0).contains_key(&b"b"[..]));
}

#[test]
fn a_transaction_over_the_delta_limit_changes_nothing() {
    let mut sim = Sim::manual(2);
    sim.put(0, b"a", b"1");
    let (root, heads) = (sim.root(0), sim.r(0).dag().heads());
    let now = sim.now;
    let value = vec![7u8; MAX_VALUE_LEN];
    let n = MAX_DELTA_PAYLOAD / MAX_VALUE_LEN + 1;
    let r = &mut sim.nodes[0].replica;
    let res = r.commit::<(), SyncError>(now, Hlc::new(now, 9), |t| {
        let mut m = t.map(MAP)?;
        for k in 0..n {
            m.insert(&[k as u8], &value)?;
        }
        Ok(())
    });
    assert!(matches!(res, Err(SyncError::TxnTooLarge { .. })), "{res:?}");
    let out = drain_outputs(r);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Broadcast(_))),
        "nothing is broadcast"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Persist(_))),
        "nothing is persisted"
    );
    // The refused write must not stay in the state either: it would exist on this replica only,
    // neither persisted nor ever sent.
    assert_eq!(
        sim.root(0),
        root,
        "the refused transaction's writes stayed in the state"
    );
    assert_eq!(sim.r(0).dag().heads(), heads);
    assert_eq!(sim.entries(0).len(), 1);
}

#[test]
fn a_local_delta_names_every_current_head() {
    let mut sim = Sim::manual(3);
    let g = sim.put(0, b"g", b"0");
    sim.deliver_all();
    let a = sim.put(1, b"a", b"1");
    let b = sim.put(2, b"b", b"2");
    sim.deliver_all();
    let mut heads = vec![a, b];
    heads.sort();
    assert_eq!(sim.r(0).dag().heads(), heads);
    let m = sim.put(0, b"merge", b"3");
    let env = sim.nodes[0].broadcasts.last().unwrap().clone();
    assert_eq!(env.parents, heads);
    assert_eq!(env.id(), m);
    assert_eq!(sim.r(0).dag().heads(), vec![m]);
    assert_ne!(m, g);
    sim.deliver_all();
    sim.assert_converged();
    for i in 0..3 {
        assert_eq!(sim.r(i).dag().heads(), vec![m]);
    }
}

#[test]
fn a_commit_error_from_the_state_is_returned() {
    let mut sim = Sim::manual(1);
    sim.write(0, |t| t.counter("c")?.increment(1));
    let now = sim.now;
    let r = &mut sim.nodes[0].replica;
    let res = r.commit::<(), SyncError>(now, Hlc::new(now, 9), |t| {
        t.register("c")?.set(b"x")?;
        Ok(())
    });
    assert!(
        matches!(res, Err(SyncError::State(StateError::KindMismatch { .. }))),
        "{res:?}"
    );
    assert!(drain_outputs(r).is_empty());
}
