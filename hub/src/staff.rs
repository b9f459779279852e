//! Cashiers' and managers' credentials replicated to the tills: the hub writes each such
//! user into its store's staff document (`staff/<store>`, see `crdt_model::staff`), which
//! every till of the store receives read-only by sync, so that a cashier logs in (and a
//! manager approves a large discount) with no hub.
//!
//! Only the argon2id hash leaves the `users` table, never a PIN. Which users are replicated:
//! role cashier or manager, with a store ([`staff_role`]); admins, support, accountants and
//! managers of every store are not.
//!
//! Writing ([`put_member`]) is one hub-authored edit ([`crate::doc_edit::edit_document`])
//! inside the caller's [`DbTx`], the one that changes the user row, so the row and the
//! document commit together or not at all: the document is created with `staff::init` if
//! missing and the member written at a fresh HLC of node `hub` (after every entry already
//! there, so the last writer by HLC is this one). The user service ([`crate::users`]) is the
//! caller.

use crate::auth_types::Role;
use crate::db::{DbError, DbTx};
use crate::doc_edit::{edit_document, HubDoc};
use crdt_model::commit_tag;
use crdt_model::staff::{self, StaffWrite};
use crdt_model::{DocKey, StaffMember, StaffRole, StoreId};

/// The role a user has in its store's staff document, `None` when the user is not
/// replicated to tills.
pub fn staff_role(role: Role, store: Option<&str>) -> Option<StaffRole> {
    store?;
    match role {
        Role::Cashier => Some(StaffRole::Cashier),
        Role::Manager => Some(StaffRole::Manager),
        Role::Admin | Role::Support | Role::Accountant => None,
    }
}

/// A member to write, without its timestamp (stamped under the document's lock).
#[derive(Clone, PartialEq, Eq)]
pub struct MemberUpdate {
    /// The user name.
    pub login: String,
    /// Cashier or manager.
    pub role: StaffRole,
    /// The argon2id PHC string stored in `users.password_hash`.
    pub secret_hash: String,
    /// False for a disabled user.
    pub active: bool,
    /// A new cashier's PIN in clear, checked against the store's other active cashiers: the
    /// PIN alone names the cashier at the till, so two cashiers of a store may not share one.
    /// Never stored; `None` skips the check.
    pub unique_pin: Option<String>,
}

impl std::fmt::Debug for MemberUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberUpdate")
            .field("login", &self.login)
            .field("role", &self.role)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Writes `update` into `staff/<store>` inside `tx` at wall clock `wall_ms` (see the module
/// doc). The caller commits. Fails, and the caller must roll back, when the stored entry is
/// newer than anything this hub's clock can stamp (a hub clock far behind another's).
pub async fn put_member(
    tx: &mut DbTx,
    store: &str,
    update: MemberUpdate,
    wall_ms: u64,
) -> Result<(), DbError> {
    let store: StoreId = store
        .parse()
        .map_err(|e: crdt_model::IdError| DbError::invalid("store", e.to_string()))?;
    let key = DocKey::Staff {
        store: store.clone(),
    };
    let doc_id = key.to_doc_id();
    let message = commit_tag::staff(&update.login);
    edit_document(tx, &key, wall_ms, message, move |hub| {
        write_member(hub, &store, update).map_err(|reason| DbError::Document { doc_id, reason })
    })
    .await
}

/// The active cashier other than `login` whose PIN is `pin`, if any (argon2 checks, on the
/// blocking thread of the edit).
fn cashier_with_pin(members: &[StaffMember], login: &str, pin: &str) -> Option<String> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let argon2 = argon2::Argon2::default();
    members
        .iter()
        .filter(|m| m.active && m.role == StaffRole::Cashier && m.login != login)
        .find(|m| {
            PasswordHash::new(&m.secret_hash)
                .is_ok_and(|hash| argon2.verify_password(pin.as_bytes(), &hash).is_ok())
        })
        .map(|m| m.login.clone())
}

/// The edit itself: writes `update` into the document (created if new).
fn write_member(hub: &mut HubDoc, store: &StoreId, update: MemberUpdate) -> Result<(), String> {
    if hub.is_new {
        staff::init(&mut hub.doc, store).map_err(|e| e.to_string())?;
    } else {
        let owner = staff::store(&hub.doc).map_err(|e| e.to_string())?;
        if &owner != store {
            return Err(format!("it belongs to store {owner}"));
        }
    }
    let members = staff::members(&hub.doc).map_err(|e| e.to_string())?;
    if let Some(latest) = members.iter().map(|m| &m.updated_at).max() {
        if let Err(e) = hub.clock.observe(latest, hub.wall_ms) {
            tracing::warn!(error = %e, "the staff document holds a timestamp far ahead of this hub's clock");
        }
    }
    if let Some(pin) = &update.unique_pin {
        if let Some(other) = cashier_with_pin(&members, &update.login, pin) {
            return Err(format!(
                "the PIN is already used by cashier {other:?} of store {store}; at the till a PIN \
                 names its cashier, so choose another"
            ));
        }
    }
    let member = StaffMember {
        login: update.login,
        role: update.role,
        secret_hash: update.secret_hash,
        active: update.active,
        updated_at: hub.clock.now(hub.wall_ms),
    };
    match staff::put_member(&mut hub.doc, &member).map_err(|e| e.to_string())? {
        StaffWrite::Written => Ok(()),
        StaffWrite::NotNewer => Err(format!(
            "the entry of {:?} is newer than this hub's clock ({}); check the hub's clock",
            member.login, member.updated_at
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::StoredDoc;
    use crate::doc_edit::{apply, doc_meta, Edited};
    use automerge::AutoCommit;

    /// One edit of the staff document of `store`, as `put_member` runs it.
    fn build(
        stored: Option<StoredDoc>,
        store: &StoreId,
        update: MemberUpdate,
        wall_ms: u64,
    ) -> Result<Edited, String> {
        let message = commit_tag::staff(&update.login);
        let store = store.clone();
        apply(
            "staff/S",
            stored,
            wall_ms,
            message,
            move |hub: &mut HubDoc| -> Result<(), EditFailure> {
                write_member(hub, &store, update).map_err(EditFailure)
            },
        )
        .map(|(edited, ())| edited)
        .map_err(|e| e.0)
    }

    struct EditFailure(String);

    impl From<crate::doc_edit::EditError> for EditFailure {
        fn from(error: crate::doc_edit::EditError) -> Self {
            EditFailure(error.reason)
        }
    }

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzYWx0$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    fn update(login: &str, active: bool) -> MemberUpdate {
        MemberUpdate {
            unique_pin: None,
            login: login.to_owned(),
            role: StaffRole::Cashier,
            secret_hash: HASH.to_owned(),
            active,
        }
    }

    fn stored(bytes: Vec<u8>) -> StoredDoc {
        StoredDoc {
            meta: doc_meta(&DocKey::Staff {
                store: "S1".parse().expect("store"),
            }),
            bytes,
            chunk_ids: vec![1],
            snapshot_heads: Vec::new(),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn only_cashiers_and_managers_of_a_store_are_replicated() {
        assert_eq!(
            staff_role(Role::Cashier, Some("S1")),
            Some(StaffRole::Cashier)
        );
        assert_eq!(
            staff_role(Role::Manager, Some("S1")),
            Some(StaffRole::Manager)
        );
        assert_eq!(staff_role(Role::Manager, None), None);
        for role in [Role::Admin, Role::Support, Role::Accountant] {
            assert_eq!(staff_role(role, Some("S1")), None);
        }
    }

    #[test]
    fn a_second_write_lands_after_the_first_even_if_the_clock_stepped_back() {
        let store: StoreId = "S1".parse().expect("store");
        let first = build(None, &store, update("anna", true), 5_000).expect("create");
        let first_chunk = first.chunk.expect("a change");
        let mut bytes = first_chunk.clone();
        let second = build(
            Some(stored(first_chunk)),
            &store,
            update("anna", false),
            4_000,
        )
        .expect("update");
        assert!(second.compaction.is_none());
        bytes.extend_from_slice(second.chunk.as_deref().expect("a change"));
        let mut doc = AutoCommit::load(&bytes).expect("load");
        let anna = staff::member(&doc, "anna").expect("read").expect("anna");
        assert!(!anna.active);
        assert!(anna.updated_at.physical_ms >= 5_000, "{}", anna.updated_at);
        assert_eq!(anna.updated_at.node, crate::HUB_NAME);
        assert_eq!(doc.get_heads(), second.heads);
    }

    #[test]
    fn a_document_of_another_store_is_refused() {
        let s1: StoreId = "S1".parse().expect("store");
        let s2: StoreId = "S2".parse().expect("store");
        let first = build(None, &s1, update("anna", true), 5_000).expect("create");
        let chunk = first.chunk.expect("a change");
        let error =
            build(Some(stored(chunk)), &s2, update("anna", true), 6_000).expect_err("refused");
        assert!(error.contains("S1"), "{error}");
    }
}
