//! Shtrih-M command codes used by the driver and by the register emulator (in
//! `fiscal-emulators`), and the field encodings of their parameters: little-endian integers,
//! 5-byte money, `DD MM YY HH MM` date-time, the FF46 tax-rate bitmask, and the two single-byte
//! code pages (CP1251 for printer text such as the FF46 item name, CP866 for FFD TLV strings).
//!
//! Codes marked *real* exist with that meaning in Shtrih's protocol (fiscal-reference §2.2);
//! where the real answer layout was not available the layout is ours and says so.

use crdt_model::civil::{civil_from_days, days_from_civil};
use crdt_model::VatRate;

/// Default system administrator password (Shtrih factory default 30).
pub const ADMIN_PASSWORD: u32 = 30;

/// *Real*: short status. Answer: operator 1, flags 2, **mode 1**, submode 1 (1 = paper
/// out), then 7 reserved bytes.
pub const CMD_SHORT_STATUS: u16 = 0x10;
/// *Real*: X report (daily report without clearing; non-fiscal). Answer: operator 1.
pub const CMD_X_REPORT: u16 = 0x40;
/// *Real*: cash in (внесение). Params: sum 5. Answer: operator 1, document number 2.
pub const CMD_CASH_IN: u16 = 0x50;
/// *Real*: cash out (выплата). Params: sum 5. Answer: operator 1, document number 2.
pub const CMD_CASH_OUT: u16 = 0x51;
/// *Real*: cancel (annul) the open receipt. Answer: operator 1.
pub const CMD_CANCEL_RECEIPT: u16 = 0x88;
/// *Real*: open a receipt. Params: type 1 (0 sale, 1 purchase, 2 sale refund, 3 purchase
/// refund). Answer: operator 1.
pub const CMD_OPEN_RECEIPT: u16 = 0x8D;
/// *Real* code: FN status. Our answer layout: FN state 1, current document 1 (0 none,
/// 1 receipt open), data flag 1, shift open 1, warning flags 1 (bit 0 = 1051 urgent
/// replacement, bit 1 = 1050 keys < 30 days, bit 2 = 1052 memory 99 %, bit 3 = 1053 OFD
/// timeout), date-time 5, FN number 16 ASCII, last FD 4.
pub const CMD_FN_STATUS: u16 = 0xFF01;
/// *Real*: open the shift in the FN. Answer: shift number 2, FD 4, ФПД 4.
pub const CMD_OPEN_SHIFT: u16 = 0xFF0B;
/// *Real*: send TLV data for the open document. Params: TLV bytes.
pub const CMD_SEND_TLV: u16 = 0xFF0C;
/// *Real* code (exchange through the driver): size of the oldest OFD message. Answer:
/// length 2, then **our extension**: its FD number 4.
pub const CMD_OFD_MESSAGE_SIZE: u16 = 0xFF30;
/// *Real*: read a block of the OFD message. Params: offset 2, length 1. Answer: bytes.
pub const CMD_OFD_MESSAGE_READ: u16 = 0xFF31;
/// *Real*: begin writing the OFD answer. Params: total length 2. Answer: block size 1.
pub const CMD_OFD_ACK_BEGIN: u16 = 0xFF32;
/// *Real*: write a block of the OFD answer. Params: offset 2, bytes. The FN checks the
/// answer once the last block arrives.
pub const CMD_OFD_ACK_WRITE: u16 = 0xFF33;
/// *Real* code: begin a correction receipt. Our FFD 1.2 use: params operation 1 (1054); the
/// body then follows as for a receipt (FF0C 1173/1174, FF46 items, FF45 close) (design decision).
pub const CMD_BEGIN_CORRECTION: u16 = 0xFF35;
/// *Real*: information exchange status. Answer: status 1, read status 1, message count 2,
/// first FD 4, first date-time 5.
pub const CMD_EXCHANGE_STATUS: u16 = 0xFF39;
/// *Real*: begin reading a document's TLV. Params: FD 4. Answer: form code 2, length 2.
pub const CMD_DOCUMENT_BEGIN: u16 = 0xFF3A;
/// *Real*: read the next block of that TLV. Answer: bytes (empty when done).
pub const CMD_DOCUMENT_READ: u16 = 0xFF3B;
/// *Real*: shift parameters. Answer: shift open 1, shift number 2, receipt number 2.
pub const CMD_SHIFT_PARAMS: u16 = 0xFF40;
/// *Real*: begin opening a shift (TLV 1021 may follow).
pub const CMD_BEGIN_OPEN_SHIFT: u16 = 0xFF41;
/// *Real*: begin closing a shift.
pub const CMD_BEGIN_CLOSE_SHIFT: u16 = 0xFF42;
/// *Real*: close the shift in the FN (the Z report). Answer: shift number 2, FD 4, ФПД 4.
pub const CMD_CLOSE_SHIFT: u16 = 0xFF43;
/// *Real*: close the receipt, extended variant 2. Params: 16 payment sums × 5, rounding 1,
/// 6 VAT sums × 5, taxation 1, text. Answer: change 5, FD 4, ФПД 4, date-time 5.
pub const CMD_CLOSE_RECEIPT: u16 = 0xFF45;
/// *Real*: operation V2. Params: type 1, quantity 6 (×10⁶), price 5, sum 5, VAT sum 5,
/// tax bitmask 1, department 1, 1214 1, 1212 1, name (CP1251).
pub const CMD_OPERATION: u16 = 0xFF46;

/// Device mode (0x10 answer): shift open, under 24 h.
pub const MODE_SHIFT_OPEN: u8 = 2;
/// Device mode: shift open for 24 h or more.
pub const MODE_SHIFT_EXPIRED: u8 = 3;
/// Device mode: shift closed.
pub const MODE_SHIFT_CLOSED: u8 = 4;
/// Device mode: a sale receipt is open.
pub const MODE_RECEIPT_OPEN: u8 = 8;
/// Submode (0x10 answer): out of paper.
pub const SUBMODE_PAPER_OUT: u8 = 1;

/// Sum of FF46's VAT field meaning "let the register compute it".
pub const VAT_SUM_COMPUTE: i64 = 0xFF_FFFF_FFFF;

/// The FF46 tax byte for a VAT rate. 22 % uses the javapos values 0xCB/0xCC (commit af0a237),
/// which fiscal-reference marks unverified.
pub const fn tax_bitmask(vat: VatRate) -> u8 {
    match vat {
        VatRate::Vat20 => 0x01,
        VatRate::Vat10 => 0x02,
        VatRate::Vat0 => 0x04,
        VatRate::NoVat => 0x08,
        VatRate::Vat120 => 0x10,
        VatRate::Vat110 => 0x20,
        VatRate::Vat5 => 0x81,
        VatRate::Vat7 => 0x82,
        VatRate::Vat105 => 0x83,
        VatRate::Vat107 => 0x84,
        VatRate::Vat22 => 0xCB,
        VatRate::Vat122 => 0xCC,
    }
}

/// The VAT rate of an FF46 tax byte.
pub fn vat_from_bitmask(byte: u8) -> Option<VatRate> {
    VatRate::ALL
        .into_iter()
        .find(|vat| tax_bitmask(*vat) == byte)
}

/// A cursor over answer or parameter bytes; every read is checked.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// The next `count` bytes.
    pub fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < count {
            return None;
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Some(head)
    }

    /// A little-endian unsigned integer of `width` bytes (at most 8).
    pub fn uint(&mut self, width: usize) -> Option<u64> {
        if width > 8 {
            return None;
        }
        let bytes = self.take(width)?;
        Some(le_uint(bytes))
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// A little-endian unsigned integer of up to 8 bytes (longer input uses the first 8).
pub fn le_uint(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .rev()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// Appends the low `width` bytes of `value`, little-endian.
pub fn put_uint(out: &mut Vec<u8>, value: u64, width: usize) {
    out.extend_from_slice(&value.to_le_bytes()[..width.min(8)]);
}

/// `DD MM YY HH MM` (years 2000..=2255 as YY = year − 2000) of Unix seconds.
pub fn encode_datetime(unix: u64) -> [u8; 5] {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let seconds = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    let yy = u8::try_from(year - 2000).unwrap_or(0);
    [
        day as u8,
        month as u8,
        yy,
        (seconds / 3600) as u8,
        ((seconds % 3600) / 60) as u8,
    ]
}

/// Unix seconds of a `DD MM YY HH MM` field; `None` when out of range.
pub fn decode_datetime(bytes: &[u8]) -> Option<u64> {
    let [day, month, yy, hour, minute] = <[u8; 5]>::try_from(bytes).ok()?;
    if !(1..=31).contains(&day) || !(1..=12).contains(&month) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(2000 + i64::from(yy), u32::from(month), u32::from(day));
    let seconds = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60;
    u64::try_from(seconds).ok()
}

/// CP866 (FFD TLV strings) or CP1251 (Shtrih printer text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePage {
    /// DOS Cyrillic.
    Cp866,
    /// Windows Cyrillic.
    Cp1251,
}

/// Encodes ASCII and Cyrillic letters; anything else becomes `?`.
pub fn encode_text(text: &str, page: CodePage) -> Vec<u8> {
    text.chars()
        .map(|ch| {
            if ch.is_ascii() {
                return ch as u8;
            }
            let code = ch as u32;
            let mapped = match (page, code) {
                (CodePage::Cp866, 0x410..=0x42F) => code - 0x410 + 0x80,
                (CodePage::Cp866, 0x430..=0x43F) => code - 0x430 + 0xA0,
                (CodePage::Cp866, 0x440..=0x44F) => code - 0x440 + 0xE0,
                (CodePage::Cp866, 0x401) => 0xF0,
                (CodePage::Cp866, 0x451) => 0xF1,
                (CodePage::Cp1251, 0x410..=0x44F) => code - 0x410 + 0xC0,
                (CodePage::Cp1251, 0x401) => 0xA8,
                (CodePage::Cp1251, 0x451) => 0xB8,
                _ => u32::from(b'?'),
            };
            mapped as u8
        })
        .collect()
}

/// Decodes what [`encode_text`] makes; unknown bytes become `?`.
pub fn decode_text(bytes: &[u8], page: CodePage) -> String {
    bytes
        .iter()
        .map(|byte| {
            let byte = u32::from(*byte);
            if byte < 0x80 {
                return char::from_u32(byte).unwrap_or('?');
            }
            let code = match (page, byte) {
                (CodePage::Cp866, 0x80..=0x9F) => byte - 0x80 + 0x410,
                (CodePage::Cp866, 0xA0..=0xAF) => byte - 0xA0 + 0x430,
                (CodePage::Cp866, 0xE0..=0xEF) => byte - 0xE0 + 0x440,
                (CodePage::Cp866, 0xF0) => 0x401,
                (CodePage::Cp866, 0xF1) => 0x451,
                (CodePage::Cp1251, 0xC0..=0xFF) => byte - 0xC0 + 0x410,
                (CodePage::Cp1251, 0xA8) => 0x401,
                (CodePage::Cp1251, 0xB8) => 0x451,
                _ => u32::from(b'?'),
            };
            char::from_u32(code).unwrap_or('?')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_round_trips_to_the_minute() {
        // 2026-11-23 19:10:00 UTC.
        let unix = 1_795_461_000;
        let bytes = encode_datetime(unix + 42);
        assert_eq!(bytes, [23, 11, 26, 19, 10]);
        assert_eq!(decode_datetime(&bytes), Some(unix));
        assert_eq!(decode_datetime(&[0, 1, 1, 0, 0]), None);
    }

    #[test]
    fn cyrillic_round_trips_in_both_pages() {
        let text = "Оправа Ёж №5";
        for page in [CodePage::Cp866, CodePage::Cp1251] {
            assert_eq!(decode_text(&encode_text(text, page), page), "Оправа Ёж ?5");
        }
        assert_eq!(encode_text("Я", CodePage::Cp866), vec![0x9F]);
        assert_eq!(encode_text("я", CodePage::Cp1251), vec![0xFF]);
    }

    #[test]
    fn every_vat_rate_has_a_distinct_tax_byte() {
        for vat in VatRate::ALL {
            assert_eq!(vat_from_bitmask(tax_bitmask(vat)), Some(vat));
        }
    }
}
