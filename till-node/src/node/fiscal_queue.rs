//! [`FiscalQueue`]: the till's side of the fiscal pipeline. Fiscal jobs are queued in the same
//! commit as the sale (or cash movement, or shift close) that makes them ([`job_entry`]), and
//! every transition the pipeline reports is persisted here — together with the fiscal stamp
//! written back into the shift's document through [`Core::commit`], so the hub sees FN, FD, FP
//! and the OFD status of every receipt.
//!
//! The mappings between the store's outbox rows and the pipeline's [`JobRecord`]s live here
//! too ([`stamp_of`], `record_of`, `kind_of`, `stage_of`). A value that cannot be encoded or a
//! stored job that cannot be read is an error with a log line, never a silent default.

use crdt_model::commit_tag;
use crdt_model::fiscal::OfdState;
use crdt_model::session::{self, FiscalTarget};
use crdt_model::{Hlc, ReceiptId};
use fiscal::pipeline::{
    FiscalJob, FiscalStamp, JobRecord, LogEntry, LogLevel as PipelineLevel, Stage, Transition,
};
use sync_engine::DocId;
use uuid::Uuid;

use super::core::Core;
use super::error::NodeError;
use crate::store::{
    LogLevel, LogRecord, OutboxEntry, OutboxKind, OutboxRow, OutboxStage, OutboxStats,
    OutboxUpdate, WriteBatch,
};

fn kind_of(job: &FiscalJob) -> OutboxKind {
    match job {
        FiscalJob::Receipt { .. } => OutboxKind::Receipt,
        FiscalJob::CloseShift { .. } => OutboxKind::CloseShift,
        FiscalJob::CashIn { .. } => OutboxKind::CashIn,
        FiscalJob::CashOut { .. } => OutboxKind::CashOut,
    }
}

fn stage_of(stage: OutboxStage) -> Stage {
    match stage {
        OutboxStage::Queued => Stage::Queued,
        OutboxStage::RegisterIntent => Stage::RegisterIntent,
        OutboxStage::Fiscalised => Stage::Fiscalised,
        OutboxStage::Acknowledged => Stage::Acknowledged,
        OutboxStage::DeadLetter => Stage::DeadLetter,
    }
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The fiscal stamp stored with an outbox row, if any. One that does not read back is logged
/// and treated as absent (the row's stage still says what happened).
pub fn stamp_of(row: &OutboxRow) -> Option<FiscalStamp> {
    let bytes = row.fiscal_result.as_deref()?;
    match serde_json::from_slice(bytes) {
        Ok(stamp) => Some(stamp),
        Err(error) => {
            tracing::error!(job = %row.entry.receipt_id, %error, "unreadable fiscal stamp");
            None
        }
    }
}

/// The outbox row of a new fiscal job. A job that does not encode is refused: an empty
/// payload would be a job the register could never make.
pub(super) fn job_entry(
    id: String,
    hlc: &Hlc,
    doc: &DocId,
    job: &FiscalJob,
    now_ms: u64,
) -> Result<OutboxEntry, NodeError> {
    let payload = serde_json::to_vec(job).map_err(|e| NodeError::encode("a fiscal job", &e))?;
    Ok(OutboxEntry {
        receipt_id: id,
        hlc: hlc.to_string(),
        doc_id: doc.as_str().to_owned(),
        payload,
        created_at_ms: ms(now_ms),
        kind: kind_of(job),
    })
}

/// The id of a session's Z-report job.
pub(super) fn close_job_id(session: Uuid) -> String {
    format!("z:{session}")
}

/// Whether the till queues fiscal jobs and how many it may hold unacknowledged.
#[derive(Debug, Clone, Copy)]
pub struct FiscalSettings {
    /// Queue fiscal jobs for a register (the till was started with `--register`).
    pub enabled: bool,
    /// Capacity of the fiscal buffer (receipts the OFD has not acknowledged).
    pub buffer_capacity: u32,
}

impl FiscalSettings {
    /// Refuses a sale when the fiscal buffer is full.
    pub(super) fn check_buffer(&self, core: &Core) -> Result<(), NodeError> {
        if !self.enabled {
            return Ok(());
        }
        let stats = core.store.outbox_stats()?;
        let count = stats.unacknowledged();
        if count >= u64::from(self.buffer_capacity) {
            return Err(NodeError::BufferFull {
                count,
                capacity: self.buffer_capacity,
            });
        }
        Ok(())
    }

    /// Sets the buffer and clock gauges from the current state. The buffer is the fiscal
    /// one when a register is attached, else "not on the hub".
    pub(super) fn refresh_gauges(&self, core: &Core) {
        let metrics = &core.metrics;
        let unsynced = core.replica.unsynced_total();
        let unsynced_count = i64::try_from(unsynced.receipts).unwrap_or(i64::MAX);
        metrics.unsynced_receipts.set(unsynced_count);
        let buffered = if self.enabled {
            core.store
                .outbox_stats()
                .map_or(unsynced.receipts, |stats| {
                    usize::try_from(stats.unacknowledged()).unwrap_or(usize::MAX)
                })
        } else {
            unsynced.receipts
        };
        metrics
            .buffer_size
            .set(i64::try_from(buffered).unwrap_or(i64::MAX));
        metrics
            .buffer_percent_full
            .set(super::percent(buffered, self.buffer_capacity));
        metrics
            .hlc_drift_seconds
            .set(core.hlc_drift_ms() as f64 / 1000.0);
    }
}

/// The fiscal queue over the core: the register's next job, transitions, support's reads.
#[derive(Debug)]
pub struct FiscalQueue<'a> {
    pub(super) core: &'a mut Core,
    pub(super) settings: FiscalSettings,
}

impl FiscalQueue<'_> {
    /// Whether sales are queued for a register (the till was started with `--register`).
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Per-stage counts of the fiscal buffer.
    pub fn outbox_stats(&self) -> Result<OutboxStats, NodeError> {
        Ok(self.core.store.outbox_stats()?)
    }

    /// The oldest job the register has to work on.
    pub fn next_job(&mut self) -> Result<Option<JobRecord>, NodeError> {
        loop {
            let Some(row) = self.core.store.outbox_next_for_register()? else {
                return Ok(None);
            };
            match serde_json::from_slice::<FiscalJob>(&row.entry.payload) {
                Ok(job) => return Ok(Some(record_of(&row, job))),
                Err(error) => {
                    // Not ours to guess: park it for support and go on with the next one.
                    let message = format!("unreadable fiscal job: {error}");
                    tracing::error!(job = %row.entry.receipt_id, %message);
                    self.update_row(&row, OutboxStage::DeadLetter, |update| {
                        update.last_error = Some(message);
                    })?;
                }
            }
        }
    }

    /// The job whose fiscal document is `fd` (`None` also when its stored job does not read
    /// back, which is logged: the pipeline then treats the document as not its own).
    pub fn job_by_fd(&self, fd: u32) -> Result<Option<JobRecord>, NodeError> {
        let Some(row) = self.core.store.outbox_by_fd(fd)? else {
            return Ok(None);
        };
        match serde_json::from_slice::<FiscalJob>(&row.entry.payload) {
            Ok(job) => Ok(Some(record_of(&row, job))),
            Err(error) => {
                tracing::error!(job = %row.entry.receipt_id, fd, %error, "unreadable fiscal job");
                Ok(None)
            }
        }
    }

    /// The stage and stamp of receipt `id`, if it is in the outbox.
    pub fn fiscal_state(
        &self,
        id: ReceiptId,
    ) -> Result<Option<(OutboxStage, Option<FiscalStamp>)>, NodeError> {
        Ok(self
            .core
            .store
            .outbox_entry(&id.to_string())?
            .map(|row| (row.stage, stamp_of(&row))))
    }

    /// Persists what the pipeline reports. Returns the receipt just fiscalised, whose waiting
    /// refunds can be made now.
    pub fn apply(
        &mut self,
        transition: Transition,
        now_ms: u64,
    ) -> Result<Option<String>, NodeError> {
        match transition {
            Transition::Intent { id, attempts } => self.update_by_id(&id, |update| {
                update.stage = OutboxStage::RegisterIntent;
                update.attempts = attempts;
                update.next_attempt_at_ms = None;
            })?,
            Transition::RegisterRetry {
                id,
                attempts,
                error,
                next_attempt_at_ms,
            } => self.update_by_id(&id, |update| {
                update.stage = OutboxStage::RegisterIntent;
                update.attempts = attempts;
                update.last_error = Some(error);
                update.next_attempt_at_ms = Some(ms(next_attempt_at_ms));
            })?,
            Transition::RegisterDeadLetter {
                id,
                attempts,
                error,
            } => self.update_by_id(&id, |update| {
                update.stage = OutboxStage::DeadLetter;
                update.attempts = attempts;
                update.last_error = Some(error);
            })?,
            Transition::Fiscalised { id, stamp } => {
                let Some(row) = self.core.store.outbox_entry(&id)? else {
                    return Ok(None);
                };
                let stage = if stamp.is_some() {
                    OutboxStage::Fiscalised
                } else {
                    OutboxStage::Acknowledged
                };
                self.stamp_row(&row, stage, 0, None, stamp, now_ms)?;
                if row.kind == OutboxKind::Receipt {
                    // Refunds waiting for this receipt can be made now.
                    return Ok(Some(id));
                }
            }
            Transition::OfdAcknowledged { fd_number, at_ms } => {
                let Some(row) = self.core.store.outbox_by_fd(fd_number)? else {
                    return Ok(None);
                };
                let stamp = stamp_of(&row).map(|mut stamp| {
                    stamp.ofd_status = OfdState::Acknowledged;
                    stamp
                });
                self.stamp_row(&row, OutboxStage::Acknowledged, 0, None, stamp, at_ms)?;
            }
            Transition::OfdCaughtUp {
                fn_number,
                first_unsent_fd,
                at_ms,
            } => {
                let rows = self.core.store.outbox_in_stage(
                    OutboxStage::Fiscalised,
                    crate::store::outbox::MAX_OUTBOX_READ,
                )?;
                tracing::info!(
                    fn_number,
                    first_unsent_fd,
                    fiscalised = rows.len(),
                    "reconciling OFD acknowledgements with the FN"
                );
                for row in rows {
                    let Some(mut stamp) = stamp_of(&row) else {
                        continue;
                    };
                    let before =
                        first_unsent_fd.is_none_or(|first| stamp.numbers.fd_number < first);
                    if stamp.numbers.fn_number != fn_number || !before {
                        continue;
                    }
                    tracing::info!(
                        job = %row.entry.receipt_id,
                        fd = stamp.numbers.fd_number,
                        "the FN already had this document acknowledged: recorded now"
                    );
                    stamp.ofd_status = OfdState::Acknowledged;
                    self.stamp_row(&row, OutboxStage::Acknowledged, 0, None, Some(stamp), at_ms)?;
                }
            }
            Transition::OfdRetry {
                fd_number,
                attempts,
                error,
                next_attempt_at_ms,
            } => {
                let Some(row) = self.core.store.outbox_by_fd(fd_number)? else {
                    return Ok(None);
                };
                self.update_row(&row, row.stage, |update| {
                    update.attempts = attempts;
                    update.last_error = Some(error);
                    update.next_attempt_at_ms = Some(ms(next_attempt_at_ms));
                })?;
            }
            Transition::OfdDeadLetter {
                fd_number,
                attempts,
                error,
            } => {
                let Some(row) = self.core.store.outbox_by_fd(fd_number)? else {
                    return Ok(None);
                };
                let stamp = stamp_of(&row).map(|mut stamp| {
                    stamp.ofd_status = OfdState::DeadLetter;
                    stamp
                });
                self.stamp_row(
                    &row,
                    OutboxStage::DeadLetter,
                    attempts,
                    Some(error),
                    stamp,
                    now_ms,
                )?;
            }
        }
        Ok(None)
    }

    /// Puts dead-lettered jobs back into the drain (support's requeue).
    pub fn requeue_dead_letters(&mut self, now_ms: i64) -> Result<usize, NodeError> {
        Ok(self.core.store.outbox_requeue_dead_letters(now_ms)?)
    }

    /// Keeps a pipeline log line for `GET /v1/kkt/buffer/logs`.
    pub fn append_fiscal_log(&mut self, entry: &LogEntry) -> Result<(), NodeError> {
        let level = match entry.level {
            PipelineLevel::Info => LogLevel::Info,
            PipelineLevel::Warn => LogLevel::Warn,
            PipelineLevel::Error => LogLevel::Error,
        };
        self.core.store.append_fiscal_log(&LogRecord {
            at_ms: ms(entry.at_ms),
            level,
            stage: entry.stage.clone(),
            job_id: entry.job_id.clone(),
            message: entry.message.clone(),
        })?;
        Ok(())
    }

    fn update_by_id(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut OutboxUpdate),
    ) -> Result<(), NodeError> {
        match self.core.store.outbox_entry(id)? {
            Some(row) => self.update_row(&row, row.stage, change),
            None => Ok(()),
        }
    }

    fn update_row(
        &mut self,
        row: &OutboxRow,
        stage: OutboxStage,
        change: impl FnOnce(&mut OutboxUpdate),
    ) -> Result<(), NodeError> {
        let mut update = base_update(row, stage);
        change(&mut update);
        let mut batch = WriteBatch::new();
        batch.update_outbox(update);
        Ok(self.core.store.commit(batch)?)
    }

    /// Moves a row to `stage` with `stamp` and writes the stamp into the session document in
    /// the same commit.
    fn stamp_row(
        &mut self,
        row: &OutboxRow,
        stage: OutboxStage,
        attempts: u32,
        last_error: Option<String>,
        stamp: Option<FiscalStamp>,
        now_ms: u64,
    ) -> Result<(), NodeError> {
        let mut update = base_update(row, stage);
        update.attempts = attempts;
        update.last_error = last_error;
        update.next_attempt_at_ms = None;
        if let Some(stamp) = &stamp {
            update.fd_number = Some(stamp.numbers.fd_number);
            let encoded =
                serde_json::to_vec(stamp).map_err(|e| NodeError::encode("a fiscal stamp", &e))?;
            update.fiscal_result = Some(encoded);
        }
        let mut batch = WriteBatch::new();
        batch.update_outbox(update);
        // A row whose receipt or document id does not parse keeps its outbox state; the
        // stamp cannot reach a document, and support has to see why.
        let target = match row.kind {
            OutboxKind::Receipt => match row.entry.receipt_id.parse::<Uuid>() {
                Ok(uuid) => Some(FiscalTarget::Receipt(ReceiptId::new(uuid))),
                Err(error) => {
                    tracing::error!(job = %row.entry.receipt_id, %error, "a receipt job with an unreadable receipt id: stamp not written into the document");
                    None
                }
            },
            OutboxKind::CloseShift => Some(FiscalTarget::ShiftClose),
            OutboxKind::CashIn | OutboxKind::CashOut => None,
        };
        let doc = match DocId::new(row.entry.doc_id.clone()) {
            Ok(doc) => Some(doc),
            Err(error) => {
                tracing::error!(job = %row.entry.receipt_id, doc = %row.entry.doc_id, %error, "a fiscal job with an unreadable document id: stamp not written into the document");
                None
            }
        };
        let (Some(stamp), Some(target), Some(doc)) = (stamp, target, doc) else {
            return Ok(self.core.store.commit(batch)?);
        };
        let record = stamp.to_record(now_ms);
        let mut commit = self.core.begin("fiscal stamp");
        let Some(loaded) = self.core.replica.get_mut(&doc) else {
            // The shift left the till (retention): the hub has it; keep the outbox right.
            return Ok(self.core.store.commit(batch)?);
        };
        if let Err(error) = session::record_fiscal(&mut loaded.doc, target, &record) {
            loaded.doc.rollback();
            tracing::error!(doc = %doc, %error, "cannot write the fiscal stamp into the session");
            return Ok(self.core.store.commit(batch)?);
        }
        let message = commit_tag::fiscal(&row.entry.receipt_id, stage.as_str());
        commit.side = batch;
        self.core.seal(&mut commit, &doc, message, now_ms)?;
        self.core.commit(commit)?;
        self.core.note_local_change(&doc, now_ms, false);
        self.settings.refresh_gauges(self.core);
        Ok(())
    }
}

fn base_update(row: &OutboxRow, stage: OutboxStage) -> OutboxUpdate {
    OutboxUpdate {
        receipt_id: row.entry.receipt_id.clone(),
        stage,
        attempts: row.attempts,
        last_error: row.last_error.clone(),
        next_attempt_at_ms: row.next_attempt_at_ms,
        fiscal_result: row.fiscal_result.clone(),
        updated_at_ms: ms(crate::time::now_ms()),
        fd_number: row.fd_number,
    }
}

fn record_of(row: &OutboxRow, job: FiscalJob) -> JobRecord {
    JobRecord {
        id: row.entry.receipt_id.clone(),
        hlc: row.entry.hlc.clone(),
        job,
        stage: stage_of(row.stage),
        attempts: row.attempts,
        next_attempt_at_ms: row.next_attempt_at_ms.and_then(|at| u64::try_from(at).ok()),
    }
}
