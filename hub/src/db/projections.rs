//! SQL projections of the CRDT documents for reports: receipts with their payments, and
//! cash sessions.
//!
//! Written by the sync layer in the same [`DbTx`] as the document changes they come from, so
//! a projection never runs ahead of or behind its document. Writes are idempotent by id
//! (receipts are immutable: a second copy is ignored), and money is checked on the way in
//! (payments add up to the total, signs match the receipt kind; see
//! [`crate::db::projection_checks`]) — a pair assertion with the till, which checked the
//! same when the sale was made.

use crate::db::ids::validate_store_id;
use crate::db::{Db, DbError, DbTx};
use crdt_model::Kopecks;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// Receipts per INSERT statement (bounds statement size and parameter count).
const BATCH_ROWS: usize = 500;

/// What a receipt is. Stored as the lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptKind {
    /// A sale: total and payments ≥ 0.
    Sale,
    /// A refund: total and payments ≤ 0 (stored signed, so sums net out).
    Refund,
    /// A correction receipt: any sign.
    Correction,
}

impl ReceiptKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Sale => "sale",
            ReceiptKind::Refund => "refund",
            ReceiptKind::Correction => "correction",
        }
    }
}

impl fmt::Display for ReceiptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReceiptKind {
    type Err = DbError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sale" => Ok(ReceiptKind::Sale),
            "refund" => Ok(ReceiptKind::Refund),
            "correction" => Ok(ReceiptKind::Correction),
            _ => Err(DbError::invalid(
                "receipt kind",
                "expected sale, refund or correction",
            )),
        }
    }
}

/// One payment of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentRow {
    /// `cash`, `card`, `prepayment`, ...
    pub method: String,
    /// Signed like the receipt total.
    pub amount: Kopecks,
}

/// A receipt projected from a cash-session document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRow {
    /// The receipt's UUID, canonical lowercase hyphenated form.
    pub receipt_id: String,
    /// Store.
    pub store: String,
    /// Till.
    pub till: String,
    /// Cash session the receipt belongs to.
    pub session_id: String,
    /// Sale, refund or correction.
    pub kind: ReceiptKind,
    /// Signed total: negative for refunds.
    pub total: Kopecks,
    /// HLC timestamp of the receipt, as text (sorts in time order).
    pub hlc: String,
    /// The whole receipt as JSON (lines, VAT, buyer contact...), for drill-down and exports.
    pub body: String,
    /// Payments; they add up exactly to `total`.
    pub payments: Vec<PaymentRow>,
}

/// A cash session (shift) of one till.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    /// Session id.
    pub session_id: String,
    /// Store.
    pub store: String,
    /// Till.
    pub till: String,
    /// Cashier who opened it.
    pub cashier: String,
    /// HLC of the opening.
    pub opened_hlc: String,
    /// Cash in the drawer at opening.
    pub opening_cash: Kopecks,
    /// HLC of the Z close, once closed.
    pub closed_hlc: Option<String>,
    /// The Z report as JSON, once closed.
    pub close_json: Option<String>,
}

/// Receipts and signed total of one till.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TillSummary {
    /// Number of receipts (refunds included).
    pub receipts: i64,
    /// Signed sum of totals (refunds subtract).
    pub total: Kopecks,
}

/// Totals of one store: per till, per payment method and overall.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreSummary {
    /// Number of receipts (refunds included).
    pub receipts: i64,
    /// Signed sum of totals.
    pub total: Kopecks,
    /// Per till.
    pub tills: BTreeMap<String, TillSummary>,
    /// Signed sum of payment amounts per method.
    pub payments: BTreeMap<String, Kopecks>,
}

impl DbTx {
    /// Inserts receipts and their payments; receipts whose id is already stored (or repeated
    /// in `rows`) are skipped whole. Every row is validated first: one bad row refuses the
    /// batch and writes nothing. Returns how many receipts were new.
    pub async fn insert_receipts(&mut self, rows: &[ReceiptRow]) -> Result<u64, DbError> {
        for row in rows {
            row.validate()?;
        }
        let mut seen = HashSet::with_capacity(rows.len());
        let unique: Vec<&ReceiptRow> = rows
            .iter()
            .filter(|r| seen.insert(r.receipt_id.as_str()))
            .collect();
        let mut inserted = 0u64;
        for batch in unique.chunks(BATCH_ROWS) {
            inserted += match &mut self.conn {
                crate::db::TxConn::Postgres(t) => insert_batch_pg(t, batch).await?,
                crate::db::TxConn::Sqlite(t) => insert_batch_sqlite(t, batch).await?,
            };
        }
        Ok(inserted)
    }

    /// Inserts a cash session or records its close. The header (store, till, cashier,
    /// opening) never changes; a close, once stored, is kept (the first Z wins).
    /// [`DbError::MetaMismatch`] if the stored session belongs to another store or till.
    pub async fn upsert_session(&mut self, row: &SessionRow) -> Result<(), DbError> {
        row.validate()?;
        let returned: Option<(String,)> = on_tx!(self, c => {
            sqlx::query_as(
                "INSERT INTO sessions (session_id, store, till, cashier, opened_hlc, opening_cash,
                                       closed_hlc, close_json)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (session_id) DO UPDATE SET
                   closed_hlc = COALESCE(sessions.closed_hlc, excluded.closed_hlc),
                   close_json = COALESCE(sessions.close_json, excluded.close_json)
                 WHERE sessions.store = excluded.store AND sessions.till = excluded.till
                 RETURNING session_id",
            )
            .bind(&row.session_id)
            .bind(&row.store)
            .bind(&row.till)
            .bind(&row.cashier)
            .bind(&row.opened_hlc)
            .bind(row.opening_cash.0)
            .bind(&row.closed_hlc)
            .bind(&row.close_json)
            .fetch_optional(&mut *c)
            .await?
        });
        if returned.is_none() {
            return Err(DbError::MetaMismatch {
                what: "session",
                key: row.session_id.clone(),
            });
        }
        Ok(())
    }
}

/// PostgreSQL: one `UNNEST` insert for the receipts, then one for the payments of the
/// receipts that were actually new (`RETURNING`), so a duplicate never adds payments.
async fn insert_batch_pg(
    c: &mut sqlx::PgConnection,
    batch: &[&ReceiptRow],
) -> Result<u64, DbError> {
    let col = |f: fn(&ReceiptRow) -> String| batch.iter().map(|r| f(r)).collect::<Vec<String>>();
    let new_ids: Vec<String> = sqlx::query_scalar(
        "INSERT INTO receipts (receipt_id, store, till, session_id, kind, total, hlc, body)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::bigint[], $7::text[], $8::text[])
         ON CONFLICT (receipt_id) DO NOTHING
         RETURNING receipt_id",
    )
    .bind(col(|r| r.receipt_id.clone()))
    .bind(col(|r| r.store.clone()))
    .bind(col(|r| r.till.clone()))
    .bind(col(|r| r.session_id.clone()))
    .bind(col(|r| r.kind.as_str().to_owned()))
    .bind(batch.iter().map(|r| r.total.0).collect::<Vec<i64>>())
    .bind(col(|r| r.hlc.clone()))
    .bind(col(|r| r.body.clone()))
    .fetch_all(&mut *c)
    .await?;
    let new_ids: HashSet<String> = new_ids.into_iter().collect();
    let (mut ids, mut idxs, mut methods, mut amounts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for row in batch.iter().filter(|r| new_ids.contains(&r.receipt_id)) {
        for (idx, p) in (0i64..).zip(&row.payments) {
            ids.push(row.receipt_id.clone());
            idxs.push(idx);
            methods.push(p.method.clone());
            amounts.push(p.amount.0);
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO receipt_payments (receipt_id, idx, method, amount)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[])",
        )
        .bind(ids)
        .bind(idxs)
        .bind(methods)
        .bind(amounts)
        .execute(&mut *c)
        .await?;
    }
    Ok(new_ids.len() as u64)
}

/// SQLite: row by row inside the transaction (in-process, prepared statements are cached).
async fn insert_batch_sqlite(
    c: &mut sqlx::SqliteConnection,
    batch: &[&ReceiptRow],
) -> Result<u64, DbError> {
    let mut inserted = 0;
    for row in batch {
        let new = sqlx::query(
            "INSERT INTO receipts (receipt_id, store, till, session_id, kind, total, hlc, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (receipt_id) DO NOTHING",
        )
        .bind(&row.receipt_id)
        .bind(&row.store)
        .bind(&row.till)
        .bind(&row.session_id)
        .bind(row.kind.as_str())
        .bind(row.total.0)
        .bind(&row.hlc)
        .bind(&row.body)
        .execute(&mut *c)
        .await?
        .rows_affected();
        if new == 0 {
            continue;
        }
        inserted += 1;
        for (idx, p) in (0i64..).zip(&row.payments) {
            sqlx::query("INSERT INTO receipt_payments (receipt_id, idx, method, amount) VALUES ($1, $2, $3, $4)")
                .bind(&row.receipt_id)
                .bind(idx)
                .bind(&p.method)
                .bind(p.amount.0)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(inserted)
}

impl Db {
    /// Receipt counts and signed totals of `store`, per till and per payment method.
    pub async fn store_summary(&self, store: &str) -> Result<StoreSummary, DbError> {
        validate_store_id(store)?;
        type Totals = (Vec<(String, i64, i64)>, Vec<(String, i64)>);
        let (tills, payments): Totals = on_reader!(self, p => {
            let tills = sqlx::query_as(
                "SELECT till, COUNT(*), CAST(COALESCE(SUM(total), 0) AS BIGINT)
                 FROM receipts WHERE store = $1 GROUP BY till",
            )
            .bind(store)
            .fetch_all(p)
            .await?;
            let payments = sqlx::query_as(
                "SELECT pay.method, CAST(COALESCE(SUM(pay.amount), 0) AS BIGINT)
                 FROM receipt_payments pay JOIN receipts r ON r.receipt_id = pay.receipt_id
                 WHERE r.store = $1 GROUP BY pay.method",
            )
            .bind(store)
            .fetch_all(p)
            .await?;
            (tills, payments)
        });
        let overflow =
            || DbError::corrupt("receipts", format!("totals of store {store} overflow i64"));
        let mut summary = StoreSummary::default();
        for (till, receipts, total) in tills {
            summary.receipts = summary
                .receipts
                .checked_add(receipts)
                .ok_or_else(overflow)?;
            summary.total = summary
                .total
                .checked_add(Kopecks(total))
                .ok_or_else(overflow)?;
            summary.tills.insert(
                till,
                TillSummary {
                    receipts,
                    total: Kopecks(total),
                },
            );
        }
        summary.payments = payments.into_iter().map(|(m, a)| (m, Kopecks(a))).collect();
        Ok(summary)
    }

    /// Every store the hub knows of (enrolled devices, documents, receipts), sorted.
    pub async fn list_stores(&self) -> Result<Vec<String>, DbError> {
        let stores = on_reader!(self, p => {
            sqlx::query_scalar(
                "SELECT store FROM devices UNION SELECT store FROM docs
                 UNION SELECT store FROM receipts ORDER BY 1",
            )
            .fetch_all(p)
            .await?
        });
        Ok(stores)
    }

    /// Cash sessions of `store`, ordered by till then opening HLC.
    pub async fn sessions_for_store(&self, store: &str) -> Result<Vec<SessionRow>, DbError> {
        validate_store_id(store)?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = on_reader!(self, p => {
            sqlx::query_as(
                "SELECT session_id, store, till, cashier, opened_hlc, opening_cash, closed_hlc, close_json
                 FROM sessions WHERE store = $1 ORDER BY till, opened_hlc, session_id",
            )
            .bind(store)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    session_id,
                    store,
                    till,
                    cashier,
                    opened_hlc,
                    opening_cash,
                    closed_hlc,
                    close_json,
                )| SessionRow {
                    session_id,
                    store,
                    till,
                    cashier,
                    opened_hlc,
                    opening_cash: Kopecks(opening_cash),
                    closed_hlc,
                    close_json,
                },
            )
            .collect())
    }
}
