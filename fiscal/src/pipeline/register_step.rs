//! One register step: take the oldest unfinished job, reconcile it if a try may already have
//! reached the register, otherwise persist the intent and execute it, then persist the result.

use crdt_model::receipt::ReceiptKind;

use super::job::{FiscalJob, JobRecord, LogEntry, LogLevel, Stage};
use super::FiscalStamp;
use super::{JobStore, StoreFailure, Transition};
use crate::failpoint;
use crate::register::{
    DocumentKind, FiscalCorrection, FiscalDocument, FiscalReceipt, FiscalRegister, RegisterError,
    ShiftState,
};
use crate::shtrih::error::DeviceError;

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StepOutcome {
    /// A job moved on; step again at once.
    Progress,
    /// Nothing to do.
    Idle,
    /// The head job is not due before this time (Unix ms).
    WaitUntil(u64),
}

/// Register retry delays: short, because the register is local and a cashier may be waiting
/// for paper to be changed; no dead letter for transient failures, sales are never dropped.
const RETRY_BASE_MS: u64 = 500;
const RETRY_MAX_MS: u64 = 30_000;

pub(super) fn retry_delay_ms(attempts: u32) -> u64 {
    let exponent = attempts.saturating_sub(1).min(16);
    RETRY_BASE_MS
        .saturating_mul(1 << exponent)
        .min(RETRY_MAX_MS)
}

/// A register refusal that no retry can fix: the job's content is wrong.
fn is_permanent(error: &RegisterError) -> bool {
    match error {
        RegisterError::InvalidReceipt(_) | RegisterError::InvalidAmount(_) => true,
        RegisterError::Device(device) => matches!(
            device,
            DeviceError::BadParameters
                | DeviceError::PaymentsLessThanTotal
                | DeviceError::UnknownCommand
        ),
        _ => false,
    }
}

/// The outcome of a register step, with the register's last error for health.
pub(super) struct RegisterStep {
    pub outcome: StepOutcome,
    pub register_error: Option<RegisterError>,
}

pub(super) async fn step<R: FiscalRegister, S: JobStore>(
    register: &mut R,
    store: &S,
    now_ms: u64,
) -> Result<RegisterStep, StoreFailure> {
    let Some(record) = store.next_for_register().await? else {
        return Ok(RegisterStep {
            outcome: StepOutcome::Idle,
            register_error: None,
        });
    };
    if let Some(due) = record.next_attempt_at_ms {
        if due > now_ms {
            return Ok(RegisterStep {
                outcome: StepOutcome::WaitUntil(due),
                register_error: None,
            });
        }
    }
    let attempts = record.attempts.saturating_add(1);
    let result = if record.stage == Stage::RegisterIntent {
        // A try may have reached the register: never print before asking it.
        match reconcile(register, &record).await {
            Ok(Some(done)) => Ok(done),
            Ok(None) => intend_and_execute(register, store, &record, attempts).await?,
            Err(error) => Err(error),
        }
    } else {
        intend_and_execute(register, store, &record, attempts).await?
    };
    match result {
        Ok(stamp) => {
            failpoint::hit(failpoint::REGISTER_DONE);
            store
                .apply(Transition::Fiscalised {
                    id: record.id.clone(),
                    stamp,
                })
                .await?;
            Ok(RegisterStep {
                outcome: StepOutcome::Progress,
                register_error: None,
            })
        }
        Err(error) if is_permanent(&error) => {
            let message = format!("register refused {} for good: {error}", record.job.kind());
            store
                .log(log_line(now_ms, LogLevel::Error, &record, &message))
                .await;
            store
                .apply(Transition::RegisterDeadLetter {
                    id: record.id.clone(),
                    attempts,
                    error: message,
                })
                .await?;
            Ok(RegisterStep {
                outcome: StepOutcome::Progress,
                register_error: Some(error),
            })
        }
        Err(error) => {
            let next = now_ms.saturating_add(retry_delay_ms(attempts));
            let message = format!("register: {error}");
            // The first failure and every tenth are logged; the rest only counted.
            if attempts == 1 || attempts % 10 == 0 {
                store
                    .log(log_line(now_ms, LogLevel::Error, &record, &message))
                    .await;
            }
            store
                .apply(Transition::RegisterRetry {
                    id: record.id.clone(),
                    attempts,
                    error: message,
                    next_attempt_at_ms: next,
                })
                .await?;
            Ok(RegisterStep {
                outcome: StepOutcome::WaitUntil(next),
                register_error: Some(error),
            })
        }
    }
}

/// Persists the intent, then executes: the order that makes a crash in between safe.
async fn intend_and_execute<R: FiscalRegister, S: JobStore>(
    register: &mut R,
    store: &S,
    record: &JobRecord,
    attempts: u32,
) -> Result<Result<Option<FiscalStamp>, RegisterError>, StoreFailure> {
    store
        .apply(Transition::Intent {
            id: record.id.clone(),
            attempts,
        })
        .await?;
    failpoint::hit(failpoint::INTENT_PERSISTED);
    Ok(execute(register, &record.job).await)
}

fn log_line(now_ms: u64, level: LogLevel, record: &JobRecord, message: &str) -> LogEntry {
    LogEntry {
        at_ms: now_ms,
        level,
        stage: "register".to_owned(),
        job_id: Some(record.id.clone()),
        message: message.to_owned(),
    }
}

/// After a try whose outcome is unknown: did the register make the job's document?
/// `Ok(Some(result))` when it did (or the job is one that cannot be checked and was sent).
async fn reconcile<R: FiscalRegister>(
    register: &mut R,
    record: &JobRecord,
) -> Result<Option<Option<FiscalStamp>>, RegisterError> {
    // A receipt begun but never closed made no document; clear it before anything else.
    register.cancel_open_receipt().await?;
    match &record.job {
        FiscalJob::Receipt { receipt, .. } => {
            let last = register.last_document().await?;
            Ok(last
                .filter(|document| document.receipt_id == Some(receipt.id))
                .map(|document| Some(FiscalStamp::from_document(&document))))
        }
        FiscalJob::CloseShift { .. } => {
            let status = register.status().await?;
            if status.shift != ShiftState::Closed {
                return Ok(None);
            }
            let last = register.last_document().await?;
            Ok(Some(
                last.filter(|document| document.kind == DocumentKind::ShiftClose)
                    .map(|document| FiscalStamp::from_document(&document)),
            ))
        }
        // Cash movements make no document and cannot be checked: at most once is chosen over
        // at least once (the drawer counter is not fiscal; the session document has the truth).
        FiscalJob::CashIn { .. } | FiscalJob::CashOut { .. } => Ok(Some(None)),
    }
}

/// Executes a job on the register. Opens the shift when needed; a shift past 24 h is closed
/// (Z report) and a new one opened first, so a receipt never lands in an expired shift.
async fn execute<R: FiscalRegister>(
    register: &mut R,
    job: &FiscalJob,
) -> Result<Option<FiscalStamp>, RegisterError> {
    match job {
        FiscalJob::Receipt { receipt, cashier } => {
            ensure_shift(register, cashier).await?;
            let document = match receipt.kind {
                ReceiptKind::Correction => {
                    let at = u32::try_from(receipt.hlc.physical_ms / 1000).unwrap_or(u32::MAX);
                    register
                        .correction(&FiscalCorrection::from_receipt(receipt, at)?)
                        .await?
                }
                ReceiptKind::Sale | ReceiptKind::Refund => {
                    register
                        .receipt(&FiscalReceipt::from_receipt(receipt)?)
                        .await?
                }
            };
            Ok(Some(FiscalStamp::from_document(&document)))
        }
        FiscalJob::CloseShift { cashier } => {
            let status = register.status().await?;
            if status.shift == ShiftState::Closed {
                return Ok(None);
            }
            let document: FiscalDocument = register.close_shift(cashier).await?;
            Ok(Some(FiscalStamp::from_document(&document)))
        }
        FiscalJob::CashIn { amount } => {
            register.cash_in(*amount).await?;
            Ok(None)
        }
        FiscalJob::CashOut { amount } => {
            register.cash_out(*amount).await?;
            Ok(None)
        }
    }
}

async fn ensure_shift<R: FiscalRegister>(
    register: &mut R,
    cashier: &str,
) -> Result<(), RegisterError> {
    match register.shift_state().await? {
        ShiftState::Open => Ok(()),
        ShiftState::Closed => register.open_shift(cashier).await.map(drop),
        ShiftState::Expired => {
            tracing::warn!("register shift open for 24 h: closing it (Z) and opening a new one");
            register.close_shift(cashier).await?;
            register.open_shift(cashier).await.map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(retry_delay_ms(1), 500);
        assert_eq!(retry_delay_ms(2), 1_000);
        assert_eq!(retry_delay_ms(7), 30_000);
        assert_eq!(retry_delay_ms(u32::MAX), 30_000);
    }

    #[test]
    fn only_content_errors_are_permanent() {
        assert!(is_permanent(&RegisterError::Device(
            DeviceError::BadParameters
        )));
        assert!(!is_permanent(&RegisterError::Device(DeviceError::PaperOut)));
        assert!(!is_permanent(&RegisterError::Timeout { stage: "answer" }));
    }
}
