//! The FN–OFD message (fiscal-reference.md §3.1): a 30-byte session header followed by the
//! container (32-byte container header + TLV fiscal document), and the operator's answer, an
//! FD 7 «подтверждение оператора» carried in the same envelope.
//!
//! Decoding is strict and hostile-input safe: every length is checked against the bytes present,
//! both CRCs are verified, and nothing panics (see the proptests below).

use super::tlv::{self, TlvError};
use thiserror::Error;

/// Session header signature `2A 08 41 0A`.
pub const SIGNATURE: [u8; 4] = [0x2A, 0x08, 0x41, 0x0A];
/// Session-layer protocol version 1.1 (`81 A2`).
pub const SESSION_VERSION: [u8; 2] = [0x81, 0xA2];
/// Presentation-layer version = FFD 1.2 (`01 20`).
pub const FFD_1_2_VERSION: [u8; 2] = [0x01, 0x20];
/// Size of the session header.
pub const SESSION_HEADER_LEN: usize = 30;
/// Size of the container header.
pub const CONTAINER_HEADER_LEN: usize = 32;
/// Largest container (header + document) accepted, 32 KiB as in the reference client.
pub const MAX_CONTAINER_LEN: usize = 32 * 1024;
/// Largest whole message: session header plus the largest container.
pub const MAX_MESSAGE_LEN: usize = SESSION_HEADER_LEN + MAX_CONTAINER_LEN;
/// Container message type byte.
const MESSAGE_TYPE: u8 = 0xA5;
/// Container format version byte.
const CONTAINER_VERSION: u8 = 1;
/// Flags: bit 2 container present, bit 4 answer expected, bits 0–1 = `10` CRC over header+body.
const FLAGS: u16 = 0x0014 | 0b10;
/// Largest FD number the 3-byte container field can carry.
pub const MAX_FD: u32 = 0x00FF_FFFF;
/// Form code of the operator confirmation.
pub const DOC_TYPE_OPERATOR_CONFIRMATION: u8 = 7;

const TAG_OFD_INN: u16 = 1017;
const TAG_DATETIME: u16 = 1012;
const TAG_FD: u16 = 1040;
const TAG_FN: u16 = 1041;
const TAG_ANSWER: u16 = 1068;
const TAG_ANSWER_CODE: u16 = 1022;
const TAG_OPERATOR_SIGN: u16 = 1078;

/// Why bytes are not a valid FN–OFD message or answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContainerError {
    /// Fewer bytes than the fixed headers need.
    #[error("message of {len} bytes is shorter than its headers")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// More bytes than [`MAX_MESSAGE_LEN`], or a field that cannot carry the length.
    #[error("message of {len} bytes exceeds the limit")]
    TooLong {
        /// Bytes received or to be written.
        len: usize,
    },
    /// The session header does not start with [`SIGNATURE`] and [`SESSION_VERSION`].
    #[error("bad session signature or version")]
    BadSignature,
    /// A declared length disagrees with the bytes present.
    #[error("{field} declares {declared} bytes, {actual} present")]
    LengthMismatch {
        /// Which length field.
        field: &'static str,
        /// Declared value.
        declared: usize,
        /// Actual value.
        actual: usize,
    },
    /// The session header says no container is present.
    #[error("session flags {0:#06x} announce no container")]
    NoContainer(u16),
    /// A CRC does not match.
    #[error("{0} CRC mismatch")]
    BadCrc(&'static str),
    /// The container's type or version byte is not one we know.
    #[error("unknown container type {message_type:#04x} version {version}")]
    UnknownContainer {
        /// Message type byte.
        message_type: u8,
        /// Version byte.
        version: u8,
    },
    /// The FN number is not 16 decimal digits, or header and container disagree on it.
    #[error("bad FN number")]
    BadFnNumber,
    /// The FD number does not fit in three bytes.
    #[error("FD number {0} does not fit in 3 bytes")]
    BadFd(u32),
    /// The TLV document is malformed.
    #[error("malformed TLV: {0}")]
    Tlv(#[from] TlvError),
    /// The answer is not an operator confirmation or misses a mandatory tag.
    #[error("operator confirmation: {0}")]
    BadConfirmation(&'static str),
}

/// A fiscal drive (ФН) serial number: exactly 16 decimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnNumber(String);

impl FnNumber {
    /// Validates a 16-digit FN number.
    pub fn parse(text: &str) -> Result<Self, ContainerError> {
        if text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(ContainerError::BadFnNumber)
        }
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn to_bcd(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        for (slot, pair) in out.iter_mut().zip(self.0.as_bytes().chunks_exact(2)) {
            *slot = ((pair[0] - b'0') << 4) | (pair[1] - b'0');
        }
        out
    }

    fn from_bcd(bcd: &[u8]) -> Result<Self, ContainerError> {
        let mut text = String::with_capacity(16);
        for byte in bcd {
            for nibble in [byte >> 4, byte & 0x0F] {
                if nibble > 9 {
                    return Err(ContainerError::BadFnNumber);
                }
                text.push(char::from(b'0' + nibble));
            }
        }
        Self::parse(&text)
    }
}

impl std::fmt::Display for FnNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One fiscal document on its way from the FN to the OFD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdContainer {
    /// The FN that made the document.
    pub fn_number: FnNumber,
    /// Form code of the document (3 = receipt, 5 = shift close, …).
    pub doc_type: u8,
    /// Fiscal document number (1040), at most [`MAX_FD`].
    pub fd: u32,
    /// The TLV fiscal document as the FN made it.
    pub document: Vec<u8>,
}

impl OfdContainer {
    /// Encodes session header + container. Fails only for an FD or document that the wire
    /// format cannot carry.
    pub fn encode(&self) -> Result<Vec<u8>, ContainerError> {
        if self.fd > MAX_FD {
            return Err(ContainerError::BadFd(self.fd));
        }
        let container_len = CONTAINER_HEADER_LEN + self.document.len();
        if container_len > MAX_CONTAINER_LEN {
            return Err(ContainerError::TooLong { len: container_len });
        }
        let mut container = Vec::with_capacity(container_len);
        container.extend_from_slice(&u16_len(container_len)?.to_le_bytes());
        container.extend_from_slice(&[0, 0]);
        container.extend_from_slice(&[MESSAGE_TYPE, self.doc_type, CONTAINER_VERSION, 0, 0]);
        container.extend_from_slice(&self.fn_number.to_bcd());
        container.extend_from_slice(&self.fd.to_be_bytes()[1..]);
        container.extend_from_slice(&[0u8; 12]);
        container.extend_from_slice(&self.document);
        let crc = container_crc(&container);
        container[2..4].copy_from_slice(&crc.to_le_bytes());

        let mut message = Vec::with_capacity(SESSION_HEADER_LEN + container_len);
        message.extend_from_slice(&SIGNATURE);
        message.extend_from_slice(&SESSION_VERSION);
        message.extend_from_slice(&FFD_1_2_VERSION);
        message.extend_from_slice(self.fn_number.as_str().as_bytes());
        message.extend_from_slice(&u16_len(container_len)?.to_le_bytes());
        message.extend_from_slice(&FLAGS.to_le_bytes());
        let crc = crc16_ccitt(crc16_ccitt(CRC_INIT, &message), &container);
        message.extend_from_slice(&crc.to_le_bytes());
        message.extend_from_slice(&container);
        Ok(message)
    }

    /// Decodes and verifies a whole message.
    pub fn decode(message: &[u8]) -> Result<Self, ContainerError> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(ContainerError::TooLong { len: message.len() });
        }
        if message.len() < SESSION_HEADER_LEN + CONTAINER_HEADER_LEN {
            return Err(ContainerError::TooShort { len: message.len() });
        }
        let (header, body) = message.split_at(SESSION_HEADER_LEN);
        if header[0..4] != SIGNATURE || header[4..6] != SESSION_VERSION {
            return Err(ContainerError::BadSignature);
        }
        let fn_text =
            std::str::from_utf8(&header[8..24]).map_err(|_| ContainerError::BadFnNumber)?;
        let fn_number = FnNumber::parse(fn_text)?;
        let body_len = usize::from(u16::from_le_bytes([header[24], header[25]]));
        if body_len != body.len() {
            return Err(length_mismatch("session body length", body_len, body.len()));
        }
        let flags = u16::from_le_bytes([header[26], header[27]]);
        if flags & 0x0004 == 0 {
            return Err(ContainerError::NoContainer(flags));
        }
        let crc = u16::from_le_bytes([header[28], header[29]]);
        let computed = match flags & 0b11 {
            0b01 => Some(crc16_ccitt(CRC_INIT, &header[..28])),
            0b10 => Some(crc16_ccitt(crc16_ccitt(CRC_INIT, &header[..28]), body)),
            _ => None,
        };
        if computed.is_some_and(|computed| computed != crc) {
            return Err(ContainerError::BadCrc("session"));
        }
        decode_container(fn_number, body)
    }
}

fn decode_container(fn_number: FnNumber, body: &[u8]) -> Result<OfdContainer, ContainerError> {
    let declared = usize::from(u16::from_le_bytes([body[0], body[1]]));
    if declared != body.len() {
        return Err(length_mismatch("container length", declared, body.len()));
    }
    if u16::from_le_bytes([body[2], body[3]]) != container_crc(body) {
        return Err(ContainerError::BadCrc("container"));
    }
    if body[4] != MESSAGE_TYPE || body[6] != CONTAINER_VERSION {
        return Err(ContainerError::UnknownContainer {
            message_type: body[4],
            version: body[6],
        });
    }
    if FnNumber::from_bcd(&body[9..17])? != fn_number {
        return Err(ContainerError::BadFnNumber);
    }
    Ok(OfdContainer {
        fn_number,
        doc_type: body[5],
        fd: u32::from_be_bytes([0, body[17], body[18], body[19]]),
        document: body[CONTAINER_HEADER_LEN..].to_vec(),
    })
}

/// The operator's acknowledgement (квитанция): FD 7 with the answer code and the operator sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdAck {
    /// FN whose document is acknowledged (1041).
    pub fn_number: FnNumber,
    /// FD being acknowledged (1040).
    pub fd: u32,
    /// Answer code (1022): 0 = accepted, anything else = the operator rejects the document.
    pub code: u8,
    /// When the OFD received the document (1012), Unix seconds.
    pub received_at_unix_s: u32,
    /// The operator's INN (1017), 12 characters, right-padded with spaces.
    pub ofd_inn: String,
    /// The operator's fiscal sign ФПО (1078).
    pub operator_sign: Vec<u8>,
}

impl OfdAck {
    /// True when the operator accepted the document (1022 = 0).
    pub fn is_accepted(&self) -> bool {
        self.code == 0
    }

    /// Encodes the acknowledgement as a full FN–OFD message (session header + container).
    pub fn encode(&self) -> Result<Vec<u8>, ContainerError> {
        if self.ofd_inn.len() != 12 || !self.ofd_inn.is_ascii() {
            return Err(ContainerError::BadConfirmation(
                "INN must be 12 ASCII characters",
            ));
        }
        let mut answer = Vec::new();
        tlv::push(&mut answer, TAG_ANSWER_CODE, &[self.code])?;
        let mut fields = Vec::new();
        tlv::push(&mut fields, TAG_OFD_INN, self.ofd_inn.as_bytes())?;
        tlv::push(&mut fields, TAG_FN, self.fn_number.as_str().as_bytes())?;
        tlv::push(&mut fields, TAG_FD, &self.fd.to_le_bytes())?;
        tlv::push(
            &mut fields,
            TAG_DATETIME,
            &self.received_at_unix_s.to_le_bytes(),
        )?;
        tlv::push(&mut fields, TAG_ANSWER, &answer)?;
        tlv::push(&mut fields, TAG_OPERATOR_SIGN, &self.operator_sign)?;
        let mut document = Vec::new();
        tlv::push(
            &mut document,
            u16::from(DOC_TYPE_OPERATOR_CONFIRMATION),
            &fields,
        )?;
        OfdContainer {
            fn_number: self.fn_number.clone(),
            doc_type: DOC_TYPE_OPERATOR_CONFIRMATION,
            fd: self.fd,
            document,
        }
        .encode()
    }

    /// Decodes and verifies an acknowledgement message.
    pub fn decode(message: &[u8]) -> Result<Self, ContainerError> {
        let container = OfdContainer::decode(message)?;
        if container.doc_type != DOC_TYPE_OPERATOR_CONFIRMATION {
            return Err(ContainerError::BadConfirmation("not an FD 7"));
        }
        let root = tlv::iter(&container.document)
            .next()
            .ok_or(ContainerError::BadConfirmation("empty document"))??;
        if root.tag != u16::from(DOC_TYPE_OPERATOR_CONFIRMATION) {
            return Err(ContainerError::BadConfirmation("not an FD 7"));
        }
        let mut fields = ConfirmationFields::default();
        for item in tlv::iter(root.value) {
            fields.absorb(item?)?;
        }
        let missing = ContainerError::BadConfirmation;
        let fn_number = fields.fn_number.ok_or(missing("1041 missing"))?;
        let fd = fields.fd.ok_or(missing("1040 missing"))?;
        if fn_number != container.fn_number || fd != container.fd {
            return Err(missing("1041/1040 disagree with the header"));
        }
        Ok(Self {
            fn_number,
            fd,
            code: fields.code.ok_or(missing("1022 missing"))?,
            received_at_unix_s: fields.received_at.ok_or(missing("1012 missing"))?,
            ofd_inn: fields.ofd_inn.ok_or(missing("1017 missing"))?,
            operator_sign: fields.operator_sign.ok_or(missing("1078 missing"))?,
        })
    }
}

#[derive(Default)]
struct ConfirmationFields {
    fn_number: Option<FnNumber>,
    fd: Option<u32>,
    code: Option<u8>,
    received_at: Option<u32>,
    ofd_inn: Option<String>,
    operator_sign: Option<Vec<u8>>,
}

impl ConfirmationFields {
    fn absorb(&mut self, item: tlv::Tlv<'_>) -> Result<(), ContainerError> {
        let bad = ContainerError::BadConfirmation;
        match item.tag {
            TAG_FN => {
                let text = std::str::from_utf8(item.value).map_err(|_| bad("1041 not text"))?;
                self.fn_number = Some(FnNumber::parse(text)?);
            }
            TAG_FD => self.fd = Some(tlv::read_u32_le(item.value).ok_or(bad("1040 width"))?),
            TAG_DATETIME => {
                self.received_at = Some(tlv::read_u32_le(item.value).ok_or(bad("1012 width"))?);
            }
            TAG_OFD_INN => {
                let inn = std::str::from_utf8(item.value).map_err(|_| bad("1017 not text"))?;
                if inn.len() != 12 || !inn.is_ascii() {
                    return Err(bad("1017 must be 12 ASCII characters"));
                }
                self.ofd_inn = Some(inn.to_owned());
            }
            TAG_ANSWER => {
                for inner in tlv::iter(item.value) {
                    let inner = inner?;
                    if inner.tag == TAG_ANSWER_CODE {
                        let &[code] = inner.value else {
                            return Err(bad("1022 width"));
                        };
                        self.code = Some(code);
                    }
                }
            }
            TAG_OPERATOR_SIGN => self.operator_sign = Some(item.value.to_vec()),
            // Tags we do not know are allowed: the real confirmation may carry more.
            _ => {}
        }
        Ok(())
    }
}

fn u16_len(len: usize) -> Result<u16, ContainerError> {
    u16::try_from(len).map_err(|_| ContainerError::TooLong { len })
}

fn length_mismatch(field: &'static str, declared: usize, actual: usize) -> ContainerError {
    ContainerError::LengthMismatch {
        field,
        declared,
        actual,
    }
}

const CRC_INIT: u16 = 0xFFFF;

/// CRC16-CCITT-FALSE (poly 0x1021, no reflection), continuing from `crc`.
fn crc16_ccitt(mut crc: u16, bytes: &[u8]) -> u16 {
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The container CRC covers everything except its own two bytes (offsets 2..4).
fn container_crc(container: &[u8]) -> u16 {
    let head = container.get(..2).unwrap_or_default();
    let tail = container.get(4..).unwrap_or_default();
    crc16_ccitt(crc16_ccitt(CRC_INIT, head), tail)
}

#[cfg(test)]
mod tests;
