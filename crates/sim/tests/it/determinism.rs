use tabmesh_sim::{Chaos, Sim, SimConfig};

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let run = |seed| {
        let mut sim = Sim::new(SimConfig::new(seed, 4, Chaos::Heavy));
        let verdict = sim.run();
        (sim.trace_hash(), verdict, sim.metrics().clone())
    };
    let (a, va, ma) = run(11);
    let (b, vb, mb) = run(11);
    let (c, _, _) = run(12);
    assert_eq!(a, b);
    assert_eq!(va, vb);
    assert_eq!(ma, mb);
    assert_ne!(a, c);
}
