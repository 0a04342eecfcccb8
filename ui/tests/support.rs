//! A terminal's store set up the way the engine's own tests do (crates/engine/tests/support):
//! staff created through the account flows, a small catalogue saved by the manager, stock
//! received, a shift opened by the cashier, then nobody logged in: the UI logs in.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use pos_auth::totp_code;
use pos_core::sale::{Money, Product, Quantity, TaxRate, Unit};
use pos_core::{DeviceRole, ProductId};
use pos_engine::{Credentials, Engine, EngineConfig};
use pos_store::{now_ms, AccountPolicy, Store};

pub type Staff = (&'static str, &'static str);

pub const ADMIN: Staff = ("admin", "Tangerine-Velvet-Harbor-93");
pub const MANAGER: Staff = ("maria", "Saffron-Lantern-Quiver-71");
pub const SUPERVISOR: Staff = ("sam", "73915284");
pub const CASHIER: Staff = ("alice", "48151623");

pub const FLOAT: Money = Money(10_000);
pub const COLA_EAN: &str = "4006381333931";
pub const WATER_EAN8: &str = "96385074";
pub const CAKE_PLU: &str = "00042";
pub const BANANA_PLU: &str = "4011";

pub fn c(staff: Staff) -> Credentials<'static> {
    Credentials::new(staff.0, staff.1)
}

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

fn product(sku: &str, name: &str, price: i64, tax: &str, codes: &[&str]) -> Product {
    Product {
        id: ProductId::new_v7(),
        sku: sku.into(),
        name: name.into(),
        unit: Unit::Each,
        price: Money(price),
        cost: Money(price / 2),
        tax_class: tax.into(),
        category: if tax == "std" { "drinks" } else { "food" }.into(),
        quick_key: None,
        active: true,
        barcodes: codes.iter().map(|b| (*b).to_owned()).collect(),
    }
}

pub fn catalogue() -> Vec<Product> {
    vec![
        product("cola", "Cola 0.5l", 199, "std", &[COLA_EAN]),
        product("water", "Water 1l", 89, "food", &[WATER_EAN8]),
        product("cake", "Cake slice", 350, "food", &[CAKE_PLU]),
        product("banana", "Banana", 25, "food", &[BANANA_PLU]),
    ]
}

fn add_user(store: &mut Store, actor: &pos_auth::Principal, staff: Staff, role: &str) {
    let (_, one_time) = store
        .add_user(actor, staff.0, staff.0, &[role.to_owned()])
        .unwrap();
    store
        .change_secret(staff.0, &one_time, staff.1, None, &policy())
        .unwrap();
}

fn staffed_store(dir: &Path) -> Store {
    let p = policy();
    let mut store = Store::init(dir, DeviceRole::Terminal, "main", "till-1", false)
        .unwrap()
        .0;
    let (_, one_time) = store.bootstrap_admin(ADMIN.0).unwrap();
    let totp = store
        .change_secret(ADMIN.0, &one_time, ADMIN.1, None, &p)
        .unwrap()
        .expect("an admin enrols TOTP with the first password change");
    let code = totp_code(&totp, now_ms() / 1000);
    let admin = store
        .authenticate(ADMIN.0, ADMIN.1, Some(&code), &p)
        .unwrap();
    add_user(&mut store, &admin, MANAGER, "manager");
    let manager = store.authenticate(MANAGER.0, MANAGER.1, None, &p).unwrap();
    add_user(&mut store, &manager, SUPERVISOR, "supervisor");
    add_user(&mut store, &manager, CASHIER, "cashier");
    store
}

/// The engine with staff, catalogue, stock and an open shift; nobody logged in.
pub fn engine(dir: &Path) -> Engine {
    let store = staffed_store(dir);
    let cfg = EngineConfig {
        accounts: policy(),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(store, cfg);
    engine.login(c(MANAGER)).unwrap();
    for (class, name, bp) in [("std", "VAT", 2000), ("food", "VAT reduced", 700)] {
        engine
            .save_tax_rate(TaxRate {
                class: class.into(),
                name: name.into(),
                rate_bp: bp,
            })
            .unwrap();
    }
    for p in catalogue() {
        let sku = p.sku.clone();
        engine.save_product(p).unwrap();
        engine
            .receive_stock(&sku, Quantity::units(100), "DN-0001", None)
            .unwrap();
    }
    engine.logout().unwrap();
    engine.login(c(CASHIER)).unwrap();
    engine.open_shift(FLOAT).unwrap();
    engine.logout().unwrap();
    engine
}
