//! VAT rates as FFD 1.2 knows them (tag 1199) and the VAT contained in a gross amount.
//!
//! Russian retail prices include VAT, so the amount is always extracted from a gross
//! figure: `gross × rate / (100 + rate)`, rounded half-up to the kopeck. The "calculated"
//! rates (20/120, 10/110, …) used on prepayment receipts give the same amount as the plain
//! rate; they differ only in how the register prints and reports them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::Kopecks;

/// A VAT rate. Serde names are those of the till API (`"vat20"`, `"none"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VatRate {
    /// 22 % (general rate from 2026), FFD code 11.
    #[serde(rename = "vat22")]
    Vat22,
    /// 20 % (general rate until 2025), FFD code 1.
    #[serde(rename = "vat20")]
    Vat20,
    /// 10 % (reduced rate), FFD code 2.
    #[serde(rename = "vat10")]
    Vat10,
    /// 0 %, FFD code 5.
    #[serde(rename = "vat0")]
    Vat0,
    /// 5 % (simplified-tax payers), FFD code 7.
    #[serde(rename = "vat5")]
    Vat5,
    /// 7 % (simplified-tax payers), FFD code 8.
    #[serde(rename = "vat7")]
    Vat7,
    /// Calculated rate 5/105, FFD code 9.
    #[serde(rename = "vat105")]
    Vat105,
    /// Calculated rate 7/107, FFD code 10.
    #[serde(rename = "vat107")]
    Vat107,
    /// Calculated rate 10/110, FFD code 4.
    #[serde(rename = "vat110")]
    Vat110,
    /// Calculated rate 20/120, FFD code 3.
    #[serde(rename = "vat120")]
    Vat120,
    /// Calculated rate 22/122, FFD code 12.
    #[serde(rename = "vat122")]
    Vat122,
    /// Not subject to VAT (corrective glasses, lenses, frames), FFD code 6.
    #[serde(rename = "none")]
    NoVat,
}

impl VatRate {
    /// Every rate, in declaration order.
    pub const ALL: [VatRate; 12] = [
        VatRate::Vat22,
        VatRate::Vat20,
        VatRate::Vat10,
        VatRate::Vat0,
        VatRate::Vat5,
        VatRate::Vat7,
        VatRate::Vat105,
        VatRate::Vat107,
        VatRate::Vat110,
        VatRate::Vat120,
        VatRate::Vat122,
        VatRate::NoVat,
    ];

    /// The FFD 1.2 code of tag 1199.
    pub const fn ffd_code(self) -> u8 {
        match self {
            VatRate::Vat20 => 1,
            VatRate::Vat10 => 2,
            VatRate::Vat120 => 3,
            VatRate::Vat110 => 4,
            VatRate::Vat0 => 5,
            VatRate::NoVat => 6,
            VatRate::Vat5 => 7,
            VatRate::Vat7 => 8,
            VatRate::Vat105 => 9,
            VatRate::Vat107 => 10,
            VatRate::Vat22 => 11,
            VatRate::Vat122 => 12,
        }
    }

    /// The rate for an FFD 1.2 tag 1199 code; `None` for codes outside 1..=12.
    pub fn from_ffd_code(code: u8) -> Option<VatRate> {
        VatRate::ALL
            .into_iter()
            .find(|rate| rate.ffd_code() == code)
    }

    /// The serde / API name (`"vat20"`, `"none"`).
    pub const fn api_name(self) -> &'static str {
        match self {
            VatRate::Vat22 => "vat22",
            VatRate::Vat20 => "vat20",
            VatRate::Vat10 => "vat10",
            VatRate::Vat0 => "vat0",
            VatRate::Vat5 => "vat5",
            VatRate::Vat7 => "vat7",
            VatRate::Vat105 => "vat105",
            VatRate::Vat107 => "vat107",
            VatRate::Vat110 => "vat110",
            VatRate::Vat120 => "vat120",
            VatRate::Vat122 => "vat122",
            VatRate::NoVat => "none",
        }
    }

    /// The rate for an API name; `None` if unknown.
    pub fn from_api_name(name: &str) -> Option<VatRate> {
        VatRate::ALL
            .into_iter()
            .find(|rate| rate.api_name() == name)
    }

    /// The rate in whole percent, `None` for "not subject to VAT".
    pub const fn percent(self) -> Option<u8> {
        match self {
            VatRate::Vat22 | VatRate::Vat122 => Some(22),
            VatRate::Vat20 | VatRate::Vat120 => Some(20),
            VatRate::Vat10 | VatRate::Vat110 => Some(10),
            VatRate::Vat7 | VatRate::Vat107 => Some(7),
            VatRate::Vat5 | VatRate::Vat105 => Some(5),
            VatRate::Vat0 => Some(0),
            VatRate::NoVat => None,
        }
    }

    /// The VAT included in a gross (VAT-inclusive) amount, rounded half-up to the kopeck
    /// (half away from zero for negative amounts, so a refund mirrors its sale).
    pub fn vat_amount(self, gross: Kopecks) -> Kopecks {
        let percent = match self.percent() {
            Some(0) | None => return Kopecks::ZERO,
            Some(percent) => i128::from(percent),
        };
        let numerator = i128::from(gross.0) * percent;
        let denominator = 100 + percent;
        let mut quotient = numerator / denominator;
        if (numerator % denominator).abs() * 2 >= denominator {
            quotient += numerator.signum();
        }
        // |quotient| < |gross| because percent < denominator, so it always fits.
        Kopecks(i64::try_from(quotient).unwrap_or(gross.0))
    }
}

impl fmt::Display for VatRate {
    /// The printed form: `20%`, `20/120`, `без НДС`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self {
            VatRate::Vat22 => "22%",
            VatRate::Vat20 => "20%",
            VatRate::Vat10 => "10%",
            VatRate::Vat0 => "0%",
            VatRate::Vat5 => "5%",
            VatRate::Vat7 => "7%",
            VatRate::Vat105 => "5/105",
            VatRate::Vat107 => "7/107",
            VatRate::Vat110 => "10/110",
            VatRate::Vat120 => "20/120",
            VatRate::Vat122 => "22/122",
            VatRate::NoVat => "без НДС",
        };
        f.write_str(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffd_codes_match_tag_1199() {
        let expected = [
            (1, VatRate::Vat20),
            (2, VatRate::Vat10),
            (3, VatRate::Vat120),
            (4, VatRate::Vat110),
            (5, VatRate::Vat0),
            (6, VatRate::NoVat),
            (7, VatRate::Vat5),
            (8, VatRate::Vat7),
            (9, VatRate::Vat105),
            (10, VatRate::Vat107),
            (11, VatRate::Vat22),
            (12, VatRate::Vat122),
        ];
        for (code, rate) in expected {
            assert_eq!(rate.ffd_code(), code);
            assert_eq!(VatRate::from_ffd_code(code), Some(rate));
        }
        assert_eq!(VatRate::from_ffd_code(0), None);
        assert_eq!(VatRate::from_ffd_code(13), None);
    }

    #[test]
    fn serde_names_are_the_api_names() {
        for rate in VatRate::ALL {
            let json = serde_json::to_string(&rate).expect("serialises");
            assert_eq!(json, format!("\"{}\"", rate.api_name()));
            let back: VatRate = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, rate);
            assert_eq!(VatRate::from_api_name(rate.api_name()), Some(rate));
        }
        assert!(serde_json::from_str::<VatRate>("\"vat18\"").is_err());
        assert!(serde_json::from_str::<VatRate>("\"None\"").is_err());
    }

    #[test]
    fn vat_amount_is_extracted_from_gross_and_rounded_half_up() {
        // 120.00 at 20 % contains 20.00.
        assert_eq!(VatRate::Vat20.vat_amount(Kopecks(12_000)), Kopecks(2_000));
        assert_eq!(VatRate::Vat120.vat_amount(Kopecks(12_000)), Kopecks(2_000));
        // 100.00 at 20 %: 16.666… → 16.67.
        assert_eq!(VatRate::Vat20.vat_amount(Kopecks(10_000)), Kopecks(1_667));
        // 100.00 at 10 %: 9.0909… → 9.09.
        assert_eq!(VatRate::Vat10.vat_amount(Kopecks(10_000)), Kopecks(909));
        // 122.00 at 22 % contains 22.00.
        assert_eq!(VatRate::Vat22.vat_amount(Kopecks(12_200)), Kopecks(2_200));
        assert_eq!(VatRate::Vat122.vat_amount(Kopecks(12_200)), Kopecks(2_200));
        // 105.00 at 5 %: 5.00; 107.00 at 7 %: 7.00.
        assert_eq!(VatRate::Vat5.vat_amount(Kopecks(10_500)), Kopecks(500));
        assert_eq!(VatRate::Vat107.vat_amount(Kopecks(10_700)), Kopecks(700));
        // 0.03 at 20 %: 0.005 → 0.01 (exactly half rounds up).
        assert_eq!(VatRate::Vat20.vat_amount(Kopecks(3)), Kopecks(1));
        assert_eq!(VatRate::Vat20.vat_amount(Kopecks(2)), Kopecks(0));
        assert_eq!(VatRate::Vat20.vat_amount(Kopecks(-10_000)), Kopecks(-1_667));
        assert_eq!(VatRate::Vat0.vat_amount(Kopecks(10_000)), Kopecks::ZERO);
        assert_eq!(VatRate::NoVat.vat_amount(Kopecks(10_000)), Kopecks::ZERO);
        assert_eq!(
            VatRate::Vat22.vat_amount(Kopecks(i64::MAX)),
            Kopecks(1_663_231_023_039_385_801)
        );
    }

    #[test]
    fn display_is_the_printed_form() {
        assert_eq!(VatRate::Vat20.to_string(), "20%");
        assert_eq!(VatRate::Vat110.to_string(), "10/110");
        assert_eq!(VatRate::NoVat.to_string(), "без НДС");
    }
}
