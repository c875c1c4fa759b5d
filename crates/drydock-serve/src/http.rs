//! The HTTP front ends: registry notifications, Harbor's scanner API, Kubernetes admission,
//! drydock's own API, probes and metrics. Handlers never scan: they enqueue and look up, and
//! every store call runs on the blocking pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use drydock_registry::{Credential, Reference};
use drydock_report::harbor::{HarborArtifact, HarborFindings};

use crate::harbor::{self as harbor_api, Access, ERROR_MIME, REFRESH_AFTER, SCAN_RESPONSE_MIME};
use crate::hooks::{self, Envelope, HookAction};
use crate::k8s::{self, AdmissionReview, ImageUse, Outcome};
use crate::resolve::{ManifestKind, Resolved, client_options, fetch};
use crate::state::{Shared, now};
use crate::store::{Enqueued, EventOutcome, Job, JobState, NewJob, StoreError, Verdict};

type App = Arc<Shared>;

/// Every route.
pub fn router(shared: App) -> Router {
    let protected = Router::new()
        .route("/hooks/registry", post(registry_hook))
        .route("/api/v1/metadata", get(harbor_metadata))
        .route("/api/v1/scan", post(harbor_scan))
        .route("/api/v1/scan/{id}/report", get(harbor_report))
        .route("/k8s/validate", post(k8s_validate))
        .route("/v1/verdicts/{digest}", get(get_verdicts))
        .route("/v1/scans", post(post_scan))
        .route("/v1/scans/{id}", get(get_scan))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .layer(DefaultBodyLimit::max(16 << 20))
        .with_state(shared)
}

fn typed(status: StatusCode, mime: &str, body: String) -> Response {
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(mime) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    typed(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({"error": {"message": message}}))
}

fn internal(shared: &Shared, e: &StoreError) -> Response {
    log::error!("{e}");
    shared.metrics.error("store");
    error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed")
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        log::error!("a blocking task failed: {e}");
        error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request presents as a token: a bearer token, an API key, or a Basic password (or
/// `user:password` whole, as Harbor's "Basic" registration sends what it was given).
fn presented(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(key) = headers
        .get("x-scanneradapter-api-key")
        .and_then(|v| v.to_str().ok())
    {
        out.push(key.trim().to_owned());
    }
    if let Some(value) = header_str(headers, header::AUTHORIZATION) {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            out.push(rest.to_owned());
        } else if scheme.eq_ignore_ascii_case("basic")
            && let Some(decoded) = STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        {
            if let Some((_, password)) = decoded.split_once(':') {
                out.push(password.to_owned());
            }
            out.push(decoded);
        }
    }
    out
}

async fn authenticate(State(shared): State<App>, request: Request, next: Next) -> Response {
    let open_admission =
        shared.config.admission_without_token && request.uri().path() == "/k8s/validate";
    if shared.tokens.is_empty() || open_admission {
        return next.run(request).await;
    }
    let ok = presented(request.headers()).iter().any(|candidate| {
        shared
            .tokens
            .iter()
            .any(|token| same(candidate.as_bytes(), token.expose().as_bytes()))
    });
    if ok {
        return next.run(request).await;
    }
    shared.metrics.error("unauthorized");
    let mut response = error(StatusCode::UNAUTHORIZED, "a valid token is required");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"drydock\""),
    );
    response
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(shared): State<App>) -> Response {
    if shared.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let store = Arc::clone(&shared.store);
    match blocking(move || store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            log::error!("{e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer\n",
            )
                .into_response()
        }
        Err(response) => response,
    }
}

async fn metrics(State(shared): State<App>) -> Response {
    let store = Arc::clone(&shared.store);
    let counts = blocking(move || store.counts())
        .await
        .ok()
        .and_then(Result::ok);
    typed(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        shared.metrics.render(counts),
    )
}

// ---------------------------------------------------------------------------------------------
// Registry notifications

/// Records every event: returns how many new jobs there are.
fn process_events(shared: &Shared, envelope: &Envelope) -> Result<usize, StoreError> {
    let mut new = 0;
    let registry = shared.config.hook_registry.as_deref();
    for event in &envelope.events {
        let action = hooks::classify(event, registry, shared.config.hook_registry_override);
        match action {
            HookAction::Ignore(reason) => {
                log::debug!(
                    "event {}: ignored ({reason}): {} {}",
                    event.id,
                    event.action,
                    event.target.media_type
                );
                shared.metrics.webhook_event("ignored");
            }
            HookAction::Delete { digest } => {
                let outcome = if event.id.is_empty() {
                    EventOutcome::Recorded(None)
                } else {
                    shared.store.record_event(&event.id, None, now())?
                };
                if outcome == EventOutcome::Duplicate {
                    shared.metrics.webhook_event("duplicate");
                } else {
                    let n = shared.store.mark_deleted(&digest, now())?;
                    log::info!("event {}: {digest} deleted, {n} verdict(s) ended", event.id);
                    shared.metrics.webhook_event("deleted");
                }
            }
            HookAction::Scan {
                registry,
                repository,
                digest,
                plain_http,
            } => {
                let job = NewJob {
                    key: shared.key(&digest, ""),
                    registry,
                    repository,
                    plain_http,
                    source: "hook",
                };
                let outcome = if event.id.is_empty() {
                    EventOutcome::Recorded(Some(shared.store.enqueue(&job, now())?))
                } else {
                    shared.store.record_event(&event.id, Some(&job), now())?
                };
                match outcome {
                    EventOutcome::Duplicate => {
                        log::info!("event {}: a redelivery, nothing to do", event.id);
                        shared.metrics.webhook_event("duplicate");
                    }
                    EventOutcome::Recorded(Some(Enqueued::New(id))) => {
                        log::info!("event {}: job {id} for {digest}", event.id);
                        shared.metrics.webhook_event("enqueued");
                        new += 1;
                    }
                    EventOutcome::Recorded(_) => {
                        shared.metrics.webhook_event("deduplicated");
                    }
                }
            }
        }
    }
    Ok(new)
}

async fn registry_hook(State(shared): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    // Anything but a 2xx makes the registry send the same event again, forever, and holds
    // every later event for this endpoint behind it: only a store failure (the event was not
    // recorded) deserves that.
    let content_type = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    if !hooks::is_events_type(content_type) {
        shared.metrics.webhook_event("invalid");
        log::warn!("a notification with content type `{content_type}`: ignored");
        return json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"ignored": "content type"}),
        );
    }
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        Err(e) => {
            shared.metrics.webhook_event("invalid");
            log::warn!("a notification that is not an event envelope: {e}");
            return json(
                StatusCode::ACCEPTED,
                &serde_json::json!({"ignored": "not an envelope"}),
            );
        }
    };
    let events = envelope.events.len();
    let worker_shared = Arc::clone(&shared);
    let outcome = blocking(move || process_events(&worker_shared, &envelope)).await;
    match outcome {
        Ok(Ok(new)) => {
            if new > 0 {
                shared.ring();
            }
        }
        Ok(Err(e)) => return internal(&shared, &e),
        Err(response) => return response,
    }
    let fail = shared
        .hook_failures_left
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok();
    if fail {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure (testing)",
        );
    }
    json(StatusCode::ACCEPTED, &serde_json::json!({"events": events}))
}

// ---------------------------------------------------------------------------------------------
// Harbor

fn harbor_error(status: StatusCode, message: &str) -> Response {
    typed(status, ERROR_MIME, harbor_api::error_body(message))
}

async fn harbor_metadata(State(shared): State<App>, headers: HeaderMap) -> Response {
    let (mime, body) = harbor_api::metadata(
        header_str(&headers, header::ACCEPT),
        &shared.engine_version,
        &shared.policy_digest,
    );
    typed(StatusCode::OK, mime, body.to_string())
}

async fn harbor_scan(State(shared): State<App>, body: Bytes) -> Response {
    let scan = match harbor_api::parse_scan_request(&body) {
        Ok(scan) => scan,
        Err(refusal) => {
            let status =
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            return harbor_error(status, &refusal.message);
        }
    };
    let job = NewJob {
        key: shared.key(&scan.digest, ""),
        registry: scan.registry.clone(),
        repository: scan.repository.clone(),
        plain_http: scan.plain_http,
        source: "harbor",
    };
    let worker_shared = Arc::clone(&shared);
    let access = scan.access.clone();
    let enqueued = blocking(move || {
        // The credential is in place before a worker can see the job: workers read it under
        // the same lock after they claim.
        let mut credentials = worker_shared
            .credentials
            .lock()
            .map_err(|_| StoreError("the credentials lock is poisoned".into()))?;
        let enqueued = worker_shared.store.enqueue(&job, now())?;
        match access {
            Access::Basic(credential) if !matches!(enqueued, Enqueued::Done(_)) => {
                credentials.entry(enqueued.id()).or_insert(credential);
            }
            // A token Harbor already exchanged for this repository: presented as is.
            Access::Bearer(token) if !matches!(enqueued, Enqueued::Done(_)) => {
                credentials
                    .entry(enqueued.id())
                    .or_insert(Credential::Bearer(token));
            }
            _ => {}
        }
        Ok::<_, StoreError>(enqueued)
    })
    .await;
    let enqueued = match enqueued {
        Ok(Ok(enqueued)) => enqueued,
        Ok(Err(e)) => {
            log::error!("{e}");
            shared.metrics.error("store");
            return harbor_error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed");
        }
        Err(response) => return response,
    };
    if matches!(enqueued, Enqueued::New(_)) {
        shared.ring();
    }
    typed(
        StatusCode::ACCEPTED,
        SCAN_RESPONSE_MIME,
        serde_json::json!({"id": enqueued.id().to_string()}).to_string(),
    )
}

async fn job_and_verdicts(shared: &App, id: &str) -> Result<Option<(Job, Vec<Verdict>)>, Response> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(None);
    };
    let store = Arc::clone(&shared.store);
    let found = blocking(move || -> Result<_, StoreError> {
        let Some(job) = store.job(id)? else {
            return Ok(None);
        };
        let verdicts = if job.state == JobState::Done {
            store.job_verdicts(id)?
        } else {
            Vec::new()
        };
        Ok(Some((job, verdicts)))
    })
    .await?;
    found.map_err(|e| internal(shared, &e))
}

async fn harbor_report(
    State(shared): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (job, verdicts) = match job_and_verdicts(&shared, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return harbor_error(StatusCode::NOT_FOUND, &format!("no scan `{id}`")),
        Err(response) => return response,
    };
    let Some(flavour) = harbor_api::flavour(header_str(&headers, header::ACCEPT)) else {
        return harbor_error(
            StatusCode::NOT_IMPLEMENTED,
            "drydock writes only the two vulnerability report types",
        );
    };
    match job.state {
        JobState::Queued | JobState::Running => {
            let mut response = StatusCode::FOUND.into_response();
            let headers = response.headers_mut();
            let seconds = HeaderValue::from(REFRESH_AFTER);
            headers.insert("refresh-after", seconds.clone());
            headers.insert(header::RETRY_AFTER, seconds);
            if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/scan/{id}/report")) {
                headers.insert(header::LOCATION, location);
            }
            response
        }
        JobState::Failed => harbor_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            job.error.as_deref().unwrap_or("the scan failed"),
        ),
        JobState::Done => {
            let chosen = verdicts
                .iter()
                .find(|v| !v.passed)
                .or_else(|| verdicts.first());
            let Some(verdict) = chosen else {
                return harbor_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    job.error.as_deref().unwrap_or("no image was scanned"),
                );
            };
            let findings: HarborFindings = match serde_json::from_str(&verdict.harbor) {
                Ok(findings) => findings,
                Err(e) => {
                    log::error!("job {}: the stored Harbor items do not read: {e}", job.id);
                    return harbor_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
                }
            };
            let artifact = HarborArtifact {
                repository: job.repository.clone(),
                digest: job.key.digest.clone(),
                tag: None,
                mime_type: None,
            };
            typed(
                StatusCode::OK,
                flavour.mime(),
                findings.render(&artifact, flavour),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Verdict lookups, shared by admission and the API

/// The verdicts of `digest`: its own, or its children's when it is an index (`children` from
/// a registry answer when the store has none). Also the platforms still without a verdict.
fn lookup(
    shared: &Shared,
    digest: &str,
    children: Option<&[crate::store::Child]>,
) -> Result<(Vec<Verdict>, Vec<String>), StoreError> {
    let store = &shared.store;
    let own = store.verdicts(digest, &shared.engine_version, &shared.policy_digest)?;
    if !own.is_empty() {
        return Ok((own, Vec::new()));
    }
    let stored = store.index_children(digest)?;
    let children = if stored.is_empty() {
        children.map(<[_]>::to_vec).unwrap_or_default()
    } else {
        stored
    };
    let mut verdicts = Vec::new();
    let mut missing = Vec::new();
    for child in &children {
        let found = store.verdicts(&child.digest, &shared.engine_version, &shared.policy_digest)?;
        if found.is_empty() {
            missing.push(child.platform.clone());
        }
        verdicts.extend(found);
    }
    Ok((verdicts, missing))
}

async fn get_verdicts(State(shared): State<App>, Path(digest): Path<String>) -> Response {
    if !hooks::is_digest(&digest) {
        return error(StatusCode::BAD_REQUEST, "not a sha256 digest");
    }
    let worker_shared = Arc::clone(&shared);
    let lookup_digest = digest.clone();
    let found = match blocking(move || lookup(&worker_shared, &lookup_digest, None)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return internal(&shared, &e),
        Err(response) => return response,
    };
    let (verdicts, missing) = found;
    shared.metrics.lookup(!verdicts.is_empty());
    if verdicts.is_empty() {
        return error(StatusCode::NOT_FOUND, &format!("no verdict for {digest}"));
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "digest": digest,
            "passed": verdicts.iter().all(|v| v.passed) && missing.is_empty(),
            "verdicts": verdicts,
            "missing": missing,
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// drydock's API

#[derive(serde::Deserialize)]
struct ScanBody {
    image: String,
    #[serde(default)]
    platform: Option<String>,
}

/// Resolves `reference` to its digest through the registry (cached), on the blocking pool.
async fn resolve(shared: &App, reference: Reference) -> Result<Resolved, String> {
    let ttl = Duration::from_secs(shared.config.resolve_cache_seconds);
    let key = reference.to_string();
    if let Some(resolved) = shared.resolved.get(&key, ttl) {
        return Ok(resolved);
    }
    let worker_shared = Arc::clone(shared);
    blocking(move || {
        let options = client_options(&worker_shared.config, &reference.registry, false, None)?;
        let resolved = fetch(&reference, &options)?;
        worker_shared.resolved.put(&key, resolved.clone(), ttl);
        Ok(resolved)
    })
    .await
    .map_err(|_| "internal error".to_owned())?
}

async fn post_scan(State(shared): State<App>, body: Bytes) -> Response {
    let body: ScanBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("not a scan request: {e}")),
    };
    let reference = match Reference::parse(&body.image) {
        Ok(reference) => reference,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let platform = body.platform.unwrap_or_default();
    if !platform.is_empty() && platform.parse::<drydock_scan::Platform>().is_err() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("`{platform}` is not a platform (os/arch[/variant])"),
        );
    }
    let digest = match &reference.digest {
        Some(digest) => digest.clone(),
        None => match resolve(&shared, reference.clone()).await {
            Ok(resolved) => resolved.digest,
            Err(message) => return error(StatusCode::BAD_GATEWAY, &message),
        },
    };
    let job = NewJob {
        key: shared.key(&digest, &platform),
        registry: reference.registry.clone(),
        repository: reference.repository.clone(),
        plain_http: false,
        source: "api",
    };
    let store = Arc::clone(&shared.store);
    let enqueued = match blocking(move || store.enqueue(&job, now())).await {
        Ok(Ok(enqueued)) => enqueued,
        Ok(Err(e)) => return internal(&shared, &e),
        Err(response) => return response,
    };
    if matches!(enqueued, Enqueued::New(_)) {
        shared.ring();
    }
    let location = format!("/v1/scans/{}", enqueued.id());
    let mut response = json(
        StatusCode::ACCEPTED,
        &serde_json::json!({
            "id": enqueued.id().to_string(),
            "digest": digest,
            "location": location,
        }),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn get_scan(State(shared): State<App>, Path(id): Path<String>) -> Response {
    let (job, verdicts) = match job_and_verdicts(&shared, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return error(StatusCode::NOT_FOUND, &format!("no scan `{id}`")),
        Err(response) => return response,
    };
    let reports: Vec<serde_json::Value> = verdicts
        .iter()
        .filter_map(|v| serde_json::from_str(&v.report).ok())
        .collect();
    let mut body = serde_json::json!({
        "id": job.id.to_string(),
        "state": job.state,
        "digest": job.key.digest,
        "platform": job.key.platform,
        "registry": job.registry,
        "repository": job.repository,
        "source": job.source,
        "attempts": job.attempts,
        "error": job.error,
        "error_class": job.error_class,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "verdicts": verdicts,
    });
    if reports.len() == 1 {
        body["report"] = reports[0].clone();
    }
    body["reports"] = reports.into();
    json(StatusCode::OK, &body)
}

// ---------------------------------------------------------------------------------------------
// Kubernetes admission

/// What admission finds for one image: never waits past `deadline`.
async fn image_outcome(
    shared: App,
    image: String,
    dry_run: bool,
    deadline: tokio::time::Instant,
) -> Outcome {
    let reference = match Reference::parse(&image) {
        Ok(reference) => reference,
        Err(e) => {
            return Outcome::Miss {
                reason: e.to_string(),
            };
        }
    };
    let (digest, children) = match &reference.digest {
        Some(digest) => (digest.clone(), None),
        None => {
            match tokio::time::timeout_at(deadline, resolve(&shared, reference.clone())).await {
                Ok(Ok(resolved)) => {
                    let children = match resolved.kind {
                        ManifestKind::Index(children) => Some(children),
                        _ => None,
                    };
                    (resolved.digest, children)
                }
                Ok(Err(message)) => {
                    shared.metrics.error("unavailable");
                    return Outcome::Miss {
                        reason: format!("the tag could not be resolved: {message}"),
                    };
                }
                Err(_) => {
                    return Outcome::Miss {
                        reason: "the tag could not be resolved within the admission budget".into(),
                    };
                }
            }
        }
    };
    let worker_shared = Arc::clone(&shared);
    let lookup_digest = digest.clone();
    let found = blocking(move || {
        let (verdicts, missing) = lookup(&worker_shared, &lookup_digest, children.as_deref())?;
        let miss = verdicts.is_empty() || !missing.is_empty();
        let mut queued = false;
        if miss && !dry_run {
            let job = NewJob {
                key: worker_shared.key(&lookup_digest, ""),
                registry: reference.registry.clone(),
                repository: reference.repository.clone(),
                plain_http: false,
                source: "k8s",
            };
            let enqueued = worker_shared.store.enqueue(&job, now())?;
            queued = matches!(enqueued, Enqueued::New(_) | Enqueued::Active(_));
            if matches!(enqueued, Enqueued::New(_)) {
                worker_shared.ring();
            }
        }
        Ok::<_, StoreError>((verdicts, missing, queued))
    })
    .await;
    let (verdicts, missing, queued) = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            log::error!("{e}");
            shared.metrics.error("store");
            return Outcome::Miss {
                reason: "the verdict store failed".into(),
            };
        }
        Err(_) => {
            return Outcome::Miss {
                reason: "internal error".into(),
            };
        }
    };
    shared.metrics.lookup(!verdicts.is_empty());
    if verdicts.is_empty() {
        return Outcome::Miss {
            reason: format!(
                "no drydock verdict yet for {digest}{}",
                if dry_run {
                    " (dry run: no scan queued)"
                } else if queued {
                    "; a scan is queued"
                } else {
                    ""
                }
            ),
        };
    }
    Outcome::Verdicts {
        digest,
        verdicts,
        missing,
    }
}

async fn k8s_validate(State(shared): State<App>, body: Bytes) -> Response {
    let deadline = tokio::time::Instant::now() + shared.config.admission_budget();
    let started = Instant::now();
    let review: AdmissionReview = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("not an AdmissionReview: {e}"),
            );
        }
    };
    let Some(request) = review.request else {
        return error(
            StatusCode::BAD_REQUEST,
            "an AdmissionReview without a request",
        );
    };
    let dry_run = request.dry_run.unwrap_or(false);
    let images: Vec<ImageUse> = k8s::images(&request);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, image) in images.iter().enumerate() {
        let shared = Arc::clone(&shared);
        let name = image.image.clone();
        tasks.spawn(async move {
            let outcome = match tokio::time::timeout_at(
                deadline,
                image_outcome(shared, name, dry_run, deadline),
            )
            .await
            {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Miss {
                    reason: "no answer within the admission budget".into(),
                },
            };
            (i, outcome)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; images.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, outcome)) = joined
            && let Some(slot) = outcomes.get_mut(i)
        {
            *slot = Some(outcome);
        }
    }
    let outcomes: Vec<(ImageUse, Outcome)> = images
        .into_iter()
        .zip(outcomes)
        .map(|(image, outcome)| {
            (
                image,
                outcome.unwrap_or(Outcome::Miss {
                    reason: "internal error".into(),
                }),
            )
        })
        .collect();
    let decision = k8s::decide(&outcomes, shared.config.on_miss);
    shared.metrics.admission(decision.allowed);
    log::info!(
        "admission {} {}/{}: {} in {:.0?}",
        request.uid,
        request.namespace.as_deref().unwrap_or("-"),
        request.name.as_deref().unwrap_or("-"),
        if decision.allowed {
            "allowed"
        } else {
            "denied"
        },
        started.elapsed()
    );
    json(StatusCode::OK, &k8s::response(&request.uid, &decision))
}
