//! `bench-files`: synthetic many-small-files images, the shape of a Node or Python application
//! layer, and the peak memory of a scan of each (issue #18).
//!
//! The image is a one-layer docker-archive whose uncompressed layer holds `N` files of 100
//! bytes in a `node_modules`-like tree: `app/node_modules/gNNN/pkg-NNNNN/lib/sK/fileI.js`,
//! 50 files per package in 5 sub-directories, 100 packages per group, every directory with
//! its own tar entry. Everything (names, bytes, times, owners) follows from `N`, so the same
//! `N` gives the same bytes and the same digests.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::cmd::{cargo, run};

const FILES_PER_PACKAGE: usize = 50;
const SUBDIRS_PER_PACKAGE: usize = 5;
const PACKAGES_PER_GROUP: usize = 100;
const FILE_SIZE: usize = 100;
const MTIME: u64 = 1_700_000_000;

/// The default sizes: the table.
const DEFAULT_FILES: [usize; 3] = [100_000, 300_000, 1_000_000];

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> anyhow::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header.set_size(size);
    header.set_path(path)?;
    header.set_cksum();
    Ok(header)
}

/// Writes the layer tar of `files` files; returns its sha256 (hex) and size.
fn write_layer(path: &Path, files: usize) -> anyhow::Result<(String, u64)> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut builder = tar::Builder::new(Hashing {
        inner: file,
        hash: Sha256::new(),
        len: 0,
    });
    let dir = |builder: &mut tar::Builder<_>, path: &str| -> anyhow::Result<()> {
        let header = header(path, tar::EntryType::Directory, 0o755, 0)?;
        builder.append(&header, io::empty())?;
        Ok(())
    };
    dir(&mut builder, "app/")?;
    dir(&mut builder, "app/node_modules/")?;
    let per_sub = FILES_PER_PACKAGE / SUBDIRS_PER_PACKAGE;
    let mut content = [b' '; FILE_SIZE];
    for index in 0..files {
        let package = index / FILES_PER_PACKAGE;
        let in_package = index % FILES_PER_PACKAGE;
        let group = package / PACKAGES_PER_GROUP;
        let group_dir = format!("app/node_modules/g{group:03}");
        let package_dir = format!("{group_dir}/pkg-{package:06}");
        if in_package == 0 {
            if package.is_multiple_of(PACKAGES_PER_GROUP) {
                dir(&mut builder, &format!("{group_dir}/"))?;
            }
            dir(&mut builder, &format!("{package_dir}/"))?;
            dir(&mut builder, &format!("{package_dir}/lib/"))?;
        }
        let sub = in_package / per_sub;
        let sub_dir = format!("{package_dir}/lib/s{sub}");
        if in_package.is_multiple_of(per_sub) {
            dir(&mut builder, &format!("{sub_dir}/"))?;
        }
        // Plain JavaScript: no ELF, no `#!`, no PEM, nothing a content hook keeps.
        let text = format!("module.exports = {{ id: {index}, pkg: {package} }};");
        content.fill(b' ');
        content[..text.len()].copy_from_slice(text.as_bytes());
        content[FILE_SIZE - 1] = b'\n';
        let header = header(
            &format!("{sub_dir}/file{in_package}.js"),
            tar::EntryType::Regular,
            0o644,
            FILE_SIZE as u64,
        )?;
        builder.append(&header, &content[..])?;
    }
    let mut hashing = builder.into_inner()?;
    hashing.flush()?;
    let hex = hashing
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, hashing.len))
}

/// Builds (once) the docker-archive of `files` files under `dir`; returns its path.
pub fn build(dir: &Path, files: usize) -> anyhow::Result<PathBuf> {
    let archive = dir.join(format!("many-files-{files}.tar"));
    let done = dir.join(format!("many-files-{files}.done"));
    if done.exists() && archive.exists() {
        return Ok(archive);
    }
    fs::create_dir_all(dir)?;
    let layer_path = dir.join(format!("many-files-{files}.layer.tar"));
    let (layer_hex, layer_size) = write_layer(&layer_path, files)?;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Cmd": ["node", "/app/index.js"], "WorkingDir": "/app"},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": format!("COPY node_modules ({files} files)")}],
    }))?;
    let config_name = format!("{}.json", crate::blob::sha256_hex(&config));
    let layer_name = format!("{layer_hex}/layer.tar");
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [format!("bench/many-files:{files}")],
        "Layers": [layer_name],
    }]))?;
    let mut out = tar::Builder::new(BufWriter::with_capacity(1 << 20, File::create(&archive)?));
    let mut member = |name: &str, size: u64, body: &mut dyn Read| -> anyhow::Result<()> {
        let header = header(name, tar::EntryType::Regular, 0o644, size)?;
        out.append(&header, body)?;
        Ok(())
    };
    member(&config_name, config.len() as u64, &mut &config[..])?;
    let mut layer = File::open(&layer_path)?;
    layer.seek(SeekFrom::Start(0))?;
    member(&layer_name, layer_size, &mut layer)?;
    member("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
    out.into_inner()?.flush()?;
    fs::remove_file(&layer_path)?;
    fs::write(&done, "")?;
    Ok(archive)
}

/// What `/usr/bin/time -v` says of one run.
#[derive(Debug, Clone, Copy)]
struct Measured {
    wall: f64,
    user: f64,
    system: f64,
    rss_kib: u64,
}

/// Runs `command` under `/usr/bin/time -v`; `ok` says which exit codes are a success.
fn measure(command: &[String], ok: &dyn Fn(i32) -> bool) -> anyhow::Result<Measured> {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .args(command)
        .stdout(std::process::Stdio::null())
        .output()
        .context("running /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.code().is_some_and(ok) {
        bail!("{} failed: {stderr}", command.join(" "));
    }
    let field = |name: &str| {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .with_context(|| format!("no `{name}` from /usr/bin/time"))
    };
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):")?;
    let wall = wall
        .split(':')
        .try_fold(0.0, |acc, part| part.parse::<f64>().map(|v| acc * 60.0 + v))?;
    Ok(Measured {
        wall,
        user: field("User time (seconds):")?.parse()?,
        system: field("System time (seconds):")?.parse()?,
        rss_kib: field("Maximum resident set size (kbytes):")?.parse()?,
    })
}

/// The run of median wall time among `runs`.
fn median_of(
    runs: usize,
    command: &[String],
    ok: &dyn Fn(i32) -> bool,
) -> anyhow::Result<Measured> {
    let mut all = (0..runs)
        .map(|_| measure(command, ok))
        .collect::<anyhow::Result<Vec<_>>>()?;
    all.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    Ok(all[all.len() / 2])
}

fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

const HEADING: &str = "## Many small files: time per entry and the peers";

/// `cargo xtask bench-files [--files N]... [--build-only] [--peers]`.
pub fn run_bench(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let mut build_only = false;
    let mut peers = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--files" => sizes.push(
                rest.next()
                    .context("--files needs a number")?
                    .replace('_', "")
                    .parse::<usize>()
                    .context("--files needs a number")?,
            ),
            "--build-only" => build_only = true,
            "--peers" => peers = true,
            other => bail!("unknown argument `{other}`"),
        }
    }
    if sizes.is_empty() {
        sizes.extend(DEFAULT_FILES);
    }
    let dir = root.join("target/bench");
    let trivy_binary = if peers && !build_only {
        Some(crate::deps::ensure_peers()?)
    } else {
        None
    };
    if !build_only {
        run(cargo().args(["build", "--release", "--locked", "--bin", "drydock"]))?;
    }
    let binary = root.join("target/release/drydock").display().to_string();
    let load_before = load();
    let mut table = String::from(
        "| files | entries | archive (MB) | tool | wall (s) | user + sys CPU (s) | peak RSS (MiB) | bytes per entry |\n\
         |---:|---:|---:|---|---:|---:|---:|---:|\n",
    );
    let mut goals = String::new();
    for files in sizes {
        let image = build(&dir, files)?;
        if build_only {
            println!("{}", image.display());
            continue;
        }
        let bytes = fs::metadata(&image)?.len();
        let packages = files.div_ceil(FILES_PER_PACKAGE);
        let entries = files
            + 2
            + files.div_ceil(PACKAGES_PER_GROUP * FILES_PER_PACKAGE)
            + packages * 2
            + files.div_ceil(FILES_PER_PACKAGE / SUBDIRS_PER_PACKAGE);
        let image_arg = image.display().to_string();
        let any = |_: i32| true;
        let success = |code: i32| code == 0;
        let mut rows: Vec<(&str, Measured)> = Vec::new();
        // The least any scanner must do with these bytes: hash them once.
        let sha256 = median_of(
            3,
            &[
                "openssl".into(),
                "dgst".into(),
                "-sha256".into(),
                image_arg.clone(),
            ],
            &success,
        )?;
        rows.push(("sha256 of the archive (`openssl dgst -sha256`)", sha256));
        let drydock = median_of(
            3,
            &[
                binary.clone(),
                "scan".into(),
                "--quiet".into(),
                "--format".into(),
                "json".into(),
                "--fail-on".into(),
                "none".into(),
                image_arg.clone(),
            ],
            &success,
        )?;
        rows.push(("drydock", drydock));
        if let Some(trivy) = &trivy_binary {
            let docker_archive = format!("docker-archive:{image_arg}");
            rows.push((
                "dive --ci",
                measure(
                    &[
                        "dive".into(),
                        "--ci".into(),
                        "--source".into(),
                        "docker-archive".into(),
                        image_arg.clone(),
                    ],
                    &any,
                )?,
            ));
            rows.push((
                "syft",
                measure(
                    &[
                        "syft".into(),
                        "-q".into(),
                        "-o".into(),
                        "json".into(),
                        docker_archive,
                    ],
                    &success,
                )?,
            ));
            let cache = dir.join("trivy-cache-files");
            let _ = fs::remove_dir_all(&cache);
            rows.push((
                "trivy (misconfig,secret)",
                measure(
                    &crate::deps::trivy_command(trivy, &cache, &image_arg),
                    &success,
                )?,
            ));
            let _ = fs::remove_dir_all(&cache);
        }
        for (tool, m) in &rows {
            let _ = writeln!(
                table,
                "| {files} | {entries} | {:.0} | {tool} | {:.2} | {:.2} | {:.1} | {} |",
                bytes as f64 / 1e6,
                m.wall,
                m.user + m.system,
                m.rss_kib as f64 / 1024.0,
                if *tool == "drydock" {
                    format!("{:.0}", (m.rss_kib * 1024) as f64 / entries as f64)
                } else {
                    String::new()
                },
            );
        }
        let per_entry = |t: f64| t / entries as f64 * 1e6;
        let beyond_wall = per_entry(drydock.wall - sha256.wall);
        let beyond_cpu = per_entry(drydock.user + drydock.system - sha256.user - sha256.system);
        let time_goal = 1.5 * files as f64 / 1e6 + sha256.wall;
        // The goal is the 1M-file scan's; smaller images show their time per entry.
        let _ = writeln!(
            goals,
            "| {files} files: {} | {:.2} s; beyond the sha256 {beyond_wall:.2} µs per entry of wall, {beyond_cpu:.2} µs of CPU | {} |",
            if files == 1_000_000 {
                format!("wall ≤ 1.5 s + the sha256 = {time_goal:.2} s")
            } else {
                "time per entry (no goal at this size)".to_owned()
            },
            drydock.wall,
            match (files == 1_000_000, drydock.wall <= time_goal) {
                (false, _) => "",
                (true, true) => "met",
                (true, false) => "**not met**",
            },
        );
        let memory_goal = match files {
            300_000 => Some(80.0),
            1_000_000 => Some(200.0),
            _ => None,
        };
        if let Some(goal) = memory_goal {
            let rss = drydock.rss_kib as f64 / 1024.0;
            let _ = writeln!(
                goals,
                "| {files} files: peak RSS ≤ {goal:.0} MiB | {rss:.1} MiB | {} |",
                if rss <= goal { "met" } else { "**not met**" },
            );
        }
        println!("{table}");
    }
    if build_only {
        return Ok(());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = String::new();
    let _ = writeln!(out, "{HEADING}\n");
    let _ = writeln!(
        out,
        "Measured by `cargo xtask bench-files{}` on {cores} cores; load average {load_before} \
         before and {} after. The images are those of the section above (one uncompressed \
         layer, 100-byte files in a `node_modules`-like tree), in the page cache. drydock and \
         the sha256 are the median of 3 runs, each peer one run; wall, CPU and peak RSS from \
         `/usr/bin/time -v`. The time goal of issue #18 is ≤ 1 µs per entry beyond hashing: \
         a scan's wall time ≤ 1.5 s per million files + the time to sha256 the archive.\n",
        if trivy_binary.is_some() {
            " --peers"
        } else {
            ""
        },
        load(),
    );
    out.push_str(&table);
    let _ = writeln!(out, "\n| goal | measured | |\n|---|---|---|");
    out.push_str(&goals);
    crate::bench_rebuild::write_section(root, HEADING, &out)?;
    println!("{out}");
    Ok(())
}
