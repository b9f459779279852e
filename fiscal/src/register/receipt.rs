//! The request side of the register: [`FiscalReceipt`] (form 3) and [`FiscalCorrection`]
//! (form 31) built from a validated `crdt_model::Receipt`, with the money invariant
//! `Σ1043 == 1020 == Σpayments` checked when built and again before sending.

use crdt_model::receipt::{PaymentMethod, ReceiptKind};
use crdt_model::{Kopecks, Quantity, Receipt, ReceiptId, VatRate};
use serde::{Deserialize, Serialize};

use crate::register::DEFAULT_TAXATION;

/// Tag 1054 (признак расчета).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// 1, приход: a sale.
    Sale,
    /// 2, возврат прихода: a refund of a sale.
    SaleRefund,
    /// 3, расход: an expense.
    Expense,
    /// 4, возврат расхода: a refund of an expense.
    ExpenseRefund,
}

impl Operation {
    /// The tag 1054 value.
    pub const fn code(self) -> u8 {
        match self {
            Operation::Sale => 1,
            Operation::SaleRefund => 2,
            Operation::Expense => 3,
            Operation::ExpenseRefund => 4,
        }
    }

    /// The operation for a tag 1054 value.
    pub const fn from_code(code: u8) -> Option<Operation> {
        match code {
            1 => Some(Operation::Sale),
            2 => Some(Operation::SaleRefund),
            3 => Some(Operation::Expense),
            4 => Some(Operation::ExpenseRefund),
            _ => None,
        }
    }
}

/// One item (STLV 1059) of a fiscal receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalLine {
    /// 1030, the item name (at most 128 bytes once encoded).
    pub name: String,
    /// 1023, the quantity.
    pub qty: Quantity,
    /// 1079, the unit price after discounts.
    pub price: Kopecks,
    /// 1043, the line total after discounts; what the buyer pays for the line.
    pub sum: Kopecks,
    /// 1199, the VAT rate.
    pub vat: VatRate,
    /// 1214, payment method (1..=7; 4 = full payment).
    pub payment_method: u8,
    /// 1212, payment object (1 = goods, 3 = job, 4 = service, …).
    pub payment_object: u8,
}

/// The payment totals of a receipt by FFD tag. They add up to the receipt total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payments {
    /// 1031, cash.
    pub cash: Kopecks,
    /// 1081, card and other electronic means.
    pub electronic: Kopecks,
    /// 1215, offset of an earlier prepayment.
    pub prepayment: Kopecks,
    /// 1216, credit (postpayment).
    pub credit: Kopecks,
    /// 1217, counter-provision.
    pub provision: Kopecks,
}

impl Payments {
    /// The sum of every payment kind, `None` on overflow.
    pub fn total(&self) -> Option<Kopecks> {
        Kopecks::checked_sum([
            self.cash,
            self.electronic,
            self.prepayment,
            self.credit,
            self.provision,
        ])
    }
}

/// A receipt as the register needs it (form 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalReceipt {
    /// Our receipt id, stored in the document (1084/1085/1086).
    pub receipt_id: ReceiptId,
    /// 1054.
    pub operation: Operation,
    /// 1055 bitmask.
    pub taxation: u8,
    /// The items, at least one.
    pub lines: Vec<FiscalLine>,
    /// The payments.
    pub payments: Payments,
    /// 1020; equals the sum of the line sums and of the payments.
    pub total: Kopecks,
    /// 1008, buyer phone or e-mail for an electronic receipt.
    pub buyer_contact: Option<String>,
    /// 1021, the cashier, if known.
    pub cashier: Option<String>,
}

/// Why a receipt cannot be turned into a fiscal receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptConversionError {
    /// The receipt has no lines.
    #[error("the receipt has no lines")]
    NoLines,
    /// The line sums, the payments and the total disagree.
    #[error("line sums, payments and total disagree")]
    TotalsMismatch,
    /// A correction receipt goes through [`crate::register::FiscalRegister::correction`].
    #[error("a correction receipt needs the correction data (tags 1173/1174)")]
    CorrectionNeedsData,
}

impl FiscalReceipt {
    /// Builds the fiscal form of a validated receipt. Discounts are already folded into the
    /// line sums (1043); the unit price 1079 is the line sum divided by the quantity,
    /// rounded half up, as FFD wants "price after discounts".
    pub fn from_receipt(receipt: &Receipt) -> Result<FiscalReceipt, ReceiptConversionError> {
        let operation = match receipt.kind {
            ReceiptKind::Sale => Operation::Sale,
            ReceiptKind::Refund => Operation::SaleRefund,
            ReceiptKind::Correction => return Err(ReceiptConversionError::CorrectionNeedsData),
        };
        Self::build(receipt, operation)
    }

    fn build(
        receipt: &Receipt,
        operation: Operation,
    ) -> Result<FiscalReceipt, ReceiptConversionError> {
        if receipt.lines.is_empty() {
            return Err(ReceiptConversionError::NoLines);
        }
        let lines: Vec<FiscalLine> = receipt
            .lines
            .iter()
            .map(|line| FiscalLine {
                name: line.name.clone(),
                qty: line.qty,
                price: unit_price(line.sum, line.qty),
                sum: line.sum,
                vat: line.vat,
                payment_method: line.payment_method,
                payment_object: line.payment_object,
            })
            .collect();
        let payments = Payments {
            cash: receipt.paid_by(PaymentMethod::Cash),
            electronic: receipt.paid_by(PaymentMethod::Card),
            prepayment: receipt.paid_by(PaymentMethod::Prepayment),
            credit: Kopecks::ZERO,
            provision: Kopecks::ZERO,
        };
        let fiscal = FiscalReceipt {
            receipt_id: receipt.id,
            operation,
            taxation: DEFAULT_TAXATION,
            lines,
            payments,
            total: receipt.total,
            buyer_contact: receipt.buyer_contact.clone(),
            cashier: None,
        };
        fiscal.check()?;
        Ok(fiscal)
    }

    /// Checks the money invariant `Σ1043 == 1020 == Σpayments` (pair assertion: checked
    /// when built and again by the driver before anything is sent).
    pub fn check(&self) -> Result<(), ReceiptConversionError> {
        if self.lines.is_empty() {
            return Err(ReceiptConversionError::NoLines);
        }
        let lines = Kopecks::checked_sum(self.lines.iter().map(|line| line.sum));
        if lines != Some(self.total) || self.payments.total() != Some(self.total) {
            return Err(ReceiptConversionError::TotalsMismatch);
        }
        Ok(())
    }
}

/// 1079 from 1043 and 1023: `sum / qty`, rounded half up to the kopeck.
fn unit_price(sum: Kopecks, qty: Quantity) -> Kopecks {
    let milli = i128::from(qty.milli().max(1));
    let scaled = i128::from(sum.0) * 1000;
    let price = (scaled + milli / 2) / milli;
    Kopecks(i64::try_from(price).unwrap_or(i64::MAX))
}

/// A correction receipt (form 31): the receipt body plus 1173 and 1174.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalCorrection {
    /// The receipt body (operation, items, payments, receipt id).
    pub receipt: FiscalReceipt,
    /// 1173: false = on own initiative (0), true = by a tax-authority order (1).
    pub by_order: bool,
    /// 1178: the date of the corrected settlement, Unix seconds.
    pub corrected_at_unix: u32,
    /// 1179: the number of the tax-authority order (may be empty for a self-correction).
    pub order_number: String,
}

impl FiscalCorrection {
    /// A self-correction (1173 = 0) for a receipt that was not fiscalised in time.
    pub fn from_receipt(
        receipt: &Receipt,
        corrected_at_unix: u32,
    ) -> Result<FiscalCorrection, ReceiptConversionError> {
        Ok(FiscalCorrection {
            receipt: FiscalReceipt::build(receipt, Operation::Sale)?,
            by_order: false,
            corrected_at_unix,
            order_number: String::new(),
        })
    }
}
