//! Reading and writing the staff document: create it, put a member (last writer by HLC
//! wins), read members back re-validated. The layout and the merge rule are described in
//! the parent module.

use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{hydrate, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

use super::{validate_login, StaffMember, MAX_MEMBERS, SCHEMA_VERSION};
use crate::error::StaffError;
use crate::ids::StoreId;

const KIND_KEY: &str = "kind";
const KIND: &str = "staff";
const SCHEMA_KEY: &str = "schema";
const STORE_KEY: &str = "store";
const USERS: &str = "users";

type Result<T> = std::result::Result<T, StaffError>;

/// What [`put_member`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffWrite {
    /// The member is now stored as given.
    Written,
    /// The stored entry is as new or newer (`updated_at` not older): nothing changed.
    NotNewer,
}

/// Creates the staff document of `store` in an empty document: its kind, schema, store
/// and the empty `users` map, in one batch insert (so the map is one object on every
/// replica).
pub fn init(doc: &mut AutoCommit, store: &StoreId) -> Result<()> {
    // The batch insert appends to the op set, so it needs a document with no history.
    if doc.length(ROOT) != 0 || !doc.get_heads().is_empty() {
        return Err(StaffError::NotEmpty);
    }
    let root = hydrate::Map::from(HashMap::from([
        (KIND_KEY, hydrate::Value::scalar(KIND)),
        (SCHEMA_KEY, hydrate::Value::scalar(SCHEMA_VERSION)),
        (STORE_KEY, hydrate::Value::scalar(store.as_str())),
        (USERS, hydrate::Value::map()),
    ]));
    doc.init_root_from_hydrate(&root)?;
    Ok(())
}

/// The store a staff document belongs to; also checks that the document is a staff
/// document of the schema version this code reads.
pub fn store<D: ReadDoc>(doc: &D) -> Result<StoreId> {
    let text = |key: &str| -> Result<Option<String>> {
        Ok(doc
            .get(ROOT, key)?
            .and_then(|(value, _)| value.as_str().map(str::to_owned)))
    };
    if text(KIND_KEY)?.as_deref() != Some(KIND) {
        return Err(StaffError::NotAStaffDoc);
    }
    let schema = doc
        .get(ROOT, SCHEMA_KEY)?
        .and_then(|(value, _)| value.as_i64());
    if schema != Some(SCHEMA_VERSION) {
        return Err(corrupt(
            SCHEMA_KEY,
            format!("unsupported schema version {schema:?}"),
        ));
    }
    let store = text(STORE_KEY)?.ok_or(StaffError::NotAStaffDoc)?;
    store
        .parse()
        .map_err(|_| corrupt(STORE_KEY, "invalid store id"))
}

/// Writes `member` (validated first) unless the stored entry for its login is as new or
/// newer by `updated_at`, in which case nothing changes ([`StaffWrite::NotNewer`]).
pub fn put_member(doc: &mut AutoCommit, member: &StaffMember) -> Result<StaffWrite> {
    member.validate()?;
    store(&*doc)?;
    let users = users(&*doc)?;
    match read_entry(&*doc, &users, &member.login)? {
        Some(current) if current.updated_at >= member.updated_at => {
            return Ok(StaffWrite::NotNewer);
        }
        Some(_) => {}
        None => {
            if doc.length(&users) >= MAX_MEMBERS {
                return Err(StaffError::TooManyMembers { max: MAX_MEMBERS });
            }
        }
    }
    let json = serde_json::to_string(member).map_err(|e| corrupt(path(&member.login), e))?;
    // One put replaces every value the key holds, conflicting ones included.
    doc.put(&users, member.login.as_str(), ScalarValue::Str(json.into()))?;
    Ok(StaffWrite::Written)
}

/// Every member, ordered by login, each re-validated.
pub fn members<D: ReadDoc>(doc: &D) -> Result<Vec<StaffMember>> {
    store(doc)?;
    let users = users(doc)?;
    if doc.length(&users) > MAX_MEMBERS {
        return Err(corrupt(
            USERS,
            "more members than a staff document may hold",
        ));
    }
    let mut all = Vec::with_capacity(doc.length(&users));
    for login in doc.keys(&users) {
        if let Some(member) = read_entry(doc, &users, &login)? {
            all.push(member);
        }
    }
    Ok(all)
}

/// The member with this login, `None` if there is none.
pub fn member<D: ReadDoc>(doc: &D, login: &str) -> Result<Option<StaffMember>> {
    validate_login(login)?;
    store(doc)?;
    let users = users(doc)?;
    read_entry(doc, &users, login)
}

/// The `users` map.
fn users<D: ReadDoc>(doc: &D) -> Result<ObjId> {
    match doc.get(ROOT, USERS)? {
        Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
        Some(_) => Err(corrupt(USERS, "not a map")),
        None => Err(StaffError::NotAStaffDoc),
    }
}

/// The entry of `login`: every value the key holds is decoded and checked (a merge of
/// concurrent writes may leave several), and the one with the largest `updated_at` wins.
fn read_entry<D: ReadDoc>(doc: &D, users: &ObjId, login: &str) -> Result<Option<StaffMember>> {
    let mut winner: Option<(StaffMember, String)> = None;
    for (value, _) in doc.get_all(users, login)? {
        let json = match value.as_str() {
            Some(json) => json.to_owned(),
            None => return Err(corrupt(path(login), "not a string")),
        };
        let member = decode(login, &json)?;
        // Equal timestamps cannot come from two honest writers (the node is part of the
        // HLC); the JSON breaks the tie so every replica picks the same value.
        let newer = winner.as_ref().is_none_or(|(best, best_json)| {
            (&member.updated_at, &json) > (&best.updated_at, best_json)
        });
        if newer {
            winner = Some((member, json));
        }
    }
    Ok(winner.map(|(member, _)| member))
}

/// Parses a stored member and re-checks it: the pair of the checks made when written.
fn decode(login: &str, json: &str) -> Result<StaffMember> {
    let key = path(login);
    let member: StaffMember = serde_json::from_str(json).map_err(|e| corrupt(&key, e))?;
    if member.login != login {
        return Err(corrupt(&key, "login differs from its key"));
    }
    member.validate().map_err(|e| corrupt(&key, e))?;
    Ok(member)
}

fn path(login: &str) -> String {
    format!("{USERS}/{}", login.chars().take(80).collect::<String>())
}

fn corrupt(key: impl Into<String>, reason: impl ToString) -> StaffError {
    StaffError::Corrupt {
        key: key.into(),
        reason: reason.to_string(),
    }
}
