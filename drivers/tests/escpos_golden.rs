//! Byte-exact golden tests of the ESC/POS output. The `.bin` files in `tests/golden` were
//! checked by eye in a hex dump (ESC @, ESC t, text, ESC E / GS ! around the total, GS ( k,
//! ESC p, GS V); rerun with `UPDATE_GOLDEN=1` only after a deliberate change, and review.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use pos_core::sale::{
    qr_payload, CashRounding, Currency, Money, PricingMode, Product, Quantity, Receipt, TaxRate,
    Tender, Ticket, Unit,
};
use pos_core::{ProductId, TicketId};
use pos_drivers::escpos::Logo;
use pos_drivers::{
    encode_receipt, CodePage, DrawerKick, DrawerPin, EncodeError, Layout, PaperWidth,
};

const DEVICE: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const HASH: &str = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a1c3e5b7d9f0a2c4e6b8d0f";

fn product(n: u8, name: &str, price: i64, class: &str) -> Product {
    Product {
        id: ProductId::from_bytes([n; 16]),
        sku: format!("SKU-{n:03}"),
        name: name.into(),
        unit: Unit::Each,
        price: Money(price),
        cost: Money(price / 2),
        tax_class: class.into(),
        category: "Grocery".into(),
        quick_key: None,
        active: true,
        barcodes: Vec::new(),
    }
}

fn ticket() -> Ticket {
    let rate = |class: &str, rate_bp| TaxRate {
        class: class.into(),
        name: "VAT".into(),
        rate_bp,
    };
    Ticket::new(
        TicketId::from_bytes([7; 16]),
        PricingMode::Inclusive,
        vec![rate("A", 2000), rate("B", 550)],
    )
}

fn receipt(number: u64, header: &str, cashier: &str, items: &[(&str, i64, u32)]) -> Receipt {
    let mut t = ticket();
    for (i, &(name, price, qty)) in items.iter().enumerate() {
        let class = if i % 2 == 0 { "B" } else { "A" };
        let p = product(i as u8 + 1, name, price, class);
        t.add_item(&p, Quantity::units(qty.into()), None).unwrap();
    }
    t.add_payment(Tender::Cash, Money(5000)).unwrap();
    let sale = t.complete(&CashRounding::default()).unwrap();
    Receipt {
        header: vec![header.into(), "1 Market Street".into()],
        terminal: "T1".into(),
        cashier: cashier.into(),
        number,
        time: "2026-05-01 14:03".into(),
        sale,
        footer: vec!["Thank you!".into()],
        qr: qr_payload(DEVICE, number, HASH),
        copy: false,
        currency: Currency::default(),
    }
}

/// 58 mm, CP437, no drawer: a plain cash sale.
fn typical() -> (Receipt, Layout) {
    let r = receipt(
        41,
        "Corner Shop",
        "Ann",
        &[("Milk 1L", 119, 2), ("Batteries AA 4-pack", 549, 1)],
    );
    let layout = Layout {
        width: PaperWidth::Mm58,
        code_page: CodePage::Cp437,
        kick_drawer: None,
        cut: true,
        logo: None,
        barcode: false,
    };
    (r, layout)
}

/// 80 mm, CP858, drawer on pin 2: a euro sign, accented and Polish names, typographic quotes.
fn euro_accents() -> (Receipt, Layout) {
    let r = receipt(
        42,
        "Café “Zum Bäcker” €",
        "Łukasz Gómez",
        &[("Crème brûlée", 450, 2), ("Żubrówka 0,5 l", 1899, 1)],
    );
    let layout = Layout {
        width: PaperWidth::Mm80,
        code_page: CodePage::Cp858,
        kick_drawer: Some(DrawerKick {
            pin: DrawerPin::Pin2,
            pulse_ms: 100,
        }),
        cut: true,
        logo: None,
        barcode: false,
    };
    (r, layout)
}

fn check(name: &str, receipt: &Receipt, layout: &Layout) -> Vec<u8> {
    let bytes = encode_receipt(receipt, layout).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.bin"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &bytes).unwrap();
        return bytes;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes == expected, "{name} differs from its golden file");
    bytes
}

/// The printable runs of an ESC/POS stream, skipping the commands this encoder emits.
fn printable_text(bytes: &[u8], page: CodePage) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let skip = match (b, bytes.get(i + 1).copied()) {
            (0x1B, Some(b'@')) => 2,
            (0x1B, Some(b't' | b'E' | b'a')) | (0x1D, Some(b'!')) => 3,
            (0x1B, Some(b'p')) => 5,
            (0x1D, Some(b'V')) => 4,
            (0x1D, Some(b'(')) => {
                let len = usize::from(bytes[i + 3]) + 256 * usize::from(bytes[i + 4]);
                5 + len
            }
            (0x0A, _) => {
                out.push('\n');
                1
            }
            _ => {
                let c = if b < 0x80 {
                    char::from(b)
                } else {
                    // Decode through the page: find the char that encodes to `b`.
                    (0xA0..0x2600u32)
                        .filter_map(char::from_u32)
                        .find(|&c| page.encode_char(c) == Some(b))
                        .unwrap()
                };
                out.push(c);
                1
            }
        };
        i += skip;
    }
    out
}

fn qr_store(bytes: &[u8]) -> Vec<u8> {
    let head = [0x1D, b'(', b'k'];
    let at = bytes
        .windows(8)
        .position(|w| w[..3] == head && w[5..] == [49, 80, 48])
        .expect("a GS ( k store command");
    let len = usize::from(bytes[at + 3]) + 256 * usize::from(bytes[at + 4]) - 3;
    bytes[at + 8..at + 8 + len].to_vec()
}

fn frame_checks(bytes: &[u8], layout: &Layout) {
    assert_eq!(&bytes[..2], b"\x1b@");
    assert_eq!(&bytes[2..5], &[0x1B, b't', layout.code_page.escpos_table()]);
    assert!(bytes.ends_with(&[0x1D, b'V', 66, 0]));
    let kick = bytes.windows(2).position(|w| w == b"\x1bp");
    assert_eq!(kick.is_some(), layout.kick_drawer.is_some());
}

#[test]
fn typical_58mm_cp437() {
    let (r, layout) = typical();
    let bytes = check("typical_58mm_cp437", &r, &layout);
    frame_checks(&bytes, &layout);
    let text = printable_text(&bytes, layout.code_page);
    assert!(text.contains(&format!("TOTAL EUR{:>23}", "7.87")), "{text}");
    assert_eq!(qr_store(&bytes), r.qr.as_bytes());
    for row in text.lines() {
        assert!(row.chars().count() <= 32, "{row:?}");
    }
    // The total row is emphasised and double height, then reset.
    let total = bytes.windows(9).position(|w| w == b"TOTAL EUR").unwrap();
    assert_eq!(&bytes[total - 6..total], b"\x1bE\x01\x1d!\x01");
}

#[test]
fn euro_accents_80mm_cp858_with_drawer() {
    let (r, layout) = euro_accents();
    let bytes = check("euro_accents_80mm_cp858_drawer", &r, &layout);
    frame_checks(&bytes, &layout);
    assert_eq!(&bytes[5..10], &[0x1B, b'p', 0, 50, 250]);
    let text = printable_text(&bytes, layout.code_page);
    assert!(text.contains("Café \"Zum Bäcker\" €"), "{text}");
    assert!(text.contains("Cashier Lukasz Gómez"), "{text}");
    assert!(text.contains("Crème brûlée"), "{text}");
    assert!(text.contains("Zubrówka 0,5 l"), "{text}");
    let due = r.sale.totals.due.format(&r.currency);
    assert!(text
        .lines()
        .any(|l| l.starts_with("TOTAL EUR") && l.ends_with(&due)));
    assert_eq!(qr_store(&bytes), r.qr.as_bytes());
    assert!(bytes.contains(&0xD5), "euro sign at 0xD5");
}

#[test]
fn cp437_transliterates_the_same_receipt() {
    let (r, mut layout) = euro_accents();
    layout.code_page = CodePage::Cp437;
    let bytes = encode_receipt(&r, &layout).unwrap();
    let text = printable_text(&bytes, CodePage::Cp437);
    assert!(text.contains("Caf\u{e9} \"Zum B\u{e4}cker\" EUR"), "{text}");
    assert!(text.contains("Cr\u{e8}me br\u{fb}l\u{e9}e"), "{text}");
}

#[test]
fn no_cut_no_qr_and_bad_pulse() {
    let (mut r, mut layout) = typical();
    r.qr.clear();
    layout.cut = false;
    let bytes = encode_receipt(&r, &layout).unwrap();
    assert!(!bytes.windows(3).any(|w| w == b"\x1d(k"));
    assert!(!bytes.windows(2).any(|w| w == b"\x1dV"));
    layout.kick_drawer = Some(DrawerKick {
        pin: DrawerPin::Pin5,
        pulse_ms: 0,
    });
    assert_eq!(
        encode_receipt(&r, &layout),
        Err(EncodeError::DrawerPulse(0))
    );
}

/// A 16x4-dot logo as a binary PBM: a frame with a diagonal.
fn pbm_logo() -> Vec<u8> {
    let mut pbm = b"P4\n# 3PlugPOS test logo\n16 4\n".to_vec();
    pbm.extend_from_slice(&[0xFF, 0xFF, 0xC0, 0x03, 0xC0, 0x03, 0xFF, 0xFF]);
    pbm
}

#[test]
fn logo_and_receipt_barcode_58mm() {
    let (r, mut layout) = typical();
    layout.logo = Some(Logo::from_pbm(&pbm_logo()).unwrap());
    layout.barcode = true;
    let bytes = check("logo_barcode_58mm_cp437", &r, &layout);
    // GS v 0, normal density, 2 bytes per row, 4 rows, then the rows themselves.
    let raster = [0x1d, b'v', b'0', 0, 2, 0, 4, 0, 0xFF, 0xFF, 0xC0, 0x03];
    assert!(
        bytes.windows(raster.len()).any(|w| w == raster),
        "raster image missing"
    );
    // GS k 73 (CODE128) with code set B and the receipt number.
    let barcode = [0x1d, b'k', 73, 4, b'{', b'B', b'4', b'1'];
    assert!(
        bytes.windows(barcode.len()).any(|w| w == barcode),
        "receipt barcode missing"
    );
}

#[test]
fn bad_logos_are_refused_with_a_reason() {
    assert!(matches!(
        Logo::from_pbm(b"P1\n2 2\n0101"),
        Err(EncodeError::Logo(_))
    ));
    assert!(matches!(
        Logo::from_pbm(b"P4\n16 4\n\xff"),
        Err(EncodeError::Logo(_))
    ));
    assert!(matches!(Logo::from_pbm(b"P4\n"), Err(EncodeError::Logo(_))));
    assert!(matches!(Logo::new(0, 1, vec![]), Err(EncodeError::Logo(_))));
    let wide = Logo::new(480, 1, vec![0; 60]).unwrap();
    let (r, mut layout) = typical();
    layout.logo = Some(wide);
    assert_eq!(
        encode_receipt(&r, &layout),
        Err(EncodeError::LogoTooWide(480))
    );
}

proptest::proptest! {
    #[test]
    fn pbm_parsing_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let _ = Logo::from_pbm(&bytes);
        let mut with_header = b"P4 8 2 ".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = Logo::from_pbm(&with_header);
    }
}
