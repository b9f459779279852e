//! The commit messages of document changes: `<tag>:<subject>`, one tag per kind of write.
//!
//! Automerge keeps each change's message, and the message travels with the change to every
//! replica. The till counts the receipts its replica has not synced yet by the [`RECEIPT`]
//! tag, whether the receipt was written by its own daemon or by a browser page, so every
//! writer builds its messages here. The other tags are for people reading a document's
//! history (support, a divergence report).

use std::fmt::Display;

/// Tag of a receipt written into a session (a sale or a refund).
pub const RECEIPT: &str = "receipt:";
/// Tag of a session's opening.
pub const SESSION_OPEN: &str = "session_open:";
/// Tag of a cash movement (cash in or out).
pub const CASH: &str = "cash:";
/// Tag of a session's Z close.
pub const SESSION_CLOSE: &str = "session_close:";
/// Tag of a fiscal result written back into a session.
pub const FISCAL: &str = "fiscal:";
/// Tag of a hub's CSV import into a catalogue.
pub const CATALOGUE_IMPORT: &str = "catalogue-import:";
/// Tag of a hub's write of one staff member.
pub const STAFF: &str = "staff:";

/// `receipt:<receipt id>`.
pub fn receipt(receipt: impl Display) -> String {
    format!("{RECEIPT}{receipt}")
}

/// True for the message of a receipt change.
pub fn is_receipt(message: &str) -> bool {
    message.starts_with(RECEIPT)
}

/// `session_open:<session id>`.
pub fn session_open(session: impl Display) -> String {
    format!("{SESSION_OPEN}{session}")
}

/// `cash:<movement id>`.
pub fn cash(movement: impl Display) -> String {
    format!("{CASH}{movement}")
}

/// `session_close:<session id>`.
pub fn session_close(session: impl Display) -> String {
    format!("{SESSION_CLOSE}{session}")
}

/// `fiscal:<job id>:<stage>`: the fiscal job (the receipt id, or `z:<session>` for a Z
/// report) and the pipeline stage it reached.
pub fn fiscal(job: impl Display, stage: impl Display) -> String {
    format!("{FISCAL}{job}:{stage}")
}

/// `catalogue-import:<number of products in the file>`.
pub fn catalogue_import(products: impl Display) -> String {
    format!("{CATALOGUE_IMPORT}{products}")
}

/// `staff:<login>`.
pub fn staff(login: impl Display) -> String {
    format!("{STAFF}{login}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_stored_form() {
        assert_eq!(receipt("r-1"), "receipt:r-1");
        assert!(is_receipt(&receipt("r-1")));
        assert!(!is_receipt("cash:r-1"));
        assert_eq!(session_open("s"), "session_open:s");
        assert_eq!(cash("m"), "cash:m");
        assert_eq!(session_close("s"), "session_close:s");
        assert_eq!(fiscal("z:s", "fiscalised"), "fiscal:z:s:fiscalised");
        assert_eq!(catalogue_import(3), "catalogue-import:3");
        assert_eq!(staff("anna"), "staff:anna");
    }
}
