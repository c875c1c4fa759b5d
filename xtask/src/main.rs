//! Developer tasks, rust-analyzer style: `cargo xtask <task>`.
//!
//! - `fixtures [--out DIR] [--group NAME]`: builds every test image from real parts (Debian
//!   packages, C and Go compiled on the spot) with `umoci` and `skopeo`; `--group` builds one
//!   group (`main` is the original set).
//! - `hostile`: builds the hostile-image suite (`target/fixtures/hostile/`, listed in its
//!   `cases.json`), which `tests/it/hostile_suite.rs` runs; see `docs/security.md`.
//! - `sample`: rebuilds the small sample images committed under `testdata/images/`.
//! - `dist`: the static, stripped release binary, its sha256 and drydock's own image (scratch,
//!   the binary, a CA bundle, a nonroot user) as an OCI layout and a docker-archive, under
//!   `target/dist/`; see `docs/dist.md`.
//! - `test`: installs the Debian packages the suite needs, builds the fixtures and `dist`, and
//!   runs the whole test suite (format, lints, tests). `.ci/run` calls exactly this.
//! - `bench`: scan time and peak memory of drydock against the hardware limit and its peers, on
//!   a realistic image in every form, for `docs/benchmarks.md`.
//!   `bench --all` runs every measurement below too, in one run (issue #18).
//! - `bench-memory`: peak memory of a scan against layer size, for `docs/benchmarks.md`.
//! - `bench-files [--files N]... [--build-only] [--peers]`: one-layer images of many small
//!   files under `target/bench/`; the time per entry beyond a sha256 of the archive and the
//!   peak memory of a scan of each, with dive, syft and trivy on them with `--peers`
//!   (`docs/benchmarks.md`).
//! - `bench-serve`: `drydock serve` under 200 pushes through the registry on loopback (scans per
//!   minute, webhook and verdict lookup answer times, peak memory), for `docs/benchmarks.md`.
//! - `bench-rebuild`: a rescan of a rebuilt image (only its top layer new) with a warm layer
//!   facts cache against a cold scan, for `docs/benchmarks.md`.
//! - `bench-fleet`: fifty images sharing a base scanned through one and two `drydock serve`
//!   replicas on a throwaway PostgreSQL cluster, against the time to walk their unique bytes
//!   once, for `docs/benchmarks.md`.
//! - `scores`: rewrites the table of fixture scores in `docs/scoring.md` from fresh scans.
//! - `fuzz [--minutes N] [--jobs J] [TARGET…]`: runs the cargo-fuzz targets (nightly), keeps crashing
//!   inputs as regression tests and records the runs in `docs/security.md`; `fuzz --seeds`
//!   only rewrites `fuzz/seeds/`.

mod bench;
mod bench_fleet;
mod bench_rebuild;
mod bench_serve;
mod blob;
mod cmd;
mod conformance;
mod deps;
mod dist;
mod elf_zoo;
mod fixtures;
mod fuzz;
mod hostile;
mod many_files;
mod registry;
mod runtime_faithful;
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
            let mut out = fixtures::default_dir(&root);
            let mut group = None;
            let mut rest = args[1..].iter();
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--out" => out = PathBuf::from(rest.next().context("--out needs a directory")?),
                    "--group" => group = Some(rest.next().context("--group needs a name")?),
                    other => bail!("unknown argument `{other}`"),
                }
            }
            deps::ensure()?;
            match group {
                Some(name) => fixtures::build_one(&root, &out, name),
                None => fixtures::build_all(&root, &out),
            }
        }
        Some("hostile") => {
            deps::ensure()?;
            fixtures::build_one(&root, &fixtures::default_dir(&root), "hostile")
        }
        Some("sample") => {
            deps::ensure()?;
            fixtures::build_sample(&root)
        }
        Some("test") => {
            deps::ensure()?;
            fixtures::build_all(&root, &fixtures::default_dir(&root))?;
            dist::build(&root, false)?;
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
            cmd::run_tests(cmd::cargo().args(["test", "--workspace", "--locked", "--no-fail-fast"]))
        }
        Some("dist") => dist::build(&root, true),
        Some("bench-memory") => {
            deps::ensure()?;
            bench::memory(&root)
        }
        Some("bench") if args.get(1).is_some_and(|a| a == "--all") => {
            // Every measurement of docs/benchmarks.md in one run, on one machine state.
            deps::ensure()?;
            speed::speed(&root)?;
            bench::memory(&root)?;
            many_files::run_bench(&root, &["--peers".to_owned()])?;
            bench_rebuild::run_bench(&root)?;
            bench_fleet::run_bench(&root)?;
            bench_serve::run_bench(&root)
        }
        Some("bench") => {
            deps::ensure()?;
            speed::speed(&root)
        }
        Some("bench-files") => many_files::run_bench(&root, &args[1..]),
        Some("bench-serve") => bench_serve::run_bench(&root),
        Some("bench-rebuild") => bench_rebuild::run_bench(&root),
        Some("bench-fleet") => bench_fleet::run_bench(&root),
        // The bench's yardstick for a gzip'd archive: inflating it once with drydock's own
        // decoder (flate2 + zlib-rs), nothing else.
        Some("inflate") => {
            let path = args.get(1).context("inflate FILE")?;
            let file = std::fs::File::open(path)?;
            let mut decoder =
                flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 16, file));
            std::io::copy(&mut decoder, &mut std::io::sink())?;
            Ok(())
        }
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("scores") => {
            let fixtures = fixtures::default_dir(&root);
            fixtures::build_all(&root, &fixtures)?;
            scores::write(&root, &fixtures)
        }
        _ => bail!(
            "usage: cargo xtask <fixtures [--out DIR] [--group NAME] | hostile | sample | dist | test | bench [--all] | bench-memory | bench-files [--files N]... [--peers] | bench-serve | bench-rebuild | bench-fleet | scores | fuzz [--minutes N] [--jobs J] [TARGET…]>"
        ),
    }
}
