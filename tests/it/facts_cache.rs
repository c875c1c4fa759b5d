//! The layer facts cache (`--cache-dir`, `facts/`): a damaged entry is noticed and ignored,
//! the layer walked again and the entry rewritten; a secret's value never reaches the cache.
//! (That the reports with and without the cache are the same on every fixture is in
//! `differential.rs`.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{drydock, fixture};

fn scan(image: &str, cache: Option<&Path>) -> Output {
    let mut command = drydock();
    command
        .args(["scan", "--quiet", "--format", "json", image])
        .env_remove("DRYDOCK_CACHE_DIR")
        .env_remove("DRYDOCK_SEQUENTIAL");
    match cache {
        Some(dir) => command.arg("--cache-dir").arg(dir),
        None => command.arg("--no-cache"),
    };
    let output = command.output().expect("running drydock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "drydock panicked: {stderr}");
    output
}

/// The report as JSON without `scanned_at`.
fn report(output: &Output) -> serde_json::Value {
    let mut report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report.as_object_mut().unwrap().remove("scanned_at");
    report
}

/// Every entry of the facts cache, sorted.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for version in fs::read_dir(cache.join("facts")).unwrap().flatten() {
        for entry in fs::read_dir(version.path().join("sha256"))
            .unwrap()
            .flatten()
        {
            found.push(entry.path());
        }
    }
    found.sort();
    found
}

#[test]
fn a_damaged_entry_is_ignored_the_layer_walked_again_and_the_entry_rewritten() {
    let image = fixture("debian-go/oci");
    let uncached = scan(&image, None);
    assert!(uncached.status.success() || uncached.status.code() == Some(1));
    let cache = tempfile::tempdir().unwrap();
    let cold = scan(&image, Some(cache.path()));
    assert_eq!(report(&cold), report(&uncached));
    let files = entries(cache.path());
    assert_eq!(files.len(), 4, "one entry per layer: {files:?}");
    let good: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();

    // One byte flipped in the middle of one entry, another cut short, a third emptied, and a
    // fourth replaced by another layer's entry: none is believed.
    let mut flipped = good[0].clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    fs::write(&files[0], &flipped).unwrap();
    fs::write(&files[1], &good[1][..good[1].len() - 7]).unwrap();
    fs::write(&files[2], b"").unwrap();
    fs::write(&files[3], &good[0]).unwrap();
    let warm = scan(&image, Some(cache.path()));
    assert_eq!(warm.status.code(), uncached.status.code());
    assert_eq!(report(&warm), report(&uncached));
    let rewritten: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    assert!(rewritten == good, "every damaged entry was written again");

    // Intact, they are used, with the same report.
    let again = scan(&image, Some(cache.path()));
    assert_eq!(report(&again), report(&uncached));
}

/// The secret values of the `secrets` fixture's files (deleted ones too), read from every
/// layer with GNU tar: the `.env` token, the git and AWS credentials, and the lines of the
/// private key's body.
fn planted_file_values(layout: &str) -> Vec<String> {
    let read_json = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&fs::read(format!("{layout}/blobs/sha256/{hex}")).unwrap()).unwrap()
    };
    let index = read_json_file(&format!("{layout}/index.json"));
    let manifest = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut values = Vec::new();
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let out = dir.path().join(i.to_string());
        fs::create_dir_all(&out).unwrap();
        let status = Command::new("tar")
            .arg("-xf")
            .arg(format!("{layout}/blobs/sha256/{hex}"))
            .arg("-C")
            .arg(&out)
            .arg("--exclude=.wh.*")
            .status()
            .unwrap();
        assert!(status.success());
        let read = |path: &str| fs::read_to_string(out.join(path)).ok();
        if let Some(env) = read("app/.env") {
            values.extend(
                env.lines()
                    .filter_map(|l| l.strip_prefix("API_TOKEN="))
                    .map(str::to_owned),
            );
        }
        if let Some(git) = read("root/.git-credentials") {
            let password = git.split("ci:").nth(1).unwrap().split('@').next().unwrap();
            values.push(password.to_owned());
        }
        if let Some(aws) = read("root/.aws/credentials") {
            values.extend(aws.lines().filter_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "aws_secret_access_key").then(|| value.trim().to_owned())
            }));
        }
        if let Some(key) = read("root/.ssh/id_ed25519") {
            values.extend(
                key.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                    .map(str::to_owned),
            );
        }
    }
    assert!(values.len() >= 4, "{values:?}");
    values
}

fn read_json_file(path: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_secret_value_never_reaches_the_facts_cache() {
    let layout = fixture("secrets/oci");
    let cache = tempfile::tempdir().unwrap();
    let uncached = scan(&layout, None);
    let cold = scan(&layout, Some(cache.path()));
    let warm = scan(&layout, Some(cache.path()));
    assert_eq!(report(&cold), report(&uncached));
    assert_eq!(report(&warm), report(&uncached));
    let files = entries(cache.path());
    assert!(!files.is_empty());
    let cached: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let contains = |needle: &[u8]| {
        cached
            .iter()
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    };
    // The secrets are in the cache as kinds and places...
    assert!(contains(b".env credentials"));
    assert!(contains(b"API_TOKEN"));
    // ...never as values, nor as a private key's block.
    for value in planted_file_values(&layout) {
        assert!(value.len() >= 8, "{value:?}");
        assert!(
            !contains(value.as_bytes()),
            "a secret value is in the cache"
        );
    }
    assert!(!contains(b"PRIVATE KEY-----"));
}
