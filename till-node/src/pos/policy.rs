//! The till's share policy towards its browser POS (peer `pos:<store>/<till>/<device>`).
//!
//! The page holds the store's catalogue, read-only (it sells from it, the hub and the tills
//! write it), and this till's session documents that the till holds, read-write: its sales are
//! receipts appended to the open session. A session the till does not hold (one it dropped after
//! retention, or one the page made up) is refused, so an old shift never comes back to be
//! queued again. Changes the page sends must be authored by the page's own device
//! (`S/T/<device>` of its login), never by the daemon or another browser: the model's rule
//! (`crdt_model::authorship`) admits any device of the till, and this link narrows it. Nothing else is
//! visible to it — in particular not the staff document with the PIN hashes, which never leaves
//! the till.

use std::collections::BTreeSet;

use automerge::ActorId;
use crdt_model::authorship;
use crdt_model::ids::{parse_actor, ActorOwner, DocKey};
use crdt_model::{StoreId, TillId};
use sync_engine::{Access, DocId, PeerId, SharePolicy};

/// Prefix of a browser's peer id.
pub const POS_PEER_PREFIX: &str = "pos:";

/// The peer id of browser `device` of till `store`/`till`: `pos:<store>/<till>/<device>`.
pub fn pos_peer_id(store: &StoreId, till: &TillId, device: &str) -> String {
    format!("{POS_PEER_PREFIX}{store}/{till}/{device}")
}

/// What one authenticated page may see and write.
#[derive(Debug, Clone)]
pub struct PosPolicy {
    store: StoreId,
    till: TillId,
    peer: PeerId,
    device: String,
    held: BTreeSet<DocId>,
}

impl PosPolicy {
    /// The policy of till `store`/`till` towards the page authenticated as `peer`, writing as
    /// `device`; `held` lists the documents the till holds now.
    pub fn new(
        store: StoreId,
        till: TillId,
        peer: PeerId,
        device: String,
        held: BTreeSet<DocId>,
    ) -> Self {
        Self {
            store,
            till,
            peer,
            device,
            held,
        }
    }

    fn own_session(&self, doc: &DocId, key: &DocKey) -> bool {
        matches!(key, DocKey::Session { store, till, .. } if *store == self.store && *till == self.till)
            && self.held.contains(doc)
    }
}

impl SharePolicy for PosPolicy {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        if *peer != self.peer {
            return Access::None;
        }
        match DocKey::parse(doc.as_str()) {
            Ok(DocKey::Catalogue { store }) if store == self.store => Access::Read,
            Ok(key) if self.own_session(doc, &key) => Access::ReadWrite,
            _ => Access::None,
        }
    }

    fn may_author(&self, peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        if *peer != self.peer {
            return false;
        }
        let Ok(key) = DocKey::parse(doc.as_str()) else {
            return false;
        };
        if !self.own_session(doc, &key) {
            return false;
        }
        // The model lets any device of this till write the session; the page relays only
        // its own changes, never the daemon's or another browser's.
        let author = parse_actor(actor);
        authorship::may_write(&author, &key).is_ok()
            && matches!(author, ActorOwner::Till { device, .. } if device == self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_model::ids::{actor_id, hub_actor};

    fn ids() -> (StoreId, TillId) {
        ("S1".parse().expect("store"), "T1".parse().expect("till"))
    }

    fn policy() -> (PosPolicy, PeerId) {
        let (store, till) = ids();
        let peer = PeerId::new(pos_peer_id(&store, &till, "wabc")).expect("peer");
        let held = [doc("catalogue/S1"), doc(SESSION)].into_iter().collect();
        (
            PosPolicy::new(store, till, peer.clone(), "wabc".into(), held),
            peer,
        )
    }

    fn doc(id: &str) -> DocId {
        DocId::new(id).expect("doc id")
    }

    const SESSION: &str = "session/S1/T1/0190f5e2-6d1c-7a3b-8c4d-5e6f7a8b9c0d";

    #[test]
    fn the_page_reads_the_catalogue_and_writes_its_tills_sessions_only() {
        let (policy, peer) = policy();
        assert_eq!(policy.access(&peer, &doc("catalogue/S1")), Access::Read);
        assert_eq!(policy.access(&peer, &doc(SESSION)), Access::ReadWrite);
        assert_eq!(policy.access(&peer, &doc("catalogue/S2")), Access::None);
        assert_eq!(
            policy.access(
                &peer,
                &doc("session/S1/T2/0190f5e2-6d1c-7a3b-8c4d-5e6f7a8b9c0d")
            ),
            Access::None
        );
        assert_eq!(policy.access(&peer, &doc("staff/S1")), Access::None);
        assert_eq!(
            policy.access(
                &peer,
                &doc("session/S1/T1/0190f5e2-6d1c-7a3b-8c4d-000000000000")
            ),
            Access::None,
            "a session the till does not hold (dropped after retention) is refused"
        );
        let other = PeerId::new("pos:S1/T1/wother").expect("peer");
        assert_eq!(policy.access(&other, &doc(SESSION)), Access::None);
    }

    #[test]
    fn session_changes_must_come_from_the_pages_own_device() {
        let (policy, peer) = policy();
        let (store, till) = ids();
        let page = actor_id(&store, &till, "wabc").expect("actor");
        let daemon = actor_id(&store, &till, "node-1a2b3c4d").expect("actor");
        let other_page = actor_id(&store, &till, "wother").expect("actor");
        assert!(!policy.may_author(&peer, &doc(SESSION), &daemon));
        assert!(!policy.may_author(&peer, &doc(SESSION), &other_page));
        let other_till = actor_id(&store, &"T2".parse().expect("till"), "wabc").expect("actor");
        let hub = hub_actor("hub").expect("actor");
        assert!(policy.may_author(&peer, &doc(SESSION), &page));
        assert!(!policy.may_author(&peer, &doc(SESSION), &other_till));
        assert!(!policy.may_author(&peer, &doc(SESSION), &hub));
        assert!(!policy.may_author(&peer, &doc("catalogue/S1"), &page));
    }
}
