//! Shared fixtures for the sale engine's tests.
#![allow(dead_code, clippy::unwrap_used)]

use pos_core::sale::{Money, PricingMode, Product, TaxRate, Ticket, Unit};
use pos_core::{ProductId, TicketId};

pub fn rates() -> Vec<TaxRate> {
    vec![
        TaxRate {
            class: "A".into(),
            name: "VAT".into(),
            rate_bp: 2000,
        },
        TaxRate {
            class: "B".into(),
            name: "VAT".into(),
            rate_bp: 550,
        },
        TaxRate {
            class: "Z".into(),
            name: "Zero".into(),
            rate_bp: 0,
        },
    ]
}

pub fn product(n: u8, name: &str, unit: Unit, price: i64, class: &str) -> Product {
    Product {
        id: ProductId::from_bytes([n; 16]),
        sku: format!("SKU-{n:03}"),
        name: name.into(),
        unit,
        price: Money(price),
        cost: Money(price / 2),
        tax_class: class.into(),
        category: "Grocery".into(),
        quick_key: None,
        active: true,
        barcodes: Vec::new(),
    }
}

pub fn ticket(mode: PricingMode) -> Ticket {
    Ticket::new(TicketId::from_bytes([7; 16]), mode, rates())
}

/// Half away from zero, written differently from the library on purpose.
pub fn round_div(n: i128, d: i128) -> i128 {
    (2 * n.abs() + d) / (2 * d) * n.signum()
}
