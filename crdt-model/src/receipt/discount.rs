//! The shop's discount caps, and spreading a receipt-level discount over the lines, to the
//! kopeck.
//!
//! Caps: all discounts of a receipt together at most [`MAX_DISCOUNT_PERCENT`] of its gross
//! (the page refuses to sell above it, the till refuses such a receipt from the page); above
//! [`CASHIER_DISCOUNT_PERCENT`] a manager must approve (the page asks for the approval).
//!
//! FFD has no receipt-level discount: each line's price and sum must already include its
//! share (tags 1079 and 1043), and the lines must add up to the total exactly. Shares are
//! proportional to the line amounts, rounded down, and the kopecks left over go to the
//! lines with the largest remainders (Hamilton's largest-remainder method), earlier lines
//! first on ties, so the split is deterministic and never off by more than one kopeck
//! from the exact proportion.

use crate::error::DiscountError;
use crate::money::Kopecks;

/// All discounts of a receipt together may not exceed this share of its gross (percent).
pub const MAX_DISCOUNT_PERCENT: i64 = 50;
/// A cashier alone may give up to this share of the gross (percent); above it a manager
/// approves.
pub const CASHIER_DISCOUNT_PERCENT: i64 = 10;

/// True when `discount` is more than `percent` % of `gross` (exact integer arithmetic).
pub fn exceeds_percent(discount: Kopecks, gross: Kopecks, percent: i64) -> bool {
    i128::from(discount.0) * 100 > i128::from(gross.0) * i128::from(percent)
}

/// The line amounts after taking `discount` off them in proportion to their size.
///
/// Guarantees: the result has one entry per input line; `Σ result == Σ amounts − discount`
/// exactly; `0 <= result[i] <= amounts[i]`; each line's share differs from its exact
/// proportional share by less than one kopeck; equal inputs give equal outputs.
pub fn spread_discount(
    amounts: &[Kopecks],
    discount: Kopecks,
) -> Result<Vec<Kopecks>, DiscountError> {
    if discount.is_negative() {
        return Err(DiscountError::NegativeDiscount);
    }
    if let Some(index) = amounts.iter().position(|amount| amount.is_negative()) {
        return Err(DiscountError::NegativeAmount { index });
    }
    let total: i128 = amounts.iter().map(|amount| i128::from(amount.0)).sum();
    let total_kopecks = i64::try_from(total)
        .map(Kopecks)
        .map_err(|_| DiscountError::Overflow)?;
    if discount > total_kopecks {
        return Err(DiscountError::ExceedsTotal {
            discount,
            total: total_kopecks,
        });
    }
    if discount == Kopecks::ZERO {
        return Ok(amounts.to_vec());
    }

    let discount_wide = i128::from(discount.0);
    let mut shares: Vec<i128> = Vec::with_capacity(amounts.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(amounts.len());
    for (index, amount) in amounts.iter().enumerate() {
        // Both factors are below 2^63, so the product fits in i128.
        let exact = discount_wide * i128::from(amount.0);
        shares.push(exact / total);
        remainders.push((exact % total, index));
    }
    let allotted: i128 = shares.iter().sum();
    // Each remainder is < total, so fewer than amounts.len() kopecks are left over, and
    // at least that many lines have a non-zero remainder to receive them.
    let leftover =
        usize::try_from(discount_wide - allotted).map_err(|_| DiscountError::Overflow)?;
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, index) in remainders.iter().take(leftover) {
        if let Some(share) = shares.get_mut(index) {
            *share += 1;
        }
    }
    amounts
        .iter()
        .zip(shares)
        .map(|(amount, share)| {
            i64::try_from(i128::from(amount.0) - share)
                .map(Kopecks)
                .map_err(|_| DiscountError::Overflow)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(values: &[i64]) -> Vec<Kopecks> {
        values.iter().copied().map(Kopecks).collect()
    }

    #[test]
    fn splits_proportionally_with_largest_remainder() {
        // 100 off 3 × 1.00: 33.33 each, the leftover kopeck goes to the first line.
        assert_eq!(
            spread_discount(&k(&[100, 100, 100]), Kopecks(100)),
            Ok(k(&[66, 67, 67]))
        );
        // 10 off (700, 300): exactly 7 and 3.
        assert_eq!(
            spread_discount(&k(&[700, 300]), Kopecks(10)),
            Ok(k(&[693, 297]))
        );
        // 1 kopeck off (1, 2): shares 1/3 and 2/3 → the larger remainder takes it.
        assert_eq!(spread_discount(&k(&[1, 2]), Kopecks(1)), Ok(k(&[1, 1])));
        // Zero-amount lines never get a share.
        assert_eq!(
            spread_discount(&k(&[0, 5, 0]), Kopecks(5)),
            Ok(k(&[0, 0, 0]))
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(
            spread_discount(&k(&[100]), Kopecks(-1)),
            Err(DiscountError::NegativeDiscount)
        );
        assert_eq!(
            spread_discount(&k(&[100, -1]), Kopecks(1)),
            Err(DiscountError::NegativeAmount { index: 1 })
        );
        assert_eq!(
            spread_discount(&k(&[100]), Kopecks(101)),
            Err(DiscountError::ExceedsTotal {
                discount: Kopecks(101),
                total: Kopecks(100)
            })
        );
        assert_eq!(
            spread_discount(&k(&[i64::MAX, 1]), Kopecks(1)),
            Err(DiscountError::Overflow)
        );
        assert_eq!(spread_discount(&[], Kopecks(0)), Ok(vec![]));
        assert!(spread_discount(&[], Kopecks(1)).is_err());
    }

    proptest! {
        #[test]
        fn sum_is_exact_and_no_line_goes_negative(
            amounts in prop::collection::vec(0i64..=1_000_000_000_000, 1..60),
            fraction in 0u32..=1000,
        ) {
            let lines = k(&amounts);
            let total: i64 = amounts.iter().sum();
            let discount = Kopecks(i64::try_from(i128::from(total) * i128::from(fraction) / 1000).expect("fits"));
            let spread = spread_discount(&lines, discount).expect("valid input");
            prop_assert_eq!(spread.len(), lines.len());
            let spread_total: i64 = spread.iter().map(|k| k.0).sum();
            prop_assert_eq!(spread_total, total - discount.0);
            for (after, before) in spread.iter().zip(&lines) {
                prop_assert!(after.0 >= 0);
                prop_assert!(after <= before);
                // Within one kopeck of the exact proportional share.
                let share = i128::from(before.0 - after.0);
                let exact_times_total = i128::from(discount.0) * i128::from(before.0);
                if total > 0 {
                    prop_assert!((share * i128::from(total) - exact_times_total).abs() < i128::from(total));
                }
            }
            prop_assert_eq!(spread_discount(&lines, discount).expect("valid input"), spread);
        }
    }
}
