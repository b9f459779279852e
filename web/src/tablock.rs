//! Browser guarantees the page depends on: one selling tab per browser profile (a Web Lock
//! held for the tab's life) and persistent storage (`navigator.storage.persist()`).
//!
//! Two tabs selling from one IndexedDB would write session documents as the same Automerge
//! actor and fork its sequence numbers, so a second tab is refused outright. Without
//! persistent storage the browser may evict IndexedDB under pressure, taking unsent receipts
//! with it, so no session may be opened. Both APIs need a secure context (`https:` or
//! `http://127.0.0.1`); where one is missing the page says so instead of guessing.
//!
//! The APIs are called through `js_sys::Reflect` because web-sys exposes Web Locks only
//! behind `--cfg=web_sys_unstable_apis`.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The lock every selling tab of this origin takes (the origin is one till: one IndexedDB).
pub const LOCK_NAME: &str = "optics-pos";

/// What the tab lock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabLock {
    /// This tab holds the lock until it closes.
    Held,
    /// Another tab holds it.
    Refused,
    /// The browser has no Web Locks here (not a secure context, or too old).
    Unsupported,
}

fn navigator() -> Option<JsValue> {
    let window = web_sys::window()?;
    Reflect::get(&window, &JsValue::from_str("navigator")).ok()
}

fn property(target: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(name))
        .ok()
        .filter(|value| !value.is_undefined() && !value.is_null())
}

/// Takes the tab lock if no other tab holds it; a held lock is kept until the tab closes.
pub async fn acquire() -> TabLock {
    let Some(locks) = navigator().and_then(|nav| property(&nav, "locks")) else {
        return TabLock::Unsupported;
    };
    let Some(request) = property(&locks, "request").and_then(|f| f.dyn_into::<Function>().ok())
    else {
        return TabLock::Unsupported;
    };
    let mut resolve_outcome: Option<Function> = None;
    let outcome = Promise::new(&mut |resolve, _reject| resolve_outcome = Some(resolve));
    let Some(resolve) = resolve_outcome else {
        return TabLock::Unsupported;
    };
    // Called with the lock, or with null when another tab holds it (`ifAvailable`). Returning a
    // promise that never settles keeps the lock for the tab's life.
    let callback = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |lock: JsValue| {
        let held = !lock.is_null() && !lock.is_undefined();
        let _ = resolve.call1(&JsValue::NULL, &JsValue::from_bool(held));
        if held {
            Promise::new(&mut |_, _| {}).into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = Object::new();
    if Reflect::set(&options, &JsValue::from_str("ifAvailable"), &JsValue::TRUE).is_err() {
        return TabLock::Unsupported;
    }
    let requested = request.call3(
        &locks,
        &JsValue::from_str(LOCK_NAME),
        &options,
        callback.as_ref().unchecked_ref(),
    );
    // The callback must outlive this function: the lock manager calls it later.
    callback.forget();
    if requested.is_err() {
        return TabLock::Unsupported;
    }
    match JsFuture::from(outcome).await {
        Ok(value) if value.as_bool() == Some(true) => TabLock::Held,
        Ok(_) => TabLock::Refused,
        Err(_) => TabLock::Unsupported,
    }
}

/// Asks for persistent storage; `true` when granted (or already granted).
pub async fn persist_storage() -> bool {
    let Some(storage) = navigator().and_then(|nav| property(&nav, "storage")) else {
        return false;
    };
    for method in ["persisted", "persist"] {
        let Some(function) = property(&storage, method).and_then(|f| f.dyn_into::<Function>().ok())
        else {
            return false;
        };
        let Ok(promise) = function.call0(&storage) else {
            return false;
        };
        let Ok(promise) = promise.dyn_into::<Promise>() else {
            return false;
        };
        if let Ok(granted) = JsFuture::from(promise).await {
            if granted.as_bool() == Some(true) {
                return true;
            }
        }
    }
    false
}
