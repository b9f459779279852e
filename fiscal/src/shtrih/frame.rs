//! The Shtrih-M protocol v1 frame codec, pure and panic-free (fuzzed by `fiscal/fuzz`):
//! `STX | LEN | CMD (1 byte, or 2 bytes big-endian for 0xFFxx) | DATA… | LRC`, where LEN counts
//! CMD+DATA (at most 252) and LRC is the XOR of LEN through the last DATA byte.

/// Start of a frame.
pub const STX: u8 = 0x02;
/// "Are you there / is an answer pending?" from the host.
pub const ENQ: u8 = 0x05;
/// Positive acknowledgement.
pub const ACK: u8 = 0x06;
/// Negative acknowledgement (bad LRC, or "idle" as the answer to ENQ).
pub const NAK: u8 = 0x15;
/// Largest LEN: command plus data bytes.
pub const MAX_LEN: usize = 252;

/// One frame: a command code and its bytes (for an answer, the error byte and data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command: `0x00..=0xFE` is one byte on the wire, `0xFF00..=0xFFFF` two.
    pub command: u16,
    /// Everything after the command code (password and parameters, or error and data).
    pub data: Vec<u8>,
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// More bytes are needed; at least `needed` in total.
    #[error("incomplete frame: need {needed} bytes")]
    Incomplete {
        /// Total bytes the frame needs, as far as known.
        needed: usize,
    },
    /// The first byte is not STX.
    #[error("frame does not start with STX: {0:#04x}")]
    NoStx(u8),
    /// LEN is zero, or too short for a two-byte command.
    #[error("bad frame length {0}")]
    BadLength(u8),
    /// LEN above 252.
    #[error("frame length {0} above 252")]
    TooLong(u8),
    /// The checksum does not match.
    #[error("bad LRC: computed {computed:#04x}, received {received:#04x}")]
    BadLrc {
        /// XOR of the received bytes.
        computed: u8,
        /// The LRC byte received.
        received: u8,
    },
    /// The frame to encode is too large or has an invalid command code.
    #[error("frame too large to encode ({0} bytes)")]
    EncodeTooLarge(usize),
}

/// XOR of `bytes`.
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, byte| acc ^ byte)
}

impl Frame {
    /// A frame.
    pub fn new(command: u16, data: Vec<u8>) -> Frame {
        Frame { command, data }
    }

    /// Bytes of the command code on the wire.
    fn command_bytes(&self) -> Result<Vec<u8>, FrameError> {
        match self.command {
            0..=0xFE => Ok(vec![self.command as u8]),
            0xFF00..=0xFFFF => Ok(self.command.to_be_bytes().to_vec()),
            _ => Err(FrameError::EncodeTooLarge(0)),
        }
    }
}

/// Encodes a frame with its STX and LRC.
pub fn encode_frame(frame: &Frame) -> Result<Vec<u8>, FrameError> {
    let command = frame.command_bytes()?;
    let len = command.len() + frame.data.len();
    if len > MAX_LEN {
        return Err(FrameError::EncodeTooLarge(len));
    }
    let mut out = Vec::with_capacity(len + 3);
    out.push(STX);
    out.push(len as u8);
    out.extend_from_slice(&command);
    out.extend_from_slice(&frame.data);
    out.push(lrc(&out[1..]));
    Ok(out)
}

/// The total length of the frame starting at `bytes[0]`, from its LEN byte.
pub fn frame_len(bytes: &[u8]) -> Result<usize, FrameError> {
    match bytes {
        [] => Err(FrameError::Incomplete { needed: 2 }),
        [first, ..] if *first != STX => Err(FrameError::NoStx(*first)),
        [_] => Err(FrameError::Incomplete { needed: 2 }),
        [_, len, ..] => {
            let len = *len;
            if len == 0 {
                Err(FrameError::BadLength(len))
            } else if usize::from(len) > MAX_LEN {
                Err(FrameError::TooLong(len))
            } else {
                Ok(usize::from(len) + 3)
            }
        }
    }
}

/// Decodes one frame from the start of `bytes`; returns it and the bytes it used.
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame, usize), FrameError> {
    let total = frame_len(bytes)?;
    let Some(raw) = bytes.get(..total) else {
        return Err(FrameError::Incomplete { needed: total });
    };
    let body = &raw[1..total - 1];
    let received = raw[total - 1];
    let computed = lrc(body);
    if computed != received {
        return Err(FrameError::BadLrc { computed, received });
    }
    // body = LEN | CMD… | DATA…
    let payload = &body[1..];
    let (command, data) = match payload {
        [0xFF, second, rest @ ..] => (u16::from_be_bytes([0xFF, *second]), rest),
        [0xFF] => return Err(FrameError::BadLength(1)),
        [first, rest @ ..] => (u16::from(*first), rest),
        [] => return Err(FrameError::BadLength(0)),
    };
    Ok((Frame::new(command, data.to_vec()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_frame_round_trips() {
        // Short status (0x10) with password 30: 02 05 10 1E 00 00 00 LRC.
        let frame = Frame::new(0x10, vec![30, 0, 0, 0]);
        let bytes = encode_frame(&frame).expect("encodes");
        assert_eq!(
            bytes,
            vec![0x02, 0x05, 0x10, 0x1E, 0, 0, 0, 0x05 ^ 0x10 ^ 0x1E]
        );
        assert_eq!(decode_frame(&bytes), Ok((frame, 8)));
    }

    #[test]
    fn two_byte_command_is_big_endian() {
        let bytes = encode_frame(&Frame::new(0xFF46, vec![1])).expect("encodes");
        assert_eq!(&bytes[..4], &[0x02, 0x03, 0xFF, 0x46]);
        assert_eq!(decode_frame(&bytes).map(|(f, _)| f.command), Ok(0xFF46));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert_eq!(decode_frame(&[]), Err(FrameError::Incomplete { needed: 2 }));
        assert_eq!(decode_frame(&[0x06]), Err(FrameError::NoStx(0x06)));
        assert_eq!(
            decode_frame(&[0x02, 0x00, 0x00]),
            Err(FrameError::BadLength(0))
        );
        assert_eq!(decode_frame(&[0x02, 0xFD]), Err(FrameError::TooLong(0xFD)));
        assert_eq!(
            decode_frame(&[0x02, 0x02, 0x10]),
            Err(FrameError::Incomplete { needed: 5 })
        );
        assert_eq!(
            decode_frame(&[0x02, 0x01, 0x10, 0x00]),
            Err(FrameError::BadLrc {
                computed: 0x11,
                received: 0x00
            })
        );
        assert_eq!(
            decode_frame(&[0x02, 0x01, 0xFF, 0xFE]),
            Err(FrameError::BadLength(1))
        );
    }

    #[test]
    fn oversized_frame_is_refused() {
        let frame = Frame::new(0x10, vec![0; MAX_LEN]);
        assert_eq!(
            encode_frame(&frame),
            Err(FrameError::EncodeTooLarge(MAX_LEN + 1))
        );
        assert!(encode_frame(&Frame::new(0x1FF, vec![])).is_err());
    }
}
