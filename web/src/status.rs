//! What the state bar and the receipt badge show, derived from plain inputs: the receipt's
//! state (saved → sent → fiscalised → acknowledged), the network state (online / degraded /
//! offline), the fiscal buffer's fill with its 80 / 90 / 100 % levels, and the shift's age.
//!
//! Whether a sale may be made at all ([`sale_block`]: not with the buffer full, nor after the
//! shift's 24 hours) is decided here too, with the reason the cashier reads.
//!
//! The till's `GET /v1/kkt/buffer/status` answer is `till_api::BufferStatus`, read tolerant of
//! missing fields, so the page and the tests share one reading of it.

use crdt_model::session::{FiscalRecord, OfdState};
use till_api::BufferStatus;

use crate::format::age;
use crate::i18n::{fill, Key, Lang};

/// Capacity shown until the till has told its own (the brief's 200).
pub const DEFAULT_BUFFER_CAPACITY: u32 = 200;
/// A shift must be closed within 24 hours.
pub const SHIFT_LIMIT_SECONDS: u64 = 86_400;
/// The shift age turns to a warning one hour before the limit.
pub const SHIFT_WARNING_SECONDS: u64 = 23 * 3600;

/// How far a receipt has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReceiptState {
    /// Durable in this browser's IndexedDB.
    Saved,
    /// The till holds it.
    Sent,
    /// The register made its fiscal document.
    Fiscalised,
    /// The OFD acknowledged that document.
    Acknowledged,
}

impl ReceiptState {
    /// The `data-state` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::Saved => "saved",
            ReceiptState::Sent => "sent",
            ReceiptState::Fiscalised => "fiscalised",
            ReceiptState::Acknowledged => "acknowledged",
        }
    }
}

/// The state of a saved receipt: `till_holds` once a sync round showed the till has it,
/// `fiscal` the session document's fiscal record for it. A fiscal record implies the till
/// holds the receipt, whatever `till_holds` says.
pub fn receipt_state(till_holds: bool, fiscal: Option<&FiscalRecord>) -> ReceiptState {
    match fiscal {
        Some(record) if record.ofd_status == OfdState::Acknowledged => ReceiptState::Acknowledged,
        Some(_) => ReceiptState::Fiscalised,
        None if till_holds => ReceiptState::Sent,
        None => ReceiptState::Saved,
    }
}

/// The network state of the state bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkState {
    /// The till answers, is online and its breaker is closed.
    Online,
    /// The till answers but its own link is not online or its breaker is not closed.
    Degraded,
    /// The till does not answer.
    Offline,
}

impl NetworkState {
    /// The `data-state` value.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkState::Online => "online",
            NetworkState::Degraded => "degraded",
            NetworkState::Offline => "offline",
        }
    }
}

/// `till` is the last status answer, `None` when the till did not answer.
pub fn network_state(till: Option<&BufferStatus>) -> NetworkState {
    match till {
        None => NetworkState::Offline,
        Some(status) => {
            let breaker_closed = status.circuit_state.is_empty()
                || status.circuit_state.eq_ignore_ascii_case("closed");
            if status.network_status == "online" && breaker_closed {
                NetworkState::Online
            } else {
                NetworkState::Degraded
            }
        }
    }
}

/// The network state the page shows: `reachable` is whether the till answered the page's
/// last call, `till` its last status, `sync_refused` whether it refused the page's last sync
/// round (it answers, but the page's receipts do not get through: degraded).
pub fn page_network_state(
    reachable: bool,
    till: Option<&BufferStatus>,
    sync_refused: bool,
) -> NetworkState {
    if !reachable {
        NetworkState::Offline
    } else if sync_refused {
        NetworkState::Degraded
    } else {
        network_state(till)
    }
}

/// How full the buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BufferLevel {
    /// Below 80 %.
    Normal,
    /// 80 % and above.
    Warning,
    /// 90 % and above.
    Critical,
    /// 100 %: sales are blocked.
    Full,
}

impl BufferLevel {
    /// The level of `count` receipts in a buffer of `capacity` (integer arithmetic).
    pub fn of(count: u64, capacity: u32) -> BufferLevel {
        let capacity = u64::from(capacity.max(1));
        let percent_times_capacity = count.saturating_mul(100);
        if count >= capacity {
            BufferLevel::Full
        } else if percent_times_capacity >= 90 * capacity {
            BufferLevel::Critical
        } else if percent_times_capacity >= 80 * capacity {
            BufferLevel::Warning
        } else {
            BufferLevel::Normal
        }
    }

    /// The CSS class suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            BufferLevel::Normal => "normal",
            BufferLevel::Warning => "warning",
            BufferLevel::Critical => "critical",
            BufferLevel::Full => "full",
        }
    }
}

/// The buffer as the state bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferView {
    /// The till's queued receipts plus local ones the till does not hold yet.
    pub count: u64,
    /// The capacity.
    pub capacity: u32,
    /// The level of `count`.
    pub level: BufferLevel,
}

impl BufferView {
    /// `last_known` is the last status the till gave (kept while it is unreachable), and
    /// `local_unsent` the receipts made here that the till does not hold yet. A till that
    /// reports the buffer full (`alert: full`) is full whatever the count.
    pub fn new(last_known: Option<&BufferStatus>, local_unsent: u64) -> BufferView {
        let capacity = last_known
            .map(|status| status.total_capacity)
            .filter(|capacity| *capacity > 0)
            .unwrap_or(DEFAULT_BUFFER_CAPACITY);
        let queued = last_known.map_or(0, |status| status.current_queued);
        let count = queued.saturating_add(local_unsent);
        let mut level = BufferLevel::of(count, capacity);
        if last_known.is_some_and(|status| status.alert == "full") {
            level = BufferLevel::Full;
        }
        BufferView {
            count,
            capacity,
            level,
        }
    }

    /// True when a new sale must be refused.
    pub fn blocks_sales(&self) -> bool {
        self.level == BufferLevel::Full
    }
}

/// How close the shift is to its 24-hour limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftLevel {
    /// Under 23 hours.
    Normal,
    /// 23 hours and more.
    Warning,
    /// 24 hours and more: the register refuses receipts until a Z report.
    Expired,
}

impl ShiftLevel {
    /// The level of a shift open for `age_seconds`.
    pub fn of(age_seconds: u64) -> ShiftLevel {
        if age_seconds >= SHIFT_LIMIT_SECONDS {
            ShiftLevel::Expired
        } else if age_seconds >= SHIFT_WARNING_SECONDS {
            ShiftLevel::Warning
        } else {
            ShiftLevel::Normal
        }
    }

    /// The CSS class suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            ShiftLevel::Normal => "normal",
            ShiftLevel::Warning => "warning",
            ShiftLevel::Expired => "full",
        }
    }
}

/// Why no sale may be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleBlock {
    /// The fiscal buffer is full: receipts must reach the OFD first.
    BufferFull {
        /// Receipts counted in the buffer.
        count: u64,
        /// Its capacity.
        capacity: u32,
    },
    /// The shift has been open 24 hours: the register refuses receipts until a Z report.
    ShiftExpired {
        /// The shift's age.
        age_seconds: u64,
    },
}

impl SaleBlock {
    /// The `data-reason` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaleBlock::BufferFull { .. } => "buffer-full",
            SaleBlock::ShiftExpired { .. } => "shift-expired",
        }
    }

    /// The reason, as the cashier reads it.
    pub fn describe(self, lang: Lang) -> String {
        match self {
            SaleBlock::BufferFull { count, capacity } => fill(
                Key::SaleBlocked.text(lang),
                &[("n", &count.to_string()), ("cap", &capacity.to_string())],
            ),
            SaleBlock::ShiftExpired { age_seconds } => fill(
                Key::ShiftExpiredBlocked.text(lang),
                &[("t", &age(age_seconds, lang))],
            ),
        }
    }
}

/// Whether a sale must be refused: the buffer as the state bar shows it, and the age of the
/// open shift (`None`: no shift open here).
pub fn sale_block(buffer: &BufferView, shift_age_seconds: Option<u64>) -> Option<SaleBlock> {
    if buffer.blocks_sales() {
        return Some(SaleBlock::BufferFull {
            count: buffer.count,
            capacity: buffer.capacity,
        });
    }
    match shift_age_seconds {
        Some(age_seconds) if ShiftLevel::of(age_seconds) == ShiftLevel::Expired => {
            Some(SaleBlock::ShiftExpired { age_seconds })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_model::session::FiscalNumbers;

    fn record(status: OfdState) -> FiscalRecord {
        FiscalRecord {
            numbers: FiscalNumbers {
                fn_number: "9999078900001234".to_owned(),
                fd_number: 17,
                fiscal_sign: 123_456,
                shift_number: 1,
                receipt_number: 3,
                datetime_unix: 1_769_850_000,
            },
            ofd_status: status,
            ofd_acknowledged_at_ms: (status == OfdState::Acknowledged).then_some(1_769_850_001_000),
        }
    }

    #[test]
    fn receipt_state_advances_with_its_inputs() {
        assert_eq!(receipt_state(false, None), ReceiptState::Saved);
        assert_eq!(receipt_state(true, None), ReceiptState::Sent);
        let pending = record(OfdState::Pending);
        assert_eq!(
            receipt_state(true, Some(&pending)),
            ReceiptState::Fiscalised
        );
        // A fiscal record proves the till holds the receipt.
        assert_eq!(
            receipt_state(false, Some(&pending)),
            ReceiptState::Fiscalised
        );
        let dead = record(OfdState::DeadLetter);
        assert_eq!(receipt_state(true, Some(&dead)), ReceiptState::Fiscalised);
        let acked = record(OfdState::Acknowledged);
        assert_eq!(
            receipt_state(true, Some(&acked)),
            ReceiptState::Acknowledged
        );
        assert_eq!(ReceiptState::Acknowledged.as_str(), "acknowledged");
        assert!(ReceiptState::Saved < ReceiptState::Sent);
    }

    fn till(network: &str, breaker: &str) -> BufferStatus {
        BufferStatus {
            network_status: network.to_owned(),
            circuit_state: breaker.to_owned(),
            ..BufferStatus::default()
        }
    }

    #[test]
    fn network_state_from_reachability_link_and_breaker() {
        assert_eq!(network_state(None), NetworkState::Offline);
        assert_eq!(
            network_state(Some(&till("online", "CLOSED"))),
            NetworkState::Online
        );
        assert_eq!(
            network_state(Some(&till("online", ""))),
            NetworkState::Online
        );
        assert_eq!(
            network_state(Some(&till("degraded", "CLOSED"))),
            NetworkState::Degraded
        );
        assert_eq!(
            network_state(Some(&till("offline", "CLOSED"))),
            NetworkState::Degraded
        );
        assert_eq!(
            network_state(Some(&till("online", "OPEN"))),
            NetworkState::Degraded
        );
        assert_eq!(
            network_state(Some(&till("online", "HALF_OPEN"))),
            NetworkState::Degraded
        );
        assert_eq!(NetworkState::Offline.as_str(), "offline");
    }

    #[test]
    fn buffer_levels_at_80_90_100_percent() {
        assert_eq!(BufferLevel::of(0, 200), BufferLevel::Normal);
        assert_eq!(BufferLevel::of(159, 200), BufferLevel::Normal);
        assert_eq!(BufferLevel::of(160, 200), BufferLevel::Warning);
        assert_eq!(BufferLevel::of(179, 200), BufferLevel::Warning);
        assert_eq!(BufferLevel::of(180, 200), BufferLevel::Critical);
        assert_eq!(BufferLevel::of(199, 200), BufferLevel::Critical);
        assert_eq!(BufferLevel::of(200, 200), BufferLevel::Full);
        assert_eq!(BufferLevel::of(250, 200), BufferLevel::Full);
        // Small capacities: 4 of 5 is 80 %.
        assert_eq!(BufferLevel::of(4, 5), BufferLevel::Warning);
        assert_eq!(BufferLevel::of(1, 0), BufferLevel::Full);
        assert_eq!(BufferLevel::of(u64::MAX, 200), BufferLevel::Full);
    }

    #[test]
    fn buffer_counts_local_unsent_receipts_and_blocks_when_full() {
        let unknown = BufferView::new(None, 3);
        assert_eq!(
            (unknown.count, unknown.capacity),
            (3, DEFAULT_BUFFER_CAPACITY)
        );
        assert!(!unknown.blocks_sales());
        let status = BufferStatus {
            total_capacity: 10,
            current_queued: 8,
            ..BufferStatus::default()
        };
        let view = BufferView::new(Some(&status), 1);
        assert_eq!((view.count, view.level), (9, BufferLevel::Critical));
        let view = BufferView::new(Some(&status), 2);
        assert!(view.blocks_sales());
        let full = BufferStatus {
            alert: "full".to_owned(),
            ..status
        };
        assert!(BufferView::new(Some(&full), 0).blocks_sales());
    }

    #[test]
    fn till_status_reads_the_real_answer_and_tolerates_missing_fields() {
        let body = r#"{"total_capacity": 200, "current_queued": 3, "percent_full": 1.5,
            "alert": "none", "network_status": "online", "circuit_state": "CLOSED",
            "last_sync": "2026-01-31T09:05:00.000Z", "last_sync_ms": 1769850300000,
            "oldest_unacknowledged_age_seconds": 12, "oldest_unacknowledged_limit_seconds": 2592000,
            "shift_age_seconds": 3600, "shift_limit_seconds": 86400, "dlq_size": 0,
            "unsynced_receipts": 3, "sync_running": false, "stages": null,
            "register": {"status": "not_configured"}}"#;
        let status: BufferStatus = serde_json::from_str(body).expect("parses");
        assert_eq!(status.current_queued, 3);
        assert_eq!(status.last_sync_ms, Some(1_769_850_300_000));
        assert_eq!(status.shift_age_seconds, 3600);
        assert_eq!(network_state(Some(&status)), NetworkState::Online);
        let sparse: BufferStatus = serde_json::from_str("{}").expect("parses");
        assert_eq!(sparse.total_capacity, 0);
        assert_eq!(
            BufferView::new(Some(&sparse), 0).capacity,
            DEFAULT_BUFFER_CAPACITY
        );
    }

    #[test]
    fn shift_levels() {
        assert_eq!(ShiftLevel::of(0), ShiftLevel::Normal);
        assert_eq!(ShiftLevel::of(SHIFT_WARNING_SECONDS), ShiftLevel::Warning);
        assert_eq!(ShiftLevel::of(SHIFT_LIMIT_SECONDS), ShiftLevel::Expired);
    }

    #[test]
    fn sales_stop_with_a_full_buffer_or_after_24_hours_of_shift() {
        let roomy = BufferView::new(None, 3);
        assert_eq!(sale_block(&roomy, None), None);
        assert_eq!(sale_block(&roomy, Some(SHIFT_WARNING_SECONDS)), None);
        assert_eq!(sale_block(&roomy, Some(SHIFT_LIMIT_SECONDS - 1)), None);
        let expired = sale_block(&roomy, Some(SHIFT_LIMIT_SECONDS)).expect("blocked");
        assert_eq!(
            expired,
            SaleBlock::ShiftExpired {
                age_seconds: SHIFT_LIMIT_SECONDS
            }
        );
        assert_eq!(expired.as_str(), "shift-expired");
        let ru = expired.describe(Lang::Ru);
        let en = expired.describe(Lang::En);
        assert!(ru.contains("Z-отчёт") && ru.contains("24\u{a0}ч"), "{ru}");
        assert!(en.contains("Z report") && en.contains("24\u{a0}h"), "{en}");

        let status = BufferStatus {
            total_capacity: 5,
            current_queued: 5,
            ..BufferStatus::default()
        };
        let full = BufferView::new(Some(&status), 0);
        // A full buffer is named first: it is what the cashier waits for.
        let block = sale_block(&full, Some(SHIFT_LIMIT_SECONDS)).expect("blocked");
        assert_eq!(
            block,
            SaleBlock::BufferFull {
                count: 5,
                capacity: 5
            }
        );
        assert_eq!(block.as_str(), "buffer-full");
        assert!(block.describe(Lang::En).contains("(5 / 5)"));
    }

    #[test]
    fn a_refused_sync_shows_the_till_degraded() {
        let fine = till("online", "CLOSED");
        assert_eq!(
            page_network_state(true, Some(&fine), false),
            NetworkState::Online
        );
        assert_eq!(
            page_network_state(true, Some(&fine), true),
            NetworkState::Degraded
        );
        assert_eq!(page_network_state(true, None, true), NetworkState::Degraded);
        assert_eq!(
            page_network_state(false, Some(&fine), true),
            NetworkState::Offline
        );
    }
}
