//! In-memory hub and terminal storage over real signed chains, and a hub rig on 127.0.0.1.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pos_audit::{ChainHash, ChainVerifier, Checkpoint, DeviceKey, Event, PublicKey};
use pos_core::{DeviceId, Hlc, HlcClock};
use pos_sync::testing::SignedChain;
use pos_sync::{BatchRequest, OriginState, VerifiedBatch};
use pos_sync_net::memory::MemoryDirectory;
use pos_sync_net::{
    Backoff, EnrollRequest, EnrollmentCode, HubEnrollment, HubHandle, HubNames, HubPki, HubServer,
    HubServerConfig, HubServices, HubStorage, Notice, StorageError, SyncStatus, TerminalClient,
    TerminalClientConfig, TerminalIdentity, TerminalStorage, TerminalTls,
};
use tokio::sync::watch;

/// Generous: the machine may be loaded; nothing waits this long when things work.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub const HUB_SEED: u8 = 9;

pub fn hub_id() -> DeviceId {
    DeviceId::from_bytes([HUB_SEED; 16])
}

pub fn small_sync() -> pos_sync::Config {
    pos_sync::Config {
        max_batch_events: 40,
        receive_window: 120,
        ..pos_sync::Config::default()
    }
}

#[derive(Debug)]
pub struct TerminalCopy {
    pub stored: Vec<Event>,
    pub checkpoints: Vec<Checkpoint>,
    pub seal: Option<Checkpoint>,
    pub head: (u64, ChainHash),
    pub held: bool,
    pub store_calls: usize,
}

impl Default for TerminalCopy {
    fn default() -> Self {
        TerminalCopy {
            stored: Vec::new(),
            checkpoints: Vec::new(),
            seal: None,
            head: (0, ChainHash::GENESIS),
            held: false,
            store_calls: 0,
        }
    }
}

#[derive(Debug)]
pub struct HubDb {
    pub chain: SignedChain,
    pub copies: HashMap<DeviceId, TerminalCopy>,
    pub origin_state_calls: Vec<DeviceId>,
    pub violations: Vec<(DeviceId, u64, String)>,
    pub notices: Vec<(DeviceId, Notice)>,
}

/// The hub's "database": its own chain and a copy of each terminal's.
#[derive(Debug)]
pub struct MemHub {
    pub db: Mutex<HubDb>,
    pub directory: Arc<MemoryDirectory>,
    clock: Mutex<HlcClock>,
    /// Highest terminal seq stored, per device, to wait on.
    pub stored: watch::Sender<HashMap<DeviceId, u64>>,
    /// Every `store` fails as SQLite does on a full disk (nothing written).
    pub disk_full: std::sync::atomic::AtomicBool,
    /// `store` calls refused while the disk was full.
    pub refused_stores: std::sync::atomic::AtomicU64,
}

impl MemHub {
    pub fn new(master_events: usize, directory: Arc<MemoryDirectory>) -> Arc<Self> {
        let mut chain = SignedChain::new(HUB_SEED, 50);
        chain.append_many(master_events, &["catalogue", "user", "setting"]);
        Arc::new(MemHub {
            db: Mutex::new(HubDb {
                chain,
                copies: HashMap::new(),
                origin_state_calls: Vec::new(),
                violations: Vec::new(),
                notices: Vec::new(),
            }),
            directory,
            clock: Mutex::new(HlcClock::default()),
            stored: watch::channel(HashMap::new()).0,
            disk_full: std::sync::atomic::AtomicBool::new(false),
            refused_stores: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn audit_key(&self) -> PublicKey {
        self.db.lock().unwrap().chain.key.public()
    }

    pub fn head(&self) -> u64 {
        self.db.lock().unwrap().chain.head().0
    }

    pub fn append_master(&self, n: usize) -> u64 {
        let mut db = self.db.lock().unwrap();
        db.chain.append_many(n, &["catalogue"]);
        db.chain.head().0
    }

    pub async fn wait_stored(&self, device: DeviceId, seq: u64) {
        let mut rx = self.stored.subscribe();
        tokio::time::timeout(PATIENCE, rx.wait_for(|m| m.get(&device) >= Some(&seq)))
            .await
            .expect("the hub stored the terminal's records in time")
            .unwrap();
    }

    /// Verify the stored copy as `pos audit verify` would; return its length.
    pub fn verify_copy(&self, device: DeviceId, key: PublicKey) -> u64 {
        let db = self.db.lock().unwrap();
        let copy = &db.copies[&device];
        let keys = [key];
        let mut v = ChainVerifier::new(device, &keys)
            .with_checkpoints(copy.checkpoints.clone())
            .with_seal(copy.seal.clone(), true);
        for e in &copy.stored {
            v.push(e).unwrap();
        }
        v.finish().unwrap();
        let seqs: Vec<u64> = copy.stored.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "every record stored exactly once, in order");
        seqs.len() as u64
    }

    pub fn asked_about(&self, device: DeviceId) -> bool {
        self.db.lock().unwrap().origin_state_calls.contains(&device)
    }
}

impl HubStorage for MemHub {
    fn own_head_seq(&self) -> Result<u64, StorageError> {
        Ok(self.head())
    }

    fn origin_state(&self, origin: DeviceId) -> Result<OriginState, StorageError> {
        let keys = self
            .directory
            .device(origin)
            .map(|d| vec![d.audit_key])
            .unwrap_or_default();
        let mut db = self.db.lock().unwrap();
        db.origin_state_calls.push(origin);
        let copy = db.copies.entry(origin).or_default();
        let head = if copy.head.0 == 0 {
            (0, ChainHash::GENESIS)
        } else {
            copy.head
        };
        Ok(OriginState {
            origin,
            last_seq: head.0,
            head: head.1,
            keys,
            held: copy.held,
        })
    }

    fn store(&self, batch: &VerifiedBatch) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        if self.disk_full.load(Ordering::SeqCst) {
            self.refused_stores.fetch_add(1, Ordering::SeqCst);
            return Err(StorageError("database or disk is full".into()));
        }
        let mut db = self.db.lock().unwrap();
        let copy = db.copies.entry(batch.origin).or_default();
        if batch.first_seq != copy.head.0 + 1 {
            return Err(StorageError(format!(
                "batch from {} but the copy ends at {}",
                batch.first_seq, copy.head.0
            )));
        }
        copy.stored.extend(batch.events.iter().cloned());
        copy.checkpoints.extend(batch.checkpoints.iter().cloned());
        copy.seal = Some(batch.seal.clone());
        copy.head = (batch.last_seq, batch.head);
        copy.store_calls += 1;
        let (origin, last) = (batch.origin, batch.last_seq);
        drop(db);
        self.stored.send_modify(|m| {
            m.insert(origin, last);
        });
        Ok(())
    }

    fn events_for(
        &self,
        req: &BatchRequest,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError> {
        let db = self.db.lock().unwrap();
        let events = db.chain.read(req.first_seq, req.max_events);
        let last = events.last().map_or(0, |e| e.seq);
        Ok((events, db.chain.checkpoints_in(req.first_seq, last)))
    }

    fn security_violation(
        &self,
        _device: DeviceId,
        origin: DeviceId,
        seq: u64,
        why: &str,
    ) -> Result<(), StorageError> {
        let mut db = self.db.lock().unwrap();
        db.violations.push((origin, seq, why.to_owned()));
        db.copies.entry(origin).or_default().held = true;
        Ok(())
    }

    fn note(&self, device: DeviceId, notice: &Notice) {
        self.db
            .lock()
            .unwrap()
            .notices
            .push((device, notice.clone()));
    }

    fn hlc_now(&self, wall_ms: u64) -> Hlc {
        self.clock.lock().unwrap().tick(wall_ms)
    }

    fn observe_hlc(&self, remote: Hlc, wall_ms: u64) {
        self.clock.lock().unwrap().observe(remote, wall_ms);
    }
}

#[derive(Debug)]
pub struct TerminalDb {
    pub chain: SignedChain,
    pub acked: u64,
    pub hub_events: Vec<Event>,
    pub hub_head: (u64, ChainHash),
    pub hub_key: Option<PublicKey>,
}

/// A terminal's "database": its chain (the outbox) and the hub's master data.
#[derive(Debug)]
pub struct MemTerminal {
    pub db: Mutex<TerminalDb>,
    pub hub: DeviceId,
    clock: Mutex<HlcClock>,
    pub master: watch::Sender<u64>,
}

impl MemTerminal {
    pub fn new(seed: u8, events: usize) -> Arc<Self> {
        let mut chain = SignedChain::new(seed, 100);
        chain.append_many(events, &["sale", "stock"]);
        Arc::new(MemTerminal {
            db: Mutex::new(TerminalDb {
                chain,
                acked: 0,
                hub_events: Vec::new(),
                hub_head: (0, ChainHash::GENESIS),
                hub_key: None,
            }),
            hub: hub_id(),
            clock: Mutex::new(HlcClock::default()),
            master: watch::channel(0).0,
        })
    }

    pub fn device(&self) -> DeviceId {
        self.db.lock().unwrap().chain.origin
    }

    /// The same key as the chain's, for enrollment and signing.
    pub fn audit_key(seed: u8) -> Arc<DeviceKey> {
        Arc::new(DeviceKey::from_seed([seed; 32]))
    }

    pub fn set_hub_key(&self, key: PublicKey) {
        self.db.lock().unwrap().hub_key = Some(key);
    }

    pub fn append(&self, n: usize) -> u64 {
        let mut db = self.db.lock().unwrap();
        db.chain.append_many(n, &["sale"]);
        db.chain.head().0
    }

    pub async fn wait_master(&self, seq: u64) {
        let mut rx = self.master.subscribe();
        tokio::time::timeout(PATIENCE, rx.wait_for(|s| *s >= seq))
            .await
            .expect("the terminal stored the hub's master data in time")
            .unwrap();
    }
}

impl TerminalStorage for MemTerminal {
    fn own_head(&self) -> Result<u64, StorageError> {
        Ok(self.db.lock().unwrap().chain.head().0)
    }

    fn acked_seq(&self) -> Result<u64, StorageError> {
        Ok(self.db.lock().unwrap().acked)
    }

    fn acked(&self, seq: u64) -> Result<(), StorageError> {
        let mut db = self.db.lock().unwrap();
        db.acked = db.acked.max(seq);
        Ok(())
    }

    fn hub_state(&self) -> Result<OriginState, StorageError> {
        let db = self.db.lock().unwrap();
        Ok(OriginState {
            origin: self.hub,
            last_seq: db.hub_head.0,
            head: db.hub_head.1,
            keys: db.hub_key.into_iter().collect(),
            held: false,
        })
    }

    fn events_for_sync(
        &self,
        first_seq: u64,
        max: u32,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError> {
        let db = self.db.lock().unwrap();
        let events = db.chain.read(first_seq, max);
        let last = events.last().map_or(0, |e| e.seq);
        Ok((events, db.chain.checkpoints_in(first_seq, last)))
    }

    fn store_master(&self, batch: &VerifiedBatch) -> Result<(), StorageError> {
        let mut db = self.db.lock().unwrap();
        if batch.first_seq != db.hub_head.0 + 1 {
            return Err(StorageError("master data out of order".into()));
        }
        db.hub_events.extend(batch.events.iter().cloned());
        db.hub_head = (batch.last_seq, batch.head);
        drop(db);
        self.master.send_replace(batch.last_seq);
        Ok(())
    }

    fn security_violation(
        &self,
        _origin: DeviceId,
        _seq: u64,
        _why: &str,
    ) -> Result<(), StorageError> {
        Ok(())
    }

    fn hlc_now(&self, wall_ms: u64) -> Hlc {
        self.clock.lock().unwrap().tick(wall_ms)
    }

    fn observe_hlc(&self, remote: Hlc, wall_ms: u64) {
        self.clock.lock().unwrap().observe(remote, wall_ms);
    }
}

/// A hub on 127.0.0.1 with an in-memory CA, directory and storage.
pub struct Hub {
    pub pki: Arc<HubPki>,
    pub directory: Arc<MemoryDirectory>,
    pub storage: Arc<MemHub>,
    pub handle: HubHandle,
    pub addr: SocketAddr,
}

pub fn hub_config() -> HubServerConfig {
    HubServerConfig {
        sync: small_sync(),
        handshake_timeout: Duration::from_secs(5),
        enrollment_timeout: Duration::from_secs(30),
        ..HubServerConfig::default()
    }
}

impl Hub {
    pub async fn start(master_events: usize) -> Hub {
        let names = HubNames {
            dns: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
        };
        let pki = Arc::new(HubPki::in_memory(hub_id(), &names).unwrap());
        Self::start_with(pki, master_events).await
    }

    pub async fn start_with(pki: Arc<HubPki>, master_events: usize) -> Hub {
        let directory = Arc::new(MemoryDirectory::default());
        let storage = MemHub::new(master_events, directory.clone());
        Self::serve(pki, directory, storage, "127.0.0.1:0".parse().unwrap()).await
    }

    /// A hub with other limits.
    pub async fn start_configured(config: HubServerConfig) -> Hub {
        let pki = Arc::new(HubPki::in_memory(hub_id(), &HubNames::default()).unwrap());
        let directory = Arc::new(MemoryDirectory::default());
        let storage = MemHub::new(0, directory.clone());
        Self::serve_with(
            pki,
            directory,
            storage,
            "127.0.0.1:0".parse().unwrap(),
            config,
        )
        .await
    }

    /// A hub over existing state (a restart), on `addr`.
    pub async fn serve(
        pki: Arc<HubPki>,
        directory: Arc<MemoryDirectory>,
        storage: Arc<MemHub>,
        addr: SocketAddr,
    ) -> Hub {
        Self::serve_with(pki, directory, storage, addr, hub_config()).await
    }

    pub async fn serve_with(
        pki: Arc<HubPki>,
        directory: Arc<MemoryDirectory>,
        storage: Arc<MemHub>,
        addr: SocketAddr,
        config: HubServerConfig,
    ) -> Hub {
        let services = HubServices {
            hub: hub_id(),
            key: Arc::new(DeviceKey::from_seed([HUB_SEED; 32])),
            pki: pki.clone(),
            directory: directory.clone(),
            storage: storage.clone(),
            enrollment: Some(HubEnrollment {
                book: directory.clone(),
                hub_name: "Branch hub".into(),
                device_validity_days: 30,
            }),
        };
        let server = HubServer::bind(addr, config, services).await.unwrap();
        let handle = server.spawn().unwrap();
        let addr = handle.local_addr();
        Hub {
            pki,
            directory,
            storage,
            handle,
            addr,
        }
    }

    pub fn code(&self) -> EnrollmentCode {
        self.directory
            .issue_code(SystemTime::now(), Duration::from_secs(600))
            .unwrap()
    }

    pub fn enroll_request(&self, code: EnrollmentCode, seed: u8) -> EnrollRequest {
        EnrollRequest {
            hub_addr: self.addr.to_string(),
            code,
            device: DeviceId::from_bytes([seed; 16]),
            name: format!("Till {seed}"),
            audit_key: MemTerminal::audit_key(seed),
            timeout: PATIENCE,
        }
    }

    /// Enroll terminal `seed` with a fresh code and save its files under `dir`.
    pub async fn enroll(&self, seed: u8, dir: &std::path::Path) -> TerminalTls {
        let enrollment = pos_sync_net::enroll(&self.enroll_request(self.code(), seed))
            .await
            .unwrap();
        enrollment.save(dir).unwrap();
        TerminalTls::load(dir).unwrap().unwrap()
    }
}

pub fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        reset_after: Duration::from_secs(30),
    }
}

/// Start the sync task of an enrolled terminal.
pub fn start_terminal(
    tls: &TerminalTls,
    hub_addr: SocketAddr,
    seed: u8,
    storage: Arc<MemTerminal>,
) -> TerminalClient {
    storage.set_hub_key(tls.hub.audit_key().unwrap());
    let config = TerminalClientConfig {
        hub_addr: hub_addr.to_string(),
        server_name: tls.hub.server_name.clone(),
        sync: small_sync(),
        subscriptions: vec!["catalogue".into(), "user".into()],
        backoff: fast_backoff(),
        connect_timeout: Duration::from_secs(20),
    };
    let identity = TerminalIdentity {
        device: DeviceId::from_bytes([seed; 16]),
        key: MemTerminal::audit_key(seed),
        tls: tls.client_config().unwrap(),
    };
    TerminalClient::spawn(config, identity, storage)
}

pub async fn wait_status(
    client: &TerminalClient,
    what: &str,
    f: impl FnMut(&SyncStatus) -> bool,
) -> SyncStatus {
    let mut rx = client.status();
    let got = tokio::time::timeout(PATIENCE, rx.wait_for(f))
        .await
        .map(|r| r.map(|s| s.clone()));
    match got {
        Ok(Ok(s)) => s,
        _ => panic!("status never reached `{what}`: {:?}", *rx.borrow()),
    }
}

/// Everything logged by this test binary (a global subscriber: connection tasks run on any
/// worker thread). Tests look for their own lines.
pub fn captured_logs() -> String {
    use std::sync::OnceLock;
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    });
    String::from_utf8_lossy(&logs.lock().unwrap()).into_owned()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Wait until the log has a line containing all of `parts`.
pub async fn wait_log(parts: &[&str]) -> String {
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            let logs = captured_logs();
            if let Some(line) = logs.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    match found {
        Ok(line) => line,
        Err(_) => panic!("no log line with {parts:?}"),
    }
}
