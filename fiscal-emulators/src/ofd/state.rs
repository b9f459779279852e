//! The OFD emulator's state machine, without any HTTP: the fault mode, the documents received
//! per (FN, FD) with their delivery counts, and the decision for each exchange request. The
//! HTTP layer in [`super`] only translates [`Outcome`] into responses.

use crate::hmac::hmac_sha256;
use fiscal::ofd::container::{FnNumber, OfdAck, OfdContainer};
use fiscal::ofd::tlv::find_receipt_id;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The emulated operator's INN (1017), 12 characters.
pub const EMULATED_OFD_INN: &str = "7704211201  ";
/// Key of the emulated operator's fiscal sign (fiscal-reference.md §3.1 [D]); the emulated FN
/// may verify ФПО with it.
pub const EMULATED_OFD_KEY: &[u8] = b"opticserp-emulated-ofd-key-v1";
/// Documents kept before new ones are refused with 503 (a bound on memory).
pub const MAX_DOCUMENTS: usize = 200_000;

/// Fault mode of the emulator, as set by `POST /control/mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Acknowledge every valid document.
    #[serde(rename = "up")]
    Up,
    /// Close exchange connections without an answer.
    #[serde(rename = "down")]
    Down,
    /// Wait `slow_delay` before answering normally.
    #[serde(rename = "slow")]
    Slow,
    /// Answer with a 5xx status.
    #[serde(rename = "5xx")]
    ServerError,
    /// Answer 429 with `Retry-After`.
    #[serde(rename = "429")]
    RateLimited,
    /// Answer 401.
    #[serde(rename = "401")]
    Unauthorized,
    /// Answer with an operator confirmation carrying a rejection code.
    #[serde(rename = "reject")]
    Reject,
}

/// Body of `POST /control/mode`; the optional knobs keep their previous values when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    /// The new mode.
    pub mode: Mode,
    /// Delay in `slow` mode (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `Retry-After` seconds in `429` mode (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// Status in `5xx` mode (default 503; must be 500–599).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Answer code (1022) in `reject` mode (default 14; must not be 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

impl From<Mode> for ModeRequest {
    /// The mode with every knob at its previous value.
    fn from(mode: Mode) -> ModeRequest {
        ModeRequest {
            mode,
            delay_ms: None,
            retry_after_s: None,
            status: None,
            code: None,
        }
    }
}

/// One document as listed by `GET /control/received`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedDocument {
    /// FN number.
    #[serde(rename = "fn")]
    pub fn_number: String,
    /// FD number.
    pub fd: u32,
    /// Form code of the document.
    pub doc_type: u8,
    /// Our receipt id from the document's user attribute (1084/1086), if present.
    pub receipt_id: Option<String>,
    /// How many times the document arrived.
    pub deliveries: u32,
    /// Whether it has been acknowledged with code 0.
    pub acknowledged: bool,
}

/// Counters shown by `GET /control/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Current mode.
    pub mode: Mode,
    /// Exchange requests that reached the emulator, whatever the mode.
    pub requests_total: u64,
    /// Distinct documents received.
    pub documents: usize,
    /// Deliveries of all documents (re-sends included).
    pub deliveries_total: u64,
}

/// What the HTTP layer must answer to one exchange request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Close the connection without an answer.
    Drop,
    /// Answer with this HTTP status (and `Retry-After` seconds when given).
    Status {
        /// HTTP status code.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after_s: Option<u64>,
    },
    /// Answer 200 with this encoded operator confirmation.
    Answer(Vec<u8>),
}

/// Why a mode request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// `status` outside 500–599.
    #[error("status must be 500-599")]
    BadStatus,
    /// `code` 0 in reject mode would be an acceptance.
    #[error("reject code must not be 0")]
    ZeroRejectCode,
}

#[derive(Debug)]
struct Record {
    fn_number: FnNumber,
    fd: u32,
    doc_type: u8,
    receipt_id: Option<String>,
    deliveries: u32,
    /// The acknowledgement given once accepted; re-sends get exactly these bytes again.
    ack: Option<Vec<u8>>,
}

/// The emulator's whole state.
#[derive(Debug)]
pub struct EmulatorState {
    mode: Mode,
    slow_delay: Duration,
    retry_after_s: u64,
    server_status: u16,
    reject_code: u8,
    records: Vec<Record>,
    index: HashMap<(FnNumber, u32), usize>,
    requests_total: u64,
    deliveries_total: u64,
}

impl Default for EmulatorState {
    fn default() -> Self {
        Self {
            mode: Mode::Up,
            slow_delay: Duration::from_secs(10),
            retry_after_s: 30,
            server_status: 503,
            reject_code: 14,
            records: Vec::new(),
            index: HashMap::new(),
            requests_total: 0,
            deliveries_total: 0,
        }
    }
}

impl EmulatorState {
    /// Applies a mode request.
    pub fn set_mode(&mut self, request: &ModeRequest) -> Result<(), ModeError> {
        if request
            .status
            .is_some_and(|status| !(500..=599).contains(&status))
        {
            return Err(ModeError::BadStatus);
        }
        if request.code == Some(0) {
            return Err(ModeError::ZeroRejectCode);
        }
        self.mode = request.mode;
        if let Some(delay_ms) = request.delay_ms {
            self.slow_delay = Duration::from_millis(delay_ms);
        }
        if let Some(seconds) = request.retry_after_s {
            self.retry_after_s = seconds;
        }
        if let Some(status) = request.status {
            self.server_status = status;
        }
        if let Some(code) = request.code {
            self.reject_code = code;
        }
        Ok(())
    }

    /// Current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Delay applied before answering in `slow` mode.
    pub fn slow_delay(&self) -> Duration {
        self.slow_delay
    }

    /// Counts an exchange request and decides the answer for the fault modes that do not look
    /// at the body; `None` means "process the document".
    pub fn admit_request(&mut self) -> Option<Outcome> {
        self.requests_total += 1;
        match self.mode {
            Mode::Down => Some(Outcome::Drop),
            Mode::ServerError => Some(status(self.server_status, None)),
            Mode::RateLimited => Some(status(429, Some(self.retry_after_s))),
            Mode::Unauthorized => Some(status(401, None)),
            Mode::Up | Mode::Slow | Mode::Reject => None,
        }
    }

    /// Processes one document. `now_unix_s` stamps a first acknowledgement (1012).
    pub fn process(&mut self, body: &[u8], now_unix_s: u32) -> Outcome {
        let Ok(container) = OfdContainer::decode(body) else {
            return status(400, None);
        };
        let key = (container.fn_number.clone(), container.fd);
        let position = match self.index.get(&key) {
            Some(&position) => position,
            None if self.records.len() >= MAX_DOCUMENTS => return status(503, None),
            None => {
                self.records.push(Record {
                    fn_number: container.fn_number.clone(),
                    fd: container.fd,
                    doc_type: container.doc_type,
                    receipt_id: find_receipt_id(&container.document),
                    deliveries: 0,
                    ack: None,
                });
                self.index.insert(key, self.records.len() - 1);
                self.records.len() - 1
            }
        };
        self.deliveries_total += 1;
        let reject_code = (self.mode == Mode::Reject).then_some(self.reject_code);
        let record = &mut self.records[position];
        record.deliveries = record.deliveries.saturating_add(1);
        if let Some(ack) = &record.ack {
            // Idempotent: an accepted document keeps its first acknowledgement for ever.
            return Outcome::Answer(ack.clone());
        }
        let ack = OfdAck {
            fn_number: container.fn_number.clone(),
            fd: container.fd,
            code: reject_code.unwrap_or(0),
            received_at_unix_s: now_unix_s,
            ofd_inn: EMULATED_OFD_INN.to_owned(),
            operator_sign: operator_sign(&container),
        };
        let Ok(encoded) = ack.encode() else {
            return status(500, None);
        };
        if reject_code.is_none() {
            record.ack = Some(encoded.clone());
        }
        Outcome::Answer(encoded)
    }

    /// Every document received, in order of first arrival.
    pub fn received(&self) -> Vec<ReceivedDocument> {
        self.records
            .iter()
            .map(|record| ReceivedDocument {
                fn_number: record.fn_number.to_string(),
                fd: record.fd,
                doc_type: record.doc_type,
                receipt_id: record.receipt_id.clone(),
                deliveries: record.deliveries,
                acknowledged: record.ack.is_some(),
            })
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            mode: self.mode,
            requests_total: self.requests_total,
            documents: self.records.len(),
            deliveries_total: self.deliveries_total,
        }
    }
}

fn status(status: u16, retry_after_s: Option<u64>) -> Outcome {
    Outcome::Status {
        status,
        retry_after_s,
    }
}

/// Emulated ФПО: HMAC-SHA256 under [`EMULATED_OFD_KEY`] over FN, FD and the document,
/// truncated to 16 bytes (fiscal-reference.md §3.1 [D]).
pub fn operator_sign(container: &OfdContainer) -> Vec<u8> {
    let mut message = Vec::with_capacity(20 + container.document.len());
    message.extend_from_slice(container.fn_number.as_str().as_bytes());
    message.extend_from_slice(&container.fd.to_be_bytes());
    message.extend_from_slice(&container.document);
    hmac_sha256(EMULATED_OFD_KEY, &message)[..16].to_vec()
}

#[cfg(test)]
mod tests;
