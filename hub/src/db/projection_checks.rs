//! Checks on projection rows before they are written: ids, timestamps, JSON sizes, money.
//!
//! Every limit here is derived from `crdt-model`'s own limits, because a projection row is
//! computed from a session document the till already validated with `crdt-model`: a
//! receipt the till accepted must never be refused here, or the till's whole envelope
//! would be refused on every retry, forever. So HLCs are checked by parsing them (the
//! canonical form, with the node name of any length the model allows), text by characters
//! (like the model, not by bytes), and JSON bodies against the largest body a maximal
//! receipt or close serialises to. The checks remain as a pair assertion: they catch a
//! bug in the projection, not a business rule.

use crate::db::ids::{
    validate_payment_method, validate_session_id, validate_store_id, validate_till_id,
};
use crate::db::{DbError, ReceiptKind, ReceiptRow, SessionRow};
use crdt_model::hlc::MAX_NODE_LEN;
use crdt_model::receipt::{
    MAX_CONTACT_LEN, MAX_ITEM_NAME_LEN, MAX_LINES, MAX_PAYMENTS as MODEL_MAX_PAYMENTS,
    MAX_POS_ID_LEN, MAX_SKU_LEN,
};
use crdt_model::session::MAX_CASHIER_LEN;
use crdt_model::{Hlc, Kopecks};

/// Most bytes one character takes in serialised JSON: control characters (the only ones
/// escaped as `\u00XX`) are refused by the model, so it is the 4 bytes of UTF-8.
const JSON_BYTES_PER_CHAR: usize = 4;
/// Bytes of everything in a receipt besides its free text, lines and payments (ids, kind,
/// total, HLC digits, keys and punctuation), with a wide margin.
const RECEIPT_FIXED_BYTES: usize = 2048;
/// Bytes of a line besides its SKU and name (numbers, VAT, codes, keys), with a margin.
const LINE_FIXED_BYTES: usize = 512;
/// Bytes of one payment (`{"method":"prepayment","amount":-1000000000000}`), with a margin.
const PAYMENT_BYTES: usize = 128;

/// Largest receipt JSON a till can produce: a receipt with the model's maximum of lines and
/// payments, every text field at its maximum length in 4-byte characters.
pub const MAX_RECEIPT_JSON_BYTES: usize = RECEIPT_FIXED_BYTES
    + JSON_BYTES_PER_CHAR * (MAX_POS_ID_LEN + MAX_CONTACT_LEN + MAX_NODE_LEN)
    + MAX_LINES * (LINE_FIXED_BYTES + JSON_BYTES_PER_CHAR * (MAX_SKU_LEN + MAX_ITEM_NAME_LEN))
    + MODEL_MAX_PAYMENTS * PAYMENT_BYTES;

/// Largest close (Z report) JSON: a dozen amounts, a timestamp and the cashier's name.
pub const MAX_CLOSE_JSON_BYTES: usize =
    4096 + JSON_BYTES_PER_CHAR * (MAX_CASHIER_LEN + MAX_NODE_LEN);

/// Most payments one receipt may carry (the model's limit).
pub const MAX_PAYMENTS: usize = MODEL_MAX_PAYMENTS;

/// Free text as the model checks it: 1..=`max_chars` characters, none of them a control
/// character.
fn validate_text(what: &'static str, value: &str, max_chars: usize) -> Result<(), DbError> {
    if value.trim().is_empty()
        || value.chars().count() > max_chars
        || value.chars().any(char::is_control)
    {
        return Err(DbError::invalid(
            what,
            format!("must be 1..={max_chars} characters without control characters"),
        ));
    }
    Ok(())
}

/// An HLC in its canonical text form (the form that sorts in time order).
fn validate_hlc(what: &'static str, value: &str) -> Result<(), DbError> {
    let hlc: Hlc = value
        .parse()
        .map_err(|e| DbError::invalid(what, format!("not a timestamp: {e}")))?;
    if hlc.to_string() != value {
        return Err(DbError::invalid(what, "not in canonical form"));
    }
    Ok(())
}

fn validate_json(what: &'static str, value: &str, max_bytes: usize) -> Result<(), DbError> {
    if value.len() > max_bytes {
        return Err(DbError::invalid(
            what,
            format!("larger than {max_bytes} bytes"),
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(value)
        .map(|_| ())
        .map_err(|e| DbError::invalid(what, format!("not JSON: {e}")))
}

impl ReceiptRow {
    /// Checks ids, JSON and money: payments sum to the total and signs match the kind.
    pub fn validate(&self) -> Result<(), DbError> {
        let canonical = uuid::Uuid::parse_str(&self.receipt_id).map(|u| u.hyphenated().to_string());
        if canonical.as_deref().ok() != Some(self.receipt_id.as_str()) {
            return Err(DbError::invalid(
                "receipt_id",
                "must be a lowercase hyphenated UUID",
            ));
        }
        validate_store_id(&self.store)?;
        validate_till_id(&self.till)?;
        validate_session_id(&self.session_id)?;
        validate_hlc("hlc", &self.hlc)?;
        validate_json("receipt body", &self.body, MAX_RECEIPT_JSON_BYTES)?;
        if self.payments.len() > MAX_PAYMENTS {
            return Err(DbError::invalid(
                "payments",
                format!("more than {MAX_PAYMENTS}"),
            ));
        }
        let sign_ok = |amount: Kopecks| match self.kind {
            ReceiptKind::Sale => amount.0 >= 0,
            ReceiptKind::Refund => amount.0 <= 0,
            ReceiptKind::Correction => true,
        };
        let mut sum = Kopecks::ZERO;
        for p in &self.payments {
            validate_payment_method(&p.method)?;
            if !sign_ok(p.amount) {
                return Err(DbError::invalid(
                    "payments",
                    format!("{} payment with the wrong sign", self.kind),
                ));
            }
            sum = sum
                .checked_add(p.amount)
                .ok_or_else(|| DbError::invalid("payments", "sum overflows"))?;
        }
        if !sign_ok(self.total) {
            return Err(DbError::invalid(
                "total",
                format!("{} total with the wrong sign", self.kind),
            ));
        }
        if sum != self.total {
            return Err(DbError::invalid(
                "payments",
                format!("payments add up to {sum}, the total is {}", self.total),
            ));
        }
        Ok(())
    }
}

impl SessionRow {
    /// Checks ids, timestamps, the opening cash and the close JSON.
    pub fn validate(&self) -> Result<(), DbError> {
        validate_session_id(&self.session_id)?;
        validate_store_id(&self.store)?;
        validate_till_id(&self.till)?;
        validate_text("cashier", &self.cashier, MAX_CASHIER_LEN)?;
        validate_hlc("opened_hlc", &self.opened_hlc)?;
        if self.opening_cash.0 < 0 {
            return Err(DbError::invalid("opening_cash", "negative"));
        }
        if let Some(hlc) = &self.closed_hlc {
            validate_hlc("closed_hlc", hlc)?;
        }
        if let Some(json) = &self.close_json {
            validate_json("close_json", json, MAX_CLOSE_JSON_BYTES)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::PaymentRow;
    use crdt_model::hlc::{MAX_LOGICAL, MAX_PHYSICAL_MS};
    use crdt_model::receipt::{Receipt, ReceiptDraft};
    use crdt_model::session::{PaymentTotals, SessionClose, SessionTotals};
    use crdt_model::{ReceiptId, SessionId};

    /// The longest node name the model allows.
    fn longest_node() -> String {
        let node = format!("{}/{}/{}", "s".repeat(32), "t".repeat(20), "d".repeat(10));
        assert_eq!(node.len(), MAX_NODE_LEN);
        node
    }

    fn latest_hlc() -> Hlc {
        Hlc::new(MAX_PHYSICAL_MS, MAX_LOGICAL, &longest_node()).expect("hlc")
    }

    /// A 4-byte character (U+1D538), the worst case for JSON size per character.
    const WIDE: &str = "𝔸";

    /// The largest receipt the model accepts.
    fn maximal_receipt() -> Receipt {
        let wide = |n: usize| WIDE.repeat(n);
        let items: Vec<serde_json::Value> = (0..MAX_LINES)
            .map(|_| {
                serde_json::json!({
                    "sku": wide(MAX_SKU_LEN), "name": wide(MAX_ITEM_NAME_LEN),
                    "qty": "999.999", "price": 1_999_999, "vat": "vat22",
                    "discount": 1, "payment_method": 4, "payment_object": 1,
                })
            })
            .collect();
        let line_sum = crdt_model::line_amount(
            Kopecks(1_999_999),
            crdt_model::Quantity::from_milli(999_999),
        )
        .expect("amount")
        .0 - 1;
        let total = line_sum * i64::try_from(MAX_LINES).expect("lines");
        let each = total / i64::try_from(MODEL_MAX_PAYMENTS).expect("payments");
        let mut payments: Vec<serde_json::Value> = (1..MODEL_MAX_PAYMENTS)
            .map(|_| serde_json::json!({"method": "prepayment", "amount": each}))
            .collect();
        let rest = total - each * i64::try_from(MODEL_MAX_PAYMENTS - 1).expect("payments");
        payments.push(serde_json::json!({"method": "prepayment", "amount": rest}));
        let email = format!("{}@example.ru", "a".repeat(MAX_CONTACT_LEN - 11));
        let draft: ReceiptDraft = serde_json::from_value(serde_json::json!({
            "pos_id": wide(MAX_POS_ID_LEN), "type": "sale", "items": items,
            "payments": payments, "buyer_contact": email,
        }))
        .expect("draft");
        Receipt::from_draft(
            draft,
            ReceiptId::new(uuid::Uuid::new_v4()),
            "s".repeat(32).parse().expect("store"),
            "t".repeat(32).parse().expect("till"),
            SessionId::new(uuid::Uuid::new_v4()),
            latest_hlc(),
        )
        .expect("the model accepts the maximal receipt")
    }

    #[test]
    fn the_largest_receipt_a_till_can_make_is_accepted() {
        let receipt = maximal_receipt();
        let body = serde_json::to_string(&receipt).expect("json");
        // The old 256 KiB cap refused it: this is the case the derived limit exists for.
        assert!(body.len() > 256 * 1024, "{} bytes", body.len());
        assert!(body.len() <= MAX_RECEIPT_JSON_BYTES, "{} bytes", body.len());
        let row = ReceiptRow {
            receipt_id: receipt.id.to_string(),
            store: receipt.store.to_string(),
            till: receipt.till.to_string(),
            session_id: receipt.session.to_string(),
            kind: ReceiptKind::Sale,
            total: receipt.total,
            hlc: receipt.hlc.to_string(),
            body,
            payments: receipt
                .payments
                .iter()
                .map(|p| PaymentRow {
                    method: "prepayment".to_owned(),
                    amount: p.amount,
                })
                .collect(),
        };
        assert_eq!(row.hlc.len(), 16 + 1 + 5 + 1 + MAX_NODE_LEN);
        row.validate().expect("the hub accepts it too");
    }

    fn session_row(cashier: &str, hlc: &str) -> SessionRow {
        SessionRow {
            session_id: uuid::Uuid::new_v4().to_string(),
            store: "s".repeat(32),
            till: "t".repeat(32),
            cashier: cashier.to_owned(),
            opened_hlc: hlc.to_owned(),
            opening_cash: Kopecks(0),
            closed_hlc: Some(hlc.to_owned()),
            close_json: None,
        }
    }

    #[test]
    fn the_largest_session_header_and_close_are_accepted() {
        let hlc = latest_hlc();
        let cashier = WIDE.repeat(MAX_CASHIER_LEN);
        let max = crdt_model::money::MAX_AMOUNT;
        let close = SessionClose {
            closed_at: hlc.clone(),
            cashier: cashier.clone(),
            totals: SessionTotals {
                receipts: u32::MAX,
                sales_total: max,
                refunds_total: max,
                corrections_total: max,
                net_total: Kopecks(i64::MIN),
                payments: PaymentTotals {
                    cash: Kopecks(i64::MIN),
                    card: Kopecks(i64::MIN),
                    prepayment: Kopecks(i64::MIN),
                },
                cash_in: max,
                cash_out: max,
            },
            cash_balance: Kopecks(i64::MIN),
        };
        let mut row = session_row(&cashier, &hlc.to_string());
        row.close_json = Some(serde_json::to_string(&close).expect("json"));
        row.validate().expect("maximal header and close");
        // 64 Cyrillic letters, the brief's case: 128 bytes.
        let cyrillic = "Щ".repeat(MAX_CASHIER_LEN);
        session_row(&cyrillic, &hlc.to_string())
            .validate()
            .expect("Cyrillic cashier");
    }

    #[test]
    fn bad_timestamps_and_names_are_still_refused() {
        let hlc = latest_hlc().to_string();
        let too_long = "Щ".repeat(MAX_CASHIER_LEN + 1);
        assert!(session_row(&too_long, &hlc).validate().is_err());
        assert!(session_row("   ", &hlc).validate().is_err());
        assert!(session_row("Иванова\n", &hlc).validate().is_err());
        for bad in [
            "",
            "2026-01-01",
            "0001763900000000-00000-",
            "1763900000000-00000-T1",
            "0001763900000000-00000-T 1",
        ] {
            assert!(
                session_row("Иванова", bad).validate().is_err(),
                "{bad:?} accepted"
            );
        }
        session_row("Иванова", "0001763900000000-00000-S1/T1/node")
            .validate()
            .expect("a plain HLC");
    }
}
