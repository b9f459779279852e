//! JSON bodies of the till routes the page calls (`docs/api.md`, `till-node/src/api/`), kept
//! apart from the fetch code so their reading is unit-tested natively.
//!
//! Answers are read leniently (`#[serde(default)]`): the till adds fields over time and the
//! page must keep working; requests are written exactly.

use crdt_model::{Kopecks, ReceiptId};
use serde::{Deserialize, Serialize};

/// `POST /v1/pos/login` request.
#[derive(Debug, Serialize)]
pub struct LoginRequest<'a> {
    /// The cashier's PIN.
    pub pin: &'a str,
    /// This browser's device name.
    pub device: &'a str,
}

/// `POST /v1/pos/login` answer, kept in IndexedDB so a reload with the till down still sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginInfo {
    /// Bearer token for every later call.
    pub token: String,
    /// The cashier's login (also the cashier name on receipts and sessions).
    pub login: String,
    /// `cashier` or `manager`.
    #[serde(default)]
    pub role: String,
    /// The store.
    pub store: String,
    /// The till.
    pub till: String,
    /// This browser's peer id.
    pub peer: String,
    /// The till's peer id.
    pub till_peer: String,
    /// When the token stops working (Unix ms), if the till says.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

impl LoginInfo {
    /// True once the token has expired.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|expires| now_ms >= expires)
    }
}

/// The error body of every till route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// Stable machine code (`wrong_pin`, `session_already_open`, …).
    pub error: String,
    /// Human text (Russian and/or English, from the till).
    pub message: String,
    /// Seconds to wait before retrying (rate limits, refunds waiting for their original).
    pub retry_after_seconds: Option<u64>,
    /// The field to blame, if one.
    pub field: Option<String>,
}

/// `POST /v1/pos/approve` request.
#[derive(Debug, Serialize)]
pub struct ApproveRequest<'a> {
    /// The manager's PIN or secret.
    pub secret: &'a str,
}

/// `POST /v1/pos/approve` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApprovalAnswer {
    /// The manager's login.
    pub login: String,
    /// Their role.
    #[serde(default)]
    pub role: String,
}

/// `POST /v1/session/open` request.
#[derive(Debug, Serialize)]
pub struct OpenSessionRequest<'a> {
    /// The cashier's name on the session.
    pub cashier: &'a str,
    /// Cash in the drawer at opening.
    pub opening_cash: Kopecks,
}

/// Direction of a cash movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CashKind {
    /// Cash in.
    In,
    /// Cash out.
    Out,
}

/// `POST /v1/session/cash` request.
#[derive(Debug, Serialize)]
pub struct CashRequest<'a> {
    /// In or out.
    pub kind: CashKind,
    /// Amount, above zero.
    pub amount: Kopecks,
    /// Why.
    pub reason: &'a str,
}

/// `POST /v1/session/cash` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CashAnswer {
    /// Cash the drawer should hold after the movement.
    pub cash_balance: Kopecks,
}

/// `POST /v1/session/close` request.
#[derive(Debug, Serialize)]
pub struct CloseRequest<'a> {
    /// Who closes the session.
    pub cashier: &'a str,
}

/// Net amounts per payment method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentsAnswer {
    /// Cash.
    pub cash: Kopecks,
    /// Card.
    pub card: Kopecks,
    /// Prepayment offsets.
    pub prepayment: Kopecks,
}

/// `POST /v1/session/close` answer: the Z report's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseAnswer {
    /// The session.
    pub session_id: String,
    /// When (RFC 3339).
    pub closed_at: String,
    /// Who closed it.
    pub cashier: String,
    /// Cash at opening.
    pub opening_cash: Kopecks,
    /// Receipts of every kind.
    pub receipts_count: u32,
    /// Sum of sales.
    pub sales_total: Kopecks,
    /// Sum of refunds.
    pub refunds_total: Kopecks,
    /// Sales + corrections − refunds.
    pub net_total: Kopecks,
    /// Net per payment method.
    pub payments: PaymentsAnswer,
    /// Sum of cash-ins.
    pub cash_in: Kopecks,
    /// Sum of cash-outs.
    pub cash_out: Kopecks,
    /// What the drawer should hold.
    pub cash_balance: Kopecks,
}

/// `POST /v1/pos/refund` request: the whole sale back with its own payments.
#[derive(Debug, Serialize)]
pub struct RefundRequest<'a> {
    /// The sale.
    pub original_receipt_id: ReceiptId,
    /// This browser's device name.
    pub pos_id: &'a str,
}

/// Answer of a receipt write (`buffered` or `printed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ReceiptAnswer {
    /// `buffered` or `printed`.
    pub status: String,
    /// The receipt made.
    pub receipt_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answer_reads_and_expires() {
        let body = r#"{"token": "t0k", "login": "ivanova", "role": "cashier", "store": "S1",
            "till": "T1", "peer": "pos:S1/T1/w1a2b3c4d5e6f", "till_peer": "till:S1/T1",
            "expires_at_ms": 1000, "extra": true}"#;
        let login: LoginInfo = serde_json::from_str(body).expect("parses");
        assert_eq!(login.login, "ivanova");
        assert_eq!(login.till_peer, "till:S1/T1");
        assert!(!login.expired(999));
        assert!(login.expired(1000));
        let json = serde_json::to_string(&login).expect("serialises");
        assert_eq!(serde_json::from_str::<LoginInfo>(&json).ok(), Some(login));
    }

    #[test]
    fn error_bodies_read_their_optional_parts() {
        let limited: ErrorBody =
            serde_json::from_str(r#"{"error": "too_many_attempts", "retry_after_seconds": 30}"#)
                .expect("parses");
        assert_eq!(limited.error, "too_many_attempts");
        assert_eq!(limited.retry_after_seconds, Some(30));
        let wrong: ErrorBody = serde_json::from_str(
            r#"{"error": "wrong_pin", "message": "Неверный PIN", "correlation_id": "x"}"#,
        )
        .expect("parses");
        assert_eq!(wrong.message, "Неверный PIN");
        assert_eq!(wrong.field, None);
    }

    #[test]
    fn requests_are_written_as_the_till_reads_them() {
        let cash = CashRequest {
            kind: CashKind::Out,
            amount: Kopecks(100_000),
            reason: "инкассация",
        };
        assert_eq!(
            serde_json::to_value(&cash).expect("json"),
            serde_json::json!({"kind": "out", "amount": 100000, "reason": "инкассация"})
        );
        let open = OpenSessionRequest {
            cashier: "ivanova",
            opening_cash: Kopecks(500_000),
        };
        assert_eq!(
            serde_json::to_value(&open).expect("json"),
            serde_json::json!({"cashier": "ivanova", "opening_cash": 500000})
        );
        let refund = RefundRequest {
            original_receipt_id: ReceiptId::new(uuid::Uuid::nil()),
            pos_id: "w1",
        };
        assert_eq!(
            serde_json::to_value(&refund).expect("json")["original_receipt_id"],
            "00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn close_answer_reads_the_z_figures() {
        let body = r#"{"session_id": "0195", "closed_at": "2026-01-31T18:00:00.000Z",
            "closed_at_hlc": "0001769850000000-00000-T1", "cashier": "ivanova",
            "opening_cash": 500000, "receipts_count": 2, "sales_total": 300000,
            "refunds_total": 0, "corrections_total": 0, "net_total": 300000,
            "payments": {"cash": 150000, "card": 150000, "prepayment": 0},
            "cash_in": 0, "cash_out": 0, "cash_balance": 650000}"#;
        let close: CloseAnswer = serde_json::from_str(body).expect("parses");
        assert_eq!(close.receipts_count, 2);
        assert_eq!(close.payments.card, Kopecks(150_000));
        assert_eq!(close.cash_balance, Kopecks(650_000));
    }
}
