//! Who may write which document: the one authorship rule per document kind, checked by
//! the hub, the till and the browser page on every change they do not hold yet.
//!
//! Every Automerge change carries its actor id, which names its writer ([`ActorOwner`]):
//! a device of a till (`S1/T1/<device>`: the till's daemon or one of its browser pages) or
//! a hub process (`hub/<name>`). The rule depends only on the document and the writer:
//!
//! | document                  | may be written by                                |
//! |---------------------------|--------------------------------------------------|
//! | `catalogue/<S>`           | any hub process, any device of a till of store S |
//! | `session/<S>/<T>/<uuid>`  | any device of till S/T (daemon or page)          |
//! | `staff/<S>`               | hub processes only (the PIN hashes)              |
//!
//! Actors of no known shape (random ids of `fork()`, foreign tools) write nothing. Which
//! documents a peer sees, whether it may send changes to them, and whether it may relay
//! changes other writers made (a page sends only its own) are each sync link's business:
//! the share policies in the hub, the till and the page apply them on top of this rule.

use automerge::ActorId;
use thiserror::Error;

use crate::ids::{parse_actor, ActorOwner, DocKey};

/// A change whose writer may not write the document it changes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{author} may not write {doc}: {rule}")]
pub struct NotAnAuthor {
    /// The document.
    pub doc: String,
    /// The writer, as read from the actor id.
    pub author: String,
    /// The rule the writer fails.
    pub rule: &'static str,
}

/// Checks that `author` may write `doc` (the table in the module doc).
pub fn may_write(author: &ActorOwner, doc: &DocKey) -> Result<(), NotAnAuthor> {
    let refused = |rule: &'static str| NotAnAuthor {
        doc: doc.to_doc_id(),
        author: describe(author),
        rule,
    };
    match (doc, author) {
        (DocKey::Catalogue { .. }, ActorOwner::Hub { .. }) => Ok(()),
        (DocKey::Catalogue { store }, ActorOwner::Till { store: own, .. }) if own == store => {
            Ok(())
        }
        (DocKey::Catalogue { .. }, _) => Err(refused(
            "a catalogue is written by the hub and its own store's tills",
        )),
        (
            DocKey::Session { store, till, .. },
            ActorOwner::Till {
                store: own_store,
                till: own_till,
                ..
            },
        ) if own_store == store && own_till == till => Ok(()),
        (DocKey::Session { .. }, _) => Err(refused(
            "a session is written by the devices of its own till",
        )),
        (DocKey::Staff { .. }, ActorOwner::Hub { .. }) => Ok(()),
        (DocKey::Staff { .. }, _) => Err(refused("staff credentials are written by the hub")),
    }
}

/// [`may_write`] for a change's actor id.
pub fn may_write_actor(actor: &ActorId, doc: &DocKey) -> Result<(), NotAnAuthor> {
    may_write(&parse_actor(actor), doc)
}

/// The writer as its actor id reads (`S1/T1/node`, `hub/main`).
fn describe(author: &ActorOwner) -> String {
    match author {
        ActorOwner::Till {
            store,
            till,
            device,
        } => format!("{store}/{till}/{device}"),
        ActorOwner::Hub { name } => format!("hub/{name}"),
        ActorOwner::Unknown => "an unknown actor".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{actor_id, hub_actor};
    use crate::{SessionId, StoreId, TillId};
    use uuid::Uuid;

    fn store(name: &str) -> StoreId {
        name.parse().expect("store")
    }

    fn till(name: &str) -> TillId {
        name.parse().expect("till")
    }

    fn device(s: &str, t: &str, d: &str) -> ActorId {
        actor_id(&store(s), &till(t), d).expect("actor")
    }

    fn session(s: &str, t: &str) -> DocKey {
        DocKey::Session {
            store: store(s),
            till: till(t),
            session: SessionId::new(Uuid::from_u128(7)),
        }
    }

    #[test]
    fn a_session_is_written_by_its_own_tills_devices_only() {
        let doc = session("S1", "T1");
        assert_eq!(may_write_actor(&device("S1", "T1", "node"), &doc), Ok(()));
        assert_eq!(may_write_actor(&device("S1", "T1", "wabc"), &doc), Ok(()));
        for other in [
            device("S1", "T2", "node"),
            device("S2", "T1", "node"),
            hub_actor("hub").expect("hub"),
            ActorId::from(b"random".as_slice()),
        ] {
            assert!(may_write_actor(&other, &doc).is_err(), "{other}");
        }
    }

    #[test]
    fn a_catalogue_is_written_by_hubs_and_its_stores_tills() {
        let doc = DocKey::Catalogue { store: store("S1") };
        assert_eq!(
            may_write_actor(&hub_actor("hub").expect("hub"), &doc),
            Ok(())
        );
        assert_eq!(may_write_actor(&device("S1", "T2", "node"), &doc), Ok(()));
        let foreign = may_write_actor(&device("S2", "T1", "node"), &doc);
        assert_eq!(
            foreign.map_err(|e| e.to_string()),
            Err(
                "S2/T1/node may not write catalogue/S1: a catalogue is written by the hub and \
                 its own store's tills"
                    .to_owned()
            )
        );
        assert!(may_write_actor(&ActorId::from(b"random".as_slice()), &doc).is_err());
    }

    #[test]
    fn staff_is_written_by_hubs_only() {
        let doc = DocKey::Staff { store: store("S1") };
        assert_eq!(
            may_write_actor(&hub_actor("main").expect("hub"), &doc),
            Ok(())
        );
        assert!(may_write_actor(&device("S1", "T1", "node"), &doc).is_err());
        assert!(may_write(&ActorOwner::Unknown, &doc).is_err());
    }
}
