//! Sync storage: ingest of verified batches (idempotent, all or nothing, projections of many
//! origins), rebuild == live on a hub, partial copies of the hub's chain on a terminal, holds,
//! enrollment codes, liveness and cursors; and a whole exchange through the real pos-sync state
//! machines.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use pos_audit::{Checkpoint, EventDraft, Problem};
use pos_auth::{BuiltinRole, Principal, Role};
use pos_core::payloads::{DeviceRegistered, SettingChanged, StockMoved};
use pos_core::sale::events::{SaleCompleted, ShiftOpened, SALE, SHIFT};
use pos_core::sale::ticket::{Tender, Ticket};
use pos_core::sale::{CashRounding, Money, PricingMode, Product, Quantity, TaxRate, Unit};
use pos_core::{DeviceId, DeviceRole, Hlc, ProductId, ShiftId, TicketId, UserId};
use pos_store::{
    now_ms, AccountError, EnrollRefusal, EnrollRequest, PeerStatus, Store, StoreError, VerifyError,
    MAX_ENROLL_FAILURES,
};
use pos_sync::testing::SignedChain;
use pos_sync::{
    AppEvent, Config, HubConnection, HubSetup, Now, TerminalConnection, TerminalSetup,
    VerifiedBatch,
};
use proptest::prelude::*;
use rusqlite::Connection;

fn tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn init(dir: &Path, role: DeviceRole, name: &str) -> Store {
    Store::init(dir, role, "main", name, false).unwrap().0
}

fn person(role: BuiltinRole) -> Principal {
    Principal {
        user: UserId::new_v7(),
        roles: vec![Role::builtin(role)],
        active: true,
    }
}

fn registration(device: DeviceId, role: DeviceRole, key: pos_audit::PublicKey) -> DeviceRegistered {
    DeviceRegistered {
        device,
        role,
        branch: "main".into(),
        name: format!("{role}-{}", &device.to_string()[..8]),
        public_key: hex::encode(key.0),
        cert_fingerprint: None,
    }
}

/// Register another device's key in `store` (as enrollment would).
fn trust(store: &mut Store, device: DeviceId, role: DeviceRole, key: pos_audit::PublicKey) {
    store
        .append(vec![EventDraft::json(
            DeviceRegistered::MODULE,
            DeviceRegistered::KIND,
            &registration(device, role, key),
        )])
        .unwrap();
}

fn trust_store(hub: &mut Store, terminal: &Store) {
    trust(
        hub,
        terminal.device_id(),
        DeviceRole::Terminal,
        terminal.device_key().public(),
    );
}

fn stock(item: &str, quantity: i64) -> EventDraft {
    EventDraft::json(
        StockMoved::MODULE,
        StockMoved::KIND,
        &StockMoved {
            item: item.into(),
            quantity,
            cause: None,
            reference: None,
        },
    )
}

fn setting(key: &str, value: i64) -> EventDraft {
    EventDraft::json(
        SettingChanged::MODULE,
        SettingChanged::KIND,
        &SettingChanged {
            key: key.into(),
            before: None,
            after: value.into(),
        },
    )
}

fn open_shift(t: &mut Store) -> ShiftId {
    let shift = ShiftId::new_v7();
    t.append(vec![EventDraft::json(
        SHIFT,
        ShiftOpened::KIND,
        &ShiftOpened {
            shift,
            float: Money(10_000),
        },
    )])
    .unwrap();
    shift
}

/// A cash sale of one `item` (receipt `number`): its stock movement and `sale.completed`.
fn sell(t: &mut Store, shift: ShiftId, number: u64, item: &str, price: i64) {
    let product = Product {
        id: ProductId::new_v7(),
        sku: item.into(),
        name: item.into(),
        unit: Unit::Each,
        price: Money(price),
        cost: Money(price / 2),
        tax_class: "A".into(),
        category: "test".into(),
        quick_key: None,
        active: true,
        barcodes: vec![],
    };
    let rate = TaxRate {
        class: "A".into(),
        name: "VAT".into(),
        rate_bp: 2000,
    };
    let mut ticket = Ticket::new(TicketId::new_v7(), PricingMode::Inclusive, vec![rate]);
    ticket.add_item(&product, Quantity::units(1), None).unwrap();
    let due = ticket.totals().unwrap().due;
    ticket.add_payment(Tender::Cash, due).unwrap();
    let sale = ticket.complete(&CashRounding::default()).unwrap();
    t.append(vec![
        stock(item, -1000),
        EventDraft::json(
            SALE,
            SaleCompleted::KIND,
            &SaleCompleted {
                receipt: number,
                shift,
                sale,
            },
        ),
    ])
    .unwrap();
}

/// Records `first..` (at most `max`) of `t`'s chain as the protocol hands them over.
fn batch(t: &Store, first: u64, max: u32) -> VerifiedBatch {
    let origin = t.device_id();
    let (events, checkpoints) = t.events_for_sync(origin, first, max).unwrap();
    let last = events.last().unwrap();
    let seal = Checkpoint::sign(t.device_key(), origin, last.seq, last.hash, last.hlc);
    VerifiedBatch {
        origin,
        first_seq: first,
        last_seq: last.seq,
        head: last.hash,
        events,
        checkpoints,
        seal,
    }
}

fn chain_batch(c: &SignedChain, first: u64, last: u64) -> VerifiedBatch {
    let events = c.read(first, (last + 1 - first) as u32);
    let tail = events.last().unwrap();
    VerifiedBatch {
        origin: c.origin,
        first_seq: first,
        last_seq: last,
        head: tail.hash,
        seal: Checkpoint::sign(&c.key, c.origin, tail.seq, tail.hash, tail.hlc),
        checkpoints: c.checkpoints_in(first, last),
        events,
    }
}

/// Push the rest of `t`'s chain into `hub` in batches of `size`.
fn sync_all(hub: &mut Store, t: &Store, size: u32) {
    loop {
        let from = hub.origin_state(t.device_id()).unwrap().last_seq + 1;
        if from > t.head().0 {
            return;
        }
        hub.ingest(&batch(t, from, size)).unwrap();
    }
}

/// Everything a resend could disturb: the log tables and every projection.
fn snapshot(store: &Store) -> String {
    let mut out = store.projection_dump().unwrap();
    out.push_str(&support::dump_tables(
        store,
        &[
            "events",
            "checkpoints",
            "chain_seals",
            "chain_redactions",
            "sync_not_applied",
        ],
        "1, 2",
    ));
    out
}

fn count(store: &Store, sql: &str) -> i64 {
    let conn = Connection::open(store.dir().join(pos_store::DB_FILE)).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn ingest_is_idempotent() {
    let (hd, td) = (tempdir(), tempdir());
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut t = init(td.path(), DeviceRole::Terminal, "till-1");
    trust_store(&mut hub, &t);
    let shift = open_shift(&mut t);
    for n in 1..=5 {
        sell(&mut t, shift, n, "apple", 250);
    }
    let b = batch(&t, 1, 100);
    let first = hub.ingest(&b).unwrap();
    assert_eq!(first.new_records, t.head().0);
    assert_eq!(first.inserted, t.head().0);
    assert_eq!(first.already_held, 0);
    assert_eq!((first.last_seq, first.head), t.head());
    let after_once = snapshot(&hub);

    // The same batch again, and one overlapping what is stored: nothing changes.
    let again = hub.ingest(&b).unwrap();
    assert_eq!((again.new_records, again.inserted), (0, 0));
    assert_eq!(again.already_held, t.head().0);
    hub.ingest(&batch(&t, 3, 4)).unwrap();
    assert_eq!(snapshot(&hub), after_once);
    assert_eq!(hub.stock_levels().unwrap(), vec![("apple".into(), -5000)]);

    // A batch that overlaps and extends stores only the new part, once.
    sell(&mut t, shift, 6, "apple", 250);
    let overlap = hub.ingest(&batch(&t, 4, 100)).unwrap();
    assert_eq!(overlap.already_held, first.last_seq - 3);
    assert_eq!(overlap.new_records, 2);
    assert_eq!(hub.stock_levels().unwrap(), vec![("apple".into(), -6000)]);
    assert_eq!(
        count(&hub, "SELECT count(*) FROM sale_receipts"),
        6,
        "one receipt row per sale"
    );
    assert!(hub.verify().is_ok());
}

#[test]
fn a_hub_holds_the_sum_of_two_terminals() {
    let (hd, ad, bd) = (tempdir(), tempdir(), tempdir());
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut a = init(ad.path(), DeviceRole::Terminal, "till-a");
    let mut b = init(bd.path(), DeviceRole::Terminal, "till-b");
    trust_store(&mut hub, &a);
    trust_store(&mut hub, &b);
    hub.append(vec![stock("apple", 100_000), stock("pear", 50_000)])
        .unwrap();
    let (sa, sb) = (open_shift(&mut a), open_shift(&mut b));
    for n in 1..=30 {
        sell(&mut a, sa, n, "apple", 250);
        if n % 3 == 0 {
            sell(&mut b, sb, n / 3, "pear", 400);
        }
        if n % 7 == 0 {
            sync_all(&mut hub, &a, 5);
            sync_all(&mut hub, &b, 3);
        }
    }
    sync_all(&mut hub, &a, 11);
    sync_all(&mut hub, &b, 2);

    assert_eq!(
        hub.stock_levels().unwrap(),
        vec![("apple".into(), 70_000), ("pear".into(), 40_000)]
    );
    // Receipts are kept per terminal, each with its own gapless numbers.
    for n in 1..=30 {
        assert!(hub.receipt(a.device_id(), n).unwrap().is_some(), "a {n}");
    }
    for n in 1..=10 {
        let r = hub.receipt(b.device_id(), n).unwrap().unwrap();
        assert_eq!(r.terminal, b.device_id());
    }
    assert!(hub.receipt(b.device_id(), 11).unwrap().is_none());
    assert_eq!(hub.open_shift(a.device_id()).unwrap().unwrap().id, sa);

    // The terminals' own registrations (hub-authoritative `device`) are kept, not applied.
    let skipped = hub.not_applied().unwrap();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().all(|s| s.module == "device" && s.seq == 1));
    let names: Vec<String> = hub.devices().unwrap().into_iter().map(|d| d.name).collect();
    assert!(names.iter().all(|n| !n.starts_with("till-")), "{names:?}");

    let report = hub.verify().unwrap();
    assert_eq!(report.chains.len(), 3);
    assert_eq!(report.records(), hub.head().0 + a.head().0 + b.head().0);

    let live = hub.projection_dump().unwrap();
    hub.rebuild().unwrap();
    assert_eq!(hub.projection_dump().unwrap(), live);
}

#[derive(Debug, Clone)]
enum Step {
    StockA(u8, i64),
    StockB(u8, i64),
    HubStock(u8, i64),
    SyncA(u32),
    SyncB(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..4, -500i64..500).prop_map(|(i, q)| Step::StockA(i, q)),
        3 => (0u8..4, -500i64..500).prop_map(|(i, q)| Step::StockB(i, q)),
        1 => (0u8..4, -500i64..500).prop_map(|(i, q)| Step::HubStock(i, q)),
        2 => (1u32..6).prop_map(Step::SyncA),
        2 => (1u32..6).prop_map(Step::SyncB),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn rebuild_gives_the_live_projections_after_random_ingests(steps in proptest::collection::vec(step(), 1..40)) {
        let (hd, ad, bd) = (tempdir(), tempdir(), tempdir());
        let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
        let mut a = init(ad.path(), DeviceRole::Terminal, "till-a");
        let mut b = init(bd.path(), DeviceRole::Terminal, "till-b");
        trust_store(&mut hub, &a);
        trust_store(&mut hub, &b);
        let mut expected = std::collections::BTreeMap::<String, i64>::new();
        let mut synced = std::collections::BTreeMap::<String, i64>::new();
        let (mut pending_a, mut pending_b) = (Vec::new(), Vec::new());
        for s in steps {
            match s {
                Step::StockA(i, q) => {
                    a.append(vec![stock(&format!("item-{i}"), q)]).unwrap();
                    pending_a.push((format!("item-{i}"), q));
                }
                Step::StockB(i, q) => {
                    b.append(vec![stock(&format!("item-{i}"), q), setting("b", q)]).unwrap();
                    pending_b.push((format!("item-{i}"), q));
                }
                Step::HubStock(i, q) => {
                    hub.append(vec![stock(&format!("item-{i}"), q)]).unwrap();
                    *synced.entry(format!("item-{i}")).or_default() += q;
                }
                Step::SyncA(n) => {
                    let from = hub.origin_state(a.device_id()).unwrap().last_seq + 1;
                    if from <= a.head().0 {
                        hub.ingest(&batch(&a, from, n)).unwrap();
                    }
                }
                Step::SyncB(n) => {
                    let from = hub.origin_state(b.device_id()).unwrap().last_seq + 1;
                    if from <= b.head().0 {
                        // Resend a little of what is stored as well.
                        hub.ingest(&batch(&b, from.saturating_sub(1).max(1), n + 1)).unwrap();
                    }
                }
            }
        }
        sync_all(&mut hub, &a, 4);
        sync_all(&mut hub, &b, 4);
        for (item, q) in pending_a.into_iter().chain(pending_b) {
            *synced.entry(item).or_default() += q;
        }
        expected.extend(synced);
        let levels: std::collections::BTreeMap<String, i64> =
            hub.stock_levels().unwrap().into_iter().collect();
        prop_assert_eq!(levels, expected);
        // Settings are hub-authoritative: a terminal's never reach the hub's projection.
        prop_assert!(hub.setting("b").unwrap().is_none());
        let live = hub.projection_dump().unwrap();
        let replayed = hub.rebuild().unwrap();
        prop_assert_eq!(replayed, hub.head().0 + a.head().0 + b.head().0);
        prop_assert_eq!(hub.projection_dump().unwrap(), live);
        prop_assert!(hub.verify().is_ok());
    }
}

#[test]
fn a_batch_that_does_not_continue_the_stored_chain_is_refused_with_nothing_written() {
    let hd = tempdir();
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut real = SignedChain::new(3, 4);
    real.append_many(8, &["note"]);
    // The same device and key, another history: a fork.
    let mut fork = SignedChain::new(3, 4);
    fork.append_many(8, &["memo"]);
    trust(
        &mut hub,
        real.origin,
        DeviceRole::Terminal,
        real.key.public(),
    );
    hub.ingest(&chain_batch(&real, 1, 3)).unwrap();
    let before = snapshot(&hub);

    let refused = |hub: &mut Store, b: &VerifiedBatch| match hub.ingest(b) {
        Err(StoreError::SyncRefused { seq, detail, .. }) => (seq, detail),
        other => panic!("{other:?}"),
    };
    // A gap.
    let (seq, detail) = refused(&mut hub, &chain_batch(&real, 5, 8));
    assert_eq!(seq, 5);
    assert!(detail.contains("gap"), "{detail}");
    // The next seq, but linking to another record.
    let (seq, detail) = refused(&mut hub, &chain_batch(&fork, 4, 8));
    assert_eq!(seq, 4);
    assert!(detail.contains("does not continue"), "{detail}");
    // A resend whose records differ from the stored ones.
    let (seq, _) = refused(&mut hub, &chain_batch(&fork, 2, 5));
    assert_eq!(seq, 2);
    // An edited record in an otherwise fine batch.
    let mut edited = chain_batch(&real, 4, 8);
    edited.events[2].payload = b"{\"n\":99}".to_vec();
    let (seq, detail) = refused(&mut hub, &edited);
    assert_eq!(seq, 6);
    assert!(detail.contains("hash"), "{detail}");
    // A seal by a key not registered for the origin.
    let mut unsigned = chain_batch(&real, 4, 8);
    let other = pos_audit::DeviceKey::from_seed([7; 32]);
    let tail = &real.events[7];
    unsigned.seal = Checkpoint::sign(&other, real.origin, 8, tail.hash, tail.hlc);
    refused(&mut hub, &unsigned);
    // The hub's own chain never comes in through sync.
    let mut own = chain_batch(&real, 4, 8);
    own.origin = hub.device_id();
    refused(&mut hub, &own);
    assert_eq!(snapshot(&hub), before);

    // The right continuation is still accepted.
    let ok = hub.ingest(&chain_batch(&real, 4, 8)).unwrap();
    assert_eq!(ok.last_seq, 8);
    assert!(hub.verify().is_ok());
}

#[test]
fn holds_persist_across_reopen_and_need_an_authorised_release() {
    let hd = tempdir();
    let mut t = SignedChain::new(5, 10);
    t.append_many(6, &["note"]);
    let hub_id;
    {
        let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
        hub_id = hub.device_id();
        trust(&mut hub, t.origin, DeviceRole::Terminal, t.key.public());
        hub.ingest(&chain_batch(&t, 1, 2)).unwrap();
        hub.hold_origin(t.origin, 3, "content changed:\nforged\u{1b}[2J")
            .unwrap();
        assert!(hub.origin_state(t.origin).unwrap().held);
    }
    let mut hub = Store::open(hd.path(), Default::default()).unwrap();
    let state = hub.origin_state(t.origin).unwrap();
    assert!(state.held);
    assert_eq!(state.last_seq, 2);
    let holds = hub.holds().unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!((holds[0].origin, holds[0].seq), (t.origin, 3));
    assert!(!holds[0].why.contains('\n'), "{:?}", holds[0].why);
    // Nothing of a held origin is stored.
    assert!(matches!(
        hub.ingest(&chain_batch(&t, 3, 6)),
        Err(StoreError::SyncRefused { .. })
    ));
    let status = hub.sync_status().unwrap();
    let row = status.iter().find(|s| s.device == t.origin).unwrap();
    assert_eq!(row.status, PeerStatus::Held);

    // A cashier may not release it (and the denial is logged); a technician may.
    let denied = hub.release_origin(&person(BuiltinRole::Cashier), t.origin, "looked");
    assert!(matches!(denied, Err(AccountError::Denied(_))), "{denied:?}");
    assert!(hub.origin_state(t.origin).unwrap().held);
    let tech = person(BuiltinRole::Technician);
    assert!(hub
        .release_origin(&tech, t.origin, "cable swapped")
        .unwrap());
    assert!(!hub.release_origin(&tech, t.origin, "again").unwrap());
    assert!(!hub.origin_state(t.origin).unwrap().held);
    hub.ingest(&chain_batch(&t, 3, 6)).unwrap();

    // The hold is a projection of the security events: a rebuild keeps the history's verdict.
    hub.hold_origin(t.origin, 7, "again").unwrap();
    hub.rebuild().unwrap();
    assert!(hub.origin_state(t.origin).unwrap().held);
    let kinds: Vec<String> = hub
        .events(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.module == "security")
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "sync_rejected",
            "permission_denied",
            "sync_released",
            "sync_rejected"
        ]
    );
    assert_ne!(hub_id, t.origin);
}

fn now(mono_ms: u64) -> Now {
    Now {
        mono_ms,
        wall_ms: now_ms(),
        hlc: Hlc::from_parts(now_ms(), 0),
    }
}

/// The connection calls both ends share, for the little driver below.
trait Conn {
    fn receive(&mut self, bytes: &[u8], now: Now);
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    fn poll_event(&mut self) -> Option<AppEvent>;
    fn supply(&mut self, req: &pos_sync::BatchRequest, store: &Store, now: Now);
    fn stored(&mut self, origin: DeviceId, seq: u64, now: Now);
}

macro_rules! conn {
    ($t:ty) => {
        impl Conn for $t {
            fn receive(&mut self, bytes: &[u8], now: Now) {
                <$t>::receive(self, bytes, now)
            }
            fn poll_transmit(&mut self) -> Option<Vec<u8>> {
                <$t>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<AppEvent> {
                <$t>::poll_event(self)
            }
            fn supply(&mut self, req: &pos_sync::BatchRequest, store: &Store, now: Now) {
                let (events, cps) = store
                    .events_for_sync(req.origin, req.first_seq, req.max_events)
                    .unwrap();
                self.supply_events(req, events, cps, store.device_key(), now)
                    .unwrap();
            }
            fn stored(&mut self, origin: DeviceId, seq: u64, now: Now) {
                self.events_stored(origin, seq, now).unwrap();
            }
        }
    };
}
conn!(HubConnection);
conn!(TerminalConnection);

/// What the IO layer does with one event.
fn handle(store: &mut Store, conn: &mut dyn Conn, peer: DeviceId, event: AppEvent) {
    match event {
        AppEvent::NeedEvents(req) => conn.supply(&req, store, now(1)),
        AppEvent::Store(batch) => {
            let outcome = store.ingest(&batch).unwrap();
            conn.stored(batch.origin, outcome.last_seq, now(1));
        }
        AppEvent::Acked { seq, .. } => store.acked_by(peer, seq).unwrap(),
        AppEvent::SecurityViolation { origin, seq, why } => {
            store.hold_origin(origin, seq, &why).unwrap();
        }
        AppEvent::Connected { .. } => store.note_seen(peer, now_ms(), None).unwrap(),
        _ => {}
    }
}

/// One connection between a terminal and the hub, run until quiet.
fn exchange(hub: &mut Store, term: &mut Store, subscriptions: &[&str]) {
    let (hub_id, term_id) = (hub.device_id(), term.device_id());
    let hub_setup = HubSetup {
        device: hub_id,
        own_head_seq: hub.head().0,
        terminal: hub.origin_state(term_id).unwrap(),
    };
    let term_setup = TerminalSetup {
        device: term_id,
        own_head_seq: term.head().0,
        hub: term.origin_state(hub_id).unwrap(),
        subscriptions: subscriptions.iter().map(|s| (*s).to_owned()).collect(),
    };
    let config = Config {
        max_batch_events: 7,
        ..Config::default()
    };
    let mut h = HubConnection::new(config.clone(), hub_setup, now(0)).unwrap();
    let mut t = TerminalConnection::new(config, term_setup, now(0)).unwrap();
    hub.note_seen(term_id, now_ms(), Some(term.head().0))
        .unwrap();
    loop {
        let mut progress = false;
        while let Some(bytes) = Conn::poll_transmit(&mut t) {
            Conn::receive(&mut h, &bytes, now(1));
            progress = true;
        }
        while let Some(bytes) = Conn::poll_transmit(&mut h) {
            Conn::receive(&mut t, &bytes, now(1));
            progress = true;
        }
        while let Some(e) = Conn::poll_event(&mut h) {
            progress = true;
            handle(hub, &mut h, term_id, e);
        }
        while let Some(e) = Conn::poll_event(&mut t) {
            progress = true;
            handle(term, &mut t, hub_id, e);
        }
        if !progress {
            break;
        }
    }
}

fn enroll(hub: &mut Store, term: &mut Store) {
    let tech = person(BuiltinRole::Technician);
    let code = hub
        .create_enroll_code(&tech, Duration::from_secs(600))
        .unwrap();
    let request = EnrollRequest {
        device: term.device_id(),
        name: term.identity().name.clone(),
        public_key: term.device_key().public(),
        cert_fingerprint: "ab".repeat(32),
    };
    hub.redeem_enroll_code(&code.code, now_ms(), &request)
        .unwrap()
        .unwrap();
    term.register_hub(&registration(
        hub.device_id(),
        DeviceRole::Hub,
        hub.device_key().public(),
    ))
    .unwrap();
}

#[test]
fn a_terminal_and_the_hub_sync_through_the_protocol() {
    let (hd, td) = (tempdir(), tempdir());
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut term = init(td.path(), DeviceRole::Terminal, "till-1");
    enroll(&mut hub, &mut term);
    hub.append(vec![setting("vat", 20), stock("apple", 9000)])
        .unwrap();
    let shift = open_shift(&mut term);
    for n in 1..=12 {
        sell(&mut term, shift, n, "apple", 250);
    }
    assert_eq!(term.unacked_by(hub.device_id()).unwrap(), term.head().0);

    exchange(&mut hub, &mut term, &["settings", "stock"]);

    // The hub has the terminal's whole chain and applied its sales.
    assert_eq!(
        hub.origin_state(term.device_id()).unwrap().last_seq,
        term.head().0
    );
    assert_eq!(hub.stock_levels().unwrap(), vec![("apple".into(), -3000)]);
    assert!(hub.receipt(term.device_id(), 12).unwrap().is_some());
    // The terminal has the hub's master data; what it did not subscribe to is redacted.
    assert_eq!(
        term.origin_state(hub.device_id()).unwrap().last_seq,
        hub.head().0
    );
    assert_eq!(term.setting("vat").unwrap(), Some(20.into()));
    assert_eq!(term.unacked_by(hub.device_id()).unwrap(), 0);
    assert!(count(&term, "SELECT count(*) FROM chain_redactions") > 0);
    // Both verify; the terminal's copy of the hub's chain is partial but sound.
    assert!(hub.verify().is_ok());
    let report = term.verify().unwrap();
    let hub_chain = report
        .chains
        .iter()
        .find(|c| c.origin == hub.device_id())
        .unwrap();
    assert_eq!(hub_chain.last_seq, hub.head().0);
    assert!(hub_chain.records < hub.head().0);

    let status = hub.sync_status().unwrap();
    let row = status
        .iter()
        .find(|s| s.device == term.device_id())
        .unwrap();
    assert_eq!(row.status, PeerStatus::Online);
    assert_eq!(row.waiting, Some(0));
    assert_eq!(row.acked_seq, hub.head().0);
    assert_eq!(row.cert_fingerprint.as_deref(), Some(&*"ab".repeat(32)));

    // More on both sides; a second connection resumes from the stored cursors.
    hub.append(vec![setting("vat", 21)]).unwrap();
    for n in 13..=15 {
        sell(&mut term, shift, n, "apple", 250);
    }
    exchange(&mut hub, &mut term, &["settings", "stock"]);
    assert_eq!(term.setting("vat").unwrap(), Some(21.into()));
    assert_eq!(hub.stock_levels().unwrap(), vec![("apple".into(), -6000)]);
    assert!(hub.verify().is_ok());
    assert!(term.verify().is_ok());
    let live = term.projection_dump().unwrap();
    term.rebuild().unwrap();
    assert_eq!(term.projection_dump().unwrap(), live);
}

/// A hub whose disk fills during ingest refuses the batch whole (nothing half-stored, the
/// stored head unchanged, so nothing is acked); with space back the same batches go in.
#[test]
fn a_full_disk_on_the_hub_refuses_the_batch_whole() {
    let (hd, td) = (tempdir(), tempdir());
    drop(init(hd.path(), DeviceRole::Hub, "hub"));
    let small = pos_store::StoreOptions {
        max_size_bytes: Some(256 * 1024),
        ..pos_store::StoreOptions::default()
    };
    let mut hub = Store::open(hd.path(), small).unwrap();
    let mut term = init(td.path(), DeviceRole::Terminal, "till-1");
    trust_store(&mut hub, &term);
    let shift = open_shift(&mut term);
    for n in 1..=400 {
        sell(&mut term, shift, n, "apple", 250);
    }
    let origin = term.device_id();
    let err = loop {
        let from = hub.origin_state(origin).unwrap().last_seq + 1;
        assert!(from <= term.head().0, "the size limit never hit");
        let before = hub.origin_state(origin).unwrap();
        match hub.ingest(&batch(&term, from, 50)) {
            Ok(_) => {}
            Err(e) => {
                let after = hub.origin_state(origin).unwrap();
                assert_eq!((after.last_seq, after.head), (before.last_seq, before.head));
                break e;
            }
        }
    };
    assert!(
        matches!(err, pos_store::StoreError::DiskFull { .. }),
        "{err}"
    );
    let stored = hub.origin_state(origin).unwrap().last_seq;
    assert!(stored < term.head().0);
    assert!(hub.verify().is_ok());
    drop(hub);

    let mut hub = Store::open(hd.path(), pos_store::StoreOptions::default()).unwrap();
    assert_eq!(hub.origin_state(origin).unwrap().last_seq, stored);
    sync_all(&mut hub, &term, 50);
    assert_eq!(hub.origin_state(origin).unwrap().last_seq, term.head().0);
    assert!(hub.receipt(origin, 400).unwrap().is_some());
    assert!(hub.verify().is_ok());
}

/// The conflict policies of ARCHITECTURE.md, one data type each, through the protocol:
/// hub-authoritative settings, terminal-owned shifts, append-only sales (receipts per
/// terminal) and commutative stock.
#[test]
fn each_data_type_follows_its_conflict_policy() {
    let (hd, ad, bd) = (tempdir(), tempdir(), tempdir());
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut a = init(ad.path(), DeviceRole::Terminal, "till-a");
    let mut b = init(bd.path(), DeviceRole::Terminal, "till-b");
    enroll(&mut hub, &mut a);
    enroll(&mut hub, &mut b);
    let subscriptions = ["settings", "stock"];

    // Hub-authoritative: the hub's value wins everywhere; a terminal's own change is kept in
    // the hub's log (listed as not applied) and never reaches the hub's projection.
    hub.append(vec![setting("vat", 20), stock("apple", 1_000_000)])
        .unwrap();
    a.append(vec![setting("vat", 99)]).unwrap();
    exchange(&mut hub, &mut a, &subscriptions);
    exchange(&mut hub, &mut b, &subscriptions);
    assert_eq!(hub.setting("vat").unwrap(), Some(20.into()));
    assert_eq!(a.setting("vat").unwrap(), Some(20.into()));
    assert_eq!(b.setting("vat").unwrap(), Some(20.into()));
    assert!(hub
        .not_applied()
        .unwrap()
        .iter()
        .any(|n| n.origin == a.device_id() && n.module == "settings"));

    // Terminal-owned shifts: each terminal's drawer has its own shift at the hub.
    let (sa, sb) = (open_shift(&mut a), open_shift(&mut b));
    // Append-only sales with gapless receipt numbers per terminal: both sell receipt 1..=3,
    // the hub keeps all six apart. Stock is the sum of every origin's movements.
    for n in 1..=3 {
        sell(&mut a, sa, n, "apple", 250);
        sell(&mut b, sb, n, "apple", 300);
    }
    // Interleaved syncs in either order give the same result.
    exchange(&mut hub, &mut b, &subscriptions);
    exchange(&mut hub, &mut a, &subscriptions);
    assert_eq!(hub.open_shift(a.device_id()).unwrap().unwrap().id, sa);
    assert_eq!(hub.open_shift(b.device_id()).unwrap().unwrap().id, sb);
    for n in 1..=3 {
        let ra = hub.receipt(a.device_id(), n).unwrap().unwrap();
        let rb = hub.receipt(b.device_id(), n).unwrap().unwrap();
        assert_eq!((ra.terminal, rb.terminal), (a.device_id(), b.device_id()));
    }
    assert_eq!(
        hub.stock_levels().unwrap(),
        vec![("apple".into(), 1_000_000 - 6 * 1000)]
    );
    // A terminal's own copy of stock is its own movements plus the hub's (it does not
    // receive the other terminal's chain).
    assert_eq!(
        a.stock_levels().unwrap(),
        vec![("apple".into(), 1_000_000 - 3 * 1000)]
    );
    assert!(hub.verify().is_ok());
    let live = hub.projection_dump().unwrap();
    hub.rebuild().unwrap();
    assert_eq!(hub.projection_dump().unwrap(), live);
}

/// A terminal holding a partial copy of the hub's chain (records of two of its modules).
fn partial_copy() -> (tempfile::TempDir, tempfile::TempDir, Store, Store) {
    let (hd, td) = (tempdir(), tempdir());
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut term = init(td.path(), DeviceRole::Terminal, "till-1");
    enroll(&mut hub, &mut term);
    for i in 0..20 {
        let draft = match i % 3 {
            0 => setting(&format!("k{i}"), i),
            1 => stock("apple", i),
            _ => EventDraft::json("note", "written", &serde_json::json!({ "i": i })),
        };
        hub.append(vec![draft]).unwrap();
    }
    exchange(&mut hub, &mut term, &["settings", "note"]);
    assert!(count(&term, "SELECT count(*) FROM chain_redactions") > 1);
    (hd, td, hub, term)
}

#[test]
fn a_partial_copy_verifies_and_names_a_changed_record() {
    let (_hd, td, hub, term) = partial_copy();
    assert!(term.verify().is_ok());
    let origin = hub.device_id();
    let db = td.path().join(pos_store::DB_FILE);
    drop(term);
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("DROP TRIGGER events_are_never_updated")
        .unwrap();
    // A full record of the hub's in the copy: flip one byte of its payload.
    let (seq, mut payload): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT seq, payload FROM events WHERE origin = ?1 AND module = 'settings'
             ORDER BY seq LIMIT 1 OFFSET 2",
            [origin.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let at = payload.len() / 2;
    payload[at] ^= 0x01;
    conn.execute(
        "UPDATE events SET payload = ?3 WHERE origin = ?1 AND seq = ?2",
        rusqlite::params![origin.as_bytes(), seq, payload],
    )
    .unwrap();
    drop(conn);
    let term = Store::open(td.path(), Default::default()).unwrap();
    match term.verify() {
        Err(VerifyError::Tampered(f)) => {
            assert_eq!((f.origin, f.seq), (origin, seq as u64));
            assert_eq!(f.problem, Problem::ContentChanged);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_partial_copy_names_a_deleted_record_and_an_altered_placeholder() {
    let (_hd, td, hub, term) = partial_copy();
    let origin = hub.device_id();
    let db = td.path().join(pos_store::DB_FILE);
    drop(term);
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_are_never_deleted; DROP TRIGGER chain_redactions_are_never_updated",
    )
    .unwrap();
    // Change the hash of one redacted run: the next full record no longer links to it.
    let (first, last): (i64, i64) = conn
        .query_row(
            "SELECT first_seq, last_seq FROM chain_redactions WHERE origin = ?1
             ORDER BY first_seq LIMIT 1 OFFSET 1",
            [origin.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    conn.execute(
        "UPDATE chain_redactions SET head = ?3 WHERE origin = ?1 AND first_seq = ?2",
        rusqlite::params![origin.as_bytes(), first, &[7u8; 32][..]],
    )
    .unwrap();
    let term = Store::open(td.path(), Default::default()).unwrap();
    let f = match term.verify() {
        Err(VerifyError::Tampered(f)) => f,
        other => panic!("{other:?}"),
    };
    assert_eq!(f.origin, origin);
    assert!(f.seq as i64 >= last, "{f}");
    drop(term);

    // A deleted full record (the placeholder restored first) is "missing", not redacted.
    conn.execute_batch("DROP TRIGGER chain_redactions_are_never_deleted")
        .unwrap();
    let seq: i64 = conn
        .query_row(
            "SELECT seq FROM events WHERE origin = ?1 AND module = 'settings'
             ORDER BY seq LIMIT 1 OFFSET 3",
            [origin.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    let (_hd2, td2, hub2, term2) = partial_copy();
    drop(term2);
    let conn2 = Connection::open(td2.path().join(pos_store::DB_FILE)).unwrap();
    conn2
        .execute_batch("DROP TRIGGER events_are_never_deleted")
        .unwrap();
    conn2
        .execute(
            "DELETE FROM events WHERE origin = ?1 AND seq = ?2",
            rusqlite::params![hub2.device_id().as_bytes(), seq],
        )
        .unwrap();
    drop(conn2);
    let term2 = Store::open(td2.path(), Default::default()).unwrap();
    match term2.verify() {
        Err(VerifyError::Tampered(f)) => {
            assert_eq!(f.seq, seq as u64, "{f}");
            assert!(matches!(f.problem, Problem::Missing { .. }), "{f}");
        }
        other => panic!("{other:?}"),
    }
}

fn request(device: DeviceId) -> EnrollRequest {
    EnrollRequest {
        device,
        name: "till-9".into(),
        public_key: pos_audit::DeviceKey::from_seed([9; 32]).public(),
        cert_fingerprint: "AB:".repeat(31) + "AB",
    }
}

fn security_kinds(store: &Store) -> Vec<String> {
    store
        .events(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.module == "security")
        .map(|e| format!("{}:{}", e.kind, e.payload_text()))
        .collect()
}

#[test]
fn an_enrollment_code_works_once_and_expires() {
    let hd = tempdir();
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let tech = person(BuiltinRole::Technician);

    // Only someone with device_enroll makes codes.
    let denied = hub.create_enroll_code(&person(BuiltinRole::Cashier), Duration::from_secs(60));
    assert!(matches!(denied, Err(AccountError::Denied(_))));

    let code = hub
        .create_enroll_code(&tech, Duration::from_secs(600))
        .unwrap();
    assert!(!format!("{code:?}").contains(&code.code));
    assert_eq!(code.code.len(), 19);
    let (d1, d2) = (DeviceId::new_v7(), DeviceId::new_v7());
    let typed = code.code.to_lowercase().replace('-', " ");
    let device = hub
        .redeem_enroll_code(&typed, now_ms(), &request(d1))
        .unwrap()
        .unwrap();
    assert_eq!(device.role, DeviceRole::Terminal);
    assert_eq!(device.cert_fingerprint.as_deref(), Some(&*"ab".repeat(32)));
    assert_eq!(
        hub.origin_state(d1).unwrap().keys,
        vec![pos_audit::DeviceKey::from_seed([9; 32]).public()]
    );
    // Single use.
    assert_eq!(
        hub.redeem_enroll_code(&code.code, now_ms(), &request(d2))
            .unwrap(),
        Err(EnrollRefusal::AlreadyUsed)
    );
    // Expiry (on the device's clock, which a wall clock set back cannot undo).
    let short = hub.create_enroll_code(&tech, Duration::ZERO).unwrap();
    assert!(short.expires_ms >= now_ms() + 59_000);
    assert_eq!(
        hub.redeem_enroll_code(&short.code, short.expires_ms, &request(d2))
            .unwrap(),
        Err(EnrollRefusal::Expired)
    );
    // A registered id with another key is refused and leaves the code usable.
    let fresh = hub
        .create_enroll_code(&tech, Duration::from_secs(600))
        .unwrap();
    let mut other_key = request(d1);
    other_key.public_key = pos_audit::DeviceKey::from_seed([8; 32]).public();
    assert_eq!(
        hub.redeem_enroll_code(&fresh.code, now_ms(), &other_key)
            .unwrap(),
        Err(EnrollRefusal::DeviceExists(d1))
    );
    assert!(hub
        .redeem_enroll_code(&fresh.code, now_ms(), &request(d2))
        .unwrap()
        .is_ok());

    // Every attempt is in the log, and the code itself never is.
    let kinds = security_kinds(&hub);
    let text = kinds.join("\n");
    for c in [&code.code, &short.code, &fresh.code] {
        assert!(!text.contains(c.as_str()) && !text.contains(&c.replace('-', "")));
    }
    let count_of = |k: &str| kinds.iter().filter(|s| s.starts_with(k)).count();
    assert_eq!(count_of("enroll_code_created"), 3);
    assert_eq!(count_of("enroll_code_redeemed"), 2);
    assert_eq!(count_of("enroll_failed"), 3);
    assert_eq!(count_of("permission_denied"), 1);
    assert!(hub.verify().is_ok());
}

#[test]
fn guessing_codes_voids_every_outstanding_code() {
    let hd = tempdir();
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let tech = person(BuiltinRole::Technician);
    let code = hub
        .create_enroll_code(&tech, Duration::from_secs(600))
        .unwrap();
    let d = DeviceId::new_v7();
    for i in 1..=MAX_ENROLL_FAILURES {
        let verdict = hub
            .redeem_enroll_code("0000-0000-0000-0000", now_ms(), &request(d))
            .unwrap();
        if i < MAX_ENROLL_FAILURES {
            assert_eq!(verdict, Err(EnrollRefusal::UnknownCode));
        } else {
            assert_eq!(verdict, Err(EnrollRefusal::TooManyAttempts));
        }
    }
    assert!(hub.outstanding_enroll_codes(now_ms()).unwrap().is_empty());
    assert_eq!(
        hub.redeem_enroll_code(&code.code, now_ms(), &request(d))
            .unwrap(),
        Err(EnrollRefusal::TooManyAttempts)
    );
    // The protocol's form: a caller-derived key and a proof check.
    let key = [42u8; 32];
    let info = hub
        .add_enroll_code(&tech, Duration::from_secs(600), &key)
        .unwrap();
    let id = hub
        .redeem_enroll_code_with(now_ms(), None, &mut |k| *k == key)
        .unwrap()
        .unwrap();
    assert_eq!(id, info.id);
    let device = hub.register_enrolled_device(&request(d)).unwrap().unwrap();
    assert_eq!(device.device, d);
    assert_eq!(
        hub.redeem_enroll_code_with(now_ms(), None, &mut |k| *k == key)
            .unwrap(),
        Err(EnrollRefusal::AlreadyUsed)
    );
    // The one-step form: proof check, device checks and registration in one commit.
    let key2 = [43u8; 32];
    hub.add_enroll_code(&tech, Duration::from_secs(600), &key2)
        .unwrap();
    let d3 = DeviceId::new_v7();
    let device = hub
        .enroll_device(&request(d3), now_ms(), &mut |k| *k == key2)
        .unwrap()
        .unwrap();
    assert_eq!(device.device, d3);
    assert_eq!(
        hub.enroll_device(&request(DeviceId::new_v7()), now_ms(), &mut |k| *k == key2)
            .unwrap(),
        Err(EnrollRefusal::AlreadyUsed)
    );
    // The stored form is neither the code nor its key.
    let conn = Connection::open(hd.path().join(pos_store::DB_FILE)).unwrap();
    let sealed: Vec<Vec<u8>> = conn
        .prepare("SELECT sealed FROM sync_enroll_codes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(sealed.iter().all(|s| s.as_slice() != key));
    let code_key = Store::enroll_code_key(&code.code).unwrap();
    assert!(sealed.iter().all(|s| s.as_slice() != code_key));
}

#[test]
fn revocation_shows_in_the_status_and_needs_the_permission() {
    let (hd, td) = (tempdir(), tempdir());
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut term = init(td.path(), DeviceRole::Terminal, "till-1");
    enroll(&mut hub, &mut term);
    let id = term.device_id();
    let status = hub.sync_status_at(1_000_000, 45_000).unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].status, PeerStatus::Offline);
    assert_eq!(status[0].last_seen_ms, None);
    assert_eq!(status[0].waiting, None);
    // Never connected: out of touch since its enrollment.
    let enrolled = hub.devices().unwrap()[1].enrolled.wall_ms();
    assert_eq!(
        status[0].out_of_touch_ms,
        Some(1_000_000u64.saturating_sub(enrolled))
    );

    hub.note_seen(id, 1_000_000, Some(40)).unwrap();
    hub.note_clock_skew(id, Some(-300_000)).unwrap();
    let row = &hub.sync_status_at(1_010_000, 45_000).unwrap()[0];
    assert_eq!(row.status, PeerStatus::Online);
    assert_eq!(row.waiting, Some(40));
    assert_eq!(row.clock_skew_ms, Some(-300_000));
    // A heartbeat keeps the announced head; silence or a disconnect makes it offline.
    hub.note_seen(id, 1_020_000, None).unwrap();
    assert_eq!(
        hub.sync_status_at(1_030_000, 45_000).unwrap()[0].waiting,
        Some(40)
    );
    assert_eq!(
        hub.sync_status_at(1_100_000, 45_000).unwrap()[0].status,
        PeerStatus::Offline
    );
    hub.note_disconnected(id, 1_021_000).unwrap();
    assert_eq!(
        hub.sync_status_at(1_022_000, 45_000).unwrap()[0].status,
        PeerStatus::Offline
    );
    // Out of touch since its last message; the alert fires past the hub's limit only.
    let row = &hub.sync_status_at(1_021_000 + 30 * 60_000, 45_000).unwrap()[0];
    assert_eq!(row.out_of_touch_ms, Some(30 * 60_000));
    assert!(!row.offline_alert(30 * 60_000));
    assert!(row.offline_alert(29 * 60_000));

    assert!(matches!(
        hub.revoke_device(&person(BuiltinRole::Cashier), id, "stolen"),
        Err(AccountError::Denied(_))
    ));
    hub.revoke_device(&person(BuiltinRole::Admin), id, "stolen")
        .unwrap();
    assert!(matches!(
        hub.revoke_device(&person(BuiltinRole::Admin), id, "again"),
        Err(AccountError::UnknownDevice(_))
    ));
    hub.note_seen(id, 1_023_000, None).unwrap();
    let row = &hub.sync_status_at(1_023_500, 45_000).unwrap()[0];
    assert_eq!(row.status, PeerStatus::Revoked);
    // Nothing to expect from a revoked device: no alert.
    assert_eq!(row.out_of_touch_ms, None);
    // Liveness is not in the log.
    assert!(hub
        .events(&Default::default())
        .unwrap()
        .iter()
        .all(|e| !e.kind.contains("seen")));
}

#[test]
fn acks_and_the_merged_clock_survive_a_restart() {
    let (hd, td) = (tempdir(), tempdir());
    let hub_id = {
        let hub = init(hd.path(), DeviceRole::Hub, "hub");
        hub.device_id()
    };
    {
        let mut t = init(td.path(), DeviceRole::Terminal, "till-1");
        t.append(vec![stock("a", 1), stock("a", 2), stock("a", 3)])
            .unwrap();
        t.acked_by(hub_id, 3).unwrap();
        t.acked_by(hub_id, 2).unwrap();
        assert_eq!(t.unacked_by(hub_id).unwrap(), 1);
    }
    let mut t = Store::open(td.path(), Default::default()).unwrap();
    assert_eq!(t.peer_acked(hub_id).unwrap(), 3);
    assert_eq!(t.unacked_by(hub_id).unwrap(), 1);

    // A peer clock a minute ahead is merged (the next record sorts after it); one a day ahead
    // is not.
    let ahead = Hlc::from_parts(now_ms() + 60_000, 5);
    assert!(t.merge_hlc(ahead));
    assert!(t.hlc_now() > ahead);
    assert!(!t.merge_hlc(Hlc::from_parts(now_ms() + 86_400_000, 0)));
    assert!(t.hlc_now() < Hlc::from_parts(now_ms() + 3_600_000, 0));
    let c = t.append(vec![stock("a", 4)]).unwrap();
    let last = t.events(&Default::default()).unwrap().pop().unwrap();
    assert_eq!(last.seq, c.last_seq);
    assert!(last.hlc > ahead);
    assert!(t.now(7).hlc >= last.hlc);
    assert_eq!(t.now(7).mono_ms, 7);
}

#[test]
fn an_ingested_clock_is_merged_and_persisted() {
    let (hd, td) = (tempdir(), tempdir());
    let mut hub = init(hd.path(), DeviceRole::Hub, "hub");
    let mut term = init(td.path(), DeviceRole::Terminal, "till-1");
    enroll(&mut hub, &mut term);
    // A chain whose clock is a few minutes ahead of ours.
    let mut ahead = SignedChain::new(6, 100);
    ahead.append_many(1, &["note"]);
    let fake = ahead.events[0].hlc;
    assert!(
        fake < Hlc::from_parts(now_ms(), 0),
        "the test chain uses 2023 times"
    );
    trust(
        &mut hub,
        ahead.origin,
        DeviceRole::Terminal,
        ahead.key.public(),
    );
    hub.ingest(&chain_batch(&ahead, 1, 1)).unwrap();
    // Real ingest of a terminal: the hub's clock is at least the terminal's newest.
    term.append(vec![stock("x", 1)]).unwrap();
    let newest = term.events(&Default::default()).unwrap().pop().unwrap().hlc;
    sync_all(&mut hub, &term, 10);
    assert!(hub.hlc_now() >= newest);
    drop(hub);
    let hub = Store::open(hd.path(), Default::default()).unwrap();
    assert!(hub.hlc_now() >= newest);
}
