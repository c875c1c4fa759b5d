//! drydock as a service (`drydock serve`).
//!
//! This crate owns the HTTP front ends that registries, Harbor and Kubernetes call, the job
//! queue and worker pool that run scans through `drydock-scan`, and the store of jobs and
//! verdicts keyed by manifest digest.
//!
//! It must never scan inside a request handler (admission answers come from stored verdicts),
//! never print to a terminal or decide a process exit code, and never log a credential.

mod config;
mod facts;
pub mod harbor;
mod hooks;
mod http;
pub mod k8s;
mod metrics;
mod pg_tls;
mod postgres;
mod resolve;
mod sql;
mod sqlite;
mod state;
mod store;
mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::{AttachKindName, Config, FactsCacheMode, OnMiss, RegistryConfig, Testing};
pub use postgres::{PostgresStore, is_postgres_url};
pub use sqlite::SqliteStore;
pub use store::{
    Child, Counts, Enqueued, EventOutcome, Job, JobBell, JobKey, JobState, NewJob, Store,
    StoreError, Verdict,
};

use crate::state::{Shared, now};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration (or a file it names) is wrong.
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl ServeError {
    /// A mistake in what the server was told, rather than a failure of the machine.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Config { .. })
    }
}

fn load_policy(config: &Config) -> Result<Option<drydock_report::Policy>, ServeError> {
    let Some(path) = &config.policy else {
        return Ok(None);
    };
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ServeError::Config {
        file: file.clone(),
        message: format!("cannot read the policy: {e}"),
    })?;
    let catalogue = drydock_scan::catalogue();
    drydock_report::Policy::parse(&text, &file, &catalogue)
        .map(Some)
        .map_err(|e| ServeError::Config {
            file,
            message: e.to_string(),
        })
}

/// Runs the server until SIGTERM or SIGINT: then it stops taking requests, lets running
/// scans finish within `shutdown_grace_seconds`, puts back in the queue those that did not,
/// and returns.
pub fn run(config: Config) -> Result<(), ServeError> {
    let tokens = config.all_tokens()?;
    if tokens.is_empty() && !config.allow_unauthenticated {
        return Err(ServeError::Config {
            file: "configuration".into(),
            message: "no API token: set `tokens` or `token_files` (--token-file, \
                      $DRYDOCK_SERVE_TOKEN), or `allow_unauthenticated` for a test bed"
                .into(),
        });
    }
    if tokens.is_empty() {
        log::warn!("serving without authentication");
    }
    let policy = load_policy(&config)?;
    let store = open_store(&config)?;
    let shared = Arc::new(Shared::new(config, store, policy, tokens));
    let weak = Arc::downgrade(&shared);
    let bell: std::sync::Weak<dyn JobBell> = weak;
    shared.store.watch_jobs(bell)?;
    // This node's jobs that a crash left running are taken back at once, not after the lease.
    let requeued = shared.store.requeue(Some(&shared.node), None)?;
    if requeued > 0 {
        log::info!("{requeued} interrupted job(s) back in the queue");
    }
    shared.store.prune_events(now() - 86_400)?;
    prune_facts(&shared);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("drydock-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    let workers = worker::start(&shared, shared.config.workers);
    let served = runtime.block_on(serve(Arc::clone(&shared)));
    shared.stop();
    let grace = Duration::from_secs(shared.config.shutdown_grace_seconds);
    let started = Instant::now();
    while workers.iter().any(|w| !w.is_finished()) && started.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    if workers.iter().all(|w| w.is_finished()) {
        for worker in workers {
            let _ = worker.join();
        }
        log::info!("every worker stopped");
    } else {
        let n = shared.store.requeue(None, Some(&shared.owner))?;
        log::warn!("{n} running job(s) did not finish in time: back in the queue");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}

/// The store the configuration names: a `postgres://` URL, else a SQLite file.
fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    match config.store_url() {
        Some(url) => {
            // The workers, the heartbeat and a few handlers at once; LISTEN has its own.
            let connections = config.workers.max(1) + 6;
            let store = PostgresStore::connect_trusting(url, connections, &config.ca_certs)?;
            log::info!("store: PostgreSQL, at most {connections} connections");
            Ok(Arc::new(store))
        }
        None => Ok(Arc::new(SqliteStore::open(&config.store)?)),
    }
}

async fn serve(shared: Arc<Shared>) -> Result<(), ServeError> {
    let address = shared.config.listen;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Listen {
            address: address.to_string(),
            source,
        })?;
    log::info!(
        "listening on {}",
        listener.local_addr().map_or(address, |a| a)
    );
    tokio::spawn(heartbeat(Arc::clone(&shared)));
    axum::serve(listener, http::router(Arc::clone(&shared)))
        .with_graceful_shutdown(stop_signal(Arc::clone(&shared)))
        .await
        .map_err(|source| ServeError::Listen {
            address: address.to_string(),
            source,
        })
}

/// Extends the leases of this process's running jobs, and forgets old event ids.
async fn heartbeat(shared: Arc<Shared>) {
    let lease = shared.config.lease();
    let mut tick = tokio::time::interval(lease / 3);
    loop {
        tick.tick().await;
        let shared = Arc::clone(&shared);
        let _ = tokio::task::spawn_blocking(move || {
            let lease = i64::try_from(lease.as_secs()).unwrap_or(600);
            let running: Vec<i64> = shared
                .running
                .lock()
                .map(|r| r.iter().copied().collect())
                .unwrap_or_default();
            if let Err(e) = shared
                .store
                .extend_leases(&shared.owner, &running, now() + lease)
            {
                log::error!("{e}");
            }
            if let Err(e) = shared.store.prune_events(now() - 86_400) {
                log::error!("{e}");
            }
            prune_facts(&shared);
        })
        .await;
    }
}

/// Deletes the facts cache entries in the store that no scan used for `facts_keep_days`.
fn prune_facts(shared: &Shared) {
    if shared.config.facts_cache != FactsCacheMode::Store {
        return;
    }
    let keep =
        i64::try_from(shared.config.facts_keep_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    match shared.store.prune_facts(now().saturating_sub(keep)) {
        Ok(0) => {}
        Ok(n) => log::info!("{n} unused layer facts cache entries deleted"),
        Err(e) => log::error!("{e}"),
    }
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal).
async fn stop_signal(shared: Arc<Shared>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                log::error!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    log::info!("stopping: no new requests, running scans finish");
    shared.stop();
}
