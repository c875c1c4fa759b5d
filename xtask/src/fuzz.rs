//! `cargo xtask fuzz [--minutes N] [--jobs J] [TARGET…]`: runs every cargo-fuzz target of
//! `fuzz/` (or the ones named) for N minutes each, J at a time, from the seeds in `fuzz/seeds/`, keeps any crashing input
//! in `fuzz/regressions/<target>/` (the normal suite replays them), and records the runs
//! (executions, coverage, crashes) in `docs/security.md`.
//!
//! Needs the nightly toolchain (sanitizers) and `cargo-fuzz`, which is installed when missing.
//! Not part of `cargo xtask test`: fuzzing is measured, not asserted.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest as _, Sha256};

use crate::cmd;

/// The targets of `fuzz/Cargo.toml`, in the order they run.
const TARGETS: &[&str] = &[
    "layer_walk",
    "elf_facts",
    "image_documents",
    "archive",
    "ld_cache",
    "cert_bundle",
    "policy",
    "go_build_info",
    "shell_command",
    "ld_conf",
];

const BEGIN: &str = "<!-- fuzz-runs:begin -->";
const END: &str = "<!-- fuzz-runs:end -->";

/// What one run did, from libFuzzer's final statistics.
#[derive(Debug, Default)]
struct Run {
    target: String,
    seconds: u64,
    executions: u64,
    coverage: u64,
    features: u64,
    corpus: u64,
    peak_rss_mb: u64,
    crashes: Vec<String>,
}

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut minutes = 10u64;
    let mut jobs = 1usize;
    let mut wanted: Vec<String> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--minutes" => {
                minutes = rest
                    .next()
                    .context("--minutes needs a number")?
                    .parse()
                    .context("--minutes needs a number")?;
            }
            "--jobs" => {
                jobs = rest
                    .next()
                    .context("--jobs needs a number")?
                    .parse()
                    .context("--jobs needs a number")?;
            }
            "--seeds" => return write_seeds(root),
            name if TARGETS.contains(&name) => wanted.push(name.to_owned()),
            other => bail!(
                "unknown argument `{other}`; targets: {}",
                TARGETS.join(", ")
            ),
        }
    }
    if wanted.is_empty() {
        wanted = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    ensure_tools()?;
    write_seeds(root)?;
    // Build every target first (one cargo at a time), then run `jobs` of them at once.
    cmd::run(
        Command::new("cargo")
            .current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "build"]),
    )?;
    let queue = std::sync::Mutex::new(wanted.clone());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some(target) = next else { break };
                    let run = fuzz_one(root, &target, minutes * 60);
                    if let Ok(mut all) = results.lock() {
                        all.push((target, run));
                    }
                }
            });
        }
    });
    let mut runs = Vec::new();
    let mut outcomes = results.into_inner().unwrap_or_default();
    outcomes.sort_by_key(|(target, _)| {
        TARGETS
            .iter()
            .position(|t| t == target)
            .unwrap_or(usize::MAX)
    });
    for (_, run) in outcomes {
        runs.push(run?);
    }
    let table = table(&runs, minutes, jobs);
    println!("{table}");
    record(root, &table)?;
    let crashed: Vec<&Run> = runs.iter().filter(|r| !r.crashes.is_empty()).collect();
    if !crashed.is_empty() {
        bail!(
            "crashes kept in fuzz/regressions/: {}; fix them, then `cargo test --test it fuzz_regressions` replays them",
            crashed
                .iter()
                .map(|r| r.target.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn ensure_tools() -> anyhow::Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        bail!("fuzzing needs the nightly toolchain (`rustup toolchain install nightly`)");
    }
    let has_fuzz = cmd::cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        cmd::run(cmd::cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    }
    Ok(())
}

fn fuzz_one(root: &Path, target: &str, seconds: u64) -> anyhow::Result<Run> {
    let fuzz = root.join("fuzz");
    let corpus = root.join("target/fuzz-corpus").join(target);
    fs::create_dir_all(&corpus)?;
    let artifacts = root.join("target/fuzz-artifacts").join(target);
    fs::create_dir_all(&artifacts)?;
    let log = root
        .join("target/fuzz-artifacts")
        .join(format!("{target}.log"));
    eprintln!("fuzzing {target} for {seconds} s (log: {})", log.display());
    let output = Command::new("cargo")
        .current_dir(&fuzz)
        .args(["+nightly", "fuzz", "run", target])
        .arg(&corpus)
        .arg(fuzz.join("seeds").join(target))
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
            "-timeout=10",
            "-max_len=65536",
            "-print_final_stats=1",
        ])
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .output()
        .with_context(|| format!("running cargo fuzz run {target}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    fs::write(&log, stderr.as_bytes())?;
    let mut run = parse_stats(target, &stderr);
    run.seconds = seconds;
    let regressions = fuzz.join("regressions").join(target);
    for entry in fs::read_dir(&artifacts)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if ["crash-", "oom-", "timeout-", "leak-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            fs::create_dir_all(&regressions)?;
            fs::copy(&path, regressions.join(name))?;
            run.crashes.push(name.to_owned());
        }
    }
    if !output.status.success() && run.crashes.is_empty() {
        bail!(
            "cargo fuzz run {target} failed without a crash input: see {}",
            log.display()
        );
    }
    Ok(run)
}

/// libFuzzer's `-print_final_stats` lines and its last `#N … cov: C ft: F corp: K` line.
fn parse_stats(target: &str, stderr: &str) -> Run {
    let mut run = Run {
        target: target.to_owned(),
        ..Run::default()
    };
    // `corp: 655/88Kb`: the count is before the slash.
    let number_after = |line: &str, key: &str| -> Option<u64> {
        let rest = line.split(key).nth(1)?;
        rest.split_whitespace()
            .next()?
            .split('/')
            .next()?
            .parse()
            .ok()
    };
    for line in stderr.lines() {
        if let Some(n) = number_after(line, "stat::number_of_executed_units:") {
            run.executions = n;
        }
        if let Some(n) = number_after(line, "stat::peak_rss_mb:") {
            run.peak_rss_mb = n;
        }
        if line.starts_with('#') && line.contains(" cov: ") {
            run.coverage = number_after(line, " cov: ").unwrap_or(run.coverage);
            run.features = number_after(line, " ft: ").unwrap_or(run.features);
            run.corpus = number_after(line, " corp: ").unwrap_or(run.corpus);
        }
    }
    run
}

fn table(runs: &[Run], minutes: u64, jobs: usize) -> String {
    let date = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d"]))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut out = format!(
        "Last run: {date}, `cargo xtask fuzz --minutes {minutes} --jobs {jobs}` on the project's \
         machine (2 cores, {jobs} target(s) at a time).\n\n\
         | target | seconds | executions | coverage (edges) | features | corpus | peak RSS | crashes |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n"
    );
    for run in runs {
        let crashes = if run.crashes.is_empty() {
            "none".to_owned()
        } else {
            run.crashes.join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} MB | {crashes} |\n",
            run.target,
            run.seconds,
            run.executions,
            run.coverage,
            run.features,
            run.corpus,
            run.peak_rss_mb
        ));
    }
    out
}

/// Writes the table between the markers of `docs/security.md`.
fn record(root: &Path, table: &str) -> anyhow::Result<()> {
    let path = root.join("docs/security.md");
    let doc = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        bail!("{} has no {BEGIN} … {END} markers", path.display());
    };
    let updated = format!("{}{BEGIN}\n{table}{}", &doc[..start], &doc[end..]);
    fs::write(&path, updated)?;
    eprintln!("recorded the runs in {}", path.display());
    Ok(())
}

/// Small valid inputs each target starts from, written from real parts: a layer of real files,
/// ELF files of the `elf-zoo` group, the build machine's loader cache and CA bundle, the
/// policy example of `docs/policy.md`, and image documents in the shapes every writer uses.
fn write_seeds(root: &Path) -> anyhow::Result<()> {
    let seeds = root.join("fuzz/seeds");
    let put = |target: &str, name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let dir = seeds.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)?;
        Ok(())
    };
    // layer_walk: a small layer of files the fact readers look at, plain, gzip and zstd.
    let pem = first_certificates("/etc/ssl/certs/ca-certificates.crt", 2)?;
    let elf = small_elf(root)?;
    let layer = tar_of(&[
        ("etc/ssl/certs/ca-certificates.crt", &pem[..]),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        ("usr/local/bin/start", b"#!/bin/sh\nexec /app/server\n"),
        ("app/server", &elf[..]),
        (
            "app/.env",
            b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        ),
    ])?;
    put("layer_walk", "plain.tar", &layer)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer)?;
    put("layer_walk", "gzip.tar.gz", &gz.finish()?)?;
    put(
        "layer_walk",
        "zstd.tar.zst",
        &crate::blob::pipe_through("zstd", &["-q", "-c"], &layer)?,
    )?;
    // elf_facts: the zoo's smaller files, many machines and shapes.
    let zoo = root.join("target/fixtures/elf-zoo/files");
    if zoo.is_dir() {
        let mut names: Vec<PathBuf> = fs::read_dir(&zoo)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() <= 64 << 10))
            .collect();
        names.sort();
        for path in names {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("elf");
            put("elf_facts", name, &fs::read(&path)?)?;
        }
    }
    put("elf_facts", "small", &elf)?;
    // image_documents: index -> manifest -> config, and docker's manifest.json -> config.
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app/server"],"User":"65534"},"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]},"history":[{"created_by":"COPY server /app/server"}]}"#;
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"@D2@","size":@S2@},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}"#;
    let index = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@D1@","size":@S1@,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#;
    put(
        "image_documents",
        "oci",
        &[&index[..], manifest, config].join(&0xffu8),
    )?;
    let docker =
        br#"[{"Config":"config.json","RepoTags":["app:latest"],"Layers":["abc/layer.tar"]}]"#;
    put(
        "image_documents",
        "docker",
        &[&docker[..], config].join(&0xffu8),
    )?;
    // archive: a whole docker-archive with its members.
    let digest: String = Sha256::digest(&layer)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let archive_config = String::from_utf8_lossy(config).replace(
        "0000000000000000000000000000000000000000000000000000000000000000",
        &digest,
    );
    let archive = tar_of(&[
        ("manifest.json", &docker[..]),
        ("config.json", archive_config.as_bytes()),
        ("abc/layer.tar", &layer[..]),
    ])?;
    put("archive", "docker-archive.tar", &archive)?;
    // ld_cache: the build machine's own cache.
    if let Ok(cache) = fs::read("/etc/ld.so.cache") {
        put("ld_cache", "host-ld.so.cache", &cache)?;
    }
    put("ld_cache", "empty", b"glibc-ld.so.cache1.1")?;
    put("cert_bundle", "two.pem", &pem)?;
    // go_build_info: the build information of the zoo's Go programs, from their magic on.
    if zoo.is_dir() {
        for arch in ["go-amd64", "go-arm64", "go-386", "go-s390x"] {
            let Ok(bytes) = fs::read(zoo.join(arch)) else {
                continue;
            };
            let magic = b"\xff Go buildinf:";
            if let Some(at) = bytes.windows(magic.len()).position(|w| w == magic) {
                let end = (at + (16 << 10)).min(bytes.len());
                put("go_build_info", arch, &bytes[at..end])?;
            }
        }
    }
    put("go_build_info", "empty", b"\xff Go buildinf:")?;
    // shell_command: the shapes of runtime-faithful's shell fixtures.
    for (name, script) in [
        ("single", "/app/server --port 8080"),
        ("list", "cd /tmp && exec /app/server"),
        ("trap", "trap 'kill $PID' TERM; /app/server & PID=$!; wait"),
        ("pipeline", "/app/server 2>&1 | tee /tmp/log"),
        (
            "compound",
            "if [ -f /x ]; then /app/a; else /app/b; fi # done",
        ),
        (
            "quoted",
            "echo \"a; b\" '$(c)' $(date) `id` && /app/server \"$@\"",
        ),
    ] {
        put("shell_command", name, script.as_bytes())?;
    }
    // ld_conf: Debian's include, a self-include and relative globs.
    put(
        "ld_conf",
        "debian",
        b"include /etc/ld.so.conf.d/*.conf\n\xff/usr/local/lib\n# comment\n\xff/opt/lib:/opt/lib64\n",
    )?;
    put(
        "ld_conf",
        "loops",
        b"include ld.so.conf.d/[ab].conf\n\xffinclude /etc/ld.so.conf.d/*\n\xffinclude /etc/ld.so.conf\n",
    )?;
    // policy: the example of docs/policy.md.
    let doc = fs::read_to_string(root.join("docs/policy.md"))?;
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .context("docs/policy.md has a toml example")?;
    put("policy", "example.toml", example.as_bytes())?;
    eprintln!("seeds written to {}", seeds.display());
    Ok(())
}

fn first_certificates(bundle: &str, count: usize) -> anyhow::Result<Vec<u8>> {
    let text = fs::read_to_string(bundle).with_context(|| format!("reading {bundle}"))?;
    let end = "-----END CERTIFICATE-----\n";
    Ok(text
        .split_inclusive(end)
        .take(count)
        .collect::<String>()
        .into_bytes())
}

/// A small real ELF program: the zoo's musl one, else the build machine's `true`.
fn small_elf(root: &Path) -> anyhow::Result<Vec<u8>> {
    let candidate = root.join("target/fixtures/elf-zoo/files/musl-dynamic");
    let path = if candidate.is_file() {
        candidate
    } else {
        PathBuf::from("/bin/true")
    };
    Ok(fs::read(path)?)
}

fn tar_of(entries: &[(&str, &[u8])]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if name.contains("bin/") || name.starts_with("app/s") {
            0o755
        } else {
            0o644
        });
        header.set_cksum();
        builder.append_data(&mut header, name, *data)?;
    }
    Ok(builder.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_statistics_are_read() {
        let log = "#1000\tREDUCE cov: 10 ft: 20 corp: 5/1Kb\n\
                   #643915\tDONE   cov: 1383 ft: 3795 corp: 655/88Kb lim: 920 exec/s: 1071 rss: 372Mb\n\
                   stat::number_of_executed_units: 643915\n\
                   stat::peak_rss_mb:              372\n";
        let run = parse_stats("ld_conf", log);
        assert_eq!(
            (
                run.executions,
                run.coverage,
                run.features,
                run.corpus,
                run.peak_rss_mb
            ),
            (643915, 1383, 3795, 655, 372)
        );
    }
}
