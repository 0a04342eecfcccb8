//! Signed chains for tests (feature `testing`): real `pos_audit` events, hashes and signatures,
//! built without a database.

use pos_audit::{ChainHash, Checkpoint, DeviceKey, Event, EventDraft};
use pos_core::{DeviceId, EventId, Hlc};

/// One device's log in memory: events sealed into a chain and a checkpoint every `interval`.
#[derive(Debug)]
pub struct SignedChain {
    pub origin: DeviceId,
    pub key: DeviceKey,
    pub events: Vec<Event>,
    pub checkpoints: Vec<Checkpoint>,
    interval: u64,
    scratch: Vec<u8>,
}

impl SignedChain {
    /// A chain whose device id and key are derived from `seed` (deterministic).
    pub fn new(seed: u8, checkpoint_interval: u64) -> Self {
        SignedChain {
            origin: DeviceId::from_bytes([seed; 16]),
            key: DeviceKey::from_seed([seed; 32]),
            events: Vec::new(),
            checkpoints: Vec::new(),
            interval: checkpoint_interval.max(1),
            scratch: Vec::new(),
        }
    }

    pub fn head(&self) -> (u64, ChainHash) {
        self.events
            .last()
            .map_or((0, ChainHash::GENESIS), |e| (e.seq, e.hash))
    }

    /// Append one event of `module`/`kind` with a small JSON payload.
    pub fn append(&mut self, module: &str, kind: &str, payload: &str) -> &Event {
        let (seq, prev) = self.head();
        let seq = seq + 1;
        let hlc = Hlc::from_parts(1_700_000_000_000 + seq, 0);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&seq.to_be_bytes());
        id[8..].copy_from_slice(&self.origin.as_bytes()[..8]);
        let draft = EventDraft {
            module: module.to_owned(),
            kind: kind.to_owned(),
            actor: None,
            approver: None,
            reason: None,
            schema_version: 1,
            payload: payload.as_bytes().to_vec(),
        };
        let event = draft.seal(
            EventId::from_bytes(id),
            self.origin,
            seq,
            hlc,
            prev,
            &mut self.scratch,
        );
        if seq % self.interval == 0 {
            let cp = Checkpoint::sign(&self.key, self.origin, seq, event.hash, hlc);
            self.checkpoints.push(cp);
        }
        self.events.push(event);
        // Just pushed.
        &self.events[self.events.len() - 1]
    }

    /// Append `n` events, cycling through `modules`.
    pub fn append_many(&mut self, n: usize, modules: &[&str]) {
        for i in 0..n {
            let module = modules[i % modules.len().max(1)];
            self.append(module, "changed", &format!("{{\"n\":{i}}}"));
        }
    }

    /// Events `first..` (at most `max`), as an IO layer would read them from its log.
    pub fn read(&self, first: u64, max: u32) -> Vec<Event> {
        self.events
            .iter()
            .filter(|e| e.seq >= first)
            .take(max as usize)
            .cloned()
            .collect()
    }

    /// The stored checkpoints within `first..=last`.
    pub fn checkpoints_in(&self, first: u64, last: u64) -> Vec<Checkpoint> {
        self.checkpoints
            .iter()
            .filter(|c| (first..=last).contains(&c.seq))
            .cloned()
            .collect()
    }
}
