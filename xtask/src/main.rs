//! Developer tasks, rust-analyzer style: `cargo xtask <task>`.
//!
//! - `fixtures [--out DIR]`: builds every test image from real parts (Debian packages, C and Go
//!   compiled on the spot) with `umoci` and `skopeo`.
//! - `sample`: rebuilds the small sample images committed under `testdata/images/`.
//! - `test`: installs the Debian packages the suite needs, builds the fixtures, and runs the
//!   whole test suite (format, lints, tests). `.ci/run` calls exactly this.
//! - `bench`: scan time and peak memory of drydock against the hardware limit and its peers, on
//!   a realistic image in every form, for `docs/benchmarks.md`.
//! - `bench-memory`: peak memory of a scan against layer size, for `docs/benchmarks.md`.
//! - `scores`: rewrites the table of fixture scores in `docs/scoring.md` from fresh scans.

mod bench;
mod cmd;
mod deps;
mod fixtures;
mod scores;
mod speed;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).context("entering the workspace root")?;
    match args.first().map(String::as_str) {
        Some("fixtures") => {
            let out = match args.get(1).map(String::as_str) {
                Some("--out") => PathBuf::from(args.get(2).context("--out needs a directory")?),
                Some(other) => bail!("unknown argument `{other}`"),
                None => fixtures::default_dir(&root),
            };
            deps::ensure()?;
            fixtures::build_all(&root, &out)
        }
        Some("sample") => {
            deps::ensure()?;
            fixtures::build_sample(&root)
        }
        Some("test") => {
            deps::ensure()?;
            fixtures::build_all(&root, &fixtures::default_dir(&root))?;
            cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))?;
            cmd::run(cmd::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ]))?;
            cmd::run(cmd::cargo().args(["test", "--workspace", "--locked"]))
        }
        Some("bench-memory") => {
            deps::ensure()?;
            bench::memory(&root)
        }
        Some("bench") => {
            deps::ensure()?;
            speed::speed(&root)
        }
        Some("scores") => {
            let fixtures = fixtures::default_dir(&root);
            fixtures::build_all(&root, &fixtures)?;
            scores::write(&root, &fixtures)
        }
        _ => bail!(
            "usage: cargo xtask <fixtures [--out DIR] | sample | test | bench | bench-memory | scores>"
        ),
    }
}
