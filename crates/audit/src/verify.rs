//! Streaming verification of one origin's chain.
//!
//! Feed records in seq order with [`ChainVerifier::push`], then call [`ChainVerifier::finish`].
//! The first problem found is returned as a [`Finding`] naming the record (origin, seq) and why.
//! Memory use is constant: a terminal's whole history can be verified in one pass.

use std::collections::VecDeque;

use pos_core::DeviceId;

use crate::checkpoint::Checkpoint;
use crate::event::{ChainHash, Event};
use crate::keys::PublicKey;

/// Why a record is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The record's data no longer matches its hash: a field or payload was edited.
    ContentChanged,
    /// The record at this seq is gone; `next_present` is the seq the log jumps to, if known.
    Missing { next_present: Option<u64> },
    /// This record was not written by the device: the next record links past it.
    Inserted,
    /// This record is not where it was written; its predecessor is stored at `predecessor_at`.
    Reordered { predecessor_at: u64 },
    /// The record links to a predecessor that is not the previous record; [`Finding::refine`]
    /// turns this into [`Problem::Reordered`] or [`Problem::Missing`] given a lookup.
    Unlinked,
    /// A signed checkpoint covers seq `signed_up_to`, but the log ends before this seq.
    Truncated { signed_up_to: u64 },
    /// The record comes after the device's signed head (seq `signed_up_to`): nobody signed it.
    Unsigned { signed_up_to: u64 },
    /// The checkpoint at this seq carries a signature that does not verify.
    BadSignature,
    /// The checkpoint at this seq is signed by a key not registered for the origin.
    UnknownKey { key: PublicKey },
    /// The checkpoint at this seq signed a different head: the history up to here was rewritten.
    HistoryRewritten,
    /// The device's signed head (sealed at every commit) is missing.
    SealMissing,
    /// The record is filed under another origin than the one it was written by.
    WrongOrigin { written_by: DeviceId },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::ContentChanged => {
                f.write_str("content changed: the record's data does not match its hash")
            }
            Problem::Missing {
                next_present: Some(n),
            } => write!(f, "record missing (deleted): the log jumps to seq {n}"),
            Problem::Missing { next_present: None } => f.write_str(
                "record missing (deleted): the next record links to one that is not in the log",
            ),
            Problem::Inserted => {
                f.write_str("record inserted: the next record links past it to its predecessor")
            }
            Problem::Reordered { predecessor_at } => write!(
                f,
                "records reordered: this record's predecessor is stored at seq {predecessor_at}"
            ),
            Problem::Unlinked => f.write_str(
                "chain broken: the record does not link to the previous record (deleted or reordered)",
            ),
            Problem::Truncated { signed_up_to } => write!(
                f,
                "log truncated: a signed checkpoint covers seq {signed_up_to} but the log ends before this record"
            ),
            Problem::Unsigned { signed_up_to } => write!(
                f,
                "record not signed by the device: its signed head ends at seq {signed_up_to} (row appended)"
            ),
            Problem::BadSignature => f.write_str("checkpoint signature is invalid"),
            Problem::UnknownKey { key } => write!(
                f,
                "checkpoint signed by unknown key {}: not registered for this device",
                key.fingerprint()
            ),
            Problem::HistoryRewritten => f.write_str(
                "history rewritten: the log differs from what the device signed at this seq",
            ),
            Problem::SealMissing => {
                f.write_str("the device's signed head is missing (seal row deleted)")
            }
            Problem::WrongOrigin { written_by } => {
                write!(f, "record was written by device {written_by}, not this origin")
            }
        }
    }
}

/// The first bad record of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub origin: DeviceId,
    pub seq: u64,
    pub problem: Problem,
    claimed_prev: Option<ChainHash>,
}

impl Finding {
    pub fn new(origin: DeviceId, seq: u64, problem: Problem) -> Self {
        Finding {
            origin,
            seq,
            problem,
            claimed_prev: None,
        }
    }

    /// Sharpen an [`Problem::Unlinked`] finding. `locate` returns the seq at which a record with
    /// the given hash is stored, if any (the store answers it with one query).
    pub fn refine(mut self, locate: impl FnOnce(&ChainHash) -> Option<u64>) -> Self {
        if self.problem == Problem::Unlinked {
            if let Some(claimed) = self.claimed_prev {
                self.problem = match locate(&claimed) {
                    Some(at) if at >= self.seq => Problem::Reordered { predecessor_at: at },
                    _ => Problem::Missing { next_present: None },
                };
            }
        }
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "origin {} seq {}: {}",
            self.origin, self.seq, self.problem
        )
    }
}

impl std::error::Error for Finding {}

/// What a verified chain looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub origin: DeviceId,
    pub records: u64,
    pub last_seq: u64,
    pub head: ChainHash,
}

#[derive(Debug)]
pub struct ChainVerifier<'k> {
    origin: DeviceId,
    trusted: &'k [PublicKey],
    pending: VecDeque<Checkpoint>,
    seal: Option<Checkpoint>,
    seal_required: bool,
    expected_seq: u64,
    head: ChainHash,
    /// (seq, prev_hash) of the record before, to recognise an inserted one.
    previous: Option<(u64, ChainHash)>,
    records: u64,
    scratch: Vec<u8>,
}

impl<'k> ChainVerifier<'k> {
    /// Verify `origin`'s chain from seq 1, trusting checkpoints signed by `trusted` keys.
    pub fn new(origin: DeviceId, trusted: &'k [PublicKey]) -> Self {
        Self::resume(origin, trusted, 0, ChainHash::GENESIS)
    }

    /// Continue after a record already verified (`last_seq`, `head`), e.g. on sync ingest.
    pub fn resume(
        origin: DeviceId,
        trusted: &'k [PublicKey],
        last_seq: u64,
        head: ChainHash,
    ) -> Self {
        ChainVerifier {
            origin,
            trusted,
            pending: VecDeque::new(),
            seal: None,
            seal_required: false,
            expected_seq: last_seq + 1,
            head,
            previous: None,
            records: 0,
            scratch: Vec::with_capacity(512),
        }
    }

    /// Periodic checkpoints of this origin, in any order. Those before the start are ignored.
    pub fn with_checkpoints(mut self, checkpoints: impl IntoIterator<Item = Checkpoint>) -> Self {
        let start = self.expected_seq;
        let mut all: Vec<Checkpoint> = checkpoints
            .into_iter()
            .filter(|c| c.origin == self.origin && c.seq >= start)
            .collect();
        all.extend(self.pending.drain(..));
        all.sort_by_key(|c| c.seq);
        self.pending = all.into();
        self
    }

    /// The rolling head seal. With `required`, a non-empty chain without one fails.
    pub fn with_seal(mut self, seal: Option<Checkpoint>, required: bool) -> Self {
        self.seal_required = required;
        self.seal = seal.filter(|s| s.origin == self.origin);
        if let Some(seal) = &self.seal {
            let seal = seal.clone();
            self = self.with_checkpoints([seal]);
        }
        self
    }

    pub fn push(&mut self, e: &Event) -> Result<(), Finding> {
        let origin = self.origin;
        let expected = self.expected_seq;
        if e.origin != origin {
            return Err(Finding::new(
                origin,
                e.seq,
                Problem::WrongOrigin {
                    written_by: e.origin,
                },
            ));
        }
        if e.seq > expected {
            return Err(Finding::new(
                origin,
                expected,
                Problem::Missing {
                    next_present: Some(e.seq),
                },
            ));
        }
        if e.seq < expected {
            return Err(Finding::new(
                origin,
                e.seq,
                Problem::Reordered {
                    predecessor_at: expected.saturating_sub(1),
                },
            ));
        }
        let computed = e.compute_hash(&mut self.scratch);
        if e.prev_hash != self.head {
            return Err(self.explain_broken_link(e, computed == e.hash));
        }
        if computed != e.hash {
            return Err(Finding::new(origin, e.seq, Problem::ContentChanged));
        }
        // Checkpoints of the previous record are checked only now, once this record links to
        // it: an inserted or re-hashed record is then named as such, not as a bad checkpoint.
        self.settle_checkpoints()?;
        self.previous = Some((e.seq, e.prev_hash));
        self.head = e.hash;
        self.expected_seq += 1;
        self.records += 1;
        Ok(())
    }

    /// Check the pending checkpoints that sign the last verified record.
    fn settle_checkpoints(&mut self) -> Result<(), Finding> {
        let last = self.expected_seq - 1;
        while self.pending.front().is_some_and(|c| c.seq <= last) {
            if let Some(cp) = self.pending.pop_front() {
                self.check_checkpoint(&cp, Some(&self.head))?;
            }
        }
        Ok(())
    }

    fn explain_broken_link(&self, e: &Event, own_content_intact: bool) -> Finding {
        match self.previous {
            // The record before claims the same predecessor as this one: it was slipped in.
            Some((prev_seq, prev_prev)) if prev_prev == e.prev_hash => {
                Finding::new(self.origin, prev_seq, Problem::Inserted)
            }
            // This record is intact but links to a different version of the previous one:
            // the previous record was edited and its hash recomputed to hide it.
            Some((prev_seq, _)) if own_content_intact => {
                Finding::new(self.origin, prev_seq, Problem::ContentChanged)
            }
            _ => Finding {
                origin: self.origin,
                seq: e.seq,
                problem: Problem::Unlinked,
                claimed_prev: Some(e.prev_hash),
            },
        }
    }

    fn check_checkpoint(
        &self,
        cp: &Checkpoint,
        head_here: Option<&ChainHash>,
    ) -> Result<(), Finding> {
        let fail = |problem| Err(Finding::new(self.origin, cp.seq, problem));
        if !self.trusted.contains(&cp.key) {
            return fail(Problem::UnknownKey { key: cp.key });
        }
        if !cp.signature_valid() {
            return fail(Problem::BadSignature);
        }
        match head_here {
            Some(head) if *head != cp.head => fail(Problem::HistoryRewritten),
            Some(_) => Ok(()),
            None => Err(Finding::new(
                self.origin,
                self.expected_seq,
                Problem::Truncated {
                    signed_up_to: cp.seq,
                },
            )),
        }
    }

    pub fn finish(mut self) -> Result<ChainSummary, Finding> {
        self.settle_checkpoints()?;
        // Checkpoints beyond the last record: the tail was cut (if they are genuine).
        if let Some(cp) = self.pending.pop_front() {
            self.check_checkpoint(&cp, None)?;
        }
        let last_seq = self.expected_seq - 1;
        match &self.seal {
            Some(seal) if seal.seq < last_seq => {
                return Err(Finding::new(
                    self.origin,
                    seal.seq + 1,
                    Problem::Unsigned {
                        signed_up_to: seal.seq,
                    },
                ))
            }
            None if self.seal_required && self.records > 0 => {
                return Err(Finding::new(self.origin, last_seq, Problem::SealMissing))
            }
            _ => {}
        }
        Ok(ChainSummary {
            origin: self.origin,
            records: self.records,
            last_seq,
            head: self.head,
        })
    }
}
