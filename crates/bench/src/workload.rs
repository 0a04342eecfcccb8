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
