//! Money and quantities as exact fixed-point integers.
//!
//! [`Kopecks`] is a rouble amount in kopecks (`i64`), [`Quantity`] a count in thousandths
//! (fiscal quantities have at most three fraction digits). No floating point is used for
//! arithmetic: quantities arriving as JSON decimals are parsed from their decimal text, and
//! [`line_amount`] multiplies in `i128` and rounds half-up to the kopeck.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::QuantityError;

/// Largest amount accepted anywhere in the model: 10^12 kopecks (10 billion roubles).
pub const MAX_AMOUNT: Kopecks = Kopecks(1_000_000_000_000);

/// An amount of money in kopecks (1/100 rouble). Serialised as a bare JSON integer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Kopecks(pub i64);

impl Kopecks {
    /// Zero kopecks.
    pub const ZERO: Kopecks = Kopecks(0);

    /// Whole roubles to kopecks; `None` on overflow.
    pub fn from_roubles(roubles: i64) -> Option<Kopecks> {
        roubles.checked_mul(100).map(Kopecks)
    }

    /// The raw number of kopecks.
    pub const fn value(self) -> i64 {
        self.0
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Kopecks) -> Option<Kopecks> {
        self.0.checked_add(other.0).map(Kopecks)
    }

    /// `self - other`, `None` on overflow.
    pub fn checked_sub(self, other: Kopecks) -> Option<Kopecks> {
        self.0.checked_sub(other.0).map(Kopecks)
    }

    /// `self * factor`, `None` on overflow.
    pub fn checked_mul(self, factor: i64) -> Option<Kopecks> {
        self.0.checked_mul(factor).map(Kopecks)
    }

    /// `-self`, `None` for `i64::MIN`.
    pub fn checked_neg(self) -> Option<Kopecks> {
        self.0.checked_neg().map(Kopecks)
    }

    /// Sum of all amounts, `None` if any partial sum overflows.
    pub fn checked_sum<I: IntoIterator<Item = Kopecks>>(amounts: I) -> Option<Kopecks> {
        amounts
            .into_iter()
            .try_fold(Kopecks::ZERO, |acc, amount| acc.checked_add(amount))
    }

    /// `self + other`, clamped at the `i64` bounds. For totals whose inputs are bounded so
    /// that clamping cannot happen; it only keeps a corrupt input from panicking.
    pub fn saturating_add(self, other: Kopecks) -> Kopecks {
        Kopecks(self.0.saturating_add(other.0))
    }

    /// `self - other`, clamped at the `i64` bounds (see [`Kopecks::saturating_add`]).
    pub fn saturating_sub(self, other: Kopecks) -> Kopecks {
        Kopecks(self.0.saturating_sub(other.0))
    }

    /// True for amounts below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// True for amounts above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl fmt::Display for Kopecks {
    /// Roubles with two decimals and no grouping: `1500.00`, `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // unsigned_abs keeps i64::MIN printable.
        let magnitude = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

/// Number of thousandths in one unit of [`Quantity`].
pub const QUANTITY_SCALE: i64 = 1000;

/// Largest quantity accepted in a JSON body: one million units.
pub const MAX_QUANTITY: Quantity = Quantity(1_000_000 * QUANTITY_SCALE);

/// A quantity in thousandths of a unit (`1.25` pieces or metres is `1250`).
///
/// Serialised as a JSON number (`2`, `0.5`, `1.125`). Deserialisation accepts integers,
/// decimals with at most three fraction digits and decimal strings (`"1.25"`); it refuses
/// zero, negative and over-limit values, so a deserialised quantity is always usable on a
/// receipt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i64);

impl Quantity {
    /// One whole unit.
    pub const ONE: Quantity = Quantity(QUANTITY_SCALE);

    /// A quantity from a count of thousandths. Not validated: receipt validation checks
    /// the range, so that it can name the offending field.
    pub const fn from_milli(milli: i64) -> Quantity {
        Quantity(milli)
    }

    /// Whole units, `None` on overflow.
    pub fn from_units(units: i64) -> Option<Quantity> {
        units.checked_mul(QUANTITY_SCALE).map(Quantity)
    }

    /// The count of thousandths.
    pub const fn milli(self) -> i64 {
        self.0
    }

    /// True above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl fmt::Display for Quantity {
    /// Shortest exact decimal: `1`, `0.5`, `1.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        let units = magnitude / QUANTITY_SCALE.unsigned_abs();
        let fraction = magnitude % QUANTITY_SCALE.unsigned_abs();
        if fraction == 0 {
            return write!(f, "{sign}{units}");
        }
        let digits = format!("{fraction:03}");
        write!(f, "{sign}{units}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    /// Parses a positive decimal with at most three fraction digits (`"2"`, `"0.125"`).
    fn from_str(text: &str) -> Result<Quantity, QuantityError> {
        if text.starts_with('-') {
            return Err(QuantityError::NotPositive);
        }
        let (units_text, fraction_text) = match text.split_once('.') {
            Some((units, fraction)) => (units, fraction),
            None => (text, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if units_text.is_empty() || !all_digits(units_text) || !all_digits(fraction_text) {
            return Err(QuantityError::NotADecimal(truncate(text)));
        }
        if text.contains('.') && fraction_text.is_empty() {
            return Err(QuantityError::NotADecimal(truncate(text)));
        }
        // Trailing zeros carry no precision ("1.2500" is 1.25).
        let fraction_text = fraction_text.trim_end_matches('0');
        if fraction_text.len() > 3 {
            return Err(QuantityError::TooPrecise(truncate(text)));
        }
        let units: i64 = units_text
            .parse()
            .map_err(|_| QuantityError::TooLarge(truncate(text)))?;
        let mut fraction: i64 = 0;
        for position in 0..3 {
            let digit = fraction_text
                .as_bytes()
                .get(position)
                .map_or(0, |b| i64::from(b - b'0'));
            fraction = fraction * 10 + digit;
        }
        let milli = units
            .checked_mul(QUANTITY_SCALE)
            .and_then(|m| m.checked_add(fraction))
            .ok_or_else(|| QuantityError::TooLarge(truncate(text)))?;
        let quantity = Quantity(milli);
        if !quantity.is_positive() {
            return Err(QuantityError::NotPositive);
        }
        if quantity > MAX_QUANTITY {
            return Err(QuantityError::TooLarge(truncate(text)));
        }
        Ok(quantity)
    }
}

/// Error messages quote at most this much of a bad input.
fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % QUANTITY_SCALE == 0 {
            serializer.serialize_i64(self.0 / QUANTITY_SCALE)
        } else {
            // Only the wire form is a float: |milli| <= 2^53 and three decimals, so the
            // nearest f64's shortest representation is exactly this decimal, and the
            // deserialiser reads it back from that text, never by float arithmetic.
            let text = self.to_string();
            let number: f64 = text
                .parse()
                .map_err(|_| serde::ser::Error::custom("quantity is not a decimal"))?;
            serializer.serialize_f64(number)
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Quantity, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl serde::de::Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a positive quantity with at most three decimals")
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Quantity, E> {
        value.to_string().parse().map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Quantity, E> {
        value.to_string().parse().map_err(E::custom)
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Quantity, E> {
        // serde_json hands decimals over as the nearest f64; its shortest round-trip text
        // (Rust's `Display`) is the decimal that was written, for any input of up to 15
        // significant digits. Parse that text, so no float arithmetic touches the value.
        if !value.is_finite() {
            return Err(E::custom(QuantityError::NotADecimal(value.to_string())));
        }
        value.to_string().parse().map_err(E::custom)
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Quantity, E> {
        value.parse().map_err(E::custom)
    }
}

/// `price × qty`, rounded half away from zero to the kopeck (half-up for the non-negative
/// prices a receipt allows). `None` if the result does not fit in `i64`.
pub fn line_amount(price: Kopecks, qty: Quantity) -> Option<Kopecks> {
    let product = i128::from(price.0) * i128::from(qty.0);
    let scale = i128::from(QUANTITY_SCALE);
    let mut quotient = product / scale;
    let remainder = product % scale;
    if remainder.abs() * 2 >= scale {
        quotient += product.signum();
    }
    i64::try_from(quotient).ok().map(Kopecks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kopecks_display() {
        assert_eq!(Kopecks(150_000).to_string(), "1500.00");
        assert_eq!(Kopecks(5).to_string(), "0.05");
        assert_eq!(Kopecks(-1505).to_string(), "-15.05");
        assert_eq!(Kopecks(i64::MIN).to_string(), "-92233720368547758.08");
    }

    #[test]
    fn kopecks_checked_arithmetic() {
        assert_eq!(Kopecks(1).checked_add(Kopecks(2)), Some(Kopecks(3)));
        assert_eq!(Kopecks(i64::MAX).checked_add(Kopecks(1)), None);
        assert_eq!(Kopecks(i64::MIN).checked_sub(Kopecks(1)), None);
        assert_eq!(Kopecks(7).checked_mul(3), Some(Kopecks(21)));
        assert_eq!(Kopecks(i64::MAX).checked_mul(2), None);
        assert_eq!(
            Kopecks::checked_sum([Kopecks(1), Kopecks(2), Kopecks(3)]),
            Some(Kopecks(6))
        );
        assert_eq!(Kopecks::checked_sum([Kopecks(i64::MAX), Kopecks(1)]), None);
        assert_eq!(Kopecks::checked_sum(Vec::new()), Some(Kopecks::ZERO));
    }

    #[test]
    fn kopecks_serde_is_a_bare_integer() {
        assert_eq!(
            serde_json::to_string(&Kopecks(1500)).ok().as_deref(),
            Some("1500")
        );
        let parsed: Kopecks = serde_json::from_str("-42").expect("integer parses");
        assert_eq!(parsed, Kopecks(-42));
        assert!(serde_json::from_str::<Kopecks>("1.5").is_err());
    }

    #[test]
    fn quantity_parses_decimal_text() {
        let parse = |s: &str| s.parse::<Quantity>().map(Quantity::milli);
        assert_eq!(parse("1"), Ok(1000));
        assert_eq!(parse("0.5"), Ok(500));
        assert_eq!(parse("1.25"), Ok(1250));
        assert_eq!(parse("1.125"), Ok(1125));
        assert_eq!(parse("2.500"), Ok(2500));
        assert_eq!(parse("0.0010"), Ok(1));
        assert!(matches!(parse("0.0005"), Err(QuantityError::TooPrecise(_))));
        assert_eq!(parse("0"), Err(QuantityError::NotPositive));
        assert_eq!(parse("-1"), Err(QuantityError::NotPositive));
        assert!(matches!(parse("1."), Err(QuantityError::NotADecimal(_))));
        assert!(matches!(parse(".5"), Err(QuantityError::NotADecimal(_))));
        assert!(matches!(parse("1e3"), Err(QuantityError::NotADecimal(_))));
        assert!(matches!(parse("1000001"), Err(QuantityError::TooLarge(_))));
        assert!(matches!(
            parse("99999999999999999999"),
            Err(QuantityError::TooLarge(_))
        ));
    }

    #[test]
    fn quantity_json_accepts_integers_decimals_and_strings() {
        let from = |s: &str| serde_json::from_str::<Quantity>(s).map(Quantity::milli);
        assert_eq!(from("3").ok(), Some(3000));
        assert_eq!(from("0.5").ok(), Some(500));
        assert_eq!(from("1.25").ok(), Some(1250));
        assert_eq!(from("0.001").ok(), Some(1));
        assert_eq!(from("\"2.75\"").ok(), Some(2750));
        assert!(from("0.0001").is_err());
        assert!(from("0").is_err());
        assert!(from("-0.5").is_err());
        assert!(from("true").is_err());
        assert!(from("1e400").is_err());
    }

    #[test]
    fn quantity_json_round_trip() {
        for milli in [1, 5, 10, 125, 500, 999, 1000, 1001, 123_456, 999_999_999] {
            let quantity = Quantity::from_milli(milli);
            let json = serde_json::to_string(&quantity).expect("serialises");
            let back: Quantity = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, quantity, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Quantity::from_milli(1250))
                .ok()
                .as_deref(),
            Some("1.25")
        );
        assert_eq!(
            serde_json::to_string(&Quantity::from_milli(2000))
                .ok()
                .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn line_amount_rounds_half_up() {
        let qty = Quantity::from_milli;
        assert_eq!(line_amount(Kopecks(1000), qty(1000)), Some(Kopecks(1000)));
        assert_eq!(line_amount(Kopecks(1000), qty(1500)), Some(Kopecks(1500)));
        // 0.333 × 1.00 = 0.333 kopeck ... 33.3 → 33
        assert_eq!(line_amount(Kopecks(100), qty(333)), Some(Kopecks(33)));
        // 0.5 × 1 kopeck = 0.5 → 1 (half-up)
        assert_eq!(line_amount(Kopecks(1), qty(500)), Some(Kopecks(1)));
        assert_eq!(line_amount(Kopecks(1), qty(499)), Some(Kopecks(0)));
        assert_eq!(line_amount(Kopecks(-1), qty(500)), Some(Kopecks(-1)));
        assert_eq!(line_amount(Kopecks(i64::MAX), qty(2000)), None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn quantity_serde_round_trips(milli in 1i64..=MAX_QUANTITY.milli()) {
                let quantity = Quantity::from_milli(milli);
                let json = serde_json::to_string(&quantity).expect("serialises");
                let back: Quantity = serde_json::from_str(&json).expect("deserialises");
                prop_assert_eq!(back, quantity);
                prop_assert_eq!(quantity.to_string().parse::<Quantity>(), Ok(quantity));
            }

            #[test]
            fn line_amount_matches_exact_rounding(price in 0i64..1_000_000_000, milli in 1i64..10_000_000) {
                let amount = line_amount(Kopecks(price), Quantity::from_milli(milli));
                let exact = i128::from(price) * i128::from(milli);
                let expected = (exact + 500) / 1000;
                prop_assert_eq!(amount.map(|k| i128::from(k.0)), Some(expected));
            }
        }
    }
}
