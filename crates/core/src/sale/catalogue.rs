//! Catalogue products: what the hub publishes (`catalogue.product_saved`) and terminals sell.

use serde::{Deserialize, Serialize};

use super::barcode::{parse_barcode, BarcodeRules, Scanned};
use super::money::{Money, Unit};
use super::SaleError;
use crate::ProductId;

/// The most a product (or an overridden price) may cost: 10 000 000.00.
pub const MAX_PRICE: Money = Money(1_000_000_000);
/// Longest product name: what fits two receipt lines on an 80 mm printer.
pub const MAX_NAME_CHARS: usize = 80;

/// A product as the hub publishes it; the payload of `catalogue.product_saved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub unit: Unit,
    /// Per piece, or per kg for [`Unit::Kg`]; tax included or not per the store's pricing mode.
    pub price: Money,
    pub cost: Money,
    pub tax_class: String,
    pub category: String,
    /// Position on the quick-key screen, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_key: Option<u16>,
    pub active: bool,
    /// GTINs (any accepted form) and PLUs; never scale-label codes.
    #[serde(default)]
    pub barcodes: Vec<String>,
}

impl Product {
    pub const MODULE: &'static str = "catalogue";
    pub const KIND: &'static str = "product_saved";

    /// Checks what the hub must refuse to publish: a bad product would stop sales on every
    /// terminal.
    pub fn validate(&self, rules: &BarcodeRules) -> Result<(), SaleError> {
        let invalid = |why: String| Err(SaleError::InvalidProduct(why));
        if self.name.trim().is_empty() {
            return invalid("the name is empty".into());
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return invalid(format!(
                "the name is longer than {MAX_NAME_CHARS} characters"
            ));
        }
        if self.sku.trim().is_empty() {
            return invalid("the SKU is empty".into());
        }
        if self.tax_class.trim().is_empty() {
            return invalid("the tax class is empty".into());
        }
        check_price(self.price)?;
        if self.cost.is_negative() {
            return invalid(format!("the cost {} is negative", self.cost));
        }
        let keys = self.barcode_keys(rules)?;
        if let Some((i, _)) = keys
            .iter()
            .enumerate()
            .find(|(i, k)| keys[..*i].contains(k))
        {
            return invalid(format!("barcode {} is listed twice", self.barcodes[i]));
        }
        Ok(())
    }

    /// The normalised lookup keys of the product's barcodes (see [`Scanned::lookup_key`]), so the
    /// store indexes the same form a scan produces.
    pub fn barcode_keys(&self, rules: &BarcodeRules) -> Result<Vec<String>, SaleError> {
        self.barcodes
            .iter()
            .map(|code| match parse_barcode(code, rules) {
                Ok(Scanned::Gtin(key) | Scanned::Plu(key)) => Ok(key),
                Ok(_) => Err(SaleError::InvalidProduct(format!(
                    "barcode {code} is a scale-label code, not a product barcode"
                ))),
                Err(e) => Err(SaleError::InvalidProduct(format!("barcode {code}: {e}"))),
            })
            .collect()
    }
}

/// Refuses negative prices and prices above [`MAX_PRICE`].
pub fn check_price(price: Money) -> Result<(), SaleError> {
    if price.is_negative() || price > MAX_PRICE {
        return Err(SaleError::PriceOutOfRange {
            price,
            max: MAX_PRICE,
        });
    }
    Ok(())
}
