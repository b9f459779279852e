//! The fiscal outbox: receipts waiting to be printed by the register and acknowledged by the
//! OFD, kept in the same SQLite file as the sale so that queuing is part of the sale's own
//! transaction (no sale without its outbox row, no outbox row without its sale).
//!
//! The store records what the fiscal pipeline tells it; the pipeline owns the rules of moving
//! between stages. Entries are read back in HLC order, the order the pipeline must drain them.
//! The `register_intent` stage is the idempotency key persisted *before* a document is sent to
//! the register: after a crash in that stage the pipeline asks the register for its last
//! document instead of printing again.
//!
//! Besides receipts the outbox carries the register's other documents ([`OutboxKind`]: shift
//! close, cash in, cash out), because they share the register's FD numbering and must be printed
//! in the same HLC order. Only receipts count as the fiscal buffer ([`OutboxStats`]).

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::limits::{check_blob, check_key, MAX_ERROR_TEXT_BYTES};
use super::{Store, StoreError};

/// Most rows one outbox read returns.
pub const MAX_OUTBOX_READ: usize = 10_000;

/// Where a receipt is in the fiscal pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxStage {
    /// Committed with the sale, not yet sent to the register.
    Queued,
    /// About to be sent to the register (intent persisted); on restart, ask the register.
    RegisterIntent,
    /// Printed and signed by the register; not yet acknowledged by the OFD.
    Fiscalised,
    /// Acknowledged by the OFD: done.
    Acknowledged,
    /// Given up after too many failures; waits for support.
    DeadLetter,
}

impl OutboxStage {
    /// All stages, in pipeline order.
    pub const ALL: [OutboxStage; 5] = [
        OutboxStage::Queued,
        OutboxStage::RegisterIntent,
        OutboxStage::Fiscalised,
        OutboxStage::Acknowledged,
        OutboxStage::DeadLetter,
    ];

    /// The stored (and logged) name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStage::Queued => "queued",
            OutboxStage::RegisterIntent => "register_intent",
            OutboxStage::Fiscalised => "fiscalised",
            OutboxStage::Acknowledged => "acknowledged",
            OutboxStage::DeadLetter => "dead_letter",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<OutboxStage> {
        OutboxStage::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What kind of register document an outbox job prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxKind {
    /// A receipt (sale, refund, correction): the fiscal buffer.
    Receipt,
    /// Closing the shift (Z report).
    CloseShift,
    /// Cash put into the drawer.
    CashIn,
    /// Cash taken out of the drawer.
    CashOut,
}

impl OutboxKind {
    /// All kinds.
    pub const ALL: [OutboxKind; 4] = [
        OutboxKind::Receipt,
        OutboxKind::CloseShift,
        OutboxKind::CashIn,
        OutboxKind::CashOut,
    ];

    /// The stored (and logged) name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Receipt => "receipt",
            OutboxKind::CloseShift => "close_shift",
            OutboxKind::CashIn => "cash_in",
            OutboxKind::CashOut => "cash_out",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<OutboxKind> {
        OutboxKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A job queued for the register (the row as written by the sale's batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The job's UUID (the fiscal idempotency key); for a receipt, the receipt's id.
    pub receipt_id: String,
    /// What the register prints for it.
    pub kind: OutboxKind,
    /// The receipt's HLC in canonical string form; the drain order.
    pub hlc: String,
    /// The session document holding the receipt.
    pub doc_id: String,
    /// What the pipeline needs to fiscalise it (e.g. the receipt's canonical JSON).
    pub payload: Vec<u8>,
    /// When it was queued (Unix ms); the age of the oldest one is checked against 30 days.
    pub created_at_ms: i64,
}

impl OutboxEntry {
    pub(crate) fn validate(&self) -> Result<usize, StoreError> {
        check_key("receipt_id", &self.receipt_id)?;
        check_key("hlc", &self.hlc)?;
        check_key("doc_id", &self.doc_id)?;
        check_blob("outbox payload", &self.payload)?;
        Ok(self.payload.len())
    }
}

/// New bookkeeping for an existing outbox entry. Every field is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxUpdate {
    /// Which entry.
    pub receipt_id: String,
    /// Its new stage.
    pub stage: OutboxStage,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last failure, for support (at most 4 KiB).
    pub last_error: Option<String>,
    /// When the next attempt is due (Unix ms), for backoff.
    pub next_attempt_at_ms: Option<i64>,
    /// What the register returned (fiscal document number, fiscal sign…), opaque here.
    pub fiscal_result: Option<Vec<u8>>,
    /// The FN document number once fiscalised (`None` stores NULL, like every other field).
    pub fd_number: Option<u32>,
    /// When this update was made (Unix ms).
    pub updated_at_ms: i64,
}

impl OutboxUpdate {
    pub(crate) fn validate(&self) -> Result<usize, StoreError> {
        check_key("receipt_id", &self.receipt_id)?;
        if let Some(text) = &self.last_error {
            if text.len() > MAX_ERROR_TEXT_BYTES {
                return Err(StoreError::InvalidInput(format!(
                    "outbox last_error is {} bytes, the limit is {MAX_ERROR_TEXT_BYTES}",
                    text.len()
                )));
            }
        }
        let Some(result) = self.fiscal_result.as_deref() else {
            return Ok(0);
        };
        check_blob("fiscal result", result)?;
        Ok(result.len())
    }
}

/// An outbox entry with its current bookkeeping, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The entry as queued.
    pub entry: OutboxEntry,
    /// Current stage.
    pub stage: OutboxStage,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the next attempt is due (Unix ms).
    pub next_attempt_at_ms: Option<i64>,
    /// What the register returned.
    pub fiscal_result: Option<Vec<u8>>,
    /// The job's kind, the same as `entry.kind` (copied for convenience).
    pub kind: OutboxKind,
    /// The FN document number, once fiscalised.
    pub fd_number: Option<u32>,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

/// Counts per stage of the fiscal buffer (receipts only), for `/v1/kkt/buffer/status` and the
/// metrics, plus the other register jobs still pending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Receipts in [`OutboxStage::Queued`].
    pub queued: u64,
    /// Receipts in [`OutboxStage::RegisterIntent`].
    pub register_intent: u64,
    /// Receipts in [`OutboxStage::Fiscalised`].
    pub fiscalised: u64,
    /// Receipts in [`OutboxStage::Acknowledged`] not yet purged.
    pub acknowledged: u64,
    /// Receipts in [`OutboxStage::DeadLetter`].
    pub dead_letter: u64,
    /// `created_at_ms` of the oldest receipt the OFD has not acknowledged (dead letters
    /// included).
    pub oldest_unacknowledged_created_at_ms: Option<i64>,
    /// Jobs of the other kinds neither acknowledged nor dead-lettered.
    pub other_jobs_pending: u64,
}

impl OutboxStats {
    /// Receipts the OFD has not acknowledged: the fiscal buffer's fill, dead letters included
    /// (they still count against the 30-day limit).
    pub fn unacknowledged(&self) -> u64 {
        self.queued + self.register_intent + self.fiscalised + self.dead_letter
    }
}

const ROW_COLUMNS: &str = "receipt_id, hlc, doc_id, payload, created_at_ms, stage, attempts,
                           last_error, next_attempt_at_ms, fiscal_result, updated_at_ms, kind,
                           fd_number";

pub(crate) fn insert(tx: &Transaction<'_>, entry: &OutboxEntry) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO fiscal_outbox(receipt_id, hlc, doc_id, payload, stage, attempts,
                                   created_at_ms, updated_at_ms, kind)
         VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            entry.receipt_id,
            entry.hlc,
            entry.doc_id,
            entry.payload,
            entry.created_at_ms,
            entry.kind.as_str()
        ])
    })
    .map_err(|e| StoreError::from_insert("commit batch", "outbox entry", &entry.receipt_id, e))?;
    Ok(())
}

pub(crate) fn update(tx: &Transaction<'_>, update: &OutboxUpdate) -> Result<(), StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE fiscal_outbox SET stage = ?2, attempts = ?3, last_error = ?4,
                    next_attempt_at_ms = ?5, fiscal_result = ?6, updated_at_ms = ?7,
                    fd_number = ?8
             WHERE receipt_id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                update.receipt_id,
                update.stage.as_str(),
                i64::from(update.attempts),
                update.last_error,
                update.next_attempt_at_ms,
                update.fiscal_result,
                update.updated_at_ms,
                update.fd_number.map(i64::from)
            ])
        })
        .map_err(|e| StoreError::from_sqlite("commit batch", e))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: "outbox entry",
            key: update.receipt_id.clone(),
        });
    }
    Ok(())
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<OutboxRow, StoreError>> {
    let stage_text: String = row.get(5)?;
    let attempts: i64 = row.get(6)?;
    let kind_text: String = row.get(11)?;
    let fd_number: Option<i64> = row.get(12)?;
    let receipt_id: String = row.get(0)?;
    let Some(kind) = OutboxKind::parse(&kind_text) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "outbox entry {receipt_id:?} has unknown kind {kind_text:?}"
        ))));
    };
    let entry = OutboxEntry {
        receipt_id,
        kind,
        hlc: row.get(1)?,
        doc_id: row.get(2)?,
        payload: row.get(3)?,
        created_at_ms: row.get(4)?,
    };
    let Some(stage) = OutboxStage::parse(&stage_text) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "outbox entry {:?} has unknown stage {stage_text:?}",
            entry.receipt_id
        ))));
    };
    let Ok(attempts) = u32::try_from(attempts) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "outbox entry {:?} has attempts {attempts}",
            entry.receipt_id
        ))));
    };
    let Ok(fd_number) = fd_number.map(u32::try_from).transpose() else {
        return Ok(Err(StoreError::Corrupt(format!(
            "outbox entry {:?} has FD number {fd_number:?}",
            entry.receipt_id
        ))));
    };
    Ok(Ok(OutboxRow {
        entry,
        stage,
        attempts,
        last_error: row.get(7)?,
        next_attempt_at_ms: row.get(8)?,
        fiscal_result: row.get(9)?,
        kind,
        fd_number,
        updated_at_ms: row.get(10)?,
    }))
}

fn check_limit(limit: usize) -> Result<i64, StoreError> {
    if limit > MAX_OUTBOX_READ {
        return Err(StoreError::InvalidInput(format!(
            "outbox reads return at most {MAX_OUTBOX_READ} rows, asked for {limit}"
        )));
    }
    // MAX_OUTBOX_READ fits in i64, so this cannot fail after the check above.
    i64::try_from(limit).map_err(|_| StoreError::InvalidInput(format!("limit {limit}")))
}

impl Store {
    /// One outbox entry by receipt id.
    pub fn outbox_entry(&self, receipt_id: &str) -> Result<Option<OutboxRow>, StoreError> {
        let op = "read outbox entry";
        let sql = format!("SELECT {ROW_COLUMNS} FROM fiscal_outbox WHERE receipt_id = ?1");
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row(params![receipt_id], read_row).optional())
            .map_err(|e| StoreError::from_sqlite(op, e))?
            .transpose()
    }

    /// Up to `limit` (at most [`MAX_OUTBOX_READ`]) entries in `stage`, in HLC order.
    pub fn outbox_in_stage(
        &self,
        stage: OutboxStage,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_query(
            "stage = ?1",
            &[stage.as_str()],
            limit,
            "read outbox by stage",
        )
    }

    /// Up to `limit` entries the pipeline still has to work on (queued, register intent,
    /// fiscalised — not dead letters), in HLC order: the drain order.
    pub fn outbox_to_drain(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_query(
            "stage IN (?1, ?2, ?3)",
            &[
                OutboxStage::Queued.as_str(),
                OutboxStage::RegisterIntent.as_str(),
                OutboxStage::Fiscalised.as_str(),
            ],
            limit,
            "read outbox to drain",
        )
    }

    /// The oldest job (any kind) the register still has to print — in stage queued or
    /// register intent — in HLC order. The register prints one document at a time, in order.
    pub fn outbox_next_for_register(&self) -> Result<Option<OutboxRow>, StoreError> {
        let rows = self.outbox_query(
            "stage IN (?1, ?2)",
            &[
                OutboxStage::Queued.as_str(),
                OutboxStage::RegisterIntent.as_str(),
            ],
            1,
            "read next outbox job for the register",
        )?;
        Ok(rows.into_iter().next())
    }

    /// The job the register fiscalised as document `fd`. FD numbers restart with a new FN, so
    /// if two jobs carry the same number the latest in HLC order (the current FN's) wins.
    pub fn outbox_by_fd(&self, fd: u32) -> Result<Option<OutboxRow>, StoreError> {
        let op = "read outbox entry by FD number";
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM fiscal_outbox WHERE fd_number = ?1
             ORDER BY hlc DESC, receipt_id DESC LIMIT 1"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row(params![i64::from(fd)], read_row).optional())
            .map_err(|e| StoreError::from_sqlite(op, e))?
            .transpose()
    }

    /// Up to `limit` (at most [`MAX_OUTBOX_READ`]) dead letters, in HLC order.
    pub fn outbox_dead_letters(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_in_stage(OutboxStage::DeadLetter, limit)
    }

    /// Puts every dead letter back in the pipeline (support's "retry"), in one transaction:
    /// a job with an FD number was printed, so it goes back to `fiscalised` (only the OFD is
    /// left); any other goes to `register_intent`, so the pipeline asks the register for its
    /// last document before printing — it may have printed before failing. Attempts restart at
    /// 0 with no backoff; the last error is kept for support. Returns how many were requeued.
    pub fn outbox_requeue_dead_letters(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let op = "requeue outbox dead letters";
        self.write(op, |tx| {
            tx.execute(
                "UPDATE fiscal_outbox
                 SET stage = CASE WHEN fd_number IS NOT NULL THEN 'fiscalised'
                                  ELSE 'register_intent' END,
                     attempts = 0, next_attempt_at_ms = NULL, updated_at_ms = ?1
                 WHERE stage = 'dead_letter'",
                params![now_ms],
            )
            .map_err(|e| StoreError::from_sqlite(op, e))
        })
    }

    fn outbox_query(
        &self,
        condition: &str,
        stages: &[&str],
        limit: usize,
        op: &'static str,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let limit = check_limit(limit)?;
        // Stages are ?1..?n, the limit is the last parameter, so the SQL text (and the
        // prepared-statement cache entry) does not change with the limit.
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM fiscal_outbox WHERE {condition}
             ORDER BY hlc, receipt_id LIMIT ?{}",
            stages.len() + 1
        );
        let mut values: Vec<&dyn rusqlite::ToSql> =
            stages.iter().map(|s| s as &dyn rusqlite::ToSql).collect();
        values.push(&limit);
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| StoreError::from_sqlite(op, e))?;
        let rows = stmt
            .query_map(values.as_slice(), read_row)
            .map_err(|e| StoreError::from_sqlite(op, e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(|e| StoreError::from_sqlite(op, e))??);
        }
        Ok(out)
    }

    /// Counts per stage and the oldest unacknowledged entry, over receipts only; plus how many
    /// jobs of other kinds are pending.
    pub fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let op = "read outbox stats";
        let sqlite = |e| StoreError::from_sqlite(op, e);
        let mut stats = OutboxStats::default();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT stage, COUNT(*) FROM fiscal_outbox WHERE kind = 'receipt' GROUP BY stage",
            )
            .map_err(sqlite)?;
        let counts = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(sqlite)?;
        for count in counts {
            let (stage, n) = count.map_err(sqlite)?;
            let n = row_count(n)?;
            match OutboxStage::parse(&stage) {
                Some(OutboxStage::Queued) => stats.queued = n,
                Some(OutboxStage::RegisterIntent) => stats.register_intent = n,
                Some(OutboxStage::Fiscalised) => stats.fiscalised = n,
                Some(OutboxStage::Acknowledged) => stats.acknowledged = n,
                Some(OutboxStage::DeadLetter) => stats.dead_letter = n,
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "outbox has {n} entries in unknown stage {stage:?}"
                    )))
                }
            }
        }
        stats.oldest_unacknowledged_created_at_ms = self
            .conn
            .query_row(
                "SELECT MIN(created_at_ms) FROM fiscal_outbox
                 WHERE kind = 'receipt' AND stage != 'acknowledged'",
                [],
                |row| row.get(0),
            )
            .map_err(sqlite)?;
        let other: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM fiscal_outbox
                 WHERE kind != 'receipt' AND stage NOT IN ('acknowledged', 'dead_letter')",
                [],
                |row| row.get(0),
            )
            .map_err(sqlite)?;
        stats.other_jobs_pending = row_count(other)?;
        Ok(stats)
    }

    /// Deletes acknowledged entries last updated before `older_than_ms` (retention).
    /// Returns how many were deleted.
    pub fn purge_acknowledged_outbox(&mut self, older_than_ms: i64) -> Result<usize, StoreError> {
        self.write("purge acknowledged outbox", |tx| {
            tx.execute(
                "DELETE FROM fiscal_outbox WHERE stage = 'acknowledged' AND updated_at_ms < ?1",
                params![older_than_ms],
            )
            .map_err(|e| StoreError::from_sqlite("purge acknowledged outbox", e))
        })
    }
}

/// A row count read back from SQLite; a negative one means a corrupt database.
fn row_count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("outbox row count {n} is negative")))
}
