//! Simulation configuration: network faults, node faults, workload.

/// How hostile the simulated world is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chaos {
    /// A perfect network: fixed small latency, nothing lost.
    None,
    /// 10 ms ± 5 latency, 1 % loss, 1 % duplicates, 20 ms reordering.
    Light,
    /// 50 ms ± 25 latency, 10 % loss, 5 % duplicates, 100 ms reordering, partitions, crashes,
    /// clock skew up to ±30 s and one node whose clock jumps back.
    Heavy,
}

impl std::str::FromStr for Chaos {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Chaos::None),
            "light" => Ok(Chaos::Light),
            "heavy" => Ok(Chaos::Heavy),
            other => Err(format!(
                "unknown chaos level {other:?} (none, light, heavy)"
            )),
        }
    }
}

/// Faults injected by the network and on nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Base one-way latency (ms).
    pub latency_ms: u64,
    /// Uniform jitter added to the latency (ms).
    pub jitter_ms: u64,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Extra uniform delay (ms) that reorders messages.
    pub reorder_ms: u64,
    /// Random partitions: the mean time between two (ms; 0 = none) and their length range.
    pub partition_every_ms: u64,
    /// Shortest and longest partition (ms); each heals by itself.
    pub partition_len_ms: (u64, u64),
    /// Crashes: the mean time between two crashes across the cluster (ms; 0 = none).
    pub crash_every_ms: u64,
    /// Shortest and longest downtime (ms).
    pub restart_after_ms: (u64, u64),
    /// Each node's clock is off by up to this much, either way (ms).
    pub clock_skew_ms: u64,
    /// Node 0's clock jumps back by this much in the middle of the run (ms; 0 = never).
    pub clock_jump_back_ms: u64,
}

impl Faults {
    /// The preset of a chaos level.
    pub fn preset(chaos: Chaos) -> Faults {
        match chaos {
            Chaos::None => Faults {
                latency_ms: 5,
                jitter_ms: 0,
                loss: 0.0,
                duplicate: 0.0,
                reorder_ms: 0,
                partition_every_ms: 0,
                partition_len_ms: (0, 0),
                crash_every_ms: 0,
                restart_after_ms: (0, 0),
                clock_skew_ms: 0,
                clock_jump_back_ms: 0,
            },
            Chaos::Light => Faults {
                latency_ms: 10,
                jitter_ms: 5,
                loss: 0.01,
                duplicate: 0.01,
                reorder_ms: 20,
                ..Faults::preset(Chaos::None)
            },
            Chaos::Heavy => Faults {
                latency_ms: 50,
                jitter_ms: 25,
                loss: 0.10,
                duplicate: 0.05,
                reorder_ms: 100,
                partition_every_ms: 15_000,
                partition_len_ms: (2_000, 20_000),
                crash_every_ms: 20_000,
                restart_after_ms: (1_000, 15_000),
                clock_skew_ms: 30_000,
                clock_jump_back_ms: 20_000,
            },
        }
    }
}

/// What the nodes write.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Writes stop at this simulated time (ms from the start); convergence is measured after it.
    pub write_until_ms: u64,
    /// Mean time between two writes of one node in one context (ms).
    pub write_every_ms: u64,
}

/// One simulation run.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Drives every random choice: same seed, same run.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of contexts; context 0 is on every node, the others on random subsets of ≥ 2.
    pub contexts: usize,
    /// Network and node faults.
    pub faults: Faults,
    /// The writes.
    pub workload: Workload,
    /// Give up (not converged) at this simulated time (ms from the start).
    pub max_time_ms: u64,
    /// Sync tick period given to every node (ms).
    pub tick_ms: u64,
    /// Pending cap of every node's DAG.
    pub max_pending: usize,
    /// Every link is cut until this simulated time (ms; 0 = never): nodes write alone, then heal.
    pub isolate_until_ms: u64,
    /// The last node joins its contexts only when writes stop, empty (a late joiner).
    pub late_joiner: bool,
    /// Concurrent joiners: the last `n` nodes (before a late joiner) join their contexts through
    /// the network at `at_ms` (simulated), each within `spread_ms` after it, empty, while the
    /// others write: `(n, at_ms, spread_ms)`; `n = 0`: every member joins during the setup.
    pub joiners: (usize, u64, u64),
    /// DAG compaction thresholds `(compact_after, retain)` given to every node (default: none in
    /// the simulated time span).
    pub compact: Option<(usize, usize)>,
    /// Before anything else runs, node 0 writes this many deltas offline; they reach node 1 in a
    /// random order within a second (the out-of-order flood). 0 = no flood.
    pub flood: usize,
    /// Tombstone retention given to every node (ms), with housekeeping every 5 s; `None` keeps the
    /// default (a week: nothing is collected within a simulated run).
    pub tombstone_retention_ms: Option<u64>,
    /// One node cut off from every other: `(node, from_ms, until_ms)` in simulated time. It keeps
    /// writing meanwhile.
    pub offline: Option<(usize, u64, u64)>,
    /// Contexts run the handler app ([`HANDLER_APP`](crate::HANDLER_APP), read from
    /// `target/apps`): the first member creates each context with it, the others join with it,
    /// and every write is `execute("set", {key, value})`, whose event names the handler `on_set`.
    pub handlers: bool,
    /// At this simulated time (ms), the creator of context 0 removes the last node from it; the
    /// removed node keeps running and writing (it cannot read the removal) and convergence is
    /// checked among the others, with the removal's verdicts ([`Sim::check_removal`](crate::Sim::check_removal)).
    pub remove_at_ms: Option<u64>,
    /// The last node is a Byzantine member of every context it is in (a real member: it joined
    /// with an invitation like the others and holds member keys) that misbehaves as this says;
    /// convergence is checked among the others, with the Byzantine verdicts
    /// ([`Sim::check_byzantine`](crate::Sim::check_byzantine)). It never crashes.
    pub byzantine: Option<Byzantine>,
}

/// What the Byzantine member of [`SimConfig::byzantine`] does, each behaviour switched on or off;
/// how hard it tries (how many forged copies, how often it replays, equivocates and floods) is
/// drawn per seed. It misbehaves from the end of the setup until [`HOSTILE_TAIL_MS`] after the
/// writes stop, so the others converge while the last of its traffic still arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Byzantine {
    /// Whenever it publishes a delta it also sends 1–3 forged copies (a byte of the signature
    /// flipped, a byte of the ciphertext flipped, or re-signed by a fresh key pair, a
    /// non-member) to random subsets of the others.
    pub forge: bool,
    /// It keeps the last [`REPLAY_POOL`] frames it published, received or withheld and sends
    /// them again to others at random times (at least [`REPLAY_MIN_AGE_MS`] after it got them).
    pub replay: bool,
    /// At some of its writes (20–60 %) it also writes a twin delta (same parents, same HLC, other
    /// content) on a copy of itself loaded from its disk, and sends the twin to a random part of
    /// the others, which get the real delta up to 3 s after the rest.
    pub equivocate: bool,
    /// Bursts of junk (random bytes, truncated and garbled frames: undecodable, each a strike)
    /// with replayed sync requests among them, to one or all of the others, every 5–20 s on
    /// average: in three seeds of four at least [`STRIKES_TO_BAN`](tabmesh_node::STRIKES_TO_BAN)
    /// messages per burst (one burst that all lands bans it), in the others 2–6.
    pub flood: bool,
    /// It sends no direct message at all (no answer to a sync request, no request), while it
    /// still publishes.
    pub withhold: bool,
    /// Half the equivocating writes insert text on both sides (the real write and its twin), so
    /// the two deltas insert different text elements under one stamp (the state joins them to one
    /// element, the same on every replica). On by default.
    pub equivocate_text: bool,
}

/// The Byzantine member keeps misbehaving this long after the writes stop (ms).
pub const HOSTILE_TAIL_MS: u64 = 30_000;

/// Frames the Byzantine member keeps for replay (the oldest is dropped past it).
pub const REPLAY_POOL: usize = 64;

/// A frame is replayed at least this long after the Byzantine member got it (ms): longer than a
/// request's timeout, so a withheld answer replayed is never an answer in time.
pub const REPLAY_MIN_AGE_MS: u64 = 10_000;

impl Byzantine {
    /// Every misbehaviour, equivocating without text.
    pub fn all() -> Byzantine {
        Byzantine {
            forge: true,
            replay: true,
            equivocate: true,
            flood: true,
            withhold: true,
            equivocate_text: true,
        }
    }
}

impl SimConfig {
    /// A run with `nodes` nodes under `chaos`.
    pub fn new(seed: u64, nodes: usize, chaos: Chaos) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            contexts: 2,
            faults: Faults::preset(chaos),
            workload: Workload {
                write_until_ms: 60_000,
                write_every_ms: 3_000,
            },
            max_time_ms: 600_000,
            tick_ms: 10_000,
            max_pending: 10_000,
            isolate_until_ms: 0,
            late_joiner: false,
            joiners: (0, 0, 0),
            compact: None,
            flood: 0,
            tombstone_retention_ms: None,
            offline: None,
            handlers: false,
            remove_at_ms: None,
            byzantine: None,
        }
    }

    /// A named scenario (see [`Scenario`]).
    pub fn scenario(scenario: Scenario, seed: u64) -> SimConfig {
        match scenario {
            Scenario::Synced => SimConfig::new(seed, 4, Chaos::None),
            Scenario::Diverged => SimConfig {
                isolate_until_ms: 60_000,
                ..SimConfig::new(seed, 4, Chaos::None)
            },
            Scenario::PartialOverlap => SimConfig {
                contexts: 4,
                ..SimConfig::new(seed, 5, Chaos::Light)
            },
            Scenario::EmptyReplica => SimConfig {
                late_joiner: true,
                ..SimConfig::new(seed, 4, Chaos::Light)
            },
            Scenario::PrunedHistory => SimConfig {
                compact: Some((40, 10)),
                isolate_until_ms: 60_000,
                late_joiner: true,
                ..SimConfig::new(seed, 4, Chaos::Light)
            },
            Scenario::Random => SimConfig::new(seed, 4, Chaos::Heavy),
            Scenario::Flood => SimConfig {
                nodes: 2,
                contexts: 1,
                flood: 20_000,
                max_pending: 1_000,
                workload: Workload {
                    write_until_ms: 1_000,
                    write_every_ms: 10_000,
                },
                max_time_ms: 3_600_000,
                ..SimConfig::new(seed, 2, Chaos::None)
            },
            Scenario::Large => SimConfig::new(seed, 20, Chaos::Light),
            Scenario::Handlers => SimConfig {
                contexts: 1,
                handlers: true,
                ..SimConfig::new(seed, 3, Chaos::Light)
            },
            Scenario::HandlersCrashing => {
                let mut faults = Faults::preset(Chaos::Light);
                faults.crash_every_ms = 15_000;
                faults.restart_after_ms = (1_000, 10_000);
                SimConfig {
                    contexts: 1,
                    handlers: true,
                    faults,
                    ..SimConfig::new(seed, 3, Chaos::Light)
                }
            }
            Scenario::Removal => SimConfig {
                contexts: 1,
                remove_at_ms: Some(30_000),
                ..SimConfig::new(seed, 5, Chaos::Heavy)
            },
            Scenario::Joins => SimConfig {
                joiners: (3, 5_000, 300),
                ..SimConfig::new(seed, 5, Chaos::Light)
            },
            Scenario::Byzantine => SimConfig {
                contexts: 1,
                byzantine: Some(Byzantine::all()),
                max_time_ms: 1_800_000,
                ..SimConfig::new(seed, 5, Chaos::Heavy)
            },
            Scenario::Tombstones => SimConfig {
                tombstone_retention_ms: Some(10_000),
                offline: Some((3, 10_000, 45_000)),
                compact: Some((40, 10)),
                ..SimConfig::new(seed, 4, Chaos::Light)
            },
        }
    }
}

/// The scenarios the simulator runs by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Four nodes, a perfect network: every write arrives by gossip.
    Synced,
    /// Four nodes write cut off from each other for the whole write period, then heal.
    Diverged,
    /// Five nodes, four contexts with partial membership, light chaos.
    PartialOverlap,
    /// A node joins empty after the writes: one snapshot per context it joins, none elsewhere.
    EmptyReplica,
    /// Five nodes, light chaos: three join every context they are members of through the
    /// network within 300 ms of each other while the others write, each catching up (from the
    /// creator, or from another joiner) while the others' joins and first writes arrive. CI runs
    /// it under heavy chaos (`--chaos heavy`: skewed clocks, so joiners whose clocks lag the
    /// heads their snapshots cover; lost joins; joiners down at their join time).
    Joins,
    /// Nodes write isolated and compact their DAGs (history pruned), then heal; a late joiner
    /// arrives: catch-up needs Merkle comparison and snapshots.
    PrunedHistory,
    /// Heavy chaos: loss, duplicates, reordering, partitions, crashes, skewed and jumping clocks.
    Random,
    /// 20 000 deltas arrive out of order at a node whose pending cap is 1 000.
    Flood,
    /// Twenty nodes, light chaos.
    Large,
    /// A 10 s tombstone retention (the workload deletes often), compacted histories, and node 3
    /// cut off for 35 s, longer than the retention: it catches up by Merkle comparison, forgetting
    /// what the others collected meanwhile, and nothing deleted comes back.
    Tombstones,
    /// Three nodes run the handler app under light chaos: each handler runs exactly once on every
    /// member that applied the delta, never on its author.
    Handlers,
    /// [`Scenario::Handlers`] with crashes and restarts: each handler runs at least once.
    HandlersCrashing,
    /// Five nodes under heavy chaos; at 30 s an admin removes node 4, which keeps running and
    /// writing (citing the old parents it is stuck on): every honest member voids those writes
    /// alike, rebuilding where one arrived before the removal, and node 4 cannot read the new
    /// epoch.
    Removal,
    /// Five nodes under heavy chaos in one context; node 4 is a Byzantine member
    /// ([`Byzantine::all`]) that forges, replays, equivocates, floods and withholds until
    /// [`HOSTILE_TAIL_MS`] after the writes stop. The four honest nodes converge among themselves
    /// (C1–C5), none holds a forged delta, each that was handed junk or a forged signature under a
    /// fresh id reported node 4 (a rejection or a ban), and none banned another
    /// ([`Sim::check_byzantine`](crate::Sim::check_byzantine)).
    ///
    /// Convergence takes minutes, so the run is given 30 (simulated). Node 4 publishes but never
    /// answers: once some honest nodes ban it, or lose one of its deltas, a later delta of it can
    /// reach an honest node while its parent reached none. Only node 4 holds that parent, so the
    /// child waits in the pending buffers until it is evicted as stale (5 minutes). Pulls are
    /// answered from the pending buffer too, so honest nodes pass such deltas to each other, and
    /// each copy pulled starts its age again: a chain of them goes about one generation per
    /// eviction. Over 1 300 seeds the slowest converged 18 minutes after the last write, the
    /// median 6.
    ///
    /// A twin shares its real delta's stamp. Half the twins (see [`Byzantine::equivocate_text`])
    /// insert text on both sides: two contents under one element stamp, which the state joins to
    /// the greater one on every replica (until this scenario found it, the second was refused and
    /// the honest replicas forked). Equal-stamp map, register, counter and set writes join
    /// deterministically too (registers by value bytes, counter slots and set tags by maximum).
    Byzantine,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 14] = [
        Scenario::Synced,
        Scenario::Diverged,
        Scenario::PartialOverlap,
        Scenario::EmptyReplica,
        Scenario::Joins,
        Scenario::PrunedHistory,
        Scenario::Random,
        Scenario::Flood,
        Scenario::Large,
        Scenario::Tombstones,
        Scenario::Handlers,
        Scenario::HandlersCrashing,
        Scenario::Removal,
        Scenario::Byzantine,
    ];
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| format!("{sc:?}").eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown scenario {s:?}"))
    }
}
