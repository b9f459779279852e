//! What the pipeline works on ([`FiscalJob`], stored as JSON in the till's outbox), where a
//! job is ([`Stage`]) and the log lines support reads ([`LogEntry`]). What the register gives
//! back is `crdt_model::fiscal::FiscalStamp`, shared with the session document.

use crdt_model::{Kopecks, Receipt, ReceiptId};
use serde::{Deserialize, Serialize};

/// One unit of fiscal work, in the order the till made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum FiscalJob {
    /// A sale, refund or correction receipt (FD form 3 or 31).
    Receipt {
        /// The receipt as stored in the session document (boxed: it dwarfs the other jobs).
        receipt: Box<Receipt>,
        /// Who sells (opens the register's shift if it is closed).
        cashier: String,
    },
    /// The till's session closed: the Z report (FD form 5).
    CloseShift {
        /// Who closes.
        cashier: String,
    },
    /// Cash put into the drawer (no FD).
    CashIn {
        /// How much.
        amount: Kopecks,
    },
    /// Cash taken out of the drawer (no FD).
    CashOut {
        /// How much.
        amount: Kopecks,
    },
}

impl FiscalJob {
    /// The receipt id the register document carries, for reconciliation.
    pub fn receipt_id(&self) -> Option<ReceiptId> {
        match self {
            FiscalJob::Receipt { receipt, .. } => Some(receipt.id),
            _ => None,
        }
    }

    /// Whether the job counts against the fiscal buffer (a receipt).
    pub fn is_receipt(&self) -> bool {
        matches!(self, FiscalJob::Receipt { .. })
    }

    /// A short name for logs and the outbox's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            FiscalJob::Receipt { .. } => "receipt",
            FiscalJob::CloseShift { .. } => "close_shift",
            FiscalJob::CashIn { .. } => "cash_in",
            FiscalJob::CashOut { .. } => "cash_out",
        }
    }
}

/// Where a job is. Mirrors the till's outbox stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Not yet sent to the register.
    Queued,
    /// Sent (or about to be) — on the next try, ask the register first.
    RegisterIntent,
    /// The register made the document; the OFD has not acknowledged it.
    Fiscalised,
    /// Acknowledged by the OFD (or needs no acknowledgement): done.
    Acknowledged,
    /// Given up; waits for support.
    DeadLetter,
}

/// A job with its bookkeeping, as the store hands it to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The job id (the receipt id for receipts).
    pub id: String,
    /// The job's HLC (the drain order).
    pub hlc: String,
    /// What to do.
    pub job: FiscalJob,
    /// Where it is.
    pub stage: Stage,
    /// Attempts so far (register attempts before fiscalisation, OFD attempts after).
    pub attempts: u32,
    /// Not before this time (Unix ms).
    pub next_attempt_at_ms: Option<u64>,
}

/// Severity of a pipeline log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Progress worth keeping (drained after an outage, breaker closed).
    Info,
    /// A retry or a condition support should watch.
    Warn,
    /// A failure: dead letter, register refusal, breaker opened.
    Error,
}

impl LogLevel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }

    /// Parses `INFO` / `WARN` / `WARNING` / `ERROR` (any case).
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.to_ascii_uppercase().as_str() {
            "INFO" => Some(LogLevel::Info),
            "WARN" | "WARNING" => Some(LogLevel::Warn),
            "ERROR" => Some(LogLevel::Error),
            _ => None,
        }
    }
}

/// One line of the pipeline's log, kept by the till for `GET /v1/kkt/buffer/logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When (Unix ms).
    pub at_ms: u64,
    /// Severity.
    pub level: LogLevel,
    /// `register`, `ofd` or `refund`.
    pub stage: String,
    /// The job concerned, if one.
    pub job_id: Option<String>,
    /// What happened, for a person.
    pub message: String,
}
