//! The first login of an account with a one-time secret (the hub's first `admin`, anyone
//! after a reset): on the hub display the form to choose one's own, with the store's policy
//! refusals and the new second factor confirmed by a code; on a till enrolled with a hub the
//! honest refusal (the hub owns the accounts, so the change is made on its display). Drawn at
//! 1280x800 (and the till at 800x1280) into `POS_UI_SHOTS`.

#![allow(clippy::unwrap_used)]

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use pos_core::payloads::DeviceRegistered;
use pos_core::{DeviceId, DeviceRole};
use pos_store::Store;
use pos_ui::backend::ScreenSize;
use pos_ui::hub::{Hub, HubActions, HubOptions, HubScreen, StoreAccess};
use pos_ui::{headless, HubPage, Terminal};
use slint::ComponentHandle;
use support::*;

const NEW_PASSWORD: &str = "Quiet-Otter-Lamp-42";

/// A fresh hub as `pos setup` leaves it: only the first admin, with a one-time password.
fn fresh_hub(size: ScreenSize) -> (Hub, Rc<RefCell<Store>>, String, tempfile::TempDir) {
    headless::init_with_size(size.width, size.height).unwrap();
    let dir = tempdir();
    let mut store = Store::init(dir.path(), DeviceRole::Hub, "main", "hub", false)
        .unwrap()
        .0;
    let (_, one_time) = store.bootstrap_admin("admin").unwrap();
    let store = Rc::new(RefCell::new(store));
    let mut options = HubOptions::new(dir.path().to_path_buf());
    options.account_policy = policy();
    let access: Rc<dyn StoreAccess> = store.clone();
    let hub = Hub::new(access, options, HubActions::default()).unwrap();
    pos_ui::backend::apply_hub_size(hub.window(), size);
    hub.set_clock(Some("09:41"));
    (hub, store, one_time, dir)
}

/// Whether `name` must still change their secret, as the store says.
fn must_change(store: &RefCell<Store>, name: &str) -> bool {
    store
        .borrow()
        .users()
        .unwrap()
        .into_iter()
        .find(|u| u.name == name)
        .unwrap()
        .must_change
}

fn page(h: &Hub) -> HubPage<'_> {
    h.window().global::<HubPage<'_>>()
}

/// Type on the display's keyboard (a hardware keyboard types the same way).
fn type_in(h: &Hub, text: &str) {
    headless::type_text(h.window().window(), text);
}

#[test]
fn the_first_admin_chooses_a_password_and_enrolls_the_authenticator_on_the_hub_display() {
    let size = ScreenSize::LANDSCAPE;
    let (h, store, one_time, _dir) = fresh_hub(size);
    h.log_in("admin", &one_time, None);
    assert_eq!(h.screen(), Some(HubScreen::Login));
    assert_eq!(page(&h).get_login_step(), "choose", "{}", h.notice());
    assert!(h.notice().contains("one-time"), "{}", h.notice());
    assert!(!h.notice().contains("pos login"), "{}", h.notice());
    draw("hub-first-login", size);

    // The two entries differ: refused here, both typed again.
    type_in(&h, &format!("{NEW_PASSWORD}\t{NEW_PASSWORD}x\n"));
    assert_eq!(page(&h).get_login_step(), "choose");
    assert!(h.notice().contains("differ"), "{}", h.notice());
    assert_eq!(page(&h).get_new_secret_mask(), "");
    assert_eq!(page(&h).get_login_field(), 0);

    // Too short: the store's password policy refuses, its words shown.
    type_in(&h, "Short-1\tShort-1\n");
    assert_eq!(page(&h).get_login_step(), "choose");
    assert!(h.notice().contains("at least 12"), "{}", h.notice());
    draw("hub-first-login-refused", size);
    assert!(must_change(&store, "admin"), "nothing changed yet");

    // Accepted (typed partly on the on-screen keyboard): the admin role needs a second factor,
    // so the store enrolled one and the display shows it once.
    for k in NEW_PASSWORD.chars() {
        page(&h).invoke_login_key(k.to_string().into());
    }
    page(&h).invoke_login_field_tapped(1);
    type_in(&h, NEW_PASSWORD);
    page(&h).invoke_login_submit();
    assert_eq!(page(&h).get_login_step(), "enroll", "{}", h.notice());
    assert!(!must_change(&store, "admin"));
    let shown = page(&h).get_totp_secret().to_string();
    assert!(
        shown.split(' ').all(|g| (1..=4).contains(&g.len())),
        "{shown}"
    );
    assert_eq!(page(&h).get_totp_label(), "3PlugPOS: admin");
    draw("hub-first-login-authenticator", size);
    let totp = pos_auth::TotpSecret::from_base32(&shown.replace(' ', "")).unwrap();

    // A wrong code is refused and the key stays on screen; the app's current code lets in.
    let wrong = pos_auth::totp_code(&totp, unix_s() - 3600);
    type_in(&h, &format!("{wrong}\n"));
    assert_eq!(page(&h).get_login_step(), "enroll");
    assert!(h.notice().contains("not right"), "{}", h.notice());
    assert_eq!(page(&h).get_totp_secret(), shown.as_str());
    let code = pos_auth::totp_code(&totp, unix_s());
    type_in(&h, &code);
    page(&h).invoke_login_submit();
    assert_eq!(h.screen(), Some(HubScreen::Dashboard), "{}", h.notice());
    assert_eq!(page(&h).get_user_text(), "admin");
    assert_eq!(page(&h).get_login_step(), "login");

    // From now on the new password and the app's code are the login; the one-time one is gone.
    page(&h).invoke_lock();
    h.log_in("admin", &one_time, None);
    assert!(h.notice().contains("Wrong"), "{}", h.notice());
    assert_eq!(page(&h).get_login_step(), "login");
}

#[test]
fn a_reset_cashier_changes_the_pin_on_the_hub_display_and_cancel_goes_back() {
    let size = ScreenSize::LANDSCAPE;
    let (h, store, one_time, _dir) = fresh_hub(size);
    let p = policy();
    let pin = {
        let mut s = store.borrow_mut();
        let totp = s
            .change_secret("admin", &one_time, NEW_PASSWORD, None, &p)
            .unwrap()
            .unwrap();
        let code = pos_auth::totp_code(&totp, unix_s());
        let admin = s
            .authenticate("admin", NEW_PASSWORD, Some(&code), &p)
            .unwrap();
        s.add_user(&admin, "alice", "Alice", &["cashier".to_owned()])
            .unwrap()
            .1
    };
    // Cancel leaves the form without changing anything.
    h.log_in("alice", &pin, None);
    assert_eq!(page(&h).get_login_step(), "choose", "{}", h.notice());
    type_in(&h, "4815");
    page(&h).invoke_login_cancel();
    assert_eq!(page(&h).get_login_step(), "login");
    assert!(must_change(&store, "alice"));
    // A PIN too easy to guess is the store's refusal; a good one is saved, and a cashier is
    // sent to a till (the display itself is for managers).
    h.log_in("alice", &pin, None);
    type_in(&h, "1234\t1234\n");
    assert!(h.notice().contains("too easy"), "{}", h.notice());
    type_in(&h, "48151623\t48151623\n");
    assert_eq!(h.screen(), Some(HubScreen::Login));
    assert_eq!(page(&h).get_login_step(), "login");
    assert!(h.notice().contains("at a till"), "{}", h.notice());
    assert!(!must_change(&store, "alice"));
    store
        .borrow_mut()
        .authenticate("alice", "48151623", None, &p)
        .unwrap();
}

/// A till whose cashier's PIN was reset to a one-time one; enrolled with a hub or not.
fn till_with_reset_pin(size: ScreenSize, enrolled: bool) -> (Rig, String) {
    headless::init_with_size(size.width, size.height).unwrap();
    let printer = pos_device_sim::SimPrinter::start().unwrap();
    let mut shop = till_logged_out();
    let store = shop.engine.store_mut();
    let manager = store
        .authenticate(MANAGER.0, MANAGER.1, None, &policy())
        .unwrap();
    let pin = store.reset_secret(&manager, CASHIER.0, &policy()).unwrap();
    if enrolled {
        store
            .register_hub(&DeviceRegistered {
                device: DeviceId::new_v7(),
                role: DeviceRole::Hub,
                branch: "main".into(),
                name: "hub".into(),
                public_key: "00".repeat(32),
                cert_fingerprint: None,
            })
            .unwrap();
    }
    let terminal = Terminal::new(sim_till(shop.engine, &printer)).unwrap();
    pos_ui::backend::apply_size(terminal.window(), size);
    terminal.set_clock(Some("09:41"));
    // What the firmware's sync link reports for an enrolled till (the store says enrolled).
    terminal.set_link_status(enrolled, 0);
    (
        Rig {
            terminal,
            printer,
            dir: shop.dir,
        },
        pin,
    )
}

fn try_log_in(t: &Terminal, name: &str, pin: &str) {
    let w = t.window();
    headless::type_text(w.window(), name);
    for d in pin.chars() {
        w.invoke_login_digit(d.to_string().into());
    }
    w.invoke_login_submit();
}

#[test]
fn an_enrolled_till_sends_a_one_time_pin_to_the_hub_display() {
    for size in [ScreenSize::LANDSCAPE, ScreenSize::PORTRAIT] {
        let (rig, pin) = till_with_reset_pin(size, true);
        let t = &rig.terminal;
        try_log_in(t, CASHIER.0, &pin);
        let w = t.window();
        assert_eq!(t.screen(), Some(pos_ui::Screen::Login));
        assert!(w.get_error_visible());
        let text = w.get_error_text().to_string();
        assert!(text.contains("hub display"), "{text}");
        assert!(!text.contains("ask a manager"), "{text}");
        draw("login-must-change-hub", size);
    }
}

#[test]
fn a_till_without_a_hub_says_who_can_change_it() {
    let (rig, pin) = till_with_reset_pin(ScreenSize::LANDSCAPE, false);
    let t = &rig.terminal;
    try_log_in(t, CASHIER.0, &pin);
    let text = t.window().get_error_text().to_string();
    assert!(text.contains("no hub"), "{text}");
    assert!(!text.contains("hub display"), "{text}");
}
