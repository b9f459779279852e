//! The state bar, on every screen after start-up: network state, fiscal buffer "N / 200"
//! with its 80 / 90 / 100 % levels, the OFD breaker, the last sync, the oldest unacknowledged
//! receipt, the shift's age against 24 h, "receipts are waiting for the till", the till's
//! refusal of the page's sync with its reason, the cashier and the language switch.

use leptos::prelude::*;

use super::core;
use super::Ctx;
use crate::format::age;
use crate::i18n::{fill, Key};
use crate::status::{page_network_state, NetworkState, ShiftLevel, SHIFT_LIMIT_SECONDS};

/// The state bar.
#[component]
pub fn StateBar() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let network = Memo::new(move |_| {
        let reachable = ctx.reachable.get();
        let refused = ctx.sync_refused.with(Option::is_some);
        ctx.till
            .with(|till| page_network_state(reachable, till.as_ref(), refused))
    });
    let network_text = move || match network.get() {
        NetworkState::Online => ctx.t(Key::NetOnline),
        NetworkState::Degraded => ctx.t(Key::NetDegraded),
        NetworkState::Offline => ctx.t(Key::NetOffline),
    };
    let buffer = Memo::new(move |_| core::buffer_view(ctx));
    let breaker = move || {
        ctx.till.with(|till| {
            till.as_ref()
                .map(|till| till.circuit_state.clone())
                .filter(|state| !state.is_empty())
                .unwrap_or_else(|| "—".to_owned())
        })
    };
    let ago = move |ms: Option<u64>| -> String {
        let lang = ctx.lang.get();
        match ms {
            Some(ms) => {
                let seconds = ctx.now_ms.get().saturating_sub(ms) / 1000;
                fill(Key::Ago.text(lang), &[("t", &age(seconds, lang))])
            }
            None => Key::Never.text(lang).to_owned(),
        }
    };
    let last_sync = move || {
        ago(ctx
            .till
            .with(|till| till.as_ref().and_then(|t| t.last_sync_ms)))
    };
    let oldest = move || {
        let seconds = ctx.till.with(|till| {
            till.as_ref()
                .map_or(0, |t| t.oldest_unacknowledged_age_seconds)
        });
        age(seconds, ctx.lang.get())
    };
    let shift_seconds = Memo::new(move |_| {
        ctx.session.with(|session| {
            session
                .as_ref()
                .map(|session| ctx.now_ms.get().saturating_sub(session.opened_ms) / 1000)
        })
    });
    let waiting = move || {
        let unsent = ctx.unsent.get();
        (network.get() == NetworkState::Offline && unsent > 0).then(|| {
            view! {
                <div class="waiting" data-testid="waiting-for-till">
                    {fill(ctx.t(Key::WaitingForTill), &[("n", &unsent.to_string())])}
                </div>
            }
        })
    };
    let refused = move || {
        ctx.sync_refused.get().map(|reason| {
            view! {
                <div class="notice error" role="alert" data-testid="sync-refused">
                    {fill(ctx.t(Key::SyncRefused), &[("reason", &reason)])}
                </div>
            }
        })
    };
    view! {
        <header class="statebar" role="status">
            <span class=move || format!("pill net-{}", network.get().as_str())
                data-testid="network-state" data-state=move || network.get().as_str()>
                {move || ctx.t(Key::NetworkLabel)} ": " {network_text}
            </span>
            <span class=move || format!("pill level-{}", buffer.get().level.as_str())
                data-testid="buffer-state"
                data-count=move || buffer.get().count.to_string()
                data-capacity=move || buffer.get().capacity.to_string()
                data-level=move || buffer.get().level.as_str()>
                {move || ctx.t(Key::BufferLabel)} ": "
                {move || format!("{} / {}", buffer.get().count, buffer.get().capacity)}
            </span>
            <span class="pill" data-testid="breaker-state">
                {move || ctx.t(Key::BreakerLabel)} ": " {breaker}
            </span>
            <span class="pill" data-testid="last-sync">
                {move || ctx.t(Key::LastSyncLabel)} ": " {last_sync}
            </span>
            <span class="pill" data-testid="oldest-unacknowledged">
                {move || ctx.t(Key::OldestLabel)} ": " {oldest}
            </span>
            {move || shift_seconds.get().map(|seconds| view! {
                <span class=format!("pill level-{}", ShiftLevel::of(seconds).as_str())
                    data-testid="shift-age" data-seconds=seconds.to_string()
                    data-limit=SHIFT_LIMIT_SECONDS.to_string()>
                    {ctx.t(Key::ShiftLabel)} ": " {age(seconds, ctx.lang.get())} " "
                    {ctx.t(Key::OfLimit)}
                </span>
            })}
            <span class="spacer"></span>
            {move || ctx.login.get().map(|login| view! {
                <span class="cashier">{ctx.t(Key::Cashier)} ": " {login.login}</span>
            })}
            <button class="pill lang" data-testid="lang-switch"
                on:click=move |_| {
                    let lang = ctx.lang.get_untracked().toggled();
                    ctx.lang.set(lang);
                    core::save_lang(lang);
                }>
                {move || ctx.t(Key::LangSwitch)}
            </button>
        </header>
        {waiting}
        {refused}
    }
}
