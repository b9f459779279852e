//! Logins of the browser POS: bearer tokens issued after a correct PIN.
//!
//! A token is 32 random bytes, hex; the till keeps only its SHA-256 (in the store's meta,
//! under [`TOKEN_META_PREFIX`]) with who logged in and from which browser, so a copy of
//! `till.db` cannot be replayed as a login. Tokens survive a daemon restart: the page keeps
//! selling while the till is down and syncs with the same token when it returns. They last one
//! shift ([`TOKEN_TTL_MS`]); logout deletes the record.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Meta key prefix of a token record: `pos-token/<sha256 hex>`.
pub const TOKEN_META_PREFIX: &str = "pos-token/";
/// How long a login lasts: a shift may not exceed 24 hours.
pub const TOKEN_TTL_MS: u64 = 24 * 3_600_000;

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosLogin {
    /// The staff member's login.
    pub login: String,
    /// `cashier` or `manager`.
    pub role: String,
    /// The browser's device name (actor `S/T/<device>`).
    pub device: String,
    /// The browser's peer id (`pos:S/T/<device>`).
    pub peer: String,
    /// When the login ends (Unix ms).
    pub expires_at_ms: u64,
}

/// A fresh random token (hex) and the meta key its record is stored under.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let key = token_meta_key(&token);
    (token, key)
}

/// The meta key of `token`'s record.
pub fn token_meta_key(token: &str) -> String {
    format!(
        "{TOKEN_META_PREFIX}{}",
        hex::encode(Sha256::digest(token.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_by_digest_only() {
        let (first, key) = new_token();
        let (second, _) = new_token();
        assert_ne!(first, second);
        assert_eq!(first.len(), 64);
        assert!(key.starts_with(TOKEN_META_PREFIX));
        assert!(!key.contains(&first));
        assert_eq!(key, token_meta_key(&first));
    }
}
