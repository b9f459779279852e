//! The node's side of the fiscal pipeline: fiscal jobs are queued in the same commit as the
//! sale (or cash movement, or session close) that makes them, and every transition the
//! pipeline reports is persisted here — together with the fiscal stamp written back into the
//! session document, so the hub sees FN, FD, FP and the OFD status of every receipt.

use crdt_model::commit_tag;
use crdt_model::fiscal::OfdState;
use crdt_model::session::{self, FiscalTarget};
use crdt_model::{Hlc, ReceiptId};
use fiscal::pipeline::{
    FiscalJob, FiscalStamp, JobRecord, LogEntry, LogLevel as PipelineLevel, Stage, Transition,
};
use sync_engine::DocId;
use uuid::Uuid;

use super::{Node, NodeError};
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

/// The fiscal stamp stored with an outbox row, if any.
pub fn stamp_of(row: &OutboxRow) -> Option<FiscalStamp> {
    row.fiscal_result
        .as_deref()
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
}

/// The outbox row of a new fiscal job.
pub(super) fn job_entry(
    id: String,
    hlc: &Hlc,
    doc: &DocId,
    job: &FiscalJob,
    now_ms: u64,
) -> OutboxEntry {
    OutboxEntry {
        receipt_id: id,
        hlc: hlc.to_string(),
        doc_id: doc.as_str().to_owned(),
        // Serializing our own job type cannot fail.
        payload: serde_json::to_vec(job).unwrap_or_default(),
        created_at_ms: ms(now_ms),
        kind: kind_of(job),
    }
}

/// The id of a session's Z-report job.
pub(super) fn close_job_id(session: Uuid) -> String {
    format!("z:{session}")
}

impl Node {
    /// Whether sales are queued for a register (the till was started with `--register`).
    pub fn fiscal_enabled(&self) -> bool {
        self.fiscal_enabled
    }

    /// Refuses a sale when the fiscal buffer is full.
    pub(super) fn check_buffer(&self) -> Result<(), NodeError> {
        if !self.fiscal_enabled {
            return Ok(());
        }
        let stats = self.store.outbox_stats()?;
        let count = stats.unacknowledged();
        if count >= u64::from(self.buffer_capacity) {
            return Err(NodeError::BufferFull {
                count,
                capacity: self.buffer_capacity,
            });
        }
        Ok(())
    }

    /// Per-stage counts of the fiscal buffer.
    pub fn outbox_stats(&self) -> Result<OutboxStats, NodeError> {
        Ok(self.store.outbox_stats()?)
    }

    /// The oldest job the register has to work on.
    pub fn next_fiscal_job(&mut self) -> Result<Option<JobRecord>, NodeError> {
        loop {
            let Some(row) = self.store.outbox_next_for_register()? else {
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

    /// The job whose fiscal document is `fd`.
    pub fn fiscal_job_by_fd(&self, fd: u32) -> Result<Option<JobRecord>, NodeError> {
        let Some(row) = self.store.outbox_by_fd(fd)? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<FiscalJob>(&row.entry.payload)
            .ok()
            .map(|job| record_of(&row, job)))
    }

    /// The stage and stamp of receipt `id`, if it is in the outbox.
    pub fn fiscal_state(
        &self,
        id: ReceiptId,
    ) -> Result<Option<(OutboxStage, Option<FiscalStamp>)>, NodeError> {
        Ok(self
            .store
            .outbox_entry(&id.to_string())?
            .map(|row| (row.stage, stamp_of(&row))))
    }

    /// Persists what the pipeline reports.
    pub fn apply_fiscal(&mut self, transition: Transition, now_ms: u64) -> Result<(), NodeError> {
        match transition {
            Transition::Intent { id, attempts } => self.update_by_id(&id, |update| {
                update.stage = OutboxStage::RegisterIntent;
                update.attempts = attempts;
                update.next_attempt_at_ms = None;
            }),
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
            }),
            Transition::RegisterDeadLetter {
                id,
                attempts,
                error,
            } => self.update_by_id(&id, |update| {
                update.stage = OutboxStage::DeadLetter;
                update.attempts = attempts;
                update.last_error = Some(error);
            }),
            Transition::Fiscalised { id, stamp } => {
                let Some(row) = self.store.outbox_entry(&id)? else {
                    return Ok(());
                };
                let stage = if stamp.is_some() {
                    OutboxStage::Fiscalised
                } else {
                    OutboxStage::Acknowledged
                };
                self.stamp_row(&row, stage, 0, None, stamp, now_ms)?;
                if row.kind == OutboxKind::Receipt {
                    // Refunds waiting for this receipt can be made now.
                    self.run_refund_sagas(&id)?;
                }
                Ok(())
            }
            Transition::OfdAcknowledged { fd_number, at_ms } => {
                let Some(row) = self.store.outbox_by_fd(fd_number)? else {
                    return Ok(());
                };
                let stamp = stamp_of(&row).map(|mut stamp| {
                    stamp.ofd_status = OfdState::Acknowledged;
                    stamp
                });
                self.stamp_row(&row, OutboxStage::Acknowledged, 0, None, stamp, at_ms)
            }
            Transition::OfdCaughtUp {
                fn_number,
                first_unsent_fd,
                at_ms,
            } => {
                let rows = self.store.outbox_in_stage(
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
                    let before = first_unsent_fd.is_none_or(|first| stamp.fd_number < first);
                    if stamp.fn_number != fn_number || !before {
                        continue;
                    }
                    tracing::info!(
                        job = %row.entry.receipt_id,
                        fd = stamp.fd_number,
                        "the FN already had this document acknowledged: recorded now"
                    );
                    stamp.ofd_status = OfdState::Acknowledged;
                    self.stamp_row(&row, OutboxStage::Acknowledged, 0, None, Some(stamp), at_ms)?;
                }
                Ok(())
            }
            Transition::OfdRetry {
                fd_number,
                attempts,
                error,
                next_attempt_at_ms,
            } => {
                let Some(row) = self.store.outbox_by_fd(fd_number)? else {
                    return Ok(());
                };
                self.update_row(&row, row.stage, |update| {
                    update.attempts = attempts;
                    update.last_error = Some(error);
                    update.next_attempt_at_ms = Some(ms(next_attempt_at_ms));
                })
            }
            Transition::OfdDeadLetter {
                fd_number,
                attempts,
                error,
            } => {
                let Some(row) = self.store.outbox_by_fd(fd_number)? else {
                    return Ok(());
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
                )
            }
        }
    }

    /// Puts dead-lettered jobs back into the drain (support's requeue).
    pub fn requeue_dead_letters(&mut self, now_ms: i64) -> Result<usize, NodeError> {
        Ok(self.store.outbox_requeue_dead_letters(now_ms)?)
    }

    /// When the open session was opened (Unix ms): the shift clock.
    pub fn session_opened_ms(&mut self) -> Option<u64> {
        let id = self.current_session.clone()?;
        self.session_header(&id)
            .ok()
            .map(|(_, opened_ms)| opened_ms)
    }

    /// Keeps a pipeline log line for `GET /v1/kkt/buffer/logs`.
    pub fn append_fiscal_log(&mut self, entry: &LogEntry) -> Result<(), NodeError> {
        let level = match entry.level {
            PipelineLevel::Info => LogLevel::Info,
            PipelineLevel::Warn => LogLevel::Warn,
            PipelineLevel::Error => LogLevel::Error,
        };
        self.store.append_fiscal_log(&LogRecord {
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
        match self.store.outbox_entry(id)? {
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
        Ok(self.store.commit(batch)?)
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
            update.fd_number = Some(stamp.fd_number);
            update.fiscal_result = serde_json::to_vec(stamp).ok();
        }
        let mut batch = WriteBatch::new();
        batch.update_outbox(update);
        let target = match row.kind {
            OutboxKind::Receipt => row
                .entry
                .receipt_id
                .parse::<Uuid>()
                .ok()
                .map(|uuid| FiscalTarget::Receipt(ReceiptId::new(uuid))),
            OutboxKind::CloseShift => Some(FiscalTarget::ShiftClose),
            OutboxKind::CashIn | OutboxKind::CashOut => None,
        };
        let doc = DocId::new(row.entry.doc_id.clone()).ok();
        let (Some(stamp), Some(target), Some(doc)) = (stamp, target, doc) else {
            return Ok(self.store.commit(batch)?);
        };
        let record = stamp.to_record(now_ms);
        let Some(loaded) = self.replica.get_mut(&doc) else {
            // The session left the till (retention): the hub has it; keep the outbox right.
            return Ok(self.store.commit(batch)?);
        };
        if let Err(error) = session::record_fiscal(&mut loaded.doc, target, &record) {
            loaded.doc.rollback();
            tracing::error!(doc = %doc, %error, "cannot write the fiscal stamp into the session");
            return Ok(self.store.commit(batch)?);
        }
        let message = commit_tag::fiscal(&row.entry.receipt_id, stage.as_str());
        self.commit_change(&doc, message, now_ms, batch)?;
        self.note_local_change(&doc, now_ms, false);
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
