//! The payment panel (cash with the tendered amount and the change, card, or both) and the
//! manager's approval of a discount above the cashier's 10 %.
//!
//! `pay-confirm` is disabled, with the reason beside it, while the buffer is full or the
//! shift is over 24 hours (`sale-blocked`, its `data-reason` saying which), the discount is
//! not allowed, the amounts do not add up or a sale is still being saved; Enter in an amount
//! field confirms, Esc cancels (see the shortcuts in `app/mod.rs`). Whether a sale runs is
//! the page's (`Ctx::sale_running`), not this panel's: F2 reopens the panel while a sale
//! waits, and it must not sell the cart again.
//!
//! A manager's approval is recorded for the lines and the discount as they are
//! (`Cart::approve`); more discount or other lines ask for it again.

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::core;
use super::{Ctx, Panel};
use crate::api::{self, ApiError};
use crate::cart::{plan_payment, CartError, DiscountCheck, PayMode, PaymentError, PaymentPlan};
use crate::format::{money, parse_money};
use crate::i18n::{fill, Key};
use till_api::ApproveAnswer;

/// Opens the payment panel in `mode` (nothing to pay: nothing happens).
pub fn open(ctx: Ctx, mode: PayMode) {
    if ctx.cart.with_untracked(|cart| cart.is_empty()) {
        return;
    }
    ctx.panel.set(Panel::Payment(mode));
}

fn optional_money(text: &str) -> Result<Option<crdt_model::Kopecks>, ()> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_money(text).map(Some).map_err(|_| ())
}

/// The payment panel.
pub fn panel(ctx: Ctx, mode: PayMode) -> impl IntoView {
    let tendered = RwSignal::new(String::new());
    let card = RwSignal::new(String::new());
    let first_field: NodeRef<html::Input> = NodeRef::new();
    let confirm_ref: NodeRef<html::Button> = NodeRef::new();
    let total = Memo::new(move |_| ctx.cart.with(|cart| cart.total()));
    let plan = Memo::new(move |_| -> Result<PaymentPlan, String> {
        let lang = ctx.lang.get();
        let invalid = || Key::MoneyInvalid.text(lang).to_owned();
        let given = optional_money(&tendered.get()).map_err(|()| invalid())?;
        let card_amount = optional_money(&card.get()).map_err(|()| invalid())?;
        plan_payment(total.get(), mode, given, card_amount).map_err(|error| match error {
            PaymentError::TenderedTooLow { needed } => {
                format!("{} ({})", Key::TenderedTooLow.text(lang), money(needed))
            }
            PaymentError::CardTooLarge => Key::CardTooLarge.text(lang).to_owned(),
            PaymentError::SplitNeedsCard => Key::SplitNeedsCard.text(lang).to_owned(),
            PaymentError::NothingToPay | PaymentError::DoesNotAddUp => {
                Key::CartEmpty.text(lang).to_owned()
            }
        })
    });
    let blocked = Memo::new(move |_| core::sale_block(ctx));
    let discount = Memo::new(move |_| ctx.cart.with(|cart| cart.discount_check()));
    // Everything else the model would refuse (a malformed buyer contact, …), shown before
    // the cashier presses the button rather than after.
    let problem = Memo::new(move |_| {
        let chosen = plan.get().ok()?;
        let lang = ctx.lang.get();
        ctx.cart.with(|cart| {
            cart.preview(&core::device(), &chosen)
                .err()
                .filter(|error| !matches!(error, CartError::Discount(_)))
                .map(|error| error.describe(lang))
        })
    });
    let can_pay = move || {
        plan.with(Result::is_ok)
            && problem.with(Option::is_none)
            && blocked.with(Option::is_none)
            && discount.get() == DiscountCheck::Allowed
            && !ctx.sale_running.get()
            && ctx.fatal.with(Option::is_none)
    };
    let confirm = move || {
        if !can_pay() {
            return;
        }
        let Ok(chosen) = plan.get_untracked() else {
            return;
        };
        spawn_local(core::sell(ctx, chosen));
    };
    let on_enter = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" {
            ev.prevent_default();
            confirm();
        }
    };
    Effect::new(move |_| {
        if let Some(input) = first_field.get() {
            let _ = input.focus();
        } else if let Some(button) = confirm_ref.get() {
            let _ = button.focus();
        }
    });
    let mode_button = move |target: PayMode, key: Key, testid: &'static str| {
        view! {
            <button class=move || if mode == target { "tab active" } else { "tab" }
                data-testid=testid on:click=move |_| ctx.panel.set(Panel::Payment(target))>
                {move || ctx.t(key)}
            </button>
        }
    };
    let tendered_field = move || {
        view! {
            <label>
                <span>{move || ctx.t(Key::CashTendered)}</span>
                <input type="text" inputmode="decimal" class="big" data-testid="cash-tendered"
                    node_ref=first_field
                    placeholder=move || crate::format::money_plain(plan.with(|p| {
                        p.as_ref().map_or(total.get(), |p| p.cash)
                    }))
                    prop:value=move || tendered.get()
                    on:input=move |ev| tendered.set(event_target_value(&ev))
                    on:keydown=on_enter />
            </label>
        }
    };
    view! {
        <section class="panel payment" data-testid="payment-panel" data-mode=format!("{mode:?}")>
            <div class="tabs">
                {mode_button(PayMode::Cash, Key::PayCash, "mode-cash")}
                {mode_button(PayMode::Card, Key::PayCard, "mode-card")}
                {mode_button(PayMode::Split, Key::PaySplit, "mode-split")}
            </div>
            <div class="row total">
                <span>{move || ctx.t(Key::Total)}</span>
                <span class="num">{move || money(total.get())}</span>
            </div>
            {match mode {
                PayMode::Cash => tendered_field().into_any(),
                PayMode::Card => view! {
                    <div class="row" data-testid="card-amount-view">
                        <span>{move || ctx.t(Key::CardPart)}</span>
                        <span class="num">{move || money(total.get())}</span>
                    </div>
                }.into_any(),
                PayMode::Split => view! {
                    <label>
                        <span>{move || ctx.t(Key::CardAmount)}</span>
                        <input type="text" inputmode="decimal" class="big" data-testid="card-amount"
                            node_ref=first_field
                            prop:value=move || card.get()
                            on:input=move |ev| card.set(event_target_value(&ev))
                            on:keydown=on_enter />
                    </label>
                    <label>
                        <span>{move || ctx.t(Key::CashTendered)}</span>
                        <input type="text" inputmode="decimal" class="big" data-testid="cash-tendered"
                            prop:value=move || tendered.get()
                            on:input=move |ev| tendered.set(event_target_value(&ev))
                            on:keydown=on_enter />
                    </label>
                }.into_any(),
            }}
            {move || plan.get().ok().map(|plan| view! {
                <div class="row">
                    <span>{ctx.t(Key::CashPart)} " / " {ctx.t(Key::CardPart)}</span>
                    <span class="num">{money(plan.cash)} " / " {money(plan.card)}</span>
                </div>
                <div class="row change" data-testid="change-preview"
                    data-kopecks=plan.change.value().to_string()>
                    <span>{ctx.t(Key::Change)}</span>
                    <span class="num">{money(plan.change)}</span>
                </div>
            })}
            {move || plan.get().err().map(|reason| view! { <p class="error">{reason}</p> })}
            {move || problem.get().map(|reason| view! {
                <p class="error" data-testid="payment-problem">{reason}</p>
            })}
            {move || match discount.get() {
                DiscountCheck::Allowed => None,
                DiscountCheck::NeedsApproval => Some(ctx.t(Key::DiscountNeedsApproval)),
                DiscountCheck::TooLarge => Some(ctx.t(Key::DiscountTooLarge)),
            }.map(|text| view! { <p class="error">{text}</p> })}
            {move || blocked.get().map(|block| view! {
                <p class="error blocked" role="alert" data-testid="sale-blocked"
                    data-reason=block.as_str()>
                    {block.describe(ctx.lang.get())}
                </p>
            })}
            <div class="buttons">
                <button class="primary big" data-testid="pay-confirm" node_ref=confirm_ref
                    disabled=move || !can_pay() on:click=move |_| confirm()>
                    {move || ctx.t(Key::PayConfirm)}
                </button>
                <button class="big" data-testid="pay-cancel"
                    on:click=move |_| { ctx.panel.set(Panel::None); ctx.focus_scan(); }>
                    {move || ctx.t(Key::Cancel)}
                </button>
            </div>
        </section>
    }
}

/// Asks a manager to approve a discount above 10 %, or says why it cannot be given.
#[component]
pub fn ApprovalBox() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let secret = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let check = Memo::new(move |_| ctx.cart.with(|cart| cart.discount_check()));
    let approve = move || {
        let Some(token) = core::token(ctx) else {
            return;
        };
        let typed = secret.get_untracked();
        if typed.trim().is_empty() || busy.get_untracked() {
            return;
        }
        // What the manager approves is the cart as it is when the secret is submitted.
        let request = ctx.cart.with_untracked(|cart| cart.approval_request());
        busy.set(true);
        spawn_local(async move {
            match api::approve(&token, typed.trim()).await {
                Ok(ApproveAnswer { login, .. }) => {
                    let mut approved = false;
                    ctx.cart
                        .update(|cart| approved = cart.approve(login, request));
                    if approved {
                        ctx.notice.set(None);
                    } else {
                        ctx.complain(ctx.t_now(Key::ApprovalCartChanged));
                    }
                }
                Err(ApiError::Unreachable(_)) => ctx.complain(ctx.t_now(Key::NeedsTill)),
                Err(_) => ctx.complain(ctx.t_now(Key::ApprovalRefused)),
            }
            secret.set(String::new());
            busy.set(false);
        });
    };
    move || {
        let approved = ctx.cart.with(|cart| cart.valid_approval().cloned());
        match (check.get(), approved) {
            (DiscountCheck::TooLarge, _) => Some(view! {
                <p class="error" data-testid="discount-too-large">{ctx.t(Key::DiscountTooLarge)}</p>
            }.into_any()),
            (DiscountCheck::NeedsApproval, _) => Some(view! {
                <div class="approval" data-testid="discount-approval">
                    <p class="error">{ctx.t(Key::DiscountNeedsApproval)}</p>
                    <input type="password" inputmode="numeric" autocomplete="off"
                        data-testid="manager-secret" aria-label=ctx.t(Key::ManagerSecret)
                        placeholder=ctx.t(Key::ManagerSecret)
                        prop:value=move || secret.get()
                        on:input=move |ev| secret.set(event_target_value(&ev))
                        on:keydown=move |ev: web_sys::KeyboardEvent| {
                            if ev.key() == "Enter" { ev.prevent_default(); approve(); }
                        } />
                    <button data-testid="manager-approve" disabled=move || busy.get()
                        on:click=move |_| approve()>{ctx.t(Key::Approve)}</button>
                </div>
            }.into_any()),
            (DiscountCheck::Allowed, Some(approval)) => Some(view! {
                <p class="muted" data-testid="discount-approved">
                    {fill(ctx.t(Key::ApprovedBy), &[("name", &approval.manager)])}
                </p>
            }.into_any()),
            (DiscountCheck::Allowed, None) => None,
        }
    }
}
