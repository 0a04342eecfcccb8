//! The events of a realistic sale, shared by the figures so they measure the same records.

use pos_audit::EventDraft;
use pos_core::payloads::StockMoved;
use pos_core::UserId;

/// Lines in one sale.
pub const SALE_LINES: usize = 20;
/// Distinct items in one sale ("a few": a basket with repeats).
const ITEMS_PER_SALE: u64 = 5;
/// Size of the synthetic catalogue the items are drawn from.
const CATALOGUE: u64 = 5_000;

/// A catalogue item id as the item master would have it (UUID text, 36 characters).
fn item_id(n: u64) -> String {
    let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        "0190{:04x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        (h >> 48) & 0xffff,
        (h >> 32) & 0xffff,
        (h >> 20) & 0xfff,
        (h >> 8) & 0xfff,
        n
    )
}

/// The stock movements of sale number `sale`: one `stock.moved` per line, by `cashier`.
/// Payloads are ~65 bytes of JSON; canonical records ~160 bytes.
pub fn sale(sale: u64, cashier: UserId) -> Vec<EventDraft> {
    (0..SALE_LINES as u64)
        .map(|line| {
            let item = (sale * 7919 + line % ITEMS_PER_SALE) % CATALOGUE;
            // Mostly whole units (1000 = 1 each), some weighed goods in grams.
            let quantity = if line % 7 == 3 {
                -(437 + (sale % 500) as i64)
            } else {
                -1000 * (1 + (line % 3) as i64)
            };
            EventDraft::json(
                StockMoved::MODULE,
                StockMoved::KIND,
                &StockMoved {
                    item: item_id(item),
                    quantity,
                    cause: None,
                    reference: None,
                },
            )
            .by(cashier)
        })
        .collect()
}

/// Make `engine`'s store a trading terminal: an admin, a manager who loads ten products with
/// EAN-13 barcodes (and stock), and a cashier logged in with an open shift. Returns the
/// barcodes to scan.
pub fn trading_terminal(engine: &mut pos_engine::Engine) -> anyhow::Result<Vec<String>> {
    use pos_core::sale::barcode::check_digit;
    use pos_core::sale::{Money, Product, Quantity, TaxRate, Unit};
    use pos_engine::Credentials;

    let policy = engine.config().accounts.clone();
    let store = engine.store_mut();
    let (_, one_time) = store.bootstrap_admin("admin")?;
    let totp = store
        .change_secret("admin", &one_time, "Tangerine-Harbor-2026", None, &policy)?
        .ok_or_else(|| anyhow::anyhow!("the admin enrols a second factor"))?;
    let code = pos_auth::totp_code(&totp, pos_store::now_ms() / 1000);
    let admin = store.authenticate("admin", "Tangerine-Harbor-2026", Some(&code), &policy)?;
    for (name, role, secret) in [
        ("maria", "manager", "Velvet-Orchard-2026"),
        ("alice", "cashier", "481516"),
    ] {
        let (_, first) = store.add_user(&admin, name, name, &[role.to_owned()])?;
        store.change_secret(name, &first, secret, None, &policy)?;
    }
    engine.login(Credentials::new("maria", "Velvet-Orchard-2026"))?;
    engine.save_tax_rate(TaxRate {
        class: "std".into(),
        name: "VAT".into(),
        rate_bp: 2000,
    })?;
    let mut codes = Vec::new();
    for n in 0..10u64 {
        let body = format!("40123450{n:04}");
        let code = format!("{body}{}", check_digit(&body).unwrap_or(0));
        engine.save_product(Product {
            id: pos_core::ProductId::new_v7(),
            sku: format!("sku-{n}"),
            name: format!("Bench product {n}"),
            unit: Unit::Each,
            price: Money(199 + n as i64 * 37),
            cost: Money(100),
            tax_class: "std".into(),
            category: "bench".into(),
            quick_key: None,
            active: true,
            barcodes: vec![code.clone()],
        })?;
        engine.receive_stock(&format!("sku-{n}"), Quantity::units(100_000), "bench", None)?;
        codes.push(code);
    }
    engine.logout()?;
    engine.login(Credentials::new("alice", "481516"))?;
    engine.open_shift(Money(10_000))?;
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_is_twenty_valid_lines_over_a_few_items() {
        let drafts = sale(3, UserId::from_bytes([1; 16]));
        assert_eq!(drafts.len(), SALE_LINES);
        let mut items: Vec<_> = drafts.iter().map(|d| d.payload.clone()).collect();
        for d in &drafts {
            d.validate().unwrap();
            assert!(d.actor.is_some());
            let p: StockMoved = serde_json::from_slice(&d.payload).unwrap();
            assert_eq!(p.item.len(), 36);
        }
        items.sort();
        items.dedup_by(|a, b| a[..45] == b[..45]);
        assert_eq!(items.len(), ITEMS_PER_SALE as usize);
    }
}
