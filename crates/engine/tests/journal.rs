//! The open ticket survives a crash: every change is journaled durably, and the next login
//! brings it back (to its own cashier) or parks it under that cashier's name (anyone else).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use pos_core::sale::{Money, Quantity, Tender};
use pos_engine::Engine;
use pos_store::{Store, StoreOptions};
use support::*;

/// Whether the journal holds a ticket: a slot file mentions a ticket id.
fn journaled(dir: &std::path::Path) -> bool {
    ["open-ticket.a", "open-ticket.b"].iter().any(|slot| {
        let bytes = std::fs::read(dir.join(slot)).unwrap_or_default();
        latest_body(&bytes).is_some_and(|b| !b.is_empty())
    }) && newest_is_ticket(dir)
}

/// The body of a slot's record (after the 48-byte header), if whole.
fn latest_body(bytes: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(bytes.get(12..16)?.try_into().ok()?) as usize;
    bytes.get(48..48 + len)
}

fn seq_of(bytes: &[u8]) -> u64 {
    bytes
        .get(4..12)
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()))
}

fn newest_is_ticket(dir: &std::path::Path) -> bool {
    let slots: Vec<Vec<u8>> = ["open-ticket.a", "open-ticket.b"]
        .iter()
        .map(|s| std::fs::read(dir.join(s)).unwrap_or_default())
        .collect();
    let newest = slots.iter().max_by_key(|b| seq_of(b)).unwrap();
    latest_body(newest).is_some_and(|b| !b.is_empty())
}

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
    assert!(journaled(t.dir.path()));

    let (mut e, dir) = crash_and_restart(t);
    assert!(e.ticket().is_none(), "nobody is logged in yet");
    e.login(c(CASHIER)).unwrap();
    assert_eq!(e.ticket(), Some(&before), "lines and the payment are back");
    assert!(e.parked().unwrap().is_empty());

    // Paying it off completes it once, and the journal is gone.
    let due = e.balance().unwrap().remaining;
    e.pay(Tender::Cash, due).unwrap();
    e.complete().unwrap();
    assert!(!journaled(dir.path()));
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
    assert!(!journaled(dir.path()));

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
    assert!(!journaled(t.dir.path()), "paid");
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.park().unwrap();
    assert!(!journaled(t.dir.path()), "parked");

    // A torn write (power cut mid-write): the newest slot is garbage, the older one whole.
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.scan(WATER_EAN8).unwrap();
    let lines_before_tear = 1;
    let dir_path = t.dir.path().to_owned();
    let (newest, _) = ["open-ticket.a", "open-ticket.b"]
        .iter()
        .map(|s| (s, seq_of(&std::fs::read(dir_path.join(s)).unwrap())))
        .max_by_key(|(_, seq)| *seq)
        .unwrap();
    let mut torn = std::fs::read(dir_path.join(newest)).unwrap();
    let half = torn.len() / 2;
    torn[half] ^= 0xff;
    std::fs::write(dir_path.join(newest), &torn).unwrap();
    let (mut e, dir) = crash_and_restart(t);
    e.login(c(CASHIER)).unwrap();
    assert_eq!(
        e.ticket().map(|t| t.lines().len()),
        Some(lines_before_tear),
        "the ticket as it was one change earlier"
    );
    // Garbage in both slots: no ticket, and selling goes on.
    e.logout().unwrap();
    for slot in ["open-ticket.a", "open-ticket.b"] {
        std::fs::write(dir.path().join(slot), b"garbage").unwrap();
    }
    let store = e.into_store();
    let mut e = Engine::new(store, config());
    e.login(c(CASHIER)).unwrap();
    assert!(e.ticket().is_none());
    e.scan(WATER_EAN8).unwrap();
    assert!(journaled(dir.path()));
}
