//! User administration, one service: creating a user, setting a password or PIN, changing a
//! role or store binding. Each operation validates its input, hashes the secret (argon2id, on
//! the blocking pool, before the transaction begins) and then, in ONE transaction, writes the
//! user row and the store's staff document (`staff/<store>`, [`crate::staff`]), so the tills'
//! copy of a cashier or manager never disagrees with the hub's row.
//!
//! Who is replicated to tills is [`staff_role`]: a cashier or a manager with a store. A user who
//! stops being replicated in a store (role or store changed) is written there as inactive, so
//! the store's tills refuse the old credentials once they sync.

use crate::auth_types::{validate_secret, Role};
use crate::db::ids::{validate_store_id, validate_user_name};
use crate::db::{hash_secret, now_ms, Db, DbError, DbTx, User};
use crate::staff::{put_member, staff_role, MemberUpdate};
use crdt_model::StaffRole;

/// A cashier must belong to a store: at the till the PIN alone names the cashier.
fn check_binding(role: Role, store: Option<&str>) -> Result<(), DbError> {
    if let Some(store) = store {
        validate_store_id(store)?;
    }
    if role == Role::Cashier && store.is_none() {
        return Err(DbError::invalid(
            "store",
            "a cashier must belong to a store",
        ));
    }
    Ok(())
}

/// Creates a user with an argon2id hash of `secret` (a 4..=8 digit PIN for cashiers, who must
/// also have a store). [`DbError::AlreadyExists`] if the name is taken. A cashier, or a manager
/// with a store, is also written into the store's staff document in the same transaction.
pub async fn create_user(
    db: &Db,
    name: &str,
    role: Role,
    secret: &str,
    store: Option<&str>,
) -> Result<User, DbError> {
    validate_user_name(name)?;
    check_binding(role, store)?;
    validate_secret(role, secret)?;
    let hash = hash_secret(secret).await?;
    let user = User {
        name: name.to_owned(),
        role,
        store: store.map(str::to_owned),
        created_at_ms: now_ms(),
    };
    let mut tx = db.begin().await?;
    tx.insert_user(&user, &hash).await?;
    replicate(&mut tx, &user, &hash, Some(secret), user.created_at_ms).await?;
    tx.commit().await?;
    Ok(user)
}

/// Sets a user's password (or a cashier's PIN), also in the staff document when the user is
/// replicated. [`DbError::NotFound`] for an unknown user.
pub async fn set_secret(db: &Db, name: &str, secret: &str) -> Result<User, DbError> {
    // The role decides the secret policy and is read before hashing (argon2 runs outside the
    // transaction); `change` refuses if it moved in between, so a concurrent `set_role` is
    // never undone.
    let current = db.user(name).await?.ok_or_else(|| not_found(name))?;
    let keep = Binding::Keep;
    change(
        db,
        name,
        current.role,
        current.store.as_deref(),
        secret,
        keep,
    )
    .await
}

/// Changes a user's role and store binding. The secret policy depends on the role (a cashier
/// has a PIN, everyone else a password), so the change carries the new secret.
pub async fn set_role(
    db: &Db,
    name: &str,
    role: Role,
    store: Option<&str>,
    secret: &str,
) -> Result<User, DbError> {
    change(db, name, role, store, secret, Binding::Set).await
}

/// Whether a change sets the role and store, or keeps the ones read before it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    Set,
    Keep,
}

fn not_found(name: &str) -> DbError {
    DbError::NotFound {
        what: "user",
        key: name.to_owned(),
    }
}

/// Rewrites the row of `name` with `role`, `store` and a hash of `secret`, and the staff
/// documents it leaves or joins, in one transaction.
async fn change(
    db: &Db,
    name: &str,
    role: Role,
    store: Option<&str>,
    secret: &str,
    binding: Binding,
) -> Result<User, DbError> {
    validate_user_name(name)?;
    check_binding(role, store)?;
    validate_secret(role, secret)?;
    let hash = hash_secret(secret).await?;
    let mut tx = db.begin().await?;
    let before = tx.user(name).await?.ok_or_else(|| not_found(name))?;
    if binding == Binding::Keep && (before.role != role || before.store.as_deref() != store) {
        return Err(DbError::Invalid {
            what: "user",
            reason: format!("the role or store of {name:?} changed meanwhile; try again"),
        });
    }
    // The store a user leaves keeps the hash it already had: the new secret's hash must not
    // reach tills where the user no longer works.
    let before_hash = tx
        .password_hash(name)
        .await?
        .ok_or_else(|| not_found(name))?;
    let after = User {
        role,
        store: store.map(str::to_owned),
        ..before.clone()
    };
    tx.update_user(&after, &hash).await?;
    let wall_ms = now_ms();
    let left = staff_role(before.role, before.store.as_deref()).is_some()
        && (staff_role(role, store).is_none() || before.store != after.store);
    // Staff documents are locked in store order, so two hubs changing users cannot deadlock.
    let mut writes: Vec<(&User, bool)> = Vec::new();
    if left {
        writes.push((&before, false));
    }
    writes.push((&after, true));
    writes.sort_by(|a, b| a.0.store.cmp(&b.0.store));
    for (user, active) in writes {
        if active {
            replicate(&mut tx, user, &hash, Some(secret), wall_ms).await?;
        } else {
            deactivate(&mut tx, user, &before_hash, wall_ms).await?;
        }
    }
    tx.commit().await?;
    Ok(after)
}

/// Writes `user` (active) into its store's staff document when it is replicated there; a
/// cashier's PIN must differ from the store's other active cashiers'.
async fn replicate(
    tx: &mut DbTx,
    user: &User,
    hash: &str,
    secret: Option<&str>,
    wall_ms: i64,
) -> Result<(), DbError> {
    let (Some(role), Some(store)) = (staff_role(user.role, user.store.as_deref()), &user.store)
    else {
        return Ok(());
    };
    let update = MemberUpdate {
        unique_pin: secret
            .filter(|_| role == StaffRole::Cashier)
            .map(str::to_owned),
        login: user.name.clone(),
        role,
        secret_hash: hash.to_owned(),
        active: true,
    };
    put_member(tx, store, update, wall_ms_u64(wall_ms)).await
}

/// Marks `user` inactive in the staff document of the store it had.
async fn deactivate(tx: &mut DbTx, user: &User, hash: &str, wall_ms: i64) -> Result<(), DbError> {
    let (Some(role), Some(store)) = (staff_role(user.role, user.store.as_deref()), &user.store)
    else {
        return Ok(());
    };
    let update = MemberUpdate {
        unique_pin: None,
        login: user.name.clone(),
        role,
        secret_hash: hash.to_owned(),
        active: false,
    };
    put_member(tx, store, update, wall_ms_u64(wall_ms)).await
}

/// The wall clock as the HLC wants it; a clock before 1970 is 0, as `now_ms` gives it.
fn wall_ms_u64(wall_ms: i64) -> u64 {
    u64::try_from(wall_ms).unwrap_or(0)
}
