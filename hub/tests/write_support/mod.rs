//! One-statement writes for tests: each method begins a transaction, runs the `DbTx` method of
//! the same name and commits, so a test reads as the operation it checks. Production code has
//! no such shortcut (every write is a `DbTx` method inside the caller's transaction).

// Each test binary uses a different subset; the trait is local to the test crate, where
// `async fn` in a trait needs no `Send` bound.
#![allow(dead_code, async_fn_in_trait)]

use hub::auth_types::Role;
use hub::db::{Db, DbError, PeerDocStatus, User};
use std::time::Duration;

/// See the module doc.
pub trait WriteOnce {
    async fn enroll_till(&self, store: &str, till: &str) -> Result<String, DbError>;
    async fn revoke_till(&self, store: &str, till: &str) -> Result<bool, DbError>;
    async fn create_user(
        &self,
        name: &str,
        role: Role,
        secret: &str,
        store: Option<&str>,
    ) -> Result<User, DbError>;
    async fn create_login(&self, user: &str, ttl: Duration) -> Result<String, DbError>;
    async fn delete_login(&self, token: &str) -> Result<bool, DbError>;
    async fn delete_expired(&self, now_ms: i64) -> Result<u64, DbError>;
    async fn upsert_peer_doc_status(&self, status: &PeerDocStatus) -> Result<(), DbError>;
    async fn record_peer_sync(
        &self,
        peer: &str,
        at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), DbError>;
}

macro_rules! once {
    ($db:expr, $tx:ident => $call:expr) => {{
        let mut $tx = $db.begin().await?;
        let value = $call.await?;
        $tx.commit().await?;
        Ok(value)
    }};
}

impl WriteOnce for Db {
    async fn enroll_till(&self, store: &str, till: &str) -> Result<String, DbError> {
        once!(self, tx => tx.enroll_till(store, till))
    }
    async fn revoke_till(&self, store: &str, till: &str) -> Result<bool, DbError> {
        once!(self, tx => tx.revoke_till(store, till))
    }
    async fn create_user(
        &self,
        name: &str,
        role: Role,
        secret: &str,
        store: Option<&str>,
    ) -> Result<User, DbError> {
        hub::users::create_user(self, name, role, secret, store).await
    }
    async fn create_login(&self, user: &str, ttl: Duration) -> Result<String, DbError> {
        once!(self, tx => tx.create_login(user, ttl))
    }
    async fn delete_login(&self, token: &str) -> Result<bool, DbError> {
        once!(self, tx => tx.delete_login(token))
    }
    async fn delete_expired(&self, now_ms: i64) -> Result<u64, DbError> {
        once!(self, tx => tx.delete_expired(now_ms))
    }
    async fn upsert_peer_doc_status(&self, status: &PeerDocStatus) -> Result<(), DbError> {
        once!(self, tx => tx.upsert_peer_doc_status(status))
    }
    async fn record_peer_sync(
        &self,
        peer: &str,
        at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        once!(self, tx => tx.record_peer_sync(peer, at_ms, error))
    }
}
