//! A fault-injecting TCP proxy for the sync tests: terminals connect to it instead of the hub.
//!
//! [`ChaosProxy::start`] listens on 127.0.0.1:0 and forwards every accepted connection to an
//! upstream address that can be changed at any time ([`ChaosProxy::set_upstream`]: a hub
//! restarted on a new port is put behind the same proxy). Two threads pump each connection,
//! one per direction, a chunk (one `read`) at a time. Before a chunk is forwarded, a seeded
//! xorshift ([`XorShift`]) picks what happens to it, per [`Faults`]:
//!
//! * `drop`: both sides are closed (FIN), the chunk is lost;
//! * `reset`: both sides are reset (RST, `SO_LINGER` 0), the chunk is lost;
//! * `duplicate`: the chunk is written twice;
//! * `truncate`: a part of the chunk is written, then both sides are closed;
//! * `delay`: the chunk (and everything behind it) waits up to `delay_max_ms`.
//!
//! The destructive faults (all but the delay) stop after `max_faults`, so a test knows how many
//! failed connections, and thus how much reconnect backoff, it causes. A partition
//! ([`ChaosProxy::partition`]) cuts every open connection and holds new ones, accepted but not
//! forwarded (the client's bytes wait in the socket), until [`ChaosProxy::end_partition`] or
//! [`ChaosProxy::heal`]; then they are connected upstream like a network that came back.
//! `heal` also turns all faults off: from then on bytes pass unchanged.
//!
//! The seed is printed to stderr; `CHAOS_SEED=<seed>` replays the same decisions (the chunking
//! of the stream depends on timing, so a replay is close, not exact).

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::XorShift;

/// How often blocked reads and the accept loop look at the proxy's state.
const TICK: Duration = Duration::from_millis(20);

/// Fault rates in per mille of forwarded chunks (each direction separately).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub drop: u32,
    pub reset: u32,
    pub duplicate: u32,
    pub truncate: u32,
    pub delay: u32,
    /// Longest delay of a `delay` fault.
    pub delay_max_ms: u64,
    /// At most this many destructive faults (drop, reset, duplicate, truncate) in all.
    pub max_faults: u64,
}

impl Faults {
    /// No faults: bytes pass unchanged.
    pub fn none() -> Faults {
        Faults::default()
    }

    fn total(&self) -> u32 {
        self.drop + self.reset + self.duplicate + self.truncate + self.delay
    }
}

/// What the proxy did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: u64,
    pub chunks: u64,
    pub dropped: u64,
    pub reset: u64,
    pub duplicated: u64,
    pub truncated: u64,
    pub delayed: u64,
    /// Open connections cut by a partition.
    pub cut: u64,
    /// Connections accepted during a partition and held.
    pub held: u64,
    /// Connections closed because the upstream could not be reached.
    pub upstream_refused: u64,
}

impl Stats {
    /// Destructive faults applied (each ends a connection or corrupts its stream).
    pub fn destructive(&self) -> u64 {
        self.dropped + self.reset + self.duplicated + self.truncated
    }
}

/// The seed for a chaos run: `CHAOS_SEED` if set (to replay a failure), else a fresh one.
/// Printed either way, so a failing run says how to replay it.
pub fn seed_from_env() -> u64 {
    let seed = match std::env::var("CHAOS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CHAOS_SEED={s:?} is not a u64")),
        Err(_) => XorShift::from_entropy().next_u64(),
    };
    eprintln!("chaos seed {seed} (replay with CHAOS_SEED={seed})");
    seed
}

#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    faults: Faults,
    partitioned: bool,
    rng: XorShift,
    stats: Stats,
    conns: Vec<Weak<Conn>>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    state: Mutex<State>,
    /// Signalled when a partition ends or the proxy stops.
    changed: Condvar,
    stopping: AtomicBool,
    next_conn: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking pump thread must not take the whole proxy with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, conn: u64, what: &str) {
        eprintln!("[{} #{conn}] {what}", self.name);
    }
}

/// One proxied connection: the client's socket and the upstream one.
#[derive(Debug)]
struct Conn {
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
    closed: AtomicBool,
}

impl Conn {
    /// Close both sides: FIN, or RST when `reset`. Idempotent.
    fn close(&self, reset: bool) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for s in [&self.client, &self.upstream] {
            if reset {
                // The RST goes out when the last handle closes; shutting down the read side
                // only wakes the pump threads (nothing is sent), and they drop the handles.
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                let _ = s.shutdown(Shutdown::Read);
            } else {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The proxy; dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct ChaosProxy {
    addr: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl ChaosProxy {
    /// Listen on 127.0.0.1:0 and forward to `upstream`, with no faults yet. `name` prefixes
    /// what it prints.
    pub fn start(name: &str, upstream: SocketAddr, seed: u64) -> std::io::Result<ChaosProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        eprintln!("chaos proxy {name} on {addr} -> {upstream}, seed {seed}");
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            state: Mutex::new(State {
                upstream,
                faults: Faults::none(),
                partitioned: false,
                rng: XorShift::new(seed),
                stats: Stats::default(),
                conns: Vec::new(),
            }),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("chaos-{name}"))
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(ChaosProxy {
            addr,
            seed,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Forward new connections to `upstream` from now on (open ones stay where they are).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        self.shared.lock().upstream = upstream;
        self.shared.log(0, &format!("upstream is now {upstream}"));
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Cut every open connection and hold new ones until the partition ends.
    pub fn partition(&self) {
        let conns = {
            let mut st = self.shared.lock();
            st.partitioned = true;
            let open: Vec<Arc<Conn>> = st.conns.iter().filter_map(Weak::upgrade).collect();
            st.conns.clear();
            st.stats.cut += open.len() as u64;
            open
        };
        self.shared.log(
            0,
            &format!("partition: {} open connection(s) cut", conns.len()),
        );
        for c in conns {
            c.close(false);
        }
    }

    /// Forward again; held connections are connected upstream now.
    pub fn end_partition(&self) {
        self.shared.lock().partitioned = false;
        self.shared.changed.notify_all();
        self.shared.log(0, "partition ended");
    }

    /// No faults and no partition: from now on bytes pass unchanged.
    pub fn heal(&self) {
        {
            let mut st = self.shared.lock();
            st.faults = Faults::none();
            st.partitioned = false;
        }
        self.shared.changed.notify_all();
        self.shared.log(0, "healed");
    }

    /// Connections forwarded now.
    pub fn open_connections(&self) -> usize {
        let st = self.shared.lock();
        st.conns
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| !c.closed.load(Ordering::Acquire))
            .count()
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.changed.notify_all();
        let conns: Vec<Arc<Conn>> = self
            .shared
            .lock()
            .conns
            .drain(..)
            .filter_map(|w| w.upgrade())
            .collect();
        for c in conns {
            c.close(false);
        }
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stopping.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((client, _)) => {
                let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("chaos-{}-{id}", shared.name))
                    .spawn(move || connect(id, client, &shared));
                if let Err(e) = spawned {
                    eprintln!("chaos proxy: cannot start a connection thread: {e}");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                std::thread::sleep(TICK / 4);
            }
            Err(e) => {
                eprintln!("chaos proxy: accept failed: {e}");
                std::thread::sleep(TICK);
            }
        }
    }
}

/// Wait out a partition, connect upstream, then pump both directions.
fn connect(id: u64, client: TcpStream, shared: &Arc<Shared>) {
    let upstream_addr = {
        let mut st = shared.lock();
        st.stats.connections += 1;
        if st.partitioned {
            st.stats.held += 1;
            drop(st);
            shared.log(id, "held (partition)");
            st = shared.lock();
        }
        while st.partitioned && !shared.stopping.load(Ordering::Acquire) {
            st = shared
                .changed
                .wait_timeout(st, TICK * 5)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.upstream
    };
    if shared.stopping.load(Ordering::Acquire) {
        return;
    }
    let upstream = match TcpStream::connect_timeout(&upstream_addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            shared.lock().stats.upstream_refused += 1;
            shared.log(
                id,
                &format!("upstream {upstream_addr}: {e}; closing the client"),
            );
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    for s in [&client, &upstream] {
        if s.set_read_timeout(Some(TICK)).is_err() {
            return;
        }
    }
    let conn = Arc::new(Conn {
        id,
        client,
        upstream,
        closed: AtomicBool::new(false),
    });
    {
        let mut st = shared.lock();
        if st.partitioned {
            // A partition began while we connected.
            drop(st);
            conn.close(false);
            return;
        }
        st.conns.retain(|w| w.strong_count() > 0);
        st.conns.push(Arc::downgrade(&conn));
    }
    let back = {
        let (conn, shared) = (conn.clone(), shared.clone());
        std::thread::Builder::new()
            .name(format!("chaos-{}-{id}-down", shared.name))
            .spawn(move || pump(&conn, &shared, false))
    };
    pump(&conn, shared, true);
    if let Ok(t) = back {
        let _ = t.join();
    }
}

enum Action {
    Forward,
    Drop,
    Reset,
    Duplicate,
    Truncate(usize),
    Delay(Duration),
}

fn decide(shared: &Shared, len: usize) -> Action {
    let mut st = shared.lock();
    st.stats.chunks += 1;
    let f = st.faults;
    if f.total() == 0 {
        return Action::Forward;
    }
    let destructive_left = st.stats.destructive() < f.max_faults;
    let roll = (st.rng.next_u64() % 1000) as u32;
    let mut edge = 0;
    let mut hit = |rate: u32| {
        let lo = edge;
        edge += rate;
        roll >= lo && roll < edge
    };
    let (drop, reset, duplicate, truncate, delay) = (
        hit(f.drop),
        hit(f.reset),
        hit(f.duplicate),
        hit(f.truncate),
        hit(f.delay),
    );
    if destructive_left && drop {
        st.stats.dropped += 1;
        Action::Drop
    } else if destructive_left && reset {
        st.stats.reset += 1;
        Action::Reset
    } else if destructive_left && duplicate {
        st.stats.duplicated += 1;
        Action::Duplicate
    } else if destructive_left && truncate && len > 1 {
        st.stats.truncated += 1;
        Action::Truncate(st.rng.range(1, len as u64 - 1) as usize)
    } else if delay && f.delay_max_ms > 0 {
        st.stats.delayed += 1;
        Action::Delay(Duration::from_millis(st.rng.range(1, f.delay_max_ms)))
    } else {
        Action::Forward
    }
}

/// Copy one direction (`up`: client to upstream) a chunk at a time, applying faults.
fn pump(conn: &Conn, shared: &Shared, up: bool) {
    let (mut from, mut to) = if up {
        (&conn.client, &conn.upstream)
    } else {
        (&conn.upstream, &conn.client)
    };
    let dir = if up { "up" } else { "down" };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if conn.closed.load(Ordering::Acquire) || shared.stopping.load(Ordering::Acquire) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => {
                // Pass a half-close on (the peer may still answer), unless we are closing
                // (a reset must not be preceded by a FIN).
                if !conn.closed.load(Ordering::Acquire) {
                    let _ = to.shutdown(Shutdown::Write);
                }
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        if shared.lock().partitioned {
            break;
        }
        let written = match decide(shared, n) {
            Action::Forward => to.write_all(chunk),
            Action::Drop => {
                shared.log(conn.id, &format!("drop {dir} ({n} bytes lost)"));
                conn.close(false);
                return;
            }
            Action::Reset => {
                shared.log(conn.id, &format!("reset {dir} ({n} bytes lost)"));
                conn.close(true);
                return;
            }
            Action::Duplicate => {
                shared.log(conn.id, &format!("duplicate {dir} ({n} bytes)"));
                to.write_all(chunk).and_then(|()| to.write_all(chunk))
            }
            Action::Truncate(keep) => {
                shared.log(conn.id, &format!("truncate {dir} ({keep} of {n} bytes)"));
                let _ = to.write_all(&chunk[..keep]);
                conn.close(false);
                return;
            }
            Action::Delay(d) => {
                std::thread::sleep(d);
                to.write_all(chunk)
            }
        };
        if written.is_err() {
            break;
        }
    }
    conn.close(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server on 127.0.0.1:0.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    fn connect(proxy: &ChaosProxy) -> TcpStream {
        let s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Send `data` in pieces, read until the peer closes or `expect` bytes came back.
    fn roundtrip(proxy: &ChaosProxy, data: &[u8], expect: usize) -> Vec<u8> {
        let mut s = connect(proxy);
        let mut back = Vec::new();
        let mut buf = [0u8; 4096];
        for piece in data.chunks(100) {
            if s.write_all(piece).is_err() {
                break;
            }
            // One piece at a time: each is its own chunk at the proxy.
            let want = back.len() + piece.len();
            while back.len() < want.min(expect) {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return back,
                    Ok(n) => back.extend_from_slice(&buf[..n]),
                }
            }
        }
        let _ = s.shutdown(Shutdown::Write);
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return back,
                Ok(n) => back.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn payload(len: usize) -> Vec<u8> {
        let mut rng = XorShift::new(7);
        (0..len).map(|_| rng.next_u64() as u8).collect()
    }

    #[test]
    fn healed_bytes_pass_unchanged() {
        let proxy = ChaosProxy::start("test", echo_server(), 1).unwrap();
        let data = payload(20_000);
        assert_eq!(roundtrip(&proxy, &data, data.len()), data);
        // Faults on, then healed: unchanged again.
        proxy.set_faults(Faults {
            drop: 500,
            duplicate: 500,
            max_faults: 100,
            ..Faults::none()
        });
        proxy.heal();
        assert_eq!(roundtrip(&proxy, &data, data.len()), data);
        assert_eq!(proxy.stats().destructive(), 0);
    }

    #[test]
    fn delays_keep_the_bytes_and_their_order() {
        let proxy = ChaosProxy::start("test", echo_server(), 2).unwrap();
        proxy.set_faults(Faults {
            delay: 1000,
            delay_max_ms: 5,
            ..Faults::none()
        });
        let data = payload(5_000);
        assert_eq!(roundtrip(&proxy, &data, data.len()), data);
        assert!(proxy.stats().delayed > 0, "{:?}", proxy.stats());
    }

    #[test]
    fn duplicate_alters_the_stream() {
        let proxy = ChaosProxy::start("test", echo_server(), 3).unwrap();
        proxy.set_faults(Faults {
            duplicate: 1000,
            max_faults: 1,
            ..Faults::none()
        });
        let data = payload(1_000);
        let back = roundtrip(&proxy, &data, data.len() + 100);
        assert_eq!(proxy.stats().duplicated, 1);
        // The first piece went up twice; everything after it is unchanged.
        let mut want = data[..100].to_vec();
        want.extend_from_slice(&data);
        assert_eq!(back, want);
    }

    #[test]
    fn truncate_cuts_the_stream() {
        let proxy = ChaosProxy::start("test", echo_server(), 4).unwrap();
        proxy.set_faults(Faults {
            truncate: 1000,
            max_faults: 1,
            ..Faults::none()
        });
        let data = payload(1_000);
        let back = roundtrip(&proxy, &data, data.len());
        assert_eq!(proxy.stats().truncated, 1);
        assert!(back.len() < 100, "{} bytes came back", back.len());
        assert_eq!(back, data[..back.len()]);
    }

    #[test]
    fn drop_and_reset_end_the_connection() {
        for (faults, reset) in [
            (
                Faults {
                    drop: 1000,
                    max_faults: 1,
                    ..Faults::none()
                },
                false,
            ),
            (
                Faults {
                    reset: 1000,
                    max_faults: 1,
                    ..Faults::none()
                },
                true,
            ),
        ] {
            let proxy = ChaosProxy::start("test", echo_server(), 5).unwrap();
            proxy.set_faults(faults);
            let mut s = connect(&proxy);
            s.write_all(b"hello").unwrap();
            let mut buf = [0u8; 16];
            let got = s.read(&mut buf);
            if reset {
                let e = got.expect_err("a reset connection reads an error");
                assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
            } else {
                assert_eq!(got.unwrap(), 0, "a dropped connection reads EOF");
            }
            // The budget is spent: the next connection is clean.
            let data = payload(500);
            assert_eq!(roundtrip(&proxy, &data, data.len()), data);
        }
    }

    #[test]
    fn a_partition_cuts_open_connections_and_holds_new_ones_until_it_ends() {
        let proxy = ChaosProxy::start("test", echo_server(), 6).unwrap();
        let mut open = connect(&proxy);
        open.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).unwrap();
        assert_eq!(proxy.open_connections(), 1);
        proxy.partition();
        assert!(matches!(open.read(&mut buf), Ok(0) | Err(_)));
        assert_eq!(proxy.open_connections(), 0);
        // A new connection is accepted, its bytes wait.
        let mut held = connect(&proxy);
        held.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        held.write_all(b"later").unwrap();
        let e = held.read(&mut buf).expect_err("nothing is forwarded");
        assert!(
            matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{e}"
        );
        let ended = Instant::now();
        proxy.end_partition();
        held.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut five = [0u8; 5];
        held.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"later");
        assert!(ended.elapsed() < Duration::from_secs(5));
        let s = proxy.stats();
        assert_eq!((s.cut, s.held), (1, 1), "{s:?}");
    }

    #[test]
    fn the_upstream_can_change_at_runtime() {
        let proxy = ChaosProxy::start("test", echo_server(), 8).unwrap();
        // Nothing listens at the old address of a closed listener.
        let gone = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        proxy.set_upstream(gone);
        let mut s = connect(&proxy);
        let _ = s.write_all(b"x");
        let mut buf = [0u8; 1];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
        assert_eq!(proxy.stats().upstream_refused, 1);
        proxy.set_upstream(echo_server());
        let data = payload(300);
        assert_eq!(roundtrip(&proxy, &data, data.len()), data);
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let decisions = |seed: u64| {
            let proxy = ChaosProxy::start("test", echo_server(), seed).unwrap();
            proxy.set_faults(Faults {
                drop: 100,
                duplicate: 100,
                delay: 100,
                delay_max_ms: 1,
                max_faults: 1000,
                ..Faults::none()
            });
            (0..200)
                .map(|_| match decide(&proxy.shared, 10) {
                    Action::Forward => 'f',
                    Action::Drop => 'd',
                    Action::Duplicate => 'u',
                    Action::Delay(_) => 'w',
                    _ => '?',
                })
                .collect::<String>()
        };
        assert_eq!(decisions(42), decisions(42));
        assert_ne!(decisions(42), decisions(43));
    }
}
