//! The local engine: Debian's Docker engine, started on its own socket, holding images put
//! there with `docker load`; and `docker save` archives made by that real engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{drydock, fixture, is_root, scan_json};

struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dockerd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let child = Command::new("dockerd")
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dockerd (Debian package docker.io)");
        let engine = Self { child, dir };
        let started = Instant::now();
        while !engine.docker(&["version"]).status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "dockerd did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("/usr/bin/docker")
            .arg("--host")
            .arg(self.host())
            .args(args)
            .output()
            .unwrap()
    }
}

fn scan_with_engine(host: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let output = drydock()
        .args(["scan", "--format", "json"])
        .args(args)
        .env("DOCKER_HOST", host)
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("drydock-engine-test-cache"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code().unwrap_or(-1), report, stderr)
}

#[test]
fn images_in_a_docker_engine_and_its_real_docker_save_archives() {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must run the engine test"
        );
        eprintln!("skipped: dockerd needs root");
        return;
    }
    let engine = Dockerd::start();
    let loaded = engine.docker(&["load", "--input", &fixture("glibc-on-musl/docker.tar")]);
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let (_, archive) = scan_json(&[&fixture("glibc-on-musl/docker.tar")]);
    let host = engine.host();

    // By name: the engine holds it, so it is read from the engine, not a registry.
    let (code, report, stderr) =
        scan_with_engine(&host, &["drydock-fixtures/glibc-on-musl:latest"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        report["image"]["source"],
        "docker-daemon:drydock-fixtures/glibc-on-musl:latest"
    );
    assert_eq!(
        report["image"]["config_digest"],
        archive["image"]["config_digest"]
    );
    assert_eq!(report["findings"], archive["findings"]);

    // The explicit prefix, and --source engine.
    let (code, report, _) =
        scan_with_engine(&host, &["docker-daemon:drydock-fixtures/glibc-on-musl"]);
    assert_eq!(code, 1);
    assert_eq!(report["findings"], archive["findings"]);
    let (code, _, stderr) =
        scan_with_engine(&host, &["--source", "engine", "drydock-fixtures/absent:1"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");

    // A name the engine does not hold goes to the registry (none here: unavailable).
    let (code, _, stderr) = scan_with_engine(&host, &["127.0.0.1:1/nothing/here:1"]);
    assert_eq!(code, 3, "{stderr}");

    // `docker save` from the real engine, plain and gzip-compressed.
    let saved = engine.dir.path().join("saved.tar");
    let output = engine.docker(&[
        "save",
        "--output",
        saved.to_str().unwrap(),
        "drydock-fixtures/glibc-on-musl:latest",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let gzipped = engine.dir.path().join("saved.tar.gz");
    gzip_file(&saved, &gzipped);
    for form in [&saved, &gzipped] {
        let (code, report) = scan_json(&[form.to_str().unwrap()]);
        assert_eq!(code, 1);
        assert_eq!(
            report["image"]["config_digest"],
            archive["image"]["config_digest"]
        );
        assert_eq!(report["findings"], archive["findings"]);
    }
}

fn gzip_file(from: &Path, to: &Path) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::copy(&mut std::fs::File::open(from).unwrap(), &mut encoder).unwrap();
    encoder.finish().unwrap();
}
