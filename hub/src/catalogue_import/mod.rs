//! `hub catalogue import --store S FILE.csv`: a CSV price list into the store's catalogue
//! document (`catalogue/<store>`), which every till of the store then receives by sync.
//!
//! Input: UTF-8 CSV (a BOM is accepted, as Excel writes one), comma- or semicolon-separated
//! (Russian Excel uses `;`), with a header row naming exactly the columns `sku`, `ean`,
//! `name`, `price`, `vat` in any order. `price` is integer kopecks; `vat` is an FFD 1.2 rate
//! name (`none`, `vat0`, `vat5`, `vat7`, `vat10`, `vat20`, `vat22`, `vat105`, `vat107`,
//! `vat110`, `vat120`, `vat122`); `ean` may be empty. Bad input is refused whole, with every
//! error (up to [`MAX_REPORTED_ERRORS`]) and its line number ([`parse`]).
//!
//! Writing is one hub-authored edit ([`crate::doc_edit::edit_document`]) in its own
//! transaction: a new catalogue is created with `crdt_model::catalogue::init` (one change), an
//! existing one updated with `upsert_products` (only changed fields are written, each an LWW
//! register entry at one fresh HLC of node `hub`). Fields the CSV does not carry (unit, cost,
//! category, brand) keep their current value; new products get the unit [`DEFAULT_UNIT`].

pub mod parse;

pub use self::parse::{parse_csv, ImportRow, RowError, MAX_PRICE_KOPECKS};

use crate::db::ids::validate_store_id;
use crate::db::{Db, DbError};
use crate::doc_edit::{edit_document, EditError, HubDoc};
use crdt_model::catalogue::{self, Product};
use crdt_model::commit_tag;
use crdt_model::{CatalogueError, DocKey, StoreId};
use std::collections::HashMap;
use std::path::Path;
use thiserror::Error;

/// Largest file accepted.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most data rows accepted in one file (the catalogue document holds at most 50,000).
pub const MAX_ROWS: usize = catalogue::MAX_PRODUCTS;
/// Errors listed in one report; the rest are counted.
pub const MAX_REPORTED_ERRORS: usize = 100;
/// Unit of measure given to new products (the CSV has no unit column).
pub const DEFAULT_UNIT: &str = "шт";

/// The file was refused or could not be imported; nothing was written.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store id is invalid.
    #[error(transparent)]
    Store(#[from] crate::db::ids::IdError),
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("the file is larger than {} MiB", MAX_FILE_BYTES / 1024 / 1024)]
    TooLarge,
    /// More than [`MAX_ROWS`] rows.
    #[error("the file has more than {MAX_ROWS} rows; split it")]
    TooManyRows,
    /// Not UTF-8.
    #[error("line {line}: the file is not UTF-8 text (save it as \"CSV UTF-8\")")]
    NotUtf8 {
        /// First line with an invalid byte.
        line: u64,
    },
    /// The header row is missing or wrong.
    #[error("line 1: {0}")]
    Header(String),
    /// No data rows.
    #[error("the file has a header but no rows")]
    Empty,
    /// Some rows are invalid.
    #[error("{} error(s) in the rows:\n{}{}", .errors.len() + .more, list(.errors), more_note(*.more))]
    Rows {
        /// The first [`MAX_REPORTED_ERRORS`] errors, in line order.
        errors: Vec<RowError>,
        /// How many more were found but not listed.
        more: usize,
    },
    /// The catalogue refused the products (too many in total, a clock fault).
    #[error("the catalogue refused the import: {0}")]
    Catalogue(#[from] CatalogueError),
    /// The stored catalogue document is unreadable or belongs to another store.
    #[error("the stored catalogue document is unusable: {0}")]
    Document(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<EditError> for ImportError {
    fn from(error: EditError) -> Self {
        ImportError::Document(error.reason)
    }
}

impl ImportError {
    /// True when the input (file, store id, rows) is at fault: the command exits with 2.
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            ImportError::Catalogue(_) | ImportError::Document(_) | ImportError::Db(_)
        )
    }
}

fn list(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn more_note(more: usize) -> String {
    if more == 0 {
        String::new()
    } else {
        format!("\n  ... and {more} more")
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Products in the file.
    pub products: usize,
    /// New products.
    pub created: usize,
    /// Known products with at least one changed field.
    pub changed_existing: usize,
}

impl ImportReport {
    /// Products created or changed.
    pub fn changed(&self) -> usize {
        self.created + self.changed_existing
    }
}

/// Reads, validates and imports `path` into the catalogue of `store` (see the module doc).
pub async fn run(db: &Db, store: &str, path: &Path) -> Result<ImportReport, ImportError> {
    validate_store_id(store)?;
    let shown = path.display().to_string();
    let io = |source| ImportError::Io {
        path: shown.clone(),
        source,
    };
    let size = tokio::fs::metadata(path).await.map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge);
    }
    let bytes = tokio::fs::read(path).await.map_err(io)?;
    let rows = parse_csv(&bytes)?;
    import_rows(db, store, rows, wall_clock_ms()).await
}

/// Writes validated rows into the catalogue of `store` at wall clock `wall_ms`.
pub async fn import_rows(
    db: &Db,
    store: &str,
    rows: Vec<ImportRow>,
    wall_ms: u64,
) -> Result<ImportReport, ImportError> {
    let store_id: StoreId = store
        .parse()
        .map_err(|e: crdt_model::IdError| ImportError::Document(e.to_string()))?;
    let key = DocKey::Catalogue {
        store: store_id.clone(),
    };
    let message = commit_tag::catalogue_import(rows.len());
    let mut tx = db.begin().await?;
    let report = edit_document(&mut tx, &key, wall_ms, message, move |hub| {
        import(hub, &store_id, rows)
    })
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// The edit itself: a new catalogue with every row, or the rows upserted into the stored one
/// at one fresh HLC after everything already there.
fn import(
    hub: &mut HubDoc,
    store: &StoreId,
    rows: Vec<ImportRow>,
) -> Result<ImportReport, ImportError> {
    let total = rows.len();
    if hub.is_new {
        let products = to_products(rows, &HashMap::new())?;
        let hlc = hub.clock.now(hub.wall_ms);
        catalogue::init(&mut hub.doc, store, &products, &hlc)?;
        return Ok(ImportReport {
            products: total,
            created: total,
            changed_existing: 0,
        });
    }
    let owner = catalogue::store(&hub.doc)?;
    if &owner != store {
        return Err(ImportError::Document(format!(
            "it belongs to store {owner}"
        )));
    }
    let existing: HashMap<String, Product> = catalogue::products(&hub.doc)?
        .into_iter()
        .map(|p| (p.sku.clone(), p))
        .collect();
    let products = to_products(rows, &existing)?;
    if let Some(latest) = catalogue::latest_hlc(&hub.doc) {
        if let Err(e) = hub.clock.observe(&latest, hub.wall_ms) {
            tracing::warn!(error = %e, "catalogue holds a timestamp far ahead of this hub's clock");
        }
    }
    let hlc = hub.clock.now(hub.wall_ms);
    let upsert = catalogue::upsert_products(&mut hub.doc, &products, &hlc)?;
    Ok(ImportReport {
        products: total,
        created: upsert.created,
        changed_existing: upsert.updated,
    })
}

/// Rows as catalogue products; fields the CSV lacks come from the current product (or
/// defaults). Each product is validated against the catalogue's own rules, with its line.
fn to_products(
    rows: Vec<ImportRow>,
    existing: &HashMap<String, Product>,
) -> Result<Vec<Product>, ImportError> {
    let mut products = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut error_count = 0usize;
    for row in rows {
        let current = existing.get(&row.sku);
        let product = Product {
            ean: row.ean,
            name: row.name,
            price: row.price,
            vat: row.vat,
            cost: current.and_then(|p| p.cost),
            unit: current.map_or_else(|| DEFAULT_UNIT.to_owned(), |p| p.unit.clone()),
            category: current.and_then(|p| p.category.clone()),
            brand: current.and_then(|p| p.brand.clone()),
            sku: row.sku,
        };
        match product.validate() {
            Ok(()) => products.push(product),
            Err(e) => {
                error_count += 1;
                if errors.len() < MAX_REPORTED_ERRORS {
                    errors.push(RowError {
                        line: row.line,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
    if error_count > 0 {
        let more = error_count - errors.len();
        return Err(ImportError::Rows { errors, more });
    }
    Ok(products)
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
