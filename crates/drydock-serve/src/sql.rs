//! The SQL both stores run: one schema and one set of queries, written with SQLite's numbered
//! placeholders (`?1`) and turned into PostgreSQL's (`$1`) by [`postgres`]. What the dialects
//! do not share is spelled out here too: the primary key's type ([`schema`]) and the claim's
//! row lock ([`claim`]).
//!
//! Every integer column is `BIGINT` (SQLite reads it as `INTEGER`), so that both drivers bind
//! and read `i64` everywhere; times are integer seconds since the epoch, booleans 0 or 1, JSON
//! text.

use crate::store::{Job, JobKey, JobState, Verdict};

/// The schema, as SQLite reads it. PostgreSQL's differs only in the primary key of `jobs` and
/// the type of byte strings (see [`schema`]).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    platform TEXT NOT NULL,
    engine_version TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    plain_http BIGINT NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
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
    score BIGINT NOT NULL,
    grade TEXT NOT NULL,
    passed BIGINT NOT NULL,
    runnable BIGINT NOT NULL,
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

/// The layer facts cache's table (PostgreSQL's second migration): entries of
/// `drydock_scan::FactsStore`, by entry version and diff id.
pub const LAYER_FACTS: &str = "
CREATE TABLE IF NOT EXISTS layer_facts (
    version TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    entry BLOB NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT NOT NULL,
    PRIMARY KEY (version, diff_id)
);
CREATE INDEX IF NOT EXISTS layer_facts_by_use ON layer_facts (used_at);
";

/// Which database a query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The schema's versions in `dialect`, oldest first (each only adds): SQLite's
/// `INTEGER PRIMARY KEY` (the rowid) is PostgreSQL's `BIGSERIAL PRIMARY KEY`, its `BLOB`
/// PostgreSQL's `BYTEA`.
pub fn migrations(dialect: Dialect) -> Vec<(i64, String)> {
    let versions = [(1, SCHEMA), (2, LAYER_FACTS)];
    versions
        .into_iter()
        .map(|(version, text)| {
            let text = match dialect {
                Dialect::Sqlite => text.to_owned(),
                Dialect::Postgres => text
                    .replace("id INTEGER PRIMARY KEY", "id BIGSERIAL PRIMARY KEY")
                    .replace(" BLOB ", " BYTEA "),
            };
            (version, text)
        })
        .collect()
}

/// The whole schema in `dialect` (every migration; each creates only what is missing).
pub fn schema(dialect: Dialect) -> String {
    migrations(dialect)
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

/// The claim: the oldest queued job, or a running one whose lease ran out, taken for a node
/// and an owner (`?1`, `?2`) until `?3`, at `?4`; answers the job's id. SQLite has a single
/// writer, so its subquery cannot race; PostgreSQL's locks the row it picks and skips the
/// rows other replicas are claiming (`FOR UPDATE SKIP LOCKED`), so that concurrent claims
/// never wait on each other nor take the same job.
pub fn claim(dialect: Dialect) -> String {
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE jobs SET state = 'running', node = ?1, owner = ?2, locked_until = ?3, \
         attempts = attempts + 1, started_at = ?4 \
         WHERE id = (SELECT id FROM jobs \
             WHERE state = 'queued' OR (state = 'running' AND locked_until < ?4) \
             ORDER BY id LIMIT 1{lock}) \
         RETURNING id"
    )
}

/// `sql` with PostgreSQL's placeholders: `?N` becomes `$N` (outside string literals, where
/// none of these queries has a `?`).
pub fn postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! job_columns {
    () => {
        "id, digest, platform, engine_version, policy_digest, registry, repository, \
         plain_http, source, state, attempts, error, error_class, created_at, finished_at"
    };
}

macro_rules! verdict_columns {
    () => {
        "v.digest, v.platform, v.engine_version, v.policy_digest, v.job_id, v.repository, \
         v.score, v.grade, v.passed, v.runnable, v.worst, v.counts, v.scanned_at, v.report, \
         v.harbor"
    };
}

/// A job by id, its columns in the order `job_from_row` reads them.
pub const JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1");

/// The oldest queued jobs, at most ?1 (not claimed: a look at what comes next).
pub const QUEUED_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?1"
);

/// The active (queued or running) job of a key (`?1`…`?4`: digest, platform, drydock
/// version, policy digest).
pub const ACTIVE_JOB: &str = "SELECT id FROM jobs WHERE digest = ?1 AND platform = ?2 \
    AND engine_version = ?3 AND policy_digest = ?4 AND state IN ('queued', 'running') \
    ORDER BY id LIMIT 1";

/// The newest done job of a key that left a live verdict.
pub const DONE_JOB: &str = "SELECT j.id FROM jobs j WHERE j.digest = ?1 AND j.platform = ?2 \
    AND j.engine_version = ?3 AND j.policy_digest = ?4 AND j.state = 'done' \
    AND EXISTS (SELECT 1 FROM job_verdicts jv JOIN verdicts v \
        ON v.digest = jv.digest AND v.platform = jv.platform \
        AND v.engine_version = j.engine_version AND v.policy_digest = j.policy_digest \
        WHERE jv.job_id = j.id AND v.deleted_at IS NULL) \
    ORDER BY j.id DESC LIMIT 1";

/// The job that made the newest live verdict of a manifest, whatever platform was asked for
/// (`?1`…`?3`: digest, drydock version, policy digest).
pub const ANY_VERDICT_JOB: &str = "SELECT job_id FROM verdicts WHERE digest = ?1 \
    AND engine_version = ?2 AND policy_digest = ?3 AND deleted_at IS NULL \
    ORDER BY created_at DESC LIMIT 1";

/// A new queued job; answers nothing when a concurrent transaction made the key's active job
/// first (the partial unique index), which the caller then looks up.
pub const INSERT_JOB: &str = "INSERT INTO jobs (digest, platform, engine_version, \
    policy_digest, registry, repository, plain_http, source, state, created_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9) \
    ON CONFLICT (digest, platform, engine_version, policy_digest) \
    WHERE state IN ('queued', 'running') DO NOTHING RETURNING id";

pub const INSERT_EVENT: &str = "INSERT INTO events (event_id, received_at) VALUES (?1, ?2) \
    ON CONFLICT (event_id) DO NOTHING";

/// One job's lease (`?3`), while `?2` still owns it.
pub const EXTEND_LEASE: &str =
    "UPDATE jobs SET locked_until = ?1 WHERE id = ?3 AND state = 'running' AND owner = ?2";

/// A verdict (`?1`…`?16`), replacing the key's previous one.
pub const UPSERT_VERDICT: &str = "INSERT INTO verdicts (digest, platform, engine_version, \
    policy_digest, job_id, repository, score, grade, passed, runnable, worst, counts, \
    scanned_at, report, harbor, created_at, deleted_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?16, ?15, NULL) \
    ON CONFLICT (digest, platform, engine_version, policy_digest) DO UPDATE SET \
    job_id = excluded.job_id, repository = excluded.repository, score = excluded.score, \
    grade = excluded.grade, passed = excluded.passed, runnable = excluded.runnable, \
    worst = excluded.worst, counts = excluded.counts, scanned_at = excluded.scanned_at, \
    report = excluded.report, harbor = excluded.harbor, created_at = excluded.created_at, \
    deleted_at = NULL";

pub const INSERT_JOB_VERDICT: &str = "INSERT INTO job_verdicts (job_id, digest, platform) \
    VALUES (?1, ?2, ?3) ON CONFLICT (job_id, digest, platform) DO NOTHING";

pub const JOB_DIGEST: &str = "SELECT digest FROM jobs WHERE id = ?1";

pub const INSERT_CHILD: &str = "INSERT INTO index_children (index_digest, child_digest, \
    platform) VALUES (?1, ?2, ?3) ON CONFLICT (index_digest, child_digest, platform) \
    DO NOTHING";

pub const MARK_DONE: &str = "UPDATE jobs SET state = 'done', locked_until = NULL, \
    finished_at = ?2, error = ?3 WHERE id = ?1";

pub const MARK_FAILED: &str = "UPDATE jobs SET state = 'failed', locked_until = NULL, \
    finished_at = ?2, error = ?3, error_class = ?4 WHERE id = ?1";

pub const REQUEUE: &str = "UPDATE jobs SET state = 'queued', owner = NULL, \
    locked_until = NULL WHERE state = 'running' AND (node = ?1 OR owner = ?2)";

pub const JOB_VERDICTS: &str = concat!(
    "SELECT ",
    verdict_columns!(),
    " FROM job_verdicts jv JOIN jobs j ON j.id = jv.job_id \
     JOIN verdicts v ON v.digest = jv.digest AND v.platform = jv.platform \
     AND v.engine_version = j.engine_version AND v.policy_digest = j.policy_digest \
     WHERE jv.job_id = ?1 ORDER BY v.platform"
);

pub const VERDICTS: &str = concat!(
    "SELECT ",
    verdict_columns!(),
    " FROM verdicts v WHERE v.digest = ?1 AND v.engine_version = ?2 \
     AND v.policy_digest = ?3 AND v.deleted_at IS NULL ORDER BY v.platform"
);

pub const INDEX_CHILDREN: &str = "SELECT child_digest, platform FROM index_children \
    WHERE index_digest = ?1 ORDER BY platform";

pub const MARK_DELETED: &str = "UPDATE verdicts SET deleted_at = ?2 WHERE deleted_at IS NULL \
    AND (digest = ?1 OR digest IN (SELECT child_digest FROM index_children \
    WHERE index_digest = ?1))";

pub const COUNTS: &str = "SELECT state, COUNT(*) FROM jobs GROUP BY state";

pub const PRUNE_EVENTS: &str = "DELETE FROM events WHERE received_at < ?1";

/// The first 1,024 bytes of a layer facts entry (`?1` version, `?2` diff id): its header.
/// Both dialects' `substr` takes bytes of a byte string.
pub const FACTS_HEAD: &str =
    "SELECT substr(entry, 1, 1024) FROM layer_facts WHERE version = ?1 AND diff_id = ?2";

/// The length [`FACTS_HEAD`] reads.
pub const FACTS_HEAD_LEN: usize = 1024;

pub const FACTS_GET: &str = "SELECT entry FROM layer_facts WHERE version = ?1 AND diff_id = ?2";

/// Marks an entry used at `?3`, when it was last marked before `?4` (one write a day per
/// entry, not one per read).
pub const FACTS_TOUCH: &str = "UPDATE layer_facts SET used_at = ?3 \
    WHERE version = ?1 AND diff_id = ?2 AND used_at < ?4";

/// An entry (`?3`, `?4` bytes) stored at `?5`, replacing the key's previous one.
pub const FACTS_PUT: &str = "INSERT INTO layer_facts (version, diff_id, entry, size, \
    created_at, used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
    ON CONFLICT (version, diff_id) DO UPDATE SET entry = excluded.entry, \
    size = excluded.size, created_at = excluded.created_at, used_at = excluded.used_at";

/// Entries no scan used since `?1` (those of older drydock versions among them).
pub const PRUNE_FACTS: &str = "DELETE FROM layer_facts WHERE used_at < ?1";

/// A row as either driver gives it: the column types both stores read (see the module doc:
/// integers are `i64`, text is text).
pub trait Columns {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
}

impl Columns for ::postgres::Row {
    type Error = ::postgres::Error;
    fn int(&self, i: usize) -> Result<i64, ::postgres::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, ::postgres::Error> {
        self.try_get(i)
    }
    fn text(&self, i: usize) -> Result<String, ::postgres::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, ::postgres::Error> {
        self.try_get(i)
    }
}

/// A job from a row of [`JOB`]'s columns.
pub fn job_from<C: Columns>(row: &C) -> Result<Job, C::Error> {
    Ok(Job {
        id: row.int(0)?,
        key: JobKey {
            digest: row.text(1)?,
            platform: row.text(2)?,
            engine_version: row.text(3)?,
            policy_digest: row.text(4)?,
        },
        registry: row.text(5)?,
        repository: row.text(6)?,
        plain_http: row.int(7)? != 0,
        source: row.text(8)?,
        state: JobState::parse(&row.text(9)?).unwrap_or(JobState::Failed),
        attempts: row.int(10)?.try_into().unwrap_or(u32::MAX),
        error: row.opt_text(11)?,
        error_class: row.opt_text(12)?,
        created_at: row.int(13)?,
        finished_at: row.opt_int(14)?,
    })
}

/// A verdict from a row of [`VERDICTS`]' columns.
pub fn verdict_from<C: Columns>(row: &C) -> Result<Verdict, C::Error> {
    Ok(Verdict {
        digest: row.text(0)?,
        platform: row.text(1)?,
        engine_version: row.text(2)?,
        policy_digest: row.text(3)?,
        job_id: row.int(4)?,
        repository: row.text(5)?,
        score: row.int(6)?.try_into().unwrap_or(0),
        grade: row.text(7)?,
        passed: row.int(8)? != 0,
        runnable: row.int(9)? != 0,
        worst: row.opt_text(10)?,
        counts: serde_json::from_str(&row.text(11)?).unwrap_or(serde_json::Value::Null),
        scanned_at: row.text(12)?,
        report: row.text(13)?,
        harbor: row.text(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_literals_only() {
        assert_eq!(
            postgres("SELECT '?1' FROM t WHERE a = ?1 AND b = ?12 AND c = ?"),
            "SELECT '?1' FROM t WHERE a = $1 AND b = $12 AND c = ?"
        );
        assert!(postgres(UPSERT_VERDICT).contains("$16, $15"));
        assert!(claim(Dialect::Postgres).contains("LIMIT 1 FOR UPDATE SKIP LOCKED)"));
        assert!(!claim(Dialect::Sqlite).contains("SKIP"));
        assert!(schema(Dialect::Postgres).contains("id BIGSERIAL PRIMARY KEY"));
        assert!(!schema(Dialect::Postgres).contains("INTEGER PRIMARY KEY"));
        assert!(schema(Dialect::Postgres).contains("entry BYTEA NOT NULL"));
        assert!(!schema(Dialect::Postgres).contains("BLOB"));
        assert!(FACTS_HEAD.contains(&format!("substr(entry, 1, {FACTS_HEAD_LEN})")));
    }
}
