//! The sync envelope: one request or reply of a sync round, carrying Automerge sync messages for
//! a set of documents, and its compact versioned binary codec.
//!
//! Wire format (all integers big-endian), version 1:
//!
//! ```text
//! envelope := magic "OESE" | version u16 | flags u8 (bit 0: complete) | sender | count u32 | entry*
//! sender   := len u8 | ASCII bytes
//! entry    := doc (len u8 | ASCII) | has u8 (bit 0: message, bit 1: status, bit 2: oldest)
//!             [message len u32 | bytes] [status]
//! status   := [oldest_unsynced_ms u64] | actors u32 | (actor len u8 | bytes | seq u64)*
//! ```
//!
//! Decoding is written for hostile input: every length is checked against the bytes that are
//! really left *before* anything is allocated, unknown flag bits, trailing bytes, duplicate or
//! invalid ids are errors, and every message must decode as an Automerge sync message whose
//! structure passes [`crate::inspect::check_structure`]. A bad envelope is refused whole.

use std::collections::BTreeSet;

use crate::clock::{Actor, VersionVector};
use crate::id::{DocId, IdError, PeerId};
use crate::inspect::{self, MessageCheckError};

mod codec;

/// The envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u16 = 1;
/// Largest encoded envelope accepted or produced (16 MiB). HTTP adapters use it as body limit.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;
/// Most document entries in one envelope.
pub const MAX_ENTRIES: usize = 4096;
/// Largest single sync message (leaves room for the other entries of a full envelope).
pub const MAX_MESSAGE_BYTES: usize = 15 * 1024 * 1024;
/// Most actors in one reported version vector.
pub const MAX_CLOCK_ACTORS: usize = 4096;
/// Longest actor id in a reported version vector, in bytes.
pub const MAX_ACTOR_BYTES: usize = 255;
/// Media type of an encoded envelope on HTTP.
pub const CONTENT_TYPE: &str = "application/vnd.opticserp.sync+binary";

/// What a replica knows of its own copy of a document, for divergence reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocStatus {
    /// The sender's version vector of the document.
    pub clock: VersionVector,
    /// Unix milliseconds of the sender's oldest change not yet known to be held by the receiver.
    pub oldest_unsynced_ms: Option<u64>,
}

impl DocStatus {
    /// True when the status fits the wire limits ([`MAX_CLOCK_ACTORS`], [`MAX_ACTOR_BYTES`]).
    pub fn fits_wire_limits(&self) -> bool {
        self.clock.len() <= MAX_CLOCK_ACTORS
            && self
                .clock
                .iter()
                .all(|(actor, _)| actor.as_bytes().len() <= MAX_ACTOR_BYTES)
    }
}

/// One document's part of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocEntry {
    /// Which document.
    pub doc: DocId,
    /// An encoded Automerge sync message, if the sender has something to say about the doc.
    pub message: Option<Vec<u8>>,
    /// The sender's status of the doc, sent on the first round trip of a sync round.
    pub status: Option<DocStatus>,
}

/// One request or reply of a sync round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Format version ([`ENVELOPE_VERSION`]).
    pub version: u16,
    /// The replica that sent the envelope.
    pub sender: PeerId,
    /// In a request: the sender listed every document it holds in the shared scope, so the
    /// receiver may offer the ones it did not list. In a reply: nothing was left for a later
    /// round (no document was deferred by the per-round limits).
    pub complete: bool,
    /// The documents, at most one entry per document.
    pub entries: Vec<DocEntry>,
}

/// Why an envelope cannot be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// More bytes than [`MAX_ENVELOPE_BYTES`].
    #[error("envelope is {len} bytes, the limit is {max}")]
    TooLarge {
        /// Size found.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The bytes do not start with the envelope magic.
    #[error("not a sync envelope (bad magic bytes)")]
    BadMagic,
    /// A version this build does not speak.
    #[error("unsupported envelope version {found}, this build speaks version {supported}")]
    UnsupportedVersion {
        /// Version found.
        found: u16,
        /// Version supported.
        supported: u16,
    },
    /// The bytes end in the middle of a field.
    #[error("envelope truncated while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes left after the last entry.
    #[error("{0} unexpected bytes after the last entry")]
    TrailingBytes(usize),
    /// Flag bits this version does not define.
    #[error("unknown flag bits 0x{bits:02x} in {field}")]
    UnknownFlags {
        /// Where.
        field: &'static str,
        /// The bits.
        bits: u8,
    },
    /// More entries than [`MAX_ENTRIES`].
    #[error("{count} entries, the limit is {max}")]
    TooManyEntries {
        /// Count found.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A sync message longer than [`MAX_MESSAGE_BYTES`].
    #[error("message of doc {doc} is {len} bytes, the limit is {max}")]
    MessageTooLarge {
        /// Which doc.
        doc: DocId,
        /// Size found.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A version vector over the wire limits, or with an actor listed twice.
    #[error("status of doc {doc}: {reason}")]
    BadStatus {
        /// Which doc.
        doc: DocId,
        /// What is wrong.
        reason: &'static str,
    },
    /// An invalid sender or document id.
    #[error("invalid id: {0}")]
    BadId(#[from] IdError),
    /// Two entries for the same document.
    #[error("doc {0} appears twice")]
    DuplicateDoc(DocId),
    /// A message that is not a well-formed Automerge sync message.
    #[error("message of doc {doc}: {source}")]
    BadMessage {
        /// Which doc.
        doc: DocId,
        /// What is wrong.
        source: MessageCheckError,
    },
}

impl Envelope {
    /// An envelope of the current version.
    pub fn new(sender: PeerId, complete: bool, entries: Vec<DocEntry>) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            sender,
            complete,
            entries,
        }
    }

    /// Encodes the envelope; fails when it breaks a limit the decoder would enforce.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        self.check_limits()?;
        let bytes = codec::encode(self);
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge {
                len: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        Ok(bytes)
    }

    /// Decodes and validates an envelope (see the module doc). Never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge {
                len: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let envelope = codec::decode(bytes)?;
        envelope.check_limits()?;
        for entry in &envelope.entries {
            if let Some(message) = &entry.message {
                inspect::decode_message(message).map_err(|source| EnvelopeError::BadMessage {
                    doc: entry.doc.clone(),
                    source,
                })?;
            }
        }
        Ok(envelope)
    }

    /// Size of the encoded envelope in bytes, without encoding it.
    pub fn encoded_len(&self) -> usize {
        codec::HEADER_LEN
            + self.sender.as_str().len()
            + self
                .entries
                .iter()
                .map(DocEntry::encoded_len)
                .sum::<usize>()
    }

    /// True when no entry carries a sync message.
    pub fn is_idle(&self) -> bool {
        self.entries.iter().all(|entry| entry.message.is_none())
    }

    /// The entry of `doc`, if any.
    pub fn entry(&self, doc: &DocId) -> Option<&DocEntry> {
        self.entries.iter().find(|entry| &entry.doc == doc)
    }

    /// Version, counts, sizes and uniqueness: the checks shared by `encode` and `decode`.
    pub(crate) fn check_limits(&self) -> Result<(), EnvelopeError> {
        if self.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion {
                found: self.version,
                supported: ENVELOPE_VERSION,
            });
        }
        if self.entries.len() > MAX_ENTRIES {
            return Err(EnvelopeError::TooManyEntries {
                count: self.entries.len(),
                max: MAX_ENTRIES,
            });
        }
        let mut seen = BTreeSet::new();
        for entry in &self.entries {
            if !seen.insert(&entry.doc) {
                return Err(EnvelopeError::DuplicateDoc(entry.doc.clone()));
            }
            if let Some(message) = &entry.message {
                if message.len() > MAX_MESSAGE_BYTES {
                    return Err(EnvelopeError::MessageTooLarge {
                        doc: entry.doc.clone(),
                        len: message.len(),
                        max: MAX_MESSAGE_BYTES,
                    });
                }
            }
            if let Some(status) = &entry.status {
                if !status.fits_wire_limits() {
                    return Err(EnvelopeError::BadStatus {
                        doc: entry.doc.clone(),
                        reason: "version vector over the wire limits",
                    });
                }
            }
        }
        Ok(())
    }
}

impl DocEntry {
    /// An entry with a message and no status.
    pub fn message(doc: DocId, message: Vec<u8>) -> Self {
        Self {
            doc,
            message: Some(message),
            status: None,
        }
    }

    /// Size of the encoded entry in bytes.
    pub fn encoded_len(&self) -> usize {
        let message = self.message.as_ref().map_or(0, |m| 4 + m.len());
        let status = self.status.as_ref().map_or(0, |status| {
            let oldest = if status.oldest_unsynced_ms.is_some() {
                8
            } else {
                0
            };
            let actors: usize = status
                .clock
                .iter()
                .map(|(actor, _)| 1 + actor.as_bytes().len() + 8)
                .sum();
            oldest + 4 + actors
        });
        1 + self.doc.as_str().len() + 1 + message + status
    }
}

/// Builds a [`DocStatus`] from decoded `(actor, seq)` pairs. Actors must be strictly ascending
/// (the order the encoder writes) and sequence numbers non-zero, which keeps the format canonical.
pub(crate) fn status_from_pairs(
    doc: &DocId,
    pairs: Vec<(Actor, u64)>,
    oldest_unsynced_ms: Option<u64>,
) -> Result<DocStatus, EnvelopeError> {
    let ascending = pairs.windows(2).all(|pair| pair[0].0 < pair[1].0);
    if !ascending || pairs.iter().any(|(_, seq)| *seq == 0) {
        return Err(EnvelopeError::BadStatus {
            doc: doc.clone(),
            reason: "actors not strictly ascending, or a sequence number of 0",
        });
    }
    Ok(DocStatus {
        clock: pairs.into_iter().collect(),
        oldest_unsynced_ms,
    })
}
