//! `select_protocol`: each rule of its doc comment, their priority, and determinism.

use tabmesh_testkit::test;

use tabmesh_base::{DeltaId, DetRng, Hash, Hlc};
use tabmesh_sync::{select_protocol, Protocol, Summary};

fn head(n: u8) -> DeltaId {
    DeltaId([n; 32])
}

fn summary(heads: &[u8], root: u8, entities: u64, applied: u64) -> Summary {
    Summary {
        heads: heads.iter().map(|h| head(*h)).collect(),
        root: if root == 0 {
            Hash::ZERO
        } else {
            Hash([root; 32])
        },
        entities,
        applied,
        pruned: false,
        pending: 0,
        gc_horizon: Hlc::default(),
        governance: Hash::ZERO,
        heads_stamp: Hlc::default(),
    }
}

fn empty() -> Summary {
    Summary::default()
}

const GAP: u64 = 100;

#[test]
fn rule_1_a_peer_with_nothing_gives_none() {
    let local = summary(&[1], 1, 5, 5);
    assert_eq!(
        select_protocol(&local, &empty(), false, GAP),
        Protocol::None
    );
    // Even when we have nothing either (rule 1 comes before rule 2).
    assert_eq!(
        select_protocol(&empty(), &empty(), false, GAP),
        Protocol::None
    );
    assert_eq!(
        select_protocol(&empty(), &empty(), true, GAP),
        Protocol::None
    );
}

#[test]
fn rule_2_an_empty_replica_takes_a_snapshot() {
    let remote = summary(&[1], 1, 5, 5);
    assert_eq!(
        select_protocol(&empty(), &remote, false, GAP),
        Protocol::Snapshot
    );
    // Whatever the other inputs say.
    assert_eq!(
        select_protocol(&empty(), &remote, true, 0),
        Protocol::Snapshot
    );
    // A peer with state but no retained history (it pruned everything) still counts as non-empty.
    let stateful = summary(&[], 1, 5, 0);
    assert_eq!(
        select_protocol(&empty(), &stateful, false, GAP),
        Protocol::Snapshot
    );
    // A peer with history but no entities (only deletions of nothing) too.
    let history = summary(&[1], 0, 0, 3);
    assert_eq!(
        select_protocol(&empty(), &history, false, GAP),
        Protocol::Snapshot
    );
}

#[test]
fn rule_2_a_replica_with_anything_never_takes_a_snapshot() {
    let remote = summary(&[1], 1, 5_000, 5_000);
    for local in [
        summary(&[], 2, 1, 0),
        summary(&[2], 0, 0, 1),
        summary(&[2], 2, 1, 1),
    ] {
        for known in [false, true] {
            for gap in [0, GAP, u64::MAX] {
                assert_ne!(
                    select_protocol(&local, &remote, known, gap),
                    Protocol::Snapshot,
                    "{local:?}"
                );
            }
        }
    }
}

#[test]
fn rule_3_equal_roots_give_none_whatever_the_dags() {
    let local = summary(&[1], 9, 5, 5);
    let remote = summary(&[2, 3], 9, 5, 5_000);
    assert_eq!(select_protocol(&local, &remote, false, GAP), Protocol::None);
    assert_eq!(select_protocol(&local, &remote, false, 0), Protocol::None);
}

#[test]
fn rule_4_same_heads_different_roots_give_merkle() {
    let local = summary(&[1, 2], 3, 5, 5);
    let remote = summary(&[1, 2], 4, 5, 5);
    assert_eq!(
        select_protocol(&local, &remote, false, GAP),
        Protocol::MerkleCompare
    );
    // Before rule 5: we "know" every head of the peer, yet the states differ.
    assert_eq!(
        select_protocol(&local, &remote, true, GAP),
        Protocol::MerkleCompare
    );
    // The same history named differently: the peer lists our heads and one we know as an
    // ancestor (GC can leave equal histories with different states).
    let remote = summary(&[1, 2, 9], 4, 5, 5);
    assert_eq!(
        select_protocol(&local, &remote, true, GAP),
        Protocol::MerkleCompare
    );
    // Not when we lack one of its heads (it is ahead: delta sync), nor when it lacks one of ours.
    assert_eq!(
        select_protocol(&local, &remote, false, GAP),
        Protocol::DeltaSync
    );
    let remote = summary(&[1], 4, 5, 5);
    assert_eq!(select_protocol(&local, &remote, true, GAP), Protocol::None);
}

#[test]
fn rule_5_when_we_have_every_head_of_the_peer_we_are_ahead() {
    let local = summary(&[2], 3, 5, 10);
    let remote = summary(&[1], 4, 4, 9);
    assert_eq!(select_protocol(&local, &remote, true, GAP), Protocol::None);
    // Before rule 6: even a peer "far ahead" by count.
    let remote = summary(&[1], 4, 4, 10_000);
    assert_eq!(select_protocol(&local, &remote, true, GAP), Protocol::None);
}

#[test]
fn rule_6_a_large_gap_gives_merkle() {
    let local = summary(&[1], 3, 5, 10);
    let remote = summary(&[2], 4, 5, 10 + GAP + 1);
    assert_eq!(
        select_protocol(&local, &remote, false, GAP),
        Protocol::MerkleCompare
    );
    // Exactly at the threshold is still a delta sync.
    let remote = summary(&[2], 4, 5, 10 + GAP);
    assert_eq!(
        select_protocol(&local, &remote, false, GAP),
        Protocol::DeltaSync
    );
}

#[test]
fn rule_7_otherwise_delta_sync() {
    let local = summary(&[1], 3, 5, 10);
    let remote = summary(&[2], 4, 5, 12);
    assert_eq!(
        select_protocol(&local, &remote, false, GAP),
        Protocol::DeltaSync
    );
    // A peer behind us by count (but with heads we lack) is still asked for its deltas: the gap
    // saturates at zero.
    let remote = summary(&[2], 4, 5, 1);
    assert_eq!(
        select_protocol(&local, &remote, false, GAP),
        Protocol::DeltaSync
    );
    assert_eq!(
        select_protocol(&local, &remote, false, 0),
        Protocol::DeltaSync
    );
}

fn random_summary(rng: &mut DetRng) -> Summary {
    if rng.chance(0.15) {
        return empty();
    }
    let heads = (0..rng.below(3))
        .map(|_| head(rng.below(4) as u8))
        .collect();
    Summary {
        heads,
        root: Hash([rng.below(3) as u8; 32]),
        entities: rng.below(4),
        applied: rng.below(2_000),
        pruned: rng.chance(0.5),
        pending: 0,
        gc_horizon: Hlc::new(rng.below(3), 0),
        governance: Hash([rng.below(2) as u8; 32]),
        heads_stamp: Hlc::new(rng.below(3), 0),
    }
}

#[test]
fn selection_is_deterministic_and_total() {
    tabmesh_testkit::for_seeds(0..2_000, |seed, rng| {
        let local = random_summary(rng);
        let remote = random_summary(rng);
        let known = rng.chance(0.5);
        let gap = [0, 1, 100, 1_000, u64::MAX][rng.index(5)];
        let p = select_protocol(&local, &remote, known, gap);
        for _ in 0..3 {
            assert_eq!(
                select_protocol(&local.clone(), &remote.clone(), known, gap),
                p,
                "{seed}"
            );
        }
        // The invariants every answer keeps.
        if p == Protocol::Snapshot {
            assert!(local.is_empty() && !remote.is_empty(), "seed {seed}");
        }
        if !local.is_empty() && !remote.is_empty() && local.root == remote.root {
            assert_eq!(p, Protocol::None, "seed {seed}");
        }
        if remote.is_empty() {
            assert_eq!(p, Protocol::None, "seed {seed}");
        }
    });
}
