//! Byte-level reader and writer of the envelope format described in [`crate::envelope`].
//!
//! The reader never trusts a count or length: it first checks that the bytes it claims are
//! really there (so a 4-byte "1 GiB follows" costs nothing) and caps pre-allocation by what the
//! remaining input could possibly hold.

use automerge::ActorId;

use super::{status_from_pairs, DocEntry, DocStatus, Envelope, EnvelopeError, MAX_ENTRIES};
use crate::clock::Actor;
use crate::envelope::{MAX_CLOCK_ACTORS, MAX_MESSAGE_BYTES};
use crate::id::{DocId, PeerId};

const MAGIC: [u8; 4] = *b"OESE";
const FLAG_COMPLETE: u8 = 0b0000_0001;
const HAS_MESSAGE: u8 = 0b0000_0001;
const HAS_STATUS: u8 = 0b0000_0010;
const HAS_OLDEST: u8 = 0b0000_0100;
/// Magic + version + flags + sender length byte + entry count.
pub(super) const HEADER_LEN: usize = 4 + 2 + 1 + 1 + 4;
/// Smallest encoded entry: id length, one id byte, `has` byte.
const MIN_ENTRY_LEN: usize = 3;
/// Smallest encoded actor: length, one byte, seq.
const MIN_ACTOR_LEN: usize = 10;

pub(super) fn encode(envelope: &Envelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(envelope.encoded_len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&envelope.version.to_be_bytes());
    out.push(if envelope.complete { FLAG_COMPLETE } else { 0 });
    put_short_bytes(&mut out, envelope.sender.as_str().as_bytes());
    out.extend_from_slice(&len_u32(envelope.entries.len()).to_be_bytes());
    for entry in &envelope.entries {
        put_short_bytes(&mut out, entry.doc.as_str().as_bytes());
        let mut has = 0;
        if entry.message.is_some() {
            has |= HAS_MESSAGE;
        }
        if let Some(status) = &entry.status {
            has |= HAS_STATUS;
            if status.oldest_unsynced_ms.is_some() {
                has |= HAS_OLDEST;
            }
        }
        out.push(has);
        if let Some(message) = &entry.message {
            out.extend_from_slice(&len_u32(message.len()).to_be_bytes());
            out.extend_from_slice(message);
        }
        if let Some(status) = &entry.status {
            put_status(&mut out, status);
        }
    }
    out
}

fn put_status(out: &mut Vec<u8>, status: &DocStatus) {
    if let Some(oldest) = status.oldest_unsynced_ms {
        out.extend_from_slice(&oldest.to_be_bytes());
    }
    out.extend_from_slice(&len_u32(status.clock.len()).to_be_bytes());
    for (actor, seq) in status.clock.iter() {
        put_short_bytes(out, actor.as_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
    }
}

/// Lengths were checked against the limits (all far below `u32::MAX`) before encoding.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Ids are at most 200 bytes and actors at most 255 (checked before encoding).
fn put_short_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
}

pub(super) fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let mut reader = Reader { rest: bytes };
    if reader.take(4, "magic")? != MAGIC {
        return Err(EnvelopeError::BadMagic);
    }
    let version = reader.u16("version")?;
    if version != super::ENVELOPE_VERSION {
        return Err(EnvelopeError::UnsupportedVersion {
            found: version,
            supported: super::ENVELOPE_VERSION,
        });
    }
    let flags = reader.u8("flags")?;
    if flags & !FLAG_COMPLETE != 0 {
        return Err(EnvelopeError::UnknownFlags {
            field: "envelope flags",
            bits: flags & !FLAG_COMPLETE,
        });
    }
    let sender = PeerId::from_bytes(reader.short_bytes("sender")?)?;
    let count = reader.u32_len("entry count")?;
    if count > MAX_ENTRIES {
        return Err(EnvelopeError::TooManyEntries {
            count,
            max: MAX_ENTRIES,
        });
    }
    let mut entries = Vec::with_capacity(count.min(reader.rest.len() / MIN_ENTRY_LEN));
    for _ in 0..count {
        entries.push(read_entry(&mut reader)?);
    }
    if !reader.rest.is_empty() {
        return Err(EnvelopeError::TrailingBytes(reader.rest.len()));
    }
    Ok(Envelope {
        version,
        sender,
        complete: flags & FLAG_COMPLETE != 0,
        entries,
    })
}

fn read_entry(reader: &mut Reader<'_>) -> Result<DocEntry, EnvelopeError> {
    let doc = DocId::from_bytes(reader.short_bytes("doc id")?)?;
    let has = reader.u8("entry flags")?;
    let known = HAS_MESSAGE | HAS_STATUS | HAS_OLDEST;
    if has & !known != 0 || (has & HAS_OLDEST != 0 && has & HAS_STATUS == 0) {
        return Err(EnvelopeError::UnknownFlags {
            field: "entry flags",
            bits: has,
        });
    }
    let message = if has & HAS_MESSAGE != 0 {
        let len = reader.u32_len("message length")?;
        if len > MAX_MESSAGE_BYTES {
            return Err(EnvelopeError::MessageTooLarge {
                doc,
                len,
                max: MAX_MESSAGE_BYTES,
            });
        }
        Some(reader.take(len, "message")?.to_vec())
    } else {
        None
    };
    let status = if has & HAS_STATUS != 0 {
        Some(read_status(reader, &doc, has & HAS_OLDEST != 0)?)
    } else {
        None
    };
    Ok(DocEntry {
        doc,
        message,
        status,
    })
}

fn read_status(
    reader: &mut Reader<'_>,
    doc: &DocId,
    has_oldest: bool,
) -> Result<DocStatus, EnvelopeError> {
    let oldest = if has_oldest {
        Some(reader.u64("oldest unsynced")?)
    } else {
        None
    };
    let actors = reader.u32_len("actor count")?;
    if actors > MAX_CLOCK_ACTORS {
        return Err(EnvelopeError::BadStatus {
            doc: doc.clone(),
            reason: "too many actors",
        });
    }
    let mut pairs = Vec::with_capacity(actors.min(reader.rest.len() / MIN_ACTOR_LEN));
    for _ in 0..actors {
        let actor = reader.short_bytes("actor")?;
        if actor.is_empty() {
            return Err(EnvelopeError::BadStatus {
                doc: doc.clone(),
                reason: "empty actor id",
            });
        }
        let seq = reader.u64("sequence number")?;
        pairs.push((Actor::new(ActorId::from(actor)), seq));
    }
    status_from_pairs(doc, pairs, oldest)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], EnvelopeError> {
        if self.rest.len() < len {
            return Err(EnvelopeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EnvelopeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N, field)?);
        Ok(array)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, EnvelopeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u32_len(&mut self, field: &'static str) -> Result<usize, EnvelopeError> {
        let value = u32::from_be_bytes(self.array(field)?);
        // On 16-bit targets a length over usize::MAX cannot be present anyway.
        usize::try_from(value).map_err(|_| EnvelopeError::Truncated { field })
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, EnvelopeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn short_bytes(&mut self, field: &'static str) -> Result<&'a [u8], EnvelopeError> {
        let len = usize::from(self.u8(field)?);
        self.take(len, field)
    }
}
