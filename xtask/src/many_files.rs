//! `bench-files`: synthetic many-small-files images, the shape of a Node or Python application
//! layer, and the peak memory of a scan of each (issue #18).
//!
//! The image is a one-layer docker-archive whose uncompressed layer holds `N` files of 100
//! bytes in a `node_modules`-like tree: `app/node_modules/gNNN/pkg-NNNNN/lib/sK/fileI.js`,
//! 50 files per package in 5 sub-directories, 100 packages per group, every directory with
//! its own tar entry. Everything (names, bytes, times, owners) follows from `N`, so the same
//! `N` gives the same bytes and the same digests.

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

/// Peak RSS (KiB) and wall time of one scan under `/usr/bin/time -v`.
fn measure(binary: &Path, image: &Path) -> anyhow::Result<(u64, String)> {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(binary)
        .args(["scan", "--quiet", "--format", "json", "--fail-on", "none"])
        .arg(image)
        .output()
        .context("running /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("scan of {} failed: {stderr}", image.display());
    }
    let field = |name: &str| {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let rss = field("Maximum resident set size (kbytes):")
        .context("max RSS")?
        .parse()?;
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):").context("wall time")?;
    Ok((rss, wall))
}

/// `cargo xtask bench-files [--files N]... [--build-only]`.
pub fn run_bench(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let mut build_only = false;
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
            other => bail!("unknown argument `{other}`"),
        }
    }
    if sizes.is_empty() {
        sizes.extend(DEFAULT_FILES);
    }
    let dir = root.join("target/bench");
    if !build_only {
        run(cargo().args(["build", "--release", "--locked"]))?;
    }
    let binary = root.join("target/release/drydock");
    if !build_only {
        println!("| files | entries | archive (MB) | peak RSS (MiB) | bytes per entry | wall |");
        println!("|---:|---:|---:|---:|---:|---:|");
    }
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
        let (rss, wall) = measure(&binary, &image)?;
        println!(
            "| {files} | {entries} | {:.0} | {:.1} | {:.0} | {wall} |",
            bytes as f64 / 1e6,
            rss as f64 / 1024.0,
            (rss * 1024) as f64 / entries as f64,
        );
    }
    Ok(())
}
