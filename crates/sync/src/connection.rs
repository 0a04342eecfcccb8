//! The state machine shared by both ends: handshake, one outgoing and one incoming chain,
//! acks, window, heartbeats, timeouts. `TerminalConnection` and `HubConnection` set it up.

use std::collections::VecDeque;

use pos_audit::{ChainHash, Checkpoint, DeviceKey, Event, Finding, PublicKey};
use pos_core::{DeviceId, DeviceRole, Hlc};

use crate::frame::{encode_frame, FrameDecoder, MIN_MAX_FRAME_BYTES};
use crate::message::{
    valid_subscriptions, Ack, BatchEntry, Close, CloseReason, Credit, Cursor, EventBatch,
    Heartbeat, Hello, HelloAck, Message, Reject, RejectReason, PROTOCOL_VERSION,
};
use crate::verify::{build_batch, check_contiguous, verify_entries, BatchLimits};
use crate::{ApiError, AppEvent, BatchRequest, Config, Now, OriginState, VerifiedBatch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHello,
    AwaitHelloAck,
    Established,
    Closed,
}

/// Our chain going to the peer.
#[derive(Debug)]
struct SendStream {
    origin: DeviceId,
    /// The peer has stored up to here.
    acked: u64,
    /// The next seq to send.
    next: u64,
    /// Our log has records up to here (as told by the IO layer).
    available: u64,
    /// The highest seq sent on this connection (an ack beyond it is a protocol violation).
    sent_high: u64,
    /// A `NeedEvents` from this seq is outstanding.
    requested_from: Option<u64>,
    /// When the ack cursor last moved (or the first unacked event went out).
    last_progress_ms: u64,
    /// The peer refused the stream; nothing more is sent.
    stopped: bool,
    /// Modules sent in full (the hub's master data); `None`: everything in full.
    full_modules: Option<Vec<String>>,
}

impl SendStream {
    fn in_flight(&self) -> u64 {
        self.next.saturating_sub(1).saturating_sub(self.acked)
    }
}

/// The peer's chain coming to us.
#[derive(Debug)]
struct RecvStream {
    origin: DeviceId,
    keys: Vec<PublicKey>,
    /// Stored durably and acknowledged.
    durable: u64,
    /// Verified and handed to the IO layer (>= durable).
    accepted_seq: u64,
    accepted_head: ChainHash,
    held: bool,
    /// Only the hub may redact (its master data); a terminal sends its whole chain.
    accept_redacted: bool,
}

#[derive(Debug)]
pub(crate) struct Core {
    config: Config,
    role: DeviceRole,
    me: DeviceId,
    peer: DeviceId,
    phase: Phase,
    decoder: FrameDecoder,
    outbox: VecDeque<Message>,
    events: VecDeque<AppEvent>,
    send: SendStream,
    recv: RecvStream,
    peer_window: u32,
    peer_max_frame: u32,
    /// The largest receive window we ever announced: what the peer may legitimately use.
    window_granted: u32,
    now: Now,
    last_rx_ms: u64,
    last_tx_ms: u64,
    peer_hlc: Hlc,
    /// The peer's own head from its Hello / HelloAck cursors.
    peer_head: Option<u64>,
    skew_flagged: bool,
    /// Terminal: its own subscriptions; hub: the terminal's, once known.
    subscriptions: Vec<String>,
}

/// How one end starts.
pub(crate) struct Start {
    pub role: DeviceRole,
    pub me: DeviceId,
    pub own_head_seq: u64,
    pub peer: OriginState,
    pub subscriptions: Vec<String>,
}

impl Core {
    pub(crate) fn new(config: Config, start: Start, now: Now) -> Result<Self, ApiError> {
        if !valid_subscriptions(&start.subscriptions) {
            let bad = start
                .subscriptions
                .iter()
                .find(|s| !crate::wire::is_module_name(s))
                .cloned()
                .unwrap_or_else(|| format!("{} subscriptions", start.subscriptions.len()));
            return Err(ApiError::BadSubscription(bad));
        }
        let config = Config {
            max_frame_bytes: config.max_frame_bytes.max(MIN_MAX_FRAME_BYTES),
            receive_window: config.receive_window.max(1),
            max_batch_events: config.max_batch_events.max(1),
            ..config
        };
        let terminal = start.role == DeviceRole::Terminal;
        let mut core = Core {
            decoder: FrameDecoder::new(config.max_frame_bytes),
            window_granted: config.receive_window,
            role: start.role,
            me: start.me,
            peer: start.peer.origin,
            phase: if terminal {
                Phase::AwaitHelloAck
            } else {
                Phase::AwaitHello
            },
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            send: SendStream {
                origin: start.me,
                acked: 0,
                next: 1,
                available: start.own_head_seq,
                sent_high: 0,
                requested_from: None,
                last_progress_ms: now.mono_ms,
                stopped: false,
                full_modules: None,
            },
            recv: RecvStream {
                origin: start.peer.origin,
                keys: start.peer.keys,
                durable: start.peer.last_seq,
                accepted_seq: start.peer.last_seq,
                accepted_head: start.peer.head,
                held: start.peer.held,
                accept_redacted: terminal,
            },
            peer_window: 0,
            // Until the peer announces its limit, stay within what every device accepts.
            peer_max_frame: MIN_MAX_FRAME_BYTES,
            now,
            last_rx_ms: now.mono_ms,
            last_tx_ms: now.mono_ms,
            peer_hlc: Hlc::ZERO,
            peer_head: None,
            skew_flagged: false,
            subscriptions: start.subscriptions,
            config,
        };
        if terminal {
            let hello = Hello {
                protocol_version: PROTOCOL_VERSION,
                device: core.me,
                role: DeviceRole::Terminal,
                hlc: now.hlc,
                wall_ms: now.wall_ms,
                max_frame_bytes: core.config.max_frame_bytes,
                receive_window: core.config.receive_window,
                cursors: core.cursors(),
                subscriptions: core.subscriptions.clone(),
            };
            core.outbox.push_back(Message::Hello(hello));
        }
        Ok(core)
    }

    fn cursors(&self) -> Vec<Cursor> {
        vec![
            Cursor {
                origin: self.me,
                seq: self.send.available,
            },
            Cursor {
                origin: self.recv.origin,
                seq: self.recv.durable,
            },
        ]
    }

    // ----- inputs -----

    pub(crate) fn receive(&mut self, bytes: &[u8], now: Now) {
        self.now = now;
        if self.phase == Phase::Closed {
            return;
        }
        self.decoder.feed(bytes);
        loop {
            match self.decoder.next_frame() {
                Ok(Some(msg)) => {
                    self.handle_message(msg, now);
                    if self.phase == Phase::Closed {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => return self.close(CloseReason::ProtocolViolation, &e.to_string()),
            }
        }
    }

    pub(crate) fn handle_message(&mut self, msg: Message, now: Now) {
        self.now = now;
        if self.phase == Phase::Closed {
            return;
        }
        self.last_rx_ms = now.mono_ms;
        match (self.phase, msg) {
            (_, Message::Close(c)) => {
                self.phase = Phase::Closed;
                self.events.push_back(AppEvent::Closed {
                    reason: c.reason,
                    detail: c.detail,
                    by_peer: true,
                });
            }
            (Phase::AwaitHello, Message::Hello(h)) => self.on_hello(h),
            (Phase::AwaitHelloAck, Message::HelloAck(a)) => self.on_hello_ack(a),
            (Phase::Established, Message::EventBatch(b)) => self.on_batch(b),
            (Phase::Established, Message::Ack(a)) => self.on_ack(a),
            (Phase::Established, Message::Credit(c)) => self.peer_window = c.window,
            (Phase::Established, Message::Reject(r)) => self.on_reject(r),
            (Phase::Established, Message::Heartbeat(h)) => {
                self.observe_clock(h.hlc, h.wall_ms);
            }
            (phase, other) => {
                let when = match phase {
                    Phase::Established => "after the handshake",
                    _ => "during the handshake",
                };
                let detail = format!("unexpected {} message {when}", other.name());
                return self.close(CloseReason::ProtocolViolation, &detail);
            }
        }
        self.drive();
    }

    pub(crate) fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        if self.phase == Phase::Closed {
            return;
        }
        if now.mono_ms.saturating_sub(self.last_rx_ms) >= self.config.idle_timeout_ms {
            let detail = format!(
                "nothing received for {} s",
                self.config.idle_timeout_ms / 1000
            );
            return self.close(CloseReason::IdleTimeout, &detail);
        }
        if self.phase != Phase::Established {
            return;
        }
        let send = &mut self.send;
        if send.in_flight() > 0
            && now.mono_ms.saturating_sub(send.last_progress_ms) >= self.config.ack_timeout_ms
        {
            // Retransmit from the ack cursor: duplicates are harmless to the receiver.
            send.next = send.acked + 1;
            send.requested_from = None;
            send.last_progress_ms = now.mono_ms;
        }
        if self.outbox.is_empty()
            && now.mono_ms.saturating_sub(self.last_tx_ms) >= self.config.heartbeat_interval_ms
        {
            self.outbox.push_back(Message::Heartbeat(Heartbeat {
                hlc: now.hlc,
                wall_ms: now.wall_ms,
            }));
        }
        self.drive();
    }

    pub(crate) fn connection_lost(&mut self, now: Now) {
        self.now = now;
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        let detail = if self.decoder.is_mid_frame() {
            "the transport ended in the middle of a frame"
        } else {
            "the transport ended without a Close"
        };
        self.events.push_back(AppEvent::Closed {
            reason: CloseReason::ConnectionLost,
            detail: detail.to_owned(),
            by_peer: true,
        });
    }

    pub(crate) fn close(&mut self, reason: CloseReason, detail: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.outbox.push_back(Message::Close(Close {
            reason,
            detail: detail.to_owned(),
        }));
        self.events.push_back(AppEvent::Closed {
            reason,
            detail: detail.to_owned(),
            by_peer: false,
        });
    }

    pub(crate) fn outbox_has(&mut self, last_seq: u64, now: Now) {
        self.now = now;
        self.send.available = self.send.available.max(last_seq);
        self.drive();
    }

    pub(crate) fn supply_events(
        &mut self,
        request: &BatchRequest,
        events: Vec<Event>,
        checkpoints: Vec<Checkpoint>,
        key: &DeviceKey,
        now: Now,
    ) -> Result<(), ApiError> {
        self.now = now;
        let origin = self.send.origin;
        if let Some(e) = events.iter().find(|e| e.origin != origin) {
            return Err(ApiError::WrongOrigin {
                expected: origin,
                found: e.origin,
            });
        }
        if let Some(first) = events.first().filter(|e| e.seq != request.first_seq) {
            return Err(ApiError::WrongStart {
                expected: request.first_seq,
                found: first.seq,
            });
        }
        if let Some(pair) = events.windows(2).find(|p| p[1].seq != p[0].seq + 1) {
            return Err(ApiError::NotContiguous {
                previous: pair[0].seq,
                found: pair[1].seq,
            });
        }
        if self.send.requested_from != Some(request.first_seq) || request.origin != origin {
            // An answer to a request overtaken by a rewind: the current one is still open.
            return Ok(());
        }
        self.send.requested_from = None;
        if events.is_empty() {
            // The log has nothing from there: whatever outbox_has said was optimistic.
            self.send.available = request.first_seq - 1;
        } else if self.phase == Phase::Established && !self.send.stopped {
            self.send_batch(events, &checkpoints, key);
        }
        self.drive();
        Ok(())
    }

    pub(crate) fn events_stored(
        &mut self,
        origin: DeviceId,
        up_to: u64,
        now: Now,
    ) -> Result<(), ApiError> {
        self.now = now;
        if origin != self.recv.origin {
            return Err(ApiError::UnknownOrigin(origin));
        }
        if up_to > self.recv.accepted_seq {
            return Err(ApiError::StoredBeyondAccepted {
                up_to,
                accepted: self.recv.accepted_seq,
            });
        }
        if up_to > self.recv.durable {
            self.recv.durable = up_to;
            if self.phase != Phase::Closed {
                self.outbox
                    .push_back(Message::Ack(Ack { origin, seq: up_to }));
            }
        }
        Ok(())
    }

    pub(crate) fn set_receive_window(&mut self, window: u32, now: Now) {
        self.now = now;
        self.window_granted = self.window_granted.max(window);
        if self.phase != Phase::Closed {
            self.outbox.push_back(Message::Credit(Credit { window }));
        }
    }

    // ----- outputs -----

    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let msg = self.outbox.pop_front()?;
        self.last_tx_ms = self.now.mono_ms;
        match encode_frame(&msg, self.peer_max_frame) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                // Batches are cut to the peer's limit; anything else is tiny. Should this ever
                // fail, end the connection rather than send what the peer would refuse.
                self.outbox.clear();
                self.close(CloseReason::Internal, &format!("could not encode: {e}"));
                let msg = self.outbox.pop_front()?;
                encode_frame(&msg, self.peer_max_frame).ok()
            }
        }
    }

    pub(crate) fn poll_message(&mut self) -> Option<Message> {
        let msg = self.outbox.pop_front()?;
        self.last_tx_ms = self.now.mono_ms;
        Some(msg)
    }

    pub(crate) fn poll_event(&mut self) -> Option<AppEvent> {
        self.events.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        if self.phase == Phase::Closed {
            return None;
        }
        let c = &self.config;
        let mut deadline = self.last_rx_ms.saturating_add(c.idle_timeout_ms);
        if self.phase == Phase::Established {
            deadline = deadline.min(self.last_tx_ms.saturating_add(c.heartbeat_interval_ms));
            if self.send.in_flight() > 0 {
                deadline =
                    deadline.min(self.send.last_progress_ms.saturating_add(c.ack_timeout_ms));
            }
        }
        Some(deadline)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub(crate) fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    pub(crate) fn peer_hlc(&self) -> Hlc {
        self.peer_hlc
    }

    pub(crate) fn subscriptions(&self) -> &[String] {
        &self.subscriptions
    }

    // ----- handshake -----

    fn on_hello(&mut self, h: Hello) {
        self.observe_clock(h.hlc, h.wall_ms);
        if h.protocol_version != PROTOCOL_VERSION {
            let detail = format!(
                "this hub speaks sync protocol {PROTOCOL_VERSION}, the terminal {}",
                h.protocol_version
            );
            return self.close(CloseReason::VersionMismatch, &detail);
        }
        if h.role != DeviceRole::Terminal {
            return self.close(CloseReason::WrongPeer, "only terminals connect to a hub");
        }
        if h.device != self.peer {
            let detail = format!(
                "the Hello names device {} but the connection is authenticated as {}",
                h.device, self.peer
            );
            return self.close(CloseReason::WrongPeer, &detail);
        }
        if !self.accept_peer_limits(h.max_frame_bytes, h.receive_window) {
            return;
        }
        if !valid_subscriptions(&h.subscriptions) {
            return self.close(CloseReason::ProtocolViolation, "invalid subscriptions");
        }
        self.subscriptions = h.subscriptions;
        self.send.full_modules = Some(self.subscriptions.clone());
        self.take_cursors(&h.cursors);
        self.outbox.push_back(Message::HelloAck(HelloAck {
            protocol_version: PROTOCOL_VERSION,
            device: self.me,
            hlc: self.now.hlc,
            wall_ms: self.now.wall_ms,
            max_frame_bytes: self.config.max_frame_bytes,
            receive_window: self.config.receive_window,
            cursors: self.cursors(),
        }));
        self.established();
    }

    fn on_hello_ack(&mut self, a: HelloAck) {
        self.observe_clock(a.hlc, a.wall_ms);
        if a.protocol_version != PROTOCOL_VERSION {
            let detail = format!(
                "this terminal speaks sync protocol {PROTOCOL_VERSION}, the hub chose {}",
                a.protocol_version
            );
            return self.close(CloseReason::VersionMismatch, &detail);
        }
        if a.device != self.peer {
            let detail = format!(
                "the hub answered as device {}, enrolled hub is {}",
                a.device, self.peer
            );
            return self.close(CloseReason::WrongPeer, &detail);
        }
        if !self.accept_peer_limits(a.max_frame_bytes, a.receive_window) {
            return;
        }
        self.take_cursors(&a.cursors);
        self.established();
    }

    fn accept_peer_limits(&mut self, max_frame_bytes: u32, window: u32) -> bool {
        if max_frame_bytes < MIN_MAX_FRAME_BYTES {
            let detail = format!(
                "the peer's frame limit of {max_frame_bytes} bytes is below the minimum of {MIN_MAX_FRAME_BYTES}"
            );
            self.close(CloseReason::ProtocolViolation, &detail);
            return false;
        }
        self.peer_max_frame = max_frame_bytes;
        self.peer_window = window;
        true
    }

    /// The peer's cursors: where to start sending, and whether an author lost its history.
    fn take_cursors(&mut self, cursors: &[Cursor]) {
        let has = |origin| cursors.iter().find(|c| c.origin == origin).map(|c| c.seq);
        self.peer_head = has(self.peer);
        let peer_has_ours = has(self.send.origin).unwrap_or(0);
        if peer_has_ours > self.send.available {
            self.events.push_back(AppEvent::LostHistory {
                origin: self.send.origin,
                author_has: self.send.available,
                copy_has: peer_has_ours,
            });
        }
        self.send.acked = peer_has_ours;
        self.send.next = peer_has_ours + 1;
        self.send.sent_high = peer_has_ours;
        if let Some(author_has) = has(self.recv.origin) {
            if author_has < self.recv.durable {
                self.events.push_back(AppEvent::LostHistory {
                    origin: self.recv.origin,
                    author_has,
                    copy_has: self.recv.durable,
                });
            }
        }
    }

    fn established(&mut self) {
        self.phase = Phase::Established;
        self.send.last_progress_ms = self.now.mono_ms;
        self.events.push_back(AppEvent::Connected {
            peer: self.peer,
            subscriptions: self.subscriptions.clone(),
            peer_head: self.peer_head,
        });
    }

    fn observe_clock(&mut self, hlc: Hlc, wall_ms: u64) {
        self.peer_hlc = self.peer_hlc.max(hlc);
        // The hub flags terminals; a terminal takes the hub's time as the reference.
        if self.role != DeviceRole::Hub {
            return;
        }
        let ours = i128::from(self.now.wall_ms);
        let wall_skew = i128::from(wall_ms) - ours;
        // An HLC can run ahead of its wall clock (it once was set forward) but never behind.
        let hlc_skew = i128::from(hlc.wall_ms()) - ours;
        let skew = if hlc_skew > wall_skew.abs() {
            hlc_skew
        } else {
            wall_skew
        };
        let skew = skew.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        let limit = self.config.max_clock_skew_ms;
        if skew.unsigned_abs() > limit && !self.skew_flagged {
            self.skew_flagged = true;
            self.events.push_back(AppEvent::ClockSkew {
                device: self.peer,
                skew_ms: skew,
            });
        } else if skew.unsigned_abs() <= limit / 2 {
            self.skew_flagged = false;
        }
    }

    // ----- sending -----

    /// Ask for the next events when the window allows and the log has more.
    fn drive(&mut self) {
        let send = &mut self.send;
        if self.phase != Phase::Established
            || send.stopped
            || send.requested_from.is_some()
            || send.next > send.available
        {
            return;
        }
        let room = u64::from(self.peer_window).saturating_sub(send.in_flight());
        let max = room
            .min(u64::from(self.config.max_batch_events))
            .min(send.available - send.next + 1);
        if max == 0 {
            return;
        }
        send.requested_from = Some(send.next);
        self.events.push_back(AppEvent::NeedEvents(BatchRequest {
            origin: send.origin,
            first_seq: send.next,
            // max <= max_batch_events, a u32.
            max_events: max as u32,
        }));
    }

    fn send_batch(&mut self, events: Vec<Event>, checkpoints: &[Checkpoint], key: &DeviceKey) {
        let send = &mut self.send;
        let room = u64::from(self.peer_window).saturating_sub(send.in_flight());
        let max_entries = room.min(u64::from(self.config.max_batch_events)) as usize;
        if max_entries == 0 {
            return;
        }
        let limits = BatchLimits {
            max_entries,
            max_frame_bytes: self.peer_max_frame as usize,
            full_modules: send.full_modules.as_deref(),
        };
        let Some(batch) = build_batch(send.origin, events, checkpoints, key, &limits) else {
            return;
        };
        if send.in_flight() == 0 {
            send.last_progress_ms = self.now.mono_ms;
        }
        let last = batch.last_seq();
        send.next = last + 1;
        send.sent_high = send.sent_high.max(last);
        send.available = send.available.max(last);
        self.outbox.push_back(Message::EventBatch(batch));
    }

    fn on_ack(&mut self, ack: Ack) {
        if ack.origin != self.send.origin {
            let detail = format!("ack for origin {}, which is not sent here", ack.origin);
            return self.close(CloseReason::ProtocolViolation, &detail);
        }
        let send = &mut self.send;
        if ack.seq > send.sent_high {
            let detail = format!(
                "ack for seq {}, but only up to {} was sent",
                ack.seq, send.sent_high
            );
            return self.close(CloseReason::ProtocolViolation, &detail);
        }
        if ack.seq <= send.acked {
            return; // duplicate or stale
        }
        send.acked = ack.seq;
        send.next = send.next.max(ack.seq + 1);
        send.last_progress_ms = self.now.mono_ms;
        self.events.push_back(AppEvent::Acked {
            origin: ack.origin,
            seq: ack.seq,
        });
    }

    fn on_reject(&mut self, r: Reject) {
        if r.origin != self.send.origin {
            let detail = format!("reject for origin {}, which is not sent here", r.origin);
            return self.close(CloseReason::ProtocolViolation, &detail);
        }
        let send = &mut self.send;
        match r.reason {
            RejectReason::Gap => {
                // Rewind, but never below what the peer acknowledged: a late Gap is stale.
                if r.seq < send.next {
                    send.next = r.seq.max(send.acked + 1);
                    send.requested_from = None;
                }
            }
            reason => {
                send.stopped = true;
                self.events.push_back(AppEvent::Rejected {
                    origin: r.origin,
                    seq: r.seq,
                    reason,
                    detail: r.detail,
                });
            }
        }
    }

    // ----- receiving -----

    fn on_batch(&mut self, batch: EventBatch) {
        let origin = batch.origin;
        let first = batch.first_seq();
        if origin != self.recv.origin {
            self.outbox.push_back(Message::Reject(Reject {
                origin,
                seq: first,
                reason: RejectReason::UnknownOrigin,
                detail: format!("this connection takes only origin {}", self.recv.origin),
            }));
            self.events.push_back(AppEvent::SecurityViolation {
                origin,
                seq: first,
                why: format!("device {} sent records of origin {origin}", self.peer),
            });
            return;
        }
        if self.recv.held {
            let seq = self.recv.accepted_seq + 1;
            self.outbox.push_back(Message::Reject(Reject {
                origin,
                seq,
                reason: RejectReason::Held,
                detail: "this origin is held after a verification failure".to_owned(),
            }));
            return;
        }
        if let Err(finding) = check_contiguous(origin, &batch.entries) {
            return self.violation(finding.seq, finding.problem.to_string());
        }
        if !self.recv.accept_redacted {
            if let Some(e) = batch
                .entries
                .iter()
                .find(|e| matches!(e, BatchEntry::Redacted { .. }))
            {
                let why = "redacted records: a terminal must send its whole chain".to_owned();
                return self.violation(e.seq(), why);
            }
        }
        if batch.checkpoints.len() > batch.entries.len() {
            // Each signature costs a verification: more than one per record is an attack.
            let detail = format!(
                "{} checkpoints for {} records",
                batch.checkpoints.len(),
                batch.entries.len()
            );
            return self.close(CloseReason::ProtocolViolation, &detail);
        }
        let last = batch.last_seq();
        let (accepted, head, durable) = (
            self.recv.accepted_seq,
            self.recv.accepted_head,
            self.recv.durable,
        );
        // A resent record at our head must be the one we hold: otherwise it is a fork.
        if accepted >= first && accepted <= last && accepted > 0 {
            let at = (accepted - first) as usize;
            if batch.entries.get(at).map(BatchEntry::hash) != Some(head) {
                let why = pos_audit::Problem::HistoryRewritten.to_string();
                return self.violation(accepted, why);
            }
        }
        if last <= accepted {
            // Already accepted: heal a lost ack if it is durable, never store twice.
            if last <= durable {
                self.outbox.push_back(Message::Ack(Ack {
                    origin,
                    seq: durable,
                }));
            }
            return;
        }
        if first > accepted + 1 {
            let seq = accepted + 1;
            self.outbox.push_back(Message::Reject(Reject {
                origin,
                seq,
                reason: RejectReason::Gap,
                detail: format!("expected seq {seq}, the batch starts at {first}"),
            }));
            return;
        }
        if last - durable > u64::from(self.window_granted) {
            let detail = format!(
                "the peer has {} events unacknowledged, more than the window of {}",
                last - durable,
                self.window_granted
            );
            return self.close(CloseReason::ProtocolViolation, &detail);
        }
        let EventBatch {
            mut entries,
            checkpoints,
            seal,
            ..
        } = batch;
        // first <= accepted + 1 <= last here, so this drops only records already accepted.
        entries.drain(..(accepted + 1 - first) as usize);
        let verified = verify_entries(
            origin,
            &self.recv.keys,
            (accepted, head),
            &entries,
            &checkpoints,
            &seal,
        );
        match verified {
            Ok(head) => self.accept(origin, entries, checkpoints, seal, head),
            Err(finding) => self.violation_found(finding),
        }
    }

    fn accept(
        &mut self,
        origin: DeviceId,
        entries: Vec<BatchEntry>,
        checkpoints: Vec<Checkpoint>,
        seal: Checkpoint,
        head: ChainHash,
    ) {
        let first_seq = self.recv.accepted_seq + 1;
        let last_seq = first_seq + entries.len() as u64 - 1;
        let events = entries
            .into_iter()
            .filter_map(|e| match e {
                BatchEntry::Full(event) => Some(event),
                BatchEntry::Redacted { .. } => None,
            })
            .collect();
        let checkpoints = checkpoints
            .into_iter()
            .filter(|c| (first_seq..=last_seq).contains(&c.seq))
            .collect();
        self.recv.accepted_seq = last_seq;
        self.recv.accepted_head = head;
        self.events.push_back(AppEvent::Store(VerifiedBatch {
            origin,
            first_seq,
            last_seq,
            head,
            events,
            checkpoints,
            seal,
        }));
    }

    fn violation_found(&mut self, finding: Finding) {
        self.violation(finding.seq, finding.problem.to_string());
    }

    /// A forged or broken chain: refuse it, report it, hold the origin.
    fn violation(&mut self, seq: u64, why: String) {
        let origin = self.recv.origin;
        self.recv.held = true;
        self.outbox.push_back(Message::Reject(Reject {
            origin,
            seq,
            reason: RejectReason::Verification,
            detail: why.clone(),
        }));
        self.events
            .push_back(AppEvent::SecurityViolation { origin, seq, why });
    }
}

/// The public methods both ends share, with their documentation in one place.
macro_rules! connection_api {
    () => {
        /// Bytes read from the transport, in any chunking. A bad frame closes the connection
        /// (see [`crate::AppEvent::Closed`]).
        pub fn receive(&mut self, bytes: &[u8], now: crate::Now) {
            self.core.receive(bytes, now)
        }

        /// A message decoded by the caller (tests, or a transport that frames itself).
        pub fn handle_message(&mut self, msg: crate::Message, now: crate::Now) {
            self.core.handle_message(msg, now)
        }

        /// Call when the time from [`Self::poll_timeout`] has come: heartbeats, retransmission
        /// after the ack timeout, idle timeout.
        pub fn handle_timeout(&mut self, now: crate::Now) {
            self.core.handle_timeout(now)
        }

        /// The transport ended (EOF, reset, TLS error): reported as a `Closed` event.
        pub fn connection_lost(&mut self, now: crate::Now) {
            self.core.connection_lost(now)
        }

        /// End the connection with a Close the peer can log (shutdown, a failed commit).
        pub fn close(&mut self, reason: crate::CloseReason, detail: &str) {
            self.core.close(reason, detail)
        }

        /// Our log now has records up to `last_seq` (call at start and after each commit).
        pub fn outbox_has(&mut self, last_seq: u64, now: crate::Now) {
            self.core.outbox_has(last_seq, now)
        }

        /// Answer a [`crate::AppEvent::NeedEvents`] with its request: the events from its
        /// `first_seq` (fewer than asked is fine, none means there are none) and the stored
        /// checkpoints in their range. An answer to a request overtaken by a rewind is ignored. `key` signs the batch's tail (and, for redacted master data, the end of every
        /// full run); it never leaves the call.
        pub fn supply_events(
            &mut self,
            request: &crate::BatchRequest,
            events: Vec<pos_audit::Event>,
            checkpoints: Vec<pos_audit::Checkpoint>,
            key: &pos_audit::DeviceKey,
            now: crate::Now,
        ) -> Result<(), crate::ApiError> {
            self.core
                .supply_events(request, events, checkpoints, key, now)
        }

        /// The batch of a [`crate::AppEvent::Store`] is durable up to `up_to_seq`: the ack goes out.
        pub fn events_stored(
            &mut self,
            origin: pos_core::DeviceId,
            up_to_seq: u64,
            now: crate::Now,
        ) -> Result<(), crate::ApiError> {
            self.core.events_stored(origin, up_to_seq, now)
        }

        /// Change how many unacknowledged events the peer may send (0 pauses it).
        pub fn set_receive_window(&mut self, window: u32, now: crate::Now) {
            self.core.set_receive_window(window, now)
        }

        /// The next frame to write to the transport.
        pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
            self.core.poll_transmit()
        }

        /// The next message to send, unencoded (tests, or a transport that frames itself).
        pub fn poll_message(&mut self) -> Option<crate::Message> {
            self.core.poll_message()
        }

        /// The next thing the IO layer must do or know.
        pub fn poll_event(&mut self) -> Option<crate::AppEvent> {
            self.core.poll_event()
        }

        /// When to call [`Self::handle_timeout`] next (monotonic ms); `None` once closed.
        pub fn poll_timeout(&self) -> Option<u64> {
            self.core.poll_timeout()
        }

        pub fn is_closed(&self) -> bool {
            self.core.is_closed()
        }

        pub fn is_established(&self) -> bool {
            self.core.is_established()
        }

        /// The highest HLC the peer sent: merge it into the device clock (`HlcClock::observe`).
        pub fn peer_hlc(&self) -> pos_core::Hlc {
            self.core.peer_hlc()
        }
    };
}

pub(crate) use connection_api;
