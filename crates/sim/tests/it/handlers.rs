use tabmesh_sim::{Scenario, SimConfig};

use super::converge;

/// The handler app's counters (`kv-store-with-handlers`: the map `handled` of one grow-only
/// counter per key, one slot per member that ran the handler), summed over keys: the same on every
/// member, and it counts every run.
fn handled(sim: &tabmesh_sim::Sim) -> u128 {
    let ctx = sim.contexts()[0];
    let values: Vec<u128> = sim
        .members(0)
        .map(|m| {
            let state = sim.node(m).unwrap().state(&ctx).unwrap();
            let Ok(handled) = state.map("handled") else {
                return 0;
            };
            handled
                .keys()
                .map(|k| handled.counter(k).map(|c| c.value()).unwrap_or(0))
                .sum()
        })
        .collect();
    assert!(values.windows(2).all(|w| w[0] == w[1]), "{values:?}");
    values[0]
}

#[test]
fn handlers_run_exactly_once_on_every_receiving_member_never_on_the_author() {
    let mut pairs = 0;
    for seed in 0..6 {
        let sim = converge(SimConfig::scenario(Scenario::Handlers, seed));
        let m = sim.metrics();
        assert_eq!(m.crashes, 0);
        assert!(m.handler_events > 20, "seed {seed}: {m:?}");
        // `converge` ran the per-(event, member) check; the totals agree with it.
        assert_eq!(m.handler_runs, m.handler_pairs_due, "seed {seed}");
        assert_eq!(m.handler_reruns, 0);
        assert_eq!(m.handler_failures, 0);
        assert_eq!(
            m.handler_pairs_due + m.handler_pairs_skipped,
            2 * m.handler_events,
            "three members: two receivers per event"
        );
        assert_eq!(handled(&sim), u128::from(m.handler_runs));
        pairs += m.handler_pairs_due;
    }
    assert!(pairs > 0);
}

#[test]
fn with_crashes_every_handler_runs_at_least_once() {
    let mut crashes = 0;
    for seed in 0..6 {
        let sim = converge(SimConfig::scenario(Scenario::HandlersCrashing, seed));
        let m = sim.metrics();
        crashes += m.crashes;
        assert!(m.handler_runs >= m.handler_pairs_due, "seed {seed}: {m:?}");
        assert_eq!(m.handler_failures, 0);
        assert_eq!(handled(&sim), u128::from(m.handler_runs));
    }
    assert!(crashes > 0, "no node crashed");
}

#[test]
fn without_the_built_module_the_handlers_scenario_fails_naming_the_build_script() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmesh-sim"))
        .args(["--seeds", "1", "--scenario", "handlers"])
        .env("TABMESH_APPS_DIR", "/nonexistent/tabmesh-apps")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kv-store-with-handlers.wasm") && stderr.contains("scripts/build-apps.sh"),
        "{stderr}"
    );
}
