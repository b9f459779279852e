//! The staff document: one Automerge document per store (`staff/<store>`) holding the
//! credentials of the store's cashiers and managers, so that a till can log a cashier in
//! (and a manager approve a large discount) with no hub.
//!
//! # Layout
//! ```text
//! kind = "staff"   schema = 1   store = "S1"
//! users = { <login>: "<canonical member JSON>" }
//! ```
//! Every root key, the `users` map included, is created once by [`init`] (on the hub), so
//! no two replicas ever create the same nested object concurrently. A member is one
//! immutable string value: a change replaces the whole entry.
//!
//! # Secrets
//! A member carries only the slow hash of its PIN or password: an argon2id PHC string
//! (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`). This crate checks its shape and never
//! hashes or verifies anything (no IO, no argon2 here); the till verifies PINs against it.
//!
//! # Merge rule
//! Last writer by HLC wins: [`put_member`] ignores a write whose `updated_at` is not newer
//! than the stored entry's, and a read picks, among the values Automerge keeps for one
//! login after a concurrent merge, the one with the largest `updated_at` — never
//! Automerge's internal op order. Only hub actors write staff documents, so in practice one
//! writer holds the document lock at a time and no conflict arises.
//!
//! Writes validate before they change anything and leave their changes in the document's
//! open transaction for the caller to commit. Every read re-validates what it returns: a
//! corrupt entry is an error, never a half-trusted credential.

mod doc;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::StaffError;
use crate::hlc::Hlc;

pub use doc::{init, member, members, put_member, store, StaffWrite};

/// Document schema version, stored under `schema`.
pub const SCHEMA_VERSION: i64 = 1;
/// Most members in one staff document (a store has a few dozen people at most).
pub const MAX_MEMBERS: usize = 1_000;
/// Longest login (the hub's rule for user names).
pub const MAX_LOGIN_LEN: usize = 64;
/// Longest secret hash accepted (argon2id PHC strings of the hub are about 100 bytes).
pub const MAX_SECRET_HASH_LEN: usize = 256;
/// The prefix every secret hash must start with.
pub const ARGON2ID_PREFIX: &str = "$argon2id$";

/// What a member may do at a till.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    /// Sells; logs in with a numeric PIN.
    Cashier,
    /// The store manager: approves discounts above the cashier's limit.
    Manager,
}

impl StaffRole {
    /// The stored name (`cashier`, `manager`), the same as the hub's role names.
    pub const fn as_str(self) -> &'static str {
        match self {
            StaffRole::Cashier => "cashier",
            StaffRole::Manager => "manager",
        }
    }

    /// The role with this stored name.
    pub fn parse(name: &str) -> Option<StaffRole> {
        match name {
            "cashier" => Some(StaffRole::Cashier),
            "manager" => Some(StaffRole::Manager),
            _ => None,
        }
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One person's credentials as replicated to the tills.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffMember {
    /// Login, the hub user name: 1..=64 characters of `[A-Za-z0-9_.@-]`.
    pub login: String,
    /// Cashier or manager.
    pub role: StaffRole,
    /// argon2id PHC string of the PIN (cashier) or password (manager); never the secret.
    pub secret_hash: String,
    /// False once the user is disabled: the till must refuse the login.
    pub active: bool,
    /// When this entry was written (the hub's HLC): the last writer by HLC wins.
    pub updated_at: Hlc,
}

impl fmt::Debug for StaffMember {
    /// Leaves the hash out: the hash of a 4-digit PIN is as good as the PIN to anyone who
    /// reads a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaffMember")
            .field("login", &self.login)
            .field("role", &self.role)
            .field("secret_hash", &"<redacted>")
            .field("active", &self.active)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl StaffMember {
    /// Checks the login, the hash's shape and length, and the timestamp.
    pub fn validate(&self) -> Result<(), StaffError> {
        validate_login(&self.login)?;
        let invalid = |field, reason| StaffError::InvalidMember {
            login: self.login.clone(),
            field,
            reason,
        };
        if !is_argon2id_phc(&self.secret_hash) {
            return Err(invalid(
                "secret_hash",
                "must be an argon2id PHC string ($argon2id$…) of at most 256 characters",
            ));
        }
        self.updated_at
            .validate()
            .map_err(|_| invalid("updated_at", "is not a valid timestamp"))
    }
}

/// A login is 1..=64 characters of `[A-Za-z0-9_.@-]` (the hub's rule for user names).
pub fn validate_login(login: &str) -> Result<(), StaffError> {
    let valid = !login.is_empty()
        && login.len() <= MAX_LOGIN_LEN
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if valid {
        Ok(())
    } else {
        Err(StaffError::InvalidMember {
            login: login.chars().take(MAX_LOGIN_LEN + 8).collect(),
            field: "login",
            reason: "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '@', '-'",
        })
    }
}

/// True for the shape of an argon2id PHC string: `$argon2id$`, an optional `v=<digits>`
/// segment, the parameters (`name=value` pairs separated by commas), the salt and the hash
/// (both non-empty, in the B64 alphabet), at most [`MAX_SECRET_HASH_LEN`] bytes in all. The
/// hash itself is not checked here.
pub fn is_argon2id_phc(hash: &str) -> bool {
    let Some(rest) = hash.strip_prefix(ARGON2ID_PREFIX) else {
        return false;
    };
    if hash.len() > MAX_SECRET_HASH_LEN {
        return false;
    }
    let mut segments: Vec<&str> = rest.split('$').collect();
    if let Some(version) = segments.first().and_then(|s| s.strip_prefix("v=")) {
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        segments.remove(0);
    }
    let [params, salt, digest] = segments.as_slice() else {
        return false;
    };
    let param_ok = |pair: &str| {
        pair.split_once('=').is_some_and(|(name, value)| {
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_lowercase())
                && !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        })
    };
    let b64 = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    params.split(',').all(param_ok) && b64(salt) && b64(digest)
}

#[cfg(test)]
mod tests;
