//! The layer facts cache (`--cache-dir`, `facts/`): a damaged entry is noticed and ignored,
//! the layer walked again and the entry rewritten; a secret's value never reaches the cache;
//! two scans at once walk a layer they share once.
//! (That the reports with and without the cache are the same on every fixture is in
//! `differential.rs`.)

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use drydock_scan::{FactsCacheEvent, FactsKey, FactsStore, Gate, ScanProgress, ScanRequest};

use crate::support::{RawLayer, TarEntry, drydock, fixture, write_layout};

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

/// A facts store in memory for two scans at once: the first two lookups of the `shared`
/// layer wait for each other (both scans missed it), and the first entry stored for it waits
/// until a scan looked it up a third time (the other scan, waiting for it). Counts what was
/// stored, by diff id.
#[derive(Debug)]
struct MeetingStore {
    shared: String,
    entries: Mutex<HashMap<String, Vec<u8>>>,
    puts: Mutex<HashMap<String, usize>>,
    lookups: AtomicUsize,
    meeting: Barrier,
}

impl FactsStore for MeetingStore {
    fn head(&self, key: &FactsKey<'_>, len: usize) -> Option<Vec<u8>> {
        if key.diff_id == self.shared && self.lookups.fetch_add(1, Ordering::SeqCst) < 2 {
            self.meeting.wait();
        }
        self.get(key).map(|mut entry| {
            entry.truncate(len);
            entry
        })
    }

    fn get(&self, key: &FactsKey<'_>) -> Option<Vec<u8>> {
        self.entries.lock().unwrap().get(key.diff_id).cloned()
    }

    fn put(&self, key: &FactsKey<'_>, entry: &[u8]) -> bool {
        if key.diff_id == self.shared {
            // Without a claim the other scan walks the layer itself and never looks again:
            // then this gives up waiting, and the layer is stored twice.
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.lookups.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        *self
            .puts
            .lock()
            .unwrap()
            .entry(key.diff_id.to_owned())
            .or_default() += 1;
        self.entries
            .lock()
            .unwrap()
            .insert(key.diff_id.to_owned(), entry.to_vec());
        true
    }
}

/// A scan's own handle on a shared store, as `drydock serve` makes one per scan.
#[derive(Debug)]
struct PerScan(Arc<MeetingStore>);

impl FactsStore for PerScan {
    fn head(&self, key: &FactsKey<'_>, len: usize) -> Option<Vec<u8>> {
        self.0.head(key, len)
    }
    fn get(&self, key: &FactsKey<'_>) -> Option<Vec<u8>> {
        self.0.get(key)
    }
    fn put(&self, key: &FactsKey<'_>, entry: &[u8]) -> bool {
        self.0.put(key, entry)
    }
}

/// What the facts cache did during one scan.
#[derive(Default)]
struct CountEvents(Mutex<Vec<FactsCacheEvent>>);

impl ScanProgress for CountEvents {
    fn facts_cache(&self, event: FactsCacheEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl CountEvents {
    fn count(&self, event: FactsCacheEvent) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| **e == event)
            .count()
    }
}

/// Two scans at once of two images sharing a base that neither finds in the facts cache: one
/// walks the base, the other walks only its own top and takes the base's facts from the
/// entry the first stored; both reports are those of scans without any cache.
#[test]
fn two_scans_at_once_walk_a_shared_layer_once() {
    let dir = tempfile::tempdir().unwrap();
    let program = fs::read("/bin/ls").unwrap();
    let filler: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let base = || {
        RawLayer::gzip(&[
            TarEntry::Dir("bin"),
            TarEntry::File("bin/app", &program),
            TarEntry::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            TarEntry::File("usr/share/filler", &filler),
        ])
    };
    let shared = base().diff_id;
    let layouts: Vec<PathBuf> = (0..2)
        .map(|n| {
            let top = format!("service {n}\n");
            write_layout(
                &dir.path().join(format!("service-{n}")),
                &[
                    base(),
                    RawLayer::gzip(&[TarEntry::File("app/build.txt", top.as_bytes())]),
                ],
                &["/bin/app"],
            )
        })
        .collect();
    let store = Arc::new(MeetingStore {
        shared: shared.clone(),
        entries: Mutex::default(),
        puts: Mutex::default(),
        lookups: AtomicUsize::new(0),
        meeting: Barrier::new(2),
    });
    let scan_with = |layout: &Path, store: Option<Arc<MeetingStore>>, progress: &CountEvents| {
        let request = ScanRequest {
            facts_store: store.map(|s| Arc::new(PerScan(s)) as Arc<dyn FactsStore>),
            platform: Some("linux/amd64".parse().unwrap()),
            ..ScanRequest::new(layout.display().to_string())
        };
        let report = drydock_scan::scan(&request, Gate::default(), None, progress).unwrap();
        let mut json = serde_json::to_value(&report).unwrap();
        json.as_object_mut().unwrap().remove("scanned_at");
        json
    };
    let progress = [CountEvents::default(), CountEvents::default()];
    let reports: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let scans: Vec<_> = layouts
            .iter()
            .zip(&progress)
            .map(|(layout, progress)| {
                let store = Arc::clone(&store);
                scope.spawn(move || scan_with(layout, Some(store), progress))
            })
            .collect();
        scans.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let puts = store.puts.lock().unwrap().clone();
    assert_eq!(
        puts.get(&shared),
        Some(&1),
        "the base was stored once: {puts:?}"
    );
    assert_eq!(puts.len(), 3, "the base and each top: {puts:?}");
    let count = |event| progress.iter().map(|p| p.count(event)).sum::<usize>();
    assert_eq!(count(FactsCacheEvent::Miss), 3, "the base once, each top");
    assert_eq!(
        count(FactsCacheEvent::Hit),
        1,
        "the base, for the scan that waited"
    );
    assert_eq!(count(FactsCacheEvent::Stored), 3);
    for (layout, report) in layouts.iter().zip(&reports) {
        assert_eq!(*report, scan_with(layout, None, &CountEvents::default()));
    }
}

/// A process that keeps snapshots (`drydock serve`) starts the scan of an image on a base it
/// applied before from a copy of it: the base is neither read from the facts cache nor walked,
/// and the report is the one a scan without any cache gives. A snapshot is kept only of
/// layers found in the facts cache, and none with no memory for them.
#[test]
fn a_scan_starts_from_a_snapshot_of_the_base_an_earlier_scan_applied() {
    let dir = tempfile::tempdir().unwrap();
    let program = fs::read("/bin/ls").unwrap();
    let base = [
        TarEntry::Dir("bin"),
        TarEntry::File("bin/app", &program),
        TarEntry::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
    ];
    let secret = [TarEntry::File(
        "app/.env",
        b"API_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345\n",
    )];
    let layouts: Vec<PathBuf> = (0..4)
        .map(|n| {
            let top = format!("service {n}\n");
            write_layout(
                &dir.path().join(format!("service-{n}")),
                &[
                    RawLayer::gzip(&base),
                    RawLayer::gzip(&secret),
                    RawLayer::gzip(&[TarEntry::File("app/build.txt", top.as_bytes())]),
                ],
                &["/bin/app"],
            )
        })
        .collect();
    let scan_with = |layout: &Path,
                     store: Option<&Arc<MeetingStore>>,
                     snapshots: Option<&Arc<drydock_scan::Snapshots>>| {
        let progress = CountEvents::default();
        let request = ScanRequest {
            facts_store: store.map(|s| Arc::clone(s) as Arc<dyn FactsStore>),
            snapshots: snapshots.cloned(),
            platform: Some("linux/amd64".parse().unwrap()),
            ..ScanRequest::new(layout.display().to_string())
        };
        let report = drydock_scan::scan(&request, Gate::default(), None, &progress).unwrap();
        let mut json = serde_json::to_value(&report).unwrap();
        json.as_object_mut().unwrap().remove("scanned_at");
        (json, progress)
    };
    let store = || {
        Arc::new(MeetingStore {
            shared: String::new(),
            entries: Mutex::default(),
            puts: Mutex::default(),
            lookups: AtomicUsize::new(0),
            meeting: Barrier::new(1),
        })
    };
    let facts = store();
    let snapshots = Arc::new(drydock_scan::Snapshots::new(64 << 20));
    // Walked whole: nothing came from the cache, no snapshot.
    let (_, first) = scan_with(&layouts[0], Some(&facts), Some(&snapshots));
    assert_eq!(first.count(FactsCacheEvent::Miss), 3);
    assert_eq!(snapshots.usage().0, 0);
    // The base from the cache: a snapshot of it kept.
    let (_, second) = scan_with(&layouts[1], Some(&facts), Some(&snapshots));
    assert_eq!(second.count(FactsCacheEvent::Hit), 2);
    assert_eq!(second.count(FactsCacheEvent::Snapshot), 0);
    assert_eq!(snapshots.usage().0, 1);
    // From the snapshot: the base is neither read nor walked, and the report is the same.
    let (report, third) = scan_with(&layouts[2], Some(&facts), Some(&snapshots));
    assert_eq!(third.count(FactsCacheEvent::Snapshot), 2);
    assert_eq!(third.count(FactsCacheEvent::Hit), 0);
    assert_eq!(third.count(FactsCacheEvent::Miss), 1);
    assert_eq!(report, scan_with(&layouts[2], None, None).0);
    assert!(report.to_string().contains("/app/.env"), "{report}");
    // Twice from the same snapshot: the first copy was not changed by the scan that used it.
    let (report, fourth) = scan_with(&layouts[3], Some(&facts), Some(&snapshots));
    assert_eq!(fourth.count(FactsCacheEvent::Snapshot), 2);
    assert_eq!(report, scan_with(&layouts[3], None, None).0);
    assert_eq!(snapshots.usage().0, 1);
    // No memory for snapshots: none kept, none used.
    let none = Arc::new(drydock_scan::Snapshots::new(0));
    let facts = store();
    for layout in &layouts[..3] {
        let (_, events) = scan_with(layout, Some(&facts), Some(&none));
        assert_eq!(events.count(FactsCacheEvent::Snapshot), 0);
    }
    assert_eq!(none.usage(), (0, 0));
}

/// Walking an image's layers ahead of its scan stores the facts of each layer the cache
/// lacks, without a tree or a check; the scan then reads every layer from the cache, with the
/// report of a scan without any cache. Without a facts cache, or told to stop, it walks
/// nothing.
#[test]
fn layers_walked_ahead_of_a_scan_are_found_in_the_facts_cache() {
    let dir = tempfile::tempdir().unwrap();
    let program = fs::read("/bin/ls").unwrap();
    let layout = write_layout(
        &dir.path().join("service"),
        &[
            RawLayer::gzip(&[
                TarEntry::Dir("bin"),
                TarEntry::File("bin/app", &program),
                TarEntry::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            ]),
            RawLayer::gzip(&[TarEntry::File("app/build.txt", b"service\n")]),
        ],
        &["/bin/app"],
    );
    let facts = Arc::new(MeetingStore {
        shared: String::new(),
        entries: Mutex::default(),
        puts: Mutex::default(),
        lookups: AtomicUsize::new(0),
        meeting: Barrier::new(1),
    });
    let request = |store: Option<&Arc<MeetingStore>>| ScanRequest {
        facts_store: store.map(|s| Arc::new(PerScan(Arc::clone(s))) as Arc<dyn FactsStore>),
        platform: Some("linux/amd64".parse().unwrap()),
        ..ScanRequest::new(layout.display().to_string())
    };
    let report_of = |request: &ScanRequest, progress: &CountEvents| {
        let report = drydock_scan::scan(request, Gate::default(), None, progress).unwrap();
        let mut json = serde_json::to_value(&report).unwrap();
        json.as_object_mut().unwrap().remove("scanned_at");
        json
    };
    // No facts cache: nothing to walk ahead into.
    assert_eq!(
        drydock_scan::prefetch(&request(None), &CountEvents::default(), &|| false).unwrap(),
        0
    );
    // Stopped before the first layer: nothing walked.
    assert_eq!(
        drydock_scan::prefetch(&request(Some(&facts)), &CountEvents::default(), &|| true).unwrap(),
        0
    );
    assert!(facts.puts.lock().unwrap().is_empty());
    let ahead = CountEvents::default();
    let stored = drydock_scan::prefetch(&request(Some(&facts)), &ahead, &|| false).unwrap();
    assert_eq!(stored, 2);
    assert_eq!(ahead.count(FactsCacheEvent::Stored), 2);
    assert_eq!(facts.puts.lock().unwrap().len(), 2);
    // Again: every layer is cached, nothing walked.
    let again = CountEvents::default();
    assert_eq!(
        drydock_scan::prefetch(&request(Some(&facts)), &again, &|| false).unwrap(),
        0
    );
    assert_eq!(again.count(FactsCacheEvent::Miss), 0);
    // The scan reads both layers from the cache, and its report is the uncached one.
    let scan = CountEvents::default();
    let report = report_of(&request(Some(&facts)), &scan);
    assert_eq!(scan.count(FactsCacheEvent::Hit), 2);
    assert_eq!(scan.count(FactsCacheEvent::Miss), 0);
    assert_eq!(report, report_of(&request(None), &CountEvents::default()));
}
