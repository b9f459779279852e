//! The cart being sold: lines with quantities and line discounts, a receipt discount, the
//! buyer's contact and a manager's approval; the payment (cash tendered and change, card, or
//! both); and the [`ReceiptDraft`] it becomes.
//!
//! Money rules are the model's: the receipt discount is spread over the lines by
//! `crdt_model::receipt::spread_discount` inside [`Receipt::from_draft`], and
//! [`Cart::preview`] runs exactly that, so what the page shows is what will be stored. So
//! are the discount caps (`crdt_model::receipt::MAX_DISCOUNT_PERCENT`: all discounts together
//! at most 50 % of the receipt before discounts; above `CASHIER_DISCOUNT_PERCENT`, 10 %, a
//! manager must approve), and an approval covers those lines and that much discount only.
//! The cart is serialised into IndexedDB so a reload keeps it; after a sale,
//! [`Cart::after_sale`] keeps what was scanned while the sale was being saved.

use crdt_model::catalogue::Product;
use crdt_model::hlc::Hlc;
use crdt_model::money::MAX_QUANTITY;
use crdt_model::receipt::{
    exceeds_percent, ItemDraft, PaymentDraft, PaymentMethod, ReceiptDraft, ReceiptKind,
    CASHIER_DISCOUNT_PERCENT, MAX_DISCOUNT_PERCENT, MAX_LINES,
};
use crdt_model::{
    line_amount, Kopecks, Quantity, Receipt, ReceiptError, ReceiptId, SessionId, StoreId, TillId,
    VatRate,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::format::money;
use crate::i18n::{fill, Key, Lang};

/// One line of the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// Catalogue SKU.
    pub sku: String,
    /// Name as printed.
    pub name: String,
    /// Unit price.
    pub price: Kopecks,
    /// VAT rate.
    pub vat: VatRate,
    /// Quantity.
    pub qty: Quantity,
    /// This line's own discount.
    pub discount: Kopecks,
}

impl CartLine {
    fn from_product(product: &Product) -> CartLine {
        CartLine {
            sku: product.sku.clone(),
            name: product.name.clone(),
            price: product.price,
            vat: product.vat,
            qty: Quantity::ONE,
            discount: Kopecks::ZERO,
        }
    }

    /// Price × quantity, before discounts (saturating: limits keep it far from overflow).
    pub fn amount(&self) -> Kopecks {
        line_amount(self.price, self.qty).unwrap_or(Kopecks(i64::MAX))
    }

    /// What the line costs after its own discount.
    pub fn net(&self) -> Kopecks {
        self.amount().saturating_sub(self.discount)
    }
}

/// A manager's approval of a discount above the cashier's limit: for exactly these lines and
/// up to this much discount. More discount, or any change to the lines, needs a new approval
/// (so an approval of 11 % cannot be stretched to 50 % or to goods added afterwards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The manager's login.
    pub manager: String,
    /// All discounts together when approved. An approval stored before this field existed
    /// reads as zero with no lines, which covers nothing: it is simply asked for again.
    #[serde(default)]
    pub discount: Kopecks,
    /// The lines when approved.
    #[serde(default)]
    pub lines: Vec<ApprovedLine>,
}

/// The cart's discounts and lines as shown to the manager ([`Cart::approval_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    discount: Kopecks,
    lines: Vec<ApprovedLine>,
}

/// One line as a manager approved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedLine {
    /// Catalogue SKU.
    pub sku: String,
    /// Unit price.
    pub price: Kopecks,
    /// Quantity in thousandths.
    pub qty_milli: i64,
}

impl ApprovedLine {
    fn of(line: &CartLine) -> ApprovedLine {
        ApprovedLine {
            sku: line.sku.clone(),
            price: line.price,
            qty_milli: line.qty.milli(),
        }
    }
}

/// Why a cart operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartError {
    /// No line at that index.
    NoSuchLine,
    /// A receipt holds at most 500 lines.
    TooManyLines,
    /// The quantity is zero, negative or above the model's limit.
    BadQuantity,
    /// A discount above the amount it applies to.
    DiscountAboveAmount {
        /// The largest discount allowed there.
        max: Kopecks,
    },
    /// Nothing to sell.
    Empty,
    /// The discounts break the shop's limits.
    Discount(DiscountCheck),
    /// The payment does not cover the total.
    Payment(PaymentError),
    /// The model refused the receipt (e.g. a malformed buyer contact).
    Receipt(ReceiptError),
}

impl CartError {
    /// The cashier's text for this refusal.
    pub fn describe(&self, lang: Lang) -> String {
        let text = |key: Key| key.text(lang).to_owned();
        match self {
            CartError::NoSuchLine | CartError::Empty => text(Key::CartEmpty),
            CartError::TooManyLines => text(Key::TooManyLines),
            CartError::BadQuantity => text(Key::BadQuantity),
            CartError::DiscountAboveAmount { max } => {
                format!("{} ({})", Key::DiscountAboveLine.text(lang), money(*max))
            }
            CartError::Discount(DiscountCheck::TooLarge) => text(Key::DiscountTooLarge),
            CartError::Discount(_) => text(Key::DiscountNeedsApproval),
            CartError::Payment(PaymentError::TenderedTooLow { needed }) => {
                format!("{} ({})", Key::TenderedTooLow.text(lang), money(*needed))
            }
            CartError::Payment(PaymentError::CardTooLarge) => text(Key::CardTooLarge),
            CartError::Payment(PaymentError::SplitNeedsCard) => text(Key::SplitNeedsCard),
            CartError::Payment(_) => text(Key::MoneyInvalid),
            CartError::Receipt(error) if error.field == "buyer_contact" => {
                text(Key::BuyerContactInvalid)
            }
            CartError::Receipt(error) => {
                fill(Key::InvalidField.text(lang), &[("field", &error.field)])
            }
        }
    }
}

/// Whether the cart's discounts may be sold as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountCheck {
    /// Within the limits (or approved).
    Allowed,
    /// Above 10 % and not approved yet.
    NeedsApproval,
    /// Above 50 %: never allowed.
    TooLarge,
}

/// The cart of the sale in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// Lines in the order they were added.
    pub lines: Vec<CartLine>,
    /// Receipt-level discount, spread over the lines when sold.
    pub receipt_discount: Kopecks,
    /// Buyer phone or e-mail as typed (empty: none).
    pub buyer_contact: String,
    /// A manager's approval of a discount above 10 %.
    pub approval: Option<Approval>,
}

impl Cart {
    /// True with no lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Adds one unit of `product`: a new line, or +1 on the line of the same SKU. Returns the
    /// line's index.
    pub fn add_product(&mut self, product: &Product) -> Result<usize, CartError> {
        if let Some(index) = self.lines.iter().position(|line| line.sku == product.sku) {
            self.increment(index)?;
            return Ok(index);
        }
        if self.lines.len() >= MAX_LINES {
            return Err(CartError::TooManyLines);
        }
        self.lines.push(CartLine::from_product(product));
        Ok(self.lines.len() - 1)
    }

    /// Sets a line's quantity; its discount is clamped to the new amount.
    pub fn set_qty(&mut self, index: usize, qty: Quantity) -> Result<(), CartError> {
        if !qty.is_positive() || qty > MAX_QUANTITY {
            return Err(CartError::BadQuantity);
        }
        let line = self.lines.get_mut(index).ok_or(CartError::NoSuchLine)?;
        line.qty = qty;
        line.discount = line.discount.min(line.amount());
        self.clamp_receipt_discount();
        Ok(())
    }

    /// One unit more.
    pub fn increment(&mut self, index: usize) -> Result<(), CartError> {
        let line = self.lines.get(index).ok_or(CartError::NoSuchLine)?;
        let qty = line
            .qty
            .milli()
            .checked_add(Quantity::ONE.milli())
            .ok_or(CartError::BadQuantity)?;
        self.set_qty(index, Quantity::from_milli(qty))
    }

    /// One unit less; at one unit or less the line goes.
    pub fn decrement(&mut self, index: usize) -> Result<(), CartError> {
        let line = self.lines.get(index).ok_or(CartError::NoSuchLine)?;
        if line.qty <= Quantity::ONE {
            return self.remove(index);
        }
        let qty = line.qty.milli() - Quantity::ONE.milli();
        self.set_qty(index, Quantity::from_milli(qty))
    }

    /// Removes a line.
    pub fn remove(&mut self, index: usize) -> Result<(), CartError> {
        if index >= self.lines.len() {
            return Err(CartError::NoSuchLine);
        }
        self.lines.remove(index);
        self.clamp_receipt_discount();
        Ok(())
    }

    /// Sets a line's own discount (at most the line's amount).
    pub fn set_line_discount(&mut self, index: usize, discount: Kopecks) -> Result<(), CartError> {
        let line = self.lines.get_mut(index).ok_or(CartError::NoSuchLine)?;
        let max = line.amount();
        if discount.is_negative() || discount > max {
            return Err(CartError::DiscountAboveAmount { max });
        }
        line.discount = discount;
        self.clamp_receipt_discount();
        Ok(())
    }

    /// Sets the receipt discount (at most what the lines cost after their own discounts).
    pub fn set_receipt_discount(&mut self, discount: Kopecks) -> Result<(), CartError> {
        let max = self.net_of_lines();
        if discount.is_negative() || discount > max {
            return Err(CartError::DiscountAboveAmount { max });
        }
        self.receipt_discount = discount;
        Ok(())
    }

    fn clamp_receipt_discount(&mut self) {
        self.receipt_discount = self.receipt_discount.min(self.net_of_lines());
    }

    fn net_of_lines(&self) -> Kopecks {
        self.lines
            .iter()
            .fold(Kopecks::ZERO, |sum, line| sum.saturating_add(line.net()))
    }

    /// The receipt before any discount.
    pub fn gross(&self) -> Kopecks {
        self.lines
            .iter()
            .fold(Kopecks::ZERO, |sum, line| sum.saturating_add(line.amount()))
    }

    /// Line discounts plus the receipt discount.
    pub fn discount_total(&self) -> Kopecks {
        self.lines.iter().fold(self.receipt_discount, |sum, line| {
            sum.saturating_add(line.discount)
        })
    }

    /// What the buyer pays: exactly the total the stored receipt will have.
    pub fn total(&self) -> Kopecks {
        self.gross().saturating_sub(self.discount_total())
    }

    /// Checks the discounts against the 10 % and 50 % limits (integer arithmetic).
    pub fn discount_check(&self) -> DiscountCheck {
        let discount = self.discount_total();
        let gross = self.gross();
        if discount == Kopecks::ZERO {
            return DiscountCheck::Allowed;
        }
        if exceeds_percent(discount, gross, MAX_DISCOUNT_PERCENT) {
            return DiscountCheck::TooLarge;
        }
        if exceeds_percent(discount, gross, CASHIER_DISCOUNT_PERCENT)
            && self.valid_approval().is_none()
        {
            return DiscountCheck::NeedsApproval;
        }
        DiscountCheck::Allowed
    }

    /// What a manager is asked to approve: the discounts and lines as they are now. Taken
    /// when the secret is submitted, before the till answers.
    pub fn approval_request(&self) -> ApprovalRequest {
        ApprovalRequest {
            discount: self.discount_total(),
            lines: self.lines.iter().map(ApprovedLine::of).collect(),
        }
    }

    /// Records `manager`'s approval of `request`, only if the cart still is what was asked
    /// for (an edit while the till answered would otherwise ride on the approval). False, and
    /// nothing recorded, when it changed.
    pub fn approve(&mut self, manager: String, request: ApprovalRequest) -> bool {
        if self.approval_request() != request {
            return false;
        }
        self.approval = Some(Approval {
            manager,
            discount: request.discount,
            lines: request.lines,
        });
        true
    }

    /// The approval, if it still covers the cart: the same lines, and no more discount than
    /// was approved.
    pub fn valid_approval(&self) -> Option<&Approval> {
        self.approval.as_ref().filter(|approval| {
            self.discount_total() <= approval.discount
                && approval.lines.len() == self.lines.len()
                && approval
                    .lines
                    .iter()
                    .zip(&self.lines)
                    .all(|(approved, line)| *approved == ApprovedLine::of(line))
        })
    }

    /// What is left of this cart once `sold` was sold, `sold` being this cart as it was read
    /// when the sale began. Unchanged: empty. Lines scanned while the sale was being saved
    /// stay (a SKU sold and scanned again keeps only the units added since), and so does a
    /// buyer contact typed meanwhile; the sold discounts go, and so does the approval (the
    /// rest is another receipt).
    pub fn after_sale(&self, sold: &Cart) -> Cart {
        if self == sold {
            return Cart::default();
        }
        let mut left = Cart::default();
        if self.buyer_contact != sold.buyer_contact {
            left.buyer_contact = self.buyer_contact.clone();
        }
        for line in &self.lines {
            let Some(sold_line) = sold.lines.iter().find(|sold| sold.sku == line.sku) else {
                left.lines.push(line.clone());
                continue;
            };
            let qty = line.qty.milli().saturating_sub(sold_line.qty.milli());
            if qty <= 0 {
                continue;
            }
            let mut rest = line.clone();
            rest.qty = Quantity::from_milli(qty);
            rest.discount = line
                .discount
                .saturating_sub(sold_line.discount)
                .max(Kopecks::ZERO)
                .min(rest.amount());
            left.lines.push(rest);
        }
        left.receipt_discount = self
            .receipt_discount
            .saturating_sub(sold.receipt_discount)
            .max(Kopecks::ZERO);
        left.clamp_receipt_discount();
        left
    }

    /// The receipt request for this cart paid as `plan`. Refuses an empty cart, discounts
    /// beyond the limits and a payment that does not add up to the total.
    pub fn to_draft(&self, pos_id: &str, plan: &PaymentPlan) -> Result<ReceiptDraft, CartError> {
        if self.is_empty() {
            return Err(CartError::Empty);
        }
        match self.discount_check() {
            DiscountCheck::Allowed => {}
            refused => return Err(CartError::Discount(refused)),
        }
        if plan.cash.saturating_add(plan.card) != self.total() {
            return Err(CartError::Payment(PaymentError::DoesNotAddUp));
        }
        let items = self
            .lines
            .iter()
            .map(|line| ItemDraft {
                sku: Some(line.sku.clone()),
                name: line.name.clone(),
                qty: line.qty,
                price: line.price,
                vat: line.vat,
                discount: line.discount.is_positive().then_some(line.discount),
                payment_method: None,
                payment_object: None,
            })
            .collect();
        let contact = self.buyer_contact.trim();
        Ok(ReceiptDraft {
            pos_id: pos_id.to_owned(),
            kind: ReceiptKind::Sale,
            items,
            payments: plan.payments(),
            discount: self
                .receipt_discount
                .is_positive()
                .then_some(self.receipt_discount),
            buyer_contact: (!contact.is_empty()).then(|| contact.to_owned()),
            refund_of: None,
        })
    }

    /// Validates the cart exactly as the sale will ([`Receipt::from_draft`] with placeholder
    /// ids), returning the receipt it would make: lines with the receipt discount spread.
    pub fn preview(&self, pos_id: &str, plan: &PaymentPlan) -> Result<Receipt, CartError> {
        let draft = self.to_draft(pos_id, plan)?;
        let placeholder = || -> Result<(StoreId, TillId, Hlc), CartError> {
            let bad = |_| CartError::Empty;
            Ok((
                StoreId::new("preview").map_err(bad)?,
                TillId::new("preview").map_err(bad)?,
                Hlc::new(0, 0, "preview").map_err(|_| CartError::Empty)?,
            ))
        };
        let (store, till, hlc) = placeholder()?;
        Receipt::from_draft(
            draft,
            ReceiptId::new(Uuid::nil()),
            store,
            till,
            SessionId::new(Uuid::nil()),
            hlc,
        )
        .map_err(CartError::Receipt)
    }
}

/// How the buyer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayMode {
    /// All in cash.
    Cash,
    /// All by card.
    Card,
    /// Part by card, the rest in cash.
    Split,
}

/// Why a payment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentError {
    /// The total is zero.
    NothingToPay,
    /// Less cash tendered than the cash part.
    TenderedTooLow {
        /// The cash part.
        needed: Kopecks,
    },
    /// The card amount is above the total.
    CardTooLarge,
    /// A split needs a card amount above zero and below the total.
    SplitNeedsCard,
    /// The plan's payments differ from the cart's total.
    DoesNotAddUp,
}

/// The payment of a receipt: the amounts recorded per method, and the cash handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentPlan {
    /// Cash part of the total.
    pub cash: Kopecks,
    /// Card part of the total.
    pub card: Kopecks,
    /// Cash the buyer handed over (at least `cash`).
    pub tendered: Kopecks,
    /// `tendered - cash`.
    pub change: Kopecks,
}

impl PaymentPlan {
    /// The receipt's payments: one per method with a positive amount.
    pub fn payments(&self) -> Vec<PaymentDraft> {
        [
            (PaymentMethod::Cash, self.cash),
            (PaymentMethod::Card, self.card),
        ]
        .into_iter()
        .filter(|(_, amount)| amount.is_positive())
        .map(|(method, amount)| PaymentDraft { method, amount })
        .collect()
    }
}

/// Plans the payment of `total`. `tendered` is the cash handed over (empty: exactly the cash
/// part); `card` the card amount of a split.
pub fn plan_payment(
    total: Kopecks,
    mode: PayMode,
    tendered: Option<Kopecks>,
    card: Option<Kopecks>,
) -> Result<PaymentPlan, PaymentError> {
    if !total.is_positive() {
        return Err(PaymentError::NothingToPay);
    }
    let card = match mode {
        PayMode::Cash => Kopecks::ZERO,
        PayMode::Card => total,
        PayMode::Split => {
            let card = card.ok_or(PaymentError::SplitNeedsCard)?;
            if card > total {
                return Err(PaymentError::CardTooLarge);
            }
            if !card.is_positive() || card == total {
                return Err(PaymentError::SplitNeedsCard);
            }
            card
        }
    };
    let cash = total.saturating_sub(card);
    let tendered = match mode {
        PayMode::Card => Kopecks::ZERO,
        PayMode::Cash | PayMode::Split => tendered.unwrap_or(cash),
    };
    if tendered < cash {
        return Err(PaymentError::TenderedTooLow { needed: cash });
    }
    Ok(PaymentPlan {
        cash,
        card,
        tendered,
        change: tendered.saturating_sub(cash),
    })
}

#[cfg(test)]
mod tests;
