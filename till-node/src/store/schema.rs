//! Connection settings and the versioned schema of the till's SQLite file.
//!
//! Durability is set explicitly at every open (`PRAGMA journal_mode=WAL; PRAGMA
//! synchronous=FULL`) and read back: if SQLite reports anything else (a file system without
//! shared memory, an in-memory database) the store refuses to start, because with
//! `synchronous=NORMAL` a WAL commit can roll back after a power loss and a sale acknowledged to
//! the cashier would be lost.
//!
//! Migrations are numbered SQL scripts applied in order inside one `BEGIN IMMEDIATE`
//! transaction and recorded in `schema_migrations`. A file whose highest migration is newer
//! than this build is refused ([`StoreError::SchemaTooNew`]) rather than written by code that
//! does not know its tables.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// `PRAGMA application_id` stamped into every till database ("OPTL"), so that pointing
/// `--data` at some other program's SQLite file fails clearly instead of adding our tables.
pub const APPLICATION_ID: i64 = 0x4f50_544c;

/// How long a statement waits for a lock held by another connection (an operator's `sqlite3`
/// shell, a backup) before giving up with [`StoreError::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The durability settings in force on the store's connection, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilityReport {
    /// `PRAGMA journal_mode`; always `"wal"` on an open store.
    pub journal_mode: String,
    /// `PRAGMA synchronous`; always 2 (`FULL`) on an open store.
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`; always true on an open store.
    pub foreign_keys: bool,
}

/// One schema step. Never edit a released migration; add a new one.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// All migrations, in order. Tables are STRICT so a wrong type is an error, not a silent cast.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "documents, sync state, idempotency, hlc, meta, fiscal outbox",
        sql: "
        CREATE TABLE doc_snapshot(
            doc_id TEXT PRIMARY KEY,
            heads BLOB NOT NULL,
            data BLOB NOT NULL,
            covers_chunk_id INTEGER
        ) STRICT;
        CREATE TABLE doc_chunk(
            chunk_id INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id TEXT NOT NULL,
            data BLOB NOT NULL
        ) STRICT;
        CREATE INDEX doc_chunk_by_doc ON doc_chunk(doc_id, chunk_id);
        CREATE TABLE sync_state(
            doc_id TEXT NOT NULL,
            peer_id TEXT NOT NULL,
            state BLOB NOT NULL,
            PRIMARY KEY(doc_id, peer_id)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE idempotency(
            key TEXT PRIMARY KEY,
            request_sha256 BLOB NOT NULL CHECK(length(request_sha256) = 32),
            response_status INTEGER NOT NULL CHECK(response_status BETWEEN 100 AND 599),
            response_body BLOB NOT NULL,
            created_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX idempotency_by_age ON idempotency(created_at_ms);
        CREATE TABLE hlc_high_water(
            id INTEGER PRIMARY KEY CHECK(id = 1),
            hlc TEXT NOT NULL
        ) STRICT;
        CREATE TABLE meta(
            key TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) STRICT;
        CREATE TABLE fiscal_outbox(
            receipt_id TEXT PRIMARY KEY,
            hlc TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            payload BLOB NOT NULL,
            stage TEXT NOT NULL CHECK(stage IN
                ('queued', 'register_intent', 'fiscalised', 'acknowledged', 'dead_letter')),
            attempts INTEGER NOT NULL CHECK(attempts >= 0),
            last_error TEXT,
            next_attempt_at_ms INTEGER,
            fiscal_result BLOB,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX fiscal_outbox_by_stage ON fiscal_outbox(stage, hlc, receipt_id);
    ",
    },
    // SQLite accepts CHECK in ADD COLUMN and tests it against the existing rows (3.37+; the
    // bundled library is newer), so the job kind is enforced by the database, not only in Rust.
    Migration {
        version: 2,
        name: "outbox job kind and FD number, fiscal log, refund sagas",
        sql: "
        ALTER TABLE fiscal_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'receipt'
            CHECK(kind IN ('receipt', 'close_shift', 'cash_in', 'cash_out'));
        ALTER TABLE fiscal_outbox ADD COLUMN fd_number INTEGER;
        CREATE INDEX fiscal_outbox_by_fd ON fiscal_outbox(fd_number);
        CREATE TABLE fiscal_log(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_ms INTEGER NOT NULL,
            level TEXT NOT NULL CHECK(level IN ('INFO', 'WARN', 'ERROR')),
            stage TEXT NOT NULL,
            job_id TEXT,
            message TEXT NOT NULL
        ) STRICT;
        CREATE TABLE refund_saga(
            idem_key TEXT PRIMARY KEY,
            request_sha256 BLOB NOT NULL CHECK(length(request_sha256) = 32),
            original_receipt_id TEXT NOT NULL,
            request BLOB NOT NULL,
            state TEXT NOT NULL CHECK(state IN ('pending', 'done', 'failed')),
            attempts INTEGER NOT NULL CHECK(attempts >= 0),
            last_error TEXT,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX refund_saga_by_state ON refund_saga(state, created_at_ms, idem_key);
    ",
    },
];

/// The highest migration this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Sets and verifies durability, timeouts and foreign keys on a fresh connection.
pub fn configure(conn: &Connection) -> Result<(), StoreError> {
    let op = "configure connection";
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    // `journal_mode` answers with the mode now in force; WAL is persistent in the file.
    let journal_mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Durability {
            pragma: "journal_mode",
            expected: "wal",
            actual: journal_mode,
        });
    }
    let report = durability_report(conn)?;
    if !report.journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Durability {
            pragma: "journal_mode",
            expected: "wal",
            actual: report.journal_mode,
        });
    }
    if report.synchronous != 2 {
        return Err(StoreError::Durability {
            pragma: "synchronous",
            expected: "2 (FULL)",
            actual: report.synchronous.to_string(),
        });
    }
    if !report.foreign_keys {
        return Err(StoreError::Durability {
            pragma: "foreign_keys",
            expected: "1",
            actual: "0".to_owned(),
        });
    }
    Ok(())
}

/// Reads back the settings [`configure`] made.
pub fn durability_report(conn: &Connection) -> Result<DurabilityReport, StoreError> {
    let op = "read durability settings";
    let journal_mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    let synchronous: i64 = conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    let foreign_keys: i64 = conn
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    Ok(DurabilityReport {
        journal_mode,
        synchronous,
        foreign_keys: foreign_keys == 1,
    })
}

/// Stamps or checks the application id, then applies any missing migrations in one transaction.
/// Returns the schema version now in force.
pub fn migrate(conn: &mut Connection, path: &Path, now_ms: i64) -> Result<i64, StoreError> {
    migrate_to(conn, path, now_ms, latest_version())
}

/// [`migrate`], stopping after migration `target` (tests build an old file with it). Returns the
/// schema version now in force.
pub fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    now_ms: i64,
    target: i64,
) -> Result<i64, StoreError> {
    let op = "migrate schema";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    let application_id: i64 = tx
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    match application_id {
        APPLICATION_ID => {}
        0 => tx
            .pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| StoreError::from_sqlite(op, e))?,
        found => {
            return Err(StoreError::ForeignDatabase {
                path: path.to_owned(),
                found,
            })
        }
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations(
             version INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at_ms INTEGER NOT NULL
         ) STRICT;",
    )
    .map_err(|e| StoreError::from_sqlite(op, e))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(|e| StoreError::from_sqlite(op, e))?;
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest_version(),
        });
    }
    let pending = MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target);
    for migration in pending {
        let as_migration_error = |source| {
            // Storage failures keep their own variant so the caller sees a disk problem.
            match StoreError::from_sqlite(op, source) {
                StoreError::Sqlite { source, .. } => StoreError::Migration {
                    version: migration.version,
                    name: migration.name,
                    source,
                },
                other => other,
            }
        };
        tx.execute_batch(migration.sql)
            .map_err(as_migration_error)?;
        tx.execute(
            "INSERT INTO schema_migrations(version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![migration.version, migration.name, now_ms],
        )
        .map_err(as_migration_error)?;
    }
    tx.commit().map_err(|e| StoreError::from_sqlite(op, e))?;
    Ok(current.max(target.min(latest_version())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_database_is_refused_because_it_cannot_be_wal() {
        let conn = Connection::open_in_memory().expect("in-memory db");
        let err = configure(&conn).expect_err("memory journal must be refused");
        assert!(
            matches!(err, StoreError::Durability { pragma: "journal_mode", ref actual, .. } if actual == "memory"),
            "{err}"
        );
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn foreign_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("other.db");
        let mut conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "application_id", 42)
            .expect("stamp");
        let err = migrate(&mut conn, &path, 0).expect_err("foreign file");
        assert!(matches!(err, StoreError::ForeignDatabase { found: 42, .. }));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("till.db");
        let mut conn = Connection::open(&path).expect("open");
        assert_eq!(
            migrate(&mut conn, &path, 0).expect("migrate"),
            latest_version()
        );
        // Migrating twice is a no-op.
        assert_eq!(
            migrate(&mut conn, &path, 0).expect("again"),
            latest_version()
        );
        conn.execute(
            "INSERT INTO schema_migrations(version, name, applied_at_ms) VALUES (?1, 'future', 0)",
            [latest_version() + 1],
        )
        .expect("future row");
        let err = migrate(&mut conn, &path, 0).expect_err("newer schema");
        assert!(matches!(err, StoreError::SchemaTooNew { .. }));
    }
}
