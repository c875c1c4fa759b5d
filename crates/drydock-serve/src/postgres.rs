//! The [`Store`] on PostgreSQL, for several replicas of `drydock serve` sharing one database.
//!
//! The schema and the queries are [`crate::sql`]'s, the SQLite store's, with `$1` placeholders;
//! what PostgreSQL adds:
//!
//! - the claim locks the row it takes with `FOR UPDATE SKIP LOCKED`, so replicas claiming at
//!   once never take the same job nor wait on each other; a claimed job has a lease
//!   (`locked_until`) that the owner's heartbeat extends, and a job whose replica died is
//!   claimed again once its lease ran out;
//! - an enqueue notifies the `drydock_jobs` channel in its transaction (`pg_notify`, sent on
//!   commit); each replica `LISTEN`s on one connection of its own and wakes its idle workers,
//!   which otherwise poll every two seconds (missed notifications, expired leases);
//! - migrations run on start under a transaction-scoped advisory lock, recorded in
//!   `schema_version`, so replicas starting together apply each one once;
//! - updates of one image's referrers take `pg_advisory_xact_lock` on a hash of the repository
//!   and subject ([`Store::with_subject_lock`]).
//!
//! Connections come from a small pool of the sync `postgres` client (each call runs on a
//! worker thread or the blocking pool, never on the async runtime). A call that fails because
//! the connection is gone (PostgreSQL restarted, failed over, a network blip) drops that
//! connection and is retried on a new one with a growing delay, for a bounded time; past it,
//! the caller sees a store error (a hook answers 500 and the registry redelivers, `/readyz`
//! answers 503, a worker retries later). Every method is one transaction, so a retried call
//! never applies half of itself; the ones whose answer was lost with the connection are
//! idempotent (finish, fail, leases, requeue) or harmless when repeated (an enqueue finds its
//! own job, an event its own id).

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, Transaction};

use crate::pg_tls::RustlsMake;

use crate::sql::{self, Dialect};
use crate::store::{
    Child, Counts, Enqueued, EventOutcome, Job, JobBell, NewJob, Store, StoreError, Verdict,
};

/// The channel enqueues notify and idle replicas listen on.
pub const CHANNEL: &str = "drydock_jobs";

/// The advisory lock (bigint key space) held while migrations run: "drydock" in ASCII.
const MIGRATION_LOCK: i64 = 0x0064_7279_646f_636b;

/// The migrations, in order; each runs once per database, in one transaction.
fn migrations() -> Vec<(i64, String)> {
    sql::migrations(Dialect::Postgres)
}

/// How long a call keeps retrying a lost connection before it answers with an error: short,
/// since HTTP handlers wait for it (an admission answer has two seconds in all).
const RETRY_FOR: Duration = Duration::from_millis(1500);

/// How long the first connection may take to come up at start (a database starting beside
/// the replicas).
const START_FOR: Duration = Duration::from_secs(30);

/// What went wrong in a call.
enum Failure {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(error: postgres::Error) -> Self {
        Self::Pg(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl Failure {
    /// A failure another connection may not have: the connection broke, the server is
    /// restarting or refused it for now, or the transaction lost a race it may win next.
    fn is_transient(&self) -> bool {
        let Self::Pg(error) = self else {
            return false;
        };
        if error.is_closed() {
            return true;
        }
        if let Some(code) = error.code() {
            let code = code.code();
            return code.starts_with("08")
                || matches!(
                    code,
                    "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "53300"
                );
        }
        // Connecting, reading or writing: the socket failed. Not when TLS refused the
        // server (its certificate, its name, its protocol): trying again changes nothing.
        std::error::Error::source(error)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| {
                !io.get_ref()
                    .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>())
            })
    }

    fn into_store(self) -> StoreError {
        match self {
            Self::Pg(error) => StoreError(describe(&error)),
            Self::Store(error) => error,
        }
    }
}

/// An error with its cause (the server's message, the socket's error): the connection string
/// and its password never appear in either.
fn describe(error: &postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("postgres: {error}: {source}"),
        None => format!("postgres: {error}"),
    }
}

/// Open connections and the idle ones among them.
struct PoolState {
    idle: Vec<Client>,
    open: usize,
}

/// A small pool: at most `max` connections, idle ones reused, broken ones dropped.
struct Pool {
    config: postgres::Config,
    tls: RustlsMake,
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

impl Pool {
    /// A connection: an idle one, a new one while fewer than `max` are open, else the first
    /// one given back within `wait`.
    fn get(&self, wait: Duration) -> Result<Client, Failure> {
        let poisoned = || StoreError("the connection pool's lock is poisoned".into());
        let deadline = Instant::now() + wait;
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(client);
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.config.connect(self.tls.clone()) {
                    Ok(client) => Ok(client),
                    Err(e) => {
                        if let Ok(mut state) = self.state.lock() {
                            state.open -= 1;
                        }
                        self.freed.notify_one();
                        Err(e.into())
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError(format!(
                    "postgres: all {} connections of this replica are busy",
                    self.max
                ))
                .into());
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .map_err(|_| poisoned())?
                .0;
        }
    }

    /// Gives a connection back; a broken one is dropped.
    fn put(&self, client: Client, healthy: bool) {
        if let Ok(mut state) = self.state.lock() {
            if healthy && !client.is_closed() {
                state.idle.push(client);
            } else {
                state.open -= 1;
            }
        }
        self.freed.notify_one();
    }
}

/// The store on a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    walks: Arc<WalkLocks>,
}

/// The connection that holds this replica's layer walk claims ([`Store::facts_claim`]):
/// session advisory locks, all on one connection so that claims never take the pool's
/// connections from the workers and handlers; opened when first needed and again after it
/// broke (which gave every claim up: at worst a layer is walked twice).
struct WalkLocks {
    config: postgres::Config,
    tls: RustlsMake,
    client: Mutex<Option<Client>>,
}

/// The advisory lock (two-key form, beside the subjects') of one layer's walk.
const WALK_LOCK: &str = "hashtext('drydock-facts'), hashtext($1)";

impl WalkLocks {
    /// Runs `op` on the connection, opening it when there is none; a connection that failed
    /// is dropped, and `op` runs once more on a new one (the server may have restarted).
    fn with<T>(
        &self,
        mut op: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut slot = self
            .client
            .lock()
            .map_err(|_| StoreError("the walk lock connection's lock is poisoned".into()))?;
        let mut tries = 2;
        loop {
            tries -= 1;
            let client = match slot.as_mut() {
                Some(client) if !client.is_closed() => client,
                _ => slot.insert(
                    self.config
                        .connect(self.tls.clone())
                        .map_err(|e| StoreError(describe(&e)))?,
                ),
            };
            match op(client) {
                Ok(value) => return Ok(value),
                Err(e) => {
                    *slot = None;
                    if tries == 0 {
                        return Err(StoreError(describe(&e)));
                    }
                }
            }
        }
    }
}

/// A claimed layer walk: its lock is given up when dropped.
struct WalkClaim {
    locks: Arc<WalkLocks>,
    name: String,
}

impl Drop for WalkClaim {
    fn drop(&mut self) {
        let unlocked = self.locks.with(|client| {
            client.execute(
                &format!("SELECT pg_advisory_unlock({WALK_LOCK})"),
                &[&self.name],
            )
        });
        if let Err(e) = unlocked {
            // The connection is gone, and the lock with it.
            log::debug!("{}: walk lock: {e}", self.name);
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the configuration: it may hold the password.
        f.debug_struct("PostgresStore")
            .field("max_connections", &self.pool.max)
            .finish_non_exhaustive()
    }
}

/// The URL is a PostgreSQL connection string (`postgres://` or `postgresql://`).
pub fn is_postgres_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// Tells the listening replicas that a job is queued (sent when the transaction commits).
fn notify(tx: &mut Transaction<'_>) -> Result<(), postgres::Error> {
    tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
    Ok(())
}

/// The job enqueue does, inside the caller's transaction. Under PostgreSQL's read committed
/// isolation two replicas may both find no active job for a key and both insert one: the
/// partial unique index lets one in, and the other (`ON CONFLICT … DO NOTHING`) looks again
/// and finds it.
fn enqueue_in(tx: &mut Transaction<'_>, job: &NewJob, now: i64) -> Result<Enqueued, Failure> {
    let key = &job.key;
    for _ in 0..5 {
        let key_params: [&(dyn postgres::types::ToSql + Sync); 4] = [
            &key.digest,
            &key.platform,
            &key.engine_version,
            &key.policy_digest,
        ];
        if let Some(row) = tx.query_opt(&sql::postgres(sql::ACTIVE_JOB), &key_params)? {
            return Ok(Enqueued::Active(row.try_get(0)?));
        }
        if let Some(row) = tx.query_opt(&sql::postgres(sql::DONE_JOB), &key_params)? {
            return Ok(Enqueued::Done(row.try_get(0)?));
        }
        if key.platform.is_empty() {
            // Any platform will do: a verdict of this very manifest, whoever asked for it.
            if let Some(row) = tx.query_opt(
                &sql::postgres(sql::ANY_VERDICT_JOB),
                &[&key.digest, &key.engine_version, &key.policy_digest],
            )? {
                return Ok(Enqueued::Done(row.try_get(0)?));
            }
        }
        let inserted = tx.query_opt(
            &sql::postgres(sql::INSERT_JOB),
            &[
                &key.digest,
                &key.platform,
                &key.engine_version,
                &key.policy_digest,
                &job.registry,
                &job.repository,
                &i64::from(job.plain_http),
                &job.source,
                &now,
            ],
        )?;
        if let Some(row) = inserted {
            notify(tx)?;
            return Ok(Enqueued::New(row.try_get(0)?));
        }
    }
    Err(StoreError(format!(
        "enqueue {}: the key's job kept changing",
        key.digest
    ))
    .into())
}

impl PostgresStore {
    /// Connects to the database at `url` (waiting up to 30 s for it to come up), runs the
    /// migrations it lacks, and keeps at most `max_connections` connections open. TLS as the
    /// URL's `sslmode` says, verified against the system's roots.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        Self::connect_trusting(url, max_connections, &[])
    }

    /// [`PostgresStore::connect`], trusting the PEM files `ca_certs` too for the server's
    /// certificate (see `pg_tls.rs`).
    pub fn connect_trusting(
        url: &str,
        max_connections: usize,
        ca_certs: &[std::path::PathBuf],
    ) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError(format!("the store's URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("drydock-serve");
        }
        if !url.contains("keepalives_idle") {
            // A connection to a vanished host is noticed in about a minute, not two hours.
            config.keepalives_idle(Duration::from_secs(60));
        }
        let tls = RustlsMake::new(ca_certs)?;
        let store = Self {
            walks: Arc::new(WalkLocks {
                config: config.clone(),
                tls: tls.clone(),
                client: Mutex::new(None),
            }),
            pool: Pool {
                config,
                tls,
                state: Mutex::new(PoolState {
                    idle: Vec::new(),
                    open: 0,
                }),
                freed: Condvar::new(),
                max: max_connections.max(2),
            },
        };
        store.run(START_FOR, migrate)?;
        Ok(store)
    }

    /// Runs `op` on a pooled connection; a transient failure drops the connection and runs it
    /// again on another, with a growing delay, for up to `window`.
    fn run<T>(
        &self,
        window: Duration,
        mut op: impl FnMut(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        let mut logged = false;
        loop {
            let failure = match self.pool.get(window) {
                Ok(mut client) => match op(&mut client) {
                    Ok(value) => {
                        self.pool.put(client, true);
                        return Ok(value);
                    }
                    Err(failure) => {
                        self.pool.put(client, !failure.is_transient());
                        failure
                    }
                },
                Err(failure) => failure,
            };
            if !failure.is_transient() || started.elapsed() + delay > window {
                return Err(failure.into_store());
            }
            if !logged {
                log::warn!("{}: retrying", failure.into_store());
                logged = true;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// A connection that answers, for a caller that holds it across its own work (and gives
    /// it back with `pool.put`).
    fn checkout(&self) -> Result<Client, StoreError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let failure = match self.pool.get(RETRY_FOR) {
                Ok(mut client) => match client.batch_execute("") {
                    Ok(()) => return Ok(client),
                    Err(e) => {
                        self.pool.put(client, false);
                        Failure::from(e)
                    }
                },
                Err(failure) => failure,
            };
            if !failure.is_transient() || started.elapsed() + delay > RETRY_FOR {
                return Err(failure.into_store());
            }
            std::thread::sleep(delay);
            delay *= 2;
        }
    }

    /// [`Self::run`] for the usual window.
    fn call<T>(&self, op: impl FnMut(&mut Client) -> Result<T, Failure>) -> Result<T, StoreError> {
        self.run(RETRY_FOR, op)
    }
}

/// Applies the migrations the database lacks, one replica at a time.
fn migrate(client: &mut Client) -> Result<(), Failure> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version BIGINT PRIMARY KEY,
            applied_at BIGINT NOT NULL
        )",
    )?;
    let current: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
        .try_get(0)?;
    let migrations = migrations();
    let latest = migrations.last().map_or(0, |(version, _)| *version);
    if current > latest {
        log::warn!(
            "the database's schema is version {current}, newer than this drydock's {latest}: \
             running on it (migrations only add)"
        );
    }
    for (version, text) in migrations.into_iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(&text)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
            &[&version, &crate::state::now()],
        )?;
        log::info!("store: schema migrated to version {version}");
    }
    tx.commit()?;
    Ok(())
}

/// Listens on [`CHANNEL`] and rings the bell for each notification, reconnecting (and ringing
/// once, for what came meanwhile) when the connection is lost, until the bell says stop.
fn listen(config: &postgres::Config, tls: &RustlsMake, bell: &Weak<dyn JobBell>) {
    let alive = || bell.upgrade().is_some_and(|b| !b.is_stopped());
    let ring = || {
        if let Some(bell) = bell.upgrade() {
            bell.ring();
        }
    };
    let mut delay = Duration::from_millis(100);
    let mut down_since: Option<Instant> = None;
    while alive() {
        let connected = config.connect(tls.clone()).and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            Ok(client)
        });
        let mut client = match connected {
            Ok(client) => client,
            Err(e) => {
                if down_since.is_none() {
                    log::warn!("store: cannot listen for jobs: {}", describe(&e));
                    down_since = Some(Instant::now());
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if let Some(since) = down_since.take() {
            log::info!(
                "store: listening for jobs again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
        delay = Duration::from_millis(100);
        ring();
        let mut quiet = 0u32;
        while alive() {
            let next = client
                .notifications()
                .timeout_iter(Duration::from_secs(1))
                .next();
            match next {
                Ok(Some(_)) => {
                    quiet = 0;
                    // One ring for a burst.
                    while let Ok(Some(_)) = client.notifications().iter().next() {}
                    ring();
                }
                Ok(None) if client.is_closed() => break,
                Ok(None) => {
                    quiet += 1;
                    // Now and then, make sure the connection still answers.
                    if quiet.is_multiple_of(30) && client.batch_execute("").is_err() {
                        break;
                    }
                }
                Err(e) => {
                    log::warn!("store: listening for jobs: {}", describe(&e));
                    break;
                }
            }
        }
        if alive() {
            down_since = Some(Instant::now());
            log::warn!("store: the listening connection was lost: reconnecting");
        }
    }
}

impl Store for PostgresStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.call(|client| {
            client.batch_execute("SELECT 1")?;
            Ok(())
        })
    }

    fn enqueue(&self, job: &NewJob, now: i64) -> Result<Enqueued, StoreError> {
        self.call(|client| {
            let mut tx = client.transaction()?;
            let enqueued = enqueue_in(&mut tx, job, now)?;
            tx.commit()?;
            Ok(enqueued)
        })
    }

    fn record_event(
        &self,
        event_id: &str,
        job: Option<&NewJob>,
        now: i64,
    ) -> Result<EventOutcome, StoreError> {
        self.call(|client| {
            let mut tx = client.transaction()?;
            // A replica handling the same event (the registry's fan-out) waits here for the
            // other's commit, then finds the id.
            let inserted = tx.execute(&sql::postgres(sql::INSERT_EVENT), &[&event_id, &now])?;
            if inserted == 0 {
                return Ok(EventOutcome::Duplicate);
            }
            let enqueued = match job {
                Some(job) => Some(enqueue_in(&mut tx, job, now)?),
                None => None,
            };
            tx.commit()?;
            Ok(EventOutcome::Recorded(enqueued))
        })
    }

    fn claim(
        &self,
        node: &str,
        owner: &str,
        now: i64,
        lease: i64,
    ) -> Result<Option<Job>, StoreError> {
        let claim = sql::postgres(&sql::claim(Dialect::Postgres));
        self.call(|client| {
            let mut tx = client.transaction()?;
            let until = now + lease;
            let Some(row) = tx.query_opt(&claim, &[&node, &owner, &until, &now])? else {
                return Ok(None);
            };
            let id: i64 = row.try_get(0)?;
            let job = sql::job_from(&tx.query_one(&sql::postgres(sql::JOB), &[&id])?)?;
            tx.commit()?;
            Ok(Some(job))
        })
    }

    fn extend_leases(&self, owner: &str, jobs: &[i64], until: i64) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let extend = sql::postgres(sql::EXTEND_LEASE);
        self.call(|client| {
            let mut tx = client.transaction()?;
            for id in jobs {
                tx.execute(&extend, &[&until, &owner, id])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn finish(
        &self,
        job_id: i64,
        verdicts: &[Verdict],
        index: Option<&[Child]>,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let upsert = sql::postgres(sql::UPSERT_VERDICT);
        let link = sql::postgres(sql::INSERT_JOB_VERDICT);
        self.call(|client| {
            let mut tx = client.transaction()?;
            for v in verdicts {
                let counts = v.counts.to_string();
                tx.execute(
                    &upsert,
                    &[
                        &v.digest,
                        &v.platform,
                        &v.engine_version,
                        &v.policy_digest,
                        &job_id,
                        &v.repository,
                        &i64::from(v.score),
                        &v.grade,
                        &i64::from(v.passed),
                        &i64::from(v.runnable),
                        &v.worst,
                        &counts,
                        &v.scanned_at,
                        &v.report,
                        &now,
                        &v.harbor,
                    ],
                )?;
                tx.execute(&link, &[&job_id, &v.digest, &v.platform])?;
            }
            if let Some(children) = index {
                let digest: String = tx
                    .query_one(&sql::postgres(sql::JOB_DIGEST), &[&job_id])?
                    .try_get(0)?;
                let insert = sql::postgres(sql::INSERT_CHILD);
                for child in children {
                    tx.execute(&insert, &[&digest, &child.digest, &child.platform])?;
                }
            }
            tx.execute(&sql::postgres(sql::MARK_DONE), &[&job_id, &now, &note])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn fail(&self, job_id: i64, error: &str, class: &str, now: i64) -> Result<(), StoreError> {
        self.call(|client| {
            client.execute(
                &sql::postgres(sql::MARK_FAILED),
                &[&job_id, &now, &error, &class],
            )?;
            Ok(())
        })
    }

    fn requeue(&self, node: Option<&str>, owner: Option<&str>) -> Result<usize, StoreError> {
        self.call(|client| {
            let mut tx = client.transaction()?;
            let n = tx.execute(&sql::postgres(sql::REQUEUE), &[&node, &owner])?;
            if n > 0 {
                notify(&mut tx)?;
            }
            tx.commit()?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        self.call(|client| {
            let row = client.query_opt(&sql::postgres(sql::JOB), &[&id])?;
            Ok(row.as_ref().map(sql::job_from).transpose()?)
        })
    }

    fn queued(&self, limit: i64) -> Result<Vec<Job>, StoreError> {
        self.call(|client| {
            let rows = client.query(&sql::postgres(sql::QUEUED_JOBS), &[&limit])?;
            Ok(rows.iter().map(sql::job_from).collect::<Result<_, _>>()?)
        })
    }

    fn job_verdicts(&self, id: i64) -> Result<Vec<Verdict>, StoreError> {
        self.call(|client| {
            let rows = client.query(&sql::postgres(sql::JOB_VERDICTS), &[&id])?;
            Ok(rows
                .iter()
                .map(sql::verdict_from)
                .collect::<Result<_, _>>()?)
        })
    }

    fn verdicts(
        &self,
        digest: &str,
        engine_version: &str,
        policy_digest: &str,
    ) -> Result<Vec<Verdict>, StoreError> {
        self.call(|client| {
            let rows = client.query(
                &sql::postgres(sql::VERDICTS),
                &[&digest, &engine_version, &policy_digest],
            )?;
            Ok(rows
                .iter()
                .map(sql::verdict_from)
                .collect::<Result<_, _>>()?)
        })
    }

    fn index_children(&self, digest: &str) -> Result<Vec<Child>, StoreError> {
        self.call(|client| {
            let rows = client.query(&sql::postgres(sql::INDEX_CHILDREN), &[&digest])?;
            let children = rows
                .iter()
                .map(|row| {
                    Ok(Child {
                        digest: row.try_get(0)?,
                        platform: row.try_get(1)?,
                    })
                })
                .collect::<Result<_, postgres::Error>>()?;
            Ok(children)
        })
    }

    fn mark_deleted(&self, digest: &str, now: i64) -> Result<usize, StoreError> {
        self.call(|client| {
            let n = client.execute(&sql::postgres(sql::MARK_DELETED), &[&digest, &now])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        self.call(|client| {
            let mut counts = Counts::default();
            for row in client.query(sql::COUNTS, &[])? {
                let state: String = row.try_get(0)?;
                counts.add(&state, row.try_get(1)?);
            }
            Ok(counts)
        })
    }

    fn prune_events(&self, before: i64) -> Result<usize, StoreError> {
        self.call(|client| {
            let n = client.execute(&sql::postgres(sql::PRUNE_EVENTS), &[&before])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn facts_head(&self, version: &str, diff_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(|client| {
            let row = client.query_opt(&sql::postgres(sql::FACTS_HEAD), &[&version, &diff_id])?;
            Ok(row.map(|row| row.try_get(0)).transpose()?)
        })
    }

    fn facts_get(
        &self,
        version: &str,
        diff_id: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(|client| {
            let row = client.query_opt(&sql::postgres(sql::FACTS_GET), &[&version, &diff_id])?;
            let entry: Option<Vec<u8>> = row.map(|row| row.try_get(0)).transpose()?;
            if entry.is_some() {
                let stale = now - 86_400;
                client.execute(
                    &sql::postgres(sql::FACTS_TOUCH),
                    &[&version, &diff_id, &now, &stale],
                )?;
            }
            Ok(entry)
        })
    }

    fn facts_put(
        &self,
        version: &str,
        diff_id: &str,
        entry: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let size = i64::try_from(entry.len()).unwrap_or(i64::MAX);
        self.call(|client| {
            client.execute(
                &sql::postgres(sql::FACTS_PUT),
                &[&version, &diff_id, &entry, &size, &now],
            )?;
            Ok(())
        })
    }

    fn prune_facts(&self, before: i64) -> Result<usize, StoreError> {
        self.call(|client| {
            let n = client.execute(&sql::postgres(sql::PRUNE_FACTS), &[&before])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn facts_claim(
        &self,
        version: &str,
        diff_id: &str,
    ) -> Result<Option<Box<dyn Send>>, StoreError> {
        let name = format!("{version}/{diff_id}");
        let locked = self.walks.with(|client| {
            client
                .query_one(
                    &format!("SELECT pg_try_advisory_lock({WALK_LOCK})"),
                    &[&name],
                )?
                .try_get::<_, bool>(0)
        })?;
        Ok(locked.then(|| {
            Box::new(WalkClaim {
                locks: Arc::clone(&self.walks),
                name,
            }) as Box<dyn Send>
        }))
    }

    fn with_subject_lock(
        &self,
        repository: &str,
        subject: &str,
        f: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        let name = format!("{repository}@{subject}");
        // Only taking the lock is retried: once `f` ran, its work is not repeated.
        let mut client = self.checkout()?;
        let locked = (|| -> Result<std::thread::Result<()>, postgres::Error> {
            let mut tx = client.transaction()?;
            // The two-key form: a key space of its own, apart from the migrations' lock.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('drydock-subject'), hashtext($1))",
                &[&name],
            )?;
            // A panic in `f` rolls back (the lock goes) and gives the connection back first.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *f));
            if ran.is_ok() {
                tx.commit()?;
            }
            Ok(ran)
        })();
        self.pool.put(client, locked.is_ok());
        match locked {
            Ok(Ok(())) => Ok(()),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(e) => Err(StoreError(describe(&e))),
        }
    }

    fn watch_jobs(&self, bell: Weak<dyn JobBell>) -> Result<(), StoreError> {
        let config = self.pool.config.clone();
        let tls = self.pool.tls.clone();
        std::thread::Builder::new()
            .name("drydock-listen".into())
            .spawn(move || listen(&config, &tls, &bell))
            .map_err(|e| StoreError(format!("cannot start the listening thread: {e}")))?;
        Ok(())
    }
}
