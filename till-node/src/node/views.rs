//! The session answers the node builds from a session document: the running totals
//! (`GET /v1/session/current`) and the Z close record. The types are the wire crate's
//! (`till_api::session`); answers to writes are stored verbatim in idempotency records, so
//! their shape is part of the durable state: add fields, never rename them.

use crdt_model::session::{SessionClose, SessionTotals, SessionView};
pub use till_api::session::{
    CloseRecord, MovementAck, Payments, ReceiptAnswer, ReceiptStatus, SessionOpened, SessionSummary,
};

use crate::time::rfc3339_ms;

/// The net amounts per payment method of `totals`.
fn payments(totals: &SessionTotals) -> Payments {
    Payments {
        cash: totals.payments.cash,
        card: totals.payments.card,
        prepayment: totals.payments.prepayment,
    }
}

/// The record of `close` in the session opened with `view`'s header.
pub fn close_record(view: &SessionView, close: &SessionClose) -> CloseRecord {
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
        payments: payments(t),
        cash_in: t.cash_in,
        cash_out: t.cash_out,
        cash_balance: close.cash_balance,
    }
}

/// The running totals of `view`.
pub fn session_summary(view: &SessionView) -> SessionSummary {
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
        payments: payments(&t),
        cash_in: t.cash_in,
        cash_out: t.cash_out,
        cash_balance: view.cash_balance(),
        receipt_ids: view.receipts.iter().map(|r| r.id).collect(),
        close: view.close.as_ref().map(|c| close_record(view, c)),
    }
}
