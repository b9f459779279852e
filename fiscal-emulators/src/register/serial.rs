//! The emulator's side of the serial line: the Shtrih-M device state machine (Idle →
//! receive frame → ACK → execute → answer pending until the host ACKs; ENQ while pending
//! resends the answer, a bad LRC gets NAK) and the injected faults.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::register::machine::Machine;
use fiscal::shtrih::frame::{decode_frame, encode_frame, frame_len, Frame, ACK, ENQ, NAK, STX};

/// Default delay of the `slow` fault.
pub const DEFAULT_SLOW_DELAY_MS: u64 = 300;
/// Wait between two bytes of one incoming frame before dropping it.
const INTER_BYTE_TIMEOUT: Duration = Duration::from_millis(200);

/// An injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// Behave.
    Ok,
    /// Swallow every byte, answer nothing.
    Silent,
    /// Send answers with a wrong LRC.
    Corrupt,
    /// Answer each command after a delay.
    Slow,
    /// Refuse printing commands with "out of paper" (0x6B).
    PaperOut,
}

/// The fault settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// The mode.
    pub mode: FaultMode,
    /// Delay of `slow`, milliseconds.
    pub delay_ms: u64,
    /// For `corrupt`: how many answer transmissions to corrupt before behaving again;
    /// `None` = all of them.
    pub count: Option<u32>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            mode: FaultMode::Ok,
            delay_ms: DEFAULT_SLOW_DELAY_MS,
            count: None,
        }
    }
}

/// State shared by the serial loop and the control API.
#[derive(Debug)]
pub struct Shared {
    /// The register.
    pub machine: Mutex<Machine>,
    /// The faults.
    pub faults: Mutex<Faults>,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the data are
/// plain values that stay consistent between statements).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The emulated time: system time plus the persisted offset.
    pub fn now(&self) -> u64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let offset = lock(&self.machine).state().clock_offset_secs;
        u64::try_from(
            i64::try_from(system)
                .unwrap_or(i64::MAX)
                .saturating_add(offset),
        )
        .unwrap_or(0)
    }

    fn faults(&self) -> Faults {
        *lock(&self.faults)
    }

    /// The bytes to send for an answer: corrupted while the `corrupt` fault lasts.
    fn outgoing(&self, answer: &[u8]) -> Vec<u8> {
        let mut faults = lock(&self.faults);
        let mut bytes = answer.to_vec();
        if faults.mode == FaultMode::Corrupt {
            if let Some(last) = bytes.last_mut() {
                *last ^= 0xFF;
            }
            if let Some(count) = faults.count.as_mut() {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    *faults = Faults::default();
                }
            }
        }
        bytes
    }
}

/// Serves the device protocol on `stream` until it fails.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let mut pending: Option<Vec<u8>> = None;
    let mut byte = [0u8; 1];
    loop {
        stream.read_exact(&mut byte).await?;
        if shared.faults().mode == FaultMode::Silent {
            continue;
        }
        match byte[0] {
            ENQ => match &pending {
                Some(answer) => {
                    let mut out = vec![ACK];
                    out.extend(shared.outgoing(answer));
                    stream.write_all(&out).await?;
                }
                None => stream.write_all(&[NAK]).await?,
            },
            ACK => pending = None,
            STX => {
                let Some(frame) = read_frame(&mut stream).await? else {
                    stream.write_all(&[NAK]).await?;
                    continue;
                };
                stream.write_all(&[ACK]).await?;
                let faults = shared.faults();
                let now = shared.now();
                let answer =
                    lock(&shared.machine).execute(&frame, now, faults.mode == FaultMode::PaperOut);
                if faults.mode == FaultMode::Slow {
                    tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
                }
                let Ok(encoded) = encode_frame(&answer) else {
                    continue;
                };
                let out = shared.outgoing(&encoded);
                pending = Some(encoded);
                stream.write_all(&out).await?;
            }
            // NAK: the host will ENQ for the pending answer; other bytes are line noise.
            _ => {}
        }
    }
}

/// Reads the rest of a frame after STX; `None` when it is corrupt or stalls.
async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Option<Frame>> {
    let mut bytes = vec![STX, 0];
    match timeout(INTER_BYTE_TIMEOUT, stream.read_exact(&mut bytes[1..2])).await {
        Ok(result) => result?,
        Err(_) => return Ok(None),
    };
    let Ok(total) = frame_len(&bytes) else {
        return Ok(None);
    };
    bytes.resize(total, 0);
    match timeout(INTER_BYTE_TIMEOUT * 4, stream.read_exact(&mut bytes[2..])).await {
        Ok(result) => result?,
        Err(_) => return Ok(None),
    };
    Ok(decode_frame(&bytes).ok().map(|(frame, _)| frame))
}
