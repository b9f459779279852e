//! Identifiers: stores, tills, sessions, receipts, cash movements, document keys and
//! Automerge actor ids.
//!
//! Actor ids are readable bytes (`S1/T1/daemon`, `hub/main`) rather than random ones, so
//! that the hub can check that a session document is written only by its own till and a
//! divergence report can say "till T1" instead of printing hex.

use std::fmt;
use std::str::FromStr;

use automerge::ActorId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::IdError;

/// Longest store, till or device name.
pub const MAX_NAME_LEN: usize = 32;

/// Checks a store / till / device / hub name: 1..=32 characters of `[A-Za-z0-9_-]`.
fn validate_name(kind: &'static str, value: &str) -> Result<(), IdError> {
    let shown = || value.chars().take(MAX_NAME_LEN + 8).collect::<String>();
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.chars().count() > MAX_NAME_LEN {
        return Err(IdError::TooLong {
            kind,
            max: MAX_NAME_LEN,
        });
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(IdError::InvalidChar {
            kind,
            value: shown(),
        });
    }
    Ok(())
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`: 1..=32 characters of `[A-Za-z0-9_-]`.
            pub fn new(value: &str) -> Result<$name, IdError> {
                validate_name($kind, value)?;
                Ok($name(value.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<$name, IdError> {
                $name::new(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<$name, IdError> {
                validate_name($kind, &value)?;
                Ok($name(value))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_id!(
    /// A shop of the chain (`S1`, `moscow-07`).
    StoreId,
    "store"
);
name_id!(
    /// A till within a store (`T1`).
    TillId,
    "till"
);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Wraps a UUID made by the caller (this crate has no randomness).
            pub const fn new(uuid: Uuid) -> $name {
                $name(uuid)
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> $name {
                $name(uuid)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<$name, IdError> {
                Uuid::parse_str(value)
                    .map($name)
                    .map_err(|_| IdError::InvalidUuid {
                        value: value.chars().take(48).collect(),
                    })
            }
        }

        impl fmt::Display for $name {
            /// Lower-case hyphenated form.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// One cash session (shift) of one till.
    SessionId
);
uuid_id!(
    /// A receipt, made where the sale happens; every layer is idempotent on it.
    ReceiptId
);
uuid_id!(
    /// A cash-in or cash-out movement.
    MovementId
);

/// The key of one replicated document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocKey {
    /// The catalogue of a store: `catalogue/<store>`.
    Catalogue {
        /// The store.
        store: StoreId,
    },
    /// One cash session of one till: `session/<store>/<till>/<session uuid>`.
    Session {
        /// The store.
        store: StoreId,
        /// The till that writes the session.
        till: TillId,
        /// The session.
        session: SessionId,
    },
    /// The credentials of a store's cashiers and managers: `staff/<store>`. Written by the
    /// hub only; the store's tills read it to log cashiers in with no hub.
    Staff {
        /// The store.
        store: StoreId,
    },
}

impl DocKey {
    /// The document id used in storage and on the wire.
    pub fn to_doc_id(&self) -> String {
        self.to_string()
    }

    /// Parses a document id. Only the canonical form is accepted (lower-case hyphenated
    /// UUID), so `parse(id)?.to_doc_id() == id`.
    pub fn parse(doc_id: &str) -> Result<DocKey, IdError> {
        let invalid = || IdError::InvalidDocKey {
            value: doc_id.chars().take(128).collect(),
        };
        let parts: Vec<&str> = doc_id.split('/').collect();
        let key = match parts.as_slice() {
            ["catalogue", store] => DocKey::Catalogue {
                store: store.parse()?,
            },
            ["session", store, till, session] => DocKey::Session {
                store: store.parse()?,
                till: till.parse()?,
                session: session.parse()?,
            },
            ["staff", store] => DocKey::Staff {
                store: store.parse()?,
            },
            _ => return Err(invalid()),
        };
        if key.to_doc_id() != doc_id {
            return Err(invalid());
        }
        Ok(key)
    }

    /// The store the document belongs to (the unit of sharing).
    pub fn store(&self) -> &StoreId {
        match self {
            DocKey::Catalogue { store }
            | DocKey::Session { store, .. }
            | DocKey::Staff { store } => store,
        }
    }

    /// The till that owns the document, for session documents.
    pub fn till(&self) -> Option<&TillId> {
        match self {
            DocKey::Catalogue { .. } | DocKey::Staff { .. } => None,
            DocKey::Session { till, .. } => Some(till),
        }
    }
}

impl fmt::Display for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocKey::Catalogue { store } => write!(f, "catalogue/{store}"),
            DocKey::Session {
                store,
                till,
                session,
            } => write!(f, "session/{store}/{till}/{session}"),
            DocKey::Staff { store } => write!(f, "staff/{store}"),
        }
    }
}

impl FromStr for DocKey {
    type Err = IdError;
    fn from_str(doc_id: &str) -> Result<DocKey, IdError> {
        DocKey::parse(doc_id)
    }
}

impl Serialize for DocKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<DocKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        DocKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The actor id of a device of a till (`S1/T1/<device>`). `device` names the writer within
/// the till (`daemon`, `browser`) and follows the same rules as a till name.
pub fn actor_id(store: &StoreId, till: &TillId, device: &str) -> Result<ActorId, IdError> {
    validate_name("device", device)?;
    Ok(ActorId::from(
        format!("{store}/{till}/{device}").into_bytes(),
    ))
}

/// The actor id of a hub process (`hub/<name>`).
pub fn hub_actor(name: &str) -> Result<ActorId, IdError> {
    validate_name("hub", name)?;
    Ok(ActorId::from(format!("hub/{name}").into_bytes()))
}

/// Who wrote a change, read back from its actor id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActorOwner {
    /// A device of a till.
    Till {
        /// The store.
        store: StoreId,
        /// The till.
        till: TillId,
        /// The device within the till.
        device: String,
    },
    /// A hub process.
    Hub {
        /// The hub's name.
        name: String,
    },
    /// Any other actor (random ids of `fork()`, foreign tools).
    Unknown,
}

/// Reads the owner out of an actor id made by [`actor_id`] or [`hub_actor`].
pub fn parse_actor(actor: &ActorId) -> ActorOwner {
    let Ok(text) = std::str::from_utf8(actor.to_bytes()) else {
        return ActorOwner::Unknown;
    };
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        ["hub", name] if validate_name("hub", name).is_ok() => ActorOwner::Hub {
            name: (*name).to_owned(),
        },
        [store, till, device] => {
            match (store.parse(), till.parse(), validate_name("device", device)) {
                (Ok(store), Ok(till), Ok(())) => ActorOwner::Till {
                    store,
                    till,
                    device: (*device).to_owned(),
                },
                _ => ActorOwner::Unknown,
            }
        }
        _ => ActorOwner::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(s: &str) -> StoreId {
        StoreId::new(s).expect("valid store")
    }

    fn till(s: &str) -> TillId {
        TillId::new(s).expect("valid till")
    }

    #[test]
    fn names_are_validated() {
        assert!(StoreId::new("S1").is_ok());
        assert!(StoreId::new("moscow_07-b").is_ok());
        assert_eq!(StoreId::new(""), Err(IdError::Empty { kind: "store" }));
        assert!(matches!(
            TillId::new("T 1"),
            Err(IdError::InvalidChar { .. })
        ));
        assert!(matches!(
            TillId::new("T/1"),
            Err(IdError::InvalidChar { .. })
        ));
        assert!(matches!(
            TillId::new("Т1"),
            Err(IdError::InvalidChar { .. })
        ));
        assert!(TillId::new(&"x".repeat(32)).is_ok());
        assert!(matches!(
            TillId::new(&"x".repeat(33)),
            Err(IdError::TooLong { .. })
        ));
        let parsed: Result<StoreId, _> = serde_json::from_str("\"S/1\"");
        assert!(parsed.is_err());
        let ok: StoreId = serde_json::from_str("\"S1\"").expect("valid");
        assert_eq!(serde_json::to_string(&ok).ok().as_deref(), Some("\"S1\""));
    }

    #[test]
    fn doc_keys_round_trip() {
        let session = SessionId::new(Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0));
        let key = DocKey::Session {
            store: store("S1"),
            till: till("T1"),
            session,
        };
        let id = key.to_doc_id();
        assert_eq!(id, "session/S1/T1/12345678-9abc-def0-1234-56789abcdef0");
        assert_eq!(DocKey::parse(&id), Ok(key.clone()));
        assert_eq!(key.store(), &store("S1"));
        assert_eq!(key.till(), Some(&till("T1")));
        let catalogue = DocKey::Catalogue { store: store("S1") };
        assert_eq!(catalogue.to_doc_id(), "catalogue/S1");
        assert_eq!(DocKey::parse("catalogue/S1"), Ok(catalogue));
    }

    #[test]
    fn staff_doc_keys_round_trip() {
        let staff = DocKey::Staff { store: store("S1") };
        assert_eq!(staff.to_doc_id(), "staff/S1");
        assert_eq!(DocKey::parse("staff/S1"), Ok(staff.clone()));
        assert_eq!("staff/S1".parse::<DocKey>(), Ok(staff.clone()));
        assert_eq!(staff.store(), &store("S1"));
        assert_eq!(staff.till(), None);
        let json = serde_json::to_string(&staff).expect("serialize");
        assert_eq!(json, "\"staff/S1\"");
        assert_eq!(serde_json::from_str::<DocKey>(&json).ok(), Some(staff));
        for bad in [
            "staff",
            "staff/",
            "staff/S1/T1",
            "Staff/S1",
            "staff/S 1",
            "staff/S/1",
        ] {
            assert!(DocKey::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn non_canonical_doc_keys_are_refused() {
        for bad in [
            "",
            "catalogue",
            "catalogue/",
            "catalogue/S1/extra",
            "Catalogue/S1",
            "session/S1/T1",
            "session/S1/T1/not-a-uuid",
            "session/S1/T1/12345678-9ABC-DEF0-1234-56789ABCDEF0",
            "session/S1/T1/123456789abcdef0123456789abcdef0",
            "session/S 1/T1/12345678-9abc-def0-1234-56789abcdef0",
        ] {
            assert!(DocKey::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn actor_ids_are_readable_and_parse_back() {
        let actor = actor_id(&store("S1"), &till("T1"), "daemon").expect("valid device");
        assert_eq!(actor.to_bytes(), b"S1/T1/daemon");
        assert_eq!(
            parse_actor(&actor),
            ActorOwner::Till {
                store: store("S1"),
                till: till("T1"),
                device: "daemon".to_owned()
            }
        );
        let hub = hub_actor("main").expect("valid hub");
        assert_eq!(hub.to_bytes(), b"hub/main");
        assert_eq!(
            parse_actor(&hub),
            ActorOwner::Hub {
                name: "main".to_owned()
            }
        );
        assert!(actor_id(&store("S1"), &till("T1"), "a/b").is_err());
        assert!(hub_actor("").is_err());
        assert_eq!(
            parse_actor(&ActorId::from([0xffu8, 0x00, 0x12])),
            ActorOwner::Unknown
        );
        assert_eq!(
            parse_actor(&ActorId::from(b"S1/T1".to_vec())),
            ActorOwner::Unknown
        );
        assert_eq!(
            parse_actor(&ActorId::from(b"S1/T 1/x".to_vec())),
            ActorOwner::Unknown
        );
    }

    #[test]
    fn uuid_ids_display_lower_case() {
        let id: ReceiptId = "12345678-9ABC-DEF0-1234-56789ABCDEF0"
            .parse()
            .expect("valid uuid");
        assert_eq!(id.to_string(), "12345678-9abc-def0-1234-56789abcdef0");
        assert!("nope".parse::<MovementId>().is_err());
    }
}
