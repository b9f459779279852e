//! Catalogue operations: create, import, edit one field, read products and conflicts.
//! The layout and the merge rule are described in the parent module.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::transaction::Transactable;
use automerge::{hydrate, AutoCommit, ReadDoc, ScalarValue, ROOT};

use super::keys::{entry_key, entry_key_at, ledger_key, KIND, KIND_KEY, SCHEMA_KEY, STORE_KEY};
use super::registers::{
    encode, ledger, ledger_json, scan_all, scan_product, Entry, ProductEntries,
};
use super::{
    validate_sku, validate_value, Conflict, Field, FieldValue, Product, UpsertReport, WriteOutcome,
    MAX_PRODUCTS, SCHEMA_VERSION,
};
use crate::error::CatalogueError;
use crate::hlc::Hlc;
use crate::ids::StoreId;

/// Creates the catalogue of `store` in an empty document, with every product written at
/// `hlc`, in one batch insert (one change; 10,000 products take tens of milliseconds,
/// where one `put` per field takes seconds).
pub fn init(
    doc: &mut AutoCommit,
    store: &StoreId,
    products: &[Product],
    hlc: &Hlc,
) -> Result<(), CatalogueError> {
    hlc.validate()?;
    check_import(products)?;
    // The batch insert appends to the op set, so it needs a document with no history.
    if doc.length(ROOT) != 0 || !doc.get_heads().is_empty() {
        return Err(CatalogueError::NotEmpty);
    }
    let mut root: HashMap<String, hydrate::Value> = HashMap::with_capacity(products.len() * 6 + 3);
    root.insert(KIND_KEY.to_owned(), hydrate::Value::scalar(KIND));
    root.insert(
        SCHEMA_KEY.to_owned(),
        hydrate::Value::scalar(SCHEMA_VERSION),
    );
    root.insert(STORE_KEY.to_owned(), hydrate::Value::scalar(store.as_str()));
    let hlc_text = hlc.to_string();
    for product in products {
        for field in Field::ALL {
            let value = product.field(field);
            if value != FieldValue::Absent {
                root.insert(
                    entry_key_at(&product.sku, field, &hlc_text),
                    hydrate::Value::Scalar(encode(&value)),
                );
            }
        }
    }
    doc.init_root_from_hydrate(&hydrate::Map::from(root))?;
    Ok(())
}

/// The store a catalogue document belongs to; also checks that the document is a
/// catalogue of the schema version this code reads.
pub fn store<D: ReadDoc>(doc: &D) -> Result<StoreId, CatalogueError> {
    let text = |key: &str| -> Result<Option<String>, CatalogueError> {
        Ok(doc
            .get(ROOT, key)?
            .and_then(|(value, _)| value.as_str().map(str::to_owned)))
    };
    if text(KIND_KEY)?.as_deref() != Some(KIND) {
        return Err(CatalogueError::NotACatalogue);
    }
    let schema = doc
        .get(ROOT, SCHEMA_KEY)?
        .and_then(|(value, _)| value.as_i64());
    if schema != Some(SCHEMA_VERSION) {
        return Err(CatalogueError::Corrupt {
            key: SCHEMA_KEY.to_owned(),
            reason: format!("unsupported schema version {schema:?}"),
        });
    }
    let store = text(STORE_KEY)?.ok_or(CatalogueError::NotACatalogue)?;
    store.parse().map_err(|_| CatalogueError::Corrupt {
        key: STORE_KEY.to_owned(),
        reason: "invalid store id".to_owned(),
    })
}

/// Imports products (a supplier price list): new SKUs are created, and for known SKUs
/// only the fields whose value differs from the current one are written, all at `hlc`.
/// Optional fields that are `None` in the import are cleared.
pub fn upsert_products(
    doc: &mut AutoCommit,
    products: &[Product],
    hlc: &Hlc,
) -> Result<UpsertReport, CatalogueError> {
    hlc.validate()?;
    store(&*doc)?;
    check_import(products)?;
    let existing = scan_all(&*doc)?;
    let new_skus = products
        .iter()
        .filter(|p| !existing.contains_key(&p.sku))
        .count();
    if existing.len() + new_skus > MAX_PRODUCTS {
        return Err(CatalogueError::TooManyProducts { max: MAX_PRODUCTS });
    }

    // Plan every write before the first change, so a refused import changes nothing.
    let mut report = UpsertReport::default();
    let mut writes: Vec<(&Product, Field, FieldValue, Option<&ProductEntries>)> = Vec::new();
    for product in products {
        let entries = existing.get(&product.sku);
        let before = writes.len();
        for field in Field::ALL {
            let value = product.field(field);
            let current = entries.map_or(FieldValue::Absent, |e| e.value(field));
            if value == current {
                continue;
            }
            if let Some(entries) = entries {
                check_timestamp(&product.sku, field, entries.entries(field), &value, hlc)?;
            }
            writes.push((product, field, value, entries));
        }
        match (entries, writes.len() > before) {
            (None, _) => report.created += 1,
            (Some(_), true) => report.updated += 1,
            (Some(_), false) => report.unchanged += 1,
        }
    }
    for (product, field, value, entries) in writes {
        let entries = entries.map_or(&[][..], |e| e.entries(field));
        match write(doc, &product.sku, field, entries, &value, hlc)? {
            WriteOutcome::Written => report.fields_written += 1,
            WriteOutcome::Stale => report.fields_stale += 1,
            WriteOutcome::Unchanged => {}
        }
    }
    Ok(report)
}

/// Sets one field of a known product (a price change at the hub, a name fix on a till).
pub fn set_field(
    doc: &mut AutoCommit,
    sku: &str,
    field: Field,
    value: FieldValue,
    hlc: &Hlc,
) -> Result<WriteOutcome, CatalogueError> {
    hlc.validate()?;
    validate_sku(sku)?;
    validate_value(sku, field, &value)?;
    store(&*doc)?;
    let entries = scan_product(&*doc, sku)?.ok_or_else(|| CatalogueError::UnknownSku {
        sku: sku.to_owned(),
    })?;
    let field_entries = entries.entries(field);
    if check_timestamp(sku, field, field_entries, &value, hlc)? {
        return Ok(WriteOutcome::Unchanged);
    }
    write(doc, sku, field, field_entries, &value, hlc)
}

/// One product, `None` if the SKU is unknown.
pub fn product<D: ReadDoc>(doc: &D, sku: &str) -> Result<Option<Product>, CatalogueError> {
    validate_sku(sku)?;
    store(doc)?;
    scan_product(doc, sku)?
        .map(|entries| entries.to_product(sku))
        .transpose()
}

/// Every product, ordered by SKU.
pub fn products<D: ReadDoc>(doc: &D) -> Result<Vec<Product>, CatalogueError> {
    store(doc)?;
    scan_all(doc)?
        .iter()
        .map(|(sku, entries)| entries.to_product(sku))
        .collect()
}

/// The product with this barcode (the first by SKU if several share it). Scans the
/// catalogue: a till that scans barcodes all day should index [`products`] itself.
pub fn find_by_ean<D: ReadDoc>(doc: &D, ean: &str) -> Result<Option<Product>, CatalogueError> {
    store(doc)?;
    for (sku, entries) in scan_all(doc)? {
        if entries.value(Field::Ean) == FieldValue::Text(ean.to_owned()) {
            return entries.to_product(&sku).map(Some);
        }
    }
    Ok(None)
}

/// The conflict ledger plus the conflicts still pending in registers after a merge, in
/// time order of the losing writes. Identical on replicas that hold the same changes.
pub fn conflicts<D: ReadDoc>(doc: &D) -> Result<Vec<Conflict>, CatalogueError> {
    store(doc)?;
    let mut all: BTreeMap<String, Conflict> = ledger(doc)?;
    for (sku, entries) in scan_all(doc)? {
        for conflict in entries.pending_conflicts(&sku) {
            all.entry(ledger_key(&conflict.sku, conflict.field, &conflict.hlc))
                .or_insert(conflict);
        }
    }
    Ok(all.into_values().collect())
}

/// Valid products, distinct SKUs, within the size limit.
fn check_import(products: &[Product]) -> Result<(), CatalogueError> {
    if products.len() > MAX_PRODUCTS {
        return Err(CatalogueError::TooManyProducts { max: MAX_PRODUCTS });
    }
    let mut seen = HashSet::with_capacity(products.len());
    for product in products {
        product.validate()?;
        if !seen.insert(product.sku.as_str()) {
            return Err(CatalogueError::DuplicateSku {
                sku: product.sku.clone(),
            });
        }
    }
    Ok(())
}

/// A write reusing a stored timestamp is a retry if the value matches (`Ok(true)`), and a
/// clock fault otherwise.
fn check_timestamp(
    sku: &str,
    field: Field,
    entries: &[Entry],
    value: &FieldValue,
    hlc: &Hlc,
) -> Result<bool, CatalogueError> {
    match entries.iter().find(|entry| &entry.hlc == hlc) {
        Some(entry) if &entry.value == value => Ok(true),
        Some(_) => Err(CatalogueError::DuplicateTimestamp {
            sku: sku.to_owned(),
            field,
            hlc: hlc.clone(),
        }),
        None => Ok(false),
    }
}

/// Applies one write to a register whose entries were read just before: pending losers
/// go to the ledger, the old winner is replaced if the write is newer, and a write older
/// than the winner goes to the ledger itself.
fn write(
    doc: &mut AutoCommit,
    sku: &str,
    field: Field,
    entries: &[Entry],
    value: &FieldValue,
    hlc: &Hlc,
) -> Result<WriteOutcome, CatalogueError> {
    let winner = entries.iter().max_by(|a, b| a.hlc.cmp(&b.hlc));
    if let Some(winner) = winner {
        for loser in entries.iter().filter(|entry| entry.hlc != winner.hlc) {
            record_conflict(doc, sku, field, &loser.value, &loser.hlc, &winner.hlc)?;
            doc.delete(ROOT, loser.key.as_str())?;
        }
        if hlc < &winner.hlc {
            record_conflict(doc, sku, field, value, hlc, &winner.hlc)?;
            return Ok(WriteOutcome::Stale);
        }
        doc.delete(ROOT, winner.key.as_str())?;
    }
    doc.put(ROOT, entry_key(sku, field, hlc), encode(value))?;
    Ok(WriteOutcome::Written)
}

fn record_conflict(
    doc: &mut AutoCommit,
    sku: &str,
    field: Field,
    value: &FieldValue,
    hlc: &Hlc,
    lost_to_hlc: &Hlc,
) -> Result<(), CatalogueError> {
    let conflict = Conflict {
        sku: sku.to_owned(),
        field,
        value: value.clone(),
        hlc: hlc.clone(),
        node: hlc.node.clone(),
        lost_to_hlc: lost_to_hlc.clone(),
    };
    let json = ledger_json(&conflict)?;
    doc.put(
        ROOT,
        ledger_key(sku, field, hlc),
        ScalarValue::Str(json.into()),
    )?;
    Ok(())
}
