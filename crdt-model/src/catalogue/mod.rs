//! The store catalogue: one Automerge document per store, products keyed by SKU, each
//! field a last-writer-wins register resolved by [`Hlc`], with a conflict ledger.
//!
//! # Layout
//! Everything lives in flat keys of the document root, so that no replica ever creates a
//! nested object another replica might create concurrently (two concurrent `put_object`s
//! on one key would hide one side's values behind an Automerge conflict):
//!
//! ```text
//! kind   = "catalogue"          schema = 1          store = "S1"
//! p|<sku>|<field>|<hlc>  = value    one entry of a field's register
//! c|<hlc>|<sku>|<field>  = JSON     one conflict-ledger record (the losing value)
//! ```
//!
//! SKUs may not contain `|` or control characters, so a key splits unambiguously; root
//! keys are sorted, so one product is a key range (`p|<sku>|` .. `p|<sku>}`). The layout is
//! written and split only in `keys.rs`; code outside the model reads timestamps out of keys
//! through [`key_hlc`] and [`latest_hlc`].
//!
//! # Merge rule
//! A register normally holds one entry. A write (with a fresh HLC from the writer's clock)
//! deletes every entry it sees and adds its own. Two concurrent writes each delete the old
//! entry and add their own, so after a merge the register holds both: the winner is the
//! entry with the largest HLC (ties cannot happen: the node is part of the HLC), never
//! Automerge's internal op order. The other entries are *pending conflicts*: they are
//! reported by [`conflicts`] straight away, and the next write to the field moves them
//! into the ledger (`c|…`), which is never deleted from. A write older than the current
//! winner (a till whose clock was behind) does not take over: it goes to the ledger as a
//! loser. Ledger keys are deterministic, so two replicas recording the same loser write the
//! same key and the ledger holds it once.
//!
//! All functions validate everything before they change anything, and leave their
//! changes in the document's open transaction: the caller commits (and persists the
//! change) or rolls back.

mod keys;
mod ops;
mod registers;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CatalogueError;
use crate::hlc::Hlc;
use crate::money::{Kopecks, MAX_AMOUNT};
use crate::vat::VatRate;

pub use keys::{key_hlc, latest_hlc};
pub use ops::{conflicts, find_by_ean, init, product, products, set_field, store, upsert_products};

/// Document schema version, stored under `schema`.
pub const SCHEMA_VERSION: i64 = 1;
/// Most products in one catalogue document.
pub const MAX_PRODUCTS: usize = 50_000;
/// Longest SKU.
pub const MAX_SKU_LEN: usize = 64;
/// Longest product name, category or brand.
pub const MAX_TEXT_LEN: usize = 128;
/// Longest unit of measure.
pub const MAX_UNIT_LEN: usize = 16;

/// A field of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Name (required).
    Name,
    /// Barcode (EAN-8/13, UPC, GTIN-14), optional.
    Ean,
    /// Retail price (required).
    Price,
    /// Purchase cost, optional (used for gross profit).
    Cost,
    /// VAT rate (required).
    Vat,
    /// Unit of measure (required).
    Unit,
    /// Category, optional.
    Category,
    /// Brand, optional.
    Brand,
}

impl Field {
    /// Every field, in storage order.
    pub const ALL: [Field; 8] = [
        Field::Name,
        Field::Ean,
        Field::Price,
        Field::Cost,
        Field::Vat,
        Field::Unit,
        Field::Category,
        Field::Brand,
    ];

    /// The name used in document keys and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Ean => "ean",
            Field::Price => "price",
            Field::Cost => "cost",
            Field::Vat => "vat",
            Field::Unit => "unit",
            Field::Category => "category",
            Field::Brand => "brand",
        }
    }

    /// The field with this name.
    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.as_str() == name)
    }

    /// True for fields every product must have.
    pub const fn is_required(self) -> bool {
        matches!(self, Field::Name | Field::Price | Field::Vat | Field::Unit)
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of one field. Which variant a field takes is fixed: text for name, EAN,
/// unit, category and brand; money for price and cost; a rate for VAT; `Absent` for an
/// optional field that is not set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// Text.
    Text(String),
    /// Money.
    Money(Kopecks),
    /// VAT rate.
    Vat(VatRate),
    /// Not set (optional fields only).
    Absent,
}

impl FieldValue {
    /// Reads a value for `field` from JSON (string for text and VAT names, integer
    /// kopecks for money, `null` for an absent optional field); `None` if the JSON has the
    /// wrong type for the field. Limits are checked by [`validate_value`].
    pub fn from_json(field: Field, json: &serde_json::Value) -> Option<FieldValue> {
        registers::decode_json(field, json)
    }
}

/// A product of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stock-keeping unit, the key.
    pub sku: String,
    /// Barcode.
    pub ean: Option<String>,
    /// Name as printed on receipts.
    pub name: String,
    /// Retail price, VAT included.
    pub price: Kopecks,
    /// Purchase cost.
    pub cost: Option<Kopecks>,
    /// VAT rate.
    pub vat: VatRate,
    /// Unit of measure (`шт`, `пара`, `м`).
    pub unit: String,
    /// Category.
    pub category: Option<String>,
    /// Brand.
    pub brand: Option<String>,
}

impl Product {
    /// The value of one field.
    pub fn field(&self, field: Field) -> FieldValue {
        let text =
            |value: &Option<String>| value.clone().map_or(FieldValue::Absent, FieldValue::Text);
        match field {
            Field::Name => FieldValue::Text(self.name.clone()),
            Field::Ean => text(&self.ean),
            Field::Price => FieldValue::Money(self.price),
            Field::Cost => self.cost.map_or(FieldValue::Absent, FieldValue::Money),
            Field::Vat => FieldValue::Vat(self.vat),
            Field::Unit => FieldValue::Text(self.unit.clone()),
            Field::Category => text(&self.category),
            Field::Brand => text(&self.brand),
        }
    }

    /// Checks the SKU and every field.
    pub fn validate(&self) -> Result<(), CatalogueError> {
        validate_sku(&self.sku)?;
        for field in Field::ALL {
            validate_value(&self.sku, field, &self.field(field))?;
        }
        Ok(())
    }
}

/// A value that lost a register: either recorded in the ledger, or still pending in the
/// register after a merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The product.
    pub sku: String,
    /// The field.
    pub field: Field,
    /// The losing value.
    pub value: FieldValue,
    /// When the losing value was written.
    pub hlc: Hlc,
    /// Who wrote it (the node of `hlc`: a till or a hub).
    pub node: String,
    /// The winning write it lost to.
    pub lost_to_hlc: Hlc,
}

/// What a single field write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The value is now the field's value.
    Written,
    /// The field already holds a newer value; this one went to the conflict ledger.
    Stale,
    /// The same write (same timestamp, same value) was already there.
    Unchanged,
}

/// Counts of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UpsertReport {
    /// New SKUs.
    pub created: usize,
    /// Known SKUs with at least one changed field.
    pub updated: usize,
    /// Known SKUs with no changed field.
    pub unchanged: usize,
    /// Field values written.
    pub fields_written: usize,
    /// Field values older than the current value, sent to the conflict ledger.
    pub fields_stale: usize,
}

/// A SKU is 1..=64 characters, no control characters and no `|` (the key separator).
pub fn validate_sku(sku: &str) -> Result<(), CatalogueError> {
    let valid = !sku.trim().is_empty()
        && sku.chars().count() <= MAX_SKU_LEN
        && !sku.chars().any(|c| c.is_control() || c == '|');
    if valid {
        Ok(())
    } else {
        Err(CatalogueError::InvalidSku {
            sku: sku.chars().take(MAX_SKU_LEN + 8).collect(),
        })
    }
}

/// Checks that `value` has the right variant for `field` and is within its limits.
pub fn validate_value(sku: &str, field: Field, value: &FieldValue) -> Result<(), CatalogueError> {
    let invalid = |reason: &'static str| CatalogueError::InvalidValue {
        sku: sku.to_owned(),
        field,
        reason,
    };
    let text_ok = |text: &str, max: usize| {
        !text.trim().is_empty()
            && text.chars().count() <= max
            && !text.chars().any(char::is_control)
    };
    match (field, value) {
        (Field::Name | Field::Category | Field::Brand, FieldValue::Text(text)) => {
            if !text_ok(text, MAX_TEXT_LEN) {
                return Err(invalid(
                    "must be 1 to 128 characters without control characters",
                ));
            }
        }
        (Field::Unit, FieldValue::Text(text)) => {
            if !text_ok(text, MAX_UNIT_LEN) {
                return Err(invalid(
                    "must be 1 to 16 characters without control characters",
                ));
            }
        }
        (Field::Ean, FieldValue::Text(text)) => {
            if !(8..=14).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("must be 8 to 14 digits"));
            }
        }
        (Field::Price | Field::Cost, FieldValue::Money(amount)) => {
            if amount.is_negative() || *amount > MAX_AMOUNT {
                return Err(invalid("must be between 0 and 10^12 kopecks"));
            }
        }
        (Field::Vat, FieldValue::Vat(_)) => {}
        (field, FieldValue::Absent) if !field.is_required() => {}
        (_, FieldValue::Absent) => return Err(invalid("is required")),
        _ => return Err(invalid("has the wrong type for this field")),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
