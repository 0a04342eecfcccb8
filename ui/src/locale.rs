//! How amounts and quantities are written for the shop's locale: digits grouped and the
//! decimal separator placed by ICU4X's data ("1.234,50" in German, "1,234.50" in English),
//! the currency symbol before or after the number as the language writes it.

use icu_decimal::input::Decimal;
use icu_decimal::options::DecimalFormatterOptions;
use icu_decimal::DecimalFormatter;
use icu_locale_core::Locale as IcuLocale;
use pos_core::sale::{Currency, Money, Quantity, Unit};

/// Languages the screens are translated into (gettext catalogues under `ui/translations`).
pub const LANGUAGES: [&str; 2] = ["en", "de"];

#[derive(Debug, thiserror::Error)]
pub enum LocaleError {
    #[error("locale {0:?} is not a BCP 47 tag such as en-GB or de-DE")]
    BadTag(String),
    #[error("no number format for locale {0:?}")]
    NoData(String),
}

pub struct Locale {
    tag: String,
    language: String,
    decimal: DecimalFormatter,
}

impl std::fmt::Debug for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locale").field("tag", &self.tag).finish()
    }
}

impl Locale {
    /// `tag` is a BCP 47 locale such as "en-GB", "de-DE" or "de-AT".
    pub fn new(tag: &str) -> Result<Locale, LocaleError> {
        let icu: IcuLocale = tag
            .parse()
            .map_err(|_| LocaleError::BadTag(tag.to_owned()))?;
        let language = icu.id.language.as_str().to_owned();
        let decimal = DecimalFormatter::try_new(icu.into(), DecimalFormatterOptions::default())
            .map_err(|_| LocaleError::NoData(tag.to_owned()))?;
        Ok(Locale {
            tag: tag.to_owned(),
            language,
            decimal,
        })
    }

    /// British English, the default.
    pub fn english() -> Locale {
        // The tag is a constant that ICU's compiled data covers; a failure here is a build bug.
        #[allow(clippy::unwrap_used)]
        Locale::new("en-GB").unwrap()
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The language part ("de" of "de-AT"): which translation the screens use.
    /// Show every Slint screen of the process in this locale's language (English where no
    /// translation is bundled).
    pub fn select_translation(&self) {
        let language = if LANGUAGES.contains(&self.language()) {
            self.language()
        } else {
            "en"
        };
        if let Err(e) = slint::select_bundled_translation(language) {
            tracing::warn!("translation {language}: {e}");
        }
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    fn fixed(&self, value: i64, digits: u8) -> String {
        let mut d = Decimal::from(value);
        d.multiply_pow10(-i16::from(digits));
        d.pad_end(-i16::from(digits));
        self.decimal.format(&d).to_string()
    }

    /// An amount without the currency: "1,234.50" / "1.234,50".
    pub fn number(&self, m: Money, currency: &Currency) -> String {
        self.fixed(m.0, currency.minor_digits)
    }

    /// An amount with its currency: "€12.50" / "12,50 €"; codes without a well-known symbol
    /// are written as the code ("CHF 12.50").
    pub fn money(&self, m: Money, currency: &Currency) -> String {
        let number = self.number(m, currency);
        let symbol = match currency.code.as_str() {
            "EUR" => "€",
            "GBP" => "£",
            "USD" => "$",
            code => return format!("{code}\u{a0}{number}"),
        };
        if self.symbol_first() {
            format!("{symbol}{number}")
        } else {
            format!("{number}\u{a0}{symbol}")
        }
    }

    /// English writes the symbol first; the continental languages after the number.
    fn symbol_first(&self) -> bool {
        self.language == "en"
    }

    /// A quantity: whole pieces as "3", weights as "0.450 kg" / "0,450 kg".
    pub fn quantity(&self, q: Quantity, unit: Unit) -> String {
        match unit {
            Unit::Each if q.0 % 1000 == 0 => self.fixed(q.0 / 1000, 0),
            Unit::Each => self.fixed(q.0, 3),
            Unit::Kg => format!("{} kg", self.fixed(q.0, 3)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn english_and_german_write_money_their_own_way() {
        let eur = Currency::default();
        let en = Locale::english();
        let de = Locale::new("de-DE").unwrap();
        assert_eq!(en.money(Money(123_450), &eur), "€1,234.50");
        assert_eq!(de.money(Money(123_450), &eur), "1.234,50\u{a0}€");
        assert_eq!(de.money(Money(-5), &eur), "-0,05\u{a0}€");
        assert_eq!(en.number(Money(100), &eur), "1.00");
        let chf = Currency {
            code: "CHF".into(),
            minor_digits: 2,
        };
        assert_eq!(
            Locale::new("de-CH").unwrap().money(Money(123_450), &chf),
            "CHF\u{a0}1'234.50"
        );
        assert_eq!(de.quantity(Quantity(450), Unit::Kg), "0,450 kg");
        assert_eq!(de.quantity(Quantity::units(1200), Unit::Each), "1.200");
        assert_eq!(en.quantity(Quantity(1500), Unit::Each), "1.500");
        assert_eq!(de.language(), "de");
        assert!(Locale::new("not a locale!").is_err());
    }

    #[test]
    fn extreme_amounts_format_without_panicking() {
        let en = Locale::english();
        for v in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX] {
            let text = en.money(Money(v), &Currency::default());
            assert!(text.contains('€'), "{text}");
        }
    }
}
