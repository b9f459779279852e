//! Minimal FFD TLV reading and writing for the OFD side: enough to build and parse the
//! operator confirmation (FD 7) and to find our receipt id in a fiscal document.
//!
//! Wire form (fiscal-reference.md §1.1): `tag: u16 LE`, `len: u16 LE`, `value`. An STLV carries
//! nested TLVs in its value. Reading never panics and never allocates for hostile input beyond
//! the slices it is given; nesting is walked to a bounded depth.

use crate::register::RECEIPT_ID_ATTRIBUTE;
use thiserror::Error;

/// Tag of the user-defined additional attribute STLV (дополнительный реквизит пользователя).
pub const TAG_USER_ATTRIBUTE: u16 = 1084;
/// Tag of the user attribute's name, nested in [`TAG_USER_ATTRIBUTE`].
pub const TAG_USER_ATTRIBUTE_NAME: u16 = 1085;
/// Tag of the user attribute's value, nested in [`TAG_USER_ATTRIBUTE`]; our receipt id goes here.
pub const TAG_USER_ATTRIBUTE_VALUE: u16 = 1086;

/// How deep [`find_receipt_id`] descends into STLVs; real documents nest two levels at most.
const MAX_DEPTH: usize = 4;

/// Why a TLV stream could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlvError {
    /// Fewer than 4 bytes were left where a tag and length were expected.
    #[error("truncated TLV header at offset {offset}")]
    TruncatedHeader {
        /// Byte offset of the incomplete header.
        offset: usize,
    },
    /// The length field points past the end of the input.
    #[error("TLV {tag} at offset {offset} declares {declared} bytes, {available} available")]
    TruncatedValue {
        /// Tag of the offending TLV.
        tag: u16,
        /// Byte offset of its header.
        offset: usize,
        /// Declared value length.
        declared: usize,
        /// Bytes actually left.
        available: usize,
    },
    /// A value longer than a `u16` length can describe.
    #[error("TLV {tag} value of {len} bytes exceeds 65535")]
    ValueTooLong {
        /// Tag being written.
        tag: u16,
        /// Length of the value.
        len: usize,
    },
}

/// One TLV borrowed from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// FFD tag number.
    pub tag: u16,
    /// Raw value bytes (nested TLVs for an STLV).
    pub value: &'a [u8],
}

/// Iterator over the TLVs of one level. Yields an error once and then stops.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    input: &'a [u8],
    offset: usize,
    failed: bool,
}

/// Iterates the TLVs of `input` (one nesting level).
pub fn iter(input: &[u8]) -> TlvIter<'_> {
    TlvIter {
        input,
        offset: 0,
        failed: false,
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.input.len() {
            return None;
        }
        let offset = self.offset;
        let rest = &self.input[offset..];
        let Some(&[t0, t1, l0, l1]) = rest.get(..4).and_then(|h| <&[u8; 4]>::try_from(h).ok())
        else {
            self.failed = true;
            return Some(Err(TlvError::TruncatedHeader { offset }));
        };
        let tag = u16::from_le_bytes([t0, t1]);
        let declared = usize::from(u16::from_le_bytes([l0, l1]));
        let Some(value) = rest.get(4..4 + declared) else {
            self.failed = true;
            return Some(Err(TlvError::TruncatedValue {
                tag,
                offset,
                declared,
                available: rest.len() - 4,
            }));
        };
        self.offset = offset + 4 + declared;
        Some(Ok(Tlv { tag, value }))
    }
}

/// Appends one TLV to `out`.
pub fn push(out: &mut Vec<u8>, tag: u16, value: &[u8]) -> Result<(), TlvError> {
    let len = u16::try_from(value.len()).map_err(|_| TlvError::ValueTooLong {
        tag,
        len: value.len(),
    })?;
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Reads an unsigned little-endian integer of 1 to 4 bytes (FFD `UInt32`/VLN up to 4 bytes).
pub fn read_u32_le(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 4 {
        return None;
    }
    let mut bytes = [0u8; 4];
    bytes[..value.len()].copy_from_slice(value);
    Some(u32::from_le_bytes(bytes))
}

/// Finds our receipt id in a fiscal document: the value (1086) of the user attribute STLV (1084)
/// named [`RECEIPT_ID_ATTRIBUTE`] (1085), as the register writes it, at any nesting level up to
/// [`MAX_DEPTH`]. Only printable ASCII values are returned, so
/// a garbled or foreign attribute never becomes a bogus id. Malformed TLV yields `None`.
pub fn find_receipt_id(document: &[u8]) -> Option<String> {
    find_in(document, 0)
}

fn find_in(level: &[u8], depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    for item in iter(level) {
        let Ok(tlv) = item else { return None };
        if tlv.tag == TAG_USER_ATTRIBUTE {
            if let Some(id) = receipt_id_attribute(tlv.value) {
                return Some(id);
            }
            continue;
        }
        // Only STLVs hold nested TLVs; a value that does not parse as TLV is simply skipped.
        if tlv.value.len() >= 4 && iter(tlv.value).all(|inner| inner.is_ok()) {
            if let Some(found) = find_in(tlv.value, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

/// The value of a user attribute named [`RECEIPT_ID_ATTRIBUTE`]; other attributes are ignored.
fn receipt_id_attribute(attribute: &[u8]) -> Option<String> {
    let mut name = None;
    let mut value = None;
    for inner in iter(attribute) {
        let inner = inner.ok()?;
        match inner.tag {
            TAG_USER_ATTRIBUTE_NAME => name = Some(inner.value),
            TAG_USER_ATTRIBUTE_VALUE => value = Some(inner.value),
            _ => {}
        }
    }
    if name? != RECEIPT_ID_ATTRIBUTE.as_bytes() {
        return None;
    }
    printable_ascii(value?)
}

fn printable_ascii(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt_with_id(id: &str) -> Vec<u8> {
        let mut attribute = Vec::new();
        push(&mut attribute, TAG_USER_ATTRIBUTE_NAME, b"receipt_id").expect("short");
        push(&mut attribute, TAG_USER_ATTRIBUTE_VALUE, id.as_bytes()).expect("short");
        let mut body = Vec::new();
        push(&mut body, 1020, &[0x10, 0x27]).expect("short");
        push(&mut body, TAG_USER_ATTRIBUTE, &attribute).expect("short");
        let mut document = Vec::new();
        push(&mut document, 3, &body).expect("short");
        document
    }

    #[test]
    fn finds_receipt_id_nested_in_receipt_stlv() {
        let id = "7f1c2a9e-0000-4000-8000-000000000001";
        assert_eq!(find_receipt_id(&receipt_with_id(id)).as_deref(), Some(id));
    }

    #[test]
    fn other_user_attributes_are_ignored() {
        let mut attribute = Vec::new();
        push(&mut attribute, TAG_USER_ATTRIBUTE_NAME, b"order").expect("short");
        push(&mut attribute, TAG_USER_ATTRIBUTE_VALUE, b"42").expect("short");
        let mut document = Vec::new();
        push(&mut document, TAG_USER_ATTRIBUTE, &attribute).expect("short");
        assert_eq!(find_receipt_id(&document), None);
        document.extend_from_slice(&receipt_with_id("r-9"));
        assert_eq!(find_receipt_id(&document).as_deref(), Some("r-9"));
    }

    #[test]
    fn no_attribute_means_none() {
        let mut document = Vec::new();
        push(&mut document, 1020, &[1, 2, 3]).expect("short");
        assert_eq!(find_receipt_id(&document), None);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let items: Vec<_> = iter(&[0x03, 0x00, 0x10, 0x00, 0x01]).collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(
            items[0],
            Err(TlvError::TruncatedValue {
                declared: 16,
                available: 1,
                ..
            })
        ));
        assert_eq!(find_receipt_id(&[0x03, 0x00, 0x10, 0x00, 0x01]), None);
        assert!(matches!(
            iter(&[1, 2, 3]).next(),
            Some(Err(TlvError::TruncatedHeader { offset: 0 }))
        ));
    }

    #[test]
    fn reads_short_little_endian_integers() {
        assert_eq!(read_u32_le(&[0x01, 0x02]), Some(0x0201));
        assert_eq!(read_u32_le(&[]), None);
        assert_eq!(read_u32_le(&[1, 2, 3, 4, 5]), None);
    }
}
