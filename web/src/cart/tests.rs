//! Unit tests of the cart: totals, discount spread and limits, change, split payments and
//! the receipt request.

use super::*;
use crate::i18n::{Key, Lang};
use crdt_model::receipt::spread_discount;

fn product(sku: &str, price: i64) -> Product {
    Product {
        sku: sku.to_owned(),
        ean: None,
        name: format!("Товар {sku}"),
        price: Kopecks(price),
        cost: None,
        vat: VatRate::NoVat,
        unit: "шт".to_owned(),
        category: None,
        brand: None,
    }
}

fn cart_of(prices: &[i64]) -> Cart {
    let mut cart = Cart::default();
    for (index, price) in prices.iter().enumerate() {
        cart.add_product(&product(&format!("SKU-{index}"), *price))
            .expect("added");
    }
    cart
}

fn cash_exact(cart: &Cart) -> PaymentPlan {
    plan_payment(cart.total(), PayMode::Cash, None, None).expect("plan")
}

#[test]
fn scanning_the_same_product_again_adds_a_unit() {
    let mut cart = Cart::default();
    let frame = product("FR-1", 150_000);
    assert_eq!(cart.add_product(&frame), Ok(0));
    assert_eq!(cart.add_product(&product("LENS", 50_000)), Ok(1));
    assert_eq!(cart.add_product(&frame), Ok(0));
    assert_eq!(cart.lines.len(), 2);
    assert_eq!(cart.lines[0].qty, Quantity::from_milli(2000));
    assert_eq!(cart.gross(), Kopecks(350_000));
    assert_eq!(cart.total(), Kopecks(350_000));
}

#[test]
fn quantities_change_and_remove_lines() {
    let mut cart = cart_of(&[10_000, 20_000]);
    cart.increment(1).expect("inc");
    assert_eq!(cart.total(), Kopecks(50_000));
    cart.set_line_discount(1, Kopecks(30_000))
        .expect("discount");
    // Back to one unit: the line discount is clamped to the new amount.
    cart.decrement(1).expect("dec");
    assert_eq!(cart.lines[1].discount, Kopecks(20_000));
    cart.decrement(1).expect("dec removes");
    assert_eq!(cart.lines.len(), 1);
    assert_eq!(cart.decrement(5), Err(CartError::NoSuchLine));
    assert_eq!(
        cart.set_qty(0, Quantity::from_milli(0)),
        Err(CartError::BadQuantity)
    );
    cart.set_qty(0, Quantity::from_milli(500)).expect("half");
    assert_eq!(cart.total(), Kopecks(5_000));
    assert_eq!(cart.remove(0), Ok(()));
    assert!(cart.is_empty());
}

#[test]
fn discounts_cannot_exceed_what_they_apply_to() {
    let mut cart = cart_of(&[10_000, 5_000]);
    assert_eq!(
        cart.set_line_discount(0, Kopecks(10_001)),
        Err(CartError::DiscountAboveAmount {
            max: Kopecks(10_000)
        })
    );
    cart.set_line_discount(0, Kopecks(1_000)).expect("line");
    assert_eq!(
        cart.set_receipt_discount(Kopecks(14_001)),
        Err(CartError::DiscountAboveAmount {
            max: Kopecks(14_000)
        })
    );
    cart.set_receipt_discount(Kopecks(14_000)).expect("receipt");
    // Removing a line clamps the receipt discount to what is left.
    cart.remove(1).expect("remove");
    assert_eq!(cart.receipt_discount, Kopecks(9_000));
}

#[test]
fn receipt_discount_spreads_like_the_model_and_totals_match() {
    let mut cart = cart_of(&[100, 100, 100]);
    cart.set_receipt_discount(Kopecks(10)).expect("discount");
    assert_eq!(cart.total(), Kopecks(290));
    let receipt = cart.preview("w1", &cash_exact(&cart)).expect("valid");
    assert_eq!(receipt.total, cart.total());
    let sums: Vec<Kopecks> = receipt.lines.iter().map(|line| line.sum).collect();
    let expected = spread_discount(&[Kopecks(100); 3], Kopecks(10)).expect("spread");
    assert_eq!(sums, expected);
    let line_discounts: i64 = receipt.lines.iter().map(|line| line.discount.value()).sum();
    assert_eq!(line_discounts, 10);
}

#[test]
fn totals_match_the_model_with_line_and_receipt_discounts() {
    let mut cart = cart_of(&[123_456, 7_890, 99]);
    cart.set_qty(1, Quantity::from_milli(1_250)).expect("qty");
    cart.set_line_discount(0, Kopecks(3_333)).expect("line");
    cart.set_receipt_discount(Kopecks(1_111)).expect("receipt");
    let receipt = cart.preview("w1", &cash_exact(&cart)).expect("valid");
    assert_eq!(receipt.total, cart.total());
    assert_eq!(cart.gross(), Kopecks(123_456 + 9_863 + 99));
    assert_eq!(cart.discount_total(), Kopecks(4_444));
    receipt.check_invariants().expect("invariants");
}

#[test]
fn discount_limits_ten_and_fifty_percent() {
    let mut cart = cart_of(&[100_000]);
    cart.set_receipt_discount(Kopecks(10_000)).expect("10 %");
    assert_eq!(cart.discount_check(), DiscountCheck::Allowed);
    cart.set_receipt_discount(Kopecks(10_001))
        .expect("just above");
    assert_eq!(cart.discount_check(), DiscountCheck::NeedsApproval);
    assert_eq!(
        cart.to_draft("w1", &cash_exact(&cart)),
        Err(CartError::Discount(DiscountCheck::NeedsApproval))
    );
    cart.set_receipt_discount(Kopecks(50_000)).expect("50 %");
    approve(&mut cart);
    assert_eq!(cart.discount_check(), DiscountCheck::Allowed);
    assert!(cart.preview("w1", &cash_exact(&cart)).is_ok());
    // Line and receipt discounts count together.
    cart.set_line_discount(0, Kopecks(1)).expect("line");
    assert_eq!(cart.discount_check(), DiscountCheck::TooLarge);
    assert!(matches!(
        cart.to_draft("w1", &cash_exact(&cart)),
        Err(CartError::Discount(DiscountCheck::TooLarge))
    ));
}

#[test]
fn cash_change_is_tendered_minus_total() {
    let plan = plan_payment(
        Kopecks(123_450),
        PayMode::Cash,
        Some(Kopecks(200_000)),
        None,
    )
    .expect("plan");
    assert_eq!(plan.change, Kopecks(76_550));
    assert_eq!(plan.payments().len(), 1);
    assert_eq!(plan.payments()[0].amount, Kopecks(123_450));
    let exact = plan_payment(Kopecks(500), PayMode::Cash, None, None).expect("plan");
    assert_eq!((exact.tendered, exact.change), (Kopecks(500), Kopecks(0)));
    assert_eq!(
        plan_payment(Kopecks(500), PayMode::Cash, Some(Kopecks(499)), None),
        Err(PaymentError::TenderedTooLow {
            needed: Kopecks(500)
        })
    );
    assert_eq!(
        plan_payment(Kopecks(0), PayMode::Cash, None, None),
        Err(PaymentError::NothingToPay)
    );
}

#[test]
fn card_and_split_payments() {
    let card = plan_payment(Kopecks(150_000), PayMode::Card, Some(Kopecks(1)), None).expect("card");
    assert_eq!(
        (card.cash, card.card, card.change),
        (Kopecks(0), Kopecks(150_000), Kopecks(0))
    );
    let split = plan_payment(
        Kopecks(150_000),
        PayMode::Split,
        Some(Kopecks(100_000)),
        Some(Kopecks(100_000)),
    )
    .expect("split");
    assert_eq!(
        (split.cash, split.card),
        (Kopecks(50_000), Kopecks(100_000))
    );
    assert_eq!(split.change, Kopecks(50_000));
    let methods: Vec<PaymentMethod> = split.payments().iter().map(|p| p.method).collect();
    assert_eq!(methods, vec![PaymentMethod::Cash, PaymentMethod::Card]);
    for bad_card in [None, Some(Kopecks(0)), Some(Kopecks(150_000))] {
        assert_eq!(
            plan_payment(Kopecks(150_000), PayMode::Split, None, bad_card),
            Err(PaymentError::SplitNeedsCard)
        );
    }
    assert_eq!(
        plan_payment(
            Kopecks(150_000),
            PayMode::Split,
            None,
            Some(Kopecks(150_001))
        ),
        Err(PaymentError::CardTooLarge)
    );
    let mut cart = cart_of(&[150_000]);
    cart.buyer_contact = " +7 (900) 123-45-67 ".to_owned();
    let receipt = cart.preview("w1", &split).expect("split receipt");
    assert_eq!(receipt.paid_by(PaymentMethod::Card), Kopecks(100_000));
    assert_eq!(receipt.buyer_contact.as_deref(), Some("+79001234567"));
}

#[test]
fn the_draft_refuses_what_the_till_would() {
    let empty = Cart::default();
    let plan = plan_payment(Kopecks(100), PayMode::Cash, None, None).expect("plan");
    assert_eq!(empty.to_draft("w1", &plan), Err(CartError::Empty));
    let mut cart = cart_of(&[200]);
    assert_eq!(
        cart.to_draft("w1", &plan),
        Err(CartError::Payment(PaymentError::DoesNotAddUp))
    );
    cart.buyer_contact = "not-a-contact".to_owned();
    match cart.preview("w1", &cash_exact(&cart)) {
        Err(CartError::Receipt(error)) => assert_eq!(error.field, "buyer_contact"),
        other => panic!("expected a contact error, got {other:?}"),
    }
    cart.buyer_contact.clear();
    let draft = cart.to_draft("w1", &cash_exact(&cart)).expect("draft");
    assert_eq!(draft.items[0].sku.as_deref(), Some("SKU-0"));
    assert_eq!(draft.items[0].discount, None);
    assert_eq!(draft.discount, None);
    assert_eq!(draft.buyer_contact, None);
}

#[test]
fn a_cart_survives_serialisation() {
    let mut cart = cart_of(&[150_000, 2_500]);
    cart.set_qty(1, Quantity::from_milli(1_500)).expect("qty");
    cart.set_line_discount(0, Kopecks(100)).expect("line");
    cart.buyer_contact = "anna@example.ru".to_owned();
    approve(&mut cart);
    let json = serde_json::to_string(&cart).expect("serialise");
    let back: Cart = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, cart);
}

#[test]
fn a_receipt_holds_at_most_500_lines() {
    let mut cart = Cart::default();
    for index in 0..MAX_LINES {
        cart.add_product(&product(&format!("S{index}"), 100))
            .expect("fits");
    }
    assert_eq!(
        cart.add_product(&product("one-more", 100)),
        Err(CartError::TooManyLines)
    );
    // An existing SKU still counts up.
    assert_eq!(cart.add_product(&product("S0", 100)), Ok(0));
}

#[test]
fn refusals_have_a_text_in_both_languages() {
    let errors = [
        CartError::TooManyLines,
        CartError::DiscountAboveAmount { max: Kopecks(100) },
        CartError::Discount(DiscountCheck::NeedsApproval),
        CartError::Payment(PaymentError::TenderedTooLow { needed: Kopecks(5) }),
    ];
    for error in errors {
        for lang in [Lang::Ru, Lang::En] {
            assert!(!error.describe(lang).is_empty(), "{error:?}");
        }
    }
    let mut cart = cart_of(&[100]);
    cart.buyer_contact = "nope".to_owned();
    let plan = cash_exact(&cart);
    let error = cart.preview("w1", &plan).expect_err("bad contact");
    assert_eq!(
        error.describe(Lang::Ru),
        Key::BuyerContactInvalid.text(Lang::Ru)
    );
}

#[test]
fn an_approval_covers_the_approved_discount_and_lines_only() {
    let mut cart = cart_of(&[100_000, 20_000]);
    cart.set_receipt_discount(Kopecks(13_200)).expect("11 %");
    assert_eq!(cart.discount_check(), DiscountCheck::NeedsApproval);
    approve(&mut cart);
    assert_eq!(cart.discount_check(), DiscountCheck::Allowed);
    assert!(cart.valid_approval().is_some());

    // Less discount than approved is still covered; more is not (11 % → 50 %).
    cart.set_receipt_discount(Kopecks(12_500)).expect("less");
    assert_eq!(cart.discount_check(), DiscountCheck::Allowed);
    cart.set_receipt_discount(Kopecks(60_000)).expect("50 %");
    assert_eq!(cart.discount_check(), DiscountCheck::NeedsApproval);
    assert!(cart.valid_approval().is_none());
    assert!(matches!(
        cart.to_draft("w1", &cash_exact(&cart)),
        Err(CartError::Discount(DiscountCheck::NeedsApproval))
    ));
    // A line discount counts too.
    cart.set_receipt_discount(Kopecks(13_200)).expect("back");
    assert!(cart.valid_approval().is_some());
    cart.set_line_discount(1, Kopecks(1)).expect("line");
    assert_eq!(cart.discount_check(), DiscountCheck::NeedsApproval);
    cart.set_line_discount(1, Kopecks::ZERO).expect("line");

    // Any change to the lines voids it: another product, or another unit.
    let mut added = cart.clone();
    added
        .add_product(&product("EXTRA", 200_000))
        .expect("added");
    added.set_receipt_discount(Kopecks(40_000)).expect("12.5 %");
    assert_eq!(added.discount_check(), DiscountCheck::NeedsApproval);
    let mut more = cart.clone();
    more.increment(1).expect("inc");
    more.set_receipt_discount(Kopecks(15_000)).expect("10.7 %");
    assert_eq!(more.discount_check(), DiscountCheck::NeedsApproval);
    // Within 10 % no approval is needed, valid or not.
    more.set_receipt_discount(Kopecks(14_000)).expect("10 %");
    assert_eq!(more.discount_check(), DiscountCheck::Allowed);

    // An approval stored by an older page (manager only) covers nothing.
    let mut unapproved = cart_of(&[100_000]);
    unapproved
        .set_receipt_discount(Kopecks(20_000))
        .expect("20 %");
    let json = serde_json::to_string(&unapproved).expect("serialise");
    assert!(json.contains(r#""approval":null"#), "{json}");
    let json = json.replace(r#""approval":null"#, r#""approval":{"manager":"petrova"}"#);
    let old: Cart = serde_json::from_str(&json).expect("old cart reads");
    assert!(old.approval.is_some());
    assert_eq!(old.discount_check(), DiscountCheck::NeedsApproval);
}

/// A manager approves the cart as it is now.
fn approve(cart: &mut Cart) {
    let request = cart.approval_request();
    assert!(cart.approve("petrova".to_owned(), request), "approved");
}

#[test]
fn an_approval_answered_after_the_cart_changed_is_not_recorded() {
    let mut cart = cart_of(&[100_000, 20_000]);
    cart.set_receipt_discount(Kopecks(13_200)).expect("11 %");
    // The secret is submitted for 11 %; while the till answers the discount goes to 50 %.
    let request = cart.approval_request();
    cart.set_receipt_discount(Kopecks(60_000)).expect("50 %");
    assert!(!cart.approve("petrova".to_owned(), request.clone()));
    assert_eq!(cart.approval, None);
    assert_eq!(cart.discount_check(), DiscountCheck::NeedsApproval);
    // Nor may a line be added meanwhile, even with the discount put back.
    cart.set_receipt_discount(Kopecks(13_200)).expect("11 %");
    let mut added = cart.clone();
    added.add_product(&product("EXTRA", 1_000)).expect("added");
    assert!(!added.approve("petrova".to_owned(), request.clone()));
    assert_eq!(added.approval, None);
    // The cart as submitted is approved.
    assert!(cart.approve("petrova".to_owned(), request));
    assert_eq!(cart.discount_check(), DiscountCheck::Allowed);
}

#[test]
fn an_unchanged_cart_is_emptied_after_the_sale() {
    let mut cart = cart_of(&[100_000, 20_000]);
    cart.buyer_contact = "anna@example.ru".to_owned();
    cart.set_receipt_discount(Kopecks(1_000)).expect("discount");
    let sold = cart.clone();
    assert_eq!(cart.after_sale(&sold), Cart::default());
}

#[test]
fn goods_scanned_while_the_sale_was_saved_stay_in_the_cart() {
    let mut cart = cart_of(&[100_000, 20_000]);
    cart.set_line_discount(0, Kopecks(5_000)).expect("line");
    cart.set_receipt_discount(Kopecks(3_000)).expect("receipt");
    cart.buyer_contact = "anna@example.ru".to_owned();
    cart.set_receipt_discount(Kopecks(30_000)).expect("25 %");
    approve(&mut cart);
    let sold = cart.clone();

    // While the sale waits: the first product is scanned again and a new one is added.
    let first = cart.lines[0].clone();
    let first = Product {
        sku: first.sku,
        ean: None,
        name: first.name,
        price: first.price,
        cost: None,
        vat: first.vat,
        unit: "шт".to_owned(),
        category: None,
        brand: None,
    };
    cart.add_product(&first).expect("again");
    cart.add_product(&product("NEW", 7_000)).expect("new");

    let left = cart.after_sale(&sold);
    assert_eq!(left.lines.len(), 2);
    assert_eq!(left.lines[0].sku, "SKU-0");
    assert_eq!(left.lines[0].qty, Quantity::ONE);
    // The sold line's discount went with the sale.
    assert_eq!(left.lines[0].discount, Kopecks::ZERO);
    assert_eq!(left.lines[1].sku, "NEW");
    assert_eq!(left.total(), Kopecks(107_000));
    assert_eq!(left.receipt_discount, Kopecks::ZERO);
    assert_eq!(left.buyer_contact, "");
    assert_eq!(left.approval, None);

    // A contact typed meanwhile is the next buyer's.
    let mut typed = sold.clone();
    typed.buyer_contact = "+79001234567".to_owned();
    let left = typed.after_sale(&sold);
    assert!(left.is_empty());
    assert_eq!(left.buyer_contact, "+79001234567");

    // A sold line removed meanwhile leaves nothing behind.
    let mut removed = sold.clone();
    removed.remove(0).expect("removed");
    assert!(removed.after_sale(&sold).is_empty());
}
