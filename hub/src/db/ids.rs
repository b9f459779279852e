//! Validation of the identifiers the hub stores: store and till ids, document ids, user
//! names, peers.
//!
//! Ids arrive from tills and from the command line, so they are checked before they reach
//! SQL (parameterised anyway) and, more importantly, before they reach logs, file names and
//! advisory-lock keys, where odd characters cause trouble.

use thiserror::Error;

/// An identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct IdError {
    /// Which kind of id ("store", "till", "doc_id", ...).
    pub what: &'static str,
    /// The refused value, cut to 80 characters so a huge input cannot flood a log line.
    pub value: String,
    /// The rule it broke.
    pub rule: &'static str,
}

fn check(
    what: &'static str,
    value: &str,
    max_len: usize,
    allowed: fn(char) -> bool,
    rule: &'static str,
) -> Result<(), IdError> {
    let ok = !value.is_empty() && value.len() <= max_len && value.chars().all(allowed);
    if ok {
        Ok(())
    } else {
        Err(IdError {
            what,
            value: value.chars().take(80).collect(),
            rule,
        })
    }
}

fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A store id: 1..=32 characters of `[A-Za-z0-9_-]`.
pub fn validate_store_id(store: &str) -> Result<(), IdError> {
    check(
        "store",
        store,
        32,
        plain,
        "1..=32 characters of [A-Za-z0-9_-]",
    )
}

/// A till id: 1..=32 characters of `[A-Za-z0-9_-]`.
pub fn validate_till_id(till: &str) -> Result<(), IdError> {
    check(
        "till",
        till,
        32,
        plain,
        "1..=32 characters of [A-Za-z0-9_-]",
    )
}

/// A document kind (e.g. `catalogue`, `session`): 1..=32 characters of `[A-Za-z0-9_-]`.
pub fn validate_doc_kind(kind: &str) -> Result<(), IdError> {
    check(
        "doc kind",
        kind,
        32,
        plain,
        "1..=32 characters of [A-Za-z0-9_-]",
    )
}

/// A document id: 1..=200 characters of `[A-Za-z0-9_.:/-]`, so ids such as
/// `session/S1/T1/<uuid>` fit.
pub fn validate_doc_id(doc_id: &str) -> Result<(), IdError> {
    check(
        "doc_id",
        doc_id,
        200,
        |c| plain(c) || matches!(c, '.' | ':' | '/'),
        "1..=200 characters of [A-Za-z0-9_.:/-]",
    )
}

/// A sync peer (a till or a hub user agent): same alphabet as a document id, up to 100.
pub fn validate_peer(peer: &str) -> Result<(), IdError> {
    check(
        "peer",
        peer,
        100,
        |c| plain(c) || matches!(c, '.' | ':' | '/'),
        "1..=100 characters of [A-Za-z0-9_.:/-]",
    )
}

/// A hub user name: 1..=64 characters of `[A-Za-z0-9_.@-]`.
pub fn validate_user_name(name: &str) -> Result<(), IdError> {
    check(
        "user name",
        name,
        64,
        |c| plain(c) || matches!(c, '.' | '@'),
        "1..=64 characters of [A-Za-z0-9_.@-]",
    )
}

/// A cash session id or similar generic id: same alphabet as a document id, up to 128.
pub fn validate_session_id(session_id: &str) -> Result<(), IdError> {
    check(
        "session_id",
        session_id,
        128,
        |c| plain(c) || matches!(c, '.' | ':' | '/'),
        "1..=128 characters of [A-Za-z0-9_.:/-]",
    )
}

/// A payment method name (`cash`, `card`, `prepayment`, ...): 1..=32 characters of
/// `[A-Za-z0-9_-]`.
pub fn validate_payment_method(method: &str) -> Result<(), IdError> {
    check(
        "payment method",
        method,
        32,
        plain,
        "1..=32 characters of [A-Za-z0-9_-]",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_till_rules() {
        assert!(validate_store_id("S1").is_ok());
        assert!(validate_store_id("store_01-msk").is_ok());
        assert!(validate_store_id(&"a".repeat(32)).is_ok());
        assert!(validate_store_id(&"a".repeat(33)).is_err());
        assert!(validate_store_id("").is_err());
        assert!(validate_store_id("S 1").is_err());
        assert!(validate_till_id("T/1").is_err());
        assert!(validate_till_id("Касса1").is_err());
    }

    #[test]
    fn doc_ids_allow_paths_but_not_spaces() {
        assert!(validate_doc_id("session/S1/T1/0b9c").is_ok());
        assert!(validate_doc_id("catalogue:S1").is_ok());
        assert!(validate_doc_id("a b").is_err());
        assert!(validate_doc_id("x'; DROP TABLE docs; --").is_err());
    }

    #[test]
    fn error_value_is_truncated() {
        let long = "é".repeat(1000);
        let err = validate_user_name(&long).expect_err("too long");
        assert_eq!(err.value.chars().count(), 80);
        assert_eq!(err.what, "user name");
    }
}
