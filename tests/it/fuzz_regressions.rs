//! Every input that once crashed a fuzz target (`cargo xtask fuzz` keeps them in
//! `fuzz/regressions/<target>/`) goes through the same target body again, and every target
//! runs on its seed inputs, so the bodies the fuzzer exercises cannot rot in the normal suite.

#[path = "../../fuzz/src/bodies.rs"]
mod bodies;

use crate::support::workspace;

#[test]
fn past_crashes_stay_fixed_and_every_target_runs() {
    let regressions = workspace().join("fuzz/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&regressions).unwrap() {
        let dir = entry.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (_, body) = bodies::TARGETS
            .iter()
            .find(|(name, _)| *name == target)
            .unwrap_or_else(|| panic!("{}: no fuzz target `{target}`", dir.display()));
        for input in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(input.unwrap().path()).unwrap();
            body(&bytes);
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "fuzz/regressions holds the inputs that crashed a target"
    );
    // The seeds: what `cargo xtask fuzz` starts each target from.
    let seeds = workspace().join("fuzz/seeds");
    for (name, body) in bodies::TARGETS {
        let dir = seeds.join(name);
        let inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(!inputs.is_empty(), "{name} has seeds");
        for input in inputs {
            body(&input);
        }
    }
}
