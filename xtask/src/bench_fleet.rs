//! `cargo xtask bench-fleet`: issue #17's fleet measurement. Fifty images that share a base
//! (the `debian-go` fixture's Debian layer) and each have a top layer of their own (the
//! fixture's Go server layer with a build stamp: a distinct diff id each) are pushed to the
//! registry on loopback, then scanned through `drydock serve` on a throwaway PostgreSQL
//! cluster, by one replica with two workers and by two replicas with one worker each (the
//! same two scans at once on two cores), every run with a fresh database and fresh blob
//! caches. Against: the time to walk the unique bytes once, measured as one cold `drydock
//! scan --no-cache` (by reference, from the same registry) of one image made of every unique
//! layer (the base and the fifty tops), which downloads, hashes, inflates and walks each of
//! them once and builds one tree. Written to `docs/benchmarks.md` as its own section.
//!
//! `DRYDOCK_FLEET_LOG=debug` makes each replica log its stages with their times (claim, facts
//! cache reads and writes, walks, replay, checks, the verdict's write) to
//! `target/bench/fleet/run-<replicas>x<workers>/replica-<n>/serve.log`.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::bench_rebuild::{
    blob_path, gzip_tar_entries, load, put_blob, read_json, stamped_layer, write_section,
};
use crate::bench_serve::{free_port, machine, metric, request, wait_for};
use crate::blob::digest;
use crate::cmd::{cargo, run};
use crate::registry::LoopbackRegistry;

const IMAGES: usize = 50;
const TOKEN: &str = "bench-fleet-token";
const HEADING: &str = "## Fleet: many images sharing a base, through replicas on PostgreSQL";

/// One image of the fleet (or the union of every unique layer) in the layout.
struct Built {
    name: String,
    layers: usize,
}

/// The fleet's layout: the base layer of the fixture, fifty tops, their manifests and the
/// union image; answers the images and the unique layer bytes (compressed).
fn build_layout(fixture: &Path, layout: &Path) -> anyhow::Result<(Vec<Built>, u64)> {
    if layout.exists() {
        fs::remove_dir_all(layout)?;
    }
    fs::create_dir_all(layout.join("blobs/sha256"))?;
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = read_json(&fixture.join("index.json"))?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("index without a manifest")?;
    let manifest = read_json(&blob_path(fixture, manifest_digest))?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("manifest without a config")?;
    let config = read_json(&blob_path(fixture, config_digest))?;
    let layers = manifest["layers"].as_array().context("no layers")?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .context("no diff ids")?;
    ensure!(layers.len() >= 3, "the fixture has fewer than three layers");
    // The base: the Debian layer, linked into the layout as it is.
    let base = layers[0].clone();
    let base_digest = base["digest"].as_str().context("base digest")?;
    let base_target = blob_path(layout, base_digest);
    if fs::hard_link(blob_path(fixture, base_digest), &base_target).is_err() {
        fs::copy(blob_path(fixture, base_digest), &base_target)?;
    }
    let base_diff_id = diff_ids[0].clone();
    // The top: the Go server layer, read once, then one stamp each.
    let top_digest = layers[2]["digest"].as_str().context("top digest")?;
    let top_entries = gzip_tar_entries(&blob_path(fixture, top_digest))?;
    let mut tops: Vec<(serde_json::Value, String)> = Vec::new();
    for n in 0..IMAGES {
        let (tar, blob) = stamped_layer(
            &top_entries,
            &format!("service {n}\n"),
            flate2::Compression::fast(),
        )?;
        let blob_digest = put_blob(layout, &blob)?;
        tops.push((
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": blob_digest,
                "size": blob.len(),
            }),
            digest(&tar),
        ));
    }
    let unique_bytes = base["size"].as_u64().unwrap_or(0)
        + tops
            .iter()
            .map(|(d, _)| d["size"].as_u64().unwrap_or(0))
            .sum::<u64>();
    // The manifests: each service (base + its top), and the union (base + every top).
    let mut entries = Vec::new();
    let mut built = Vec::new();
    let mut image = |name: String,
                     layers: Vec<serde_json::Value>,
                     diffs: Vec<serde_json::Value>|
     -> anyhow::Result<()> {
        let mut config = config.clone();
        config["rootfs"]["diff_ids"] = diffs.into();
        config["history"] = serde_json::json!([]);
        let config_bytes = serde_json::to_vec(&config)?;
        let config_digest = put_blob(layout, &config_bytes)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": layers,
        });
        let manifest_bytes = serde_json::to_vec(&manifest)?;
        let manifest_digest = put_blob(layout, &manifest_bytes)?;
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
        built.push(Built {
            name,
            layers: manifest["layers"].as_array().map_or(0, Vec::len),
        });
        Ok(())
    };
    for (n, (top, diff_id)) in tops.iter().enumerate() {
        image(
            format!("service-{n}"),
            vec![base.clone(), top.clone()],
            vec![base_diff_id.clone(), diff_id.clone().into()],
        )?;
    }
    let mut union_layers = vec![base.clone()];
    let mut union_diffs = vec![base_diff_id.clone()];
    for (top, diff_id) in &tops {
        union_layers.push(top.clone());
        union_diffs.push(diff_id.clone().into());
    }
    image("union".into(), union_layers, union_diffs)?;
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }))?,
    )?;
    Ok((built, unique_bytes))
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<u32> = fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (Debian package postgresql)")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions.last().context("no PostgreSQL version installed")?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")))
}

/// A throwaway cluster on a loopback port (run as the `postgres` user when root, as initdb
/// requires), removed on drop.
struct Postgres {
    dir: PathBuf,
    server: Child,
    port: u16,
}

impl Postgres {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir)?;
        let bin = postgres_bin()?;
        let user = if nix_is_root() {
            let passwd = fs::read_to_string("/etc/passwd")?;
            let line = passwd
                .lines()
                .find(|l| l.starts_with("postgres:"))
                .context("no postgres user")?;
            let fields: Vec<&str> = line.split(':').collect();
            let (uid, gid): (u32, u32) = (fields[2].parse()?, fields[3].parse()?);
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
            Some((uid, gid))
        } else {
            None
        };
        let command = |program: &str| {
            let mut command = Command::new(bin.join(program));
            command.current_dir(dir).stdin(Stdio::null());
            if let Some((uid, gid)) = user {
                command.uid(uid).gid(gid);
            }
            command
        };
        let status = command("initdb")
            .args(["-D", "data", "-U", "drydock", "-A", "trust", "--no-sync"])
            .args(["--no-locale", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()?;
        ensure!(status.success(), "initdb failed");
        let port = free_port()?;
        let log = fs::File::create(dir.join("postgres.log"))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.join("postgres.log"), Some(uid), Some(gid))?;
        }
        let server = command("postgres")
            .args(["-D", "data", "-p", &port.to_string(), "-k"])
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let cluster = Self {
            dir: dir.to_owned(),
            server,
            port,
        };
        wait_for(port, "postgres")?;
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!(
            "postgres://drydock@127.0.0.1:{}/postgres?connect_timeout=5",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|l| l.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// One `drydock serve` replica.
struct Replica {
    child: Child,
    port: u16,
}

impl Replica {
    fn start(
        binary: &Path,
        dir: &Path,
        name: &str,
        store: &str,
        workers: usize,
    ) -> anyhow::Result<Self> {
        let dir = dir.join(name);
        fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let config = dir.join("serve.toml");
        fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nstore = \"{store}\"\ncache_dir = \"{}\"\n\
                 node = \"{name}\"\nworkers = {workers}\ntokens = [\"{TOKEN}\"]\n",
                dir.join("blobs").display()
            ),
        )?;
        let mut command = Command::new(binary);
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env("HOME", &dir)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DRYDOCK_LOG");
        // A trace of each replica's stages (`debug` logs each with its time), kept in its
        // `serve.log` until the next run.
        if let Ok(filters) = std::env::var("DRYDOCK_FLEET_LOG") {
            command.env("DRYDOCK_LOG", filters);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("serve.log"))?)
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?;
        let replica = Self { child, port };
        wait_for(port, "drydock serve")?;
        Ok(replica)
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let authorization = format!("Bearer {TOKEN}");
        let (status, _, body) = request(
            self.port,
            method,
            path,
            &[
                ("Authorization", &authorization),
                ("Content-Type", "application/json"),
            ],
            body,
        )?;
        Ok((status, body))
    }

    fn metrics(&self) -> anyhow::Result<String> {
        let (status, body) = self.call("GET", "/metrics", b"")?;
        ensure!(status == 200, "/metrics answered {status}");
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one fleet run measured.
struct FleetRun {
    replicas: usize,
    workers: usize,
    seconds: f64,
    /// Layers in a replica's snapshot, that the facts cache answered, and walked, over every
    /// replica.
    snapshots: f64,
    hits: f64,
    misses: f64,
    mean_scan: f64,
}

/// The run of median wall time.
fn median(mut runs: Vec<FleetRun>) -> FleetRun {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    runs.swap_remove(runs.len() / 2)
}

/// Scans the fleet through `replicas` replicas of `workers` workers on a fresh cluster.
fn fleet_run(
    binary: &Path,
    work: &Path,
    registry: u16,
    replicas: usize,
    workers: usize,
) -> anyhow::Result<FleetRun> {
    let run_dir = work.join(format!("run-{replicas}x{workers}"));
    if run_dir.exists() {
        fs::remove_dir_all(&run_dir)?;
    }
    let cluster = Postgres::start(&work.join(format!("pg-{replicas}x{workers}")))?;
    let url = cluster.url();
    let nodes: Vec<Replica> = (0..replicas)
        .map(|i| Replica::start(binary, &run_dir, &format!("replica-{i}"), &url, workers))
        .collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    for n in 0..IMAGES {
        let body = format!("{{\"image\": \"127.0.0.1:{registry}/fleet/service-{n}:latest\"}}");
        let (status, answer) = nodes[n % replicas].call("POST", "/v1/scans", body.as_bytes())?;
        ensure!(
            status == 202,
            "POST /v1/scans answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    loop {
        let text = nodes[0].metrics()?;
        let failed = metric(&text, "drydock_jobs{state=\"failed\"}");
        ensure!(
            failed == 0.0,
            "{failed} scan(s) failed; see {}",
            run_dir.display()
        );
        if metric(&text, "drydock_jobs{state=\"done\"}") >= IMAGES as f64 {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the fleet was not scanned in 30 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (mut hits, mut misses, mut scans, mut scan_sum) = (0.0, 0.0, 0.0, 0.0);
    let mut snapshots = 0.0;
    for node in &nodes {
        let text = node.metrics()?;
        snapshots += metric(
            &text,
            "drydock_facts_cache_layers_total{event=\"snapshot\"}",
        );
        hits += metric(&text, "drydock_facts_cache_layers_total{event=\"hit\"}");
        misses += metric(&text, "drydock_facts_cache_layers_total{event=\"miss\"}");
        scans += metric(&text, "drydock_scan_seconds_count");
        scan_sum += metric(&text, "drydock_scan_seconds_sum");
    }
    drop(nodes);
    drop(cluster);
    eprintln!("{replicas} replica(s) × {workers} worker(s): {seconds:.2} s");
    Ok(FleetRun {
        replicas,
        workers,
        seconds,
        snapshots,
        hits,
        misses,
        mean_scan: if scans > 0.0 { scan_sum / scans } else { 0.0 },
    })
}

pub fn run_bench(root: &Path) -> anyhow::Result<()> {
    run(cargo().args(["build", "--release", "--locked", "--bin", "drydock"]))?;
    let binary = root.join("target/release/drydock");
    let fixture = crate::fixtures::default_dir(root).join("debian-go/oci");
    if !fixture.join("index.json").exists() {
        bail!("the debian-go fixture is not built: run `cargo xtask fixtures` first");
    }
    let work = root.join("target/bench/fleet");
    fs::create_dir_all(&work)?;
    let layout = work.join("layout");
    eprintln!("building the fleet's layout");
    let (images, unique_bytes) = build_layout(&fixture, &layout)?;
    let registry_dir = work.join("registry");
    if registry_dir.exists() {
        fs::remove_dir_all(&registry_dir)?;
    }
    // No notifications: the images are pushed before the scans.
    let registry = LoopbackRegistry::start(&registry_dir, "")?;
    eprintln!("pushing {} images", images.len());
    for image in &images {
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{}", layout.display(), image.name))
            .arg(format!(
                "docker://127.0.0.1:{}/fleet/{}:latest",
                registry.port, image.name
            ))
            .stdout(Stdio::null()))?;
    }
    let load_before = load();
    // The unique bytes walked once: the union image, cold, three times (median).
    let union = format!("docker://127.0.0.1:{}/fleet/union:latest", registry.port);
    let mut walls = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let status = Command::new(&binary)
            .args([
                "scan",
                "--quiet",
                "--no-cache",
                "--no-policy",
                "--format",
                "json",
            ])
            .arg(&union)
            .env("HOME", &work)
            .stdout(Stdio::null())
            .status()?;
        ensure!(
            matches!(status.code(), Some(0 | 1)),
            "scanning the union failed"
        );
        walls.push(started.elapsed().as_secs_f64());
    }
    walls.sort_by(f64::total_cmp);
    let unique_walk = walls[1];
    eprintln!("the unique bytes walked once: {unique_walk:.2} s");
    // Each way three times, alternating (the machine's state drifts), the median kept.
    let (mut ones, mut twos) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ones.push(fleet_run(&binary, &work, registry.port, 1, 2)?);
        twos.push(fleet_run(&binary, &work, registry.port, 2, 1)?);
    }
    let one = median(ones);
    let two = median(twos);
    let load_after = load();
    drop(registry);

    let union_layers = images.last().map_or(0, |b| b.layers);
    let mut out = String::new();
    let _ = writeln!(out, "{HEADING}\n");
    let _ = writeln!(
        out,
        "Measured by `cargo xtask bench-fleet` on {}; load average {load_before} before. \
         The fleet: {IMAGES} images sharing a base (the `debian-go` fixture's Debian layer: \
         `debootstrap --variant=minbase bookworm` with python3, numpy, scipy, perl, git, curl, \
         gcc and their libraries in one gzip layer), each with a top layer of its own (the \
         fixture's Go server layer plus a build stamp: a distinct diff id each), pushed to the \
         registry on loopback before the scans; {:.0} MB of unique compressed layer bytes. \
         Each run starts a fresh PostgreSQL cluster and fresh replicas (empty facts \
         cache, no snapshot), enqueues the {IMAGES} images through `POST /v1/scans` and stops \
         the clock when the store counts {IMAGES} jobs done; each way three times, \
         alternating, the median shown. **Unique bytes walked once**: a \
         cold `drydock scan --no-cache` (by reference, from the same registry) of one image \
         made of every unique layer ({union_layers} layers: the base and the {IMAGES} tops), \
         which downloads, hashes, inflates and walks each of them once and builds one tree \
         (median of 3).\n",
        machine(),
        unique_bytes as f64 / 1e6,
    );
    let _ = writeln!(
        out,
        "| run | wall (s) | scans per minute | ÷ unique bytes walked once | layers from a snapshot / from the facts cache / walked | mean scan (s) |\n|---|---:|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        out,
        "| unique bytes walked once (one scan of the union image) | {unique_walk:.2} | | 1.00 | | |"
    );
    for r in [&one, &two] {
        let _ = writeln!(
            out,
            "| {} replica{} × {} worker{} | {:.2} | {:.0} | {:.2} | {:.0} / {:.0} / {:.0} | {:.2} |",
            r.replicas,
            if r.replicas == 1 { "" } else { "s" },
            r.workers,
            if r.workers == 1 { "" } else { "s" },
            r.seconds,
            IMAGES as f64 * 60.0 / r.seconds,
            r.seconds / unique_walk,
            r.snapshots,
            r.hits,
            r.misses,
            r.mean_scan,
        );
    }
    let worst = one.seconds.max(two.seconds) / unique_walk;
    let _ = writeln!(
        out,
        "\n| goal | measured | |\n|---|---:|---|\n| fleet time ÷ unique bytes walked once ≤ 1.5× | {worst:.2}× (the slower run) | {} |",
        if worst <= 1.5 { "met" } else { "**not met**" }
    );
    let _ = writeln!(
        out,
        "\nLoad average after: {load_after}.\n\nReproduce: `cargo xtask bench-fleet` (after \
         `cargo xtask fixtures`; needs the Debian packages `postgresql`, `docker-registry` and \
         `skopeo`, which `cargo xtask test` installs)."
    );
    write_section(root, HEADING, &out)?;
    eprintln!("{out}");
    Ok(())
}
