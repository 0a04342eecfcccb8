//! The hub's end of one terminal's connection (the server side).
//!
//! The IO layer creates one per accepted TLS connection, with the terminal's identity taken
//! from its client certificate and what the hub holds of that terminal's chain. The Hello must
//! name that same device, speak this protocol version and have the terminal role, else the
//! connection is closed with the reason. Received batches are verified from the stored head and
//! handed over as [`AppEvent::Store`]; the ack goes out after `events_stored`. A forged or
//! broken chain is rejected, reported as [`AppEvent::SecurityViolation`] and held. The hub's own
//! records flow back as master data: every module the terminal subscribed to in full, the others
//! redacted, each run of full records signed at its end.
//!
//! [`AppEvent::Store`]: crate::AppEvent::Store
//! [`AppEvent::SecurityViolation`]: crate::AppEvent::SecurityViolation

use pos_core::{DeviceId, DeviceRole};

use crate::connection::{connection_api, Core, Start};
use crate::{ApiError, Config, Now, OriginState};

/// What the hub knows when a terminal connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSetup {
    pub device: DeviceId,
    /// The last seq of the hub's own chain (master data available).
    pub own_head_seq: u64,
    /// The authenticated terminal: its id, its registered keys, the stored head of its chain
    /// and whether it is held.
    pub terminal: OriginState,
}

/// The hub's end of one terminal's connection.
#[derive(Debug)]
pub struct HubConnection {
    core: Core,
}

impl HubConnection {
    /// Wait for the terminal's Hello.
    pub fn new(config: Config, setup: HubSetup, now: Now) -> Result<Self, ApiError> {
        let start = Start {
            role: DeviceRole::Hub,
            me: setup.device,
            own_head_seq: setup.own_head_seq,
            peer: setup.terminal,
            subscriptions: Vec::new(),
        };
        Ok(HubConnection {
            core: Core::new(config, start, now)?,
        })
    }

    /// The terminal's subscriptions (empty until its Hello arrived).
    pub fn subscriptions(&self) -> &[String] {
        self.core.subscriptions()
    }

    connection_api!();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::message::{Cursor, Heartbeat, Hello, Message, PROTOCOL_VERSION};
    use crate::testing::SignedChain;
    use crate::{AppEvent, BatchRequest, CloseReason};
    use pos_core::Hlc;

    fn now(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            wall_ms: 1_700_000_000_000 + ms,
            hlc: Hlc::from_parts(1_700_000_000_000 + ms, 0),
        }
    }

    fn hub(terminal: &SignedChain, stored: u64, hub_head: u64) -> HubConnection {
        let setup = HubSetup {
            device: DeviceId::from_bytes([9; 16]),
            own_head_seq: hub_head,
            terminal: OriginState {
                origin: terminal.origin,
                last_seq: stored,
                head: terminal.events[stored as usize - 1].hash,
                keys: vec![terminal.key.public()],
                held: false,
            },
        };
        HubConnection::new(Config::default(), setup, now(0)).unwrap()
    }

    fn hello(terminal: &SignedChain) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            device: terminal.origin,
            role: DeviceRole::Terminal,
            hlc: now(0).hlc,
            wall_ms: now(0).wall_ms,
            max_frame_bytes: 4 << 20,
            receive_window: 100,
            cursors: vec![
                Cursor {
                    origin: terminal.origin,
                    seq: terminal.head().0,
                },
                Cursor {
                    origin: DeviceId::from_bytes([9; 16]),
                    seq: 2,
                },
            ],
            subscriptions: vec!["catalogue".into(), "user".into()],
        }
    }

    fn closed_with(h: &mut HubConnection) -> Option<CloseReason> {
        std::iter::from_fn(|| h.poll_event()).find_map(|e| match e {
            AppEvent::Closed { reason, .. } => Some(reason),
            _ => None,
        })
    }

    fn terminal() -> SignedChain {
        let mut t = SignedChain::new(1, 100);
        t.append_many(10, &["sale"]);
        t
    }

    #[test]
    fn a_hello_is_answered_with_the_stored_cursors_and_master_data_starts() {
        let t = terminal();
        let mut h = hub(&t, 7, 5);
        h.handle_message(Message::Hello(hello(&t)), now(1));
        let Some(Message::HelloAck(ack)) = h.poll_message() else {
            panic!()
        };
        assert_eq!(
            ack.cursors,
            [
                Cursor {
                    origin: DeviceId::from_bytes([9; 16]),
                    seq: 5
                },
                Cursor {
                    origin: t.origin,
                    seq: 7
                }
            ]
        );
        assert_eq!(h.subscriptions(), ["catalogue", "user"]);
        let events: Vec<_> = std::iter::from_fn(|| h.poll_event()).collect();
        // The terminal's announced head reaches the hub's status (what it still has to send).
        assert_eq!(
            events[0],
            AppEvent::Connected {
                peer: t.origin,
                subscriptions: vec!["catalogue".into(), "user".into()],
                peer_head: Some(10),
            }
        );
        assert_eq!(
            events[1],
            AppEvent::NeedEvents(BatchRequest {
                origin: DeviceId::from_bytes([9; 16]),
                first_seq: 3,
                max_events: 3
            })
        );
    }

    #[test]
    fn anything_before_the_hello_closes_the_connection() {
        let t = terminal();
        let mut h = hub(&t, 1, 0);
        let beat = Heartbeat {
            hlc: Hlc::ZERO,
            wall_ms: 0,
        };
        h.handle_message(Message::Heartbeat(beat), now(1));
        assert_eq!(closed_with(&mut h), Some(CloseReason::ProtocolViolation));
    }

    #[test]
    fn only_terminals_connect() {
        let t = terminal();
        let mut h = hub(&t, 1, 0);
        let from_hub = Hello {
            role: DeviceRole::Hub,
            ..hello(&t)
        };
        h.handle_message(Message::Hello(from_hub), now(1));
        assert_eq!(closed_with(&mut h), Some(CloseReason::WrongPeer));
    }

    #[test]
    fn a_frame_limit_below_the_minimum_is_refused() {
        let t = terminal();
        let mut h = hub(&t, 1, 0);
        let tiny = Hello {
            max_frame_bytes: 1024,
            ..hello(&t)
        };
        h.handle_message(Message::Hello(tiny), now(1));
        assert_eq!(closed_with(&mut h), Some(CloseReason::ProtocolViolation));
    }

    #[test]
    fn the_handshake_must_come_within_the_idle_timeout() {
        let t = terminal();
        let mut h = hub(&t, 1, 0);
        let deadline = h.poll_timeout().unwrap();
        h.handle_timeout(now(deadline - 1));
        assert!(!h.is_closed());
        h.handle_timeout(now(deadline));
        assert_eq!(closed_with(&mut h), Some(CloseReason::IdleTimeout));
    }
}
