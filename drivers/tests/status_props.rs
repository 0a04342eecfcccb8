//! Property tests of the DLE EOT status parser.
#![allow(clippy::unwrap_used)]

use pos_drivers::{PrinterStatus, StatusParser};
use proptest::prelude::*;

/// A valid reply with the variable bits 2, 3, 5, 6 taken from `v` (bits 0..4 of it).
fn reply(v: u8) -> u8 {
    0x12 | (v & 0b0011) << 2 | (v & 0b1100) << 3
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut p = StatusParser::new();
        for b in bytes {
            let valid = b & 0x93 == 0x12;
            let before = p.next_query();
            match p.push(b) {
                Ok(Some(_)) => prop_assert!(valid && before == 4),
                Ok(None) => prop_assert!(valid && before < 4),
                Err(e) => prop_assert!(!valid && e.query == before && e.byte == b),
            }
            prop_assert!((1..=4).contains(&p.next_query()));
        }
    }

    #[test]
    fn valid_replies_decode(v in proptest::array::uniform4(0u8..16)) {
        let bytes = v.map(reply);
        let mut p = StatusParser::new();
        for b in &bytes[..3] {
            prop_assert_eq!(p.push(*b).unwrap(), None);
        }
        let got = p.push(bytes[3]).unwrap().unwrap();
        let [printer, offline, error, paper] = v;
        // Variable bits: v bit0 = byte bit2, bit1 = bit3, bit2 = bit5, bit3 = bit6.
        let expected = PrinterStatus {
            online: printer & 0b0010 == 0,
            cover_open: offline & 0b0001 != 0,
            paper_near_end: paper & 0b0011 != 0,
            paper_out: paper & 0b1100 != 0 || offline & 0b0100 != 0,
            error: offline & 0b1000 != 0 || error != 0,
        };
        prop_assert_eq!(got, expected);
        prop_assert_eq!(p.next_query(), 1);
    }
}
