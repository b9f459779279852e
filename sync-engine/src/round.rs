//! Pieces shared by the client and server halves of a round: per-round limits and the reply
//! budget that enforces them.

use crate::envelope::{DocEntry, MAX_ENTRIES, MAX_ENVELOPE_BYTES, MAX_MESSAGE_BYTES};

/// Limits of one round trip and one sync round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundLimits {
    /// Most documents whose sync message goes into one envelope; the rest wait for the next round.
    pub max_docs: usize,
    /// Most bytes of one envelope; documents that do not fit wait for the next round. A single
    /// message larger than this still goes alone (up to [`MAX_MESSAGE_BYTES`]).
    pub max_bytes: usize,
    /// Most round trips of one sync round before it gives up (the next poll starts afresh).
    pub max_round_trips: u32,
}

impl Default for RoundLimits {
    fn default() -> Self {
        Self {
            max_docs: 512,
            max_bytes: 8 * 1024 * 1024,
            max_round_trips: 32,
        }
    }
}

/// Where a message stands against the budget of the envelope being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Goes into this envelope.
    Now,
    /// Waits for a later round.
    Later,
    /// Can never be sent (over [`MAX_MESSAGE_BYTES`]).
    Never,
}

/// Running totals of an envelope under construction.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: RoundLimits,
    bytes: usize,
    entries: usize,
    messages: usize,
}

impl Budget {
    pub(crate) fn new(limits: RoundLimits, header_bytes: usize) -> Self {
        Self {
            limits: RoundLimits {
                max_docs: limits.max_docs.clamp(1, MAX_ENTRIES),
                max_bytes: limits.max_bytes.min(MAX_ENVELOPE_BYTES),
                max_round_trips: limits.max_round_trips,
            },
            bytes: header_bytes,
            entries: 0,
            messages: 0,
        }
    }

    /// Whether `entry` (whose message, if any, is being considered) fits.
    pub(crate) fn fit(&self, entry: &DocEntry) -> Fit {
        let Some(message) = &entry.message else {
            return if self.entries < MAX_ENTRIES {
                Fit::Now
            } else {
                Fit::Later
            };
        };
        if message.len() > MAX_MESSAGE_BYTES {
            return Fit::Never;
        }
        let first = self.messages == 0;
        let within_docs = self.messages < self.limits.max_docs && self.entries < MAX_ENTRIES;
        let after = self.bytes.saturating_add(entry.encoded_len());
        let within_bytes = after <= self.limits.max_bytes || (first && after <= MAX_ENVELOPE_BYTES);
        if within_docs && within_bytes {
            Fit::Now
        } else {
            Fit::Later
        }
    }

    /// Records an entry that went in.
    pub(crate) fn add(&mut self, entry: &DocEntry) {
        self.bytes = self.bytes.saturating_add(entry.encoded_len());
        self.entries += 1;
        if entry.message.is_some() {
            self.messages += 1;
        }
    }
}
