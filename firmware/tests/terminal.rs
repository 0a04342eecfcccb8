//! `pos terminal` run as a real process: headless start and clean stops (time limit, SIGTERM),
//! a scanner on a simulated serial port reaching the engine, its refusals, and `pos demo`'s
//! fallback when there is no display.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn pos() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pos"));
    c.env_remove("POS_DATA_DIR")
        .env_remove("POS_CONFIG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("POS_LOG", "info");
    c
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn init(dir: &Path, role: &str) {
    let out = pos()
        .args(["init", "--role", role, "--name", "till-1", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn headless_terminal_starts_logs_and_stops_after_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("till");
    init(&data, "terminal");
    let started = Instant::now();
    let out = pos()
        .args([
            "terminal",
            "--headless",
            "--exit-after-ms",
            "300",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("terminal running headless"), "{stderr}");
    assert!(stderr.contains("terminal stopped"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // The store was closed cleanly: its log verifies.
    let out = pos()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn sigterm_stops_the_headless_terminal_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("till");
    init(&data, "terminal");
    let mut child = pos()
        .args(["terminal", "--headless", "--data-dir"])
        .arg(&data)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM: closing the terminal"), "{stderr}");
    assert!(stderr.contains("terminal stopped"), "{stderr}");
}

#[test]
fn a_scanner_on_a_serial_port_reaches_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("till");
    init(&data, "terminal");
    let mut scanner = pos_device_sim::SimScanner::start(b"\r").unwrap();
    let config = dir.path().join("terminal.toml");
    std::fs::write(
        &config,
        format!(
            "[devices]\nscanner = \"serial://{}\"\n",
            scanner.path().display()
        ),
    )
    .unwrap();
    let child = pos()
        .args(["terminal", "--headless", "--exit-after-ms", "3000"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("POS_LOG", "info,pos=debug,pos_ui=debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give the scanner thread time to open the port (opening drops waiting bytes).
    std::thread::sleep(Duration::from_millis(1000));
    scanner.scan("4006381333931").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("scanner on serial"), "{stderr}");
    // Read by the driver thread, then handed to the UI thread, where the terminal (nobody
    // logged in) did not make it a line.
    assert!(stderr.contains("scanned code=4006381333931"), "{stderr}");
    assert!(
        stderr.contains("scan 4006381333931 did not become a line"),
        "{stderr}"
    );
}

#[test]
fn refusals_exit_2_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    init(&hub, "hub");
    let out = pos()
        .args(["terminal", "--headless", "--data-dir"])
        .arg(&hub)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pos init --role terminal"), "{stderr}");

    let till = dir.path().join("till");
    init(&till, "terminal");
    // No display server in this environment and no explicit backend.
    if !Path::new("/dev/dri").exists() {
        let out = pos()
            .args(["terminal", "--data-dir"])
            .arg(&till)
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("no display found"), "{stderr}");
        assert!(stderr.contains("--headless"), "{stderr}");
    }
    let out = pos()
        .args(["terminal", "--headless", "--size", "640x480", "--data-dir"])
        .arg(&till)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("1280x800, 1024x768, 800x1280"), "{stderr}");
}

#[test]
fn help_teaches_backends_sizes_and_devices() {
    let out = pos().args(["terminal", "--help"]).output().unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    for word in [
        "--backend",
        "winit",
        "kms",
        "headless",
        "--size",
        "800x1280",
        "scanner",
        "SIGTERM",
        "--exit-after-ms",
    ] {
        assert!(stdout.contains(word), "{word} missing from:\n{stdout}");
    }
}

#[test]
fn demo_without_a_display_falls_back_to_headless_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = pos()
        .args(["demo", "--sales", "2", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take().map(|mut s| s.flush()));
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("no display found (DISPLAY/WAYLAND_DISPLAY unset): running the headless demo; use `pos demo --headless` to skip this check")
            || first.contains("without a window backend"),
        "{stdout}"
    );
    assert!(stdout.contains("terminal-1  OK"), "{stdout}");
}
