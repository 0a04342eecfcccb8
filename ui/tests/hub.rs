//! The hub's manager display over a real store with sales (the shared fixtures): who may log
//! in, the tiles against the Store's own figures, the dashboard builder's saved layout, a
//! user locked and unlocked from the users page, and every page drawn at 1280x800 and
//! 1024x768.

#![allow(clippy::unwrap_used)]

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use pos_core::sale::{Money, Tender};
use pos_store::reports::Period;
use pos_store::Store;
use pos_ui::backend::ScreenSize;
use pos_ui::hub::{
    DashboardLayout, Hub, HubActions, HubOptions, HubScreen, Kpi, PeriodChoice, StoreAccess, Widget,
};
use pos_ui::{headless, HubPage};
use slint::{ComponentHandle, Model};
use support::*;

/// A hub display over a store where the cashier sold a few tickets; the store is shared with
/// the test so it can check what landed.
struct HubRig {
    hub: Hub,
    store: Rc<RefCell<Store>>,
    admin_totp: pos_auth::TotpSecret,
    dir: tempfile::TempDir,
}

fn hub_rig(size: ScreenSize) -> HubRig {
    headless::init_with_size(size.width, size.height).unwrap();
    let mut t = till();
    let e = &mut t.engine;
    for codes in [
        &[COLA_EAN, WATER_EAN8][..],
        &[COLA_EAN, COLA_EAN, CAKE_PLU],
        &[WATER_EAN8],
    ] {
        for code in codes {
            e.scan(code).unwrap();
        }
        let due = e.balance().unwrap().remaining;
        e.pay(Tender::Cash, due).unwrap();
        e.complete().unwrap();
    }
    e.logout().unwrap();
    let dir = t.dir;
    let admin_totp = t.admin_totp;
    let store = Rc::new(RefCell::new(t.engine.into_store()));
    let mut options = HubOptions::new(dir.path().to_path_buf());
    options.account_policy = policy();
    let access: Rc<dyn StoreAccess> = store.clone();
    let hub = Hub::new(access, options, HubActions::default()).unwrap();
    pos_ui::backend::apply_hub_size(hub.window(), size);
    hub.set_clock(Some("09:41"));
    HubRig {
        hub,
        store,
        admin_totp,
        dir,
    }
}

fn page(h: &Hub) -> HubPage<'_> {
    h.window().global::<HubPage<'_>>()
}

#[test]
fn a_cashier_is_refused_and_the_manager_let_in() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let h = &rig.hub;
    assert_eq!(h.screen(), Some(HubScreen::Login));
    h.log_in(CASHIER.0, CASHIER.1, None);
    assert_eq!(h.screen(), Some(HubScreen::Login));
    assert!(h.notice().contains("manager"), "{}", h.notice());
    page(h).invoke_login_field_tapped(0);
    for _ in 0..CASHIER.0.len() {
        headless::type_text(h.window().window(), "\u{8}");
    }
    headless::type_text(h.window().window(), MANAGER.0);
    page(h).invoke_login_field_tapped(1);
    headless::type_text(h.window().window(), "wrong-password\n");
    assert_eq!(h.screen(), Some(HubScreen::Login));
    assert!(h.notice().contains("Wrong"), "{}", h.notice());
    // The name stays, the password field has the focus: typed on the hardware keyboard.
    assert_eq!(page(h).get_login_name(), MANAGER.0);
    assert_eq!(page(h).get_login_field(), 1);
    headless::type_text(h.window().window(), MANAGER.1);
    page(h).invoke_login_submit();
    assert_eq!(h.screen(), Some(HubScreen::Dashboard), "{}", h.notice());
    assert_eq!(page(h).get_user_text(), MANAGER.0);
    // Lock returns to the login screen; nothing of the pages can be opened from there.
    page(h).invoke_lock();
    assert_eq!(h.screen(), Some(HubScreen::Login));
    page(h).invoke_open("users".into());
    assert_eq!(h.screen(), Some(HubScreen::Login));
}

#[test]
fn an_admin_needs_the_authenticator_code() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let h = &rig.hub;
    h.log_in(ADMIN.0, ADMIN.1, None);
    assert_eq!(h.screen(), Some(HubScreen::Login));
    assert!(h.notice().contains("6-digit code"), "{}", h.notice());
    // The code of the next step (the current one was used when the fixture was made).
    let code = pos_auth::totp_code(&rig.admin_totp, unix_s() / 30 * 30 + 30);
    h.log_in(ADMIN.0, ADMIN.1, Some(&code));
    assert_eq!(h.screen(), Some(HubScreen::Dashboard), "{}", h.notice());
}

static NOW: AtomicU64 = AtomicU64::new(0);

fn fake_now() -> u64 {
    NOW.load(Ordering::SeqCst)
}

fn set_now(ms: u64) {
    NOW.store(ms, Ordering::SeqCst);
}

#[test]
fn the_display_locks_after_idle_time() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let h = &rig.hub;
    set_now(pos_store::now_ms());
    h.set_time_source(fake_now);
    h.log_in(MANAGER.0, MANAGER.1, None);
    assert_eq!(h.screen(), Some(HubScreen::Dashboard));
    assert!(!h.tick());
    set_now(fake_now() + 60_000);
    page(h).invoke_open("alerts".into());
    set_now(fake_now() + 100_000);
    assert!(!h.tick(), "a tap 100 s ago keeps it open");
    set_now(fake_now() + 121_000);
    assert!(h.tick());
    assert_eq!(h.screen(), Some(HubScreen::Login));
}

#[test]
fn the_tiles_show_what_the_store_computes() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let h = &rig.hub;
    h.log_in(MANAGER.0, MANAGER.1, None);
    let now = pos_store::now_ms();
    let offset = jiff::tz::TimeZone::system()
        .to_offset(jiff::Timestamp::now())
        .seconds()
        / 60;
    let today = Period::local_day(now, offset).unwrap();
    let d = rig.store.borrow().dashboard(today, 8).unwrap();
    assert_eq!(d.kpis.transactions, 3);
    assert!(d.kpis.net_sales > Money(0));
    let tiles: Vec<_> = page(h).get_tiles().iter().collect();
    let tile = |key: &str| {
        tiles
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.to_string())
            .unwrap()
    };
    let money = |m: Money| pos_ui::locale::Locale::english().money(m, &Default::default());
    assert_eq!(tiles.len(), 8);
    assert_eq!(tile("kpi-transactions"), "3");
    assert_eq!(tile("kpi-net-sales"), money(d.kpis.net_sales));
    assert_eq!(tile("kpi-average-basket"), money(d.kpis.average_basket));
    assert_eq!(tile("kpi-discounts"), money(d.kpis.discounts));
    assert_eq!(tile("kpi-margin"), money(d.kpis.gross_margin));
    let items = d.kpis.items_per_basket_milli;
    assert_eq!(
        tile("kpi-items-per-basket"),
        format!("{}.{}", items / 1000, items % 1000 / 100)
    );
    // The charts are drawn from the same answer: 24 hour bars whose sum is the net sales,
    // one tender (cash) with everything, the best seller first.
    assert_eq!(page(h).get_hours().row_count(), 24);
    assert_eq!(page(h).get_tenders().row_count(), d.tenders.len());
    let cash = page(h).get_tenders().row_data(0).unwrap();
    assert!((cash.fraction - 1.0).abs() < 1e-6);
    assert_eq!(cash.value.as_str(), money(d.tenders[0].amount));
    let top = page(h).get_top().row_data(0).unwrap();
    assert_eq!(top.label.as_str(), d.top_products[0].name);
    assert!((top.fraction - 1.0).abs() < 1e-6);
    // This month holds the same sales.
    page(h).invoke_period_picked(2);
    assert_eq!(
        page(h)
            .get_tiles()
            .iter()
            .find(|t| t.key == "kpi-transactions")
            .unwrap()
            .value,
        "3"
    );
}

#[test]
fn the_builder_saves_a_layout_that_the_next_start_loads() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let h = &rig.hub;
    h.log_in(MANAGER.0, MANAGER.1, None);
    page(h).invoke_open("builder".into());
    assert_eq!(h.screen(), Some(HubScreen::Builder));
    page(h).invoke_widget_toggled(2); // tender split off
    page(h).invoke_kpi_toggled(1); // transactions off
    page(h).invoke_kpi_toggled(8); // cash over/short on
    page(h).invoke_default_period_picked(1); // opens with the last 7 days
    page(h).invoke_save_layout();
    assert!(h.notice().contains("Layout saved"), "{}", h.notice());
    let saved = DashboardLayout::load(rig.dir.path()).unwrap().unwrap();
    assert!(!saved.shows(Widget::TenderSplit));
    assert!(!saved.kpis.contains(&Kpi::Transactions));
    assert_eq!(saved.kpis.last(), Some(&Kpi::CashOverShort));
    assert_eq!(saved.period, PeriodChoice::Week);

    // A new display (a restart) opens with it.
    let mut options = HubOptions::new(rig.dir.path().to_path_buf());
    options.account_policy = policy();
    let access: Rc<dyn StoreAccess> = rig.store.clone();
    let again = Hub::new(access, options, HubActions::default()).unwrap();
    assert_eq!(again.layout(), Some(saved));
    again.log_in(MANAGER.0, MANAGER.1, None);
    let p = again.window().global::<HubPage<'_>>();
    assert!(!p.get_show_tenders());
    assert!(p.get_show_hours());
    assert_eq!(p.get_tiles().row_count(), 8);
    assert!(p.get_tiles().iter().all(|t| t.key != "kpi-transactions"));
    assert!(p.get_periods().row_data(1).unwrap().on);
}

#[test]
fn a_user_locked_on_the_users_page_is_locked_in_the_store() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let h = &rig.hub;
    h.log_in(MANAGER.0, MANAGER.1, None);
    page(h).invoke_open("users".into());
    let users: Vec<_> = page(h).get_users().iter().collect();
    let bob = users.iter().position(|u| u.name == CASHIER2.0).unwrap();
    assert!(!users[bob].locked);
    page(h).invoke_user_lock(bob as i32);
    assert!(h.notice().contains("is locked"), "{}", h.notice());
    assert!(page(h).get_users().row_data(bob).unwrap().locked);
    let p = policy();
    let refused = rig
        .store
        .borrow_mut()
        .authenticate(CASHIER2.0, CASHIER2.1, None, &p);
    assert!(refused.is_err(), "a locked user cannot log in");
    page(h).invoke_user_unlock(bob as i32);
    assert!(!page(h).get_users().row_data(bob).unwrap().locked);
    rig.store
        .borrow_mut()
        .authenticate(CASHIER2.0, CASHIER2.1, None, &p)
        .unwrap();
    // The events name the manager as the actor.
    let store = rig.store.borrow();
    let locked = events(&store, "security.user_locked");
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0].actor, Some(rig.store_manager()));
    // A reset PIN is shown once, to hand over.
    drop(store);
    page(h).invoke_user_reset(bob as i32);
    assert!(h.notice().contains("one-time"), "{}", h.notice());
    assert!(page(h)
        .get_users()
        .row_data(bob)
        .unwrap()
        .state
        .contains("new"));
}

impl HubRig {
    fn store_manager(&self) -> pos_core::UserId {
        self.store
            .borrow()
            .users()
            .unwrap()
            .into_iter()
            .find(|u| u.name == MANAGER.0)
            .unwrap()
            .user
    }
}

#[test]
fn the_devices_page_makes_an_enrollment_code() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let h = &rig.hub;
    h.log_in(MANAGER.0, MANAGER.1, None);
    page(h).invoke_open("devices".into());
    page(h).invoke_device_revoke(0);
    assert!(h.notice().contains("Pick a device"), "{}", h.notice());
    page(h).invoke_new_enroll_code();
    let code = page(h).get_enroll_code().to_string();
    assert!(!code.is_empty(), "{}", h.notice());
    let outstanding = rig
        .store
        .borrow()
        .outstanding_enroll_codes(pos_store::now_ms())
        .unwrap();
    assert_eq!(outstanding.len(), 1);
}

#[test]
fn every_hub_page_draws_at_both_landscape_sizes() {
    for size in [ScreenSize::LANDSCAPE, ScreenSize::LANDSCAPE_4_3] {
        let rig = hub_rig(size);
        let h = &rig.hub;
        draw("hub-login", size);
        h.log_in(MANAGER.0, MANAGER.1, None);
        for screen in HubScreen::ALL.into_iter().skip(1) {
            page(h).invoke_open(screen.name().into());
            assert_eq!(h.screen(), Some(screen));
            let pixels = draw(&format!("hub-{}", screen.name()), size);
            assert_eq!(pixels.len(), (size.width * size.height * 3) as usize);
        }
    }
}

#[test]
fn a_report_exported_from_the_browser_is_written_and_logged() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let out = rig.dir.path().join("stick");
    std::fs::create_dir_all(&out).unwrap();
    let mut options = HubOptions::new(rig.dir.path().to_path_buf());
    options.account_policy = policy();
    let target = out.clone();
    let actions = HubActions {
        export_dir: Some(Box::new(move || Ok(target.clone()))),
        ..HubActions::default()
    };
    let access: Rc<dyn StoreAccess> = rig.store.clone();
    let h = Hub::new(access, options, actions).unwrap();
    h.log_in(MANAGER.0, MANAGER.1, None);
    page(&h).invoke_open("reports".into());
    let kpis = page(&h)
        .get_reports()
        .iter()
        .position(|r| r.name == "kpis")
        .unwrap();
    page(&h).invoke_report_export(kpis as i32, "csv".into());
    assert!(h.notice().contains("kpis written to"), "{}", h.notice());
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(files.len(), 1);
    let path = files[0].as_ref().unwrap().path();
    assert_eq!(path.extension().unwrap(), "csv");
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    page(&h).invoke_report_export(kpis as i32, "pdf".into());
    let pdf = std::fs::read_dir(&out)
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pdf"))
        .unwrap();
    assert!(std::fs::read(pdf).unwrap().starts_with(b"%PDF"));
    // Every export is a security-log record by the manager.
    let store = rig.store.borrow();
    let exported = events(&store, "security.report_exported");
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0].actor, Some(rig.store_manager()));
}

#[test]
fn the_backups_page_lists_the_backups_and_verifies_through_its_hook() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let backups = rig.dir.path().join("backups");
    let secret = || pos_backup::Secret::Key(pos_backup::BackupKey::from_bytes([7; 32]));
    let made = pos_backup::create(
        rig.dir.path(),
        &backups,
        &secret(),
        &pos_backup::CreateOptions::default(),
        &mut |_: &str, _: u64, _: u64| {},
    )
    .unwrap();
    let mut options = HubOptions::new(rig.dir.path().to_path_buf());
    options.account_policy = policy();
    let file = made.path.clone();
    let scratch = backups.clone();
    let actions = HubActions {
        verify_backup: Some(Box::new(move || {
            let report = pos_backup::verify(&file, &secret(), &scratch, &mut |_: &str, _, _| {})
                .map_err(|e| e.to_string())?;
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            Ok((name, report.chains.iter().map(|c| c.records).sum()))
        })),
        ..HubActions::default()
    };
    let access: Rc<dyn StoreAccess> = rig.store.clone();
    let h = Hub::new(access, options, actions).unwrap();
    h.log_in(MANAGER.0, MANAGER.1, None);
    page(&h).invoke_open("backups".into());
    let rows: Vec<_> = page(&h).get_backups().iter().collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].name.as_str(),
        made.path.file_name().unwrap().to_string_lossy()
    );
    assert_eq!(rows[0].kind, "manual");
    assert!(!page(&h).get_backup_ok(), "no scheduled backup yet");
    assert!(page(&h)
        .get_restore_command()
        .contains("pos backup restore"));
    page(&h).invoke_backup_verify();
    assert!(h.notice().contains("verified"), "{}", h.notice());
    // Without a USB stick hook the export says what is missing (no stick in a test box).
    page(&h).invoke_backup_export();
    assert!(h.notice().contains("pos backup export"), "{}", h.notice());
}

#[test]
fn a_terminal_out_of_touch_shows_its_alert_and_can_be_revoked() {
    let rig = hub_rig(ScreenSize::LANDSCAPE);
    let till = pos_core::DeviceId::new_v7();
    let key = pos_audit::DeviceKey::generate().unwrap();
    let registered = pos_core::payloads::DeviceRegistered {
        device: till,
        role: pos_core::DeviceRole::Terminal,
        branch: "main".into(),
        name: "till-9".into(),
        public_key: hex::encode(key.public().0),
        cert_fingerprint: None,
    };
    rig.store
        .borrow_mut()
        .append(vec![pos_audit::EventDraft::json(
            pos_core::payloads::DeviceRegistered::MODULE,
            pos_core::payloads::DeviceRegistered::KIND,
            &registered,
        )])
        .unwrap();
    let mut options = HubOptions::new(rig.dir.path().to_path_buf());
    options.account_policy = policy();
    // Out of touch for longer than nothing: the alert is up at once.
    options.offline_alert_ms = 0;
    let access: Rc<dyn StoreAccess> = rig.store.clone();
    let h = Hub::new(access, options, HubActions::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    h.log_in(MANAGER.0, MANAGER.1, None);
    page(&h).invoke_open("terminals".into());
    let rows: Vec<_> = page(&h).get_devices().iter().collect();
    let i = rows.iter().position(|d| d.name == "till-9").unwrap();
    assert!(!rows[i].online);
    assert_eq!(rows[i].status, "st-offline");
    assert!(rows[i].alert.contains("OFFLINE-ALERT"), "{:?}", rows[i]);
    assert_eq!(rows[i].seen, "never");
    page(&h).invoke_open("devices".into());
    page(&h).invoke_device_revoke(i as i32);
    assert!(h.notice().contains("till-9 is revoked"), "{}", h.notice());
    let status = rig.store.borrow().sync_status().unwrap();
    let row = status.iter().find(|d| d.device == till).unwrap();
    assert_eq!(row.status, pos_store::PeerStatus::Revoked);
}
