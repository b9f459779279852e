//! Formatting and parsing for the cashier's screen: money as Russians read it
//! (`1 234,50 ₽`), money typed by a cashier (`1234,5`, `1 234.50`, `500`), quantities and
//! ages (`2 ч 05 мин`).
//!
//! Money never passes through a float: the input is parsed from its decimal text into
//! kopecks, as the rest of the system does.

use crdt_model::money::MAX_AMOUNT;
use crdt_model::{Kopecks, Quantity};

use crate::i18n::{Key, Lang};

/// The separator between thousands and before the currency sign: a no-break space, so the
/// amount never wraps inside.
pub const NBSP: char = '\u{a0}';

/// `1 234,50 ₽` (no-break spaces), `-0,05 ₽` for negative amounts.
pub fn money(amount: Kopecks) -> String {
    let magnitude = amount.value().unsigned_abs();
    let sign = if amount.is_negative() { "-" } else { "" };
    format!(
        "{sign}{},{:02}{NBSP}₽",
        group_thousands(magnitude / 100),
        magnitude % 100
    )
}

/// `1 234,50` without the currency sign (for input fields and narrow columns).
pub fn money_plain(amount: Kopecks) -> String {
    let magnitude = amount.value().unsigned_abs();
    let sign = if amount.is_negative() { "-" } else { "" };
    format!(
        "{sign}{},{:02}",
        group_thousands(magnitude / 100),
        magnitude % 100
    )
}

fn group_thousands(mut value: u64) -> String {
    let mut groups = Vec::new();
    loop {
        groups.push(value % 1000);
        value /= 1000;
        if value == 0 {
            break;
        }
    }
    let mut text = String::new();
    for (index, group) in groups.iter().rev().enumerate() {
        if index == 0 {
            text.push_str(&group.to_string());
        } else {
            text.push(NBSP);
            text.push_str(&format!("{group:03}"));
        }
    }
    text
}

/// Why typed money was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyInputError {
    /// Nothing was typed.
    Empty,
    /// Not a decimal number of roubles.
    NotANumber,
    /// More than two digits after the decimal separator.
    TooPrecise,
    /// Above the model's largest amount.
    TooLarge,
}

/// Parses roubles as typed: digits, optional spaces between groups, `,` or `.` with at most
/// two decimals. `"1 234,5"` is 123 450 kopecks. Negative amounts are refused.
pub fn parse_money(text: &str) -> Result<Kopecks, MoneyInputError> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(*c, ' ' | NBSP | '\u{202f}' | '₽'))
        .collect();
    if cleaned.is_empty() {
        return Err(MoneyInputError::Empty);
    }
    let (units, fraction) = match cleaned.split_once([',', '.']) {
        Some((units, fraction)) => (units, fraction),
        None => (cleaned.as_str(), ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (units.is_empty() && fraction.is_empty()) || !digits(units) || !digits(fraction) {
        return Err(MoneyInputError::NotANumber);
    }
    if fraction.len() > 2 {
        return Err(MoneyInputError::TooPrecise);
    }
    // At most 13 digits of roubles keeps the arithmetic far from overflow.
    if units.len() > 13 {
        return Err(MoneyInputError::TooLarge);
    }
    let roubles: i64 = if units.is_empty() {
        0
    } else {
        units.parse().map_err(|_| MoneyInputError::NotANumber)?
    };
    let kopecks: i64 = match fraction.len() {
        0 => 0,
        1 => {
            fraction
                .parse::<i64>()
                .map_err(|_| MoneyInputError::NotANumber)?
                * 10
        }
        _ => fraction.parse().map_err(|_| MoneyInputError::NotANumber)?,
    };
    let amount = Kopecks(roubles * 100 + kopecks);
    if amount > MAX_AMOUNT {
        return Err(MoneyInputError::TooLarge);
    }
    Ok(amount)
}

/// A quantity with a decimal comma: `1`, `0,5`, `1,125`.
pub fn quantity(qty: Quantity) -> String {
    qty.to_string().replace('.', ",")
}

/// An age in whole seconds: `45 с`, `12 мин`, `2 ч 05 мин`, `3 д 4 ч`.
pub fn age(seconds: u64, lang: Lang) -> String {
    let unit = |key: Key| key.text(lang);
    if seconds < 60 {
        return format!("{seconds}{NBSP}{}", unit(Key::UnitSeconds));
    }
    let minutes = seconds / 60;
    if minutes < 60 {
        return format!("{minutes}{NBSP}{}", unit(Key::UnitMinutes));
    }
    let hours = minutes / 60;
    if hours < 48 {
        return format!(
            "{hours}{NBSP}{} {:02}{NBSP}{}",
            unit(Key::UnitHours),
            minutes % 60,
            unit(Key::UnitMinutes)
        );
    }
    format!(
        "{}{NBSP}{} {}{NBSP}{}",
        hours / 24,
        unit(Key::UnitDays),
        hours % 24,
        unit(Key::UnitHours)
    )
}

/// Whole percent of `part` in `whole`, rounded down; 0 when `whole` is not positive.
pub fn percent_of(part: Kopecks, whole: Kopecks) -> i64 {
    if !whole.is_positive() {
        return 0;
    }
    let exact = i128::from(part.value()) * 100 / i128::from(whole.value());
    i64::try_from(exact).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spaced(text: &str) -> String {
        text.replace(NBSP, " ")
    }

    #[test]
    fn money_is_grouped_with_a_decimal_comma() {
        assert_eq!(spaced(&money(Kopecks(123_450))), "1 234,50 ₽");
        assert_eq!(spaced(&money(Kopecks(0))), "0,00 ₽");
        assert_eq!(spaced(&money(Kopecks(5))), "0,05 ₽");
        assert_eq!(spaced(&money(Kopecks(100_000_000))), "1 000 000,00 ₽");
        assert_eq!(spaced(&money(Kopecks(-150_005))), "-1 500,05 ₽");
        assert_eq!(spaced(&money_plain(Kopecks(99_900))), "999,00");
        assert_eq!(
            spaced(&money(Kopecks(i64::MIN))),
            "-92 233 720 368 547 758,08 ₽"
        );
    }

    #[test]
    fn typed_money_parses_exactly() {
        assert_eq!(parse_money("500"), Ok(Kopecks(50_000)));
        assert_eq!(parse_money("1 234,5"), Ok(Kopecks(123_450)));
        assert_eq!(parse_money("1\u{a0}234.05 ₽"), Ok(Kopecks(123_405)));
        assert_eq!(parse_money(",5"), Ok(Kopecks(50)));
        assert_eq!(parse_money("0"), Ok(Kopecks(0)));
        assert_eq!(parse_money("12."), Ok(Kopecks(1200)));
        assert_eq!(parse_money(""), Err(MoneyInputError::Empty));
        assert_eq!(parse_money("  "), Err(MoneyInputError::Empty));
        assert_eq!(parse_money("-5"), Err(MoneyInputError::NotANumber));
        assert_eq!(parse_money("1,2,3"), Err(MoneyInputError::NotANumber));
        assert_eq!(parse_money("abc"), Err(MoneyInputError::NotANumber));
        assert_eq!(parse_money("."), Err(MoneyInputError::NotANumber));
        assert_eq!(parse_money("1,234"), Err(MoneyInputError::TooPrecise));
        assert_eq!(
            parse_money("99999999999999"),
            Err(MoneyInputError::TooLarge)
        );
        assert_eq!(parse_money("10000000001"), Err(MoneyInputError::TooLarge));
        assert_eq!(parse_money("10000000000"), Ok(MAX_AMOUNT));
    }

    #[test]
    fn quantities_use_a_comma() {
        assert_eq!(quantity(Quantity::from_milli(2000)), "2");
        assert_eq!(quantity(Quantity::from_milli(1250)), "1,25");
    }

    #[test]
    fn ages_pick_their_unit() {
        assert_eq!(spaced(&age(45, Lang::Ru)), "45 с");
        assert_eq!(spaced(&age(12 * 60 + 5, Lang::Ru)), "12 мин");
        assert_eq!(spaced(&age(2 * 3600 + 5 * 60, Lang::Ru)), "2 ч 05 мин");
        assert_eq!(spaced(&age(3 * 86_400 + 4 * 3600, Lang::Ru)), "3 д 4 ч");
        assert_eq!(spaced(&age(2 * 3600 + 5 * 60, Lang::En)), "2 h 05 min");
    }

    #[test]
    fn percent_rounds_down_and_tolerates_zero() {
        assert_eq!(percent_of(Kopecks(10), Kopecks(100)), 10);
        assert_eq!(percent_of(Kopecks(109), Kopecks(1000)), 10);
        assert_eq!(percent_of(Kopecks(5), Kopecks(0)), 0);
    }
}
