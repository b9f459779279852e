//! The node's errors ([`NodeError`], one enum for the domain operations; `api::error` turns
//! them into HTTP answers) and the record of remote timestamps the clock refused.

use crdt_model::{ClockError, ReceiptError, ReceiptId, SessionError, SessionId};
use sync_engine::SyncError;

use crate::store::StoreError;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store refused or failed the operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node stopped writing (storage failure); reads still work.
    #[error("the till stopped writing after a storage failure: {0}")]
    Unavailable(String),
    /// No cash shift is open.
    #[error("no cash session is open")]
    NoOpenShift,
    /// A cash shift is already open.
    #[error("cash session {0} is already open")]
    ShiftAlreadyOpen(SessionId),
    /// The cash shift is not on this till.
    #[error("cash session {0} is not on this till")]
    ShiftNotFound(String),
    /// The fiscal buffer is full: the OFD has not acknowledged `count` receipts.
    #[error(
        "the fiscal buffer is full ({count} of {capacity} receipts not acknowledged by the OFD)"
    )]
    BufferFull {
        /// Receipts waiting.
        count: u64,
        /// The capacity.
        capacity: u32,
    },
    /// Only sales can be refunded.
    #[error("receipt {0} is not a sale and cannot be refunded")]
    NotRefundable(ReceiptId),
    /// A refund body names items without payments or the other way round.
    #[error("a partial refund needs both items and payments; {0} is missing")]
    RefundField(&'static str),
    /// A stored refund request no longer reads back.
    #[error("stored refund request: {0}")]
    RefundStored(String),
    /// A refund names a receipt this till does not hold.
    #[error("the original receipt {0} is not known on this till")]
    OriginalNotFound(ReceiptId),
    /// The receipt breaks a rule.
    #[error("invalid receipt: {0}")]
    InvalidReceipt(ReceiptError),
    /// The session document refused the change.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict,
    /// A stored document could not be loaded.
    #[error("cannot load document {doc}: {reason}")]
    Load {
        /// The document.
        doc: String,
        /// Why.
        reason: String,
    },
    /// The clock state could not be restored.
    #[error("clock: {0}")]
    Clock(#[from] ClockError),
    /// The store or till id makes no valid actor or peer id.
    #[error("invalid identity: {0}")]
    Identity(String),
    /// A sync step failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The browser POS changed something in a session it may not (it may only add sales).
    #[error("refused change from the page: {0}")]
    PageChange(String),
    /// A value that has to be stored (an answer, a fiscal job, a login) could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl NodeError {
    /// The error of a value on a durable path that does not encode, logged where it happens:
    /// nothing is stored in its place.
    pub fn encode(what: &'static str, error: &serde_json::Error) -> NodeError {
        tracing::error!(what, %error, "cannot encode a value that has to be stored");
        NodeError::Encode {
            what,
            reason: error.to_string(),
        }
    }
}

/// A remote timestamp the clock refused for running too far ahead of the wall clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockRejection {
    /// The offending timestamp, in its text form.
    pub hlc: String,
    /// The document that carried it.
    pub doc: String,
    /// When it was refused (Unix ms).
    pub at_ms: u64,
}

/// Remote timestamps refused since the node opened (for `/v1/health`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClockRejections {
    /// How many.
    pub count: u64,
    /// The latest one.
    pub last: Option<ClockRejection>,
}
