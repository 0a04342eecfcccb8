//! What every subcommand shares: the global flags, the loaded config, logging.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use pos_auth::{AnomalyRules, BuiltinRole, LockoutPolicy, LoginPolicy, PasswordPolicy};
use pos_config::Config;
use pos_config::Pricing;
use pos_engine::EngineConfig;
use pos_store::{AccountPolicy, Store, StoreOptions};

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Data dir of this device (default: `device.data_dir` from the config, else /var/lib/pos).
    #[arg(long, global = true, value_name = "DIR", env = "POS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (e.g. /etc/pos/terminal.toml); built-in defaults when not given.
    #[arg(long, global = true, value_name = "FILE", env = "POS_CONFIG")]
    pub config: Option<PathBuf>,
}

/// A check that ran and said no (tamper found, login refused): exit code 1, not 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub data_dir: PathBuf,
    /// Whether `--data-dir` (or POS_DATA_DIR) was given, rather than taken from the config.
    pub data_dir_given: bool,
}

impl Context {
    pub fn new(args: &GlobalArgs, service: bool) -> anyhow::Result<Context> {
        let config = Config::load_or_default(args.config.as_deref())?;
        init_logging(&config, service);
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| config.device.data_dir.clone());
        Ok(Context {
            config,
            data_dir,
            data_dir_given: args.data_dir.is_some(),
        })
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            checkpoint_every: u64::from(self.config.store.checkpoint_every),
            busy_timeout: Duration::from_millis(u64::from(self.config.store.busy_timeout_ms)),
            max_size_bytes: match self.config.store.max_db_size_mb {
                0 => None,
                mb => Some(u64::from(mb) << 20),
            },
        }
    }
}

impl Context {
    /// Open this device's store for writing (takes ownership of the data dir).
    pub fn open_store(&self) -> anyhow::Result<Store> {
        open_at(&self.data_dir, self.store_options())
    }

    /// The `[auth]` settings as the account rules.
    pub fn account_policy(&self) -> AccountPolicy {
        let a = &self.config.auth;
        AccountPolicy {
            login: LoginPolicy {
                lockout: LockoutPolicy {
                    max_failures: a.max_failures,
                    base_backoff_ms: u64::from(a.lockout_base_s) * 1000,
                    max_backoff_ms: u64::from(a.lockout_max_s) * 1000,
                },
                anomaly: AnomalyRules {
                    voids_per_shift: a.anomaly_voids_per_shift,
                    refunds_per_shift: a.anomaly_refunds_per_shift,
                    pin_failures: a.anomaly_pin_failures,
                },
                credential_max_age_ms: match (
                    self.config_role_is_terminal(),
                    a.credential_max_age_days,
                ) {
                    (true, days) if days > 0 => Some(u64::from(days) * 86_400_000),
                    _ => None,
                },
            },
            password: PasswordPolicy {
                min_length: a.password_min_length as usize,
                history: a.password_history as usize,
            },
            mfa_roles: a
                .mfa_roles
                .iter()
                .filter_map(|r| BuiltinRole::ALL.into_iter().find(|b| b.as_str() == r))
                .collect(),
        }
    }

    /// The `[sale]` settings as the engine's trading rules.
    pub fn engine_config(&self) -> EngineConfig {
        use pos_core::sale::{
            BarcodeRules, CashRounding, Currency, DiscountPolicy, Money, PricingMode,
        };
        let s = &self.config.sale;
        EngineConfig {
            mode: match s.pricing {
                Pricing::Inclusive => PricingMode::Inclusive,
                Pricing::Exclusive => PricingMode::Exclusive,
            },
            rounding: CashRounding {
                step: Money(i64::from(s.cash_rounding)),
            },
            discounts: DiscountPolicy {
                max_percent_bp: s.discount_max_percent * 100,
                max_amount: Money(i64::from(s.discount_max_amount)),
            },
            reasons: s.reasons.clone(),
            barcodes: BarcodeRules {
                price_prefixes: s.price_prefixes.clone(),
                weight_prefixes: s.weight_prefixes.clone(),
                ..BarcodeRules::default()
            },
            currency: Currency {
                code: s.currency.clone(),
                ..Currency::default()
            },
            header: s.receipt_header.clone(),
            footer: s.receipt_footer.clone(),
            accounts: self.account_policy(),
            ..EngineConfig::default()
        }
    }

    /// Cached-credential age limits apply on terminals only (the hub is the source).
    fn config_role_is_terminal(&self) -> bool {
        !matches!(
            Store::read_identity(&self.data_dir).map(|i| i.role),
            Ok(pos_core::DeviceRole::Hub)
        )
    }
}

pub fn open_at(dir: &Path, options: StoreOptions) -> anyhow::Result<Store> {
    Store::open(dir, options).with_context(|| format!("cannot open data dir {}", dir.display()))
}

/// Services log at the configured level; one-shot commands only warn (their output is the
/// result), unless POS_LOG asks for more.
fn init_logging(config: &Config, service: bool) {
    use tracing_subscriber::EnvFilter;
    let level = if service {
        config.log.level.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_env("POS_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only on a terminal: a service's log goes to the journal or a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    // A second initialisation (tests calling twice) is harmless; ignore it.
    let _ = if config.log.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
