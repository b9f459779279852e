//! Tests of receipt validation, discount spreading on real receipts, invariants and VAT.

use uuid::Uuid;

use super::*;
use crate::error::{ReceiptError, Violation};

fn ids() -> (ReceiptId, StoreId, TillId, SessionId, Hlc) {
    (
        ReceiptId::new(Uuid::from_u128(1)),
        StoreId::new("S1").expect("valid store"),
        TillId::new("T1").expect("valid till"),
        SessionId::new(Uuid::from_u128(2)),
        Hlc::new(1_763_900_000_000, 0, "T1").expect("valid hlc"),
    )
}

fn build(draft: ReceiptDraft) -> Result<Receipt, ReceiptError> {
    let (id, store, till, session, hlc) = ids();
    Receipt::from_draft(draft, id, store, till, session, hlc)
}

fn item(name: &str, qty_milli: i64, price: i64, vat: VatRate) -> ItemDraft {
    ItemDraft {
        sku: None,
        name: name.to_owned(),
        qty: Quantity::from_milli(qty_milli),
        price: Kopecks(price),
        vat,
        discount: None,
        payment_method: None,
        payment_object: None,
    }
}

fn pay(method: PaymentMethod, amount: i64) -> PaymentDraft {
    PaymentDraft {
        method,
        amount: Kopecks(amount),
    }
}

fn sale(items: Vec<ItemDraft>, payments: Vec<PaymentDraft>) -> ReceiptDraft {
    ReceiptDraft {
        pos_id: "POS-1".to_owned(),
        kind: ReceiptKind::Sale,
        items,
        payments,
        discount: None,
        buyer_contact: None,
        refund_of: None,
    }
}

fn error_of(draft: ReceiptDraft) -> (String, Violation) {
    match build(draft) {
        Ok(receipt) => panic!("expected an error, got {receipt:?}"),
        Err(error) => (error.field, error.violation),
    }
}

#[test]
fn parses_the_till_api_body() {
    let body = r#"{
        "pos_id": "POS-1", "type": "sale",
        "items": [
            {"sku": "RB3025", "name": "Оправа Ray-Ban", "qty": 1, "price": 1500000, "vat": "none"},
            {"name": "Проверка зрения", "qty": 1, "price": 150000, "vat": "vat22", "payment_object": 4},
            {"name": "Салфетка", "qty": 2.5, "price": 10000, "vat": "vat22", "discount": 500}
        ],
        "payments": [{"method": "card", "amount": 1000000}, {"method": "cash", "amount": 674500}],
        "buyer_contact": "+7 900 123-45-67"
    }"#;
    let draft: ReceiptDraft = serde_json::from_str(body).expect("valid body");
    let receipt = build(draft).expect("valid receipt");
    assert_eq!(receipt.total, Kopecks(1_674_500));
    assert_eq!(receipt.lines[2].sum, Kopecks(24_500));
    assert_eq!(receipt.lines[1].payment_object, 4);
    assert_eq!(receipt.lines[0].payment_method, DEFAULT_PAYMENT_METHOD);
    assert_eq!(receipt.buyer_contact.as_deref(), Some("+79001234567"));
    assert_eq!(receipt.check_invariants(), Ok(()));
}

#[test]
fn receipt_discount_is_spread_so_lines_add_up_to_the_total() {
    let mut draft = sale(
        vec![
            item("A", 1000, 100, VatRate::Vat20),
            item("B", 1000, 100, VatRate::Vat20),
            item("C", 1000, 100, VatRate::Vat20),
        ],
        vec![pay(PaymentMethod::Cash, 200)],
    );
    draft.items[0].discount = Some(Kopecks(0));
    draft.discount = Some(Kopecks(100));
    let receipt = build(draft).expect("valid receipt");
    let sums: Vec<i64> = receipt.lines.iter().map(|line| line.sum.0).collect();
    assert_eq!(sums, vec![66, 67, 67]);
    let discounts: Vec<i64> = receipt.lines.iter().map(|line| line.discount.0).collect();
    assert_eq!(discounts, vec![34, 33, 33]);
    assert_eq!(receipt.total, Kopecks(200));
    assert_eq!(receipt.check_invariants(), Ok(()));
}

#[test]
fn line_and_receipt_discounts_combine() {
    let mut draft = sale(
        vec![
            item("A", 1000, 1000, VatRate::Vat20),
            item("B", 3000, 1000, VatRate::Vat20),
        ],
        vec![pay(PaymentMethod::Card, 2000)],
    );
    draft.items[1].discount = Some(Kopecks(1000));
    draft.discount = Some(Kopecks(1000));
    // Nets 1000 and 2000; 1000 off in proportion: 333.33 and 666.67.
    let receipt = build(draft).expect("valid receipt");
    assert_eq!(receipt.lines[0].sum, Kopecks(667));
    assert_eq!(receipt.lines[1].sum, Kopecks(1333));
    assert_eq!(receipt.lines[1].discount, Kopecks(1667));
    assert_eq!(receipt.check_invariants(), Ok(()));
}

#[test]
fn errors_name_the_offending_field() {
    let ok_items = || {
        vec![
            item("A", 1000, 100, VatRate::Vat20),
            item("B", 1000, 100, VatRate::Vat20),
        ]
    };
    let ok_payments = || vec![pay(PaymentMethod::Cash, 200)];

    let mut draft = sale(ok_items(), ok_payments());
    draft.items.push(item("C", 1000, -5, VatRate::Vat20));
    assert_eq!(
        error_of(draft),
        ("items[2].price".to_owned(), Violation::Negative)
    );

    assert_eq!(
        error_of(sale(vec![], ok_payments())),
        ("items".to_owned(), Violation::Empty)
    );

    let mut draft = sale(ok_items(), ok_payments());
    draft.items[1].qty = Quantity::from_milli(0);
    assert_eq!(
        error_of(draft),
        ("items[1].qty".to_owned(), Violation::NotPositive)
    );

    let mut draft = sale(ok_items(), ok_payments());
    draft.items[0].discount = Some(Kopecks(101));
    assert_eq!(
        error_of(draft),
        (
            "items[0].discount".to_owned(),
            Violation::TooLarge { max: 100 }
        )
    );

    let mut draft = sale(ok_items(), ok_payments());
    draft.items[0].name = String::new();
    assert_eq!(
        error_of(draft),
        ("items[0].name".to_owned(), Violation::Missing)
    );

    let mut draft = sale(ok_items(), ok_payments());
    draft.items[0].name = String::new();
    draft.items[0].sku = Some("SKU|1".to_owned());
    assert_eq!(error_of(draft).0, "items[0].sku");

    let mut draft = sale(ok_items(), ok_payments());
    draft.items[0].payment_method = Some(8);
    assert_eq!(error_of(draft).0, "items[0].payment_method");

    let mut draft = sale(ok_items(), ok_payments());
    draft.items[0].payment_object = Some(28);
    assert_eq!(error_of(draft).0, "items[0].payment_object");

    let mut draft = sale(ok_items(), ok_payments());
    draft.discount = Some(Kopecks(201));
    assert_eq!(
        error_of(draft),
        ("discount".to_owned(), Violation::TooLarge { max: 200 })
    );

    let draft = sale(ok_items(), vec![pay(PaymentMethod::Cash, 150)]);
    assert_eq!(
        error_of(draft),
        (
            "payments".to_owned(),
            Violation::Mismatch {
                expected: Kopecks(200),
                found: Kopecks(150)
            }
        )
    );

    let draft = sale(
        ok_items(),
        vec![pay(PaymentMethod::Cash, 200), pay(PaymentMethod::Card, 0)],
    );
    assert_eq!(
        error_of(draft),
        ("payments[1].amount".to_owned(), Violation::NotPositive)
    );

    assert_eq!(
        error_of(sale(ok_items(), vec![])),
        ("payments".to_owned(), Violation::Empty)
    );

    let mut draft = sale(ok_items(), ok_payments());
    draft.buyer_contact = Some("not a contact".to_owned());
    assert_eq!(error_of(draft).0, "buyer_contact");

    let mut draft = sale(ok_items(), ok_payments());
    draft.pos_id = String::new();
    assert_eq!(error_of(draft), ("pos_id".to_owned(), Violation::Empty));
}

#[test]
fn limits_are_enforced() {
    let items = vec![item("A", 1000, 1, VatRate::NoVat); MAX_LINES + 1];
    let total = i64::try_from(MAX_LINES + 1).expect("small");
    assert_eq!(
        error_of(sale(items, vec![pay(PaymentMethod::Cash, total)])),
        ("items".to_owned(), Violation::TooMany { max: MAX_LINES })
    );

    let payments = vec![pay(PaymentMethod::Cash, 1); MAX_PAYMENTS + 1];
    let price = i64::try_from(MAX_PAYMENTS + 1).expect("small");
    assert_eq!(
        error_of(sale(vec![item("A", 1000, price, VatRate::NoVat)], payments)),
        (
            "payments".to_owned(),
            Violation::TooMany { max: MAX_PAYMENTS }
        )
    );

    let draft = sale(
        vec![item(
            "A",
            1000,
            crate::money::MAX_AMOUNT.0 + 1,
            VatRate::NoVat,
        )],
        vec![pay(PaymentMethod::Cash, 1)],
    );
    assert_eq!(error_of(draft).0, "items[0].price");

    // Two lines at the maximum each: every line is fine, the total is not.
    let draft = sale(
        vec![
            item("A", 1000, crate::money::MAX_AMOUNT.0, VatRate::NoVat),
            item("B", 1000, crate::money::MAX_AMOUNT.0, VatRate::NoVat),
        ],
        vec![pay(PaymentMethod::Cash, 1)],
    );
    assert_eq!(error_of(draft).0, "total");

    let mut draft = sale(
        vec![item("A", 1000, 100, VatRate::NoVat)],
        vec![pay(PaymentMethod::Cash, 100)],
    );
    draft.items[0].name = "x".repeat(MAX_ITEM_NAME_LEN + 1);
    assert_eq!(
        error_of(draft),
        (
            "items[0].name".to_owned(),
            Violation::TooLong {
                max: MAX_ITEM_NAME_LEN
            }
        )
    );
}

#[test]
fn refunds_must_name_their_sale() {
    let items = || vec![item("A", 1000, 100, VatRate::Vat20)];
    let payments = || vec![pay(PaymentMethod::Cash, 100)];
    let mut refund = sale(items(), payments());
    refund.kind = ReceiptKind::Refund;
    assert_eq!(
        error_of(refund.clone()),
        ("refund_of".to_owned(), Violation::Missing)
    );
    refund.refund_of = Some(ReceiptId::new(Uuid::from_u128(99)));
    let receipt = build(refund).expect("valid refund");
    assert_eq!(receipt.signed_total(), Kopecks(-100));
    assert_eq!(receipt.signed_paid_by(PaymentMethod::Cash), Kopecks(-100));

    let mut draft = sale(items(), payments());
    draft.refund_of = Some(ReceiptId::new(Uuid::from_u128(99)));
    assert_eq!(
        error_of(draft),
        ("refund_of".to_owned(), Violation::NotAllowed)
    );

    let mut self_refund = sale(items(), payments());
    self_refund.kind = ReceiptKind::Refund;
    self_refund.refund_of = Some(ids().0);
    assert_eq!(error_of(self_refund).0, "refund_of");
}

#[test]
fn invariants_catch_tampered_receipts() {
    let valid = build(sale(
        vec![
            item("A", 1500, 1000, VatRate::Vat20),
            item("B", 1000, 500, VatRate::Vat10),
        ],
        vec![
            pay(PaymentMethod::Cash, 1000),
            pay(PaymentMethod::Card, 1000),
        ],
    ))
    .expect("valid receipt");
    assert_eq!(valid.check_invariants(), Ok(()));

    let mut tampered = valid.clone();
    tampered.lines[0].sum = Kopecks(1400);
    let error = tampered
        .check_invariants()
        .expect_err("sum no longer matches");
    assert_eq!(error.field, "lines[0].sum");

    let mut tampered = valid.clone();
    tampered.total = Kopecks(1999);
    assert_eq!(
        tampered.check_invariants().map_err(|e| e.field),
        Err("total".to_owned())
    );

    let mut tampered = valid.clone();
    tampered.payments[1].amount = Kopecks(999);
    assert_eq!(
        tampered.check_invariants().map_err(|e| e.field),
        Err("payments".to_owned())
    );

    let mut tampered = valid.clone();
    tampered.lines.clear();
    assert_eq!(
        tampered.check_invariants().map_err(|e| e.field),
        Err("lines".to_owned())
    );

    let mut tampered = valid;
    tampered.buyer_contact = Some("+7 900 123 45 67".to_owned());
    assert_eq!(
        tampered.check_invariants().map_err(|e| e.field),
        Err("buyer_contact".to_owned())
    );
}

#[test]
fn vat_totals_per_rate() {
    let receipt = build(sale(
        vec![
            item("A", 1000, 12_000, VatRate::Vat20),
            item("B", 1000, 11_000, VatRate::Vat10),
            item("C", 1000, 6_000, VatRate::Vat20),
            item("D", 1000, 5_000, VatRate::NoVat),
        ],
        vec![pay(PaymentMethod::Card, 34_000)],
    ))
    .expect("valid receipt");
    let totals = receipt.vat_totals();
    assert_eq!(
        totals,
        vec![
            VatTotal {
                vat: VatRate::Vat20,
                gross: Kopecks(18_000),
                vat_amount: Kopecks(3_000)
            },
            VatTotal {
                vat: VatRate::Vat10,
                gross: Kopecks(11_000),
                vat_amount: Kopecks(1_000)
            },
            VatTotal {
                vat: VatRate::NoVat,
                gross: Kopecks(5_000),
                vat_amount: Kopecks(0)
            },
        ]
    );
}

#[test]
fn receipt_json_round_trips() {
    let mut draft = sale(
        vec![item("Линза", 2_000, 350_050, VatRate::NoVat)],
        vec![pay(PaymentMethod::Prepayment, 700_100)],
    );
    draft.buyer_contact = Some("anna@example.ru".to_owned());
    let receipt = build(draft).expect("valid receipt");
    let json = serde_json::to_string(&receipt).expect("serialises");
    assert!(json.contains("\"type\":\"sale\""));
    let back: Receipt = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, receipt);
    assert_eq!(back.paid_by(PaymentMethod::Prepayment), Kopecks(700_100));
}

#[test]
fn discount_caps_compare_exactly() {
    assert!(!exceeds_percent(
        Kopecks(500),
        Kopecks(1000),
        MAX_DISCOUNT_PERCENT
    ));
    assert!(exceeds_percent(
        Kopecks(501),
        Kopecks(1000),
        MAX_DISCOUNT_PERCENT
    ));
    assert!(!exceeds_percent(
        Kopecks(100),
        Kopecks(1000),
        CASHIER_DISCOUNT_PERCENT
    ));
    assert!(exceeds_percent(
        Kopecks(101),
        Kopecks(1000),
        CASHIER_DISCOUNT_PERCENT
    ));
    assert!(!exceeds_percent(
        Kopecks(i64::MAX / 2),
        Kopecks(i64::MAX),
        MAX_DISCOUNT_PERCENT
    ));
}
