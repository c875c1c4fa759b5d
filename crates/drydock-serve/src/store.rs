//! The store of jobs, verdicts and notification event ids, behind the [`Store`] trait.
//!
//! Two implementations: [`SqliteStore`](crate::sqlite::SqliteStore) (one node, one file) and
//! [`PostgresStore`](crate::postgres::PostgresStore) (any number of replicas on one database).
//! They run the same schema and the same queries ([`crate::sql`]): times are integer seconds,
//! booleans integers, JSON text; `INSERT … ON CONFLICT`, `RETURNING` and a partial unique
//! index (one active job per key) mean the same in both; the only query that differs is the
//! claim, which PostgreSQL writes with `FOR UPDATE SKIP LOCKED` ([`crate::sql::claim`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why the store failed. The message never holds a credential (none is ever stored).
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self(error.to_string())
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 4] = [Self::Queued, Self::Running, Self::Done, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Still to be answered: queued or running.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// What makes two requests the same scan: the manifest (or index) digest, the platform asked
/// for (empty: every platform of an index, or the one image), the drydock version and the
/// policy. A new drydock or policy makes a new key, so verdicts are rescanned lazily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKey {
    pub digest: String,
    pub platform: String,
    pub engine_version: String,
    pub policy_digest: String,
}

/// A scan to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub key: JobKey,
    /// `host[:port]` of the registry to pull from.
    pub registry: String,
    /// The repository in that registry.
    pub repository: String,
    /// The registry speaks plain HTTP (Harbor's internal URL, an `http://` event URL).
    pub plain_http: bool,
    /// Who asked: `hook`, `harbor`, `api`, `k8s`.
    pub source: &'static str,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub key: JobKey,
    pub registry: String,
    pub repository: String,
    pub plain_http: bool,
    pub source: String,
    pub state: JobState,
    pub attempts: u32,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// What enqueuing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job.
    New(i64),
    /// A job with the same key is queued or running: this one is it.
    Active(i64),
    /// The key already has a live verdict: this job made it.
    Done(i64),
}

impl Enqueued {
    pub fn id(self) -> i64 {
        match self {
            Self::New(id) | Self::Active(id) | Self::Done(id) => id,
        }
    }
}

/// What recording a notification event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The event id was seen before: nothing done.
    Duplicate,
    /// First time: recorded, and the job enqueued when there was one.
    Recorded(Option<Enqueued>),
}

/// One image's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The image manifest's digest.
    pub digest: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    #[serde(rename = "drydock_version")]
    pub engine_version: String,
    pub policy_digest: String,
    pub job_id: i64,
    pub repository: String,
    pub score: u32,
    pub grade: String,
    pub passed: bool,
    pub runnable: bool,
    /// The most severe finding's severity, when there is one.
    pub worst: Option<String>,
    /// Findings by severity.
    pub counts: serde_json::Value,
    /// When it was made, RFC 3339.
    pub scanned_at: String,
    /// The whole report (JSON), not shown in listings.
    #[serde(skip)]
    pub report: String,
    /// The findings as Harbor items (`drydock_report::harbor::HarborFindings`, JSON).
    #[serde(skip)]
    pub harbor: String,
}

/// An index's child: its manifest digest and platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub digest: String,
    pub platform: String,
}

/// Jobs by state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub queued: u64,
    pub running: u64,
    pub done: u64,
    pub failed: u64,
}

impl Counts {
    /// Adds `n` jobs in `state` (as stored); an unknown state counts nowhere.
    pub fn add(&mut self, state: &str, n: i64) {
        let n = u64::try_from(n).unwrap_or(0);
        match JobState::parse(state) {
            Some(JobState::Queued) => self.queued += n,
            Some(JobState::Running) => self.running += n,
            Some(JobState::Done) => self.done += n,
            Some(JobState::Failed) => self.failed += n,
            None => {}
        }
    }
}

/// What a store that other processes share tells about their work: a job enqueued elsewhere
/// rings this process's bell, so that its idle workers claim it at once rather than at their
/// next poll.
pub trait JobBell: Send + Sync {
    /// Wakes the idle workers.
    fn ring(&self);
    /// The server is stopping: stop watching.
    fn is_stopped(&self) -> bool;
}

/// Process-local locks by name, for a store that only one process uses.
#[derive(Debug, Default)]
pub struct LocalLocks {
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl LocalLocks {
    /// Runs `f` holding the lock named `name`; forgets the lock when nobody else holds or
    /// waits for it.
    pub fn with(&self, name: &str, f: &mut dyn FnMut()) -> Result<(), StoreError> {
        let poisoned = |_| StoreError("a subject lock is poisoned".into());
        let lock = {
            let mut locks = self.locks.lock().map_err(poisoned)?;
            Arc::clone(locks.entry(name.to_owned()).or_default())
        };
        {
            let _held = lock
                .lock()
                .map_err(|_| StoreError("a subject lock is poisoned".into()))?;
            f();
        }
        let mut locks = self.locks.lock().map_err(poisoned)?;
        // Two references: the map's and ours; nobody else waits.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(name);
        }
        Ok(())
    }
}

/// Jobs, verdicts and notification events. Every method is one transaction, and short: the
/// HTTP handlers call them off the async threads.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The store answers.
    fn ping(&self) -> Result<(), StoreError>;

    /// Enqueues `job` unless a job with its key is active or has left a live verdict.
    fn enqueue(&self, job: &NewJob, now: i64) -> Result<Enqueued, StoreError>;

    /// Records a notification event id and enqueues its job, in one transaction; a known id
    /// does nothing.
    fn record_event(
        &self,
        event_id: &str,
        job: Option<&NewJob>,
        now: i64,
    ) -> Result<EventOutcome, StoreError>;

    /// Takes the oldest queued job, or a running one whose lease ran out, for `owner`.
    fn claim(
        &self,
        node: &str,
        owner: &str,
        now: i64,
        lease: i64,
    ) -> Result<Option<Job>, StoreError>;

    /// Extends the leases of `jobs` while `owner` holds them. Only the jobs the process knows
    /// it runs: a claim whose answer was lost (the connection broke at the commit) is left to
    /// expire and be claimed again.
    fn extend_leases(&self, owner: &str, jobs: &[i64], until: i64) -> Result<(), StoreError>;

    /// Stores the verdicts a job made (and, for an index, its children) and marks it done.
    fn finish(
        &self,
        job_id: i64,
        verdicts: &[Verdict],
        index: Option<&[Child]>,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Marks a job failed with the reason and its class.
    fn fail(&self, job_id: i64, error: &str, class: &str, now: i64) -> Result<(), StoreError>;

    /// Puts back in the queue the running jobs of `node` (on start: a crash left them) or of
    /// `owner` (on shutdown: they did not finish in time).
    fn requeue(&self, node: Option<&str>, owner: Option<&str>) -> Result<usize, StoreError>;

    fn job(&self, id: i64) -> Result<Option<Job>, StoreError>;

    /// The oldest queued jobs, at most `limit`, left in the queue: what the workers will
    /// claim next (a worker waiting for another's walk fetches their layers' facts ahead).
    fn queued(&self, limit: i64) -> Result<Vec<Job>, StoreError>;

    /// The verdicts a job made.
    fn job_verdicts(&self, id: i64) -> Result<Vec<Verdict>, StoreError>;

    /// The live verdicts of a manifest digest under this drydock and policy.
    fn verdicts(
        &self,
        digest: &str,
        engine_version: &str,
        policy_digest: &str,
    ) -> Result<Vec<Verdict>, StoreError>;

    /// The children of an index, as its scan recorded them.
    fn index_children(&self, digest: &str) -> Result<Vec<Child>, StoreError>;

    /// Marks every verdict of a digest (and of an index's children) deleted.
    fn mark_deleted(&self, digest: &str, now: i64) -> Result<usize, StoreError>;

    fn counts(&self) -> Result<Counts, StoreError>;

    /// Forgets notification event ids received before `before`.
    fn prune_events(&self, before: i64) -> Result<usize, StoreError>;

    /// The first [`sql::FACTS_HEAD_LEN`](crate::sql::FACTS_HEAD_LEN) bytes of the layer facts
    /// entry of `diff_id` in entry version `version`.
    fn facts_head(&self, version: &str, diff_id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The layer facts entry whole, marked used at `now` (at most once a day).
    fn facts_get(
        &self,
        version: &str,
        diff_id: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores a layer facts entry, replacing the key's.
    fn facts_put(
        &self,
        version: &str,
        diff_id: &str,
        entry: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;

    /// Deletes the layer facts entries no scan used since `before`.
    fn prune_facts(&self, before: i64) -> Result<usize, StoreError>;

    /// Takes on the walk of the layer `diff_id` (entry version `version`) for every replica
    /// sharing the store (see `drydock_scan::FactsStore::claim`): `Some(guard)` when no other
    /// replica holds it now (the guard gives it up when dropped), `None` when one does.
    /// SQLite: always `Some`, one process (the scans of a process coordinate among
    /// themselves); PostgreSQL: a session advisory lock, which the server gives up by itself
    /// if the replica dies.
    fn facts_claim(
        &self,
        version: &str,
        diff_id: &str,
    ) -> Result<Option<Box<dyn Send>>, StoreError> {
        let _ = (version, diff_id);
        Ok(Some(Box::new(())))
    }

    /// Runs `f` while no other caller, in this process or any replica sharing the store, runs
    /// one for the same repository and subject (a manifest digest): the updates of one
    /// image's referrers (the `sha256-<hex>` tag index has no conditional PUT on most
    /// registries) are serialised this way. SQLite: a process-local mutex; PostgreSQL: a
    /// transaction-scoped advisory lock, released if the replica dies. `f` should be short
    /// (a few registry requests): it holds a database connection.
    fn with_subject_lock(
        &self,
        repository: &str,
        subject: &str,
        f: &mut dyn FnMut(),
    ) -> Result<(), StoreError>;

    /// Watches for jobs enqueued by other processes sharing the store and rings `bell` for
    /// each, until `bell` says the server stops. Nothing to do for a store only this process
    /// uses (its handlers ring the bell themselves).
    fn watch_jobs(&self, bell: std::sync::Weak<dyn JobBell>) -> Result<(), StoreError> {
        let _ = bell;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[test]
    fn a_local_lock_lets_one_holder_in_at_a_time_and_is_forgotten() {
        let locks = LocalLocks::default();
        let inside = AtomicBool::new(false);
        let overlaps = AtomicUsize::new(0);
        let runs = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..5 {
                        locks
                            .with("repo@sha256:a", &mut || {
                                if inside.swap(true, Ordering::SeqCst) {
                                    overlaps.fetch_add(1, Ordering::SeqCst);
                                }
                                std::thread::sleep(std::time::Duration::from_millis(2));
                                runs.fetch_add(1, Ordering::SeqCst);
                                inside.store(false, Ordering::SeqCst);
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 20);
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
        assert!(locks.locks.lock().unwrap().is_empty());
    }
}
