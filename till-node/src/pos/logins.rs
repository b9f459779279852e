//! [`Logins`]: the browser POS's logins, served without the node lock.
//!
//! Checking a cashier's bearer token happens on every page request, and a PIN login reads the
//! staff list: neither should queue behind a sale or a sync round on the node mutex. So this
//! service keeps, behind its own small lock:
//! - the staff list as the replicated `staff/<store>` document holds it — set by the node when
//!   it opens and after every commit that changes that document ([`Logins::set_staff`]);
//! - the live login records by token digest — loaded from the store's meta when the node opens
//!   and updated by the node after each durable put or delete, so tokens survive a restart
//!   exactly as before (the store keeps only digests, see `tokens`);
//! - the two wrong-secret throttles (PIN login, manager approval).
//!
//! The durable writes of a login or logout still go through the node (one store owner); this
//! cache only answers reads. It never holds the node lock, and the node never waits on it for
//! longer than a map update.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use automerge::AutoCommit;
use crdt_model::staff::{self, StaffMember};

use super::throttle::PinThrottle;
use super::tokens::{token_meta_key, PosLogin, TOKEN_META_PREFIX};
use crate::node::NodeError;
use crate::store::{Store, StoreError};

/// The staff list as the login sees it.
#[derive(Debug, Clone, Default)]
enum StaffList {
    /// The hub has not sent the staff document yet.
    #[default]
    NotReceived,
    /// The active and inactive members.
    Members(Arc<Vec<StaffMember>>),
    /// The document does not read back: support must see it, so logins fail loudly.
    Unreadable {
        /// The document id.
        doc: String,
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Default)]
struct LoginState {
    staff: StaffList,
    /// Login records by meta key (`pos-token/<sha256 of the token>`).
    tokens: HashMap<String, PosLogin>,
    pin_throttle: PinThrottle,
    approve_throttle: PinThrottle,
}

/// The login cache and throttles; cheap to clone (one shared state).
#[derive(Debug, Clone, Default)]
pub struct Logins {
    state: Arc<Mutex<LoginState>>,
}

impl Logins {
    fn lock(&self) -> MutexGuard<'_, LoginState> {
        // Plain maps and counters, each update a single assignment: a panic elsewhere cannot
        // leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The members of the store's staff document, or `None` when the hub has not sent it yet.
    /// A document that does not read back is an error (support must see it), not "no staff".
    pub fn staff_members(&self) -> Result<Option<Arc<Vec<StaffMember>>>, NodeError> {
        match &self.lock().staff {
            StaffList::NotReceived => Ok(None),
            StaffList::Members(members) => Ok(Some(Arc::clone(members))),
            StaffList::Unreadable { doc, reason } => Err(NodeError::Load {
                doc: doc.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The live login of `token` at `now_ms`, if any (an expired one is `None`).
    pub fn login(&self, token: &str, now_ms: u64) -> Option<PosLogin> {
        let key = token_meta_key(token);
        self.lock()
            .tokens
            .get(&key)
            .filter(|login| login.expires_at_ms > now_ms)
            .cloned()
    }

    /// Starts a secret check at `now_ms` on the login's throttle, or on the manager
    /// approval's (kept apart, so that a cashier's own login does not reset the count of
    /// guesses at a manager's secret). `Err` holds the wait in milliseconds.
    pub fn begin_attempt(&self, approval: bool, now_ms: u64) -> Result<(), u64> {
        let mut state = self.lock();
        let throttle = if approval {
            &mut state.approve_throttle
        } else {
            &mut state.pin_throttle
        };
        throttle.begin(now_ms)
    }

    /// Records a correct secret on the throttle `begin_attempt` used.
    pub fn attempt_succeeded(&self, approval: bool) {
        let mut state = self.lock();
        if approval {
            state.approve_throttle.succeed();
        } else {
            state.pin_throttle.succeed();
        }
    }

    /// Sets the staff list from the staff document `doc` (`None`: not on the till).
    pub(crate) fn set_staff(&self, doc_id: &str, doc: Option<&AutoCommit>) {
        let staff = match doc.map(staff::members) {
            None => StaffList::NotReceived,
            Some(Ok(members)) => StaffList::Members(Arc::new(members)),
            Some(Err(error)) => {
                tracing::warn!(doc = doc_id, %error, "the staff document does not read back");
                StaffList::Unreadable {
                    doc: doc_id.to_owned(),
                    reason: error.to_string(),
                }
            }
        };
        self.lock().staff = staff;
    }

    /// Loads the stored login records (an unreadable one is skipped with a warning; retention
    /// deletes it).
    pub(crate) fn load_tokens(&self, store: &Store) -> Result<(), StoreError> {
        let mut tokens = HashMap::new();
        for (key, bytes) in store.meta_with_prefix(TOKEN_META_PREFIX)? {
            match serde_json::from_slice::<PosLogin>(&bytes) {
                Ok(login) => {
                    tokens.insert(key, login);
                }
                Err(error) => tracing::warn!(%error, "unreadable POS login record ignored"),
            }
        }
        self.lock().tokens = tokens;
        Ok(())
    }

    /// Records a login whose record is now durable under `key`.
    pub(crate) fn stored(&self, key: String, login: PosLogin) {
        self.lock().tokens.insert(key, login);
    }

    /// Forgets the login records whose deletion is now durable.
    pub(crate) fn deleted<'a>(&self, keys: impl IntoIterator<Item = &'a String>) {
        let mut state = self.lock();
        for key in keys {
            state.tokens.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pos::throttle::FREE_FAILURES;

    #[test]
    fn the_login_and_the_approval_are_throttled_apart() {
        let logins = Logins::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(logins.begin_attempt(true, 0), Ok(()));
        }
        assert!(logins.begin_attempt(true, 0).is_err(), "approval locked");
        assert_eq!(logins.begin_attempt(false, 0), Ok(()), "login still open");
        // A cashier's own correct PIN does not unlock guesses at a manager's secret.
        logins.attempt_succeeded(false);
        assert!(logins.begin_attempt(true, 0).is_err());
        logins.attempt_succeeded(true);
        assert_eq!(logins.begin_attempt(true, 0), Ok(()));
    }
}
