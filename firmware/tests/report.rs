#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

//! `pos report` as a real process: a day sold through the engine on a terminal's data dir, then
//! reports as table, CSV and PDF; a cashier denied the audit report (exit 1, logged); every
//! export in `pos audit log --kind security`; bad dates and reversed periods (exit 2); and the
//! same through a running hub's control socket.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pos_auth::totp_code;
use pos_core::sale::{LineNo, Money, Quantity, Tender};
use pos_core::DeviceRole;
use pos_store::Store;
use pos_testkit::{c, policy, till, unix_s, Till, ADMIN, CASHIER, COLA_EAN, MANAGER, SUPERVISOR};

#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn pos(data: &Path, args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pos"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("POS_DATA_DIR")
        .env_remove("POS_CONFIG")
        .env_remove("POS_LOG")
        .env("TZ", "Europe/Berlin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    match input.write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let out = Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

fn manager() -> String {
    format!("{}\n\n", MANAGER.1)
}

fn security_log(data: &Path) -> Vec<serde_json::Value> {
    let out = pos(data, &["audit", "log", "--kind", "security", "--json"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = out.stdout.trim();
    if text.starts_with('[') {
        serde_json::from_str(text).unwrap()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn of_kind<'a>(log: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    log.iter()
        .filter(|e| e.to_string().contains(&format!("\"{kind}\"")))
        .collect()
}

/// A few sales (cash and card), a line void approved by the supervisor, a closed shift; the
/// data dir is left for the CLI. Returns it with the day's net.
fn a_day_on_a_terminal() -> (tempfile::TempDir, Money) {
    let mut t = till();
    for i in 0..5 {
        let e = &mut t.engine;
        e.scan(COLA_EAN).unwrap();
        e.add("water", Quantity::units(2)).unwrap();
        if i == 2 {
            e.void_line(LineNo(2), c(SUPERVISOR), "scan-error").unwrap();
        }
        let due = e.balance().unwrap().remaining;
        let tender = if i % 2 == 0 {
            Tender::Cash
        } else {
            Tender::Card {
                approval_code: "A1".into(),
                last4: "4242".into(),
            }
        };
        e.pay(tender, due).unwrap();
        e.complete().unwrap();
    }
    let e = &mut t.engine;
    let expected = e.x_report().unwrap().drawer.expected().unwrap();
    let z = e.close_shift(expected, Some(c(SUPERVISOR))).unwrap();
    let Till { engine, dir, .. } = t;
    drop(engine);
    (dir, z.report.net)
}

#[test]
fn reports_exports_denials_and_bad_input_through_the_cli() {
    let (dir, net) = a_day_on_a_terminal();
    let data = dir.path();
    let net = net.to_string();

    let list = pos(data, &["report", "list"], "");
    assert_eq!(list.code, Some(0), "{list:?}");
    for name in [
        "x", "z", "journal", "tenders", "kpis", "products", "cashiers", "tax", "audit", "security",
    ] {
        assert!(list.stdout.lines().any(|l| l.starts_with(name)), "{list:?}");
    }

    // A table on the terminal: not an export.
    let z = pos(data, &["report", "z", "--as", MANAGER.0], &manager());
    assert_eq!(z.code, Some(0), "{z:?}");
    assert!(z.stdout.contains("Z reports (closed shifts)"), "{z:?}");
    assert!(z.stdout.contains("branch     main"), "{z:?}");
    assert!(z.stdout.contains("till-1"), "{z:?}");
    assert!(z.stdout.contains(&net), "{net} in {z:?}");

    // CSV to a file: the sums parse back.
    let csv_file = dir.path().join("tenders.csv");
    let csv_arg = csv_file.to_str().unwrap();
    let out = pos(
        data,
        &[
            "report", "tenders", "--format", "csv", "--out", csv_arg, "--as", MANAGER.0,
        ],
        &manager(),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(&csv_file)
        .unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let header = records.iter().position(|r| &r[0] == "Tender").unwrap();
    let amounts: Vec<i64> = records[header + 1..]
        .iter()
        .map(|r| r[2].parse::<Money>().unwrap().0)
        .collect();
    let (total, rows) = amounts.split_last().unwrap();
    assert_eq!(rows.iter().sum::<i64>(), *total);
    assert_eq!(Money(*total).to_string(), net);

    // PDF: renders, with the figures in its text.
    let pdf_file = dir.path().join("kpis.pdf");
    let pdf_arg = pdf_file.to_str().unwrap();
    let out = pos(
        data,
        &[
            "report", "kpis", "--format", "pdf", "--out", pdf_arg, "--as", MANAGER.0,
        ],
        &manager(),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = Command::new("pdftotext")
        .arg(&pdf_file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Key figures") && text.contains(&net),
        "{text}"
    );

    // A cashier may not see the audit report: exit 1, and the denial is logged.
    let denied = pos(
        data,
        &["report", "audit", "--as", CASHIER.0],
        &format!("{}\n", CASHIER.1),
    );
    assert_eq!(denied.code, Some(1), "{denied:?}");
    assert!(denied.stderr.contains("audit_read"), "{denied:?}");
    assert!(denied.stdout.is_empty(), "{denied:?}");
    // ... nor export the tenders (view_reports missing already).
    let denied = pos(
        data,
        &["report", "tenders", "--format", "csv", "--as", CASHIER.0],
        &format!("{}\n", CASHIER.1),
    );
    assert_eq!(denied.code, Some(1), "{denied:?}");

    // The manager's audit report names the void, its approver and reason.
    let audit = pos(data, &["report", "audit", "--as", MANAGER.0], &manager());
    assert_eq!(audit.code, Some(0), "{audit:?}");
    let void = audit
        .stdout
        .lines()
        .find(|l| l.contains("line void") && l.contains("scan-error"))
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert!(void.contains(" sam "), "{void}");

    // Bad input.
    let reversed = pos(
        data,
        &[
            "report",
            "kpis",
            "--from",
            "2026-11-30",
            "--to",
            "2026-11-01",
            "--as",
            MANAGER.0,
        ],
        &manager(),
    );
    assert_eq!(reversed.code, Some(2), "{reversed:?}");
    assert!(reversed.stderr.contains("after --to"), "{reversed:?}");
    let unreadable = pos(
        data,
        &["report", "kpis", "--from", "31.12.2026", "--as", MANAGER.0],
        &manager(),
    );
    assert_eq!(unreadable.code, Some(2), "{unreadable:?}");
    assert!(unreadable.stderr.contains("YYYY-MM-DD"), "{unreadable:?}");
    let unknown = pos(data, &["report", "sales", "--as", MANAGER.0], &manager());
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("pos report list"), "{unknown:?}");
    let empty = pos(
        data,
        &[
            "report",
            "kpis",
            "--from",
            "2001-01-01",
            "--to",
            "2001-01-01",
            "--as",
            MANAGER.0,
        ],
        &manager(),
    );
    assert_eq!(empty.code, Some(0), "{empty:?}");
    assert!(
        empty.stdout.contains("No sales in this period."),
        "{empty:?}"
    );
    assert!(
        empty
            .stdout
            .contains("2001-01-01 00:00 to 2001-01-02 00:00"),
        "{empty:?}"
    );
    let huge = pos(
        data,
        &[
            "report",
            "cashiers",
            "--from",
            "1990-01-01",
            "--to",
            "this-month",
            "--as",
            MANAGER.0,
        ],
        &manager(),
    );
    assert_eq!(huge.code, Some(0), "{huge:?}");
    assert!(huge.stdout.contains("Alice"), "{huge:?}");

    // The security log: both exports with report, format, period and file; both denials.
    let log = security_log(data);
    let exports = of_kind(&log, "report_exported");
    assert_eq!(exports.len(), 2, "{log:#?}");
    let all = format!("{exports:?}");
    assert!(
        all.contains("tenders.csv") && all.contains("kpis.pdf"),
        "{all}"
    );
    assert!(
        all.contains("\\\"format\\\":\\\"pdf\\\"") || all.contains("pdf"),
        "{all}"
    );
    let denials = of_kind(&log, "permission_denied");
    assert!(
        denials.iter().any(|d| d.to_string().contains("audit_read")),
        "{denials:#?}"
    );
    // The security report lists them too.
    let sec = pos(data, &["report", "security", "--as", MANAGER.0], &manager());
    assert_eq!(sec.code, Some(0), "{sec:?}");
    assert!(sec.stdout.contains("report exported"), "{sec:?}");
    assert!(sec.stdout.contains("audit_read denied"), "{sec:?}");
}

struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn exports_work_beside_a_running_hub_through_its_control_socket() {
    let dir = pos_testkit::tempdir();
    let data = dir.path().join("hub");
    {
        let p = policy();
        let mut store = Store::init(&data, DeviceRole::Hub, "main", "hub-1", false)
            .unwrap()
            .0;
        let (_, one_time) = store.bootstrap_admin(ADMIN.0).unwrap();
        let totp = store
            .change_secret(ADMIN.0, &one_time, ADMIN.1, None, &p)
            .unwrap()
            .unwrap();
        let code = totp_code(&totp, unix_s());
        let admin = store
            .authenticate(ADMIN.0, ADMIN.1, Some(&code), &p)
            .unwrap();
        pos_testkit::add_user(&mut store, &admin, MANAGER, "manager");
        pos_testkit::add_user(&mut store, &admin, CASHIER, "cashier");
    }
    let hub = Hub(Command::new(env!("CARGO_BIN_EXE_pos"))
        .args(["hub", "--headless", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("POS_DATA_DIR")
        .env_remove("POS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !data.join("hub.sock").exists() {
        assert!(
            Instant::now() < deadline,
            "the hub did not open its control socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let file = dir.path().join("tax.csv");
    let out = pos(
        &data,
        &[
            "report",
            "tax",
            "--format",
            "csv",
            "--out",
            file.to_str().unwrap(),
            "--as",
            MANAGER.0,
        ],
        &manager(),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("note,No sales in this period."), "{text}");
    assert!(text.contains("hub-1"), "{text}");

    let denied = pos(
        &data,
        &["report", "security", "--as", CASHIER.0],
        &format!("{}\n", CASHIER.1),
    );
    assert_eq!(denied.code, Some(1), "{denied:?}");

    drop(hub);
    let log = security_log(&data);
    let exports = of_kind(&log, "report_exported");
    assert_eq!(exports.len(), 1, "{log:#?}");
    assert!(exports[0].to_string().contains("tax.csv"), "{exports:?}");
    assert!(of_kind(&log, "permission_denied")
        .iter()
        .any(|d| d.to_string().contains("audit_read")));
}
