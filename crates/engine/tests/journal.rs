//! The open ticket survives a crash: every change is journaled durably, and the next login
//! brings it back (to its own cashier) or parks it under that cashier's name (anyone else).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use pos_core::sale::{Money, Quantity, Tender};
use pos_engine::Engine;
use pos_store::{Store, StoreOptions};
use support::*;

const JOURNAL: &str = "open-ticket.json";

/// The engine goes away without logging out (a crash or a power cut); the data dir stays.
fn crash_and_restart(t: Till) -> (Engine, tempfile::TempDir) {
    let Till { engine, dir, .. } = t;
    drop(engine);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    (Engine::new(store, config()), dir)
}

#[test]
fn the_cashier_gets_her_open_ticket_back_after_a_crash() {
    let mut t = till();
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.add("cheese", Quantity(350)).unwrap();
    let water = t.engine.scan(WATER_EAN8).unwrap();
    t.engine.set_quantity(water, Quantity::units(3)).unwrap();
    t.engine.pay(Tender::Cash, Money(100)).unwrap();
    let before = t.engine.ticket().unwrap().clone();
    assert!(t.dir.path().join(JOURNAL).exists());

    let (mut e, dir) = crash_and_restart(t);
    assert!(e.ticket().is_none(), "nobody is logged in yet");
    e.login(c(CASHIER)).unwrap();
    assert_eq!(e.ticket(), Some(&before), "lines and the payment are back");
    assert!(e.parked().unwrap().is_empty());

    // Paying it off completes it once, and the journal is gone.
    let due = e.balance().unwrap().remaining;
    e.pay(Tender::Cash, due).unwrap();
    e.complete().unwrap();
    assert!(!dir.path().join(JOURNAL).exists());
    assert_eq!(events(e.store(), "sale.completed").len(), 1);
}

#[test]
fn someone_else_finds_it_parked_under_the_cashiers_name() {
    let mut t = till();
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.scan(CAKE_PLU).unwrap();
    let lines = t.engine.ticket().unwrap().lines().to_vec();
    let alice = t.users.cashier;

    let (mut e, dir) = crash_and_restart(t);
    e.login(c(CASHIER2)).unwrap();
    assert!(e.ticket().is_none(), "never handed to another cashier");
    let parked = e.parked().unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].lines(), &lines[..]);
    let parked_events = events(e.store(), "sale.ticket_parked");
    assert_eq!(parked_events.last().unwrap().actor, Some(alice));
    assert!(!dir.path().join(JOURNAL).exists());

    // Logging in again does not park it twice.
    e.logout().unwrap();
    e.login(c(CASHIER)).unwrap();
    assert_eq!(e.parked().unwrap().len(), 1);
    assert!(e.ticket().is_none());
}

#[test]
fn finished_tickets_leave_no_journal_and_a_garbled_one_is_set_aside() {
    let mut t = till();
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.pay(Tender::Cash, Money(500)).unwrap();
    t.engine.complete().unwrap();
    assert!(!t.dir.path().join(JOURNAL).exists(), "paid");
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.park().unwrap();
    assert!(!t.dir.path().join(JOURNAL).exists(), "parked");

    t.engine.scan(COLA_EAN).unwrap();
    let path = t.dir.path().join(JOURNAL);
    std::fs::write(&path, b"{\"cashier\": garbage").unwrap();
    let (mut e, dir) = crash_and_restart(t);
    e.login(c(CASHIER)).unwrap();
    assert!(e.ticket().is_none());
    assert!(dir.path().join("open-ticket.json.unreadable").exists());
    // Selling goes on.
    e.scan(WATER_EAN8).unwrap();
    assert!(dir.path().join(JOURNAL).exists());
}
