use tabmesh_testkit::test;

use tabmesh_base::{Hlc, HlcClock, MemberId, MemoryKv};
use tabmesh_state::{decode_actions, encode_actions, Action, Commit, State, StateError, Txn};

pub(crate) const PREFIX: &[u8] = b"ctx/state/";

pub(crate) fn member(n: u8) -> MemberId {
    MemberId([n; 32])
}

/// One replica: its state, its own clock with a skewed `now`, and the store its batches went to.
pub(crate) struct Replica {
    pub(crate) state: State,
    pub(crate) clock: HlcClock,
    pub(crate) member: MemberId,
    pub(crate) skew_ms: u64,
    pub(crate) kv: MemoryKv,
}

impl Replica {
    pub(crate) fn new(n: u8, skew_ms: u64) -> Replica {
        Replica {
            state: State::new(PREFIX),
            clock: HlcClock::new(),
            member: member(n),
            skew_ms,
            kv: MemoryKv::new(),
        }
    }

    pub(crate) fn now(&self, t: u64) -> u64 {
        t + self.skew_ms
    }

    /// Runs `f` in a transaction at global time `t`, persists the batch, returns the actions.
    pub(crate) fn write(
        &mut self,
        t: u64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<(), StateError>,
    ) -> Vec<Action> {
        let hlc = self.clock.tick(self.now(t));
        let mut txn = self.state.txn(self.member, hlc);
        f(&mut txn).expect("local write");
        let Commit {
            actions,
            batch,
            last_hlc,
            ..
        } = txn.commit();
        self.clock.observe(last_hlc, self.now(t));
        self.kv.apply(&batch);
        actions
    }

    /// Receives actions at global time `t` (through the wire encoding), persists the batch.
    pub(crate) fn receive(&mut self, t: u64, actions: &[Action]) {
        let bytes = encode_actions(actions).expect("encode");
        let actions = decode_actions(&bytes).expect("decode");
        if let Some(h) = max_hlc(&actions) {
            self.clock.observe(h, self.now(t));
        }
        let batch = self.state.apply(&actions).expect("apply honest actions");
        self.kv.apply(&batch);
    }

    /// Reopens the state from what its batches persisted.
    pub(crate) fn reopen(&self) -> State {
        State::open(PREFIX, &self.kv).expect("reopen")
    }
}

pub(crate) fn max_hlc(actions: &[Action]) -> Option<Hlc> {
    actions
        .iter()
        .flat_map(|a| {
            let m = a.metadata();
            [Some(m.updated.hlc), m.deleted.map(|d| d.hlc)]
        })
        .flatten()
        .max()
}

/// Asserts two states are identical: root, every entity's full state (metadata included) and
/// visibility.
pub(crate) fn assert_same(a: &State, b: &State, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: entity count");
    for (x, y) in a.entities().zip(b.entities()) {
        assert_eq!(x, y, "{what}: entity state");
        assert_eq!(
            a.is_visible(&x.id()),
            b.is_visible(&y.id()),
            "{what}: visibility"
        );
        assert_eq!(
            a.entity_hashes(&x.id()),
            b.entity_hashes(&y.id()),
            "{what}: entity hashes"
        );
    }
    assert_eq!(a.root_hash(), b.root_hash(), "{what}: root");
}

/// A fresh state built from another's full entity states (the snapshot / repair path), applied in
/// reverse id order.
pub(crate) fn rebuilt_from_states(s: &State) -> State {
    let mut states: Vec<Action> = s.entities().cloned().collect();
    states.reverse();
    let mut fresh = State::new(PREFIX);
    fresh.apply(&states).expect("apply full states");
    fresh
}

#[test]
fn a_replica_reopens_to_the_same_state() {
    let mut r = Replica::new(1, 0);
    r.write(1_000, |t| {
        t.register("title")?.set(b"hi")?;
        t.text("doc")?.insert(0, "abc")
    });
    let reopened = r.reopen();
    assert_same(&r.state, &reopened, "reopen");
    assert_eq!(reopened.text("doc").expect("text").to_string(), "abc");
}
