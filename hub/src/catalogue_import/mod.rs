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
//! Writing: in one transaction the document is locked and loaded; a new catalogue is created
//! with `crdt_model::catalogue::init` (one change), an existing one updated with
//! `upsert_products` (only changed fields are written, each an LWW register entry at one
//! fresh HLC of node `hub`). Fields the CSV does not carry (unit, cost, category, brand)
//! keep their current value; new products get the unit [`DEFAULT_UNIT`]. The change is
//! committed with actor `hub/hub`, appended as one chunk, the hub's clock of the document
//! recorded, and the document compacted when it has too many chunks.

pub mod parse;

pub use self::parse::{parse_csv, ImportRow, RowError, MAX_PRICE_KOPECKS};

use crate::db::ids::validate_store_id;
use crate::db::{Db, DbError, StoredDoc};
use crate::sync::round::{clock_json, doc_meta, COMPACT_AFTER_CHUNKS};
use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash};
use crdt_model::catalogue::{self, Product};
use crdt_model::commit_tag;
use crdt_model::{CatalogueError, DocKey, HlcClock, StoreId};
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
/// How far ahead of the wall clock an existing entry's HLC may be for the import clock to
/// adopt it (a hub whose clock stepped back keeps writing newer values).
const MAX_FORWARD_MS: u64 = 3600 * 1000;

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
    let doc_id = key.to_doc_id();
    let mut tx = db.begin().await?;
    tx.lock_doc(&doc_id).await?;
    let stored = tx.load_doc(&doc_id).await?;
    let built = tokio::task::spawn_blocking(move || build(stored, &store_id, rows, wall_ms))
        .await
        .map_err(|e| ImportError::Document(format!("import task failed: {e}")))??;
    if let Some(chunk) = &built.chunk {
        let chunk_id = tx.append_changes(&doc_id, &doc_meta(&key), chunk).await?;
        tx.set_doc_clock(&doc_id, &built.clock_json, &built.heads)
            .await?;
        if let Some((snapshot, heads, mut folded)) = built.compaction {
            folded.push(chunk_id);
            tx.compact(&doc_id, &snapshot, &heads, &folded).await?;
        }
    }
    tx.commit().await?;
    Ok(built.report)
}

struct Built {
    chunk: Option<Vec<u8>>,
    clock_json: String,
    /// The document's heads after the import (empty when nothing changed).
    heads: Vec<ChangeHash>,
    compaction: Option<(Vec<u8>, Vec<ChangeHash>, Vec<i64>)>,
    report: ImportReport,
}

fn build(
    stored: Option<StoredDoc>,
    store: &StoreId,
    rows: Vec<ImportRow>,
    wall_ms: u64,
) -> Result<Built, ImportError> {
    let actor = crdt_model::ids::hub_actor(crate::HUB_NAME)
        .map_err(|e| ImportError::Document(e.to_string()))?;
    let mut clock = HlcClock::new(crate::HUB_NAME, MAX_FORWARD_MS)
        .map_err(|e| ImportError::Document(e.to_string()))?;
    let total = rows.len();
    let commit = CommitOptions::default()
        .with_message(commit_tag::catalogue_import(total))
        .with_time(i64::try_from(wall_ms).unwrap_or(i64::MAX));
    let Some(stored) = stored else {
        let products = to_products(rows, &HashMap::new())?;
        let hlc = clock.now(wall_ms);
        let mut doc = AutoCommit::new().with_actor(actor);
        catalogue::init(&mut doc, store, &products, &hlc)?;
        doc.commit_with(commit);
        return Ok(Built {
            chunk: Some(doc.save()),
            clock_json: clock_text(&mut doc)?,
            heads: doc.get_heads(),
            compaction: None,
            report: ImportReport {
                products: total,
                created: total,
                changed_existing: 0,
            },
        });
    };
    let mut doc = AutoCommit::load(&stored.bytes)
        .map_err(|e| ImportError::Document(e.to_string()))?
        .with_actor(actor);
    let owner = catalogue::store(&doc)?;
    if &owner != store {
        return Err(ImportError::Document(format!(
            "it belongs to store {owner}"
        )));
    }
    let existing: HashMap<String, Product> = catalogue::products(&doc)?
        .into_iter()
        .map(|p| (p.sku.clone(), p))
        .collect();
    let products = to_products(rows, &existing)?;
    if let Some(latest) = catalogue::latest_hlc(&doc) {
        if let Err(e) = clock.observe(&latest, wall_ms) {
            tracing::warn!(error = %e, "catalogue holds a timestamp far ahead of this hub's clock");
        }
    }
    let hlc = clock.now(wall_ms);
    let heads = doc.get_heads();
    let upsert = catalogue::upsert_products(&mut doc, &products, &hlc)?;
    let report = ImportReport {
        products: total,
        created: upsert.created,
        changed_existing: upsert.updated,
    };
    if doc.commit_with(commit).is_none() {
        return Ok(Built {
            chunk: None,
            clock_json: String::new(),
            heads: Vec::new(),
            compaction: None,
            report,
        });
    }
    let chunk = doc.save_after(&heads);
    let compaction = (stored.chunk_ids.len() + 1 > COMPACT_AFTER_CHUNKS)
        .then(|| (doc.save(), doc.get_heads(), stored.chunk_ids.clone()));
    Ok(Built {
        chunk: Some(chunk),
        clock_json: clock_text(&mut doc)?,
        heads: doc.get_heads(),
        compaction,
        report,
    })
}

fn clock_text(doc: &mut AutoCommit) -> Result<String, ImportError> {
    clock_json(doc).map_err(|e| ImportError::Document(e.to_string()))
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
