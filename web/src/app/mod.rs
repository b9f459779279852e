//! The Leptos app: screens (tab refused, login, open session, selling, Z report), the state
//! bar shown on every screen, and the keyboard shortcuts.
//!
//! Reactive state lives in [`Ctx`], a bundle of `Copy` signal handles provided as context.
//! Everything that is not `Send` (the Automerge replica, IndexedDB, the write gate) lives in
//! `core`, a thread-local the event handlers reach through small functions; closures in
//! views only capture signals.
//!
//! Submodules: `core` (runtime, start-up, the cart's persistence, the sale), `sync` (the sync
//! and status loops, forgetting closed sessions), `statebar`,
//! `screens` (refused, login, open session, Z report), `selling` (scan and cart), `payment`
//! (payment panel and manager approval), `actions` (refund, cash in/out, X, close, logout).

mod actions;
mod core;
mod payment;
mod screens;
mod selling;
mod statebar;
mod sync;

use crdt_model::ReceiptId;
use leptos::ev;
use leptos::html;
use leptos::prelude::*;

use crate::cart::{Cart, PayMode};
use crate::i18n::{Key, Lang};
use crate::status::ReceiptState;
use till_api::BufferStatus;
use till_api::{CloseRecord, LoginAnswer};

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    /// Loading IndexedDB and the tab lock.
    Starting,
    /// Another tab sells (or the browser has no Web Locks: `unsupported`).
    TabRefused {
        /// The browser lacks the API rather than another tab holding the lock.
        unsupported: bool,
    },
    /// PIN login.
    Login,
    /// No open session: open one.
    OpenSession,
    /// Selling.
    Selling,
    /// The shift was just closed: its Z figures.
    Closed(CloseRecord),
}

/// Which panel of the selling screen is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// None: scanning.
    None,
    /// Paying.
    Payment(PayMode),
    /// Picking a receipt to refund.
    Refund,
    /// Cash in or out.
    Cash,
    /// Confirming the Z close.
    CloseConfirm,
}

/// The open session as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session document.
    pub doc: String,
    /// Who opened it.
    pub cashier: String,
    /// When (Unix ms, from its HLC).
    pub opened_ms: u64,
}

/// The last receipt made here and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptBadge {
    /// The receipt.
    pub id: ReceiptId,
    /// Its state.
    pub state: ReceiptState,
    /// Change to hand back, when it was just paid in cash.
    pub change: Option<crdt_model::Kopecks>,
    /// Pay → saved, in milliseconds (measured in the page).
    pub saved_in_ms: Option<u32>,
}

/// A message for the cashier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// An error (red) rather than information.
    pub error: bool,
}

/// The page's reactive state: `Copy` handles only.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// The language.
    pub lang: RwSignal<Lang>,
    /// The screen.
    pub screen: RwSignal<Screen>,
    /// The cashier logged in (kept while the till is down).
    pub login: RwSignal<Option<LoginAnswer>>,
    /// The login expired (401): shown on the login screen.
    pub login_expired: RwSignal<bool>,
    /// Persistent storage granted (`None` while asking).
    pub storage_ok: RwSignal<Option<bool>>,
    /// The cart.
    pub cart: RwSignal<Cart>,
    /// The cart as it is now is in IndexedDB (`data-persisted` on `cart-total`).
    pub cart_persisted: RwSignal<bool>,
    /// A sale is being made: a second one waits its turn (refused, not queued).
    pub sale_running: RwSignal<bool>,
    /// Bumped when the catalogue index was rebuilt.
    pub catalogue_version: RwSignal<u64>,
    /// Products in the catalogue.
    pub catalogue_size: RwSignal<usize>,
    /// The open session.
    pub session: RwSignal<Option<SessionInfo>>,
    /// The till's last status answer (kept while it is unreachable).
    pub till: RwSignal<Option<BufferStatus>>,
    /// The till answered the last call.
    pub reachable: RwSignal<bool>,
    /// Receipts made here that the till does not hold yet.
    pub unsent: RwSignal<usize>,
    /// The last receipt made here.
    pub last_receipt: RwSignal<Option<ReceiptBadge>>,
    /// A message for the cashier.
    pub notice: RwSignal<Option<Notice>>,
    /// A failure that stops selling until a reload.
    pub fatal: RwSignal<Option<String>>,
    /// The till refused the page's last sync round, with its reason (cleared by a round
    /// that goes through).
    pub sync_refused: RwSignal<Option<String>>,
    /// The open panel.
    pub panel: RwSignal<Panel>,
    /// Wall clock, ticking every second (for ages).
    pub now_ms: RwSignal<u64>,
    /// The last successful sync with the till (Unix ms).
    pub last_sync_ms: RwSignal<Option<u64>>,
    /// A sync round has ended (either way) since the login: until then an empty replica
    /// does not yet mean "no open session".
    pub synced_once: RwSignal<bool>,
    /// The scan field, to give it focus back.
    pub scan_ref: NodeRef<html::Input>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            lang: RwSignal::new(Lang::Ru),
            screen: RwSignal::new(Screen::Starting),
            login: RwSignal::new(None),
            login_expired: RwSignal::new(false),
            storage_ok: RwSignal::new(None),
            cart: RwSignal::new(Cart::default()),
            cart_persisted: RwSignal::new(false),
            sale_running: RwSignal::new(false),
            catalogue_version: RwSignal::new(0),
            catalogue_size: RwSignal::new(0),
            session: RwSignal::new(None),
            till: RwSignal::new(None),
            reachable: RwSignal::new(true),
            unsent: RwSignal::new(0),
            last_receipt: RwSignal::new(None),
            notice: RwSignal::new(None),
            fatal: RwSignal::new(None),
            sync_refused: RwSignal::new(None),
            panel: RwSignal::new(Panel::None),
            now_ms: RwSignal::new(now_ms()),
            last_sync_ms: RwSignal::new(None),
            synced_once: RwSignal::new(false),
            scan_ref: NodeRef::new(),
        }
    }

    /// The text of `key` in the current language (tracked).
    pub fn t(&self, key: Key) -> &'static str {
        key.text(self.lang.get())
    }

    /// The text of `key` in the current language (untracked, for handlers).
    pub fn t_now(&self, key: Key) -> &'static str {
        key.text(self.lang.get_untracked())
    }

    /// Shows an information message.
    pub fn inform(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice {
            text: text.into(),
            error: false,
        }));
    }

    /// Shows an error message.
    pub fn complain(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice {
            text: text.into(),
            error: true,
        }));
    }

    /// Gives the scan field the focus back.
    pub fn focus_scan(&self) {
        if let Some(input) = self.scan_ref.get_untracked() {
            let _ = input.focus();
        }
    }
}

/// The wall clock in Unix ms.
pub fn now_ms() -> u64 {
    let now = js_sys::Date::now();
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

/// A monotonic clock in ms (for measuring the page's own latencies).
pub fn monotonic_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    let ctx = Ctx::new();
    provide_context(ctx);
    core::start(ctx);
    let keys = window_event_listener(ev::keydown, move |event| shortcuts(ctx, &event));
    on_cleanup(move || keys.remove());
    Effect::new(move |_| {
        let lang = ctx.lang.get();
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.code());
        }
    });
    // The bench's "first render": ms since navigation when the first real screen (login,
    // selling, refusal…) is in the DOM, left on <html data-first-render-ms>.
    Effect::new(move |marked: Option<bool>| {
        if marked == Some(true) || ctx.screen.get() == Screen::Starting {
            return marked.unwrap_or(false);
        }
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-first-render-ms", &format!("{:.1}", monotonic_ms()));
        }
        true
    });
    view! {
        <div class="app">
            {move || match ctx.screen.get() {
                Screen::Starting => view! {
                    <main class="screen center"><p>{move || ctx.t(Key::Loading)}</p></main>
                }.into_any(),
                Screen::TabRefused { unsupported } => screens::tab_refused(ctx, unsupported).into_any(),
                screen => view! {
                    <statebar::StateBar/>
                    <screens::Fatal/>
                    <screens::NoticeLine/>
                    {match screen {
                        Screen::Login => view! { <screens::Login/> }.into_any(),
                        Screen::OpenSession => view! { <screens::OpenSession/> }.into_any(),
                        Screen::Closed(close) => screens::closed(ctx, close).into_any(),
                        _ => view! { <selling::Selling/> }.into_any(),
                    }}
                }.into_any(),
            }}
        </div>
    }
}

/// F2 cash, F3 card, Esc closes the open panel (or clears the notice).
fn shortcuts(ctx: Ctx, event: &web_sys::KeyboardEvent) {
    if ctx.screen.get_untracked() != Screen::Selling {
        return;
    }
    match event.key().as_str() {
        "F2" => {
            event.prevent_default();
            payment::open(ctx, PayMode::Cash);
        }
        "F3" => {
            event.prevent_default();
            payment::open(ctx, PayMode::Card);
        }
        "Escape" => {
            if ctx.panel.get_untracked() != Panel::None {
                ctx.panel.set(Panel::None);
                ctx.focus_scan();
            } else {
                ctx.notice.set(None);
            }
        }
        _ => {}
    }
}
