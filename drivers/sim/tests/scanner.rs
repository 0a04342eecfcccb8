#![allow(clippy::unwrap_used)]

use pos_device_sim::scanner::{RejectReason, ScanEvent, ScanFramer, ScannerConfig};
use proptest::prelude::*;

fn code(s: &str) -> ScanEvent {
    ScanEvent::Code(s.into())
}

#[test]
fn cr_lf_and_crlf_all_frame_with_default_config() {
    let mut f = ScanFramer::new(ScannerConfig {
        debounce_ms: 0,
        ..ScannerConfig::default()
    });
    let ev = f.feed(b"4006381333931\r123\n456\r\n789\r\n", 0);
    assert_eq!(
        ev,
        vec![code("4006381333931"), code("123"), code("456"), code("789")]
    );
    assert_eq!(f.buffered_len(), 0);
}

#[test]
fn prefix_and_custom_suffix() {
    let mut f = ScanFramer::new(ScannerConfig {
        prefix: b"\x02".to_vec(),
        suffix: b"\x03".to_vec(),
        max_len: 16,
        debounce_ms: 0,
    });
    assert_eq!(f.feed(b"\x02AB", 0), vec![]);
    assert_eq!(f.feed(b"C\x03", 0), vec![code("ABC")]);
    assert_eq!(
        f.feed(b"XYZ\x03\x02\x03\x02A\x01\x03", 0),
        vec![
            ScanEvent::Rejected(RejectReason::MissingPrefix),
            ScanEvent::Rejected(RejectReason::Empty),
            ScanEvent::Rejected(RejectReason::NonPrintable),
        ]
    );
}

#[test]
fn overlong_is_rejected_once_and_framing_recovers() {
    let mut f = ScanFramer::new(ScannerConfig {
        max_len: 8,
        ..ScannerConfig::default()
    });
    let mut input = vec![b'9'; 1000];
    input.extend_from_slice(b"\r12345678\r");
    let ev = f.feed(&input, 0);
    assert_eq!(
        ev,
        vec![
            ScanEvent::Rejected(RejectReason::Overlong),
            code("12345678")
        ]
    );
}

#[test]
fn multibyte_suffix_split_across_overflow() {
    let mut f = ScanFramer::new(ScannerConfig {
        prefix: Vec::new(),
        suffix: b"<END>".to_vec(),
        max_len: 4,
        debounce_ms: 0,
    });
    assert_eq!(
        f.feed(b"123456<END>abcd<END>", 0),
        vec![ScanEvent::Rejected(RejectReason::Overlong), code("abcd")]
    );
}

#[test]
fn debounce_drops_same_code_within_window_only() {
    let mut f = ScanFramer::new(ScannerConfig::default());
    assert_eq!(f.feed(b"111\r", 1000), vec![code("111")]);
    assert_eq!(f.feed(b"111\r", 1200), vec![]);
    assert_eq!(f.feed(b"222\r", 1250), vec![code("222")]);
    assert_eq!(f.feed(b"111\r", 1260), vec![code("111")]);
    assert_eq!(f.feed(b"111\r", 1560), vec![code("111")]);
}

fn printable_code() -> impl Strategy<Value = String> {
    "[ -~]{1,40}"
}

proptest! {
    #[test]
    fn random_bytes_bounded(data in prop::collection::vec(any::<u8>(), 0..3000),
                            prefix in prop::collection::vec(any::<u8>(), 0..3),
                            suffix in prop::collection::vec(any::<u8>(), 0..3),
                            max_len in 1usize..64,
                            chunk in 1usize..50) {
        let mut f = ScanFramer::new(ScannerConfig { prefix, suffix, max_len, debounce_ms: 300 });
        let limit = f.buffer_limit();
        let mut now = 0;
        for c in data.chunks(chunk) {
            let ev = f.feed(c, now);
            prop_assert!(ev.len() <= c.len());
            prop_assert!(f.buffered_len() <= limit);
            for e in ev {
                if let ScanEvent::Code(s) = e {
                    prop_assert!(s.len() <= max_len && !s.is_empty());
                }
            }
            now += 7;
        }
    }

    #[test]
    fn framed_codes_recovered_under_any_chunking(codes in prop::collection::vec(printable_code(), 1..20),
                                                 crlf in any::<bool>(),
                                                 cuts in prop::collection::vec(0usize..2000, 0..30)) {
        let mut stream = Vec::new();
        for c in &codes {
            stream.extend_from_slice(b"]C0");
            stream.extend_from_slice(c.as_bytes());
            stream.extend_from_slice(if crlf { b"\r\n" } else { b"\r" });
        }
        let mut f = ScanFramer::new(ScannerConfig {
            prefix: b"]C0".to_vec(),
            suffix: b"\r\n".to_vec(),
            max_len: 40,
            debounce_ms: 0,
        });
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut events = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain(std::iter::once(stream.len())) {
            events.extend(f.feed(&stream[start..c], 0));
            start = c;
        }
        let expected: Vec<ScanEvent> = codes.into_iter().map(ScanEvent::Code).collect();
        prop_assert_eq!(events, expected);
    }

    #[test]
    fn exact_suffix_recovered_under_any_chunking(codes in prop::collection::vec("[a-z0-9]{1,20}", 1..20),
                                                 chunk in 1usize..30) {
        let mut stream = Vec::new();
        for c in &codes {
            stream.extend_from_slice(c.as_bytes());
            stream.extend_from_slice(b"#!");
        }
        let mut f = ScanFramer::new(ScannerConfig {
            prefix: Vec::new(),
            suffix: b"#!".to_vec(),
            max_len: 20,
            debounce_ms: 0,
        });
        let mut events = Vec::new();
        for c in stream.chunks(chunk) {
            events.extend(f.feed(c, 0));
        }
        let expected: Vec<ScanEvent> = codes.into_iter().map(ScanEvent::Code).collect();
        prop_assert_eq!(events, expected);
    }
}
