//! [`WriteBatch`]: everything one durable step of the till writes, committed as one SQLite
//! transaction by [`super::Store::commit`].
//!
//! A sale is one batch: the Automerge change chunk of the session document, the idempotency
//! record of the HTTP request, the fiscal outbox row and the HLC high-water mark. Either all of
//! them are on disk (fsync'd) when `commit` returns `Ok`, or none is. That is what makes a
//! retried `POST /v1/kkt/receipt` safe: the idempotency record exists exactly when the sale does.
//!
//! Inputs are checked against hard limits before the transaction starts, so a bad batch is
//! refused whole without touching the file. Refund sagas are written here too, so a saga's
//! progress commits together with the refund it produces.

use rusqlite::{params, Transaction};

use super::limits::{check_blob, check_key, MAX_BATCH_BYTES, MAX_BATCH_OPS};
use super::outbox::{self, OutboxEntry, OutboxUpdate};
use super::saga::{self, RefundSaga, SagaState};
use super::StoreError;

/// The stored answer to one idempotent HTTP request (header `Idempotency-Key`).
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is answered 409.
    pub request_sha256: [u8; 32],
    /// HTTP status of the original response (100..=599).
    pub response_status: u16,
    /// Body of the original response, returned again on a retry.
    pub response_body: Vec<u8>,
    /// When the original request was answered (Unix ms); used by
    /// [`super::Store::purge_idempotency`].
    pub created_at_ms: i64,
}

impl std::fmt::Debug for IdempotencyRecord {
    // Response bodies can be large; show their size, not their bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyRecord")
            .field("key", &self.key)
            .field("request_sha256", &hex::encode(self.request_sha256))
            .field("response_status", &self.response_status)
            .field("response_body_len", &self.response_body.len())
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

/// One write inside a [`WriteBatch`]. Applied in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Append an Automerge change chunk (from `save_after`/`save_incremental`) to a document.
    AppendChunk {
        /// Document id.
        doc_id: String,
        /// Raw change chunk bytes.
        bytes: Vec<u8>,
    },
    /// Insert or replace the persisted sync state (`State::encode()`) of (document, peer).
    PutSyncState {
        /// Document id.
        doc_id: String,
        /// Peer id (the hub, a browser).
        peer: String,
        /// Encoded sync state.
        bytes: Vec<u8>,
    },
    /// Insert an idempotency record; an existing key fails the batch with
    /// [`StoreError::Duplicate`].
    PutIdempotency(IdempotencyRecord),
    /// Raise the persisted HLC high-water mark. It never goes backwards: the stored value is
    /// the larger of the old and the new by byte order, which is HLC order for the canonical
    /// zero-padded string form.
    PutHlcHighWater(String),
    /// Insert or replace a meta value.
    PutMeta {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// Delete a meta value (absent keys are fine).
    DeleteMeta(String),
    /// Insert a new fiscal outbox entry; an existing receipt id fails the batch with
    /// [`StoreError::Duplicate`] (a receipt is queued for fiscalisation once).
    EnqueueOutbox(OutboxEntry),
    /// Change the stage and bookkeeping of an existing outbox entry; a missing receipt id
    /// fails the batch with [`StoreError::NotFound`].
    UpdateOutbox(OutboxUpdate),
    /// Insert a new refund saga; an existing key fails the batch with
    /// [`StoreError::Duplicate`].
    PutRefundSaga(RefundSaga),
    /// Change the state and bookkeeping of an existing refund saga; a missing key fails the
    /// batch with [`StoreError::NotFound`].
    UpdateRefundSaga {
        /// Which saga.
        idem_key: String,
        /// Its new state.
        state: SagaState,
        /// Retries so far.
        attempts: u32,
        /// The last failure (at most 4 KiB); `None` clears it.
        last_error: Option<String>,
        /// When this update was made (Unix ms).
        updated_at_ms: i64,
    },
}

/// An ordered set of writes committed atomically by [`super::Store::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds any [`WriteOp`].
    pub fn push(&mut self, op: WriteOp) -> &mut WriteBatch {
        self.ops.push(op);
        self
    }

    /// Appends a change chunk to `doc_id`.
    pub fn append_chunk(&mut self, doc_id: impl Into<String>, bytes: Vec<u8>) -> &mut WriteBatch {
        self.push(WriteOp::AppendChunk {
            doc_id: doc_id.into(),
            bytes,
        })
    }

    /// Stores the sync state of (`doc_id`, `peer`).
    pub fn put_sync_state(
        &mut self,
        doc_id: impl Into<String>,
        peer: impl Into<String>,
        bytes: Vec<u8>,
    ) -> &mut WriteBatch {
        self.push(WriteOp::PutSyncState {
            doc_id: doc_id.into(),
            peer: peer.into(),
            bytes,
        })
    }

    /// Stores an idempotency record.
    pub fn put_idempotency(&mut self, record: IdempotencyRecord) -> &mut WriteBatch {
        self.push(WriteOp::PutIdempotency(record))
    }

    /// Raises the HLC high-water mark.
    pub fn put_hlc_high_water(&mut self, hlc: impl Into<String>) -> &mut WriteBatch {
        self.push(WriteOp::PutHlcHighWater(hlc.into()))
    }

    /// Stores a meta value.
    pub fn put_meta(&mut self, key: impl Into<String>, value: Vec<u8>) -> &mut WriteBatch {
        self.push(WriteOp::PutMeta {
            key: key.into(),
            value,
        })
    }

    /// Deletes a meta value.
    pub fn delete_meta(&mut self, key: impl Into<String>) -> &mut WriteBatch {
        self.push(WriteOp::DeleteMeta(key.into()))
    }

    /// Queues a receipt for fiscalisation.
    pub fn enqueue_outbox(&mut self, entry: OutboxEntry) -> &mut WriteBatch {
        self.push(WriteOp::EnqueueOutbox(entry))
    }

    /// Records progress of a queued receipt.
    pub fn update_outbox(&mut self, update: OutboxUpdate) -> &mut WriteBatch {
        self.push(WriteOp::UpdateOutbox(update))
    }

    /// Starts a refund saga.
    pub fn put_refund_saga(&mut self, saga: RefundSaga) -> &mut WriteBatch {
        self.push(WriteOp::PutRefundSaga(saga))
    }

    /// Records progress of a refund saga.
    pub fn update_refund_saga(
        &mut self,
        idem_key: impl Into<String>,
        state: SagaState,
        attempts: u32,
        last_error: Option<String>,
        updated_at_ms: i64,
    ) -> &mut WriteBatch {
        self.push(WriteOp::UpdateRefundSaga {
            idem_key: idem_key.into(),
            state,
            attempts,
            last_error,
            updated_at_ms,
        })
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Checks every write against the store's limits before any SQL runs.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.ops.len() > MAX_BATCH_OPS {
            return Err(StoreError::InvalidInput(format!(
                "a batch holds at most {MAX_BATCH_OPS} writes, this one {}",
                self.ops.len()
            )));
        }
        let mut total_bytes = 0usize;
        for op in &self.ops {
            total_bytes = total_bytes.saturating_add(validate_op(op)?);
        }
        if total_bytes > MAX_BATCH_BYTES {
            return Err(StoreError::InvalidInput(format!(
                "a batch holds at most {MAX_BATCH_BYTES} bytes, this one {total_bytes}"
            )));
        }
        Ok(())
    }

    /// Runs every write inside `tx`. The caller commits or rolls back.
    pub(crate) fn apply(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        self.ops.iter().try_for_each(|op| apply_op(tx, op))
    }
}

/// Validates one write; returns how many payload bytes it carries.
fn validate_op(op: &WriteOp) -> Result<usize, StoreError> {
    match op {
        WriteOp::AppendChunk { doc_id, bytes } => {
            check_key("doc_id", doc_id)?;
            if bytes.is_empty() {
                return Err(StoreError::InvalidInput(format!(
                    "empty change chunk for document {doc_id:?}"
                )));
            }
            check_blob("change chunk", bytes)?;
            Ok(bytes.len())
        }
        WriteOp::PutSyncState {
            doc_id,
            peer,
            bytes,
        } => {
            check_key("doc_id", doc_id)?;
            check_key("peer", peer)?;
            check_blob("sync state", bytes)?;
            Ok(bytes.len())
        }
        WriteOp::PutIdempotency(record) => {
            check_key("idempotency key", &record.key)?;
            if !(100..=599).contains(&record.response_status) {
                return Err(StoreError::InvalidInput(format!(
                    "response status {} is not an HTTP status",
                    record.response_status
                )));
            }
            check_blob("response body", &record.response_body)?;
            Ok(record.response_body.len())
        }
        WriteOp::PutHlcHighWater(hlc) => {
            check_key("hlc", hlc)?;
            Ok(hlc.len())
        }
        WriteOp::PutMeta { key, value } => {
            check_key("meta key", key)?;
            check_blob("meta value", value)?;
            Ok(value.len())
        }
        WriteOp::DeleteMeta(key) => {
            check_key("meta key", key)?;
            Ok(0)
        }
        WriteOp::EnqueueOutbox(entry) => entry.validate(),
        WriteOp::UpdateOutbox(update) => update.validate(),
        WriteOp::PutRefundSaga(saga) => saga.validate(),
        WriteOp::UpdateRefundSaga {
            idem_key,
            last_error,
            ..
        } => {
            check_key("refund saga idem_key", idem_key)?;
            saga::check_error_text(last_error.as_deref())?;
            Ok(last_error.as_ref().map_or(0, String::len))
        }
    }
}

fn apply_op(tx: &Transaction<'_>, op: &WriteOp) -> Result<(), StoreError> {
    let operation = "commit batch";
    let sqlite = |e| StoreError::from_sqlite(operation, e);
    match op {
        WriteOp::AppendChunk { doc_id, bytes } => {
            tx.prepare_cached("INSERT INTO doc_chunk(doc_id, data) VALUES (?1, ?2)")
                .and_then(|mut stmt| stmt.execute(params![doc_id, bytes]))
                .map_err(sqlite)?;
        }
        WriteOp::PutSyncState {
            doc_id,
            peer,
            bytes,
        } => {
            tx.prepare_cached(
                "INSERT INTO sync_state(doc_id, peer_id, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT(doc_id, peer_id) DO UPDATE SET state = excluded.state",
            )
            .and_then(|mut stmt| stmt.execute(params![doc_id, peer, bytes]))
            .map_err(sqlite)?;
        }
        WriteOp::PutIdempotency(record) => {
            tx.prepare_cached(
                "INSERT INTO idempotency(key, request_sha256, response_status, response_body,
                                         created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    record.key,
                    record.request_sha256,
                    i64::from(record.response_status),
                    record.response_body,
                    record.created_at_ms
                ])
            })
            .map_err(|e| StoreError::from_insert(operation, "idempotency key", &record.key, e))?;
        }
        WriteOp::PutHlcHighWater(hlc) => {
            tx.prepare_cached(
                "INSERT INTO hlc_high_water(id, hlc) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET hlc = max(hlc, excluded.hlc)",
            )
            .and_then(|mut stmt| stmt.execute(params![hlc]))
            .map_err(sqlite)?;
        }
        WriteOp::PutMeta { key, value } => {
            tx.prepare_cached(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut stmt| stmt.execute(params![key, value]))
            .map_err(sqlite)?;
        }
        WriteOp::DeleteMeta(key) => {
            tx.prepare_cached("DELETE FROM meta WHERE key = ?1")
                .and_then(|mut stmt| stmt.execute(params![key]))
                .map_err(sqlite)?;
        }
        WriteOp::EnqueueOutbox(entry) => outbox::insert(tx, entry)?,
        WriteOp::UpdateOutbox(update) => outbox::update(tx, update)?,
        WriteOp::PutRefundSaga(record) => saga::insert(tx, record)?,
        WriteOp::UpdateRefundSaga {
            idem_key,
            state,
            attempts,
            last_error,
            updated_at_ms,
        } => saga::update(
            tx,
            idem_key,
            *state,
            *attempts,
            last_error.as_deref(),
            *updated_at_ms,
        )?,
    }
    Ok(())
}
