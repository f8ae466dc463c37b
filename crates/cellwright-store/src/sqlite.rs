//! The SQLite backend.

pub mod ledger;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cellwright_core::{
    ArtifactId, ArtifactRef, ArtifactStore, CallId, Clock, RunId, RunStatus, RunSummary,
    StoreError, StoredEvent, SystemClock, TraceEvent, TraceSink, TraceStore,
};
use std::collections::HashMap;

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::oneshot;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How hard a commit tries to survive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A committed event survives the process being killed (WAL, `synchronous=NORMAL`).
    #[default]
    Process,
    /// A committed event also survives power loss (`synchronous=FULL`).
    PowerLoss,
}

/// A run store in one SQLite file.
///
/// One connection writes. Events are queued; whoever needs an event durable takes the
/// writing connection and commits *everything* queued so far in one statement (group
/// commit), so concurrent writers share commits. [`TraceSink::record`] returns once its event
/// is committed; [`TraceSink::record_deferred`] only queues, and its event is committed, in
/// order, with the next durable one (or at [`SqliteStore::flush`]).
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    reader: SqlitePool,
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

struct Shared {
    queue: Mutex<Vec<PendingEvent>>,
    writer: tokio::sync::Mutex<Writer>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

type Ack = oneshot::Sender<Result<u64, StoreError>>;

struct PendingEvent {
    run: RunId,
    at_ms: i64,
    kind: &'static str,
    step: Option<i64>,
    call: Option<i64>,
    payload: String,
    meta: RunMeta,
    ack: Option<Ack>,
}

/// The change an event makes to the `runs` index.
enum RunMeta {
    None,
    Started { question: String, model: String },
    Status { status: RunStatus, finished: bool },
}

/// Deferred events queued beyond this are committed without waiting for a durable one.
const MAX_QUEUE: usize = 512;

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default(), Arc::new(SystemClock)).await
    }

    pub async fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        if path.is_dir() {
            return Err(StoreError::Open {
                path: shown,
                message: "this is a directory; give a file path".into(),
            });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: shown.clone(),
                message: format!("cannot create its folder {}: {e}", parent.display()),
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| open_error(&shown, &e))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Process => SqliteSynchronous::Normal,
                Durability::PowerLoss => SqliteSynchronous::Full,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Another process creating the same file at this moment holds it briefly (switching it
        // to WAL, writing the schema): such conflicts end quickly, so try again.
        let conn = settle(|| SqliteConnection::connect_with(&options), &shown).await?;
        settle(|| migrate(&options), &shown).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.create_if_missing(false))
            .await
            .map_err(|e| open_error(&shown, &e))?;
        let writer = Writer {
            conn: Some(conn),
            path: shown,
            next_seq: HashMap::new(),
            failed: None,
            stats: WriteStats::default(),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                writer: tokio::sync::Mutex::new(writer),
            }),
            reader,
            path,
            clock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the store occupies on disk (database, WAL and shared-memory files).
    pub fn disk_bytes(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut p = self.path.clone().into_os_string();
                p.push(suffix);
                std::fs::metadata(p).ok().map(|m| m.len())
            })
            .sum()
    }

    /// Commits every event queued so far.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let mut writer = self.shared.writer.lock().await;
        self.commit_queued(&mut writer).await;
        writer.health()
    }

    /// How many commits the events written so far took (group commit shares them).
    pub async fn write_stats(&self) -> WriteStats {
        self.shared.writer.lock().await.stats
    }

    /// Moves the WAL into the main file, so its size reflects what is stored.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let mut writer = self.shared.writer.lock().await;
        self.commit_queued(&mut writer).await;
        let path = writer.path.clone();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(writer.conn()?)
            .await
            .map_err(|e| classify(&path, e.to_string()))?;
        Ok(())
    }

    /// Commits what is queued and closes the connections; later writes fail.
    pub async fn close(&self) {
        let mut writer = self.shared.writer.lock().await;
        self.commit_queued(&mut writer).await;
        if let Some(conn) = writer.conn.take() {
            let _ = conn.close().await;
        }
        drop(writer);
        self.reader.close().await;
    }

    fn enqueue(&self, event: PendingEvent) -> usize {
        let mut queue = lock(&self.shared.queue);
        queue.push(event);
        queue.len()
    }

    /// Takes the queue and commits it: the caller holds the writing connection.
    async fn commit_queued(&self, writer: &mut Writer) {
        let events = std::mem::take(&mut *lock(&self.shared.queue));
        writer.commit(events).await;
    }

    fn pending(
        &self,
        run: &RunId,
        event: &TraceEvent,
        ack: Option<Ack>,
    ) -> Result<PendingEvent, StoreError> {
        let payload = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
            what: "event to store".into(),
            message: e.to_string(),
        })?;
        let (step, call) = event_keys(event);
        let meta = match event {
            TraceEvent::RunStarted {
                question, model, ..
            } => RunMeta::Started {
                question: question.clone(),
                model: model.clone(),
            },
            TraceEvent::RunFinished { status, .. } => RunMeta::Status {
                status: *status,
                finished: true,
            },
            TraceEvent::RunResumed { .. } => RunMeta::Status {
                status: RunStatus::Running,
                finished: false,
            },
            _ => RunMeta::None,
        };
        Ok(PendingEvent {
            run: run.clone(),
            at_ms: self.clock.now_ms(),
            kind: event.kind(),
            step,
            call,
            payload,
            meta,
            ack,
        })
    }

    fn db_error(&self, e: sqlx::Error) -> StoreError {
        classify(&self.path.display().to_string(), e.to_string())
    }
}

/// Brings the schema up to date.
///
/// Two processes opening a new file at once may both find it unmigrated; the second's
/// migration then fails on tables the first just made. The first commits the schema and its
/// migration record together, so running the migrator again finds it applied. (A pool, not a
/// bare connection, keeps this future `Send` for `tokio::spawn`.)
async fn migrate(options: &SqliteConnectOptions) -> Result<(), sqlx::Error> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let result = MIGRATOR.run(&pool).await;
    pool.close().await;
    Ok(result?)
}

/// Runs `attempt` again while it fails only because another process is setting up the same
/// file (locked, or a table it just created).
async fn settle<T, E, F, Fut>(mut attempt: F, shown: &str) -> Result<T, StoreError>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 0u64;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                let message = e.to_string();
                tries += 1;
                let transient =
                    message.contains("database is locked") || message.contains("already exists");
                if tries >= 10 || !transient {
                    return Err(classify(shown, message));
                }
                tokio::time::sleep(Duration::from_millis(10 * tries)).await;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The queue is a plain Vec: still consistent if a holder panicked.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn closed() -> StoreError {
    StoreError::Database("the store was closed".into())
}

/// Turns SQLite's messages into the store's error kinds.
fn classify(path: &str, message: String) -> StoreError {
    if message.contains("readonly") || message.contains("read-only") {
        StoreError::ReadOnly {
            path: path.to_owned(),
            message,
        }
    } else if message.contains("not a database") {
        StoreError::Open {
            path: path.to_owned(),
            message: "the file exists but is not a cellwright (SQLite) database".into(),
        }
    } else if message.contains("unable to open") {
        StoreError::Open {
            path: path.to_owned(),
            message,
        }
    } else if message.contains("FOREIGN KEY") {
        StoreError::Corrupt {
            what: "events".into(),
            message: "an event names a run that was never started".into(),
        }
    } else if message.contains("migrat") {
        StoreError::Migration(format!("{path}: {message}"))
    } else {
        StoreError::Database(message)
    }
}

fn open_error(path: &str, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// The writing connection and what it remembers between commits.
struct Writer {
    /// `None` once the store is closed.
    conn: Option<SqliteConnection>,
    path: String,
    /// Next sequence number of each run seen, so a batch needs no `MAX(seq)` lookups.
    next_seq: HashMap<String, i64>,
    /// A deferred write that failed: every later write reports it, so no gap goes unnoticed.
    failed: Option<String>,
    stats: WriteStats,
}

/// How the writer has batched events so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Commits (statements or transactions) that wrote events.
    pub commits: u64,
    /// Events those commits wrote.
    pub events: u64,
}

impl Writer {
    fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.conn.as_mut().ok_or_else(closed)
    }

    fn health(&self) -> Result<(), StoreError> {
        match &self.failed {
            Some(message) => Err(StoreError::Database(format!(
                "an earlier write failed: {message}"
            ))),
            None => Ok(()),
        }
    }

    async fn commit(&mut self, mut events: Vec<PendingEvent>) {
        if events.is_empty() {
            return;
        }
        let result = match self.health() {
            Ok(()) => self.write(&events).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(seqs) => {
                self.stats.commits += 1;
                self.stats.events += events.len() as u64;
                for (e, seq) in events.iter_mut().zip(seqs) {
                    if let Some(ack) = e.ack.take() {
                        let _ = ack.send(Ok(seq));
                    }
                }
            }
            Err(error) => {
                // Sequence numbers may be stale now; read them again next time.
                self.next_seq.clear();
                let mut deferred_lost = false;
                for e in &mut events {
                    match e.ack.take() {
                        Some(ack) => {
                            let _ = ack.send(Err(copy_error(&error)));
                        }
                        None => deferred_lost = true,
                    }
                }
                if deferred_lost {
                    tracing::error!(path = %self.path, "a deferred trace write failed: {error}");
                    self.failed = Some(error.to_string());
                }
            }
        }
    }

    async fn seq_base(&mut self, run: &str) -> Result<i64, StoreError> {
        if let Some(next) = self.next_seq.get(run) {
            return Ok(*next);
        }
        let path = self.path.clone();
        let max: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?")
                .bind(run)
                .fetch_one(self.conn()?)
                .await
                .map_err(|e| classify(&path, e.to_string()))?;
        self.next_seq.insert(run.to_owned(), max + 1);
        Ok(max + 1)
    }

    /// Writes a batch; returns each event's sequence number.
    async fn write(&mut self, events: &[PendingEvent]) -> Result<Vec<u64>, StoreError> {
        let mut seqs = Vec::with_capacity(events.len());
        for e in events {
            let next = self.seq_base(e.run.as_str()).await?;
            seqs.push(next);
            self.next_seq.insert(e.run.to_string(), next + 1);
        }
        let path = self.path.clone();
        let err = |e: sqlx::Error| classify(&path, e.to_string());
        let conn = self.conn()?;
        if events.iter().all(|e| matches!(e.meta, RunMeta::None)) {
            // The common case: one multi-row INSERT, atomic and committed on its own.
            insert_events(conn, events, &seqs).await.map_err(err)?;
        } else {
            let mut tx = conn.begin().await.map_err(err)?;
            for e in events {
                match &e.meta {
                    RunMeta::None => {}
                    RunMeta::Started { question, model } => {
                        sqlx::query("INSERT INTO runs (run_id, question, model, status, started_ms) VALUES (?, ?, ?, 'running', ?)")
                            .bind(e.run.as_str())
                            .bind(question)
                            .bind(model)
                            .bind(e.at_ms)
                            .execute(&mut *tx)
                            .await
                            .map_err(err)?;
                    }
                    RunMeta::Status { status, finished } => {
                        let done = sqlx::query(
                            "UPDATE runs SET status = ?, finished_ms = ? WHERE run_id = ?",
                        )
                        .bind(status.as_str())
                        .bind(finished.then_some(e.at_ms))
                        .bind(e.run.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::RunNotFound(e.run.to_string()));
                        }
                    }
                }
            }
            insert_events(&mut tx, events, &seqs).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
        }
        Ok(seqs.into_iter().map(|s| s as u64).collect())
    }
}

/// `StoreError` is not `Clone` (it may grow source errors); batch members get equal copies.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::ReadOnly { path, message } => StoreError::ReadOnly {
            path: path.clone(),
            message: message.clone(),
        },
        StoreError::RunNotFound(run) => StoreError::RunNotFound(run.clone()),
        StoreError::Corrupt { what, message } => StoreError::Corrupt {
            what: what.clone(),
            message: message.clone(),
        },
        other => StoreError::Database(other.to_string()),
    }
}

/// One multi-row `INSERT` for a batch of events.
async fn insert_events(
    conn: &mut SqliteConnection,
    events: &[PendingEvent],
    seqs: &[i64],
) -> Result<(), sqlx::Error> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "INSERT INTO events (run_id, seq, at_ms, kind, step, call, payload) ",
    );
    query.push_values(events.iter().zip(seqs), |mut row, (e, seq)| {
        row.push_bind(e.run.as_str())
            .push_bind(*seq)
            .push_bind(e.at_ms)
            .push_bind(e.kind)
            .push_bind(e.step)
            .push_bind(e.call)
            .push_bind(e.payload.as_str());
    });
    query.build().execute(conn).await?;
    Ok(())
}

/// The step and call columns of an event, for indexes and views.
fn event_keys(event: &TraceEvent) -> (Option<i64>, Option<i64>) {
    match event {
        TraceEvent::ModelRequest { step, .. }
        | TraceEvent::ModelResponse { step, .. }
        | TraceEvent::ModelFailed { step, .. } => (Some(i64::from(*step)), None),
        TraceEvent::ToolCallStarted { step, call, .. }
        | TraceEvent::ToolCallFinished { step, call, .. } => {
            (Some(i64::from(*step)), Some(i64::from(call.0)))
        }
        TraceEvent::Artifact { call, .. } => (None, call.map(|c| i64::from(c.0))),
        _ => (None, None),
    }
}

impl TraceSink for SqliteStore {
    fn record<'a>(
        &'a self,
        run: &'a RunId,
        event: &'a TraceEvent,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let (ack, mut done) = oneshot::channel();
            self.enqueue(self.pending(run, event, Some(ack))?);
            // Whoever holds the writer commits the whole queue. While waiting for it, another
            // holder may commit this event: then return at once instead of queueing for the
            // writer only to find nothing left (that would make every waiter a leader of one).
            tokio::select! {
                biased;
                committed = &mut done => return committed.map_err(|_| closed())?,
                mut writer = self.shared.writer.lock() => match done.try_recv() {
                    Ok(committed) => return committed,
                    Err(oneshot::error::TryRecvError::Closed) => return Err(closed()),
                    Err(oneshot::error::TryRecvError::Empty) => {
                        self.commit_queued(&mut writer).await;
                    }
                },
            }
            done.await.map_err(|_| closed())?
        })
    }

    fn record_deferred<'a>(
        &'a self,
        run: &'a RunId,
        event: &'a TraceEvent,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let queued = self.enqueue(self.pending(run, event, None)?);
            if queued >= MAX_QUEUE {
                self.flush().await?;
            }
            Ok(())
        })
    }
}

impl TraceStore for SqliteStore {
    fn events<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, Result<Vec<StoredEvent>, StoreError>> {
        Box::pin(async move {
            self.flush().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM runs WHERE run_id = ?")
                .bind(run.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(|e| self.db_error(e))?;
            if exists.is_none() {
                return Err(StoreError::RunNotFound(run.to_string()));
            }
            let rows =
                sqlx::query("SELECT seq, at_ms, payload FROM events WHERE run_id = ? ORDER BY seq")
                    .bind(run.as_str())
                    .fetch_all(&self.reader)
                    .await
                    .map_err(|e| self.db_error(e))?;
            rows.into_iter()
                .map(|row| {
                    let seq: i64 = row.get(0);
                    let payload: String = row.get(2);
                    let event =
                        serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
                            what: format!("event {seq} of run {run}"),
                            message: e.to_string(),
                        })?;
                    Ok(StoredEvent {
                        seq: seq as u64,
                        at_ms: row.get(1),
                        event,
                    })
                })
                .collect()
        })
    }

    fn runs(&self, limit: u32) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>> {
        Box::pin(async move {
            self.flush().await?;
            let rows = sqlx::query(
                "SELECT r.run_id, r.question, r.model, r.status, r.started_ms, r.finished_ms, \
                   (SELECT COUNT(*) FROM events e WHERE e.run_id = r.run_id AND e.kind = 'model_response'), \
                   (SELECT COUNT(*) FROM events e WHERE e.run_id = r.run_id AND e.kind = 'tool_call_started') \
                 FROM runs r ORDER BY r.started_ms DESC, r.rowid DESC LIMIT ?",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.db_error(e))?;
            rows.into_iter()
                .map(|row| {
                    let status: String = row.get(3);
                    let run_id: String = row.get(0);
                    Ok(RunSummary {
                        status: RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                            what: format!("status of run {run_id}"),
                            message: format!("unknown status `{status}`"),
                        })?,
                        run_id: RunId(run_id),
                        question: row.get(1),
                        model: row.get(2),
                        started_ms: row.get(4),
                        finished_ms: row.get(5),
                        steps: row.get::<i64, _>(6) as u32,
                        tool_calls: row.get::<i64, _>(7) as u32,
                    })
                })
                .collect()
        })
    }
}

impl ArtifactStore for SqliteStore {
    fn put<'a>(
        &'a self,
        run: &'a RunId,
        call: Option<CallId>,
        media_type: &'a str,
        summary: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<ArtifactRef, StoreError>> {
        Box::pin(async move {
            let mut writer = self.shared.writer.lock().await;
            let path = writer.path.clone();
            let err = |e: sqlx::Error| classify(&path, e.to_string());
            let mut tx = writer.conn()?.begin().await.map_err(err)?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM artifacts WHERE run_id = ?")
                .bind(run.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            let id = ArtifactId(format!("{run}/a{}", n + 1));
            let bytes = data.len() as u64;
            sqlx::query(
                "INSERT INTO artifacts (artifact_id, run_id, call, media_type, bytes, summary, created_ms, data) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id.0)
            .bind(run.as_str())
            .bind(call.map(|c| i64::from(c.0)))
            .bind(media_type)
            .bind(bytes as i64)
            .bind(summary)
            .bind(self.clock.now_ms())
            .bind(data)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(ArtifactRef {
                id,
                media_type: media_type.to_owned(),
                bytes,
                summary: summary.to_owned(),
            })
        })
    }

    fn get<'a>(&'a self, id: &'a ArtifactId) -> BoxFuture<'a, Result<Vec<u8>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT data FROM artifacts WHERE artifact_id = ?")
                .bind(&id.0)
                .fetch_optional(&self.reader)
                .await
                .map_err(|e| self.db_error(e))?
                .ok_or_else(|| StoreError::ArtifactNotFound(id.0.clone()))
        })
    }
}
