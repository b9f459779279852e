//! The browser POS rows, in headless Chromium against a real hub, till and the
//! register / OFD emulators ([`tests::pos_rig::PosRig`]) with 10,000 products:
//!
//! - the WASM module's size, raw and gzip -9 (what a cold load downloads);
//! - first render with a cold cache (a fresh browser profile each time) and from the service
//!   worker (a reload once it controls the page): `performance.now()` when the app's first
//!   screen is in the DOM (`data-first-render-ms` on `<html>`, set by the app);
//! - scan → line: an EAN typed into the scan field and Enter, until its cart line is in the DOM,
//!   timed inside the page (MutationObserver), each scan a different product;
//! - "Pay" → "saved": the confirm button clicked until the receipt status shows the new
//!   receipt as saved (or later), timed inside the page.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tests::browser::Browser;
use tests::pos_rig::{ean, web_dist, PosRig, PosRigOptions, CASHIER_PIN};
use tests::Binaries;

use crate::scenarios::percentile;
use crate::{Row, Scale, Unit};

/// Products in the catalogue of these rows (the issue's figure).
const PRODUCTS: usize = 10_000;

/// Sizes of the bundle's WASM module.
fn wasm_rows() -> anyhow::Result<Vec<Row>> {
    let wasm = web_dist()?.join("pos-web_bg.wasm");
    let raw = std::fs::metadata(&wasm)
        .with_context(|| format!("reading {}", wasm.display()))?
        .len();
    let output = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&wasm)
        .output()
        .context("running gzip")?;
    let gzip = output.stdout.len() as u64;
    let row = |what: &str, bytes: u64| Row {
        what: what.to_owned(),
        unit: Unit::Bytes,
        ours: bytes as f64,
        capped: false,
        target: None,
        seeds: None,
        note: "web/dist/pos-web_bg.wasm as scripts/build-web.sh builds it (opt-level z, LTO, no \
               wasm-opt); the JS glue and the stylesheet add a few KiB"
            .to_owned(),
    };
    Ok(vec![
        row("POS WASM module, raw", raw),
        row("POS WASM module, gzip -9", gzip),
    ])
}

/// `data-first-render-ms` of the page once it is set.
async fn first_render_ms(browser: &Browser) -> anyhow::Result<f64> {
    for _ in 0..600 {
        let value = browser
            .eval("return document.documentElement.dataset.firstRenderMs || null")
            .await?;
        if let Some(ms) = value.as_str().and_then(|s| s.parse::<f64>().ok()) {
            return Ok(ms);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("the page never set data-first-render-ms")
}

async fn log_in_and_open(browser: &Browser, url: &str) -> anyhow::Result<()> {
    browser.open_pos(url).await?;
    browser.type_into("pin-input", CASHIER_PIN).await?;
    browser.click("login-submit").await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if !browser.all_testid("scan-input").await?.is_empty() {
            return Ok(());
        }
        if !browser.all_testid("opening-cash").await?.is_empty() {
            browser.type_into("opening-cash", "0").await?;
            browser.click("session-open").await?;
            browser.testid("scan-input").await?;
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("neither the selling screen nor the session opening showed");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Scans `code` inside the page and returns the milliseconds until a new cart line exists.
const SCAN_SCRIPT: &str = r#"
const [code, done] = [arguments[0], arguments[arguments.length - 1]];
const lines = () => document.querySelectorAll('[data-testid="cart-line"]').length;
const input = document.querySelector('[data-testid="scan-input"]');
const before = lines();
const t0 = performance.now();
const observer = new MutationObserver(() => {
  if (lines() > before) { observer.disconnect(); done(performance.now() - t0); }
});
observer.observe(document.body, { childList: true, subtree: true });
input.value = code;
input.dispatchEvent(new Event('input', { bubbles: true }));
input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', code: 'Enter', bubbles: true }));
setTimeout(() => { observer.disconnect(); done(-1); }, 5000);
"#;

/// Clicks "Pay" in the open payment panel; milliseconds until the status shows a new receipt.
const PAY_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
const status = () => document.querySelector('[data-testid="receipt-status"]');
const previous = status() ? status().dataset.receiptId : null;
const ok = ['saved', 'sent', 'fiscalised', 'acknowledged'];
const t0 = performance.now();
const check = () => {
  const s = status();
  if (s && s.dataset.receiptId && s.dataset.receiptId !== previous && ok.includes(s.dataset.state)) {
    observer.disconnect(); done(performance.now() - t0); return true;
  }
  return false;
};
const observer = new MutationObserver(check);
observer.observe(document.body, { childList: true, subtree: true, attributes: true });
document.querySelector('[data-testid="pay-confirm"]').click();
check();
setTimeout(() => { observer.disconnect(); done(-1); }, 5000);
"#;

async fn in_page(browser: &Browser, script: &str, args: Vec<Value>) -> anyhow::Result<f64> {
    let value = browser.client().execute_async(script, args).await?;
    match value.as_f64() {
        Some(ms) if ms >= 0.0 => Ok(ms),
        _ => bail!("the page did not finish within 5 s: {value}"),
    }
}

/// Every POS row.
pub async fn pos(bins: &Binaries, scale: &Scale) -> anyhow::Result<Vec<Row>> {
    let mut rows = wasm_rows()?;
    let options = PosRigOptions {
        products: PRODUCTS,
        buffer_capacity: Some(100_000),
    };
    eprintln!("pos: starting a store with {PRODUCTS} products");
    let rig = PosRig::start(bins, "bench-pos", options).await?;

    // Cold: a fresh browser (empty profile, no cache, no service worker) per sample.
    let mut cold = Vec::new();
    for _ in 0..scale.pos_renders {
        let browser = Browser::start().await?;
        browser.client().goto(&rig.url).await?;
        cold.push(first_render_ms(&browser).await?);
        browser.close().await?;
    }

    let browser = Browser::start().await?;
    log_in_and_open(&browser, &rig.url).await?;
    // Warm: reloads once the service worker controls the page.
    for _ in 0..100 {
        let controlled = browser
            .eval("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)")
            .await?;
        if controlled == Value::Bool(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut warm = Vec::new();
    for _ in 0..scale.pos_renders {
        browser.client().refresh().await?;
        warm.push(first_render_ms(&browser).await?);
    }
    browser.testid("scan-input").await?;
    // Let the 10,000-product catalogue reach the page before scanning.
    for _ in 0..600 {
        let found = in_page(
            &browser,
            SCAN_SCRIPT,
            vec![Value::String(ean(PRODUCTS - 1))],
        )
        .await;
        if found.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut scans = Vec::new();
    for i in 0..scale.pos_scans {
        scans.push(
            in_page(
                &browser,
                SCAN_SCRIPT,
                vec![Value::String(ean(i * 7 % PRODUCTS))],
            )
            .await?,
        );
    }

    let mut pays = Vec::new();
    for i in 0..scale.pos_pays {
        in_page(
            &browser,
            SCAN_SCRIPT,
            vec![Value::String(ean(i * 13 % PRODUCTS))],
        )
        .await
        .ok();
        browser.click("pay-card").await?;
        browser.testid("pay-confirm").await?;
        pays.push(in_page(&browser, PAY_SCRIPT, vec![]).await?);
        // The next sale starts from an empty cart.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.close().await?;

    for samples in [&mut cold, &mut warm, &mut scans, &mut pays] {
        samples.sort_by(f64::total_cmp);
    }
    let cold_median = percentile(&cold, 0.5);
    let warm_median = percentile(&warm, 0.5);
    rows.push(Row::millis(
        format!("POS first render, cold cache (median of {})", cold.len()),
        cold_median,
        Some(1_000.0),
        None,
        "performance.now() when the first screen is in the DOM, fresh Chromium profile each time; \
         headless Chromium 156, page served by till-node over loopback"
            .to_owned(),
    ));
    rows.push(Row::millis(
        format!(
            "POS first render from the service worker (median of {})",
            warm.len()
        ),
        warm_median,
        Some(1_000.0),
        None,
        "same, reloads once the service worker controls the page".to_owned(),
    ));
    let p50 = percentile(&scans, 0.5);
    let p95 = percentile(&scans, 0.95);
    rows.push(Row::millis(
        format!("POS scan → line, 10,000 products, P50 {p50:.1} ms / P95"),
        p95,
        Some(50.0),
        None,
        "EAN + Enter in the scan field until the new cart line is in the DOM, timed in the page"
            .to_owned(),
    ));
    let p50 = percentile(&pays, 0.5);
    let p95 = percentile(&pays, 0.95);
    rows.push(Row::millis(
        format!("POS Pay → saved, P50 {p50:.1} ms / P95"),
        p95,
        Some(50.0),
        None,
        "confirm clicked until the status shows the new receipt saved in IndexedDB, timed in the \
         page"
            .to_owned(),
    ));
    Ok(rows)
}
