//! `GET /v1/health`: the till's overall status and one entry per component. Fields are declared
//! in alphabetical order, the order the till wrote them in when it built this answer as a JSON
//! map, so the bytes stay the same.

use serde::{Deserialize, Serialize};

use crate::status::RegisterView;

/// `GET /v1/health` answer (200, or 503 when `unhealthy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// One entry per component.
    pub components: HealthComponents,
    /// `healthy`, `degraded` or `unhealthy` (writes stopped after a storage failure).
    pub status: String,
}

/// The components of [`Health`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthComponents {
    /// The receipt buffer.
    pub buffer: BufferHealth,
    /// The OFD breaker.
    pub circuit_breaker: BreakerHealth,
    /// The HLC against the wall clock and the hub's timestamps.
    pub clock: ClockHealth,
    /// The legal clocks.
    pub fiscal: FiscalHealth,
    /// The link to the hub.
    pub hub_link: HubLinkHealth,
    /// The register.
    pub register: RegisterView,
    /// The cash session.
    pub session: SessionHealth,
    /// The till's SQLite store.
    pub storage: StorageHealth,
}

/// The buffer's fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BufferHealth {
    /// `none`, `warning`, `critical` or `full`.
    pub alert: String,
    /// Receipts in the buffer.
    pub current_queued: u64,
    /// Fill in percent.
    pub percent_full: f64,
    /// `ok`, or `filling` from 80 %.
    pub status: String,
    /// Capacity.
    pub total_capacity: u32,
}

/// The OFD breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerHealth {
    /// False on a till without a register (the breaker then reads closed).
    pub configured: bool,
    /// Failures counted toward opening.
    pub failure_count: u32,
    /// The last failure (RFC 3339).
    pub last_failure_time: Option<String>,
    /// When the OFD is tried again (RFC 3339).
    pub next_attempt_time: Option<String>,
    /// Times the breaker opened.
    pub opens_total: u64,
    /// `CLOSED`, `HALF_OPEN` or `OPEN`.
    pub state: String,
    /// `ok` when closed, else `degraded`.
    pub status: String,
}

/// The clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockHealth {
    /// How far the HLC runs ahead of the wall clock.
    pub hlc_drift_seconds: f64,
    /// The last timestamp from the hub too far ahead to adopt.
    pub last_rejected: Option<RejectedClock>,
    /// How many such timestamps arrived since the start.
    pub remote_rejected: u64,
    /// `ok`, `drifting` (60 s) or `degraded` (a timestamp was refused).
    pub status: String,
}

/// A timestamp from the hub the clock refused to adopt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedClock {
    /// When it arrived (RFC 3339).
    pub at: String,
    /// The document that carried it.
    pub doc: String,
    /// The timestamp.
    pub hlc: String,
    /// What to check.
    pub message: String,
}

/// The legal clocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalHealth {
    /// Dead-lettered fiscal jobs.
    pub dlq_size: u64,
    /// Age of the oldest receipt the OFD has not acknowledged.
    pub oldest_unacknowledged_age_seconds: u64,
    /// The FN blocks at this age (30 days).
    pub oldest_unacknowledged_limit_seconds: u64,
    /// Age of the open shift.
    pub shift_age_seconds: u64,
    /// A shift may stay open this long (24 h).
    pub shift_limit_seconds: u64,
    /// `ok`, `warning` or `critical`.
    pub status: String,
}

/// The link to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubLinkHealth {
    /// Failed sync rounds in a row.
    pub consecutive_failures: u32,
    /// When a sync was last attempted (Unix ms).
    pub last_attempt_ms: Option<u64>,
    /// Why the last sync failed, if it did.
    pub last_error: Option<String>,
    /// Last successful sync (RFC 3339).
    pub last_sync: Option<String>,
    /// The same in Unix ms.
    pub last_sync_ms: Option<u64>,
    /// Documents too large to send to the hub.
    pub oversized_docs: Vec<String>,
    /// `online`, `degraded` or `offline`.
    pub status: String,
}

/// The cash session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHealth {
    /// Whether one is open.
    pub open: bool,
}

/// The store: `documents` while it works, `message` once writes stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageHealth {
    /// Documents held (while the store works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<u64>,
    /// What to do (once writes stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The store's schema version.
    pub schema_version: i64,
    /// `ok` or `failed`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_writes_only_the_part_of_its_state() {
        let ok = StorageHealth {
            documents: Some(3),
            message: None,
            schema_version: 4,
            status: "ok".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&ok).expect("json"),
            r#"{"documents":3,"schema_version":4,"status":"ok"}"#
        );
        let failed = StorageHealth {
            documents: None,
            message: Some("restart".to_owned()),
            schema_version: 4,
            status: "failed".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&failed).expect("json"),
            r#"{"message":"restart","schema_version":4,"status":"failed"}"#
        );
    }
}
