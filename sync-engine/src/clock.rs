//! Version vectors: `{actor → highest change sequence number}` for one document.
//!
//! Each Automerge actor's changes form a contiguous chain `1..=seq`, so a version vector names a
//! document's change set exactly and is tiny to exchange. Two vectors tell which changes one
//! replica lacks ([`VersionVector::missing_from`]) in words support can read: "till-03 seq
//! 201..=217". Actors are shown as text when their bytes are readable UTF-8 (we give tills
//! actor ids like `till-03`) and as `hex:<hex>` otherwise (Automerge's random actors).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use automerge::{ActorId, AutoCommit, Automerge, ChangeHash};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Prefix that marks an actor label as hex; readable labels never start with it.
const HEX_PREFIX: &str = "hex:";

/// An Automerge actor with a readable label (`till-03`, or `hex:0a1b…` for binary ids).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Actor(ActorId);

impl Actor {
    /// Wraps an Automerge actor id.
    pub fn new(id: ActorId) -> Self {
        Self(id)
    }

    /// The Automerge actor id.
    pub fn id(&self) -> &ActorId {
        &self.0
    }

    /// The raw actor bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The label as text when the bytes are printable UTF-8 that cannot be mistaken for hex.
    fn readable(&self) -> Option<&str> {
        let text = std::str::from_utf8(self.as_bytes()).ok()?;
        let printable = !text.is_empty() && !text.chars().any(char::is_control);
        (printable && !text.starts_with(HEX_PREFIX)).then_some(text)
    }
}

impl From<ActorId> for Actor {
    fn from(id: ActorId) -> Self {
        Self(id)
    }
}

impl From<&ActorId> for Actor {
    fn from(id: &ActorId) -> Self {
        Self(id.clone())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.readable() {
            Some(text) => f.write_str(text),
            None => write!(f, "{HEX_PREFIX}{}", self.0.to_hex_string()),
        }
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actor({self})")
    }
}

/// An actor label that is neither readable text nor valid `hex:` notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid actor label {0:?}")]
pub struct InvalidActorLabel(String);

impl FromStr for Actor {
    type Err = InvalidActorLabel;

    fn from_str(label: &str) -> Result<Self, Self::Err> {
        match label.strip_prefix(HEX_PREFIX) {
            Some(hex) => ActorId::from_str(hex)
                .map(Self)
                .map_err(|_| InvalidActorLabel(label.to_owned())),
            None if label.is_empty() => Err(InvalidActorLabel(String::new())),
            None => Ok(Self(ActorId::from(label.as_bytes()))),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let label = String::deserialize(deserializer)?;
        label.parse().map_err(serde::de::Error::custom)
    }
}

/// Changes `from_seq..=to_seq` of one actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRange {
    /// Whose changes.
    pub actor: Actor,
    /// First missing sequence number (1-based, inclusive).
    pub from_seq: u64,
    /// Last missing sequence number (inclusive).
    pub to_seq: u64,
}

impl MissingRange {
    /// How many changes the range holds.
    pub fn len(&self) -> u64 {
        self.to_seq.saturating_sub(self.from_seq).saturating_add(1)
    }

    /// Always false: a range holds at least one change.
    pub fn is_empty(&self) -> bool {
        self.to_seq < self.from_seq
    }
}

impl fmt::Display for MissingRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seq {}..={}", self.actor, self.from_seq, self.to_seq)
    }
}

/// `{actor → highest sequence number}` of one document on one replica.
///
/// Serialised (serde) as a map from actor label to sequence number, e.g.
/// `{"hub": 10002, "till-01": 200}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(BTreeMap<Actor, u64>);

impl VersionVector {
    /// An empty vector (a replica without changes).
    pub fn new() -> Self {
        Self::default()
    }

    /// The vector of a document. This walks the change metadata once, O(changes): about 0.7 µs per
    /// change on the reference machine, so compute it per sync round, not per operation.
    pub fn from_doc(doc: &mut AutoCommit) -> Self {
        Self::from_automerge(doc.document())
    }

    /// The vector of an [`Automerge`] document (see [`VersionVector::from_doc`]).
    pub fn from_automerge(doc: &Automerge) -> Self {
        let mut vector = Self::new();
        for meta in doc.get_changes_meta(&[]) {
            vector.observe(Actor::from(meta.actor.as_ref()), meta.seq);
        }
        vector
    }

    /// Raises the vector with the changes of `doc` not reachable from `since` — a cheap update
    /// of a cached vector after a sync round applied changes on top of `since`.
    pub fn absorb_changes_since(&mut self, doc: &mut AutoCommit, since: &[ChangeHash]) {
        for meta in doc.get_changes_meta(since) {
            self.observe(Actor::from(meta.actor.as_ref()), meta.seq);
        }
    }

    /// Records that `actor` has reached `seq` (keeps the maximum; `seq == 0` records nothing,
    /// as an actor without changes is simply absent).
    pub fn observe(&mut self, actor: Actor, seq: u64) {
        if seq == 0 {
            return;
        }
        let entry = self.0.entry(actor).or_insert(0);
        *entry = (*entry).max(seq);
    }

    /// Highest sequence number seen for `actor` (0 when none).
    pub fn seq(&self, actor: &Actor) -> u64 {
        self.0.get(actor).copied().unwrap_or(0)
    }

    /// Number of actors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the vector holds no actor.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The actors and their sequence numbers, ordered by actor.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Actor, u64)> + '_ {
        self.0.iter().map(|(actor, seq)| (actor, *seq))
    }

    /// Total number of changes the vector covers.
    pub fn total_changes(&self) -> u64 {
        self.0
            .values()
            .fold(0u64, |sum, seq| sum.saturating_add(*seq))
    }

    /// The changes `other` has that `self` lacks, one range per actor, ordered by actor.
    pub fn missing_from(&self, other: &VersionVector) -> Vec<MissingRange> {
        other
            .iter()
            .filter_map(|(actor, their_seq)| {
                let our_seq = self.seq(actor);
                (their_seq > our_seq).then(|| MissingRange {
                    actor: actor.clone(),
                    from_seq: our_seq + 1,
                    to_seq: their_seq,
                })
            })
            .collect()
    }

    /// True when `self` has every change `other` has.
    pub fn covers(&self, other: &VersionVector) -> bool {
        other.iter().all(|(actor, seq)| self.seq(actor) >= seq)
    }
}

impl FromIterator<(Actor, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (Actor, u64)>>(iter: I) -> Self {
        let mut vector = Self::new();
        for (actor, seq) in iter {
            vector.observe(actor, seq);
        }
        vector
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn actor(label: &str) -> Actor {
        label.parse().expect("valid label")
    }

    #[test]
    fn labels_are_text_when_readable_and_hex_otherwise() {
        assert_eq!(actor("till-01").to_string(), "till-01");
        let binary = Actor::new(ActorId::from([0u8, 0xff, 0x10]));
        assert_eq!(binary.to_string(), "hex:00ff10");
        assert_eq!(actor("hex:00ff10"), binary);
        // A text actor that starts with the hex prefix is shown as hex so that labels round-trip.
        let tricky = Actor::new(ActorId::from(b"hex:ab".as_slice()));
        assert_eq!(tricky.to_string().parse::<Actor>().expect("parse"), tricky);
        assert!("hex:zz".parse::<Actor>().is_err());
        assert!("".parse::<Actor>().is_err());
    }

    #[test]
    fn missing_ranges_name_what_the_other_side_has() {
        let till: VersionVector = [(actor("hub"), 10_002), (actor("till-01"), 200)]
            .into_iter()
            .collect();
        let hub: VersionVector = [(actor("hub"), 10_202)].into_iter().collect();
        assert_eq!(
            hub.missing_from(&till),
            vec![MissingRange {
                actor: actor("till-01"),
                from_seq: 1,
                to_seq: 200
            }]
        );
        let till_lacks = till.missing_from(&hub);
        assert_eq!(till_lacks.len(), 1);
        assert_eq!(till_lacks[0].to_string(), "hub seq 10003..=10202");
        assert_eq!(till_lacks[0].len(), 200);
        assert_eq!(till.total_changes(), 10_202);
        assert!(!till.covers(&hub));
        assert!(hub.missing_from(&hub).is_empty());
    }

    #[test]
    fn built_from_a_document_and_updated_incrementally() {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(b"till-07".as_slice()));
        doc.put(automerge::ROOT, "a", 1).expect("put");
        doc.commit();
        let heads = doc.get_heads();
        let mut vector = VersionVector::from_doc(&mut doc);
        assert_eq!(vector.seq(&actor("till-07")), 1);
        doc.put(automerge::ROOT, "b", 2).expect("put");
        doc.commit();
        vector.absorb_changes_since(&mut doc, &heads);
        assert_eq!(vector, VersionVector::from_doc(&mut doc));
        assert_eq!(vector.seq(&actor("till-07")), 2);
    }

    #[test]
    fn serde_uses_labels_as_keys() {
        let vector: VersionVector = [(actor("till-01"), 3), (Actor::new(ActorId::from([1u8])), 9)]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&vector).expect("serialise");
        assert_eq!(json, r#"{"hex:01":9,"till-01":3}"#);
        let back: VersionVector = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, vector);
    }
}
