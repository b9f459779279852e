//! Shtrih-M answer error codes (the `ERR` byte) as a typed enum. With an FN installed,
//! 0x01..=0x3F are FN errors and the rest are register (ККТ) errors (fiscal-reference §2.2).

use serde::{Deserialize, Serialize};

/// An error the register reported in its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum DeviceError {
    /// 0x01: unknown command or bad format.
    #[error("unknown command or bad format (0x01)")]
    UnknownCommand,
    /// 0x02: wrong FN state for this command (e.g. shift already open).
    #[error("wrong fiscal drive state (0x02)")]
    WrongState,
    /// 0x06: FN archive full.
    #[error("fiscal drive archive full (0x06)")]
    ArchiveFull,
    /// 0x08: no data (e.g. no such document).
    #[error("no data (0x08)")]
    NoData,
    /// 0x09: bad parameters.
    #[error("bad parameters (0x09)")]
    BadParameters,
    /// 0x14: FN document resource exhausted.
    #[error("fiscal drive resource exhausted (0x14)")]
    ResourceExhausted,
    /// 0x15: the 30-day limit for documents not sent to the OFD is reached.
    #[error("documents unsent to the OFD for 30 days: the register is blocked (0x15)")]
    OfdSendLimit,
    /// 0x16 (FN) or 0x4E (ККТ): the shift is older than 24 h; close it first.
    #[error("shift open for more than 24 hours: close the shift (0x16)")]
    ShiftExpired,
    /// 0x3D: no shift open.
    #[error("shift not open (0x3D)")]
    ShiftNotOpen,
    /// 0x45: the payments add up to less than the receipt total.
    #[error("payments less than the receipt total (0x45)")]
    PaymentsLessThanTotal,
    /// 0x4A: a receipt is open; the operation is impossible.
    #[error("a receipt is open (0x4A)")]
    ReceiptOpen,
    /// 0x4F: wrong password.
    #[error("wrong password (0x4F)")]
    WrongPassword,
    /// 0x50: still printing the previous command.
    #[error("register busy printing (0x50)")]
    Busy,
    /// 0x6B: no receipt paper. The code is Shtrih's "нет чековой ленты" from its register
    /// error table; fiscal-reference.md does not list it, so treat it as unverified.
    #[error("out of paper (0x6B)")]
    PaperOut,
    /// Any other code.
    #[error("register error {0:#04x}")]
    Other(u8),
}

impl DeviceError {
    /// The code on the wire.
    pub const fn code(self) -> u8 {
        match self {
            DeviceError::UnknownCommand => 0x01,
            DeviceError::WrongState => 0x02,
            DeviceError::ArchiveFull => 0x06,
            DeviceError::NoData => 0x08,
            DeviceError::BadParameters => 0x09,
            DeviceError::ResourceExhausted => 0x14,
            DeviceError::OfdSendLimit => 0x15,
            DeviceError::ShiftExpired => 0x16,
            DeviceError::ShiftNotOpen => 0x3D,
            DeviceError::PaymentsLessThanTotal => 0x45,
            DeviceError::ReceiptOpen => 0x4A,
            DeviceError::WrongPassword => 0x4F,
            DeviceError::Busy => 0x50,
            DeviceError::PaperOut => 0x6B,
            DeviceError::Other(code) => code,
        }
    }

    /// The error for a non-zero code; `None` for 0 (success).
    pub const fn from_code(code: u8) -> Option<DeviceError> {
        Some(match code {
            0x00 => return None,
            0x01 => DeviceError::UnknownCommand,
            0x02 => DeviceError::WrongState,
            0x06 => DeviceError::ArchiveFull,
            0x08 => DeviceError::NoData,
            0x09 => DeviceError::BadParameters,
            0x14 => DeviceError::ResourceExhausted,
            0x15 => DeviceError::OfdSendLimit,
            0x16 | 0x4E => DeviceError::ShiftExpired,
            0x3D => DeviceError::ShiftNotOpen,
            0x45 => DeviceError::PaymentsLessThanTotal,
            0x4A => DeviceError::ReceiptOpen,
            0x4F => DeviceError::WrongPassword,
            0x50 => DeviceError::Busy,
            0x6B => DeviceError::PaperOut,
            other => DeviceError::Other(other),
        })
    }

    /// True when the register may accept the same command later without any action on the
    /// FN (busy); paper out needs a person.
    pub const fn is_transient(self) -> bool {
        matches!(self, DeviceError::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 1..=u8::MAX {
            let error = DeviceError::from_code(code).expect("non-zero is an error");
            if code != 0x4E {
                assert_eq!(error.code(), code);
            }
        }
        assert_eq!(DeviceError::from_code(0), None);
        assert_eq!(
            DeviceError::from_code(0x4E),
            Some(DeviceError::ShiftExpired)
        );
    }
}
