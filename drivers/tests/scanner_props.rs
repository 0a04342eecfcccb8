#![allow(clippy::unwrap_used)]
//! Scanner framing: random input never panics and stays bounded; valid scans are recovered
//! exactly after garbage, however the stream is chunked.

use std::io::ErrorKind;
use std::time::Duration;

use pos_drivers::device::DeviceEvent;
use pos_drivers::scanner::{ScanEvent, ScanFramer, ScannerConfig, ScannerReader};
use pos_drivers::MemoryTransport;
use proptest::prelude::*;

const PREFIXES: [&[u8]; 3] = [b"", b"\x02", b"]E0"];
const SUFFIXES: [&[u8]; 5] = [b"\r", b"\r\n", b"\n", b"\x03", b"\x1d\x04"];

fn config(p: usize, s: usize, max_len: usize) -> ScannerConfig {
    ScannerConfig {
        prefix: PREFIXES[p].to_vec(),
        suffix: SUFFIXES[s].to_vec(),
        max_len,
        debounce_ms: 0,
    }
}

/// Feed `bytes` cut at `cuts` (positions taken modulo the length).
fn feed_chunked(f: &mut ScanFramer, bytes: &[u8], cuts: &[usize]) -> Vec<ScanEvent> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let chunk = &bytes[w[0]..w[1]];
        let events = f.feed(chunk, 0);
        assert!(events.len() <= chunk.len());
        assert!(f.buffered_len() <= f.buffer_limit());
        out.extend(events);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_and_stay_bounded(
        p in 0..PREFIXES.len(),
        s in 0..SUFFIXES.len(),
        max_len in 0usize..40,
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut f = ScanFramer::new(config(p, s, max_len));
        for e in feed_chunked(&mut f, &bytes, &cuts) {
            if let ScanEvent::Code(c) = e {
                prop_assert!(!c.is_empty() && c.len() <= max_len);
                prop_assert!(c.bytes().all(|b| (0x20..=0x7E).contains(&b)));
            }
        }
    }

    #[test]
    fn exact_recovery_under_any_chunking(
        p in 0..PREFIXES.len(),
        s in 0..SUFFIXES.len(),
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        codes in proptest::collection::vec("[ -~]{1,32}", 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let cfg = config(p, s, 32);
        let mut stream = garbage;
        stream.extend_from_slice(&cfg.suffix);
        for c in &codes {
            stream.extend_from_slice(&cfg.prefix);
            stream.extend_from_slice(c.as_bytes());
            stream.extend_from_slice(&cfg.suffix);
        }
        let codes_of = |events: Vec<ScanEvent>| -> Vec<String> {
            events.into_iter().filter_map(|e| match e {
                ScanEvent::Code(c) => Some(c),
                ScanEvent::Rejected(_) => None,
            }).collect()
        };
        let mut whole = ScanFramer::new(cfg.clone());
        let one_shot = whole.feed(&stream, 0);
        let mut chunked = ScanFramer::new(cfg);
        let pieces = feed_chunked(&mut chunked, &stream, &cuts);
        prop_assert_eq!(&pieces, &one_shot);
        let got = codes_of(pieces);
        // The garbage may itself contain valid-looking scans; the real ones come last, intact.
        prop_assert!(got.len() >= codes.len());
        prop_assert_eq!(&got[got.len() - codes.len()..], codes.as_slice());
        prop_assert_eq!(chunked.buffered_len(), 0);
    }
}

#[test]
fn debounce_drops_double_reads_only_within_window() {
    let mut f = ScanFramer::new(ScannerConfig::default());
    assert_eq!(f.feed(b"111\r", 0).len(), 1);
    assert_eq!(f.feed(b"111\r", 299), vec![]);
    assert_eq!(f.feed(b"222\r111\r", 299).len(), 2);
}

#[test]
fn reader_over_memory_transport() {
    let mut t = MemoryTransport::new();
    t.push_reply(b"123");
    let mut r = ScannerReader::new(t, ScannerConfig::default(), 100);
    assert_eq!(r.poll(Duration::ZERO, 0).unwrap(), vec![]);
    r.transport_mut().push_reply(b"45\r");
    assert_eq!(
        r.poll(Duration::ZERO, 20).unwrap(),
        vec![DeviceEvent::Scanned("12345".into())]
    );

    // A truncated scan followed by silence is dropped instead of gluing onto the next one.
    r.transport_mut().push_reply(b"99");
    assert_eq!(r.poll(Duration::ZERO, 100).unwrap(), vec![]);
    r.transport_mut().push_reply(b"678\r");
    assert_eq!(
        r.poll(Duration::ZERO, 500).unwrap(),
        vec![DeviceEvent::Scanned("678".into())]
    );

    // A read error drops the partial frame and reconnects on the next poll.
    r.transport_mut().push_reply(b"00");
    assert_eq!(r.poll(Duration::ZERO, 600).unwrap(), vec![]);
    r.transport_mut().fail_next_read(ErrorKind::BrokenPipe);
    assert!(r.poll(Duration::ZERO, 610).is_err());
    // The next poll reconnects (which drops what the old connection had buffered).
    assert_eq!(r.poll(Duration::ZERO, 615).unwrap(), vec![]);
    r.transport_mut().push_reply(b"777\r");
    assert_eq!(
        r.poll(Duration::ZERO, 620).unwrap(),
        vec![DeviceEvent::Scanned("777".into())]
    );
    assert_eq!(r.transport().reconnects(), 1);

    // A flooding scanner: drained over several polls, nothing lost, overlong frames counted.
    let mut flood = Vec::new();
    for i in 0..100 {
        flood.extend_from_slice(format!("C{i}\r").as_bytes());
    }
    flood.extend(std::iter::repeat_n(b'9', 1000));
    flood.push(b'\r');
    r.transport_mut().push_reply(&flood);
    let mut got = Vec::new();
    for k in 0..100 {
        got.extend(r.poll(Duration::ZERO, 1_000 + k).unwrap());
    }
    assert_eq!(got.len(), 100);
    assert_eq!(got[99], DeviceEvent::Scanned("C99".into()));
    assert_eq!(r.rejected(), 1);
}
