//! `cargo xtask dist`: the static release binary, its sha256, and drydock's own image in both
//! forms (OCI layout and docker-archive). The image must get an A from drydock with nothing
//! above info, and the binary must run alone in a chroot of the image: scan a layout, and a
//! registry by the name `localhost` over TLS (name resolution and CA roots of a static binary
//! with nothing from the host).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::registry_support::{Auth, Registry};
use crate::support::{
    RawLayer, TarEntry, is_root, scan_json, sha256, stderr, umoci_unpack, workspace, write_layout,
};

/// `target/dist/` (or `DRYDOCK_DIST`), built by `cargo xtask dist`, which `cargo xtask test`
/// runs before the tests. Outside CI a missing build skips the test; in CI it fails it.
fn dist() -> Option<PathBuf> {
    let dir = std::env::var_os("DRYDOCK_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/dist"));
    let complete = ["drydock", "drydock.sha256", "oci/index.json", ARCHIVE]
        .iter()
        .all(|part| dir.join(part).exists());
    if complete {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is incomplete: CI must build it (`cargo xtask test` runs `cargo xtask dist` before the tests)",
        dir.display()
    );
    eprintln!(
        "skipped: {} is missing; run `cargo xtask dist`",
        dir.display()
    );
    None
}

/// The docker-archive's name under `target/dist/` (xtask/src/dist.rs `DOCKER_ARCHIVE`).
const ARCHIVE: &str = "drydock-image.tar";

fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The layout's one manifest: (tag, manifest, config).
fn layout_image(layout: &Path) -> (String, serde_json::Value, serde_json::Value) {
    let index = json_file(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    let tag = manifests[0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .expect("a tag in index.json")
        .to_owned();
    let blob = |digest: &serde_json::Value| {
        let digest = digest.as_str().unwrap();
        let bytes = fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
        assert_eq!(sha256(&bytes), digest);
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let manifest = blob(&manifests[0]["digest"]);
    let config = blob(&manifest["config"]["digest"]);
    (tag, manifest, config)
}

fn readelf(flag: &str, binary: &Path) -> String {
    let output = Command::new("readelf")
        .args([flag, "--wide"])
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .expect("readelf (Debian package binutils)");
    assert!(
        output.status.success(),
        "readelf {flag}: {}",
        stderr(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_release_binary_is_static_stripped_and_matches_its_sha256() {
    let Some(dir) = dist() else { return };
    let binary = dir.join("drydock");
    let header = readelf("--file-header", &binary);
    assert!(header.contains("X86-64"), "{header}");
    let segments = readelf("--program-headers", &binary);
    assert!(
        !segments
            .lines()
            .any(|l| l.trim_start().starts_with("INTERP")),
        "a program interpreter:\n{segments}"
    );
    let dynamic = readelf("--dynamic", &binary);
    assert!(
        !dynamic.contains("(NEEDED)"),
        "needed libraries:\n{dynamic}"
    );
    let sections = readelf("--section-headers", &binary);
    assert!(
        !sections.contains(" .symtab ") && !sections.contains(" .debug_"),
        "symbols or debug information:\n{sections}"
    );

    let line = fs::read_to_string(dir.join("drydock.sha256")).unwrap();
    let hex = sha256(&fs::read(&binary).unwrap());
    assert_eq!(line, format!("{}  drydock\n", &hex[7..]));
    // coreutils agrees, reading the file the way the docs tell users to.
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "drydock.sha256"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum --check: {}",
        stderr(&check)
    );
}

#[test]
fn drydocks_own_image_gets_an_a_with_nothing_above_info_in_both_forms() {
    let Some(dir) = dist() else { return };
    let layout = dir.join("oci");
    let (tag, manifest, config) = layout_image(&layout);

    // The image as documented in docs/dist.md.
    let settings = &config["config"];
    assert_eq!(settings["User"], "65532:65532");
    assert_eq!(settings["Entrypoint"], serde_json::json!(["/drydock"]));
    assert!(settings["Cmd"].is_array(), "{settings}");
    let labels = &settings["Labels"];
    for label in ["title", "version", "source", "licenses", "created"] {
        let key = format!("org.opencontainers.image.{label}");
        assert!(labels[&key].is_string(), "no {key}: {labels}");
    }
    assert_eq!(labels["org.opencontainers.image.version"], tag.as_str());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert!(
        config["history"][0]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("cargo xtask dist:"),
        "{config}"
    );

    let archive = dir.join(ARCHIVE);
    let sources = [
        format!("oci:{}:{tag}", layout.display()),
        archive.display().to_string(),
    ];
    let mut config_digests = Vec::new();
    for source in &sources {
        let (code, report) = scan_json(&["--no-policy", "--fail-on", "low", source]);
        let above_info: Vec<_> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "info")
            .map(|f| {
                format!(
                    "{} {} {}: {}",
                    f["severity"], f["id"], f["path"], f["message"]
                )
            })
            .collect();
        assert!(
            above_info.is_empty(),
            "{source}: findings above info:\n{}",
            above_info.join("\n")
        );
        assert_eq!(report["grade"], "A", "{source}: {report:#}");
        assert_eq!(code, 0, "{source}: {report:#}");
        config_digests.push(report["image"]["config_digest"].clone());
    }
    let archive_report = scan_json(&[&sources[1]]).1;
    let reference = archive_report["image"]["reference"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reference.ends_with(&format!("drydock:{tag}")),
        "the archive's RepoTags: {reference}"
    );
    // Both forms are the same image, and a third-party reader (skopeo) reads the archive to
    // the config the layout holds.
    assert_eq!(config_digests[0], config_digests[1]);
    assert_eq!(config_digests[0], manifest["config"]["digest"]);
    let inspected = Command::new("skopeo")
        .args(["inspect", "--config", "--raw"])
        .arg(format!("docker-archive:{}", archive.display()))
        .output()
        .expect("skopeo");
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    assert_eq!(sha256(&inspected.stdout), config_digests[0]);
}

/// Runs `/drydock ARGS` in a chroot of `rootfs` as the image's user, with the image's
/// environment (plus the `HOME` a runtime derives from `/etc/passwd`), and nothing else.
fn in_chroot(rootfs: &Path, runtime: &serde_json::Value, args: &[&str]) -> Output {
    let process = &runtime["process"];
    let user = format!(
        "{}:{}",
        process["user"]["uid"].as_u64().unwrap(),
        process["user"]["gid"].as_u64().unwrap()
    );
    let mut command = Command::new("chroot");
    command
        .arg(format!("--userspec={user}"))
        .arg(rootfs)
        .arg("/drydock")
        .args(args)
        .env_clear()
        .env("HOME", "/home/nonroot");
    for pair in process["env"].as_array().unwrap() {
        if let Some((key, value)) = pair.as_str().unwrap().split_once('=') {
            command.env(key, value);
        }
    }
    let output = command.output().expect("chroot");
    assert!(
        !stderr(&output).contains("panicked"),
        "drydock panicked: {}",
        stderr(&output)
    );
    output
}

fn findings(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or_default().to_owned(),
                f["severity"].as_str().unwrap_or_default().to_owned(),
                f["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_binary_runs_alone_in_a_chroot_of_its_image() {
    let Some(dir) = dist() else { return };
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must run the chroot test"
        );
        eprintln!("skipped: chroot needs root");
        return;
    }
    let layout = dir.join("oci");
    let (tag, _, _) = layout_image(&layout);
    let bundle = umoci_unpack(&layout.display().to_string(), &tag);
    let rootfs = bundle.path().join("bundle/rootfs");
    let runtime = json_file(&bundle.path().join("bundle/config.json"));
    assert_eq!(runtime["process"]["user"]["uid"], 65532, "{runtime:#}");
    assert_eq!(
        runtime["process"]["args"],
        serde_json::json!(["/drydock", "--help"])
    );
    // What every runtime bind-mounts into a container.
    fs::write(
        rootfs.join("etc/hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    .unwrap();

    let version = in_chroot(&rootfs, &runtime, &["--version"]);
    assert!(version.status.success(), "{}", stderr(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("drydock {tag}")
    );

    // A small image, scanned inside the chroot and by the binary under test: the same report.
    let work = rootfs.join("work");
    fs::create_dir_all(&work).unwrap();
    let probe = write_layout(
        &work.join("probe"),
        &[RawLayer::gzip(&[
            TarEntry::Dir("etc/"),
            TarEntry::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            TarEntry::File("app", b"#!/bin/sh\necho hello\n"),
        ])],
        &["/app"],
    );
    let (_, host) = scan_json(&["--no-policy", &probe.display().to_string()]);
    let local = in_chroot(
        &rootfs,
        &runtime,
        &["scan", "--no-policy", "--format", "json", "/work/probe"],
    );
    assert!(
        matches!(local.status.code(), Some(0 | 1)),
        "scan in the chroot: {}",
        stderr(&local)
    );
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap();
    assert_eq!(findings(&local), findings(&host));
    assert_eq!(local["score"], host["score"]);

    // The same image from a TLS registry named `localhost`: the static binary resolves the
    // name from /etc/hosts and verifies the certificate with rustls, with nothing from the host.
    let registry = Registry::start(Auth::Anonymous, true);
    registry.push(
        &format!("oci:{}:latest", probe.display()),
        "dist/probe:1",
        &[],
    );
    fs::copy(registry.ca.as_ref().unwrap(), work.join("ca.pem")).unwrap();
    let reference = format!("localhost:{}/dist/probe:1", registry.port);
    let remote = in_chroot(
        &rootfs,
        &runtime,
        &[
            "scan",
            "--no-policy",
            "--format",
            "json",
            "--ca-cert",
            "/work/ca.pem",
            &reference,
        ],
    );
    assert!(
        matches!(remote.status.code(), Some(0 | 1)),
        "scan of {reference} in the chroot: {}",
        stderr(&remote)
    );
    let remote: serde_json::Value = serde_json::from_slice(&remote.stdout).unwrap();
    assert_eq!(findings(&remote), findings(&host));
    // The blob cache went to the nonroot user's home.
    assert!(rootfs.join("home/nonroot/.cache/drydock").is_dir());

    // Without --ca-cert the image's own bundle is loaded and does not trust the test CA: a TLS
    // refusal (exit 3), not a missing bundle and not a name-resolution failure.
    let untrusted = in_chroot(&rootfs, &runtime, &["scan", "--no-cache", &reference]);
    let message = stderr(&untrusted);
    assert_eq!(untrusted.status.code(), Some(3), "{message}");
    assert!(message.contains("TLS"), "{message}");
    assert!(!message.contains("No CA certificates"), "{message}");
}
