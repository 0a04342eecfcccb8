//! Shared fixtures of the engine, UI, system tests and benchmarks: a terminal's store in tmpfs,
//! its staff created through the store's account flows (admin with TOTP, a manager, a
//! supervisor, two cashiers), a small catalogue saved through the engine by the manager, stock
//! received, and a cashier logged in; [`sim_till`] puts it behind a simulated network printer.

// Fixtures: a failed setup is a failed test, and says where.
#![allow(clippy::unwrap_used)]

pub mod sshd;

use std::path::Path;

use pos_audit::Event;
use pos_auth::{totp_code, Principal, TotpSecret};
use pos_core::sale::barcode::check_digit;
use pos_core::sale::{
    Discount, LineNo, Money, Product, Quantity, RefundRequest, TaxRate, Tender, Unit,
};
use pos_core::{DeviceRole, ProductId, UserId};
use pos_engine::{Credentials, Engine, EngineConfig};
use pos_store::{now_ms, AccountPolicy, LogFilter, Store};

/// Name and secret of a member of staff.
pub type Staff = (&'static str, &'static str);

pub const ADMIN: Staff = ("admin", "Tangerine-Velvet-Harbor-93");
pub const MANAGER: Staff = ("maria", "Saffron-Lantern-Quiver-71");
pub const SUPERVISOR: Staff = ("sam", "73915284");
pub const CASHIER: Staff = ("alice", "48151623");
pub const CASHIER2: Staff = ("bob", "26048173");

/// The float every shift of [`till`] opens with.
pub const FLOAT: Money = Money(10_000);
/// Units of each product received before trading.
pub const STOCK_UNITS: i64 = 100;

pub const COLA_EAN: &str = "4006381333931";
pub const WATER_EAN8: &str = "96385074";
pub const CAKE_PLU: &str = "00042";
pub const APPLES_PLU: &str = "00043";
pub const CHEESE_PLU: &str = "00044";
pub const BANANA_PLU: &str = "4011";

pub fn c(staff: Staff) -> Credentials<'static> {
    Credentials::new(staff.0, staff.1)
}

/// Timed locks long enough that none expires while a test runs.
pub fn policy() -> AccountPolicy {
    let mut p = AccountPolicy::default();
    p.login.lockout.base_backoff_ms = 3_600_000;
    p.login.lockout.max_backoff_ms = 3_600_000;
    p
}

pub fn tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

/// `body` with its GS1 check digit appended.
pub fn with_check(body: &str) -> String {
    format!("{body}{}", check_digit(body).unwrap())
}

/// A 13-digit scale label: 2-digit `prefix`, 5-digit `item`, 5-digit `value`, check digit.
pub fn label(prefix: &str, item: &str, value: u32) -> String {
    with_check(&format!("{prefix}{item}{value:05}"))
}

/// A valid EAN-13 that no product carries.
pub fn unknown_ean() -> String {
    with_check("501234567890")
}

/// The EAN-13 of the disabled product.
pub fn old_ean() -> String {
    with_check("400000000001")
}

#[derive(Debug, Clone, Copy)]
pub struct Staffed {
    pub admin: UserId,
    pub manager: UserId,
    pub supervisor: UserId,
    pub cashier: UserId,
    pub cashier2: UserId,
}

/// A terminal ready to trade. Fields drop in order: the engine (and its store) before the dir.
#[derive(Debug)]
pub struct Till {
    pub engine: Engine,
    pub users: Staffed,
    pub admin_totp: TotpSecret,
    pub dir: tempfile::TempDir,
}

fn product(sku: &str, name: &str, unit: Unit, price: i64, tax: &str, codes: &[&str]) -> Product {
    Product {
        id: ProductId::new_v7(),
        sku: sku.into(),
        name: name.into(),
        unit,
        price: Money(price),
        cost: Money(price / 2),
        tax_class: tax.into(),
        category: if tax == "std" { "drinks" } else { "food" }.into(),
        // The UI's quick keys: every product but the keyed-by-weight cheese has one.
        quick_key: QUICK_KEYS
            .iter()
            .position(|k| *k == sku)
            .and_then(|i| u16::try_from(i + 1).ok()),
        active: true,
        barcodes: codes.iter().map(|b| (*b).to_owned()).collect(),
    }
}

/// The products on the sale screen's quick keys, in key order.
pub const QUICK_KEYS: [&str; 5] = ["cola", "water", "cake", "apples", "banana"];

/// The catalogue: (sku, unit, price) — cola 1.99, water 0.89, cake (price labels), apples 2.99/kg
/// (weight labels), banana 0.25 (PLU 4011), cheese 18.90/kg (keyed), and the disabled `old`.
pub fn catalogue() -> Vec<Product> {
    let old_ean = old_ean();
    let mut old = product("old", "Old biscuits", Unit::Each, 150, "food", &[&old_ean]);
    old.active = false;
    vec![
        product("cola", "Cola 0.5l", Unit::Each, 199, "std", &[COLA_EAN]),
        product("water", "Water 1l", Unit::Each, 89, "food", &[WATER_EAN8]),
        product("cake", "Cake slice", Unit::Each, 350, "food", &[CAKE_PLU]),
        product("apples", "Apples", Unit::Kg, 299, "food", &[APPLES_PLU]),
        product("banana", "Banana", Unit::Each, 25, "food", &[BANANA_PLU]),
        product("cheese", "Cheese", Unit::Kg, 1890, "food", &[CHEESE_PLU]),
        old,
    ]
}

pub fn unix_s() -> u64 {
    now_ms() / 1000
}

/// A user created by `actor`, whose one-time secret was then changed to `staff.1`.
pub fn add_user(store: &mut Store, actor: &Principal, staff: Staff, role: &str) -> UserId {
    let p = policy();
    let (id, one_time) = store
        .add_user(actor, staff.0, &capitalised(staff.0), &[role.to_owned()])
        .unwrap();
    let totp = store
        .change_secret(staff.0, &one_time, staff.1, None, &p)
        .unwrap();
    assert!(totp.is_none(), "{role} needs no second factor");
    id
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The store with its staff: the bootstrap admin (password + TOTP) creates the manager, who
/// creates the supervisor and the cashiers.
pub fn staffed_store(dir: &Path) -> (Store, Staffed, TotpSecret) {
    let p = policy();
    let mut store = Store::init(dir, DeviceRole::Terminal, "main", "till-1", false)
        .unwrap()
        .0;
    let (admin, one_time) = store.bootstrap_admin(ADMIN.0).unwrap();
    let totp = store
        .change_secret(ADMIN.0, &one_time, ADMIN.1, None, &p)
        .unwrap()
        .expect("an admin enrols TOTP with the first password change");
    let code = totp_code(&totp, unix_s());
    let admin_p = store
        .authenticate(ADMIN.0, ADMIN.1, Some(&code), &p)
        .unwrap();
    let manager = add_user(&mut store, &admin_p, MANAGER, "manager");
    let manager_p = store.authenticate(MANAGER.0, MANAGER.1, None, &p).unwrap();
    let supervisor = add_user(&mut store, &manager_p, SUPERVISOR, "supervisor");
    let cashier = add_user(&mut store, &manager_p, CASHIER, "cashier");
    let cashier2 = add_user(&mut store, &manager_p, CASHIER2, "cashier");
    let users = Staffed {
        admin,
        manager,
        supervisor,
        cashier,
        cashier2,
    };
    (store, users, totp)
}

pub fn config() -> EngineConfig {
    EngineConfig {
        accounts: policy(),
        ..EngineConfig::default()
    }
}

/// Staff, catalogue (saved by the manager through the engine) and stock; the cashier logged in,
/// no shift open.
pub fn till_without_shift() -> Till {
    let dir = tempdir();
    let (store, users, admin_totp) = staffed_store(dir.path());
    let mut engine = Engine::new(store, config());
    engine.login(c(MANAGER)).unwrap();
    engine
        .save_tax_rate(TaxRate {
            class: "std".into(),
            name: "VAT".into(),
            rate_bp: 2000,
        })
        .unwrap();
    engine
        .save_tax_rate(TaxRate {
            class: "food".into(),
            name: "VAT reduced".into(),
            rate_bp: 700,
        })
        .unwrap();
    for p in catalogue() {
        let (sku, active) = (p.sku.clone(), p.active);
        engine.save_product(p).unwrap();
        if active {
            engine
                .receive_stock(&sku, Quantity::units(STOCK_UNITS), "DN-0001", None)
                .unwrap();
        }
    }
    engine.logout().unwrap();
    engine.login(c(CASHIER)).unwrap();
    Till {
        engine,
        users,
        admin_totp,
        dir,
    }
}

/// [`till_without_shift`] with a shift opened by the cashier with [`FLOAT`].
pub fn till() -> Till {
    let mut t = till_without_shift();
    t.engine.open_shift(FLOAT).unwrap();
    t
}

impl Till {
    /// The admin's principal, logged in with the TOTP code of the *next* step (the current one
    /// was used at setup and would count as a replay).
    pub fn admin(&mut self) -> Principal {
        let code = totp_code(&self.admin_totp, unix_s() / 30 * 30 + 30);
        self.engine
            .store_mut()
            .authenticate(ADMIN.0, ADMIN.1, Some(&code), &policy())
            .unwrap()
    }

    pub fn manager(&mut self) -> Principal {
        self.engine
            .store_mut()
            .authenticate(MANAGER.0, MANAGER.1, None, &policy())
            .unwrap()
    }

    /// Log the current user out (parking any ticket) and `staff` in.
    pub fn switch_to(&mut self, staff: Staff) {
        self.engine.logout().unwrap();
        self.engine.login(c(staff)).unwrap();
    }

    /// A trading day on the open shift, the reconciliation tests' reference day: cash with
    /// change, cards, a discount, line voids, refunds with and without a receipt, a post-void,
    /// a no-sale, paid in and out, a second cashier; then the shift is closed 1.30 short.
    pub fn trade_a_day(&mut self) -> pos_engine::ZReport {
        let mut receipts = Vec::new();
        for i in 0..12i64 {
            let e = &mut self.engine;
            e.scan(COLA_EAN).unwrap();
            e.add("water", Quantity::units(1 + i % 3)).unwrap();
            if i % 4 == 1 {
                e.add("banana", Quantity::units(4)).unwrap();
                e.void_line(LineNo(3), c(SUPERVISOR), "scan-error").unwrap();
            }
            if i % 5 == 2 {
                e.discount(None, Discount::Percent(500), None).unwrap();
            }
            let number = if i % 3 == 0 {
                pay_and_complete(e, card(), 0)
            } else {
                pay_and_complete(e, Tender::Cash, 37 * i)
            };
            receipts.push(number);
            if i == 6 {
                self.switch_to(CASHIER2);
            }
            let e = &mut self.engine;
            if i == 8 {
                let line = RefundRequest {
                    line: LineNo(2),
                    qty: Quantity::units(1),
                };
                e.refund(
                    receipts[1],
                    &[line],
                    Tender::Cash,
                    c(SUPERVISOR),
                    "defective",
                )
                .unwrap();
                e.refund(receipts[3], &[line], card(), c(SUPERVISOR), "defective")
                    .unwrap();
            }
            if i == 9 {
                e.post_void(receipts[4], c(SUPERVISOR), "cashier-error")
                    .unwrap();
                e.refund_without_receipt(
                    "cola",
                    Quantity::units(1),
                    Money(199),
                    Tender::Cash,
                    c(SUPERVISOR),
                    "wrong-item",
                )
                .unwrap();
                e.no_sale(Some(c(SUPERVISOR)), "give-change").unwrap();
                e.cash_move(true, Money(2_000), Some(c(SUPERVISOR)), "float-top-up")
                    .unwrap();
                e.cash_move(false, Money(500), Some(c(SUPERVISOR)), "petty-cash")
                    .unwrap();
            }
        }
        let e = &mut self.engine;
        let expected = e.x_report().unwrap().drawer.expected().unwrap();
        e.close_shift(Money(expected.0 - 130), Some(c(SUPERVISOR)))
            .unwrap()
    }
}

/// A card payment keyed from a standalone terminal's slip.
pub fn card() -> Tender {
    Tender::Card {
        approval_code: "A7".into(),
        last4: "1234".into(),
    }
}

/// Pay what is due in `tender` plus `extra` cents (change for cash) and complete: the receipt
/// number.
pub fn pay_and_complete(e: &mut Engine, tender: Tender, extra: i64) -> u64 {
    let due = e.balance().unwrap().remaining;
    e.pay(tender, Money(due.0 + extra)).unwrap();
    e.complete().unwrap().number
}

/// Recorded events of `kind` (`module`, `kind` or `module.kind`), oldest first.
pub fn events(store: &Store, kind: &str) -> Vec<Event> {
    store
        .events(&LogFilter {
            kind: Some(kind.into()),
            ..LogFilter::default()
        })
        .unwrap()
}

/// The payload of an event, decoded.
pub fn payload<T: serde::de::DeserializeOwned>(event: &Event) -> T {
    serde_json::from_slice(&event.payload).unwrap()
}

/// How many business events (sale, shift, stock, catalogue) the log holds: what a refused
/// command must leave unchanged (security events record the refusals themselves).
pub fn business_events(store: &Store) -> usize {
    ["sale", "shift", "stock", "catalogue"]
        .iter()
        .map(|m| events(store, m).len())
        .sum()
}

/// On-hand quantity of `sku` in thousandths.
pub fn stock(engine: &Engine, sku: &str) -> i64 {
    engine.stock_level(sku).unwrap().0
}

/// [`till`] with nobody logged in: what the terminal UI starts from.
pub fn till_logged_out() -> Till {
    let mut t = till();
    t.engine.logout().unwrap();
    t
}

/// The receipt layout of the simulated 80 mm printer (CP858, cut, no logo).
pub fn sim_layout() -> pos_drivers::escpos::Layout {
    use pos_drivers::escpos::{CodePage, Layout, PaperWidth};
    Layout {
        width: PaperWidth::Mm80,
        code_page: CodePage::Cp858,
        kick_drawer: None,
        cut: true,
        logo: None,
        barcode: false,
    }
}

/// `engine` behind the simulated network printer `sim`, with a drawer on its port that
/// counts as left open after a minute.
pub fn sim_till(engine: Engine, sim: &pos_device_sim::SimPrinter) -> pos_engine::Till {
    use pos_drivers::escpos::{DrawerKick, DrawerPin};
    use pos_drivers::{EscPosPrinter, TcpTimeouts, TcpTransport};
    let printer = EscPosPrinter::new(TcpTransport::new(sim.addr(), TcpTimeouts::default()));
    let kick = DrawerKick {
        pin: DrawerPin::Pin2,
        pulse_ms: 100,
    };
    pos_engine::Till::new(engine, Box::new(printer), sim_layout(), Some(kick), 60_000)
}
