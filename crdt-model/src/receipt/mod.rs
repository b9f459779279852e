//! Receipts: the till's request body ([`ReceiptDraft`]) and the validated, immutable
//! [`Receipt`] stored in a cash-session document.
//!
//! [`Receipt::from_draft`] is the only way from a request to a receipt: it checks every
//! field, spreads a receipt-level discount over the lines (see [`spread_discount`]) and
//! fixes the money so that line sums add up to the total and payments add up to it too.
//! [`Receipt::check_invariants`] re-checks the stored form whenever a receipt is read
//! back (a pair assertion: money rules hold when written and when read).
//!
//! Submodules: `draft` (request types and contact validation), `validate` (the rules),
//! `discount` (the spread).

mod discount;
mod draft;
mod validate;

use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::ids::{ReceiptId, SessionId, StoreId, TillId};
use crate::money::{Kopecks, Quantity};
use crate::vat::VatRate;

pub use discount::{
    exceeds_percent, spread_discount, CASHIER_DISCOUNT_PERCENT, MAX_DISCOUNT_PERCENT,
};
pub use draft::{ItemDraft, PaymentDraft, ReceiptDraft};

/// Most lines on one receipt.
pub const MAX_LINES: usize = 500;
/// Most payments on one receipt.
pub const MAX_PAYMENTS: usize = 10;
/// Longest `pos_id`.
pub const MAX_POS_ID_LEN: usize = 64;
/// Longest SKU.
pub const MAX_SKU_LEN: usize = 64;
/// Longest item name (FFD tag 1030).
pub const MAX_ITEM_NAME_LEN: usize = 128;
/// Longest buyer phone or e-mail (FFD tag 1008).
pub const MAX_CONTACT_LEN: usize = 64;
/// Default "payment method" of a line (tag 1214): 4, full payment.
pub const DEFAULT_PAYMENT_METHOD: u8 = 4;
/// Default "payment object" of a line (tag 1212): 1, goods.
pub const DEFAULT_PAYMENT_OBJECT: u8 = 1;

/// What a receipt does (FFD tag 1054 family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// A sale (приход).
    Sale,
    /// A refund of an earlier sale (возврат прихода); references it in `refund_of`.
    Refund,
    /// A correction receipt (чек коррекции) for income that was not fiscalised in time.
    /// Counts as income in session totals.
    Correction,
}

/// How a payment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Cash (tag 1031).
    Cash,
    /// Card or other electronic payment (tag 1081).
    Card,
    /// Offset of an earlier prepayment (tag 1215).
    Prepayment,
}

impl PaymentMethod {
    /// Every method, in declaration order.
    pub const ALL: [PaymentMethod; 3] = [
        PaymentMethod::Cash,
        PaymentMethod::Card,
        PaymentMethod::Prepayment,
    ];
}

/// One payment of a validated receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Payment {
    /// How it was paid.
    pub method: PaymentMethod,
    /// How much, always above zero.
    pub amount: Kopecks,
}

/// One line of a validated receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReceiptLine {
    /// Catalogue SKU, if the item came from the catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Item name as printed (may be empty only when `sku` is set).
    pub name: String,
    /// Quantity, above zero.
    pub qty: Quantity,
    /// Unit price before discounts.
    pub price: Kopecks,
    /// VAT rate.
    pub vat: VatRate,
    /// All discount on this line: its own plus its share of the receipt discount.
    pub discount: Kopecks,
    /// `line_amount(price, qty) − discount`: what the buyer pays for the line.
    pub sum: Kopecks,
    /// FFD tag 1214 (payment method, 1..=7).
    pub payment_method: u8,
    /// FFD tag 1212 (payment object).
    pub payment_object: u8,
}

/// A validated receipt. Immutable once made: sessions store it as canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Identity, made where the sale happens.
    pub id: ReceiptId,
    /// The cash session the receipt belongs to.
    pub session: SessionId,
    /// The store.
    pub store: StoreId,
    /// The till.
    pub till: TillId,
    /// The point-of-sale terminal that sent the request.
    pub pos_id: String,
    /// Sale, refund or correction.
    #[serde(rename = "type")]
    pub kind: ReceiptKind,
    /// When the receipt was made (orders receipts of a till for the fiscal pipeline).
    pub hlc: Hlc,
    /// The lines.
    pub lines: Vec<ReceiptLine>,
    /// The payments; they add up to `total`.
    pub payments: Vec<Payment>,
    /// Sum of the line sums, above zero.
    pub total: Kopecks,
    /// Normalised buyer phone (`+79001234567`) or e-mail for an electronic receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_contact: Option<String>,
    /// The sale a refund returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<ReceiptId>,
}

/// Sales (gross) and VAT for one rate on one receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatTotal {
    /// The rate.
    pub vat: VatRate,
    /// Sum of the line sums at this rate (VAT included).
    pub gross: Kopecks,
    /// VAT contained in `gross`, computed once on the per-rate sum as registers do.
    pub vat_amount: Kopecks,
}

impl Receipt {
    /// The total as it counts in session totals: negative for refunds.
    pub fn signed_total(&self) -> Kopecks {
        self.signed(self.total)
    }

    /// The amount paid by `method` on this receipt.
    pub fn paid_by(&self, method: PaymentMethod) -> Kopecks {
        // Bounded by MAX_PAYMENTS × MAX_AMOUNT, so saturation never happens on a valid
        // receipt; it only keeps a corrupt one from panicking.
        self.payments
            .iter()
            .filter(|payment| payment.method == method)
            .fold(Kopecks::ZERO, |sum, payment| {
                sum.saturating_add(payment.amount)
            })
    }

    /// [`Receipt::paid_by`] with the sign of [`Receipt::signed_total`].
    pub fn signed_paid_by(&self, method: PaymentMethod) -> Kopecks {
        self.signed(self.paid_by(method))
    }

    fn signed(&self, amount: Kopecks) -> Kopecks {
        match self.kind {
            ReceiptKind::Refund => Kopecks(0).saturating_sub(amount),
            ReceiptKind::Sale | ReceiptKind::Correction => amount,
        }
    }

    /// Gross sums and VAT per rate, ordered by FFD code.
    pub fn vat_totals(&self) -> Vec<VatTotal> {
        let mut totals: Vec<VatTotal> = Vec::new();
        for line in &self.lines {
            match totals.iter_mut().find(|total| total.vat == line.vat) {
                Some(total) => total.gross = total.gross.saturating_add(line.sum),
                None => totals.push(VatTotal {
                    vat: line.vat,
                    gross: line.sum,
                    vat_amount: Kopecks::ZERO,
                }),
            }
        }
        for total in &mut totals {
            total.vat_amount = total.vat.vat_amount(total.gross);
        }
        totals.sort_by_key(|total| total.vat.ffd_code());
        totals
    }
}

#[cfg(test)]
mod tests;
