//! The cash session (shift) and its receipts: open, cash in/out, close (Z), the running
//! totals, the receipts of a session, a sale's answer and a refund's body. A sale's body is
//! `crdt_model::receipt::ReceiptDraft`, the model's own draft type.
//!
//! The answers of writes (`SessionOpened`, `MovementAck`, `CloseRecord`, `ReceiptAnswer`) are
//! stored verbatim in idempotency records: add fields, never rename them.

use crdt_model::fiscal::FiscalStamp;
use crdt_model::hlc::Hlc;
use crdt_model::receipt::{ItemDraft, PaymentDraft};
use crdt_model::session::MovementKind;
use crdt_model::{Kopecks, MovementId, Receipt, ReceiptId, SessionId};
use serde::{Deserialize, Serialize};

/// `POST /v1/session/open` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionRequest {
    /// The cashier's name on the session.
    pub cashier: String,
    /// Cash in the drawer at opening (0 when absent).
    #[serde(default)]
    pub opening_cash: Kopecks,
}

/// `POST /v1/session/open` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOpened {
    /// The new session.
    pub session_id: SessionId,
    /// Who opened it.
    pub cashier: String,
    /// When (RFC 3339).
    pub opened_at: String,
    /// The opening HLC.
    pub opened_at_hlc: Hlc,
    /// Cash in the drawer at opening.
    pub opening_cash: Kopecks,
}

/// Direction of a cash movement: `in` or `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CashKind {
    /// Cash put into the drawer.
    In,
    /// Cash taken out of the drawer.
    Out,
}

impl From<CashKind> for MovementKind {
    fn from(kind: CashKind) -> MovementKind {
        match kind {
            CashKind::In => MovementKind::CashIn,
            CashKind::Out => MovementKind::CashOut,
        }
    }
}

impl From<MovementKind> for CashKind {
    fn from(kind: MovementKind) -> CashKind {
        match kind {
            MovementKind::CashIn => CashKind::In,
            MovementKind::CashOut => CashKind::Out,
        }
    }
}

/// `POST /v1/session/cash` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashRequest {
    /// In or out.
    pub kind: CashKind,
    /// Amount, above zero.
    pub amount: Kopecks,
    /// Why (empty when absent).
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/session/cash` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementAck {
    /// The movement's id.
    pub movement_id: MovementId,
    /// In or out.
    pub kind: CashKind,
    /// Amount.
    pub amount: Kopecks,
    /// Cash the drawer should hold after it.
    pub cash_balance: Kopecks,
}

/// `POST /v1/session/close` body (the whole body is optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// Who closes the session (the cashier who opened it when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<String>,
}

/// Net amounts per payment method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payments {
    /// Cash.
    pub cash: Kopecks,
    /// Card.
    pub card: Kopecks,
    /// Prepayment offsets.
    pub prepayment: Kopecks,
}

/// The open session with its running totals (`GET /v1/session/current`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session.
    pub session_id: SessionId,
    /// Who opened it.
    pub cashier: String,
    /// When (RFC 3339).
    pub opened_at: String,
    /// The opening HLC.
    pub opened_at_hlc: Hlc,
    /// Cash at opening.
    pub opening_cash: Kopecks,
    /// Receipts of every kind.
    pub receipts_count: u32,
    /// Sum of sales.
    pub sales_total: Kopecks,
    /// Sum of refunds (positive).
    pub refunds_total: Kopecks,
    /// Sum of corrections.
    pub corrections_total: Kopecks,
    /// Sales + corrections − refunds.
    pub net_total: Kopecks,
    /// Net per payment method.
    pub payments: Payments,
    /// Sum of cash-ins.
    pub cash_in: Kopecks,
    /// Sum of cash-outs.
    pub cash_out: Kopecks,
    /// Opening cash + net cash payments + cash-ins − cash-outs.
    pub cash_balance: Kopecks,
    /// Receipt ids in till order.
    pub receipt_ids: Vec<ReceiptId>,
    /// The close record, once closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseRecord>,
}

/// The Z close: `POST /v1/session/close` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseRecord {
    /// The session.
    pub session_id: SessionId,
    /// When (RFC 3339).
    pub closed_at: String,
    /// The closing HLC.
    pub closed_at_hlc: Hlc,
    /// Who closed it.
    pub cashier: String,
    /// Cash at opening.
    pub opening_cash: Kopecks,
    /// Receipts of every kind.
    pub receipts_count: u32,
    /// Sum of sales.
    pub sales_total: Kopecks,
    /// Sum of refunds (positive).
    pub refunds_total: Kopecks,
    /// Sum of corrections.
    pub corrections_total: Kopecks,
    /// Sales + corrections − refunds.
    pub net_total: Kopecks,
    /// Net per payment method.
    pub payments: Payments,
    /// Sum of cash-ins.
    pub cash_in: Kopecks,
    /// Sum of cash-outs.
    pub cash_out: Kopecks,
    /// What the drawer should hold.
    pub cash_balance: Kopecks,
}

/// `GET /v1/session/{session_id}/receipts` answer: the stored, validated receipts in till order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReceipts {
    /// The session.
    pub session_id: SessionId,
    /// How many receipts follow.
    pub count: usize,
    /// The receipts.
    pub receipts: Vec<Receipt>,
}

/// Where a receipt stands when the till answers its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    /// Committed on the till, not yet fiscalised.
    Buffered,
    /// The register made its fiscal document (the answer then carries `fiscal_doc`).
    Printed,
}

/// Answer of a receipt write (`POST /v1/kkt/receipt`, `POST /v1/pos/refund`). The till stores
/// the `buffered` answer; it answers `printed`, with the register's document, when the
/// register made it in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptAnswer {
    /// `buffered` or `printed`.
    pub status: ReceiptStatus,
    /// The receipt made.
    pub receipt_id: ReceiptId,
    /// The register's fiscal document, in a `printed` answer only (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_doc: Option<FiscalStamp>,
}

/// `POST /v1/pos/refund` body. Without `items` the whole original is refunded with its own
/// payments; with `items`, `payments` are required. Kept verbatim in the till's refund saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The sale being refunded.
    pub original_receipt_id: ReceiptId,
    /// The POS making the refund (the original's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_id: Option<String>,
    /// A part of the original, when not all of it is refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemDraft>>,
    /// How the money goes back (required with `items`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payments: Option<Vec<PaymentDraft>>,
    /// Buyer phone or e-mail for the electronic refund receipt (tag 1008).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_contact: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_as_the_till_reads_them() {
        let cash = CashRequest {
            kind: CashKind::Out,
            amount: Kopecks(100_000),
            reason: "инкассация".to_owned(),
        };
        assert_eq!(
            serde_json::to_value(&cash).expect("json"),
            serde_json::json!({"kind": "out", "amount": 100000, "reason": "инкассация"})
        );
        let open = OpenSessionRequest {
            cashier: "ivanova".to_owned(),
            opening_cash: Kopecks(500_000),
        };
        assert_eq!(
            serde_json::to_value(&open).expect("json"),
            serde_json::json!({"cashier": "ivanova", "opening_cash": 500000})
        );
        let refund = RefundRequest {
            original_receipt_id: ReceiptId::new(uuid::Uuid::nil()),
            pos_id: Some("w1".to_owned()),
            items: None,
            payments: None,
            buyer_contact: None,
        };
        assert_eq!(
            serde_json::to_value(&refund).expect("json"),
            serde_json::json!({"original_receipt_id": "00000000-0000-0000-0000-000000000000",
                               "pos_id": "w1"})
        );
        let close = CloseRequest {
            cashier: Some("petrova".to_owned()),
        };
        assert_eq!(
            serde_json::to_string(&close).expect("json"),
            r#"{"cashier":"petrova"}"#
        );
    }

    #[test]
    fn request_defaults_and_refusals() {
        let open: OpenSessionRequest =
            serde_json::from_str(r#"{"cashier": "ivanova"}"#).expect("parses");
        assert_eq!(open.opening_cash, Kopecks(0));
        let cash: CashRequest =
            serde_json::from_str(r#"{"kind": "in", "amount": 5}"#).expect("parses");
        assert_eq!(MovementKind::from(cash.kind), MovementKind::CashIn);
        assert_eq!(cash.reason, "");
        assert!(serde_json::from_str::<CashRequest>(r#"{"kind": "IN", "amount": 5}"#).is_err());
        assert!(serde_json::from_str::<CloseRequest>(r#"{"who": "x"}"#).is_err());
    }

    #[test]
    fn close_record_reads_the_z_figures() {
        let body = r#"{"session_id": "01950000-0000-7000-8000-000000000000",
            "closed_at": "2026-01-31T18:00:00.000Z",
            "closed_at_hlc": "0001769850000000-00000-T1", "cashier": "ivanova",
            "opening_cash": 500000, "receipts_count": 2, "sales_total": 300000,
            "refunds_total": 0, "corrections_total": 0, "net_total": 300000,
            "payments": {"cash": 150000, "card": 150000, "prepayment": 0},
            "cash_in": 0, "cash_out": 0, "cash_balance": 650000}"#;
        let close: CloseRecord = serde_json::from_str(body).expect("parses");
        assert_eq!(close.receipts_count, 2);
        assert_eq!(close.payments.card, Kopecks(150_000));
        assert_eq!(close.cash_balance, Kopecks(650_000));
    }

    #[test]
    fn answers_are_written_with_these_names_and_cases() {
        let ack = MovementAck {
            movement_id: MovementId::new(uuid::Uuid::nil()),
            kind: CashKind::In,
            amount: Kopecks(100),
            cash_balance: Kopecks(600),
        };
        assert_eq!(
            serde_json::to_string(&ack).expect("json"),
            r#"{"movement_id":"00000000-0000-0000-0000-000000000000","kind":"in","amount":100,"cash_balance":600}"#
        );
        let sale = ReceiptAnswer {
            status: ReceiptStatus::Buffered,
            receipt_id: ReceiptId::new(uuid::Uuid::nil()),
            fiscal_doc: None,
        };
        assert_eq!(
            serde_json::to_string(&sale).expect("json"),
            r#"{"status":"buffered","receipt_id":"00000000-0000-0000-0000-000000000000"}"#
        );
    }

    #[test]
    fn a_printed_answer_carries_the_stamp_after_the_receipt_fields() {
        use crdt_model::fiscal::{FiscalNumbers, OfdState};
        let printed = ReceiptAnswer {
            status: ReceiptStatus::Printed,
            receipt_id: ReceiptId::new(uuid::Uuid::nil()),
            fiscal_doc: Some(FiscalStamp {
                kind: "receipt".to_owned(),
                numbers: FiscalNumbers {
                    fn_number: "9999078900001234".to_owned(),
                    fd_number: 7,
                    fiscal_sign: 123_456,
                    shift_number: 2,
                    receipt_number: 3,
                    datetime_unix: 1_763_900_000,
                },
                total: Kopecks(15_000),
                ofd_status: OfdState::Pending,
            }),
        };
        let json = serde_json::to_string(&printed).expect("json");
        assert_eq!(
            json,
            r#"{"status":"printed","receipt_id":"00000000-0000-0000-0000-000000000000","fiscal_doc":{"kind":"receipt","fn_number":"9999078900001234","fd_number":7,"fiscal_sign":123456,"shift_number":2,"receipt_number":3,"datetime_unix":1763900000,"total":15000,"ofd_status":"pending"}}"#
        );
        assert_eq!(
            serde_json::from_str::<ReceiptAnswer>(&json).expect("reads back"),
            printed
        );
    }
}
