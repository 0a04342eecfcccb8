//! The `catalogue` module: products, their barcodes and PLUs, name search and tax rates, as
//! the hub publishes them (`catalogue.product_saved`, `catalogue.tax_rate_saved`), and the
//! terminal's lookups (the scan path of figure P2, SKU/PLU, search, quick keys).
//!
//! # Barcode keys
//!
//! A product's barcodes are indexed by their lookup key ([`Scanned::lookup_key`]: the
//! normalised GTIN, or the PLU as typed), so a scan finds the product whatever form was printed
//! (a UPC-A scan finds the product saved with its EAN-13). The projection computes the keys
//! with [`BarcodeRules::default()`]: a projection may only read the event and its own tables,
//! not the store's settings, and a rebuild must give the same keys on every device. With the
//! default rules, codes of up to 5 digits are PLUs, 8-digit codes starting with 0 are UPC-E
//! (expanded), and 13-digit codes starting with 21, 22 or 23 are scale labels, which a product
//! cannot carry. A device whose scanner rules differ (say `upc_e` off, or 6-digit PLUs) still
//! finds GTINs, which normalise the same way, but its PLUs and restricted EAN-8 codes must be
//! published in the form the default rules read.
//!
//! A barcode belongs to one product: saving a product with a barcode another product already
//! has is refused (the hub must take it off the other product first), as is a second product
//! with the same SKU.
//!
//! # Search
//!
//! `catalogue_search` (FTS5) holds the name, SKU and category of *active* products only, so a
//! deactivated product disappears from search and quick keys at once; a scan still finds it
//! (with `active = false`) so the ticket can say why it cannot be sold. The FTS row of a product
//! sits at a rowid derived from its id ([`search_slot`]), so replacing it is a point delete
//! instead of a scan of the whole index.

use pos_audit::Event;
use pos_core::sale::events::{ProductSaved, TaxRateSaved, CATALOGUE};
use pos_core::sale::{BarcodeRules, Product, TaxRate};
use pos_core::ProductId;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::error::{Result, StoreError};
use crate::projection::{payload, Projection, Refusal};
use crate::store::Store;

/// The most results [`Store::search_products`] returns, whatever the caller asks for.
const MAX_SEARCH_RESULTS: usize = 500;

/// Module `catalogue`: products, barcodes, name search, tax rates.
#[derive(Debug)]
pub(crate) struct CatalogueProjection;

impl Projection for CatalogueProjection {
    fn module(&self) -> &'static str {
        CATALOGUE
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "catalogue_products",
            "catalogue_barcodes",
            "catalogue_search",
            "catalogue_tax_rates",
        ]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        match event.kind.as_str() {
            ProductSaved::KIND => {
                let p: ProductSaved = payload(event)?;
                save_product(tx, &p.product, event.hlc.raw() as i64)
            }
            TaxRateSaved::KIND => {
                let p: TaxRateSaved = payload(event)?;
                save_tax_rate(tx, &p.rate)
            }
            _ => Err(Refusal(format!(
                "unknown kind `{}` for module `{}`",
                event.kind, event.module
            ))),
        }
    }
}

fn save_product(tx: &Transaction<'_>, product: &Product, hlc: i64) -> Result<(), Refusal> {
    let rules = BarcodeRules::default();
    product
        .validate(&rules)
        .map_err(|e| Refusal(e.to_string()))?;
    let keys = product
        .barcode_keys(&rules)
        .map_err(|e| Refusal(e.to_string()))?;
    let id = product.id.as_bytes();

    let was_active: Option<bool> = tx
        .prepare_cached("SELECT active FROM catalogue_products WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let sku_owner: Option<String> = tx
        .prepare_cached("SELECT name FROM catalogue_products WHERE sku = ?1 AND id <> ?2")?
        .query_row(params![product.sku, id], |r| r.get(0))
        .optional()?;
    if let Some(other) = sku_owner {
        return Err(Refusal(format!(
            "SKU {} already belongs to another product ({other})",
            product.sku
        )));
    }
    {
        let mut owner = tx.prepare_cached(
            "SELECT p.sku FROM catalogue_barcodes b JOIN catalogue_products p ON p.id = b.product
             WHERE b.code = ?1 AND b.product <> ?2",
        )?;
        for (code, key) in product.barcodes.iter().zip(&keys) {
            let other: Option<String> =
                owner.query_row(params![key, id], |r| r.get(0)).optional()?;
            if let Some(sku) = other {
                return Err(Refusal(format!(
                    "barcode {} already belongs to SKU {sku}",
                    code.trim()
                )));
            }
        }
    }

    let json = serde_json::to_string(product).map_err(|e| Refusal(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO catalogue_products
             (id, sku, name, category, quick_key, active, product, updated_hlc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET sku = ?2, name = ?3, category = ?4, quick_key = ?5,
             active = ?6, product = ?7, updated_hlc = ?8",
    )?
    .execute(params![
        id,
        product.sku,
        product.name,
        product.category,
        product.quick_key,
        product.active,
        json,
        hlc
    ])?;

    tx.prepare_cached("DELETE FROM catalogue_barcodes WHERE product = ?1")?
        .execute([id])?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO catalogue_barcodes (code, product) VALUES (?1, ?2)")?;
        for key in &keys {
            insert.execute(params![key, id])?;
        }
    }

    if was_active == Some(true) {
        remove_from_search(tx, product.id)?;
    }
    if product.active {
        add_to_search(tx, product)?;
    }
    Ok(())
}

/// The FTS rowid a product's search row is put at, unless another product holds it (see
/// [`add_to_search`]): both halves of the id folded into 63 bits.
fn search_slot(id: ProductId) -> i64 {
    let b = id.as_bytes();
    let half = |r: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(r);
        u64::from_be_bytes(a)
    };
    ((half(&b[..8]) ^ half(&b[8..])) & (i64::MAX as u64)) as i64
}

fn remove_from_search(tx: &Transaction<'_>, id: ProductId) -> Result<(), Refusal> {
    let removed = tx
        .prepare_cached("DELETE FROM catalogue_search WHERE rowid = ?1 AND product = ?2")?
        .execute(params![search_slot(id), id.as_bytes()])?;
    if removed == 0 {
        // Its slot was taken when it was added (two ids folding alike: practically never), so
        // its row is elsewhere: find it by the unindexed column.
        tx.prepare_cached("DELETE FROM catalogue_search WHERE product = ?1")?
            .execute([id.as_bytes()])?;
    }
    Ok(())
}

fn add_to_search(tx: &Transaction<'_>, product: &Product) -> Result<(), Refusal> {
    let mut slot = search_slot(product.id);
    // On a collision take the next free rowid: deterministic, so a rebuild gives the same rows.
    let mut taken = tx.prepare_cached("SELECT 1 FROM catalogue_search WHERE rowid = ?1")?;
    while taken.exists([slot])? {
        slot = if slot == i64::MAX { 1 } else { slot + 1 };
    }
    tx.prepare_cached(
        "INSERT INTO catalogue_search (rowid, name, sku, category, product)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        slot,
        product.name,
        product.sku,
        product.category,
        product.id.as_bytes()
    ])?;
    Ok(())
}

fn save_tax_rate(tx: &Transaction<'_>, rate: &TaxRate) -> Result<(), Refusal> {
    if rate.class.trim().is_empty() {
        return Err(Refusal("the tax class is empty".into()));
    }
    if rate.name.trim().is_empty() {
        return Err(Refusal(format!("tax class {} has no name", rate.class)));
    }
    tx.prepare_cached(
        "INSERT INTO catalogue_tax_rates (class, name, rate_bp) VALUES (?1, ?2, ?3)
         ON CONFLICT (class) DO UPDATE SET name = ?2, rate_bp = ?3",
    )?
    .execute(params![rate.class, rate.name, rate.rate_bp])?;
    Ok(())
}

/// An FTS5 query matching every word of `text` as a prefix, or `None` when `text` has no word.
/// Each word is quoted as an FTS5 string (inner `"` doubled) so operators, parentheses, column
/// filters and `*` in what the cashier typed are searched for as text, never parsed as syntax.
fn prefix_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        // A word without a letter or digit holds no token: as a phrase it would match nothing.
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn parse_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<serde_json::Result<Product>> {
    Ok(serde_json::from_slice(row.get_ref(0)?.as_bytes()?))
}

impl Store {
    fn corrupt_product(&self, e: serde_json::Error) -> StoreError {
        StoreError::Corrupt {
            path: self.dir().to_path_buf(),
            detail: format!("a catalogue product does not parse: {e}"),
        }
    }

    /// Products from the first column (JSON) of `sql`'s rows, parsed straight from SQLite's
    /// buffer.
    fn products_where(&self, sql: &str, param: impl rusqlite::Params) -> Result<Vec<Product>> {
        let rows: Vec<serde_json::Result<Product>> = self
            .conn()
            .prepare_cached(sql)
            .and_then(|mut s| s.query_map(param, parse_row)?.collect())
            .map_err(self.db_err())?;
        rows.into_iter()
            .map(|p| p.map_err(|e| self.corrupt_product(e)))
            .collect()
    }

    fn product_where(&self, sql: &str, param: impl rusqlite::Params) -> Result<Option<Product>> {
        self.conn()
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(param, parse_row).optional())
            .map_err(self.db_err())?
            .map(|p| p.map_err(|e| self.corrupt_product(e)))
            .transpose()
    }

    /// The product a scan refers to, by the scan's lookup key
    /// (`parse_barcode(code, &rules)?.lookup_key()`): one indexed lookup, the P2 path.
    /// Inactive products are returned (with `active == false`) so the ticket can refuse them
    /// by name; `None` means an unknown barcode.
    pub fn product_by_code(&self, key: &str) -> Result<Option<Product>> {
        self.product_where(
            "SELECT p.product FROM catalogue_barcodes b
             JOIN catalogue_products p ON p.id = b.product WHERE b.code = ?1",
            [key],
        )
    }

    /// The product with this SKU (the code a cashier types as PLU when it is not a barcode).
    pub fn product_by_sku(&self, sku: &str) -> Result<Option<Product>> {
        self.product_where(
            "SELECT product FROM catalogue_products WHERE sku = ?1",
            [sku.trim()],
        )
    }

    pub fn product(&self, id: ProductId) -> Result<Option<Product>> {
        self.product_where(
            "SELECT product FROM catalogue_products WHERE id = ?1",
            [id.as_bytes()],
        )
    }

    /// Active products whose name, SKU or category has words starting with every word of
    /// `query` (case- and accent-insensitive), best match first, at most `limit` (capped at
    /// 500). Whatever the query holds is searched for as text: quotes,
    /// parentheses, `*`, `NEAR`, `AND` are not FTS syntax here. A query without a letter or
    /// digit finds nothing.
    pub fn search_products(&self, query: &str, limit: usize) -> Result<Vec<Product>> {
        let Some(fts) = prefix_query(query) else {
            return Ok(Vec::new());
        };
        let limit = limit.min(MAX_SEARCH_RESULTS) as i64;
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.products_where(
            "SELECT p.product FROM catalogue_search s
             JOIN catalogue_products p ON p.id = s.product
             WHERE catalogue_search MATCH ?1
             ORDER BY s.rank, p.name, p.sku LIMIT ?2",
            params![fts, limit],
        )
    }

    /// Active products on the quick-key screen, by position (then SKU if two share one).
    pub fn quick_keys(&self) -> Result<Vec<Product>> {
        self.products_where(
            "SELECT product FROM catalogue_products
             WHERE active = 1 AND quick_key IS NOT NULL ORDER BY quick_key, sku",
            [],
        )
    }

    /// Create or change products as `actor` (permission `catalogue_edit`), in one commit: a
    /// product whose SKU exists keeps its id; one equal to what is stored is left out.
    /// Returns how many were saved. The caller validates each product first
    /// ([`Product::validate`]); the projection still refuses a barcode or SKU another product
    /// holds, and then nothing is saved.
    pub fn save_products(
        &mut self,
        actor: &pos_auth::Principal,
        products: Vec<Product>,
    ) -> std::result::Result<usize, crate::AccountError> {
        let ok = self.authorize(actor, pos_auth::Permission::CatalogueEdit, None)?;
        let mut drafts: Vec<pos_audit::EventDraft> = ok.audit.into_iter().collect();
        let mut saved = 0;
        for mut product in products {
            let before = self.product_by_sku(&product.sku)?;
            if let Some(b) = &before {
                product.id = b.id;
            }
            if before.as_ref() == Some(&product) {
                continue;
            }
            drafts.push(
                pos_audit::EventDraft::json(
                    CATALOGUE,
                    ProductSaved::KIND,
                    &ProductSaved { product, before },
                )
                .by(actor.user),
            );
            saved += 1;
        }
        if saved > 0 {
            self.append(drafts)?;
        }
        Ok(saved)
    }

    /// Every product (active or not), by SKU.
    pub fn products(&self) -> Result<Vec<Product>> {
        self.products_where("SELECT product FROM catalogue_products ORDER BY sku", [])
    }

    /// Every tax rate, by class.
    pub fn tax_rates(&self) -> Result<Vec<TaxRate>> {
        self.conn()
            .prepare_cached("SELECT class, name, rate_bp FROM catalogue_tax_rates ORDER BY class")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(TaxRate {
                        class: r.get(0)?,
                        name: r.get(1)?,
                        rate_bp: r.get(2)?,
                    })
                })?
                .collect()
            })
            .map_err(self.db_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_becomes_quoted_prefixes() {
        assert_eq!(prefix_query("  "), None);
        assert_eq!(prefix_query("( * -"), None);
        assert_eq!(
            prefix_query("cola zero"),
            Some("\"cola\"* \"zero\"*".into())
        );
        assert_eq!(
            prefix_query("5\" NEAR(x"),
            Some(r#""5"""* "NEAR(x"*"#.into())
        );
    }

    #[test]
    fn slots_are_non_negative_and_spread() {
        let a = ProductId::from_bytes([0xff; 16]);
        let b = ProductId::from_bytes([1; 16]);
        let c = ProductId::from_bytes([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert!(search_slot(a) >= 0);
        assert_eq!(search_slot(b), 0);
        assert_eq!(search_slot(c), 3);
    }
}
