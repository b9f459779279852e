//! The money and field rules of a receipt: [`Receipt::from_draft`] applies them to a
//! request, [`Receipt::check_invariants`] re-checks them on a stored receipt.
//!
//! Both go through the same small checks, so a receipt that passed one passes the other;
//! field paths follow the JSON the checked value came from (`items[2].price` for a draft,
//! `lines[2].sum` for a stored receipt).

use crate::error::{DiscountError, ReceiptError, Violation};
use crate::hlc::Hlc;
use crate::ids::{ReceiptId, SessionId, StoreId, TillId};
use crate::money::{line_amount, Kopecks, Quantity, MAX_AMOUNT, MAX_QUANTITY};
use crate::receipt::draft::{check_text, normalize_contact};
use crate::receipt::{
    spread_discount, Payment, Receipt, ReceiptDraft, ReceiptKind, ReceiptLine,
    DEFAULT_PAYMENT_METHOD, DEFAULT_PAYMENT_OBJECT, MAX_ITEM_NAME_LEN, MAX_LINES, MAX_PAYMENTS,
    MAX_POS_ID_LEN, MAX_SKU_LEN,
};

type Checked<T> = Result<T, ReceiptError>;

fn at(field: impl Into<String>) -> impl FnOnce(Violation) -> ReceiptError {
    let field = field.into();
    move |violation| ReceiptError::new(field, violation)
}

impl Receipt {
    /// Validates a draft and builds the receipt. `id`, `session` and `hlc` are made by the
    /// caller (the till), as this crate has no clock and no randomness.
    pub fn from_draft(
        draft: ReceiptDraft,
        id: ReceiptId,
        store: StoreId,
        till: TillId,
        session: SessionId,
        hlc: Hlc,
    ) -> Checked<Receipt> {
        hlc.validate()
            .map_err(|_| ReceiptError::new("hlc", Violation::Invalid("invalid timestamp")))?;
        check_text(&draft.pos_id, MAX_POS_ID_LEN, false).map_err(at("pos_id"))?;
        check_count(draft.items.len(), MAX_LINES).map_err(at("items"))?;

        let mut lines = Vec::with_capacity(draft.items.len());
        let mut net_amounts = Vec::with_capacity(draft.items.len());
        for (index, item) in draft.items.into_iter().enumerate() {
            let field = |name: &str| format!("items[{index}].{name}");
            check_sku_and_name(item.sku.as_deref(), &item.name)
                .map_err(|(name, v)| ReceiptError::new(field(name), v))?;
            check_quantity(item.qty).map_err(at(field("qty")))?;
            check_amount(item.price, false).map_err(at(field("price")))?;
            let amount = line_amount(item.price, item.qty)
                .ok_or(Violation::Overflow)
                .and_then(|amount| check_amount(amount, false).map(|()| amount))
                .map_err(at(format!("items[{index}]")))?;
            let discount = item.discount.unwrap_or(Kopecks::ZERO);
            check_amount(discount, false).map_err(at(field("discount")))?;
            if discount > amount {
                return Err(ReceiptError::new(
                    field("discount"),
                    Violation::TooLarge { max: amount.0 },
                ));
            }
            let payment_method = item.payment_method.unwrap_or(DEFAULT_PAYMENT_METHOD);
            check_payment_method(payment_method).map_err(at(field("payment_method")))?;
            let payment_object = item.payment_object.unwrap_or(DEFAULT_PAYMENT_OBJECT);
            check_payment_object(payment_object).map_err(at(field("payment_object")))?;
            let net = Kopecks(amount.0 - discount.0);
            net_amounts.push(net);
            lines.push(ReceiptLine {
                sku: item.sku,
                name: item.name,
                qty: item.qty,
                price: item.price,
                vat: item.vat,
                discount,
                sum: net,
                payment_method,
                payment_object,
            });
        }

        let receipt_discount = draft.discount.unwrap_or(Kopecks::ZERO);
        let sums = spread_discount(&net_amounts, receipt_discount).map_err(|error| {
            let violation = match error {
                DiscountError::NegativeDiscount | DiscountError::NegativeAmount { .. } => {
                    Violation::Negative
                }
                DiscountError::ExceedsTotal { total, .. } => Violation::TooLarge { max: total.0 },
                DiscountError::Overflow => Violation::Overflow,
            };
            ReceiptError::new("discount", violation)
        })?;
        for ((line, net), sum) in lines.iter_mut().zip(&net_amounts).zip(sums) {
            // The share is at most the net amount, so this stays within [0, amount].
            line.discount = Kopecks(line.discount.0 + (net.0 - sum.0));
            line.sum = sum;
        }
        let total = check_total(&lines, "items")?;

        let payments: Vec<Payment> = draft
            .payments
            .iter()
            .map(|payment| Payment {
                method: payment.method,
                amount: payment.amount,
            })
            .collect();
        check_payments(&payments, total)?;

        let buyer_contact = match draft.buyer_contact {
            Some(contact) => Some(normalize_contact(&contact).map_err(at("buyer_contact"))?),
            None => None,
        };
        check_refund_link(draft.kind, draft.refund_of, id)?;

        Ok(Receipt {
            id,
            session,
            store,
            till,
            pos_id: draft.pos_id,
            kind: draft.kind,
            hlc,
            lines,
            payments,
            total,
            buyer_contact,
            refund_of: draft.refund_of,
        })
    }

    /// Re-checks every rule on a stored receipt: lengths, codes, each line's sum against
    /// its price, quantity and discount, the total against the lines and the payments
    /// against the total.
    pub fn check_invariants(&self) -> Checked<()> {
        self.hlc
            .validate()
            .map_err(|_| ReceiptError::new("hlc", Violation::Invalid("invalid timestamp")))?;
        check_text(&self.pos_id, MAX_POS_ID_LEN, false).map_err(at("pos_id"))?;
        check_count(self.lines.len(), MAX_LINES).map_err(at("lines"))?;
        for (index, line) in self.lines.iter().enumerate() {
            let field = |name: &str| format!("lines[{index}].{name}");
            check_sku_and_name(line.sku.as_deref(), &line.name)
                .map_err(|(name, v)| ReceiptError::new(field(name), v))?;
            check_quantity(line.qty).map_err(at(field("qty")))?;
            check_amount(line.price, false).map_err(at(field("price")))?;
            check_amount(line.discount, false).map_err(at(field("discount")))?;
            check_amount(line.sum, false).map_err(at(field("sum")))?;
            check_payment_method(line.payment_method).map_err(at(field("payment_method")))?;
            check_payment_object(line.payment_object).map_err(at(field("payment_object")))?;
            let expected = line_amount(line.price, line.qty)
                .and_then(|amount| amount.checked_sub(line.discount))
                .ok_or_else(|| ReceiptError::new(field("sum"), Violation::Overflow))?;
            if expected != line.sum {
                return Err(ReceiptError::new(
                    field("sum"),
                    Violation::Mismatch {
                        expected,
                        found: line.sum,
                    },
                ));
            }
        }
        let total = check_total(&self.lines, "lines")?;
        if total != self.total {
            return Err(ReceiptError::new(
                "total",
                Violation::Mismatch {
                    expected: total,
                    found: self.total,
                },
            ));
        }
        check_payments(&self.payments, self.total)?;
        if let Some(contact) = &self.buyer_contact {
            let normal = normalize_contact(contact).map_err(at("buyer_contact"))?;
            if &normal != contact {
                return Err(ReceiptError::new(
                    "buyer_contact",
                    Violation::Invalid("not in normal form"),
                ));
            }
        }
        check_refund_link(self.kind, self.refund_of, self.id)
    }
}

fn check_count(count: usize, max: usize) -> Result<(), Violation> {
    if count == 0 {
        return Err(Violation::Empty);
    }
    if count > max {
        return Err(Violation::TooMany { max });
    }
    Ok(())
}

/// Either a SKU or a name; both bounded. Returns the offending sub-field on error.
fn check_sku_and_name(sku: Option<&str>, name: &str) -> Result<(), (&'static str, Violation)> {
    if let Some(sku) = sku {
        check_text(sku, MAX_SKU_LEN, false).map_err(|v| ("sku", v))?;
        if sku.contains('|') {
            return Err(("sku", Violation::Invalid("contains '|'")));
        }
    }
    check_text(name, MAX_ITEM_NAME_LEN, true).map_err(|v| ("name", v))?;
    if sku.is_none() && name.trim().is_empty() {
        return Err(("name", Violation::Missing));
    }
    Ok(())
}

fn check_quantity(qty: Quantity) -> Result<(), Violation> {
    if !qty.is_positive() {
        return Err(Violation::NotPositive);
    }
    if qty > MAX_QUANTITY {
        return Err(Violation::TooLarge {
            max: MAX_QUANTITY.milli(),
        });
    }
    Ok(())
}

/// `0 <= amount <= MAX_AMOUNT`, or `0 < amount` when `positive`.
fn check_amount(amount: Kopecks, positive: bool) -> Result<(), Violation> {
    if positive && !amount.is_positive() {
        return Err(Violation::NotPositive);
    }
    if amount.is_negative() {
        return Err(Violation::Negative);
    }
    if amount > MAX_AMOUNT {
        return Err(Violation::TooLarge { max: MAX_AMOUNT.0 });
    }
    Ok(())
}

/// Tag 1214 takes 1..=7.
fn check_payment_method(code: u8) -> Result<(), Violation> {
    if (1..=7).contains(&code) {
        Ok(())
    } else {
        Err(Violation::Invalid("FFD tag 1214 takes 1 to 7"))
    }
}

/// Tag 1212 takes 1..=27 and 30..=33.
fn check_payment_object(code: u8) -> Result<(), Violation> {
    if (1..=27).contains(&code) || (30..=33).contains(&code) {
        Ok(())
    } else {
        Err(Violation::Invalid("FFD tag 1212 takes 1 to 27 or 30 to 33"))
    }
}

/// The sum of the line sums, which must be above zero and within [`MAX_AMOUNT`].
fn check_total(lines: &[ReceiptLine], field: &str) -> Checked<Kopecks> {
    let total = Kopecks::checked_sum(lines.iter().map(|line| line.sum))
        .ok_or_else(|| ReceiptError::new(field, Violation::Overflow))?;
    check_amount(total, true).map_err(at("total"))?;
    Ok(total)
}

fn check_payments(payments: &[Payment], total: Kopecks) -> Checked<()> {
    check_count(payments.len(), MAX_PAYMENTS).map_err(at("payments"))?;
    for (index, payment) in payments.iter().enumerate() {
        check_amount(payment.amount, true).map_err(at(format!("payments[{index}].amount")))?;
    }
    let paid = Kopecks::checked_sum(payments.iter().map(|payment| payment.amount))
        .ok_or_else(|| ReceiptError::new("payments", Violation::Overflow))?;
    if paid != total {
        return Err(ReceiptError::new(
            "payments",
            Violation::Mismatch {
                expected: total,
                found: paid,
            },
        ));
    }
    Ok(())
}

/// A refund names the sale it returns; a sale names none; nothing refunds itself.
fn check_refund_link(
    kind: ReceiptKind,
    refund_of: Option<ReceiptId>,
    id: ReceiptId,
) -> Checked<()> {
    match (kind, refund_of) {
        (ReceiptKind::Refund, None) => Err(ReceiptError::new("refund_of", Violation::Missing)),
        (ReceiptKind::Sale, Some(_)) => Err(ReceiptError::new("refund_of", Violation::NotAllowed)),
        (_, Some(original)) if original == id => Err(ReceiptError::new(
            "refund_of",
            Violation::Invalid("a receipt cannot refer to itself"),
        )),
        _ => Ok(()),
    }
}
