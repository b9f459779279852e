//! The browser's side of the share policy: what it accepts from its till.
//!
//! Mirrors `till-node/src/policy.rs` one hop down. The only peer is the till this page logged
//! into (`till:<store>/<till>`). It may send the store's catalogue and this till's session
//! documents (both [`Access::ReadWrite`] here, meaning the till may send changes); anything
//! else is [`Access::None`], and one such document refuses the whole reply. Authorship is
//! checked per change the browser does not hold yet, by [`crdt_model::authorship`]'s rule: a
//! catalogue change must come from a hub process or a device of this store's tills, a session
//! change from a device of this till (its daemon or a browser).

use automerge::ActorId;
use crdt_model::authorship;
use crdt_model::ids::DocKey;
use crdt_model::{StoreId, TillId};
use sync_engine::{Access, DocId, PeerId, SharePolicy};

/// What the browser of one till accepts from that till.
#[derive(Debug, Clone)]
pub struct BrowserPolicy {
    store: StoreId,
    till: TillId,
    till_peer: PeerId,
}

impl BrowserPolicy {
    /// The policy of a browser selling on `store`/`till`, syncing with `till_peer`.
    pub fn new(store: StoreId, till: TillId, till_peer: PeerId) -> Self {
        Self {
            store,
            till,
            till_peer,
        }
    }

    /// True for documents this browser may hold: its store's catalogue and its till's
    /// sessions.
    pub fn in_scope(&self, doc: &DocId) -> bool {
        match DocKey::parse(doc.as_str()) {
            Ok(DocKey::Catalogue { store }) => store == self.store,
            Ok(DocKey::Session { store, till, .. }) => store == self.store && till == self.till,
            // Anything else (staff records with PIN hashes, unknown kinds) stays on the till.
            _ => false,
        }
    }
}

impl SharePolicy for BrowserPolicy {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        if peer != &self.till_peer || !self.in_scope(doc) {
            return Access::None;
        }
        Access::ReadWrite
    }

    fn may_author(&self, peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        if peer != &self.till_peer || !self.in_scope(doc) {
            return false;
        }
        DocKey::parse(doc.as_str())
            .is_ok_and(|key| authorship::may_write_actor(actor, &key).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_model::ids::{actor_id, hub_actor};

    fn policy() -> BrowserPolicy {
        BrowserPolicy::new(
            StoreId::new("S1").expect("store"),
            TillId::new("T1").expect("till"),
            PeerId::new("till:S1/T1").expect("peer"),
        )
    }

    fn doc(s: &str) -> DocId {
        DocId::new(s).expect("doc")
    }

    fn till() -> PeerId {
        PeerId::new("till:S1/T1").expect("peer")
    }

    const SESSION: &str = "session/S1/T1/0195a000-0000-7000-8000-000000000001";

    #[test]
    fn scope_is_own_catalogue_and_own_till_sessions_from_own_till_only() {
        let p = policy();
        assert_eq!(p.access(&till(), &doc("catalogue/S1")), Access::ReadWrite);
        assert_eq!(p.access(&till(), &doc(SESSION)), Access::ReadWrite);
        assert_eq!(p.access(&till(), &doc("catalogue/S2")), Access::None);
        let sibling = "session/S1/T2/0195a000-0000-7000-8000-000000000001";
        assert_eq!(p.access(&till(), &doc(sibling)), Access::None);
        assert_eq!(p.access(&till(), &doc("whatever")), Access::None);
        let upper = "session/S1/T1/0195A000-0000-7000-8000-000000000001";
        assert_eq!(p.access(&till(), &doc(upper)), Access::None);
        for stranger in ["hub", "till:S1/T2", "pos:S1/T1/w000000000000"] {
            let stranger = PeerId::new(stranger).expect("peer");
            assert_eq!(p.access(&stranger, &doc("catalogue/S1")), Access::None);
        }
    }

    #[test]
    fn authors_are_checked_per_document_kind() {
        let p = policy();
        let s1 = StoreId::new("S1").expect("store");
        let s2 = StoreId::new("S2").expect("store");
        let t1 = TillId::new("T1").expect("till");
        let t2 = TillId::new("T2").expect("till");
        let daemon = actor_id(&s1, &t1, "node").expect("actor");
        let browser = actor_id(&s1, &t1, "w0123456789ab").expect("actor");
        let sibling = actor_id(&s1, &t2, "node").expect("actor");
        let foreign = actor_id(&s2, &t1, "node").expect("actor");
        let hub = hub_actor("hub").expect("actor");
        let session = doc(SESSION);
        let catalogue = doc("catalogue/S1");
        assert!(p.may_author(&till(), &session, &daemon));
        assert!(p.may_author(&till(), &session, &browser));
        assert!(!p.may_author(&till(), &session, &sibling));
        assert!(!p.may_author(&till(), &session, &hub));
        assert!(p.may_author(&till(), &catalogue, &hub));
        assert!(p.may_author(&till(), &catalogue, &sibling));
        assert!(!p.may_author(&till(), &catalogue, &foreign));
        let random = ActorId::from(b"random".as_slice());
        assert!(!p.may_author(&till(), &catalogue, &random));
        let hub_peer = PeerId::new("hub").expect("peer");
        assert!(!p.may_author(&hub_peer, &catalogue, &hub));
        assert!(!p.may_author(&till(), &doc("nonsense"), &hub));
    }
}
