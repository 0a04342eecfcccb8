//! Whole conversations between a terminal and a hub in memory, over a faulty link.
#![allow(clippy::unwrap_used)]

mod support;

use pos_sync::message::{Ack, EventBatch, Message};
use pos_sync::{AppEvent, CloseReason, Config};
use support::*;

const HUB_MODULES: &[&str] = &["catalogue", "settings", "user", "security"];

fn session(terminal_events: usize, hub_events: usize) -> Session {
    let tdb = terminal_db(1, terminal_events, &["sale", "stock", "shift"]);
    let mut hdb = HubDb::new(9, &tdb.chain);
    hdb.chain.append_many(hub_events, HUB_MODULES);
    Session::new(small_config(), tdb, hdb)
}

#[test]
fn a_terminal_catches_up_and_the_hub_verifies_what_it_stored() {
    let mut s = session(1234, 0);
    s.pump();
    assert!(s.converged());
    assert_eq!(s.hdb.stored, s.tdb.chain.events);
    assert_eq!(s.tdb.acked, 1234);
    // Periodic checkpoints came along, and the stored copy verifies like `pos audit verify`.
    assert_eq!(s.hdb.checkpoints.len(), s.tdb.chain.checkpoints.len());
    let summary = s.hdb.verify_stored(s.tdb.chain.origin).unwrap();
    assert_eq!((summary.last_seq, summary.head), s.tdb.chain.head());
    assert!(matches!(s.hlog[0], AppEvent::Connected { .. }));
    assert!(s.hub_closed_with().is_none() && s.terminal_closed_with().is_none());
}

#[test]
fn master_data_arrives_per_subscribed_module_and_verifies() {
    let mut s = session(10, 300);
    s.pump();
    assert!(s.converged());
    let wanted: Vec<_> = s
        .hdb
        .chain
        .events
        .iter()
        .filter(|e| e.module == "catalogue" || e.module == "user")
        .cloned()
        .collect();
    assert_eq!(s.tdb.hub_events, wanted);
    assert_eq!(s.tdb.hub_head, s.hdb.chain.head());
    assert!(s.hlog.iter().any(|e| matches!(
        e,
        AppEvent::Connected { subscriptions, .. } if subscriptions == &["catalogue", "user"]
    )));
    // The hub learns how far the terminal applied its data.
    assert!(s
        .hlog
        .iter()
        .any(|e| matches!(e, AppEvent::Acked { seq: 300, .. })));
}

#[test]
fn new_events_on_either_side_flow_while_connected() {
    let mut s = session(5, 5);
    s.pump();
    assert!(s.converged());
    s.tdb.chain.append_many(30, &["sale"]);
    let now = s.now();
    s.t.outbox_has(35, now);
    s.hdb.chain.append_many(7, &["catalogue"]);
    s.h.outbox_has(12, now);
    s.pump();
    assert!(s.converged());
    assert_eq!(s.hdb.stored.len(), 35);
}

#[test]
fn duplicated_frames_are_acknowledged_but_not_stored_twice() {
    let mut s = session(400, 200);
    // Batches and acks arrive twice (a transport cannot duplicate a Hello on one connection).
    let twice = |f: Vec<u8>| match frame_type(&f) {
        EVENT_BATCH | ACK => vec![f.clone(), f],
        _ => vec![f],
    };
    s.t2h = Box::new(twice);
    s.h2t = Box::new(twice);
    s.pump();
    // The harness asserts every Store starts right after the stored head: nothing twice.
    assert!(s.converged());
    assert_eq!(s.hdb.stored, s.tdb.chain.events);
    assert!(s.hub_closed_with().is_none() && s.terminal_closed_with().is_none());
}

/// Holds every other event batch back until the next frame has passed.
fn swap_batches() -> Tamper {
    let mut held: Option<Vec<u8>> = None;
    let mut n = 0;
    Box::new(move |f| {
        if frame_type(&f) == EVENT_BATCH {
            n += 1;
            if n % 2 == 1 && held.is_none() {
                held = Some(f);
                return vec![];
            }
        }
        let mut out = vec![f];
        out.extend(held.take());
        out
    })
}

#[test]
fn reordered_batches_are_refused_as_a_gap_and_resent() {
    let mut s = session(500, 0);
    s.t2h = swap_batches();
    let gaps = std::rc::Rc::new(std::cell::Cell::new(0));
    let count = gaps.clone();
    s.h2t = Box::new(move |f| {
        if let Message::Reject(r) = decode(&f) {
            assert_eq!(r.reason, pos_sync::RejectReason::Gap);
            count.set(count.get() + 1);
        }
        vec![f]
    });
    s.settle(20);
    assert!(s.converged());
    assert!(gaps.get() > 0, "the hub refused out-of-order batches");
    assert_eq!(s.hdb.stored, s.tdb.chain.events);
    assert!(s.hub_closed_with().is_none());
    // No security noise from an honest reordering.
    assert!(!s
        .hlog
        .iter()
        .any(|e| matches!(e, AppEvent::SecurityViolation { .. })));
}

#[test]
fn a_dropped_batch_is_sent_again_after_the_ack_timeout() {
    let mut s = session(30, 0);
    let mut dropped = false;
    s.t2h = Box::new(move |f| {
        if frame_type(&f) == EVENT_BATCH && !dropped {
            dropped = true;
            return vec![];
        }
        vec![f]
    });
    s.pump();
    assert_eq!(s.hdb.head.0, 0, "nothing arrived yet");
    s.settle(10);
    assert!(s.converged());
    assert_eq!(s.hdb.stored, s.tdb.chain.events);
}

#[test]
fn a_dropped_ack_heals_when_the_sender_repeats() {
    let mut s = session(30, 0);
    let mut dropped = 0;
    s.h2t = Box::new(move |f| {
        if frame_type(&f) == ACK && dropped < 1 {
            dropped += 1;
            return vec![];
        }
        vec![f]
    });
    s.pump();
    assert_eq!(s.hdb.head.0, 30, "the hub stored everything");
    assert_eq!(s.tdb.acked, 0, "but its ack was lost");
    for _ in 0..4 {
        s.advance(10_000);
    }
    assert_eq!(s.tdb.acked, 30);
    assert_eq!(s.hdb.store_events, 1, "the resend was not stored again");
}

#[test]
fn a_replayed_batch_is_acked_again_and_a_replayed_hello_closes() {
    let mut s = session(50, 0);
    let sent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let record = sent.clone();
    s.t2h = Box::new(move |f| {
        record.borrow_mut().push(f.clone());
        vec![f]
    });
    s.pump();
    assert!(s.converged());
    let stores = s.hdb.store_events;
    let frames = sent.borrow().clone();
    let first_batch = frames
        .iter()
        .find(|f| frame_type(f) == EVENT_BATCH)
        .unwrap();

    // Replay the first batch: acknowledged with the durable cursor, not stored.
    let now = s.now();
    s.h.receive(first_batch, now);
    assert_eq!(
        s.h.poll_message(),
        Some(Message::Ack(Ack {
            origin: s.tdb.chain.origin,
            seq: 50
        }))
    );
    s.pump();
    assert_eq!(s.hdb.store_events, stores);

    // A Hello after the handshake is a protocol violation: that connection closes.
    let hello = encode(&Message::Hello(pos_sync::message::Hello {
        protocol_version: 1,
        device: s.tdb.chain.origin,
        role: pos_core::DeviceRole::Terminal,
        hlc: pos_core::Hlc::ZERO,
        wall_ms: 0,
        max_frame_bytes: 4 << 20,
        receive_window: 10,
        cursors: vec![],
        subscriptions: vec![],
    }));
    s.h.receive(&hello, now);
    s.pump();
    let (reason, detail) = s.hub_closed_with().unwrap();
    assert_eq!(reason, CloseReason::ProtocolViolation);
    assert!(detail.contains("unexpected Hello"), "{detail}");
    // The terminal learns why.
    assert_eq!(
        s.terminal_closed_with().unwrap().0,
        CloseReason::ProtocolViolation
    );
}

#[test]
fn a_truncated_frame_closes_the_connection_with_a_reason_and_stores_nothing_of_it() {
    let mut s = session(100, 0);
    let mut n = 0;
    s.t2h = Box::new(move |f| {
        if frame_type(&f) == EVENT_BATCH {
            n += 1;
            if n == 2 {
                return vec![f[..f.len() / 2].to_vec()];
            }
        }
        vec![f]
    });
    s.pump();
    let (reason, detail) = s.hub_closed_with().unwrap();
    assert_eq!(reason, CloseReason::ProtocolViolation);
    assert!(
        detail.contains("malformed") || detail.contains("magic"),
        "{detail}"
    );
    assert_eq!(s.hdb.head.0, 40, "only the first, whole batch was stored");
    assert_eq!(s.hdb.stored, s.tdb.chain.events[..40]);

    // Reconnect: the stream resumes from the hub's cursor.
    let (tdb, hdb) = s.into_dbs();
    let mut s = Session::connect(small_config(), tdb, hdb, 1000);
    s.pump();
    assert!(s.converged());
    assert_eq!(s.hdb.stored, s.tdb.chain.events);
}

#[test]
fn a_connection_cut_mid_frame_reports_it() {
    let mut s = session(10, 0);
    let now = s.now();
    let hello = s.t.poll_transmit().unwrap();
    s.h.receive(&hello[..5], now);
    s.h.connection_lost(now);
    let log: Vec<_> = std::iter::from_fn(|| s.h.poll_event()).collect();
    let (reason, detail) = closed(&log).unwrap();
    assert_eq!(reason, CloseReason::ConnectionLost);
    assert!(detail.contains("middle of a frame"), "{detail}");
}

#[test]
fn garbage_closes_that_connection_and_the_hub_serves_the_others() {
    let mut good = session(60, 20);
    let mut bad = session(60, 20);
    bad.t2h = Box::new(|f| {
        if frame_type(&f) == EVENT_BATCH {
            return vec![b"GET / HTTP/1.1\r\n\r\n".to_vec()];
        }
        vec![f]
    });
    bad.pump();
    good.pump();
    let (reason, detail) = bad.hub_closed_with().unwrap();
    assert_eq!(reason, CloseReason::ProtocolViolation);
    assert!(detail.contains("magic"), "{detail}");
    assert_eq!(bad.hdb.head.0, 0);
    assert!(good.converged());
}

#[test]
fn an_oversized_frame_is_refused_on_its_header() {
    let mut s = session(60, 0);
    s.t2h = Box::new(|mut f| {
        if frame_type(&f) == EVENT_BATCH {
            f[4..8].copy_from_slice(&(1u32 << 30).to_be_bytes());
            f.truncate(8);
        }
        vec![f]
    });
    s.pump();
    let (reason, detail) = s.hub_closed_with().unwrap();
    assert_eq!(reason, CloseReason::ProtocolViolation);
    assert!(detail.contains("exceeds the limit"), "{detail}");
}

#[test]
fn a_dropped_connection_resumes_from_the_cursors_without_duplicates() {
    let mut s = session(300, 150);
    // Cut both directions after a few frames: the transport died.
    let mut n = 0;
    s.t2h = Box::new(move |f| {
        n += 1;
        if n > 4 {
            vec![]
        } else {
            vec![f]
        }
    });
    s.pump();
    let now = s.now();
    s.t.connection_lost(now);
    s.h.connection_lost(now);
    let partial = s.hdb.head.0;
    assert!(partial > 0 && partial < 300, "{partial}");
    let (tdb, hdb) = s.into_dbs();
    let mut s = Session::connect(small_config(), tdb, hdb, 5_000);
    s.pump();
    assert!(s.converged());
    assert_eq!(s.hdb.stored, s.tdb.chain.events);
    assert_eq!(s.tdb.hub_head, s.hdb.chain.head());
}

#[test]
fn the_window_bounds_what_is_in_flight_and_slow_storage_holds_the_sender() {
    let mut s = session(500, 0);
    s.hdb.defer_storage = true;
    s.pump();
    // The hub's window is 120 events: that much arrives, then the terminal waits for acks.
    let accepted: u64 = s
        .hdb
        .pending
        .iter()
        .map(|b| b.last_seq - b.first_seq + 1)
        .sum();
    assert_eq!(accepted, 120);
    s.hdb.defer_storage = false;
    s.commit_pending();
    s.pump();
    assert!(s.converged());
}

#[test]
fn a_zero_credit_pauses_the_sender_until_reopened() {
    let mut s = session(0, 0);
    s.pump();
    let now = s.now();
    s.h.set_receive_window(0, now);
    s.pump();
    s.tdb.chain.append_many(50, &["sale"]);
    s.t.outbox_has(50, now);
    s.pump();
    assert_eq!(s.hdb.head.0, 0, "paused");
    s.h.set_receive_window(100, now);
    s.pump();
    assert!(s.converged());
}

#[test]
fn a_peer_overrunning_the_window_is_closed() {
    let mut s = session(0, 0);
    s.pump();
    // A terminal that ignores the window: 200 events at once against a window of 120.
    let mut chain = pos_sync::testing::SignedChain::new(1, 100);
    chain.append_many(200, &["sale"]);
    let last = &chain.events[199];
    let batch = Message::EventBatch(EventBatch {
        origin: chain.origin,
        entries: chain
            .events
            .iter()
            .cloned()
            .map(pos_sync::message::BatchEntry::Full)
            .collect(),
        checkpoints: chain.checkpoints.clone(),
        seal: pos_audit::Checkpoint::sign(&chain.key, chain.origin, 200, last.hash, last.hlc),
    });
    let now = s.now();
    s.h.receive(&encode(&batch), now);
    s.pump();
    let (reason, detail) = s.hub_closed_with().unwrap();
    assert_eq!(reason, CloseReason::ProtocolViolation);
    assert!(detail.contains("window"), "{detail}");
    assert_eq!(s.hdb.store_events, 0);
}

#[test]
fn heartbeats_keep_an_idle_connection_open_and_silence_closes_it() {
    let mut s = session(0, 0);
    s.pump();
    for _ in 0..10 {
        s.advance(small_config().heartbeat_interval_ms);
    }
    assert!(s.t.is_established() && s.h.is_established());
    assert!(
        s.frames_t2h > 5 && s.frames_h2t > 5,
        "heartbeats went both ways"
    );

    // The terminal goes silent: the hub closes after the idle timeout.
    s.t2h = Box::new(|_| vec![]);
    s.advance(small_config().idle_timeout_ms / 2);
    s.advance(small_config().idle_timeout_ms / 2 + 1);
    assert_eq!(s.hub_closed_with().unwrap().0, CloseReason::IdleTimeout);
    assert!(s.h.is_closed() && s.h.poll_timeout().is_none());
}

#[test]
fn poll_timeout_names_the_next_deadline() {
    let mut s = session(0, 0);
    assert_eq!(s.h.poll_timeout(), Some(small_config().idle_timeout_ms));
    s.pump();
    assert_eq!(
        s.t.poll_timeout(),
        Some(small_config().heartbeat_interval_ms)
    );
}

#[test]
fn a_hub_that_knows_more_than_the_terminal_reports_lost_history() {
    let mut s = session(40, 0);
    s.pump();
    assert!(s.converged());
    // The terminal is restored from an old backup: it has only 25 of its 40 records.
    let (mut tdb, hdb) = s.into_dbs();
    tdb.chain.events.truncate(25);
    let mut s = Session::connect(small_config(), tdb, hdb, 100);
    s.pump();
    for log in [&s.hlog, &s.tlog] {
        assert!(
            log.iter().any(|e| matches!(
                e,
                AppEvent::LostHistory {
                    author_has: 25,
                    copy_has: 40,
                    ..
                }
            )),
            "{log:?}"
        );
    }
}

#[test]
fn events_stored_beyond_what_was_accepted_is_a_caller_error() {
    let mut s = session(5, 0);
    s.hdb.defer_storage = true;
    s.pump();
    let now = s.now();
    let origin = s.tdb.chain.origin;
    assert_eq!(
        s.h.events_stored(origin, 6, now),
        Err(pos_sync::ApiError::StoredBeyondAccepted {
            up_to: 6,
            accepted: 5
        })
    );
    assert!(s.h.events_stored(s.hdb.chain.origin, 1, now).is_err());
}

#[test]
fn big_events_are_cut_into_batches_that_fit_the_frame_limit() {
    let mut tdb = terminal_db(1, 0, &["sale"]);
    let big = format!("\"{}\"", "x".repeat(700 * 1024));
    for _ in 0..8 {
        tdb.chain.append("sale", "completed", &big);
    }
    let hdb = HubDb::new(9, &tdb.chain);
    let config = Config {
        max_frame_bytes: 2 << 20,
        ..small_config()
    };
    let mut s = Session::new(config, tdb, hdb);
    let mut largest = 0;
    s.t2h = Box::new(move |f| {
        largest = largest.max(f.len());
        assert!(largest <= 2 << 20, "frame of {largest} bytes");
        vec![f]
    });
    s.pump();
    assert!(s.converged());
    assert!(s.hdb.store_events >= 4, "at most two such events per frame");
}
