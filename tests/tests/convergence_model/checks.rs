//! The checks: after every step, and at the end (sync to a fixpoint, then equal heads, equal
//! projections, LWW winners, every acknowledged sale on the hub exactly once).

use std::collections::{BTreeMap, BTreeSet};

use crdt_model::catalogue::{self, FieldValue};
use crdt_model::session;
use crdt_model::Kopecks;
use sync_engine::DocId;
use tests::replica::till_may_see;

use crate::model::{Model, SaleRecord};
use crate::system::*;

/// After every step: share scopes hold, no replica shows a receipt the model lacks (or one with
/// other figures), and every acknowledged sale is on its till.
pub fn after_step(system: &System, model: &Model) {
    for (index, node) in system.nodes.iter().enumerate() {
        for id in node.replica.doc_ids() {
            if index != HUB {
                assert!(
                    till_may_see(&store(), &till_id(index), &id),
                    "T{index} holds {id}, outside its share scope"
                );
            }
        }
        for (id, view) in sessions_of(&node.replica, true) {
            for receipt in &view.receipts {
                let number = receipt_number(receipt.id);
                let known = number.and_then(|n| model.sales.get(&n));
                let Some(record) = known else {
                    panic!(
                        "replica {index} shows receipt {} in {id}, unknown to the model",
                        receipt.id
                    );
                };
                assert_eq!(
                    session_doc(record.till, record.session),
                    id,
                    "receipt {} in the wrong session",
                    receipt.id
                );
                assert_eq!(
                    receipt.total.0, record.total,
                    "receipt {} total",
                    receipt.id
                );
            }
        }
    }
    for (number, record) in &model.sales {
        let doc_id = session_doc(record.till, record.session);
        let doc = system.nodes[record.till].replica.doc(&doc_id);
        let present = doc
            .map(|d| session::get_receipt(d, receipt_id(*number)).expect("readable"))
            .is_some_and(|r| r.is_some());
        assert!(
            present,
            "T{} lost its acknowledged sale #{number}",
            record.till
        );
    }
}

/// Every till syncs with the hub, pass after pass, until a pass changes nothing on any till
/// and every till holds the hub's heads of every document it shares (a till's pass may bring
/// the hub changes that tills synced earlier in the pass still lack).
pub fn sync_to_fixpoint(system: &mut System) {
    for _pass in 0..6 {
        let mut changed = 0;
        for till in 1..=TILLS {
            let (hub_part, tills) = system.nodes.split_at_mut(1);
            let report = tills[till - 1]
                .replica
                .sync_with(&mut hub_part[0].replica)
                .expect("clean sync");
            changed += report.docs_changed;
        }
        if changed == 0 && tills_hold_hub_heads(system) {
            return;
        }
    }
    panic!("no fixpoint after 6 passes");
}

fn tills_hold_hub_heads(system: &mut System) -> bool {
    for id in system.nodes[HUB].replica.doc_ids() {
        let hub_heads = system.nodes[HUB].replica.heads(&id);
        for till in 1..=TILLS {
            if till_may_see(&store(), &till_id(till), &id)
                && system.nodes[till].replica.heads(&id) != hub_heads
            {
                return false;
            }
        }
    }
    true
}

pub fn check_equal_heads(system: &mut System, model: &Model) {
    let catalogue_heads = system.nodes[HUB].replica.heads(&catalogue_doc());
    assert!(!catalogue_heads.is_empty());
    for till in 1..=TILLS {
        assert_eq!(
            system.nodes[till].replica.heads(&catalogue_doc()),
            catalogue_heads,
            "catalogue heads of T{till}"
        );
        let expected: BTreeSet<DocId> = (0..=model.sessions[till])
            .map(|n| session_doc(till, n))
            .collect();
        let held: BTreeSet<DocId> = system.nodes[till]
            .replica
            .doc_ids()
            .into_iter()
            .filter(|id| id.as_str().starts_with("session/"))
            .collect();
        assert_eq!(held, expected, "sessions of T{till}");
        for id in expected {
            let hub_heads = system.nodes[HUB].replica.heads(&id);
            assert_eq!(
                system.nodes[till].replica.heads(&id),
                hub_heads,
                "heads of {id}"
            );
        }
    }
}

pub fn check_projections(system: &System, model: &Model) {
    let hub = &system.nodes[HUB].replica;
    let hub_catalogue = hub.doc(&catalogue_doc()).expect("hub catalogue");
    let products = catalogue::products(hub_catalogue).expect("products");
    let conflicts = catalogue::conflicts(hub_catalogue).expect("conflicts");
    for product in &products {
        let winner = system
            .price_writes
            .iter()
            .filter(|(sku, _, _)| sku == &product.sku)
            .max_by(|a, b| a.2.cmp(&b.2))
            .expect("written");
        assert_eq!(
            product.price.0, winner.1,
            "{}: the largest HLC must win",
            product.sku
        );
    }
    for conflict in &conflicts {
        let logged = system.price_writes.iter().any(|(sku, price, hlc)| {
            sku == &conflict.sku
                && FieldValue::Money(Kopecks(*price)) == conflict.value
                && hlc == &conflict.hlc
        });
        assert!(
            logged && conflict.hlc < conflict.lost_to_hlc,
            "conflict {conflict:?} is not a losing write"
        );
    }
    for till in 1..=TILLS {
        let doc = system.nodes[till]
            .replica
            .doc(&catalogue_doc())
            .expect("till catalogue");
        assert_eq!(
            catalogue::products(doc).expect("products"),
            products,
            "products on T{till}"
        );
        assert_eq!(
            catalogue::conflicts(doc).expect("conflicts"),
            conflicts,
            "conflicts on T{till}"
        );
    }

    let hub_sessions = sessions_of(hub, false);
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (id, view) in &hub_sessions {
        let owner = view
            .header
            .till
            .as_str()
            .trim_start_matches('T')
            .parse::<usize>()
            .expect("till number");
        let till_view = sessions_of(&system.nodes[owner].replica, false)
            .remove(id)
            .expect("till holds its session");
        assert_eq!(&till_view, view, "{id} reads differently on T{owner}");
        view.verify_close().expect("close totals match");
        let number = (0..=model.sessions[owner])
            .find(|n| &session_doc(owner, *n) == id)
            .expect("known session");
        assert_eq!(
            view.is_closed(),
            model.closed.contains(&(owner, number)),
            "{id} closed?"
        );
        let expected: Vec<&SaleRecord> = model
            .sales
            .values()
            .filter(|r| r.till == owner && r.session == number)
            .collect();
        let totals = view.totals();
        assert_eq!(
            totals.receipts as usize,
            expected.len(),
            "{id} receipt count"
        );
        assert_eq!(
            totals.sales_total.0,
            expected.iter().map(|r| r.total).sum::<i64>(),
            "{id} sales"
        );
        assert_eq!(
            totals.payments.cash.0,
            expected.iter().map(|r| r.cash).sum::<i64>(),
            "{id} cash"
        );
        assert_eq!(
            totals.payments.card.0,
            expected.iter().map(|r| r.card).sum::<i64>(),
            "{id} card"
        );
        assert_eq!(
            view.cash_balance().0,
            OPENING_CASH + totals.payments.cash.0,
            "{id} cash balance"
        );
        for receipt in &view.receipts {
            *seen
                .entry(receipt_number(receipt.id).expect("model receipt"))
                .or_default() += 1;
        }
    }
    let expected: BTreeMap<u64, usize> = model.sales.keys().map(|n| (*n, 1)).collect();
    assert_eq!(
        seen, expected,
        "every acknowledged sale exactly once on the hub"
    );
}
