//! What every handler and worker shares: the configuration, the store, the policy, the
//! counters, and the bell that wakes idle workers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use drydock_registry::{Credential, Secret};
use drydock_report::{Gate, Policy};
use drydock_scan::Snapshots;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::resolve::ResolveCache;
use crate::store::{JobBell, JobKey, Store};

/// The state of one `drydock serve` process.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    pub policy: Option<Policy>,
    pub gate: Gate,
    /// `sha256:…` of the policy file, or `none`: part of every verdict's key.
    pub policy_digest: String,
    /// This drydock's version: part of every verdict's key.
    pub engine_version: String,
    pub tokens: Vec<Secret>,
    /// This machine's name in leases: a restart takes back the jobs it held.
    pub node: String,
    /// This process: leases are extended and, on shutdown, given back by it.
    pub owner: String,
    pub blob_cache: PathBuf,
    pub shutdown: AtomicBool,
    bell: Mutex<u64>,
    ring: Condvar,
    /// Credentials that came with a request (Harbor's robot accounts), by job: kept in memory
    /// only, never written to the store.
    pub credentials: Mutex<HashMap<i64, Credential>>,
    /// The jobs this process's workers run: the heartbeat extends their leases only.
    pub running: Mutex<BTreeSet<i64>>,
    pub hook_failures_left: AtomicU32,
    pub resolved: ResolveCache,
    /// The base layers this process applied, for the next scan on the same base.
    pub snapshots: Arc<Snapshots>,
    /// The digests whose layers were walked ahead (see `worker.rs`).
    prefetched: Mutex<HashSet<String>>,
    /// Set by a worker waiting for another's walk: the walk-ahead thread has work.
    prefetch_wanted: Mutex<bool>,
    prefetch_bell: Condvar,
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Shared {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        policy: Option<Policy>,
        tokens: Vec<Secret>,
    ) -> Self {
        let gate = Gate {
            fail_on: policy
                .as_ref()
                .and_then(|p| p.fail_on)
                .unwrap_or(Gate::default().fail_on),
            min_score: policy.as_ref().and_then(|p| p.min_score),
        };
        let policy_digest = policy
            .as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.digest.clone());
        let node = config.node.clone().unwrap_or_else(host_name);
        let owner = format!("{node}/{}-{}", std::process::id(), now());
        let blob_cache = config.cache_dir.clone().unwrap_or_else(|| {
            if config.store_url().is_some() {
                return PathBuf::from("blobs");
            }
            config
                .store
                .parent()
                .map_or_else(|| PathBuf::from("blobs"), |dir| dir.join("blobs"))
        });
        let hook_failures_left = AtomicU32::new(config.testing.fail_hooks);
        let snapshots = Arc::new(Snapshots::new(
            usize::try_from(config.snapshot_memory_mib.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
        ));
        Self {
            config,
            store,
            metrics: Metrics::default(),
            policy,
            gate,
            policy_digest,
            engine_version: env!("CARGO_PKG_VERSION").to_owned(),
            tokens,
            node,
            owner,
            blob_cache,
            shutdown: AtomicBool::new(false),
            bell: Mutex::new(0),
            ring: Condvar::new(),
            credentials: Mutex::new(HashMap::new()),
            running: Mutex::new(BTreeSet::new()),
            hook_failures_left,
            resolved: ResolveCache::default(),
            snapshots,
            prefetched: Mutex::new(HashSet::new()),
            prefetch_wanted: Mutex::new(false),
            prefetch_bell: Condvar::new(),
        }
    }

    /// `true` the first time `digest` is asked about: its layers are to be walked ahead.
    /// Forgets them all past a bound (walking ahead again finds the layers cached).
    pub fn first_prefetch(&self, digest: &str) -> bool {
        let Ok(mut seen) = self.prefetched.lock() else {
            return false;
        };
        if seen.len() >= 10_000 {
            seen.clear();
        }
        seen.insert(digest.to_owned())
    }

    /// A worker waits for another's walk: the walk-ahead thread may use the idle time.
    pub fn want_prefetch(&self) {
        if let Ok(mut wanted) = self.prefetch_wanted.lock() {
            *wanted = true;
        }
        self.prefetch_bell.notify_one();
    }

    /// Waits up to `timeout` for a worker to want layers walked ahead; `true` when one did
    /// (and takes the wish).
    pub fn prefetch_wanted(&self, timeout: Duration) -> bool {
        let Ok(wanted) = self.prefetch_wanted.lock() else {
            return false;
        };
        let Ok((mut wanted, _)) =
            self.prefetch_bell
                .wait_timeout_while(wanted, timeout, |wanted| !*wanted)
        else {
            return false;
        };
        std::mem::take(&mut *wanted)
    }

    /// The key of a scan of `digest` under this drydock and policy.
    pub fn key(&self, digest: &str, platform: &str) -> JobKey {
        JobKey {
            digest: digest.to_owned(),
            platform: platform.to_owned(),
            engine_version: self.engine_version.clone(),
            policy_digest: self.policy_digest.clone(),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Wakes every idle worker: there is work, or it is time to stop.
    pub fn ring(&self) {
        if let Ok(mut bell) = self.bell.lock() {
            *bell = bell.wrapping_add(1);
        }
        self.ring.notify_all();
    }

    /// Waits for the bell, at most `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let Ok(bell) = self.bell.lock() else {
            std::thread::sleep(timeout);
            return;
        };
        let seen = *bell;
        let _ = self
            .ring
            .wait_timeout_while(bell, timeout, |bell| *bell == seen);
    }

    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.ring();
    }
}

impl JobBell for Shared {
    fn ring(&self) {
        Shared::ring(self);
    }

    fn is_stopped(&self) -> bool {
        self.is_shutting_down()
    }
}

/// This machine's name, for leases.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "drydock".to_owned())
}
