//! Validated identifiers: [`DocId`] names a document, [`PeerId`] names a replica.
//!
//! Both are opaque ASCII strings of `[A-Za-z0-9._:/-]`. They travel in every sync envelope and
//! end up in SQL rows, URLs and log lines, so the alphabet is kept small enough that no quoting
//! is ever needed and the length is bounded (`DocId` 1..=200 bytes, `PeerId` 1..=100 bytes).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid [`DocId`] or [`PeerId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is empty.
    #[error("{kind} is empty")]
    Empty {
        /// `"doc id"` or `"peer id"`.
        kind: &'static str,
    },
    /// The string is longer than allowed.
    #[error("{kind} is {len} bytes long, the limit is {max}")]
    TooLong {
        /// `"doc id"` or `"peer id"`.
        kind: &'static str,
        /// Length found.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// The string holds a byte outside `[A-Za-z0-9._:/-]`.
    #[error(
        "{kind} holds the byte 0x{byte:02x} at offset {offset}; allowed: A-Z a-z 0-9 . _ : / -"
    )]
    BadByte {
        /// `"doc id"` or `"peer id"`.
        kind: &'static str,
        /// The offending byte.
        byte: u8,
        /// Its offset in the string.
        offset: usize,
    },
}

fn allowed_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'/' | b'-')
}

fn check(kind: &'static str, bytes: &[u8], max: usize) -> Result<(), IdError> {
    if bytes.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if bytes.len() > max {
        return Err(IdError::TooLong {
            kind,
            len: bytes.len(),
            max,
        });
    }
    match bytes.iter().position(|b| !allowed_byte(*b)) {
        Some(offset) => Err(IdError::BadByte {
            kind,
            byte: bytes[offset],
            offset,
        }),
        None => Ok(()),
    }
}

macro_rules! opaque_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:ident = $max_value:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Longest ", $kind, " allowed, in bytes.")]
            pub const $max: usize = $max_value;

            #[doc = concat!("Validates `value` as a ", $kind, ".")]
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, value.as_bytes(), Self::$max)?;
                Ok(Self(value))
            }

            #[doc = concat!("Validates raw bytes (as read from the wire) as a ", $kind, ".")]
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                check($kind, bytes, Self::$max)?;
                // Every allowed byte is ASCII, so this never allocates a replacement.
                Ok(Self(String::from_utf8_lossy(bytes).into_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

opaque_id!(
    /// Names one Automerge document, e.g. `store/01/catalogue` or `session/till-03/2026-11-23`.
    DocId,
    "doc id",
    MAX_LEN = 200
);

opaque_id!(
    /// Names one replica taking part in sync: a till, a hub, a browser.
    PeerId,
    "peer id",
    MAX_LEN = 100
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        let id = DocId::new("store/01:catalogue_v2.x-y").expect("valid id");
        assert_eq!(id.as_str(), "store/01:catalogue_v2.x-y");
        assert_eq!(id.to_string(), "store/01:catalogue_v2.x-y");
    }

    #[test]
    fn refuses_empty_long_and_foreign_bytes() {
        assert_eq!(DocId::new(""), Err(IdError::Empty { kind: "doc id" }));
        assert!(matches!(
            DocId::new("a".repeat(201)),
            Err(IdError::TooLong { len: 201, .. })
        ));
        assert!(DocId::new("a".repeat(200)).is_ok());
        assert!(matches!(
            PeerId::new("p".repeat(101)),
            Err(IdError::TooLong { max: 100, .. })
        ));
        assert_eq!(
            PeerId::new("till 1"),
            Err(IdError::BadByte {
                kind: "peer id",
                byte: b' ',
                offset: 4
            })
        );
        assert!(DocId::new("касса").is_err());
        assert!(DocId::from_bytes(&[b'a', 0xff]).is_err());
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let id: PeerId = serde_json::from_str("\"till-01\"").expect("valid");
        assert_eq!(id.as_str(), "till-01");
        assert!(serde_json::from_str::<PeerId>("\"till 01\"").is_err());
        assert_eq!(
            serde_json::to_string(&id).expect("serialise"),
            "\"till-01\""
        );
    }
}
