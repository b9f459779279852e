//! From a cash-session document to its SQL projection rows: one [`SessionRow`] and one
//! [`ReceiptRow`] per receipt.
//!
//! The document is read with `crdt_model::session::read`, which re-validates every receipt
//! (money invariants, ids against keys, receipts against the header). The header must
//! belong to the document's own key: a till cannot file a session under another till by
//! writing a different header into its own document. Amounts are stored signed (refunds
//! negative) so report sums net out.

use crate::db::{PaymentRow, ReceiptKind, ReceiptRow, SessionRow};
use automerge::{AutoCommit, ReadDoc, ROOT};
use crdt_model::receipt::{PaymentMethod, Receipt, ReceiptKind as ModelKind};
use crdt_model::session::{self, SessionView};
use crdt_model::{DocKey, ReceiptId};
use std::collections::HashSet;
use thiserror::Error;

/// A session document that cannot be projected; the round that brought it is refused.
#[derive(Debug, Error)]
pub enum ProjectionError {
    /// The document does not read as a valid session.
    #[error("session document {doc} is invalid: {source}")]
    Invalid {
        /// The document.
        doc: String,
        /// Why (boxed: the session error is large and this path is rare).
        source: Box<crdt_model::SessionError>,
    },
    /// The header names another store, till or session than the document id.
    #[error("session document {doc} carries the header of {found}")]
    WrongHeader {
        /// The document.
        doc: String,
        /// The document key the header belongs to.
        found: String,
    },
    /// A receipt could not be serialised.
    #[error("receipt {id} cannot be serialised: {reason}")]
    Serialise {
        /// The receipt.
        id: ReceiptId,
        /// Why.
        reason: String,
    },
}

/// The projection of one session document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionProjection {
    /// The session row (header, and the close once closed).
    pub session: SessionRow,
    /// Receipts not in the `skip` set given to [`project_session`].
    pub receipts: Vec<ReceiptRow>,
}

/// The receipt ids a session document holds; empty for a document that is not (yet) a
/// readable session (used to skip receipts that were projected with earlier changes).
pub fn receipt_ids(doc: &AutoCommit) -> HashSet<ReceiptId> {
    match session::receipt_ids(doc) {
        Ok(ids) => ids.into_iter().collect(),
        // Skip nothing: receipt rows are inserted idempotently by id, so re-projecting one
        // costs a statement, never a duplicate.
        Err(_) => HashSet::new(),
    }
}

/// Reads `doc` (the document of `key`) as a session whose header belongs to `key`.
/// `Ok(None)` for a document with no content yet.
pub fn read_session(
    key: &DocKey,
    doc: &AutoCommit,
) -> Result<Option<SessionView>, ProjectionError> {
    if doc.length(ROOT) == 0 {
        return Ok(None);
    }
    let view = session::read(doc).map_err(|source| ProjectionError::Invalid {
        doc: key.to_doc_id(),
        source: Box::new(source),
    })?;
    let header_key = view.header.doc_key();
    if &header_key != key {
        return Err(ProjectionError::WrongHeader {
            doc: key.to_doc_id(),
            found: header_key.to_doc_id(),
        });
    }
    Ok(Some(view))
}

/// The projection rows of a session read by [`read_session`], leaving out receipts in
/// `skip`.
pub fn project_view(
    key: &DocKey,
    view: &SessionView,
    skip: &HashSet<ReceiptId>,
) -> Result<SessionProjection, ProjectionError> {
    let header = &view.header;
    let close_json = view
        .close
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ProjectionError::Invalid {
            doc: key.to_doc_id(),
            source: Box::new(crdt_model::SessionError::Corrupt {
                key: "close".to_owned(),
                reason: e.to_string(),
            }),
        })?;
    let session = SessionRow {
        session_id: header.session_id.to_string(),
        store: header.store.to_string(),
        till: header.till.to_string(),
        cashier: header.cashier.clone(),
        opened_hlc: header.opened_at.to_string(),
        opening_cash: header.opening_cash,
        closed_hlc: view.close.as_ref().map(|c| c.closed_at.to_string()),
        close_json,
    };
    let receipts = view
        .receipts
        .iter()
        .filter(|r| !skip.contains(&r.id))
        .map(receipt_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SessionProjection { session, receipts })
}

/// The name a payment method has in the projection (and the summary's `payments` keys).
pub fn method_name(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Cash => "cash",
        PaymentMethod::Card => "card",
        PaymentMethod::Prepayment => "prepayment",
    }
}

fn receipt_row(receipt: &Receipt) -> Result<ReceiptRow, ProjectionError> {
    let body = serde_json::to_string(receipt).map_err(|e| ProjectionError::Serialise {
        id: receipt.id,
        reason: e.to_string(),
    })?;
    let kind = match receipt.kind {
        ModelKind::Sale => ReceiptKind::Sale,
        ModelKind::Refund => ReceiptKind::Refund,
        ModelKind::Correction => ReceiptKind::Correction,
    };
    let sign = |amount: crdt_model::Kopecks| match receipt.kind {
        ModelKind::Refund => crdt_model::Kopecks::ZERO.saturating_sub(amount),
        ModelKind::Sale | ModelKind::Correction => amount,
    };
    Ok(ReceiptRow {
        receipt_id: receipt.id.to_string(),
        store: receipt.store.to_string(),
        till: receipt.till.to_string(),
        session_id: receipt.session.to_string(),
        kind,
        total: receipt.signed_total(),
        hlc: receipt.hlc.to_string(),
        body,
        payments: receipt
            .payments
            .iter()
            .map(|p| PaymentRow {
                method: method_name(p.method).to_owned(),
                amount: sign(p.amount),
            })
            .collect(),
    })
}
