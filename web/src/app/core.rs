//! The page's runtime: the replica, IndexedDB and the write gate in a thread-local (WASM is
//! single-threaded; none of them is `Send`), start-up, the sync loop, the status poll, and the
//! sale itself.
//!
//! The write gate (an async mutex) orders everything that touches the replica's documents
//! and IndexedDB: a sale holds it from the in-memory commit until its IndexedDB transaction
//! committed, and a sync round takes it to build a request and to apply and persist a reply.
//! So a request never carries a change that is not durable yet (a reload could otherwise make
//! a different change under the same actor and sequence number), and a newer document
//! snapshot is never overwritten by an older one.

use std::cell::RefCell;
use std::rc::Rc;

use crdt_model::ReceiptId;
use futures::lock::Mutex;
use leptos::prelude::*;
use leptos::task::spawn_local;
use sync_engine::Envelope;
use uuid::Uuid;

use super::{monotonic_ms, now_ms, Ctx, Panel, ReceiptBadge, Screen, SessionInfo};
use crate::api::{self, ApiError};
use crate::cart::{Cart, PaymentPlan};
use crate::i18n::{fill, Key, Lang};
use crate::idb::{key, Db};
use crate::lookup::CatalogueIndex;
use crate::replica::{is_device_id, new_device_id, Identity, Replica, ReplicaError};
use crate::status::{BufferView, ReceiptState};
use crate::tablock::{self, TabLock};
use crate::wire::LoginInfo;

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

#[derive(Default)]
struct Core {
    db: Option<Rc<Db>>,
    device: String,
    replica: Option<Replica>,
    index: Rc<CatalogueIndex>,
    index_version: u64,
    gate: Rc<Mutex<()>>,
    /// A sale is in memory but not in IndexedDB: nothing may be synced or sold any more.
    poisoned: bool,
    sync_kicked: bool,
    next_sync_ms: u64,
    backoff_ms: u64,
}

thread_local! {
    static CORE: RefCell<Core> = RefCell::new(Core::default());
}

fn with_core<R>(f: impl FnOnce(&mut Core) -> R) -> R {
    CORE.with(|core| f(&mut core.borrow_mut()))
}

fn db() -> Option<Rc<Db>> {
    with_core(|core| core.db.clone())
}

/// The device name of this browser profile.
pub fn device() -> String {
    with_core(|core| core.device.clone())
}

/// The catalogue index (cheap clone of an `Rc`).
pub fn index() -> Rc<CatalogueIndex> {
    with_core(|core| core.index.clone())
}

/// Asks the sync loop for a round now.
pub fn kick_sync() {
    with_core(|core| core.sync_kicked = true);
}

/// Runs `f` on the replica, if one is loaded.
pub fn with_replica<R>(f: impl FnOnce(&mut Replica) -> R) -> Option<R> {
    with_core(|core| core.replica.as_mut().map(f))
}

/// Start-up: tab lock, IndexedDB, stored settings, the login, then the loops.
pub fn start(ctx: Ctx) {
    spawn_local(async move {
        match tablock::acquire().await {
            TabLock::Held => {}
            TabLock::Refused => return ctx.screen.set(Screen::TabRefused { unsupported: false }),
            TabLock::Unsupported => {
                return ctx.screen.set(Screen::TabRefused { unsupported: true })
            }
        }
        let db = match Db::open().await {
            Ok(db) => Rc::new(db),
            Err(error) => {
                ctx.fatal.set(Some(format!("IndexedDB: {}", error.0)));
                return ctx.screen.set(Screen::Login);
            }
        };
        with_core(|core| core.db = Some(db.clone()));
        if let Ok(Some(lang)) = db.get_meta(key::LANG).await {
            ctx.lang.set(Lang::from_code(&lang));
        }
        let device = match db.get_meta(key::DEVICE).await {
            Ok(Some(device)) if is_device_id(&device) => device,
            _ => {
                let device = new_device_id();
                let _ = db.put_meta(&[(key::DEVICE, Some(&device))]).await;
                device
            }
        };
        with_core(|core| core.device = device);
        if let Ok(Some(json)) = db.get_meta(key::CART).await {
            if let Ok(cart) = serde_json::from_str::<Cart>(&json) {
                ctx.cart.set(cart);
            }
        }
        ctx.storage_ok.set(Some(tablock::persist_storage().await));
        let login = db
            .get_meta(key::LOGIN)
            .await
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str::<LoginInfo>(&json).ok());
        match login {
            Some(login) if !login.expired(now_ms()) => activate(ctx, login).await,
            Some(_) => {
                ctx.login_expired.set(true);
                ctx.screen.set(Screen::Login);
            }
            None => ctx.screen.set(Screen::Login),
        }
        persist_cart_on_change(ctx);
        spawn_local(sync_loop(ctx));
        spawn_local(status_loop(ctx));
        set_interval(
            move || ctx.now_ms.set(now_ms()),
            std::time::Duration::from_secs(1),
        );
    });
}

/// Logs in with `login`: loads the replica for its till and shows the right screen.
pub async fn activate(ctx: Ctx, login: LoginInfo) {
    let Some(db) = db() else { return };
    let device = device();
    let identity = match Identity::new(
        &login.store,
        &login.till,
        &device,
        &login.peer,
        &login.till_peer,
    ) {
        Ok(identity) => identity,
        Err(error) => return ctx.complain(error.to_string()),
    };
    let stored = match db.load_replica().await {
        Ok(stored) => stored,
        Err(error) => return ctx.fatal.set(Some(format!("IndexedDB: {}", error.0))),
    };
    let replica = match Replica::load(identity, stored) {
        Ok(replica) => replica,
        Err(error) => return ctx.complain(error.to_string()),
    };
    for (id, reason) in replica.skipped() {
        leptos::logging::warn!("stored document {id} skipped: {reason}");
    }
    let last = db.get_meta(key::LAST_RECEIPT).await.ok().flatten();
    with_core(|core| {
        core.replica = Some(replica);
        core.index_version = 0;
        core.sync_kicked = true;
    });
    if let Some(id) = last.and_then(|text| text.parse::<ReceiptId>().ok()) {
        ctx.last_receipt.set(Some(ReceiptBadge {
            id,
            state: ReceiptState::Saved,
            change: None,
            saved_in_ms: None,
        }));
    }
    ctx.login_expired.set(false);
    ctx.synced_once.set(false);
    ctx.login.set(Some(login));
    refresh(ctx);
    let open = ctx.session.get_untracked().is_some();
    ctx.screen.set(if open {
        Screen::Selling
    } else {
        Screen::OpenSession
    });
}

/// Re-reads what the page shows from the replica: the open session, unsent receipts, the
/// last receipt's state, the catalogue index; and moves between the session screens.
pub fn refresh(ctx: Ctx) {
    let facts = with_core(|core| {
        let replica = core.replica.as_ref()?;
        if core.index_version != replica.catalogue_version() {
            core.index = Rc::new(CatalogueIndex::new(replica.products()));
            core.index_version = replica.catalogue_version();
        }
        let session = replica.open_session().map(|open| SessionInfo {
            doc: open.doc.to_string(),
            cashier: open.header.cashier.clone(),
            opened_ms: open.header.opened_at.physical_ms,
        });
        let last = ctx.last_receipt.get_untracked().and_then(|badge| {
            replica
                .receipt_state(badge.id)
                .map(|state| (badge.id, state))
        });
        Some((
            session,
            replica.unsent().len(),
            last,
            core.index_version,
            core.index.len(),
        ))
    });
    let Some((session, unsent, last, version, size)) = facts else {
        return;
    };
    if ctx.catalogue_version.get_untracked() != version {
        ctx.catalogue_version.set(version);
        ctx.catalogue_size.set(size);
    }
    if ctx.unsent.get_untracked() != unsent {
        ctx.unsent.set(unsent);
    }
    if let Some((id, state)) = last {
        ctx.last_receipt.update(|badge| {
            if let Some(badge) = badge.as_mut().filter(|badge| badge.id == id) {
                badge.state = state;
            }
        });
    }
    let open = session.is_some();
    if ctx.session.get_untracked() != session {
        ctx.session.set(session);
    }
    match ctx.screen.get_untracked() {
        Screen::OpenSession if open => ctx.screen.set(Screen::Selling),
        Screen::Selling if !open => ctx.screen.set(Screen::OpenSession),
        _ => {}
    }
}

/// Writes the cart to IndexedDB whenever it changes, so a reload keeps it.
fn persist_cart_on_change(ctx: Ctx) {
    Effect::new(move |_| {
        let cart = ctx.cart.get();
        let Ok(json) = serde_json::to_string(&cart) else {
            return;
        };
        if let Some(db) = db() {
            spawn_local(async move {
                if let Err(error) = db.put_meta(&[(key::CART, Some(&json))]).await {
                    leptos::logging::warn!("cart not saved: {}", error.0);
                }
            });
        }
    });
}

/// Stores the language.
pub fn save_lang(lang: Lang) {
    if let Some(db) = db() {
        spawn_local(async move {
            let _ = db.put_meta(&[(key::LANG, Some(lang.code()))]).await;
        });
    }
}

/// Stores (or forgets) the login.
pub async fn save_login(login: Option<&LoginInfo>) {
    let Some(db) = db() else { return };
    let json = login.and_then(|login| serde_json::to_string(login).ok());
    if let Err(error) = db.put_meta(&[(key::LOGIN, json.as_deref())]).await {
        leptos::logging::warn!("login not saved: {}", error.0);
    }
}

/// Forgets the replica (logout).
pub fn unload() {
    with_core(|core| {
        core.replica = None;
        core.index = Rc::new(CatalogueIndex::default());
        core.index_version = 0;
    });
}

/// The login expired (401): back to the login screen, nothing lost.
pub fn login_expired(ctx: Ctx) {
    ctx.login_expired.set(true);
    if !matches!(ctx.screen.get_untracked(), Screen::Login) {
        ctx.screen.set(Screen::Login);
    }
}

/// The current bearer token.
pub fn token(ctx: Ctx) -> Option<String> {
    ctx.login
        .with_untracked(|login| login.as_ref().map(|login| login.token.clone()))
}

/// The buffer as the state bar shows it.
pub fn buffer_view(ctx: Ctx) -> BufferView {
    let unsent = ctx.unsent.get();
    ctx.till
        .with(|till| BufferView::new(till.as_ref(), u64::try_from(unsent).unwrap_or(u64::MAX)))
}

/// Makes the sale: commit into the open session, persist (with the emptied cart), only then
/// show `saved` and kick a sync.
pub async fn sell(ctx: Ctx, plan: PaymentPlan) {
    let started = monotonic_ms();
    if ctx.fatal.get_untracked().is_some() || with_core(|core| core.poisoned) {
        return;
    }
    if buffer_view_untracked(ctx).blocks_sales() {
        return ctx.complain(ctx.t_now(Key::SaleBlocked));
    }
    let Some(db) = db() else { return };
    let cart = ctx.cart.get_untracked();
    let draft = match cart.to_draft(&device(), &plan) {
        Ok(draft) => draft,
        Err(error) => {
            let reason = error.describe(ctx.lang.get_untracked());
            return ctx.complain(payment_error_text(ctx, &reason));
        }
    };
    let gate = with_core(|core| core.gate.clone());
    let _held = gate.lock().await;
    let id = ReceiptId::new(Uuid::new_v4());
    let Some(sale) = with_replica(|replica| replica.sell(draft, id, now_ms())) else {
        return;
    };
    let write = match sale {
        Ok(write) => write,
        Err(ReplicaError::NoOpenSession) => {
            return ctx.complain(ctx.t_now(Key::WaitingForSession));
        }
        Err(error) => {
            let reason = error.describe(ctx.lang.get_untracked());
            return ctx.complain(payment_error_text(ctx, &reason));
        }
    };
    let empty = serde_json::to_string(&Cart::default()).unwrap_or_default();
    if let Err(error) = db.write_sale(&write, &empty).await {
        with_core(|core| core.poisoned = true);
        leptos::logging::error!("sale not persisted: {}", error.0);
        return ctx
            .fatal
            .set(Some(ctx.t_now(Key::StorageFailed).to_owned()));
    }
    drop(_held);
    let elapsed = (monotonic_ms() - started).max(0.0).round();
    ctx.last_receipt.set(Some(ReceiptBadge {
        id,
        state: ReceiptState::Saved,
        change: plan.change.is_positive().then_some(plan.change),
        saved_in_ms: (elapsed < f64::from(u32::MAX)).then_some(elapsed as u32),
    }));
    ctx.cart.set(Cart::default());
    ctx.panel.set(Panel::None);
    ctx.notice.set(None);
    refresh(ctx);
    kick_sync();
    ctx.focus_scan();
}

fn buffer_view_untracked(ctx: Ctx) -> BufferView {
    let unsent = u64::try_from(ctx.unsent.get_untracked()).unwrap_or(u64::MAX);
    ctx.till
        .with_untracked(|till| BufferView::new(till.as_ref(), unsent))
}

fn payment_error_text(ctx: Ctx, reason: &str) -> String {
    fill(ctx.t_now(Key::SaleFailed), &[("reason", reason)])
}

/// Syncs with the till: every second while a receipt is unsent or not acknowledged, else
/// every five; after a failure, backoff up to five seconds; at once when kicked.
async fn sync_loop(ctx: Ctx) {
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
        let result = sync_session(ctx, &token).await;
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
                with_core(|core| {
                    core.backoff_ms = 0;
                    core.next_sync_ms = now + if busy { BUSY_SYNC_MS } else { IDLE_SYNC_MS };
                });
            }
            Err(ApiError::Unauthorized) => login_expired(ctx),
            Err(error) => {
                if matches!(error, ApiError::Unreachable(_)) {
                    ctx.reachable.set(false);
                } else {
                    leptos::logging::warn!("sync round failed: {}", error.describe());
                }
                with_core(|core| {
                    core.backoff_ms = (core.backoff_ms * 2).clamp(FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
                    core.next_sync_ms = now + core.backoff_ms;
                });
            }
        }
    }
}

/// One sync session: requests until the replica has nothing left to say.
async fn sync_session(ctx: Ctx, token: &str) -> Result<(), ApiError> {
    let Some(db) = db() else { return Ok(()) };
    let gate = with_core(|core| core.gate.clone());
    let Some(mut session) = with_replica(|replica| replica.start_sync()) else {
        return Ok(());
    };
    let bad = |error: &dyn std::fmt::Display| ApiError::BadAnswer(error.to_string());
    loop {
        let request = {
            let _held = gate.lock().await;
            with_replica(|replica| replica.next_request(&mut session))
        };
        let Some(request) = request.transpose().map_err(|e| bad(&e))?.flatten() else {
            return Ok(());
        };
        let bytes = request.encode().map_err(|e| bad(&e))?;
        let reply = api::sync_round(token, &bytes).await?;
        ctx.reachable.set(true);
        let reply = Envelope::decode(&reply).map_err(|e| bad(&e))?;
        let _held = gate.lock().await;
        if with_core(|core| core.poisoned) {
            return Ok(());
        }
        let Some(write) = with_replica(|replica| replica.apply_reply(&mut session, &reply)) else {
            return Ok(());
        };
        let write = write.map_err(|e| bad(&e))?;
        for (doc, reason) in &write.failed {
            leptos::logging::warn!("document {doc} not applied: {reason}");
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

/// Polls the till's buffer status every two seconds (also before login: the route is
/// public, and the state bar shows whether the till answers).
async fn status_loop(ctx: Ctx) {
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
