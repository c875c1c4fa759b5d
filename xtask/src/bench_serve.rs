//! `cargo xtask bench-serve`: `drydock serve` (release build, two workers) under the load of
//! pushes of distinct tiny images through the real registry (Debian's `docker-registry`) on
//! loopback, with notifications pointing at it. Measured, never asserted:
//!
//! - scans per minute, twice: from the first of 200 pushes to the last verdict stored (the
//!   pushes set the pace when the workers keep up), and the rate at which the workers drain a
//!   backlog of 200 more events that the registry held while drydock could not be reached;
//! - the webhook's answer time as the registry sees it: a proxy between the registry and
//!   drydock times each notification POST from its last byte in to the answer's last byte
//!   (the proxy also plays the unreachable server for the backlog);
//! - `GET /v1/verdicts/{digest}` answer times from a keep-alive client loop, during the load
//!   and once it is over;
//! - the serve process's peak RSS (`VmHWM` in `/proc/PID/status`).
//!
//! The results go to the "drydock serve" section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::blob::{digest, gzip};
use crate::cmd::{cargo, run};
use crate::registry::LoopbackRegistry;

/// Images per phase.
const IMAGES: usize = 200;
/// Clients pushing at once.
const CLIENTS: usize = 4;
const WORKERS: usize = 2;
/// Verdict lookups in the idle loop, after the load.
const IDLE_LOOKUPS: usize = 4000;
const TOKEN: &str = "bench-serve-token";
const SECTION: &str = "## drydock serve";

pub fn run_bench(root: &Path) -> anyhow::Result<()> {
    run(cargo().args(["build", "--release", "--locked", "--bin", "drydock"]))?;
    let binary = root.join("target/release/drydock");
    let dir = root.join("target/bench/serve");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    let images: Vec<Image> = (0..2 * IMAGES)
        .map(Image::new)
        .collect::<anyhow::Result<_>>()?;
    let (live, backlog) = images.split_at(IMAGES);

    let serve_port = free_port()?;
    let proxy = Proxy::start(serve_port)?;
    let registry = start_registry(&dir.join("registry"), proxy.port)?;
    let server = Server::start(&binary, &dir.join("serve"), serve_port)?;

    // Phase 1: pushes while drydock listens, and lookups meanwhile (of the digests pushed so
    // far: hits and misses alike).
    let pushed: Arc<Mutex<Vec<String>>> = Arc::default();
    let loaded = Arc::new(AtomicBool::new(false));
    let busy_lookups = {
        let (pushed, loaded) = (Arc::clone(&pushed), Arc::clone(&loaded));
        thread::spawn(move || -> anyhow::Result<Vec<f64>> {
            let mut client = Client::connect(serve_port)?;
            let mut times = Vec::new();
            let mut n = 0usize;
            while !loaded.load(Ordering::Relaxed) {
                let digest = pushed
                    .lock()
                    .ok()
                    .and_then(|p| (!p.is_empty()).then(|| p[n % p.len()].clone()));
                let Some(digest) = digest else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                n += 1;
                let started = Instant::now();
                let (status, _) = client.get(&format!("/v1/verdicts/{digest}"))?;
                times.push(started.elapsed().as_secs_f64());
                ensure!(matches!(status, 200 | 404), "a lookup answered {status}");
                thread::sleep(Duration::from_millis(5));
            }
            Ok(times)
        })
    };
    eprintln!("phase 1: pushing {IMAGES} images with {CLIENTS} clients");
    let started = Instant::now();
    let pushes_took = push_all(live, registry.port, &pushed)?;
    eprintln!(
        "pushed in {:.1} s; waiting for the verdicts",
        pushes_took.as_secs_f64()
    );
    let (done_at, _) = server.wait_done(IMAGES)?;
    let live_took = done_at - started;
    loaded.store(true, Ordering::Relaxed);
    let busy = busy_lookups
        .join()
        .map_err(|_| anyhow::anyhow!("the lookup loop panicked"))??;
    let live_hooks = proxy.hooks_since(started);

    // Phase 2: drydock unreachable (the proxy drops every connection) while 200 more images
    // are pushed; the registry keeps the events and retries; then it is reachable again and
    // the workers drain the backlog.
    eprintln!("phase 2: pushing {IMAGES} images while drydock cannot be reached");
    proxy.hold(true);
    push_all(backlog, registry.port, &Mutex::default())?;
    thread::sleep(Duration::from_secs(2));
    let released = Instant::now();
    proxy.hold(false);
    let (drained_at, metrics) = server.wait_done(2 * IMAGES)?;
    let backlog_hooks = proxy.hooks_since(released);
    let first_delivery = backlog_hooks
        .iter()
        .map(|(at, _)| *at)
        .min()
        .context("no event delivered after the release")?;
    let drain_took = drained_at - first_delivery;

    // Every image has its verdict (checked, since a bench that lost events measures nothing).
    let mut client = Client::connect(serve_port)?;
    for image in &images {
        let (status, _) = client.get(&format!("/v1/verdicts/{}", image.manifest_digest))?;
        ensure!(status == 200, "no verdict for {}", image.manifest_digest);
    }
    let mut idle = Vec::with_capacity(IDLE_LOOKUPS);
    for n in 0..IDLE_LOOKUPS {
        let path = format!("/v1/verdicts/{}", images[n % images.len()].manifest_digest);
        let started = Instant::now();
        let (status, _) = client.get(&path)?;
        idle.push(started.elapsed().as_secs_f64());
        ensure!(status == 200, "a lookup answered {status}");
    }
    let peak_rss_kib = server.peak_rss_kib()?;
    let scan_count = metric(&metrics, "drydock_scan_seconds_count");
    let scan_sum = metric(&metrics, "drydock_scan_seconds_sum");
    let seconds = |hooks: &[(Instant, f64)]| hooks.iter().map(|(_, s)| *s).collect::<Vec<_>>();
    let results = Results {
        pushes_took,
        live_took,
        drain_took,
        live_hooks: seconds(&live_hooks),
        backlog_hooks: seconds(&backlog_hooks),
        busy,
        idle,
        peak_rss_kib,
        mean_scan: if scan_count > 0.0 {
            scan_sum / scan_count
        } else {
            0.0
        },
        enqueued: metric(
            &metrics,
            "drydock_webhook_events_total{outcome=\"enqueued\"}",
        ),
        duplicates: metric(
            &metrics,
            "drydock_webhook_events_total{outcome=\"duplicate\"}",
        ),
    };
    drop(server);
    drop(registry);
    proxy.stop();
    let section = render(&results)?;
    write_section(root, &section)?;
    eprintln!("{section}");
    Ok(())
}

/// Pushes `images` with `CLIENTS` clients at once, noting each digest in `pushed`; returns the
/// time it took.
fn push_all(images: &[Image], port: u16, pushed: &Mutex<Vec<String>>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    thread::scope(|scope| -> anyhow::Result<()> {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for image in images.iter().skip(client).step_by(CLIENTS) {
                        image.push(port)?;
                        if let Ok(mut pushed) = pushed.lock() {
                            pushed.push(image.manifest_digest.clone());
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for client in clients {
            client
                .join()
                .map_err(|_| anyhow::anyhow!("a push client panicked"))??;
        }
        Ok(())
    })?;
    Ok(started.elapsed())
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn wait_for(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not start on port {port}")
}

/// The value of the metric line `name` (with its labels) in Prometheus text, 0 when absent.
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// One tiny image: one gzip layer holding one small file of its own.
struct Image {
    n: usize,
    blobs: Vec<(String, Vec<u8>)>,
    manifest: Vec<u8>,
    manifest_digest: String,
}

impl Image {
    fn new(n: usize) -> anyhow::Result<Self> {
        let content = format!("image number {n}\n");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_path(format!("etc/drydock-bench-{n}"))?;
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, content.as_bytes())?;
        let tar = builder.into_inner()?;
        let layer = gzip(&tar, flate2::Compression::fast())?;
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]},
            "history": [{"created_by": format!("bench image {n}")}],
        }))?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(&layer), "size": layer.len()}],
        }))?;
        Ok(Self {
            n,
            manifest_digest: digest(&manifest),
            blobs: vec![(digest(&config), config), (digest(&layer), layer)],
            manifest,
        })
    }

    /// Each blob (POST, then PUT with the digest), then the manifest under tag `1`.
    fn push(&self, port: u16) -> anyhow::Result<()> {
        let repository = format!("bench/app{}", self.n);
        for (blob_digest, bytes) in &self.blobs {
            let (status, headers, _) = request(
                port,
                "POST",
                &format!("/v2/{repository}/blobs/uploads/"),
                &[],
                b"",
            )?;
            ensure!(status == 202, "starting an upload: {status}");
            let location = header(&headers, "location").context("no upload location")?;
            let path = location.find("/v2/").map_or(location, |s| &location[s..]);
            let separator = if path.contains('?') { '&' } else { '?' };
            let (status, _, body) = request(
                port,
                "PUT",
                &format!("{path}{separator}digest={blob_digest}"),
                &[("Content-Type", "application/octet-stream")],
                bytes,
            )?;
            ensure!(
                status == 201,
                "uploading a blob: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        let (status, _, body) = request(
            port,
            "PUT",
            &format!("/v2/{repository}/manifests/1"),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            &self.manifest,
        )?;
        ensure!(
            status == 201,
            "pushing a manifest: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Ok(())
    }
}

type Headers = Vec<(String, String)>;

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one HTTP/1.1 message head (start line and headers) and its `Content-Length` body.
/// `None` at a clean end of stream.
fn read_message(
    reader: &mut BufReader<TcpStream>,
) -> anyhow::Result<Option<(String, Headers, Vec<u8>)>> {
    let mut start = String::new();
    if reader.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        ensure!(
            reader.read_line(&mut line)? > 0,
            "the stream ended in a head"
        );
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    ensure!(
        header(&headers, "transfer-encoding").is_none(),
        "a chunked message (not expected here)"
    );
    let length: usize = header(&headers, "content-length")
        .map(str::parse)
        .transpose()?
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some((start.trim_end().to_owned(), headers, body)))
}

fn status_of(start: &str) -> anyhow::Result<u16> {
    start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not a status line: {start}"))
}

fn write_request(
    stream: &mut TcpStream,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> anyhow::Result<()> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if close {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message)?;
    Ok(())
}

/// One request on a fresh connection.
pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, Headers, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write_request(&mut stream, port, method, path, headers, body, true)?;
    let mut reader = BufReader::new(stream);
    let (start, headers, body) = read_message(&mut reader)?.context("no answer")?;
    Ok((status_of(&start)?, headers, body))
}

/// A keep-alive client of `drydock serve`, with the token.
struct Client {
    port: u16,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            port,
            reader: BufReader::new(stream),
        })
    }

    fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let authorization = format!("Bearer {TOKEN}");
        write_request(
            self.reader.get_mut(),
            self.port,
            "GET",
            path,
            &[("Authorization", &authorization)],
            b"",
            false,
        )?;
        let (start, _, body) = read_message(&mut self.reader)?.context("no answer")?;
        Ok((status_of(&start)?, body))
    }
}

/// Sits between the registry and drydock and times every notification POST: from the moment
/// the whole request is in to the moment the whole answer is back from drydock. While held, it
/// drops every connection, as an unreachable server would look to the registry.
struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    /// When each notification POST went out to drydock, and how long its answer took (s).
    hooks: Mutex<Vec<(Instant, f64)>>,
    hold: AtomicBool,
    stop: AtomicBool,
}

impl Proxy {
    fn start(upstream: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ProxyState::default());
        let accept_state = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_state.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if accept_state.hold.load(Ordering::Relaxed) {
                    continue;
                }
                let state = Arc::clone(&accept_state);
                thread::spawn(move || {
                    if let Err(e) = Self::relay(stream, upstream, &state) {
                        eprintln!("proxy: {e:#}");
                    }
                });
            }
        });
        Ok(Self { port, state })
    }

    fn relay(client: TcpStream, upstream: u16, state: &ProxyState) -> anyhow::Result<()> {
        client.set_nodelay(true)?;
        let mut client_writer = client.try_clone()?;
        let mut client = BufReader::new(client);
        let server = TcpStream::connect(("127.0.0.1", upstream))?;
        server.set_nodelay(true)?;
        let mut server_writer = server.try_clone()?;
        let mut server = BufReader::new(server);
        while let Some((start, headers, body)) = read_message(&mut client)? {
            if state.hold.load(Ordering::Relaxed) {
                // Dropped unanswered: the registry retries the event later.
                return Ok(());
            }
            let mut message = format!("{start}\r\n");
            for (name, value) in &headers {
                let _ = write!(message, "{name}: {value}\r\n");
            }
            message.push_str("\r\n");
            let mut message = message.into_bytes();
            message.extend_from_slice(&body);
            let started = Instant::now();
            server_writer.write_all(&message)?;
            let (answer_start, answer_headers, answer_body) =
                read_message(&mut server)?.context("drydock closed the connection")?;
            let took = started.elapsed().as_secs_f64();
            if start.starts_with("POST /hooks/registry")
                && let Ok(mut hooks) = state.hooks.lock()
            {
                hooks.push((started, took));
            }
            let mut answer = format!("{answer_start}\r\n");
            for (name, value) in &answer_headers {
                let _ = write!(answer, "{name}: {value}\r\n");
            }
            answer.push_str("\r\n");
            let mut answer = answer.into_bytes();
            answer.extend_from_slice(&answer_body);
            client_writer.write_all(&answer)?;
        }
        Ok(())
    }

    fn hold(&self, hold: bool) {
        self.state.hold.store(hold, Ordering::Relaxed);
    }

    /// The notification POSTs that went out at or after `since`.
    fn hooks_since(&self, since: Instant) -> Vec<(Instant, f64)> {
        self.state
            .hooks
            .lock()
            .map(|h| h.iter().filter(|(at, _)| *at >= since).copied().collect())
            .unwrap_or_default()
    }

    fn stop(self) {
        self.state.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// `docker-registry` with notifications to `hook_port`, configured as docs/serve.md says.
fn start_registry(dir: &Path, hook_port: u16) -> anyhow::Result<LoopbackRegistry> {
    LoopbackRegistry::start(
        dir,
        &format!(
            "notifications:\n  events:\n    includereferences: true\n  endpoints:\n\
             \x20   - name: drydock\n      url: http://127.0.0.1:{hook_port}/hooks/registry\n\
             \x20     headers:\n        Authorization: [Bearer {TOKEN}]\n      timeout: 2s\n\
             \x20     threshold: 3\n      backoff: 1s\n\
             \x20     ignoredmediatypes: [application/octet-stream]\n      ignore:\n\
             \x20       mediatypes: [application/octet-stream]\n        actions: [pull]\n"
        ),
    )
}

/// The release `drydock serve`, logging to a file in its directory.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(binary: &Path, dir: &Path, port: u16) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)?;
        let config = dir.join("serve.toml");
        fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nstore = \"{}\"\ncache_dir = \"{}\"\n\
                 workers = {WORKERS}\ntokens = [\"{TOKEN}\"]\n",
                dir.join("serve.db").display(),
                dir.join("blobs").display()
            ),
        )?;
        let log = dir.join("serve.log");
        let child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config)
            .env("HOME", dir)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DRYDOCK_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?;
        let server = Self { child, port, log };
        wait_for(port, "drydock serve")?;
        Ok(server)
    }

    fn metrics(&self) -> anyhow::Result<String> {
        let authorization = format!("Bearer {TOKEN}");
        let (status, _, body) = request(
            self.port,
            "GET",
            "/metrics",
            &[("Authorization", &authorization)],
            b"",
        )?;
        ensure!(status == 200, "/metrics answered {status}");
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Waits until `n` jobs are done (none failed): when that was seen, and the metrics then.
    fn wait_done(&self, n: usize) -> anyhow::Result<(Instant, String)> {
        let started = Instant::now();
        loop {
            let metrics = self.metrics()?;
            let done = metric(&metrics, "drydock_jobs{state=\"done\"}");
            let failed = metric(&metrics, "drydock_jobs{state=\"failed\"}");
            ensure!(
                failed == 0.0,
                "{failed} scan(s) failed; see {}",
                self.log.display()
            );
            if done >= n as f64 {
                return Ok((Instant::now(), metrics));
            }
            ensure!(
                started.elapsed() < Duration::from_secs(900),
                "{done} of {n} scans done after 15 minutes"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `VmHWM` of the running process, in KiB.
    fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Results {
    pushes_took: Duration,
    /// From the first push of phase 1 to its last verdict.
    live_took: Duration,
    /// From the first backlog event delivered to the last verdict of phase 2.
    drain_took: Duration,
    live_hooks: Vec<f64>,
    backlog_hooks: Vec<f64>,
    busy: Vec<f64>,
    idle: Vec<f64>,
    peak_rss_kib: u64,
    mean_scan: f64,
    enqueued: f64,
    duplicates: f64,
}

/// The `q` quantile (nearest rank) of `values`, in milliseconds.
fn quantile_ms(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] * 1000.0
}

pub(crate) fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    format!("{cores} cores ({model}); load average {load} at the end of the run")
}

fn render(r: &Results) -> anyhow::Result<String> {
    let per_minute = |took: Duration| IMAGES as f64 * 60.0 / took.as_secs_f64();
    let ms = |values: &[f64]| {
        format!(
            "{:.2} / {:.2} ms",
            quantile_ms(values, 0.5),
            quantile_ms(values, 0.99)
        )
    };
    let mut out = String::new();
    writeln!(out, "{SECTION}\n")?;
    writeln!(
        out,
        "Measured by `cargo xtask bench-serve` on {}. Other work may have been running on the \
         machine at the same time. A release `drydock serve` with {WORKERS} workers and its \
         SQLite store, and Debian's `docker-registry` 2.8.2 with notifications pointing at it \
         (`timeout: 2s`, `threshold: 3`, `backoff: 1s`, blob events filtered as \
         [docs/serve.md](serve.md) says), all on loopback. Each image is distinct and tiny (one \
         gzip layer holding one small file), pushed with plain HTTP (each blob, then the \
         manifest by tag) by {CLIENTS} clients at once; every push's event makes one scan, which \
         pulls the manifest, config and layer back from the registry.\n\n\
         - **live**: {IMAGES} pushes while drydock listens; the rate is from the first push to \
         the last verdict stored, so it is the pushes' pace whenever the workers keep up.\n\
         - **backlog**: {IMAGES} more pushes while drydock cannot be reached (a proxy in front \
         of it drops every connection, the registry keeps the events and retries them); the \
         rate is from the first event delivered once it is reachable to the last verdict: what \
         the workers can do.\n\n\
         Webhook answer times are timed by that proxy, between the registry and drydock: from \
         the whole notification POST in to the whole answer back. Verdict lookups are \
         `GET /v1/verdicts/{{digest}}` on one keep-alive connection, during the live phase \
         (digests pushed so far: hits and misses) and after both phases (hits).\n",
        machine()
    )?;
    writeln!(out, "| measure | value |\n|---|---:|")?;
    writeln!(
        out,
        "| live: scans per minute ({IMAGES} pushes in {:.1} s, last verdict at {:.1} s) | {:.0} |",
        r.pushes_took.as_secs_f64(),
        r.live_took.as_secs_f64(),
        per_minute(r.live_took)
    )?;
    writeln!(
        out,
        "| backlog: scans per minute ({IMAGES} queued events drained in {:.1} s) | {:.0} |",
        r.drain_took.as_secs_f64(),
        per_minute(r.drain_took)
    )?;
    writeln!(
        out,
        "| mean scan of a tiny image (`drydock_scan_seconds`) | {:.0} ms |",
        r.mean_scan * 1000.0
    )?;
    writeln!(
        out,
        "| live: webhook answer p50 / p99 ({} POSTs) | {} |",
        r.live_hooks.len(),
        ms(&r.live_hooks)
    )?;
    writeln!(
        out,
        "| backlog: webhook answer p50 / p99 ({} POSTs back to back, while the workers scan) | {} |",
        r.backlog_hooks.len(),
        ms(&r.backlog_hooks)
    )?;
    writeln!(
        out,
        "| live: verdict lookup p50 / p99 ({} lookups) | {} |",
        r.busy.len(),
        ms(&r.busy)
    )?;
    writeln!(
        out,
        "| after the load: verdict lookup p50 / p99 ({} lookups) | {} |",
        r.idle.len(),
        ms(&r.idle)
    )?;
    writeln!(
        out,
        "| peak RSS of the serve process (`VmHWM`, {} scans) | {:.1} MiB |",
        2 * IMAGES,
        r.peak_rss_kib as f64 / 1024.0
    )?;
    writeln!(
        out,
        "| events enqueued / redelivered after a registry timeout | {:.0} / {:.0} |\n",
        r.enqueued, r.duplicates
    )?;
    writeln!(
        out,
        "Reproduce: `cargo xtask bench-serve` (needs `docker-registry`, which `cargo xtask test` \
         installs; the working files stay under `target/bench/serve/`). The tests \
         `serve_200_pushes_make_200_jobs_and_200_verdicts` and \
         `serve_events_pushed_while_the_server_is_down_are_processed_when_it_is_up` in \
         `tests/it/serve.rs` run the same two situations and check that every digest gets \
         exactly one job and one verdict; they assert no timing."
    )?;
    Ok(out)
}

/// Replaces the "drydock serve" section of `docs/benchmarks.md`, or appends it at the end;
/// every other section is left as it is.
fn write_section(root: &Path, section: &str) -> anyhow::Result<()> {
    let path = root.join("docs/benchmarks.md");
    let existing = fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let heading = format!("\n{SECTION}\n");
    let updated = match existing.find(&heading) {
        Some(at) => {
            let start = at + 1;
            let body = start + SECTION.len() + 1;
            match existing[body..].find("\n## ") {
                Some(e) => format!(
                    "{}{section}\n{}",
                    &existing[..start],
                    &existing[body + e + 1..]
                ),
                None => format!("{}{section}", &existing[..start]),
            }
        }
        None => format!("{}\n\n{section}", existing.trim_end_matches('\n')),
    };
    fs::write(&path, updated)?;
    Ok(())
}
