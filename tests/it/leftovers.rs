//! What a build leaves behind: toolchains, sources, wasted bytes (against dive), privileged files.

use crate::support::{fixture, scan_json};

fn findings<'a>(report: &'a serde_json::Value, id: &str) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == id)
        .collect()
}

#[test]
fn wasted_bytes_and_efficiency_agree_with_dive() {
    for image in [
        "layers-edge/docker.tar",
        "debian-go/docker.tar",
        "static-go/docker.tar",
    ] {
        let archive = fixture(image);
        let (efficiency, wasted, user) = crate::support::dive_ci(&archive);
        let (_, report) = scan_json(&[&archive]);
        let ours = &report["image"];
        assert_eq!(
            ours["wasted_bytes"].as_u64().unwrap(),
            wasted,
            "{image}: wasted bytes"
        );
        assert!(
            (ours["efficiency"].as_f64().unwrap() * 100.0 - efficiency).abs() < 1e-3,
            "{image}: efficiency {efficiency}"
        );
        assert!(
            (ours["user_wasted_percent"].as_f64().unwrap() - user).abs() < 1e-3,
            "{image}: user wasted {user}"
        );
    }
    let (_, report) = scan_json(&[&fixture("debian-go/oci")]);
    let wasted = findings(&report, "layers.wasted");
    assert_eq!(wasted.len(), 1);
    assert_eq!(
        wasted[0]["severity"], "medium",
        "over 10 % of the layers above the base"
    );
    assert!(
        wasted[0]["message"]
            .as_str()
            .unwrap()
            .contains("/var/cache/apt/archives/"),
        "{}",
        wasted[0]
    );
    let (_, healthy) = scan_json(&[&fixture("static-go/oci")]);
    assert!(findings(&healthy, "layers.wasted").is_empty());
}

#[test]
fn toolchains_sources_and_privileged_files() {
    let (_, report) = scan_json(&[&fixture("debian-go/oci")]);
    let toolchain = findings(&report, "build.toolchain");
    let go = toolchain
        .iter()
        .find(|f| {
            f["message"]
                .as_str()
                .unwrap()
                .contains("the Go distribution")
        })
        .expect("the Go toolchain");
    assert_eq!(go["severity"], "medium", "over 100 MiB");
    assert!(
        go["message"]
            .as_str()
            .unwrap()
            .contains("COPY --from=golang /usr/local/go"),
        "{go}"
    );
    // Go's testdata holds foreign-architecture and debug ELF files on purpose: not findings.
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["path"].as_str().unwrap_or("").contains("/testdata/"))
    );

    let (_, report) = scan_json(&[&fixture("source-leak/oci")]);
    let source = findings(&report, "build.source");
    assert_eq!(source.len(), 1, "{source:?}");
    assert_eq!(source[0]["path"], "/app");
    assert!(
        source[0]["message"]
            .as_str()
            .unwrap()
            .contains("4 source or build files"),
        "{}",
        source[0]
    );
    let caches = findings(&report, "build.toolchain");
    assert!(
        caches.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("node_modules build cache")),
        "{caches:?}"
    );
    let setuid = findings(&report, "fs.setuid");
    assert_eq!(setuid.len(), 1);
    assert_eq!(setuid[0]["severity"], "low", "world-writable");

    let (_, healthy) = scan_json(&[&fixture("static-go/oci")]);
    for id in ["build.toolchain", "build.source", "fs.setuid"] {
        assert!(findings(&healthy, id).is_empty(), "{id}");
    }
    let (_, debian) = scan_json(&[&fixture("debian/oci")]);
    let passwd = findings(&debian, "fs.setuid")
        .into_iter()
        .find(|f| f["path"] == "/usr/bin/passwd")
        .expect("passwd is setuid");
    assert_eq!(passwd["severity"], "info");
}
