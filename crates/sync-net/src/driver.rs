//! The loop that runs one `pos_sync` connection over a byte stream: reads feed `receive`,
//! timers from `poll_timeout` call `handle_timeout`, frames from `poll_transmit` go to a writer
//! task (so a peer that stops reading can never stop us from reading), and the `AppEvent`s are
//! carried out through the [`Side`] (storage calls run on the blocking pool).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pos_audit::{Checkpoint, DeviceKey, Event};
use pos_core::{DeviceId, Hlc};
use pos_sync::{
    ApiError, AppEvent, BatchRequest, CloseReason, HubConnection, Now, TerminalConnection,
    VerifiedBatch,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// A storage call failed; the connection is closed with `CloseReason::Internal`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

impl From<String> for StorageError {
    fn from(s: String) -> Self {
        StorageError(s)
    }
}

/// How long the writer may take to flush the last frames once a connection is over.
const WRITER_GRACE: Duration = Duration::from_secs(5);

/// The calls both state machines share (they have the same methods, not a common trait).
pub(crate) trait Machine: Send + 'static {
    fn receive(&mut self, bytes: &[u8], now: Now);
    fn handle_timeout(&mut self, now: Now);
    fn connection_lost(&mut self, now: Now);
    fn close(&mut self, reason: CloseReason, detail: &str);
    fn outbox_has(&mut self, last_seq: u64, now: Now);
    fn supply_events(
        &mut self,
        request: &BatchRequest,
        events: Vec<Event>,
        checkpoints: Vec<Checkpoint>,
        key: &DeviceKey,
        now: Now,
    ) -> Result<(), ApiError>;
    fn events_stored(&mut self, origin: DeviceId, up_to: u64, now: Now) -> Result<(), ApiError>;
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    fn poll_event(&mut self) -> Option<AppEvent>;
    fn poll_timeout(&self) -> Option<u64>;
    fn is_closed(&self) -> bool;
    fn peer_hlc(&self) -> Hlc;
}

macro_rules! machine {
    ($t:ty) => {
        impl Machine for $t {
            fn receive(&mut self, bytes: &[u8], now: Now) {
                <$t>::receive(self, bytes, now)
            }
            fn handle_timeout(&mut self, now: Now) {
                <$t>::handle_timeout(self, now)
            }
            fn connection_lost(&mut self, now: Now) {
                <$t>::connection_lost(self, now)
            }
            fn close(&mut self, reason: CloseReason, detail: &str) {
                <$t>::close(self, reason, detail)
            }
            fn outbox_has(&mut self, last_seq: u64, now: Now) {
                <$t>::outbox_has(self, last_seq, now)
            }
            fn supply_events(
                &mut self,
                request: &BatchRequest,
                events: Vec<Event>,
                checkpoints: Vec<Checkpoint>,
                key: &DeviceKey,
                now: Now,
            ) -> Result<(), ApiError> {
                <$t>::supply_events(self, request, events, checkpoints, key, now)
            }
            fn events_stored(
                &mut self,
                origin: DeviceId,
                up_to: u64,
                now: Now,
            ) -> Result<(), ApiError> {
                <$t>::events_stored(self, origin, up_to, now)
            }
            fn poll_transmit(&mut self) -> Option<Vec<u8>> {
                <$t>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<AppEvent> {
                <$t>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<u64> {
                <$t>::poll_timeout(self)
            }
            fn is_closed(&self) -> bool {
                <$t>::is_closed(self)
            }
            fn peer_hlc(&self) -> Hlc {
                <$t>::peer_hlc(self)
            }
        }
    };
}

machine!(HubConnection);
machine!(TerminalConnection);

/// What one end does with the `AppEvent`s. `read_events`, `store` and `event` may block (SQLite):
/// they run on the blocking pool. `hlc_now` and `observe_hlc` must be quick.
pub(crate) trait Side: Send + Sync + 'static {
    fn read_events(
        &self,
        req: &BatchRequest,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError>;
    fn store(&self, batch: &VerifiedBatch) -> Result<(), StorageError>;
    /// Everything else (logging, notes, security events, status).
    fn event(&self, event: &AppEvent);
    fn hlc_now(&self, wall_ms: u64) -> Hlc;
    fn observe_hlc(&self, remote: Hlc, wall_ms: u64);
}

/// The clock inputs of one connection.
pub(crate) struct Clock {
    base: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }

    fn mono_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, mono_ms: u64) -> Instant {
        self.base + Duration::from_millis(mono_ms)
    }

    pub(crate) fn now(&self, side: &dyn SideClock) -> Now {
        let wall_ms = wall_ms();
        Now {
            mono_ms: self.mono_ms(),
            wall_ms,
            hlc: side.hlc(wall_ms),
        }
    }
}

pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The HLC part of a side, object-safe for [`Clock::now`].
pub(crate) trait SideClock {
    fn hlc(&self, wall_ms: u64) -> Hlc;
}

impl<S: Side> SideClock for S {
    fn hlc(&self, wall_ms: u64) -> Hlc {
        self.hlc_now(wall_ms)
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ended {
    /// The handshake (Hello/HelloAck) completed.
    pub established: bool,
    /// The read or write error that ended the transport, if any.
    pub transport_error: Option<String>,
}

/// Inputs besides the stream.
pub(crate) struct Signals {
    /// Our own chain's last seq (new records to offer).
    pub head: watch::Receiver<u64>,
    /// `Some(reason)`: close the connection with `Close(Normal, reason)`.
    pub stop: watch::Receiver<Option<String>>,
}

/// Run `m` over `io` until it is closed.
pub(crate) async fn drive<M, S, IO>(
    io: IO,
    mut m: M,
    side: Arc<S>,
    key: Arc<DeviceKey>,
    clock: Clock,
    mut signals: Signals,
) -> Ended
where
    M: Machine,
    S: Side,
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let mut writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            wr.write_all(&frame).await?;
            while let Ok(more) = rx.try_recv() {
                wr.write_all(&more).await?;
            }
            wr.flush().await?;
        }
        wr.shutdown().await
    });
    let mut writer_done = false;
    let mut transport_error = None;
    let mut established = false;
    let mut head_open = true;
    let mut stop_open = true;
    let mut peer_hlc = Hlc::ZERO;
    let mut buf = vec![0u8; 64 * 1024];
    // A stop requested before we started.
    if let Some(reason) = signals.stop.borrow_and_update().clone() {
        m.close(CloseReason::Normal, &reason);
    }
    loop {
        // Carry out what the machine asks (that may queue frames and further events), sending
        // each frame as soon as it is queued.
        loop {
            while let Some(frame) = m.poll_transmit() {
                // A send fails only once the writer ended; its result is read below.
                let _ = tx.send(frame);
            }
            let Some(ev) = m.poll_event() else { break };
            established |= matches!(ev, AppEvent::Connected { .. });
            handle_event(&mut m, ev, &side, &key, &clock).await;
        }
        if m.is_closed() {
            // Drain the Closed event (and anything queued with it).
            while let Some(ev) = m.poll_event() {
                handle_event(&mut m, ev, &side, &key, &clock).await;
            }
            break;
        }
        let deadline = m.poll_timeout().map(|ms| clock.at(ms));
        tokio::select! {
            read = rd.read(&mut buf) => {
                let now = clock.now(side.as_ref());
                match read {
                    Ok(0) => m.connection_lost(now),
                    Ok(n) => {
                        m.receive(&buf[..n], now);
                        let remote = m.peer_hlc();
                        if remote > peer_hlc {
                            peer_hlc = remote;
                            side.observe_hlc(remote, now.wall_ms);
                        }
                    }
                    Err(e) => {
                        transport_error = Some(e.to_string());
                        m.connection_lost(now);
                    }
                }
            }
            () = sleep_until(deadline) => m.handle_timeout(clock.now(side.as_ref())),
            changed = signals.head.changed(), if head_open => match changed {
                Ok(()) => {
                    let seq = *signals.head.borrow_and_update();
                    m.outbox_has(seq, clock.now(side.as_ref()));
                }
                Err(_) => head_open = false,
            },
            changed = signals.stop.changed(), if stop_open => match changed {
                Ok(()) => {
                    if let Some(reason) = signals.stop.borrow_and_update().clone() {
                        m.close(CloseReason::Normal, &reason);
                    }
                }
                Err(_) => stop_open = false,
            },
            result = &mut writer, if !writer_done => {
                writer_done = true;
                let why = match result {
                    Ok(Ok(())) => "the writer ended".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                transport_error.get_or_insert(why);
                m.connection_lost(clock.now(side.as_ref()));
            }
        }
    }
    drop(tx);
    if !writer_done {
        match tokio::time::timeout(WRITER_GRACE, &mut writer).await {
            Ok(Ok(Err(e))) => {
                transport_error.get_or_insert(e.to_string());
            }
            Ok(_) => {}
            Err(_) => writer.abort(),
        }
    }
    Ended {
        established,
        transport_error,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn handle_event<M: Machine, S: Side>(
    m: &mut M,
    ev: AppEvent,
    side: &Arc<S>,
    key: &DeviceKey,
    clock: &Clock,
) {
    match ev {
        AppEvent::NeedEvents(req) => {
            let s = side.clone();
            let read = blocking(move || s.read_events(&req)).await;
            let now = clock.now(side.as_ref());
            match read {
                Ok((events, checkpoints)) => {
                    if let Err(e) = m.supply_events(&req, events, checkpoints, key, now) {
                        m.close(CloseReason::Internal, &format!("reading our log: {e}"));
                    }
                }
                Err(e) => m.close(CloseReason::Internal, &format!("reading our log: {e}")),
            }
        }
        AppEvent::Store(batch) => {
            let (origin, last) = (batch.origin, batch.last_seq);
            let s = side.clone();
            let stored = blocking(move || s.store(&batch)).await;
            let now = clock.now(side.as_ref());
            match stored {
                Ok(()) => {
                    if let Err(e) = m.events_stored(origin, last, now) {
                        m.close(CloseReason::Internal, &e.to_string());
                    }
                }
                Err(e) => m.close(CloseReason::Internal, &format!("storing failed: {e}")),
            }
        }
        other => {
            let s = side.clone();
            // Notes and security events: their failures are the side's to log.
            let _ = blocking(move || {
                s.event(&other);
                Ok(())
            })
            .await;
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(StorageError(format!("the storage call failed: {e}"))),
    }
}
