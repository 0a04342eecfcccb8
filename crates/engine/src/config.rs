use pos_core::sale::{
    BarcodeRules, CashRounding, Currency, DiscountPolicy, PricingMode, ReasonCodes,
};
use pos_core::Hlc;
use pos_store::AccountPolicy;

/// The store's trading rules (from the config file and hub settings).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub mode: PricingMode,
    pub rounding: CashRounding,
    pub discounts: DiscountPolicy,
    pub reasons: ReasonCodes,
    pub barcodes: BarcodeRules,
    pub currency: Currency,
    /// Receipt header lines: shop name, address, tax number.
    pub header: Vec<String>,
    pub footer: Vec<String>,
    pub accounts: AccountPolicy,
    /// How receipt times are written (the terminal's time zone by default).
    pub time_format: fn(Hlc) -> String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            mode: PricingMode::Inclusive,
            rounding: CashRounding::default(),
            discounts: DiscountPolicy::default(),
            reasons: ReasonCodes::default(),
            barcodes: BarcodeRules::default(),
            currency: Currency::default(),
            header: vec!["3PlugPOS demo shop".to_owned()],
            footer: vec!["Thank you!".to_owned()],
            accounts: AccountPolicy::default(),
            time_format: crate::local_time,
        }
    }
}

impl EngineConfig {
    pub(crate) fn format_time(&self, hlc: Hlc) -> String {
        (self.time_format)(hlc)
    }
}
