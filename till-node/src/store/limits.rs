//! Hard limits on what the store accepts, checked before any SQL runs (TIGER_STYLE: put a
//! limit on everything). They are far above normal use: a receipt's change chunk is ~0.5 KB,
//! a whole 10,000-product catalogue ~1 MB, a year-long session document ~10 MB.

use super::StoreError;

/// Longest key (document id, peer id, idempotency key, meta key, receipt id, HLC string).
pub const MAX_KEY_BYTES: usize = 256;

/// Largest single blob (change chunk, snapshot, sync state, response body, payload).
pub const MAX_BLOB_BYTES: usize = 128 * 1024 * 1024;

/// Most writes in one [`super::WriteBatch`].
pub const MAX_BATCH_OPS: usize = 10_000;

/// Most payload bytes in one [`super::WriteBatch`].
pub const MAX_BATCH_BYTES: usize = 256 * 1024 * 1024;

/// Longest error text kept on an outbox entry; longer texts are refused, not cut, so the
/// caller decides what to keep.
pub const MAX_ERROR_TEXT_BYTES: usize = 4096;

/// Refuses an empty key, an oversized key, or one with control characters (they would make
/// logs and support screens ambiguous).
pub fn check_key(what: &str, key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidInput(format!("{what} is empty")));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "{what} is {} bytes long, the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(StoreError::InvalidInput(format!(
            "{what} {key:?} contains control characters"
        )));
    }
    Ok(())
}

/// Refuses a blob above [`MAX_BLOB_BYTES`].
pub fn check_blob(what: &str, bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() > MAX_BLOB_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "{what} is {} bytes, the limit is {MAX_BLOB_BYTES}",
            bytes.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("doc_id", "session-T1-2026-11-23").is_ok());
        assert!(check_key("doc_id", "").is_err());
        assert!(check_key("doc_id", &"x".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(check_key("doc_id", "a\nb").is_err());
        assert!(check_blob("chunk", &[0u8; 16]).is_ok());
    }
}
