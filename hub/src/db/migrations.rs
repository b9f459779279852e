//! Schema migrations, one list per backend, applied by [`crate::db::Db::connect`].
//!
//! Each migration is a SQL script embedded in the binary; `schema_version` records which ran.
//! Versions: 1 the base schema; 2 the hub's clock per document and login throttling; 3 the
//! hub's heads per document and the heads each till reported (divergence view).
//! The two lists must carry the same versions with the same meaning: only the dialect differs
//! (`BYTEA` vs `BLOB`, identity columns vs `AUTOINCREMENT`, `BIGINT` everywhere on
//! PostgreSQL so every integer decodes as `i64`).
//!
//! Concurrency: on PostgreSQL the whole run is one transaction that first takes
//! `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`, so two hubs starting at once apply each
//! migration exactly once (DDL is transactional there). On SQLite the run is one
//! `BEGIN IMMEDIATE` transaction, which excludes every other writer of the file.

use crate::db::DbError;
use sqlx::{PgPool, SqlitePool};

/// The schema version this binary creates and understands.
pub const SCHEMA_VERSION: i64 = 3;

/// Advisory lock key for migrations (single-bigint lock space; documents use the two-int
/// space, so the keys cannot collide).
const MIGRATION_LOCK_KEY: i64 = 0x6875_625f_6d69_6772; // "hub_migr"

struct Migration {
    version: i64,
    sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        sql: r#"
CREATE TABLE docs (
    doc_id          TEXT PRIMARY KEY NOT NULL,
    store           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    till            TEXT,
    snapshot        BLOB,
    snapshot_heads  TEXT NOT NULL DEFAULT '[]',
    updated_at_ms   INTEGER NOT NULL,
    change_count    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX docs_store_updated ON docs (store, updated_at_ms);
CREATE TABLE doc_changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id  TEXT NOT NULL REFERENCES docs (doc_id),
    data    BLOB NOT NULL
);
CREATE INDEX doc_changes_doc ON doc_changes (doc_id, id);
CREATE TABLE sync_states (
    doc_id         TEXT NOT NULL,
    peer           TEXT NOT NULL,
    state          BLOB NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (doc_id, peer)
);
CREATE INDEX sync_states_peer ON sync_states (peer);
CREATE TABLE peer_doc_status (
    peer                TEXT NOT NULL,
    doc_id              TEXT NOT NULL,
    clock               TEXT NOT NULL,
    oldest_unsynced_ms  INTEGER,
    reported_at_ms      INTEGER NOT NULL,
    PRIMARY KEY (peer, doc_id)
);
CREATE TABLE peer_sync (
    peer                TEXT PRIMARY KEY NOT NULL,
    last_sync_at_ms     INTEGER,
    last_attempt_at_ms  INTEGER NOT NULL,
    last_error          TEXT
);
CREATE TABLE devices (
    store          TEXT NOT NULL,
    till           TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    created_at_ms  INTEGER NOT NULL,
    revoked        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (store, till)
);
CREATE TABLE users (
    name           TEXT PRIMARY KEY NOT NULL,
    role           TEXT NOT NULL
                   CHECK (role IN ('admin', 'manager', 'support', 'accountant', 'cashier')),
    password_hash  TEXT NOT NULL,
    store          TEXT,
    created_at_ms  INTEGER NOT NULL
);
CREATE TABLE user_sessions (
    token_hash     TEXT PRIMARY KEY NOT NULL,
    user_name      TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    expires_at_ms  INTEGER NOT NULL
);
CREATE INDEX user_sessions_expiry ON user_sessions (expires_at_ms);
CREATE TABLE receipts (
    receipt_id  TEXT PRIMARY KEY NOT NULL,
    store       TEXT NOT NULL,
    till        TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('sale', 'refund', 'correction')),
    total       INTEGER NOT NULL,
    hlc         TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX receipts_store_till ON receipts (store, till);
CREATE INDEX receipts_session ON receipts (session_id);
CREATE TABLE receipt_payments (
    receipt_id  TEXT NOT NULL REFERENCES receipts (receipt_id),
    idx         INTEGER NOT NULL,
    method      TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    PRIMARY KEY (receipt_id, idx)
);
CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY NOT NULL,
    store         TEXT NOT NULL,
    till          TEXT NOT NULL,
    cashier       TEXT NOT NULL,
    opened_hlc    TEXT NOT NULL,
    opening_cash  INTEGER NOT NULL,
    closed_hlc    TEXT,
    close_json    TEXT
);
CREATE INDEX sessions_store ON sessions (store, till);
"#,
    },
    Migration {
        version: 2,
        sql: r#"
ALTER TABLE docs ADD COLUMN clock TEXT;
CREATE TABLE login_attempts (
    name             TEXT PRIMARY KEY NOT NULL,
    failures         INTEGER NOT NULL,
    window_start_ms  INTEGER NOT NULL,
    locked_until_ms  INTEGER NOT NULL DEFAULT 0
);
"#,
    },
    Migration {
        version: 3,
        sql: r#"
ALTER TABLE docs ADD COLUMN heads TEXT;
ALTER TABLE peer_doc_status ADD COLUMN till_heads TEXT;
"#,
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        sql: r#"
CREATE TABLE docs (
    doc_id          TEXT PRIMARY KEY,
    store           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    till            TEXT,
    snapshot        BYTEA,
    snapshot_heads  TEXT NOT NULL DEFAULT '[]',
    updated_at_ms   BIGINT NOT NULL,
    change_count    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX docs_store_updated ON docs (store, updated_at_ms);
CREATE TABLE doc_changes (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id  TEXT NOT NULL REFERENCES docs (doc_id),
    data    BYTEA NOT NULL
);
CREATE INDEX doc_changes_doc ON doc_changes (doc_id, id);
CREATE TABLE sync_states (
    doc_id         TEXT NOT NULL,
    peer           TEXT NOT NULL,
    state          BYTEA NOT NULL,
    updated_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (doc_id, peer)
);
CREATE INDEX sync_states_peer ON sync_states (peer);
CREATE TABLE peer_doc_status (
    peer                TEXT NOT NULL,
    doc_id              TEXT NOT NULL,
    clock               TEXT NOT NULL,
    oldest_unsynced_ms  BIGINT,
    reported_at_ms      BIGINT NOT NULL,
    PRIMARY KEY (peer, doc_id)
);
CREATE TABLE peer_sync (
    peer                TEXT PRIMARY KEY,
    last_sync_at_ms     BIGINT,
    last_attempt_at_ms  BIGINT NOT NULL,
    last_error          TEXT
);
CREATE TABLE devices (
    store          TEXT NOT NULL,
    till           TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    created_at_ms  BIGINT NOT NULL,
    revoked        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (store, till)
);
CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL
                   CHECK (role IN ('admin', 'manager', 'support', 'accountant', 'cashier')),
    password_hash  TEXT NOT NULL,
    store          TEXT,
    created_at_ms  BIGINT NOT NULL
);
CREATE TABLE user_sessions (
    token_hash     TEXT PRIMARY KEY,
    user_name      TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    expires_at_ms  BIGINT NOT NULL
);
CREATE INDEX user_sessions_expiry ON user_sessions (expires_at_ms);
CREATE TABLE receipts (
    receipt_id  TEXT PRIMARY KEY,
    store       TEXT NOT NULL,
    till        TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('sale', 'refund', 'correction')),
    total       BIGINT NOT NULL,
    hlc         TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX receipts_store_till ON receipts (store, till);
CREATE INDEX receipts_session ON receipts (session_id);
CREATE TABLE receipt_payments (
    receipt_id  TEXT NOT NULL REFERENCES receipts (receipt_id),
    idx         BIGINT NOT NULL,
    method      TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    PRIMARY KEY (receipt_id, idx)
);
CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    store         TEXT NOT NULL,
    till          TEXT NOT NULL,
    cashier       TEXT NOT NULL,
    opened_hlc    TEXT NOT NULL,
    opening_cash  BIGINT NOT NULL,
    closed_hlc    TEXT,
    close_json    TEXT
);
CREATE INDEX sessions_store ON sessions (store, till);
"#,
    },
    Migration {
        version: 2,
        sql: r#"
ALTER TABLE docs ADD COLUMN clock TEXT;
CREATE TABLE login_attempts (
    name             TEXT PRIMARY KEY,
    failures         BIGINT NOT NULL,
    window_start_ms  BIGINT NOT NULL,
    locked_until_ms  BIGINT NOT NULL DEFAULT 0
);
"#,
    },
    Migration {
        version: 3,
        sql: r#"
ALTER TABLE docs ADD COLUMN heads TEXT;
ALTER TABLE peer_doc_status ADD COLUMN till_heads TEXT;
"#,
    },
];

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version        BIGINT PRIMARY KEY NOT NULL,
    applied_at_ms  BIGINT NOT NULL
)";
pub(crate) const CURRENT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
const RECORD_VERSION: &str = "INSERT INTO schema_version (version, applied_at_ms) VALUES ($1, $2)";

/// Highest version in `migrations`, and a refusal if the database is already past it.
fn pending(
    migrations: &'static [Migration],
    current: i64,
) -> Result<Vec<&'static Migration>, DbError> {
    let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if current > known {
        return Err(DbError::SchemaTooNew {
            found: current,
            known,
        });
    }
    Ok(migrations.iter().filter(|m| m.version > current).collect())
}

/// Applies pending PostgreSQL migrations under an advisory transaction lock.
pub(crate) async fn migrate_postgres(pool: &PgPool) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    sqlx::query(CREATE_VERSION_TABLE).execute(&mut *tx).await?;
    let current: i64 = sqlx::query_scalar(CURRENT_VERSION)
        .fetch_one(&mut *tx)
        .await?;
    for m in pending(POSTGRES, current)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| DbError::Migration {
                version: m.version,
                source,
            })?;
        sqlx::query(RECORD_VERSION)
            .bind(m.version)
            .bind(crate::db::now_ms())
            .execute(&mut *tx)
            .await?;
        tracing::info!(version = m.version, "applied PostgreSQL migration");
    }
    tx.commit().await?;
    Ok(())
}

/// Applies pending SQLite migrations in one `BEGIN IMMEDIATE` transaction.
pub(crate) async fn migrate_sqlite(writer: &SqlitePool) -> Result<(), DbError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(CREATE_VERSION_TABLE).execute(&mut *tx).await?;
    let current: i64 = sqlx::query_scalar(CURRENT_VERSION)
        .fetch_one(&mut *tx)
        .await?;
    for m in pending(SQLITE, current)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| DbError::Migration {
                version: m.version,
                source,
            })?;
        sqlx::query(RECORD_VERSION)
            .bind(m.version)
            .bind(crate::db::now_ms())
            .execute(&mut *tx)
            .await?;
        tracing::info!(version = m.version, "applied SQLite migration");
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_versions() {
        let sqlite: Vec<i64> = SQLITE.iter().map(|m| m.version).collect();
        let postgres: Vec<i64> = POSTGRES.iter().map(|m| m.version).collect();
        assert_eq!(sqlite, postgres);
        let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(
            sqlite, expected,
            "versions must be 1..=SCHEMA_VERSION in order"
        );
    }

    #[test]
    fn refuses_a_newer_schema() {
        match pending(SQLITE, SCHEMA_VERSION + 1) {
            Err(DbError::SchemaTooNew { found, known }) => {
                assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {:?}", other.map(|v| v.len())),
        }
        assert_eq!(pending(SQLITE, 0).map(|v| v.len()).ok(), Some(SQLITE.len()));
        assert_eq!(
            pending(SQLITE, SCHEMA_VERSION).map(|v| v.len()).ok(),
            Some(0)
        );
    }
}
