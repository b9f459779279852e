//! Share policy: which documents a peer may see and write, and as which authors.
//!
//! The same trait serves both ends of a round. On a server it says what an authenticated client
//! may do (a till sees its own store only); on a client it says what the server may do to the
//! client's copies (which offered documents to accept, whose changes to take). Access is checked
//! for every document an envelope mentions *before* anything is applied; one refused document
//! refuses the whole envelope.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use automerge::ActorId;

use crate::id::{DocId, PeerId};

/// What a peer may do with one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// The peer may not learn that the document exists.
    None,
    /// The peer receives the document but its changes are refused.
    Read,
    /// The peer receives the document and may send changes (subject to [`SharePolicy::may_author`]).
    ReadWrite,
}

impl Access {
    /// True for [`Access::Read`] and [`Access::ReadWrite`].
    pub fn can_read(self) -> bool {
        self != Access::None
    }

    /// True for [`Access::ReadWrite`].
    pub fn can_write(self) -> bool {
        self == Access::ReadWrite
    }
}

/// Decides what a peer may do with a document on this replica.
pub trait SharePolicy {
    /// The access `peer` has to `doc`.
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access;

    /// Whether `peer` may bring into `doc` a change authored by `actor` that this replica does
    /// not have yet. Changes the replica already holds are never checked, so a peer may relay
    /// changes it received from others.
    fn may_author(&self, peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        let _ = (peer, doc, actor);
        true
    }
}

impl<P: SharePolicy + ?Sized> SharePolicy for &P {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        (**self).access(peer, doc)
    }

    fn may_author(&self, peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        (**self).may_author(peer, doc, actor)
    }
}

impl<P: SharePolicy + ?Sized> SharePolicy for std::sync::Arc<P> {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        (**self).access(peer, doc)
    }

    fn may_author(&self, peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        (**self).may_author(peer, doc, actor)
    }
}

/// Every peer may read and write every document (tests, and a till trusting its own hub).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl SharePolicy for AllowAll {
    fn access(&self, _peer: &PeerId, _doc: &DocId) -> Access {
        Access::ReadWrite
    }
}

/// A policy written as a table: grants by document-id prefix per peer, and optional author
/// restrictions per peer. Anything not granted is [`Access::None`].
///
/// The longest matching prefix wins, so `grant(p, "store/01/", Read)` followed by
/// `grant(p, "store/01/session/till-03/", ReadWrite)` reads naturally.
#[derive(Clone, Default)]
pub struct PolicyTable {
    grants: BTreeMap<PeerId, Vec<(String, Access)>>,
    authors: BTreeMap<PeerId, BTreeSet<ActorId>>,
}

impl PolicyTable {
    /// An empty table: nobody may do anything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants `peer` `access` to every document whose id starts with `prefix` (`""` = all).
    pub fn grant(mut self, peer: &PeerId, prefix: &str, access: Access) -> Self {
        let grants = self.grants.entry(peer.clone()).or_default();
        grants.retain(|(existing, _)| existing != prefix);
        grants.push((prefix.to_owned(), access));
        self
    }

    /// Restricts `peer` to bringing changes authored by the listed actors (may be called again
    /// to add actors). Peers never restricted may bring changes of any author.
    pub fn allow_authors(
        mut self,
        peer: &PeerId,
        actors: impl IntoIterator<Item = ActorId>,
    ) -> Self {
        self.authors.entry(peer.clone()).or_default().extend(actors);
        self
    }
}

impl SharePolicy for PolicyTable {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        self.grants
            .get(peer)
            .and_then(|grants| {
                grants
                    .iter()
                    .filter(|(prefix, _)| doc.as_str().starts_with(prefix.as_str()))
                    .max_by_key(|(prefix, _)| prefix.len())
            })
            .map_or(Access::None, |(_, access)| *access)
    }

    fn may_author(&self, peer: &PeerId, _doc: &DocId, actor: &ActorId) -> bool {
        self.authors
            .get(peer)
            .is_none_or(|allowed| allowed.contains(actor))
    }
}

impl fmt::Debug for PolicyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyTable")
            .field("grants", &self.grants)
            .field("restricted_peers", &self.authors.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> PeerId {
        PeerId::new(s).expect("valid peer")
    }

    fn doc(s: &str) -> DocId {
        DocId::new(s).expect("valid doc")
    }

    #[test]
    fn longest_prefix_wins_and_default_is_none() {
        let till = peer("till-03");
        let policy = PolicyTable::new()
            .grant(&till, "store/01/", Access::Read)
            .grant(&till, "store/01/session/till-03/", Access::ReadWrite);
        assert_eq!(
            policy.access(&till, &doc("store/01/catalogue")),
            Access::Read
        );
        assert_eq!(
            policy.access(&till, &doc("store/01/session/till-03/day-1")),
            Access::ReadWrite
        );
        assert_eq!(
            policy.access(&till, &doc("store/02/catalogue")),
            Access::None
        );
        assert_eq!(
            policy.access(&peer("till-04"), &doc("store/01/catalogue")),
            Access::None
        );
    }

    #[test]
    fn author_restrictions_apply_only_to_restricted_peers() {
        let till = peer("till-03");
        let own = ActorId::from(b"till-03".as_slice());
        let other = ActorId::from(b"till-04".as_slice());
        let policy = PolicyTable::new().allow_authors(&till, [own.clone()]);
        let d = doc("d");
        assert!(policy.may_author(&till, &d, &own));
        assert!(!policy.may_author(&till, &d, &other));
        assert!(policy.may_author(&peer("hub"), &d, &other));
    }
}
