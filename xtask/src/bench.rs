//! Benchmarks are measurements, not tests: they write `docs/benchmarks.md` and assert nothing.
//!
//! `bench-memory` shows that a scan's peak memory does not grow with layer size: the same
//! toolchain content scanned as a one-layer image and as a two-layer image twice its size, in an
//! uncompressed docker-archive and a gzip OCI layout, under `/usr/bin/time -v`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::cmd::{cargo, output, run};

const RUNS: usize = 3;

struct Measurement {
    wall_seconds: f64,
    max_rss_kib: u64,
}

fn measure(binary: &Path, image: &str) -> anyhow::Result<Measurement> {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(binary)
        .args(["scan", "--format", "json", "--fail-on", "none", image])
        .output()
        .context("running /usr/bin/time")?;
    anyhow::ensure!(
        out.status.success(),
        "scan of {image} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let field = |name: &str| {
        stderr.lines().find_map(|l| {
            l.trim()
                .strip_prefix(name)
                .map(str::trim)
                .map(str::to_owned)
        })
    };
    let rss = field("Maximum resident set size (kbytes):")
        .context("max RSS")?
        .parse()?;
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):").context("wall time")?;
    let wall_seconds = wall
        .split(':')
        .try_fold(0.0, |acc, part| part.parse::<f64>().map(|v| acc * 60.0 + v))?;
    Ok(Measurement {
        wall_seconds,
        max_rss_kib: rss,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What a bench image holds: the toolchain `n` times (one layer each), or one file of `n` MiB.
#[derive(Clone, Copy)]
enum Content {
    Toolchain(usize),
    OneFile(usize),
}

impl Content {
    fn name(self) -> String {
        match self {
            Self::Toolchain(n) => format!("toolchain ×{n}"),
            Self::OneFile(mib) => format!("one {mib} MiB file"),
        }
    }

    fn dir_name(self) -> String {
        match self {
            Self::Toolchain(n) => format!("toolchain-x{n}"),
            Self::OneFile(mib) => format!("one-file-{mib}"),
        }
    }
}

fn build_image(dir: &Path, content: Content) -> anyhow::Result<()> {
    if dir.join("done").exists() {
        return Ok(());
    }
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    let layout = dir.join("oci");
    let bundle = dir.join("bundle");
    let image = format!("{}:latest", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout))?;
    run(Command::new("umoci").args(["new", "--image", &image]))?;
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle))?;
    if let Content::OneFile(mib) = content {
        let file = bundle.join("rootfs/data.bin");
        run(Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "status=none"])
            .arg(format!("count={mib}"))
            .arg(format!("of={}", file.display())))?;
        run(Command::new("umoci")
            .args([
                "repack",
                "--refresh-bundle",
                "--image",
                &image,
                "--history.created_by",
                "COPY data.bin /",
            ])
            .arg(&bundle))?;
    }
    let copies = match content {
        Content::Toolchain(n) => n,
        Content::OneFile(_) => 0,
    };
    for copy in 0..copies {
        for (source, part) in [("/usr/lib/go-1.19", "lib"), ("/usr/share/go-1.19", "share")] {
            let target = bundle.join(format!("rootfs/opt/toolchain-{copy}/{part}"));
            fs::create_dir_all(&target)?;
            run(Command::new("cp").arg("-a").arg(source).arg(&target))?;
        }
        run(Command::new("umoci")
            .args([
                "repack",
                "--refresh-bundle",
                "--image",
                &image,
                "--history.created_by",
            ])
            .arg(format!("COPY toolchain /opt/toolchain-{copy}"))
            .arg(&bundle))?;
    }
    fs::remove_dir_all(&bundle)?;
    let archive = dir.join("docker.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--insecure-policy"])
        .arg(format!("oci:{image}"))
        .arg(format!(
            "docker-archive:{}:bench/toolchain:latest",
            archive.display()
        )))?;
    fs::write(dir.join("done"), "")?;
    Ok(())
}

pub fn memory(root: &Path) -> anyhow::Result<()> {
    run(cargo().args(["build", "--release", "--locked"]))?;
    let binary = root.join("target/release/drydock");
    let bench = root.join("target/bench-memory");
    let mut rows = Vec::new();
    for content in [
        Content::Toolchain(1),
        Content::Toolchain(2),
        Content::OneFile(400),
        Content::OneFile(800),
    ] {
        let dir = bench.join(content.dir_name());
        build_image(&dir, content)?;
        let forms = [
            (
                "docker-archive (uncompressed)",
                dir.join("docker.tar").display().to_string(),
            ),
            ("OCI layout (gzip)", dir.join("oci").display().to_string()),
        ];
        for (form, image) in forms {
            let size = output(Command::new("du").args(["-sb", &image]))?;
            let bytes: u64 = size.split_whitespace().next().unwrap_or("0").parse()?;
            let mut walls = Vec::new();
            let mut rss = Vec::new();
            for _ in 0..RUNS {
                let m = measure(&binary, &image)?;
                walls.push(m.wall_seconds);
                rss.push(m.max_rss_kib as f64);
            }
            rows.push((content.name(), form, bytes, median(walls), median(rss)));
        }
    }
    let cpu = output(
        Command::new("sh").args(["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]),
    )?;
    let cores = output(&mut Command::new("nproc"))?;
    let mut section = String::new();
    let _ = writeln!(section, "## Peak memory against image size\n");
    let _ = writeln!(
        section,
        "Measured by `cargo xtask bench-memory` on {} cores ({}), median of {RUNS} runs of \
         `/usr/bin/time -v target/release/drydock scan --format json IMAGE`. The image holds the Go \
         toolchain from Debian (`/usr/lib/go-1.19` and `/usr/share/go-1.19`, about 15,000 files) \
         once in one layer or twice in two layers, or a single file of random bytes in one layer.\n",
        cores.trim(),
        cpu.trim()
    );
    let _ = writeln!(
        section,
        "| image | form | bytes on disk | wall time (s) | peak RSS (MiB) |"
    );
    let _ = writeln!(section, "|---|---|---:|---:|---:|");
    for (name, form, bytes, wall, rss) in &rows {
        let _ = writeln!(
            section,
            "| {name} | {form} | {:.0} MB | {wall:.2} | {:.1} |",
            *bytes as f64 / 1e6,
            rss / 1024.0
        );
    }
    let _ = writeln!(
        section,
        "\nPeak memory does not grow with layer size: a layer of one 800 MiB file needs no more \
         than one of 400 MiB. It grows with the number of entries (the in-memory tree holds one \
         node per file with its path and facts, 1 to 2 KB each), which is why the two-layer toolchain \
         image, with twice the files, needs more. Wall times are with the image in the page cache."
    );
    let path = root.join("docs/benchmarks.md");
    let existing = fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    let start = existing.find("## Peak memory against image size");
    let updated = match start {
        Some(start) => {
            let end = existing[start + 3..]
                .find("\n## ")
                .map_or(existing.len(), |e| start + 3 + e + 1);
            format!("{}{section}{}", &existing[..start], &existing[end..])
        }
        None => format!("{existing}{section}"),
    };
    fs::write(&path, updated)?;
    eprintln!("{section}");
    Ok(())
}
