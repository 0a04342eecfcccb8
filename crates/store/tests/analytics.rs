//! Analytics (issue 10): random days of trading on two terminals, synced to a hub in random
//! order; every aggregate the query API returns equals a naive recomputation from the hub's
//! events, a second hub fed in another order holds the same tables, and a rebuild too.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use pos_audit::{Checkpoint, DeviceKey, Event, EventDraft};
use pos_core::payloads::DeviceRegistered;
use pos_core::sale::events::{
    LineVoided, NoSale, PostVoided, ProductSaved, Refunded, SaleCompleted, ShiftClosed,
    ShiftOpened, SALE, SHIFT,
};
use pos_core::sale::ticket::{Tender, Ticket};
use pos_core::sale::{
    CashRounding, CompletedSale, Discount, Money, PricingMode, Product, Quantity, RefundLine,
    RefundPlan, RefundRequest, Refundable, ShiftReport, TaxRate, Unit,
};
use pos_core::{DeviceId, DeviceRole, EventId, Hlc, ProductId, ShiftId, TicketId, UserId};
use pos_reports::{Period, HOUR_MS};
use pos_store::{LogFilter, Store};
use pos_sync::VerifiedBatch;
use proptest::prelude::*;
use rusqlite::Connection;

fn tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

/// 2026-11-21 12:00 UTC.
const START_MS: u64 = 1_795_586_400_000 - 4 * 86_400_000 + 6 * HOUR_MS;

fn rates() -> Vec<TaxRate> {
    vec![
        TaxRate {
            class: "std".into(),
            name: "VAT".into(),
            rate_bp: 2000,
        },
        TaxRate {
            class: "food".into(),
            name: "VAT reduced".into(),
            rate_bp: 700,
        },
    ]
}

/// The products terminals sell; the last one is not in the hub's catalogue (sold before the
/// hub published it): it has no cost, so it is left out of the margin.
fn products() -> Vec<Product> {
    [
        ("cola", 199, 80, "std", "drinks"),
        ("bread", 250, 120, "food", "bakery"),
        ("cake", 350, 150, "food", "bakery"),
        ("wine", 899, 500, "std", "drinks"),
        ("mystery", 500, 0, "std", "none"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (sku, price, cost, tax, category))| Product {
        id: ProductId::from_bytes([i as u8 + 1; 16]),
        sku: sku.into(),
        name: sku.to_uppercase(),
        unit: Unit::Each,
        price: Money(price),
        cost: Money(cost),
        tax_class: tax.into(),
        category: category.into(),
        quick_key: None,
        active: true,
        barcodes: vec![],
    })
    .collect()
}

/// A terminal's chain built in memory with chosen times, so trading spans hours and days.
struct Till {
    origin: DeviceId,
    key: DeviceKey,
    events: Vec<Event>,
    checkpoints: Vec<Checkpoint>,
    now_ms: u64,
    cashiers: [UserId; 2],
    shift: ShiftId,
    receipts: Vec<(CompletedSale, Vec<RefundLine>, bool)>,
    refunds: u64,
    z: u64,
    scratch: Vec<u8>,
}

impl Till {
    fn new(seed: u8) -> Till {
        let mut t = Till {
            origin: DeviceId::from_bytes([seed; 16]),
            key: DeviceKey::from_seed([seed; 32]),
            events: Vec::new(),
            checkpoints: Vec::new(),
            now_ms: START_MS + u64::from(seed) * 60_000,
            cashiers: [
                UserId::from_bytes([seed + 100; 16]),
                UserId::from_bytes([seed + 110; 16]),
            ],
            shift: ShiftId::new_v7(),
            receipts: Vec::new(),
            refunds: 0,
            z: 0,
            scratch: Vec::new(),
        };
        let open = ShiftOpened {
            shift: t.shift,
            float: Money(10_000),
        };
        t.push(0, EventDraft::json(SHIFT, ShiftOpened::KIND, &open));
        t
    }

    fn push(&mut self, cashier: usize, draft: EventDraft) {
        let (seq, prev) = self
            .events
            .last()
            .map_or((0, pos_audit::ChainHash::GENESIS), |e| (e.seq, e.hash));
        let hlc = Hlc::from_parts(self.now_ms, seq as u16);
        let event = draft.by(self.cashiers[cashier % 2]).seal(
            EventId::new_v7(),
            self.origin,
            seq + 1,
            hlc,
            prev,
            &mut self.scratch,
        );
        if event.seq.is_multiple_of(7) {
            self.checkpoints.push(Checkpoint::sign(
                &self.key,
                self.origin,
                event.seq,
                event.hash,
                hlc,
            ));
        }
        self.events.push(event);
    }

    fn batch(&self, first: u64, max: u64) -> VerifiedBatch {
        let last = (first + max - 1).min(self.events.len() as u64);
        let events = self.events[first as usize - 1..last as usize].to_vec();
        let tail = events.last().unwrap();
        VerifiedBatch {
            origin: self.origin,
            first_seq: first,
            last_seq: last,
            head: tail.hash,
            seal: Checkpoint::sign(&self.key, self.origin, tail.seq, tail.hash, tail.hlc),
            checkpoints: self
                .checkpoints
                .iter()
                .filter(|c| c.seq >= first && c.seq <= last)
                .cloned()
                .collect(),
            events,
        }
    }

    fn act(&mut self, op: &Op) {
        let catalogue = products();
        match op {
            Op::Sale {
                cashier,
                lines,
                card,
                discount_bp,
                ..
            } => {
                let mut ticket = Ticket::new(TicketId::new_v7(), PricingMode::Inclusive, rates());
                for (p, q) in lines {
                    let product = &catalogue[usize::from(*p) % catalogue.len()];
                    ticket
                        .add_item(product, Quantity::units(i64::from(*q)), None)
                        .unwrap();
                }
                if *discount_bp > 0 {
                    ticket
                        .ticket_discount(Discount::Percent(u32::from(*discount_bp)))
                        .unwrap();
                }
                let due = ticket.totals().unwrap().due;
                if *card {
                    let tender = Tender::Card {
                        approval_code: "A1".into(),
                        last4: "4242".into(),
                    };
                    ticket.add_payment(tender, due).unwrap();
                } else {
                    let tendered = Money((due.0 / 500 + 1) * 500);
                    ticket.add_payment(Tender::Cash, tendered).unwrap();
                }
                let sale = ticket.complete(&CashRounding::default()).unwrap();
                let receipt = self.receipts.len() as u64 + 1;
                let payload = SaleCompleted {
                    receipt,
                    shift: self.shift,
                    sale: sale.clone(),
                };
                self.push(
                    *cashier,
                    EventDraft::json(SALE, SaleCompleted::KIND, &payload),
                );
                self.receipts.push((sale, Vec::new(), false));
            }
            Op::Refund {
                cashier,
                pick,
                card,
                ..
            } => {
                let card_tender = Tender::Card {
                    approval_code: "R1".into(),
                    last4: "4242".into(),
                };
                let tender = if *card { card_tender } else { Tender::Cash };
                let open: Vec<usize> = (0..self.receipts.len())
                    .filter(|i| !self.receipts[*i].2)
                    .collect();
                let (original, plan) = match open.get(usize::from(*pick) % open.len().max(1)) {
                    Some(&i) => {
                        let (sale, done, _) = &self.receipts[i];
                        let left = Refundable::new(sale, done).unwrap();
                        let line = sale.lines[0].line;
                        if left.left(line).unwrap().0 .0 < 1000 {
                            return;
                        }
                        let plan = left
                            .check_refund(&[RefundRequest {
                                line,
                                qty: Quantity::units(1),
                            }])
                            .unwrap();
                        self.receipts[i].1.extend(plan.records());
                        (Some(i as u64 + 1), plan)
                    }
                    None => {
                        let product = &catalogue[usize::from(*pick) % catalogue.len()];
                        let plan = RefundPlan::without_receipt(
                            product,
                            Quantity::units(1),
                            product.price,
                            &rates(),
                            PricingMode::Inclusive,
                        )
                        .unwrap();
                        (None, plan)
                    }
                };
                self.refunds += 1;
                let payload = Refunded {
                    refund: self.refunds,
                    original,
                    shift: self.shift,
                    plan,
                    tender,
                };
                self.push(*cashier, EventDraft::json(SALE, Refunded::KIND, &payload));
            }
            Op::PostVoid { cashier, pick, .. } => {
                let voidable: Vec<usize> = (0..self.receipts.len())
                    .filter(|i| !self.receipts[*i].2 && self.receipts[*i].1.is_empty())
                    .collect();
                let Some(&i) = voidable.get(usize::from(*pick) % voidable.len().max(1)) else {
                    return;
                };
                self.receipts[i].2 = true;
                let payload = PostVoided {
                    receipt: i as u64 + 1,
                    shift: self.shift,
                    total: self.receipts[i].0.totals.due,
                };
                self.push(*cashier, EventDraft::json(SALE, PostVoided::KIND, &payload));
            }
            Op::LineVoid {
                cashier, amount, ..
            } => {
                let payload = LineVoided {
                    ticket: TicketId::new_v7(),
                    shift: self.shift,
                    line: 1,
                    sku: "cola".into(),
                    name: "COLA".into(),
                    quantity: Quantity::units(1),
                    amount: Money(i64::from(*amount)),
                };
                self.push(*cashier, EventDraft::json(SALE, LineVoided::KIND, &payload));
            }
            Op::NoSale { cashier, .. } => {
                let payload = NoSale { shift: self.shift };
                self.push(*cashier, EventDraft::json(SHIFT, NoSale::KIND, &payload));
            }
            Op::Close {
                cashier,
                over_short,
                ..
            } => {
                self.z += 1;
                let over_short = Money(i64::from(*over_short));
                let payload = ShiftClosed {
                    shift: self.shift,
                    z_number: self.z,
                    counted: Money(10_000 + over_short.0),
                    expected: Money(10_000),
                    over_short,
                    report: ShiftReport::default(),
                };
                self.push(
                    *cashier,
                    EventDraft::json(SHIFT, ShiftClosed::KIND, &payload),
                );
                self.shift = ShiftId::new_v7();
                let open = ShiftOpened {
                    shift: self.shift,
                    float: Money(10_000),
                };
                self.push(*cashier, EventDraft::json(SHIFT, ShiftOpened::KIND, &open));
            }
            Op::Sync(_) => {}
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Sale {
        b: bool,
        cashier: usize,
        lines: Vec<(u8, u8)>,
        card: bool,
        discount_bp: u16,
        minutes: u16,
    },
    Refund {
        b: bool,
        cashier: usize,
        pick: u8,
        card: bool,
        minutes: u16,
    },
    PostVoid {
        b: bool,
        cashier: usize,
        pick: u8,
        minutes: u16,
    },
    LineVoid {
        b: bool,
        cashier: usize,
        amount: u16,
        minutes: u16,
    },
    NoSale {
        b: bool,
        cashier: usize,
        minutes: u16,
    },
    Close {
        b: bool,
        cashier: usize,
        over_short: i16,
        minutes: u16,
    },
    /// Sync terminal (false = A) with at most n records.
    Sync((bool, u8)),
}

impl Op {
    fn till(&self) -> bool {
        match self {
            Op::Sale { b, .. }
            | Op::Refund { b, .. }
            | Op::PostVoid { b, .. }
            | Op::LineVoid { b, .. }
            | Op::NoSale { b, .. }
            | Op::Close { b, .. } => *b,
            Op::Sync((b, _)) => *b,
        }
    }

    fn minutes(&self) -> u64 {
        match self {
            Op::Sale { minutes, .. }
            | Op::Refund { minutes, .. }
            | Op::PostVoid { minutes, .. }
            | Op::LineVoid { minutes, .. }
            | Op::NoSale { minutes, .. }
            | Op::Close { minutes, .. } => u64::from(*minutes),
            Op::Sync(_) => 0,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let minutes = prop_oneof![4 => 0u16..20, 1 => 60u16..900];
    prop_oneof![
        8 => (any::<bool>(), 0usize..2, proptest::collection::vec((0u8..5, 1u8..4), 1..5),
              any::<bool>(), prop_oneof![3 => Just(0u16), 1 => 1u16..3000], minutes.clone())
            .prop_map(|(b, cashier, lines, card, discount_bp, minutes)| Op::Sale {
                b, cashier, lines, card, discount_bp, minutes
            }),
        2 => (any::<bool>(), 0usize..2, any::<u8>(), any::<bool>(), minutes.clone())
            .prop_map(|(b, cashier, pick, card, minutes)| Op::Refund { b, cashier, pick, card, minutes }),
        1 => (any::<bool>(), 0usize..2, any::<u8>(), minutes.clone())
            .prop_map(|(b, cashier, pick, minutes)| Op::PostVoid { b, cashier, pick, minutes }),
        1 => (any::<bool>(), 0usize..2, 1u16..2000, minutes.clone())
            .prop_map(|(b, cashier, amount, minutes)| Op::LineVoid { b, cashier, amount, minutes }),
        1 => (any::<bool>(), 0usize..2, minutes.clone())
            .prop_map(|(b, cashier, minutes)| Op::NoSale { b, cashier, minutes }),
        1 => (any::<bool>(), 0usize..2, -500i16..500, minutes)
            .prop_map(|(b, cashier, over_short, minutes)| Op::Close { b, cashier, over_short, minutes }),
        3 => (any::<bool>(), 1u8..8).prop_map(Op::Sync),
    ]
}

fn hub(dir: &Path, tills: &[&Till]) -> Store {
    let mut hub = Store::init(dir, DeviceRole::Hub, "main", "hub", false)
        .unwrap()
        .0;
    let mut drafts = Vec::new();
    for t in tills {
        drafts.push(EventDraft::json(
            DeviceRegistered::MODULE,
            DeviceRegistered::KIND,
            &DeviceRegistered {
                device: t.origin,
                role: DeviceRole::Terminal,
                branch: "main".into(),
                name: format!("till-{}", t.origin.as_bytes()[0]),
                public_key: hex::encode(t.key.public().0),
                cert_fingerprint: None,
            },
        ));
    }
    // The hub's catalogue, without the "mystery" product.
    for p in products().into_iter().filter(|p| p.sku != "mystery") {
        drafts.push(EventDraft::json(
            Product::MODULE,
            Product::KIND,
            &ProductSaved {
                product: p,
                before: None,
            },
        ));
    }
    hub.append(drafts).unwrap();
    hub
}

fn sync(hub: &mut Store, t: &Till, max: u64) {
    let from = hub.origin_state(t.origin).unwrap().last_seq + 1;
    if from <= t.events.len() as u64 {
        hub.ingest(&t.batch(from, max)).unwrap();
    }
}

fn sync_all(hub: &mut Store, t: &Till) {
    while hub.origin_state(t.origin).unwrap().last_seq < t.events.len() as u64 {
        sync(hub, t, 5);
    }
}

/// The naive recomputation: a fold over the events, with its own rules (not pos_reports').
#[derive(Debug, Default, PartialEq, Eq)]
struct Naive {
    sales: i64,
    gross: i64,
    net: i64,
    discounts: i64,
    refunds: (i64, i64),
    post_voids: (i64, i64),
    line_voids: (i64, i64),
    no_sales: i64,
    closes: i64,
    over_short: i64,
    /// hour start ms → (transactions, net)
    hours: BTreeMap<u64, (i64, i64)>,
    tenders: BTreeMap<String, (i64, i64)>,
    taxes: BTreeMap<(String, u32), (i64, i64, i64)>,
    /// sku → (qty, paid − refunded)
    products: BTreeMap<String, (i64, i64)>,
    /// cashier → (sales, line voids + post-voids, refunds)
    cashiers: BTreeMap<UserId, (i64, i64, i64)>,
    /// net without tax of costed products, their cost, net without tax of uncosted ones
    margin: (i64, i64, i64),
}

fn naive(events: &[Event], period: Period) -> Naive {
    let mut sales: BTreeMap<(DeviceId, u64), CompletedSale> = BTreeMap::new();
    for e in events {
        if e.module == SALE && e.kind == SaleCompleted::KIND {
            let p: SaleCompleted = serde_json::from_slice(&e.payload).unwrap();
            sales.insert((e.origin, p.receipt), p.sale);
        }
    }
    let costs: BTreeMap<String, i64> = products()
        .into_iter()
        .filter(|p| p.sku != "mystery")
        .map(|p| (p.sku, p.cost.0))
        .collect();
    let (first_hour, end_hour) = period.hours();
    let mut n = Naive::default();
    // sku → (net ex tax, qty kept)
    let mut by_sku: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for e in events {
        let hour = (e.hlc.wall_ms() / HOUR_MS) as i64;
        if hour < first_hour || hour >= end_hour {
            continue;
        }
        let hour_ms = hour as u64 * HOUR_MS;
        let cashier = e.actor.unwrap_or(UserId::from_bytes([0; 16]));
        match (e.module.as_str(), e.kind.as_str()) {
            (SALE, SaleCompleted::KIND) => {
                let p: SaleCompleted = serde_json::from_slice(&e.payload).unwrap();
                let s = &p.sale;
                n.sales += 1;
                n.gross += s.totals.due.0;
                n.net += s.totals.due.0;
                n.discounts += s.totals.discounts.0;
                let h = n.hours.entry(hour_ms).or_default();
                h.0 += 1;
                h.1 += s.totals.due.0;
                n.cashiers.entry(cashier).or_default().0 += 1;
                for pay in &s.payments {
                    let t = n.tenders.entry(pay.tender.key().to_owned()).or_default();
                    t.0 += 1;
                    t.1 += pay.amount.0;
                }
                n.tenders.entry("cash".into()).or_default().1 -= s.change.0;
                for t in &s.totals.taxes {
                    let x = n.taxes.entry((t.class.clone(), t.rate_bp)).or_default();
                    x.0 += t.net.0;
                    x.1 += t.tax.0;
                    x.2 += t.gross.0;
                }
                for l in &s.lines {
                    let x = n.products.entry(l.sku.clone()).or_default();
                    x.0 += l.qty.0;
                    x.1 += l.paid.0;
                    let m = by_sku.entry(l.sku.clone()).or_default();
                    m.0 += l.paid.0 - l.tax.0;
                    m.1 += l.qty.0;
                }
            }
            (SALE, PostVoided::KIND) => {
                let p: PostVoided = serde_json::from_slice(&e.payload).unwrap();
                let s = &sales[&(e.origin, p.receipt)];
                n.post_voids.0 += 1;
                n.post_voids.1 += s.totals.due.0;
                n.net -= s.totals.due.0;
                n.discounts -= s.totals.discounts.0;
                let h = n.hours.entry(hour_ms).or_default();
                h.0 -= 1;
                h.1 -= s.totals.due.0;
                n.cashiers.entry(cashier).or_default().1 += 1;
                for pay in &s.payments {
                    n.tenders.entry(pay.tender.key().to_owned()).or_default().1 -= pay.amount.0;
                }
                n.tenders.entry("cash".into()).or_default().1 += s.change.0;
                for t in &s.totals.taxes {
                    let x = n.taxes.entry((t.class.clone(), t.rate_bp)).or_default();
                    x.0 -= t.net.0;
                    x.1 -= t.tax.0;
                    x.2 -= t.gross.0;
                }
                for l in &s.lines {
                    let x = n.products.entry(l.sku.clone()).or_default();
                    x.0 -= l.qty.0;
                    x.1 -= l.paid.0;
                    let m = by_sku.entry(l.sku.clone()).or_default();
                    m.0 -= l.paid.0 - l.tax.0;
                    m.1 -= l.qty.0;
                }
            }
            (SALE, Refunded::KIND) => {
                let p: Refunded = serde_json::from_slice(&e.payload).unwrap();
                n.refunds.0 += 1;
                n.refunds.1 += p.plan.total.0;
                n.net -= p.plan.total.0;
                n.hours.entry(hour_ms).or_default().1 -= p.plan.total.0;
                n.cashiers.entry(cashier).or_default().2 += 1;
                n.tenders.entry(p.tender.key().to_owned()).or_default().1 -= p.plan.total.0;
                for t in &p.plan.taxes {
                    let x = n.taxes.entry((t.class.clone(), t.rate_bp)).or_default();
                    x.0 -= t.net.0;
                    x.1 -= t.tax.0;
                    x.2 -= t.gross.0;
                }
                for l in &p.plan.lines {
                    n.products.entry(l.sku.clone()).or_default().1 -= l.amount.0;
                    let m = by_sku.entry(l.sku.clone()).or_default();
                    m.0 -= l.amount.0 - l.tax.0;
                    m.1 -= l.qty.0;
                }
            }
            (SALE, LineVoided::KIND) => {
                let p: LineVoided = serde_json::from_slice(&e.payload).unwrap();
                n.line_voids.0 += 1;
                n.line_voids.1 += p.amount.0;
                n.cashiers.entry(cashier).or_default().1 += 1;
            }
            (SHIFT, NoSale::KIND) => n.no_sales += 1,
            (SHIFT, ShiftClosed::KIND) => {
                let p: ShiftClosed = serde_json::from_slice(&e.payload).unwrap();
                n.closes += 1;
                n.over_short += p.over_short.0;
            }
            _ => {}
        }
    }
    for (sku, (net, qty)) in by_sku {
        match costs.get(&sku) {
            Some(cost) => {
                n.margin.0 += net;
                let v = cost * qty;
                n.margin.1 += if v >= 0 {
                    (v + 500) / 1000
                } else {
                    -((-v + 500) / 1000)
                };
            }
            None => n.margin.2 += net,
        }
    }
    n
}

/// The same figures, through the store's query API.
fn from_store(hub: &Store, period: Period) -> Naive {
    let k = hub.kpis(period).unwrap();
    let mut n = Naive {
        sales: k.sales_count,
        gross: k.gross_sales.0,
        net: k.net_sales.0,
        discounts: k.discounts.0,
        refunds: (k.refunds, k.refund_value.0),
        post_voids: (k.post_voids, k.post_void_value.0),
        line_voids: (k.line_voids, k.line_void_value.0),
        no_sales: k.no_sales,
        closes: k.closes,
        over_short: k.cash_over_short.0,
        margin: (k.net_ex_tax.0, k.cost_of_goods.0, k.uncosted_net.0),
        ..Naive::default()
    };
    for h in hub.sales_by_hour(period).unwrap() {
        n.hours
            .insert(h.hour_start_ms, (h.transactions, h.net_sales.0));
    }
    for t in hub.tender_totals(period).unwrap() {
        n.tenders.insert(t.tender, (t.count, t.amount.0));
    }
    for t in hub.tax_by_rate(period).unwrap() {
        n.taxes
            .insert((t.class, t.rate_bp), (t.net.0, t.tax.0, t.gross.0));
    }
    for p in hub.product_performance(period).unwrap() {
        n.products.insert(p.sku, (p.qty_milli, p.net_sales.0));
    }
    for c in hub.cashier_performance(period).unwrap() {
        n.cashiers.insert(
            c.cashier.unwrap(),
            (c.sales, c.line_voids + c.post_voids, c.refunds),
        );
    }
    n
}

/// Drop the zero entries both sides may or may not list (a sale and its void in one hour).
fn normalised(mut n: Naive) -> Naive {
    n.hours.retain(|_, v| *v != (0, 0));
    n.tenders.retain(|_, v| *v != (0, 0));
    n.taxes.retain(|_, v| *v != (0, 0, 0));
    n.products.retain(|_, v| *v != (0, 0));
    n.cashiers.retain(|_, v| *v != (0, 0, 0));
    n
}

fn analytics_tables(store: &Store) -> String {
    support::dump_tables(
        store,
        &[
            "analytics_hourly",
            "analytics_products",
            "analytics_tenders",
            "analytics_taxes",
        ],
        "1, 2, 3",
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn every_aggregate_equals_a_naive_recomputation_from_the_events(
        ops in proptest::collection::vec(op(), 1..60),
        cut in 0u64..72,
        span in 1u64..48,
    ) {
        let (hd, hd2) = (tempdir(), tempdir());
        let (mut a, mut b) = (Till::new(1), Till::new(2));
        let mut hub1 = hub(hd.path(), &[&a, &b]);
        for op in &ops {
            let till = if op.till() { &mut b } else { &mut a };
            till.now_ms += op.minutes() * 60_000;
            till.act(op);
            if let Op::Sync((which, n)) = op {
                let t = if *which { &b } else { &a };
                sync(&mut hub1, t, u64::from(*n));
            }
        }
        sync_all(&mut hub1, &a);
        sync_all(&mut hub1, &b);
        // A second hub receives everything in another order: all of B, then all of A.
        let mut hub2 = hub(hd2.path(), &[&a, &b]);
        sync_all(&mut hub2, &b);
        sync_all(&mut hub2, &a);
        prop_assert!(hub1.not_applied().unwrap().iter().all(|n| n.module == "device"));

        let events = hub1.events(&LogFilter::default()).unwrap();
        let from = START_MS + cut * HOUR_MS;
        for period in [
            Period::all(),
            Period::new(from, from + span * HOUR_MS).unwrap(),
            Period::new(from + 1, from + 1).unwrap(),
        ] {
            let expected = normalised(naive(&events, period));
            prop_assert_eq!(normalised(from_store(&hub1, period)), expected);
        }
        // An empty period gives zeros, not errors.
        let empty = Period::new(1, 2).unwrap();
        prop_assert_eq!(hub1.kpis(empty).unwrap(), pos_reports::Kpis::default());
        prop_assert!(hub1.dashboard(empty, 5).unwrap().top_products.is_empty());

        // Arrival order does not matter; a rebuild gives the same tables.
        let live = analytics_tables(&hub1);
        prop_assert_eq!(analytics_tables(&hub2), live.clone());
        let dump = hub1.projection_dump().unwrap();
        hub1.rebuild().unwrap();
        prop_assert_eq!(analytics_tables(&hub1), live);
        prop_assert_eq!(hub1.projection_dump().unwrap(), dump);
        prop_assert!(hub1.verify().is_ok());
    }
}

/// The per-day, heatmap, top/bottom, category and stock views agree with the totals.
#[test]
fn the_views_add_up_to_the_totals() {
    let hd = tempdir();
    let (mut a, b) = (Till::new(1), Till::new(2));
    let mut hub = hub(hd.path(), &[&a, &b]);
    for i in 0..40u8 {
        a.now_ms += 47 * 60_000;
        a.act(&Op::Sale {
            b: false,
            cashier: usize::from(i % 2),
            lines: vec![(i % 5, 1 + i % 3), (1, 1)],
            card: i % 3 == 0,
            discount_bp: 0,
            minutes: 0,
        });
    }
    sync_all(&mut hub, &a);
    let all = Period::all();
    let k = hub.kpis(all).unwrap();
    assert_eq!(k.sales_count, 40);
    let days = hub.sales_by_day(all, 60).unwrap();
    assert!(days.len() >= 2);
    assert_eq!(
        days.iter().map(|d| d.kpis.net_sales.0).sum::<i64>(),
        k.net_sales.0
    );
    let heat = hub.heatmap(all, 60).unwrap();
    assert_eq!(heat.net_sales.iter().flatten().sum::<i64>(), k.net_sales.0);
    let top = hub.top_products(all, 2).unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top[0].sku, hub.product_performance(all).unwrap()[0].sku);
    assert!(top
        .iter()
        .all(|p| p.category.is_some() == (p.sku != "mystery")));
    let cats = hub.category_sales(all).unwrap();
    assert_eq!(
        cats.iter().map(|c| c.net_sales.0).sum::<i64>(),
        k.net_sales.0
    );
    assert!(
        cats.iter().any(|c| c.category.is_none()),
        "mystery is uncosted"
    );
    assert!(k.uncosted_net.0 > 0 && k.gross_margin.0 > 0);
    // Bottom products are among the active catalogue, the unsold first.
    let bottom = hub.bottom_products(all, 10).unwrap();
    assert_eq!(bottom.len(), 4);
    let terminals = hub.terminal_performance(all).unwrap();
    assert_eq!(terminals.len(), 1);
    assert_eq!(terminals[0].name, "till-1");
    let dash = hub
        .dashboard(Period::local_day(a.now_ms, 0).unwrap(), 5)
        .unwrap();
    assert_eq!(dash.hours.len(), 24);
    // Stock cover: nothing received, so every product is at or below zero: all alert.
    let cover = hub.stock_cover(a.now_ms, 14).unwrap();
    assert_eq!(cover.len(), 4);
    let alerts = hub
        .alerts(
            &pos_reports::AlertRules::default(),
            a.now_ms,
            Period::local_day(a.now_ms, 0).unwrap(),
            None,
        )
        .unwrap();
    assert!(
        alerts
            .iter()
            .filter(|x| x.kind == pos_reports::AlertKind::LowStock)
            .count()
            == 4,
        "{alerts:?}"
    );
}

/// A database from before the analytics tables (schema 6) gets them filled from its log on
/// the first open by this build.
#[test]
fn an_older_database_is_replayed_into_the_analytics_tables() {
    let dir = tempdir();
    let mut t = Store::init(dir.path(), DeviceRole::Terminal, "main", "till", false)
        .unwrap()
        .0;
    let mut till = Till::new(9);
    for i in 0..5u8 {
        till.act(&Op::Sale {
            b: false,
            cashier: usize::from(i % 2),
            lines: vec![(i, 2)],
            card: i % 2 == 0,
            discount_bp: 0,
            minutes: 0,
        });
    }
    // The same facts as this terminal's own records (stamped now by the store).
    let drafts: Vec<EventDraft> = till
        .events
        .iter()
        .map(|e| {
            let mut d = EventDraft::json(&e.module, &e.kind, &());
            d.payload = e.payload.clone();
            d
        })
        .collect();
    t.append(drafts).unwrap();
    let before = t.kpis(Period::all()).unwrap();
    assert_eq!(before.sales_count, 5);
    let tables = analytics_tables(&t);
    drop(t);

    let conn = Connection::open(dir.path().join(pos_store::DB_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE analytics_hourly; DROP TABLE analytics_products; DROP TABLE analytics_tenders;
         DROP TABLE analytics_taxes; DROP TABLE analytics_backups; PRAGMA user_version = 6;",
    )
    .unwrap();
    drop(conn);

    let t = Store::open(dir.path(), pos_store::StoreOptions::default()).unwrap();
    assert_eq!(t.kpis(Period::all()).unwrap(), before);
    assert_eq!(analytics_tables(&t), tables);
    assert!(t.verify().is_ok());
}

/// Backup outcomes and drawers left open are counted from the log and raise alerts.
#[test]
fn backups_and_drawers_left_open_raise_alerts() {
    let dir = tempdir();
    let mut hub = hub(dir.path(), &[]);
    assert_eq!(hub.backup_state().unwrap(), None);
    let made = EventDraft::json("backup", "made", &serde_json::json!({ "file": "a" }));
    let failed = EventDraft::json("backup", "failed", &serde_json::json!({ "error": "disk" }));
    let drawer = EventDraft::json(
        "security",
        "drawer_left_open",
        &serde_json::json!({ "open_ms": 90_000 }),
    );
    hub.append(vec![made]).unwrap();
    hub.append(vec![failed, drawer]).unwrap();
    let state = hub.backup_state().unwrap().unwrap();
    assert!(state.last_failure_ms.unwrap() >= state.last_success_ms.unwrap());
    assert_eq!(state.failures_in_a_row, 1);
    let now = pos_store::now_ms();
    let today = Period::local_day(now, 0).unwrap();
    let rules = pos_reports::AlertRules::default();
    let kinds: Vec<pos_reports::AlertKind> = hub
        .alerts(&rules, now, today, Some(state))
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert!(
        kinds.contains(&pos_reports::AlertKind::BackupFailed),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&pos_reports::AlertKind::DrawerLeftOpen),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&pos_reports::AlertKind::BackupOverdue),
        "{kinds:?}"
    );
    assert_eq!(hub.kpis(today).unwrap().drawers_left_open, 1);
    assert!(hub.disk_usage().unwrap().total_bytes > 0);
    // A later success clears the failure.
    hub.append(vec![EventDraft::json(
        "backup",
        "made",
        &serde_json::json!({}),
    )])
    .unwrap();
    let state = hub.backup_state().unwrap().unwrap();
    assert_eq!(state.failures_in_a_row, 0);
    assert!(state.last_success_ms >= state.last_failure_ms);
    let live = hub.projection_dump().unwrap();
    hub.rebuild().unwrap();
    assert_eq!(hub.projection_dump().unwrap(), live);
}
