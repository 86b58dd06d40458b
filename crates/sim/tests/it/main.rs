//! `tabmesh-sim` tests: determinism, every scenario converging, and what each must show.
//! Native only: the simulator is a dev tool, not a browser crate.

#![allow(clippy::unwrap_used, clippy::panic)]

mod byzantine;
mod determinism;
mod handlers;
mod scenarios;

use tabmesh_sim::{Sim, SimConfig, Verdict};

/// Runs a config and fails with the seed and the reason when it does not converge.
pub(crate) fn converge(config: SimConfig) -> Sim {
    let seed = config.seed;
    let mut sim = Sim::new(config);
    match sim.run() {
        Verdict::Converged { .. } => {}
        Verdict::NotConverged { reason } => panic!("seed {seed} did not converge: {reason}"),
    }
    assert!(
        sim.metrics().failures.is_empty(),
        "seed {seed}: {:?}",
        sim.metrics().failures
    );
    sim
}

/// `converge` checked C5 (roots and values) among `members` of context `ctx`; this reads their
/// states directly once more (root, text, counter).
pub(crate) fn states_equal(sim: &Sim, ctx: &tabmesh_base::ContextId, members: &[usize]) {
    let first = sim.node(members[0]).unwrap().state(ctx).unwrap();
    for m in &members[1..] {
        let other = sim.node(*m).unwrap().state(ctx).unwrap();
        assert_eq!(first.root_hash(), other.root_hash());
        assert_eq!(
            first.text("doc").map(|t| t.to_string()).ok(),
            other.text("doc").map(|t| t.to_string()).ok()
        );
        assert_eq!(
            first.counter("hits").map(|c| c.value()).ok(),
            other.counter("hits").map(|c| c.value()).ok()
        );
    }
}
