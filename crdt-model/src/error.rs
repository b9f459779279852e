//! Error types, one enum per family of operations.
//!
//! Every error names what was wrong (the field, the SKU, the receipt id) so that the till
//! can answer a cashier and support can read a log line without the request at hand.

use automerge::AutomergeError;
use thiserror::Error;

use crate::catalogue::Field;
use crate::hlc::Hlc;
use crate::ids::{MovementId, ReceiptId, SessionId};
use crate::money::Kopecks;

/// A quantity that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantityError {
    /// Not a plain decimal (`"1.5"`, `2`).
    #[error("not a decimal quantity: {0:?}")]
    NotADecimal(String),
    /// More than three fraction digits.
    #[error("more than three decimals: {0:?}")]
    TooPrecise(String),
    /// Zero or negative.
    #[error("quantity must be greater than zero")]
    NotPositive,
    /// Above [`crate::money::MAX_QUANTITY`].
    #[error("quantity too large: {0:?}")]
    TooLarge(String),
}

/// Errors of the hybrid logical clock.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClockError {
    /// A remote timestamp ran further ahead of the local wall clock than allowed.
    #[error(
        "remote timestamp is {ahead_ms} ms ahead of the wall clock (limit {max_forward_ms} ms)"
    )]
    TooFarAhead {
        /// How far the remote physical time is ahead of the local wall clock.
        ahead_ms: u64,
        /// The configured limit.
        max_forward_ms: u64,
    },
    /// A node name outside `[A-Za-z0-9_.:/-]{1,64}`.
    #[error("invalid clock node name {node:?}")]
    InvalidNode {
        /// The offending name (truncated).
        node: String,
    },
    /// Text that is not `PPPPPPPPPPPPPPPP-LLLLL-node`.
    #[error("malformed timestamp {text:?}")]
    Malformed {
        /// The offending text (truncated).
        text: String,
    },
    /// A physical or logical part too large for the canonical text form.
    #[error("timestamp out of range")]
    OutOfRange,
}

/// Errors parsing identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// An empty name.
    #[error("{kind} id is empty")]
    Empty {
        /// What kind of id (`store`, `till`, …).
        kind: &'static str,
    },
    /// A name longer than allowed.
    #[error("{kind} id is longer than {max} characters")]
    TooLong {
        /// What kind of id.
        kind: &'static str,
        /// The limit.
        max: usize,
    },
    /// A character outside `[A-Za-z0-9_-]`.
    #[error("{kind} id {value:?} may only contain A-Z, a-z, 0-9, '_' and '-'")]
    InvalidChar {
        /// What kind of id.
        kind: &'static str,
        /// The offending value (truncated).
        value: String,
    },
    /// Not a UUID.
    #[error("{value:?} is not a UUID")]
    InvalidUuid {
        /// The offending value (truncated).
        value: String,
    },
    /// Not a canonical document id.
    #[error(
        "{value:?} is not a document id (catalogue/<store>, session/<store>/<till>/<uuid> or staff/<store>)"
    )]
    InvalidDocKey {
        /// The offending value (truncated).
        value: String,
    },
}

/// A receipt that breaks a rule: `field` is a path into the request body
/// (`items[2].price`, `payments`, `buyer_contact`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {violation}")]
pub struct ReceiptError {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub violation: Violation,
}

impl ReceiptError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, violation: Violation) -> ReceiptError {
        ReceiptError {
            field: field.into(),
            violation,
        }
    }
}

/// The rule a receipt field breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    /// A required value is absent.
    #[error("is required")]
    Missing,
    /// A value that must be absent is present.
    #[error("is not allowed here")]
    NotAllowed,
    /// An empty list or string.
    #[error("must not be empty")]
    Empty,
    /// A string over its length limit.
    #[error("is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A list over its length limit.
    #[error("has more than {max} entries")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// Zero or negative where a positive value is needed.
    #[error("must be greater than zero")]
    NotPositive,
    /// Negative where zero or more is needed.
    #[error("must not be negative")]
    Negative,
    /// Above its limit (kopecks for money, thousandths for quantities, a count
    /// otherwise).
    #[error("exceeds {max}")]
    TooLarge {
        /// The limit.
        max: i64,
    },
    /// A sum that does not match.
    #[error("is {found}, expected {expected}")]
    Mismatch {
        /// What the rules require.
        expected: Kopecks,
        /// What the receipt holds.
        found: Kopecks,
    },
    /// A value outside its set of allowed codes or forms.
    #[error("is not valid: {0}")]
    Invalid(&'static str),
    /// An intermediate sum overflowed.
    #[error("amount overflows")]
    Overflow,
}

/// Errors of [`crate::receipt::spread_discount`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiscountError {
    /// A line amount below zero.
    #[error("line {index} has a negative amount")]
    NegativeAmount {
        /// Index of the line.
        index: usize,
    },
    /// A discount below zero.
    #[error("discount is negative")]
    NegativeDiscount,
    /// A discount larger than the lines it is spread over.
    #[error("discount {discount} exceeds the total {total}")]
    ExceedsTotal {
        /// The discount.
        discount: Kopecks,
        /// The sum of the lines.
        total: Kopecks,
    },
    /// The sum of the lines overflowed.
    #[error("line amounts overflow")]
    Overflow,
}

/// Errors of the catalogue document.
#[derive(Debug, Error)]
pub enum CatalogueError {
    /// `init` on a document that already has content.
    #[error("document is not empty")]
    NotEmpty,
    /// The document is not a catalogue (or not initialised).
    #[error("document is not a catalogue")]
    NotACatalogue,
    /// The document belongs to another store.
    #[error("catalogue of store {found}, expected {expected}")]
    StoreMismatch {
        /// The store asked for.
        expected: String,
        /// The store in the document.
        found: String,
    },
    /// A SKU that is empty, too long, or contains a control character or `|`.
    #[error("invalid SKU {sku:?}")]
    InvalidSku {
        /// The offending SKU (truncated).
        sku: String,
    },
    /// The same SKU twice in one import.
    #[error("SKU {sku:?} appears twice")]
    DuplicateSku {
        /// The SKU.
        sku: String,
    },
    /// `set_field` on a SKU the catalogue does not have.
    #[error("unknown SKU {sku:?}")]
    UnknownSku {
        /// The SKU.
        sku: String,
    },
    /// A field value that breaks the product rules.
    #[error("{sku:?}.{field}: {reason}")]
    InvalidValue {
        /// The SKU.
        sku: String,
        /// The field.
        field: Field,
        /// What is wrong.
        reason: &'static str,
    },
    /// More products than a catalogue document holds.
    #[error("more than {max} products")]
    TooManyProducts {
        /// The limit.
        max: usize,
    },
    /// A write with the same timestamp as a different value already stored: the clock
    /// issued one timestamp twice.
    #[error("{sku:?}.{field} already has a different value at {hlc}")]
    DuplicateTimestamp {
        /// The SKU.
        sku: String,
        /// The field.
        field: Field,
        /// The reused timestamp.
        hlc: Hlc,
    },
    /// A write stamped with an invalid timestamp.
    #[error("invalid timestamp: {0}")]
    InvalidHlc(#[from] ClockError),
    /// An entry in the document that this model cannot read.
    #[error("corrupt catalogue entry {key:?}: {reason}")]
    Corrupt {
        /// The document key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An error from Automerge itself.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
}

/// Errors of the cash-session document.
#[derive(Debug, Error)]
pub enum SessionError {
    /// `open` on a document that already has content.
    #[error("document is not empty")]
    NotEmpty,
    /// The document has no session header.
    #[error("document is not a cash session")]
    NotASession,
    /// The session is closed; nothing more may be appended.
    #[error("session is closed")]
    Closed,
    /// A header or close field that breaks a rule.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A receipt that fails validation.
    #[error("receipt {id}: {source}")]
    InvalidReceipt {
        /// The receipt.
        id: ReceiptId,
        /// The broken rule.
        source: ReceiptError,
    },
    /// A receipt made for another session, store or till.
    #[error("receipt {id} belongs to session {found}, not {expected}")]
    WrongSession {
        /// The receipt.
        id: ReceiptId,
        /// This document's session.
        expected: SessionId,
        /// The receipt's session.
        found: SessionId,
    },
    /// A receipt whose store or till differs from the session's.
    #[error("receipt {id} was made on another till")]
    WrongTill {
        /// The receipt.
        id: ReceiptId,
    },
    /// The same receipt id with different content.
    #[error("receipt {id} already exists with different content")]
    ReceiptConflict {
        /// The receipt.
        id: ReceiptId,
    },
    /// The same movement id with different content.
    #[error("cash movement {id} already exists with different content")]
    MovementConflict {
        /// The movement.
        id: MovementId,
    },
    /// A cash-out larger than the cash in the drawer.
    #[error("cash out of {requested} exceeds the {available} in the drawer")]
    InsufficientCash {
        /// Cash in the drawer by the books.
        available: Kopecks,
        /// Cash asked for.
        requested: Kopecks,
    },
    /// The session holds as many entries as a session document may.
    #[error("session is full ({max} entries)")]
    Full {
        /// The limit.
        max: usize,
    },
    /// An entry in the document that fails its checks when read back.
    #[error("corrupt session entry {key:?}: {reason}")]
    Corrupt {
        /// Path of the entry in the document.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An error from Automerge itself.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
}

/// Errors of the staff (credentials) document.
#[derive(Debug, Error)]
pub enum StaffError {
    /// `init` on a document that already has content.
    #[error("document is not empty")]
    NotEmpty,
    /// The document is not a staff document (or not initialised).
    #[error("document is not a staff document")]
    NotAStaffDoc,
    /// A member field that breaks a rule (the login is shown, never the hash).
    #[error("staff member {login:?}: {field} {reason}")]
    InvalidMember {
        /// The member's login (truncated).
        login: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A new member would exceed the members a staff document holds.
    #[error("more than {max} staff members")]
    TooManyMembers {
        /// The limit.
        max: usize,
    },
    /// An entry in the document that fails its checks when read back.
    #[error("corrupt staff entry {key:?}: {reason}")]
    Corrupt {
        /// Path of the entry in the document.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An error from Automerge itself.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
}
