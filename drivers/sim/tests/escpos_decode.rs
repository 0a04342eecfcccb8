#![allow(clippy::unwrap_used)]

use pos_device_sim::escpos_decode::{render, Align, Decoder, Item, MAX_COMMAND};
use proptest::prelude::*;

fn decode_all(bytes: &[u8]) -> Vec<Item> {
    let mut d = Decoder::new();
    let mut items = d.feed(bytes);
    items.extend(d.finish());
    items
}

fn qr_store(payload: &[u8]) -> Vec<u8> {
    let len = payload.len() + 3;
    let mut v = vec![
        0x1D,
        b'(',
        b'k',
        (len % 256) as u8,
        (len / 256) as u8,
        49,
        80,
        48,
    ];
    v.extend_from_slice(payload);
    v
}

fn sample_receipt() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"\x1b@\x1bt\x13\x1ba\x01\x1bE\x01SHOP\x1bE\x00\n");
    v.extend_from_slice(b"\x1d!\x11Big\x1d!\x00\n");
    v.extend_from_slice(b"Total 3,50 \xd5\n");
    v.extend_from_slice(&qr_store(b"https://x.invalid/r/1"));
    v.extend_from_slice(b"\x1d(k\x03\x001Q0");
    v.extend_from_slice(b"\x1bp\x00\x19\xfa");
    v.extend_from_slice(b"\x1dVA\x03");
    v
}

#[test]
fn decodes_typical_receipt() {
    let items = decode_all(&sample_receipt());
    assert_eq!(
        items,
        vec![
            Item::Init,
            Item::CodePage(19),
            Item::Align(Align::Center),
            Item::Bold(true),
            Item::Text("SHOP".into()),
            Item::Bold(false),
            Item::Newline,
            Item::Size(2, 2),
            Item::Text("Big".into()),
            Item::Size(1, 1),
            Item::Newline,
            Item::Text("Total 3,50 €".into()),
            Item::Newline,
            Item::Qr("https://x.invalid/r/1".into()),
            Item::DrawerKick {
                pin: 2,
                t1: 0x19,
                t2: 0xfa
            },
            Item::Cut,
        ]
    );
    assert_eq!(
        render(&items),
        "**SHOP**\nBig\nTotal 3,50 €\n[QR https://x.invalid/r/1]\n[DRAWER pin 2]\n[CUT]\n"
    );
}

#[test]
fn code_pages() {
    // CP437 by default: 0x82 é, 0x81 ü, 0xE1 ß, 0xD5 is a box drawing char, not €.
    assert_eq!(decode_all(b"\x82\x81\xe1"), vec![Item::Text("éüß".into())]);
    assert_ne!(decode_all(b"\xd5"), vec![Item::Text("€".into())]);
    // CP858.
    assert_eq!(
        decode_all(b"\x1bt\x13\xd5\x9c\x80"),
        vec![Item::CodePage(19), Item::Text("€£Ç".into())]
    );
    // Init resets to CP437.
    assert_eq!(
        decode_all(b"\x1bt\x13\x1b@\x9c"),
        vec![Item::CodePage(19), Item::Init, Item::Text("£".into())]
    );
}

#[test]
fn truncated_commands_wait_for_more_bytes() {
    let mut d = Decoder::new();
    assert_eq!(d.feed(b"ab\x1b"), vec![Item::Text("ab".into())]);
    assert_eq!(d.feed(b"p"), vec![]);
    assert_eq!(d.feed(b"\x01\x10"), vec![]);
    assert_eq!(
        d.feed(b"\x20"),
        vec![Item::DrawerKick {
            pin: 5,
            t1: 0x10,
            t2: 0x20
        }]
    );
    assert_eq!(d.feed(b"\x10\x04"), vec![]);
    assert_eq!(d.feed(b"\x04"), vec![Item::StatusQuery(4)]);
    // Truncated at end of stream: reported as Unknown.
    assert_eq!(d.feed(b"\x1d(k\x10"), vec![]);
    assert_eq!(d.finish(), vec![Item::Unknown(b"\x1d(k\x10".to_vec())]);
}

#[test]
fn unknown_and_skipped_commands() {
    let items = decode_all(b"\x1b!\x08A\x1b\xff\x07B\x1dL\x00\x00C");
    assert_eq!(
        items,
        vec![
            Item::Unknown(b"\x1b!\x08".to_vec()),
            Item::Text("A".into()),
            Item::Unknown(b"\x1b\xff".to_vec()),
            Item::Unknown(vec![7]),
            Item::Text("B".into()),
            Item::Unknown(b"\x1dL\x00\x00".to_vec()),
            Item::Text("C".into()),
        ]
    );
}

#[test]
fn raster_image_is_skipped_even_when_huge() {
    // GS v 0: 80 bytes wide, 2 lines: buffered and skipped as one Unknown.
    let mut v = b"\x1dv0\x00\x50\x00\x02\x00".to_vec();
    v.extend(std::iter::repeat_n(0xAAu8, 160));
    v.extend_from_slice(b"after\n");
    let items = decode_all(&v);
    assert_eq!(items.len(), 3);
    assert_eq!(items[1], Item::Text("after".into()));

    // 255 x 1000 bytes > MAX_COMMAND: header reported, body skipped without buffering.
    let mut d = Decoder::new();
    let mut items = d.feed(b"\x1dv0\x00\xff\x00\xe8\x03");
    let body = vec![0x41u8; 255 * 1000];
    assert!(body.len() > MAX_COMMAND);
    for chunk in body.chunks(1000) {
        items.extend(d.feed(chunk));
        assert!(d.buffered_len() <= MAX_COMMAND);
    }
    items.extend(d.feed(b"ok\n"));
    assert_eq!(
        items,
        vec![
            Item::Unknown(b"\x1dv0\x00\xff\x00\xe8\x03".to_vec()),
            Item::Text("ok".into()),
            Item::Newline
        ]
    );
}

#[test]
fn barcode_and_cuts() {
    let items = decode_all(b"\x1dkA\x0412345\x1dk\x02978\x00\x1dV\x00\x1dV\x42\x05");
    assert_eq!(
        items,
        vec![
            Item::Barcode {
                system: 65,
                data: "1234".into()
            },
            Item::Text("5".into()),
            Item::Barcode {
                system: 2,
                data: "978".into()
            },
            Item::Cut,
            Item::Cut,
        ]
    );
}

#[test]
fn render_marks_bold_and_flushes_partial_line_before_markers() {
    let items = decode_all(b"a\x1bE\x01b\x1bE\x00c\x1dV\x01tail");
    assert_eq!(render(&items), "a**b**c\n[CUT]\ntail\n");
}

/// Byte strings rich in ESC/POS command introducers.
fn escposish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        1 => Just(0x1Bu8),
        1 => Just(0x1Du8),
        1 => Just(0x10u8),
        1 => prop::sample::select(b"@EatpdV(kv!\x04\n".to_vec()),
    ];
    prop::collection::vec(byte, 0..600)
}

proptest! {
    #[test]
    fn random_chunking_matches_one_shot(data in escposish(), cuts in prop::collection::vec(0usize..600, 0..20)) {
        let expected = decode_all(&data);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut d = Decoder::new();
        let mut items = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain(std::iter::once(data.len())) {
            items.extend(d.feed(&data[start..c]));
            prop_assert!(d.buffered_len() <= MAX_COMMAND);
            start = c;
        }
        items.extend(d.finish());
        prop_assert_eq!(&items, &expected);
        let _ = render(&items);
    }

    #[test]
    fn random_bytes_byte_by_byte_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let expected = decode_all(&data);
        let mut d = Decoder::new();
        let mut items = Vec::new();
        for b in &data {
            items.extend(d.feed(std::slice::from_ref(b)));
        }
        items.extend(d.finish());
        prop_assert_eq!(items, expected);
    }
}
