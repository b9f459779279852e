//! The receipt as the till's HTTP body carries it (`POST /v1/kkt/receipt`), and the
//! checks on free-text fields shared by drafts and stored receipts.
//!
//! Unknown fields are refused, so that a typo (`"discont"`) is an error rather than a
//! silently ignored discount. Body size is bounded by the HTTP layer; counts and lengths
//! are bounded by [`crate::receipt::Receipt::from_draft`].

use serde::{Deserialize, Serialize};

use crate::error::Violation;
use crate::ids::ReceiptId;
use crate::money::{Kopecks, Quantity};
use crate::receipt::{PaymentMethod, ReceiptKind, MAX_CONTACT_LEN};
use crate::vat::VatRate;

/// A receipt as requested by the point of sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptDraft {
    /// The point-of-sale terminal (browser tab, scanner station).
    pub pos_id: String,
    /// Sale, refund or correction.
    #[serde(rename = "type")]
    pub kind: ReceiptKind,
    /// The items, at least one.
    pub items: Vec<ItemDraft>,
    /// The payments, at least one; they must add up to the total.
    pub payments: Vec<PaymentDraft>,
    /// Receipt-level discount, spread over the lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Kopecks>,
    /// Buyer phone or e-mail for an electronic receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_contact: Option<String>,
    /// The sale being refunded; required for refunds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<ReceiptId>,
}

/// One item of a [`ReceiptDraft`]. Either `sku` or `name` must be given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemDraft {
    /// Catalogue SKU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Name as printed.
    #[serde(default)]
    pub name: String,
    /// Quantity (`1`, `0.5`, `"1.25"`).
    pub qty: Quantity,
    /// Unit price in kopecks.
    pub price: Kopecks,
    /// VAT rate.
    pub vat: VatRate,
    /// Discount on this line in kopecks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Kopecks>,
    /// FFD tag 1214; 4 (full payment) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<u8>,
    /// FFD tag 1212; 1 (goods) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_object: Option<u8>,
}

/// One payment of a [`ReceiptDraft`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentDraft {
    /// Cash, card or prepayment offset.
    pub method: PaymentMethod,
    /// Amount in kopecks.
    pub amount: Kopecks,
}

/// Checks a free-text field: at most `max` characters, no control characters, and
/// non-empty unless `allow_empty`.
pub(crate) fn check_text(text: &str, max: usize, allow_empty: bool) -> Result<(), Violation> {
    if !allow_empty && text.trim().is_empty() {
        return Err(Violation::Empty);
    }
    if text.chars().count() > max {
        return Err(Violation::TooLong { max });
    }
    if text.chars().any(char::is_control) {
        return Err(Violation::Invalid("contains control characters"));
    }
    Ok(())
}

/// Validates a buyer contact and returns its normal form: an e-mail address as given
/// (trimmed), or a phone number as `+` and 10..=15 digits (or bare digits when no `+` was
/// given), with spaces, dashes and brackets removed.
pub(crate) fn normalize_contact(raw: &str) -> Result<String, Violation> {
    let contact = raw.trim();
    if contact.is_empty() {
        return Err(Violation::Empty);
    }
    if contact.chars().count() > MAX_CONTACT_LEN {
        return Err(Violation::TooLong {
            max: MAX_CONTACT_LEN,
        });
    }
    if contact.contains('@') {
        return if is_email(contact) {
            Ok(contact.to_owned())
        } else {
            Err(Violation::Invalid("not an e-mail address"))
        };
    }
    let (plus, rest) = match contact.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", contact),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' => {}
            _ => {
                return Err(Violation::Invalid(
                    "not a phone number or an e-mail address",
                ))
            }
        }
    }
    if !(10..=15).contains(&digits.len()) {
        return Err(Violation::Invalid("a phone number has 10 to 15 digits"));
    }
    Ok(format!("{plus}{digits}"))
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a dotted domain, and no
/// characters that cannot appear unquoted in an address.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "@,;<>()[]\\\"".contains(c);
    let labels_ok = domain
        .split('.')
        .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    !local.is_empty()
        && !local.chars().any(forbidden)
        && !domain.chars().any(forbidden)
        && domain.contains('.')
        && labels_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised() {
        assert_eq!(
            normalize_contact("+7 (900) 123-45-67"),
            Ok("+79001234567".to_owned())
        );
        assert_eq!(
            normalize_contact("89001234567"),
            Ok("89001234567".to_owned())
        );
        assert!(normalize_contact("12345").is_err());
        assert!(normalize_contact("+7 900 123 45 67 ext 1").is_err());
        assert!(normalize_contact("+7900123456789012").is_err());
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(
            normalize_contact(" anna@example.ru "),
            Ok("anna@example.ru".to_owned())
        );
        assert_eq!(
            normalize_contact("иван@почта.рф"),
            Ok("иван@почта.рф".to_owned())
        );
        for bad in [
            "anna@",
            "@example.ru",
            "anna@example",
            "a b@example.ru",
            "a@b@c.ru",
            "a@.ru",
            "a@ex..ru",
        ] {
            assert!(normalize_contact(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.ru", "a".repeat(60));
        assert_eq!(
            normalize_contact(&long),
            Err(Violation::TooLong {
                max: MAX_CONTACT_LEN
            })
        );
    }

    #[test]
    fn text_checks() {
        assert_eq!(check_text("", 5, false), Err(Violation::Empty));
        assert_eq!(check_text("  ", 5, false), Err(Violation::Empty));
        assert_eq!(check_text("", 5, true), Ok(()));
        assert_eq!(
            check_text("abcdef", 5, false),
            Err(Violation::TooLong { max: 5 })
        );
        assert_eq!(check_text("очки", 4, false), Ok(()));
        assert!(check_text("a\nb", 5, false).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let body = r#"{"pos_id":"P1","type":"sale","items":[],"payments":[],"discont":5}"#;
        assert!(serde_json::from_str::<ReceiptDraft>(body).is_err());
        let item = r#"{"name":"Frame","qty":1,"price":100,"vat":"none","colour":"red"}"#;
        assert!(serde_json::from_str::<ItemDraft>(item).is_err());
    }
}
