//! Errors of the till's durable store, and the rule that sorts SQLite failures into them.
//!
//! The sorting matters because of the poisoning rule (see [`super::Store`]): an error that
//! says the storage itself failed ([`StoreError::Io`]) stops all later writes, while an error
//! about the request (a duplicate key, a missing row, bad input) only refuses that one write.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// Everything that can go wrong in [`super::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        /// The directory we tried to create.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },

    /// The lock file next to the database could not be opened or locked.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },

    /// Another process (or another `Store` in this process) already has this data directory
    /// open. Two daemons on one database could fiscalise a receipt twice, so we refuse.
    #[error("the data directory {path} is already in use by another till-node process")]
    AlreadyOpen {
        /// The lock file that is held.
        path: PathBuf,
    },

    /// SQLite could not open the database file.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },

    /// The file is an SQLite database that belongs to some other program.
    #[error("{path} is not a till-node database (application_id {found:#x})")]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// The `PRAGMA application_id` found in it.
        found: i64,
    },

    /// A durability setting did not take effect; the store refuses to start rather than
    /// acknowledge sales it might lose on power failure.
    #[error("PRAGMA {pragma} did not take effect: expected {expected}, SQLite reports {actual}")]
    Durability {
        /// The pragma name, e.g. `journal_mode`.
        pragma: &'static str,
        /// The value we asked for.
        expected: &'static str,
        /// The value SQLite reports.
        actual: String,
    },

    /// The database was written by a newer till-node; this binary does not know its schema.
    #[error("database schema version {found} is newer than this build supports ({supported}); upgrade till-node")]
    SchemaTooNew {
        /// The highest migration recorded in the file.
        found: i64,
        /// The highest migration this build knows.
        supported: i64,
    },

    /// A schema migration failed (the whole migration was rolled back).
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        /// Migration number.
        version: i64,
        /// Migration name.
        name: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },

    /// The storage failed (I/O error, disk full, read-only file system, corruption). The write
    /// was not made and the store is now poisoned: later writes return [`StoreError::PreviousIo`].
    #[error("storage failure during {operation}: {source}")]
    Io {
        /// What we were doing.
        operation: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },

    /// An earlier write hit a storage failure, so this store no longer writes (redb's rule:
    /// after an fsync error the state of the file is unknown). Restart the process after
    /// fixing the storage; reads still work meanwhile.
    #[error("the store stopped writing after an earlier storage failure: {first_error}")]
    PreviousIo {
        /// The message of the failure that poisoned the store.
        first_error: String,
    },

    /// The database stayed locked by another connection for longer than the busy timeout.
    /// Nothing was written; the store is not poisoned.
    #[error("the database is locked by another connection ({operation}): {source}")]
    Busy {
        /// What we were doing.
        operation: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },

    /// A row with this key already exists (e.g. an idempotency key or a fiscal outbox entry
    /// written twice). The whole batch was rolled back.
    #[error("{what} {key:?} already exists")]
    Duplicate {
        /// Which kind of row.
        what: &'static str,
        /// Its key.
        key: String,
    },

    /// An update named a row that does not exist. The whole batch was rolled back.
    #[error("{what} {key:?} does not exist")]
    NotFound {
        /// Which kind of row.
        what: &'static str,
        /// Its key.
        key: String,
    },

    /// A compaction would replace a snapshot that covers more chunks than the new one; the
    /// chunks in between are already deleted, so accepting it would lose changes.
    #[error("stale compaction of {doc_id:?}: it covers chunks up to {requested:?}, the stored snapshot up to {covered}")]
    StaleCompaction {
        /// Document id.
        doc_id: String,
        /// The `up_to_chunk_id` passed.
        requested: Option<super::ChunkId>,
        /// What the stored snapshot covers.
        covered: super::ChunkId,
    },

    /// The caller passed something the store refuses before touching the database
    /// (an empty or oversized key, an oversized blob, a too-large batch, an out-of-range value).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A stored value does not decode (e.g. an unknown outbox stage). Run `integrity_check`.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),

    /// Any other SQLite error (a bug in our SQL, most likely). Not poisoning.
    #[error("SQLite error during {operation}: {source}")]
    Sqlite {
        /// What we were doing.
        operation: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Whether this error says the storage itself failed, which poisons the store.
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, StoreError::Io { .. })
    }

    /// Sorts an SQLite error raised while doing `operation` into the precise variant.
    pub(crate) fn from_sqlite(operation: &'static str, source: rusqlite::Error) -> StoreError {
        match source.sqlite_error_code() {
            Some(code) if is_storage_failure_code(code) => StoreError::Io { operation, source },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Busy { operation, source }
            }
            _ => StoreError::Sqlite { operation, source },
        }
    }

    /// Like [`StoreError::from_sqlite`], but a constraint violation becomes
    /// [`StoreError::Duplicate`] for the row being written.
    pub(crate) fn from_insert(
        operation: &'static str,
        what: &'static str,
        key: &str,
        source: rusqlite::Error,
    ) -> StoreError {
        match source.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => StoreError::Duplicate {
                what,
                key: key.to_owned(),
            },
            _ => StoreError::from_sqlite(operation, source),
        }
    }
}

/// SQLite result codes that mean "the file or the disk under it failed", after which we cannot
/// know what reached the platter. `ReadOnly` is here because ext4 remounts read-only on errors.
fn is_storage_failure_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::DatabaseCorrupt
            | ErrorCode::NotADatabase
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::NoLargeFileSupport
            | ErrorCode::PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn io_codes_poison_and_others_do_not() {
        let io = StoreError::from_sqlite("commit", sqlite_error(rusqlite::ffi::SQLITE_IOERR));
        assert!(io.is_storage_failure());
        let full = StoreError::from_sqlite("commit", sqlite_error(rusqlite::ffi::SQLITE_FULL));
        assert!(full.is_storage_failure());
        let busy = StoreError::from_sqlite("commit", sqlite_error(rusqlite::ffi::SQLITE_BUSY));
        assert!(matches!(busy, StoreError::Busy { .. }));
        assert!(!busy.is_storage_failure());
        let dup = StoreError::from_insert(
            "commit",
            "idempotency key",
            "k1",
            sqlite_error(rusqlite::ffi::SQLITE_CONSTRAINT),
        );
        assert!(matches!(dup, StoreError::Duplicate { key, .. } if key == "k1"));
    }
}
