//! Cashiers' and managers' credentials replicated to the tills: the hub writes each such
//! user into its store's staff document (`staff/<store>`, see `crdt_model::staff`), which
//! every till of the store receives read-only by sync, so that a cashier logs in (and a
//! manager approves a large discount) with no hub.
//!
//! Only the argon2id hash leaves the `users` table, never a PIN. Which users are replicated:
//! role cashier or manager, with a store ([`staff_role`]); admins, support, accountants and
//! managers of every store are not.
//!
//! Writing ([`put_member`]) happens inside the caller's [`DbTx`], the one that changes the
//! user row, so the row and the document commit together or not at all: the document is
//! locked and loaded, created with `staff::init` if missing, the member written at a fresh
//! HLC of node `hub` (after every entry already there, so the last writer by HLC is this
//! one), the change committed with actor `hub/hub`, appended as one chunk, the hub's clock
//! of the document recorded, and the document compacted when it has too many chunks — the
//! same path as `hub catalogue import`.

use crate::auth_types::Role;
use crate::db::{DbError, DbTx, StoredDoc};
use crate::sync::round::{clock_json, doc_meta, COMPACT_AFTER_CHUNKS};
use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash};
use crdt_model::commit_tag;
use crdt_model::staff::{self, StaffWrite};
use crdt_model::{DocKey, HlcClock, StaffMember, StaffRole, StoreId};

/// How far ahead of the wall clock a stored entry's HLC may be for the hub's clock to adopt
/// it (a hub whose clock stepped back still writes after it), as in the catalogue import.
const MAX_FORWARD_MS: u64 = 3600 * 1000;

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
    tx.lock_doc(&doc_id).await?;
    let stored = tx.load_doc(&doc_id).await?;
    let task_doc_id = doc_id.clone();
    let built = tokio::task::spawn_blocking(move || {
        build(stored, &store, update, wall_ms).map_err(|reason| DbError::Document {
            doc_id: task_doc_id,
            reason,
        })
    })
    .await
    .map_err(|e| DbError::Document {
        doc_id: doc_id.clone(),
        reason: format!("staff task failed: {e}"),
    })??;
    let chunk_id = tx
        .append_changes(&doc_id, &doc_meta(&key), &built.chunk)
        .await?;
    tx.set_doc_clock(&doc_id, &built.clock_json, &built.heads)
        .await?;
    if let Some((snapshot, heads, mut folded)) = built.compaction {
        folded.push(chunk_id);
        tx.compact(&doc_id, &snapshot, &heads, &folded).await?;
    }
    Ok(())
}

/// The active cashier other than `login` whose PIN is `pin`, if any (argon2 checks, on the
/// blocking thread of `build`).
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

struct Built {
    chunk: Vec<u8>,
    clock_json: String,
    heads: Vec<ChangeHash>,
    compaction: Option<(Vec<u8>, Vec<ChangeHash>, Vec<i64>)>,
}

/// The change that writes `update` into the stored document (created if `None`).
fn build(
    stored: Option<StoredDoc>,
    store: &StoreId,
    update: MemberUpdate,
    wall_ms: u64,
) -> Result<Built, String> {
    let actor = crdt_model::ids::hub_actor(crate::HUB_NAME).map_err(|e| e.to_string())?;
    let mut clock = HlcClock::new(crate::HUB_NAME, MAX_FORWARD_MS).map_err(|e| e.to_string())?;
    let (mut doc, chunk_ids) = match &stored {
        None => {
            let mut doc = AutoCommit::new().with_actor(actor);
            staff::init(&mut doc, store).map_err(|e| e.to_string())?;
            (doc, Vec::new())
        }
        Some(stored) => {
            let doc = AutoCommit::load(&stored.bytes)
                .map_err(|e| format!("does not load: {e}"))?
                .with_actor(actor);
            let owner = staff::store(&doc).map_err(|e| e.to_string())?;
            if &owner != store {
                return Err(format!("it belongs to store {owner}"));
            }
            (doc, stored.chunk_ids.clone())
        }
    };
    let members = staff::members(&doc).map_err(|e| e.to_string())?;
    if let Some(latest) = members.iter().map(|m| &m.updated_at).max() {
        if let Err(e) = clock.observe(latest, wall_ms) {
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
    let heads_before = doc.get_heads();
    let member = StaffMember {
        login: update.login,
        role: update.role,
        secret_hash: update.secret_hash,
        active: update.active,
        updated_at: clock.now(wall_ms),
    };
    match staff::put_member(&mut doc, &member).map_err(|e| e.to_string())? {
        StaffWrite::Written => {}
        StaffWrite::NotNewer => {
            return Err(format!(
                "the entry of {:?} is newer than this hub's clock ({}); check the hub's clock",
                member.login, member.updated_at
            ));
        }
    }
    let commit = CommitOptions::default()
        .with_message(commit_tag::staff(&member.login))
        .with_time(i64::try_from(wall_ms).unwrap_or(i64::MAX));
    doc.commit_with(commit);
    let chunk = if stored.is_none() {
        doc.save()
    } else {
        doc.save_after(&heads_before)
    };
    let compaction = (stored.is_some() && chunk_ids.len() + 1 > COMPACT_AFTER_CHUNKS)
        .then(|| (doc.save(), doc.get_heads(), chunk_ids));
    Ok(Built {
        chunk,
        clock_json: clock_json(&mut doc).map_err(|e| e.to_string())?,
        heads: doc.get_heads(),
        compaction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut bytes = first.chunk.clone();
        let second = build(
            Some(stored(first.chunk)),
            &store,
            update("anna", false),
            4_000,
        )
        .expect("update");
        assert!(second.compaction.is_none());
        bytes.extend_from_slice(&second.chunk);
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
        let error = build(Some(stored(first.chunk)), &s2, update("anna", true), 6_000)
            .err()
            .expect("refused");
        assert!(error.contains("S1"), "{error}");
    }
}
