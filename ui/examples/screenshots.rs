//! Renders each main screen at 1280x800 with the software renderer to PNG files under
//! docs/screenshots/ (or the folder given as the first argument), from a demo store seeded the
//! way the UI tests seed theirs.

#![allow(clippy::unwrap_used)] // a developer tool: any failure should stop it loudly

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

use pos_ui::headless;
use slint::ComponentHandle;
use support::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"));
    std::fs::create_dir_all(&out)?;
    let rig = rig();
    let t = &rig.terminal;
    let window = headless::last_window().ok_or("no window")?;
    let w = t.window();
    t.set_clock(Some("09:41"));
    let shot = |name: &str| -> std::io::Result<()> {
        let path = out.join(name);
        headless::write_png(&window, &path)?;
        println!("{}", path.display());
        Ok(())
    };

    headless::type_text(w.window(), CASHIER.0);
    for d in CASHIER.1.chars().take(4) {
        w.invoke_login_digit(d.to_string().into());
    }
    shot("login.png")?;
    w.invoke_login_clear();
    for d in CASHIER.1.chars() {
        w.invoke_login_digit(d.to_string().into());
    }
    w.invoke_login_submit();

    for code in [COLA_EAN, WATER_EAN8, CAKE_PLU, BANANA_PLU, COLA_EAN] {
        if !t.scan(code) {
            return Err(format!("scan {code}: {}", w.get_error_text()).into());
        }
    }
    w.set_selected_line(3);
    shot("sale.png")?;

    w.invoke_void_clicked();
    headless::type_text(w.window(), SUPERVISOR.0);
    for d in SUPERVISOR.1.chars() {
        w.invoke_approval_digit(d.to_string().into());
    }
    w.invoke_approval_reason_picked(0);
    shot("approval.png")?;
    w.invoke_cancel_approval();

    t.set_high_contrast(true);
    shot("sale-high-contrast.png")?;
    t.set_high_contrast(false);

    w.invoke_pay_clicked();
    for d in ["2", "0", "0", "0"] {
        w.invoke_amount_digit(d.into());
    }
    w.invoke_tender_cash();
    shot("payment.png")?;
    Ok(())
}
