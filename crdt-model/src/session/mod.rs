//! The cash session: one Automerge document per till per shift (open → Z close).
//!
//! # Layout
//! ```text
//! kind = "session"   schema = 1
//! header    = { session_id, store, till, cashier, opened_at, opening_cash }
//! receipts  = { <receipt id>: "<canonical receipt JSON>" }
//! movements = { <movement id>: { kind, amount, hlc, reason } }
//! close     = { closed_at, cashier, receipts, sales_total, …, cash_balance }   (at Z)
//! fiscal    = { <receipt id> | "z": { fn_number, fd_number, …, ofd_status } }
//! ```
//! Receipts are immutable, so each is one string value; a map keyed by id keeps commits
//! flat as the session grows and makes a retried append a no-op. Only the till writes a
//! session (its daemon and its browser, two actors), so objects are created once, at
//! open and at close.
//!
//! The `fiscal` map holds the register's and the OFD's results ([`record_fiscal`]): kept
//! apart so that a receipt, once written, is never rewritten.
//!
//! Every read re-validates what it returns ([`Receipt::check_invariants`], ids against
//! keys, session against header): a corrupt entry is an error, never a wrong total.
//! Writes validate before they change anything and leave their changes in the open
//! transaction for the caller to commit.

mod doc;
mod fiscal;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::ids::{DocKey, MovementId, SessionId, StoreId, TillId};
use crate::money::Kopecks;
use crate::receipt::{PaymentMethod, Receipt, ReceiptKind};

pub use doc::{append_movement, append_receipt, close, get_receipt, open, read, receipt_ids};
pub use fiscal::{
    read_fiscal, record_fiscal, FiscalNumbers, FiscalRecord, FiscalTarget, OfdState, MAX_FN_DIGITS,
    SHIFT_CLOSE_KEY,
};

/// Document schema version, stored under `schema`.
pub const SCHEMA_VERSION: i64 = 1;
/// Most receipts in one session document (a busy shift has a few hundred; the bound keeps
/// load time and totals bounded).
pub const MAX_RECEIPTS: usize = 10_000;
/// Most cash movements in one session.
pub const MAX_MOVEMENTS: usize = 1_000;
/// Longest cashier name (FFD tag 1021).
pub const MAX_CASHIER_LEN: usize = 64;
/// Longest movement reason.
pub const MAX_REASON_LEN: usize = 256;

/// The opening data of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHeader {
    /// The session.
    pub session_id: SessionId,
    /// The store.
    pub store: StoreId,
    /// The till that owns (and alone writes) the session.
    pub till: TillId,
    /// Who opened it.
    pub cashier: String,
    /// When it was opened.
    pub opened_at: Hlc,
    /// Cash in the drawer at opening.
    pub opening_cash: Kopecks,
}

impl SessionHeader {
    /// The key of this session's document.
    pub fn doc_key(&self) -> DocKey {
        DocKey::Session {
            store: self.store.clone(),
            till: self.till.clone(),
            session: self.session_id,
        }
    }
}

/// Direction of a cash movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Cash put into the drawer (change fund).
    CashIn,
    /// Cash taken out (collection, expenses).
    CashOut,
}

impl MovementKind {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MovementKind::CashIn => "cash_in",
            MovementKind::CashOut => "cash_out",
        }
    }

    /// The kind with this stored name.
    pub fn parse(name: &str) -> Option<MovementKind> {
        match name {
            "cash_in" => Some(MovementKind::CashIn),
            "cash_out" => Some(MovementKind::CashOut),
            _ => None,
        }
    }
}

/// A cash-in or cash-out. Immutable once appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashMovement {
    /// Identity, made by the till.
    pub id: MovementId,
    /// In or out.
    pub kind: MovementKind,
    /// Amount, above zero.
    pub amount: Kopecks,
    /// When.
    pub hlc: Hlc,
    /// Why (may be empty).
    pub reason: String,
}

/// Whether an append added something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Added now.
    New,
    /// The identical entry was already there (a retry).
    AlreadyPresent,
}

/// Net amounts per payment method: sales and corrections count positive, refunds
/// negative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTotals {
    /// Cash.
    pub cash: Kopecks,
    /// Card.
    pub card: Kopecks,
    /// Prepayment offsets.
    pub prepayment: Kopecks,
}

impl PaymentTotals {
    /// The net amount for one method.
    pub fn get(&self, method: PaymentMethod) -> Kopecks {
        match method {
            PaymentMethod::Cash => self.cash,
            PaymentMethod::Card => self.card,
            PaymentMethod::Prepayment => self.prepayment,
        }
    }

    fn add(&mut self, method: PaymentMethod, amount: Kopecks) {
        let slot = match method {
            PaymentMethod::Cash => &mut self.cash,
            PaymentMethod::Card => &mut self.card,
            PaymentMethod::Prepayment => &mut self.prepayment,
        };
        *slot = slot.saturating_add(amount);
    }
}

/// Totals of a session (an X report; stored at Z close).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTotals {
    /// Number of receipts of every kind.
    pub receipts: u32,
    /// Sum of sale totals.
    pub sales_total: Kopecks,
    /// Sum of refund totals (a positive number).
    pub refunds_total: Kopecks,
    /// Sum of correction totals.
    pub corrections_total: Kopecks,
    /// `sales + corrections − refunds`.
    pub net_total: Kopecks,
    /// Net per payment method.
    pub payments: PaymentTotals,
    /// Sum of cash-ins.
    pub cash_in: Kopecks,
    /// Sum of cash-outs.
    pub cash_out: Kopecks,
}

/// The Z close of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClose {
    /// When the session was closed.
    pub closed_at: Hlc,
    /// Who closed it.
    pub cashier: String,
    /// Totals at close.
    pub totals: SessionTotals,
    /// Cash the drawer should hold at close: opening cash + net cash payments + cash-ins
    /// − cash-outs (what [`SessionView::cash_balance`] gave at close).
    pub cash_balance: Kopecks,
}

/// A whole session, read and re-validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The header.
    pub header: SessionHeader,
    /// Receipts ordered by HLC (the till's order), then id.
    pub receipts: Vec<Receipt>,
    /// Cash movements ordered by HLC, then id.
    pub movements: Vec<CashMovement>,
    /// The Z close, once closed.
    pub close: Option<SessionClose>,
    /// Fiscal results by receipt id, and [`SHIFT_CLOSE_KEY`] for the Z report.
    pub fiscal: BTreeMap<String, FiscalRecord>,
}

impl SessionView {
    /// True once the session is closed.
    pub fn is_closed(&self) -> bool {
        self.close.is_some()
    }

    /// Totals over every receipt and movement.
    ///
    /// Arithmetic saturates instead of failing: with at most [`MAX_RECEIPTS`] receipts of
    /// at most 10^12 kopecks each (enforced when written and when read) sums stay below
    /// 10^17, far from `i64::MAX`, so saturation cannot actually occur.
    pub fn totals(&self) -> SessionTotals {
        let mut totals = SessionTotals::default();
        for receipt in &self.receipts {
            totals.receipts = totals.receipts.saturating_add(1);
            let slot = match receipt.kind {
                ReceiptKind::Sale => &mut totals.sales_total,
                ReceiptKind::Refund => &mut totals.refunds_total,
                ReceiptKind::Correction => &mut totals.corrections_total,
            };
            *slot = slot.saturating_add(receipt.total);
            for method in PaymentMethod::ALL {
                totals.payments.add(method, receipt.signed_paid_by(method));
            }
        }
        totals.net_total = totals
            .sales_total
            .saturating_add(totals.corrections_total)
            .saturating_sub(totals.refunds_total);
        for movement in &self.movements {
            let slot = match movement.kind {
                MovementKind::CashIn => &mut totals.cash_in,
                MovementKind::CashOut => &mut totals.cash_out,
            };
            *slot = slot.saturating_add(movement.amount);
        }
        totals
    }

    /// Cash the drawer should hold: opening cash + cash of sales (and corrections) − cash
    /// of refunds + cash-ins − cash-outs.
    pub fn cash_balance(&self) -> Kopecks {
        cash_balance(&self.header, &self.totals())
    }

    /// Pair assertion on the close: the stored totals must equal the totals recomputed
    /// from the receipts and movements. They differ when the till's other writer appended
    /// something concurrently with the close, which support must look at.
    pub fn verify_close(&self) -> Result<(), crate::error::SessionError> {
        let Some(close) = &self.close else {
            return Ok(());
        };
        let totals = self.totals();
        if close.totals != totals || close.cash_balance != cash_balance(&self.header, &totals) {
            return Err(crate::error::SessionError::Corrupt {
                key: "close".to_owned(),
                reason: "stored totals differ from the receipts and movements".to_owned(),
            });
        }
        Ok(())
    }
}

fn cash_balance(header: &SessionHeader, totals: &SessionTotals) -> Kopecks {
    header
        .opening_cash
        .saturating_add(totals.payments.cash)
        .saturating_add(totals.cash_in)
        .saturating_sub(totals.cash_out)
}

#[cfg(test)]
mod tests;
