//! Reading and encoding the values under the catalogue's flat keys (register entries and
//! ledger records, laid out by [`super::keys`]), and resolving a register to its winner.

use std::collections::BTreeMap;
use std::ops::Range;

use automerge::{ReadDoc, ScalarValue, ScalarValueRef, ValueRef, ROOT};
use serde::Deserialize;

use super::keys::{ledger_key, prefix_range, EntryKey, LEDGER_PREFIX, PRODUCT_PREFIX};
use super::{Conflict, Field, FieldValue, Product};
use crate::error::CatalogueError;
use crate::hlc::Hlc;
use crate::money::Kopecks;
use crate::vat::VatRate;

/// One entry of a field's register.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: String,
    pub hlc: Hlc,
    pub value: FieldValue,
}

/// The registers of one product, one list of entries per field.
#[derive(Debug, Default)]
pub(super) struct ProductEntries {
    fields: [Vec<Entry>; Field::ALL.len()],
}

impl ProductEntries {
    pub fn entries(&self, field: Field) -> &[Entry] {
        self.fields.get(field.index()).map_or(&[], Vec::as_slice)
    }

    /// The entry with the largest HLC: the field's value.
    pub fn winner(&self, field: Field) -> Option<&Entry> {
        self.entries(field).iter().max_by(|a, b| a.hlc.cmp(&b.hlc))
    }

    /// The current value of a field (`Absent` when the register is empty).
    pub fn value(&self, field: Field) -> FieldValue {
        self.winner(field)
            .map_or(FieldValue::Absent, |entry| entry.value.clone())
    }

    /// Resolves every register into a product. A required field with no entry means the
    /// document was written by something other than this model.
    pub fn to_product(&self, sku: &str) -> Result<Product, CatalogueError> {
        let missing = |field: Field| CatalogueError::Corrupt {
            key: format!("{PRODUCT_PREFIX}{sku}|{field}"),
            reason: "required field has no value".to_owned(),
        };
        let text = |field: Field| match self.value(field) {
            FieldValue::Text(text) => Some(text),
            _ => None,
        };
        let money = |field: Field| match self.value(field) {
            FieldValue::Money(amount) => Some(amount),
            _ => None,
        };
        let vat = match self.value(Field::Vat) {
            FieldValue::Vat(rate) => rate,
            _ => return Err(missing(Field::Vat)),
        };
        Ok(Product {
            sku: sku.to_owned(),
            ean: text(Field::Ean),
            name: text(Field::Name).ok_or_else(|| missing(Field::Name))?,
            price: money(Field::Price).ok_or_else(|| missing(Field::Price))?,
            cost: money(Field::Cost),
            vat,
            unit: text(Field::Unit).ok_or_else(|| missing(Field::Unit))?,
            category: text(Field::Category),
            brand: text(Field::Brand),
        })
    }

    /// Entries that lost to the winner after a merge and are not yet in the ledger.
    pub fn pending_conflicts(&self, sku: &str) -> Vec<Conflict> {
        let mut conflicts = Vec::new();
        for field in Field::ALL {
            let Some(winner) = self.winner(field) else {
                continue;
            };
            for entry in self.entries(field) {
                if entry.hlc != winner.hlc {
                    conflicts.push(Conflict {
                        sku: sku.to_owned(),
                        field,
                        value: entry.value.clone(),
                        hlc: entry.hlc.clone(),
                        node: entry.hlc.node.clone(),
                        lost_to_hlc: winner.hlc.clone(),
                    });
                }
            }
        }
        conflicts
    }

    fn push(&mut self, field: Field, entry: Entry) {
        if let Some(entries) = self.fields.get_mut(field.index()) {
            entries.push(entry);
        }
    }
}

/// The registers of one SKU, `None` if the catalogue has no entry for it.
pub(super) fn scan_product<D: ReadDoc>(
    doc: &D,
    sku: &str,
) -> Result<Option<ProductEntries>, CatalogueError> {
    let mut all = scan(doc, prefix_range(&format!("{PRODUCT_PREFIX}{sku}|")))?;
    Ok(all.remove(sku))
}

/// The registers of every product, by SKU.
pub(super) fn scan_all<D: ReadDoc>(
    doc: &D,
) -> Result<BTreeMap<String, ProductEntries>, CatalogueError> {
    scan(doc, prefix_range(PRODUCT_PREFIX))
}

fn scan<D: ReadDoc>(
    doc: &D,
    range: Range<String>,
) -> Result<BTreeMap<String, ProductEntries>, CatalogueError> {
    let mut products: BTreeMap<String, ProductEntries> = BTreeMap::new();
    for item in doc.map_range(ROOT, range) {
        let key: &str = &item.key;
        let corrupt = |reason: &str| CatalogueError::Corrupt {
            key: key.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        let EntryKey {
            sku,
            field: field_name,
            hlc: hlc_text,
        } = EntryKey::parse(key).map_err(corrupt)?;
        let field = Field::parse(field_name).ok_or_else(|| corrupt("unknown field"))?;
        let hlc: Hlc = hlc_text.parse().map_err(|_| corrupt("bad timestamp"))?;
        let value = match &item.value {
            ValueRef::Scalar(scalar) => decode(field, scalar),
            ValueRef::Object(_) => None,
        }
        .ok_or_else(|| corrupt("value has the wrong type for the field"))?;
        let entry = Entry {
            key: key.to_owned(),
            hlc,
            value,
        };
        match products.get_mut(sku) {
            Some(entries) => entries.push(field, entry),
            None => {
                let mut entries = ProductEntries::default();
                entries.push(field, entry);
                products.insert(sku.to_owned(), entries);
            }
        }
    }
    Ok(products)
}

/// The scalar stored for a field value.
pub(super) fn encode(value: &FieldValue) -> ScalarValue {
    match value {
        FieldValue::Text(text) => ScalarValue::Str(text.as_str().into()),
        FieldValue::Money(amount) => ScalarValue::Int(amount.0),
        FieldValue::Vat(rate) => ScalarValue::Str(rate.api_name().into()),
        FieldValue::Absent => ScalarValue::Null,
    }
}

/// The field value of a stored scalar; `None` if it has the wrong type for the field.
fn decode(field: Field, scalar: &ScalarValueRef<'_>) -> Option<FieldValue> {
    match (field, scalar) {
        (field, ScalarValueRef::Null) if !field.is_required() => Some(FieldValue::Absent),
        (Field::Price | Field::Cost, ScalarValueRef::Int(amount)) => {
            Some(FieldValue::Money(Kopecks(*amount)))
        }
        (Field::Vat, ScalarValueRef::Str(name)) => {
            VatRate::from_api_name(name).map(FieldValue::Vat)
        }
        (
            Field::Name | Field::Ean | Field::Unit | Field::Category | Field::Brand,
            ScalarValueRef::Str(text),
        ) => Some(FieldValue::Text(text.to_string())),
        _ => None,
    }
}

/// A ledger record as stored (JSON in a string scalar: records are write-once).
#[derive(Debug, Deserialize)]
struct LedgerRecord {
    sku: String,
    field: Field,
    value: serde_json::Value,
    hlc: Hlc,
    lost_to_hlc: Hlc,
}

/// The JSON text of a ledger record.
pub(super) fn ledger_json(conflict: &Conflict) -> Result<String, CatalogueError> {
    serde_json::to_string(&serde_json::json!({
        "sku": conflict.sku,
        "field": conflict.field,
        "value": conflict.value,
        "hlc": conflict.hlc,
        "lost_to_hlc": conflict.lost_to_hlc,
    }))
    .map_err(|error| CatalogueError::Corrupt {
        key: ledger_key(&conflict.sku, conflict.field, &conflict.hlc),
        reason: error.to_string(),
    })
}

/// Every ledger record, by key (time order).
pub(super) fn ledger<D: ReadDoc>(doc: &D) -> Result<BTreeMap<String, Conflict>, CatalogueError> {
    let mut records = BTreeMap::new();
    for item in doc.map_range(ROOT, prefix_range(LEDGER_PREFIX)) {
        let key = item.key.to_string();
        let corrupt = |reason: String| CatalogueError::Corrupt {
            key: key.chars().take(200).collect(),
            reason,
        };
        let ValueRef::Scalar(ScalarValueRef::Str(text)) = &item.value else {
            return Err(corrupt("ledger record is not a string".to_owned()));
        };
        let record: LedgerRecord =
            serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        let value = decode_json(record.field, &record.value)
            .ok_or_else(|| corrupt("value has the wrong type for the field".to_owned()))?;
        let conflict = Conflict {
            node: record.hlc.node.clone(),
            sku: record.sku,
            field: record.field,
            value,
            hlc: record.hlc,
            lost_to_hlc: record.lost_to_hlc,
        };
        records.insert(key, conflict);
    }
    Ok(records)
}

pub(super) fn decode_json(field: Field, value: &serde_json::Value) -> Option<FieldValue> {
    use serde_json::Value as Json;
    match (field, value) {
        (field, Json::Null) if !field.is_required() => Some(FieldValue::Absent),
        (Field::Price | Field::Cost, Json::Number(number)) => {
            number.as_i64().map(|k| FieldValue::Money(Kopecks(k)))
        }
        (Field::Vat, Json::String(name)) => VatRate::from_api_name(name).map(FieldValue::Vat),
        (
            Field::Name | Field::Ean | Field::Unit | Field::Category | Field::Brand,
            Json::String(text),
        ) => Some(FieldValue::Text(text.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_decode_by_field() {
        use serde_json::json;
        assert_eq!(
            decode_json(Field::Price, &json!(150)),
            Some(FieldValue::Money(Kopecks(150)))
        );
        assert_eq!(decode_json(Field::Price, &json!(1.5)), None);
        assert_eq!(decode_json(Field::Price, &json!(null)), None);
        assert_eq!(
            decode_json(Field::Cost, &json!(null)),
            Some(FieldValue::Absent)
        );
        assert_eq!(
            decode_json(Field::Vat, &json!("vat22")),
            Some(FieldValue::Vat(VatRate::Vat22))
        );
        assert_eq!(decode_json(Field::Vat, &json!("vat18")), None);
        assert_eq!(
            decode_json(Field::Name, &json!("Линза")),
            Some(FieldValue::Text("Линза".to_owned()))
        );
        assert_eq!(decode_json(Field::Name, &json!(5)), None);
    }
}
