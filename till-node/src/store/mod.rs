//! The till's durable storage: one SQLite file (`<data dir>/till.db`) opened only by this
//! process, holding the Automerge documents, sync states, idempotency records, the HLC
//! high-water mark, meta values and the fiscal outbox.
//!
//! The API is synchronous; call it from a dedicated thread or `spawn_blocking`.
//!
//! Promises:
//! - **Durability.** Every write is one `BEGIN IMMEDIATE` transaction on a connection with
//!   `journal_mode=WAL` and `synchronous=FULL` (set and verified at open), so when a write
//!   returns `Ok` it has been fsync'd. A sale is acknowledged only after [`Store::commit`]
//!   returns `Ok`.
//! - **Atomicity.** A [`WriteBatch`] is applied whole or not at all.
//! - **Stop after a storage failure.** After any I/O-class error during a write (I/O error,
//!   disk full, read-only file system, corruption) the store is poisoned: every later write
//!   returns [`StoreError::PreviousIo`] without touching the file, while reads keep working so
//!   support can look. This is redb's rule: after a failed fsync nobody knows what is on disk,
//!   and retrying can make it worse (PostgreSQL's "fsyncgate").
//! - **One owner.** A lock file (`till.lock`) keeps a second process (or a second `Store`) from
//!   opening the same directory, which could otherwise fiscalise a receipt twice.
//!
//! Modules: [`batch`] (the atomic write), [`docs`] (documents and compaction), [`outbox`]
//! (fiscal outbox), [`fiscal_log`] (the pipeline's log ring), [`saga`] (refund sagas), `schema`
//! (pragmas and migrations), `limits`, `error`.

pub mod batch;
pub mod docs;
mod error;
pub mod fiscal_log;
mod limits;
pub mod outbox;
pub mod saga;
mod schema;

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

pub use batch::{IdempotencyRecord, WriteBatch, WriteOp};
pub use docs::{ChunkId, StoredDoc};
pub use error::StoreError;
pub use fiscal_log::{LogLevel, LogRecord, MAX_FISCAL_LOG_ROWS};
pub use limits::{MAX_BATCH_BYTES, MAX_BATCH_OPS, MAX_BLOB_BYTES, MAX_KEY_BYTES};
pub use outbox::{OutboxEntry, OutboxKind, OutboxRow, OutboxStage, OutboxStats, OutboxUpdate};
pub use saga::{RefundSaga, SagaState};
pub use schema::{DurabilityReport, APPLICATION_ID, BUSY_TIMEOUT};

/// File name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "till.db";
/// File name of the lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = "till.lock";

/// The open store. See the module documentation for its promises.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    schema_version: i64,
    /// Message of the storage failure that stopped writes, if any.
    poisoned: Option<String>,
    /// Held (locked) for as long as the store is open; the lock goes with the descriptor.
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) `dir/till.db`: takes the directory lock, sets and verifies
    /// WAL + `synchronous=FULL` + `foreign_keys`, and applies schema migrations.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let lock = lock_dir(dir)?;
        let path = dir.join(DB_FILE_NAME);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(&path, flags).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        schema::configure(&conn)?;
        let schema_version = schema::migrate(&mut conn, &path, now_ms())?;
        // Enough for every statement the store prepares, so none is re-parsed per sale.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store {
            conn,
            path,
            schema_version,
            poisoned: None,
            _lock: lock,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version in force.
    pub fn schema_version(&self) -> i64 {
        self.schema_version
    }

    /// The storage failure that stopped writes, if one happened (for `/v1/health`).
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// The durability settings as SQLite reports them now.
    pub fn durability(&self) -> Result<DurabilityReport, StoreError> {
        schema::durability_report(&self.conn)
    }

    /// Commits every write of `batch` in one fsync'd transaction, or none of them.
    /// An empty batch is a no-op.
    pub fn commit(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        self.check_not_poisoned()?;
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        self.write("commit batch", |tx| batch.apply(tx))
    }

    /// The idempotency record stored under `key`.
    pub fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let op = "read idempotency record";
        let row = self
            .conn
            .prepare_cached(
                "SELECT request_sha256, response_status, response_body, created_at_ms
                 FROM idempotency WHERE key = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![key], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| StoreError::from_sqlite(op, e))?;
        let Some((sha, status, body, created_at_ms)) = row else {
            return Ok(None);
        };
        let request_sha256: [u8; 32] = sha.try_into().map_err(|sha: Vec<u8>| {
            StoreError::Corrupt(format!(
                "idempotency record {key:?} has a {}-byte request hash",
                sha.len()
            ))
        })?;
        let response_status = u16::try_from(status).map_err(|_| {
            StoreError::Corrupt(format!("idempotency record {key:?} has status {status}"))
        })?;
        Ok(Some(IdempotencyRecord {
            key: key.to_owned(),
            request_sha256,
            response_status,
            response_body: body,
            created_at_ms,
        }))
    }

    /// The persisted sync state of (`doc_id`, `peer`).
    pub fn sync_state(&self, doc_id: &str, peer: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT state FROM sync_state WHERE doc_id = ?1 AND peer_id = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![doc_id, peer], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| StoreError::from_sqlite("read sync state", e))
    }

    /// The persisted HLC high-water mark (restore the clock from it at start).
    pub fn hlc_high_water(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT hlc FROM hlc_high_water WHERE id = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
            .map_err(|e| StoreError::from_sqlite("read hlc high-water mark", e))
    }

    /// A meta value.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut stmt| stmt.query_row(params![key], |row| row.get(0)).optional())
            .map_err(|e| StoreError::from_sqlite("read meta", e))
    }

    /// Every meta entry whose key starts with `prefix`, in key order.
    pub fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        // Keys are compared as text: `prefix` ≤ key < `prefix` + U+10FFFF.
        let upper = format!("{prefix}\u{10FFFF}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM meta WHERE key >= ?1 AND key < ?2 ORDER BY key")
            .map_err(|e| StoreError::from_sqlite("read meta", e))?;
        let rows = stmt
            .query_map(params![prefix, upper], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| StoreError::from_sqlite("read meta", e))?;
        Ok(rows)
    }

    /// A meta value that must be UTF-8 text.
    pub fn meta_string(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.meta(key)?
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    StoreError::Corrupt(format!("meta value {key:?} is not UTF-8 text"))
                })
            })
            .transpose()
    }

    /// Deletes idempotency records created before `older_than_ms` (Unix ms). Returns how many.
    pub fn purge_idempotency(&mut self, older_than_ms: i64) -> Result<usize, StoreError> {
        let op = "purge idempotency records";
        self.write(op, |tx| {
            tx.execute(
                "DELETE FROM idempotency WHERE created_at_ms < ?1",
                params![older_than_ms],
            )
            .map_err(|e| StoreError::from_sqlite(op, e))
        })
    }

    /// Runs `PRAGMA integrity_check` and returns its report: `"ok"` when the file is sound,
    /// otherwise SQLite's list of problems, one per line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let op = "integrity check";
        let mut lines = Vec::new();
        self.conn
            .pragma_query(None, "integrity_check", |row| {
                lines.push(row.get::<_, String>(0)?);
                Ok(())
            })
            .map_err(|e| StoreError::from_sqlite(op, e))?;
        Ok(lines.join("\n"))
    }

    fn check_not_poisoned(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            Some(first_error) => Err(StoreError::PreviousIo {
                first_error: first_error.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction and commits it; rolls back on error.
    /// A storage failure anywhere on the way (begin, body, commit, rollback) poisons the store.
    fn write<T>(
        &mut self,
        operation: &'static str,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.check_not_poisoned()?;
        let result = run_in_transaction(&mut self.conn, operation, body);
        if let Err(error) = &result {
            if error.is_storage_failure() {
                tracing::error!(%error, "storage failure: the store stops writing");
                self.poisoned = Some(error.to_string());
            }
        }
        result
    }
}

fn run_in_transaction<T>(
    conn: &mut Connection,
    operation: &'static str,
    body: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StoreError::from_sqlite(operation, e))?;
    match body(&tx) {
        Ok(value) => {
            tx.commit()
                .map_err(|e| StoreError::from_sqlite(operation, e))?;
            Ok(value)
        }
        Err(error) => {
            // `finish` skips the ROLLBACK when SQLite already rolled back by itself (it does
            // on some I/O errors), and reports a failed ROLLBACK instead of hiding it.
            if let Err(rollback) = tx.finish() {
                let rollback = StoreError::from_sqlite(operation, rollback);
                if rollback.is_storage_failure() {
                    return Err(rollback);
                }
            }
            Err(error)
        }
    }
}

fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::Lock {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::AlreadyOpen { path }),
        Err(TryLockError::Error(source)) => Err(StoreError::Lock { path, source }),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
