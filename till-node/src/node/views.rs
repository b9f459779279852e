//! JSON shapes the node answers with. Answers to writes are stored verbatim in idempotency
//! records, so their shape is part of the durable state: add fields, never rename them.

use crdt_model::hlc::Hlc;
use crdt_model::session::{SessionClose, SessionView};
use crdt_model::{Kopecks, MovementId, ReceiptId, SessionId};
use serde::Serialize;

use crate::time::rfc3339_ms;

/// Answer to an accepted receipt.
#[derive(Debug, Serialize)]
pub struct SaleAck {
    /// Always `buffered`: committed on the till, not yet fiscalised.
    pub status: &'static str,
    /// The receipt's id.
    pub receipt_id: ReceiptId,
}

/// Answer to a session opening.
#[derive(Debug, Serialize)]
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

/// Answer to a cash movement.
#[derive(Debug, Serialize)]
pub struct MovementAck {
    /// The movement's id.
    pub movement_id: MovementId,
    /// `in` or `out`.
    pub kind: &'static str,
    /// Amount.
    pub amount: Kopecks,
    /// Cash the drawer should hold after it.
    pub cash_balance: Kopecks,
}

/// Net amounts per payment method.
#[derive(Debug, Serialize)]
pub struct PaymentsView {
    /// Cash.
    pub cash: Kopecks,
    /// Card.
    pub card: Kopecks,
    /// Prepayment offsets.
    pub prepayment: Kopecks,
}

/// A session with its running totals (`GET /v1/session/current`).
#[derive(Debug, Serialize)]
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
    pub payments: PaymentsView,
    /// Sum of cash-ins.
    pub cash_in: Kopecks,
    /// Sum of cash-outs.
    pub cash_out: Kopecks,
    /// Opening cash + net cash payments + cash-ins − cash-outs.
    pub cash_balance: Kopecks,
    /// Receipt ids in till order.
    pub receipt_ids: Vec<ReceiptId>,
    /// The close record, once closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseRecord>,
}

/// The Z close (`POST /v1/session/close`).
#[derive(Debug, Serialize)]
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
    pub payments: PaymentsView,
    /// Sum of cash-ins.
    pub cash_in: Kopecks,
    /// Sum of cash-outs.
    pub cash_out: Kopecks,
    /// What the drawer should hold.
    pub cash_balance: Kopecks,
}

impl CloseRecord {
    /// The record of `close` in the session opened with `view`'s header.
    pub fn new(view: &SessionView, close: &SessionClose) -> CloseRecord {
        let t = &close.totals;
        CloseRecord {
            session_id: view.header.session_id,
            closed_at: rfc3339_ms(close.closed_at.physical_ms),
            closed_at_hlc: close.closed_at.clone(),
            cashier: close.cashier.clone(),
            opening_cash: view.header.opening_cash,
            receipts_count: t.receipts,
            sales_total: t.sales_total,
            refunds_total: t.refunds_total,
            corrections_total: t.corrections_total,
            net_total: t.net_total,
            payments: PaymentsView {
                cash: t.payments.cash,
                card: t.payments.card,
                prepayment: t.payments.prepayment,
            },
            cash_in: t.cash_in,
            cash_out: t.cash_out,
            cash_balance: close.cash_balance,
        }
    }
}

impl SessionSummary {
    /// The running totals of `view`.
    pub fn new(view: &SessionView) -> SessionSummary {
        let t = view.totals();
        SessionSummary {
            session_id: view.header.session_id,
            cashier: view.header.cashier.clone(),
            opened_at: rfc3339_ms(view.header.opened_at.physical_ms),
            opened_at_hlc: view.header.opened_at.clone(),
            opening_cash: view.header.opening_cash,
            receipts_count: t.receipts,
            sales_total: t.sales_total,
            refunds_total: t.refunds_total,
            corrections_total: t.corrections_total,
            net_total: t.net_total,
            payments: PaymentsView {
                cash: t.payments.cash,
                card: t.payments.card,
                prepayment: t.payments.prepayment,
            },
            cash_in: t.cash_in,
            cash_out: t.cash_out,
            cash_balance: view.cash_balance(),
            receipt_ids: view.receipts.iter().map(|r| r.id).collect(),
            close: view.close.as_ref().map(|c| CloseRecord::new(view, c)),
        }
    }
}
