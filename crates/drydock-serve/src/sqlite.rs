//! The [`Store`] in one SQLite file: WAL, one connection behind a mutex (SQLite has one writer
//! anyway), every method one transaction. The SQL is [`crate::sql`]'s, shared with PostgreSQL.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::sql::{self, Dialect};
use crate::store::{
    Child, Counts, Enqueued, EventOutcome, Job, LocalLocks, NewJob, Store, StoreError, Verdict,
};

/// The store in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
    claim: String,
    /// One process per file: a process-local lock per subject is enough.
    subjects: LocalLocks,
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
        connection.execute_batch(&sql::schema(Dialect::Sqlite))?;
        Ok(Self {
            connection: Mutex::new(connection),
            claim: sql::claim(Dialect::Sqlite),
            subjects: LocalLocks::default(),
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
    let key_params = params![
        key.digest,
        key.platform,
        key.engine_version,
        key.policy_digest
    ];
    let active: Option<i64> = tx
        .query_row(sql::ACTIVE_JOB, key_params, |row| row.get(0))
        .optional()?;
    if let Some(id) = active {
        return Ok(Enqueued::Active(id));
    }
    let done: Option<i64> = tx
        .query_row(sql::DONE_JOB, key_params, |row| row.get(0))
        .optional()?;
    if let Some(id) = done {
        return Ok(Enqueued::Done(id));
    }
    if key.platform.is_empty() {
        // Any platform will do: a verdict of this very manifest, whoever asked for it.
        let verdict: Option<i64> = tx
            .query_row(
                sql::ANY_VERDICT_JOB,
                params![key.digest, key.engine_version, key.policy_digest],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(id) = verdict {
            return Ok(Enqueued::Done(id));
        }
    }
    // One writer: no concurrent transaction can have made the active job since the look-up.
    let id: i64 = tx.query_row(
        sql::INSERT_JOB,
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
        let inserted = tx.execute(sql::INSERT_EVENT, params![event_id, now])?;
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
            .query_row(&self.claim, params![node, owner, now + lease, now], |row| {
                row.get(0)
            })
            .optional()?;
        let job = match id {
            Some(id) => Some(tx.query_row(sql::JOB, params![id], |row| sql::job_from(row))?),
            None => None,
        };
        tx.commit()?;
        Ok(job)
    }

    fn extend_leases(&self, owner: &str, jobs: &[i64], until: i64) -> Result<(), StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in jobs {
            tx.execute(sql::EXTEND_LEASE, params![until, owner, id])?;
        }
        tx.commit()?;
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
                sql::UPSERT_VERDICT,
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
                sql::INSERT_JOB_VERDICT,
                params![job_id, v.digest, v.platform],
            )?;
        }
        if let Some(children) = index {
            let digest: String =
                tx.query_row(sql::JOB_DIGEST, params![job_id], |row| row.get(0))?;
            for child in children {
                tx.execute(
                    sql::INSERT_CHILD,
                    params![digest, child.digest, child.platform],
                )?;
            }
        }
        tx.execute(sql::MARK_DONE, params![job_id, now, note])?;
        tx.commit()?;
        Ok(())
    }

    fn fail(&self, job_id: i64, error: &str, class: &str, now: i64) -> Result<(), StoreError> {
        let connection = self.lock()?;
        connection.execute(sql::MARK_FAILED, params![job_id, now, error, class])?;
        Ok(())
    }

    fn requeue(&self, node: Option<&str>, owner: Option<&str>) -> Result<usize, StoreError> {
        let connection = self.lock()?;
        Ok(connection.execute(sql::REQUEUE, params![node, owner])?)
    }

    fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let connection = self.lock()?;
        Ok(connection
            .query_row(sql::JOB, params![id], |row| sql::job_from(row))
            .optional()?)
    }

    fn queued(&self, limit: i64) -> Result<Vec<Job>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(sql::QUEUED_JOBS)?;
        let rows = statement.query_map(params![limit], |row| sql::job_from(row))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn job_verdicts(&self, id: i64) -> Result<Vec<Verdict>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(sql::JOB_VERDICTS)?;
        let rows = statement.query_map(params![id], |row| sql::verdict_from(row))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn verdicts(
        &self,
        digest: &str,
        engine_version: &str,
        policy_digest: &str,
    ) -> Result<Vec<Verdict>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(sql::VERDICTS)?;
        let rows = statement.query_map(params![digest, engine_version, policy_digest], |row| {
            sql::verdict_from(row)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn index_children(&self, digest: &str) -> Result<Vec<Child>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(sql::INDEX_CHILDREN)?;
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
        Ok(connection.execute(sql::MARK_DELETED, params![digest, now])?)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(sql::COUNTS)?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut counts = Counts::default();
        for row in rows {
            let (state, n) = row?;
            counts.add(&state, n);
        }
        Ok(counts)
    }

    fn prune_events(&self, before: i64) -> Result<usize, StoreError> {
        let connection = self.lock()?;
        Ok(connection.execute(sql::PRUNE_EVENTS, params![before])?)
    }

    fn facts_head(&self, version: &str, diff_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let connection = self.lock()?;
        Ok(connection
            .query_row(sql::FACTS_HEAD, params![version, diff_id], |row| row.get(0))
            .optional()?)
    }

    fn facts_get(
        &self,
        version: &str,
        diff_id: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let connection = self.lock()?;
        let entry: Option<Vec<u8>> = connection
            .query_row(sql::FACTS_GET, params![version, diff_id], |row| row.get(0))
            .optional()?;
        if entry.is_some() {
            connection.execute(
                sql::FACTS_TOUCH,
                params![version, diff_id, now, now - 86_400],
            )?;
        }
        Ok(entry)
    }

    fn facts_put(
        &self,
        version: &str,
        diff_id: &str,
        entry: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let connection = self.lock()?;
        let size = i64::try_from(entry.len()).unwrap_or(i64::MAX);
        connection.execute(sql::FACTS_PUT, params![version, diff_id, entry, size, now])?;
        Ok(())
    }

    fn prune_facts(&self, before: i64) -> Result<usize, StoreError> {
        let connection = self.lock()?;
        Ok(connection.execute(sql::PRUNE_FACTS, params![before])?)
    }

    fn with_subject_lock(
        &self,
        repository: &str,
        subject: &str,
        f: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        self.subjects.with(&format!("{repository}@{subject}"), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{JobKey, JobState};

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
    fn layer_facts_are_kept_by_version_and_diff_id_and_pruned_when_unused() {
        let store = SqliteStore::in_memory().unwrap();
        let entry: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(store.facts_get("v1", "sha256:d", 10).unwrap(), None);
        store.facts_put("v1", "sha256:d", &entry, 10).unwrap();
        assert_eq!(
            store.facts_get("v1", "sha256:d", 10).unwrap().unwrap(),
            entry
        );
        assert_eq!(
            store.facts_head("v1", "sha256:d").unwrap().unwrap(),
            entry[..sql::FACTS_HEAD_LEN]
        );
        assert_eq!(store.facts_get("v2", "sha256:d", 10).unwrap(), None);
        // Replaced whole.
        store.facts_put("v1", "sha256:d", b"short", 20).unwrap();
        assert_eq!(
            store.facts_head("v1", "sha256:d").unwrap().unwrap(),
            b"short"
        );
        // Read two days later: marked used, so it outlives an entry nobody read.
        store.facts_put("v1", "sha256:e", b"unread", 20).unwrap();
        assert!(
            store
                .facts_get("v1", "sha256:d", 20 + 2 * 86_400)
                .unwrap()
                .is_some()
        );
        assert_eq!(store.prune_facts(20 + 86_400).unwrap(), 1);
        assert!(store.facts_get("v1", "sha256:e", 30).unwrap().is_none());
        assert!(store.facts_get("v1", "sha256:d", 30).unwrap().is_some());
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
        store.extend_leases("node-b/2", &[id], 1000).unwrap();
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
