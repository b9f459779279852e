//! The session actions, all of which need the till: refund of a receipt of this session,
//! cash in / out, the X report, the Z close, and logout. Close and logout are refused while a
//! sale runs or receipts made here have not reached the till, with the reason; logout checks
//! again under the write gate, where a sale that was waiting for it has landed.
//!
//! Refunds and cash movements carry an `Idempotency-Key`: one per attempt, reused on a retry
//! after a failure, so a lost answer never makes a second refund or movement.

use std::collections::BTreeMap;

use crdt_model::receipt::ReceiptKind;
use crdt_model::{Kopecks, ReceiptId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use sync_engine::DocId;
use uuid::Uuid;

use super::core;
use super::{Ctx, Panel, Screen};
use crate::api::{self, ApiError};
use crate::format::{money, parse_money};
use crate::i18n::{fill, Key};
use till_api::CashKind;

/// Shows the cashier why a till call failed; a 401 sends them to the login.
fn report(ctx: Ctx, error: &ApiError) {
    match error {
        ApiError::Unauthorized => core::login_expired(ctx),
        ApiError::Unreachable(_) => ctx.complain(ctx.t_now(Key::NeedsTill)),
        other => ctx.complain(fill(
            ctx.t_now(Key::ServerRefused),
            &[("reason", &other.describe())],
        )),
    }
}

/// Refuses with the reason while a sale runs or receipts made here are not on the till.
fn refuse_while_unsent(ctx: Ctx, key: Key) -> bool {
    if ctx.sale_running.get_untracked() {
        ctx.complain(ctx.t_now(Key::SaleInProgress));
        return true;
    }
    refuse_unsent(ctx, key, ctx.unsent.get_untracked())
}

/// Refuses with the reason when `unsent` receipts made here are not on the till.
fn refuse_unsent(ctx: Ctx, key: Key, unsent: usize) -> bool {
    if unsent > 0 {
        ctx.complain(fill(ctx.t_now(key), &[("n", &unsent.to_string())]));
        core::kick_sync();
        return true;
    }
    false
}

/// The buttons under the cart.
#[component]
pub fn ActionBar() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let toggle = move |panel: Panel| {
        ctx.panel
            .update(|open| *open = if *open == panel { Panel::None } else { panel });
    };
    let x_report = move |_| {
        let Some(token) = core::token(ctx) else {
            return;
        };
        spawn_local(async move {
            match api::x_report(&token).await {
                Ok(()) => ctx.inform(ctx.t_now(Key::XReportPrinted)),
                Err(error) => report(ctx, &error),
            }
        });
    };
    let close = move |_| {
        if !refuse_while_unsent(ctx, Key::CloseRefused) {
            ctx.panel.set(Panel::CloseConfirm);
        }
    };
    let logout = move |_| {
        if refuse_while_unsent(ctx, Key::LogoutRefused) {
            return;
        }
        let token = core::token(ctx);
        spawn_local(async move {
            // First the replica, under the gate: a sale that was waiting has landed by now.
            if let Err(unsent) = core::unload().await {
                if !refuse_unsent(ctx, Key::LogoutRefused, unsent) {
                    ctx.complain(ctx.t_now(Key::SaleInProgress));
                }
                return;
            }
            if let Some(token) = token {
                // The till forgets the token when it can; locally the login goes either way.
                let _ = api::logout(&token).await;
            }
            core::save_login(None).await;
            ctx.login.set(None);
            ctx.session.set(None);
            ctx.panel.set(Panel::None);
            ctx.screen.set(Screen::Login);
        });
    };
    view! {
        <nav class="actions">
            <button data-testid="refund-start" on:click=move |_| toggle(Panel::Refund)>
                {move || ctx.t(Key::RefundStart)}
            </button>
            <button data-testid="cash-movement" on:click=move |_| toggle(Panel::Cash)>
                {move || ctx.t(Key::CashIn)} " / " {move || ctx.t(Key::CashOut)}
            </button>
            <button data-testid="x-report" on:click=x_report>{move || ctx.t(Key::XReport)}</button>
            <button data-testid="session-close" on:click=close>
                {move || ctx.t(Key::SessionClose)}
            </button>
            <button data-testid="logout" on:click=logout>{move || ctx.t(Key::Logout)}</button>
        </nav>
    }
}

/// Sales of the open session that have not been refunded here yet.
fn refundable(ctx: Ctx) -> Vec<(ReceiptId, Kopecks, String)> {
    let Some(doc) = ctx
        .session
        .with_untracked(|session| session.as_ref().map(|s| s.doc.clone()))
        .and_then(|doc| DocId::new(doc).ok())
    else {
        return Vec::new();
    };
    let Some(Some(view)) = core::with_replica(|replica| replica.session(&doc)) else {
        return Vec::new();
    };
    let refunded: Vec<ReceiptId> = view.receipts.iter().filter_map(|r| r.refund_of).collect();
    view.receipts
        .iter()
        .rev()
        .filter(|receipt| receipt.kind == ReceiptKind::Sale && !refunded.contains(&receipt.id))
        .map(|receipt| {
            let names: Vec<&str> = receipt
                .lines
                .iter()
                .map(|line| line.name.as_str())
                .collect();
            (receipt.id, receipt.total, names.join(", "))
        })
        .collect()
}

/// Picking a receipt to refund (the whole sale, with its own payments).
pub fn refund_panel(ctx: Ctx) -> impl IntoView {
    let receipts = refundable(ctx);
    let keys = StoredValue::new(BTreeMap::<ReceiptId, String>::new());
    let busy = RwSignal::new(false);
    let refund = move |original: ReceiptId| {
        let Some(token) = core::token(ctx) else {
            return;
        };
        if busy.get_untracked() {
            return;
        }
        let key = keys.with_value(|keys| keys.get(&original).cloned());
        let key = key.unwrap_or_else(|| {
            let key = Uuid::new_v4().to_string();
            keys.update_value(|keys| {
                keys.insert(original, key.clone());
            });
            key
        });
        busy.set(true);
        spawn_local(async move {
            match api::refund(&token, original, &core::device(), &key).await {
                Ok(_) => {
                    keys.update_value(|keys| {
                        keys.remove(&original);
                    });
                    ctx.inform(ctx.t_now(Key::RefundDone));
                    ctx.panel.set(Panel::None);
                    core::kick_sync();
                }
                Err(error) if error.code() == Some("original_not_fiscalised") => {
                    ctx.inform(ctx.t_now(Key::RefundPending));
                    ctx.panel.set(Panel::None);
                }
                Err(error) => report(ctx, &error),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="panel" data-testid="refund-panel">
            <h2>{move || ctx.t(Key::RefundPick)}</h2>
            {if receipts.is_empty() {
                view! { <p class="muted">{move || ctx.t(Key::RefundNone)}</p> }.into_any()
            } else {
                view! {
                    <ul class="receipts">
                        {receipts.into_iter().map(|(id, total, names)| view! {
                            <li>
                                <button data-testid="refund-receipt" data-receipt-id=id.to_string()
                                    disabled=move || busy.get() on:click=move |_| refund(id)>
                                    <span class="num">{money(total)}</span> " " <span>{names}</span>
                                </button>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

/// Cash in or out.
pub fn cash_panel(ctx: Ctx) -> impl IntoView {
    let kind = RwSignal::new(CashKind::In);
    let amount = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    // One key per movement: kept across retries of the same movement, new after success.
    let key = StoredValue::new(Uuid::new_v4().to_string());
    let submit = move || {
        let Some(token) = core::token(ctx) else {
            return;
        };
        let Ok(value) = parse_money(&amount.get_untracked()) else {
            return ctx.complain(ctx.t_now(Key::MoneyInvalid));
        };
        if !value.is_positive() || busy.get_untracked() {
            return ctx.complain(ctx.t_now(Key::MoneyInvalid));
        }
        let (direction, why, idem) = (
            kind.get_untracked(),
            reason.get_untracked(),
            key.get_value(),
        );
        busy.set(true);
        spawn_local(async move {
            match api::cash(&token, direction, value, &why, &idem).await {
                Ok(answer) => {
                    key.set_value(Uuid::new_v4().to_string());
                    ctx.inform(format!(
                        "{}: {}",
                        ctx.t_now(Key::CashBalance),
                        money(answer.cash_balance)
                    ));
                    ctx.panel.set(Panel::None);
                    core::kick_sync();
                }
                Err(error) => report(ctx, &error),
            }
            busy.set(false);
        });
    };
    let kind_button = move |target: CashKind, label: Key, testid: &'static str| {
        view! {
            <button data-testid=testid
                class=move || if kind.get() == target { "tab active" } else { "tab" }
                on:click=move |_| kind.set(target)>{move || ctx.t(label)}</button>
        }
    };
    view! {
        <form class="panel" data-testid="cash-panel"
            on:submit=move |ev| { ev.prevent_default(); submit(); }>
            <div class="tabs">
                {kind_button(CashKind::In, Key::CashIn, "cash-in")}
                {kind_button(CashKind::Out, Key::CashOut, "cash-out")}
            </div>
            <label>
                <span>{move || ctx.t(Key::Amount)}</span>
                <input type="text" inputmode="decimal" class="big" data-testid="cash-amount"
                    prop:value=move || amount.get()
                    on:input=move |ev| amount.set(event_target_value(&ev)) />
            </label>
            <label>
                <span>{move || ctx.t(Key::Reason)}</span>
                <input type="text" data-testid="cash-reason"
                    prop:value=move || reason.get()
                    on:input=move |ev| reason.set(event_target_value(&ev)) />
            </label>
            <button type="submit" class="primary big" data-testid="cash-confirm"
                disabled=move || busy.get()>{move || ctx.t(Key::Done)}</button>
        </form>
    }
}

/// Confirming the Z close.
pub fn close_panel(ctx: Ctx) -> impl IntoView {
    let busy = RwSignal::new(false);
    let confirm = move |_| {
        if refuse_while_unsent(ctx, Key::CloseRefused) || busy.get_untracked() {
            return;
        }
        let Some(login) = ctx.login.get_untracked() else {
            return;
        };
        busy.set(true);
        spawn_local(async move {
            match api::close_session(&login.token, &login.login).await {
                Ok(close) => {
                    ctx.panel.set(Panel::None);
                    ctx.screen.set(Screen::Closed(close));
                    core::kick_sync();
                }
                Err(error) => report(ctx, &error),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="panel" data-testid="close-panel">
            <p>{move || ctx.t(Key::CloseConfirm)}</p>
            <div class="buttons">
                <button class="primary big" data-testid="session-close-confirm"
                    disabled=move || busy.get() on:click=confirm>
                    {move || ctx.t(Key::SessionClose)}
                </button>
                <button class="big" on:click=move |_| ctx.panel.set(Panel::None)>
                    {move || ctx.t(Key::Cancel)}
                </button>
            </div>
        </section>
    }
}
