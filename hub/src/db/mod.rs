//! The hub's storage layer: one [`Db`] handle over either an embedded SQLite file or a
//! PostgreSQL database, holding Automerge documents (opaque bytes), sync states, peer
//! status, devices, users, login sessions and the SQL projections used by reports.
//!
//! # Backend choice: an enum of concrete pools, not `sqlx::Any`
//! `Any` cannot carry SQLite options (WAL, `synchronous=FULL`, busy timeout must be patched in
//! with an `after_connect` hook), cannot bind arrays (PostgreSQL `= ANY($1)` and `UNNEST`
//! batches), and hides per-backend differences we need anyway (advisory locks exist only in
//! PostgreSQL). So [`Db`] holds either SQLite pools or a `PgPool`, and every method matches
//! on it. The SQL is shared where both dialects accept it (`$1` placeholders, `ON CONFLICT`,
//! `RETURNING`); the `on_tx!` / `on_reader!` macros compile one body for each backend.
//!
//! # Concurrency model
//! The hub is stateless between requests: everything lives in the database, and two hub
//! processes may serve the same tills.
//! - **PostgreSQL:** each [`DbTx`] is a READ COMMITTED transaction. [`DbTx::lock_doc`] takes
//!   `pg_advisory_xact_lock(1, hashtext(doc_id))`, held until commit or rollback, so two hubs
//!   writing one document serialise. Lock several documents in sorted order to avoid
//!   deadlocks.
//! - **SQLite:** one writer connection per process (a pool of size 1) and every [`DbTx`]
//!   starts with `BEGIN IMMEDIATE`, so a write transaction owns the whole database from its
//!   first statement: no deferred lock upgrades, hence no `SQLITE_BUSY` inside a transaction.
//!   Other processes on the same file (e.g. `hub admin` next to `hub serve`) wait in the
//!   busy handler (30 s). Reads go through a separate pool of reader connections (WAL lets
//!   them run beside the writer). [`DbTx::lock_doc`] is therefore only bookkeeping.
//!
//! # Reads on [`Db`], writes on [`DbTx`]
//! Every method of [`Db`] reads (through the reader pool on SQLite); every write is a method
//! of [`DbTx`], so a write happens only inside a transaction the caller began and commits.
//! A [`DbTx`] also reads what it must see under its own locks and writes (`load_doc`,
//! `sync_state`, `user`).
//! On SQLite that transaction holds the single writer connection; because no [`Db`] method
//! writes, none can wait for that connection while a transaction holds it (the deadlock a
//! writing `Db` method allowed). The one remaining way is a second [`Db::begin`] in a task
//! that already holds a [`DbTx`], which reads as what it is: a nested transaction.
//!
//! # Map
//! Methods are grouped by area, one file each, every file with a reading `impl Db` and a
//! writing `impl DbTx`:
//! - `ids` — id validation; `error` — [`DbError`]; `migrations` — per-backend schema.
//! - `docs` — Automerge document storage and compaction, the hub's clock per document.
//! - `peers` — sync states per (document, peer), peer document status, last sync per peer.
//! - `auth` — devices (tills), users, login sessions; `login_limit` — failed-login throttling.
//! - `projections` — receipts, payments, cash sessions, store summaries.

/// Runs `$body` once per backend with `$c` bound to the transaction's connection
/// (`&mut SqliteConnection` or `&mut PgConnection`). Use `&mut *$c` for each statement.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.conn {
            $crate::db::TxConn::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut **t;
                $body
            }
            $crate::db::TxConn::Postgres(t) => {
                let $c: &mut sqlx::PgConnection = &mut **t;
                $body
            }
        }
    };
}

/// Runs `$body` once per backend with `$p` bound to the read pool (`&SqlitePool` / `&PgPool`).
macro_rules! on_reader {
    ($db:expr, $p:ident => $body:expr) => {
        match &$db.backend {
            $crate::db::Backend::Sqlite { reader, .. } => {
                let $p: &sqlx::SqlitePool = reader;
                $body
            }
            $crate::db::Backend::Postgres(pool) => {
                let $p: &sqlx::PgPool = pool;
                $body
            }
        }
    };
}

mod auth;
mod docs;
mod error;
pub mod ids;
mod login_limit;
mod migrations;
mod peers;
pub mod projection_checks;
mod projections;

pub use auth::{hash_secret, Device, DeviceInfo, User};
pub use docs::{DocMeta, DocRow, StoredDoc, MAX_CHUNK_BYTES};
pub use error::DbError;
pub use login_limit::LoginLimit;
pub use migrations::SCHEMA_VERSION;
pub use peers::{PeerDocReport, PeerDocStatus, PeerSync, MAX_CLOCK_JSON_BYTES, MAX_REPORTED_HEADS};
pub use projections::{PaymentRow, ReceiptKind, ReceiptRow, SessionRow, StoreSummary, TillSummary};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// File name of the embedded database inside `--data DIR`.
pub const SQLITE_FILE_NAME: &str = "hub.sqlite3";
/// How long a SQLite connection waits for another process's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Reader connections for the embedded database (the machine has 2 cores).
const SQLITE_READERS: u32 = 4;
/// Connections per hub process to PostgreSQL.
const PG_MAX_CONNECTIONS: u32 = 10;
/// Waiting longer than this for a pooled connection means the hub is overloaded: fail.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the hub keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum DbConfig {
    /// Embedded SQLite file `DIR/hub.sqlite3` (created with the directory if missing).
    Sqlite {
        /// The data directory.
        dir: PathBuf,
    },
    /// A PostgreSQL database, `postgres://user:password@host:port/db`.
    Postgres {
        /// Connection URL. Contains a password: never log it, use the `Debug` impl.
        url: String,
    },
}

impl fmt::Debug for DbConfig {
    /// Redacts the password of a PostgreSQL URL so the config can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbConfig::Sqlite { dir } => f.debug_struct("Sqlite").field("dir", dir).finish(),
            DbConfig::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .finish(),
        }
    }
}

/// Replaces the password in `scheme://user:password@host/...` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite {
        /// Exactly one connection: the process-wide single writer.
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// A handle on the hub database. Cheap to clone (pools are reference-counted); share one
/// per process.
#[derive(Clone)]
pub struct Db {
    pub(crate) backend: Backend,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Pool options contain the connection password: print only the backend.
        f.debug_struct("Db")
            .field("backend", &self.backend_kind())
            .finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database and applies pending migrations. Safe to call
    /// from several processes at once.
    pub async fn connect(config: &DbConfig) -> Result<Db, DbError> {
        let backend = match config {
            DbConfig::Sqlite { dir } => connect_sqlite(dir).await?,
            DbConfig::Postgres { url } => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(PG_MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                migrations::migrate_postgres(&pool).await?;
                Backend::Postgres(pool)
            }
        };
        Ok(Db { backend })
    }

    /// Which backend this handle uses.
    pub fn backend_kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite { .. } => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Starts a write transaction. Drop it (or call [`DbTx::rollback`]) to roll back; call
    /// [`DbTx::commit`] to keep its writes.
    pub async fn begin(&self) -> Result<DbTx, DbError> {
        let conn = match &self.backend {
            Backend::Sqlite { writer, .. } => {
                TxConn::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            Backend::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        };
        Ok(DbTx {
            conn,
            loaded_chunks: HashMap::new(),
            locked: BTreeSet::new(),
        })
    }

    /// The schema version recorded in the database (see [`SCHEMA_VERSION`]).
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        let version = on_reader!(self, p => {
            sqlx::query_scalar(migrations::CURRENT_VERSION).fetch_one(p).await?
        });
        Ok(version)
    }

    /// Cheap liveness probe for health checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        on_reader!(self, p => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    /// Closes every pooled connection and waits for them to finish.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

async fn connect_sqlite(dir: &Path) -> Result<Backend, DbError> {
    std::fs::create_dir_all(dir).map_err(|source| DbError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let file = dir.join(SQLITE_FILE_NAME);
    // Durability options are written out, not left to defaults: a WAL commit with
    // synchronous=NORMAL can roll back after a power loss.
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    let writer = connect_sqlite_writer(options.clone()).await?;
    migrations::migrate_sqlite(&writer).await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(SQLITE_READERS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.create_if_missing(false))
        .await?;
    Ok(Backend::Sqlite { writer, reader })
}

/// Opens the single-writer pool. Switching a new file to WAL needs an exclusive lock that
/// the busy handler does not wait for, so when two processes create the file at the same
/// moment one of them sees SQLITE_BUSY: retry briefly.
async fn connect_sqlite_writer(options: SqliteConnectOptions) -> Result<SqlitePool, DbError> {
    const ATTEMPTS: u32 = 50;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await;
        match result {
            Ok(pool) => return Ok(pool),
            Err(e) if attempt < ATTEMPTS && is_sqlite_busy(&e) => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10)))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// SQLITE_BUSY and its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT) and
/// SQLITE_LOCKED.
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

pub(crate) enum TxConn {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A write transaction on the hub database. Every write goes through one, so a document's
/// new changes, its sync state and the projections derived from them commit together.
pub struct DbTx {
    pub(crate) conn: TxConn,
    /// Chunk ids of each document this transaction loaded under its lock, plus the ids it
    /// appended since: the only ids `compact` may delete.
    pub(crate) loaded_chunks: HashMap<String, BTreeSet<i64>>,
    /// Documents locked by this transaction.
    pub(crate) locked: BTreeSet<String>,
}

impl fmt::Debug for DbTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.conn {
            TxConn::Sqlite(_) => BackendKind::Sqlite,
            TxConn::Postgres(_) => BackendKind::Postgres,
        };
        f.debug_struct("DbTx")
            .field("backend", &backend)
            .field("locked", &self.locked)
            .finish()
    }
}

impl DbTx {
    /// Commits every write of this transaction durably.
    pub async fn commit(self) -> Result<(), DbError> {
        match self.conn {
            TxConn::Sqlite(t) => t.commit().await?,
            TxConn::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Rolls back explicitly (dropping the transaction does the same, asynchronously).
    pub async fn rollback(self) -> Result<(), DbError> {
        match self.conn {
            TxConn::Sqlite(t) => t.rollback().await?,
            TxConn::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://hub:s3cret@db:5432/hub?sslmode=require"),
            "postgres://hub:***@db:5432/hub?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        let config = DbConfig::Postgres {
            url: "postgres://u:pw@h/d".into(),
        };
        assert!(!format!("{config:?}").contains("pw"));
    }

    #[tokio::test]
    async fn sqlite_is_durable_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::connect(&DbConfig::Sqlite {
            dir: dir.path().to_path_buf(),
        })
        .await
        .expect("connect");
        let Backend::Sqlite { writer, reader } = &db.backend else {
            panic!("expected the sqlite backend");
        };
        for pool in [writer, reader] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .expect("journal_mode");
            assert_eq!(mode, "wal");
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .expect("synchronous");
            assert_eq!(sync, 2, "synchronous must be FULL");
        }
        assert!(dir.path().join(SQLITE_FILE_NAME).exists());
        db.close().await;
    }
}
