//! Refund sagas: a refund whose original receipt is not yet known or not yet fiscalised is
//! answered 409 with a retry-after, and recorded here so the till retries it by itself.
//!
//! The row is keyed by the client's `Idempotency-Key` and keeps the request and its SHA-256, so
//! a retry of the same request finds its saga and another body under the same key can be
//! refused. Rows are written only through a [`super::WriteBatch`]
//! ([`super::WriteOp::PutRefundSaga`], [`super::WriteOp::UpdateRefundSaga`]), so finishing a
//! saga commits in the same transaction as the refund it produces.

use std::fmt;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::limits::{check_blob, check_key, MAX_ERROR_TEXT_BYTES};
use super::{Store, StoreError};

/// Most sagas one read returns.
pub const MAX_SAGA_READ: usize = 10_000;

/// Where a refund saga is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SagaState {
    /// Waiting for the original receipt; retried.
    Pending,
    /// The refund was made.
    Done,
    /// Given up; the refund was not made.
    Failed,
}

impl SagaState {
    /// All states.
    pub const ALL: [SagaState; 3] = [SagaState::Pending, SagaState::Done, SagaState::Failed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SagaState::Pending => "pending",
            SagaState::Done => "done",
            SagaState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<SagaState> {
        SagaState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One refund saga.
#[derive(Clone, PartialEq, Eq)]
pub struct RefundSaga {
    /// The client's `Idempotency-Key` of the refund request.
    pub idem_key: String,
    /// SHA-256 of the request body.
    pub request_sha256: [u8; 32],
    /// The receipt being refunded.
    pub original_receipt_id: String,
    /// The request body, replayed on each retry.
    pub request: Vec<u8>,
    /// Current state.
    pub state: SagaState,
    /// Retries so far.
    pub attempts: u32,
    /// Why the last attempt did not finish (at most 4 KiB).
    pub last_error: Option<String>,
    /// When the saga started (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl fmt::Debug for RefundSaga {
    // The request can be large; show its size, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefundSaga")
            .field("idem_key", &self.idem_key)
            .field("request_sha256", &hex::encode(self.request_sha256))
            .field("original_receipt_id", &self.original_receipt_id)
            .field("request_len", &self.request.len())
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("created_at_ms", &self.created_at_ms)
            .field("updated_at_ms", &self.updated_at_ms)
            .finish()
    }
}

/// Refuses an error text above the limit (the caller decides what to keep, as for the outbox).
pub(crate) fn check_error_text(last_error: Option<&str>) -> Result<(), StoreError> {
    match last_error {
        Some(text) if text.len() > MAX_ERROR_TEXT_BYTES => Err(StoreError::InvalidInput(format!(
            "refund saga last_error is {} bytes, the limit is {MAX_ERROR_TEXT_BYTES}",
            text.len()
        ))),
        _ => Ok(()),
    }
}

impl RefundSaga {
    /// Checks the saga against the store's limits; returns how many payload bytes it carries.
    pub(crate) fn validate(&self) -> Result<usize, StoreError> {
        check_key("refund saga idem_key", &self.idem_key)?;
        check_key("original_receipt_id", &self.original_receipt_id)?;
        check_blob("refund request", &self.request)?;
        check_error_text(self.last_error.as_deref())?;
        Ok(self.request.len())
    }
}

pub(crate) fn insert(tx: &Transaction<'_>, saga: &RefundSaga) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO refund_saga(idem_key, request_sha256, original_receipt_id, request, state,
                                 attempts, last_error, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            saga.idem_key,
            saga.request_sha256,
            saga.original_receipt_id,
            saga.request,
            saga.state.as_str(),
            i64::from(saga.attempts),
            saga.last_error,
            saga.created_at_ms,
            saga.updated_at_ms
        ])
    })
    .map_err(|e| StoreError::from_insert("commit batch", "refund saga", &saga.idem_key, e))?;
    Ok(())
}

pub(crate) fn update(
    tx: &Transaction<'_>,
    idem_key: &str,
    state: SagaState,
    attempts: u32,
    last_error: Option<&str>,
    updated_at_ms: i64,
) -> Result<(), StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE refund_saga SET state = ?2, attempts = ?3, last_error = ?4, updated_at_ms = ?5
             WHERE idem_key = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                idem_key,
                state.as_str(),
                i64::from(attempts),
                last_error,
                updated_at_ms
            ])
        })
        .map_err(|e| StoreError::from_sqlite("commit batch", e))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: "refund saga",
            key: idem_key.to_owned(),
        });
    }
    Ok(())
}

const SAGA_COLUMNS: &str = "idem_key, request_sha256, original_receipt_id, request, state,
                            attempts, last_error, created_at_ms, updated_at_ms";

fn read_saga(row: &Row<'_>) -> rusqlite::Result<Result<RefundSaga, StoreError>> {
    let idem_key: String = row.get(0)?;
    let sha: Vec<u8> = row.get(1)?;
    let state_text: String = row.get(4)?;
    let attempts: i64 = row.get(5)?;
    let corrupt = |what: String| -> rusqlite::Result<Result<RefundSaga, StoreError>> {
        Ok(Err(StoreError::Corrupt(format!("refund saga {what}"))))
    };
    let Ok(request_sha256) = <[u8; 32]>::try_from(sha.as_slice()) else {
        return corrupt(format!(
            "{idem_key:?} has a {}-byte request hash",
            sha.len()
        ));
    };
    let Some(state) = SagaState::parse(&state_text) else {
        return corrupt(format!("{idem_key:?} has unknown state {state_text:?}"));
    };
    let Ok(attempts) = u32::try_from(attempts) else {
        return corrupt(format!("{idem_key:?} has attempts {attempts}"));
    };
    Ok(Ok(RefundSaga {
        idem_key,
        request_sha256,
        original_receipt_id: row.get(2)?,
        request: row.get(3)?,
        state,
        attempts,
        last_error: row.get(6)?,
        created_at_ms: row.get(7)?,
        updated_at_ms: row.get(8)?,
    }))
}

impl Store {
    /// The saga stored under `idem_key`.
    pub fn refund_saga(&self, idem_key: &str) -> Result<Option<RefundSaga>, StoreError> {
        let op = "read refund saga";
        let sql = format!("SELECT {SAGA_COLUMNS} FROM refund_saga WHERE idem_key = ?1");
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row(params![idem_key], read_saga).optional())
            .map_err(|e| StoreError::from_sqlite(op, e))?
            .transpose()
    }

    /// Up to `limit` (at most [`MAX_SAGA_READ`]) pending sagas, oldest first: the retry order.
    pub fn refund_sagas_pending(&self, limit: usize) -> Result<Vec<RefundSaga>, StoreError> {
        if limit > MAX_SAGA_READ {
            return Err(StoreError::InvalidInput(format!(
                "saga reads return at most {MAX_SAGA_READ} rows, asked for {limit}"
            )));
        }
        let limit =
            i64::try_from(limit).map_err(|_| StoreError::InvalidInput(format!("limit {limit}")))?;
        let op = "read pending refund sagas";
        let sqlite = |e| StoreError::from_sqlite(op, e);
        let sql = format!(
            "SELECT {SAGA_COLUMNS} FROM refund_saga WHERE state = 'pending'
             ORDER BY created_at_ms, idem_key LIMIT ?1"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(sqlite)?;
        let rows = stmt.query_map(params![limit], read_saga).map_err(sqlite)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(sqlite)??);
        }
        Ok(out)
    }
}
