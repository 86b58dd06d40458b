//! Runs one target over its corpus, its valid seeds, seeded random inputs and mutations; counts
//! the inputs, prints one summary line and fails naming every input that broke a contract.

use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tabmesh_base::{hash_parts, DetRng};
use tabmesh_fuzz::Target;

use crate::mutate::random_input;

/// How many generated inputs a target runs besides its corpus and seeds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Random inputs.
    pub(crate) random: usize,
    /// Mutations of the valid seeds.
    pub(crate) mutations: usize,
    /// How seeds are mutated.
    pub(crate) mutator: Mutator,
}

/// A way to mutate seeds.
pub(crate) type Mutator = fn(&mut DetRng, &[Vec<u8>]) -> (Vec<u8>, String);

/// Most failures reported per target (the rest are counted).
const MAX_REPORTED: usize = 8;

/// Bytes of a failing input shown in hex (longer inputs are cut; the whole input is written to
/// `target/fuzz-failures/`).
const MAX_HEX: usize = 4096;

/// `fuzz/corpus/`.
pub(crate) fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The files of `fuzz/corpus/<name>/`, sorted by name.
pub(crate) fn corpus_files(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_root().join(name);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus {}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("a corpus directory entry").path();
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_string();
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The generator seed of a target: derived from its name, so each target has its own stream.
fn rng_seed(name: &str) -> u64 {
    let h = hash_parts(b"tabmesh/fuzz/test-seed/v1", &[name.as_bytes()]);
    u64::from_le_bytes(h.0[..8].try_into().expect("8 bytes"))
}

struct Run {
    target: &'static Target,
    counts: [usize; 4],
    /// Inputs that passed the first decoder.
    accepted: usize,
    failures: Vec<String>,
    failed: usize,
}

impl Run {
    /// Runs the body on one input; `kind` is the counter (corpus, seeds, random, mutations).
    fn input(&mut self, kind: usize, origin: &str, data: &[u8]) {
        self.counts[kind] += 1;
        if let Some(accepts) = self.target.accepts {
            if catch_unwind(|| accepts(data)).unwrap_or(false) {
                self.accepted += 1;
            }
        }
        let body = self.target.body;
        let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(data))) else {
            return;
        };
        self.failed += 1;
        if self.failures.len() >= MAX_REPORTED {
            return;
        }
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let saved = save_failure(self.target.name, self.failed, data);
        let mut hex = String::new();
        for b in data.iter().take(MAX_HEX) {
            let _ = write!(hex, "{b:02x}");
        }
        if data.len() > MAX_HEX {
            let _ = write!(hex, "… ({} bytes)", data.len());
        }
        self.failures.push(format!(
            "[{}] {origin}: {message}\n    input ({} bytes, saved to {saved}): {hex}",
            self.target.name,
            data.len()
        ));
    }
}

/// Writes a failing input to `target/fuzz-failures/<target>-<n>.bin` (to copy into the corpus).
fn save_failure(name: &str, n: usize, data: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    let path = dir.join(format!("{name}-{n}.bin"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, data)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("nowhere ({e})"),
    }
}

/// Runs target `name`: every corpus file, every valid seed, `plan.random` random inputs and
/// `plan.mutations` mutations; prints one line with the counts; panics naming each input that
/// broke a contract.
pub(crate) fn run(name: &str, plan: Plan) {
    let target = tabmesh_fuzz::target(name).unwrap_or_else(|| panic!("no target {name}"));
    let start = Instant::now();
    let mut run = Run {
        target,
        counts: [0; 4],
        accepted: 0,
        failures: Vec::new(),
        failed: 0,
    };
    let corpus = corpus_files(name);
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ is empty");
    for (file, bytes) in &corpus {
        run.input(0, &format!("corpus file fuzz/corpus/{name}/{file}"), bytes);
    }
    let seeds = (target.seeds)();
    assert!(!seeds.is_empty(), "{name} has no valid seeds");
    for (i, s) in seeds.iter().enumerate() {
        run.input(1, &format!("valid seed #{i}"), s);
    }
    let seed = rng_seed(name);
    let mut rng = DetRng::new(seed);
    for i in 0..plan.random {
        let data = random_input(&mut rng);
        run.input(
            2,
            &format!("random input #{i} (generator seed {seed:#x})"),
            &data,
        );
    }
    let mut rng = DetRng::new(seed ^ 0x5eed);
    for i in 0..plan.mutations {
        let (data, how) = (plan.mutator)(&mut rng, &seeds);
        let origin = format!(
            "mutation #{i} (generator seed {:#x}) of {how}",
            seed ^ 0x5eed
        );
        run.input(3, &origin, &data);
    }
    let [c, s, r, m] = run.counts;
    // Straight to stderr, one write: the harness captures `eprintln!` of passing tests, and these
    // counts are wanted in every run's log.
    let accepted = match target.accepts {
        Some(_) => format!("{} decoded", run.accepted),
        None => "scripts".to_string(),
    };
    let line = format!(
        "fuzz {name:<16} {:>6} inputs (corpus {c}, seeds {s}, random {r}, mutations {m}; \
         {accepted}), {} failed, {:.2} s\n",
        c + s + r + m,
        run.failed,
        start.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    if run.failed > 0 {
        panic!(
            "{name}: {} of {} inputs broke a contract (first {} below); keep each as a corpus \
             file under fuzz/corpus/{name}/\n{}",
            run.failed,
            c + s + r + m,
            run.failures.len(),
            run.failures.join("\n")
        );
    }
}
