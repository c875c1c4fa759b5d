//! The worker pool: dedicated threads (scans are CPU and blocking I/O, never on the async
//! runtime) that claim jobs from the store, run `drydock_scan::scan`, and store the verdicts.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drydock_checks::Severity;
use drydock_registry::{ClientOptions, Credential, Reference};
use drydock_report::Report;
use drydock_report::harbor::HarborFindings;
use drydock_scan::{
    BlobCacheChoice, ErrorClass, FactsStore, Limits, Platform, RegistryOptions, ScanRequest,
    SourceChoice, WaitWork,
};

use crate::config::FactsCacheMode;
use crate::facts::{CountFacts, StoreFacts};
use crate::resolve::{ManifestKind, client_options, fetch};
use crate::state::{Shared, now};
use crate::store::{Child, Job, Verdict};

/// Starts `n` workers, and the thread that walks layers ahead while they wait.
pub fn start(shared: &Arc<Shared>, n: usize) -> Vec<JoinHandle<()>> {
    // The pool the scans walk layers on, made by this thread: never by the walk-ahead
    // thread, whose low priority its threads would inherit.
    let _ = rayon::current_num_threads();
    if shared.config.facts_cache != FactsCacheMode::Off {
        let walker = Arc::clone(shared);
        let started = std::thread::Builder::new()
            .name("drydock-prefetch".into())
            .spawn(move || walk_ahead(&walker));
        if let Err(e) = started {
            log::warn!("cannot start the walk-ahead thread: {e}");
        }
    }
    (0..n.max(1))
        .filter_map(|i| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("drydock-worker-{i}"))
                .spawn(move || work(&shared))
                .map_err(|e| log::error!("cannot start worker {i}: {e}"))
                .ok()
        })
        .collect()
}

fn work(shared: &Arc<Shared>) {
    let lease = i64::try_from(shared.config.lease().as_secs()).unwrap_or(600);
    while !shared.is_shutting_down() {
        match shared
            .store
            .claim(&shared.node, &shared.owner, now(), lease)
        {
            Ok(Some(job)) => {
                let id = job.id;
                if let Ok(mut running) = shared.running.lock() {
                    running.insert(id);
                }
                // A panic is a bug; it fails the job rather than the worker.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(shared, job);
                }));
                if ran.is_err() {
                    log::error!("job {id}: the scan panicked");
                    shared.metrics.error("internal");
                    if let Err(e) = shared.store.fail(id, "internal error", "internal", now()) {
                        log::error!("{e}");
                    }
                }
                if let Ok(mut running) = shared.running.lock() {
                    running.remove(&id);
                }
            }
            Ok(None) => shared.wait(Duration::from_secs(2)),
            Err(e) => {
                log::error!("{e}");
                shared.metrics.error("store");
                shared.wait(Duration::from_secs(2));
            }
        }
    }
}

/// Why a job failed, and its class (`usage`, `unavailable`, `invalid`).
struct JobError {
    message: String,
    class: &'static str,
}

fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Usage => "usage",
        ErrorClass::Unavailable => "unavailable",
        ErrorClass::Invalid => "invalid",
    }
}

fn run(shared: &Arc<Shared>, job: Job) {
    let id = job.id;
    let max = shared.config.max_attempts.max(1);
    let outcome = if job.attempts > max {
        Err(JobError {
            message: format!(
                "gave up after {max} attempt{}: each stopped without an answer (a crash or a \
                 kill)",
                if max == 1 { "" } else { "s" }
            ),
            class: "internal",
        })
    } else {
        let delay = shared.config.testing.scan_delay_ms;
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        log::info!(
            "job {id}: scanning {}/{}@{}",
            job.registry,
            job.repository,
            job.key.digest
        );
        let started = Instant::now();
        let outcome = scan_job(shared, &job);
        shared.metrics.scan_seconds(started.elapsed().as_secs_f64());
        log::debug!("job {id}: scanned in {:.2?}", started.elapsed());
        outcome
    };
    if let Ok(mut credentials) = shared.credentials.lock() {
        credentials.remove(&id);
    }
    let store = || match &outcome {
        Ok((verdicts, children, note)) => {
            shared
                .store
                .finish(id, verdicts, children.as_deref(), note.as_deref(), now())
        }
        Err(error) => shared.store.fail(id, &error.message, error.class, now()),
    };
    match &outcome {
        Ok((verdicts, _, _)) => log::info!("job {id}: done, {} verdict(s)", verdicts.len()),
        Err(error) => {
            log::warn!("job {id}: failed: {}", error.message);
            shared.metrics.error(error.class);
        }
    }
    // The store may be restarting (PostgreSQL): the answer is kept and stored once it is
    // back, for as long as the lease would have lasted. Storing twice writes the same rows.
    let lease = shared.config.lease();
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    while let Err(e) = store() {
        log::error!("job {id}: {e}");
        shared.metrics.error("store");
        if started.elapsed() + delay > lease {
            log::error!("job {id}: the answer could not be stored: the job will run again");
            break;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    log::debug!("job {id}: stored in {:.2?}", started.elapsed());
}

type Outcome = (Vec<Verdict>, Option<Vec<Child>>, Option<String>);

/// How the job's scans reach its registry: the client's options, and the scan's (blob cache
/// and, when it is this node's, facts cache).
fn job_registry(shared: &Shared, job: &Job) -> Result<(ClientOptions, RegistryOptions), String> {
    let credential: Option<Credential> = shared
        .credentials
        .lock()
        .ok()
        .and_then(|c| c.get(&job.id).cloned());
    let options = client_options(&shared.config, &job.registry, job.plain_http, credential)?;
    let registry = RegistryOptions {
        ca_certs: options.ca_certs.clone(),
        insecure: options.insecure,
        credential: options.credential.clone(),
        // Verified blobs, and beside them the facts of every layer walked when the facts
        // cache is this node's (`local`). With the facts cache in the store (see
        // `scan_request`) no blob is kept: a layer is walked once for every replica, and its
        // blob would only be written, hashed and stored again for nothing.
        cache: match shared.config.facts_cache {
            FactsCacheMode::Local => BlobCacheChoice::WithFacts(Some(shared.blob_cache.clone())),
            FactsCacheMode::Store => BlobCacheChoice::Off,
            FactsCacheMode::Off => BlobCacheChoice::Dir(shared.blob_cache.clone()),
        },
    };
    Ok((options, registry))
}

fn scan_job(shared: &Arc<Shared>, job: &Job) -> Result<Outcome, JobError> {
    let (options, registry) = job_registry(shared, job).map_err(|message| JobError {
        message,
        class: "usage",
    })?;
    let name = format!("{}/{}@{}", job.registry, job.repository, job.key.digest);
    let reference = Reference::parse(&name).map_err(|e| JobError {
        message: e.to_string(),
        class: "usage",
    })?;
    if !job.key.platform.is_empty() {
        let platform: Platform = job.key.platform.parse().map_err(|e| JobError {
            message: format!("platform `{}`: {e}", job.key.platform),
            class: "usage",
        })?;
        let verdict = scan_one(shared, job, &name, Some(platform), &registry)?;
        return Ok((vec![verdict], None, None));
    }
    let resolved = fetch(&reference, &options).map_err(|message| JobError {
        message,
        class: "unavailable",
    })?;
    match resolved.kind {
        ManifestKind::Image => Ok((
            vec![scan_one(shared, job, &name, None, &registry)?],
            None,
            None,
        )),
        ManifestKind::Artifact(config) => Ok((
            Vec::new(),
            None,
            Some(format!(
                "not a container image (config type `{config}`): nothing to scan"
            )),
        )),
        ManifestKind::Index(children) => {
            let mut verdicts = Vec::new();
            for child in &children {
                // A registry gets every child before the index (each its own push event, so
                // often its own job): a child with a verdict is not scanned again.
                let known = shared
                    .store
                    .verdicts(&child.digest, &shared.engine_version, &shared.policy_digest)
                    .map_err(|e| JobError {
                        message: e.to_string(),
                        class: "store",
                    })?;
                if !known.is_empty() {
                    verdicts.extend(known);
                    continue;
                }
                let child_name = format!("{}/{}@{}", job.registry, job.repository, child.digest);
                verdicts.push(scan_one(shared, job, &child_name, None, &registry)?);
            }
            let note = children
                .is_empty()
                .then(|| "an index with no image for any platform".to_owned());
            Ok((verdicts, Some(children), note))
        }
    }
}

fn limits(shared: &Shared) -> Limits {
    let defaults = Limits::default();
    let policy = shared.policy.as_ref();
    Limits {
        max_tar_bytes: policy
            .and_then(|p| p.max_layer_size)
            .unwrap_or(defaults.max_tar_bytes),
        max_expansion: policy
            .and_then(|p| p.max_expansion)
            .unwrap_or(defaults.max_expansion),
        ..defaults
    }
}

/// The scan of `name` (`registry/repository@digest`) as this server makes it.
fn scan_request(
    shared: &Shared,
    name: &str,
    platform: Option<Platform>,
    registry: &RegistryOptions,
) -> ScanRequest {
    ScanRequest {
        image: format!("docker://{name}"),
        source: SourceChoice::Registry,
        registry: registry.clone(),
        select: None,
        platform,
        limits: limits(shared),
        // The facts of every layer walked, shared by every replica: a rebuilt image costs
        // only its new layers, wherever it is scanned.
        facts_store: (shared.config.facts_cache == FactsCacheMode::Store)
            .then(|| Arc::new(StoreFacts(Arc::clone(&shared.store))) as Arc<dyn FactsStore>),
        snapshots: Some(Arc::clone(&shared.snapshots)),
        while_waiting: None,
        sequential: false,
    }
}

fn scan_one(
    shared: &Arc<Shared>,
    job: &Job,
    name: &str,
    platform: Option<Platform>,
    registry: &RegistryOptions,
) -> Result<Verdict, JobError> {
    let mut request = scan_request(shared, name, platform, registry);
    // Waiting for a layer another scan walks (a base that every image of a fleet pushed at
    // once shares), this worker walks ahead the layers of the images queued next.
    let waiting = Arc::clone(shared);
    request.while_waiting = Some(WaitWork(Arc::new(move || waiting.want_prefetch())));
    let progress = CountFacts(&shared.metrics);
    let report = drydock_scan::scan(&request, shared.gate, shared.policy.as_ref(), &progress)
        .map_err(|e| JobError {
            message: e.to_string(),
            class: class_name(e.class()),
        })?;
    let digest = report
        .image
        .manifest_digest
        .clone()
        .unwrap_or_else(|| name.rsplit('@').next().unwrap_or(name).to_owned());
    attach(shared, job, &request, &report, &digest);
    Ok(verdict(shared, job, digest, &report))
}

/// How many queued jobs the walk-ahead thread looks at.
const PREFETCH_LOOKAHEAD: i64 = 64;

/// The walk-ahead thread: while a worker waits for a layer another scan walks (the base of a
/// fleet of images pushed at once), it walks the layers of the images queued next, so that
/// their scans find them in the facts cache. At the lowest priority (nice 19): it uses the
/// time the cores would be idle (the one walk everyone waits for is a single stream), never
/// the workers'. It never builds an HTTP client (whose thread would inherit the priority):
/// it only walks ahead for registries a worker reached already.
fn walk_ahead(shared: &Shared) {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        log::warn!("walking ahead: cannot lower the thread's priority ({e}): not walking ahead");
        return;
    }
    while !shared.is_shutting_down() {
        if shared.prefetch_wanted(Duration::from_secs(1)) {
            prefetch_next(shared);
        }
    }
}

/// Walks ahead the layers of the next queued job that this process has not walked ahead yet
/// (see `drydock_scan::prefetch`), if there is one.
fn prefetch_next(shared: &Shared) {
    let queued = match shared.store.queued(PREFETCH_LOOKAHEAD) {
        Ok(queued) => queued,
        Err(e) => {
            log::debug!("walking ahead: {e}");
            return;
        }
    };
    let Some(job) = queued
        .into_iter()
        .find(|job| shared.first_prefetch(&job.key.digest))
    else {
        return;
    };
    let Ok((options, registry)) = job_registry(shared, &job) else {
        return;
    };
    if !drydock_registry::has_client(&options) {
        return;
    }
    let platform = job.key.platform.parse().ok();
    let name = format!("{}/{}@{}", job.registry, job.repository, job.key.digest);
    let request = scan_request(shared, &name, platform, &registry);
    let progress = CountFacts(&shared.metrics);
    match drydock_scan::prefetch(&request, &progress, &|| shared.is_shutting_down()) {
        Ok(stored) => log::debug!("job {}: {stored} layer(s) walked ahead", job.id),
        Err(e) => log::debug!("job {}: walking ahead: {e}", job.id),
    }
}

/// Publishes the report next to the image (`attach` in the configuration), one writer per
/// subject across every replica sharing the store: the referrers tag index has no conditional
/// PUT. A failure is logged and counted; the verdict stands without its referrers.
fn attach(shared: &Shared, job: &Job, request: &ScanRequest, report: &Report, digest: &str) {
    if shared.config.attach.is_empty() {
        return;
    }
    let mut kinds: Vec<_> = shared.config.attach.iter().map(|k| k.kind()).collect();
    kinds.sort();
    kinds.dedup();
    let repository = format!("{}/{}", job.registry, job.repository);
    let mut outcome = None;
    let locked = shared
        .store
        .with_subject_lock(&repository, digest, &mut || {
            outcome = Some(drydock_scan::attach(request, report, &kinds));
        });
    let failure = match (locked, outcome) {
        (Ok(()), Some(Ok(attached))) => {
            log::info!(
                "job {}: attached {} referrer(s) to {repository}@{digest} ({} replaced)",
                job.id,
                attached.current.len(),
                attached.replaced.len()
            );
            return;
        }
        (Ok(()), Some(Err(e))) => e.to_string(),
        (Err(e), _) => format!("the subject lock failed: {e}"),
        (Ok(()), None) => "the subject lock did not run the attach".to_owned(),
    };
    log::warn!(
        "job {}: attaching to {repository}@{digest}: {failure}",
        job.id
    );
    shared.metrics.error("attach");
}

/// A report as the verdict stored for its digest.
pub fn verdict(shared: &Shared, job: &Job, digest: String, report: &Report) -> Verdict {
    let mut counts = serde_json::Map::new();
    for severity in Severity::ALL {
        let n = report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count();
        counts.insert(severity.as_str().to_owned(), n.into());
    }
    Verdict {
        digest,
        platform: report.image.platform.clone(),
        engine_version: shared.engine_version.clone(),
        policy_digest: shared.policy_digest.clone(),
        job_id: job.id,
        repository: format!("{}/{}", job.registry, job.repository),
        score: report.score,
        grade: format!("{:?}", report.grade),
        passed: report.passed,
        runnable: report.runnable,
        worst: report
            .findings
            .iter()
            .map(|f| f.severity)
            .min()
            .map(|s| s.as_str().to_owned()),
        counts: counts.into(),
        scanned_at: report.scanned_at.clone(),
        report: serde_json::to_string(report).unwrap_or_default(),
        harbor: serde_json::to_string(&HarborFindings::from_report(report)).unwrap_or_default(),
    }
}
