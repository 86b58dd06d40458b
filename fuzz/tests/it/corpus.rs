//! The corpus layout, and the valid seeds really are valid.

use std::collections::BTreeSet;

use tabmesh_fuzz::TARGETS;

use crate::runner::{corpus_files, corpus_root};

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    let targets: BTreeSet<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(targets.len(), TARGETS.len(), "two targets share a name");
    let dirs: BTreeSet<String> = std::fs::read_dir(corpus_root())
        .expect("fuzz/corpus/")
        .map(|e| {
            e.expect("a corpus entry")
                .file_name()
                .into_string()
                .expect("a UTF-8 name")
        })
        .collect();
    let dirs: BTreeSet<&str> = dirs.iter().map(String::as_str).collect();
    assert_eq!(dirs, targets, "fuzz/corpus/ has one directory per target");
    for t in TARGETS {
        assert!(
            !corpus_files(t.name).is_empty(),
            "fuzz/corpus/{} is empty",
            t.name
        );
    }
}

#[test]
fn every_target_has_a_test() {
    let tested: BTreeSet<&str> = crate::targets::TESTED.iter().copied().collect();
    let targets: BTreeSet<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        tested, targets,
        "one test per target in tests/it/targets.rs"
    );
}

/// The seeds must decode, or the mutations explore little but error paths.
#[test]
fn valid_seeds_pass_the_first_decoder() {
    for t in TARGETS {
        let Some(accepts) = t.accepts else {
            continue;
        };
        for (i, s) in (t.seeds)().iter().enumerate() {
            assert!(accepts(s), "{}: valid seed #{i} does not decode", t.name);
        }
    }
}
