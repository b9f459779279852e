//! The till's support answers: the buffer status the page polls, the fiscal routes (X report,
//! breaker reset, the pipeline's log, the dead-letter queue) and the forced sync.
//!
//! Answers that the till used to build as JSON maps keep their fields in alphabetical order
//! (declared so here), which is the order those maps wrote them in.

use serde::{Deserialize, Serialize};

/// `GET /v1/kkt/buffer/status` answer. Read leniently (`#[serde(default)]`): the page shows
/// whatever part it gets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BufferStatus {
    /// Buffer capacity (`--buffer-capacity`).
    pub total_capacity: u32,
    /// Receipts in the buffer: not acknowledged by the OFD on a fiscal till, else not on the hub.
    pub current_queued: u64,
    /// `current_queued` in percent of `total_capacity`.
    pub percent_full: f64,
    /// `none`, `warning` (≥ 80 %), `critical` (≥ 90 %) or `full`.
    pub alert: String,
    /// The till's link to the hub: `online`, `degraded` or `offline`.
    pub network_status: String,
    /// The OFD breaker: `CLOSED`, `HALF_OPEN` or `OPEN` (`CLOSED` without a register).
    pub circuit_state: String,
    /// Last successful sync with the hub (RFC 3339).
    pub last_sync: Option<String>,
    /// The same in Unix ms.
    pub last_sync_ms: Option<u64>,
    /// Age of the oldest receipt in the buffer.
    pub oldest_unacknowledged_age_seconds: u64,
    /// The FN blocks at this age (30 days).
    pub oldest_unacknowledged_limit_seconds: u64,
    /// Age of the open shift (0 when none is open).
    pub shift_age_seconds: u64,
    /// A shift may stay open this long (24 h).
    pub shift_limit_seconds: u64,
    /// Dead-lettered fiscal jobs.
    pub dlq_size: u64,
    /// Receipts the hub does not hold yet.
    pub unsynced_receipts: u64,
    /// Whether a sync with the hub is running now.
    pub sync_running: bool,
    /// Fiscal jobs per stage (fiscal tills only; `null` otherwise).
    pub stages: Option<BufferStages>,
    /// The register.
    pub register: RegisterView,
}

/// Fiscal jobs per stage of the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferStages {
    /// Acknowledged by the OFD, not yet purged.
    pub acknowledged: u64,
    /// Given up on; waiting for support (`POST /v1/kkt/dlq/requeue`).
    pub dead_letter: u64,
    /// Printed by the register, not yet acknowledged by the OFD.
    pub fiscalised: u64,
    /// Waiting for the register.
    pub queued: u64,
    /// Sent to the register; its answer is not recorded yet.
    pub register_intent: u64,
}

/// The register as status and health report it: `{"status": "not_configured"}` on a till
/// without one, else every detail (`null` where unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterView {
    /// The register's details, when the till has one.
    #[serde(flatten)]
    pub details: Option<RegisterDetails>,
    /// `ok`, `not_configured`, or the pipeline's register state.
    pub status: String,
}

/// What the pipeline knows of its register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterDetails {
    /// The FN's number, once read.
    pub fn_number: Option<String>,
    /// The register's last error.
    pub last_error: Option<String>,
    /// The FD the OFD refused for good, blocking the queue.
    pub ofd_blocked_fd: Option<u32>,
    /// The OFD's last error.
    pub ofd_error: Option<String>,
    /// The register is out of paper.
    pub paper_out: bool,
    /// The register's shift: `closed`, `open` or `expired`.
    pub shift: Option<String>,
}

/// `POST /v1/session/x_report` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XReportAnswer {
    /// Always `printed`.
    pub status: String,
}

/// `POST /v1/kkt/circuit_breaker/reset` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerResetAnswer {
    /// What happens next.
    pub message: String,
    /// Always `CLOSED`.
    pub state: String,
}

/// `GET /v1/kkt/buffer/logs` answer, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntries {
    /// The log lines.
    pub entries: Vec<LogEntry>,
}

/// One line of the fiscal pipeline's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When (RFC 3339).
    pub at: String,
    /// `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// The job this line is about (a receipt's or a movement's id).
    pub receipt_id: Option<String>,
    /// What happened.
    pub message: String,
    /// The pipeline's stage.
    pub stage: String,
}

/// `GET /v1/kkt/dlq` answer, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetters {
    /// The dead-lettered jobs.
    pub entries: Vec<DeadLetter>,
}

/// A fiscal job the pipeline gave up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Attempts made.
    pub attempts: u32,
    /// Its fiscal document number, if the register made one.
    pub fd: Option<u32>,
    /// `receipt`, `close_shift`, `cash_in`, ….
    pub kind: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The job's id.
    pub receipt_id: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// `POST /v1/kkt/dlq/requeue` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequeueAnswer {
    /// Jobs put back into the drain.
    pub requeued: u64,
}

/// `POST /v1/kkt/buffer/sync` answer (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceSyncAnswer {
    /// What happens next.
    pub message: String,
    /// Always `started`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_view_writes_not_configured_alone() {
        let view = RegisterView {
            details: None,
            status: "not_configured".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&view).expect("json"),
            r#"{"status":"not_configured"}"#
        );
        let configured = RegisterView {
            details: Some(RegisterDetails::default()),
            status: "ok".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&configured).expect("json"),
            r#"{"fn_number":null,"last_error":null,"ofd_blocked_fd":null,"ofd_error":null,"paper_out":false,"shift":null,"status":"ok"}"#
        );
    }

    #[test]
    fn buffer_status_reads_leniently() {
        let body = r#"{"total_capacity": 200, "current_queued": 3, "percent_full": 1.5,
            "network_status": "online", "circuit_state": "CLOSED", "alert": "none",
            "register": {"status": "not_configured"}, "extra": 1}"#;
        let status: BufferStatus = serde_json::from_str(body).expect("parses");
        assert_eq!(status.current_queued, 3);
        assert_eq!(status.register.details, None);
        let sparse: BufferStatus = serde_json::from_str("{}").expect("parses");
        assert_eq!(sparse.total_capacity, 0);
    }
}
