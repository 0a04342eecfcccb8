//! An in-memory terminal and hub, each with a "database" that outlives its connection, and a
//! link per direction that can drop, duplicate, reorder or tamper with frames.
#![allow(clippy::unwrap_used, dead_code)]

use pos_audit::{ChainHash, ChainSummary, ChainVerifier, Checkpoint, Event, Finding};
use pos_core::Hlc;
use pos_sync::message::Message;
use pos_sync::testing::SignedChain;
use pos_sync::{
    encode_frame, AppEvent, Config, FrameDecoder, HubConnection, HubSetup, Now, OriginState,
    TerminalConnection, TerminalSetup,
};

pub const WALL0: u64 = 1_700_000_000_000;

pub fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: WALL0 + ms,
        hlc: Hlc::from_parts(WALL0 + ms, 0),
    }
}

pub fn small_config() -> Config {
    Config {
        max_batch_events: 40,
        receive_window: 120,
        ..Config::default()
    }
}

/// The terminal's durable state.
#[derive(Debug)]
pub struct TerminalDb {
    pub chain: SignedChain,
    pub hub_events: Vec<Event>,
    pub hub_head: (u64, ChainHash),
    pub hub_checkpoints: Vec<Checkpoint>,
    pub acked: u64,
    pub subscriptions: Vec<String>,
}

/// The hub's durable state for one terminal, plus its own chain.
#[derive(Debug)]
pub struct HubDb {
    pub chain: SignedChain,
    pub stored: Vec<Event>,
    pub checkpoints: Vec<Checkpoint>,
    pub seal: Option<Checkpoint>,
    pub head: (u64, ChainHash),
    pub held: bool,
    pub terminal_keys: Vec<pos_audit::PublicKey>,
    /// Keep Store events uncommitted (a slow disk) until `commit_pending`.
    pub defer_storage: bool,
    pub pending: Vec<pos_sync::VerifiedBatch>,
    pub store_events: usize,
}

impl HubDb {
    pub fn new(hub_seed: u8, terminal: &SignedChain) -> Self {
        HubDb {
            chain: SignedChain::new(hub_seed, 50),
            stored: Vec::new(),
            checkpoints: Vec::new(),
            seal: None,
            head: (0, ChainHash::GENESIS),
            held: false,
            terminal_keys: vec![terminal.key.public()],
            defer_storage: false,
            pending: Vec::new(),
            store_events: 0,
        }
    }

    /// Verify what the hub stored of the terminal exactly as `pos audit verify` would.
    pub fn verify_stored(&self, origin: pos_core::DeviceId) -> Result<ChainSummary, Finding> {
        let mut v = ChainVerifier::new(origin, &self.terminal_keys)
            .with_checkpoints(self.checkpoints.clone())
            .with_seal(self.seal.clone(), true);
        for e in &self.stored {
            v.push(e)?;
        }
        v.finish()
    }
}

pub type Tamper = Box<dyn FnMut(Vec<u8>) -> Vec<Vec<u8>>>;

pub fn pass() -> Tamper {
    Box::new(|f| vec![f])
}

pub struct Session {
    pub t: TerminalConnection,
    pub h: HubConnection,
    pub tdb: TerminalDb,
    pub hdb: HubDb,
    pub tlog: Vec<AppEvent>,
    pub hlog: Vec<AppEvent>,
    pub time: u64,
    pub t2h: Tamper,
    pub h2t: Tamper,
    pub frames_t2h: usize,
    pub frames_h2t: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("time", &self.time).finish()
    }
}

pub fn terminal_db(seed: u8, events: usize, modules: &[&str]) -> TerminalDb {
    let mut chain = SignedChain::new(seed, 100);
    chain.append_many(events, modules);
    TerminalDb {
        chain,
        hub_events: Vec::new(),
        hub_head: (0, ChainHash::GENESIS),
        hub_checkpoints: Vec::new(),
        acked: 0,
        subscriptions: vec!["catalogue".into(), "user".into()],
    }
}

impl Session {
    pub fn new(config: Config, tdb: TerminalDb, hdb: HubDb) -> Self {
        Self::connect(config, tdb, hdb, 0)
    }

    /// New connections over the databases as they are (a reconnect).
    pub fn connect(config: Config, tdb: TerminalDb, hdb: HubDb, time: u64) -> Self {
        let now = at(time);
        let t = TerminalConnection::new(
            config.clone(),
            TerminalSetup {
                device: tdb.chain.origin,
                own_head_seq: tdb.chain.head().0,
                hub: OriginState {
                    origin: hdb.chain.origin,
                    last_seq: tdb.hub_head.0,
                    head: tdb.hub_head.1,
                    keys: vec![hdb.chain.key.public()],
                    held: false,
                },
                subscriptions: tdb.subscriptions.clone(),
            },
            now,
        )
        .unwrap();
        let h = HubConnection::new(
            config,
            HubSetup {
                device: hdb.chain.origin,
                own_head_seq: hdb.chain.head().0,
                terminal: OriginState {
                    origin: tdb.chain.origin,
                    last_seq: hdb.head.0,
                    head: hdb.head.1,
                    keys: hdb.terminal_keys.clone(),
                    held: hdb.held,
                },
            },
            now,
        )
        .unwrap();
        Session {
            t,
            h,
            tdb,
            hdb,
            tlog: Vec::new(),
            hlog: Vec::new(),
            time,
            t2h: pass(),
            h2t: pass(),
            frames_t2h: 0,
            frames_h2t: 0,
        }
    }

    /// Tear down the connections, keep the databases.
    pub fn into_dbs(self) -> (TerminalDb, HubDb) {
        (self.tdb, self.hdb)
    }

    pub fn now(&self) -> Now {
        at(self.time)
    }

    fn service_terminal(&mut self) -> bool {
        let now = self.now();
        let mut progress = false;
        while let Some(ev) = self.t.poll_event() {
            progress = true;
            match &ev {
                AppEvent::NeedEvents(req) => {
                    let events = self.tdb.chain.read(req.first_seq, req.max_events);
                    let last = events.last().map_or(0, |e| e.seq);
                    let cps = self.tdb.chain.checkpoints_in(req.first_seq, last);
                    self.t
                        .supply_events(req, events, cps, &self.tdb.chain.key, now)
                        .unwrap();
                }
                AppEvent::Store(batch) => {
                    assert_eq!(batch.first_seq, self.tdb.hub_head.0 + 1, "stored twice");
                    self.tdb.hub_events.extend(batch.events.iter().cloned());
                    self.tdb
                        .hub_checkpoints
                        .extend(batch.checkpoints.iter().cloned());
                    self.tdb.hub_head = (batch.last_seq, batch.head);
                    self.t
                        .events_stored(batch.origin, batch.last_seq, now)
                        .unwrap();
                }
                AppEvent::Acked { seq, .. } => {
                    assert!(*seq > self.tdb.acked, "acks move forward");
                    self.tdb.acked = *seq;
                }
                _ => {}
            }
            self.tlog.push(ev);
        }
        progress
    }

    fn service_hub(&mut self) -> bool {
        let now = self.now();
        let mut progress = false;
        while let Some(ev) = self.h.poll_event() {
            progress = true;
            match &ev {
                AppEvent::NeedEvents(req) => {
                    let events = self.hdb.chain.read(req.first_seq, req.max_events);
                    let last = events.last().map_or(0, |e| e.seq);
                    let cps = self.hdb.chain.checkpoints_in(req.first_seq, last);
                    self.h
                        .supply_events(req, events, cps, &self.hdb.chain.key, now)
                        .unwrap();
                }
                AppEvent::Store(batch) => {
                    self.hdb.store_events += 1;
                    self.hdb.pending.push(batch.clone());
                    if !self.hdb.defer_storage {
                        self.commit_pending();
                    }
                }
                AppEvent::SecurityViolation { .. } => self.hdb.held = true,
                _ => {}
            }
            self.hlog.push(ev);
        }
        progress
    }

    /// The hub's IO layer commits what it was handed, then reports it.
    pub fn commit_pending(&mut self) {
        let now = self.now();
        for batch in std::mem::take(&mut self.hdb.pending) {
            assert_eq!(batch.first_seq, self.hdb.head.0 + 1, "stored twice");
            self.hdb.stored.extend(batch.events.iter().cloned());
            self.hdb
                .checkpoints
                .extend(batch.checkpoints.iter().cloned());
            self.hdb.seal = Some(batch.seal.clone());
            self.hdb.head = (batch.last_seq, batch.head);
            self.h
                .events_stored(batch.origin, batch.last_seq, now)
                .unwrap();
        }
    }

    /// Move frames and serve events until nothing happens any more.
    pub fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut progress = self.service_terminal() | self.service_hub();
            let now = self.now();
            while let Some(frame) = self.t.poll_transmit() {
                progress = true;
                self.frames_t2h += 1;
                for f in (self.t2h)(frame) {
                    self.h.receive(&f, now);
                }
            }
            while let Some(frame) = self.h.poll_transmit() {
                progress = true;
                self.frames_h2t += 1;
                for f in (self.h2t)(frame) {
                    self.t.receive(&f, now);
                }
            }
            if !progress {
                return;
            }
        }
        panic!("the conversation never settles");
    }

    /// Let `ms` pass: both ends handle their timers, then pump.
    pub fn advance(&mut self, ms: u64) {
        self.time += ms;
        let now = self.now();
        self.t.handle_timeout(now);
        self.h.handle_timeout(now);
        self.pump();
    }

    /// Pump, and let ack timeouts fire until both chains are fully delivered (or `rounds` pass).
    pub fn settle(&mut self, rounds: usize) {
        self.pump();
        let step = small_config().ack_timeout_ms;
        for _ in 0..rounds {
            if self.converged() {
                return;
            }
            // Stay under the idle timeout: heartbeats flow at each step.
            self.advance(step / 3);
        }
    }

    pub fn converged(&self) -> bool {
        self.hdb.head.0 == self.tdb.chain.head().0 && self.tdb.hub_head == self.hdb.chain.head()
    }

    pub fn hub_closed_with(&self) -> Option<(pos_sync::CloseReason, String)> {
        closed(&self.hlog)
    }

    pub fn terminal_closed_with(&self) -> Option<(pos_sync::CloseReason, String)> {
        closed(&self.tlog)
    }
}

pub fn closed(log: &[AppEvent]) -> Option<(pos_sync::CloseReason, String)> {
    log.iter().find_map(|e| match e {
        AppEvent::Closed { reason, detail, .. } => Some((*reason, detail.clone())),
        _ => None,
    })
}

pub fn frame_type(frame: &[u8]) -> u8 {
    frame[3]
}

pub const EVENT_BATCH: u8 = 3;
pub const ACK: u8 = 4;

pub fn decode(frame: &[u8]) -> Message {
    let mut d = FrameDecoder::new(u32::MAX);
    d.feed(frame);
    d.next_frame().unwrap().unwrap()
}

/// Decode a frame, change the message, encode it again.
pub fn rewrite(frame: Vec<u8>, change: impl FnOnce(&mut Message)) -> Vec<u8> {
    let mut msg = decode(&frame);
    change(&mut msg);
    encode_frame(&msg, u32::MAX).unwrap()
}

pub fn encode(msg: &Message) -> Vec<u8> {
    encode_frame(msg, u32::MAX).unwrap()
}
