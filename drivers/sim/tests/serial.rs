#![allow(clippy::unwrap_used)]
//! The pty-backed simulators against the real drivers: `ScannerReader<SerialTransport>` and
//! `SerialDrawer` open the simulator's slave path as their serial port.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pos_device_sim::{KickMatch, SimDrawer, SimScanner};
use pos_drivers::device::DeviceEvent;
use pos_drivers::drawer::SerialDrawer;
use pos_drivers::scanner::{ScannerConfig, ScannerReader};
use pos_drivers::serial::{SerialConfig, SerialTransport};

fn config(path: &Path) -> SerialConfig {
    SerialConfig::new(path.to_str().unwrap(), 9600)
}

/// The real scanner driver, polled on its own thread (as the device manager does), forwarding
/// codes to a channel until stopped.
struct Reader {
    codes: Receiver<String>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Reader {
    fn start(path: &Path, config: ScannerConfig) -> Reader {
        let t = SerialTransport::open(self::config(path)).unwrap();
        let mut reader = ScannerReader::new(t, config, 100);
        let (tx, codes) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let now = u64::try_from(start.elapsed().as_millis()).unwrap();
                for ev in reader.poll(Duration::from_millis(20), now).unwrap() {
                    if let DeviceEvent::Scanned(code) = ev {
                        tx.send(code).unwrap();
                    }
                }
            }
            reader.rejected()
        });
        Reader {
            codes,
            stop,
            thread: Some(thread),
        }
    }

    /// Wait for `n` codes (at most 5 s).
    fn take(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.codes.recv_timeout(left) {
                Ok(c) => out.push(c),
                Err(_) => break,
            }
        }
        out
    }

    /// Stop and return the number of rejected frames; no further code may have arrived.
    fn finish(mut self) -> u64 {
        std::thread::sleep(Duration::from_millis(150));
        self.stop.store(true, Ordering::Relaxed);
        let rejected = self.thread.take().unwrap().join().unwrap();
        let extra: Vec<String> = self.codes.try_iter().collect();
        assert!(extra.is_empty(), "unexpected codes {extra:?}");
        rejected
    }
}

fn no_debounce() -> ScannerConfig {
    ScannerConfig {
        debounce_ms: 0,
        ..ScannerConfig::default()
    }
}

#[test]
fn scanner_codes_arrive_exactly() {
    let mut sim = SimScanner::start(b"\r").unwrap();
    assert!(sim.path().starts_with("/dev/pts/"), "{:?}", sim.path());
    let reader = Reader::start(sim.path(), no_debounce());
    let codes = [
        "4006381333931",
        "5901234123457",
        "ABC-123",
        "0",
        "4006381333931",
    ];
    for c in codes {
        sim.scan(c).unwrap();
        // A scanner sends one code per trigger pull; let the driver see them as separate bursts.
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(reader.take(codes.len()), codes);
    assert_eq!(reader.finish(), 0);
}

#[test]
fn scanner_crlf_suffix_and_exact_suffix() {
    let mut sim = SimScanner::start(b"\r\n").unwrap();
    let reader = Reader::start(sim.path(), no_debounce());
    sim.scan("111").unwrap();
    sim.scan("222").unwrap();
    assert_eq!(reader.take(2), ["111", "222"]);
    assert_eq!(reader.finish(), 0);

    let mut sim = SimScanner::start(b"\x03").unwrap();
    assert_eq!(sim.suffix(), b"\x03");
    let reader = Reader::start(
        sim.path(),
        ScannerConfig {
            prefix: b"\x02".to_vec(),
            suffix: b"\x03".to_vec(),
            ..no_debounce()
        },
    );
    sim.scan("\x02STX-ETX").unwrap();
    assert_eq!(reader.take(1), ["STX-ETX"]);
    assert_eq!(reader.finish(), 0);
}

#[test]
fn garbage_then_codes_are_recovered() {
    let mut sim = SimScanner::start(b"\r").unwrap();
    let reader = Reader::start(sim.path(), no_debounce());
    // Control bytes and high bytes in a frame, a bare suffix, invalid UTF-8.
    sim.send_raw(b"\x00\x01\xff\xfe\x1b@garbage\r").unwrap();
    sim.send_raw(b"\r\n\r").unwrap();
    sim.send_raw(&[0xc3, 0x28, b'\r']).unwrap();
    sim.scan("12345670").unwrap();
    assert_eq!(reader.take(1), ["12345670"]);

    // A truncated scan (no suffix), then a pause longer than the inter-character timeout:
    // the fragment must not glue itself to the next code.
    sim.send_raw(b"9999").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sim.scan("87654321").unwrap();
    assert_eq!(reader.take(1), ["87654321"]);
    assert_eq!(reader.finish(), 2);
}

#[test]
fn flood_does_not_panic_and_codes_after_it_arrive() {
    let mut sim = SimScanner::start(b"\r").unwrap();
    let reader = Reader::start(sim.path(), no_debounce());
    // 256 KiB without a suffix: one overlong frame, bounded buffering in the driver.
    let flood = vec![b'7'; 256 * 1024];
    sim.send_raw(&flood).unwrap();
    sim.send_raw(b"\r").unwrap();
    // Then a burst of many valid codes back to back.
    let burst: Vec<String> = (0..500).map(|i| format!("CODE{i:05}")).collect();
    let mut bytes = Vec::new();
    for c in &burst {
        bytes.extend_from_slice(c.as_bytes());
        bytes.push(b'\r');
    }
    sim.send_raw(&bytes).unwrap();
    sim.scan("LAST").unwrap();
    let got = reader.take(burst.len() + 1);
    assert_eq!(got.len(), burst.len() + 1);
    assert_eq!(&got[..burst.len()], burst.as_slice());
    assert_eq!(got[burst.len()], "LAST");
    assert!(sim.bytes_sent() > 256 * 1024);
    assert_eq!(reader.finish(), 1);
}

#[test]
fn send_raw_times_out_when_nobody_reads() {
    // Nothing opens the slave: the pty buffer fills and the write reports it instead of hanging.
    let mut sim = SimScanner::start(b"\r").unwrap();
    let start = Instant::now();
    let err = sim.send_raw(&vec![b'x'; 4 * 1024 * 1024]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn serial_drawer_kicks_are_counted() {
    let sim = SimDrawer::start().unwrap();
    assert!(!sim.is_open());
    let mut drawer = SerialDrawer::new(config(sim.path()), b"\x1bp\x00\x32\xfa".to_vec(), None);
    drawer.kick().unwrap();
    assert!(sim.wait_kicks(1, Duration::from_secs(5)));
    assert!(sim.is_open());
    // The cashier closes it; the next kick opens it again.
    sim.set_open(false);
    assert!(!sim.is_open());
    drawer.kick().unwrap();
    drawer.kick().unwrap();
    assert!(sim.wait_kicks(3, Duration::from_secs(5)));
    assert!(sim.is_open());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(sim.kicks(), 3);
    assert_eq!(sim.bytes_received(), 15);
    // No switch configured: the real driver reports "unknown", whatever the simulated state.
    assert_eq!(drawer.status().unwrap(), None);
}

#[test]
fn bel_drawer_counts_single_byte_kicks_only() {
    let sim = SimDrawer::start_with(KickMatch::Exact(vec![0x07])).unwrap();
    let mut drawer = SerialDrawer::new(config(sim.path()), vec![0x07], None);
    for _ in 0..4 {
        drawer.kick().unwrap();
    }
    assert!(sim.wait_kicks(4, Duration::from_secs(5)));

    // An ESC/POS kick sent to a BEL drawer does nothing.
    let mut wrong = SerialDrawer::new(config(sim.path()), b"\x1bp\x00\x32\xfa".to_vec(), None);
    drop(drawer);
    wrong.kick().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.bytes_received() < 9 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sim.bytes_received(), 9);
    assert_eq!(sim.kicks(), 4);
}
