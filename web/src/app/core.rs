//! The page's runtime: the replica, IndexedDB and the write gate in a thread-local (WASM is
//! single-threaded; none of them is `Send`), start-up, login, the cart's persistence, and the
//! sale itself. The sync and status loops are in `app/sync.rs`.
//!
//! The write gate (an async mutex) orders everything that touches the replica's documents
//! and IndexedDB: a sale holds it from reading the cart until its IndexedDB transaction
//! committed, a sync round takes it to build a request and to apply and persist a reply, and
//! a login or logout takes it to replace the replica. So a request never carries a change
//! that is not durable yet (a reload could otherwise make a different change under the same
//! actor and sequence number), a newer document snapshot is never overwritten by an older
//! one, and no write in flight is lost with the replica it came from.
//!
//! One sale at a time: `Core::selling` is set when a sale begins and cleared when it ends, so
//! a second confirmation while the first waits for the gate (F2 and Enter again) is refused
//! instead of making a second receipt for the same goods. While a sale runs the cart is not
//! written on its own (the sale writes the emptied cart with the receipt; a cart write landing
//! after it could bring sold lines back after a crash), and logout waits for it.

use std::cell::RefCell;
use std::rc::Rc;

use crdt_model::ReceiptId;
use futures::lock::Mutex;
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::{monotonic_ms, now_ms, sync, Ctx, Panel, ReceiptBadge, Screen, SessionInfo};
use crate::cart::{Cart, CartError, PaymentError, PaymentPlan};
use crate::i18n::{fill, Key, Lang};
use crate::idb::{key, Db};
use crate::lookup::CatalogueIndex;
use crate::replica::{is_device_id, new_device_id, Identity, Replica, ReplicaError};
use crate::status::{self, BufferView, ReceiptState, SaleBlock};
use crate::tablock::{self, TabLock};
use till_api::LoginAnswer;

#[derive(Default)]
pub(super) struct Core {
    db: Option<Rc<Db>>,
    device: String,
    pub(super) replica: Option<Replica>,
    /// Bumped whenever the replica is replaced (login, logout): a sync round begun on
    /// another replica stops.
    pub(super) replica_epoch: u64,
    index: Rc<CatalogueIndex>,
    index_version: u64,
    gate: Rc<Mutex<()>>,
    /// A sale is in memory but not in IndexedDB: nothing may be synced or sold any more.
    pub(super) poisoned: bool,
    /// A sale runs (from its confirmation to its end, whichever way it ends).
    selling: bool,
    /// A cart change was not written because a sale ran: written when the sale ends.
    cart_write_skipped: bool,
    /// Bumped on every change of the cart, to tell the write of the latest cart.
    cart_generation: u64,
    /// Closed sessions may have become forgettable (login, a session changed, receipts
    /// reached the till): checked when the next sync round ends, never before.
    pub(super) prune_due: bool,
    pub(super) sync_kicked: bool,
    pub(super) next_sync_ms: u64,
    pub(super) backoff_ms: u64,
}

thread_local! {
    static CORE: RefCell<Core> = RefCell::new(Core::default());
}

pub(super) fn with_core<R>(f: impl FnOnce(&mut Core) -> R) -> R {
    CORE.with(|core| f(&mut core.borrow_mut()))
}

pub(super) fn db() -> Option<Rc<Db>> {
    with_core(|core| core.db.clone())
}

/// The write gate (see the module doc).
pub(super) fn gate() -> Rc<Mutex<()>> {
    with_core(|core| core.gate.clone())
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
            .and_then(|json| serde_json::from_str::<LoginAnswer>(&json).ok());
        match login {
            Some(login) if !login.expired(now_ms()) => activate(ctx, login).await,
            Some(_) => {
                ctx.login_expired.set(true);
                ctx.screen.set(Screen::Login);
            }
            None => ctx.screen.set(Screen::Login),
        }
        persist_cart_on_change(ctx);
        spawn_local(sync::sync_loop(ctx));
        spawn_local(sync::status_loop(ctx));
        set_interval(
            move || ctx.now_ms.set(now_ms()),
            std::time::Duration::from_secs(1),
        );
    });
}

/// Logs in with `login`: loads the replica for its till and shows the right screen.
pub async fn activate(ctx: Ctx, login: LoginAnswer) {
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
    // Under the gate: a sale's or a sync reply's IndexedDB write still in flight commits
    // first, and is read back here, rather than being lost with the replica it came from.
    let gate = gate();
    let held = gate.lock().await;
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
    // The badge comes back only for a receipt still here; one whose session was forgotten
    // (only ever once acknowledged) shows none rather than a `saved` that never moves.
    let last = db
        .get_meta(key::LAST_RECEIPT)
        .await
        .ok()
        .flatten()
        .and_then(|text| text.parse::<ReceiptId>().ok())
        .and_then(|id| replica.receipt_state(id).map(|state| (id, state)));
    with_core(|core| {
        core.replica = Some(replica);
        core.replica_epoch += 1;
        core.index_version = 0;
        core.prune_due = true;
        core.sync_kicked = true;
    });
    drop(held);
    ctx.last_receipt.set(last.map(|(id, state)| ReceiptBadge {
        id,
        state,
        change: None,
        saved_in_ms: None,
    }));
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
        // Sessions are forgotten only once the OFD acknowledged all their receipts, so a
        // receipt no session here holds any more is acknowledged.
        let last = ctx.last_receipt.get_untracked().map(|badge| {
            let state = replica.receipt_state(badge.id);
            (badge.id, state.unwrap_or(ReceiptState::Acknowledged))
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

/// Writes the cart to IndexedDB whenever it changes, so a reload keeps it, and says when the
/// cart as it is now is stored (`Ctx::cart_persisted`): writes go out in order (IndexedDB
/// runs read-write transactions on one store in the order they were made), and only the
/// write of the latest change sets it. Not while a sale runs: the sale stores the emptied
/// cart with its receipt, and the cart is written again when the sale ends.
fn persist_cart_on_change(ctx: Ctx) {
    Effect::new(move |_| {
        let cart = ctx.cart.get();
        let (generation, selling) = with_core(|core| {
            core.cart_generation += 1;
            core.cart_write_skipped |= core.selling;
            (core.cart_generation, core.selling)
        });
        if ctx.cart_persisted.get_untracked() {
            ctx.cart_persisted.set(false);
        }
        if selling {
            return;
        }
        let Ok(json) = serde_json::to_string(&cart) else {
            return;
        };
        let Some(db) = db() else { return };
        spawn_local(async move {
            match db.put_meta(&[(key::CART, Some(&json))]).await {
                Ok(()) => {
                    if with_core(|core| core.cart_generation == generation) {
                        ctx.cart_persisted.set(true);
                    }
                }
                Err(error) => leptos::logging::warn!("cart not saved: {}", error.0),
            }
        });
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
pub async fn save_login(login: Option<&LoginAnswer>) {
    let Some(db) = db() else { return };
    let json = login.and_then(|login| serde_json::to_string(login).ok());
    if let Err(error) = db.put_meta(&[(key::LOGIN, json.as_deref())]).await {
        leptos::logging::warn!("login not saved: {}", error.0);
    }
}

/// Forgets the replica (logout), under the gate like [`activate`]. Refused (`Err` with the
/// number of receipts the till lacks) when, once the gate is held, a sale runs or receipts
/// made here have not reached the till: a sale waiting for the gate has landed by then.
pub async fn unload() -> Result<(), usize> {
    let gate = gate();
    let _held = gate.lock().await;
    with_core(|core| {
        let unsent = core.replica.as_ref().map_or(0, |r| r.unsent().len());
        if core.selling || unsent > 0 {
            return Err(unsent);
        }
        core.replica = None;
        core.replica_epoch += 1;
        core.index = Rc::new(CatalogueIndex::default());
        core.index_version = 0;
        Ok(())
    })
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

/// Why no sale may be made now (tracked): the buffer is full or the shift is over 24 hours.
pub fn sale_block(ctx: Ctx) -> Option<SaleBlock> {
    let now = ctx.now_ms.get();
    let shift_age = ctx.session.with(|session| {
        session
            .as_ref()
            .map(|session| now.saturating_sub(session.opened_ms) / 1000)
    });
    status::sale_block(&buffer_view(ctx), shift_age)
}

/// [`sale_block`] for handlers, on the wall clock of this instant.
fn sale_block_now(ctx: Ctx) -> Option<SaleBlock> {
    let now = now_ms();
    let shift_age = ctx.session.with_untracked(|session| {
        session
            .as_ref()
            .map(|session| now.saturating_sub(session.opened_ms) / 1000)
    });
    let unsent = u64::try_from(ctx.unsent.get_untracked()).unwrap_or(u64::MAX);
    let buffer = ctx
        .till
        .with_untracked(|till| BufferView::new(till.as_ref(), unsent));
    status::sale_block(&buffer, shift_age)
}

/// The one sale running: [`SaleRun::begin`] refuses a second, and the flag goes when the
/// sale ends, whichever way.
struct SaleRun {
    ctx: Ctx,
}

impl SaleRun {
    fn begin(ctx: Ctx) -> Option<SaleRun> {
        let busy = with_core(|core| std::mem::replace(&mut core.selling, true));
        if busy {
            return None;
        }
        ctx.sale_running.set(true);
        Some(SaleRun { ctx })
    }
}

impl Drop for SaleRun {
    fn drop(&mut self) {
        let skipped = with_core(|core| {
            core.selling = false;
            std::mem::take(&mut core.cart_write_skipped)
        });
        self.ctx.sale_running.set(false);
        if skipped {
            // Lines scanned during a sale that did not go through: store them now.
            self.ctx.cart.update(|_| {});
        }
    }
}

/// Makes the sale: under the gate, read the cart and commit it into the open session,
/// persist (with the emptied cart), only then show `saved` and kick a sync. Lines scanned
/// while the receipt was being saved stay in the cart.
pub async fn sell(ctx: Ctx, plan: PaymentPlan) {
    let started = monotonic_ms();
    if ctx.fatal.get_untracked().is_some() || with_core(|core| core.poisoned) {
        return;
    }
    let Some(running) = SaleRun::begin(ctx) else {
        return ctx.inform(ctx.t_now(Key::SaleInProgress));
    };
    let Some(db) = db() else { return };
    let gate = gate();
    let held = gate.lock().await;
    if let Some(block) = sale_block_now(ctx) {
        return ctx.complain(block.describe(ctx.lang.get_untracked()));
    }
    // Read under the gate, with no await until the commit below: the receipt holds exactly
    // what the cart holds now; if that no longer adds up to the payment, nothing is sold.
    let sold = ctx.cart.get_untracked();
    let draft = match sold.to_draft(&device(), &plan) {
        Ok(draft) => draft,
        Err(CartError::Payment(PaymentError::DoesNotAddUp)) => {
            return ctx.complain(ctx.t_now(Key::CartChanged));
        }
        Err(error) => {
            let reason = error.describe(ctx.lang.get_untracked());
            return ctx.complain(payment_error_text(ctx, &reason));
        }
    };
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
    // The emptied cart is stored with the sale: an encoding failure must stop the sale, not
    // store an empty string that no longer reads back as a cart.
    let empty = match serde_json::to_string(&Cart::default()) {
        Ok(empty) => empty,
        Err(error) => {
            leptos::logging::error!("the empty cart does not encode: {error}");
            return ctx.complain(payment_error_text(ctx, &error.to_string()));
        }
    };
    if let Err(error) = db.write_sale(&write, &empty).await {
        with_core(|core| core.poisoned = true);
        leptos::logging::error!("sale not persisted: {}", error.0);
        return ctx
            .fatal
            .set(Some(ctx.t_now(Key::StorageFailed).to_owned()));
    }
    drop(held);
    let elapsed = (monotonic_ms() - started).max(0.0).round();
    ctx.last_receipt.set(Some(ReceiptBadge {
        id,
        state: ReceiptState::Saved,
        change: plan.change.is_positive().then_some(plan.change),
        saved_in_ms: (elapsed < f64::from(u32::MAX)).then_some(elapsed as u32),
    }));
    // The sale is over: the cart's own write is back on. Emptied if untouched since it was
    // read; else what was scanned meanwhile stays (and the cart's own write stores it).
    with_core(|core| core.cart_write_skipped = false);
    drop(running);
    ctx.cart.update(|cart| *cart = cart.after_sale(&sold));
    ctx.panel.set(Panel::None);
    ctx.notice.set(None);
    refresh(ctx);
    kick_sync();
    ctx.focus_scan();
}

fn payment_error_text(ctx: Ctx, reason: &str) -> String {
    fill(ctx.t_now(Key::SaleFailed), &[("reason", reason)])
}
