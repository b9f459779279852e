//! [`Retention`]: what the till forgets, and when. A sealed shift is dropped `retention_days`
//! after its close once the hub holds all of it; expired login records and idempotency records
//! older than the same cut-off are purged. Run by the daemon at start-up and once an hour.

use crdt_model::session;

use super::core::Core;
use super::error::NodeError;
use super::fiscal_queue::FiscalSettings;
use crate::pos::tokens::{PosLogin, TOKEN_META_PREFIX};
use crate::store::WriteBatch;

/// Retention over the core. See the module documentation.
#[derive(Debug)]
pub struct Retention<'a> {
    pub(super) core: &'a mut Core,
    pub(super) fiscal: FiscalSettings,
    pub(super) retention_days: u32,
}

impl Retention<'_> {
    /// Drops closed shift documents closed more than `retention_days` before `now_ms` that
    /// the hub holds entirely, and purges old records. Returns how many shifts were dropped.
    pub fn apply(&mut self, now_ms: u64) -> Result<usize, NodeError> {
        self.core.ensure_writable()?;
        let cutoff = now_ms.saturating_sub(u64::from(self.retention_days) * 86_400_000);
        let mut expired = Vec::new();
        let open_shift = self.core.open_shift.clone();
        for (id, loaded) in self.core.replica.iter_mut() {
            if !id.as_str().starts_with("session/") || open_shift.as_ref() == Some(id) {
                continue;
            }
            let closed_at = match session::read(&loaded.doc) {
                Ok(view) => view.close.map(|c| c.closed_at.physical_ms),
                Err(_) => None,
            };
            if closed_at.is_some_and(|at| at < cutoff) && loaded.hub_has_all() {
                expired.push(id.clone());
            }
        }
        for id in &expired {
            self.core.store.drop_doc(id.as_str())?;
            self.core.replica.remove(id);
            tracing::info!(doc = %id, "sealed session dropped after the retention period");
        }
        let logins = self.purge_logins(now_ms)?;
        if logins > 0 {
            tracing::info!(logins, "expired POS logins removed");
        }
        let purged = self
            .core
            .store
            .purge_idempotency(i64::try_from(cutoff).unwrap_or(i64::MAX))?;
        if purged > 0 {
            tracing::debug!(purged, "old idempotency records purged");
        }
        self.fiscal.refresh_gauges(self.core);
        Ok(expired.len())
    }

    /// Deletes expired (and unreadable) login records, then tells the login cache; returns
    /// how many.
    pub fn purge_logins(&mut self, now_ms: u64) -> Result<usize, NodeError> {
        self.core.ensure_writable()?;
        let mut batch = WriteBatch::new();
        let mut keys = Vec::new();
        for (key, bytes) in self.core.store.meta_with_prefix(TOKEN_META_PREFIX)? {
            let expired = serde_json::from_slice::<PosLogin>(&bytes)
                .map_or(true, |login| login.expires_at_ms <= now_ms);
            if expired {
                batch.delete_meta(key.clone());
                keys.push(key);
            }
        }
        let purged = batch.len();
        if purged > 0 {
            self.core.store.commit(batch)?;
            self.core.logins.deleted(&keys);
        }
        Ok(purged)
    }
}
