//! The [`FiscalRegister`] trait: what the fiscal pipeline asks of a cash register (ККТ) with
//! its fiscal drive (ФН), whatever protocol the register speaks, plus the request and answer
//! types. The document a register answers with ([`FiscalDocument`], [`DocumentKind`],
//! [`FiscalNumbers`]) is `crdt_model::fiscal`'s, shared with the session document. Amounts
//! are [`Kopecks`]; quantities are `crdt_model::Quantity` (thousandths).
//!
//! The pipeline needs exactly-once fiscalisation, so every receipt carries our receipt id
//! inside the fiscal document (tag 1084 {1085 = [`RECEIPT_ID_ATTRIBUTE`], 1086 = uuid}) and
//! [`FiscalRegister::last_document`] reads it back after a crash. The request types built
//! from a `crdt_model::Receipt` are in `receipt`.

use std::future::Future;

pub use crdt_model::fiscal::{DocumentKind, FiscalDocument, FiscalNumbers};
use crdt_model::Kopecks;
use serde::{Deserialize, Serialize};

use crate::shtrih::error::DeviceError;
use crate::shtrih::frame::FrameError;

mod receipt;

pub use receipt::{
    FiscalCorrection, FiscalLine, FiscalReceipt, Operation, Payments, ReceiptConversionError,
};

/// Name (tag 1085) of the additional user attribute (tag 1084) holding our receipt id.
pub const RECEIPT_ID_ATTRIBUTE: &str = "receipt_id";

/// FFD 1.2 taxation system bitmask value (tag 1055) used when the caller does not say:
/// 1 = ОСН (general system).
pub const DEFAULT_TAXATION: u8 = 1;

/// The shift as the FN sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftState {
    /// No shift open.
    Closed,
    /// Open for less than 24 h.
    Open,
    /// Open for 24 h or more: only the Z report is allowed.
    Expired,
}

/// FN warning flags (tags 1050..1053).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnWarnings {
    /// 1050: keys expire in less than 30 days.
    pub keys_expire_30_days: bool,
    /// 1051: urgent FN replacement (keys expire in less than 3 days).
    pub replace_urgently: bool,
    /// 1052: FN memory more than 99 % full.
    pub memory_full_99: bool,
    /// 1053: an OFD confirmation has been missing for more than 2 days.
    pub ofd_timeout: bool,
}

/// Documents not yet acknowledged by the OFD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsentDocuments {
    /// How many.
    pub count: u32,
    /// The FD number of the oldest, 0 when none.
    pub first_fd: u32,
    /// When the oldest was made, Unix seconds, 0 when none.
    pub first_unix: u64,
}

/// The register's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterStatus {
    /// 1041.
    pub fn_number: String,
    /// Shift state.
    pub shift: ShiftState,
    /// The current (or last) shift number.
    pub shift_number: u32,
    /// Receipts made in the current shift.
    pub receipt_number: u32,
    /// The last FD number.
    pub last_fd: u32,
    /// A receipt is open (begun but neither closed nor cancelled).
    pub receipt_open: bool,
    /// The printer is out of paper.
    pub paper_out: bool,
    /// FN warnings.
    pub warnings: FnWarnings,
    /// The OFD backlog.
    pub unsent: UnsentDocuments,
}

/// One message from the FN's OFD buffer, to be carried to the OFD as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfdMessage {
    /// The FD the message carries.
    pub fd_number: u32,
    /// Session header + container, built by the FN.
    pub bytes: Vec<u8>,
}

/// Errors of a register operation.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The device answered with an error code.
    #[error("register refused: {0}")]
    Device(#[from] DeviceError),
    /// The device did not answer within the timeout (no connection, silence).
    #[error("register did not answer: {stage}")]
    Timeout {
        /// Which step timed out.
        stage: &'static str,
    },
    /// The link kept corrupting frames after every retry.
    #[error("link error after retries: {0}")]
    Link(#[from] FrameError),
    /// The answer was well framed but made no sense for the command.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The receipt is inconsistent; nothing was sent.
    #[error("invalid receipt: {0}")]
    InvalidReceipt(#[from] ReceiptConversionError),
    /// A cash amount must be above zero and fit the 5-byte field.
    #[error("invalid amount {0:?}")]
    InvalidAmount(Kopecks),
    /// The serial stream failed.
    #[error("serial I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl RegisterError {
    /// True when it is unknown whether the register executed the command (the answer was
    /// lost or unreadable): the caller must ask [`FiscalRegister::last_document`] before
    /// retrying. Device refusals and invalid input are known outcomes: nothing was made.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            RegisterError::Timeout { .. }
                | RegisterError::Link(_)
                | RegisterError::Io(_)
                | RegisterError::Protocol(_)
        )
    }
}

/// Result of a register operation.
pub type RegisterResult<T> = Result<T, RegisterError>;

/// A cash register with its fiscal drive. Methods take `&mut self`: one serial link, one
/// command at a time.
pub trait FiscalRegister: Send {
    /// Status: shift, counters, warnings, OFD backlog.
    fn status(&mut self) -> impl Future<Output = RegisterResult<RegisterStatus>> + Send;
    /// The shift state alone: one short command, for the check before every receipt
    /// (a full [`FiscalRegister::status`] costs several round trips on a slow line).
    fn shift_state(&mut self) -> impl Future<Output = RegisterResult<ShiftState>> + Send;
    /// Opens a shift (FD form 2).
    fn open_shift(
        &mut self,
        cashier: &str,
    ) -> impl Future<Output = RegisterResult<FiscalDocument>> + Send;
    /// Closes the shift: the Z report (FD form 5). Allowed after 24 h.
    fn close_shift(
        &mut self,
        cashier: &str,
    ) -> impl Future<Output = RegisterResult<FiscalDocument>> + Send;
    /// Prints the X report (no FD is made).
    fn x_report(&mut self) -> impl Future<Output = RegisterResult<()>> + Send;
    /// Makes a receipt (FD form 3).
    fn receipt(
        &mut self,
        receipt: &FiscalReceipt,
    ) -> impl Future<Output = RegisterResult<FiscalDocument>> + Send;
    /// Makes a correction receipt (FD form 31).
    fn correction(
        &mut self,
        correction: &FiscalCorrection,
    ) -> impl Future<Output = RegisterResult<FiscalDocument>> + Send;
    /// Cancels a receipt left open (no FD exists for it); a no-op when none is open.
    fn cancel_open_receipt(&mut self) -> impl Future<Output = RegisterResult<()>> + Send;
    /// The last fiscal document with the receipt id it carries; `None` on a fresh FN.
    fn last_document(
        &mut self,
    ) -> impl Future<Output = RegisterResult<Option<FiscalDocument>>> + Send;
    /// Cash put into the drawer (внесение); no FD.
    fn cash_in(&mut self, amount: Kopecks) -> impl Future<Output = RegisterResult<()>> + Send;
    /// Cash taken out of the drawer (выплата); no FD.
    fn cash_out(&mut self, amount: Kopecks) -> impl Future<Output = RegisterResult<()>> + Send;
    /// The oldest message in the FN's OFD buffer, `None` when everything is acknowledged.
    fn read_ofd_message(
        &mut self,
    ) -> impl Future<Output = RegisterResult<Option<OfdMessage>>> + Send;
    /// Hands the OFD's answer (session header + operator confirmation) back to the FN.
    fn write_ofd_ack(&mut self, ack: &[u8]) -> impl Future<Output = RegisterResult<()>> + Send;
}
