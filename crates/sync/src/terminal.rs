//! The terminal's end of a connection to its hub (the client side).
//!
//! On creation it queues its Hello. After the hub's HelloAck it sends its own chain from the
//! hub's cursor + 1, asking the IO layer for events with [`AppEvent::NeedEvents`] whenever the
//! window allows and [`TerminalConnection::outbox_has`] said there are more; each
//! [`AppEvent::Acked`] moves the outbox cursor. The hub's master data arrives as
//! [`AppEvent::Store`] batches of hub-origin records, verified with the hub's keys; modules the
//! terminal did not subscribe to are redacted (only their hash), so the IO layer stores the full
//! records and the new hub chain head (`last_seq`, `head`) and then calls `events_stored`.
//!
//! [`AppEvent::NeedEvents`]: crate::AppEvent::NeedEvents
//! [`AppEvent::Acked`]: crate::AppEvent::Acked
//! [`AppEvent::Store`]: crate::AppEvent::Store

use pos_core::{DeviceId, DeviceRole};

use crate::connection::{connection_api, Core, Start};
use crate::{ApiError, Config, Now, OriginState};

/// What a terminal knows when it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalSetup {
    pub device: DeviceId,
    /// The last seq of the terminal's own chain.
    pub own_head_seq: u64,
    /// The enrolled hub: its id (`origin`), its keys, and how much of its chain we hold.
    pub hub: OriginState,
    /// Modules of the hub's data this terminal wants in full (e.g. `catalogue`, `user`).
    pub subscriptions: Vec<String>,
}

/// One connection from a terminal to its hub.
#[derive(Debug)]
pub struct TerminalConnection {
    core: Core,
}

impl TerminalConnection {
    /// Start a connection; the Hello is the first frame of `poll_transmit`.
    pub fn new(config: Config, setup: TerminalSetup, now: Now) -> Result<Self, ApiError> {
        let start = Start {
            role: DeviceRole::Terminal,
            me: setup.device,
            own_head_seq: setup.own_head_seq,
            peer: setup.hub,
            subscriptions: setup.subscriptions,
        };
        Ok(TerminalConnection {
            core: Core::new(config, start, now)?,
        })
    }

    pub fn subscriptions(&self) -> &[String] {
        self.core.subscriptions()
    }

    connection_api!();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::message::{Ack, Cursor, HelloAck, Message, Reject, PROTOCOL_VERSION};
    use crate::testing::SignedChain;
    use crate::{AppEvent, BatchRequest, CloseReason, RejectReason};
    use pos_audit::ChainHash;
    use pos_core::Hlc;

    fn now(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            wall_ms: 1_700_000_000_000 + ms,
            hlc: Hlc::from_parts(1_700_000_000_000 + ms, 0),
        }
    }

    struct Rig {
        conn: TerminalConnection,
        own: SignedChain,
        hub: SignedChain,
    }

    fn rig(events: usize) -> Rig {
        let mut own = SignedChain::new(1, 100);
        own.append_many(events, &["sale"]);
        let hub = SignedChain::new(9, 100);
        let config = Config {
            max_batch_events: 40,
            receive_window: 120,
            ..Config::default()
        };
        let setup = TerminalSetup {
            device: own.origin,
            own_head_seq: own.head().0,
            hub: OriginState {
                origin: hub.origin,
                last_seq: 0,
                head: ChainHash::GENESIS,
                keys: vec![hub.key.public()],
                held: false,
            },
            subscriptions: vec!["catalogue".into()],
        };
        let conn = TerminalConnection::new(config, setup, now(0)).unwrap();
        Rig { conn, own, hub }
    }

    impl Rig {
        fn hello_ack(&mut self, hub_has: u64, window: u32) {
            let _hello = self.conn.poll_message().unwrap();
            let ack = HelloAck {
                protocol_version: PROTOCOL_VERSION,
                device: self.hub.origin,
                hlc: Hlc::ZERO,
                wall_ms: 0,
                max_frame_bytes: 4 << 20,
                receive_window: window,
                cursors: vec![Cursor {
                    origin: self.own.origin,
                    seq: hub_has,
                }],
            };
            self.conn.handle_message(Message::HelloAck(ack), now(1));
        }

        /// Answer every request; return the (first, last) seq of each batch sent.
        fn serve(&mut self) -> Vec<(u64, u64)> {
            let mut sent = Vec::new();
            loop {
                let mut progress = false;
                while let Some(ev) = self.conn.poll_event() {
                    if let AppEvent::NeedEvents(req) = ev {
                        progress = true;
                        self.answer(&req);
                    }
                }
                while let Some(msg) = self.conn.poll_message() {
                    if let Message::EventBatch(b) = msg {
                        sent.push((b.first_seq(), b.last_seq()));
                    }
                }
                if !progress {
                    return sent;
                }
            }
        }

        fn answer(&mut self, req: &BatchRequest) {
            let events = self.own.read(req.first_seq, req.max_events);
            let key = &self.own.key;
            self.conn
                .supply_events(req, events, vec![], key, now(2))
                .unwrap();
        }

        fn hub_says(&mut self, msg: Message) {
            self.conn.handle_message(msg, now(3));
        }
    }

    #[test]
    fn the_hello_names_the_terminal_its_cursors_window_and_subscriptions() {
        let mut r = rig(17);
        let Some(Message::Hello(h)) = r.conn.poll_message() else {
            panic!()
        };
        assert_eq!(h.device, r.own.origin);
        assert_eq!(h.role, pos_core::DeviceRole::Terminal);
        assert_eq!(h.receive_window, 120);
        assert_eq!(h.subscriptions, ["catalogue"]);
        assert_eq!(
            h.cursors,
            [
                Cursor {
                    origin: r.own.origin,
                    seq: 17
                },
                Cursor {
                    origin: r.hub.origin,
                    seq: 0
                }
            ]
        );
    }

    #[test]
    fn it_sends_from_the_hubs_cursor_within_the_window() {
        let mut r = rig(300);
        r.hello_ack(50, 100);
        assert_eq!(r.serve(), [(51, 90), (91, 130), (131, 150)]);
        r.hub_says(Message::Ack(Ack {
            origin: r.own.origin,
            seq: 90,
        }));
        assert_eq!(r.serve(), [(151, 190)]);
    }

    #[test]
    fn a_gap_rewinds_but_never_below_the_ack() {
        let mut r = rig(100);
        r.hello_ack(0, 120);
        assert_eq!(r.serve(), [(1, 40), (41, 80), (81, 100)]);
        let origin = r.own.origin;
        r.hub_says(Message::Ack(Ack { origin, seq: 40 }));
        let gap = |seq| {
            Message::Reject(Reject {
                origin,
                seq,
                reason: RejectReason::Gap,
                detail: String::new(),
            })
        };
        r.hub_says(gap(61));
        assert_eq!(r.serve(), [(61, 100)]);
        // A late Gap from before the ack rewinds only to the ack.
        r.hub_says(gap(1));
        assert_eq!(r.serve(), [(41, 80), (81, 100)]);
    }

    fn next_request(conn: &mut TerminalConnection) -> Option<BatchRequest> {
        std::iter::from_fn(|| conn.poll_event()).find_map(|e| match e {
            AppEvent::NeedEvents(req) => Some(req),
            _ => None,
        })
    }

    #[test]
    fn an_answer_overtaken_by_a_rewind_is_ignored() {
        let mut r = rig(100);
        r.hello_ack(0, 120);
        let first = next_request(&mut r.conn).unwrap();
        r.answer(&first);
        let second = next_request(&mut r.conn).unwrap();
        assert_eq!(second.first_seq, 41);
        r.hub_says(Message::Reject(Reject {
            origin: r.own.origin,
            seq: 1,
            reason: RejectReason::Gap,
            detail: String::new(),
        }));
        // The old request (from 41) is answered late: nothing is sent for it.
        r.answer(&second);
        let batches: Vec<_> = std::iter::from_fn(|| r.conn.poll_message())
            .filter(|m| matches!(m, Message::EventBatch(_)))
            .collect();
        assert_eq!(batches.len(), 1, "only the first batch");
        assert_eq!(r.serve(), [(1, 40), (41, 80), (81, 100)]);
    }

    #[test]
    fn a_held_stream_stops_sending() {
        let mut r = rig(100);
        r.hello_ack(0, 120);
        r.serve();
        r.hub_says(Message::Reject(Reject {
            origin: r.own.origin,
            seq: 7,
            reason: RejectReason::Verification,
            detail: "content changed".into(),
        }));
        let rejected = std::iter::from_fn(|| r.conn.poll_event()).any(|e| {
            matches!(
                e,
                AppEvent::Rejected {
                    seq: 7,
                    reason: RejectReason::Verification,
                    ..
                }
            )
        });
        assert!(rejected);
        r.own.append_many(10, &["sale"]);
        r.conn.outbox_has(110, now(4));
        assert_eq!(r.serve(), []);
    }

    #[test]
    fn an_ack_beyond_what_was_sent_closes_the_connection() {
        let mut r = rig(10);
        r.hello_ack(0, 120);
        r.serve();
        r.hub_says(Message::Ack(Ack {
            origin: r.own.origin,
            seq: 11,
        }));
        assert!(r.conn.is_closed());
        let closed = std::iter::from_fn(|| r.conn.poll_event()).find_map(|e| match e {
            AppEvent::Closed { reason, .. } => Some(reason),
            _ => None,
        });
        assert_eq!(closed, Some(CloseReason::ProtocolViolation));
    }

    #[test]
    fn a_hello_ack_from_another_hub_is_refused() {
        let mut r = rig(0);
        r.hub = SignedChain::new(5, 100);
        r.hello_ack(0, 10);
        let Some(Message::Close(close)) = r.conn.poll_message() else {
            panic!()
        };
        assert_eq!(close.reason, CloseReason::WrongPeer);
    }

    #[test]
    fn bad_subscriptions_are_refused_at_setup() {
        let r = rig(0);
        let setup = TerminalSetup {
            device: r.own.origin,
            own_head_seq: 0,
            hub: OriginState {
                origin: r.hub.origin,
                last_seq: 0,
                head: ChainHash::GENESIS,
                keys: vec![],
                held: false,
            },
            subscriptions: vec!["Sales Reports".into()],
        };
        assert_eq!(
            TerminalConnection::new(Config::default(), setup, now(0)).unwrap_err(),
            ApiError::BadSubscription("Sales Reports".into())
        );
    }
}
