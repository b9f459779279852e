//! The fiscal document, as one set of types shared by the fiscal pipeline and the session
//! document (fiscal-reference §8).
//!
//! - [`FiscalNumbers`]: the identity of a document, the numbers the fiscal drive gave it (FN,
//!   FD, fiscal sign, shift and receipt numbers, time), with their rules
//!   ([`FiscalNumbers::validate`]). The three forms below embed it, so a field of the identity
//!   and its rule are written once.
//! - [`FiscalDocument`]: what the register's fiscal drive made (its kind, the numbers, total
//!   and our receipt id); the register driver answers with it.
//! - [`FiscalStamp`]: the same document as the till keeps it and shows it — the kind by name,
//!   no receipt id (the job is keyed by it), and where the OFD is with it ([`OfdState`]). It is
//!   the JSON of the outbox's `fiscal_result` column and of a printed sale's `fiscal_doc`.
//! - `session::FiscalRecord`: the stamp's entry in the session document, which the hub reads
//!   ([`FiscalStamp::to_record`]); it drops the kind and total (the receipt has them) and
//!   adds when the OFD acknowledged it.
//!
//! The serialized forms are storage formats (outbox rows, printed answers, Automerge
//! session documents): their field names and values do not change. The numbers are
//! `#[serde(flatten)]`ed, so in JSON they stay beside the other fields as before.

use serde::{Deserialize, Serialize};

use crate::error::SessionError;
use crate::ids::ReceiptId;
use crate::money::Kopecks;
use crate::session::FiscalRecord;

/// Most digits of a fiscal drive number (FFD tag 1041 holds 16).
pub const MAX_FN_DIGITS: usize = 16;

/// Where the OFD is with a fiscal document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfdState {
    /// Signed by the register, not yet acknowledged by the OFD.
    Pending,
    /// Acknowledged by the OFD (final).
    Acknowledged,
    /// Given up on after the retries; in the dead-letter queue for support. A dead letter
    /// later delivered becomes [`OfdState::Acknowledged`]; it never returns to pending.
    DeadLetter,
}

impl OfdState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OfdState::Pending => "pending",
            OfdState::Acknowledged => "acknowledged",
            OfdState::DeadLetter => "dead_letter",
        }
    }

    /// The state with this stored name.
    pub fn parse(name: &str) -> Option<OfdState> {
        match name {
            "pending" => Some(OfdState::Pending),
            "acknowledged" => Some(OfdState::Acknowledged),
            "dead_letter" => Some(OfdState::DeadLetter),
            _ => None,
        }
    }

    /// Position in the only direction a status may move.
    pub(crate) const fn rank(self) -> u8 {
        match self {
            OfdState::Pending => 0,
            OfdState::DeadLetter => 1,
            OfdState::Acknowledged => 2,
        }
    }
}

/// The kind of a fiscal document (form code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// 1, registration report.
    Registration,
    /// 2, shift open report.
    ShiftOpen,
    /// 3, receipt.
    Receipt,
    /// 31, correction receipt.
    Correction,
    /// 5, shift close report (Z report).
    ShiftClose,
    /// Any other form code.
    Other(u8),
}

impl DocumentKind {
    /// The FFD form code.
    pub const fn code(self) -> u8 {
        match self {
            DocumentKind::Registration => 1,
            DocumentKind::ShiftOpen => 2,
            DocumentKind::Receipt => 3,
            DocumentKind::Correction => 31,
            DocumentKind::ShiftClose => 5,
            DocumentKind::Other(code) => code,
        }
    }

    /// The kind for a form code.
    pub const fn from_code(code: u8) -> DocumentKind {
        match code {
            1 => DocumentKind::Registration,
            2 => DocumentKind::ShiftOpen,
            3 => DocumentKind::Receipt,
            31 => DocumentKind::Correction,
            5 => DocumentKind::ShiftClose,
            other => DocumentKind::Other(other),
        }
    }

    /// The name a [`FiscalStamp`] stores (`other` for any other form code).
    pub const fn name(self) -> &'static str {
        match self {
            DocumentKind::Registration => "registration",
            DocumentKind::ShiftOpen => "shift_open",
            DocumentKind::Receipt => "receipt",
            DocumentKind::Correction => "correction",
            DocumentKind::ShiftClose => "shift_close",
            DocumentKind::Other(_) => "other",
        }
    }
}

/// The identity of a fiscal document: the numbers its fiscal drive gave it. Recorded once
/// for a receipt or Z report, they never change; only the OFD status moves on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalNumbers {
    /// 1041, the fiscal drive (ФН) number: 1 to [`MAX_FN_DIGITS`] ASCII digits.
    pub fn_number: String,
    /// 1040, the fiscal document (ФД) number, from 1.
    pub fd_number: u32,
    /// ФПД: the printed fiscal sign, `u32` big-endian of bytes 2..6 of 1077.
    pub fiscal_sign: u32,
    /// 1038, the register's shift number.
    pub shift_number: u32,
    /// 1042, the receipt number within the shift (0 for shift reports).
    pub receipt_number: u32,
    /// 1012, Unix seconds (minute precision when read from a Shtrih answer).
    pub datetime_unix: u64,
}

impl FiscalNumbers {
    /// Checks the rules of a document the session document may record: the FN number is 1
    /// to [`MAX_FN_DIGITS`] ASCII digits, the FD number at least 1, and the time fits the
    /// signed integer it is stored as.
    pub fn validate(&self) -> Result<(), SessionError> {
        let invalid = |field, reason| SessionError::InvalidField { field, reason };
        let digits = self.fn_number.len();
        if !(1..=MAX_FN_DIGITS).contains(&digits)
            || !self.fn_number.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid("fn_number", "must be 1 to 16 ASCII digits"));
        }
        if self.fd_number == 0 {
            return Err(invalid("fd_number", "must be at least 1"));
        }
        if i64::try_from(self.datetime_unix).is_err() {
            return Err(invalid("datetime_unix", "out of range"));
        }
        Ok(())
    }

    /// The name of the first field that differs from `other`, if any: two records of one
    /// target must describe the same document.
    pub fn differing_field(&self, other: &FiscalNumbers) -> Option<&'static str> {
        [
            ("fn_number", self.fn_number != other.fn_number),
            ("fd_number", self.fd_number != other.fd_number),
            ("fiscal_sign", self.fiscal_sign != other.fiscal_sign),
            ("shift_number", self.shift_number != other.shift_number),
            (
                "receipt_number",
                self.receipt_number != other.receipt_number,
            ),
            ("datetime_unix", self.datetime_unix != other.datetime_unix),
        ]
        .into_iter()
        .find_map(|(field, differs)| differs.then_some(field))
    }
}

/// A fiscal document made by the FN: the ids to store (fiscal-reference §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalDocument {
    /// What it is.
    pub kind: DocumentKind,
    /// Its identity: FN, FD, fiscal sign, shift, receipt number and time.
    #[serde(flatten)]
    pub numbers: FiscalNumbers,
    /// 1020, the receipt total (zero for shift reports).
    pub total: Kopecks,
    /// Our receipt id from 1084/1086, when the document carries one.
    pub receipt_id: Option<ReceiptId>,
}

/// A fiscal document as the till keeps it (outbox) and shows it (a printed sale's answer),
/// with its delivery state at the OFD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalStamp {
    /// Document kind name: `receipt`, `correction`, `shift_close`, … ([`DocumentKind::name`]).
    pub kind: String,
    /// Its identity, written beside `kind` in JSON.
    #[serde(flatten)]
    pub numbers: FiscalNumbers,
    /// 1020, the total.
    pub total: Kopecks,
    /// Delivery state at the OFD.
    pub ofd_status: OfdState,
}

impl FiscalStamp {
    /// The stamp of a document just made (not yet delivered).
    pub fn from_document(document: &FiscalDocument) -> FiscalStamp {
        FiscalStamp {
            kind: document.kind.name().to_owned(),
            numbers: document.numbers.clone(),
            total: document.total,
            ofd_status: OfdState::Pending,
        }
    }

    /// The session document's record of this stamp, written at `now_ms` (the acknowledgement
    /// time, when the stamp is acknowledged).
    pub fn to_record(&self, now_ms: u64) -> FiscalRecord {
        FiscalRecord {
            numbers: self.numbers.clone(),
            ofd_status: self.ofd_status,
            ofd_acknowledged_at_ms: (self.ofd_status == OfdState::Acknowledged).then_some(now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(kind: DocumentKind) -> FiscalDocument {
        FiscalDocument {
            kind,
            numbers: FiscalNumbers {
                fn_number: "9999078900001234".to_owned(),
                fd_number: 7,
                fiscal_sign: 123_456,
                shift_number: 2,
                receipt_number: 3,
                datetime_unix: 1_763_900_000,
            },
            total: Kopecks(15_000),
            receipt_id: None,
        }
    }

    #[test]
    fn a_stamp_keeps_its_stored_json() -> Result<(), serde_json::Error> {
        let mut stamp = FiscalStamp::from_document(&document(DocumentKind::Receipt));
        stamp.ofd_status = OfdState::DeadLetter;
        let json = serde_json::to_string(&stamp)?;
        assert_eq!(
            json,
            r#"{"kind":"receipt","fn_number":"9999078900001234","fd_number":7,"fiscal_sign":123456,"shift_number":2,"receipt_number":3,"datetime_unix":1763900000,"total":15000,"ofd_status":"dead_letter"}"#
        );
        assert_eq!(serde_json::from_str::<FiscalStamp>(&json)?, stamp);
        let other = FiscalStamp::from_document(&document(DocumentKind::from_code(9)));
        assert_eq!(other.kind, "other");
        Ok(())
    }

    #[test]
    fn a_record_carries_the_acknowledgement_time_only_when_acknowledged() {
        let mut stamp = FiscalStamp::from_document(&document(DocumentKind::ShiftClose));
        let pending = stamp.to_record(9_000);
        assert_eq!(pending.ofd_status, OfdState::Pending);
        assert_eq!(pending.ofd_acknowledged_at_ms, None);
        assert!(pending.validate().is_ok());
        stamp.ofd_status = OfdState::Acknowledged;
        let acknowledged = stamp.to_record(9_000);
        assert_eq!(acknowledged.ofd_acknowledged_at_ms, Some(9_000));
        assert_eq!(acknowledged.numbers.fd_number, 7);
        assert!(acknowledged.validate().is_ok());
    }
}
