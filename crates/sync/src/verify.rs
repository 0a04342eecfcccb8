//! Building a signed batch (sender) and verifying one against the stored chain head (receiver).
//!
//! Runs of full entries are checked by `pos_audit::ChainVerifier`, resumed from the head before
//! the run, so a batch gets exactly the checks (and the words) of `pos audit verify`. A redacted
//! entry carries only its hash, which cannot be recomputed; authenticity flows backwards from a
//! signature, so the sender signs the end of every run of full entries that a redacted entry
//! follows, and the batch's last entry (the seal). Signatures at redacted positions are checked
//! here with the same rules (trusted key, valid signature, head matches).

use pos_audit::{
    ChainHash, ChainVerifier, Checkpoint, DeviceKey, Event, Finding, Problem, PublicKey,
};
use pos_core::DeviceId;

use crate::frame::HEADER_BYTES;
use crate::message::{BatchEntry, EventBatch, BATCH_FIXED_BYTES, CHECKPOINT_WIRE_BYTES};

/// The first entry not at its place in a gapless sequence, as the chain verifier names it.
pub(crate) fn check_contiguous(origin: DeviceId, entries: &[BatchEntry]) -> Result<(), Finding> {
    let Some(first) = entries.first().map(BatchEntry::seq) else {
        return Ok(());
    };
    let mut expected = first;
    for entry in entries {
        if entry.seq() != expected {
            return Err(out_of_place(origin, expected, entry.seq()));
        }
        expected = expected.saturating_add(1);
    }
    Ok(())
}

fn out_of_place(origin: DeviceId, expected: u64, found: u64) -> Finding {
    if found > expected {
        Finding::new(
            origin,
            expected,
            Problem::Missing {
                next_present: Some(found),
            },
        )
    } else {
        Finding::new(
            origin,
            found,
            Problem::Reordered {
                predecessor_at: expected.saturating_sub(1),
            },
        )
    }
}

fn check_signature(origin: DeviceId, keys: &[PublicKey], cp: &Checkpoint) -> Result<(), Finding> {
    if !keys.contains(&cp.key) {
        return Err(Finding::new(
            origin,
            cp.seq,
            Problem::UnknownKey { key: cp.key },
        ));
    }
    if !cp.signature_valid() {
        return Err(Finding::new(origin, cp.seq, Problem::BadSignature));
    }
    Ok(())
}

/// Verify `entries` (gapless, all after `after_seq`) as the continuation of `origin`'s chain at
/// (`after_seq`, `after_head`). Returns the new head.
pub(crate) fn verify_entries(
    origin: DeviceId,
    keys: &[PublicKey],
    (after_seq, after_head): (u64, ChainHash),
    entries: &[BatchEntry],
    checkpoints: &[Checkpoint],
    seal: &Checkpoint,
) -> Result<ChainHash, Finding> {
    let Some(last) = entries.last().map(BatchEntry::seq) else {
        return Ok(after_head);
    };
    // Signatures over records the receiver already holds were checked when those arrived.
    let mut signed: Vec<&Checkpoint> = checkpoints
        .iter()
        .chain(std::iter::once(seal))
        .filter(|c| c.seq > after_seq)
        .collect();
    signed.sort_by_key(|c| c.seq);
    if let Some(cp) = signed.iter().find(|c| c.origin != origin) {
        return Err(Finding::new(
            origin,
            cp.seq,
            Problem::WrongOrigin {
                written_by: cp.origin,
            },
        ));
    }
    if let Some(beyond) = signed.iter().find(|c| c.seq > last) {
        // Something signed more than was sent: the tail was cut on the way (if it is genuine).
        check_signature(origin, keys, beyond)?;
        return Err(Finding::new(
            origin,
            last + 1,
            Problem::Truncated {
                signed_up_to: beyond.seq,
            },
        ));
    }
    if seal.seq < last {
        return Err(Finding::new(
            origin,
            seal.seq.max(after_seq) + 1,
            Problem::Unsigned {
                signed_up_to: seal.seq,
            },
        ));
    }

    let (mut seq, mut head) = (after_seq, after_head);
    // `signed` is sorted and runs come in seq order: one pass hands each run its signatures.
    let mut signed = signed.into_iter().peekable();
    let mut start = 0;
    while start < entries.len() {
        let full = matches!(entries[start], BatchEntry::Full(_));
        let len = entries[start..]
            .iter()
            .take_while(|e| matches!(e, BatchEntry::Full(_)) == full)
            .count();
        let run = &entries[start..start + len];
        let (lo, hi) = (run[0].seq(), run[len - 1].seq());
        let mut in_run = Vec::new();
        while let Some(cp) = signed.next_if(|c| c.seq <= hi) {
            if cp.seq >= lo {
                in_run.push(cp.clone());
            }
        }
        if full {
            // The highest signature of the run must sign its last record (else "unsigned").
            let run_seal = in_run.last().cloned();
            let mut verifier = ChainVerifier::resume(origin, keys, seq, head)
                .with_checkpoints(in_run)
                .with_seal(run_seal, true);
            for entry in run {
                if let BatchEntry::Full(event) = entry {
                    verifier
                        .push(event)
                        .map_err(|f| f.refine(|hash| seq_of(entries, hash)))?;
                }
            }
            let summary = verifier.finish()?;
            seq = summary.last_seq;
            head = summary.head;
        } else {
            for entry in run {
                if entry.seq() != seq + 1 {
                    return Err(out_of_place(origin, seq + 1, entry.seq()));
                }
                seq = entry.seq();
                head = entry.hash();
                for cp in in_run.iter().filter(|c| c.seq == seq) {
                    check_signature(origin, keys, cp)?;
                    if cp.head != head {
                        return Err(Finding::new(origin, seq, Problem::HistoryRewritten));
                    }
                }
            }
        }
        start += len;
    }
    Ok(head)
}

fn seq_of(entries: &[BatchEntry], hash: &ChainHash) -> Option<u64> {
    entries
        .iter()
        .find(|e| e.hash() == *hash)
        .map(BatchEntry::seq)
}

/// What the sender puts in one batch.
pub(crate) struct BatchLimits<'a> {
    pub max_entries: usize,
    pub max_frame_bytes: usize,
    /// Modules sent in full; `None` sends every record in full.
    pub full_modules: Option<&'a [String]>,
}

/// Build a batch from `events` (gapless, of `origin`, at least one): as many as fit the limits,
/// with the origin's stored checkpoints in range and fresh signatures where the receiver needs
/// one (the tail, and the end of each full run before a redacted entry).
pub(crate) fn build_batch(
    origin: DeviceId,
    events: Vec<Event>,
    stored: &[Checkpoint],
    key: &DeviceKey,
    limits: &BatchLimits<'_>,
) -> Option<EventBatch> {
    let stored_at = |seq: u64| {
        stored
            .iter()
            .filter(move |c| c.origin == origin && c.seq == seq)
    };
    let is_full = |e: &Event| limits.full_modules.is_none_or(|m| m.contains(&e.module));

    let budget = limits
        .max_frame_bytes
        .saturating_sub(HEADER_BYTES + BATCH_FIXED_BYTES);
    let mut used = 0usize;
    let mut entries = Vec::new();
    // (seq, hash, hlc) of each entry, to sign where needed.
    let mut heads = Vec::new();
    for event in events.into_iter().take(limits.max_entries.max(1)) {
        let (seq, hash, hlc) = (event.seq, event.hash, event.hlc);
        let entry = if is_full(&event) {
            BatchEntry::Full(event)
        } else {
            BatchEntry::Redacted {
                seq: event.seq,
                hash: event.hash,
            }
        };
        // Worst case: this entry's stored checkpoints plus one fresh signature at it.
        let cost = entry.wire_len() + CHECKPOINT_WIRE_BYTES * (stored_at(seq).count() + 1);
        if !entries.is_empty() && used + cost > budget {
            break;
        }
        used += cost;
        entries.push(entry);
        heads.push((seq, hash, hlc));
    }
    let (&(last_seq, last_hash, last_hlc), &(first_seq, _, _)) = (heads.last()?, heads.first()?);

    let mut checkpoints: Vec<Checkpoint> = stored
        .iter()
        .filter(|c| c.origin == origin && (first_seq..=last_seq).contains(&c.seq))
        .cloned()
        .collect();
    for (i, pair) in entries.windows(2).enumerate() {
        let (seq, hash, hlc) = heads[i];
        if matches!(pair, [BatchEntry::Full(_), BatchEntry::Redacted { .. }])
            && stored_at(seq).next().is_none()
        {
            checkpoints.push(Checkpoint::sign(key, origin, seq, hash, hlc));
        }
    }
    checkpoints.sort_by_key(|c| c.seq);
    // Signed with the record's own time (not now), so a resend is byte-identical.
    let seal = stored_at(last_seq)
        .next()
        .cloned()
        .unwrap_or_else(|| Checkpoint::sign(key, origin, last_seq, last_hash, last_hlc));
    Some(EventBatch {
        origin,
        entries,
        checkpoints,
        seal,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::testing::SignedChain;

    fn chain(n: usize) -> SignedChain {
        let mut c = SignedChain::new(4, 10);
        c.append_many(n, &["catalogue", "catalogue", "settings", "user"]);
        c
    }

    fn limits(modules: Option<&[String]>) -> BatchLimits<'_> {
        BatchLimits {
            max_entries: 1000,
            max_frame_bytes: 4 << 20,
            full_modules: modules,
        }
    }

    fn batch(c: &SignedChain, from: u64, modules: Option<&[String]>) -> EventBatch {
        let events = c.read(from, 1000);
        let cps = c.checkpoints_in(from, u64::MAX);
        build_batch(c.origin, events, &cps, &c.key, &limits(modules)).unwrap()
    }

    fn verify(c: &SignedChain, after: u64, b: &EventBatch) -> Result<ChainHash, Finding> {
        let head = if after == 0 {
            ChainHash::GENESIS
        } else {
            c.events[after as usize - 1].hash
        };
        let keys = [c.key.public()];
        verify_entries(
            c.origin,
            &keys,
            (after, head),
            &b.entries,
            &b.checkpoints,
            &b.seal,
        )
    }

    #[test]
    fn a_full_batch_verifies_from_the_stored_head() {
        let c = chain(35);
        let b = batch(&c, 11, None);
        assert_eq!(b.first_seq(), 11);
        // The stored checkpoints at 20 and 30; the seal at 35 is signed for the batch.
        assert_eq!(b.checkpoints.len(), 2);
        assert_eq!(b.seal.seq, 35);
        assert_eq!(verify(&c, 10, &b), Ok(c.head().1));
    }

    #[test]
    fn a_redacted_batch_verifies_and_every_full_run_is_signed() {
        let c = chain(35);
        let subs = vec!["catalogue".to_owned()];
        let b = batch(&c, 1, Some(&subs));
        let full = b
            .entries
            .iter()
            .filter(|e| matches!(e, BatchEntry::Full(_)))
            .count();
        assert_eq!(full, 18);
        assert_eq!(verify(&c, 0, &b), Ok(c.head().1));
        // Each run of full records ends at a signature: runs end at 2, 6, 10, ...
        for run_end in [2, 6, 14, 34] {
            assert!(
                b.checkpoints.iter().any(|cp| cp.seq == run_end),
                "{run_end}"
            );
        }
    }

    #[test]
    fn a_full_run_without_its_signature_is_unsigned() {
        let c = chain(12);
        let subs = vec!["catalogue".to_owned()];
        let mut b = batch(&c, 1, Some(&subs));
        b.checkpoints.retain(|cp| cp.seq != 6);
        let f = verify(&c, 0, &b).unwrap_err();
        assert!(
            matches!(f.problem, Problem::Unsigned { .. } | Problem::SealMissing),
            "{f}"
        );
    }

    #[test]
    fn signatures_at_redacted_positions_are_checked() {
        let c = chain(22);
        let subs = vec!["catalogue".to_owned()];
        // Seq 20 is a `user` record (redacted) with a stored checkpoint.
        let b = batch(&c, 1, Some(&subs));
        assert!(matches!(
            b.entries[19],
            BatchEntry::Redacted { seq: 20, .. }
        ));
        let at_20 = b.checkpoints.iter().position(|cp| cp.seq == 20).unwrap();

        let mut forged = b.clone();
        forged.checkpoints[at_20].head = ChainHash([1; 32]);
        let f = verify(&c, 0, &forged).unwrap_err();
        assert_eq!((f.seq, f.problem), (20, Problem::BadSignature));

        let mut rewritten = b.clone();
        let hlc = rewritten.checkpoints[at_20].hlc;
        rewritten.checkpoints[at_20] =
            Checkpoint::sign(&c.key, c.origin, 20, ChainHash([1; 32]), hlc);
        let f = verify(&c, 0, &rewritten).unwrap_err();
        assert_eq!((f.seq, f.problem), (20, Problem::HistoryRewritten));
    }

    #[test]
    fn a_checkpoint_of_another_origin_is_named() {
        let c = chain(5);
        let mut b = batch(&c, 1, None);
        let other = DeviceId::from_bytes([8; 16]);
        b.checkpoints.push(Checkpoint::sign(
            &c.key,
            other,
            3,
            c.events[2].hash,
            c.events[2].hlc,
        ));
        let f = verify(&c, 0, &b).unwrap_err();
        assert_eq!(f.problem, Problem::WrongOrigin { written_by: other });
    }

    #[test]
    fn resends_are_byte_identical() {
        let c = chain(7);
        assert_eq!(batch(&c, 1, None), batch(&c, 1, None));
    }

    #[test]
    fn the_builder_respects_the_entry_and_frame_limits() {
        let c = chain(50);
        let by_count = BatchLimits {
            max_entries: 7,
            ..limits(None)
        };
        let b = build_batch(c.origin, c.read(1, 50), &[], &c.key, &by_count).unwrap();
        assert_eq!(b.last_seq(), 7);

        let by_size = BatchLimits {
            max_frame_bytes: 2000,
            ..limits(None)
        };
        let b = build_batch(c.origin, c.read(1, 50), &[], &c.key, &by_size).unwrap();
        let bytes = crate::encode_frame(&crate::Message::EventBatch(b.clone()), 2000).unwrap();
        assert!(
            bytes.len() <= 2000 && b.entries.len() > 1,
            "{}",
            b.entries.len()
        );
        assert_eq!(verify(&c, 0, &b), Ok(c.events[b.entries.len() - 1].hash));
    }
}
