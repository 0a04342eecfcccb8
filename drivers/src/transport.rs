//! Byte transports to devices, blocking std IO with bounded waits.
//!
//! [`Transport`] is what a driver (e.g. [`EscPosPrinter`](crate::printer::EscPosPrinter)) talks
//! through: write everything, read what is there within a timeout, reconnect. Nothing here
//! blocks forever: connects, writes and reads all have timeouts.
//!
//! * [`TcpTransport`]: network printers on raw TCP (port 9100). Connects lazily, sets
//!   `TCP_NODELAY`, notices a connection the printer closed before writing to it, and reconnects
//!   once when a write hits a broken pipe / reset before any byte of it was accepted.
//! * [`MemoryTransport`]: an in-memory device for tests: records writes, answers with scripted
//!   replies or a responder closure, can be told to fail.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The raw TCP printing port ("JetDirect" / "AppSocket").
pub const RAW_PRINT_PORT: u16 = 9100;

/// The shortest timeout handed to the OS (zero means "no timeout" or is refused there).
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// A bidirectional byte channel to one device.
pub trait Transport: Send {
    /// Send all of `bytes` (connecting first if needed).
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Read what the device sent, waiting at most `timeout`. `Ok(0)` means nothing arrived in
    /// time; a device that closed the connection is an error, not `Ok(0)`. A zero `timeout`
    /// only takes what is already there.
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Drop the current connection (if any) and connect again now.
    fn reconnect(&mut self) -> io::Result<()>;
    /// For logs and the device list, e.g. `tcp://192.168.1.50:9100`.
    fn describe(&self) -> String;
}

/// Where a [`TcpTransport`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpAddress {
    Socket(SocketAddr),
    /// `"host:port"` or just `"host"` (port 9100), resolved at each connect (so a printer
    /// whose DHCP address changed is found again).
    Host(String),
}

impl From<SocketAddr> for TcpAddress {
    fn from(a: SocketAddr) -> Self {
        TcpAddress::Socket(a)
    }
}

impl From<&str> for TcpAddress {
    fn from(s: &str) -> Self {
        match s.parse::<SocketAddr>() {
            Ok(a) => TcpAddress::Socket(a),
            Err(_) => TcpAddress::Host(s.to_owned()),
        }
    }
}

impl From<String> for TcpAddress {
    fn from(s: String) -> Self {
        TcpAddress::from(s.as_str())
    }
}

impl fmt::Display for TcpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpAddress::Socket(a) => write!(f, "{a}"),
            TcpAddress::Host(h) => f.write_str(h),
        }
    }
}

impl TcpAddress {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = match self {
            TcpAddress::Socket(a) => vec![*a],
            TcpAddress::Host(h) => match h.to_socket_addrs() {
                Ok(a) => a.collect(),
                // No port given: use the raw printing port.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    (h.as_str(), RAW_PRINT_PORT).to_socket_addrs()?.collect()
                }
                Err(e) => return Err(e),
            },
        };
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{self} resolves to no address"),
            ));
        }
        Ok(addrs)
    }
}

/// Timeouts of a [`TcpTransport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTimeouts {
    /// Per resolved address.
    pub connect: Duration,
    /// For each `write` system call; a printer that stops reading (buffer full, paper out on
    /// some models) makes the write fail after this long instead of hanging the till.
    pub write: Duration,
}

impl Default for TcpTimeouts {
    fn default() -> Self {
        TcpTimeouts {
            connect: Duration::from_secs(3),
            write: Duration::from_secs(5),
        }
    }
}

/// A network printer on raw TCP (port 9100).
#[derive(Debug)]
pub struct TcpTransport {
    addr: TcpAddress,
    timeouts: TcpTimeouts,
    stream: Option<TcpStream>,
}

impl TcpTransport {
    /// No connection is made until the first read or write.
    pub fn new(addr: impl Into<TcpAddress>, timeouts: TcpTimeouts) -> Self {
        TcpTransport {
            addr: addr.into(),
            timeouts,
            stream: None,
        }
    }

    pub fn address(&self) -> &TcpAddress {
        &self.addr
    }

    /// Whether a connection is currently open (it may still turn out to be dead).
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Close the connection; the next read or write connects again.
    pub fn disconnect(&mut self) {
        self.stream = None;
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in self.addr.resolve()? {
            match TcpStream::connect_timeout(&addr, self.timeouts.connect.max(MIN_TIMEOUT)) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_write_timeout(Some(self.timeouts.write.max(MIN_TIMEOUT)))?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            self.stream = Some(self.connect()?);
        }
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }

    /// Drop a connection the printer has closed (EOF or error pending), so the next write goes
    /// to a fresh one instead of into a dead socket.
    fn drop_if_dead(&mut self) {
        let dead = match &self.stream {
            Some(s) => !peer_alive(s),
            None => false,
        };
        if dead {
            self.stream = None;
        }
    }
}

/// Non-blocking peek: `Ok(0)` (EOF) or a hard error means the peer is gone; unread data or
/// "would block" means the connection is alive.
fn peer_alive(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let alive = match s.peek(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    };
    s.set_nonblocking(false).is_ok() && alive
}

/// The connection is gone (worth one reconnect).
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

/// Like `Write::write_all`, but on error also says how many bytes were accepted.
fn write_counting(s: &mut TcpStream, bytes: &[u8], timeout: Duration) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < bytes.len() {
        match s.write(&bytes[done..]) {
            Ok(0) => {
                return (
                    done,
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "printer took no data",
                    )),
                )
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (
                    done,
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("printer accepted no data for {timeout:?}"),
                    )),
                )
            }
            Err(e) => return (done, Err(e)),
        }
    }
    (done, s.flush())
}

impl Transport for TcpTransport {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.drop_if_dead();
        let timeout = self.timeouts.write;
        let (done, result) = write_counting(self.stream()?, bytes, timeout);
        match result {
            Ok(()) => Ok(()),
            // Nothing of this write reached the old connection: resend it all on a new one.
            // After a partial write the rest is not resent (the printer may have printed the
            // first part); the caller decides.
            Err(e) if is_disconnect(&e) && done == 0 => {
                self.stream = None;
                let (_, again) = write_counting(self.stream()?, bytes, timeout);
                if again.is_err() {
                    self.stream = None;
                }
                again
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        let s = self.stream()?;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = if left.is_zero() {
                s.set_nonblocking(true)
                    .and_then(|()| s.read(buf))
                    .and_then(|n| s.set_nonblocking(false).map(|()| n))
            } else {
                s.set_read_timeout(Some(left.max(MIN_TIMEOUT)))
                    .and_then(|()| s.read(buf))
            };
            match r {
                Ok(0) => {
                    break Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "printer closed the connection",
                    ))
                }
                Ok(n) => break Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if left.is_zero() {
                        // Restore blocking mode after the non-blocking poll.
                        break s.set_nonblocking(false).map(|()| 0);
                    }
                    if Instant::now() >= deadline {
                        break Ok(0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if Instant::now() >= deadline {
                        break Ok(0);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn reconnect(&mut self) -> io::Result<()> {
        self.stream = None;
        self.stream = Some(self.connect()?);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("tcp://{}", self.addr)
    }
}

/// What a [`MemoryTransport`] answers to each write.
pub type Responder = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// An in-memory device for tests: every write is recorded and handed to an optional responder
/// whose answer becomes readable; replies can also be queued directly. Reads never wait: with
/// nothing queued they return `Ok(0)` ("timed out") at once.
#[derive(Default)]
pub struct MemoryTransport {
    writes: Vec<Vec<u8>>,
    incoming: VecDeque<u8>,
    responder: Option<Responder>,
    fail_writes: VecDeque<io::ErrorKind>,
    fail_reads: VecDeque<io::ErrorKind>,
    reconnects: usize,
    fail_reconnect: bool,
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("writes", &self.writes.len())
            .field("incoming", &self.incoming.len())
            .field("responder", &self.responder.is_some())
            .field("reconnects", &self.reconnects)
            .finish_non_exhaustive()
    }
}

impl MemoryTransport {
    /// A device that never answers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A device that answers each write with `responder(bytes)`.
    pub fn with_responder(responder: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static) -> Self {
        MemoryTransport {
            responder: Some(Box::new(responder)),
            ..Self::default()
        }
    }

    /// Replace the responder.
    pub fn set_responder(&mut self, responder: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static) {
        self.responder = Some(Box::new(responder));
    }

    /// Make `bytes` readable now.
    pub fn push_reply(&mut self, bytes: &[u8]) {
        self.incoming.extend(bytes);
    }

    /// The next write fails with `kind` (queued: call again for more failures).
    pub fn fail_next_write(&mut self, kind: io::ErrorKind) {
        self.fail_writes.push_back(kind);
    }

    /// The next read fails with `kind`.
    pub fn fail_next_read(&mut self, kind: io::ErrorKind) {
        self.fail_reads.push_back(kind);
    }

    /// Make [`Transport::reconnect`] fail (`ConnectionRefused`) while `on`.
    pub fn set_fail_reconnect(&mut self, on: bool) {
        self.fail_reconnect = on;
    }

    /// Each successful `write_all` call, in order.
    pub fn writes(&self) -> &[Vec<u8>] {
        &self.writes
    }

    /// All bytes written, concatenated.
    pub fn written(&self) -> Vec<u8> {
        self.writes.concat()
    }

    /// Forget the recorded writes.
    pub fn clear_writes(&mut self) {
        self.writes.clear();
    }

    /// Bytes queued for reading.
    pub fn pending(&self) -> usize {
        self.incoming.len()
    }

    /// How often [`Transport::reconnect`] was called.
    pub fn reconnects(&self) -> usize {
        self.reconnects
    }
}

impl Transport for MemoryTransport {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(kind) = self.fail_writes.pop_front() {
            return Err(io::Error::new(kind, "scripted write failure"));
        }
        self.writes.push(bytes.to_vec());
        if let Some(r) = self.responder.as_mut() {
            let reply = r(bytes);
            self.incoming.extend(reply);
        }
        Ok(())
    }

    fn read_some(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        if let Some(kind) = self.fail_reads.pop_front() {
            return Err(io::Error::new(kind, "scripted read failure"));
        }
        let mut n = 0;
        while n < buf.len() {
            match self.incoming.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }

    fn reconnect(&mut self) -> io::Result<()> {
        self.reconnects += 1;
        if self.fail_reconnect {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "scripted reconnect failure",
            ));
        }
        self.incoming.clear();
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn address_forms() {
        let a: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        assert_eq!(TcpAddress::from("127.0.0.1:9100"), TcpAddress::Socket(a));
        assert_eq!(TcpAddress::from(a), TcpAddress::Socket(a));
        assert_eq!(
            TcpAddress::from("printer.local:9100".to_owned()),
            TcpAddress::Host("printer.local:9100".into())
        );
        assert_eq!(
            TcpAddress::Host("localhost".into()).resolve().unwrap()[0].port(),
            RAW_PRINT_PORT
        );
        let t = TcpTransport::new("10.0.0.9:9100", TcpTimeouts::default());
        assert_eq!(t.describe(), "tcp://10.0.0.9:9100");
        assert!(!t.is_connected(), "connects lazily");
    }

    #[test]
    fn memory_records_and_answers() {
        let mut m = MemoryTransport::with_responder(|b| b.iter().rev().copied().collect());
        m.write_all(b"ab").unwrap();
        m.push_reply(b"z");
        let mut buf = [0u8; 8];
        assert_eq!(m.read_some(&mut buf, Duration::ZERO).unwrap(), 3);
        assert_eq!(&buf[..3], b"baz");
        assert_eq!(m.read_some(&mut buf, Duration::ZERO).unwrap(), 0);
        m.fail_next_write(io::ErrorKind::BrokenPipe);
        assert!(m.write_all(b"x").is_err());
        m.write_all(b"y").unwrap();
        assert_eq!(m.written(), b"aby");
    }

    #[test]
    fn tcp_reads_time_out_and_reconnects_after_peer_close() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut t = TcpTransport::new(addr, TcpTimeouts::default());

        // First connection: the peer reads 3 bytes, answers one, then closes.
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 3];
            s.read_exact(&mut b).unwrap();
            s.write_all(&[0x16]).unwrap();
            drop(s);
            // Second connection: everything it receives.
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });

        t.write_all(&[0x10, 0x04, 0x01]).unwrap();
        assert!(t.is_connected());
        let mut buf = [0u8; 4];
        assert_eq!(t.read_some(&mut buf, Duration::from_secs(2)).unwrap(), 1);
        assert_eq!(buf[0], 0x16);
        // The peer closed: reading says so (an error, not a timeout).
        let start = Instant::now();
        let err = t.read_some(&mut buf, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!t.is_connected());

        // The next write goes to a new connection.
        t.write_all(b"hello").unwrap();
        t.disconnect();
        assert_eq!(server.join().unwrap(), b"hello");
    }

    #[test]
    fn tcp_write_to_a_dead_connection_reconnects() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut t = TcpTransport::new(addr, TcpTimeouts::default());
        t.reconnect().unwrap();
        let (first, _) = listener.accept().unwrap();
        drop(first);
        std::thread::sleep(Duration::from_millis(50));
        // No read in between: the write notices the closed connection and uses a new one.
        t.write_all(b"job").unwrap();
        let (mut second, _) = listener.accept().unwrap();
        t.disconnect();
        let mut got = Vec::new();
        second.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"job");
    }

    #[test]
    fn tcp_read_timeout_is_bounded_and_refused_connect_errors() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut t = TcpTransport::new(addr, TcpTimeouts::default());
        let mut buf = [0u8; 1];
        let start = Instant::now();
        assert_eq!(
            t.read_some(&mut buf, Duration::from_millis(100)).unwrap(),
            0
        );
        assert_eq!(t.read_some(&mut buf, Duration::ZERO).unwrap(), 0);
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(listener);
        t.disconnect();
        let err = t.write_all(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(!t.is_connected());
    }
}
