//! Randomised end-to-end runs: several replicas write concurrently while broadcasts are lost and
//! messages reordered; once the network heals, everyone converges through the sync paths.

use tabmesh_testkit::test;

use tabmesh_base::DetRng;
use tabmesh_sync::{AccessError, SyncConfig, SyncError};

use super::support::{Sim, MAP};

fn random_write(sim: &mut Sim, i: usize, rng: &mut DetRng) {
    let key = [b'k', rng.below(12) as u8];
    match rng.below(6) {
        0 | 1 => {
            let v = [i as u8, rng.below(255) as u8];
            sim.put(i, &key, &v);
        }
        2 => {
            if sim.entries(i).contains_key(&key[..]) {
                sim.del(i, &key);
            } else {
                sim.put(i, &key, b"re");
            }
        }
        3 => {
            let by = rng.below(5) + 1;
            sim.write(i, |t| t.counter("c")?.increment(by));
        }
        4 => {
            let pos = rng.index(sim.r(i).state().text("t").unwrap().len() + 1);
            sim.write(i, |t| t.text("t")?.insert(pos, "x"));
        }
        _ => {
            let member = [rng.below(4) as u8];
            sim.write(i, |t| t.map(MAP)?.set(b"tags")?.add(&member));
        }
    }
}

/// Runs `rounds` of random writes, partial deliveries and time on `sim`, then heals the network
/// and waits for convergence.
fn chaos(sim: &mut Sim, rng: &mut DetRng, rounds: usize, seed: u64) {
    sim.shuffle = true;
    sim.broadcast_loss = 0.3;
    sim.logging = false;
    for _ in 0..rounds {
        let i = rng.index(sim.nodes.len());
        if sim.r(i).dag().heads().is_empty() {
            // A late joiner before its snapshot has no history to write on (a delta without
            // parents is a genesis): its writes are refused.
            let author = sim.r(i).member();
            assert_eq!(
                sim.try_put(i, b"early", b"x"),
                Err(SyncError::Access(AccessError::NotAMember { author }))
            );
        } else {
            random_write(sim, i, rng);
        }
        for _ in 0..rng.below(6) {
            sim.step();
        }
        if rng.chance(0.3) {
            let ms = rng.below(8_000);
            sim.run_for(ms);
        }
    }
    sim.broadcast_loss = 0.0;
    let n = sim.nodes.len();
    let done = sim.run_until(600_000, |s| {
        (1..n).all(|i| s.root(i) == s.root(0)) && (0..n).all(|i| !s.r(i).has_pending())
    });
    assert!(
        done,
        "seed {seed}: no convergence; roots {:?}, pending {:?}, refused {:?}",
        (0..n).map(|i| sim.root(i)).collect::<Vec<_>>(),
        (0..n)
            .map(|i| sim.r(i).dag().stats(sim.now))
            .collect::<Vec<_>>(),
        (0..n).map(|i| sim.rejections(i)).collect::<Vec<_>>()
    );
    sim.assert_converged();
    // Quiescent: nothing waits, nothing is being pulled, no request is left unanswered.
    for i in 0..n {
        let r = sim.r(i);
        assert!(r.is_idle(), "seed {seed}: node {i} is not idle");
        assert_eq!(
            r.sync_timers_armed(),
            0,
            "seed {seed}: node {i} has sync timers armed"
        );
    }
}

#[test]
fn lossy_reordered_writers_converge() {
    tabmesh_testkit::for_seeds(0..16, |seed, rng| {
        let mut sim = Sim::new(3);
        sim.rng = rng.fork();
        chaos(&mut sim, rng, 40, seed);
        let c = sim.r(0).state().counter("c").unwrap().value();
        for i in 1..3 {
            assert_eq!(sim.r(i).state().counter("c").unwrap().value(), c);
        }
    });
}

#[test]
fn lossy_writers_with_compaction_and_a_late_joiner_converge() {
    tabmesh_testkit::for_seeds(0..10, |seed, rng| {
        let mut config = SyncConfig::default();
        config.compact_after = 8;
        config.compact_retain = 3;
        config.housekeeping_ms = 3_000;
        let mut sim = Sim::with_config(3, config.clone());
        sim.rng = rng.fork();
        chaos(&mut sim, rng, 30, seed);
        sim.add_node(config);
        chaos(&mut sim, rng, 20, seed);
        assert!(sim.r(3).metrics().snapshots_installed <= 1);
    });
}

#[test]
fn writers_that_only_ever_merkle_repair_converge() {
    tabmesh_testkit::for_seeds(0..10, |seed, rng| {
        let mut config = SyncConfig::default();
        config.delta_gap_threshold = 0;
        let mut sim = Sim::with_config(3, config);
        sim.rng = rng.fork();
        sim.drop_broadcasts = true;
        for _ in 0..25 {
            let i = rng.index(3);
            random_write(&mut sim, i, rng);
            if rng.chance(0.2) {
                sim.run_for(rng.below(15_000));
            }
        }
        sim.drop_broadcasts = false;
        let done = sim.run_until(600_000, |s| {
            (1..3).all(|i| s.root(i) == s.root(0)) && (0..3).all(|i| !s.r(i).has_pending())
        });
        assert!(done, "seed {seed}: no convergence");
        sim.assert_converged();
    });
}

#[test]
fn writers_that_restart_from_their_stores_converge() {
    tabmesh_testkit::for_seeds(0..10, |seed, rng| {
        let mut sim = Sim::new(3);
        sim.rng = rng.fork();
        sim.shuffle = true;
        sim.broadcast_loss = 0.3;
        sim.logging = false;
        for _ in 0..40 {
            let i = rng.index(3);
            random_write(&mut sim, i, rng);
            for _ in 0..rng.below(6) {
                sim.step();
            }
            if rng.chance(0.15) {
                // A crash and restart: everything in memory is rebuilt from the store. Messages
                // in flight to it still arrive (late answers to its previous life included).
                let k = rng.index(3);
                sim.reopen(k);
            }
            if rng.chance(0.3) {
                sim.run_for(rng.below(8_000));
            }
        }
        sim.broadcast_loss = 0.0;
        let done = sim.run_until(600_000, |s| {
            (1..3).all(|i| s.root(i) == s.root(0)) && (0..3).all(|i| !s.r(i).has_pending())
        });
        assert!(done, "seed {seed}: no convergence after restarts");
        sim.assert_converged();
    });
}
