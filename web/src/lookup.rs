//! The product lookup behind `scan-input`: exact EAN or SKU for a scanner (a scanner is a
//! keyboard that types the code and Enter), and a case-insensitive name search for a cashier.
//!
//! The index is built once per catalogue change, so a scan is one hash lookup even with
//! 10 000 products (target: scan → line on screen ≤ 50 ms), and a search is one pass over
//! pre-lowercased names.

use std::collections::HashMap;

use crdt_model::catalogue::Product;

/// Most products a name search returns.
pub const MAX_MATCHES: usize = 20;

/// The catalogue prepared for scanning and searching.
#[derive(Debug, Clone, Default)]
pub struct CatalogueIndex {
    products: Vec<Product>,
    by_ean: HashMap<String, usize>,
    by_sku: HashMap<String, usize>,
    /// Lower-cased `name` of each product, same order as `products`.
    names: Vec<String>,
}

/// What a scan or typed text found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// An exact EAN or SKU: add it to the cart.
    Exact(&'a Product),
    /// Products whose name (or SKU) contains the text, best first, at most [`MAX_MATCHES`].
    Matches(Vec<&'a Product>),
}

impl CatalogueIndex {
    /// Indexes `products` (sorted by name for stable search results).
    pub fn new(mut products: Vec<Product>) -> CatalogueIndex {
        products.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.sku.cmp(&b.sku)));
        let mut by_ean = HashMap::with_capacity(products.len());
        let mut by_sku = HashMap::with_capacity(products.len());
        let mut names = Vec::with_capacity(products.len());
        for (index, product) in products.iter().enumerate() {
            if let Some(ean) = &product.ean {
                by_ean.entry(ean.clone()).or_insert(index);
            }
            by_sku.insert(product.sku.clone(), index);
            names.push(product.name.to_lowercase());
        }
        CatalogueIndex {
            products,
            by_ean,
            by_sku,
            names,
        }
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.products.len()
    }

    /// True with no products (the catalogue has not arrived yet).
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// The product with exactly this EAN, else this SKU.
    pub fn exact(&self, code: &str) -> Option<&Product> {
        let code = code.trim();
        self.by_ean
            .get(code)
            .or_else(|| self.by_sku.get(code))
            .and_then(|index| self.products.get(*index))
    }

    /// Products whose name or SKU contains `text` (case-insensitive): names starting with it
    /// first, then the others, each group in name order; at most [`MAX_MATCHES`].
    pub fn search(&self, text: &str) -> Vec<&Product> {
        let needle = text.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        let mut starting = Vec::new();
        let mut containing = Vec::new();
        for (product, name) in self.products.iter().zip(&self.names) {
            if name.starts_with(&needle) {
                starting.push(product);
                if starting.len() == MAX_MATCHES {
                    break;
                }
            } else if containing.len() < MAX_MATCHES
                && (name.contains(&needle) || product.sku.to_lowercase().contains(&needle))
            {
                containing.push(product);
            }
        }
        starting.extend(containing);
        starting.truncate(MAX_MATCHES);
        starting
    }

    /// What Enter on `text` means: an exact code, or the name matches.
    pub fn lookup(&self, text: &str) -> Lookup<'_> {
        match self.exact(text) {
            Some(product) => Lookup::Exact(product),
            None => Lookup::Matches(self.search(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_model::{Kopecks, VatRate};

    fn product(sku: &str, ean: Option<&str>, name: &str) -> Product {
        Product {
            sku: sku.to_owned(),
            ean: ean.map(str::to_owned),
            name: name.to_owned(),
            price: Kopecks(100),
            cost: None,
            vat: VatRate::NoVat,
            unit: "шт".to_owned(),
            category: None,
            brand: None,
        }
    }

    fn index() -> CatalogueIndex {
        CatalogueIndex::new(vec![
            product("FR-001", Some("4601234567890"), "Оправа Ray-Ban"),
            product("LN-002", Some("4601234567891"), "Линза 1.6 асферическая"),
            product("CL-003", None, "Салфетка для очков"),
            product("4601234567890", None, "Товар с артикулом как EAN"),
        ])
    }

    #[test]
    fn exact_codes_prefer_ean_then_sku() {
        let index = index();
        assert_eq!(
            index.exact("4601234567891").map(|p| p.sku.as_str()),
            Some("LN-002")
        );
        assert_eq!(
            index.exact(" CL-003 ").map(|p| p.sku.as_str()),
            Some("CL-003")
        );
        // A SKU equal to another product's EAN: the EAN wins (that is what scanners type).
        assert_eq!(
            index.exact("4601234567890").map(|p| p.sku.as_str()),
            Some("FR-001")
        );
        assert_eq!(index.exact("cl-003"), None);
        assert_eq!(index.exact(""), None);
    }

    #[test]
    fn search_is_case_insensitive_and_prefers_prefixes() {
        let index = index();
        let skus = |text: &str| -> Vec<String> {
            index.search(text).iter().map(|p| p.sku.clone()).collect()
        };
        assert_eq!(skus("ОПРАВА"), vec!["FR-001"]);
        assert_eq!(skus("ray"), vec!["FR-001"]);
        assert_eq!(skus("для"), vec!["CL-003"]);
        assert_eq!(skus("ln-0"), vec!["LN-002"]);
        assert_eq!(skus("л"), vec!["LN-002", "CL-003", "4601234567890"]);
        assert!(skus("   ").is_empty());
        assert!(skus("нет такого").is_empty());
        assert!(matches!(index.lookup("FR-001"), Lookup::Exact(_)));
        assert!(matches!(index.lookup("оправа"), Lookup::Matches(found) if found.len() == 1));
    }

    #[test]
    fn ten_thousand_products_index_every_code_and_bound_the_search() {
        let products: Vec<Product> = (0..10_000)
            .map(|n| {
                product(
                    &format!("SKU-{n:05}"),
                    Some(&format!("46{n:011}")),
                    &format!("Оправа модель {n}"),
                )
            })
            .collect();
        let index = CatalogueIndex::new(products);
        assert_eq!(index.len(), 10_000);
        for n in (0..10_000).step_by(97) {
            let found = index.exact(&format!("46{n:011}")).map(|p| p.sku.clone());
            assert_eq!(found, Some(format!("SKU-{n:05}")));
        }
        assert_eq!(index.search("модель").len(), MAX_MATCHES);
        assert_eq!(index.search("модель 9999").len(), 1);
    }
}
