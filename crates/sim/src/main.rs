//! `tabmesh-sim --seeds N [--first S] [--nodes K] [--chaos none|light|heavy] [--retention-ms MS]
//! [--scenario NAME] [--no-text-equivocation]`: runs N seeded simulations, prints one line per run and exits non-zero naming
//! every seed that did not converge. Without a scenario, `--chaos` defaults to heavy; with one,
//! the scenario's own faults hold unless `--chaos` is given (its preset replaces them). The
//! `handlers` scenarios need the built example app (`scripts/build-apps.sh`); without it the tool
//! fails before the first run. `--no-text-equivocation` keeps the Byzantine member's equivocating
//! writes off text ([`tabmesh_sim::Byzantine::equivocate_text`]).

// A command-line tool: printing is its job.
#![allow(clippy::print_stdout)]

use anyhow::{bail, Context as _, Result};
use tabmesh_sim::{Chaos, Faults, Scenario, Sim, SimConfig, Verdict};

struct Args {
    seeds: u64,
    first: u64,
    nodes: usize,
    /// `None`: heavy, or a scenario's own faults.
    chaos: Option<Chaos>,
    explain: bool,
    scenario: Option<Scenario>,
    retention_ms: Option<u64>,
    equivocate_text: bool,
}

fn parse() -> Result<Args> {
    let mut args = Args {
        seeds: 10,
        first: 0,
        nodes: 4,
        chaos: None,
        explain: false,
        scenario: None,
        retention_ms: None,
        equivocate_text: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seeds" => args.seeds = value()?.parse().context("--seeds")?,
            "--first" => args.first = value()?.parse().context("--first")?,
            "--nodes" => args.nodes = value()?.parse().context("--nodes")?,
            "--chaos" => args.chaos = Some(value()?.parse().map_err(anyhow::Error::msg)?),
            "--explain" => args.explain = true,
            "--no-text-equivocation" => args.equivocate_text = false,
            "--scenario" => args.scenario = Some(value()?.parse().map_err(anyhow::Error::msg)?),
            "--retention-ms" => {
                args.retention_ms = Some(value()?.parse().context("--retention-ms")?)
            }
            "-h" | "--help" => {
                println!("usage: tabmesh-sim --seeds N [--first S] [--nodes K] [--chaos none|light|heavy] [--explain] [--retention-ms MS] [--equivocate-text] [--scenario synced|diverged|partialoverlap|emptyreplica|joins|prunedhistory|random|flood|large|tombstones|handlers|handlerscrashing|removal|byzantine]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if args.nodes < 2 {
        bail!("--nodes must be at least 2");
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse()?;
    let mut failed = Vec::new();
    if let Some(scenario) = args.scenario {
        if SimConfig::scenario(scenario, 0).handlers {
            tabmesh_sim::handler_app().map_err(anyhow::Error::msg)?;
        }
    }
    for seed in args.first..args.first + args.seeds {
        let mut config = match args.scenario {
            Some(scenario) => SimConfig::scenario(scenario, seed),
            None => SimConfig::new(seed, args.nodes, args.chaos.unwrap_or(Chaos::Heavy)),
        };
        if let (Some(_), Some(chaos)) = (args.scenario, args.chaos) {
            config.faults = Faults::preset(chaos);
        }
        if let Some(ms) = args.retention_ms {
            config.tombstone_retention_ms = Some(ms);
        }
        if let Some(b) = config.byzantine.as_mut() {
            b.equivocate_text = args.equivocate_text;
        }
        let mut sim = Sim::new(config);
        let explain = args.explain;
        sim.set_explain(explain);
        let verdict = sim.run_observed(|now, why| {
            if explain {
                println!("  at {now} ms: {why}");
            }
        });
        let m = sim.metrics();
        let ok = matches!(verdict, Verdict::Converged { .. }) && m.failures.is_empty();
        let status = match &verdict {
            Verdict::Converged { after_ms } => {
                format!("converged {after_ms} ms after the last write")
            }
            Verdict::NotConverged { reason } => format!("NOT converged ({reason})"),
        };
        if explain && !matches!(verdict, Verdict::Converged { .. }) {
            for line in sim.node_report() {
                println!("  {line}");
            }
        }
        println!(
            "seed {seed}: {status}; sim time {} ms, writes {}, messages {}, bytes {}, dropped {}, sessions {:?}, snapshots {}, crashes {}, gc collected/dropped/forgotten {}/{}/{}, entities {}",
            sim.now(),
            m.writes,
            m.messages,
            m.bytes,
            m.dropped,
            m.sessions,
            m.snapshots(),
            m.crashes,
            m.tombstones_collected,
            m.ancient_dropped,
            m.entities_forgotten,
            m.entities_at_end
        );
        if m.voided > 0 || m.rebuilds > 0 {
            println!(
                "  removal: void deltas {} (over every node), rebuilds {}",
                m.voided, m.rebuilds
            );
        }
        if sim.byzantine_node().is_some() {
            println!(
                "  byzantine: forged {} copies of {} deltas ({} refused by id), rejections {}, bans {}, replays {} (+{} in bursts), equivocations {}, junk {}, withheld {}, honest nodes that had to report {}",
                m.byz_forged,
                m.byz_forged_deltas,
                m.byz_forged_refused,
                m.byz_rejections,
                m.byz_bans,
                m.byz_replays,
                m.byz_burst_replays,
                m.byz_equivocations,
                m.byz_junk,
                m.byz_withheld,
                m.byz_reporters
            );
        }
        if m.handler_events > 0 {
            println!(
                "  handlers: events {}, runs {} (by node {:?}), due pairs {}, skipped pairs {}, reruns {}, failures {}",
                m.handler_events,
                m.handler_runs,
                m.handler_runs_by_node,
                m.handler_pairs_due,
                m.handler_pairs_skipped,
                m.handler_reruns,
                m.handler_failures
            );
        }
        for f in &m.failures {
            println!("  failure: {f}");
        }
        if args.explain {
            println!("  rejections: {} {:?}", m.rejections, m.rejection_samples);
            println!("  session outcomes: {:?}", m.session_outcomes);
            println!("  failed sessions: {:#?}", m.failure_samples);
        }
        if !ok {
            failed.push(seed);
        }
    }
    if failed.is_empty() {
        println!("all {} runs converged", args.seeds);
        Ok(())
    } else {
        bail!(
            "{} of {} runs did not converge: seeds {:?}",
            failed.len(),
            args.seeds,
            failed
        )
    }
}
