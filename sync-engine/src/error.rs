//! [`SyncError`]: why a multi-document sync round was refused or failed.
//!
//! Every variant except [`SyncError::Apply`] is raised while the envelope is being checked,
//! before any document is touched: a refused envelope changes nothing.

use automerge::{ActorId, AutomergeError};

use crate::envelope::EnvelopeError;
use crate::id::{DocId, PeerId};
use crate::inspect::MessageCheckError;

/// Why the share policy refused a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForbiddenReason {
    /// The peer has no access to the document.
    NoAccess,
    /// The peer may only read the document but sent changes into it.
    ReadOnly,
    /// The peer brought a new change authored by an actor it may not write as.
    Author(ActorId),
}

impl std::fmt::Display for ForbiddenReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoAccess => f.write_str("no access"),
            Self::ReadOnly => f.write_str("read-only document received changes"),
            Self::Author(actor) => write!(f, "changes authored by {actor} are not allowed"),
        }
    }
}

/// Why a sync round was refused (nothing applied) or failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The envelope's sender is not the peer we authenticated or expected.
    #[error("envelope sent by {found}, expected {expected}")]
    UnexpectedSender {
        /// The peer we authenticated (server) or synced with (client).
        expected: PeerId,
        /// The sender named in the envelope.
        found: PeerId,
    },
    /// The envelope breaks a format rule (version, limits, duplicate document).
    #[error("bad envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The share policy refuses the document; the whole envelope is refused.
    #[error("forbidden: doc {doc}: {reason}")]
    Forbidden {
        /// Which document.
        doc: DocId,
        /// Why.
        reason: ForbiddenReason,
    },
    /// A sync message is malformed or carries a corrupt change; the whole envelope is refused.
    #[error("invalid sync message for doc {doc}: {source}")]
    InvalidMessage {
        /// Which document.
        doc: DocId,
        /// What is wrong.
        source: MessageCheckError,
    },
    /// Automerge failed to apply a checked message (server side: discard the whole round).
    #[error("applying the sync message for doc {doc} failed: {source}")]
    Apply {
        /// Which document.
        doc: DocId,
        /// Automerge's error (boxed: it is large and rare).
        source: Box<AutomergeError>,
    },
    /// A sync round ran more round trips than its limit; the next poll starts afresh.
    #[error("sync round gave up after {rounds} round trips")]
    RoundLimitReached {
        /// Round trips made.
        rounds: u32,
    },
}

impl SyncError {
    /// The document named by a `Forbidden` error.
    pub fn forbidden_doc(&self) -> Option<&DocId> {
        match self {
            Self::Forbidden { doc, .. } => Some(doc),
            _ => None,
        }
    }
}
