//! Sans-IO per-document primitives: produce and consume one Automerge sync message.
//!
//! These wrap `automerge::sync::SyncDoc` with the checks and bookkeeping every caller needs:
//! a received message is structurally checked and every change in it parsed *before* the
//! document is touched (Automerge would silently skip a corrupt chunk), and the result names the
//! bytes to persist. Those bytes come from `save_after(heads_before)`, never from
//! `save_incremental()`, which returns the whole history on the first call after a `load`.
//!
//! Note: like every `&mut` read on an `AutoCommit`, these calls commit an open transaction.

use automerge::sync::{Message, State, SyncDoc};
use automerge::{AutoCommit, AutomergeError, ChangeHash};

use crate::inspect::{self, MessageCheckError};

/// What applying one received sync message did to a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Heads before the message was applied.
    pub heads_before: Vec<ChangeHash>,
    /// Heads after.
    pub heads_after: Vec<ChangeHash>,
    /// Bytes to append to the document's stored chunks so that loading `stored ++ new_changes`
    /// gives the new document: raw change chunks (`save_after(heads_before)`), or one compressed
    /// document chunk (`save()`) when the document was empty before. Empty if nothing is new.
    pub new_changes: Vec<u8>,
}

impl Applied {
    /// Nothing applied to a document at `heads`.
    pub fn unchanged(heads: Vec<ChangeHash>) -> Self {
        Self {
            heads_before: heads.clone(),
            heads_after: heads,
            new_changes: Vec::new(),
        }
    }

    /// True when the message brought no new change.
    pub fn is_empty(&self) -> bool {
        self.new_changes.is_empty()
    }
}

/// Why a received sync message was refused or could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The message is malformed or carries a corrupt change; nothing was applied.
    #[error(transparent)]
    Invalid(#[from] MessageCheckError),
    /// Automerge refused to apply the (well-formed) message.
    #[error("automerge could not apply the message: {0}")]
    Apply(Box<AutomergeError>),
}

/// Generates the next message for the peer `state` tracks, or `None` when there is nothing to
/// say (the peer is up to date, or a message is in flight and unanswered).
pub fn generate(doc: &mut AutoCommit, state: &mut State) -> Option<Vec<u8>> {
    let message = doc.sync().generate_sync_message(state);
    message.map(Message::encode)
}

/// Checks, then applies, an encoded sync message from the peer `state` tracks.
pub fn receive(
    doc: &mut AutoCommit,
    state: &mut State,
    message: &[u8],
) -> Result<Applied, ReceiveError> {
    let message = inspect::decode_message(message)?;
    inspect::inspect_changes(&message)?;
    receive_checked(doc, state, message).map_err(|e| ReceiveError::Apply(Box::new(e)))
}

/// Applies a message that already passed [`inspect::check_structure`] and
/// [`inspect::inspect_changes`] (the multi-document rounds check a whole envelope first).
pub(crate) fn receive_checked(
    doc: &mut AutoCommit,
    state: &mut State,
    message: Message,
) -> Result<Applied, AutomergeError> {
    let heads_before = doc.get_heads();
    doc.sync().receive_sync_message(state, message)?;
    let heads_after = doc.get_heads();
    let new_changes = if heads_after == heads_before {
        Vec::new()
    } else if heads_before.is_empty() {
        doc.save()
    } else {
        doc.save_after(&heads_before)
    };
    Ok(Applied {
        heads_before,
        heads_after,
        new_changes,
    })
}

/// Decodes a persisted [`State`], falling back to a fresh one when the bytes are unreadable
/// (a lost state only costs one larger Bloom-filter exchange, never data).
pub fn decode_state(persisted: Option<&[u8]>) -> State {
    match persisted.map(State::decode) {
        Some(Ok(state)) => state,
        // Deliberate, see above: never data, only a larger next exchange.
        Some(Err(_)) | None => State::new(),
    }
}

/// A state for a sync round with a peer that may only read the document: its changes are never
/// applied and it is told so (Automerge's read-only flag), so a well-behaved peer sends none.
pub(crate) fn apply_access(state: &mut State, peer_may_write: bool) {
    if !peer_may_write && !state.read_only {
        state.set_read_only(true);
    }
}

/// True when the peer is known to hold every change of `doc` (our heads are shared heads).
pub fn peer_has_all(doc: &mut AutoCommit, state: &State) -> bool {
    let heads = doc.get_heads();
    heads.iter().all(|head| state.shared_heads.contains(head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ReadDoc};

    fn doc(actor: &str) -> AutoCommit {
        AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()))
    }

    /// Runs the per-doc loop to a fixpoint, returning what `b` persisted.
    fn sync_pair(a: &mut AutoCommit, b: &mut AutoCommit) -> Vec<u8> {
        let (mut sa, mut sb) = (State::new(), State::new());
        let mut b_persisted = Vec::new();
        for _ in 0..10 {
            let a_to_b = generate(a, &mut sa);
            if let Some(m) = &a_to_b {
                b_persisted.extend(receive(b, &mut sb, m).expect("b receives").new_changes);
            }
            let b_to_a = generate(b, &mut sb);
            if let Some(m) = &b_to_a {
                receive(a, &mut sa, m).expect("a receives");
            }
            if a_to_b.is_none() && b_to_a.is_none() {
                return b_persisted;
            }
        }
        panic!("no fixpoint in 10 rounds");
    }

    #[test]
    fn persisted_changes_reload_to_the_same_document() {
        let mut a = doc("hub");
        for i in 0..5 {
            a.put(automerge::ROOT, format!("k{i}"), i).expect("put");
            a.commit();
        }
        let mut b = doc("till-01");
        let stored = sync_pair(&mut a, &mut b);
        let mut reloaded = AutoCommit::load(&stored).expect("load");
        assert_eq!(reloaded.get_heads(), a.get_heads());

        // After a load, save_incremental would return everything; Applied must not.
        let mut b = AutoCommit::load(&stored)
            .expect("load")
            .with_actor(ActorId::from(b"till-01".as_slice()));
        a.put(automerge::ROOT, "late", 9).expect("put");
        a.commit();
        let more = sync_pair(&mut a, &mut b);
        assert!(!more.is_empty());
        assert!(
            more.len() < stored.len(),
            "only the new change is persisted"
        );
        let mut all = stored.clone();
        all.extend(&more);
        let mut reloaded = AutoCommit::load(&all).expect("load");
        assert_eq!(reloaded.get_heads(), a.get_heads());
        assert!(reloaded
            .get(automerge::ROOT, "late")
            .expect("get")
            .is_some());
    }

    #[test]
    fn garbage_is_refused_and_nothing_changes() {
        let mut b = doc("till-01");
        b.put(automerge::ROOT, "x", 1).expect("put");
        let heads = b.get_heads();
        let mut state = State::new();
        let err = receive(&mut b, &mut state, &[0x42, 0xff, 0xff]).expect_err("garbage");
        assert!(matches!(err, ReceiveError::Invalid(_)));
        assert_eq!(b.get_heads(), heads);
    }

    #[test]
    fn unreadable_state_falls_back_to_fresh() {
        assert_eq!(decode_state(Some(&[1, 2, 3])), State::new());
        assert_eq!(decode_state(None), State::new());
    }
}
