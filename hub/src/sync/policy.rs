//! The hub's share policy for one authenticated till, and the till's peer identity.
//!
//! A till `S/T` (peer id `till:S/T`) may read and write `catalogue/S` and its own session
//! documents `session/S/T/<uuid>`, and only read `staff/S` (its store's cashier and manager
//! credentials, written by the hub alone: a till's message carrying changes to it refuses
//! the round, 403); every other document does not exist for it (the whole envelope is
//! refused with 403 if it names one). Authorship is [`crdt_model::authorship`]'s rule (session
//! changes from a device of till `S/T`, catalogue changes from a till of store `S` or a hub,
//! staff changes from no till at all). Changes the hub already holds are never checked
//! (a till relays the hub's own catalogue changes back, for instance).

use crdt_model::authorship;
use crdt_model::{DocKey, StoreId, TillId};
use sync_engine::{Access, DocId, PeerId, SharePolicy};
use thiserror::Error;

/// Prefix of a till's peer id.
const TILL_PEER_PREFIX: &str = "till:";

/// The store and till of an authenticated device, with its peer id `till:<store>/<till>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TillPeer {
    /// The till's store.
    pub store: StoreId,
    /// The till.
    pub till: TillId,
    /// `till:<store>/<till>`.
    pub peer: PeerId,
}

/// A store/till pair or peer id that does not name a till.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a till peer: {0}")]
pub struct NotATill(pub String);

impl TillPeer {
    /// The peer of till `till` of `store`.
    pub fn new(store: &str, till: &str) -> Result<TillPeer, NotATill> {
        let invalid = || NotATill(format!("{store}/{till}").chars().take(80).collect());
        let store: StoreId = store.parse().map_err(|_| invalid())?;
        let till: TillId = till.parse().map_err(|_| invalid())?;
        let peer =
            PeerId::new(format!("{TILL_PEER_PREFIX}{store}/{till}")).map_err(|_| invalid())?;
        Ok(TillPeer { store, till, peer })
    }

    /// Reads a peer id of the form `till:<store>/<till>` back.
    pub fn parse(peer: &str) -> Result<TillPeer, NotATill> {
        let invalid = || NotATill(peer.chars().take(80).collect());
        let rest = peer.strip_prefix(TILL_PEER_PREFIX).ok_or_else(invalid)?;
        let (store, till) = rest.split_once('/').ok_or_else(invalid)?;
        TillPeer::new(store, till).map_err(|_| invalid())
    }
}

/// What one authenticated till may do on the hub (see the module doc).
#[derive(Debug, Clone)]
pub struct TillPolicy {
    till: TillPeer,
}

impl TillPolicy {
    /// The policy for `till`.
    pub fn new(till: TillPeer) -> TillPolicy {
        TillPolicy { till }
    }

    /// The till this policy is for.
    pub fn till(&self) -> &TillPeer {
        &self.till
    }

    fn key(&self, peer: &PeerId, doc: &DocId) -> Option<DocKey> {
        if peer != &self.till.peer {
            return None;
        }
        DocKey::parse(doc.as_str()).ok()
    }
}

impl SharePolicy for TillPolicy {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        match self.key(peer, doc) {
            Some(DocKey::Catalogue { store }) if store == self.till.store => Access::ReadWrite,
            Some(DocKey::Session { store, till, .. })
                if store == self.till.store && till == self.till.till =>
            {
                Access::ReadWrite
            }
            Some(DocKey::Staff { store }) if store == self.till.store => Access::Read,
            _ => Access::None,
        }
    }

    fn may_author(&self, peer: &PeerId, doc: &DocId, actor: &automerge::ActorId) -> bool {
        // Staff is read-only for tills, so only the catalogue and the till's own sessions get
        // here; who may write them is the model's rule.
        if !self.access(peer, doc).can_write() {
            return false;
        }
        self.key(peer, doc)
            .is_some_and(|key| authorship::may_write_actor(actor, &key).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_model::ids::{actor_id, hub_actor};

    const SESSION: &str = "session/S1/T1/0b9c7d3e-8f41-4a5b-9c6d-7e8f9a0b1c2d";

    fn doc(id: &str) -> DocId {
        DocId::new(id).expect("doc id")
    }

    #[test]
    fn peer_ids_round_trip() {
        let till = TillPeer::new("S1", "T1").expect("till");
        assert_eq!(till.peer.as_str(), "till:S1/T1");
        assert_eq!(TillPeer::parse("till:S1/T1"), Ok(till));
        assert!(TillPeer::parse("hub").is_err());
        assert!(TillPeer::parse("till:S1").is_err());
        assert!(TillPeer::parse("till:S 1/T1").is_err());
    }

    #[test]
    fn a_till_sees_its_catalogue_and_its_own_sessions_only() {
        let till = TillPeer::new("S1", "T1").expect("till");
        let peer = till.peer.clone();
        let policy = TillPolicy::new(till);
        assert_eq!(
            policy.access(&peer, &doc("catalogue/S1")),
            Access::ReadWrite
        );
        assert_eq!(policy.access(&peer, &doc(SESSION)), Access::ReadWrite);
        let other_till = SESSION.replace("/T1/", "/T2/");
        let other_store = SESSION.replace("/S1/", "/S2/");
        for id in [
            "catalogue/S2",
            other_till.as_str(),
            other_store.as_str(),
            "bogus",
        ] {
            assert_eq!(policy.access(&peer, &doc(id)), Access::None, "{id}");
        }
        let stranger = TillPeer::new("S1", "T2").expect("till").peer;
        assert_eq!(policy.access(&stranger, &doc("catalogue/S1")), Access::None);
    }

    #[test]
    fn a_till_reads_its_store_staff_document_and_writes_no_staff_document() {
        let till = TillPeer::new("S1", "T1").expect("till");
        let peer = till.peer.clone();
        let policy = TillPolicy::new(till);
        let staff = doc("staff/S1");
        assert_eq!(policy.access(&peer, &staff), Access::Read);
        assert_eq!(policy.access(&peer, &doc("staff/S2")), Access::None);
        let stranger = TillPeer::new("S2", "T1").expect("till").peer;
        assert_eq!(policy.access(&stranger, &staff), Access::None);
        let own =
            actor_id(&"S1".parse().expect("s"), &"T1".parse().expect("t"), "node").expect("actor");
        assert!(!policy.may_author(&peer, &staff, &own));
        assert!(!policy.may_author(&peer, &staff, &hub_actor("hub").expect("hub")));
    }

    #[test]
    fn authorship_follows_the_contract() {
        let till = TillPeer::new("S1", "T1").expect("till");
        let peer = till.peer.clone();
        let policy = TillPolicy::new(till);
        let own =
            actor_id(&"S1".parse().expect("s"), &"T1".parse().expect("t"), "node").expect("actor");
        let browser =
            actor_id(&"S1".parse().expect("s"), &"T1".parse().expect("t"), "web").expect("actor");
        let sibling =
            actor_id(&"S1".parse().expect("s"), &"T2".parse().expect("t"), "node").expect("actor");
        let hub = hub_actor("hub").expect("hub");
        let random = automerge::ActorId::random();
        let session = doc(SESSION);
        let catalogue = doc("catalogue/S1");
        assert!(policy.may_author(&peer, &session, &own));
        assert!(policy.may_author(&peer, &session, &browser));
        assert!(!policy.may_author(&peer, &session, &sibling));
        assert!(!policy.may_author(&peer, &session, &hub));
        assert!(!policy.may_author(&peer, &session, &random));
        assert!(policy.may_author(&peer, &catalogue, &sibling));
        assert!(policy.may_author(&peer, &catalogue, &hub));
        assert!(!policy.may_author(&peer, &catalogue, &random));
    }
}
