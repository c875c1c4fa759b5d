//! Secrets in files of any layer and in the config, found without ever printing a value.

use std::process::Command;

use crate::support::{fixture, run, scan_json, stdout};

fn secret_findings(report: &serde_json::Value) -> Vec<(String, Option<String>)> {
    let mut found: Vec<(String, Option<String>)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("secret."))
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["path"].as_str().map(str::to_owned),
            )
        })
        .collect();
    found.sort();
    found
}

/// The secret values the fixture holds, read with other tools: umoci for files, the config
/// JSON for Env and history.
fn planted_values(layout: &str) -> Vec<String> {
    let read = |digest: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(format!(
                "{layout}/blobs/sha256/{}",
                digest.trim_start_matches("sha256:")
            ))
            .unwrap(),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{layout}/index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    let mut values = Vec::new();
    for env in config["config"]["Env"].as_array().unwrap() {
        if let Some(value) = env.as_str().unwrap().strip_prefix("AWS_SECRET_ACCESS_KEY=") {
            values.push(value.to_owned());
        }
    }
    for entry in config["history"].as_array().unwrap() {
        let line = entry["created_by"].as_str().unwrap_or("");
        if let Some(rest) = line.split("GITHUB_TOKEN=").nth(1) {
            values.push(rest.split_whitespace().next().unwrap().to_owned());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    assert!(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{layout}:latest")])
            .arg(&bundle)
            .output()
            .unwrap()
            .status
            .success()
    );
    let env = std::fs::read_to_string(bundle.join("rootfs/app/.env")).unwrap();
    values.push(
        env.lines()
            .find_map(|l| l.strip_prefix("API_TOKEN="))
            .unwrap()
            .to_owned(),
    );
    let git = std::fs::read_to_string(bundle.join("rootfs/root/.git-credentials")).unwrap();
    values.push(
        git.split("ci:")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_owned(),
    );
    assert_eq!(values.len(), 4, "{values:?}");
    values
}

#[test]
fn secrets_are_found_in_every_layer_and_never_printed() {
    let layout = fixture("secrets/oci");
    let (_, report) = scan_json(&[&layout]);
    let expected: Vec<(String, Option<String>)> = vec![
        ("secret.config".into(), None),
        ("secret.config".into(), None),
        ("secret.file".into(), Some("/app/.env".into())),
        ("secret.file".into(), Some("/root/.aws/credentials".into())),
        ("secret.file".into(), Some("/root/.git-credentials".into())),
        ("secret.file".into(), Some("/root/.ssh/id_ed25519".into())),
    ];
    assert_eq!(secret_findings(&report), expected);
    let deleted = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/root/.ssh/id_ed25519")
        .unwrap();
    assert!(
        deleted["message"]
            .as_str()
            .unwrap()
            .contains("still extractable from layer 1"),
        "{deleted}"
    );
    assert!(
        deleted["remediation"]
            .as_str()
            .unwrap()
            .contains("--mount=type=secret")
    );

    let outputs = [
        String::from_utf8_lossy(&run(&["scan", "--format", "json", &layout]).stdout).into_owned(),
        stdout(&run(&["scan", "--color", "never", &layout])),
        stdout(&run(&["tree", "--format", "json", &layout])),
        stdout(&run(&["inspect", "--format", "json", &layout, "/app/.env"])),
    ];
    for value in planted_values(&layout) {
        for output in &outputs {
            assert!(!output.contains(&value), "a secret value was printed");
        }
    }
}

#[test]
fn look_alikes_are_not_secrets() {
    // .env.example, placeholders, ${VAR} references, an empty ENV, public certificates, and a
    // private key that is a language package's test data.
    let (_, report) = scan_json(&[&fixture("secrets-lookalike/oci")]);
    assert_eq!(secret_findings(&report), vec![]);
}
