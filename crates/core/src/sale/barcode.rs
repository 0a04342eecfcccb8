//! Scanned codes: GS1 barcodes with check digits, short in-store PLUs, and scale labels that
//! carry a price or a weight.
//!
//! What a code of n digits (after trimming whitespace the scanner may add) is read as:
//!
//! | digits                      | read as                         | normalised [`Scanned::Gtin`] |
//! |-----------------------------|---------------------------------|------------------------------|
//! | 1..=`plu_max_digits`        | PLU, no check digit             | ([`Scanned::Plu`], as typed) |
//! | 8, first digit 0, `upc_e`   | UPC-E                           | expanded to UPC-A, then '0' + UPC-A |
//! | 8 otherwise                 | EAN-8                           | kept as 8 digits             |
//! | 12                          | UPC-A                           | '0' + UPC-A (EAN-13 form)    |
//! | 13                          | EAN-13, or a scale label        | as is                        |
//! | 14                          | GTIN-14 (ITF-14, DataBar)       | leading '0' dropped, else 14 |
//!
//! One normal form per product means a UPC-A scan finds a product registered with the EAN-13
//! printed on the same pack. UPC-E codes start with number system 0; EAN-8 codes starting with
//! 0 are restricted-circulation (in-store) numbers, so a shop that uses those sets `upc_e` off.
//!
//! Scale labels are 13-digit codes (after normalisation) starting with a configured prefix:
//! prefix + item number up to digit 7 + five-digit value + check digit; with the usual 2-digit
//! prefix, `PP IIIII VVVVV C`. The value is the price in minor units or the weight in grams.
//! The item number is the product's PLU in the catalogue. Price prefixes are tried first.

use serde::{Deserialize, Serialize};

use super::money::{Money, Quantity};

/// Which codes are PLUs and which prefixes mark scale labels: a store setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BarcodeRules {
    /// Prefixes of labels carrying a price (default "22", "23").
    pub price_prefixes: Vec<String>,
    /// Prefixes of labels carrying a weight in grams (default "21").
    pub weight_prefixes: Vec<String>,
    /// Codes of up to this many digits are PLUs (default 5; keep it below 8).
    pub plu_max_digits: u8,
    /// Read 8-digit codes starting with 0 as UPC-E (default true).
    pub upc_e: bool,
}

impl Default for BarcodeRules {
    fn default() -> Self {
        BarcodeRules {
            price_prefixes: vec!["22".into(), "23".into()],
            weight_prefixes: vec!["21".into()],
            plu_max_digits: 5,
            upc_e: true,
        }
    }
}

/// What a scanned code means for the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scanned {
    /// A trade item number in its normal form (see the module table).
    Gtin(String),
    /// An in-store price look-up code.
    Plu(String),
    /// A scale label carrying the price of the labelled item.
    PriceEmbedded { item: String, price: Money },
    /// A scale label carrying the weight of the labelled item.
    WeightEmbedded { item: String, quantity: Quantity },
}

impl Scanned {
    /// The key to look the product up by: the GTIN, the PLU, or the label's item number.
    pub fn lookup_key(&self) -> &str {
        match self {
            Scanned::Gtin(code) | Scanned::Plu(code) => code,
            Scanned::PriceEmbedded { item, .. } | Scanned::WeightEmbedded { item, .. } => item,
        }
    }
}

/// Why a code could not be read. Shown to the cashier, who rescans or types the code again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarcodeError {
    #[error("empty barcode")]
    Empty,
    #[error("barcode has characters other than digits")]
    NotDigits,
    #[error(
        "barcode has {0} digits: expected 8 (EAN-8, UPC-E), 12 (UPC-A), 13 (EAN-13), \
         14 (GTIN-14) or a short PLU"
    )]
    BadLength(usize),
    #[error("check digit wrong: expected {expected}, found {found}")]
    CheckDigit { expected: u8, found: u8 },
}

/// Reads a scanned or typed code according to the module's rules.
pub fn parse_barcode(code: &str, rules: &BarcodeRules) -> Result<Scanned, BarcodeError> {
    let code = code.trim();
    if code.is_empty() {
        return Err(BarcodeError::Empty);
    }
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BarcodeError::NotDigits);
    }
    let n = code.len();
    if n <= usize::from(rules.plu_max_digits) {
        return Ok(Scanned::Plu(code.to_owned()));
    }
    let gtin = match n {
        8 if rules.upc_e && code.starts_with('0') => {
            let upc_a = expand_upc_e(code).ok_or(BarcodeError::BadLength(n))?;
            verify(&upc_a)?;
            format!("0{upc_a}")
        }
        8 | 13 => {
            verify(code)?;
            code.to_owned()
        }
        12 => {
            verify(code)?;
            format!("0{code}")
        }
        14 => {
            verify(code)?;
            code.strip_prefix('0').unwrap_or(code).to_owned()
        }
        _ => return Err(BarcodeError::BadLength(n)),
    };
    Ok(scale_label(&gtin, rules).unwrap_or(Scanned::Gtin(gtin)))
}

/// The GS1 mod-10 check digit of `body` (the code without its check digit): weights 3, 1, 3...
/// from the right. `None` if `body` has a non-digit.
pub fn check_digit(body: &str) -> Option<u8> {
    let mut sum = 0u8;
    for (i, b) in body.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let weight = if i % 2 == 0 { 3 } else { 1 };
        sum = (sum + weight * (b - b'0')) % 10;
    }
    Some((10 - sum) % 10)
}

/// Expands an 8-digit UPC-E (number system, six digits, check) to its 12-digit UPC-A; the check
/// digit is carried over (it is the UPC-A's). The sixth digit says where the zeros go:
/// 0-2 → `NS d1 d2 d6 0000 d3 d4 d5`, 3 → `NS d1 d2 d3 00000 d4 d5`,
/// 4 → `NS d1 d2 d3 d4 00000 d5`, 5-9 → `NS d1 d2 d3 d4 d5 0000 d6`.
pub fn expand_upc_e(code: &str) -> Option<String> {
    let b = code.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (ns, d, check) = (b[0], &b[1..7], b[7]);
    let z = b'0';
    let body: [u8; 11] = match d[5] {
        b'0'..=b'2' => [ns, d[0], d[1], d[5], z, z, z, z, d[2], d[3], d[4]],
        b'3' => [ns, d[0], d[1], d[2], z, z, z, z, z, d[3], d[4]],
        b'4' => [ns, d[0], d[1], d[2], d[3], z, z, z, z, z, d[4]],
        _ => [ns, d[0], d[1], d[2], d[3], d[4], z, z, z, z, d[5]],
    };
    Some(
        body.iter()
            .chain([check].iter())
            .map(|&c| char::from(c))
            .collect(),
    )
}

fn verify(code: &str) -> Result<(), BarcodeError> {
    let (body, last) = code.split_at(code.len().saturating_sub(1));
    let found = last.bytes().next().map_or(0, |b| b.wrapping_sub(b'0'));
    let expected = check_digit(body).ok_or(BarcodeError::NotDigits)?;
    if expected == found {
        Ok(())
    } else {
        Err(BarcodeError::CheckDigit { expected, found })
    }
}

fn scale_label(gtin: &str, rules: &BarcodeRules) -> Option<Scanned> {
    if gtin.len() != 13 {
        return None;
    }
    let split = |prefixes: &[String]| {
        let prefix = prefixes
            .iter()
            .find(|p| !p.is_empty() && p.len() < 7 && gtin.starts_with(p.as_str()))?;
        let item = gtin.get(prefix.len()..7)?.to_owned();
        let value: i64 = gtin.get(7..12)?.parse().ok()?;
        Some((item, value))
    };
    if let Some((item, value)) = split(&rules.price_prefixes) {
        return Some(Scanned::PriceEmbedded {
            item,
            price: Money(value),
        });
    }
    split(&rules.weight_prefixes).map(|(item, value)| Scanned::WeightEmbedded {
        item,
        quantity: Quantity(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(code: &str) -> Result<Scanned, BarcodeError> {
        parse_barcode(code, &BarcodeRules::default())
    }

    #[test]
    fn reads_known_codes() {
        assert_eq!(
            parse("4006381333931"),
            Ok(Scanned::Gtin("4006381333931".into()))
        );
        assert_eq!(parse("96385074"), Ok(Scanned::Gtin("96385074".into())));
        assert_eq!(
            parse("036000291452"),
            Ok(Scanned::Gtin("0036000291452".into()))
        );
        assert_eq!(parse("04252614"), Ok(Scanned::Gtin("0042100005264".into())));
        assert_eq!(parse("01234565"), Ok(Scanned::Gtin("0012345000065".into())));
        assert_eq!(
            parse("00036000291452\r\n"),
            Ok(Scanned::Gtin("0036000291452".into()))
        );
        assert_eq!(parse("4011"), Ok(Scanned::Plu("4011".into())));
    }

    #[test]
    fn upc_e_expansion_follows_the_sixth_digit() {
        assert_eq!(expand_upc_e("01234505").as_deref(), Some("012000003455"));
        assert_eq!(expand_upc_e("01234531").as_deref(), Some("012300000451"));
        assert_eq!(expand_upc_e("01234548").as_deref(), Some("012340000058"));
        assert_eq!(expand_upc_e("01234565").as_deref(), Some("012345000065"));
    }

    #[test]
    fn reads_scale_labels() {
        let body = "211234501234";
        let code = format!("{body}{}", check_digit(body).unwrap());
        assert_eq!(
            parse(&code),
            Ok(Scanned::WeightEmbedded {
                item: "12345".into(),
                quantity: Quantity(1234)
            })
        );
        let body = "230004200399";
        let code = format!("{body}{}", check_digit(body).unwrap());
        assert_eq!(
            parse(&code),
            Ok(Scanned::PriceEmbedded {
                item: "00042".into(),
                price: Money(399)
            })
        );
    }

    #[test]
    fn refuses_bad_codes() {
        assert_eq!(parse("  "), Err(BarcodeError::Empty));
        assert_eq!(parse("40063813339x1"), Err(BarcodeError::NotDigits));
        assert_eq!(
            parse("4006381333932"),
            Err(BarcodeError::CheckDigit {
                expected: 1,
                found: 2
            })
        );
        assert_eq!(parse("1234567"), Err(BarcodeError::BadLength(7)));
        assert_eq!(
            parse("4006381333932").unwrap_err().to_string(),
            "check digit wrong: expected 1, found 2"
        );
    }
}
