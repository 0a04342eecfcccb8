//! The first-boot screen (`pos setup`) driven through the software renderer: welcome, role,
//! the till's form with wrong formats marked on their fields, busy, an unreachable hub with the
//! values kept, enrolled; the hub's one-time password; German. With `POS_UI_SHOTS=DIR` each
//! step is written there as setup-*-WxH.png (docs/screenshots holds them).

#![allow(clippy::unwrap_used)]

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pos_core::DeviceRole;
use pos_ui::backend::ScreenSize;
use pos_ui::setup::{Failure, Outcome, Request, Setup, Step};
use pos_ui::{headless, SetupPage};
use slint::ComponentHandle;

struct Rig {
    setup: Rc<Setup>,
    requests: Rc<RefCell<Vec<Request>>>,
    proceeded: Rc<Cell<bool>>,
    size: ScreenSize,
}

impl Rig {
    fn new(size: ScreenSize) -> Rig {
        headless::init_with_size(size.width, size.height).unwrap();
        let setup = Setup::new().unwrap();
        let w = setup.window();
        w.set_window_width(size.width as f32);
        w.set_window_height(size.height as f32);
        w.window().set_size(slint::LogicalSize::new(
            size.width as f32,
            size.height as f32,
        ));
        let requests = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&requests);
        setup.on_request(move |r| sink.borrow_mut().push(r));
        let proceeded = Rc::new(Cell::new(false));
        let flag = Rc::clone(&proceeded);
        setup.on_proceed(move || flag.set(true));
        Rig {
            setup,
            requests,
            proceeded,
            size,
        }
    }

    fn page(&self) -> SetupPage<'_> {
        self.setup.window().global::<SetupPage<'_>>()
    }

    fn shot(&self, name: &str) {
        let rgb = support::draw(&format!("setup-{name}"), self.size);
        // Something is drawn: not one flat colour.
        assert!(rgb.chunks(3).any(|p| p != &rgb[..3]), "{name} is blank");
    }

    /// Type on a hardware keyboard (the window's key handler, as the on-screen keys do).
    fn type_text(&self, text: &str) {
        headless::type_text(self.setup.window().window(), text);
    }

    fn clear_field(&self, index: i32) {
        self.page().invoke_field_tapped(index);
        for _ in 0..40 {
            self.page().invoke_key("\u{8}".into());
        }
    }
}

fn a_till_is_set_up(size: ScreenSize) {
    let rig = Rig::new(size);
    let page = rig.page();
    assert_eq!(page.get_step(), "welcome");
    rig.shot("welcome");
    page.invoke_start();
    assert_eq!(page.get_step(), "role");
    rig.shot("role");
    page.invoke_choose(true);
    assert_eq!(page.get_step(), "form");
    assert!(page.get_terminal());
    assert_eq!(page.get_branch(), "main");
    assert_eq!(page.get_name(), "till-1");

    // Wrong formats: each field says what is wrong, and nothing is sent.
    page.invoke_field_tapped(2);
    rig.type_text("https://10.0.0.2");
    page.invoke_field_tapped(3);
    rig.type_text("7KQ2-MX9D");
    page.invoke_submit();
    assert!(rig.requests.borrow().is_empty());
    assert_eq!(page.get_step(), "form");
    assert!(
        page.get_hub_error().contains("10.0.0.2:7443"),
        "{}",
        page.get_hub_error()
    );
    assert!(
        page.get_code_error().contains("16 letters"),
        "{}",
        page.get_code_error()
    );
    assert_eq!(page.get_branch_error(), "");
    rig.shot("form-errors");

    // Fixed: Enroll sends the checked request and the screen is busy.
    rig.clear_field(2);
    rig.type_text("10.0.0.2");
    assert_eq!(page.get_hub_error(), "", "typing clears the field's mark");
    page.invoke_field_tapped(3);
    // The on-screen keyboard sends lower case; the code reads either way.
    for k in ["-", "4", "t", "8", "r", "-", "b", "3", "z", "f"] {
        page.invoke_key(k.into());
    }
    page.invoke_submit();
    assert_eq!(page.get_step(), "busy");
    let request = rig.requests.borrow().last().cloned().unwrap();
    assert_eq!(request.role, DeviceRole::Terminal);
    assert_eq!(request.hub.as_deref(), Some("10.0.0.2:7443"));
    assert_eq!(request.code.as_deref(), Some("7KQ2-MX9D-4T8R-B3ZF"));
    assert!(page.get_notice().contains("10.0.0.2:7443"));
    rig.shot("busy");
    // Taps while busy do nothing.
    page.invoke_key("x".into());
    page.invoke_back();
    assert_eq!(page.get_step(), "busy");

    // The hub does not answer: back to the form with every value kept and what to do.
    rig.setup.finished(Err(Failure::Unreachable {
        addr: "10.0.0.2:7443".into(),
        detail: "connection refused".into(),
    }));
    assert_eq!(page.get_step(), "form");
    assert_eq!(page.get_hub(), "10.0.0.2");
    assert_eq!(
        page.get_code(),
        "7KQ2-MX9D-4T8R-B3ZF",
        "codes show in capitals"
    );
    assert!(page.get_notice_bad());
    assert!(page.get_notice().contains("Wi-Fi"), "{}", page.get_notice());
    rig.shot("unreachable");

    // A refused code: ask the manager for a new one.
    page.invoke_submit();
    rig.setup
        .finished(Err(Failure::CodeRefused("expired".into())));
    assert!(
        page.get_notice().contains("new code"),
        "{}",
        page.get_notice()
    );
    assert_eq!(page.get_focus(), 3);

    // Enrolled, then Continue to login.
    page.invoke_submit();
    assert_eq!(rig.requests.borrow().len(), 3);
    assert!(!rig.proceeded.get());
    page.invoke_proceed();
    assert!(
        !rig.proceeded.get(),
        "Continue does nothing before setup is done"
    );
    rig.setup.finished(Ok(Outcome::Enrolled {
        name: "till-1".into(),
        hub_addr: "10.0.0.2:7443".into(),
        hub_name: "hub".into(),
    }));
    assert_eq!(rig.setup.step(), Step::Done);
    assert_eq!(
        page.get_done_title(),
        "Enrolled as till-1 with hub 10.0.0.2:7443"
    );
    rig.shot("enrolled");
    page.invoke_proceed();
    assert!(rig.proceeded.get());
}

fn a_hub_is_set_up(size: ScreenSize) {
    let rig = Rig::new(size);
    let page = rig.page();
    page.invoke_start();
    page.invoke_choose(false);
    assert!(!page.get_terminal());
    assert_eq!(page.get_name(), "hub");
    rig.clear_field(0);
    rig.type_text("Bäckerei Süd");
    rig.shot("hub-form");
    // Enter in the last field submits.
    page.invoke_field_tapped(1);
    rig.type_text("\n");
    assert_eq!(page.get_step(), "busy");
    let request = rig.requests.borrow().last().cloned().unwrap();
    assert_eq!(request.role, DeviceRole::Hub);
    assert_eq!(request.branch, "Bäckerei Süd");
    assert_eq!((request.hub, request.code), (None, None));
    rig.setup.finished(Ok(Outcome::Hub {
        name: "hub".into(),
        branch: "Bäckerei Süd".into(),
        admin: "admin".into(),
        one_time: "Kuz7PqG85Qi9yNvW".into(),
    }));
    assert_eq!(page.get_one_time(), "Kuz7PqG85Qi9yNvW");
    assert!(page.get_done_text().contains("admin"));
    assert!(
        page.get_warning().contains("only once"),
        "{}",
        page.get_warning()
    );
    rig.shot("hub-done");
    page.invoke_proceed();
    assert!(rig.proceeded.get());
}

#[test]
fn a_till_is_set_up_landscape() {
    a_till_is_set_up(ScreenSize::LANDSCAPE);
}

#[test]
fn a_till_is_set_up_portrait() {
    a_till_is_set_up(ScreenSize::PORTRAIT);
}

#[test]
fn a_hub_is_set_up_landscape() {
    a_hub_is_set_up(ScreenSize::LANDSCAPE);
}

#[test]
fn a_hub_is_set_up_portrait() {
    a_hub_is_set_up(ScreenSize::PORTRAIT);
}

#[test]
fn the_form_speaks_german() {
    let rig = Rig::new(ScreenSize::LANDSCAPE);
    rig.setup.set_locale("de-DE").unwrap();
    let page = rig.page();
    page.invoke_start();
    page.invoke_choose(true);
    page.invoke_submit();
    assert_eq!(page.get_hub_error(), "Bitte ausfüllen.");
    rig.shot("de");
    rig.setup.set_locale("en-GB").unwrap();
    assert_eq!(page.get_hub_error(), "Fill this in.");
}
