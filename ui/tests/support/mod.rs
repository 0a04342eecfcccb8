//! The terminal UI over the shared fixtures (`pos-testkit`): a staffed store with a catalogue,
//! stock and an open shift, nobody logged in, behind a simulated network receipt printer.

#![allow(dead_code, clippy::unwrap_used)]

pub use pos_testkit::*;

use pos_device_sim::SimPrinter;
use pos_ui::{headless, Terminal};
use slint::{ComponentHandle, Model};

/// A terminal on the headless platform with its printer. Fields drop in order: the UI (and
/// the store in it) before the data dir.
pub struct Rig {
    pub terminal: Terminal,
    pub printer: SimPrinter,
    pub dir: tempfile::TempDir,
}

pub fn rig() -> Rig {
    sized_rig(pos_ui::backend::ScreenSize::LANDSCAPE)
}

/// A terminal laid out for `size` (1280x800, 1024x768 or 800x1280).
pub fn sized_rig(size: pos_ui::backend::ScreenSize) -> Rig {
    headless::init_with_size(size.width, size.height).unwrap();
    let printer = SimPrinter::start().unwrap();
    let shop = till_logged_out();
    let terminal = Terminal::new(sim_till(shop.engine, &printer)).unwrap();
    pos_ui::backend::apply_size(terminal.window(), size);
    Rig {
        terminal,
        printer,
        dir: shop.dir,
    }
}

/// Draw the window; with `POS_UI_SHOTS=DIR` also write it there as `name`-WxH.png.
pub fn draw(name: &str, size: pos_ui::backend::ScreenSize) -> Vec<u8> {
    let window = headless::last_window().unwrap();
    assert_eq!(headless::window_size(&window), (size.width, size.height));
    if let Some(dir) = std::env::var_os("POS_UI_SHOTS") {
        let path = std::path::Path::new(&dir).join(format!("{name}-{size}.png"));
        headless::write_png(&window, &path).unwrap();
    }
    headless::render_rgb(&window)
}

/// Scan `codes`, pay the exact amount in cash and complete: the receipt.
pub fn sell(t: &Terminal, codes: &[&str]) -> pos_core::sale::Receipt {
    let w = t.window();
    for code in codes {
        assert!(t.scan(code), "{}", w.get_error_text());
    }
    w.invoke_pay_clicked();
    w.invoke_tender_cash();
    w.invoke_complete_sale();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    t.last_receipt().expect("a receipt")
}

/// An amount as the English screens write it, with the currency sign ("€12.50").
pub fn eur(m: pos_core::sale::Money) -> String {
    pos_ui::locale::Locale::english().money(m, &pos_core::sale::Currency::default())
}

/// An amount as the English screens write it in a table ("1,234.50").
pub fn money(m: pos_core::sale::Money) -> String {
    pos_ui::locale::Locale::english().number(m, &pos_core::sale::Currency::default())
}

/// Type `staff`'s name on the keyboard and the PIN on the pad, then tap "Log in".
pub fn log_in(t: &Terminal, staff: Staff) {
    let w = t.window();
    headless::type_text(w.window(), staff.0);
    assert_eq!(w.get_login_name(), staff.0);
    for d in staff.1.chars() {
        w.invoke_login_digit(d.to_string().into());
    }
    w.invoke_login_submit();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
}

/// The approver types their name and PIN and picks the first reason, then approves.
pub fn approve_as(t: &Terminal, staff: Staff) {
    let w = t.window();
    assert!(w.get_approval_visible(), "no approval asked");
    headless::type_text(w.window(), staff.0);
    for d in staff.1.chars() {
        w.invoke_approval_digit(d.to_string().into());
    }
    if w.get_approval_reasons().row_count() > 0 {
        w.invoke_approval_reason_picked(0);
    }
    w.invoke_approve();
}

/// Wait until the simulated printer holds `n` jobs (printing is over TCP).
pub fn wait_for_jobs(printer: &SimPrinter, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let jobs = printer.jobs();
        if jobs.len() >= n || std::time::Instant::now() > deadline {
            return jobs;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
