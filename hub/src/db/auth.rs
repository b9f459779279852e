//! Credentials: till devices (per-device bearer tokens), hub users (argon2id password
//! hashes) and server-side login sessions.
//!
//! Tokens are 32 random bytes, hex-encoded, shown once and never stored: the database keeps
//! their SHA-256. Looking a token up hashes it first and compares hashes by SQL equality, so
//! the comparison leaks nothing useful about the plaintext (no constant-time compare needed).
//! Argon2 is deliberately slow, so it runs on the blocking thread pool.

use crate::auth_types::Role;
use crate::db::ids::{validate_store_id, validate_till_id, validate_user_name};
use crate::db::{now_ms, Db, DbError, DbTx};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::time::Duration;

/// Bytes of randomness in a device or session token (hex doubles it to 64 characters).
const TOKEN_BYTES: usize = 32;

/// An enrolled till, as identified by its token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Device {
    /// The till's store.
    pub store: String,
    /// The till.
    pub till: String,
}

/// A device row for the admin list (no token material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// The till's store.
    pub store: String,
    /// The till.
    pub till: String,
    /// When the current token was issued.
    pub created_at_ms: i64,
    /// Revoked devices are refused until enrolled again.
    pub revoked: bool,
}

/// A hub user (never carries the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The store the user is limited to; `None` = all stores.
    pub store: Option<String>,
    /// Creation time.
    pub created_at_ms: i64,
}

type UserRow = (String, String, Option<String>, i64);

fn user_from_row((name, role, store, created_at_ms): UserRow) -> Result<User, DbError> {
    Ok(User {
        name,
        role: role.parse()?,
        store,
        created_at_ms,
    })
}

/// A new random token, 64 lowercase hex characters.
fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    // ThreadRng is a CSPRNG reseeded from the OS.
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a token, hex: what the database stores.
fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An argon2id PHC string of `secret` (password or PIN), computed on the blocking pool.
pub async fn hash_secret(secret: &str) -> Result<String, DbError> {
    let secret = secret.to_owned();
    blocking(move || hash_password(&secret)).await
}

fn hash_password(password: &str) -> Result<String, DbError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| DbError::PasswordHash(e.to_string()))?;
    // Argon2::default() is argon2id v19, m=19 MiB, t=2, p=1 (OWASP's minimum).
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DbError::PasswordHash(e.to_string()))
}

fn password_matches(password: &str, stored: &str) -> Result<bool, DbError> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| DbError::corrupt("password_hash", e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A hash of a random password, verified against when the user does not exist so that a
/// wrong name costs the same time as a wrong password.
fn dummy_hash() -> Result<&'static str, DbError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_password(&random_token())?;
    Ok(DUMMY.get_or_init(|| h))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError::PasswordHash(format!("hashing task failed: {e}")))?
}

impl DbTx {
    /// Enrols (or re-enrols) a till and returns its new plaintext token. Re-enrolling
    /// replaces the old token and clears a revocation.
    pub async fn enroll_till(&mut self, store: &str, till: &str) -> Result<String, DbError> {
        validate_store_id(store)?;
        validate_till_id(till)?;
        let token = random_token();
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO devices (store, till, token_hash, created_at_ms, revoked)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (store, till) DO UPDATE SET token_hash = excluded.token_hash,
                   created_at_ms = excluded.created_at_ms, revoked = excluded.revoked",
            )
            .bind(store)
            .bind(till)
            .bind(hash_token(&token))
            .bind(now_ms())
            .bind(false)
            .execute(&mut *c)
            .await?;
        });
        Ok(token)
    }

    /// Revokes a till's token. Returns false when the till was never enrolled.
    pub async fn revoke_till(&mut self, store: &str, till: &str) -> Result<bool, DbError> {
        validate_store_id(store)?;
        validate_till_id(till)?;
        let changed = on_tx!(self, c => {
            sqlx::query("UPDATE devices SET revoked = $3 WHERE store = $1 AND till = $2")
                .bind(store)
                .bind(till)
                .bind(true)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }
}

impl Db {
    /// The till a token belongs to, unless unknown or revoked.
    pub async fn device_by_token(&self, token: &str) -> Result<Option<Device>, DbError> {
        let well_formed =
            token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Ok(None);
        }
        let row: Option<(String, String)> = on_reader!(self, p => {
            sqlx::query_as("SELECT store, till FROM devices WHERE token_hash = $1 AND revoked = $2")
                .bind(hash_token(token))
                .bind(false)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|(store, till)| Device { store, till }))
    }

    /// Every enrolled device, ordered by (store, till).
    pub async fn list_devices(&self) -> Result<Vec<DeviceInfo>, DbError> {
        let rows: Vec<(String, String, i64, bool)> = on_reader!(self, p => {
            sqlx::query_as("SELECT store, till, created_at_ms, revoked FROM devices ORDER BY store, till")
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(store, till, created_at_ms, revoked)| DeviceInfo {
                store,
                till,
                created_at_ms,
                revoked,
            })
            .collect())
    }

    /// The user if `password` is right; `None` for a wrong password or an unknown user
    /// (both take one argon2 verification).
    pub async fn verify_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<User>, DbError> {
        if validate_user_name(name).is_err()
            || password.len() > crate::auth_types::MAX_PASSWORD_BYTES
        {
            return Ok(None);
        }
        let row: Option<(String, String, Option<String>, i64, String)> = on_reader!(self, p => {
            sqlx::query_as(
                "SELECT name, role, store, created_at_ms, password_hash FROM users WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(p)
            .await?
        });
        let password = password.to_owned();
        match row {
            None => {
                blocking(move || {
                    let _ = password_matches(&password, dummy_hash()?)?;
                    Ok(())
                })
                .await?;
                Ok(None)
            }
            Some((name, role, store, created_at_ms, stored)) => {
                let ok = blocking(move || password_matches(&password, &stored)).await?;
                if ok {
                    user_from_row((name, role, store, created_at_ms)).map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// A user by name.
    pub async fn user(&self, name: &str) -> Result<Option<User>, DbError> {
        let row: Option<UserRow> = on_reader!(self, p => {
            sqlx::query_as("SELECT name, role, store, created_at_ms FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(p)
                .await?
        });
        row.map(user_from_row).transpose()
    }

    /// Every user, ordered by name.
    pub async fn users(&self) -> Result<Vec<User>, DbError> {
        let rows: Vec<UserRow> = on_reader!(self, p => {
            sqlx::query_as("SELECT name, role, store, created_at_ms FROM users ORDER BY name")
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(user_from_row).collect()
    }

    /// The user of a live session: `None` when the token is unknown or expired at `now_ms`.
    pub async fn login_user(&self, token: &str, now_ms: i64) -> Result<Option<User>, DbError> {
        let row: Option<UserRow> = on_reader!(self, p => {
            sqlx::query_as(
                "SELECT u.name, u.role, u.store, u.created_at_ms
                 FROM user_sessions s JOIN users u ON u.name = s.user_name
                 WHERE s.token_hash = $1 AND s.expires_at_ms > $2",
            )
            .bind(hash_token(token))
            .bind(now_ms)
            .fetch_optional(p)
            .await?
        });
        row.map(user_from_row).transpose()
    }
}

impl DbTx {
    /// Inserts a user row with an argon2id `password_hash` (see [`hash_secret`]).
    /// [`DbError::AlreadyExists`] if the name is taken. Validation of the secret and the
    /// staff document are the user service's ([`crate::users`]).
    pub async fn insert_user(&mut self, user: &User, password_hash: &str) -> Result<(), DbError> {
        validate_user_name(&user.name)?;
        if let Some(store) = &user.store {
            validate_store_id(store)?;
        }
        let inserted = on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO users (name, role, password_hash, store, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(password_hash)
            .bind(user.store.as_deref())
            .bind(user.created_at_ms)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(DbError::AlreadyExists {
                what: "user",
                key: user.name.clone(),
            });
        }
        Ok(())
    }

    /// A user by name, read inside this transaction (after the caller's own writes).
    pub async fn user(&mut self, name: &str) -> Result<Option<User>, DbError> {
        let row: Option<UserRow> = on_tx!(self, c => {
            sqlx::query_as("SELECT name, role, store, created_at_ms FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(user_from_row).transpose()
    }

    /// The stored argon2id hash of `name`'s secret, read inside this transaction.
    pub async fn password_hash(&mut self, name: &str) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = on_tx!(self, c => {
            sqlx::query_as("SELECT password_hash FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row.map(|(hash,)| hash))
    }

    /// Replaces a user's role, store and secret hash. [`DbError::NotFound`] for an unknown
    /// user.
    pub async fn update_user(&mut self, user: &User, password_hash: &str) -> Result<(), DbError> {
        if let Some(store) = &user.store {
            validate_store_id(store)?;
        }
        let updated = on_tx!(self, c => {
            sqlx::query(
                "UPDATE users SET role = $2, store = $3, password_hash = $4 WHERE name = $1",
            )
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(user.store.as_deref())
            .bind(password_hash)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(DbError::NotFound {
                what: "user",
                key: user.name.clone(),
            });
        }
        Ok(())
    }

    /// Starts a login session for `user` lasting `ttl` and returns its plaintext token.
    pub async fn create_login(&mut self, user: &str, ttl: Duration) -> Result<String, DbError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at_ms = now_ms().saturating_add(ttl_ms);
        let token = random_token();
        let inserted = on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO user_sessions (token_hash, user_name, expires_at_ms)
                 SELECT $1, name, $3 FROM users WHERE name = $2",
            )
            .bind(hash_token(&token))
            .bind(user)
            .bind(expires_at_ms)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(DbError::NotFound {
                what: "user",
                key: user.to_owned(),
            });
        }
        Ok(token)
    }

    /// Ends a session (logout). Returns whether it existed.
    pub async fn delete_login(&mut self, token: &str) -> Result<bool, DbError> {
        let deleted = on_tx!(self, c => {
            sqlx::query("DELETE FROM user_sessions WHERE token_hash = $1")
                .bind(hash_token(token))
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Deletes sessions expired at `now_ms`; returns how many.
    pub async fn delete_expired(&mut self, now_ms: i64) -> Result<u64, DbError> {
        let deleted = on_tx!(self, c => {
            sqlx::query("DELETE FROM user_sessions WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hashes_differ_from_them() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_ne!(hash_token(&a), a);
        assert_eq!(hash_token(&a), hash_token(&a));
    }

    #[test]
    fn argon2_round_trip() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &hash).expect("verify"));
        assert!(!password_matches("wrong horse", &hash).expect("verify"));
        assert!(password_matches("x", "not a hash").is_err());
    }
}
