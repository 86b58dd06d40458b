use tabmesh_base::Hash;
use tabmesh_sim::{Byzantine, Chaos, Faults, Scenario, Sim, SimConfig, Workload};

use super::converge;

/// The honest members of context 0 (all but the Byzantine node).
fn honest(sim: &Sim) -> Vec<usize> {
    let byz = sim.byzantine_node();
    sim.members(0).filter(|m| Some(*m) != byz).collect()
}

/// Each honest member's root of context 0.
fn roots(sim: &Sim) -> Vec<Hash> {
    let ctx = sim.contexts()[0];
    honest(sim)
        .into_iter()
        .map(|m| sim.node(m).unwrap().state(&ctx).unwrap().root_hash())
        .collect()
}

/// `converge` checked C1–C5 among the honest nodes; read their states directly once more.
fn honest_states_equal(sim: &Sim) {
    super::states_equal(sim, &sim.contexts()[0], &honest(sim));
}

/// Only the named misbehaviours.
fn only(forge: bool, replay: bool, equivocate: bool, flood: bool, withhold: bool) -> Byzantine {
    Byzantine {
        forge,
        replay,
        equivocate,
        flood,
        withhold,
        equivocate_text: false,
    }
}

#[test]
fn a_byzantine_member_is_refused_and_the_honest_nodes_converge() {
    // Heavy chaos; node 4 forges, replays, equivocates, floods and withholds. `converge` checks
    // C1–C5 among the four honest nodes and `Sim::check_byzantine` (no forged delta held by an
    // honest node, every honest node handed junk or a forged signature reported node 4, no
    // honest node banned an honest one).
    let mut totals = tabmesh_sim::Metrics::default();
    for seed in 0..3 {
        let sim = converge(SimConfig::scenario(Scenario::Byzantine, seed));
        assert_eq!(sim.byzantine_node(), Some(4));
        assert_eq!(sim.check_byzantine(), Ok(()));
        honest_states_equal(&sim);
        let m = sim.metrics();
        assert_eq!(m.honest_bans, 0, "seed {seed}");
        assert!(m.byz_reporters > 0, "seed {seed}: nobody was handed junk");
        totals.byz_forged += m.byz_forged;
        totals.byz_forged_refused += m.byz_forged_refused;
        totals.byz_rejections += m.byz_rejections;
        totals.byz_bans += m.byz_bans;
        totals.byz_replays += m.byz_replays;
        totals.byz_equivocations += m.byz_equivocations;
        totals.byz_junk += m.byz_junk;
        totals.byz_withheld += m.byz_withheld;
        totals.crashes += m.crashes;
    }
    let t = &totals;
    assert!(t.byz_forged > 0 && t.byz_forged_refused > 0, "{t:?}");
    assert!(t.byz_rejections > 0 && t.byz_bans > 0, "{t:?}");
    assert!(
        t.byz_replays > 0 && t.byz_junk > 0 && t.byz_withheld > 0,
        "{t:?}"
    );
    assert!(t.byz_equivocations > 0, "{t:?}");
    assert!(t.crashes > 0, "no honest node crashed");
}

#[test]
fn each_misbehaviour_alone_is_survived() {
    let cases = [
        ("forge", only(true, false, false, false, false)),
        ("replay", only(false, true, false, false, false)),
        ("equivocate", only(false, false, true, false, false)),
        ("flood", only(false, false, false, true, false)),
        ("withhold", only(false, false, false, false, true)),
    ];
    for (name, byzantine) in cases {
        let config = SimConfig {
            byzantine: Some(byzantine),
            faults: Faults::preset(Chaos::Light),
            ..SimConfig::scenario(Scenario::Byzantine, 1)
        };
        let sim = converge(config);
        honest_states_equal(&sim);
        let m = sim.metrics();
        let seen = [
            ("forge", m.byz_forged),
            ("replay", m.byz_replays),
            ("equivocate", m.byz_equivocations),
            ("flood", m.byz_junk),
            ("withhold", m.byz_withheld),
        ];
        for (what, count) in seen {
            assert_eq!(count > 0, what == name, "{name} alone: {what} {count}");
        }
        if name == "flood" {
            assert!(m.byz_bans > 0, "the junk never got node 4 banned");
        }
        assert_eq!(m.honest_bans, 0, "{name}");
    }
}

#[test]
fn the_same_seed_gives_the_same_byzantine_run() {
    let run = |seed| {
        let mut sim = Sim::new(SimConfig::scenario(Scenario::Byzantine, seed));
        let verdict = sim.run();
        (sim.trace_hash(), verdict, sim.metrics().clone())
    };
    let (a, va, ma) = run(5);
    let (b, vb, mb) = run(5);
    let (c, _, _) = run(6);
    assert_eq!(a, b);
    assert_eq!(va, vb);
    assert_eq!(ma, mb);
    assert_ne!(a, c);
}

/// Twin deltas that insert text under one stamp (the Byzantine member writes the same
/// `(hlc, writer, seq)` twice, with other characters or origins): every honest replica joins the
/// two contents to the same element, whichever it got first, and the honest replicas converge.
/// (Before the state joined them, each kept the half it got first and refused the other, and the
/// replicas forked for good.)
#[test]
fn text_equivocation_converges_on_every_honest_replica() {
    for seed in 0..3 {
        let config = SimConfig {
            byzantine: Some(Byzantine {
                equivocate_text: true,
                ..only(false, false, true, false, false)
            }),
            faults: Faults::preset(Chaos::None),
            workload: Workload {
                write_until_ms: 30_000,
                write_every_ms: 3_000,
            },
            max_time_ms: 400_000,
            ..SimConfig::scenario(Scenario::Byzantine, seed)
        };
        let sim = converge(config);
        assert!(sim.metrics().byz_equivocations > 0, "seed {seed}");
        assert_eq!(sim.check_byzantine(), Ok(()));
        honest_states_equal(&sim);
        let roots = roots(&sim);
        assert!(
            roots.windows(2).all(|w| w[0] == w[1]),
            "seed {seed}: {roots:?}"
        );
    }
}
