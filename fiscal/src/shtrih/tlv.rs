//! FFD 1.2 TLV encoding (`tag u16 LE | len u16 LE | value`): a writer for the value types
//! FFD uses (byte, u32, VLN money, FVLN quantity, UnixTime, CP866 strings, nested STLV) and a
//! checked parser. Used by the driver (FF0C payloads) and the emulator (whole documents).

use crdt_model::{Kopecks, Quantity};

use crate::shtrih::codes::{decode_text, encode_text, le_uint, CodePage};

/// Builds a TLV byte string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlvWriter {
    bytes: Vec<u8>,
}

impl TlvWriter {
    /// An empty writer.
    pub fn new() -> TlvWriter {
        TlvWriter::default()
    }

    /// Raw value. Values longer than `u16::MAX` are cut: every caller bounds its values far
    /// below that (names ≤ 128, documents ≤ a few KiB).
    pub fn raw(&mut self, tag: u16, value: &[u8]) -> &mut TlvWriter {
        let value = &value[..value.len().min(usize::from(u16::MAX))];
        self.bytes.extend_from_slice(&tag.to_le_bytes());
        self.bytes
            .extend_from_slice(&(value.len() as u16).to_le_bytes());
        self.bytes.extend_from_slice(value);
        self
    }

    /// One byte.
    pub fn byte(&mut self, tag: u16, value: u8) -> &mut TlvWriter {
        self.raw(tag, &[value])
    }

    /// `u32` LE (FD numbers, shift numbers, UnixTime).
    pub fn u32(&mut self, tag: u16, value: u32) -> &mut TlvWriter {
        self.raw(tag, &value.to_le_bytes())
    }

    /// VLN money: LE kopecks with trailing zero bytes trimmed (negative amounts are never
    /// written: FFD money is unsigned, the sign lives in 1054).
    pub fn money(&mut self, tag: u16, value: Kopecks) -> &mut TlvWriter {
        let unsigned = u64::try_from(value.0).unwrap_or(0);
        let bytes = unsigned.to_le_bytes();
        let used = bytes
            .iter()
            .rposition(|byte| *byte != 0)
            .map_or(1, |i| i + 1);
        self.raw(tag, &bytes[..used.min(6)])
    }

    /// FVLN quantity: byte 0 = 3 decimal places, then the LE mantissa, trimmed.
    pub fn quantity(&mut self, tag: u16, value: Quantity) -> &mut TlvWriter {
        let unsigned = u64::try_from(value.milli()).unwrap_or(0);
        let bytes = unsigned.to_le_bytes();
        let used = bytes
            .iter()
            .rposition(|byte| *byte != 0)
            .map_or(1, |i| i + 1);
        let mut out = vec![3u8];
        out.extend_from_slice(&bytes[..used.min(7)]);
        self.raw(tag, &out)
    }

    /// A CP866 string cut to `max_bytes`.
    pub fn string(&mut self, tag: u16, value: &str, max_bytes: usize) -> &mut TlvWriter {
        let mut bytes = encode_text(value, CodePage::Cp866);
        bytes.truncate(max_bytes);
        self.raw(tag, &bytes)
    }

    /// A nested STLV.
    pub fn nested(&mut self, tag: u16, inner: &TlvWriter) -> &mut TlvWriter {
        self.raw(tag, &inner.bytes)
    }

    /// Appends already encoded TLV entries.
    pub fn extend(&mut self, encoded: &[u8]) -> &mut TlvWriter {
        self.bytes.extend_from_slice(encoded);
        self
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// One parsed TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: u16,
    /// The value bytes.
    pub value: &'a [u8],
}

/// A TLV byte string is truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated TLV at byte {offset}")]
pub struct TlvError {
    /// Where the broken entry starts.
    pub offset: usize,
}

/// Parses a flat TLV sequence (nested STLVs stay as bytes; parse them again).
pub fn parse(bytes: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let header = bytes.get(offset..offset + 4).ok_or(TlvError { offset })?;
        let tag = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let value = bytes
            .get(offset + 4..offset + 4 + len)
            .ok_or(TlvError { offset })?;
        out.push(Tlv { tag, value });
        offset += 4 + len;
    }
    Ok(out)
}

/// The value of the first entry with `tag`.
pub fn find<'a>(entries: &[Tlv<'a>], tag: u16) -> Option<&'a [u8]> {
    entries
        .iter()
        .find(|entry| entry.tag == tag)
        .map(|entry| entry.value)
}

/// An unsigned integer value (u32, VLN, UnixTime) of the first entry with `tag`.
pub fn find_uint(entries: &[Tlv<'_>], tag: u16) -> Option<u64> {
    find(entries, tag)
        .filter(|value| value.len() <= 8)
        .map(le_uint)
}

/// A CP866 string value of the first entry with `tag`.
pub fn find_string(entries: &[Tlv<'_>], tag: u16) -> Option<String> {
    find(entries, tag).map(|value| decode_text(value, CodePage::Cp866))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_entries_parse_back() {
        let mut inner = TlvWriter::new();
        inner.string(1085, "receipt_id", 64);
        let mut writer = TlvWriter::new();
        writer
            .byte(1054, 2)
            .money(1020, Kopecks(150_000))
            .quantity(1023, Quantity::from_milli(1500))
            .u32(1040, 7)
            .nested(1084, &inner);
        let entries = parse(writer.as_bytes()).expect("parses");
        assert_eq!(find_uint(&entries, 1054), Some(2));
        assert_eq!(find(&entries, 1020), Some(&[0xF0, 0x49, 0x02][..]));
        assert_eq!(find_uint(&entries, 1020), Some(150_000));
        assert_eq!(find(&entries, 1023), Some(&[3, 0xDC, 0x05][..]));
        assert_eq!(find_uint(&entries, 1040), Some(7));
        let nested = parse(find(&entries, 1084).expect("1084")).expect("nested parses");
        assert_eq!(find_string(&nested, 1085).as_deref(), Some("receipt_id"));
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert_eq!(parse(&[0x0E, 0x04, 0x05]), Err(TlvError { offset: 0 }));
        assert_eq!(
            parse(&[0x0E, 0x04, 0x01, 0x00, 0x01, 0x0E, 0x04, 0x02, 0x00, 0x01]),
            Err(TlvError { offset: 5 })
        );
        assert_eq!(parse(&[]), Ok(vec![]));
    }
}
