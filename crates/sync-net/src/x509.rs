//! The few fields of an X.509 certificate this crate reads: serial, validity, subject common
//! name and public key. A strict, bounded DER walk (no allocation from lengths on the wire, no
//! panics); the certificates it reads were made by our own CA and, on the hub, already verified
//! by webpki before this runs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed certificate: {0}")]
pub struct CertParseError(&'static str);

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The serial number's content bytes (big-endian, as encoded).
    pub serial: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// The subject's common name (2.5.4.3), if it has one.
    pub subject_cn: Option<String>,
    /// The SubjectPublicKeyInfo, whole (DER).
    pub spki: Vec<u8>,
}

impl CertInfo {
    /// The serial as lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex_lower(&self.serial)
    }
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION_TAG: u8 = 0xa0;
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// One TLV: its tag and contents; `rest` follows it.
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
}

fn take(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), CertParseError> {
    let (&tag, rest) = input.split_first().ok_or(CertParseError("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(CertParseError("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(CertParseError("truncated"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(CertParseError("bad length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(CertParseError("truncated"));
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertParseError> {
    let (tlv, rest) = take(input)?;
    if tlv.tag != tag {
        return Err(CertParseError("unexpected field"));
    }
    Ok((tlv.value, rest))
}

/// Read a DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, CertParseError> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    let (first, after) = take(rest)?;
    if first.tag == VERSION_TAG {
        rest = after;
    }
    let (serial, rest) = expect(rest, INTEGER)?;
    let (_sig_alg, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, rest) = expect(rest, SEQUENCE)?;
    let spki_len = rest.len() - take(rest)?.1.len();
    let (spki_tlv, _) = take(rest)?;
    if spki_tlv.tag != SEQUENCE {
        return Err(CertParseError("no public key"));
    }
    let (not_before, after) = take(validity)?;
    let (not_after, _) = take(after)?;
    Ok(CertInfo {
        serial: serial.to_vec(),
        not_before: parse_time(&not_before)?,
        not_after: parse_time(&not_after)?,
        subject_cn: common_name(subject)?,
        spki: rest[..spki_len].to_vec(),
    })
}

fn common_name(mut name: &[u8]) -> Result<Option<String>, CertParseError> {
    while !name.is_empty() {
        let (set, rest) = expect(name, SET)?;
        name = rest;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (attr, rest) = expect(attrs, SEQUENCE)?;
            attrs = rest;
            let (oid, value) = expect(attr, OID)?;
            if oid == OID_COMMON_NAME {
                let (v, _) = take(value)?;
                // UTF8String, PrintableString or IA5String: all are ASCII-compatible here.
                let text = std::str::from_utf8(v.value)
                    .map_err(|_| CertParseError("common name is not text"))?;
                return Ok(Some(text.to_owned()));
            }
        }
    }
    Ok(None)
}

fn parse_time(tlv: &Tlv<'_>) -> Result<SystemTime, CertParseError> {
    let text = std::str::from_utf8(tlv.value).map_err(|_| CertParseError("bad time"))?;
    let digits = text
        .strip_suffix('Z')
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(CertParseError("bad time"))?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| CertParseError("bad time"));
    let (year, rest) = match (tlv.tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = num(&digits[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (num(&digits[..4])?, &digits[4..]),
        _ => return Err(CertParseError("bad time")),
    };
    let month = num(&rest[0..2])?;
    let day = num(&rest[2..4])?;
    let (h, m, s) = (num(&rest[4..6])?, num(&rest[6..8])?, num(&rest[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(CertParseError("bad time"));
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    Ok(if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_convert_to_unix_time() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        let t = Tlv {
            tag: UTC_TIME,
            value: b"240229120000Z",
        };
        let got = parse_time(&t).unwrap();
        assert_eq!(
            got.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_709_208_000
        );
        let g = Tlv {
            tag: GENERALIZED_TIME,
            value: b"20510101000000Z",
        };
        assert!(parse_time(&g).is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x80, 0, 0],
            &[0x30, 0x03, 0x02, 0x01],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(parse_certificate(bytes).is_err(), "{bytes:?}");
        }
    }
}
