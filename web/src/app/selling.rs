//! The selling screen: the scan field (a scanner types the EAN and Enter; a cashier types a
//! name and picks with the arrows), the cart with quantities and discounts, the total, the
//! buyer's contact, the pay buttons, the last receipt's state, and the session actions.

use crdt_model::catalogue::Product;
use crdt_model::Kopecks;
use leptos::prelude::*;

use super::{actions, core, payment};
use super::{Ctx, Panel};
use crate::cart::{CartError, PayMode};
use crate::format::{money, money_plain, parse_money, quantity};
use crate::i18n::{fill, Key};
use crate::lookup::Lookup;
use crate::status::ReceiptState;

/// The selling screen.
#[component]
pub fn Selling() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    // An open session keeps selling without persistent storage, but the cashier is told.
    let storage_warning = move || {
        (ctx.storage_ok.get() == Some(false)).then(|| {
            view! {
                <div class="notice error" data-testid="storage-refused">
                    {ctx.t(Key::StorageRefusedTitle)}
                </div>
            }
        })
    };
    view! {
        {storage_warning}
        <main class="screen selling">
            <section class="left">
                <ScanField/>
                <CartTable/>
            </section>
            <aside class="right">
                <ReceiptStatus/>
                {move || match ctx.panel.get() {
                    Panel::Payment(mode) => payment::panel(ctx, mode).into_any(),
                    Panel::Refund => actions::refund_panel(ctx).into_any(),
                    Panel::Cash => actions::cash_panel(ctx).into_any(),
                    Panel::CloseConfirm => actions::close_panel(ctx).into_any(),
                    Panel::None => ().into_any(),
                }}
                <Totals/>
                <actions::ActionBar/>
            </aside>
        </main>
    }
}

/// Adds one unit of `product` and keeps the scan field ready.
fn add(ctx: Ctx, product: &Product) {
    let mut refused = None;
    ctx.cart.update(|cart| {
        if let Err(error) = cart.add_product(product) {
            refused = Some(error);
        }
    });
    if let Some(error) = refused {
        ctx.complain(error.describe(ctx.lang.get_untracked()));
    } else {
        ctx.notice.set(None);
    }
}

#[component]
fn ScanField() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let query = RwSignal::new(String::new());
    let picked = RwSignal::new(0usize);
    let matches = Memo::new(move |_| {
        ctx.catalogue_version.track();
        let text = query.get();
        if text.trim().chars().count() < 2 {
            return Vec::new();
        }
        let index = core::index();
        index
            .search(&text)
            .into_iter()
            .cloned()
            .collect::<Vec<Product>>()
    });
    let enter = move |text: String| {
        let index = core::index();
        if index.is_empty() {
            // Keep the text: Enter again once the catalogue has arrived.
            query.set(text);
            core::kick_sync();
            return ctx.complain(ctx.t_now(Key::CatalogueEmpty));
        }
        match index.lookup(&text) {
            Lookup::Exact(product) => add(ctx, product),
            Lookup::Matches(found) => match found.get(picked.get_untracked()).or(found.first()) {
                Some(product) => add(ctx, product),
                None => ctx.complain(fill(ctx.t_now(Key::NotFound), &[("q", text.trim())])),
            },
        }
        query.set(String::new());
        picked.set(0);
    };
    let on_key = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
        "Enter" => {
            ev.prevent_default();
            // Read the field itself: a scanner's Enter may beat the last input event.
            let text = ctx
                .scan_ref
                .get_untracked()
                .map(|input| input.value())
                .unwrap_or_else(|| query.get_untracked());
            if text.trim().is_empty() {
                if !ctx.cart.with_untracked(|cart| cart.is_empty()) {
                    payment::open(ctx, PayMode::Cash);
                }
                return;
            }
            enter(text);
        }
        "ArrowDown" => {
            ev.prevent_default();
            let count = matches.with_untracked(Vec::len);
            picked.update(|p| *p = (*p + 1).min(count.saturating_sub(1)));
        }
        "ArrowUp" => {
            ev.prevent_default();
            picked.update(|p| *p = p.saturating_sub(1));
        }
        "Escape" => {
            query.set(String::new());
            picked.set(0);
        }
        _ => {}
    };
    Effect::new(move |_| {
        if let Some(input) = ctx.scan_ref.get() {
            let _ = input.focus();
        }
    });
    view! {
        <div class="scan">
            <input type="text" class="big" autocomplete="off" autofocus
                data-testid="scan-input" node_ref=ctx.scan_ref
                placeholder=move || ctx.t(Key::ScanPlaceholder)
                prop:value=move || query.get()
                on:input=move |ev| { query.set(event_target_value(&ev)); picked.set(0); }
                on:keydown=on_key />
            {move || {
                let found = matches.get();
                (!found.is_empty()).then(|| view! {
                    <ul class="matches" data-testid="search-results" role="listbox">
                        {found.into_iter().enumerate().map(|(i, product)| {
                            let chosen = product.clone();
                            view! {
                                <li role="option" data-sku=product.sku.clone()
                                    class=move || if picked.get() == i { "picked" } else { "" }
                                    on:mousedown=move |ev| {
                                        ev.prevent_default();
                                        add(ctx, &chosen);
                                        query.set(String::new());
                                    }>
                                    <span>{product.name.clone()}</span>
                                    <span class="muted">{product.sku.clone()}</span>
                                    <span class="num">{money(product.price)}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                })
            }}
            {move || (ctx.catalogue_size.get() == 0).then(|| view! {
                <p class="muted">{ctx.t(Key::CatalogueEmpty)}</p>
            })}
        </div>
    }
}

#[component]
fn CartTable() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let set_discount = move |index: usize, text: String| {
        let amount = if text.trim().is_empty() {
            Ok(Kopecks::ZERO)
        } else {
            parse_money(&text)
        };
        let Ok(amount) = amount else {
            return ctx.complain(ctx.t_now(Key::MoneyInvalid));
        };
        let mut refused = None;
        ctx.cart
            .update(|cart| refused = cart.set_line_discount(index, amount).err());
        if let Some(CartError::DiscountAboveAmount { max }) = refused {
            ctx.complain(format!(
                "{} ({})",
                ctx.t_now(Key::DiscountAboveLine),
                money(max)
            ));
        }
    };
    view! {
        <table class="cart">
            <thead>
                <tr>
                    <th>{move || ctx.t(Key::ColName)}</th>
                    <th>{move || ctx.t(Key::ColQty)}</th>
                    <th class="num">{move || ctx.t(Key::ColPrice)}</th>
                    <th class="num">{move || ctx.t(Key::ColDiscount)}</th>
                    <th class="num">{move || ctx.t(Key::ColSum)}</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>
                {move || {
                    let cart = ctx.cart.get();
                    if cart.is_empty() {
                        return view! {
                            <tr><td colspan="6" class="muted">{ctx.t(Key::CartEmpty)}</td></tr>
                        }.into_any();
                    }
                    cart.lines.iter().enumerate().map(|(i, line)| view! {
                        <tr data-testid="cart-line" data-sku=line.sku.clone()
                            data-qty=line.qty.to_string()
                            data-kopecks=line.net().value().to_string()>
                            <td>{line.name.clone()}</td>
                            <td class="qty">
                                <button class="step" aria-label="-" data-testid="qty-minus"
                                    on:click=move |_| {
                                        ctx.cart.update(|c| { let _ = c.decrement(i); });
                                        ctx.focus_scan();
                                    }>"−"</button>
                                <span class="num">{quantity(line.qty)}</span>
                                <button class="step" aria-label="+" data-testid="qty-plus"
                                    on:click=move |_| {
                                        ctx.cart.update(|c| { let _ = c.increment(i); });
                                        ctx.focus_scan();
                                    }>"+"</button>
                            </td>
                            <td class="num">{money(line.price)}</td>
                            <td class="num">
                                <input type="text" inputmode="decimal" class="discount"
                                    data-testid="line-discount"
                                    aria-label=ctx.t(Key::LineDiscount)
                                    value=if line.discount.is_positive() {
                                        money_plain(line.discount)
                                    } else {
                                        String::new()
                                    }
                                    on:change=move |ev| set_discount(i, event_target_value(&ev)) />
                            </td>
                            <td class="num">{money(line.net())}</td>
                            <td>
                                <button class="step" data-testid="line-remove"
                                    aria-label=ctx.t(Key::Remove)
                                    on:click=move |_| {
                                        ctx.cart.update(|c| { let _ = c.remove(i); });
                                        ctx.focus_scan();
                                    }>"×"</button>
                            </td>
                        </tr>
                    }).collect_view().into_any()
                }}
            </tbody>
        </table>
    }
}

#[component]
fn Totals() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let total = Memo::new(move |_| ctx.cart.with(|cart| cart.total()));
    let set_receipt_discount = move |text: String| {
        let amount = if text.trim().is_empty() {
            Ok(Kopecks::ZERO)
        } else {
            parse_money(&text)
        };
        let Ok(amount) = amount else {
            return ctx.complain(ctx.t_now(Key::MoneyInvalid));
        };
        let mut refused = None;
        ctx.cart
            .update(|cart| refused = cart.set_receipt_discount(amount).err());
        if let Some(CartError::DiscountAboveAmount { max }) = refused {
            ctx.complain(format!(
                "{} ({})",
                ctx.t_now(Key::DiscountAboveLine),
                money(max)
            ));
        }
    };
    view! {
        <section class="totals-box">
            <div class="row muted">
                <span>{move || ctx.t(Key::Subtotal)}</span>
                <span class="num">{move || money(ctx.cart.with(|c| c.gross()))}</span>
            </div>
            <div class="row muted">
                <span>{move || ctx.t(Key::DiscountTotal)}</span>
                <span class="num">{move || money(ctx.cart.with(|c| c.discount_total()))}</span>
            </div>
            <div class="row total">
                <span>{move || ctx.t(Key::Total)}</span>
                <span class="num" data-testid="cart-total"
                    data-kopecks=move || total.get().value().to_string()
                    data-persisted=move || ctx.cart_persisted.get().to_string()>
                    {move || money(total.get())}
                </span>
            </div>
            <label>
                <span>{move || ctx.t(Key::ReceiptDiscount)}</span>
                <input type="text" inputmode="decimal" data-testid="receipt-discount"
                    prop:value=move || {
                        let discount = ctx.cart.with(|c| c.receipt_discount);
                        if discount.is_positive() { money_plain(discount) } else { String::new() }
                    }
                    on:change=move |ev| set_receipt_discount(event_target_value(&ev)) />
            </label>
            <payment::ApprovalBox/>
            <label>
                <span>{move || ctx.t(Key::BuyerContact)}</span>
                <input type="text" autocomplete="off" data-testid="buyer-contact"
                    prop:value=move || ctx.cart.with(|c| c.buyer_contact.clone())
                    on:change=move |ev| {
                        let contact = event_target_value(&ev);
                        ctx.cart.update(|c| c.buyer_contact = contact);
                    } />
            </label>
            <div class="pay-buttons">
                <button class="primary big" data-testid="pay-cash"
                    disabled=move || ctx.cart.with(|c| c.is_empty())
                    on:click=move |_| payment::open(ctx, PayMode::Cash)>
                    {move || ctx.t(Key::PayCash)}
                </button>
                <button class="primary big" data-testid="pay-card"
                    disabled=move || ctx.cart.with(|c| c.is_empty())
                    on:click=move |_| payment::open(ctx, PayMode::Card)>
                    {move || ctx.t(Key::PayCard)}
                </button>
                <button class="big" data-testid="pay-split"
                    disabled=move || ctx.cart.with(|c| c.is_empty())
                    on:click=move |_| payment::open(ctx, PayMode::Split)>
                    {move || ctx.t(Key::PaySplit)}
                </button>
            </div>
        </section>
    }
}

/// The last receipt made here and how far it has got.
#[component]
fn ReceiptStatus() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        ctx.last_receipt.get().map(|badge| {
            let state_key = match badge.state {
                ReceiptState::Saved => Key::StateSaved,
                ReceiptState::Sent => Key::StateSent,
                ReceiptState::Fiscalised => Key::StateFiscalised,
                ReceiptState::Acknowledged => Key::StateAcknowledged,
            };
            let short_id: String = badge.id.to_string().chars().take(8).collect();
            view! {
                <section class=format!("receipt-status state-{}", badge.state.as_str())
                    data-testid="receipt-status" data-state=badge.state.as_str()
                    data-receipt-id=badge.id.to_string()
                    data-saved-ms=badge.saved_in_ms.map(|ms| ms.to_string())>
                    <span>{ctx.t(Key::ReceiptLabel)} " " {short_id} ": "</span>
                    <strong>{ctx.t(state_key)}</strong>
                    {badge.change.map(|change| view! {
                        <div class="change" data-testid="change"
                            data-kopecks=change.value().to_string()>
                            {ctx.t(Key::Change)} ": " {money(change)}
                        </div>
                    })}
                </section>
            }
        })
    }
}
