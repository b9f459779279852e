//! The page's loops with the till: the sync loop (sessions of `POST /v1/pos/sync` rounds,
//! under the write gate described in `app/core.rs`), the buffer status poll, and the
//! forgetting of closed sessions the till holds whole.
//!
//! A round the till refuses (`403`/`422` `sync_refused`, or an answer the page cannot take)
//! is not retried silently: its reason is kept in `Ctx::sync_refused`, shown under the state
//! bar, and the network state reads `degraded` until a round goes through.
//!
//! The till serves the page only the sessions it still holds (it drops closed ones a week
//! after their close), so the page forgets a closed session once a reply of the sync round
//! just ended showed the till holds all of it and the OFD acknowledged all its receipts
//! (`Replica::synced_closed_sessions`): from IndexedDB first (documents and sync states in
//! one transaction), then from memory. Never at the start of a sync round nor at login, on
//! a persisted sync state alone (a till restored from an old backup would make the page drop
//! the only copy). Checked at the end of the first sync round after login and of rounds
//! in which a session changed or receipts reached the till.

use leptos::prelude::*;

use super::core::{db, gate, login_expired, refresh, token, with_core, with_replica};
use super::{now_ms, Ctx};
use crate::api::{self, ApiError};
use crate::i18n::Key;
use crate::idb::Db;
use crate::status::ReceiptState;
use sync_engine::Envelope;

/// The sync loop's tick.
const TICK_MS: u32 = 100;
/// Sync period while a receipt is unsent or not acknowledged.
const BUSY_SYNC_MS: u64 = 1_000;
/// Sync period otherwise.
const IDLE_SYNC_MS: u64 = 5_000;
/// Backoff after a failed round: from this, doubling, at most [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: u64 = 500;
/// Longest wait between retries.
const MAX_BACKOFF_MS: u64 = 5_000;
/// The till's buffer status is polled this often.
const STATUS_POLL_MS: u32 = 2_000;

/// Syncs with the till: every second while a receipt is unsent or not acknowledged, else
/// every five; after a failure, backoff up to five seconds; at once when kicked.
pub async fn sync_loop(ctx: Ctx) {
    loop {
        sleep_ms(TICK_MS).await;
        let now = now_ms();
        let due = with_core(|core| {
            let ready = core.replica.is_some() && !core.poisoned;
            let due = ready && (core.sync_kicked || now >= core.next_sync_ms);
            if due {
                core.sync_kicked = false;
            }
            due
        });
        let Some(token) = token(ctx).filter(|_| due && !ctx.login_expired.get_untracked()) else {
            continue;
        };
        let result = sync_round(ctx, &token).await;
        let busy = ctx.unsent.get_untracked() > 0
            || ctx.last_receipt.with_untracked(|badge| {
                badge
                    .as_ref()
                    .is_some_and(|b| b.state != ReceiptState::Acknowledged)
            });
        let now = now_ms();
        if !ctx.synced_once.get_untracked() {
            ctx.synced_once.set(true);
        }
        match result {
            Ok(()) => {
                ctx.reachable.set(true);
                ctx.last_sync_ms.set(Some(now));
                if ctx.sync_refused.with_untracked(Option::is_some) {
                    ctx.sync_refused.set(None);
                }
                with_core(|core| {
                    core.backoff_ms = 0;
                    core.next_sync_ms = now + if busy { BUSY_SYNC_MS } else { IDLE_SYNC_MS };
                });
                continue;
            }
            Err(ApiError::Unauthorized) => login_expired(ctx),
            Err(ApiError::Unreachable(_)) => ctx.reachable.set(false),
            Err(error) => {
                // The till answered, but this page's data does not get through.
                let reason = error.describe();
                leptos::logging::warn!("sync round refused: {reason}");
                ctx.reachable.set(true);
                if ctx
                    .sync_refused
                    .with_untracked(|shown| shown.as_ref() != Some(&reason))
                {
                    ctx.sync_refused.set(Some(reason));
                }
            }
        }
        with_core(|core| {
            core.backoff_ms = (core.backoff_ms * 2).clamp(FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
            core.next_sync_ms = now + core.backoff_ms;
        });
    }
}

/// True while the replica a sync round began on is still the page's.
fn same_replica(epoch: u64) -> bool {
    with_core(|core| core.replica_epoch == epoch && core.replica.is_some())
}

/// One sync round: requests until the replica has nothing left to say.
async fn sync_round(ctx: Ctx, token: &str) -> Result<(), ApiError> {
    let Some(db) = db() else { return Ok(()) };
    let gate = gate();
    let bad = |error: &dyn std::fmt::Display| ApiError::BadAnswer(error.to_string());
    let (mut round, epoch) = {
        let _held = gate.lock().await;
        let started = with_core(|core| {
            let epoch = core.replica_epoch;
            core.replica
                .as_mut()
                .map(|replica| (replica.start_sync(), epoch))
        });
        let Some(started) = started else {
            return Ok(());
        };
        started
    };
    loop {
        let request = {
            let _held = gate.lock().await;
            if !same_replica(epoch) {
                return Ok(());
            }
            let request = with_replica(|replica| replica.next_request(&mut round));
            let request = request.transpose().map_err(|e| bad(&e))?.flatten();
            if request.is_none() {
                // The round ended: its replies are the proof the till holds what goes.
                forget_synced_sessions(&db).await;
            }
            request
        };
        let Some(request) = request else {
            refresh(ctx);
            return Ok(());
        };
        let bytes = request.encode().map_err(|e| bad(&e))?;
        let reply = api::sync_round(token, &bytes).await?;
        ctx.reachable.set(true);
        let reply = Envelope::decode(&reply).map_err(|e| bad(&e))?;
        let _held = gate.lock().await;
        if with_core(|core| core.poisoned) || !same_replica(epoch) {
            return Ok(());
        }
        let Some(write) = with_replica(|replica| replica.apply_reply(&mut round, &reply)) else {
            return Ok(());
        };
        let write = write.map_err(|e| bad(&e))?;
        for (doc, reason) in &write.failed {
            leptos::logging::warn!("document {doc} not applied: {reason}");
        }
        if write.sessions_changed || !write.newly_sent.is_empty() {
            with_core(|core| core.prune_due = true);
        }
        if !write.is_empty() {
            if let Err(error) = db.write_sync(&write).await {
                with_core(|core| core.poisoned = true);
                leptos::logging::error!("sync reply not persisted: {}", error.0);
                ctx.fatal
                    .set(Some(ctx.t_now(Key::StorageFailed).to_owned()));
                return Ok(());
            }
        }
        drop(_held);
        refresh(ctx);
    }
}

/// Forgets the closed sessions the ended sync round proved the till holds whole and the
/// OFD acknowledged, when some may have become so: from IndexedDB first, then from memory.
/// Called under the write gate, only when a sync round ends. A failed delete keeps them
/// (nothing is lost) and is retried after the next round.
async fn forget_synced_sessions(db: &Db) {
    let synced = with_core(|core| {
        if !std::mem::take(&mut core.prune_due) {
            return Vec::new();
        }
        core.replica
            .as_mut()
            .map(|replica| replica.synced_closed_sessions())
            .unwrap_or_default()
    });
    if synced.is_empty() {
        return;
    }
    match db.forget_docs(&synced).await {
        Ok(()) => {
            with_replica(|replica| replica.forget(&synced));
        }
        Err(error) => {
            leptos::logging::warn!("closed sessions not forgotten: {}", error.0);
            with_core(|core| core.prune_due = true);
        }
    }
}

/// Polls the till's buffer status every two seconds (also before login: the route is
/// public, and the state bar shows whether the till answers).
pub async fn status_loop(ctx: Ctx) {
    loop {
        let token = token(ctx).filter(|_| !ctx.login_expired.get_untracked());
        match api::buffer_status(token.as_deref()).await {
            Ok(status) => {
                ctx.reachable.set(true);
                ctx.till.set(Some(status));
            }
            Err(ApiError::Unauthorized) if token.is_some() => login_expired(ctx),
            Err(ApiError::Unauthorized) => ctx.reachable.set(true),
            Err(ApiError::Unreachable(_)) => ctx.reachable.set(false),
            Err(error) => leptos::logging::warn!("status: {}", error.describe()),
        }
        sleep_ms(STATUS_POLL_MS).await;
    }
}

/// Resolves after `ms` milliseconds.
pub async fn sleep_ms(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                i32::try_from(ms).unwrap_or(i32::MAX),
            );
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
