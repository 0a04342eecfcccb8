//! Renders every main screen with the software renderer to PNG files under docs/screenshots/
//! (or the folder given as the first argument): each screen at 1280x800, 1024x768 and
//! 800x1280, plus German and high-contrast variants of the sale screen. The store is seeded
//! the way the UI tests seed theirs; the receipts go to a simulated printer.
//!
//! `cargo run -p pos-ui --example screenshots`

#![allow(clippy::unwrap_used)] // a developer tool: any failure should stop it loudly

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use pos_ui::backend::ScreenSize;
use pos_ui::hub::{Hub, HubActions, HubOptions, HubScreen, StoreAccess};
use pos_ui::HubPage;
use pos_ui::{headless, CardEntry, ParkedPage, RefundPage, SalePage, ShiftPage, Terminal};
use slint::ComponentHandle;
use support::*;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"));
    std::fs::create_dir_all(&out).unwrap();
    for size in ScreenSize::SUPPORTED {
        let rig = shoot_all(&out, size);
        // The hub's manager display is laid out for the landscape sizes.
        if size != ScreenSize::PORTRAIT {
            shoot_hub(&out, size, rig);
        }
    }
}

/// The manager display over the store the terminal screens just traded on (sales, a refund,
/// a post-void, a closed shift), reached through the terminal's engine.
struct ThroughTerminal(Terminal);

impl StoreAccess for ThroughTerminal {
    fn with_store(&self, f: &mut dyn FnMut(&mut pos_store::Store)) {
        self.0.with_engine(|e| f(e.store_mut()));
    }
}

fn shoot_hub(out: &Path, size: ScreenSize, rig: Rig) {
    let Rig {
        terminal,
        printer: _printer,
        dir,
    } = rig;
    let shoot = |name: &str| shot(out, name, size);
    // A backup made by hand, so the backups page lists a file.
    pos_backup::create(
        dir.path(),
        &dir.path().join("backups"),
        &pos_backup::Secret::Key(pos_backup::BackupKey::from_bytes([7; 32])),
        &pos_backup::CreateOptions::default(),
        &mut |_: &str, _: u64, _: u64| {},
    )
    .unwrap();
    let mut options = HubOptions::new(dir.path().to_path_buf());
    options.account_policy = policy();
    // A second terminal enrolled but never seen, for the terminals and devices pages.
    let key = pos_audit::DeviceKey::generate().unwrap();
    let registered = pos_core::payloads::DeviceRegistered {
        device: pos_core::DeviceId::new_v7(),
        role: pos_core::DeviceRole::Terminal,
        branch: "main".into(),
        name: "till-2".into(),
        public_key: hex::encode(key.public().0),
        cert_fingerprint: None,
    };
    terminal
        .with_engine(|e| {
            e.store_mut().append(vec![pos_audit::EventDraft::json(
                pos_core::payloads::DeviceRegistered::MODULE,
                pos_core::payloads::DeviceRegistered::KIND,
                &registered,
            )])
        })
        .unwrap()
        .unwrap();
    let access: Rc<dyn StoreAccess> = Rc::new(ThroughTerminal(terminal));
    let hub = Hub::new(access, options, HubActions::default()).unwrap();
    pos_ui::backend::apply_hub_size(hub.window(), size);
    hub.set_clock(Some("09:41"));
    let page = hub.window().global::<HubPage<'_>>();
    headless::type_text(hub.window().window(), MANAGER.0);
    page.invoke_login_field_tapped(1);
    headless::type_text(hub.window().window(), &MANAGER.1[..8]);
    shoot("hub-login");
    hub.log_in(MANAGER.0, MANAGER.1, None);
    assert_eq!(hub.screen(), Some(HubScreen::Dashboard), "{}", hub.notice());
    for screen in HubScreen::ALL.into_iter().skip(1) {
        page.invoke_open(screen.name().into());
        match screen {
            HubScreen::Users => {
                page.set_selected_user(1);
                page.invoke_user_lock(1);
            }
            HubScreen::Devices => page.invoke_new_enroll_code(),
            _ => {}
        }
        shoot(&format!("hub-{}", screen.name()));
    }
    // German, on the dashboard.
    hub.set_locale("de-DE").unwrap();
    page.invoke_open("dashboard".into());
    shoot("hub-dashboard-de");
    hub.set_locale("en-GB").unwrap();
    drop(hub);
    drop(dir);
}

fn shot(out: &Path, name: &str, size: ScreenSize) {
    let window = headless::last_window().unwrap();
    let path = out.join(format!("{name}-{size}.png"));
    headless::write_png(&window, &path).unwrap();
    println!("{}", path.display());
}

fn shoot_all(out: &Path, size: ScreenSize) -> Rig {
    let rig = sized_rig(size);
    let t = &rig.terminal;
    let w = t.window();
    t.set_clock(Some("09:41"));
    let shoot = |name: &str| shot(out, name, size);

    // Lock screen, name typed and half the PIN.
    headless::type_text(w.window(), CASHIER.0);
    for d in CASHIER.1.chars().take(4) {
        w.invoke_login_digit(d.to_string().into());
    }
    shoot("login");
    w.invoke_login_clear();
    w.invoke_login_name_tapped();
    for _ in 0..CASHIER.0.len() {
        headless::type_text(w.window(), "\u{8}");
    }
    log_in(t, CASHIER);
    t.set_link_status(false, 12);

    // A sale of a few lines with one selected, then the search panel.
    for code in [COLA_EAN, WATER_EAN8, CAKE_PLU, BANANA_PLU, COLA_EAN] {
        assert!(t.scan(code), "{}", w.get_error_text());
    }
    let page = w.global::<SalePage<'_>>();
    page.invoke_entry_digit("4".into());
    page.invoke_entry_digit("5".into());
    page.invoke_entry_digit("0".into());
    w.set_selected_line(3);
    shoot("sale");
    page.invoke_entry_clear();
    page.invoke_search_open();
    for k in ["C", "H"] {
        page.invoke_search_key(k.into());
    }
    shoot("sale-search");
    page.invoke_search_close();

    // A line void waiting for the supervisor.
    w.invoke_void_clicked();
    headless::type_text(w.window(), SUPERVISOR.0);
    for d in SUPERVISOR.1.chars() {
        w.invoke_approval_digit(d.to_string().into());
    }
    w.invoke_approval_reason_picked(0);
    shoot("approval");
    w.invoke_cancel_approval();

    // The same sale for bright shops, and in German.
    t.set_high_contrast(true);
    shoot("sale-high-contrast");
    t.set_high_contrast(false);
    t.set_locale("de-DE").unwrap();
    shoot("sale-de");
    t.set_locale("en-GB").unwrap();

    // Payment: part cash, the rest by card, then the card slip entry.
    w.invoke_pay_clicked();
    for d in ["5", "0", "0"] {
        w.invoke_amount_digit(d.into());
    }
    w.invoke_tender_cash();
    shoot("payment");
    w.invoke_tender_card();
    let card = w.global::<CardEntry<'_>>();
    for d in "4242".chars() {
        card.invoke_digit(d.to_string().into());
    }
    shoot("payment-card");
    for d in "718293".chars() {
        card.invoke_digit(d.to_string().into());
    }
    card.invoke_confirm();
    // The printer runs out of paper as the sale completes.
    rig.printer.set_paper_out(true);
    w.invoke_complete_sale();
    shoot("paper-out");
    rig.printer.set_paper_out(false);
    w.invoke_retry_print();
    let receipt = t.last_receipt().unwrap();

    // Refund: the receipt found by its code, one line picked.
    w.invoke_open_screen("refund".into());
    assert!(t.scan(&receipt.qr), "{}", w.get_error_text());
    let refund = w.global::<RefundPage<'_>>();
    refund.invoke_toggle_line(0);
    shoot("refund");
    refund.invoke_back_to_sale();

    // Parked tickets.
    assert!(t.scan(CAKE_PLU));
    w.invoke_open_screen("parked".into());
    w.global::<ParkedPage<'_>>().invoke_park();
    assert!(t.scan(WATER_EAN8));
    w.global::<ParkedPage<'_>>().invoke_park();
    shoot("parked");
    w.global::<ParkedPage<'_>>().invoke_back_to_sale();

    // Shift: the X report, the blind count, then the Z report.
    sell(t, &[COLA_EAN]);
    w.invoke_open_screen("shift".into());
    let shift = w.global::<ShiftPage<'_>>();
    shoot("shift");
    shift.invoke_x_report_clicked();
    shoot("shift-x");
    shift.invoke_show_panel("count".into());
    for d in "12345".chars() {
        shift.invoke_digit(d.to_string().into());
    }
    shoot("shift-count");
    shift.invoke_close_shift();
    if w.get_approval_visible() {
        pin_approval(t, SUPERVISOR);
    }
    shoot("shift-z");
    rig
}

fn pin_approval(t: &Terminal, staff: Staff) {
    let w = t.window();
    headless::type_text(w.window(), staff.0);
    for d in staff.1.chars() {
        w.invoke_approval_digit(d.to_string().into());
    }
    w.invoke_approve();
}
