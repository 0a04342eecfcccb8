//! Money and quantities as integers, so every sum is exact and every overflow is an error.
//!
//! [`Money`] counts minor units (cents). [`Quantity`] counts thousandths of the product's
//! [`Unit`]: 1 each = 1000, 1 kg = 1000 (so one gram = 1). The one place where a fraction
//! appears, unit price × quantity, is rounded half away from zero ([`line_amount`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::SaleError;

/// An amount in minor units (cents for a currency with 2 minor digits).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn checked_add(self, other: Money) -> Result<Money, SaleError> {
        self.0
            .checked_add(other.0)
            .map(Money)
            .ok_or(SaleError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, SaleError> {
        self.0
            .checked_sub(other.0)
            .map(Money)
            .ok_or(SaleError::Overflow)
    }

    pub fn checked_neg(self) -> Result<Money, SaleError> {
        self.0.checked_neg().map(Money).ok_or(SaleError::Overflow)
    }

    /// This unit price times `qty`: see [`line_amount`].
    pub fn checked_mul_qty(self, qty: Quantity) -> Result<Money, SaleError> {
        line_amount(self, qty)
    }

    /// Sum without wrapping.
    pub fn sum<I: IntoIterator<Item = Money>>(items: I) -> Result<Money, SaleError> {
        items.into_iter().try_fold(Money::ZERO, Money::checked_add)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// "1234.50" for a currency with 2 minor digits, "-0.05", "1234" with 0.
    pub fn format(self, currency: &Currency) -> String {
        format_fixed(self.0, currency.minor_digits)
    }

    /// Reads "12.34", "-1.5", "12" (no thousands separators, '.' as decimal point).
    pub fn parse(text: &str, currency: &Currency) -> Result<Money, SaleError> {
        parse_fixed(text, currency.minor_digits)
            .map(Money)
            .map_err(|e| e.into_error(text, SaleError::InvalidAmount))
    }
}

impl fmt::Display for Money {
    /// Two minor digits; use [`Money::format`] for other currencies.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fixed(self.0, 2))
    }
}

impl FromStr for Money {
    type Err = SaleError;
    /// Two minor digits; use [`Money::parse`] for other currencies.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s, &Currency::default())
    }
}

/// How a shop's amounts are written: ISO code and number of minor digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency {
    pub code: String,
    pub minor_digits: u8,
}

impl Default for Currency {
    fn default() -> Self {
        Currency {
            code: "EUR".into(),
            minor_digits: 2,
        }
    }
}

/// How a product is counted and priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// By the piece: quantities are whole (multiples of 1000).
    Each,
    /// By weight: the price is per kg, quantities are grams.
    Kg,
}

/// A quantity in thousandths of the product's unit (1 each = 1000, 1 kg = 1000).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Quantity(pub i64);

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);
    /// One piece, or one kg.
    pub const ONE: Quantity = Quantity(1000);

    /// `n` whole units (saturates instead of overflowing; such a quantity is refused later).
    pub const fn units(n: i64) -> Quantity {
        Quantity(n.saturating_mul(1000))
    }

    pub fn is_whole(self) -> bool {
        self.0 % 1000 == 0
    }

    /// As a cashier reads it: "2" for pieces, "0.750 kg" for weight.
    pub fn format(self, unit: Unit) -> String {
        match unit {
            Unit::Each => self.to_string(),
            Unit::Kg => format!("{} kg", format_fixed(self.0, 3)),
        }
    }
}

impl fmt::Display for Quantity {
    /// Shortest exact form: "2", "1.5", "0.125".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format_fixed(self.0, 3);
        f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
    }
}

impl FromStr for Quantity {
    type Err = SaleError;
    /// "2", "1.5", "0.750" (up to three decimals).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_fixed(s, 3)
            .map(Quantity)
            .map_err(|e| e.into_error(s, SaleError::InvalidQuantity))
    }
}

/// The amount of a line: `unit_price × qty / 1000`, rounded half away from zero to the minor
/// unit (0.333 kg at 1.99 = 0.66267 → 0.66; 0.5 × 0.01 = 0.005 → 0.01). Rounding once per line
/// keeps the printed line amounts the ones that are summed.
pub fn line_amount(unit_price: Money, qty: Quantity) -> Result<Money, SaleError> {
    to_money(div_round(
        i128::from(unit_price.0) * i128::from(qty.0),
        1000,
    ))
}

/// `n / d` rounded half away from zero. `d` must be positive (callers guard it).
pub(crate) fn div_round(n: i128, d: i128) -> i128 {
    if d <= 0 {
        return 0;
    }
    let (q, r) = (n / d, n % d);
    if 2 * r.abs() >= d {
        q + n.signum()
    } else {
        q
    }
}

pub(crate) fn to_money(value: i128) -> Result<Money, SaleError> {
    i64::try_from(value)
        .map(Money)
        .map_err(|_| SaleError::Overflow)
}

fn format_fixed(value: i64, digits: u8) -> String {
    let digits = usize::from(digits);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs().to_string();
    if digits == 0 {
        return format!("{sign}{abs}");
    }
    let padded = format!("{abs:0>width$}", width = digits + 1);
    let (int, frac) = padded.split_at(padded.len() - digits);
    format!("{sign}{int}.{frac}")
}

enum ParseFixedError {
    Syntax,
    Overflow,
}

impl ParseFixedError {
    fn into_error(self, text: &str, syntax: fn(String) -> SaleError) -> SaleError {
        match self {
            ParseFixedError::Syntax => syntax(text.chars().take(40).collect()),
            ParseFixedError::Overflow => SaleError::Overflow,
        }
    }
}

/// Decimal text to an integer count of `10^-digits`; refuses more decimals than `digits`.
fn parse_fixed(text: &str, digits: u8) -> Result<i64, ParseFixedError> {
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = !body.ends_with('.') && frac.len() <= usize::from(digits);
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) || !frac_ok {
        return Err(ParseFixedError::Syntax);
    }
    let padding = std::iter::repeat_n(b'0', usize::from(digits) - frac.len());
    let mut value: i64 = 0;
    for b in int.bytes().chain(frac.bytes()).chain(padding) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or(ParseFixedError::Overflow)?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_money() {
        assert_eq!(Money(1234).to_string(), "12.34");
        assert_eq!(Money(-5).to_string(), "-0.05");
        assert_eq!(Money(i64::MIN).to_string(), "-92233720368547758.08");
        let yen = Currency {
            code: "JPY".into(),
            minor_digits: 0,
        };
        assert_eq!(Money(1234).format(&yen), "1234");
        assert_eq!("12.34".parse::<Money>(), Ok(Money(1234)));
        assert_eq!(" 12.3 ".parse::<Money>(), Ok(Money(1230)));
        assert_eq!("-.5".parse::<Money>(), Ok(Money(-50)));
        assert_eq!("7".parse::<Money>(), Ok(Money(700)));
        for bad in ["", "-", ".", "12.", "1,00", "12.345", "1e3", "--1", "+1"] {
            assert!(
                matches!(bad.parse::<Money>(), Err(SaleError::InvalidAmount(_))),
                "{bad}"
            );
        }
        assert_eq!(
            "99999999999999999999".parse::<Money>(),
            Err(SaleError::Overflow)
        );
        assert_eq!(Money::parse("1.5", &yen).ok(), None);
    }

    #[test]
    fn quantities_read_and_print() {
        assert_eq!(Quantity(2000).to_string(), "2");
        assert_eq!(Quantity(1500).to_string(), "1.5");
        assert_eq!(Quantity(750).format(Unit::Kg), "0.750 kg");
        assert_eq!("0.75".parse::<Quantity>(), Ok(Quantity(750)));
        assert!("0.0005".parse::<Quantity>().is_err());
    }

    #[test]
    fn line_amount_rounds_half_away_from_zero() {
        assert_eq!(line_amount(Money(199), Quantity(333)), Ok(Money(66)));
        assert_eq!(line_amount(Money(1), Quantity(500)), Ok(Money(1)));
        assert_eq!(line_amount(Money(-1), Quantity(500)), Ok(Money(-1)));
        assert_eq!(line_amount(Money(1), Quantity(499)), Ok(Money(0)));
        assert_eq!(
            line_amount(Money(i64::MAX), Quantity(2000)),
            Err(SaleError::Overflow)
        );
        assert_eq!(
            Money(i64::MAX).checked_add(Money(1)),
            Err(SaleError::Overflow)
        );
    }
}
