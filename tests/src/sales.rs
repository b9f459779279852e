//! Sales for the scenarios: [`SaleGen`] makes deterministic receipt bodies in the till API's
//! format (1–3 items, mixed VAT, cash / card / split payments) from a seed, and [`Tally`]
//! adds up what the hub's summary must then show, in exact kopecks.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const NAMES: [&str; 5] = ["Оправа", "Линза", "Футляр", "Салфетка", "Контактные линзы"];
const VATS: [&str; 3] = ["vat22", "vat10", "none"];

/// One sale: the request body and the figures it adds to a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    /// The `POST /v1/kkt/receipt` body.
    pub body: Value,
    /// Receipt total, kopecks.
    pub total: i64,
    /// Paid in cash.
    pub cash: i64,
    /// Paid by card.
    pub card: i64,
}

/// A seeded generator of sales.
#[derive(Debug)]
pub struct SaleGen {
    rng: StdRng,
    pos_id: String,
}

impl SaleGen {
    /// Sales for point of sale `pos_id` from `seed`.
    pub fn new(seed: u64, pos_id: &str) -> SaleGen {
        SaleGen {
            rng: StdRng::seed_from_u64(seed),
            pos_id: pos_id.to_owned(),
        }
    }

    /// The next sale.
    pub fn sale(&mut self) -> Sale {
        let item_count = self.rng.random_range(1..=3);
        let mut items = Vec::with_capacity(item_count);
        let mut total = 0i64;
        for _ in 0..item_count {
            let sku = self.rng.random_range(1..=40);
            let qty: i64 = self.rng.random_range(1..=3);
            let price: i64 = self.rng.random_range(500..=200_000);
            total += qty * price;
            items.push(json!({
                "sku": format!("F-{sku}"),
                "name": NAMES[self.rng.random_range(0..NAMES.len())],
                "qty": qty,
                "price": price,
                "vat": VATS[self.rng.random_range(0..VATS.len())],
            }));
        }
        let (cash, card) = match self.rng.random_range(0..3) {
            0 => (total, 0),
            1 => (0, total),
            _ => {
                let cash = self.rng.random_range(1..total);
                (cash, total - cash)
            }
        };
        let mut payments = Vec::new();
        if cash > 0 {
            payments.push(json!({"method": "cash", "amount": cash}));
        }
        if card > 0 {
            payments.push(json!({"method": "card", "amount": card}));
        }
        Sale {
            body: json!({
                "pos_id": self.pos_id,
                "type": "sale",
                "items": items,
                "payments": payments,
            }),
            total,
            cash,
            card,
        }
    }
}

/// Expected summary figures of a set of sales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Receipts.
    pub receipts: u64,
    /// Total, kopecks.
    pub total: i64,
    /// Cash, kopecks.
    pub cash: i64,
    /// Card, kopecks.
    pub card: i64,
}

impl Tally {
    /// Counts one sale.
    pub fn add(&mut self, sale: &Sale) {
        self.receipts += 1;
        self.total += sale.total;
        self.cash += sale.cash;
        self.card += sale.card;
    }

    /// Sum of tallies.
    pub fn sum<'a>(tallies: impl IntoIterator<Item = &'a Tally>) -> Tally {
        tallies.into_iter().fold(Tally::default(), |mut acc, t| {
            acc.receipts += t.receipts;
            acc.total += t.total;
            acc.cash += t.cash;
            acc.card += t.card;
            acc
        })
    }

    /// Checks a hub summary against per-till tallies: store figures, per-till figures and
    /// per-payment figures. Returns every mismatch, or `Ok` when all match.
    pub fn check_summary(
        per_till: &BTreeMap<String, Tally>,
        summary: &crate::http::StoreSummary,
    ) -> Result<(), String> {
        let all = Tally::sum(per_till.values());
        let mut problems = Vec::new();
        if summary.receipts != all.receipts || summary.total != all.total {
            problems.push(format!(
                "store: {} receipts / {} kopecks, expected {} / {}",
                summary.receipts, summary.total, all.receipts, all.total
            ));
        }
        for (till, tally) in per_till {
            let got = summary.tills.get(till).cloned().unwrap_or_default();
            if got.receipts != tally.receipts || got.total != tally.total {
                problems.push(format!(
                    "till {till}: {} / {}, expected {} / {}",
                    got.receipts, got.total, tally.receipts, tally.total
                ));
            }
        }
        for (method, expected) in [("cash", all.cash), ("card", all.card)] {
            let got = summary.payments.get(method).copied().unwrap_or(0);
            if got != expected {
                problems.push(format!("payments.{method}: {got}, expected {expected}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sales_add_up_and_are_deterministic() {
        let mut a = SaleGen::new(7, "T1");
        let mut b = SaleGen::new(7, "T1");
        for _ in 0..200 {
            let sale = a.sale();
            assert_eq!(sale, b.sale());
            assert_eq!(sale.cash + sale.card, sale.total);
            let items = sale.body["items"].as_array().expect("items");
            let sum: i64 = items
                .iter()
                .map(|i| i["qty"].as_i64().unwrap_or(0) * i["price"].as_i64().unwrap_or(0))
                .sum();
            assert_eq!(sum, sale.total);
            let paid: i64 = sale.body["payments"]
                .as_array()
                .expect("payments")
                .iter()
                .map(|p| p["amount"].as_i64().unwrap_or(0))
                .sum();
            assert_eq!(paid, sale.total);
        }
    }
}
