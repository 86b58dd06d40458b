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
