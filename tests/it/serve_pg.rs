//! `drydock serve` replicas on PostgreSQL: a throwaway cluster (`initdb` from Debian's
//! `postgresql` packages, in a temporary directory, on a loopback port), two `drydock serve`
//! processes on it, and the real registry notifying both (one endpoint each: the fan-out).
//! Loopback only.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use drydock_serve::{PostgresStore, Store};

use crate::registry_support::{Auth, Registry, free_port, tls_files, wait_for};
use crate::serve::{
    AUTH, Answer, TOKEN, eventually, http, push_layout_http, spawn_serve, tiny_layout,
};
use crate::support::{RawLayer, TarEntry, run, stdout, write_layout};

/// What `psql` answers to `sql` on the database at `url`, unaligned and trimmed.
fn psql(url: &str, sql: &str) -> String {
    let output = Command::new(postgres_bin().join("psql"))
        .args([url, "-Atc", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e} (install Debian's `postgresql`)", root.display()))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|version| root.join(version.to_string()).join("bin/initdb").exists())
        .max()
        .expect("a PostgreSQL server under /usr/lib/postgresql (Debian's `postgresql`)");
    root.join(newest.to_string()).join("bin")
}

/// The `postgres` system user's uid and gid, when we are root (PostgreSQL refuses to run as
/// root); `None` runs the cluster as ourselves.
fn cluster_user() -> Option<(u32, u32)> {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("the `postgres` system user (Debian's postgresql-common makes it)");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

/// A throwaway PostgreSQL cluster on a loopback port, removed with its directory on drop.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    port: u16,
    server: Option<Child>,
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn start() -> Self {
        Self::start_with_tls(None)
    }

    /// A cluster that speaks TLS with `tls` (a certificate and its key, PEM files) when given.
    fn start_with_tls(tls: Option<(&Path, &Path)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let user = cluster_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut cluster = Self {
            dir,
            bin: postgres_bin(),
            user,
            port: free_port(),
            server: None,
        };
        let output = cluster
            .command("initdb")
            .args(["-D", "data", "-U", "drydock", "-A", "trust", "--no-sync"])
            .args(["--no-locale", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if let Some((cert, key)) = tls {
            let data = cluster.dir.path().join("data");
            std::fs::copy(cert, data.join("server.crt")).unwrap();
            std::fs::copy(key, data.join("server.key")).unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            if let Some((uid, gid)) = cluster.user {
                for file in ["server.crt", "server.key"] {
                    std::os::unix::fs::chown(data.join(file), Some(uid), Some(gid)).unwrap();
                }
            }
            let mut conf = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .unwrap();
            std::io::Write::write_all(&mut conf, b"\nssl = on\n").unwrap();
        }
        cluster.run();
        cluster
    }

    fn url(&self) -> String {
        format!(
            "postgres://drydock@127.0.0.1:{}/postgres?connect_timeout=2",
            self.port
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Starts the server and waits until it accepts connections.
    fn run(&mut self) {
        assert!(self.server.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .unwrap();
        let socket_dir = self.dir.path().display().to_string();
        let server = self
            .command("postgres")
            .args([
                "-D",
                "data",
                "-p",
                &self.port.to_string(),
                "-k",
                &socket_dir,
            ])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(server);
        let started = Instant::now();
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .unwrap();
            if ready.success() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server: `fast` (SIGINT) ends every session and shuts down cleanly; otherwise
    /// SIGQUIT, an immediate stop as a crash would.
    fn stop(&mut self, fast: bool) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        let signal = if fast { "-INT" } else { "-QUIT" };
        let _ = Command::new("kill")
            .args([signal, &server.id().to_string()])
            .status();
        let _ = server.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop(false);
    }
}

/// A running `drydock serve` replica on the cluster.
struct Replica {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    /// Starts replica `name` on `port`; `top` adds top-level configuration lines, `testing`
    /// the `[testing]` table's.
    fn start(dir: &Path, name: &str, port: u16, store: &str, top: &str, testing: &str) -> Self {
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"{store}\"\ncache_dir = \"{}\"\n\
             node = \"{name}\"\ntokens = [\"{TOKEN}\"]\nshutdown_grace_seconds = 5\n{top}\n\
             [testing]\n{testing}\n",
            dir.join(format!("blobs-{name}")).display(),
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = spawn_serve(&path, dir, &log);
        wait_for(port);
        Self { child, port, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Answer {
        http(self.port, "GET", path, &[AUTH], b"")
    }

    fn metrics(&self) -> String {
        let answer = self.get("/metrics");
        assert_eq!(answer.status, 200, "{}", self.log());
        answer.text()
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    fn metric(&self, name: &str) -> f64 {
        metric_in(&self.metrics(), name)
    }

    /// The jobs in the store by state (from one scrape; the store is shared).
    fn jobs(&self) -> [f64; 4] {
        let text = self.metrics();
        ["queued", "running", "done", "failed"]
            .map(|state| metric_in(&text, &format!("drydock_jobs{{state=\"{state}\"}}")))
    }

    /// The one verdict of `digest` (waiting for it), and the job that made it, which must be
    /// done: `(verdict, job)`.
    fn only_verdict(&self, digest: &str) -> (serde_json::Value, serde_json::Value) {
        let answer = eventually(&format!("a verdict for {digest}\n{}", self.log()), || {
            let answer = self.get(&format!("/v1/verdicts/{digest}"));
            (answer.status == 200).then(|| answer.json())
        });
        let verdicts = answer["verdicts"].as_array().unwrap();
        assert_eq!(verdicts.len(), 1, "{digest}: {answer}");
        let verdict = verdicts[0].clone();
        assert_eq!(verdict["digest"], digest);
        let job = self.get(&format!("/v1/scans/{}", verdict["job_id"])).json();
        assert_eq!(job["state"], "done", "{job}");
        (verdict, job)
    }
}

fn metric_in(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The registry's `notifications`: one endpoint per replica port (2.8.2's workaround for
/// pulls, as in `serve.rs`).
fn fan_out(ports: &[u16]) -> String {
    let mut yaml =
        String::from("notifications:\n  events:\n    includereferences: true\n  endpoints:\n");
    for port in ports {
        yaml.push_str(&format!(
            "    - name: drydock-{port}\n      url: http://127.0.0.1:{port}/hooks/registry\n      headers:\n        Authorization: [Bearer {TOKEN}]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n"
        ));
    }
    yaml
}

/// Pushes images `range` (tiny, distinct) with `clients` pushers at once; their digests in
/// order.
fn push_many(
    registry: &Registry,
    images: &Path,
    range: std::ops::Range<usize>,
    clients: usize,
) -> Vec<String> {
    let layouts: Vec<(usize, PathBuf)> = range.map(|n| (n, tiny_layout(images, n))).collect();
    let mut pushed: Vec<(usize, String)> = std::thread::scope(|scope| {
        let pushers: Vec<_> = (0..clients)
            .map(|client| {
                let layouts = &layouts;
                scope.spawn(move || {
                    layouts
                        .iter()
                        .skip(client)
                        .step_by(clients)
                        .map(|(n, layout)| {
                            let repository = format!("load/app{n}");
                            (*n, push_layout_http(registry, layout, &repository, "1"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        pushers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect()
    });
    pushed.sort();
    pushed.into_iter().map(|(_, digest)| digest).collect()
}

/// Waits until `want` jobs are done (none failed, none left), as the store says.
fn wait_all_done(replica: &Replica, want: usize, others: &[&Replica]) {
    let started = Instant::now();
    loop {
        let [queued, running, done, failed] = replica.jobs();
        let logs = || {
            std::iter::once(replica)
                .chain(others.iter().copied())
                .map(Replica::log)
                .collect::<Vec<_>>()
                .join("\n----\n")
        };
        assert_eq!(failed, 0.0, "{}", logs());
        if done >= want as f64 {
            assert_eq!((queued, running, done), (0.0, 0.0, want as f64));
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "{done} of {want} jobs done ({queued} queued, {running} running)\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// 200 distinct images pushed through a registry that notifies both replicas: every event
/// arrives twice (once per replica), makes one job, and every digest is scanned once, by
/// one replica or the other, with one verdict.
#[test]
fn serve_pg_two_replicas_scan_200_pushes_once_each() {
    const IMAGES: usize = 200;
    let cluster = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let url = cluster.url();
    let a = Replica::start(dir.path(), "replica-a", port_a, &url, "workers = 2", "");
    let b = Replica::start(dir.path(), "replica-b", port_b, &url, "workers = 2", "");
    let registry = Registry::start_with(Auth::Anonymous, false, &fan_out(&[port_a, port_b]));
    let pushed = push_many(&registry, images.path(), 0..IMAGES, 4);
    let distinct: std::collections::BTreeSet<&String> = pushed.iter().collect();
    assert_eq!(distinct.len(), IMAGES, "the images are not distinct");

    wait_all_done(&a, IMAGES, &[&b]);
    let mut jobs = std::collections::BTreeSet::new();
    for (n, digest) in pushed.iter().enumerate() {
        // Either replica answers for every digest: the store is shared.
        let replica = if n % 2 == 0 { &a } else { &b };
        let (verdict, job) = replica.only_verdict(digest);
        assert_eq!(
            verdict["repository"],
            format!("{}/load/app{n}", registry.host())
        );
        assert_eq!(job["attempts"], 1, "{job}");
        jobs.insert(verdict["job_id"].to_string());
    }
    assert_eq!(jobs.len(), IMAGES, "a job made two verdicts");
    let (text_a, text_b) = (a.metrics(), b.metrics());
    let both = |name: &str| metric_in(&text_a, name) + metric_in(&text_b, name);
    // Scanned exactly once in all: each replica counts the scans it ran.
    assert_eq!(both("drydock_scan_seconds_count"), IMAGES as f64);
    // Each push made one job, wherever its event landed first; the other copy was known.
    assert_eq!(
        both("drydock_webhook_events_total{outcome=\"enqueued\"}"),
        IMAGES as f64
    );
    assert!(both("drydock_webhook_events_total{outcome=\"duplicate\"}") >= IMAGES as f64);
    assert_eq!(a.jobs(), [0.0, 0.0, IMAGES as f64, 0.0]);
}

/// Replica A (of `top` configuration) killed (SIGKILL) while it holds the only job, a scan of
/// a pushed image; then replica B started on the same store. Answers B and the digest.
fn kill_mid_scan(
    cluster: &Postgres,
    dir: &Path,
    images: &Path,
    top: &str,
) -> (Replica, Registry, String) {
    let (port_a, port_b) = (free_port(), free_port());
    let url = cluster.url();
    // Replica A's scans hold a minute before they start: it will be killed holding one.
    let mut a = Replica::start(dir, "replica-a", port_a, &url, top, "scan_delay_ms = 60000");
    let registry = Registry::start_with(Auth::Anonymous, false, &fan_out(&[port_a, port_b]));
    let digest = push_many(&registry, images, 0..1, 1).remove(0);
    eventually(&format!("the job to run\n{}", a.log()), || {
        (a.metric("drydock_jobs{state=\"running\"}") == 1.0).then_some(())
    });
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let log_a = a.log();
    // It held the job and never finished it.
    assert!(!log_a.contains(": done,"), "{log_a}");
    // B is another node: it does not take A's job back on start, only once the lease ran out.
    let b = Replica::start(dir, "replica-b", port_b, &url, top, "");
    (b, registry, digest)
}

/// A replica killed (SIGKILL) in the middle of a scan: its job stays `running` under its
/// lease, which nobody extends any more; once the lease ran out the other replica claims it
/// and finishes it (a second attempt), and no second job is made.
#[test]
fn serve_pg_a_killed_replicas_job_is_finished_by_the_other_after_its_lease() {
    let cluster = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let top = "workers = 1\nlease_seconds = 10";
    let (b, registry, digest) = kill_mid_scan(&cluster, dir.path(), images.path(), top);
    let (verdict, job) = b.only_verdict(&digest);
    assert_eq!(job["attempts"], 2, "{job}\n{}", b.log());
    assert_eq!(
        verdict["repository"],
        format!("{}/load/app0", registry.host())
    );
    assert_eq!(b.jobs(), [0.0, 0.0, 1.0, 0.0]);
    assert_eq!(b.metric("drydock_scan_seconds_count"), 1.0);
    assert!(!b.log().contains("interrupted job(s) back in the queue"));
}

/// With `max_attempts = 1`, the job of a replica killed mid-scan is not scanned again: the
/// replica that claims it after the lease fails it for good, the reason kept in the store,
/// and no verdict is made.
#[test]
fn serve_pg_a_job_interrupted_max_attempts_times_fails_for_good_with_its_reason() {
    let cluster = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let top = "workers = 1\nlease_seconds = 10\nmax_attempts = 1";
    let (b, _registry, digest) = kill_mid_scan(&cluster, dir.path(), images.path(), top);
    eventually(&format!("the job to fail\n{}", b.log()), || {
        (b.jobs() == [0.0, 0.0, 0.0, 1.0]).then_some(())
    });
    let job = b.get("/v1/scans/1").json();
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["digest"], digest);
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["error_class"], "internal", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 1 attempt: each stopped without an answer"),
        "{job}"
    );
    // Nothing was scanned, and there is no verdict to answer with.
    assert_eq!(b.metric("drydock_scan_seconds_count"), 0.0);
    assert_eq!(b.get(&format!("/v1/verdicts/{digest}")).status, 404);
}

/// PostgreSQL stopped and started again while replicas run and images are pushed: the
/// replicas report the store unreachable meanwhile, reconnect by themselves, and every push
/// (before, during and after) ends with one job and one verdict.
#[test]
fn serve_pg_replicas_reconnect_after_postgres_restarts() {
    let mut cluster = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let url = cluster.url();
    // Scans take a moment, so that some are running when the database goes away.
    let testing = "scan_delay_ms = 300";
    let a = Replica::start(
        dir.path(),
        "replica-a",
        port_a,
        &url,
        "workers = 1",
        testing,
    );
    let b = Replica::start(
        dir.path(),
        "replica-b",
        port_b,
        &url,
        "workers = 1",
        testing,
    );
    let registry = Registry::start_with(Auth::Anonymous, false, &fan_out(&[port_a, port_b]));
    let mut pushed = push_many(&registry, images.path(), 0..10, 2);
    assert_eq!(a.get("/readyz").status, 200);

    cluster.stop(true);
    for replica in [&a, &b] {
        eventually("/readyz to report the store unreachable", || {
            (http(replica.port, "GET", "/readyz", &[], b"").status == 503).then_some(())
        });
    }
    // Pushed while the database is down: the registry keeps redelivering the events.
    pushed.extend(push_many(&registry, images.path(), 10..15, 2));
    cluster.run();
    for replica in [&a, &b] {
        eventually(&format!("/readyz again\n{}", replica.log()), || {
            (http(replica.port, "GET", "/readyz", &[], b"").status == 200).then_some(())
        });
    }
    pushed.extend(push_many(&registry, images.path(), 15..20, 2));

    wait_all_done(&a, 20, &[&b]);
    let mut jobs = std::collections::BTreeSet::new();
    for digest in &pushed {
        let (verdict, _) = b.only_verdict(digest);
        jobs.insert(verdict["job_id"].to_string());
    }
    assert_eq!(jobs.len(), 20);
    assert_eq!(b.jobs(), [0.0, 0.0, 20.0, 0.0], "{}", cluster.log());
    let events = metric_in(
        &a.metrics(),
        "drydock_webhook_events_total{outcome=\"enqueued\"}",
    ) + metric_in(
        &b.metrics(),
        "drydock_webhook_events_total{outcome=\"enqueued\"}",
    );
    // Never a second job for an event. Not always exactly 20 "enqueued": an insert that
    // committed as the database went away is retried, and the retry finds its own event id
    // and counts it a duplicate (the jobs above show that nothing was lost).
    assert!((15.0..=20.0).contains(&events), "{events} events enqueued");
}

/// The store itself, on the cluster: migrations by replicas starting at once, the claim under
/// contention (no job taken twice), the lease, and the subject lock serialising callers
/// across two stores (two replicas' pools).
#[test]
fn serve_pg_store_claims_migrations_and_subject_locks() {
    let cluster = Postgres::start();
    let url = cluster.url();
    // Four replicas starting at once: each migration applies once, nobody fails.
    let stores: Vec<PostgresStore> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| PostgresStore::connect(&url, 4)))
            .collect();
        started
            .into_iter()
            .map(|s| s.join().unwrap().unwrap())
            .collect()
    });
    // Every migration (the schema, then the layer facts table) applied once.
    assert_eq!(psql(&url, "SELECT count(*) FROM schema_version"), "2");
    // The same database through its Unix socket (the directory as the host).
    let socket = format!(
        "postgres://drydock@{}:{}/postgres",
        cluster.dir.path().display().to_string().replace('/', "%2F"),
        cluster.port
    );
    PostgresStore::connect(&socket, 2).unwrap().ping().unwrap();

    let job = |n: usize| drydock_serve::NewJob {
        key: drydock_serve::JobKey {
            digest: format!("sha256:{n:064x}"),
            platform: String::new(),
            engine_version: "test".into(),
            policy_digest: "none".into(),
        },
        registry: "127.0.0.1:5000".into(),
        repository: "team/app".into(),
        plain_http: true,
        source: "api",
    };
    for n in 0..40 {
        let enqueued = stores[n % 4].enqueue(&job(n), 1).unwrap();
        assert!(matches!(enqueued, drydock_serve::Enqueued::New(_)));
        assert_eq!(
            stores[(n + 1) % 4].enqueue(&job(n), 1).unwrap(),
            drydock_serve::Enqueued::Active(enqueued.id())
        );
    }
    // Four stores claim at once until the queue is empty: every job exactly once.
    let claimed: Vec<i64> = std::thread::scope(|scope| {
        let claimers: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(job) = store
                        .claim(&format!("n{i}"), &format!("n{i}/1"), 10, 60)
                        .unwrap()
                    {
                        assert_eq!(job.attempts, 1);
                        mine.push(job.id);
                    }
                    mine
                })
            })
            .collect();
        claimers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    let distinct: std::collections::BTreeSet<i64> = claimed.iter().copied().collect();
    assert_eq!((claimed.len(), distinct.len()), (40, 40));
    // Within the lease nobody takes one again; past it, another node does (a second attempt).
    assert!(stores[0].claim("n9", "n9/1", 69, 60).unwrap().is_none());
    stores[1].extend_leases("n1/1", &claimed, 200).unwrap();
    let lost = stores[0].claim("n9", "n9/1", 71, 60).unwrap();
    let lost = lost.expect("a job whose lease ran out");
    assert_eq!(lost.attempts, 2);
    stores[0].fail(lost.id, "gave up", "internal", 72).unwrap();
    let failed = stores[2].job(lost.id).unwrap().unwrap();
    assert_eq!(failed.state, drydock_serve::JobState::Failed);
    assert_eq!(failed.error.as_deref(), Some("gave up"));

    // The subject lock: callers on two stores (two replicas) never overlap on one subject.
    let inside = AtomicBool::new(false);
    let overlaps = AtomicUsize::new(0);
    let runs = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for store in &stores[..2] {
            for _ in 0..2 {
                let (inside, overlaps, runs) = (&inside, &overlaps, &runs);
                scope.spawn(move || {
                    for _ in 0..5 {
                        store
                            .with_subject_lock("team/app", "sha256:abc", &mut || {
                                if inside.swap(true, Ordering::SeqCst) {
                                    overlaps.fetch_add(1, Ordering::SeqCst);
                                }
                                std::thread::sleep(Duration::from_millis(5));
                                runs.fetch_add(1, Ordering::SeqCst);
                                inside.store(false, Ordering::SeqCst);
                            })
                            .unwrap();
                    }
                });
            }
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 20);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);

    // A layer's walk is claimed by one replica at a time: given up when its claim is dropped,
    // and by the server when the claiming replica's connection dies.
    let layer = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let claim = stores[0].facts_claim("v1", layer).unwrap();
    assert!(claim.is_some(), "nobody held it");
    assert!(stores[1].facts_claim("v1", layer).unwrap().is_none());
    // Another layer, or another entry version, is another claim.
    let other = stores[1]
        .facts_claim("v1", &layer.replace('0', "f"))
        .unwrap();
    assert!(other.is_some());
    assert!(stores[1].facts_claim("v2", layer).unwrap().is_some());
    drop(claim);
    let again = stores[1].facts_claim("v1", layer).unwrap();
    assert!(again.is_some(), "given up when dropped");
    assert!(stores[2].facts_claim("v1", layer).unwrap().is_none());
    // The holder's connection killed (a replica gone): the server gave its claims up.
    psql(
        &url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stores[2].facts_claim("v1", layer).unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "a dead replica's claim was never given up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The replica whose connection died claims again on a new one.
    drop(again);
    drop(other);
    assert!(stores[1].facts_claim("v1", layer).unwrap().is_some());
}

/// An image of two base layers (a dynamically linked program, a user database, an `.env`
/// with a credential) and a top layer of its own: rebuild `n` shares the base.
fn rebuilt_layout(dir: &Path, n: usize) -> PathBuf {
    let program = std::fs::read("/bin/ls").unwrap();
    let top = format!("build {n}\n");
    write_layout(
        &dir.join(format!("rebuild-{n}")),
        &[
            RawLayer::gzip(&[
                TarEntry::Dir("bin"),
                TarEntry::File("bin/app", &program),
                TarEntry::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            ]),
            RawLayer::gzip(&[TarEntry::File(
                "app/.env",
                b"API_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345\n",
            )]),
            RawLayer::gzip(&[TarEntry::File("app/build.txt", top.as_bytes())]),
        ],
        &["/bin/app"],
    )
}

/// The report a scan of `digest` in `repository` gave, without `scanned_at`.
fn report_of(replica: &Replica, digest: &str) -> serde_json::Value {
    let (verdict, _) = replica.only_verdict(digest);
    let mut job = replica
        .get(&format!("/v1/scans/{}", verdict["job_id"]))
        .json();
    let mut report = job["report"].take();
    report.as_object_mut().unwrap().remove("scanned_at");
    report
}

/// The layer facts cache in the store: the replica that scans a rebuild walks only its new
/// layer, the base layers' facts coming from what the other replica stored; its report is
/// the one a scan without any cache gives; its next rebuild starts from the snapshot of the
/// base it kept in memory, with the same report again; an entry damaged in the database is
/// walked again and rewritten, never believed; no replica keeps facts of its own on disk.
#[test]
fn serve_pg_replicas_share_the_layer_facts_cache_and_never_believe_a_damaged_entry() {
    let cluster = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let url = cluster.url();
    let names = ["replica-a", "replica-b"];
    let mut replicas: Vec<Option<Replica>> = names
        .iter()
        .zip(ports)
        .map(|(name, port)| {
            Some(Replica::start(
                dir.path(),
                name,
                port,
                &url,
                "workers = 1",
                "",
            ))
        })
        .collect();
    let registry = Registry::start_with(Auth::Anonymous, false, &fan_out(&ports));
    let event = |replica: &Replica, event: &str| {
        replica.metric(&format!(
            "drydock_facts_cache_layers_total{{event=\"{event}\"}}"
        ))
    };
    // What the replica's facts cache did so far, from one scrape: `(event, layers)` for each.
    let events = |replica: &Replica| {
        let text = replica.metrics();
        ["hit", "miss", "stored", "ignored", "snapshot"].map(|event| {
            let name = format!("drydock_facts_cache_layers_total{{event=\"{event}\"}}");
            (event, metric_in(&text, &name))
        })
    };
    let expect = |replica: &Replica, [hit, miss, stored, ignored, snapshot]: [f64; 5]| {
        let want = [
            ("hit", hit),
            ("miss", miss),
            ("stored", stored),
            ("ignored", ignored),
            ("snapshot", snapshot),
        ];
        assert_eq!(events(replica), want, "{}", replica.log());
    };
    // A scan without any cache, by the command line, of what a replica scanned.
    let uncached = |repository: &str, digest: &str| {
        let name = format!("docker://{}/{repository}@{digest}", registry.host());
        let output = run(&[
            "scan",
            "--no-cache",
            "--no-policy",
            "--format",
            "json",
            &name,
        ]);
        let mut report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        report.as_object_mut().unwrap().remove("scanned_at");
        report
    };

    // Rebuild `n` pushed, and its report by `replica` with the report of a scan without any
    // cache, which it must equal.
    let rebuild = |replica: &Replica, n: usize| {
        let digest = push_layout_http(
            &registry,
            &rebuilt_layout(images.path(), n),
            "facts/app",
            &n.to_string(),
        );
        (report_of(replica, &digest), uncached("facts/app", &digest))
    };
    let first = push_layout_http(
        &registry,
        &rebuilt_layout(images.path(), 0),
        "facts/app",
        "0",
    );
    replicas[0].as_ref().unwrap().only_verdict(&first);
    // Whichever replica scanned it walked the three layers and stored them.
    let scanner = replicas
        .iter()
        .position(|r| event(r.as_ref().unwrap(), "stored") > 0.0)
        .unwrap();
    // hit, miss, stored, ignored, snapshot
    expect(
        replicas[scanner].as_ref().unwrap(),
        [0.0, 3.0, 3.0, 0.0, 0.0],
    );
    // It goes away; the other scans the rebuild.
    replicas[scanner] = None;
    let other = replicas[1 - scanner].take().unwrap();
    let (report, second_uncached) = rebuild(&other, 1);
    expect(&other, [2.0, 1.0, 1.0, 0.0, 0.0]);
    // The base's facts (the program's missing libraries, the credential) came from the
    // store, and the report is the uncached scan's.
    let text = report.to_string();
    assert!(
        text.contains("elf.needed-missing") || text.contains("elf.interpreter-missing"),
        "{text}"
    );
    assert!(text.contains("/app/.env"), "{text}");
    assert_eq!(report, second_uncached);

    // The next rebuild starts from the base as this replica applied it (a snapshot kept in
    // memory): neither read from the store nor walked, and the same report as without any
    // cache.
    let (report, third_uncached) = rebuild(&other, 2);
    expect(&other, [2.0, 2.0, 2.0, 0.0, 2.0]);
    assert_eq!(report, third_uncached);

    // Every entry in the database damaged (one bit of its last byte, so that its header
    // still names the layer), and the replica restarted (no snapshot): the next rebuild's
    // base is walked again, its entries rewritten, and its report is still the uncached one.
    assert_eq!(psql(&url, "SELECT count(*) FROM layer_facts"), "5");
    psql(
        &url,
        "UPDATE layer_facts SET entry = set_byte(entry, length(entry) - 1, \
         get_byte(entry, length(entry) - 1) # 1)",
    );
    let damaged = psql(
        &url,
        "SELECT string_agg(md5(entry), ',' ORDER BY diff_id) FROM layer_facts",
    );
    drop(other);
    let other = Replica::start(
        dir.path(),
        names[1 - scanner],
        ports[1 - scanner],
        &url,
        "workers = 1",
        "",
    );
    let (report, fourth_uncached) = rebuild(&other, 3);
    expect(&other, [0.0, 1.0, 3.0, 2.0, 0.0]);
    assert_eq!(report, fourth_uncached);
    assert_eq!(psql(&url, "SELECT count(*) FROM layer_facts"), "6");
    assert_ne!(
        psql(
            &url,
            "SELECT string_agg(md5(entry), ',' ORDER BY diff_id) FROM layer_facts"
        ),
        damaged
    );
    // Nothing on the replicas' disks but blobs.
    for name in ["replica-a", "replica-b"] {
        assert!(!dir.path().join(format!("blobs-{name}/facts")).exists());
    }
}

/// TLS to the database: with `sslmode=require` the replicas' connections are encrypted (the
/// server says so in `pg_stat_ssl`) and verified: the server's certificate is trusted through
/// `ca_certs` and refused without it; a scan through such a replica gives its verdict.
#[test]
fn serve_pg_speaks_verified_tls_to_the_database() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(certs.path());
    let cluster = Postgres::start_with_tls(Some((&cert, &key)));
    let url = format!(
        "postgres://drydock@127.0.0.1:{}/postgres?connect_timeout=2&sslmode=require",
        cluster.port
    );
    // Without the CA, the server's certificate is nobody's: no connection.
    let refused = PostgresStore::connect(&url, 2).unwrap_err().to_string();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    // With it, the store works.
    PostgresStore::connect_trusting(&url, 2, std::slice::from_ref(&ca))
        .unwrap()
        .ping()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let port = free_port();
    let top = format!("workers = 1\nca_certs = [\"{}\"]", ca.display());
    let replica = Replica::start(dir.path(), "replica-tls", port, &url, &top, "");
    let registry = Registry::start_with(Auth::Anonymous, false, &fan_out(&[port]));
    let digest = push_many(&registry, images.path(), 0..1, 1).remove(0);
    replica.only_verdict(&digest);
    // Every connection of drydock serve (the pool's and LISTEN's) is encrypted.
    let url_plain = cluster.url();
    let psql = |sql: &str| psql(&url_plain, sql);
    let counts = psql(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name = 'drydock-serve'",
    );
    let (encrypted, plain) = counts.split_once('|').unwrap();
    assert!(encrypted.parse::<u32>().unwrap() >= 2, "{counts}");
    assert_eq!(plain, "0", "{counts}");
}
