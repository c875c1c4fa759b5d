//! Scanning by reference, against the real distribution registry on loopback.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::registry_support::{
    Auth, Fault, PASSWORD, Proxy, REFRESH_TOKEN, Registry, USER, isolated,
};
use crate::support::{fixture, scan_json};

/// Runs `drydock scan --format json` with an isolated HOME and cache, and optional stdin.
fn scan(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> (Output, tempfile::TempDir) {
    let mut full = vec!["scan", "--format", "json"];
    full.extend_from_slice(args);
    isolated(&full, env, stdin)
}

fn report(output: &Output) -> serde_json::Value {
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "scan failed ({code:?}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn oci(layout: &str, tag: &str) -> String {
    format!("oci:{}:{tag}", fixture(layout))
}

/// The parts of a report that must not depend on where the image was read from.
fn essence(report: &serde_json::Value) -> serde_json::Value {
    let layers: Vec<_> = report["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].clone())
        .collect();
    serde_json::json!({
        "config": report["image"]["config_digest"],
        "platform": report["image"]["platform"],
        "diff_ids": layers,
        "findings": report["findings"],
        "score": report["score"],
    })
}

#[test]
fn anonymous_pull_gives_the_same_report_as_the_archive() {
    let registry = Registry::start(Auth::Anonymous, false);
    let reference = registry.push(
        &oci("glibc-on-musl/oci", "latest"),
        "team/glibc-on-musl:1.0",
        &[],
    );
    let (output, _home) = scan(&[&reference], &[], None);
    assert_eq!(output.status.code(), Some(1));
    let remote = report(&output);
    let (_, local) = scan_json(&[&fixture("glibc-on-musl/docker.tar")]);
    assert_eq!(essence(&remote), essence(&local));
    assert_eq!(
        remote["image"]["source"].as_str().unwrap(),
        format!("docker://{reference}")
    );
    assert_eq!(remote["image"]["reference"].as_str().unwrap(), reference);
    let manifest = remote["image"]["manifest_digest"]
        .as_str()
        .unwrap()
        .to_owned();

    // By digest, and by tag and digest together; a wrong digest is refused.
    let by_digest = format!("{}/team/glibc-on-musl@{manifest}", registry.host());
    let (output, _home) = scan(&[&by_digest], &[], None);
    assert_eq!(essence(&report(&output)), essence(&local));
    let (output, _home) = scan(&[&format!("docker://{reference}@{manifest}")], &[], None);
    assert_eq!(essence(&report(&output)), essence(&local));
    let wrong = format!(
        "{}/team/glibc-on-musl@sha256:{}",
        registry.host(),
        "0".repeat(64)
    );
    let (output, _home) = scan(&[&wrong], &[], None);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("not found"), "{}", stderr(&output));
}

#[test]
fn invalid_references_say_what_is_wrong() {
    let (output, _home) = scan(&["Team/App:1"], &[], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("lowercase"), "{}", stderr(&output));
    let (output, _home) = scan(&["docker://app@sha256:123"], &[], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("64"), "{}", stderr(&output));
}

#[test]
fn basic_auth_from_the_command_line_and_docker_config() {
    let registry = Registry::start(Auth::Htpasswd, false);
    let reference = registry.push(&oci("musl-hello/oci", "latest"), "private/app:2", &[]);

    let (output, _home) = scan(&[&reference], &[], None);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("user name and password"),
        "{}",
        stderr(&output)
    );

    let (output, _home) = scan(
        &[&reference, "--username", USER, "--password-stdin"],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(report(&output)["passed"], true);

    let (output, _home) = scan(
        &[&reference, "--username", USER, "--password-stdin"],
        &[],
        Some("wrong-password\n"),
    );
    assert_eq!(output.status.code(), Some(3));
    assert!(!stderr(&output).contains("wrong-password"));

    let config = tempfile::tempdir().unwrap();
    let auth = base64_encode(&format!("{USER}:{PASSWORD}"));
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"auths": {{"http://{}": {{"auth": "{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let (output, _home) = scan(
        &[&reference],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
        None,
    );
    report(&output);
    for channel in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(channel);
        assert!(
            !text.contains(PASSWORD) && !text.contains(&auth),
            "a secret leaked"
        );
    }

    // The podman/skopeo auth file, named by REGISTRY_AUTH_FILE.
    let file = config.path().join("auth.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let (output, _home) = scan(
        &[&reference],
        &[("REGISTRY_AUTH_FILE", file.to_str().unwrap())],
        None,
    );
    report(&output);
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn bearer_tokens_from_a_token_service_the_registry_trusts() {
    let registry = Registry::start(
        Auth::Token {
            anonymous_pull: false,
        },
        false,
    );
    let reference = registry.push(&oci("static-go/oci", "latest"), "svc/api:3", &[]);
    let issuer = registry.issuer.as_ref().unwrap();

    // No credential: the token service refuses, and so does the scan.
    let (output, _home) = scan(&[&reference], &[], None);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));

    // At the highest verbosity, everything is logged but credentials: not the password, not
    // the basic header, not the issued token (a JWT).
    let (output, _home) = scan(
        &[&reference, "--username", USER, "--password-stdin", "-vvv"],
        &[],
        Some(PASSWORD),
    );
    assert_eq!(report(&output)["image"]["platform"], "linux/amd64");
    let logs = stderr(&output);
    assert!(logs.contains("token authentication"), "{logs}");
    assert!(logs.contains("200 OK"), "{logs}");
    for secret in [
        PASSWORD.to_owned(),
        base64_encode(&format!("{USER}:{PASSWORD}")),
        "eyJ".to_owned(),
    ] {
        assert!(
            !logs.contains(&secret),
            "the logs show a credential: {secret}"
        );
    }
    let requests = issuer.requests.lock().unwrap().clone();
    let pulls: Vec<_> = requests
        .iter()
        .filter(|(m, t, basic, _)| {
            m == "GET" && *basic && t.ends_with("scope=repository%3Asvc%2Fapi%3Apull")
        })
        .collect();
    assert_eq!(
        pulls.len(),
        1,
        "one token, reused for every request of the scan: {requests:?}"
    );

    // An identity token in docker's config is exchanged at the token service (OAuth2 refresh),
    // never sent to the registry: the registry only accepts the issuer's JWTs.
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "", "identitytoken": "{REFRESH_TOKEN}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let before = issuer.requests.lock().unwrap().len();
    let (output, _home) = scan(
        &[&reference],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
        None,
    );
    report(&output);
    let requests = issuer.requests.lock().unwrap()[before..].to_vec();
    assert!(
        requests
            .iter()
            .any(|(m, _, _, body)| m == "POST" && body.contains("grant_type=refresh_token")),
        "{requests:?}"
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains(REFRESH_TOKEN));
}

#[test]
fn a_credential_helper_is_asked() {
    let registry = Registry::start(Auth::Htpasswd, false);
    let reference = registry.push(&oci("musl-hello/oci", "latest"), "helped/app:1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-drydocktest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread server\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"credHelpers": {{"{}": "drydocktest"}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (output, _home) = scan(
        &[&reference],
        &[
            ("DOCKER_CONFIG", dir.path().to_str().unwrap()),
            ("PATH", &path),
        ],
        None,
    );
    report(&output);
}

#[test]
fn tls_with_a_private_ca() {
    let registry = Registry::start(Auth::Anonymous, true);
    let target = format!("{}/tls/app:1", registry.host());
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--insecure-policy",
            "--dest-tls-verify=false",
        ])
        .arg(oci("musl-hello/oci", "latest"))
        .arg(format!("docker://{target}"))
        .status()
        .unwrap();
    assert!(status.success());
    let (output, _home) = scan(&[&target], &[], None);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.contains("TLS") && message.contains("--ca-cert"),
        "{message}"
    );
    // Said once, by drydock: not also by the TLS library's own log line.
    assert!(
        !message.contains("failed to verify TLS certificate"),
        "{message}"
    );
    let ca = registry.ca.as_ref().unwrap().to_str().unwrap().to_owned();
    let (output, _home) = scan(&[&target, "--ca-cert", &ca], &[], None);
    assert_eq!(report(&output)["passed"], true);
}

#[test]
fn platforms_from_an_oci_index_and_a_docker_manifest_list() {
    let registry = Registry::start(Auth::Anonymous, false);
    let layout = fixture("platforms/oci");
    let oci_ref = registry.push(&format!("oci:{layout}:latest"), "multi/oci:1", &["--all"]);
    let docker_ref = registry.push(
        &format!("oci:{layout}:latest"),
        "multi/docker:1",
        &["--all", "--format", "v2s2"],
    );
    for reference in [&oci_ref, &docker_ref] {
        let (output, _home) = scan(&[reference, "--platform", "linux/arm64"], &[], None);
        assert_eq!(
            report(&output)["image"]["platform"],
            "linux/arm64",
            "{reference}"
        );
        let (output, _home) = scan(&[reference, "--platform", "linux/amd64"], &[], None);
        assert_eq!(
            report(&output)["image"]["platform"],
            "linux/amd64",
            "{reference}"
        );
        let (output, _home) = scan(&[reference, "--platform", "linux/riscv64"], &[], None);
        assert_eq!(output.status.code(), Some(2), "{reference}");
    }
}

#[test]
fn zstd_layers_by_reference() {
    let registry = Registry::start(Auth::Anonymous, false);
    let reference = registry.push(&oci("static-go/zstd", "latest"), "z/app:1", &[]);
    let (output, _home) = scan(&[&reference], &[], None);
    let remote = report(&output);
    let (_, local) = scan_json(&[&fixture("static-go/oci")]);
    assert_eq!(essence(&remote), essence(&local));
}

#[test]
fn faults_are_survived_or_named() {
    let registry = Registry::start(Auth::Htpasswd, false);
    let reference = registry.push(&oci("static-go/oci", "latest"), "flaky/app:1", &[]);
    let proxy = Proxy::start(registry.port);
    let through = reference.replace(&registry.host(), &proxy.host());
    let creds = ["--username", USER, "--password-stdin", "--no-cache"];
    let run = |extra: &[&str]| {
        let mut args = vec![through.as_str()];
        args.extend_from_slice(&creds);
        args.extend_from_slice(extra);
        scan(&args, &[], Some(PASSWORD)).0
    };
    let (_, local) = scan_json(&[&fixture("static-go/oci")]);

    // A connection cut in the middle of a blob: resumed with a Range request.
    proxy.add(Fault::CutBlob(300_000));
    let output = run(&[]);
    assert_eq!(essence(&report(&output)), essence(&local));
    assert!(proxy.seen.lock().unwrap().iter().any(|(_, _, range)| {
        range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=300000-"))
    }));

    // 503, then success; 429 with Retry-After, then success.
    proxy.add(Fault::Unavailable);
    report(&run(&[]));
    proxy.add(Fault::TooMany);
    report(&run(&[]));

    // A blob that does not match its digest.
    proxy.add(Fault::CorruptBlobs);
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("digest mismatch"),
        "{}",
        stderr(&output)
    );
    proxy.faults.lock().unwrap().clear();

    // Blobs redirected to storage on another host: the registry credential must not follow.
    proxy.add(Fault::RedirectBlobs);
    let output = run(&[]);
    assert_eq!(essence(&report(&output)), essence(&local));
    assert!(
        *proxy.storage_requests.lock().unwrap() >= 2,
        "the blobs came from the storage"
    );
    assert!(
        proxy.leaked.lock().unwrap().is_empty(),
        "Authorization reached another host"
    );
}

#[test]
fn every_layer_downloads_at_once_into_the_cache() {
    let registry = Registry::start(Auth::Anonymous, false);
    let reference = registry.push(&oci("layers-edge/oci", "latest"), "ahead/app:1", &[]);
    let proxy = Proxy::start(registry.port);
    // A slow link: each blob answer starts 400 ms late, so downloads that overlap are seen.
    proxy.add(Fault::SlowBlobs(std::time::Duration::from_millis(400)));
    let through = reference.replace(&registry.host(), &proxy.host());
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    // Two walkers for three layers: the third is fetched ahead, not left waiting for one.
    let walkers = [("RAYON_NUM_THREADS", "2")];
    let (output, _home) = scan(&[&through, "--cache-dir", cache_dir], &walkers, None);
    let (_, local) = scan_json(&[&fixture("layers-edge/oci")]);
    assert_eq!(essence(&report(&output)), essence(&local));
    assert_eq!(
        proxy.most_blobs_at_once(),
        3,
        "the three layers were downloading at once"
    );
    // Each blob was downloaded once (the walker of the fetched layer read the cache's copy as
    // it arrived), and the cache holds every one of them, verified.
    let downloads = proxy.blob_gets();
    assert_eq!(downloads, 4, "the config and three layers, once each");
    let blobs = cache.path().join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        assert!(
            !name.starts_with(".tmp"),
            "a temporary file was left: {name}"
        );
        let bytes = std::fs::read(entry.path()).unwrap();
        let digest: String = <sha2::Sha256 as sha2::Digest>::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, name, "a cached blob matches its name");
    }
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 4);
    // Read again without the facts cache: every layer comes from the blob cache.
    let (again, _home) = scan(
        &[&through, "--cache-dir", cache_dir, "--no-facts-cache"],
        &walkers,
        None,
    );
    assert_eq!(essence(&report(&again)), essence(&local));
    assert_eq!(proxy.blob_gets(), downloads);
}

#[test]
fn the_blob_cache_saves_the_second_download() {
    let registry = Registry::start(Auth::Anonymous, false);
    let reference = registry.push(&oci("static-go/oci", "latest"), "cached/app:1", &[]);
    let proxy = Proxy::start(registry.port);
    let through = reference.replace(&registry.host(), &proxy.host());
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let (first, _home) = scan(&[&through, "--cache-dir", cache_dir], &[], None);
    let downloads = proxy.blob_gets();
    assert!(downloads >= 3, "config and two layers: {downloads}");
    let (second, _home) = scan(&[&through, "--cache-dir", cache_dir], &[], None);
    assert_eq!(essence(&report(&first)), essence(&report(&second)));
    assert_eq!(
        proxy.blob_gets(),
        downloads,
        "the second scan downloads no blob"
    );
    let (_, _home) = scan(&[&through, "--no-cache"], &[], None);
    assert!(proxy.blob_gets() > downloads);
    // A damaged cache entry is caught by verification, not trusted.
    let blobs = cache.path().join("blobs/sha256");
    let largest = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&largest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&largest, bytes).unwrap();
    // Read past the layer facts cache, whose hits never open the blob (its own damage is
    // `facts_cache.rs`'s to test).
    let (output, _home) = scan(
        &[&through, "--cache-dir", cache_dir, "--no-facts-cache"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
}
