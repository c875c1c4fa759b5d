//! `cargo xtask dist`: the release build of drydock and drydock's own image, without a Docker
//! daemon.
//!
//! - The binary is static: glibc linked in (`+crt-static`, a static PIE), so it needs no
//!   loader and no C library in the image. Only the final binary is static: the explicit
//!   `--target` keeps build scripts and proc macros on the host's normal linking. It is built
//!   without debug information and stripped, into its own target directory so that the shared
//!   development build is not invalidated, with the checkout's and cargo's paths remapped so that
//!   the bytes do not depend on where the tree was checked out.
//! - The image is `scratch` plus one layer written here: `/drydock`, the build machine's CA
//!   bundle at `/etc/ssl/certs/ca-certificates.crt` (Debian's `ca-certificates`), `/etc/passwd`
//!   and `/etc/group` with distroless' `nonroot` user (65532), its home, `/etc/nsswitch.conf`
//!   (`files` before `dns`, as distroless ships it) and `/tmp` (1777). It runs as `65532:65532`
//!   with an exec-form entrypoint. Every timestamp is `SOURCE_DATE_EPOCH` (else the time of the
//!   `HEAD` commit, else 0), every owner fixed, every file in a fixed order: the same inputs give
//!   the same digests.
//! - Outputs, under `target/dist/`: `drydock`, `drydock.sha256` (`sha256sum` format), `oci/` (an
//!   OCI layout tagged with the version) and `drydock-image.tar` (a docker-archive that
//!   `docker load` reads, tagged `drydock:<version>`).
//!
//! The freshly built binary then scans its own image: `cargo xtask dist` fails unless the image
//! has no finding above info and a grade of A. `cargo xtask test` only shows that scan and leaves
//! the verdict to `tests/it/dist.rs`, so that the rest of the suite still runs and reports.
//! `docs/dist.md` documents all of it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::blob;
use crate::cmd;

/// The target the release binary is built for (explicit, so that `+crt-static` applies to the
/// binary only and not to build scripts and proc macros).
const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The CA bundle shipped in the image, read from the build machine (Debian's `ca-certificates`).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// distroless' unprivileged user and group.
const NONROOT: u64 = 65532;
/// The file name of the docker-archive under `target/dist/`.
pub const DOCKER_ARCHIVE: &str = "drydock-image.tar";

pub fn default_dir(root: &Path) -> PathBuf {
    root.join("target/dist")
}

/// Builds everything under `target/dist/`; with `gate`, fails unless the image passes its own
/// scan with nothing above info.
pub fn build(root: &Path, gate: bool) -> anyhow::Result<()> {
    for (file, package) in [
        (CA_BUNDLE, "ca-certificates"),
        ("/usr/bin/readelf", "binutils"),
    ] {
        if !Path::new(file).exists() {
            bail!("{file} is missing: install the Debian package {package}");
        }
    }
    let out = default_dir(root);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let built = build_binary(root)?;
    check_static(&built)?;
    let binary_bytes =
        std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let binary = out.join("drydock");
    write_file(&binary, &binary_bytes)?;
    set_mode(&binary, 0o755)?;
    let binary_sha = blob::sha256_hex(&binary_bytes);
    write_file(
        &out.join("drydock.sha256"),
        format!("{binary_sha}  drydock\n").as_bytes(),
    )?;

    let version = cmd::output(Command::new(&binary).arg("--version"))?
        .trim()
        .strip_prefix("drydock ")
        .context("`drydock --version` does not print `drydock VERSION`")?
        .to_owned();
    let epoch = source_date_epoch(root)?;
    let bundle = std::fs::read(CA_BUNDLE).with_context(|| format!("reading {CA_BUNDLE}"))?;
    let bundle_version = cmd::output(Command::new("dpkg-query").args([
        "--show",
        "--showformat=${Version}",
        "ca-certificates",
    ]))
    .map(|v| format!("Debian ca-certificates {}", v.trim()))
    .unwrap_or_else(|_| "the build machine's CA bundle".to_owned());

    let image = Image {
        version: version.clone(),
        epoch,
        binary: binary_bytes,
        binary_sha,
        bundle,
        bundle_version,
        revision: git(root, &["rev-parse", "HEAD"]),
        source: std::env::var("DRYDOCK_SOURCE_URL")
            .ok()
            .or_else(|| git(root, &["remote", "get-url", "origin"]))
            .unwrap_or_else(|| "https://drydock.dev".to_owned()),
    };
    let parts = image.parts()?;
    let layout = out.join("oci");
    write_layout(&layout, &parts, &version)?;
    let archive = out.join(DOCKER_ARCHIVE);
    write_docker_archive(&archive, &parts, &version, epoch)?;

    // The image must pass its own checks: no finding above info, and a grade of A.
    let scanned = cmd::run(
        Command::new(&binary)
            .args(["scan", "--no-policy", "--quiet", "--fail-on", "low"])
            .args(["--min-score", "90"])
            .arg(format!("oci:{}:{version}", layout.display())),
    )
    .context("drydock's own image does not pass drydock");
    if gate {
        scanned?;
    } else if let Err(e) = scanned {
        eprintln!("dist: {e:#} (tests/it/dist.rs will fail)");
    }
    eprintln!(
        "dist: {} ({} bytes, sha256 {}), {} and {} (manifest {})",
        binary.display(),
        parts.binary_len,
        image.binary_sha,
        layout.display(),
        archive.display(),
        parts.manifest_digest
    );
    Ok(())
}

/// `cargo build --release` of the `drydock` binary, static, stripped, in `target/dist-build`.
fn build_binary(root: &Path) -> anyhow::Result<PathBuf> {
    let target_dir = root.join("target/dist-build");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let mut flags = vec![
        "-Ctarget-feature=+crt-static".to_owned(),
        format!("--remap-path-prefix={}=/build/drydock", root.display()),
    ];
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    cmd::run(
        cmd::cargo()
            .args(["build", "--release", "--locked", "--package", "drydock"])
            .args(["--bin", "drydock", "--target", TARGET, "--target-dir"])
            .arg(&target_dir)
            // One way to pass flags, with no surprises from the caller's environment.
            .env_remove("RUSTFLAGS")
            .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols"),
    )?;
    Ok(target_dir.join(TARGET).join("release/drydock"))
}

/// GNU readelf as the judge: no program interpreter, no needed library, no symbol table and
/// no debug sections.
fn check_static(binary: &Path) -> anyhow::Result<()> {
    let readelf = |flag: &str| {
        cmd::output(
            Command::new("readelf")
                .args([flag, "--wide"])
                .arg(binary)
                .env("LC_ALL", "C"),
        )
    };
    let segments = readelf("--program-headers")?;
    if segments
        .lines()
        .any(|line| line.trim_start().starts_with("INTERP"))
    {
        bail!(
            "{} has a program interpreter: it is not static",
            binary.display()
        );
    }
    let dynamic = readelf("--dynamic")?;
    if let Some(line) = dynamic.lines().find(|line| line.contains("(NEEDED)")) {
        bail!(
            "{} needs a shared library: {}",
            binary.display(),
            line.trim()
        );
    }
    let sections = readelf("--section-headers")?;
    if let Some(line) = sections
        .lines()
        .find(|line| line.contains(" .symtab ") || line.contains(" .debug_"))
    {
        bail!("{} is not stripped: {}", binary.display(), line.trim());
    }
    Ok(())
}

/// `SOURCE_DATE_EPOCH`, else the time of the `HEAD` commit, else 0.
fn source_date_epoch(root: &Path) -> anyhow::Result<u64> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={value} is not a number of seconds"));
    }
    Ok(git(root, &["log", "-1", "--format=%ct"])
        .and_then(|time| time.parse().ok())
        .unwrap_or(0))
}

/// A read-only git query, `None` when git or the repository is not there.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// The inputs of the image.
struct Image {
    version: String,
    epoch: u64,
    binary: Vec<u8>,
    binary_sha: String,
    bundle: Vec<u8>,
    bundle_version: String,
    revision: Option<String>,
    source: String,
}

/// The image's blobs.
struct Parts {
    /// The layer as an uncompressed tar (its digest is the diff id).
    layer_tar: Vec<u8>,
    layer_gzip: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
    manifest_digest: String,
    binary_len: usize,
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";
const NSSWITCH: &str = "hosts: files dns\n";

impl Image {
    fn parts(&self) -> anyhow::Result<Parts> {
        let layer_tar = self.layer()?;
        let layer_gzip = blob::gzip(&layer_tar, flate2::Compression::best())?;
        let created = rfc3339(self.epoch);
        let mut labels = serde_json::Map::new();
        for (key, value) in [
            ("org.opencontainers.image.title", "drydock"),
            (
                "org.opencontainers.image.description",
                "Inspect a built container image before it ships: will it start, and is it lean and clean?",
            ),
            ("org.opencontainers.image.version", &self.version),
            ("org.opencontainers.image.source", &self.source),
            ("org.opencontainers.image.licenses", "MIT OR Apache-2.0"),
            ("org.opencontainers.image.created", &created),
        ] {
            labels.insert(key.to_owned(), value.into());
        }
        if let Some(revision) = &self.revision {
            labels.insert(
                "org.opencontainers.image.revision".to_owned(),
                revision.as_str().into(),
            );
        }
        let created_by = format!(
            "cargo xtask dist: /drydock (drydock {}, static and stripped, sha256 {}), \
             /etc/ssl/certs/ca-certificates.crt ({}), /etc/passwd, /etc/group and \
             /home/nonroot (nonroot 65532), /etc/nsswitch.conf, /tmp (1777)",
            self.version, self.binary_sha, self.bundle_version
        );
        let config = serde_json::json!({
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": format!("{NONROOT}:{NONROOT}"),
                "Env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    format!("SSL_CERT_FILE={CA_BUNDLE}"),
                ],
                "Entrypoint": ["/drydock"],
                "Cmd": ["--help"],
                "WorkingDir": "/home/nonroot",
                "Labels": labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [blob::digest(&layer_tar)]},
            "history": [{
                "created": created,
                "created_by": created_by,
                "comment": "scratch, plus one layer written by xtask/src/dist.rs",
            }],
        });
        let config = serde_json::to_vec(&config)?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": blob::digest(&config),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": blob::digest(&layer_gzip),
                "size": layer_gzip.len(),
            }],
        }))?;
        Ok(Parts {
            manifest_digest: blob::digest(&manifest),
            layer_tar,
            layer_gzip,
            config,
            manifest,
            binary_len: self.binary.len(),
        })
    }

    /// The one layer, every entry owned by root (but the user's home), stamped with the epoch.
    fn layer(&self) -> anyhow::Result<Vec<u8>> {
        let mut tar = Tar::new(self.epoch);
        tar.dir("etc/", 0o755, 0)?;
        tar.file("etc/group", GROUP.as_bytes(), 0o644)?;
        tar.file("etc/nsswitch.conf", NSSWITCH.as_bytes(), 0o644)?;
        tar.file("etc/passwd", PASSWD.as_bytes(), 0o644)?;
        tar.dir("etc/ssl/", 0o755, 0)?;
        tar.dir("etc/ssl/certs/", 0o755, 0)?;
        tar.file("etc/ssl/certs/ca-certificates.crt", &self.bundle, 0o644)?;
        tar.dir("home/", 0o755, 0)?;
        tar.dir("home/nonroot/", 0o700, NONROOT)?;
        tar.dir("tmp/", 0o1777, 0)?;
        tar.file("drydock", &self.binary, 0o755)?;
        tar.finish()
    }
}

/// A tar written entry by entry with fixed metadata (ustar headers, no user or group names).
struct Tar {
    builder: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl Tar {
    fn new(mtime: u64) -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
            mtime,
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, owner: u64, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_mtime(self.mtime);
        header.set_size(size);
        header
    }

    fn dir(&mut self, path: &str, mode: u32, owner: u64) -> anyhow::Result<()> {
        let mut header = self.header(tar::EntryType::Directory, mode, owner, 0);
        self.builder
            .append_data(&mut header, path, std::io::empty())
            .with_context(|| format!("adding {path}"))
    }

    fn file(&mut self, path: &str, data: &[u8], mode: u32) -> anyhow::Result<()> {
        let mut header = self.header(tar::EntryType::Regular, mode, 0, data.len() as u64);
        self.builder
            .append_data(&mut header, path, data)
            .with_context(|| format!("adding {path}"))
    }

    fn finish(self) -> anyhow::Result<Vec<u8>> {
        Ok(self.builder.into_inner()?)
    }
}

/// The OCI layout: written afresh (no stale blobs), tagged with the version.
fn write_layout(dir: &Path, parts: &Parts, version: &str) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    for bytes in [&parts.layer_gzip, &parts.config, &parts.manifest] {
        write_file(&blobs.join(blob::sha256_hex(bytes)), bytes)?;
    }
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    blob::write_index_json(
        dir,
        &[serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": parts.manifest_digest,
            "size": parts.manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": version},
        })],
    )
}

/// The docker-archive `docker save` writes (and `docker load` reads): `manifest.json`, the
/// config as `<hex>.json`, the layer uncompressed as `<diff id hex>/layer.tar`.
fn write_docker_archive(
    path: &Path,
    parts: &Parts,
    version: &str,
    epoch: u64,
) -> anyhow::Result<()> {
    let config_name = format!("{}.json", blob::sha256_hex(&parts.config));
    let layer_dir = blob::sha256_hex(&parts.layer_tar);
    let layer_name = format!("{layer_dir}/layer.tar");
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [format!("drydock:{version}")],
        "Layers": [layer_name],
    }]))?;
    let mut tar = Tar::new(epoch);
    tar.file(&config_name, &parts.config, 0o644)?;
    tar.dir(&format!("{layer_dir}/"), 0o755, 0)?;
    tar.file(&layer_name, &parts.layer_tar, 0o644)?;
    tar.file("manifest.json", &manifest, 0o644)?;
    write_file(path, &tar.finish()?)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// Seconds since the epoch as RFC 3339 in UTC (the civil calendar from days, after Howard
/// Hinnant's algorithm).
fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let seconds = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_date() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_049_929), "2026-11-30T14:45:29Z");
    }

    #[test]
    fn the_layer_is_reproducible_and_has_what_the_image_needs() {
        let image = Image {
            version: "0.0.0".into(),
            epoch: 1,
            binary: b"\x7fELF".to_vec(),
            binary_sha: "00".into(),
            bundle: b"bundle".to_vec(),
            bundle_version: "test".into(),
            revision: None,
            source: "https://example.invalid".into(),
        };
        let (Ok(first), Ok(second)) = (image.parts(), image.parts()) else {
            panic!("building the image failed");
        };
        assert_eq!(first.manifest_digest, second.manifest_digest);
        assert_eq!(first.layer_gzip, second.layer_gzip);
        let mut archive = tar::Archive::new(first.layer_tar.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let header = entry.header();
            seen.push((
                entry.path().expect("path").display().to_string(),
                header.mode().expect("mode"),
                header.uid().expect("uid"),
                header.mtime().expect("mtime"),
            ));
        }
        assert!(seen.contains(&("tmp/".into(), 0o1777, 0, 1)), "{seen:?}");
        assert!(seen.contains(&("drydock".into(), 0o755, 0, 1)), "{seen:?}");
        assert!(
            seen.contains(&("home/nonroot/".into(), 0o700, NONROOT, 1)),
            "{seen:?}"
        );
    }
}
