//! Durability under kill -9 (reliability.md, "Durability on real SQLite"; brief.md §8).
//!
//! A real `till-node` sells to several concurrent HTTP clients and is SIGKILLed at seeded
//! random moments (6 times), then restarted on the same data directory. After each kill the
//! SQLite file passes `PRAGMA integrity_check` (opened read-only). Requests that died with the
//! process are retried after the restart with the SAME Idempotency-Key and body: each must
//! succeed, returning the original receipt if it had been committed, and a second retry must
//! return the same receipt again. At the end:
//! - every sale that got a 200 is in `GET /v1/session/{id}/receipts` exactly once, with its total;
//! - there is exactly one receipt per Idempotency-Key (a died request is never recorded twice);
//! - the session's cash balance equals the opening cash plus the cash paid on its receipts
//!   plus cash-ins minus cash-outs, and the movements are exactly the acknowledged ones.
//!
//! Set `E2E_SEED` to replay a run (the seed is printed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tests::{free_port, SaleGen, TillClient, TillProcess, TillSpec, STORE};

const CLIENTS: u64 = 4;
const KILLS: usize = 6;
const OPENING_CASH: i64 = 50_000;

/// One sale request and what became of it.
#[derive(Debug, Clone)]
struct Attempt {
    key: String,
    body: Value,
    total: i64,
    /// `Some(receipt id)` once acknowledged (first try or retry).
    receipt: Option<String>,
}

/// Sells until `stop` is set or the till stops answering; returns every attempt.
async fn sell_until_dead(
    client: TillClient,
    seed: u64,
    tag: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Attempt>> {
    let mut sales = SaleGen::new(seed, "T1");
    let mut attempts = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let sale = sales.sale();
        let mut attempt = Attempt {
            key: format!("{tag}-{n}"),
            body: sale.body,
            total: sale.total,
            receipt: None,
        };
        match client.sell(&attempt.key, &attempt.body).await {
            Ok(reply) if reply.status == 200 => {
                let id = reply
                    .str_field("receipt_id")
                    .context("200 without receipt_id")?;
                attempt.receipt = Some(id.to_owned());
                attempts.push(attempt);
            }
            Ok(reply) => bail!(
                "sale {} refused: HTTP {} {}",
                attempt.key,
                reply.status,
                reply.text
            ),
            Err(_) => {
                // The process died under this request: outcome unknown until the retry.
                attempts.push(attempt);
                break;
            }
        }
    }
    Ok(attempts)
}

/// `PRAGMA integrity_check` on the till's database, opened read-only.
fn integrity_check(db: &Path) -> anyhow::Result<()> {
    let connection =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {} read-only", db.display()))?;
    let result: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    ensure!(result == "ok", "integrity_check: {result}");
    Ok(())
}

fn receipt_id(receipt: &Value) -> Option<&str> {
    receipt
        .get("id")
        .or_else(|| receipt.get("receipt_id"))
        .and_then(Value::as_str)
}

fn cash_paid(receipt: &Value) -> i64 {
    receipt["payments"]
        .as_array()
        .map(|payments| {
            payments
                .iter()
                .filter(|p| p["method"] == "cash")
                .map(|p| p["amount"].as_i64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_sales_survive_kill9() -> anyhow::Result<()> {
    let seed = std::env::var("E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_123u64);
    eprintln!("crash_kill9 seed: {seed} (E2E_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let bins = tests::binaries!();
    let work = tests::work_dir("crash_kill9")?;
    // No hub: the till sells offline throughout, so every receipt stays in its buffer.
    let dead_hub = format!("http://127.0.0.1:{}", free_port()?);
    let spec = TillSpec::new(STORE, "T1", work.path(), &dead_hub, "device-token-unused")
        .arg("--buffer-capacity", "100000");
    let db_path = spec.db_path();
    let mut till = TillProcess::start(&bins, spec).await?;
    let session = till.client()?.open_session("Иванова", OPENING_CASH).await?;

    let mut attempts: Vec<Attempt> = Vec::new();
    let (mut cash_in, mut cash_out) = (0i64, 0i64);
    let mut died = 0usize;
    for round in 0..KILLS {
        // Between kills: one acknowledged cash movement, so the balance check covers movements.
        let client = till.client()?.clone();
        if round % 2 == 0 {
            client.cash("in", 1_000 + round as i64, "размен").await?;
            cash_in += 1_000 + round as i64;
        } else {
            client.cash("out", 500, "инкассация").await?;
            cash_out += 500;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let tag = format!("r{round}c{c}");
                tokio::spawn(sell_until_dead(
                    client.clone(),
                    seed ^ (round as u64 * 131 + c),
                    tag,
                    Arc::clone(&stop),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..1_200))).await;
        till.kill9();
        stop.store(true, Ordering::SeqCst);
        for worker in workers {
            attempts.extend(worker.await??);
        }
        integrity_check(&db_path).with_context(|| format!("after kill {}", round + 1))?;

        till.restart().await?;
        let client = till.client()?;
        let current = client
            .current_session()
            .await?
            .context("session open after restart")?;
        ensure!(
            current["session_id"] == session.as_str(),
            "another session after restart: {current}"
        );
        // Died requests: retry with the same key and body; then once more, which must repeat.
        died += attempts.iter().filter(|a| a.receipt.is_none()).count();
        for attempt in attempts.iter_mut().filter(|a| a.receipt.is_none()) {
            let id = client
                .sell_ok(&attempt.key, &attempt.body)
                .await
                .with_context(|| format!("retry {}", attempt.key))?;
            let again = client.sell_ok(&attempt.key, &attempt.body).await?;
            ensure!(
                again == id,
                "key {}: retries returned {id} and then {again}",
                attempt.key
            );
            attempt.receipt = Some(id);
        }
    }
    ensure!(
        attempts.len() > KILLS * CLIENTS as usize,
        "too few sales to mean anything: {}",
        attempts.len()
    );

    // Every key maps to one receipt; every acknowledged receipt is present exactly once.
    let receipts = till.client()?.session_receipts(&session).await?;
    let mut by_id: BTreeMap<&str, &Value> = BTreeMap::new();
    for receipt in &receipts {
        let id = receipt_id(receipt).context("receipt without id")?;
        ensure!(
            by_id.insert(id, receipt).is_none(),
            "receipt {id} listed twice"
        );
    }
    let acknowledged: BTreeSet<&str> = attempts
        .iter()
        .filter_map(|a| a.receipt.as_deref())
        .collect();
    ensure!(
        acknowledged.len() == attempts.len(),
        "two keys share a receipt"
    );
    ensure!(
        by_id.len() == attempts.len(),
        "{} receipts for {} idempotency keys (a retried sale was recorded twice, or one was lost)",
        by_id.len(),
        attempts.len()
    );
    for attempt in &attempts {
        let id = attempt.receipt.as_deref().unwrap_or_default();
        let receipt = by_id
            .get(id)
            .with_context(|| format!("acknowledged receipt {id} missing"))?;
        ensure!(
            receipt["total"] == attempt.total,
            "receipt {id}: total {} != {}",
            receipt["total"],
            attempt.total
        );
    }

    // The cash balance reconciles with the receipts and the acknowledged movements.
    let current = till
        .client()?
        .current_session()
        .await?
        .context("session still open")?;
    let cash_payments: i64 = receipts.iter().map(cash_paid).sum();
    ensure!(
        current["receipts_count"] == attempts.len(),
        "receipts_count: {current}"
    );
    ensure!(
        current["cash_in"] == cash_in && current["cash_out"] == cash_out,
        "movements: {current}"
    );
    ensure!(
        current["payments"]["cash"] == cash_payments,
        "cash payments: {current}"
    );
    let expected_balance = OPENING_CASH + cash_payments + cash_in - cash_out;
    ensure!(
        current["cash_balance"] == expected_balance,
        "cash balance {} != {expected_balance}",
        current["cash_balance"]
    );
    let sales_total: i64 = attempts.iter().map(|a| a.total).sum();
    ensure!(
        current["sales_total"] == sales_total,
        "sales_total {} != {sales_total}",
        current["sales_total"]
    );

    till.stop().await;
    integrity_check(&db_path).context("after the final stop")?;
    eprintln!(
        "crash_kill9: {} sales ({died} died with the process and were retried) over {KILLS} kills",
        attempts.len()
    );
    Ok(())
}
