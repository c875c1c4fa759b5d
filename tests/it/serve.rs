//! `drydock serve` against the real distribution registry (Debian's `docker-registry` 2.8.2)
//! with `notifications` pointing at it, images pushed with skopeo, and Harbor-style and
//! AdmissionReview clients written from the specs' facts. Loopback only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::registry_support::{Auth, PASSWORD, Registry, USER, free_port, wait_for};
use crate::support::{RawLayer, TarEntry, drydock, fixture, scan_json, sha256, write_layout};

pub(crate) const TOKEN: &str = "serve-test-token-0123";
const HARBOR_MIME: &str = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
const GENERIC_MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";

/// The registry's `notifications` block, pointing at a server on `port`. `filtered` uses the
/// 2.8.2 workaround (`mediatypes` beside `actions`); without it, blobs and pulls arrive too.
fn notifications(port: u16, filtered: bool) -> String {
    let ignore = if filtered {
        "      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n"
    } else {
        // 2.8.2 ignores `actions` alone: pulls (and blobs) are still sent.
        "      ignore:\n        actions: [pull]\n"
    };
    format!(
        "notifications:\n  events:\n    includereferences: true\n  endpoints:\n    - name: drydock\n      url: http://127.0.0.1:{port}/hooks/registry\n      headers:\n        Authorization: [Bearer {TOKEN}]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n{ignore}"
    )
}

/// A running `drydock serve` and its directory (kept across restarts).
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..end])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap();
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// Starts `drydock serve --config CONFIG` with HOME in `home`, no credentials and no engine
/// from the host, its log appended to `log`.
pub(crate) fn spawn_serve(config: &Path, home: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    drydock()
        .args(["serve", "--config"])
        .arg(config)
        .env("HOME", home)
        .env("DRYDOCK_LOG", "drydock_serve=debug,drydock_scan=info")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DRYDOCK_SERVE_TOKEN")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub(crate) const AUTH: (&str, &str) = ("Authorization", "Bearer serve-test-token-0123");

impl Server {
    /// Starts `drydock serve` in `dir` on `port`; `top` adds top-level configuration lines
    /// (`workers` among them replaces the default of 1), `testing` the `[testing]` table's.
    fn start(dir: &Path, port: u16, top: &str, testing: &str) -> Self {
        let workers = if top.contains("workers") {
            ""
        } else {
            "workers = 1\n"
        };
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"{}\"\ncache_dir = \"{}\"\n{workers}\
             tokens = [\"{TOKEN}\"]\nshutdown_grace_seconds = 20\n{top}\n[testing]\n{testing}\n",
            dir.join("serve.db").display(),
            dir.join("blobs").display(),
        );
        let path = dir.join("serve.toml");
        std::fs::write(&path, config).unwrap();
        let child = spawn_serve(&path, dir, &dir.join("serve.log"));
        wait_for(port);
        Self {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Answer {
        http(self.port, "GET", path, &[AUTH], b"")
    }

    fn post_json(&self, path: &str, body: &serde_json::Value) -> Answer {
        http(
            self.port,
            "POST",
            path,
            &[AUTH, ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// The value of one metric line (`name{labels}`) in `text`, 0 when absent.
    fn metric_in(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    fn metrics(&self) -> String {
        let answer = self.get("/metrics");
        assert_eq!(answer.status, 200);
        answer.text()
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    fn metric(&self, name: &str) -> f64 {
        Self::metric_in(&self.metrics(), name)
    }

    /// Jobs in the store, whatever their state (from one scrape: a job moves between states).
    fn jobs(&self) -> f64 {
        let text = self.metrics();
        ["queued", "running", "done", "failed"]
            .iter()
            .map(|s| Self::metric_in(&text, &format!("drydock_jobs{{state=\"{s}\"}}")))
            .sum()
    }

    /// Waits for the verdict of `digest`.
    fn verdict(&self, digest: &str) -> serde_json::Value {
        eventually(&format!("a verdict for {digest}\n{}", self.log()), || {
            let answer = self.get(&format!("/v1/verdicts/{digest}"));
            (answer.status == 200).then(|| answer.json())
        })
    }

    /// Waits for a job to finish.
    fn finished(&self, id: &str) -> serde_json::Value {
        eventually(&format!("job {id} to finish\n{}", self.log()), || {
            let scan = self.get(&format!("/v1/scans/{id}")).json();
            matches!(scan["state"].as_str(), Some("done" | "failed")).then_some(scan)
        })
    }
}

pub(crate) fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Pushes an OCI layout fixture and returns the pushed manifest's digest.
fn push(registry: &Registry, layout: &str, name: &str, extra: &[&str]) -> String {
    let digest_file = registry
        .dir
        .path()
        .join(format!("{}.digest", name.replace(['/', ':'], "_")));
    let mut args = vec!["--digestfile", digest_file.to_str().unwrap()];
    args.extend_from_slice(extra);
    registry.push(
        &format!("oci:{}:latest", fixture(&format!("{layout}/oci"))),
        name,
        &args,
    );
    std::fs::read_to_string(digest_file)
        .unwrap()
        .trim()
        .to_owned()
}

fn cli_report(layout: &str) -> serde_json::Value {
    scan_json(&[&fixture(&format!("{layout}/oci"))]).1
}

/// Uploads one blob with raw HTTP (POST for a session, PUT with the digest).
fn upload_blob(registry: &Registry, repository: &str, digest: &str, bytes: &[u8]) {
    let answer = http(
        registry.port,
        "POST",
        &format!("/v2/{repository}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(answer.status, 202, "{}", answer.text());
    let location = answer.header("location").unwrap();
    let path = location
        .find("/v2/")
        .map_or(location, |start| &location[start..]);
    let separator = if path.contains('?') { '&' } else { '?' };
    let answer = http(
        registry.port,
        "PUT",
        &format!("{path}{separator}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
}

/// Pushes an artifact (empty config, one opaque layer) with raw HTTP, as `oras` would.
fn push_artifact(registry: &Registry, repository: &str, tag: &str) -> String {
    let empty = b"{}";
    let layer = b"not an image, just data";
    for blob in [&empty[..], &layer[..]] {
        upload_blob(registry, repository, &sha256(blob), blob);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.drydock.test+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2},
        "layers": [{"mediaType": "application/vnd.drydock.test.data", "digest": sha256(layer), "size": layer.len()}],
    })
    .to_string();
    let answer = http(
        registry.port,
        "PUT",
        &format!("/v2/{repository}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.as_bytes(),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    sha256(manifest.as_bytes())
}

#[test]
fn serve_a_push_gives_a_verdict_for_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port, "", "");
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, true));

    let digest = push(&registry, "glibc-on-musl", "team/app:1.0", &[]);
    let answer = server.verdict(&digest);
    let local = cli_report("glibc-on-musl");
    assert_eq!(answer["digest"], digest);
    assert_eq!(answer["passed"], false);
    let verdicts = answer["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1);
    let verdict = &verdicts[0];
    assert_eq!(verdict["digest"], digest);
    assert_eq!(verdict["platform"], "linux/amd64");
    assert_eq!(verdict["score"], local["score"]);
    assert_eq!(verdict["grade"], "F");
    assert_eq!(verdict["counts"]["critical"], 1);
    assert_eq!(verdict["drydock_version"], env!("CARGO_PKG_VERSION"));
    // The job holds the whole report, the same as the command line's.
    let scan = server
        .get(&format!("/v1/scans/{}", verdict["job_id"]))
        .json();
    assert_eq!(scan["state"], "done");
    assert_eq!(scan["source"], "hook");
    assert_eq!(scan["report"]["image"]["manifest_digest"], digest);
    assert_eq!(scan["report"]["findings"], local["findings"]);
    assert_eq!(server.jobs(), 1.0);

    // An index: every platform scanned, each child's verdict found through the index digest.
    let index = push(&registry, "platforms", "multi/app:1", &["--all"]);
    let answer = server.verdict(&index);
    let platforms: Vec<&str> = answer["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(answer["missing"], serde_json::json!([]));
    // skopeo pushes each child manifest (a job each) before the index (one more).
    assert_eq!(server.jobs(), 4.0);

    // The same image pushed again under another name: no second job.
    let again = push(&registry, "glibc-on-musl", "other/app:2", &[]);
    assert_eq!(again, digest);
    let sentinel = push(&registry, "static-go", "team/sentinel:1", &[]);
    server.verdict(&sentinel);
    assert_eq!(server.jobs(), 5.0);
    assert!(server.metric("drydock_webhook_events_total{outcome=\"deduplicated\"}") >= 1.0);
    assert_eq!(server.metric("drydock_scan_seconds_count"), 5.0);
    assert_eq!(server.metric("drydock_jobs{state=\"done\"}"), 5.0);

    // A delete ends the verdict.
    let answer = http(
        registry.port,
        "DELETE",
        &format!("/v2/team/sentinel/manifests/{sentinel}"),
        &[],
        b"",
    );
    assert_eq!(answer.status, 202, "{}", answer.text());
    eventually("the verdict to end", || {
        (server.get(&format!("/v1/verdicts/{sentinel}")).status == 404).then_some(())
    });

    // The probes answer without a token; nothing else does.
    assert_eq!(http(port, "GET", "/healthz", &[], b"").status, 200);
    assert_eq!(http(port, "GET", "/readyz", &[], b"").status, 200);
    let refused = http(port, "GET", &format!("/v1/verdicts/{digest}"), &[], b"");
    assert_eq!(refused.status, 401);
    let wrong = http(
        port,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer not-the-token")],
        b"",
    );
    assert_eq!(wrong.status, 401);
}

#[test]
fn serve_pulls_blobs_referrer_tags_and_artifacts_make_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port, "", "");
    // `actions: [pull]` alone: 2.8.2 still sends pulls, and blob events too.
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, false));

    let artifact = push_artifact(&registry, "team/artifact", "report");
    // An image under a referrers-schema tag.
    let referrer_tag = format!("team/app:sha256-{}", "ab".repeat(32));
    let under_referrer_tag = push(&registry, "musl-hello", &referrer_tag, &[]);
    // Pulls of the artifact.
    for _ in 0..3 {
        let answer = http(
            registry.port,
            "GET",
            &format!("/v2/team/artifact/manifests/{artifact}"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            b"",
        );
        assert_eq!(answer.status, 200);
    }
    // Events go out in order: once this image's verdict is in, all of the above was seen.
    let sentinel = push(&registry, "static-go", "team/sentinel:1", &[]);
    server.verdict(&sentinel);
    assert_eq!(server.jobs(), 1.0, "{}", server.log());
    assert_eq!(server.get(&format!("/v1/verdicts/{artifact}")).status, 404);
    assert_eq!(
        server
            .get(&format!("/v1/verdicts/{under_referrer_tag}"))
            .status,
        404
    );
    // blobs (4 + 2 + 2 at least), 3 pulls, the artifact and the referrer tag were ignored.
    let ignored = server.metric("drydock_webhook_events_total{outcome=\"ignored\"}");
    assert!(ignored >= 10.0, "{ignored}");
    let log = server.log();
    for reason in [
        "ignored (an artifact, not an image)",
        "ignored (a referrers tag)",
        "ignored (not a push): pull",
        "ignored (not an image manifest or index): push application/octet-stream",
    ] {
        assert!(log.contains(reason), "{reason} in\n{log}");
    }
}

#[test]
fn serve_a_redelivered_event_makes_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The first two deliveries are answered 500 after the event was stored.
    let server = Server::start(dir.path(), port, "", "fail_hooks = 2");
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, true));
    let digest = push(&registry, "musl-hello", "team/app:1", &[]);
    server.verdict(&digest);
    assert_eq!(server.jobs(), 1.0);
    // The registry sent the same event three times: two redeliveries seen as such.
    eventually("the redeliveries", || {
        (server.metric("drydock_webhook_events_total{outcome=\"duplicate\"}") >= 2.0).then_some(())
    });
    assert_eq!(
        server.metric("drydock_webhook_events_total{outcome=\"enqueued\"}"),
        1.0
    );

    // The same body posted twice by hand, with an event id the registry never sent and a
    // digest nobody has scanned: one job.
    let other = format!("sha256:{}", "1".repeat(64));
    let envelope = serde_json::json!({"events": [{
        "id": "hand-made-1",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": other,
            "repository": "team/missing",
            "url": format!("http://{}/v2/team/missing/manifests/{other}", registry.host()),
        },
    }]});
    for _ in 0..2 {
        let answer = http(
            port,
            "POST",
            "/hooks/registry",
            &[
                AUTH,
                (
                    "Content-Type",
                    "application/vnd.docker.distribution.events.v2+json",
                ),
            ],
            envelope.to_string().as_bytes(),
        );
        assert_eq!(answer.status, 202);
    }
    assert_eq!(server.jobs(), 2.0, "{}", server.log());
    assert_eq!(
        server.metric("drydock_webhook_events_total{outcome=\"duplicate\"}"),
        3.0
    );
    // A body that is no envelope is still answered 2xx: the registry would retry it forever.
    let answer = http(
        port,
        "POST",
        "/hooks/registry",
        &[
            AUTH,
            (
                "Content-Type",
                "application/vnd.docker.distribution.events.v1+json",
            ),
        ],
        b"{not json",
    );
    assert_eq!(answer.status, 202);
    assert_eq!(server.jobs(), 2.0, "{}", server.log());
}

#[test]
fn serve_harbor_scanner_api_contract() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Scans wait a little, so that the report is seen not ready first.
    let server = Server::start(dir.path(), port, "", "scan_delay_ms = 1500");
    let registry = Registry::start(Auth::Htpasswd, false);
    let digest = push(&registry, "glibc-on-musl", "library/app:1", &[]);
    let api_key = ("X-ScannerAdapter-API-Key", TOKEN);

    // Metadata.
    let answer = http(
        port,
        "GET",
        "/api/v1/metadata",
        &[
            api_key,
            (
                "Accept",
                "application/vnd.scanner.adapter.metadata+json; version=1.0",
            ),
        ],
        b"",
    );
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/vnd.scanner.adapter.metadata+json; version=1.0")
    );
    let metadata = answer.json();
    assert_eq!(metadata["scanner"]["name"], "drydock");
    assert_eq!(metadata["scanner"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(metadata["scanner"]["vendor"].is_string());
    let capability = &metadata["capabilities"][0];
    assert_eq!(capability["type"], "vulnerability");
    let consumes = capability["consumes_mime_types"].as_array().unwrap();
    assert!(consumes.contains(&"application/vnd.oci.image.manifest.v1+json".into()));
    assert!(consumes.contains(&"application/vnd.docker.distribution.manifest.v2+json".into()));
    let produces = capability["produces_mime_types"].as_array().unwrap();
    assert!(produces.contains(&HARBOR_MIME.into()));
    assert!(produces.contains(&GENERIC_MIME.into()));
    for (_, value) in metadata["properties"].as_object().unwrap() {
        assert!(value.is_string());
    }
    // Harbor's registration may also authenticate with Basic.
    let basic = format!("Basic {}", STANDARD.encode(format!("harbor:{TOKEN}")));
    let answer = http(
        port,
        "GET",
        "/api/v1/metadata",
        &[("Authorization", &basic)],
        b"",
    );
    assert_eq!(answer.status, 200);
    assert_eq!(http(port, "GET", "/api/v1/metadata", &[], b"").status, 401);

    let scan_request = |authorization: Option<String>, digest: &str| {
        let mut registry_field = serde_json::json!({"url": format!("http://{}", registry.host())});
        if let Some(authorization) = authorization {
            registry_field["authorization"] = authorization.into();
        }
        serde_json::json!({
            "registry": registry_field,
            "artifact": {"repository": "library/app", "digest": digest, "tag": "1",
                "mime_type": "application/vnd.oci.image.manifest.v1+json"},
            "enabled_capabilities": [{"type": "vulnerability", "produces_mime_types": [HARBOR_MIME]}],
        })
    };
    let post_scan = |body: &[u8]| {
        http(
            port,
            "POST",
            "/api/v1/scan",
            &[
                api_key,
                (
                    "Content-Type",
                    "application/vnd.scanner.adapter.scan.request+json; version=1.1",
                ),
            ],
            body,
        )
    };
    // 400 for a body that is not JSON, 422 for missing fields, with the error shape.
    let answer = post_scan(b"{");
    assert_eq!(answer.status, 400);
    assert!(answer.json()["error"]["message"].is_string());
    for missing in ["/registry/url", "/artifact/repository", "/artifact/digest"] {
        let mut body = scan_request(None, &digest);
        let (parent, field) = missing.rsplit_once('/').unwrap();
        body.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(field);
        let answer = post_scan(body.to_string().as_bytes());
        assert_eq!(answer.status, 422, "{missing}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/vnd.scanner.adapter.error+json; version=1.0")
        );
        assert!(
            answer.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&missing[1..].replace('/', "."))
        );
    }

    // The robot account's Basic credentials pull from the htpasswd registry.
    let robot = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let answer = post_scan(scan_request(Some(robot), &digest).to_string().as_bytes());
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/vnd.scanner.adapter.scan.response+json; version=1.0")
    );
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let report_path = format!("/api/v1/scan/{id}/report");
    let answer = http(
        port,
        "GET",
        &report_path,
        &[api_key, ("Accept", HARBOR_MIME)],
        b"",
    );
    assert_eq!(answer.status, 302, "{}", answer.text());
    assert_eq!(answer.header("refresh-after"), Some("5"));
    assert_eq!(answer.header("retry-after"), Some("5"));
    let report = eventually("the Harbor report", || {
        let answer = http(
            port,
            "GET",
            &report_path,
            &[api_key, ("Accept", HARBOR_MIME)],
            b"",
        );
        (answer.status != 302).then_some(answer)
    });
    assert_eq!(report.status, 200, "{}\n{}", report.text(), server.log());
    assert_eq!(report.header("content-type"), Some(HARBOR_MIME));
    let report = report.json();
    assert_eq!(report["artifact"]["repository"], "library/app");
    assert_eq!(report["artifact"]["digest"], digest);
    assert_eq!(report["scanner"]["name"], "drydock");
    assert_eq!(report["severity"], "Critical");
    assert!(report["generated_at"].is_string());
    let items = report["vulnerabilities"].as_array().unwrap();
    let local = cli_report("glibc-on-musl");
    assert_eq!(items.len(), local["findings"].as_array().unwrap().len() + 1);
    let elf = items
        .iter()
        .find(|i| i["id"] == "elf.interpreter-missing")
        .unwrap();
    assert_eq!(elf["package"], "/app/hello");
    assert_eq!(elf["severity"], "Critical");
    assert_eq!(elf["fix_version"], "");
    assert!(elf["version"].as_str().unwrap().starts_with("sha256:"));
    assert!(elf["links"][0].as_str().unwrap().starts_with("https://"));
    for item in items {
        for field in [
            "id",
            "package",
            "version",
            "fix_version",
            "severity",
            "description",
        ] {
            assert!(item[field].is_string(), "{field} in {item}");
        }
        assert!(
            ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"]
                .contains(&item["severity"].as_str().unwrap())
        );
    }
    assert_eq!(items.last().unwrap()["id"], "drydock.score");
    // The generic MIME type when asked for.
    let answer = http(
        port,
        "GET",
        &report_path,
        &[api_key, ("Accept", GENERIC_MIME)],
        b"",
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some(GENERIC_MIME));
    assert!(answer.json()["vulnerabilities"][0]["vendor_attributes"]["drydock"].is_object());
    // An unknown id is 404.
    let answer = http(port, "GET", "/api/v1/scan/999999/report", &[api_key], b"");
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"]["message"].is_string());

    // Without credentials the pull is refused: the report is a 500 with the reason.
    let unscanned = push(&registry, "musl-hello", "library/other:1", &[]);
    let answer = post_scan(scan_request(None, &unscanned).to_string().as_bytes());
    assert_eq!(answer.status, 202);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let failed = eventually("the failed report", || {
        let answer = http(
            port,
            "GET",
            &format!("/api/v1/scan/{id}/report"),
            &[api_key],
            b"",
        );
        (answer.status != 302).then_some(answer)
    });
    assert_eq!(failed.status, 500, "{}", failed.text());
    let message = failed.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("denied") || message.contains("401"),
        "{message}"
    );
    assert!(!message.contains(PASSWORD));
    assert!(!server.log().contains(PASSWORD));
}

fn review(uid: &str, kind: &str, object: serde_json::Value, dry_run: bool) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": if kind == "Pod" { "" } else { "apps" }, "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team",
            "name": "app",
            "operation": "CREATE",
            "userInfo": {"username": "ci"},
            "object": object,
            "dryRun": dry_run,
        },
    })
}

fn pod(images: &[&str]) -> serde_json::Value {
    let containers: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": containers}})
}

#[test]
fn serve_admission_review_allows_denies_and_queues_misses() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(
        dir.path(),
        port,
        "on_miss = \"deny\"\nadmission_without_token = true",
        "",
    );
    let registry = Registry::start(Auth::Anonymous, false);
    let host = registry.host();
    let bad = push(&registry, "glibc-on-musl", "team/bad:1", &[]);
    let good = push(&registry, "static-go", "team/good:1", &[]);
    let missing = push(&registry, "musl-hello", "team/missing:1", &[]);
    let dry = push(&registry, "tz-present", "team/dry:1", &[]);
    for image in ["team/bad:1", "team/good:1"] {
        let answer = server.post_json(
            "/v1/scans",
            &serde_json::json!({"image": format!("{host}/{image}")}),
        );
        assert_eq!(answer.status, 202, "{}", answer.text());
        let location = answer.header("location").unwrap().to_owned();
        let id = answer.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("/v1/scans/{id}"));
        assert_eq!(server.finished(&id)["state"], "done");
    }
    assert_eq!(server.jobs(), 2.0);
    // The API server sends no token (admission_without_token); the rest still wants one.
    assert_eq!(http(port, "GET", "/v1/scans/1", &[], b"").status, 401);
    let validate = |body: serde_json::Value| {
        let answer = http(
            port,
            "POST",
            "/k8s/validate",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let answer = answer.json();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        answer["response"].clone()
    };

    // Allowed: a good image by tag, resolved to its digest.
    let response = validate(review(
        "uid-allow",
        "Pod",
        pod(&[&format!("{host}/team/good:1")]),
        false,
    ));
    assert_eq!(response["uid"], "uid-allow");
    assert_eq!(response["allowed"], true, "{response}");

    // Denied: a Deployment whose second container fails its gate (by digest).
    let deployment = serde_json::json!({"spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "image": format!("{host}/team/good@{good}")}],
        "containers": [{"name": "app", "image": format!("{host}/team/bad@{bad}")}],
    }}}});
    let response = validate(review("uid-deny", "Deployment", deployment, false));
    assert_eq!(response["uid"], "uid-deny");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("containers[app]"), "{message}");
    assert!(message.contains("gate failed"), "{message}");
    assert!(message.contains("1 critical"), "{message}");
    assert!(!message.contains("initContainers"), "{message}");

    // Dry run of an unscanned image: denied, and no scan queued.
    let response = validate(review(
        "uid-dry",
        "Pod",
        pod(&[&format!("{host}/team/dry:1")]),
        true,
    ));
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("dry run")
    );
    assert_eq!(server.jobs(), 2.0);
    assert_eq!(server.get(&format!("/v1/verdicts/{dry}")).status, 404);

    // A miss: denied (on_miss = deny), a scan queued, and once it is done, allowed.
    let miss = review(
        "uid-miss",
        "Pod",
        pod(&[&format!("{host}/team/missing:1")]),
        false,
    );
    let response = validate(miss.clone());
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("a scan is queued"),
        "{response}"
    );
    assert_eq!(server.jobs(), 3.0);
    server.verdict(&missing);
    let response = validate(miss);
    assert_eq!(response["allowed"], true, "{response}");

    // An image that does not exist: a miss with the registry's reason, within the budget.
    let started = Instant::now();
    let response = validate(review(
        "uid-none",
        "Pod",
        pod(&[&format!("{host}/team/none:1")]),
        false,
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be resolved"),
        "{response}"
    );
    assert!(server.metric("drydock_verdict_misses_total") >= 3.0);
}

#[test]
fn serve_a_job_killed_mid_scan_completes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Server::start(dir.path(), port, "", "scan_delay_ms = 3000");
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, true));
    let digest = push(&registry, "musl-hello", "team/app:1", &[]);
    eventually("the job to run", || {
        (server.metric("drydock_jobs{state=\"running\"}") == 1.0).then_some(())
    });
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    assert_ne!(
        std::fs::metadata(dir.path().join("serve.db"))
            .unwrap()
            .len(),
        0
    );
    let log = server.log();
    drop(server);
    server = Server::start(dir.path(), port, "", "");
    let answer = server.verdict(&digest);
    assert_eq!(answer["verdicts"].as_array().unwrap().len(), 1, "{log}");
    let job = answer["verdicts"][0]["job_id"].to_string();
    let scan = server.get(&format!("/v1/scans/{job}")).json();
    assert_eq!(scan["state"], "done");
    assert_eq!(scan["attempts"], 2);
    assert_eq!(server.jobs(), 1.0);
}

#[test]
fn serve_sigterm_finishes_the_running_scan_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Server::start(dir.path(), port, "", "scan_delay_ms = 2000");
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, true));
    let digest = push(&registry, "static-go", "team/app:1", &[]);
    eventually("the job to run", || {
        (server.metric("drydock_jobs{state=\"running\"}") == 1.0).then_some(())
    });
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(exit.code(), Some(0), "{}", server.log());
    // The scan that was running finished before the exit: after a restart whose scans would
    // take a minute, its verdict is there, from the first attempt.
    drop(server);
    let server = Server::start(dir.path(), port, "", "scan_delay_ms = 60000");
    let answer = server.get(&format!("/v1/verdicts/{digest}"));
    assert_eq!(answer.status, 200, "{}", server.log());
    let job = answer.json()["verdicts"][0]["job_id"].to_string();
    assert_eq!(
        server.get(&format!("/v1/scans/{job}")).json()["attempts"],
        1
    );
    assert_eq!(server.jobs(), 1.0);
}

#[test]
fn serve_harbor_bearer_token_pulls_from_a_token_registry() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port, "", "");
    let registry = Registry::start(
        Auth::Token {
            anonymous_pull: false,
        },
        false,
    );
    let digest = push(&registry, "static-go", "project/app:1", &[]);
    // What Harbor does: exchange the robot's credentials at the token service for a pull
    // token of that repository, and hand the scanner the token alone.
    let issuer = registry.issuer.as_ref().unwrap();
    let basic = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let answer = http(
        issuer.port,
        "GET",
        "/token?service=drydock-test-registry&scope=repository:project/app:pull",
        &[("Authorization", &basic)],
        b"",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let token = answer.json()["token"].as_str().unwrap().to_owned();
    let request = |authorization: &str, repository: &str, digest: &str| {
        serde_json::json!({
            "registry": {"url": format!("http://{}", registry.host()), "authorization": authorization},
            "artifact": {"repository": repository, "digest": digest,
                "mime_type": "application/vnd.oci.image.manifest.v1+json"},
            "enabled_capabilities": [{"type": "vulnerability", "produces_mime_types": [HARBOR_MIME]}],
        })
    };
    let scan = |authorization: &str, repository: &str, digest: &str| -> (u16, String) {
        let answer = http(
            port,
            "POST",
            "/api/v1/scan",
            &[
                AUTH,
                (
                    "Content-Type",
                    "application/vnd.scanner.adapter.scan.request+json; version=1.1",
                ),
            ],
            request(authorization, repository, digest)
                .to_string()
                .as_bytes(),
        );
        assert_eq!(answer.status, 202, "{}", answer.text());
        let id = answer.json()["id"].as_str().unwrap().to_owned();
        let report = eventually("the Harbor report", || {
            let answer = http(
                port,
                "GET",
                &format!("/api/v1/scan/{id}/report"),
                &[AUTH, ("Accept", HARBOR_MIME)],
                b"",
            );
            (answer.status != 302).then_some(answer)
        });
        (report.status, report.text())
    };
    let (status, body) = scan(&format!("Bearer {token}"), "project/app", &digest);
    assert_eq!(status, 200, "{body}\n{}", server.log());
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["artifact"]["digest"], digest);
    // A token for another repository is refused by the registry: the scan fails in words.
    let other = push(&registry, "musl-hello", "project/other:1", &[]);
    let (status, body) = scan(&format!("Bearer {token}"), "project/other", &other);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("bearer token"), "{body}");
    assert!(!server.log().contains(&token), "the token was logged");
}

/// A tiny image of its own: one layer holding one small file that names `n`, as an OCI
/// layout under `dir`.
pub(crate) fn tiny_layout(dir: &Path, n: usize) -> PathBuf {
    let name = format!("etc/drydock-load-{n}");
    let content = format!("image number {n}\n");
    write_layout(
        &dir.join(format!("image-{n}")),
        &[RawLayer::gzip(&[TarEntry::File(&name, content.as_bytes())])],
        &[],
    )
}

/// Pushes an OCI layout with skopeo and returns the pushed manifest's digest.
fn push_layout(registry: &Registry, layout: &Path, name: &str) -> String {
    let digest_file = layout.join("pushed.digest");
    registry.push(
        &format!("oci:{}:latest", layout.display()),
        name,
        &["--digestfile", digest_file.to_str().unwrap()],
    );
    std::fs::read_to_string(digest_file)
        .unwrap()
        .trim()
        .to_owned()
}

/// Pushes an OCI layout with raw HTTP (each blob, then the manifest under `tag`), as a
/// client that checks nothing first would; returns the manifest's digest.
pub(crate) fn push_layout_http(
    registry: &Registry,
    layout: &Path,
    repository: &str,
    tag: &str,
) -> String {
    let blob = |digest: &str| {
        std::fs::read(layout.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest = blob(&digest);
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut blobs = vec![parsed["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in parsed["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_owned());
    }
    for blob_digest in &blobs {
        upload_blob(registry, repository, blob_digest, &blob(blob_digest));
    }
    let answer = http(
        registry.port,
        "PUT",
        &format!("/v2/{repository}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(
        answer.header("docker-content-digest"),
        Some(digest.as_str())
    );
    digest
}

/// SIGTERM, and the exit status once the server is gone.
fn terminate(server: &mut Server) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            return exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The one verdict of `digest` (waiting for it), and the job that made it, which must be done.
fn only_verdict(server: &Server, digest: &str) -> serde_json::Value {
    let answer = server.verdict(digest);
    let verdicts = answer["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1, "{digest}: {answer}");
    let verdict = verdicts[0].clone();
    assert_eq!(verdict["digest"], digest);
    let scan = server
        .get(&format!("/v1/scans/{}", verdict["job_id"]))
        .json();
    assert_eq!(scan["state"], "done", "{scan}");
    assert_eq!(scan["source"], "hook");
    verdict
}

#[test]
fn serve_events_pushed_while_the_server_is_down_are_processed_when_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let port = free_port();
    // The registry points at a port where nothing listens yet: every delivery fails, and
    // 2.8.2 keeps the events in memory and retries them (backoff 1s after 3 failures).
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, true));
    let mut pushed = Vec::new();
    for n in 0..3 {
        let layout = tiny_layout(images.path(), n);
        pushed.push(push_layout(&registry, &layout, &format!("down/app{n}:1")));
    }
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on {port}"
    );
    // Long enough for the registry to give up on immediate retries and back off.
    std::thread::sleep(Duration::from_secs(2));
    let mut server = Server::start(dir.path(), port, "", "");
    let mut jobs = std::collections::BTreeSet::new();
    for digest in &pushed {
        jobs.insert(only_verdict(&server, digest)["job_id"].to_string());
    }
    assert_eq!(jobs.len(), 3);
    assert_eq!(server.jobs(), 3.0, "{}", server.log());
    assert_eq!(
        server.metric("drydock_webhook_events_total{outcome=\"enqueued\"}"),
        3.0
    );

    // Down again (a rollout): more pushes meanwhile, then the server is back on its store.
    assert_eq!(terminate(&mut server).code(), Some(0), "{}", server.log());
    drop(server);
    for n in 3..6 {
        let layout = tiny_layout(images.path(), n);
        pushed.push(push_layout(&registry, &layout, &format!("down/app{n}:1")));
    }
    // The same image under another name while down: one more event, no more jobs.
    let again = push_layout(&registry, &images.path().join("image-3"), "down/again:1");
    assert_eq!(again, pushed[3]);
    std::thread::sleep(Duration::from_secs(2));
    let server = Server::start(dir.path(), port, "", "");
    for digest in &pushed {
        jobs.insert(only_verdict(&server, digest)["job_id"].to_string());
    }
    assert_eq!(jobs.len(), 6);
    // The queued events all arrive, in order: the last one is the repeated image's.
    eventually("the repeated image's event", || {
        (server.metric("drydock_webhook_events_total{outcome=\"deduplicated\"}") >= 1.0)
            .then_some(())
    });
    assert_eq!(server.jobs(), 6.0, "{}", server.log());
    assert_eq!(server.metric("drydock_jobs{state=\"done\"}"), 6.0);
    assert_eq!(
        server.metric("drydock_webhook_events_total{outcome=\"enqueued\"}"),
        3.0
    );
}

/// Loopback load: 200 distinct images pushed through the registry, 4 clients at once, while
/// two workers scan. Every push's event arrives and makes exactly one job and one verdict.
/// (How fast is measured by `cargo xtask bench-serve`, not asserted here.)
#[test]
fn serve_200_pushes_make_200_jobs_and_200_verdicts() {
    const IMAGES: usize = 200;
    const CLIENTS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port, "workers = 2", "");
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, true));
    let layouts: Vec<PathBuf> = (0..IMAGES).map(|n| tiny_layout(images.path(), n)).collect();
    let mut pushed: Vec<(usize, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (registry, layouts) = (&registry, &layouts);
                scope.spawn(move || {
                    (client..IMAGES)
                        .step_by(CLIENTS)
                        .map(|n| {
                            let repository = format!("load/app{n}");
                            (n, push_layout_http(registry, &layouts[n], &repository, "1"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    pushed.sort();
    let digests: std::collections::BTreeSet<&str> =
        pushed.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(digests.len(), IMAGES, "the images are not distinct");

    // Every job done (none failed); generous, as other work may share the machine.
    let started = Instant::now();
    loop {
        let text = server.metrics();
        let done = Server::metric_in(&text, "drydock_jobs{state=\"done\"}");
        let failed = Server::metric_in(&text, "drydock_jobs{state=\"failed\"}");
        assert_eq!(failed, 0.0, "{}", server.log());
        if done >= IMAGES as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{done} of {IMAGES} jobs done\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut jobs = std::collections::BTreeSet::new();
    for (n, digest) in &pushed {
        let answer = server.get(&format!("/v1/verdicts/{digest}"));
        assert_eq!(answer.status, 200, "image {n}: {}", answer.text());
        let answer = answer.json();
        let verdicts = answer["verdicts"].as_array().unwrap();
        assert_eq!(verdicts.len(), 1, "image {n}: {answer}");
        assert_eq!(verdicts[0]["digest"], digest.as_str());
        assert_eq!(
            verdicts[0]["repository"],
            format!("{}/load/app{n}", registry.host())
        );
        jobs.insert(verdicts[0]["job_id"].to_string());
    }
    assert_eq!(jobs.len(), IMAGES, "a job made two verdicts");
    let text = server.metrics();
    assert_eq!(server.jobs(), IMAGES as f64);
    assert_eq!(
        Server::metric_in(&text, "drydock_webhook_events_total{outcome=\"enqueued\"}"),
        IMAGES as f64
    );
    assert_eq!(
        Server::metric_in(&text, "drydock_scan_seconds_count"),
        IMAGES as f64
    );
    assert_eq!(Server::metric_in(&text, "drydock_queue_depth"), 0.0);
}

#[test]
fn serve_admission_of_a_multi_platform_index_takes_the_worst_platform() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(
        dir.path(),
        port,
        "on_miss = \"deny\"\nadmission_without_token = true",
        "",
    );
    let registry = Registry::start(Auth::Anonymous, false);
    let host = registry.host();
    // An index whose amd64 image passes and whose arm64 image fails its gate.
    let good = push(&registry, "static-go", "mixed/app:good", &[]);
    let bad = push(&registry, "glibc-on-musl", "mixed/app:bad", &[]);
    let manifest_size = |digest: &str| {
        let answer = http(
            registry.port,
            "GET",
            &format!("/v2/mixed/app/manifests/{digest}"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            b"",
        );
        assert_eq!(answer.status, 200);
        answer.body.len()
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": good,
             "size": manifest_size(&good), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": bad,
             "size": manifest_size(&bad), "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    });
    let answer = http(
        registry.port,
        "PUT",
        "/v2/mixed/app/manifests/1",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        index.to_string().as_bytes(),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let index_digest = answer.header("docker-content-digest").unwrap().to_owned();
    let answer = server.post_json(
        "/v1/scans",
        &serde_json::json!({"image": format!("{host}/mixed/app:1")}),
    );
    assert_eq!(answer.status, 202, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(server.finished(&id)["state"], "done", "{}", server.log());
    let verdict = server.verdict(&index_digest);
    assert_eq!(verdict["passed"], false, "{verdict}");
    assert_eq!(
        verdict["verdicts"].as_array().unwrap().len(),
        2,
        "{verdict}"
    );

    let validate = |image: String| {
        let body = review("uid-index", "Pod", pod(&[&image]), false);
        let answer = http(
            port,
            "POST",
            "/k8s/validate",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["response"].clone()
    };
    for image in [
        format!("{host}/mixed/app:1"),
        format!("{host}/mixed/app@{index_digest}"),
    ] {
        let response = validate(image.clone());
        assert_eq!(response["allowed"], false, "{image}: {response}");
        // The failing child's verdict is the reason, the passing one's is not.
        let message = response["status"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(" F "), "{image}: {message}");
        assert!(!message.contains(" A "), "{image}: {message}");
    }
    // The passing platform alone is allowed.
    let response = validate(format!("{host}/mixed/app@{good}"));
    assert_eq!(response["allowed"], true, "{response}");
}

#[test]
fn serve_attaches_the_report_that_verdict_reads_and_its_referrers_make_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port, "attach = [\"report\", \"sarif\"]", "");
    let registry = Registry::start_with(Auth::Anonymous, false, &notifications(port, true));
    let digest = push(&registry, "static-go", "attached/app:1", &[]);
    let answer = server.verdict(&digest);
    assert_eq!(answer["passed"], true, "{answer}");
    let reference = format!("{}/attached/app:1", registry.host());
    let verdict = eventually("the attached report", || {
        let (output, _home) = crate::registry_support::isolated(
            &["verdict", &reference, "--format", "json"],
            &[],
            None,
        );
        (output.status.code() != Some(5)).then_some(output)
    });
    assert_eq!(
        verdict.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&verdict.stderr),
        server.log()
    );
    let report: serde_json::Value = serde_json::from_slice(&verdict.stdout).unwrap();
    assert_eq!(report["image"]["manifest_digest"], digest);
    assert!(
        server.log().contains("attached 2 referrer(s)"),
        "{}",
        server.log()
    );
    // The referrers and the `sha256-<hex>` index the server pushed are not images to scan.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.jobs(), 1.0, "{}", server.log());
}
