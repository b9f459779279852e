//! The node's part of the browser POS login: the staff list from the replicated staff
//! document, and the login sessions kept in the store's meta (see `pos::tokens`).

use crdt_model::ids::DocKey;
use crdt_model::staff::{self, StaffMember};

use super::{Node, NodeError};
use crate::pos::tokens::{token_meta_key, PosSession, TOKEN_META_PREFIX};
use crate::store::WriteBatch;
use crate::time::now_ms;

impl Node {
    /// The members of the store's staff document, or `None` when the hub has not sent it yet.
    /// A document that does not read back is an error (support must see it), not "no staff".
    pub fn staff_members(&self) -> Result<Option<Vec<StaffMember>>, NodeError> {
        let key = DocKey::Staff {
            store: self.identity.store.clone(),
        };
        let Some(loaded) = self
            .replica
            .iter()
            .find(|(id, _)| id.as_str() == key.to_doc_id())
            .map(|(_, loaded)| loaded)
        else {
            return Ok(None);
        };
        staff::members(&loaded.doc)
            .map(Some)
            .map_err(|error| NodeError::Load {
                doc: key.to_doc_id(),
                reason: error.to_string(),
            })
    }

    /// Stores a login session under its token's digest.
    pub fn put_pos_session(&mut self, token: &str, session: &PosSession) -> Result<(), NodeError> {
        self.ensure_writable()?;
        let mut batch = WriteBatch::new();
        // Serializing our own struct cannot fail.
        let value = serde_json::to_vec(session).unwrap_or_default();
        batch.put_meta(token_meta_key(token), value);
        self.store.commit(batch)?;
        Ok(())
    }

    /// The live login session of `token`, if any (an expired one is `None`).
    pub fn pos_session(&self, token: &str) -> Result<Option<PosSession>, NodeError> {
        let Some(bytes) = self.store.meta(&token_meta_key(token))? else {
            return Ok(None);
        };
        let session: PosSession = match serde_json::from_slice(&bytes) {
            Ok(session) => session,
            Err(error) => {
                tracing::warn!(%error, "unreadable POS login record ignored");
                return Ok(None);
            }
        };
        Ok((session.expires_at_ms > now_ms()).then_some(session))
    }

    /// Ends the login session of `token`.
    pub fn delete_pos_session(&mut self, token: &str) -> Result<(), NodeError> {
        self.ensure_writable()?;
        let mut batch = WriteBatch::new();
        batch.delete_meta(token_meta_key(token));
        self.store.commit(batch)?;
        Ok(())
    }

    /// Deletes expired login sessions; returns how many.
    pub fn purge_pos_sessions(&mut self, now_ms: u64) -> Result<usize, NodeError> {
        self.ensure_writable()?;
        let mut batch = WriteBatch::new();
        for (key, bytes) in self.store.meta_with_prefix(TOKEN_META_PREFIX)? {
            let expired = serde_json::from_slice::<PosSession>(&bytes)
                .map_or(true, |session| session.expires_at_ms <= now_ms);
            if expired {
                batch.delete_meta(key);
            }
        }
        let purged = batch.len();
        if purged > 0 {
            self.store.commit(batch)?;
        }
        Ok(purged)
    }
}
