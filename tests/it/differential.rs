//! The fast paths against the plain one: every fixture image (and the many-files bench images of
//! `cargo xtask bench-files`, when they were built) scanned twice, once as drydock scans (layers
//! walked in parallel, the first applied as it streams, the others held compactly) and once with
//! the hidden `DRYDOCK_SEQUENTIAL=1` (each layer walked on the calling thread into a list of
//! changes and applied before the next is walked). The JSON reports, standard error and exit
//! codes must be the same byte for byte, but for the time of the scan.
//!
//! Then twice more with the layer facts cache (`--cache-dir`, one directory for every image, so
//! that images sharing layers share entries): cold, which walks and fills it, and warm, which
//! takes every layer it can from it. Both must report what the plain path reports.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use crate::support::{drydock, fixtures, workspace};

const ARCHIVE_SUFFIXES: [&str; 7] = [
    ".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tar.bz",
];

/// Every image under `dir`: OCI layouts (a directory with `oci-layout`) and archives.
fn images(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join("oci-layout").is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && !path.is_symlink() && depth > 0 {
            images(&path, depth - 1, out);
        } else if path.is_file() && ARCHIVE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            out.push(path);
        }
    }
}

/// The report without `scanned_at`, the one field that depends on the time.
fn without_time(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout).into_owned();
    let key = "\"scanned_at\":";
    let Some(start) = text.find(key) else {
        return text;
    };
    let value = start + key.len();
    let rest = &text[value..];
    let Some(open) = rest.find('"') else {
        return text;
    };
    let Some(close) = rest[open + 1..].find('"') else {
        return text;
    };
    format!("{}{}", &text[..value], &rest[open + close + 2..])
}

fn scan(image: &Path, sequential: bool, facts: Option<&Path>) -> Output {
    let mut command = drydock();
    command
        .args(["scan", "--quiet", "--format", "json"])
        .arg(image)
        .env_remove("DRYDOCK_SEQUENTIAL")
        .env_remove("DRYDOCK_CACHE_DIR");
    match facts {
        Some(dir) => command.arg("--cache-dir").arg(dir),
        None => command.arg("--no-cache"),
    };
    if sequential {
        command.env("DRYDOCK_SEQUENTIAL", "1");
    }
    command.output().expect("running drydock")
}

/// How two scans of `image` differ, if they do.
fn compare(image: &Path, name: &str, fast: &Output, plain: &Output) -> Option<String> {
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !stderr(fast).contains("panicked") && !stderr(plain).contains("panicked"),
        "{}: drydock panicked: {}{}",
        image.display(),
        stderr(fast),
        stderr(plain)
    );
    let (a, b) = (without_time(&fast.stdout), without_time(&plain.stdout));
    if fast.status.code() != plain.status.code() || a != b || fast.stderr != plain.stderr {
        let first = a
            .lines()
            .zip(b.lines())
            .find(|(x, y)| x != y)
            .map(|(x, y)| format!("\n  {name}:  {x}\n  plain: {y}"))
            .unwrap_or_default();
        return Some(format!(
            "{} ({name}): exit {:?} vs {:?}, stderr {:?} vs {:?}{first}",
            image.display(),
            fast.status.code(),
            plain.status.code(),
            stderr(fast),
            stderr(plain)
        ));
    }
    None
}

/// How the scans of `image` (parallel, facts cache cold, facts cache warm) differ from the
/// plain one, if they do.
fn difference(image: &Path, cache: &Path) -> Option<String> {
    let plain = scan(image, true, None);
    let fast = scan(image, false, None);
    let cold = scan(image, false, Some(cache));
    let warm = scan(image, false, Some(cache));
    let found: Vec<String> = [("fast", &fast), ("cold", &cold), ("warm", &warm)]
        .into_iter()
        .filter_map(|(name, output)| compare(image, name, output, &plain))
        .collect();
    (!found.is_empty()).then(|| found.join("\n"))
}

#[test]
fn the_parallel_and_streaming_paths_report_what_the_plain_path_reports() {
    let mut all = Vec::new();
    images(&fixtures(), 5, &mut all);
    // The many-files images, only when `cargo xtask bench-files` built them.
    let bench = workspace().join("target/bench");
    if let Ok(entries) = fs::read_dir(&bench) {
        let mut built: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("many-files-")
                    && name.ends_with(".tar")
                    && p.with_extension("done").exists()
            })
            .collect();
        built.sort();
        all.extend(built);
    }
    assert!(
        all.len() > 20,
        "only {} images under {}",
        all.len(),
        fixtures().display()
    );
    let queue = Mutex::new(all.clone());
    let differences = Mutex::new(Vec::new());
    let cache = tempfile::tempdir().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..std::thread::available_parallelism().map_or(2, |n| n.get().min(4)) {
            scope.spawn(|| {
                loop {
                    let Some(image) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    if let Some(difference) = difference(&image, cache.path()) {
                        differences.lock().unwrap().push(difference);
                    }
                }
            });
        }
    });
    let differences = differences.into_inner().unwrap();
    assert!(
        differences.is_empty(),
        "{} of {} images differ:\n{}",
        differences.len(),
        all.len(),
        differences.join("\n")
    );
    let entries = fs::read_dir(cache.path().join("facts"))
        .unwrap()
        .flatten()
        .flat_map(|version| fs::read_dir(version.path().join("sha256")).unwrap())
        .count();
    assert!(entries > 20, "only {entries} layers in the facts cache");
}
