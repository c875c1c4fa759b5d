//! `cargo xtask bench-rebuild`: the layer facts cache on a rebuild. The bench image (or, when
//! `cargo xtask bench` has not built it, the `debian-go` fixture, the same recipe) and a
//! rebuild of it that changes only its top layer (the same files and one more, recompressed,
//! so the top layer's diff id, the config and the manifest are new): the time of a scan of the
//! rebuild with a facts cache warm from the first image, against a cold scan. Written to
//! `docs/benchmarks.md` as its own section.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::blob::digest;
use crate::cmd::{cargo, run};

const RUNS: usize = 3;
const HEADING: &str = "## Rebuild rescan with the layer facts cache";

pub(crate) fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

pub(crate) fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Writes `bytes` as a blob of `layout`, returning its digest.
pub(crate) fn put_blob(layout: &Path, bytes: &[u8]) -> anyhow::Result<String> {
    let digest = digest(bytes);
    fs::write(blob_path(layout, &digest), bytes)?;
    Ok(digest)
}

/// The entries (header and bytes) of a gzip'd tar layer.
pub(crate) fn gzip_tar_entries(path: &Path) -> anyhow::Result<Vec<(tar::Header, Vec<u8>)>> {
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(path)?).read_to_end(&mut tar_bytes)?;
    let mut entries = Vec::new();
    for entry in tar::Archive::new(&tar_bytes[..]).entries()? {
        let mut entry = entry?;
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        entries.push((header, data));
    }
    Ok(entries)
}

/// A layer of `entries` and one more file, `app/BUILD_ID` holding `stamp`, as a build that
/// changed only that would make it: its tar and its gzip'd blob.
pub(crate) fn stamped_layer(
    entries: &[(tar::Header, Vec<u8>)],
    stamp: &str,
    level: flate2::Compression,
) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut builder = tar::Builder::new(Vec::new());
    for (header, data) in entries {
        builder.append(header, &data[..])?;
    }
    let mut header = tar::Header::new_gnu();
    header.set_path("app/BUILD_ID")?;
    header.set_size(stamp.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, stamp.as_bytes())?;
    let tar = builder.into_inner()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
    gz.write_all(&tar)?;
    Ok((tar, gz.finish()?))
}

/// A copy of the OCI layout `from` at `to` (blobs hard-linked) whose top layer is rebuilt:
/// its entries and one more file, gzip again. Returns the new layer's blob size and the sum of
/// every layer blob's size.
fn rebuild(from: &Path, to: &Path) -> anyhow::Result<(u64, u64)> {
    if to.exists() {
        fs::remove_dir_all(to)?;
    }
    fs::create_dir_all(to.join("blobs/sha256"))?;
    for entry in fs::read_dir(from.join("blobs/sha256"))? {
        let entry = entry?;
        let target = to.join("blobs/sha256").join(entry.file_name());
        if fs::hard_link(entry.path(), &target).is_err() {
            fs::copy(entry.path(), &target)?;
        }
    }
    fs::copy(from.join("oci-layout"), to.join("oci-layout"))?;
    let index = read_json(&from.join("index.json"))?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("index without a manifest")?;
    let mut manifest = read_json(&blob_path(from, manifest_digest))?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("manifest without a config")?
        .to_owned();
    let mut config = read_json(&blob_path(from, &config_digest))?;
    let layers = manifest["layers"]
        .as_array()
        .context("manifest without layers")?
        .clone();
    let top = layers.last().context("no layer")?;
    let top_digest = top["digest"].as_str().context("layer digest")?;

    // The top layer again, with one more file, as a new build would make it.
    let entries = gzip_tar_entries(&blob_path(from, top_digest))?;
    let stamp = format!("rebuilt {:?}\n", std::time::SystemTime::now());
    let (new_tar, new_blob) = stamped_layer(&entries, &stamp, flate2::Compression::default())?;
    let diff_id = digest(&new_tar);
    let blob_digest = put_blob(to, &new_blob)?;

    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("config without diff_ids")?;
    let last = diff_ids.last_mut().context("no diff id")?;
    *last = serde_json::Value::String(diff_id);
    let config_bytes = serde_json::to_vec(&config)?;
    let config_digest = put_blob(to, &config_bytes)?;
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_bytes.len().into();
    let top = layers.len() - 1;
    manifest["layers"][top]["digest"] = blob_digest.into();
    manifest["layers"][top]["size"] = new_blob.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let manifest_digest = put_blob(to, &manifest_bytes)?;
    let mut index = index;
    index["manifests"] = serde_json::json!([{
        "mediaType": manifest["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json"),
        "digest": manifest_digest,
        "size": manifest_bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }]);
    fs::write(to.join("index.json"), serde_json::to_vec(&index)?)?;
    let total: u64 = layers
        .iter()
        .take(top)
        .filter_map(|l| l["size"].as_u64())
        .sum::<u64>()
        + new_blob.len() as u64;
    Ok((new_blob.len() as u64, total))
}

/// The median wall time of `RUNS` scans after one warm-up, `before` run before each.
fn time_scan(
    label: &str,
    args: &[String],
    before: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let mut walls = Vec::new();
    for run in 0..=RUNS {
        before()?;
        let started = Instant::now();
        let status = Command::new(&args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .status()?;
        let wall = started.elapsed().as_secs_f64();
        if !matches!(status.code(), Some(0 | 1)) {
            bail!("{label}: drydock failed ({status})");
        }
        if run > 0 {
            walls.push(wall);
        }
    }
    walls.sort_by(f64::total_cmp);
    let median = walls[walls.len() / 2];
    eprintln!("{label}: {median:.2} s");
    Ok(median)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        fs::remove_dir_all(to)?;
    }
    run(Command::new("cp").arg("-r").arg(from).arg(to))
}

pub(crate) fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn run_bench(root: &Path) -> anyhow::Result<()> {
    run(cargo().args(["build", "--release", "--locked", "--bin", "drydock"]))?;
    let drydock = root.join("target/release/drydock").display().to_string();
    let bench = root.join("target/bench");
    let built = bench.join("build/image/oci");
    let (image, which) = if built.join("index.json").exists() {
        (built, "the bench image (`cargo xtask bench`)")
    } else {
        let fixture = crate::fixtures::default_dir(root).join("debian-go/oci");
        if !fixture.join("index.json").exists() {
            bail!("neither the bench image nor the debian-go fixture is built");
        }
        (
            fixture,
            "the `debian-go` fixture (the bench image's recipe)",
        )
    };
    let work = bench.join("rebuild");
    fs::create_dir_all(&work)?;
    let rebuilt = work.join("rebuilt");
    let (new_bytes, total_bytes) = rebuild(&image, &rebuilt)?;
    let share = new_bytes as f64 / total_bytes as f64;
    let cache = work.join("cache");
    let warm_base = work.join("cache-base");
    let scan = |image: &Path, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            drydock.as_str(),
            "scan",
            "--quiet",
            "--format",
            "json",
            "--no-policy",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(image.display().to_string());
        args
    };
    let cache_s = cache.display().to_string();
    let load_before = load();
    let clear = || -> anyhow::Result<()> {
        if cache.exists() {
            fs::remove_dir_all(&cache)?;
        }
        Ok(())
    };
    let nothing = || Ok(());
    let uncached = time_scan(
        "rebuild, no facts cache",
        &scan(&rebuilt, &["--no-cache"]),
        &nothing,
    )?;
    let cold = time_scan(
        "first image, cold facts cache (walks and fills it)",
        &scan(&image, &["--cache-dir", &cache_s]),
        &clear,
    )?;
    // The cache as the first image's scan leaves it, restored before each warm run.
    clear()?;
    let status = Command::new(&drydock)
        .args([
            "scan",
            "--quiet",
            "--format",
            "json",
            "--no-policy",
            "--cache-dir",
            &cache_s,
        ])
        .arg(&image)
        .stdout(Stdio::null())
        .status()?;
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("filling the facts cache failed ({status})");
    }
    copy_dir(&cache, &warm_base)?;
    let restore = || copy_dir(&warm_base, &cache);
    let warm = time_scan(
        "rebuild, facts cache warm from the first image",
        &scan(&rebuilt, &["--cache-dir", &cache_s]),
        &restore,
    )?;
    let load_after = load();
    let ratio = warm / cold;
    let goal = share + 0.10;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = String::new();
    let _ = writeln!(out, "{HEADING}\n");
    let _ = writeln!(
        out,
        "Measured by `cargo xtask bench-rebuild` on {cores} cores, load average {load_before} \
         before and {load_after} after (the machine was shared; times are the median of {RUNS} \
         runs after a warm-up, files in the page cache). The image: {which}, an OCI layout with \
         gzip layers; the rebuild changes only its top layer (its files and one more, gzip \
         again: a new diff id, config and manifest). The new layer is {new_bytes} of the \
         rebuild's {total_bytes} layer bytes ({:.2} %).\n",
        share * 100.0
    );
    let _ = writeln!(out, "| scan | wall (s) |\n|---|---:|");
    let _ = writeln!(
        out,
        "| rebuild, no facts cache (`--no-cache`) | {uncached:.2} |"
    );
    let _ = writeln!(
        out,
        "| first image, cold facts cache (walks every layer, fills the cache) | {cold:.2} |"
    );
    let _ = writeln!(
        out,
        "| rebuild, facts cache warm from the first image (walks the top layer only) | {warm:.2} |"
    );
    let _ = writeln!(
        out,
        "\n| goal | measured | |\n|---|---:|---|\n| warm rebuild ÷ cold ≤ new layer's share + 10 % ({:.1} %) | {:.1} % | {} |",
        goal * 100.0,
        ratio * 100.0,
        if ratio <= goal { "met" } else { "**not met**" }
    );
    let _ = writeln!(
        out,
        "\nWhat the warm scan still does: reads the config and the manifest, the header of each \
         layer's entry and then each entry whole (checked by its sha256), walks the new layer, \
         and builds the tree, runs every check and writes the report fresh, as every scan does.\n\
         \nReproduce: `cargo xtask bench-rebuild` (after `cargo xtask bench` or `cargo xtask \
         fixtures`)."
    );
    write_section(root, HEADING, &out)?;
    eprintln!("{out}");
    Ok(())
}

/// Replaces the section under `heading` in `docs/benchmarks.md`, or appends it: other
/// sections are left as they are.
pub(crate) fn write_section(root: &Path, heading: &str, section: &str) -> anyhow::Result<()> {
    let path = root.join("docs/benchmarks.md");
    let existing = fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    let updated = match existing.find(heading) {
        Some(start) => {
            let end = existing[start + 3..]
                .find("\n## ")
                .map_or(existing.len(), |e| start + 3 + e + 1);
            format!("{}{section}\n{}", &existing[..start], &existing[end..])
        }
        None => format!(
            "{}\n{section}",
            existing.trim_end_matches('\n').to_owned() + "\n"
        ),
    };
    fs::write(&path, updated)?;
    Ok(())
}
