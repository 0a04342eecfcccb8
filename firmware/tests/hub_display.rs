//! `pos hub` with the manager display (issue 10): the display's event loop on the main thread
//! and the hub service on another, stopped together by SIGTERM (the display closes, the
//! service shuts down cleanly and the data dir is free again); without any display the hub
//! falls back to headless.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pos(data: &Path, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pos"));
    c.env_remove("POS_DATA_DIR")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("POS_CONFIG", config)
        .env("POS_LOG", "info")
        .arg("--data-dir")
        .arg(data);
    c
}

fn init_hub(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = dir.join("pos.toml");
    std::fs::write(&config, "[auth]\nmfa_roles = []\n").unwrap();
    let hub = dir.join("hub");
    let out = pos(&hub, &config)
        .args(["init", "--role", "hub", "--name", "hub"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (hub, config)
}

/// Start `pos hub ARGS` on a free port; returns the child once it listens.
fn start(hub: &Path, config: &Path, args: &[&str]) -> std::process::Child {
    let mut child = pos(hub, config)
        .arg("hub")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("hub listening on "), "{line:?}");
    child
}

fn stop(mut child: std::process::Child) -> (Option<i32>, String) {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("pos hub did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_the_display_and_the_service_together() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, config) = init_hub(dir.path());
    let child = start(&hub, &config, &["--backend", "headless"]);
    // Let the display refresh from the running hub's store once or twice.
    std::thread::sleep(Duration::from_millis(2500));
    let (code, err) = stop(child);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("still running at shutdown"), "{err}");
    assert!(!err.contains("did not close"), "{err}");
    // The data dir is free again: the control socket is gone and another hub can start.
    assert!(!hub.join("hub.sock").exists());
    let again = start(&hub, &config, &["--headless"]);
    assert_eq!(stop(again).0, Some(0));
}

#[test]
fn without_a_display_the_hub_runs_headless() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, config) = init_hub(dir.path());
    let child = start(&hub, &config, &[]);
    let (code, err) = stop(child);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("running headless"), "{err}");
}
