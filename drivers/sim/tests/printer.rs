#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pos_device_sim::SimPrinter;

/// Upper bound for anything asynchronous; tests normally finish far sooner.
const GENEROUS: Duration = Duration::from_secs(10);

fn connect(p: &SimPrinter) -> TcpStream {
    let s = TcpStream::connect(p.addr()).unwrap();
    s.set_read_timeout(Some(GENEROUS)).unwrap();
    s
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < GENEROUS, "condition not reached in time");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status(s: &mut TcpStream, n: u8) -> u8 {
    s.write_all(&[0x10, 0x04, n]).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    b[0]
}

const JOB: &[u8] = b"\x1b@\x1bt\x13\x1ba\x01\x1bE\x01CAFE 3PLUG\x1bE\x00\nEspresso   2,50 \xd5\n\x1bp\x00\x19\xfa\x1dVA\x00";

#[test]
fn prints_job_over_tcp() {
    let p = SimPrinter::start().unwrap();
    let mut s = connect(&p);
    s.write_all(JOB).unwrap();
    s.write_all(b"second job\n\x1dV\x00").unwrap();
    wait_until(|| p.jobs().len() == 2);
    let printed = p.printed();
    assert!(printed.contains("**CAFE 3PLUG**"), "{printed}");
    assert!(printed.contains("Espresso   2,50 €"), "{printed}");
    assert_eq!(
        p.jobs(),
        vec![
            "**CAFE 3PLUG**\nEspresso   2,50 €\n[DRAWER pin 2]\n".to_string(),
            "second job\n".to_string()
        ]
    );
    assert_eq!(p.drawer_kicks(), 1);
}

#[test]
fn partial_line_is_printed_when_connection_closes() {
    let p = SimPrinter::start().unwrap();
    let mut s = connect(&p);
    s.write_all(b"no newline").unwrap();
    drop(s);
    wait_until(|| p.printed() == "no newline\n");
}

#[test]
fn status_bytes() {
    let p = SimPrinter::start().unwrap();
    let mut s = connect(&p);
    assert_eq!(status(&mut s, 1), 0x16);
    assert_eq!(status(&mut s, 2), 0x12);
    assert_eq!(status(&mut s, 3), 0x12);
    assert_eq!(status(&mut s, 4), 0x12);

    p.set_near_end(true);
    assert_eq!(status(&mut s, 4), 0x1E);
    assert_eq!(status(&mut s, 1), 0x16);
    p.set_near_end(false);

    p.set_paper_out(true);
    assert_eq!(status(&mut s, 1), 0x1E);
    assert_eq!(status(&mut s, 2), 0x32);
    assert_eq!(status(&mut s, 4), 0x72);
    p.set_paper_out(false);

    p.set_cover_open(true);
    assert_eq!(status(&mut s, 1), 0x1E);
    assert_eq!(status(&mut s, 2), 0x16);
    assert_eq!(status(&mut s, 4), 0x12);
    p.set_cover_open(false);

    p.set_drawer_open(true);
    assert_eq!(status(&mut s, 1), 0x12);
    p.set_drawer_open(false);

    // Several queries in one write get answers in order.
    s.write_all(b"\x10\x04\x01\x10\x04\x04").unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b, [0x16, 0x12]);
}

#[test]
fn paper_out_drops_print_data_then_resumes() {
    let p = SimPrinter::start().unwrap();
    let mut s = connect(&p);
    p.set_paper_out(true);
    s.write_all(b"lost receipt\n\x1dV\x00").unwrap();
    // The status answer proves the data before it was processed.
    assert_eq!(status(&mut s, 4), 0x72);
    assert_eq!(p.dropped_bytes(), 16);
    assert_eq!(p.printed(), "");

    p.set_paper_out(false);
    assert_eq!(status(&mut s, 4), 0x12);
    s.write_all(b"reprinted receipt\n\x1dV\x00").unwrap();
    wait_until(|| p.jobs().len() == 1);
    assert_eq!(p.jobs(), vec!["reprinted receipt\n".to_string()]);
}

#[test]
fn offline_printer_never_answers() {
    let p = SimPrinter::start().unwrap();
    let mut s = TcpStream::connect(p.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    p.set_offline(true);
    s.write_all(b"\x10\x04\x01hello\n").unwrap();
    let mut b = [0u8; 1];
    let err = s.read_exact(&mut b).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    wait_until(|| p.received_bytes() == 9);
    assert_eq!(p.printed(), "");

    // Back online: answers again.
    p.set_offline(false);
    s.set_read_timeout(Some(GENEROUS)).unwrap();
    assert_eq!(status(&mut s, 1), 0x16);
}

#[test]
fn many_connections_and_garbage_do_not_break_the_printer() {
    let p = SimPrinter::start().unwrap();
    let mut seed: u32 = 0x1234_5678;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut s = connect(&p);
        let garbage: Vec<u8> = (0..5000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed >> 24) as u8
            })
            .collect();
        // Garbage may contain status queries; the printer may answer, which we ignore.
        s.write_all(&garbage).unwrap();
        clients.push(s);
    }
    // End each garbage stream with a truncated GS ( k, then close half of the connections.
    for (i, s) in clients.iter_mut().enumerate() {
        s.write_all(b"\x1d(k\xff\xff").unwrap();
        if i % 2 == 0 {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
    }
    let mut s = connect(&p);
    s.write_all(b"\x1b@still alive\n").unwrap();
    wait_until(|| p.printed().contains("still alive\n"));
    assert_eq!(status(&mut s, 1), 0x16);
    drop(clients);
    wait_until(|| p.active_connections() <= 1);
}

#[test]
fn stop_returns_promptly_with_open_connections() {
    let mut p = SimPrinter::start().unwrap();
    let _s = connect(&p);
    let _t = connect(&p);
    wait_until(|| p.active_connections() == 2);
    let start = Instant::now();
    p.stop();
    assert!(start.elapsed() < GENEROUS);
    p.stop();
    assert!(TcpStream::connect_timeout(&p.addr(), Duration::from_secs(1)).is_err());
}
