//! Fiscal documents of the emulated FN: the open receipt being built (items as STLV 1059,
//! VAT totals), the document header tags every FD carries, and the **emulated** fiscal sign.
//!
//! The fiscal sign is not GOST crypto (that lives inside a real FN): it is the first 6 bytes
//! of HMAC-SHA256 over the document's TLV with a per-FN random key, so it is deterministic,
//! unique per document and checkable by tests, and has the real 6-byte layout (ФПД = u32
//! big-endian of bytes 2..6).

use crate::hmac::hmac_sha256;
use crdt_model::{Kopecks, Quantity, VatRate};

use fiscal::shtrih::codes::{decode_text, vat_from_bitmask, CodePage, Reader, VAT_SUM_COMPUTE};
use fiscal::shtrih::error::DeviceError;
use fiscal::shtrih::tlv::TlvWriter;

/// Most items one receipt may hold (above: FN error 0x0E "too many items").
pub const MAX_ITEMS: usize = 500;
/// User name (1048) the emulated register is registered to.
pub const USER_NAME: &str = "ООО Оптика (эмулятор)";
/// Settlement address (1009).
pub const ADDRESS: &str = "г. Москва, ул. Тестовая, 1";

/// The emulated 1077 (6 bytes) and its ФПД.
pub fn fiscal_sign(key: &[u8], tlv: &[u8]) -> ([u8; 6], u32) {
    let mac = hmac_sha256(key, tlv);
    let raw = [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]];
    (raw, u32::from_be_bytes([raw[2], raw[3], raw[4], raw[5]]))
}

/// A receipt between 0x8D/FF35 and FF45.
#[derive(Debug, Clone)]
pub struct OpenReceipt {
    /// 1054.
    pub operation: u8,
    /// A correction receipt (form 31) rather than a receipt (form 3).
    pub correction: bool,
    /// STLV 1059 entries.
    pub items: TlvWriter,
    /// How many items.
    pub item_count: usize,
    /// Σ1043.
    pub total: i64,
    /// VAT totals for 1102..=1107.
    pub vat_totals: [i64; 6],
}

impl OpenReceipt {
    /// An empty receipt.
    pub fn new(operation: u8, correction: bool) -> OpenReceipt {
        OpenReceipt {
            operation,
            correction,
            items: TlvWriter::new(),
            item_count: 0,
            total: 0,
            vat_totals: [0; 6],
        }
    }

    /// Adds the item of an FF46 parameter block (after the password).
    pub fn add_item(&mut self, params: &[u8]) -> Result<(), DeviceError> {
        if self.item_count >= MAX_ITEMS {
            return Err(DeviceError::Other(0x0E));
        }
        let bad = DeviceError::BadParameters;
        let mut reader = Reader::new(params);
        let _operation = reader.u8().ok_or(bad)?;
        let qty_micro = reader.uint(6).ok_or(bad)?;
        let price = reader.uint(5).ok_or(bad)? as i64;
        let sum = reader.uint(5).ok_or(bad)? as i64;
        let vat_sum = reader.uint(5).ok_or(bad)? as i64;
        let vat = reader.u8().and_then(vat_from_bitmask).ok_or(bad)?;
        let _department = reader.u8().ok_or(bad)?;
        let method = reader.u8().filter(|m| (1..=7).contains(m)).ok_or(bad)?;
        let object = reader.u8().filter(|o| (1..=33).contains(o)).ok_or(bad)?;
        let name = decode_text(reader.rest(), CodePage::Cp1251);
        // Quantities are carried in millionths; the POS works in thousandths.
        if qty_micro == 0 || !qty_micro.is_multiple_of(1000) || sum <= 0 {
            return Err(bad);
        }
        let qty = Quantity::from_milli((qty_micro / 1000) as i64);
        let vat_sum = if vat_sum == VAT_SUM_COMPUTE {
            vat.vat_amount(Kopecks(sum)).0
        } else {
            vat_sum
        };
        let mut item = TlvWriter::new();
        item.byte(1214, method)
            .byte(1212, object)
            .string(1030, &name, 128)
            .money(1079, Kopecks(price))
            .quantity(1023, qty)
            .byte(2108, 0)
            .byte(1199, vat.ffd_code())
            .money(1200, Kopecks(vat_sum))
            .money(1043, Kopecks(sum));
        self.items.nested(1059, &item);
        self.item_count += 1;
        self.total = self.total.checked_add(sum).ok_or(bad)?;
        // 1102..=1107 by rate; the 5/7/22 % receipt totals have no known tag (unverified).
        let slot = match vat {
            VatRate::Vat20 => Some((0, vat_sum)),
            VatRate::Vat10 => Some((1, vat_sum)),
            VatRate::Vat0 => Some((2, sum)),
            VatRate::NoVat => Some((3, sum)),
            VatRate::Vat120 => Some((4, vat_sum)),
            VatRate::Vat110 => Some((5, vat_sum)),
            _ => None,
        };
        if let Some((index, amount)) = slot {
            self.vat_totals[index] = self.vat_totals[index].saturating_add(amount);
        }
        Ok(())
    }
}

/// The payment part of an FF45 parameter block (after the password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    /// 16 payment-type sums.
    pub sums: [i64; 16],
    /// 1055.
    pub taxation: u8,
}

impl Closing {
    /// Parses FF45 parameters.
    pub fn parse(params: &[u8]) -> Result<Closing, DeviceError> {
        let bad = DeviceError::BadParameters;
        let mut reader = Reader::new(params);
        let mut sums = [0i64; 16];
        for sum in &mut sums {
            *sum = reader.uint(5).ok_or(bad)? as i64;
        }
        let _rounding = reader.u8().ok_or(bad)?;
        reader.take(30).ok_or(bad)?;
        let taxation = reader.u8().ok_or(bad)?;
        Ok(Closing { sums, taxation })
    }

    /// Everything paid.
    pub fn paid(&self) -> i64 {
        self.sums
            .iter()
            .fold(0i64, |acc, sum| acc.saturating_add(*sum))
    }

    /// Types 2..=13: electronic (1081).
    pub fn electronic(&self) -> i64 {
        self.sums[1..13]
            .iter()
            .fold(0i64, |acc, sum| acc.saturating_add(*sum))
    }
}

/// Identity and counters written into every document header.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// 1012.
    pub datetime_unix: u64,
    /// 1038.
    pub shift: u32,
    /// 1040.
    pub fd: u32,
    /// 1041.
    pub fn_number: &'a str,
    /// 1037.
    pub rnm: &'a str,
    /// 1018.
    pub inn: &'a str,
}

impl Header<'_> {
    /// Writes the header tags.
    pub fn write(&self, out: &mut TlvWriter) {
        out.u32(1012, u32::try_from(self.datetime_unix).unwrap_or(u32::MAX))
            .u32(1038, self.shift)
            .u32(1040, self.fd)
            .string(1041, self.fn_number, 16)
            .string(1037, &format!("{:<20}", self.rnm), 20)
            .string(1018, self.inn, 12)
            .string(1048, USER_NAME, 256)
            .string(1009, ADDRESS, 256)
            .byte(1209, 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::register::state::hex_encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn fiscal_sign_is_deterministic_and_key_dependent() {
        let (raw, fpd) = fiscal_sign(b"key", b"doc");
        assert_eq!(fiscal_sign(b"key", b"doc"), (raw, fpd));
        assert_ne!(fiscal_sign(b"other", b"doc").0, raw);
        assert_eq!(fpd, u32::from_be_bytes([raw[2], raw[3], raw[4], raw[5]]));
    }
}
