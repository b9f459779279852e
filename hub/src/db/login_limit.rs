//! Failed-login throttling, kept in the database so that every hub process sharing it
//! applies one limit per user name (an attacker cannot multiply the budget by spreading
//! attempts over hubs).
//!
//! Rule: [`LoginLimit::max_failures`] failures within [`LoginLimit::window`] lock the name
//! for [`LoginLimit::lockout`]. A successful login clears the record. Names that can never
//! exist (invalid syntax) are not recorded, so the table only grows with plausible names,
//! and stale rows are pruned whenever a failure is recorded.

use crate::db::ids::validate_user_name;
use crate::db::{Db, DbError, DbTx};
use std::time::Duration;

/// The throttling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimit {
    /// Failures tolerated within `window` before the name is locked.
    pub max_failures: i64,
    /// Window over which failures are counted.
    pub window: Duration,
    /// How long a locked name stays locked.
    pub lockout: Duration,
}

impl Default for LoginLimit {
    /// 5 failures in 15 minutes lock the name for 15 minutes (OWASP ASVS 2.2.1 territory).
    fn default() -> Self {
        LoginLimit {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Db {
    /// Until when (Unix ms) `name` is locked at `now_ms`; `None` when it may try to log in.
    pub async fn login_locked_until(
        &self,
        name: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, DbError> {
        if validate_user_name(name).is_err() {
            return Ok(None);
        }
        let until: Option<i64> = on_reader!(self, p => {
            sqlx::query_scalar(
                "SELECT locked_until_ms FROM login_attempts WHERE name = $1 AND locked_until_ms > $2",
            )
            .bind(name)
            .bind(now_ms)
            .fetch_optional(p)
            .await?
        });
        Ok(until)
    }
}

impl DbTx {
    /// Records a failed login for `name` at `now_ms`; returns the lock expiry when this
    /// failure locked the name.
    pub async fn record_login_failure(
        &mut self,
        name: &str,
        now_ms: i64,
        limit: &LoginLimit,
    ) -> Result<Option<i64>, DbError> {
        if validate_user_name(name).is_err() {
            return Ok(None);
        }
        let window_start = now_ms.saturating_sub(ms(limit.window));
        let lock_until = now_ms.saturating_add(ms(limit.lockout));
        let locked: Option<i64> = on_tx!(self, c => {
            sqlx::query(
                "DELETE FROM login_attempts WHERE window_start_ms < $1 AND locked_until_ms < $2",
            )
            .bind(window_start)
            .bind(now_ms)
            .execute(&mut *c)
            .await?;
            // ON CONFLICT DO UPDATE locks the row (PostgreSQL), so concurrent failures on two
            // hubs each count once.
            let (failures, locked_until): (i64, i64) = sqlx::query_as(
                "INSERT INTO login_attempts (name, failures, window_start_ms, locked_until_ms)
                 VALUES ($1, 1, $2, 0)
                 ON CONFLICT (name) DO UPDATE SET
                   failures = CASE WHEN login_attempts.window_start_ms < $3 THEN 1
                                   ELSE login_attempts.failures + 1 END,
                   window_start_ms = CASE WHEN login_attempts.window_start_ms < $3 THEN $2
                                          ELSE login_attempts.window_start_ms END
                 RETURNING failures, locked_until_ms",
            )
            .bind(name)
            .bind(now_ms)
            .bind(window_start)
            .fetch_one(&mut *c)
            .await?;
            if failures >= limit.max_failures && locked_until <= now_ms {
                sqlx::query(
                    "UPDATE login_attempts SET locked_until_ms = $2, failures = 0,
                       window_start_ms = $3 WHERE name = $1",
                )
                .bind(name)
                .bind(lock_until)
                .bind(now_ms)
                .execute(&mut *c)
                .await?;
                Some(lock_until)
            } else {
                None
            }
        });
        Ok(locked)
    }

    /// Forgets the failures of `name` (after a successful login).
    pub async fn clear_login_failures(&mut self, name: &str) -> Result<(), DbError> {
        on_tx!(self, c => {
            sqlx::query("DELETE FROM login_attempts WHERE name = $1")
                .bind(name)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }
}
