#![allow(clippy::unwrap_used)]
//! The serial transport, scanner reader and serial drawer against pseudo-terminal pairs: the
//! test holds the master side (the "device"), the driver opens the slave path.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use pos_drivers::device::DeviceEvent;
use pos_drivers::drawer::{DrawerSense, SerialDrawer};
use pos_drivers::scanner::{ScannerConfig, ScannerReader};
use pos_drivers::serial::{ModemLine, SerialConfig, SerialTransport};
use pos_drivers::Transport;

struct Pty {
    master: File,
    _slave: OwnedFd,
    path: PathBuf,
}

fn pty() -> Pty {
    let p = nix::pty::openpty(None, None).unwrap();
    let path = std::fs::read_link(format!("/proc/self/fd/{}", p.slave.as_raw_fd())).unwrap();
    let flags = fcntl(p.master.as_raw_fd(), FcntlArg::F_GETFL).unwrap();
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(p.master.as_raw_fd(), FcntlArg::F_SETFL(flags)).unwrap();
    Pty {
        master: File::from(p.master),
        _slave: p.slave,
        path,
    }
}

/// Read from the master until `n` bytes arrived or 2 s passed.
fn read_master(master: &mut File, n: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while out.len() < n && Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("master read: {e}"),
        }
    }
    out
}

fn read_transport(t: &mut SerialTransport, n: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while out.len() < n && Instant::now() < deadline {
        let k = t.read_some(&mut buf, Duration::from_millis(50)).unwrap();
        out.extend_from_slice(&buf[..k]);
    }
    out
}

fn config(path: &Path) -> SerialConfig {
    SerialConfig::new(path.to_str().unwrap(), 9600)
}

#[test]
fn round_trip_both_ways_and_timeouts() {
    let mut dev = pty();
    let mut t = SerialTransport::open(config(&dev.path)).unwrap();
    assert!(t.describe().starts_with("serial:///dev/pts/"));

    let payload: Vec<u8> = (0u8..=255).collect();
    t.write_all(&payload).unwrap();
    assert_eq!(read_master(&mut dev.master, payload.len()), payload);

    dev.master.write_all(b"\x1b@\x00\xffreply\r\n").unwrap();
    assert_eq!(read_transport(&mut t, 10), b"\x1b@\x00\xffreply\r\n");

    // Nothing there: Ok(0) after about the timeout, and at once with a zero timeout.
    let mut buf = [0u8; 16];
    let start = Instant::now();
    assert_eq!(
        t.read_some(&mut buf, Duration::from_millis(100)).unwrap(),
        0
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(80) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
    assert_eq!(t.read_some(&mut buf, Duration::ZERO).unwrap(), 0);
    assert!(t.is_open());
}

#[test]
fn missing_device_is_a_clear_error() {
    let mut t = SerialTransport::new(SerialConfig::new("/dev/does-not-exist-3plug", 9600));
    let e = t.write_all(b"x").unwrap_err();
    assert!(e.to_string().contains("/dev/does-not-exist-3plug"), "{e}");
    assert!(t.reconnect().is_err());
    assert!(!t.is_open());
}

#[test]
fn hot_plug_reopens_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyPOS");
    let mut first = pty();
    std::os::unix::fs::symlink(&first.path, &link).unwrap();
    let mut t = SerialTransport::new(config(&link));
    t.write_all(b"one").unwrap();
    assert_eq!(read_master(&mut first.master, 3), b"one");

    // Unplug: the device side disappears; the driver sees an error, not a hang or Ok(0).
    drop(first);
    let mut buf = [0u8; 8];
    let deadline = Instant::now() + Duration::from_secs(2);
    let err = loop {
        match t.read_some(&mut buf, Duration::from_millis(50)) {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "unplug not noticed"),
        }
    };
    assert!(!err.to_string().is_empty());
    assert!(!t.is_open());

    // Plug back in (a new pty behind the same stable link): the next write reopens.
    let mut second = pty();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&second.path, &link).unwrap();
    t.write_all(b"two").unwrap();
    assert_eq!(read_master(&mut second.master, 3), b"two");
    second.master.write_all(b"back").unwrap();
    assert_eq!(read_transport(&mut t, 4), b"back");
}

#[test]
fn serial_scanner_end_to_end() {
    let mut dev = pty();
    let t = SerialTransport::open(config(&dev.path)).unwrap();
    let mut reader = ScannerReader::new(t, ScannerConfig::default(), 100);
    dev.master
        .write_all(b"4006381333931\r\x01\x02bad\r")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut events = Vec::new();
    let mut now = 0;
    while events.is_empty() && Instant::now() < deadline {
        now += 10;
        events.extend(reader.poll(Duration::from_millis(50), now).unwrap());
    }
    assert_eq!(events, vec![DeviceEvent::Scanned("4006381333931".into())]);
    for _ in 0..5 {
        now += 10;
        events.extend(reader.poll(Duration::from_millis(20), now).unwrap());
    }
    assert_eq!(events.len(), 1);
    assert_eq!(reader.rejected(), 1);
}

#[test]
fn serial_drawer_kicks_and_reports_unknown_status() {
    let mut dev = pty();
    let mut d = SerialDrawer::new(config(&dev.path), vec![0x07], None);
    d.kick().unwrap();
    assert_eq!(read_master(&mut dev.master, 1), [0x07]);
    assert_eq!(d.status().unwrap(), None);

    // A pty has no modem lines: a clear error, never a panic or a made-up status.
    let mut sensed = SerialDrawer::new(
        config(&dev.path),
        b"\x1bp\x00\x32\xfa".to_vec(),
        Some(DrawerSense {
            line: ModemLine::Dcd,
            open_when_asserted: true,
        }),
    );
    match sensed.status() {
        Ok(status) => assert!(status.is_some()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let mut empty = SerialDrawer::new(config(&dev.path), Vec::new(), None);
    assert!(empty.kick().is_err());
}
