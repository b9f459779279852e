//! Catalogue tests: creation, import, LWW by HLC under concurrent writes, the conflict
//! ledger, and save/load.

use std::time::Instant;

use automerge::{ActorId, AutoCommit, ReadDoc};

use super::*;
use crate::ids::StoreId;

fn hlc(physical_ms: u64, node: &str) -> Hlc {
    Hlc::new(physical_ms, 0, node).expect("valid hlc")
}

fn store_s1() -> StoreId {
    StoreId::new("S1").expect("valid store")
}

fn frame(sku: &str, price: i64) -> Product {
    Product {
        sku: sku.to_owned(),
        ean: Some(format!("46{:011}", price)),
        name: format!("Оправа {sku}"),
        price: Kopecks(price),
        cost: Some(Kopecks(price / 2)),
        vat: VatRate::NoVat,
        unit: "шт".to_owned(),
        category: Some("frames".to_owned()),
        brand: None,
    }
}

fn doc_with(actor: &str, products: &[Product]) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()));
    init(&mut doc, &store_s1(), products, &hlc(1_000, "hub")).expect("init");
    doc.commit();
    doc
}

fn fork(doc: &mut AutoCommit, actor: &str) -> AutoCommit {
    doc.fork().with_actor(ActorId::from(actor.as_bytes()))
}

fn price_of(doc: &AutoCommit, sku: &str) -> Kopecks {
    product(doc, sku).expect("readable").expect("present").price
}

#[test]
fn init_and_read_back() {
    let products = vec![
        frame("RB-3025/001", 1_500_000),
        frame("A B", 100),
        frame("A", 200),
    ];
    let doc = doc_with("hub/main", &products);
    assert_eq!(store(&doc).ok(), Some(store_s1()));
    assert_eq!(
        product(&doc, "RB-3025/001").ok().flatten(),
        Some(products[0].clone())
    );
    assert_eq!(product(&doc, "A").ok().flatten(), Some(products[2].clone()));
    assert_eq!(product(&doc, "B").ok().flatten(), None);
    let all = products_sorted(&doc);
    let skus: Vec<&str> = all.iter().map(|p| p.sku.as_str()).collect();
    assert_eq!(skus, vec!["A", "A B", "RB-3025/001"]);
    let by_ean = find_by_ean(&doc, "4600000000100").expect("readable");
    assert_eq!(by_ean.map(|p| p.sku), Some("A B".to_owned()));
    assert_eq!(find_by_ean(&doc, "4699999999999").ok().flatten(), None);
    assert_eq!(conflicts(&doc).expect("readable"), vec![]);
}

fn products_sorted(doc: &AutoCommit) -> Vec<Product> {
    products(doc).expect("readable")
}

#[test]
fn init_refuses_bad_input_and_non_empty_documents() {
    let mut doc = doc_with("hub/main", &[frame("A", 1)]);
    assert!(matches!(
        init(&mut doc, &store_s1(), &[], &hlc(1, "hub")),
        Err(CatalogueError::NotEmpty)
    ));
    let mut fresh = AutoCommit::new();
    let duplicate = [frame("A", 1), frame("A", 2)];
    assert!(matches!(
        init(&mut fresh, &store_s1(), &duplicate, &hlc(1, "hub")),
        Err(CatalogueError::DuplicateSku { .. })
    ));
    let mut bad = frame("A|B", 1);
    assert!(matches!(
        init(&mut fresh, &store_s1(), &[bad.clone()], &hlc(1, "hub")),
        Err(CatalogueError::InvalidSku { .. })
    ));
    bad.sku = "B".to_owned();
    bad.ean = Some("12ab".to_owned());
    assert!(matches!(
        init(&mut fresh, &store_s1(), &[bad], &hlc(1, "hub")),
        Err(CatalogueError::InvalidValue {
            field: Field::Ean,
            ..
        })
    ));
    assert_eq!(
        fresh.length(automerge::ROOT),
        0,
        "refused init wrote nothing"
    );
    assert!(matches!(store(&fresh), Err(CatalogueError::NotACatalogue)));
}

#[test]
fn ten_thousand_products_in_one_batch() {
    let catalogue: Vec<Product> = (0..10_000)
        .map(|i| frame(&format!("SKU-{i:05}"), 1_000 + i))
        .collect();
    let started = Instant::now();
    let mut doc = doc_with("hub/main", &catalogue);
    let created = started.elapsed();
    let bytes = doc.save();
    let started = Instant::now();
    let loaded = AutoCommit::load(&bytes).expect("loads");
    let loaded_in = started.elapsed();
    let started = Instant::now();
    let all = products(&loaded).expect("readable");
    let read_in = started.elapsed();
    let started = Instant::now();
    let one = product(&loaded, "SKU-05000").expect("readable");
    let point_in = started.elapsed();
    println!(
        "10k products: init+commit {created:?}, save {} KB, load {loaded_in:?}, read all {read_in:?}, read one {point_in:?}",
        bytes.len() / 1024
    );
    assert_eq!(all.len(), 10_000);
    assert_eq!(all[4_321], catalogue[4_321]);
    assert_eq!(one.map(|p| p.price), Some(Kopecks(6_000)));
}

#[test]
fn upsert_writes_only_changed_fields() {
    let mut doc = doc_with("hub/main", &[frame("A", 100), frame("B", 200)]);
    let mut a = frame("A", 150);
    a.cost = Some(Kopecks(100));
    let b = frame("B", 200);
    let c = frame("C", 300);
    let report = upsert_products(
        &mut doc,
        &[a.clone(), b.clone(), c.clone()],
        &hlc(2_000, "hub"),
    )
    .expect("import");
    assert_eq!(
        report,
        UpsertReport {
            created: 1,
            updated: 1,
            unchanged: 1,
            // A: price, ean (derived from price), cost; C: 7 non-absent fields.
            fields_written: 3 + 7,
            fields_stale: 0,
        }
    );
    doc.commit();
    assert_eq!(products_sorted(&doc), vec![a.clone(), b, c]);
    // The same import again is a no-op.
    let again = upsert_products(&mut doc, &[a], &hlc(3_000, "hub")).expect("import");
    assert_eq!(again.unchanged, 1);
    assert_eq!(again.fields_written, 0);
}

#[test]
fn upsert_clears_optional_fields() {
    let mut doc = doc_with("hub/main", &[frame("A", 100)]);
    let mut a = frame("A", 100);
    a.category = None;
    upsert_products(&mut doc, &[a.clone()], &hlc(2_000, "hub")).expect("import");
    assert_eq!(product(&doc, "A").ok().flatten(), Some(a));
}

#[test]
fn set_field_validates_before_writing() {
    let mut doc = doc_with("hub/main", &[frame("A", 100)]);
    let at = hlc(2_000, "T1");
    assert!(matches!(
        set_field(
            &mut doc,
            "Z",
            Field::Price,
            FieldValue::Money(Kopecks(1)),
            &at
        ),
        Err(CatalogueError::UnknownSku { .. })
    ));
    assert!(matches!(
        set_field(
            &mut doc,
            "A",
            Field::Price,
            FieldValue::Text("1".to_owned()),
            &at
        ),
        Err(CatalogueError::InvalidValue { .. })
    ));
    assert!(matches!(
        set_field(&mut doc, "A", Field::Name, FieldValue::Absent, &at),
        Err(CatalogueError::InvalidValue { .. })
    ));
    assert!(matches!(
        set_field(
            &mut doc,
            "A",
            Field::Price,
            FieldValue::Money(Kopecks(-1)),
            &at
        ),
        Err(CatalogueError::InvalidValue { .. })
    ));
    let price = FieldValue::Money(Kopecks(120));
    assert_eq!(
        set_field(&mut doc, "A", Field::Price, price.clone(), &at).ok(),
        Some(WriteOutcome::Written)
    );
    // A retry of the same write is recognised; a different value at that HLC is a fault.
    assert_eq!(
        set_field(&mut doc, "A", Field::Price, price, &at).ok(),
        Some(WriteOutcome::Unchanged)
    );
    assert!(matches!(
        set_field(
            &mut doc,
            "A",
            Field::Price,
            FieldValue::Money(Kopecks(7)),
            &at
        ),
        Err(CatalogueError::DuplicateTimestamp { .. })
    ));
    assert_eq!(price_of(&doc, "A"), Kopecks(120));
}

#[test]
fn stale_write_goes_to_the_ledger() {
    let mut doc = doc_with("hub/main", &[frame("A", 100)]);
    set_field(
        &mut doc,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(300)),
        &hlc(5_000, "hub"),
    )
    .expect("write");
    let outcome = set_field(
        &mut doc,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(200)),
        &hlc(4_000, "T1"),
    )
    .expect("write");
    assert_eq!(outcome, WriteOutcome::Stale);
    assert_eq!(price_of(&doc, "A"), Kopecks(300));
    assert_eq!(
        conflicts(&doc).expect("readable"),
        vec![Conflict {
            sku: "A".to_owned(),
            field: Field::Price,
            value: FieldValue::Money(Kopecks(200)),
            hlc: hlc(4_000, "T1"),
            node: "T1".to_owned(),
            lost_to_hlc: hlc(5_000, "hub"),
        }]
    );
}

#[test]
fn concurrent_writes_resolve_by_hlc_regardless_of_merge_order() {
    let mut base = doc_with("hub/main", &[frame("A", 100), frame("B", 100)]);
    let mut till1 = fork(&mut base, "S1/T1/daemon");
    let mut till2 = fork(&mut base, "S1/T2/daemon");
    // Till 2 writes first in wall time but with the larger HLC; Automerge op order would
    // not pick it, the HLC does.
    set_field(
        &mut till2,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(222)),
        &hlc(3_000, "T2"),
    )
    .expect("write");
    till2.commit();
    set_field(
        &mut till1,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(111)),
        &hlc(2_000, "T1"),
    )
    .expect("write");
    till1.commit();

    let mut one_then_two = till1.clone();
    one_then_two.merge(&mut till2.clone()).expect("merge");
    let mut two_then_one = till2.clone();
    two_then_one.merge(&mut till1.clone()).expect("merge");

    let expected_conflict = Conflict {
        sku: "A".to_owned(),
        field: Field::Price,
        value: FieldValue::Money(Kopecks(111)),
        hlc: hlc(2_000, "T1"),
        node: "T1".to_owned(),
        lost_to_hlc: hlc(3_000, "T2"),
    };
    for merged in [&one_then_two, &two_then_one] {
        assert_eq!(price_of(merged, "A"), Kopecks(222));
        assert_eq!(
            conflicts(merged).expect("readable"),
            vec![expected_conflict.clone()]
        );
        assert_eq!(products_sorted(merged), products_sorted(&one_then_two));
    }

    // A later write resolves the register; the ledger keeps the old conflict.
    let mut resolved = one_then_two;
    set_field(
        &mut resolved,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(333)),
        &hlc(4_000, "hub"),
    )
    .expect("write");
    resolved.commit();
    assert_eq!(price_of(&resolved, "A"), Kopecks(333));
    assert_eq!(
        conflicts(&resolved).expect("readable"),
        vec![expected_conflict.clone()]
    );

    // The other replica catches up and sees the same.
    let mut other = two_then_one;
    other.merge(&mut resolved).expect("merge");
    assert_eq!(price_of(&other, "A"), Kopecks(333));
    assert_eq!(
        conflicts(&other).expect("readable"),
        vec![expected_conflict]
    );
}

#[test]
fn equal_physical_time_is_broken_by_node() {
    let mut base = doc_with("hub/main", &[frame("A", 100)]);
    let mut till_a = fork(&mut base, "S1/TA/daemon");
    let mut till_b = fork(&mut base, "S1/TB/daemon");
    set_field(
        &mut till_b,
        "A",
        Field::Name,
        FieldValue::Text("from B".to_owned()),
        &hlc(3_000, "TB"),
    )
    .expect("write");
    set_field(
        &mut till_a,
        "A",
        Field::Name,
        FieldValue::Text("from A".to_owned()),
        &hlc(3_000, "TA"),
    )
    .expect("write");
    till_a.merge(&mut till_b).expect("merge");
    let name = product(&till_a, "A").ok().flatten().map(|p| p.name);
    assert_eq!(name.as_deref(), Some("from B"));
}

#[test]
fn replicas_resolving_the_same_conflict_record_it_once() {
    let mut base = doc_with("hub/main", &[frame("A", 100)]);
    let mut till1 = fork(&mut base, "S1/T1/daemon");
    let mut till2 = fork(&mut base, "S1/T2/daemon");
    set_field(
        &mut till1,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(1)),
        &hlc(2_000, "T1"),
    )
    .expect("write");
    set_field(
        &mut till2,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(2)),
        &hlc(2_500, "T2"),
    )
    .expect("write");
    till1.merge(&mut till2).expect("merge");
    till2.merge(&mut till1).expect("merge");
    // Both resolve concurrently, each moving the same loser to the ledger.
    set_field(
        &mut till1,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(3)),
        &hlc(3_000, "T1"),
    )
    .expect("write");
    set_field(
        &mut till2,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(4)),
        &hlc(3_100, "T2"),
    )
    .expect("write");
    till1.merge(&mut till2).expect("merge");
    till2.merge(&mut till1).expect("merge");
    let ledger = conflicts(&till1).expect("readable");
    assert_eq!(ledger, conflicts(&till2).expect("readable"));
    let losers: Vec<(i64, u64)> = ledger
        .iter()
        .map(|c| match c.value {
            FieldValue::Money(k) => (k.0, c.hlc.physical_ms),
            _ => (-1, 0),
        })
        .collect();
    // 1 lost to 2; then 3 lost to 4 (pending until the next write).
    assert_eq!(losers, vec![(1, 2_000), (3, 3_000)]);
    assert_eq!(price_of(&till1, "A"), Kopecks(4));
}

#[test]
fn independently_created_catalogues_merge_cleanly() {
    let products = [frame("A", 100), frame("B", 200)];
    let mut hub1 = doc_with("hub/one", &products);
    let mut hub2 = doc_with("hub/two", &products);
    hub1.merge(&mut hub2).expect("merge");
    assert_eq!(products_sorted(&hub1), products.to_vec());
    assert_eq!(conflicts(&hub1).expect("readable"), vec![]);
}

#[test]
fn save_and_load_round_trip() {
    let mut doc = doc_with("hub/main", &[frame("A", 100)]);
    set_field(
        &mut doc,
        "A",
        Field::Brand,
        FieldValue::Text("Ray-Ban".to_owned()),
        &hlc(2_000, "hub"),
    )
    .expect("write");
    set_field(
        &mut doc,
        "A",
        Field::Price,
        FieldValue::Money(Kopecks(5)),
        &hlc(500, "T9"),
    )
    .expect("write");
    doc.commit();
    let loaded = AutoCommit::load(&doc.save()).expect("loads");
    assert_eq!(products_sorted(&loaded), products_sorted(&doc));
    assert_eq!(
        conflicts(&loaded).expect("readable"),
        conflicts(&doc).expect("readable")
    );
    assert_eq!(conflicts(&loaded).expect("readable").len(), 1);
}

#[test]
fn foreign_entries_are_reported_as_corrupt() {
    use automerge::transaction::Transactable;
    let mut doc = doc_with("hub/main", &[frame("A", 100)]);
    doc.put(automerge::ROOT, "p|A|price|garbage", 5_i64)
        .expect("put");
    assert!(matches!(
        product(&doc, "A"),
        Err(CatalogueError::Corrupt { .. })
    ));
    let mut doc = doc_with("hub/main", &[frame("A", 100)]);
    doc.put(
        automerge::ROOT,
        format!("p|A|price|{}", hlc(9_000, "x")),
        "cheap",
    )
    .expect("put");
    assert!(matches!(
        products(&doc),
        Err(CatalogueError::Corrupt { .. })
    ));
}

#[test]
fn other_documents_are_not_read_as_catalogues() {
    use automerge::transaction::Transactable;
    let mut doc = doc_with("hub/main", &[frame("A", 100)]);
    doc.put(automerge::ROOT, "schema", 2_i64).expect("put");
    assert!(matches!(
        products(&doc),
        Err(CatalogueError::Corrupt { .. })
    ));
    let mut other = AutoCommit::new();
    other.put(automerge::ROOT, "kind", "session").expect("put");
    assert!(matches!(
        products(&other),
        Err(CatalogueError::NotACatalogue)
    ));
    assert!(matches!(
        set_field(
            &mut other,
            "A",
            Field::Price,
            FieldValue::Money(Kopecks(1)),
            &hlc(5, "x")
        ),
        Err(CatalogueError::NotACatalogue)
    ));
}
