//! Checks on Automerge sync messages received from a peer, before anything is applied.
//!
//! Automerge assumes a well-behaved peer. Read from its 0.12 sources, three things matter:
//! - `load_incremental` (used by `receive_sync_message`) *silently skips* a corrupt change chunk
//!   (a partial load logs a warning and returns `Ok`). Bad input must be refused whole, so every
//!   chunk is parsed and its checksum verified here first.
//! - a Bloom filter with `num_entries > 0` and `bits_per_entry == 0` makes `generate_sync_message`
//!   divide by zero, and a huge `num_probes` makes it allocate gigabytes; only the first of several
//!   `have`s is checked against the document, the others can trip an `expect`.
//! - `State::encode` debug-asserts that the peer's heads are sorted.
//!
//! [`decode_message`] does the cheap structural checks (used by the envelope decoder);
//! [`inspect_changes`] parses every change and names its actor and hash (used before applying,
//! and by the share policy's authorship check).

use automerge::sync::{Have, Message};
use automerge::{
    ActorId, Automerge, Change, ChangeHash, LoadOptions, OnPartialLoad, VerificationMode,
};

/// The first bytes of every Automerge storage chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Magic (4) + checksum (4) + chunk type (1).
const CHUNK_HEADER_FIXED: usize = 9;
const CHUNK_TYPE_DOCUMENT: u8 = 0;
const CHUNK_TYPE_CHANGE: u8 = 1;
/// Largest Bloom filter parameters accepted; Automerge itself uses 10 bits and 7 probes.
const MAX_BLOOM_BITS_PER_ENTRY: u64 = 64;
const MAX_BLOOM_PROBES: u64 = 64;

/// Why a sync message from a peer is refused.
#[derive(Debug, thiserror::Error)]
pub enum MessageCheckError {
    /// The bytes are not an Automerge sync message.
    #[error("not an automerge sync message: {0}")]
    Decode(#[from] automerge::sync::ReadMessageError),
    /// More than one `have` summary (Automerge sends at most one).
    #[error("the message carries {0} `have` summaries, at most 1 is accepted")]
    TooManyHaves(usize),
    /// A Bloom filter whose parameters would make Automerge divide by zero or allocate wildly.
    #[error("the message carries a malformed bloom filter")]
    BadBloomFilter,
    /// Heads, needs or last-sync hashes out of order.
    #[error("the {0} hashes of the message are not sorted")]
    UnsortedHashes(&'static str),
    /// A changes entry that is not a sequence of storage chunks.
    #[error("change data entry {entry}: {reason}")]
    BadChunk {
        /// Index of the entry in the message's change list.
        entry: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A chunk type the sync protocol never sends (compressed change, bundle, unknown).
    #[error("change data entry {entry}: chunk type {chunk_type} is not accepted in sync")]
    UnsupportedChunk {
        /// Index of the entry in the message's change list.
        entry: usize,
        /// The chunk type byte.
        chunk_type: u8,
    },
}

/// One change carried by a sync message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingChange {
    /// Hash of the change.
    pub hash: ChangeHash,
    /// Its author.
    pub actor: ActorId,
}

/// Decodes a sync message and checks its structure (cheap: no change is parsed).
pub fn decode_message(bytes: &[u8]) -> Result<Message, MessageCheckError> {
    let message = Message::decode(bytes)?;
    check_structure(&message)?;
    Ok(message)
}

/// Structural checks on a decoded message: `have`s, Bloom filters, hash order, chunk framing.
pub fn check_structure(message: &Message) -> Result<(), MessageCheckError> {
    if message.have.len() > 1 {
        return Err(MessageCheckError::TooManyHaves(message.have.len()));
    }
    ensure_sorted(&message.heads, "heads")?;
    ensure_sorted(&message.need, "need")?;
    for have in &message.have {
        ensure_sorted(&have.last_sync, "last_sync")?;
        check_bloom(have)?;
    }
    for (entry, data) in message.changes.iter().enumerate() {
        for chunk in split_chunks(entry, data)? {
            if chunk.chunk_type != CHUNK_TYPE_CHANGE && chunk.chunk_type != CHUNK_TYPE_DOCUMENT {
                return Err(MessageCheckError::UnsupportedChunk {
                    entry,
                    chunk_type: chunk.chunk_type,
                });
            }
        }
    }
    Ok(())
}

/// Parses every change a (structurally checked) message carries and verifies its checksum.
///
/// A whole-document chunk (sync message V2) is loaded to list its changes; that costs about as
/// much as applying it, and happens only on a first sync or a large catch-up.
pub fn inspect_changes(message: &Message) -> Result<Vec<IncomingChange>, MessageCheckError> {
    let mut found = Vec::new();
    for (entry, data) in message.changes.iter().enumerate() {
        for chunk in split_chunks(entry, data)? {
            match chunk.chunk_type {
                CHUNK_TYPE_CHANGE => found.push(parse_change(entry, &chunk)?),
                CHUNK_TYPE_DOCUMENT => found.extend(parse_document(entry, chunk.bytes)?),
                chunk_type => {
                    return Err(MessageCheckError::UnsupportedChunk { entry, chunk_type });
                }
            }
        }
    }
    Ok(found)
}

fn ensure_sorted(hashes: &[ChangeHash], what: &'static str) -> Result<(), MessageCheckError> {
    if hashes.windows(2).all(|pair| pair[0] <= pair[1]) {
        Ok(())
    } else {
        Err(MessageCheckError::UnsortedHashes(what))
    }
}

fn check_bloom(have: &Have) -> Result<(), MessageCheckError> {
    let bytes = have.bloom.to_bytes();
    if bytes.is_empty() {
        return Ok(());
    }
    let mut rest = bytes.as_slice();
    let mut next = || -> Result<u64, MessageCheckError> {
        let (value, used) = read_uleb(rest).ok_or(MessageCheckError::BadBloomFilter)?;
        rest = &rest[used..];
        Ok(value)
    };
    let entries = next()?;
    let bits_per_entry = next()?;
    let probes = next()?;
    let sane = entries > 0
        && (1..=MAX_BLOOM_BITS_PER_ENTRY).contains(&bits_per_entry)
        && (1..=MAX_BLOOM_PROBES).contains(&probes);
    if sane {
        Ok(())
    } else {
        Err(MessageCheckError::BadBloomFilter)
    }
}

/// One storage chunk inside a changes entry.
struct RawChunk<'a> {
    chunk_type: u8,
    checksum: [u8; 4],
    bytes: &'a [u8],
}

fn split_chunks(entry: usize, mut data: &[u8]) -> Result<Vec<RawChunk<'_>>, MessageCheckError> {
    let bad = |reason: &str| MessageCheckError::BadChunk {
        entry,
        reason: reason.to_owned(),
    };
    if data.is_empty() {
        return Err(bad("empty change data"));
    }
    let mut chunks = Vec::new();
    while !data.is_empty() {
        if data.len() < CHUNK_HEADER_FIXED {
            return Err(bad("truncated chunk header"));
        }
        if data[..4] != CHUNK_MAGIC {
            return Err(bad("missing chunk magic bytes"));
        }
        let checksum = [data[4], data[5], data[6], data[7]];
        let chunk_type = data[8];
        let (body_len, len_bytes) =
            read_uleb(&data[CHUNK_HEADER_FIXED..]).ok_or_else(|| bad("bad chunk length"))?;
        let total = usize::try_from(body_len)
            .ok()
            .and_then(|len| len.checked_add(CHUNK_HEADER_FIXED + len_bytes))
            .filter(|total| *total <= data.len())
            .ok_or_else(|| bad("chunk length runs past the end of the data"))?;
        let (bytes, rest) = data.split_at(total);
        chunks.push(RawChunk {
            chunk_type,
            checksum,
            bytes,
        });
        data = rest;
    }
    Ok(chunks)
}

fn parse_change(entry: usize, chunk: &RawChunk<'_>) -> Result<IncomingChange, MessageCheckError> {
    let change = Change::try_from(chunk.bytes).map_err(|e| MessageCheckError::BadChunk {
        entry,
        reason: e.to_string(),
    })?;
    let hash = change.hash();
    // Automerge's `TryFrom<&[u8]>` does not verify the checksum; its loader does, and skips the
    // chunk silently when it is wrong. Verify here so a corrupt change is an error.
    if hash.0[..4] != chunk.checksum {
        return Err(MessageCheckError::BadChunk {
            entry,
            reason: "change checksum mismatch".to_owned(),
        });
    }
    Ok(IncomingChange {
        hash,
        actor: change.actor_id().clone(),
    })
}

fn parse_document(entry: usize, bytes: &[u8]) -> Result<Vec<IncomingChange>, MessageCheckError> {
    let options = LoadOptions::new()
        .on_partial_load(OnPartialLoad::Error)
        .verification_mode(VerificationMode::Check);
    let doc =
        Automerge::load_with_options(bytes, options).map_err(|e| MessageCheckError::BadChunk {
            entry,
            reason: format!("bad document chunk: {e}"),
        })?;
    Ok(doc
        .get_changes_meta(&[])
        .into_iter()
        .map(|meta| IncomingChange {
            hash: meta.hash,
            actor: meta.actor.into_owned(),
        })
        .collect())
}

/// Reads an unsigned LEB128 value; returns it and the bytes used, or `None` when malformed.
fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        if shift == 63 && low > 1 {
            return None;
        }
        value |= low << shift;
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::{State, SyncDoc};
    use automerge::transaction::Transactable;
    use automerge::AutoCommit;

    fn doc_with(actor: &[u8], keys: usize) -> AutoCommit {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(actor));
        for key in 0..keys {
            doc.put(automerge::ROOT, format!("k{key}"), key as i64)
                .expect("put");
            doc.commit();
        }
        doc
    }

    /// A message from `from` to a peer that has nothing, after one exchange: carries changes.
    fn message_with_changes(from: &mut AutoCommit) -> Message {
        let mut empty = AutoCommit::new();
        let (mut from_state, mut empty_state) = (State::new(), State::new());
        let first = empty.sync().generate_sync_message(&mut empty_state);
        let first = first.expect("first message");
        from.sync()
            .receive_sync_message(&mut from_state, first)
            .expect("receive");
        let reply = from.sync().generate_sync_message(&mut from_state);
        reply.expect("reply with changes")
    }

    #[test]
    fn finds_authors_in_a_whole_document_message() {
        let mut doc = doc_with(b"till-01", 3);
        let message = message_with_changes(&mut doc);
        check_structure(&message).expect("well formed");
        let found = inspect_changes(&message).expect("valid changes");
        assert_eq!(found.len(), 3);
        assert!(found
            .iter()
            .all(|c| c.actor == ActorId::from(b"till-01".as_slice())));
        let hashes: Vec<_> = doc.get_changes_meta(&[]).iter().map(|m| m.hash).collect();
        for change in &found {
            assert!(hashes.contains(&change.hash));
        }
    }

    #[test]
    fn finds_authors_of_v1_change_chunks() {
        let mut doc = doc_with(b"till-02", 2);
        let changes: Vec<Vec<u8>> = doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let mut concatenated = changes.concat();
        let message = Message {
            heads: doc.get_heads(),
            need: vec![],
            have: vec![],
            changes: changes.into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        let found = inspect_changes(&message).expect("valid");
        assert_eq!(found.len(), 2);
        assert!(found
            .iter()
            .all(|c| c.actor == ActorId::from(b"till-02".as_slice())));
        // Several change chunks in one entry (how a V2 message carries changes) split correctly.
        let joined = Message {
            changes: vec![std::mem::take(&mut concatenated)].into(),
            ..message
        };
        assert_eq!(inspect_changes(&joined).expect("valid"), found);
    }

    #[test]
    fn refuses_a_change_with_a_flipped_byte() {
        let mut doc = doc_with(b"till-01", 1);
        let change = doc.get_changes(&[]).remove(0);
        let mut bytes = change.raw_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let message = Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: vec![bytes].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        check_structure(&message).expect("framing is intact");
        assert!(matches!(
            inspect_changes(&message),
            Err(MessageCheckError::BadChunk { entry: 0, .. })
        ));
    }

    #[test]
    fn refuses_bad_framing_and_foreign_chunk_types() {
        let mut message = Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: vec![vec![1, 2, 3]].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        assert!(matches!(
            check_structure(&message),
            Err(MessageCheckError::BadChunk { .. })
        ));
        let mut bundle = CHUNK_MAGIC.to_vec();
        bundle.extend([0, 0, 0, 0, 3, 0]);
        message.changes = vec![bundle].into();
        assert!(matches!(
            check_structure(&message),
            Err(MessageCheckError::UnsupportedChunk { chunk_type: 3, .. })
        ));
    }

    #[test]
    fn refuses_a_bloom_filter_that_would_divide_by_zero() {
        // num_entries = 1, bits_per_entry = 0, probes = 7, no bits: Automerge would compute `% 0`.
        let bloom = automerge::sync::BloomFilter::try_from(&[1u8, 0, 7][..]).expect("parses");
        let message = Message {
            heads: vec![],
            need: vec![],
            have: vec![Have {
                last_sync: vec![],
                bloom,
            }],
            changes: Vec::<Vec<u8>>::new().into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        assert!(matches!(
            check_structure(&message),
            Err(MessageCheckError::BadBloomFilter)
        ));
    }

    #[test]
    fn uleb_reader_handles_limits() {
        assert_eq!(read_uleb(&[0x00]), Some((0, 1)));
        assert_eq!(read_uleb(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(read_uleb(&[0x80]), None);
        assert_eq!(read_uleb(&[0xff; 11]), None);
    }
}
