//! The screens around selling: another tab holds the till, the login, opening a session
//! (refused without persistent storage), the Z report after a close; and the fatal and notice
//! lines shown above every screen.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::core;
use super::{Ctx, Screen};
use crate::api::{self, ApiError};
use crate::format::{money, parse_money};
use crate::i18n::{fill, Key};
use till_api::CloseRecord;

/// Another tab sells (or Web Locks are missing).
pub fn tab_refused(ctx: Ctx, unsupported: bool) -> impl IntoView {
    view! {
        <main class="screen center">
            <section class="card refused" data-testid="tab-refused"
                data-reason=if unsupported { "unsupported" } else { "other-tab" }>
                <h1>{move || ctx.t(Key::TabRefusedTitle)}</h1>
                <p>{move || ctx.t(Key::TabRefusedText)}</p>
                {unsupported.then(|| view! { <p class="muted">"navigator.locks: —"</p> })}
            </section>
        </main>
    }
}

/// A failure that stops selling until a reload.
#[component]
pub fn Fatal() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        ctx.fatal.get().map(|text| {
            view! { <div class="fatal" role="alert" data-testid="fatal-error">{text}</div> }
        })
    }
}

/// The last message for the cashier.
#[component]
pub fn NoticeLine() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        ctx.notice.get().map(|notice| {
            let class = if notice.error {
                "notice error"
            } else {
                "notice"
            };
            view! { <div class=class role="status" data-testid="notice">{notice.text}</div> }
        })
    }
}

/// PIN login.
#[component]
pub fn Login() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let pin = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move || {
        if busy.get_untracked() {
            return;
        }
        let typed = pin.get_untracked();
        if typed.trim().is_empty() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match api::login(typed.trim(), &core::device()).await {
                Ok(login) => {
                    pin.set(String::new());
                    error.set(None);
                    core::save_login(Some(&login)).await;
                    core::activate(ctx, login).await;
                }
                Err(failure) => error.set(Some(login_error(ctx, &failure))),
            }
            busy.set(false);
        });
    };
    view! {
        <main class="screen center">
            <form class="card login" on:submit=move |ev| { ev.prevent_default(); submit(); }>
                <h1>{move || ctx.t(Key::LoginTitle)}</h1>
                {move || ctx.login_expired.get().then(|| view! {
                    <p class="notice">{ctx.t(Key::LoginExpired)}</p>
                })}
                <label>
                    <span>{move || ctx.t(Key::PinLabel)}</span>
                    <input type="password" inputmode="numeric" autocomplete="off" autofocus
                        data-testid="pin-input" class="big"
                        prop:value=move || pin.get()
                        on:input=move |ev| pin.set(event_target_value(&ev)) />
                </label>
                <button type="submit" class="primary big" data-testid="login-submit"
                    disabled=move || busy.get()>
                    {move || ctx.t(Key::LoginSubmit)}
                </button>
                {move || error.get().map(|text| view! {
                    <p class="error" role="alert" data-testid="login-error">{text}</p>
                })}
            </form>
        </main>
    }
}

fn login_error(ctx: Ctx, failure: &ApiError) -> String {
    match failure {
        ApiError::Unauthorized => ctx.t_now(Key::LoginWrongPin).to_owned(),
        ApiError::Refused { body, .. } if body.error == "too_many_attempts" => {
            let seconds = body.retry_after_seconds.unwrap_or(60).to_string();
            fill(ctx.t_now(Key::LoginTooMany), &[("n", &seconds)])
        }
        ApiError::Refused { body, .. } if body.error == "wrong_pin" => {
            ctx.t_now(Key::LoginWrongPin).to_owned()
        }
        ApiError::Unreachable(_) => ctx.t_now(Key::TillUnreachable).to_owned(),
        other => fill(
            ctx.t_now(Key::ServerRefused),
            &[("reason", &other.describe())],
        ),
    }
}

/// No open session: open one on the till (opening cash, the cashier's login as its name).
#[component]
pub fn OpenSession() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let cash = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let waiting = RwSignal::new(false);
    let submit = move || {
        if busy.get_untracked() || ctx.storage_ok.get_untracked() != Some(true) {
            return;
        }
        let typed = cash.get_untracked();
        let opening = if typed.trim().is_empty() {
            Ok(crdt_model::Kopecks::ZERO)
        } else {
            parse_money(&typed)
        };
        let Ok(opening) = opening else {
            return ctx.complain(ctx.t_now(Key::MoneyInvalid));
        };
        let Some(login) = ctx.login.get_untracked() else {
            return;
        };
        busy.set(true);
        spawn_local(async move {
            match api::open_session(&login.token, &login.login, opening).await {
                Ok(()) => waiting.set(true),
                Err(error) if error.code() == Some("session_already_open") => waiting.set(true),
                Err(ApiError::Unauthorized) => core::login_expired(ctx),
                Err(ApiError::Unreachable(_)) => ctx.complain(ctx.t_now(Key::NeedsTill)),
                Err(error) => ctx.complain(fill(
                    ctx.t_now(Key::ServerRefused),
                    &[("reason", &error.describe())],
                )),
            }
            core::kick_sync();
            busy.set(false);
        });
    };
    view! {
        <main class="screen center">
            {move || match ctx.storage_ok.get() {
                Some(false) => view! {
                    <section class="card refused" data-testid="storage-refused">
                        <h1>{ctx.t(Key::StorageRefusedTitle)}</h1>
                        <p>{ctx.t(Key::StorageRefusedText)}</p>
                        <button class="big" on:click=move |_| spawn_local(async move {
                            ctx.storage_ok.set(Some(crate::tablock::persist_storage().await));
                        })>{ctx.t(Key::Retry)}</button>
                    </section>
                }.into_any(),
                // The first sync may still bring a session opened elsewhere.
                _ if !ctx.synced_once.get() => view! {
                    <p class="muted">{ctx.t(Key::Loading)}</p>
                }.into_any(),
                _ => view! {
                    <form class="card" on:submit=move |ev| { ev.prevent_default(); submit(); }>
                        <h1>{move || ctx.t(Key::OpenSessionTitle)}</h1>
                        <label>
                            <span>{move || ctx.t(Key::OpeningCash)}</span>
                            <input type="text" inputmode="decimal" class="big" autofocus placeholder="0"
                                data-testid="opening-cash"
                                prop:value=move || cash.get()
                                on:input=move |ev| cash.set(event_target_value(&ev)) />
                        </label>
                        <button type="submit" class="primary big" data-testid="session-open"
                            disabled=move || busy.get() || ctx.storage_ok.get() != Some(true)>
                            {move || ctx.t(Key::SessionOpen)}
                        </button>
                        {move || waiting.get().then(|| view! {
                            <p class="muted">{ctx.t(Key::WaitingForSession)}</p>
                        })}
                    </form>
                }.into_any(),
            }}
        </main>
    }
}

/// The Z report of the session just closed.
pub fn closed(ctx: Ctx, close: CloseRecord) -> impl IntoView {
    let rows = [
        (Key::ReceiptsCount, close.receipts_count.to_string()),
        (Key::SalesTotal, money(close.sales_total)),
        (Key::RefundsTotal, money(close.refunds_total)),
        (Key::NetTotal, money(close.net_total)),
        (Key::PaidCash, money(close.payments.cash)),
        (Key::PaidCard, money(close.payments.card)),
        (Key::CashInTotal, money(close.cash_in)),
        (Key::CashOutTotal, money(close.cash_out)),
        (Key::CashBalance, money(close.cash_balance)),
    ];
    view! {
        <main class="screen center">
            <section class="card" data-testid="z-report" data-session-id=close.session_id.to_string()>
                <h1>{move || ctx.t(Key::ClosedTitle)}</h1>
                <p class="muted">{close.cashier.clone()} " · " {close.closed_at.clone()}</p>
                <table class="totals">
                    {rows.into_iter().map(|(key, value)| view! {
                        <tr><th>{move || ctx.t(key)}</th><td class="num">{value}</td></tr>
                    }).collect_view()}
                </table>
                <button class="primary big" on:click=move |_| ctx.screen.set(Screen::OpenSession)>
                    {move || ctx.t(Key::OpenNext)}
                </button>
            </section>
        </main>
    }
}
