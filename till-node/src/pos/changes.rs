//! What a page may change in a session document: it may only add sales.
//!
//! The page writes receipts into the open session; everything else in the document — the
//! header, earlier receipts, cash movements, the Z close and the fiscal stamps — belongs to the
//! daemon (movements, close and stamps are written through the till's own routes and its
//! pipeline). A round whose changes touch any of them, or add a receipt that is not a plain sale
//! within the discount cap, is refused whole: refunds go through the till's refund saga, which
//! checks the original first.

use crdt_model::receipt::{exceeds_percent, ReceiptKind, MAX_DISCOUNT_PERCENT};
use crdt_model::session::SessionView;
use crdt_model::{Kopecks, Receipt};

/// The receipts `after` adds to `before`, if that is all the page changed; otherwise why not.
pub fn added_sales(before: &SessionView, after: &SessionView) -> Result<Vec<Receipt>, String> {
    if before.header != after.header {
        return Err("the page may not change the session header".to_owned());
    }
    if before.movements != after.movements {
        return Err("the page may not write cash movements into the document".to_owned());
    }
    if before.close != after.close {
        return Err("the page may not close the session in the document".to_owned());
    }
    if before.fiscal != after.fiscal {
        return Err("the page may not write fiscal stamps".to_owned());
    }
    for receipt in &before.receipts {
        match after.receipts.iter().find(|r| r.id == receipt.id) {
            Some(same) if same == receipt => {}
            _ => return Err(format!("the page may not change receipt {}", receipt.id)),
        }
    }
    let added: Vec<Receipt> = after
        .receipts
        .iter()
        .filter(|r| !before.receipts.iter().any(|b| b.id == r.id))
        .cloned()
        .collect();
    for receipt in &added {
        if receipt.kind != ReceiptKind::Sale {
            return Err(format!(
                "receipt {} is not a sale; refunds go through POST /v1/pos/refund",
                receipt.id
            ));
        }
        let gross: i64 = receipt.lines.iter().map(|l| l.sum.0 + l.discount.0).sum();
        let discount: i64 = receipt.lines.iter().map(|l| l.discount.0).sum();
        if exceeds_percent(Kopecks(discount), Kopecks(gross), MAX_DISCOUNT_PERCENT) {
            return Err(format!(
                "receipt {} has a discount above {MAX_DISCOUNT_PERCENT} %",
                receipt.id
            ));
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_model::hlc::Hlc;
    use crdt_model::receipt::ReceiptDraft;
    use crdt_model::session::SessionHeader;
    use crdt_model::{Kopecks, ReceiptId, SessionId};
    use uuid::Uuid;

    fn header() -> SessionHeader {
        SessionHeader {
            session_id: SessionId::new(Uuid::now_v7()),
            store: "S1".parse().expect("store"),
            till: "T1".parse().expect("till"),
            cashier: "ivanova".into(),
            opened_at: Hlc::new(1_700_000_000_000, 0, "S1/T1/node").expect("hlc"),
            opening_cash: Kopecks(0),
        }
    }

    fn view(header: &SessionHeader, receipts: Vec<Receipt>) -> SessionView {
        SessionView {
            header: header.clone(),
            receipts,
            movements: Vec::new(),
            close: None,
            fiscal: Default::default(),
        }
    }

    fn receipt(header: &SessionHeader, kind: &str, discount: i64) -> Receipt {
        let draft: ReceiptDraft = serde_json::from_value(serde_json::json!({
            "pos_id": "web", "type": kind,
            "items": [{"name": "Оправа", "qty": 1, "price": 10_000, "vat": "vat22",
                       "discount": discount}],
            "payments": [{"method": "cash", "amount": 10_000 - discount}],
            "refund_of": if kind == "refund" { Some(Uuid::new_v4()) } else { None },
        }))
        .expect("draft");
        Receipt::from_draft(
            draft,
            ReceiptId::new(Uuid::new_v4()),
            header.store.clone(),
            header.till.clone(),
            header.session_id,
            Hlc::new(1_700_000_001_000, 0, "S1/T1/wpage").expect("hlc"),
        )
        .expect("receipt")
    }

    #[test]
    fn new_sales_within_the_cap_are_the_only_change_allowed() {
        let h = header();
        let first = receipt(&h, "sale", 0);
        let second = receipt(&h, "sale", 5_000);
        let before = view(&h, vec![first.clone()]);
        let after = view(&h, vec![first.clone(), second.clone()]);
        assert_eq!(added_sales(&before, &after), Ok(vec![second]));
        assert_eq!(added_sales(&before, &before), Ok(vec![]));
    }

    #[test]
    fn anything_else_refuses_the_round() {
        let h = header();
        let first = receipt(&h, "sale", 0);
        let before = view(&h, vec![first.clone()]);
        let too_much = view(&h, vec![first.clone(), receipt(&h, "sale", 5_001)]);
        assert!(added_sales(&before, &too_much).is_err());
        let refund = view(&h, vec![first.clone(), receipt(&h, "refund", 0)]);
        assert!(added_sales(&before, &refund).is_err());
        let dropped = view(&h, vec![]);
        assert!(added_sales(&before, &dropped).is_err());
        let mut changed = first.clone();
        changed.buyer_contact = Some("+79990000000".into());
        assert!(added_sales(&before, &view(&h, vec![changed])).is_err());
        let mut other_header = view(&h, vec![first]);
        other_header.header.cashier = "sidorov".into();
        assert!(added_sales(&before, &other_header).is_err());
    }
}
