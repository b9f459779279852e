//! The Shtrih-M transport over any async byte stream: ENQ/ACK/NAK handshake, frame send with
//! resend on NAK, answer read with per-byte and per-answer timeouts, NAK + ENQ to get a
//! corrupted answer again, and stale answers (from a command whose answer was lost) drained.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::register::RegisterError;
use crate::shtrih::frame::{decode_frame, encode_frame, Frame, FrameError, ACK, ENQ, NAK, STX};

/// Timeouts and retry limits of the link (defaults from fiscal-reference §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Wait for the answer to ENQ and for the ACK of a frame (Shtrih: 100 ms).
    pub enq_timeout: Duration,
    /// Wait between two bytes of one answer frame.
    pub byte_timeout: Duration,
    /// Tries for ENQ, for a frame answered by NAK, and for a corrupted answer (Shtrih: 3).
    pub max_retries: u32,
    /// Stale answers drained before a command before giving up (bounds a chatty device).
    pub max_stale_answers: u32,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            enq_timeout: Duration::from_millis(100),
            byte_timeout: Duration::from_millis(100),
            max_retries: 3,
            max_stale_answers: 8,
        }
    }
}

/// Largest read chunk; frames are at most 255 bytes.
const READ_CHUNK: usize = 512;

/// One serial link to a register.
#[derive(Debug)]
pub struct Link<S> {
    stream: S,
    config: LinkConfig,
    buffered: VecDeque<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Link<S> {
    /// A link over `stream`.
    pub fn new(stream: S, config: LinkConfig) -> Link<S> {
        Link {
            stream,
            config,
            buffered: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Sends `request` and returns the answer frame (its data starts with the error byte).
    pub async fn transact(
        &mut self,
        request: &Frame,
        answer_timeout: Duration,
    ) -> Result<Frame, RegisterError> {
        let bytes = encode_frame(request)?;
        self.wait_idle().await?;
        self.send_frame(&bytes).await?;
        let mut stale = 0;
        loop {
            let answer = self.read_answer(answer_timeout).await?;
            if answer.command == request.command {
                return Ok(answer);
            }
            // A late answer to an earlier command (whose outcome was reported unknown) came
            // first; it is acknowledged and ours is still to come.
            stale += 1;
            if stale > self.config.max_stale_answers {
                return Err(RegisterError::Protocol(format!(
                    "answers to {:#06x} instead of {:#06x}",
                    answer.command, request.command
                )));
            }
        }
    }

    /// ENQ until the device says NAK (idle), draining answers it still holds.
    async fn wait_idle(&mut self) -> Result<(), RegisterError> {
        let mut silent = 0;
        let mut stale = 0;
        loop {
            self.discard_input();
            self.write(&[ENQ]).await?;
            match self.read_byte(self.config.enq_timeout).await? {
                Some(NAK) => return Ok(()),
                Some(byte @ (ACK | STX)) => {
                    if byte == STX {
                        self.buffered.push_front(STX);
                    }
                    // An answer to an earlier command nobody read; its outcome was already
                    // reported as unknown, so it is drained and acknowledged.
                    stale += 1;
                    if stale > self.config.max_stale_answers {
                        return Err(RegisterError::Protocol("device keeps sending".into()));
                    }
                    let _ = self.read_frame(self.config.enq_timeout).await;
                    self.write(&[ACK]).await?;
                }
                Some(_) => {}
                None => {
                    silent += 1;
                    if silent >= self.config.max_retries {
                        return Err(RegisterError::Timeout { stage: "enq" });
                    }
                }
            }
        }
    }

    /// Sends the frame until ACKed.
    async fn send_frame(&mut self, bytes: &[u8]) -> Result<(), RegisterError> {
        for _ in 0..self.config.max_retries {
            self.write(bytes).await?;
            match self.read_byte(self.config.enq_timeout).await? {
                Some(ACK) => return Ok(()),
                Some(NAK) => continue,
                Some(_) | None => {
                    return Err(RegisterError::Timeout {
                        stage: "frame acknowledgement",
                    })
                }
            }
        }
        Err(RegisterError::Protocol(
            "device rejected the frame on every try".into(),
        ))
    }

    /// Reads the answer; on a corrupted answer NAK + ENQ makes the device send it again.
    async fn read_answer(&mut self, answer_timeout: Duration) -> Result<Frame, RegisterError> {
        let mut last_error = FrameError::Incomplete { needed: 2 };
        for attempt in 0..self.config.max_retries {
            if attempt > 0 {
                self.discard_input();
                self.write(&[NAK, ENQ]).await?;
                match self.read_byte(self.config.enq_timeout).await? {
                    Some(ACK) => {}
                    Some(_) | None => {
                        return Err(RegisterError::Timeout {
                            stage: "answer resend",
                        })
                    }
                }
            }
            match self.read_frame(answer_timeout).await? {
                Ok(frame) => {
                    self.write(&[ACK]).await?;
                    return Ok(frame);
                }
                Err(error) => last_error = error,
            }
        }
        Err(RegisterError::Link(last_error))
    }

    /// Reads one frame: STX within `first_byte_timeout` (other bytes skipped, e.g. the 0xFF
    /// a TCP bridge may send), then the rest byte by byte within the byte timeout.
    async fn read_frame(
        &mut self,
        first_byte_timeout: Duration,
    ) -> Result<Result<Frame, FrameError>, RegisterError> {
        let mut bytes = Vec::with_capacity(64);
        loop {
            match self.read_byte(first_byte_timeout).await? {
                Some(STX) => break,
                Some(_) => continue,
                None => return Err(RegisterError::Timeout { stage: "answer" }),
            }
        }
        bytes.push(STX);
        let Some(len) = self.read_byte(self.config.byte_timeout).await? else {
            return Err(RegisterError::Timeout {
                stage: "answer byte",
            });
        };
        bytes.push(len);
        let total = match crate::shtrih::frame::frame_len(&bytes) {
            Ok(total) => total,
            Err(error) => return Ok(Err(error)),
        };
        while bytes.len() < total {
            match self.read_byte(self.config.byte_timeout).await? {
                Some(byte) => bytes.push(byte),
                None => {
                    return Err(RegisterError::Timeout {
                        stage: "answer byte",
                    })
                }
            }
        }
        Ok(decode_frame(&bytes).map(|(frame, _)| frame))
    }

    /// One byte, or `None` on timeout.
    async fn read_byte(&mut self, wait: Duration) -> Result<Option<u8>, RegisterError> {
        if let Some(byte) = self.buffered.pop_front() {
            return Ok(Some(byte));
        }
        let mut chunk = [0u8; READ_CHUNK];
        match timeout(wait, self.stream.read(&mut chunk)).await {
            Err(_) => Ok(None),
            Ok(Err(error)) => Err(RegisterError::Io(error)),
            Ok(Ok(0)) => Err(RegisterError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "serial stream closed",
            ))),
            Ok(Ok(read)) => {
                self.buffered.extend(&chunk[1..read]);
                Ok(Some(chunk[0]))
            }
        }
    }

    /// Drops bytes already read but not used (garbage between exchanges).
    fn discard_input(&mut self) {
        self.buffered.clear();
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), RegisterError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match timeout(self.config.enq_timeout * 10, write).await {
            Ok(result) => result.map_err(RegisterError::Io),
            Err(_) => Err(RegisterError::Timeout { stage: "write" }),
        }
    }
}
