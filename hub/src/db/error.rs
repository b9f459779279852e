//! The storage layer's error type.
//!
//! One enum for the whole `db` module: callers (the sync and API layers) mostly need to tell
//! "your input was bad" (map to 4xx) from "the database failed" (5xx, log it) from "a
//! concurrency rule was broken" (a bug in the caller). [`DbError::is_client_error`] makes that
//! split explicit.

use crate::auth_types::{PasswordPolicyError, UnknownRole};
use crate::db::ids::IdError;
use thiserror::Error;

/// Everything that can go wrong in [`crate::db`].
#[derive(Debug, Error)]
pub enum DbError {
    /// The database driver failed (connection, SQL, constraint, I/O inside the database).
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),

    /// The data directory for the embedded SQLite database could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A schema migration failed; the transaction was rolled back.
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        /// The version that failed.
        version: i64,
        /// The driver error.
        source: sqlx::Error,
    },

    /// The database was migrated by a newer hub; this binary must not write to it.
    #[error(
        "database schema version {found} is newer than this hub knows ({known}); upgrade the hub"
    )]
    SchemaTooNew {
        /// Version found in `schema_version`.
        found: i64,
        /// Highest version this binary ships.
        known: i64,
    },

    /// An identifier failed validation.
    #[error(transparent)]
    InvalidId(#[from] IdError),

    /// Some other argument failed validation (empty chunk, bad JSON, payments that do not add
    /// up, ...). Nothing was written.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was refused.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// A password or PIN was refused by the policy.
    #[error(transparent)]
    PasswordPolicy(#[from] PasswordPolicyError),

    /// The row already exists (e.g. a user with that name).
    #[error("{what} {key:?} already exists")]
    AlreadyExists {
        /// Kind of row.
        what: &'static str,
        /// Its key.
        key: String,
    },

    /// The row that must exist does not.
    #[error("{what} {key:?} not found")]
    NotFound {
        /// Kind of row.
        what: &'static str,
        /// Its key.
        key: String,
    },

    /// `append_changes` (or `upsert_session`) was given metadata that differs from what the
    /// stored row says: a document never moves to another store, kind or till.
    #[error("{what} {key:?} already belongs to a different store/kind/till")]
    MetaMismatch {
        /// Kind of row.
        what: &'static str,
        /// Its key.
        key: String,
    },

    /// `compact` was called without `lock_doc` + `load_doc` on that document earlier in the
    /// same transaction, or with a chunk id this transaction did not read or write. Refused
    /// before anything was changed, because compaction may only delete chunks it folded.
    #[error("compaction of {doc_id:?} refused: {reason}")]
    CompactionRefused {
        /// The document.
        doc_id: String,
        /// Why.
        reason: String,
    },

    /// A stored value could not be decoded (bad role name, bad heads JSON): the database was
    /// edited by hand or by a buggy writer.
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Details (never secrets).
        detail: String,
    },

    /// A replicated document the hub writes itself (a staff document) cannot take the
    /// write: it does not load, belongs to another store, or holds a newer entry than the
    /// hub's clock can stamp. Nothing was written.
    #[error("document {doc_id}: {reason}")]
    Document {
        /// The document.
        doc_id: String,
        /// Why (never secrets).
        reason: String,
    },

    /// Argon2 hashing failed or its blocking task panicked.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}

impl DbError {
    /// True when the error is the caller's fault (bad id, bad input, duplicate, not found,
    /// metadata mismatch): the API layer answers 4xx and need not alarm anyone.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            DbError::InvalidId(_)
                | DbError::Invalid { .. }
                | DbError::PasswordPolicy(_)
                | DbError::AlreadyExists { .. }
                | DbError::NotFound { .. }
                | DbError::MetaMismatch { .. }
        )
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        DbError::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl Into<String>) -> Self {
        DbError::Corrupt {
            what,
            detail: detail.into(),
        }
    }
}

impl From<UnknownRole> for DbError {
    fn from(e: UnknownRole) -> Self {
        DbError::corrupt("role", e.to_string())
    }
}
