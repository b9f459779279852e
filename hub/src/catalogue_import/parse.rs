//! CSV parsing and validation of a price list (the format is in the parent module's doc).
//!
//! Every row is checked and every problem is collected with its line number, so that one
//! run shows the whole list of fixes to make; nothing is returned unless the file is valid.

use super::{ImportError, MAX_FILE_BYTES, MAX_REPORTED_ERRORS, MAX_ROWS};
use crdt_model::catalogue::{MAX_SKU_LEN, MAX_TEXT_LEN};
use crdt_model::{Kopecks, VatRate};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// Highest price accepted: 1 billion roubles, far above any optics product.
pub const MAX_PRICE_KOPECKS: i64 = 100_000_000_000;
const COLUMNS: [&str; 5] = ["sku", "ean", "name", "price", "vat"];

/// One valid product row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRow {
    /// Line of the row in the file (1-based, the header is line 1).
    pub line: u64,
    /// Stock-keeping unit, the product key.
    pub sku: String,
    /// EAN/GTIN barcode (8, 12, 13 or 14 digits, check digit verified).
    pub ean: Option<String>,
    /// Product name.
    pub name: String,
    /// Price in kopecks.
    pub price: Kopecks,
    /// VAT rate.
    pub vat: VatRate,
}

/// A problem with one row (or the header, line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A VAT rate by its FFD API name, case-insensitively (`VAT22`, `none`).
fn parse_vat(text: &str) -> Result<VatRate, String> {
    VatRate::from_api_name(&text.to_ascii_lowercase()).ok_or_else(|| {
        let names: Vec<&str> = VatRate::ALL.iter().map(|v| v.api_name()).collect();
        format!(
            "unknown VAT rate {text:?} (expected one of {})",
            names.join(", ")
        )
    })
}

/// Parses and validates CSV bytes (see the module doc for the format).
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<ImportRow>, ImportError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        ImportError::NotUtf8 { line }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.contains(';') && !first_line.contains(',') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .clone();
    let positions = column_positions(&header)?;

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut error_count = 0usize;
    let mut first_line_of_sku: HashMap<String, u64> = HashMap::new();
    let mut first_line_of_ean: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        if rows.len() + error_count >= MAX_ROWS {
            return Err(ImportError::TooManyRows);
        }
        let mut fail = |line: u64, message: String| {
            error_count += 1;
            if errors.len() < MAX_REPORTED_ERRORS {
                errors.push(RowError { line, message });
            }
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                fail(line, format!("unreadable CSV: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue; // blank line, common at the end of Excel exports
        }
        if record.len() != header.len() {
            fail(
                line,
                format!("{} fields, the header has {}", record.len(), header.len()),
            );
            continue;
        }
        let field = |name: usize| record.get(positions[name]).unwrap_or("");
        match parse_row(line, [field(0), field(1), field(2), field(3), field(4)]) {
            Err(messages) => messages.into_iter().for_each(|m| fail(line, m)),
            Ok(row) => {
                if let Some(first) = first_line_of_sku.insert(row.sku.clone(), line) {
                    fail(line, format!("sku {:?} already on line {first}", row.sku));
                    continue;
                }
                if let Some(ean) = &row.ean {
                    if let Some(first) = first_line_of_ean.insert(ean.clone(), line) {
                        fail(line, format!("ean {ean} already on line {first}"));
                        continue;
                    }
                }
                rows.push(row);
            }
        }
    }
    if error_count > 0 {
        let more = error_count - errors.len();
        return Err(ImportError::Rows { errors, more });
    }
    if rows.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(rows)
}

/// Index of each of [`COLUMNS`] in the header; refuses missing, unknown and repeated ones.
fn column_positions(header: &csv::StringRecord) -> Result<[usize; 5], ImportError> {
    let mut positions = [usize::MAX; 5];
    for (index, name) in header.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        let Some(column) = COLUMNS.iter().position(|c| *c == lower) else {
            return Err(ImportError::Header(format!(
                "unknown column {name:?}; the columns are {}",
                COLUMNS.join(", ")
            )));
        };
        if positions[column] != usize::MAX {
            return Err(ImportError::Header(format!(
                "column {lower:?} appears twice"
            )));
        }
        positions[column] = index;
    }
    if let Some(missing) = (0..COLUMNS.len()).find(|i| positions[*i] == usize::MAX) {
        return Err(ImportError::Header(format!(
            "missing column {:?}; the columns are {}",
            COLUMNS[missing],
            COLUMNS.join(", ")
        )));
    }
    Ok(positions)
}

/// Validates one row's fields (`[sku, ean, name, price, vat]`), collecting every problem.
fn parse_row(line: u64, [sku, ean, name, price, vat]: [&str; 5]) -> Result<ImportRow, Vec<String>> {
    let mut problems = Vec::new();
    if sku.is_empty()
        || sku.chars().count() > MAX_SKU_LEN
        || sku
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '|')
    {
        problems.push(format!(
            "sku {sku:?} must be 1..={MAX_SKU_LEN} characters without spaces or |"
        ));
    }
    let ean = if ean.is_empty() {
        None
    } else {
        if let Err(m) = check_ean(ean) {
            problems.push(m);
        }
        Some(ean.to_owned())
    };
    if name.is_empty() || name.chars().count() > MAX_TEXT_LEN || name.chars().any(char::is_control)
    {
        problems.push(format!("name must be 1..={MAX_TEXT_LEN} characters"));
    }
    let price = match price.parse::<i64>() {
        Ok(p) if (0..=MAX_PRICE_KOPECKS).contains(&p) => Some(Kopecks(p)),
        Ok(_) => {
            problems.push(format!(
                "price {price} is out of range 0..={MAX_PRICE_KOPECKS} kopecks"
            ));
            None
        }
        Err(_) => {
            problems.push(format!(
                "price {price:?} must be whole kopecks, e.g. 1250 for 12.50 RUB"
            ));
            None
        }
    };
    let vat = parse_vat(vat).map_err(|m| problems.push(m)).ok();
    match (price, vat) {
        (Some(price), Some(vat)) if problems.is_empty() => Ok(ImportRow {
            line,
            sku: sku.to_owned(),
            ean,
            name: name.to_owned(),
            price,
            vat,
        }),
        _ => Err(problems),
    }
}

/// GS1 check: 8, 12, 13 or 14 digits with a valid check digit.
fn check_ean(ean: &str) -> Result<(), String> {
    let digits: Option<Vec<u32>> = ean.chars().map(|c| c.to_digit(10)).collect();
    let Some(digits) = digits.filter(|d| matches!(d.len(), 8 | 12 | 13 | 14)) else {
        return Err(format!("ean {ean:?} must be 8, 12, 13 or 14 digits"));
    };
    let (body, check) = digits.split_at(digits.len() - 1);
    // Weights 3,1,3,... from the digit next to the check digit.
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    if (10 - sum % 10) % 10 == check[0] {
        Ok(())
    } else {
        Err(format!("ean {ean} has a wrong check digit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_err(input: &str) -> Vec<RowError> {
        match parse_csv(input.as_bytes()) {
            Err(ImportError::Rows { errors, .. }) => errors,
            other => panic!("expected row errors, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_valid_file_with_bom_and_semicolons() {
        let input = "\u{feff}SKU;ean;name;price;vat\nFR-001;4006381333931;Оправа Ray-Ban;1250000;none\nSVC-EYE;;Проверка зрения;150000;VAT22\n\n";
        let rows = parse_csv(input.as_bytes()).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].sku, "FR-001");
        assert_eq!(rows[0].ean.as_deref(), Some("4006381333931"));
        assert_eq!(rows[0].name, "Оправа Ray-Ban");
        assert_eq!(rows[0].price, Kopecks(1_250_000));
        assert_eq!(rows[0].vat, VatRate::NoVat);
        assert_eq!(rows[1].ean, None);
        assert_eq!(rows[1].vat, VatRate::Vat22);
    }

    #[test]
    fn columns_in_any_order_with_quotes() {
        let input = "vat,price,name,ean,sku\nvat20,100,\"Lens, daily\",,L1\n";
        let rows = parse_csv(input.as_bytes()).expect("valid");
        assert_eq!(rows[0].name, "Lens, daily");
        assert_eq!(rows[0].sku, "L1");
        assert_eq!(rows[0].price, Kopecks(100));
    }

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let input = "sku,ean,name,price,vat\nA,,ok,100,none\nB,,bad price,12.50,none\nC,123,bad ean,1,none\nD,,,5,vat99\nA,,dup,1,none\nE,,short\n";
        let errors = rows_err(input);
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 5, 6, 7]);
        assert!(errors[0].message.contains("whole kopecks"), "{}", errors[0]);
        assert!(
            errors[1].message.contains("8, 12, 13 or 14"),
            "{}",
            errors[1]
        );
        assert!(errors[2].message.contains("name"), "{}", errors[2]);
        assert!(errors[3].message.contains("vat99"), "{}", errors[3]);
        assert!(errors[4].message.contains("line 2"), "{}", errors[4]);
        assert!(errors[5].message.contains("3 fields"), "{}", errors[5]);
    }

    #[test]
    fn checks_ean_check_digits_and_duplicates() {
        assert!(check_ean("4006381333931").is_ok());
        assert!(check_ean("96385074").is_ok());
        assert!(check_ean("036000291452").is_ok());
        assert!(check_ean("4006381333932").is_err());
        let dup = "sku,ean,name,price,vat\nA,4006381333931,a,1,none\nB,4006381333931,b,1,none\n";
        let errors = rows_err(dup);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
    }

    #[test]
    fn refuses_bad_headers_negative_prices_and_non_utf8() {
        let missing = parse_csv(b"sku,name,price,vat\nA,a,1,none\n");
        assert!(matches!(missing, Err(ImportError::Header(m)) if m.contains("\"ean\"")));
        let unknown = parse_csv(b"sku,ean,name,price,vat,cost\n");
        assert!(matches!(unknown, Err(ImportError::Header(m)) if m.contains("cost")));
        let twice = parse_csv(b"sku,ean,name,price,vat,SKU\n");
        assert!(matches!(twice, Err(ImportError::Header(m)) if m.contains("twice")));
        assert!(matches!(
            parse_csv(b"sku,ean,name,price,vat\n"),
            Err(ImportError::Empty)
        ));
        let negative = rows_err("sku,ean,name,price,vat\nA,,a,-1,none\n");
        assert!(negative[0].message.contains("out of range"));
        let latin1 = b"sku,ean,name,price,vat\nA,,caf\xe9,1,none\n";
        assert!(matches!(
            parse_csv(latin1),
            Err(ImportError::NotUtf8 { line: 2 })
        ));
    }

    #[test]
    fn error_report_is_capped() {
        let mut input = String::from("sku,ean,name,price,vat\n");
        for i in 0..(MAX_REPORTED_ERRORS + 5) {
            input.push_str(&format!("S{i},,n,x,none\n"));
        }
        match parse_csv(input.as_bytes()) {
            Err(e @ ImportError::Rows { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with("105 error(s) in the rows"), "{text}");
                assert!(text.ends_with("... and 5 more"), "{text}");
            }
            other => panic!("expected row errors, got {other:?}"),
        }
    }
}
