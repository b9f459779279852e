//! The emulated fiscal drive's durable state and its persistence: one JSON file in the
//! state directory, replaced atomically (write a temp file, fsync it, rename, fsync the
//! directory) after every change, so a restart keeps FD numbering and the OFD queue.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the state file inside the state directory.
pub const STATE_FILE: &str = "register-state.json";

/// One fiscal document the emulated FN made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// 1040.
    pub fd: u32,
    /// Form code (2, 3, 5, 31).
    pub form: u8,
    /// 1054 for receipts, 0 otherwise.
    pub operation: u8,
    /// 1020 in kopecks (0 for shift reports).
    pub total: i64,
    /// Our receipt id from 1084/1086.
    pub receipt_id: Option<String>,
    /// 1038.
    pub shift: u32,
    /// 1042 (0 for shift reports).
    pub receipt_number: u32,
    /// 1012, Unix seconds.
    pub datetime_unix: u64,
    /// ФПД: u32 big-endian of bytes 2..6 of 1077.
    pub fiscal_sign: u32,
    /// The whole TLV document, hex.
    pub tlv_hex: String,
    /// When the OFD acknowledged it (Unix seconds), `None` while unsent.
    pub acked_at: Option<u64>,
}

impl StoredDocument {
    /// The TLV bytes; `None` if the stored hex is damaged ([`load`] refuses such a file).
    pub fn tlv(&self) -> Option<Vec<u8>> {
        hex_decode(&self.tlv_hex)
    }
}

/// The durable part of the emulated register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnState {
    /// 1041, 16 digits.
    pub fn_number: String,
    /// 1037, the register's registration number.
    pub rnm: String,
    /// 1018, the user's INN.
    pub inn: String,
    /// Per-FN key of the emulated fiscal sign, hex.
    pub key_hex: String,
    /// When the FN was "registered" (emulated time), Unix seconds.
    pub registered_at: u64,
    /// Offset of the emulated clock from the system clock.
    pub clock_offset_secs: i64,
    /// Last FD number made (0 on a fresh FN).
    pub last_fd: u32,
    /// Current or last shift number.
    pub shift_number: u32,
    /// When the open shift was opened; `None` when closed.
    pub shift_opened_at: Option<u64>,
    /// Receipts made in the current shift.
    pub receipt_number: u32,
    /// Time of the last document (the FN refuses time going backwards).
    pub last_document_unix: u64,
    /// Every document, in FD order.
    pub documents: Vec<StoredDocument>,
}

impl FnState {
    /// A fresh FN with random identity, registered at `now_unix`.
    pub fn fresh(now_unix: u64) -> FnState {
        use rand::Rng;
        let mut rng = rand::rng();
        let serial: u64 = rng.random_range(0..1_000_000_000_000);
        let key: [u8; 32] = rng.random();
        FnState {
            fn_number: format!("9999{serial:012}"),
            rnm: format!("{:016}", rng.random_range(0..10_000_000_000_000_000u64)),
            inn: "7701234567  ".to_string(),
            key_hex: hex_encode(&key),
            registered_at: now_unix,
            clock_offset_secs: 0,
            last_fd: 0,
            shift_number: 0,
            shift_opened_at: None,
            receipt_number: 0,
            last_document_unix: 0,
            documents: Vec::new(),
        }
    }

    /// The fiscal-sign key; `None` if the stored hex is damaged ([`load`] refuses such a file).
    pub fn key(&self) -> Option<Vec<u8>> {
        hex_decode(&self.key_hex)
    }

    /// The first hex field that does not decode, named for the error message.
    fn damaged_field(&self) -> Option<String> {
        if self.key().is_none() {
            return Some("key_hex".to_string());
        }
        self.documents
            .iter()
            .find(|doc| doc.tlv().is_none())
            .map(|doc| format!("tlv_hex of FD {}", doc.fd))
    }

    /// The oldest document the OFD has not acknowledged.
    pub fn oldest_unacked(&self) -> Option<&StoredDocument> {
        self.documents.iter().find(|doc| doc.acked_at.is_none())
    }

    /// How many documents the OFD has not acknowledged.
    pub fn unacked_count(&self) -> usize {
        self.documents
            .iter()
            .filter(|doc| doc.acked_at.is_none())
            .count()
    }
}

/// Why the state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// File system error.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid state JSON.
    #[error("state file {path} is damaged: {source}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The file parses, but a hex field in it does not decode.
    #[error("state file {path} is damaged: {field} is not hex")]
    BadHex {
        /// The file.
        path: PathBuf,
        /// Which field.
        field: String,
    },
}

/// Loads the state from `dir`, `None` when there is none yet.
pub fn load(dir: &Path) -> Result<Option<FnState>, StateError> {
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    let state: FnState = serde_json::from_slice(&bytes).map_err(|source| StateError::Damaged {
        path: path.clone(),
        source,
    })?;
    // A document or key that cannot be decoded would otherwise be served as empty bytes.
    if let Some(field) = state.damaged_field() {
        return Err(StateError::BadHex { path, field });
    }
    Ok(Some(state))
}

/// Writes the state atomically: temp file, fsync, rename, fsync of the directory.
pub fn save(dir: &Path, state: &FnState) -> Result<(), StateError> {
    let path = dir.join(STATE_FILE);
    let temp = dir.join(format!("{STATE_FILE}.tmp"));
    let io = |source| StateError::Io {
        path: path.clone(),
        source,
    };
    let bytes = serde_json::to_vec(state).map_err(|source| StateError::Damaged {
        path: path.clone(),
        source,
    })?;
    let mut file = fs::File::create(&temp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&temp, &path).map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Lower-case hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Bytes of a hex string, `None` if malformed.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_save_and_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load(dir.path()).expect("loads").is_none());
        let mut state = FnState::fresh(1_795_461_000);
        state.last_fd = 42;
        save(dir.path(), &state).expect("saves");
        assert_eq!(load(dir.path()).expect("loads"), Some(state.clone()));
        assert_eq!(state.fn_number.len(), 16);
        assert_eq!(
            hex_decode(&hex_encode(&[0, 0xAB, 0xFF])),
            Some(vec![0, 0xAB, 0xFF])
        );
        assert_eq!(hex_decode("abc"), None);

        state.key_hex = "not hex".to_string();
        save(dir.path(), &state).expect("saves");
        let error = load(dir.path()).expect_err("damaged hex is refused");
        assert!(error.to_string().contains("key_hex"), "{error}");
    }
}
