//! The till's side of the share policy: what it accepts from the hub.
//!
//! The hub (peer `hub`) may read and write the store's catalogue (`catalogue/<store>`), the
//! store's staff credentials (`staff/<store>`) and this till's own session documents
//! (`session/<store>/<till>/<uuid>`); nothing else. Authorship is checked per change the till
//! does not hold yet, by [`crdt_model::authorship`]'s rule: a session change must be authored
//! by a device of this till, a catalogue change by a till of this store or by a hub process, a
//! staff change by a hub process only (the hub's policy makes it read-only for tills). A
//! forged "hub" change inside a session, a till-authored staff change, or another store's
//! document refuses the whole reply.
//!
//! Retention: the till drops sealed sessions after `--retention-days`, but the hub keeps them and
//! offers them again to a till that does not list them. Session ids are UUIDv7 (time-ordered),
//! so an offer of a session older than the retention window is declined instead of being
//! downloaded and dropped again every hour. Documents the till still holds are always synced,
//! however old: an old session that never reached the hub must still get there.

use std::collections::BTreeSet;

use automerge::ActorId;
use crdt_model::authorship;
use crdt_model::ids::DocKey;
use crdt_model::{StoreId, TillId};
use sync_engine::{Access, DocId, PeerId, SharePolicy};

/// Peer id of the hub.
pub const HUB_PEER: &str = "hub";

/// The policy of one till towards the hub, for one step of a sync round.
#[derive(Debug, Clone)]
pub struct TillPolicy {
    store: StoreId,
    till: TillId,
    /// Offered sessions created before this instant (Unix ms) are declined.
    retired_before_ms: u64,
    /// Documents the till holds now (always shared, whatever their age).
    held: BTreeSet<DocId>,
}

impl TillPolicy {
    /// The policy of till `store`/`till`; `held` lists the documents it holds.
    pub fn new(
        store: StoreId,
        till: TillId,
        retired_before_ms: u64,
        held: BTreeSet<DocId>,
    ) -> Self {
        Self {
            store,
            till,
            retired_before_ms,
            held,
        }
    }

    /// The till's peer id on the wire: `till:<store>/<till>`.
    pub fn peer_id(store: &StoreId, till: &TillId) -> String {
        format!("till:{store}/{till}")
    }

    fn session_is_retired(&self, doc: &DocId, session: &crdt_model::SessionId) -> bool {
        if self.held.contains(doc) {
            return false;
        }
        session
            .as_uuid()
            .get_timestamp()
            .map(|ts| {
                let (seconds, nanos) = ts.to_unix();
                seconds
                    .saturating_mul(1000)
                    .saturating_add(u64::from(nanos / 1_000_000))
            })
            .is_some_and(|created_ms| created_ms < self.retired_before_ms)
    }
}

impl SharePolicy for TillPolicy {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        if peer.as_str() != HUB_PEER {
            return Access::None;
        }
        match DocKey::parse(doc.as_str()) {
            Ok(DocKey::Catalogue { store }) if store == self.store => Access::ReadWrite,
            // ReadWrite so that the till accepts the hub's changes; the till never writes it.
            Ok(DocKey::Staff { store }) if store == self.store => Access::ReadWrite,
            Ok(DocKey::Session {
                store,
                till,
                session,
            }) if store == self.store && till == self.till => {
                if self.session_is_retired(doc, &session) {
                    Access::None
                } else {
                    Access::ReadWrite
                }
            }
            _ => Access::None,
        }
    }

    fn may_author(&self, peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        if peer.as_str() != HUB_PEER {
            return false;
        }
        let Ok(key) = DocKey::parse(doc.as_str()) else {
            return false;
        };
        // This till's documents only (another store's staff, say, is refused even from a hub
        // process); who may write them is the model's rule.
        let ours = *key.store() == self.store && key.till().is_none_or(|till| *till == self.till);
        ours && authorship::may_write_actor(actor, &key).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_model::ids::{actor_id, hub_actor};
    use uuid::Uuid;

    fn policy(held: &[&str]) -> TillPolicy {
        TillPolicy::new(
            StoreId::new("S1").expect("store"),
            TillId::new("T1").expect("till"),
            1_700_000_000_000,
            held.iter().map(|d| DocId::new(*d).expect("doc")).collect(),
        )
    }

    fn doc(s: &str) -> DocId {
        DocId::new(s).expect("doc")
    }

    fn hub() -> PeerId {
        PeerId::new(HUB_PEER).expect("peer")
    }

    fn v7_session(ms: u64) -> String {
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, 0);
        format!("session/S1/T1/{}", Uuid::new_v7(ts))
    }

    #[test]
    fn scope_is_own_catalogue_and_own_sessions() {
        let p = policy(&[]);
        let own = format!("session/S1/T1/{}", Uuid::from_u128(7));
        assert_eq!(p.access(&hub(), &doc("catalogue/S1")), Access::ReadWrite);
        assert_eq!(p.access(&hub(), &doc(&own)), Access::ReadWrite);
        assert_eq!(p.access(&hub(), &doc("catalogue/S2")), Access::None);
        let other_till = format!("session/S1/T2/{}", Uuid::from_u128(7));
        assert_eq!(p.access(&hub(), &doc(&other_till)), Access::None);
        assert_eq!(p.access(&hub(), &doc("whatever")), Access::None);
        let stranger = PeerId::new("till:S1/T2").expect("peer");
        assert_eq!(p.access(&stranger, &doc("catalogue/S1")), Access::None);
    }

    #[test]
    fn authors_are_checked_per_document_kind() {
        let p = policy(&[]);
        let s1 = StoreId::new("S1").expect("store");
        let s2 = StoreId::new("S2").expect("store");
        let t1 = TillId::new("T1").expect("till");
        let t2 = TillId::new("T2").expect("till");
        let own = actor_id(&s1, &t1, "node").expect("actor");
        let sibling = actor_id(&s1, &t2, "node").expect("actor");
        let foreign = actor_id(&s2, &t1, "node").expect("actor");
        let hub_writer = hub_actor("hub").expect("actor");
        let session = doc(&format!("session/S1/T1/{}", Uuid::from_u128(7)));
        let catalogue = doc("catalogue/S1");
        assert!(p.may_author(&hub(), &session, &own));
        assert!(!p.may_author(&hub(), &session, &sibling));
        assert!(!p.may_author(&hub(), &session, &hub_writer));
        assert!(p.may_author(&hub(), &catalogue, &hub_writer));
        assert!(p.may_author(&hub(), &catalogue, &sibling));
        assert!(!p.may_author(&hub(), &catalogue, &foreign));
        assert!(!p.may_author(&hub(), &catalogue, &ActorId::from(b"random".as_slice())));
    }

    #[test]
    fn staff_of_its_own_store_comes_from_hub_actors_only() {
        let p = policy(&[]);
        let staff = doc("staff/S1");
        assert_eq!(p.access(&hub(), &staff), Access::ReadWrite);
        assert_eq!(p.access(&hub(), &doc("staff/S2")), Access::None);
        let stranger = PeerId::new("till:S1/T2").expect("peer");
        assert_eq!(p.access(&stranger, &staff), Access::None);

        let s1 = StoreId::new("S1").expect("store");
        let t1 = TillId::new("T1").expect("till");
        let t2 = TillId::new("T2").expect("till");
        let hub_writer = hub_actor("hub").expect("actor");
        assert!(p.may_author(&hub(), &staff, &hub_writer));
        for till_actor in [
            actor_id(&s1, &t1, "node").expect("actor"),
            actor_id(&s1, &t2, "node").expect("actor"),
        ] {
            assert!(!p.may_author(&hub(), &staff, &till_actor));
        }
        assert!(!p.may_author(&hub(), &staff, &ActorId::from(b"random".as_slice())));
        assert!(!p.may_author(&hub(), &doc("staff/S2"), &hub_writer));
        assert!(!p.may_author(&stranger, &staff, &hub_writer));
    }

    #[test]
    fn old_sessions_are_declined_unless_held() {
        let old = v7_session(1_600_000_000_000);
        let recent = v7_session(1_750_000_000_000);
        let p = policy(&[]);
        assert_eq!(p.access(&hub(), &doc(&old)), Access::None);
        assert_eq!(p.access(&hub(), &doc(&recent)), Access::ReadWrite);
        let p = policy(&[old.as_str()]);
        assert_eq!(p.access(&hub(), &doc(&old)), Access::ReadWrite);
    }
}
