//! The [`Store`] in one SQLite file: WAL, one connection behind a mutex (SQLite has one writer
//! anyway), every method one transaction.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::store::{
    Child, Counts, Enqueued, EventOutcome, Job, JobKey, JobState, NewJob, Store, StoreError,
    Verdict,
};

/// The schema, in SQL that PostgreSQL also reads but for `INTEGER PRIMARY KEY` (there:
/// `BIGSERIAL PRIMARY KEY`).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    platform TEXT NOT NULL,
    engine_version TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    plain_http INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    node TEXT,
    owner TEXT,
    locked_until BIGINT,
    error TEXT,
    error_class TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_active
    ON jobs (digest, platform, engine_version, policy_digest)
    WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE TABLE IF NOT EXISTS verdicts (
    digest TEXT NOT NULL,
    platform TEXT NOT NULL,
    engine_version TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    repository TEXT NOT NULL,
    score INTEGER NOT NULL,
    grade TEXT NOT NULL,
    passed INTEGER NOT NULL,
    runnable INTEGER NOT NULL,
    worst TEXT,
    counts TEXT NOT NULL,
    scanned_at TEXT NOT NULL,
    report TEXT NOT NULL,
    harbor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (digest, platform, engine_version, policy_digest)
);
CREATE TABLE IF NOT EXISTS job_verdicts (
    job_id BIGINT NOT NULL,
    digest TEXT NOT NULL,
    platform TEXT NOT NULL,
    PRIMARY KEY (job_id, digest, platform)
);
CREATE TABLE IF NOT EXISTS index_children (
    index_digest TEXT NOT NULL,
    child_digest TEXT NOT NULL,
    platform TEXT NOT NULL,
    PRIMARY KEY (index_digest, child_digest, platform)
);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
";

/// The claim: the oldest queued job, or a running one whose lease ran out. SQLite has a single
/// writer, so the subquery cannot race; PostgreSQL's version adds `FOR UPDATE SKIP LOCKED` to
/// the subquery.
pub const CLAIM: &str = "
UPDATE jobs SET state = 'running', node = ?1, owner = ?2, locked_until = ?3,
    attempts = attempts + 1, started_at = ?4
WHERE id = (
    SELECT id FROM jobs
    WHERE state = 'queued' OR (state = 'running' AND locked_until < ?4)
    ORDER BY id LIMIT 1
)
RETURNING id";

const JOB_COLUMNS: &str = "id, digest, platform, engine_version, policy_digest, registry, \
    repository, plain_http, source, state, attempts, error, error_class, created_at, finished_at";

const VERDICT_COLUMNS: &str = "v.digest, v.platform, v.engine_version, v.policy_digest, \
    v.job_id, v.repository, v.score, v.grade, v.passed, v.runnable, v.worst, v.counts, \
    v.scanned_at, v.report, v.harbor";

/// The store in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let state: String = row.get(9)?;
    Ok(Job {
        id: row.get(0)?,
        key: JobKey {
            digest: row.get(1)?,
            platform: row.get(2)?,
            engine_version: row.get(3)?,
            policy_digest: row.get(4)?,
        },
        registry: row.get(5)?,
        repository: row.get(6)?,
        plain_http: row.get::<_, i64>(7)? != 0,
        source: row.get(8)?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        attempts: row.get::<_, i64>(10)?.try_into().unwrap_or(u32::MAX),
        error: row.get(11)?,
        error_class: row.get(12)?,
        created_at: row.get(13)?,
        finished_at: row.get(14)?,
    })
}

fn verdict_from_row(row: &Row<'_>) -> rusqlite::Result<Verdict> {
    let counts: String = row.get(11)?;
    Ok(Verdict {
        digest: row.get(0)?,
        platform: row.get(1)?,
        engine_version: row.get(2)?,
        policy_digest: row.get(3)?,
        job_id: row.get(4)?,
        repository: row.get(5)?,
        score: row.get::<_, i64>(6)?.try_into().unwrap_or(0),
        grade: row.get(7)?,
        passed: row.get::<_, i64>(8)? != 0,
        runnable: row.get::<_, i64>(9)? != 0,
        worst: row.get(10)?,
        counts: serde_json::from_str(&counts).unwrap_or(serde_json::Value::Null),
        scanned_at: row.get(12)?,
        report: row.get(13)?,
        harbor: row.get(14)?,
    })
}

impl SqliteStore {
    /// Opens (creating it and its directory when needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        }
        let connection =
            Connection::open(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        Self::init(connection)
    }

    /// A store that lives in memory, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(connection: Connection) -> Result<Self, StoreError> {
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // `journal_mode` answers with the mode; an in-memory database stays `memory`.
        let _mode: String =
            connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        connection.execute_batch("PRAGMA synchronous = NORMAL;")?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.connection
            .lock()
            .map_err(|_| StoreError("the connection's lock is poisoned".into()))
    }
}

/// The job enqueue does, inside the caller's transaction.
fn enqueue_in(
    tx: &rusqlite::Transaction<'_>,
    job: &NewJob,
    now: i64,
) -> rusqlite::Result<Enqueued> {
    let key = &job.key;
    let active: Option<i64> = tx
        .query_row(
            "SELECT id FROM jobs WHERE digest = ?1 AND platform = ?2 AND engine_version = ?3 \
             AND policy_digest = ?4 AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
            params![
                key.digest,
                key.platform,
                key.engine_version,
                key.policy_digest
            ],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = active {
        return Ok(Enqueued::Active(id));
    }
    let done: Option<i64> = tx
        .query_row(
            "SELECT j.id FROM jobs j WHERE j.digest = ?1 AND j.platform = ?2 \
             AND j.engine_version = ?3 AND j.policy_digest = ?4 AND j.state = 'done' \
             AND EXISTS (SELECT 1 FROM job_verdicts jv JOIN verdicts v \
                 ON v.digest = jv.digest AND v.platform = jv.platform \
                 AND v.engine_version = j.engine_version AND v.policy_digest = j.policy_digest \
                 WHERE jv.job_id = j.id AND v.deleted_at IS NULL) \
             ORDER BY j.id DESC LIMIT 1",
            params![
                key.digest,
                key.platform,
                key.engine_version,
                key.policy_digest
            ],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = done {
        return Ok(Enqueued::Done(id));
    }
    if key.platform.is_empty() {
        // Any platform will do: a verdict of this very manifest, whoever asked for it.
        let verdict: Option<i64> = tx
            .query_row(
                "SELECT job_id FROM verdicts WHERE digest = ?1 AND engine_version = ?2 \
                 AND policy_digest = ?3 AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 1",
                params![key.digest, key.engine_version, key.policy_digest],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(id) = verdict {
            return Ok(Enqueued::Done(id));
        }
    }
    let id: i64 = tx.query_row(
        "INSERT INTO jobs (digest, platform, engine_version, policy_digest, registry, \
         repository, plain_http, source, state, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9) RETURNING id",
        params![
            key.digest,
            key.platform,
            key.engine_version,
            key.policy_digest,
            job.registry,
            job.repository,
            i64::from(job.plain_http),
            job.source,
            now
        ],
        |row| row.get(0),
    )?;
    Ok(Enqueued::New(id))
}

impl Store for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        let connection = self.lock()?;
        connection.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn enqueue(&self, job: &NewJob, now: i64) -> Result<Enqueued, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let enqueued = enqueue_in(&tx, job, now)?;
        tx.commit()?;
        Ok(enqueued)
    }

    fn record_event(
        &self,
        event_id: &str,
        job: Option<&NewJob>,
        now: i64,
    ) -> Result<EventOutcome, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO events (event_id, received_at) VALUES (?1, ?2) \
             ON CONFLICT (event_id) DO NOTHING",
            params![event_id, now],
        )?;
        if inserted == 0 {
            return Ok(EventOutcome::Duplicate);
        }
        let enqueued = match job {
            Some(job) => Some(enqueue_in(&tx, job, now)?),
            None => None,
        };
        tx.commit()?;
        Ok(EventOutcome::Recorded(enqueued))
    }

    fn claim(
        &self,
        node: &str,
        owner: &str,
        now: i64,
        lease: i64,
    ) -> Result<Option<Job>, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: Option<i64> = tx
            .query_row(CLAIM, params![node, owner, now + lease, now], |row| {
                row.get(0)
            })
            .optional()?;
        let job = match id {
            Some(id) => Some(tx.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                params![id],
                job_from_row,
            )?),
            None => None,
        };
        tx.commit()?;
        Ok(job)
    }

    fn extend_leases(&self, owner: &str, until: i64) -> Result<(), StoreError> {
        let connection = self.lock()?;
        connection.execute(
            "UPDATE jobs SET locked_until = ?1 WHERE state = 'running' AND owner = ?2",
            params![until, owner],
        )?;
        Ok(())
    }

    fn finish(
        &self,
        job_id: i64,
        verdicts: &[Verdict],
        index: Option<&[Child]>,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for v in verdicts {
            tx.execute(
                "INSERT INTO verdicts (digest, platform, engine_version, policy_digest, job_id, \
                 repository, score, grade, passed, runnable, worst, counts, scanned_at, report, \
                 harbor, created_at, deleted_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?16, ?15, \
                 NULL) \
                 ON CONFLICT (digest, platform, engine_version, policy_digest) DO UPDATE SET \
                 job_id = excluded.job_id, repository = excluded.repository, \
                 score = excluded.score, grade = excluded.grade, passed = excluded.passed, \
                 runnable = excluded.runnable, worst = excluded.worst, counts = excluded.counts, \
                 scanned_at = excluded.scanned_at, report = excluded.report, \
                 harbor = excluded.harbor, \
                 created_at = excluded.created_at, deleted_at = NULL",
                params![
                    v.digest,
                    v.platform,
                    v.engine_version,
                    v.policy_digest,
                    job_id,
                    v.repository,
                    i64::from(v.score),
                    v.grade,
                    i64::from(v.passed),
                    i64::from(v.runnable),
                    v.worst,
                    v.counts.to_string(),
                    v.scanned_at,
                    v.report,
                    now,
                    v.harbor
                ],
            )?;
            tx.execute(
                "INSERT INTO job_verdicts (job_id, digest, platform) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (job_id, digest, platform) DO NOTHING",
                params![job_id, v.digest, v.platform],
            )?;
        }
        if let Some(children) = index {
            let digest: String = tx.query_row(
                "SELECT digest FROM jobs WHERE id = ?1",
                params![job_id],
                |row| row.get(0),
            )?;
            for child in children {
                tx.execute(
                    "INSERT INTO index_children (index_digest, child_digest, platform) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (index_digest, child_digest, platform) \
                     DO NOTHING",
                    params![digest, child.digest, child.platform],
                )?;
            }
        }
        tx.execute(
            "UPDATE jobs SET state = 'done', locked_until = NULL, finished_at = ?2, error = ?3 \
             WHERE id = ?1",
            params![job_id, now, note],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn fail(&self, job_id: i64, error: &str, class: &str, now: i64) -> Result<(), StoreError> {
        let connection = self.lock()?;
        connection.execute(
            "UPDATE jobs SET state = 'failed', locked_until = NULL, finished_at = ?2, \
             error = ?3, error_class = ?4 WHERE id = ?1",
            params![job_id, now, error, class],
        )?;
        Ok(())
    }

    fn requeue(&self, node: Option<&str>, owner: Option<&str>) -> Result<usize, StoreError> {
        let connection = self.lock()?;
        let n = connection.execute(
            "UPDATE jobs SET state = 'queued', owner = NULL, locked_until = NULL \
             WHERE state = 'running' AND (node = ?1 OR owner = ?2)",
            params![node, owner],
        )?;
        Ok(n)
    }

    fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let connection = self.lock()?;
        Ok(connection
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                params![id],
                job_from_row,
            )
            .optional()?)
    }

    fn job_verdicts(&self, id: i64) -> Result<Vec<Verdict>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(&format!(
            "SELECT {VERDICT_COLUMNS} FROM job_verdicts jv JOIN jobs j ON j.id = jv.job_id \
             JOIN verdicts v ON v.digest = jv.digest AND v.platform = jv.platform \
             AND v.engine_version = j.engine_version AND v.policy_digest = j.policy_digest \
             WHERE jv.job_id = ?1 ORDER BY v.platform"
        ))?;
        let rows = statement.query_map(params![id], verdict_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn verdicts(
        &self,
        digest: &str,
        engine_version: &str,
        policy_digest: &str,
    ) -> Result<Vec<Verdict>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(&format!(
            "SELECT {VERDICT_COLUMNS} FROM verdicts v WHERE v.digest = ?1 \
             AND v.engine_version = ?2 AND v.policy_digest = ?3 AND v.deleted_at IS NULL \
             ORDER BY v.platform"
        ))?;
        let rows = statement.query_map(params![digest, engine_version, policy_digest], |row| {
            verdict_from_row(row)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn index_children(&self, digest: &str) -> Result<Vec<Child>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(
            "SELECT child_digest, platform FROM index_children WHERE index_digest = ?1 \
             ORDER BY platform",
        )?;
        let rows = statement.query_map(params![digest], |row| {
            Ok(Child {
                digest: row.get(0)?,
                platform: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn mark_deleted(&self, digest: &str, now: i64) -> Result<usize, StoreError> {
        let connection = self.lock()?;
        let n = connection.execute(
            "UPDATE verdicts SET deleted_at = ?2 WHERE deleted_at IS NULL AND (digest = ?1 \
             OR digest IN (SELECT child_digest FROM index_children WHERE index_digest = ?1))",
            params![digest, now],
        )?;
        Ok(n)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let connection = self.lock()?;
        let mut statement =
            connection.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
        let mut counts = Counts::default();
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (state, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match JobState::parse(&state) {
                Some(JobState::Queued) => counts.queued = n,
                Some(JobState::Running) => counts.running = n,
                Some(JobState::Done) => counts.done = n,
                Some(JobState::Failed) => counts.failed = n,
                None => {}
            }
        }
        Ok(counts)
    }

    fn prune_events(&self, before: i64) -> Result<usize, StoreError> {
        let connection = self.lock()?;
        Ok(connection.execute("DELETE FROM events WHERE received_at < ?1", params![before])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_job(digest: &str) -> NewJob {
        NewJob {
            key: JobKey {
                digest: digest.into(),
                platform: String::new(),
                engine_version: "0.1.0".into(),
                policy_digest: "none".into(),
            },
            registry: "127.0.0.1:5000".into(),
            repository: "team/app".into(),
            plain_http: false,
            source: "hook",
        }
    }

    fn verdict(digest: &str, passed: bool) -> Verdict {
        Verdict {
            digest: digest.into(),
            platform: "linux/amd64".into(),
            engine_version: "0.1.0".into(),
            policy_digest: "none".into(),
            job_id: 0,
            repository: "team/app".into(),
            score: if passed { 95 } else { 10 },
            grade: if passed { "A" } else { "F" }.into(),
            passed,
            runnable: passed,
            worst: None,
            counts: serde_json::json!({}),
            scanned_at: "2026-01-01T00:00:00Z".into(),
            report: "{}".into(),
            harbor: "{}".into(),
        }
    }

    #[test]
    fn one_active_job_per_key_and_a_verdict_ends_the_need() {
        let store = SqliteStore::in_memory().unwrap();
        let first = store.enqueue(&new_job("sha256:a"), 1).unwrap();
        assert!(matches!(first, Enqueued::New(_)));
        assert_eq!(
            store.enqueue(&new_job("sha256:a"), 2).unwrap(),
            Enqueued::Active(first.id())
        );
        let job = store.claim("n", "n/1", 3, 600).unwrap().unwrap();
        assert_eq!(job.id, first.id());
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.attempts, 1);
        assert!(store.claim("n", "n/1", 3, 600).unwrap().is_none());
        assert_eq!(
            store.enqueue(&new_job("sha256:a"), 4).unwrap(),
            Enqueued::Active(first.id())
        );
        store
            .finish(job.id, &[verdict("sha256:a", true)], None, None, 5)
            .unwrap();
        assert_eq!(
            store.enqueue(&new_job("sha256:a"), 6).unwrap(),
            Enqueued::Done(first.id())
        );
        let verdicts = store.verdicts("sha256:a", "0.1.0", "none").unwrap();
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].job_id, first.id());
        assert!(
            store
                .verdicts("sha256:a", "0.2.0", "none")
                .unwrap()
                .is_empty()
        );
        // A delete ends the verdict; the next push scans again.
        assert_eq!(store.mark_deleted("sha256:a", 7).unwrap(), 1);
        assert!(
            store
                .verdicts("sha256:a", "0.1.0", "none")
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store.enqueue(&new_job("sha256:a"), 8).unwrap(),
            Enqueued::New(_)
        ));
    }

    #[test]
    fn an_event_id_counts_once() {
        let store = SqliteStore::in_memory().unwrap();
        let job = new_job("sha256:b");
        assert!(matches!(
            store.record_event("e1", Some(&job), 1).unwrap(),
            EventOutcome::Recorded(Some(Enqueued::New(_)))
        ));
        assert_eq!(
            store.record_event("e1", Some(&job), 2).unwrap(),
            EventOutcome::Duplicate
        );
        assert_eq!(store.counts().unwrap().queued, 1);
        assert_eq!(store.prune_events(2).unwrap(), 1);
    }

    #[test]
    fn an_expired_lease_or_a_restart_gives_the_job_back() {
        let store = SqliteStore::in_memory().unwrap();
        let id = store.enqueue(&new_job("sha256:c"), 1).unwrap().id();
        store.claim("node-a", "node-a/1", 10, 60).unwrap().unwrap();
        assert!(store.claim("node-b", "node-b/1", 20, 60).unwrap().is_none());
        // Past the lease, another node takes it over.
        let taken = store.claim("node-b", "node-b/1", 71, 60).unwrap().unwrap();
        assert_eq!((taken.id, taken.attempts), (id, 2));
        // A restart of node-b puts it back at once.
        assert_eq!(store.requeue(Some("node-b"), None).unwrap(), 1);
        assert_eq!(store.job(id).unwrap().unwrap().state, JobState::Queued);
        store.claim("node-b", "node-b/2", 80, 60).unwrap().unwrap();
        store.extend_leases("node-b/2", 1000).unwrap();
        assert!(
            store
                .claim("node-c", "node-c/1", 500, 60)
                .unwrap()
                .is_none()
        );
        store.fail(id, "boom", "invalid", 501).unwrap();
        let job = store.job(id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.error.as_deref(), Some("boom"));
        // A failed job is no obstacle to a new one.
        assert!(matches!(
            store.enqueue(&new_job("sha256:c"), 502).unwrap(),
            Enqueued::New(_)
        ));
    }

    #[test]
    fn an_index_answers_with_its_childrens_verdicts_and_the_file_survives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/serve.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            let id = store.enqueue(&new_job("sha256:index"), 1).unwrap().id();
            store.claim("n", "n/1", 2, 60).unwrap().unwrap();
            let children = [Child {
                digest: "sha256:amd".into(),
                platform: "linux/amd64".into(),
            }];
            store
                .finish(
                    id,
                    &[verdict("sha256:amd", false)],
                    Some(&children),
                    None,
                    3,
                )
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.index_children("sha256:index").unwrap().len(), 1);
        let job_verdicts = store.job_verdicts(1).unwrap();
        assert_eq!(job_verdicts.len(), 1);
        assert!(!job_verdicts[0].passed);
        assert_eq!(store.mark_deleted("sha256:index", 4).unwrap(), 1);
    }
}
