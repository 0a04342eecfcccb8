//! [`SimPrinter`]: a simulated network ESC/POS receipt printer (raw TCP, like port 9100).
//!
//! The printer listens on 127.0.0.1 on a port chosen by the OS. Each connection is served by its
//! own thread, which decodes the byte stream with [`Decoder`], renders printed items with
//! [`Renderer`] into a shared log and answers `DLE EOT n` real-time status requests.
//!
//! # Status bytes (Epson `DLE EOT n`)
//!
//! Every answer has the fixed bits 1 and 4 set (`0x12`), plus:
//!
//! | n | meaning            | bits                                                          |
//! |---|--------------------|---------------------------------------------------------------|
//! | 1 | printer status     | bit 2: drawer pin 3 high (drawer closed), bit 3: offline      |
//! | 2 | offline cause      | bit 2: cover open, bit 5: printing stopped by paper end       |
//! | 3 | error cause        | always `0x12` (no errors are simulated)                       |
//! | 4 | roll paper sensor  | bits 2,3: paper near end, bits 5,6: paper out                 |
//!
//! So a healthy printer answers `0x16` to `DLE EOT 1`. The printer reports itself offline (bit 3
//! of n = 1) while the cover is open or paper is out. Other values of n get no answer.
//!
//! # Paper out, cover open, offline
//!
//! While paper is out or the cover is open, the printer is stopped: it still answers status
//! requests, but print data received in that state is **dropped** (not printed, not held) and
//! counted by [`SimPrinter::dropped_bytes`]. A real printer buffers a little and then stops
//! reading; dropping makes the rule for drivers explicit and testable: check status before a job
//! and after it, and resend the job when the printer is back.
//!
//! [`SimPrinter::set_offline`] simulates a dead printer: connections are still accepted, but all
//! bytes are discarded (counted as dropped) and status requests are never answered.
//!
//! # Jobs
//!
//! [`SimPrinter::printed`] is the whole rendered log; [`SimPrinter::jobs`] splits it at each cut
//! (the `[CUT]` marker is not part of a job; trailing output after the last cut is the last job).
//! A partial line is only rendered when it is ended by LF, a cut, or the connection closing.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::escpos_decode::{Decoder, Item, Renderer};

/// How often blocked threads wake up to check for shutdown.
const POLL: Duration = Duration::from_millis(20);
/// Connections served at once; further connections are closed immediately.
pub const MAX_CONNECTIONS: usize = 64;

#[derive(Debug, Default)]
struct Log {
    done: Vec<String>,
    current: String,
}

#[derive(Debug, Default)]
struct Shared {
    shutdown: AtomicBool,
    paper_out: AtomicBool,
    cover_open: AtomicBool,
    near_end: AtomicBool,
    offline: AtomicBool,
    drawer_open: AtomicBool,
    dropped: AtomicU64,
    received: AtomicU64,
    kicks: AtomicU64,
    active: AtomicUsize,
    log: Mutex<Log>,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A poisoned log is still a valid log: every update is a single append.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.paper_out.load(Ordering::SeqCst) || self.cover_open.load(Ordering::SeqCst)
    }

    fn status(&self, n: u8) -> Option<u8> {
        const FIXED: u8 = 0x12;
        let flag = |f: &AtomicBool, bits: u8| if f.load(Ordering::SeqCst) { bits } else { 0 };
        match n {
            1 => {
                let drawer = if self.drawer_open.load(Ordering::SeqCst) {
                    0
                } else {
                    0x04
                };
                let offline = if self.stopped() { 0x08 } else { 0 };
                Some(FIXED | drawer | offline)
            }
            2 => Some(FIXED | flag(&self.cover_open, 0x04) | flag(&self.paper_out, 0x20)),
            3 => Some(FIXED),
            4 => Some(FIXED | flag(&self.near_end, 0x0C) | flag(&self.paper_out, 0x60)),
            _ => None,
        }
    }
}

/// A simulated TCP ESC/POS printer. Stops on [`SimPrinter::stop`] or drop.
#[derive(Debug)]
pub struct SimPrinter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl SimPrinter {
    /// Listen on 127.0.0.1 with an OS-chosen port and start serving.
    pub fn start() -> io::Result<SimPrinter> {
        SimPrinter::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Listen on `addr` (e.g. 127.0.0.1:9100 for `pos devices simulate`) and start serving.
    pub fn start_on(addr: SocketAddr) -> io::Result<SimPrinter> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("sim-printer-accept".into())
            .spawn(move || accept_loop(&listener, &s))?;
        tracing::debug!(%addr, "simulated printer listening");
        Ok(SimPrinter {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything rendered so far, all jobs including `[CUT]` markers.
    pub fn printed(&self) -> String {
        let log = self.shared.log();
        let mut s: String = log.done.concat();
        s.push_str(&log.current);
        s
    }

    /// The rendered output split at each cut (markers removed); output after the last cut,
    /// if any, is the last element.
    pub fn jobs(&self) -> Vec<String> {
        let log = self.shared.log();
        let mut jobs: Vec<String> = log
            .done
            .iter()
            .map(|j| j.strip_suffix("[CUT]\n").unwrap_or(j).to_owned())
            .collect();
        if !log.current.is_empty() {
            jobs.push(log.current.clone());
        }
        jobs
    }

    /// Forget everything printed so far.
    pub fn clear(&self) {
        let mut log = self.shared.log();
        log.done.clear();
        log.current.clear();
    }

    /// Paper roll empty: printing stops, print data is dropped.
    pub fn set_paper_out(&self, on: bool) {
        self.shared.paper_out.store(on, Ordering::SeqCst);
    }

    /// Cover open: printing stops, print data is dropped.
    pub fn set_cover_open(&self, on: bool) {
        self.shared.cover_open.store(on, Ordering::SeqCst);
    }

    /// Paper roll near its end (status only; printing continues).
    pub fn set_near_end(&self, on: bool) {
        self.shared.near_end.store(on, Ordering::SeqCst);
    }

    /// Dead printer: no status answers, all data discarded.
    pub fn set_offline(&self, on: bool) {
        self.shared.offline.store(on, Ordering::SeqCst);
    }

    /// Drawer open sensor (bit 2 of `DLE EOT 1` is clear while open).
    pub fn set_drawer_open(&self, on: bool) {
        self.shared.drawer_open.store(on, Ordering::SeqCst);
    }

    /// Print-data bytes dropped while stopped or offline.
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.dropped.load(Ordering::SeqCst)
    }

    /// Total bytes received on all connections.
    pub fn received_bytes(&self) -> u64 {
        self.shared.received.load(Ordering::SeqCst)
    }

    /// Drawer kick pulses (`ESC p`) executed.
    pub fn drawer_kicks(&self) -> u64 {
        self.shared.kicks.load(Ordering::SeqCst)
    }

    /// Connections currently being served.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Stop accepting, close all connections and join the threads. Idempotent; returns within
    /// a few poll intervals (threads use read timeouts).
    pub fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            if h.join().is_err() {
                tracing::warn!("simulated printer acceptor panicked");
            }
        }
    }
}

impl Drop for SimPrinter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !shared.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                conns.retain(|h| !h.is_finished());
                if shared.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    tracing::warn!(%peer, "simulated printer: too many connections");
                    drop(stream);
                    continue;
                }
                shared.active.fetch_add(1, Ordering::SeqCst);
                let s = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("sim-printer-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(stream, &s) {
                            tracing::debug!(%peer, error = %e, "simulated printer connection");
                        }
                        s.active.fetch_sub(1, Ordering::SeqCst);
                    });
                match spawned {
                    Ok(h) => conns.push(h),
                    Err(e) => {
                        shared.active.fetch_sub(1, Ordering::SeqCst);
                        tracing::warn!(error = %e, "simulated printer: cannot spawn");
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::debug!(error = %e, "simulated printer accept");
                std::thread::sleep(POLL);
            }
        }
    }
    for h in conns {
        let _ = h.join();
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut decoder = Decoder::new();
    let mut renderer = Renderer::new();
    let mut buf = [0u8; 4096];
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        shared.received.fetch_add(n as u64, Ordering::SeqCst);
        if shared.offline.load(Ordering::SeqCst) {
            shared.dropped.fetch_add(n as u64, Ordering::SeqCst);
            // Keep the decoder in step so a later status query is parsed correctly.
            let _ = decoder.feed(&buf[..n]);
            continue;
        }
        let stopped = shared.stopped();
        let pending_before = decoder.buffered_len();
        let items = decoder.feed(&buf[..n]);
        // Bytes whose meaning was settled by this read (a command split across reads is
        // counted once, when it completes).
        let resolved = n + pending_before - decoder.buffered_len().min(n + pending_before);
        handle(
            &items,
            stopped,
            resolved,
            &mut stream,
            &mut renderer,
            shared,
        )?;
    }
    let items = decoder.finish();
    let stopped = shared.stopped() || shared.offline.load(Ordering::SeqCst);
    if stopped {
        // Nothing left to print; pending bytes were already counted as dropped.
        return Ok(());
    }
    handle(&items, false, 0, &mut stream, &mut renderer, shared)?;
    let mut out = String::new();
    renderer.finish(&mut out);
    shared.log().current.push_str(&out);
    Ok(())
}

/// Act on decoded items: answer status queries, render print items unless `stopped` (then the
/// `resolved_len` bytes that produced `items`, less the status queries, count as dropped).
fn handle(
    items: &[Item],
    stopped: bool,
    resolved_len: usize,
    stream: &mut TcpStream,
    renderer: &mut Renderer,
    shared: &Shared,
) -> io::Result<()> {
    let mut answers = Vec::new();
    let mut status_bytes = 0usize;
    let mut out = String::new();
    for item in items {
        if let Item::StatusQuery(q) = item {
            status_bytes += 3;
            if let Some(b) = shared.status(*q) {
                answers.push(b);
            }
            continue;
        }
        if stopped {
            continue;
        }
        if let Item::DrawerKick { .. } = item {
            shared.kicks.fetch_add(1, Ordering::SeqCst);
        }
        renderer.push(item, &mut out);
        if let Item::Cut = item {
            let mut log = shared.log();
            log.current.push_str(&out);
            out.clear();
            let job = std::mem::take(&mut log.current);
            log.done.push(job);
        }
    }
    if stopped {
        let dropped = resolved_len.saturating_sub(status_bytes);
        shared.dropped.fetch_add(dropped as u64, Ordering::SeqCst);
    } else if !out.is_empty() {
        shared.log().current.push_str(&out);
    }
    if !answers.is_empty() {
        stream.write_all(&answers)?;
        stream.flush()?;
    }
    Ok(())
}
