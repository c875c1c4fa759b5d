//! `scan --attach` and `verdict` against the real distribution registry (Debian's
//! `docker-registry` 2.8.2, which has no referrers API, so the `sha256-<hex>` tag index is used),
//! and through a small proxy that adds the referrers API in front of it.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Value, json};

use crate::registry_support::{Auth, PASSWORD, Registry, USER, isolated, read_request};
use crate::support::{fixture, sha256};

const REPORT_TYPE: &str = "application/vnd.drydock.report.v1+json";
const SARIF_TYPE: &str = "application/sarif+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Runs drydock with an isolated HOME (no credentials, no cache shared between tests).
fn run(args: &[&str], stdin: Option<&str>) -> Output {
    isolated(args, &[], stdin).0
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn oci(layout: &str) -> String {
    format!("oci:{}:latest", fixture(layout))
}

/// Raw distribution API calls, for what the tests plant and check by hand.
struct Api {
    base: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn new(host: &str) -> Self {
        Self {
            base: format!("http://{host}/v2"),
            http: reqwest::blocking::Client::new(),
        }
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, url)
    }

    /// A manifest or index by tag or digest: (bytes, digest), or None when absent.
    fn manifest(&self, repo: &str, reference: &str) -> Option<(Vec<u8>, String)> {
        let response = self
            .request(
                reqwest::Method::GET,
                format!("{}/{repo}/manifests/{reference}", self.base),
            )
            .header(
                "Accept",
                format!(
                    "{INDEX}, {MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"
                ),
            )
            .send()
            .unwrap();
        if response.status() == 404 {
            return None;
        }
        assert!(
            response.status().is_success(),
            "GET {reference}: {}",
            response.status()
        );
        let bytes = response.bytes().unwrap().to_vec();
        let digest = sha256(&bytes);
        Some((bytes, digest))
    }

    fn digest_of(&self, repo: &str, reference: &str) -> String {
        self.manifest(repo, reference).unwrap().1
    }

    fn exists(&self, repo: &str, digest: &str) -> bool {
        self.manifest(repo, digest).is_some()
    }

    fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> u16 {
        self.request(
            reqwest::Method::PUT,
            format!("{}/{repo}/manifests/{reference}", self.base),
        )
        .header("Content-Type", media_type)
        .body(body.to_vec())
        .send()
        .unwrap()
        .status()
        .as_u16()
    }

    fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let start = self
            .request(
                reqwest::Method::POST,
                format!("{}/{repo}/blobs/uploads/", self.base),
            )
            .send()
            .unwrap();
        assert_eq!(start.status(), 202);
        let location = start.headers()["location"].to_str().unwrap().to_owned();
        let url = reqwest::Url::parse(&self.base)
            .unwrap()
            .join(&location)
            .unwrap();
        let separator = if url.query().is_some() { '&' } else { '?' };
        let status = self
            .request(
                reqwest::Method::PUT,
                format!("{url}{separator}digest={digest}"),
            )
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 201);
        digest
    }

    fn delete(&self, repo: &str, digest: &str) {
        let status = self
            .request(
                reqwest::Method::DELETE,
                format!("{}/{repo}/manifests/{digest}", self.base),
            )
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 202, "DELETE {digest}");
    }

    /// The descriptors of the referrers tag index of `subject`.
    fn tag_index(&self, repo: &str, subject: &str) -> Vec<Value> {
        let tag = subject.replace(':', "-");
        match self.manifest(repo, &tag) {
            Some((bytes, _)) => {
                let index: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(index["mediaType"], INDEX);
                index["manifests"].as_array().cloned().unwrap_or_default()
            }
            None => Vec::new(),
        }
    }

    fn tags(&self, repo: &str) -> Vec<String> {
        let list: Value = self
            .request(
                reqwest::Method::GET,
                format!("{}/{repo}/tags/list", self.base),
            )
            .send()
            .and_then(|r| r.bytes())
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        list["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()
    }

    /// Pushes a hand-made artifact with `subject` (a signature-like bundle): its manifest
    /// digest and its descriptor as a referrers index lists it.
    fn push_artifact(
        &self,
        repo: &str,
        subject: &str,
        artifact_type: &str,
        content: &[u8],
    ) -> (String, Value) {
        let empty = self.put_blob(repo, b"{}");
        let layer = self.put_blob(repo, content);
        let (subject_bytes, _) = self.manifest(repo, subject).unwrap();
        let annotations = json!({
            "dev.sigstore.bundle.content": "message-signature",
            "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
        });
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": artifact_type, "digest": layer, "size": content.len()}],
            "subject": {"mediaType": MANIFEST, "digest": subject, "size": subject_bytes.len()},
            "annotations": annotations,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = sha256(&bytes);
        assert_eq!(self.put_manifest(repo, &digest, MANIFEST, &bytes), 201);
        let descriptor = json!({
            "mediaType": MANIFEST,
            "digest": digest,
            "size": bytes.len(),
            "artifactType": artifact_type,
            "annotations": annotations,
            "x-foreign-field": {"kept": true},
        });
        (digest, descriptor)
    }

    fn put_tag_index(&self, repo: &str, subject: &str, descriptors: &[Value]) {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": descriptors});
        let status = self.put_manifest(
            repo,
            &subject.replace(':', "-"),
            INDEX,
            &serde_json::to_vec(&index).unwrap(),
        );
        assert_eq!(status, 201);
    }
}

fn of_type<'a>(descriptors: &'a [Value], artifact_type: &str) -> Vec<&'a Value> {
    descriptors
        .iter()
        .filter(|d| d["artifactType"] == artifact_type)
        .collect()
}

fn attach(reference: &str, kinds: &str) -> Output {
    run(&["scan", reference, kinds, "--format", "json"], None)
}

#[test]
fn attaching_twice_keeps_one_current_report_and_sarif_with_their_annotations() {
    let registry = Registry::start(Auth::Anonymous, false);
    let reference = registry.push(&oci("static-go/oci"), "svc/api:1", &[]);
    let api = Api::new(&registry.host());
    let subject = api.digest_of("svc/api", "1");

    let first = attach(&reference, "--attach");
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let report: Value = serde_json::from_slice(&first.stdout).unwrap();
    let index = api.tag_index("svc/api", &subject);
    assert_eq!(of_type(&index, REPORT_TYPE).len(), 1, "{index:#?}");
    assert_eq!(of_type(&index, SARIF_TYPE).len(), 1, "{index:#?}");
    let old: Vec<String> = index
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    for descriptor in &index {
        let annotations = &descriptor["annotations"];
        assert_eq!(
            annotations["org.opencontainers.image.created"],
            report["scanned_at"]
        );
        assert_eq!(
            annotations["dev.drydock.score"],
            report["score"].to_string()
        );
        assert_eq!(annotations["dev.drydock.grade"], report["grade"]);
        assert_eq!(annotations["dev.drydock.gate"], "pass");
        assert_eq!(
            annotations["dev.drydock.version"],
            report["tool"]["version"]
        );
        assert_eq!(annotations["dev.drydock.policy"], "none");
        // The referrer itself: an artifact manifest on the empty config, about the image.
        let (bytes, _) = api
            .manifest("svc/api", descriptor["digest"].as_str().unwrap())
            .unwrap();
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(manifest["subject"]["digest"], subject.as_str());
        assert_eq!(manifest["artifactType"], descriptor["artifactType"]);
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
        assert_eq!(manifest["annotations"], *annotations);
    }

    // A second scan a second later: its report replaces the first, which is deleted.
    thread::sleep(std::time::Duration::from_millis(1100));
    let second = attach(&reference, "--attach=report,sarif,intoto");
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let index = api.tag_index("svc/api", &subject);
    assert_eq!(of_type(&index, REPORT_TYPE).len(), 1, "{index:#?}");
    assert_eq!(of_type(&index, SARIF_TYPE).len(), 1, "{index:#?}");
    assert_eq!(
        of_type(&index, "application/vnd.in-toto+json").len(),
        1,
        "{index:#?}"
    );
    for digest in &old {
        assert!(
            !index.iter().any(|d| d["digest"] == digest.as_str()),
            "{digest} still listed"
        );
        assert!(!api.exists("svc/api", digest), "{digest} was not deleted");
    }
    // The in-toto referrer is a statement about the image.
    let intoto = of_type(&index, "application/vnd.in-toto+json")[0];
    let (bytes, _) = api
        .manifest("svc/api", intoto["digest"].as_str().unwrap())
        .unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.in-toto+json"
    );
}

#[test]
fn dangling_descriptors_are_pruned_and_foreign_referrers_survive() {
    let registry = Registry::start(Auth::Anonymous, false);
    let reference = registry.push(&oci("static-go/oci"), "svc/mixed:1", &[]);
    let api = Api::new(&registry.host());
    let subject = api.digest_of("svc/mixed", "1");
    let bundle = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let (_signature, foreign) = api.push_artifact("svc/mixed", &subject, bundle, b"signature-1");
    let (gone, dangling) =
        api.push_artifact("svc/mixed", &subject, "application/spdx+json", b"sbom");
    api.put_tag_index("svc/mixed", &subject, &[foreign.clone(), dangling]);
    api.delete("svc/mixed", &gone);

    let output = attach(&reference, "--attach");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let index = api.tag_index("svc/mixed", &subject);
    assert!(
        !index.iter().any(|d| d["digest"] == gone.as_str()),
        "the dangling descriptor was kept: {index:#?}"
    );
    assert!(
        index.contains(&foreign),
        "the foreign referrer changed or vanished: {index:#?}"
    );
    assert_eq!(of_type(&index, REPORT_TYPE).len(), 1);
    assert_eq!(of_type(&index, SARIF_TYPE).len(), 1);
    assert_eq!(index.len(), 3, "{index:#?}");
}

#[test]
fn verdict_gates_by_tag_and_by_digest() {
    let registry = Registry::start(Auth::Anonymous, false);
    let good = registry.push(&oci("static-go/oci"), "gate/good:1", &[]);
    let bad = registry.push(&oci("glibc-on-musl/oci"), "gate/bad:1", &[]);
    let api = Api::new(&registry.host());

    // Nothing attached yet: no verdict, exit 5, said in words.
    let output = run(&["verdict", &good], None);
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no drydock report"),
        "{}",
        stderr(&output)
    );

    assert_eq!(code(&attach(&good, "--attach")), 0);
    assert_eq!(code(&attach(&bad, "--attach")), 1);

    let digest = api.digest_of("gate/good", "1");
    let by_digest = format!("{}/gate/good@{digest}", registry.host());
    for reference in [&good, &by_digest] {
        let output = run(&["verdict", reference, "--format", "json"], None);
        assert_eq!(code(&output), 0, "{reference}: {}", stderr(&output));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["image"]["manifest_digest"], digest.as_str());
        assert_eq!(report["passed"], true);
    }
    let output = run(&["verdict", &bad], None);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("gate FAILED"));
    // The gate can be set at the verdict, on the stored findings and score (49 here).
    assert_eq!(code(&run(&["verdict", &bad, "--fail-on", "none"], None)), 0);
    let scored = |min: &str| {
        code(&run(
            &["verdict", &bad, "--fail-on", "none", "--min-score", min],
            None,
        ))
    };
    assert_eq!(scored("40"), 0);
    assert_eq!(scored("50"), 1);

    // --max-age: the report is seconds old.
    assert_eq!(code(&run(&["verdict", &good, "--max-age", "1h"], None)), 0);
    thread::sleep(std::time::Duration::from_millis(2100));
    let stale = run(&["verdict", &good, "--max-age", "1s"], None);
    assert_eq!(code(&stale), 5, "{}", stderr(&stale));
    assert!(stderr(&stale).contains("--max-age"), "{}", stderr(&stale));
}

#[test]
fn verdict_refuses_a_report_about_another_digest() {
    let registry = Registry::start(Auth::Anonymous, false);
    let good = registry.push(&oci("static-go/oci"), "swap/app:good", &[]);
    let other = registry.push(&oci("musl-hello/oci"), "swap/app:other", &[]);
    let api = Api::new(&registry.host());
    assert_eq!(code(&attach(&good, "--attach=report")), 0);
    let good_digest = api.digest_of("swap/app", "good");
    let other_digest = api.digest_of("swap/app", "other");
    // Plant the good image's report in the other image's referrers index.
    let planted = of_type(&api.tag_index("swap/app", &good_digest), REPORT_TYPE)[0].clone();
    api.put_tag_index("swap/app", &other_digest, std::slice::from_ref(&planted));

    let output = run(&["verdict", &other], None);
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(planted["digest"].as_str().unwrap()) && message.contains("subject"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn verdict_of_an_index_takes_the_worst_platform_or_the_one_asked_for() {
    let registry = Registry::start(Auth::Anonymous, false);
    let api = Api::new(&registry.host());
    registry.push(&oci("static-go/oci"), "multi/app:amd64", &[]);
    registry.push(&oci("glibc-on-musl/oci"), "multi/app:arm64", &[]);
    let mut entries = Vec::new();
    for (tag, arch) in [("amd64", "amd64"), ("arm64", "arm64")] {
        let (bytes, digest) = api.manifest("multi/app", tag).unwrap();
        entries.push(json!({
            "mediaType": MANIFEST, "digest": digest, "size": bytes.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
    let status = api.put_manifest(
        "multi/app",
        "1",
        INDEX,
        &serde_json::to_vec(&index).unwrap(),
    );
    assert_eq!(status, 201);
    let reference = format!("{}/multi/app:1", registry.host());

    // Only one platform scanned so far: the other has no verdict.
    let amd64 = format!(
        "{}/multi/app@{}",
        registry.host(),
        entries[0]["digest"].as_str().unwrap()
    );
    let arm64 = format!(
        "{}/multi/app@{}",
        registry.host(),
        entries[1]["digest"].as_str().unwrap()
    );
    assert_eq!(code(&attach(&amd64, "--attach")), 0);
    let output = run(&["verdict", &reference], None);
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("linux/arm64"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        code(&run(
            &["verdict", &reference, "--platform", "linux/amd64"],
            None
        )),
        0
    );

    assert_eq!(code(&attach(&arm64, "--attach")), 1);
    let output = run(&["verdict", &reference, "--format", "json"], None);
    assert_eq!(
        code(&output),
        1,
        "the worst platform wins: {}",
        stderr(&output)
    );
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 2);
    assert_eq!(
        code(&run(
            &["verdict", &reference, "--platform", "linux/amd64"],
            None
        )),
        0
    );
    assert_eq!(
        code(&run(
            &["verdict", &reference, "--platform", "linux/arm64"],
            None
        )),
        1
    );
}

#[test]
fn attaching_without_push_access_fails_clearly_and_writes_nothing() {
    let registry = Registry::start(
        Auth::Token {
            anonymous_pull: true,
        },
        false,
    );
    let reference = registry.push(&oci("static-go/oci"), "locked/app:1", &[]);
    let output = attach(&reference, "--attach");
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("push"), "{message}");
    assert!(!message.contains(PASSWORD));
    // Nothing was attached (read through drydock: the registry wants tokens).
    let verdict = run(&["verdict", &reference], None);
    assert_eq!(code(&verdict), 5, "{}", stderr(&verdict));
    // With the account that may push, the same attach works.
    let output = run(
        &[
            "scan",
            &reference,
            "--attach",
            "--username",
            USER,
            "--password-stdin",
            "-q",
        ],
        Some(PASSWORD),
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let verdict = run(&["verdict", &reference], None);
    assert_eq!(code(&verdict), 0, "{}", stderr(&verdict));
}

#[test]
fn twenty_concurrent_attaches_leave_each_kind_exactly_once() {
    let registry = Registry::start(Auth::Anonymous, false);
    let reference = registry.push(&oci("static-go/oci"), "race/app:1", &[]);
    let api = Api::new(&registry.host());
    let subject = api.digest_of("race/app", "1");
    let children: Vec<_> = (0..20)
        .map(|_| {
            let home = tempfile::tempdir().unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_drydock"))
                .args(["scan", &reference, "--attach", "-q", "--format", "json"])
                .env("HOME", home.path())
                .env("XDG_CACHE_HOME", home.path().join("cache"))
                .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, home)
        })
        .collect();
    for (child, _home) in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let index = api.tag_index("race/app", &subject);
    assert_eq!(of_type(&index, REPORT_TYPE).len(), 1, "{index:#?}");
    assert_eq!(of_type(&index, SARIF_TYPE).len(), 1, "{index:#?}");
    assert_eq!(index.len(), 2, "{index:#?}");
    for descriptor in &index {
        assert!(api.exists("race/app", descriptor["digest"].as_str().unwrap()));
    }
    assert_eq!(code(&run(&["verdict", &reference], None)), 0);
}

/// A registry with the OCI 1.1 referrers API: a proxy in front of the real one that records
/// every manifest pushed with a `subject`, answers `OCI-Subject`, and serves
/// `GET /v2/<name>/referrers/<digest>`.
struct ReferrersProxy {
    port: u16,
    referrers_gets: Arc<Mutex<usize>>,
}

type Referrers = Arc<Mutex<HashMap<String, Vec<Value>>>>;

impl ReferrersProxy {
    fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let referrers: Referrers = Arc::default();
        let referrers_gets = Arc::new(Mutex::new(0));
        let gets = referrers_gets.clone();
        thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            for stream in listener.incoming().flatten() {
                let (referrers, gets, http, upstream) = (
                    referrers.clone(),
                    gets.clone(),
                    http.clone(),
                    upstream.clone(),
                );
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let Some((method, target, headers, body)) = read_request(&mut reader) else {
                        return;
                    };
                    let mut stream = stream;
                    let path = target.split('?').next().unwrap_or("").to_owned();
                    if method == "GET" && path.contains("/referrers/") {
                        *gets.lock().unwrap() += 1;
                        let subject = path.rsplit('/').next().unwrap_or("");
                        let listed = referrers
                            .lock()
                            .unwrap()
                            .get(subject)
                            .cloned()
                            .unwrap_or_default();
                        let index =
                            json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": listed});
                        let body = serde_json::to_vec(&index).unwrap();
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: {INDEX}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(&body);
                        return;
                    }
                    let method_ = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                    let mut request = http.request(method_, format!("http://{upstream}{target}"));
                    for (name, value) in &headers {
                        if !matches!(name.as_str(), "host" | "connection" | "content-length") {
                            request = request.header(name, value);
                        }
                    }
                    let response = request.body(body.clone()).send().unwrap();
                    let status = response.status();
                    let mut head = format!("HTTP/1.1 {status}\r\n");
                    for (name, value) in response.headers() {
                        if !matches!(
                            name.as_str(),
                            "connection" | "content-length" | "transfer-encoding"
                        ) {
                            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
                        }
                    }
                    let is_manifest = path.contains("/manifests/");
                    if method == "PUT" && is_manifest && status.is_success() {
                        let manifest: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if let Some(subject) = manifest["subject"]["digest"].as_str() {
                            let mut descriptor = json!({
                                "mediaType": manifest["mediaType"],
                                "digest": sha256(&body),
                                "size": body.len(),
                                "artifactType": manifest.get("artifactType").cloned()
                                    .unwrap_or_else(|| manifest["config"]["mediaType"].clone()),
                            });
                            if let Some(annotations) = manifest.get("annotations") {
                                descriptor["annotations"] = annotations.clone();
                            }
                            referrers
                                .lock()
                                .unwrap()
                                .entry(subject.to_owned())
                                .or_default()
                                .push(descriptor);
                            head.push_str(&format!("OCI-Subject: {subject}\r\n"));
                        }
                    }
                    if method == "DELETE" && is_manifest && status.is_success() {
                        let digest = path.rsplit('/').next().unwrap_or("");
                        for list in referrers.lock().unwrap().values_mut() {
                            list.retain(|d| d["digest"] != digest);
                        }
                    }
                    let bytes = response.bytes().unwrap_or_default();
                    head.push_str(&format!(
                        "Content-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    ));
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&bytes);
                });
            }
        });
        Self {
            port,
            referrers_gets,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

#[test]
fn with_the_referrers_api_no_tag_index_is_written() {
    let registry = Registry::start(Auth::Anonymous, false);
    registry.push(&oci("static-go/oci"), "api/app:1", &[]);
    let proxy = ReferrersProxy::start(registry.host());
    let reference = format!("{}/api/app:1", proxy.host());
    let api = Api::new(&registry.host());
    let subject = api.digest_of("api/app", "1");

    let first = attach(&reference, "--attach");
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(
        stderr(&first).contains("referrers API"),
        "{}",
        stderr(&first)
    );
    let listed = |api: &Api| -> Vec<Value> {
        let response: Value = api
            .http
            .get(format!(
                "http://{}/v2/api/app/referrers/{subject}",
                proxy.host()
            ))
            .send()
            .and_then(|r| r.bytes())
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        response["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let old = listed(&api);
    assert_eq!(of_type(&old, REPORT_TYPE).len(), 1);
    thread::sleep(std::time::Duration::from_millis(1100));
    let second = attach(&reference, "--attach");
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let now = listed(&api);
    assert_eq!(of_type(&now, REPORT_TYPE).len(), 1, "{now:#?}");
    assert_eq!(of_type(&now, SARIF_TYPE).len(), 1, "{now:#?}");
    for descriptor in &old {
        let digest = descriptor["digest"].as_str().unwrap();
        assert!(!api.exists("api/app", digest), "{digest} was not deleted");
    }
    assert!(
        !api.tags("api/app").iter().any(|t| t.starts_with("sha256-")),
        "a tag index was written although the registry has the API"
    );
    let verdict = run(&["verdict", &reference], None);
    assert_eq!(code(&verdict), 0, "{}", stderr(&verdict));
    assert!(
        stderr(&verdict).contains("referrers API"),
        "{}",
        stderr(&verdict)
    );
    assert!(*proxy.referrers_gets.lock().unwrap() >= 3);
}
