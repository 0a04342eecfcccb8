//! A small device event bus modelled on UnifiedPOS `Claim` / `DeviceEnabled` / events.
//!
//! * **Subscribers.** [`DeviceBus::subscribe`] returns a `std::sync::mpsc::Receiver`; every
//!   subscriber gets every published event, in publishing order. A subscriber whose receiver
//!   was dropped is removed at the next publish; nothing blocks on a slow subscriber (the
//!   channels are unbounded).
//! * **Claim.** [`DeviceBus::claim`] gives one owner exclusive use of a named device (UnifiedPOS
//!   `claim`). A second claim fails with [`BusError::AlreadyClaimed`] naming the owner. The
//!   returned [`ClaimGuard`] releases the claim when dropped.
//! * **Enable.** A freshly claimed device is *disabled*, as in UnifiedPOS (`DeviceEnabled` is
//!   false after `claim`). Events published through the guard ([`ClaimGuard::publish`]) reach
//!   subscribers only while it is enabled; while disabled they are dropped and counted
//!   ([`ClaimGuard::dropped`]). Example: the sale screen owns the scanner claim and disables
//!   it while the manager-approval dialog has focus, so a barcode scanned then is not added to
//!   the sale behind the dialog; it enables the scanner again when the dialog closes.
//! * [`DeviceBus::publish`] sends an event not tied to a claimed device (e.g. a status change
//!   found by the device manager) to every subscriber, without gating.
//!
//! A poisoned lock (a panic while holding it) is recovered from: the bus state is always
//! consistent between statements, so the data is still valid.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::device::DeviceEvent;

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The device is claimed by another owner.
    #[error("device {device:?} is already claimed by {by:?}")]
    AlreadyClaimed { device: String, by: String },
}

#[derive(Debug)]
struct Claim {
    id: u64,
    owner: String,
    enabled: bool,
}

#[derive(Debug, Default)]
struct Inner {
    subscribers: Vec<Sender<DeviceEvent>>,
    claims: HashMap<String, Claim>,
    next_id: u64,
}

impl Inner {
    /// Send to every live subscriber, dropping dead ones; the number reached.
    fn broadcast(&mut self, event: &DeviceEvent) -> usize {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
        self.subscribers.len()
    }
}

/// The device event bus. Cheap to clone: clones share the same subscribers and claims.
#[derive(Debug, Clone, Default)]
pub struct DeviceBus {
    inner: Arc<Mutex<Inner>>,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DeviceBus {
    /// An empty bus: no subscribers, no claims.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new subscriber; it receives every event published from now on.
    pub fn subscribe(&self) -> Receiver<DeviceEvent> {
        let (tx, rx) = channel();
        lock(&self.inner).subscribers.push(tx);
        rx
    }

    /// Subscribers currently registered (dead ones are only noticed at the next publish).
    pub fn subscriber_count(&self) -> usize {
        lock(&self.inner).subscribers.len()
    }

    /// Send `event` to every subscriber, ungated; returns how many live subscribers got it.
    pub fn publish(&self, event: DeviceEvent) -> usize {
        lock(&self.inner).broadcast(&event)
    }

    /// Claim `device` for exclusive use by an anonymous owner (named `claim#N` in errors).
    pub fn claim(&self, device: &str) -> Result<ClaimGuard, BusError> {
        self.claim_inner(device, None)
    }

    /// Claim `device` for exclusive use by `owner` (shown to whoever is refused).
    pub fn claim_as(&self, device: &str, owner: &str) -> Result<ClaimGuard, BusError> {
        self.claim_inner(device, Some(owner))
    }

    fn claim_inner(&self, device: &str, owner: Option<&str>) -> Result<ClaimGuard, BusError> {
        let mut inner = lock(&self.inner);
        if let Some(c) = inner.claims.get(device) {
            return Err(BusError::AlreadyClaimed {
                device: device.to_owned(),
                by: c.owner.clone(),
            });
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let owner = owner.map_or_else(|| format!("claim#{id}"), str::to_owned);
        inner.claims.insert(
            device.to_owned(),
            Claim {
                id,
                owner,
                enabled: false,
            },
        );
        Ok(ClaimGuard {
            inner: Arc::clone(&self.inner),
            device: device.to_owned(),
            id,
            dropped: 0,
        })
    }

    /// Who holds the claim on `device`, if anyone.
    pub fn claimed_by(&self, device: &str) -> Option<String> {
        lock(&self.inner)
            .claims
            .get(device)
            .map(|c| c.owner.clone())
    }

    /// Whether `device` is claimed and enabled.
    pub fn is_enabled(&self, device: &str) -> bool {
        lock(&self.inner)
            .claims
            .get(device)
            .is_some_and(|c| c.enabled)
    }
}

/// Exclusive use of one device on a [`DeviceBus`]; released on drop. Not `Clone`: there is
/// exactly one owner.
#[derive(Debug)]
pub struct ClaimGuard {
    inner: Arc<Mutex<Inner>>,
    device: String,
    id: u64,
    dropped: u64,
}

impl ClaimGuard {
    /// The claimed device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    fn with_claim<R>(&self, f: impl FnOnce(&mut Claim) -> R) -> Option<R> {
        let mut inner = lock(&self.inner);
        inner
            .claims
            .get_mut(&self.device)
            .filter(|c| c.id == self.id)
            .map(f)
    }

    /// Let the device's events through (UnifiedPOS `DeviceEnabled = true`).
    pub fn enable(&self) {
        self.with_claim(|c| c.enabled = true);
    }

    /// Drop the device's events until enabled again (UnifiedPOS `DeviceEnabled = false`).
    pub fn disable(&self) {
        self.with_claim(|c| c.enabled = false);
    }

    /// Whether the device's events are let through.
    pub fn is_enabled(&self) -> bool {
        self.with_claim(|c| c.enabled).unwrap_or(false)
    }

    /// Publish an event of this device: `Some(n)` when enabled (`n` subscribers reached),
    /// `None` when disabled (the event is dropped and counted).
    pub fn publish(&mut self, event: DeviceEvent) -> Option<usize> {
        let mut inner = lock(&self.inner);
        let enabled = inner
            .claims
            .get(&self.device)
            .is_some_and(|c| c.id == self.id && c.enabled);
        if enabled {
            Some(inner.broadcast(&event))
        } else {
            drop(inner);
            self.dropped += 1;
            None
        }
    }

    /// Events dropped because the device was disabled.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        if inner
            .claims
            .get(&self.device)
            .is_some_and(|c| c.id == self.id)
        {
            inner.claims.remove(&self.device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(s: &str) -> DeviceEvent {
        DeviceEvent::Scanned(s.into())
    }

    fn drain(rx: &Receiver<DeviceEvent>) -> Vec<DeviceEvent> {
        rx.try_iter().collect()
    }

    #[test]
    fn every_subscriber_gets_every_event_in_order() {
        let bus = DeviceBus::new();
        let a = bus.subscribe();
        assert_eq!(bus.publish(scan("1")), 1);
        let b = bus.subscribe();
        assert_eq!(bus.publish(scan("2")), 2);
        assert_eq!(bus.clone().publish(DeviceEvent::DrawerOpened), 2);
        assert_eq!(
            drain(&a),
            vec![scan("1"), scan("2"), DeviceEvent::DrawerOpened]
        );
        // A late subscriber sees only what came after it subscribed.
        assert_eq!(drain(&b), vec![scan("2"), DeviceEvent::DrawerOpened]);
    }

    #[test]
    fn dropped_subscribers_are_removed() {
        let bus = DeviceBus::new();
        let a = bus.subscribe();
        let b = bus.subscribe();
        assert_eq!(bus.subscriber_count(), 2);
        drop(b);
        assert_eq!(bus.publish(scan("x")), 1);
        assert_eq!(bus.subscriber_count(), 1);
        drop(a);
        assert_eq!(bus.publish(scan("y")), 0);
        assert_eq!(bus.subscriber_count(), 0);
    }

    #[test]
    fn one_claim_at_a_time_released_on_drop() {
        let bus = DeviceBus::new();
        let g = bus.claim_as("scanner-1", "sale-screen").unwrap();
        assert_eq!(g.device(), "scanner-1");
        assert_eq!(bus.claimed_by("scanner-1").as_deref(), Some("sale-screen"));
        assert_eq!(
            bus.claim("scanner-1").unwrap_err(),
            BusError::AlreadyClaimed {
                device: "scanner-1".into(),
                by: "sale-screen".into()
            }
        );
        // Other devices are independent.
        let other = bus.claim("receipt").unwrap();
        let by = bus.claimed_by("receipt").unwrap();
        assert!(by.starts_with("claim#"), "{by}");
        match bus.claim("receipt") {
            Err(BusError::AlreadyClaimed { by: b, .. }) => assert_eq!(b, by),
            other => panic!("{other:?}"),
        }
        drop(g);
        assert_eq!(bus.claimed_by("scanner-1"), None);
        let again = bus.claim_as("scanner-1", "admin").unwrap();
        assert_eq!(bus.claimed_by("scanner-1").as_deref(), Some("admin"));
        drop(again);
        drop(other);
        assert_eq!(bus.claimed_by("receipt"), None);
    }

    #[test]
    fn disabled_device_events_are_dropped() {
        let bus = DeviceBus::new();
        let rx = bus.subscribe();
        let mut scanner = bus.claim("scanner-1").unwrap();
        // Disabled right after claim, as in UnifiedPOS.
        assert!(!scanner.is_enabled());
        assert!(!bus.is_enabled("scanner-1"));
        assert_eq!(scanner.publish(scan("early")), None);
        scanner.enable();
        assert!(bus.is_enabled("scanner-1"));
        assert_eq!(scanner.publish(scan("1")), Some(1));
        // Manager-approval dialog takes focus: scans are dropped, not queued.
        scanner.disable();
        assert_eq!(scanner.publish(scan("behind-dialog")), None);
        scanner.enable();
        assert_eq!(scanner.publish(scan("2")), Some(1));
        assert_eq!(scanner.dropped(), 2);
        assert_eq!(drain(&rx), vec![scan("1"), scan("2")]);
        // Ungated publish still works while a device is disabled.
        scanner.disable();
        assert_eq!(bus.publish(DeviceEvent::DrawerClosed), 1);
        assert_eq!(drain(&rx), vec![DeviceEvent::DrawerClosed]);
        // Released: nothing is enabled any more.
        drop(scanner);
        assert!(!bus.is_enabled("scanner-1"));
    }

    #[test]
    fn works_across_threads() {
        let bus = DeviceBus::new();
        let rx = bus.subscribe();
        let mut g = bus.claim("scanner-1").unwrap();
        g.enable();
        let t = std::thread::spawn(move || {
            for i in 0..100 {
                g.publish(scan(&i.to_string()));
            }
        });
        t.join().unwrap();
        assert_eq!(drain(&rx).len(), 100);
        assert_eq!(bus.claimed_by("scanner-1"), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Subscribe,
        DropSubscriber(usize),
        Publish(u8),
        Claim(u8),
        Release(usize),
        Enable(usize, bool),
        GuardPublish(usize, u8),
        Drain(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Subscribe),
            any::<usize>().prop_map(Op::DropSubscriber),
            any::<u8>().prop_map(Op::Publish),
            (0u8..4).prop_map(Op::Claim),
            any::<usize>().prop_map(Op::Release),
            (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Enable(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::GuardPublish(i, b)),
            any::<usize>().prop_map(Op::Drain),
        ]
    }

    proptest! {
        /// Random operation sequences never panic, and every live subscriber receives exactly
        /// the events published (ungated, or through an enabled claim) since it subscribed.
        #[test]
        fn random_sequences_never_panic(ops in proptest::collection::vec(op(), 0..200)) {
            let bus = DeviceBus::new();
            let mut subs: Vec<(Receiver<DeviceEvent>, Vec<DeviceEvent>)> = Vec::new();
            let mut guards: Vec<(ClaimGuard, bool)> = Vec::new();
            for op in ops {
                match op {
                    Op::Subscribe => subs.push((bus.subscribe(), Vec::new())),
                    Op::DropSubscriber(i) if !subs.is_empty() => {
                        subs.remove(i % subs.len());
                    }
                    Op::Publish(b) => {
                        let ev = scan(&b.to_string());
                        prop_assert_eq!(bus.publish(ev.clone()), subs.len());
                        subs.iter_mut().for_each(|(_, want)| want.push(ev.clone()));
                    }
                    Op::Claim(d) => {
                        let name = format!("dev{d}");
                        let held = guards.iter().any(|(g, _)| g.device() == name);
                        match bus.claim(&name) {
                            Ok(g) => {
                                prop_assert!(!held);
                                guards.push((g, false));
                            }
                            Err(BusError::AlreadyClaimed { .. }) => prop_assert!(held),
                        }
                    }
                    Op::Release(i) if !guards.is_empty() => {
                        let (g, _) = guards.remove(i % guards.len());
                        let name = g.device().to_owned();
                        drop(g);
                        prop_assert_eq!(bus.claimed_by(&name), None);
                    }
                    Op::Enable(i, on) if !guards.is_empty() => {
                        let n = guards.len();
                        let (g, enabled) = &mut guards[i % n];
                        if on { g.enable() } else { g.disable() }
                        *enabled = on;
                        prop_assert_eq!(bus.is_enabled(g.device()), on);
                    }
                    Op::GuardPublish(i, b) if !guards.is_empty() => {
                        let n = guards.len();
                        let (g, enabled) = &mut guards[i % n];
                        let ev = scan(&b.to_string());
                        let r = g.publish(ev.clone());
                        if *enabled {
                            prop_assert_eq!(r, Some(subs.len()));
                            subs.iter_mut().for_each(|(_, want)| want.push(ev.clone()));
                        } else {
                            prop_assert_eq!(r, None);
                        }
                    }
                    Op::Drain(i) if !subs.is_empty() => {
                        let n = subs.len();
                        let (rx, want) = &mut subs[i % n];
                        prop_assert_eq!(drain(rx), std::mem::take(want));
                    }
                    _ => {}
                }
            }
            for (rx, want) in &subs {
                prop_assert_eq!(&drain(rx), want);
            }
        }
    }
}
