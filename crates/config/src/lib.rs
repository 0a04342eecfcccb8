//! 3PlugPOS configuration: `terminal.toml` / `hub.toml` read with serde + TOML.
//!
//! Every key has a default, so an empty file (or no file at all, see
//! [`Config::load_or_default`]) yields [`Config::default`]. Unknown keys are refused, so a typo never
//! silently falls back to a default. Every error is a single line naming the file, the line and
//! column, what is wrong and what to do about it, e.g.
//!
//! ```text
//! /etc/pos/terminal.toml:7:1: unknown key `chekpoint_every` in [store]; expected one of checkpoint_every, busy_timeout_ms, max_db_size_mb (hint: see config/terminal.toml for every setting and its default)
//! ```
//!
//! The commented default files live in `config/terminal.toml` and `config/hub.toml` at the
//! repository root; tests check that they parse and equal [`Config::default`].

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Hint attached to errors about keys, types and values.
const HINT_SETTINGS: &str = "see config/terminal.toml for every setting and its default";
/// Hint attached to TOML syntax errors.
const HINT_SYNTAX: &str =
    "fix the TOML syntax at that position; see config/terminal.toml for a valid example";

/// The whole configuration of a device (terminal or hub).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[device]`: where the device keeps its state.
    pub device: DeviceSection,
    /// `[log]`: logging.
    pub log: LogSection,
    /// `[store]`: the local SQLite event store.
    pub store: StoreSection,
    /// `[hub]`: the hub service (used by the hub role only).
    pub hub: HubSection,
    /// `[sync]`: pushing the terminal's event log to its hub.
    pub sync: SyncSection,
    /// `[auth]`: logins, lockout, sessions, password policy, anomaly thresholds.
    pub auth: AuthSection,
    /// `[sale]`: pricing, rounding, discount limits, receipts, scale labels, reason codes.
    pub sale: SaleSection,
    /// `[devices]`: receipt printer, cash drawer, scanner, customer display.
    pub devices: DevicesSection,
    /// `[backup]`: where backups go, their key, schedule and retention.
    pub backup: BackupSection,
    /// `[alerts]`: thresholds of the hub's alerts (low stock, void/refund anomalies, backups,
    /// disk); the offline alert's is `[hub] offline_alert_min`.
    pub alerts: AlertsSection,
}

/// `[alerts]` section: the thresholds of `pos_reports::AlertRules`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Low stock when on hand is at or below this many units. Default 5, valid 0..=100000.
    pub low_stock_units: u32,
    /// ... or lasts fewer days than this at the recent rate of sale; 0 = off. Default 3,
    /// valid 0..=365.
    pub low_stock_cover_days: u32,
    /// Days of sales the rate of sale is averaged over. Default 14, valid 1..=365.
    pub cover_window_days: u32,
    /// A cashier's voids (line voids + post-voids) above this percentage of their sales today.
    /// Default 5, valid 1..=100.
    pub void_rate_pct: u32,
    /// A cashier's refunds above this percentage of their sales today. Default 5, valid 1..=100.
    pub refund_rate_pct: u32,
    /// Sales a cashier must have made today before their rates are judged. Default 20, valid
    /// 1..=10000.
    pub anomaly_min_sales: u32,
    /// Hours without a successful backup before the hub alerts; 0 = off. Default 26 (a daily
    /// backup missed), valid 0..=720.
    pub backup_max_age_h: u32,
    /// Alert when the data partition is fuller than this percentage. Default 90, valid 50..=99.
    pub disk_full_pct: u32,
}

impl Default for AlertsSection {
    fn default() -> Self {
        let r = pos_reports::AlertRules::default();
        Self {
            low_stock_units: r.low_stock_units,
            low_stock_cover_days: r.low_stock_cover_days,
            cover_window_days: r.cover_window_days,
            void_rate_pct: r.void_rate_pct,
            refund_rate_pct: r.refund_rate_pct,
            anomaly_min_sales: r.anomaly_min_sales,
            backup_max_age_h: r.backup_max_age_h,
            disk_full_pct: r.disk_full_pct,
        }
    }
}

impl Config {
    /// The alert rules of `[alerts]` with `[hub] offline_alert_min`.
    pub fn alert_rules(&self) -> pos_reports::AlertRules {
        let a = &self.alerts;
        pos_reports::AlertRules {
            low_stock_units: a.low_stock_units,
            low_stock_cover_days: a.low_stock_cover_days,
            cover_window_days: a.cover_window_days,
            void_rate_pct: a.void_rate_pct,
            refund_rate_pct: a.refund_rate_pct,
            anomaly_min_sales: a.anomaly_min_sales,
            offline_after_min: self.hub.offline_alert_min,
            backup_max_age_h: a.backup_max_age_h,
            disk_full_pct: a.disk_full_pct,
        }
    }
}

/// `[backup]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSection {
    /// Directory for backup files. Default "" = `<data_dir>/backups`.
    pub dir: PathBuf,
    /// Key file for unattended (scheduled) backups, made with `pos backup keygen`.
    /// Default "" = none. Either this or `passphrase_file` is needed for the schedule.
    pub key_file: PathBuf,
    /// File holding the passphrase for unattended backups (first line). Default "" = none.
    pub passphrase_file: PathBuf,
    /// Make scheduled backups at all. Default true (they only run once a key is configured).
    pub scheduled: bool,
    /// Local time of the daily backup, "HH:MM". Default "02:30".
    pub daily_at: String,
    /// Hourly snapshots besides the daily backup (the hub; terminals keep the daily safety
    /// copy only). Default true.
    pub hourly: bool,
    /// Retention: newest backup of each of the last N hours / days / months. Defaults 24, 14,
    /// 12; valid 0..=1000.
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_monthly: u32,
    /// Off-site copies: `sftp://USER@HOST[:PORT]/DIR` on a server the shop owns. Default ""
    /// = none.
    pub offsite: String,
    /// This box's SSH private key for the off-site server.
    pub offsite_identity: PathBuf,
    /// The off-site server's pinned host key (OpenSSH known_hosts format).
    pub offsite_known_hosts: PathBuf,
}

impl Default for BackupSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            key_file: PathBuf::new(),
            passphrase_file: PathBuf::new(),
            scheduled: true,
            daily_at: "02:30".to_owned(),
            hourly: true,
            keep_hourly: 24,
            keep_daily: 14,
            keep_monthly: 12,
            offsite: String::new(),
            offsite_identity: PathBuf::new(),
            offsite_known_hosts: PathBuf::new(),
        }
    }
}

impl BackupSection {
    /// Hours and minutes of `daily_at` (validated when the config is loaded).
    pub fn daily_time(&self) -> Option<(u8, u8)> {
        let (h, m) = self.daily_at.split_once(':')?;
        let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
        (h < 24 && m < 60 && self.daily_at.len() == 5).then_some((h, m))
    }
}

/// `[device]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceSection {
    /// Directory holding the database, keys and backups. Default `/var/lib/pos`.
    pub data_dir: PathBuf,
    /// BCP 47 locale of the screens: language of the words, format of numbers and money.
    /// Default `en-GB`.
    pub locale: String,
}

impl Default for DeviceSection {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/pos"),
            locale: "en-GB".to_owned(),
        }
    }
}

/// `[log]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Least severe level that is logged. Default `info`.
    pub level: LogLevel,
    /// Log one JSON object per line instead of human-readable text. Default `false`.
    pub json: bool,
}

/// Log verbosity, written in lowercase in TOML (`level = "debug"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Normal operation messages (default).
    #[default]
    Info,
    /// Diagnostic detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The lowercase name used in TOML and by log filters (`"info"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[store]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Events between signed audit checkpoints. Default 1000, valid 1..=1000.
    pub checkpoint_every: u32,
    /// Milliseconds to wait for a SQLite lock. Default 5000, valid 0..=60000.
    pub busy_timeout_ms: u32,
    /// Largest size the database may grow to, in MiB; 0 = no limit. Valid 0..=1048576.
    pub max_db_size_mb: u32,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            busy_timeout_ms: 5000,
            max_db_size_mb: 0,
        }
    }
}

/// `[hub]` section, used by the hub role only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// Address the hub listens on for terminals; must parse as a [`SocketAddr`].
    /// Default `0.0.0.0:7443`.
    pub listen: String,
    /// Minutes a terminal may stay out of touch before the hub raises an alert.
    /// Default 30, valid 1..=10080 (a week).
    pub offline_alert_min: u32,
}

impl Default for HubSection {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:7443".to_owned(),
            offline_alert_min: 30,
        }
    }
}

/// `[sync]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// The hub's `host:port`. Default `None`: the terminal is not enrolled yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    /// Longest wait between reconnection attempts, in seconds. Default 60, valid 1..=3600.
    pub retry_max_s: u32,
}

impl Default for SyncSection {
    fn default() -> Self {
        Self {
            hub: None,
            retry_max_s: 60,
        }
    }
}

/// How shelf prices are meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pricing {
    /// Prices include tax (typical for shops selling to consumers).
    #[default]
    Inclusive,
    /// Tax is added at the till.
    Exclusive,
}

/// `[sale]` section: the store's trading rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaleSection {
    /// Whether shelf prices include tax. Default inclusive.
    pub pricing: Pricing,
    /// ISO currency code printed on receipts. Default "EUR".
    pub currency: String,
    /// Smallest cash step in cents (1 = exact, 5 = round cash totals to 0.05). Valid 1..=100.
    pub cash_rounding: u32,
    /// Discount a cashier may give without approval, in percent. Valid 0..=100.
    pub discount_max_percent: u32,
    /// ...and in cents. Valid 0..=100000.
    pub discount_max_amount: u32,
    /// Receipt header lines (shop name, address, tax number).
    pub receipt_header: Vec<String>,
    /// Receipt footer lines.
    pub receipt_footer: Vec<String>,
    /// Two-digit prefixes of price-embedded scale labels. Default ["22", "23"].
    pub price_prefixes: Vec<String>,
    /// Two-digit prefixes of weight-embedded scale labels. Default ["21"].
    pub weight_prefixes: Vec<String>,
    /// Reason codes a cashier or approver picks from, per sensitive action.
    pub reasons: pos_core::sale::ReasonCodes,
}

impl Default for SaleSection {
    fn default() -> Self {
        Self {
            pricing: Pricing::Inclusive,
            currency: "EUR".to_owned(),
            cash_rounding: 1,
            discount_max_percent: 10,
            discount_max_amount: 500,
            receipt_header: vec!["3PlugPOS shop".to_owned()],
            receipt_footer: vec!["Thank you!".to_owned()],
            price_prefixes: vec!["22".to_owned(), "23".to_owned()],
            weight_prefixes: vec!["21".to_owned()],
            reasons: pos_core::sale::ReasonCodes::default(),
        }
    }
}

/// `[devices]` section: where each device is connected. A connection is `none`,
/// `tcp://HOST:PORT` (network printer, raw port 9100), `serial:///dev/ttyUSB0?baud=38400`,
/// `usb://VID:PID` or `usb://auto` (first USB printer-class device), `evdev:///dev/input/...`
/// (keyboard-wedge scanner, grabbed exclusively) or, for the drawer only, `printer`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesSection {
    /// Receipt printer connection. Default "none".
    pub printer: String,
    /// Paper width: "80mm" (48 columns) or "58mm" (32 columns). Default "80mm".
    pub printer_paper: String,
    /// Printer code page: "cp858" (with the euro sign) or "cp437". Default "cp858".
    pub printer_code_page: String,
    /// Extra USB printers recognised by VID:PID besides the printer class, e.g. ["04b8:0202"].
    pub usb_printers: Vec<String>,
    /// A one-bit logo (binary PBM, at most 576 dots wide) printed above the receipt header;
    /// empty for none. Default "".
    pub printer_logo: String,
    /// Print a barcode of the receipt number (scanned for returns and reprints). Default true.
    pub receipt_barcode: bool,
    /// Cash drawer: "printer" (kicked through the printer's drawer port), a serial connection,
    /// or "none". Default "printer".
    pub drawer: String,
    /// Drawer connector pin of the printer: 2 or 5. Default 2.
    pub drawer_pin: u8,
    /// Drawer kick pulse in milliseconds, 2..=510. Default 100.
    pub drawer_pulse_ms: u16,
    /// Seconds before an open drawer raises "drawer left open" (where the drawer reports its
    /// state). Valid 5..=3600. Default 60.
    pub drawer_left_open_s: u32,
    /// Barcode scanner connection. Default "none".
    pub scanner: String,
    /// Bytes the scanner sends before and after each code (TOML escapes like "\r").
    /// Default: no prefix, a carriage return after.
    pub scanner_prefix: String,
    pub scanner_suffix: String,
    /// The same code read again within this many ms is ignored. Valid 0..=5000. Default 300.
    pub scanner_debounce_ms: u32,
    /// Customer line display (2x20) connection. Default "none".
    pub display: String,
}

impl Default for DevicesSection {
    fn default() -> Self {
        Self {
            printer: "none".to_owned(),
            printer_paper: "80mm".to_owned(),
            printer_code_page: "cp858".to_owned(),
            usb_printers: Vec::new(),
            printer_logo: String::new(),
            receipt_barcode: true,
            drawer: "printer".to_owned(),
            drawer_pin: 2,
            drawer_pulse_ms: 100,
            drawer_left_open_s: 60,
            scanner: "none".to_owned(),
            scanner_prefix: String::new(),
            scanner_suffix: "\r".to_owned(),
            scanner_debounce_ms: 300,
            display: "none".to_owned(),
        }
    }
}

/// `[auth]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Failed logins in a row before the account locks. Default 5, valid 1..=20.
    pub max_failures: u32,
    /// First lockout, in seconds; it doubles with every further failure. Default 30, valid 1..=3600.
    pub lockout_base_s: u32,
    /// Longest lockout, in seconds (then a manager unlocks). Default 900, valid 1..=86400.
    pub lockout_max_s: u32,
    /// Seconds without a touch before the terminal locks the screen. Default 120, valid 10..=3600.
    pub idle_lock_s: u32,
    /// Hours after which a session ends even if in use. Default 12, valid 1..=24.
    pub session_max_h: u32,
    /// Shortest password (characters). Default 12, valid 8..=64.
    pub password_min_length: u32,
    /// Previous passwords that may not be reused. Default 5, valid 0..=24.
    pub password_history: u32,
    /// Roles whose users must use a TOTP second factor. Default ["admin", "technician"].
    pub mfa_roles: Vec<String>,
    /// Days a terminal trusts cached credentials without hearing from the hub; 0 = forever.
    /// Default 14, valid 0..=365.
    pub credential_max_age_days: u32,
    /// Voids by one cashier in one shift above which an anomaly is flagged. Default 5.
    pub anomaly_voids_per_shift: u32,
    /// Refunds by one cashier in one shift above which an anomaly is flagged. Default 3.
    pub anomaly_refunds_per_shift: u32,
    /// Consecutive wrong PINs that flag an anomaly. Default 3.
    pub anomaly_pin_failures: u32,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_base_s: 30,
            lockout_max_s: 900,
            idle_lock_s: 120,
            session_max_h: 12,
            password_min_length: 12,
            password_history: 5,
            mfa_roles: vec!["admin".to_owned(), "technician".to_owned()],
            credential_max_age_days: 14,
            anomaly_voids_per_shift: 5,
            anomaly_refunds_per_shift: 3,
            anomaly_pin_failures: 3,
        }
    }
}

/// Why a configuration could not be loaded. `Display` is a single line naming the file (and,
/// where known, line and column), what is wrong and a hint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file does not exist.
    #[error(
        "config file {} not found (hint: pass --config FILE or copy config/terminal.toml)",
        path.display()
    )]
    NotFound {
        /// The file that was asked for.
        path: PathBuf,
    },
    /// The file exists but could not be read (permissions, a directory, not UTF-8, ...).
    /// The io error is part of the message.
    #[error(
        "cannot read config file {}: {error} (hint: check that it is a readable UTF-8 text file)",
        path.display()
    )]
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{}: {message} (hint: {HINT_SYNTAX})", location(path, *line, *column))]
    Syntax {
        /// The file (or origin) of the text.
        path: PathBuf,
        /// 1-based line, if known.
        line: Option<usize>,
        /// 1-based column (in characters), if known.
        column: Option<usize>,
        /// What is wrong, one line.
        message: String,
    },
    /// Valid TOML that does not fit the schema: unknown key or section, wrong type, unknown
    /// log level, ...
    #[error("{}: {message} (hint: {HINT_SETTINGS})", location(path, *line, *column))]
    Invalid {
        /// The file (or origin) of the text.
        path: PathBuf,
        /// 1-based line, if known.
        line: Option<usize>,
        /// 1-based column (in characters), if known.
        column: Option<usize>,
        /// What is wrong, one line; names the key.
        message: String,
    },
    /// A value of the right type outside its valid range (or an unusable address).
    #[error(
        "{}: invalid value for `{key}`: {problem} (hint: {hint})",
        location(path, *line, *column)
    )]
    OutOfRange {
        /// The file (or origin) of the text.
        path: PathBuf,
        /// 1-based line of the key, if it could be found in the text.
        line: Option<usize>,
        /// 1-based column of the key, if it could be found in the text.
        column: Option<usize>,
        /// Dotted key, e.g. `store.checkpoint_every`.
        key: &'static str,
        /// What is wrong with the value.
        problem: String,
        /// The valid range or format.
        hint: String,
    },
}

/// `file:line:column`, `file:line` or `file`, depending on what is known.
fn location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    let mut out = path.display().to_string();
    if let Some(line) = line {
        let _ = write!(out, ":{line}");
        if let Some(column) = column {
            let _ = write!(out, ":{column}");
        }
    }
    out
}

impl Config {
    /// Parses and validates configuration text. `origin` is only used in error messages.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let deserializer = toml::de::Deserializer::parse(text).map_err(|e| {
            let (line, column) = span_position(text, e.span());
            ConfigError::Syntax {
                path: origin.to_path_buf(),
                line,
                column,
                message: describe_syntax_error(text, &e),
            }
        })?;
        let config = Config::deserialize(deserializer).map_err(|e| {
            let (line, column) = span_position(text, e.span());
            ConfigError::Invalid {
                path: origin.to_path_buf(),
                line,
                column,
                message: describe_schema_error(text, &e),
            }
        })?;
        config.validate(text, origin)?;
        Ok(config)
    }

    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                ConfigError::Io {
                    path: path.to_path_buf(),
                    error,
                }
            }
        })?;
        Self::from_toml_str(&text, path)
    }

    /// `None` gives the defaults; `Some(path)` loads that file, and a missing file is an error
    /// (an explicitly named file that is not there is a mistake, not a request for defaults).
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Ok(Config::default()),
            Some(path) => Self::load(path),
        }
    }

    /// Range and format checks that serde cannot express. Reports the first problem.
    fn validate(&self, text: &str, origin: &Path) -> Result<(), ConfigError> {
        let out_of_range = |key: &'static str, problem: String, hint: String| {
            let (line, column) = find_key(text, key);
            ConfigError::OutOfRange {
                path: origin.to_path_buf(),
                line,
                column,
                key,
                problem,
                hint,
            }
        };
        let range = |key: &'static str, value: u32, min: u32, max: u32, what: &str| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(out_of_range(
                    key,
                    format!("{value} is out of range"),
                    format!("valid range is {min}..={max}: {what}"),
                ))
            }
        };

        range(
            "store.checkpoint_every",
            self.store.checkpoint_every,
            1,
            1000,
            "events between signed audit checkpoints",
        )?;
        range(
            "store.busy_timeout_ms",
            self.store.busy_timeout_ms,
            0,
            60_000,
            "milliseconds to wait for a SQLite lock",
        )?;
        range(
            "store.max_db_size_mb",
            self.store.max_db_size_mb,
            0,
            1 << 20,
            "largest database size in MiB, 0 for no limit",
        )?;
        let auth = &self.auth;
        for (key, value, min, max, what) in [
            (
                "auth.max_failures",
                auth.max_failures,
                1,
                20,
                "failed logins before lockout",
            ),
            (
                "auth.lockout_base_s",
                auth.lockout_base_s,
                1,
                3600,
                "first lockout in seconds",
            ),
            (
                "auth.lockout_max_s",
                auth.lockout_max_s,
                1,
                86_400,
                "longest lockout in seconds",
            ),
            (
                "auth.idle_lock_s",
                auth.idle_lock_s,
                10,
                3600,
                "idle seconds before the screen locks",
            ),
            (
                "auth.session_max_h",
                auth.session_max_h,
                1,
                24,
                "hours a session may last",
            ),
            (
                "auth.password_min_length",
                auth.password_min_length,
                8,
                64,
                "shortest password",
            ),
            (
                "auth.password_history",
                auth.password_history,
                0,
                24,
                "passwords that may not be reused",
            ),
            (
                "auth.credential_max_age_days",
                auth.credential_max_age_days,
                0,
                365,
                "days cached credentials stay valid, 0 = forever",
            ),
            (
                "auth.anomaly_voids_per_shift",
                auth.anomaly_voids_per_shift,
                1,
                1000,
                "voids per shift before a flag",
            ),
            (
                "auth.anomaly_refunds_per_shift",
                auth.anomaly_refunds_per_shift,
                1,
                1000,
                "refunds per shift before a flag",
            ),
            (
                "auth.anomaly_pin_failures",
                auth.anomaly_pin_failures,
                1,
                100,
                "wrong PINs in a row before a flag",
            ),
        ] {
            range(key, value, min, max, what)?;
        }
        if auth.lockout_max_s < auth.lockout_base_s {
            return Err(out_of_range(
                "auth.lockout_max_s",
                format!(
                    "{} is below lockout_base_s ({})",
                    auth.lockout_max_s, auth.lockout_base_s
                ),
                "the longest lockout must be at least the first one".to_owned(),
            ));
        }
        const ROLES: [&str; 7] = [
            "cashier",
            "supervisor",
            "manager",
            "accountant",
            "auditor",
            "admin",
            "technician",
        ];
        if let Some(bad) = auth.mfa_roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
            return Err(out_of_range(
                "auth.mfa_roles",
                format!("unknown role {bad:?}"),
                format!("use built-in role names: {}", ROLES.join(", ")),
            ));
        }
        if !is_locale_tag(&self.device.locale) {
            return Err(out_of_range(
                "device.locale",
                format!("{:?} is not a locale", self.device.locale),
                "write a BCP 47 tag such as \"en-GB\" or \"de-DE\"".to_owned(),
            ));
        }
        let sale = &self.sale;
        range(
            "sale.cash_rounding",
            sale.cash_rounding,
            1,
            100,
            "smallest cash step in cents",
        )?;
        range(
            "sale.discount_max_percent",
            sale.discount_max_percent,
            0,
            100,
            "percent a cashier may give",
        )?;
        range(
            "sale.discount_max_amount",
            sale.discount_max_amount,
            0,
            100_000,
            "cents a cashier may give",
        )?;
        if sale.currency.len() != 3 || !sale.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(out_of_range(
                "sale.currency",
                format!("{:?} is not a currency code", sale.currency),
                "use an ISO 4217 code such as \"EUR\", \"CHF\" or \"USD\"".to_owned(),
            ));
        }
        for (key, prefixes) in [
            ("sale.price_prefixes", &sale.price_prefixes),
            ("sale.weight_prefixes", &sale.weight_prefixes),
        ] {
            if let Some(bad) = prefixes
                .iter()
                .find(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(out_of_range(
                    key,
                    format!("{bad:?} is not a two-digit prefix"),
                    "scale labels use GS1 prefixes 20 to 29, e.g. \"21\"".to_owned(),
                ));
            }
        }
        let d = &self.devices;
        let scheme_ok = |value: &str, allowed: &[&str]| {
            value == "none" || allowed.iter().any(|s| value.starts_with(s))
        };
        for (key, value, allowed) in [
            (
                "devices.printer",
                &d.printer,
                &["tcp://", "serial://", "usb://"][..],
            ),
            ("devices.drawer", &d.drawer, &["printer", "serial://"][..]),
            (
                "devices.scanner",
                &d.scanner,
                &["serial://", "evdev://"][..],
            ),
            ("devices.display", &d.display, &["serial://"][..]),
        ] {
            if !scheme_ok(value, allowed) {
                return Err(out_of_range(
                    key,
                    format!("{value:?} is not a connection for this device"),
                    format!("use \"none\" or one of {}", allowed.join(" ")),
                ));
            }
        }
        if !["80mm", "58mm"].contains(&d.printer_paper.as_str()) {
            return Err(out_of_range(
                "devices.printer_paper",
                format!("{:?}", d.printer_paper),
                "use \"80mm\" or \"58mm\"".to_owned(),
            ));
        }
        if !["cp858", "cp437"].contains(&d.printer_code_page.as_str()) {
            return Err(out_of_range(
                "devices.printer_code_page",
                format!("{:?}", d.printer_code_page),
                "use \"cp858\" or \"cp437\"".to_owned(),
            ));
        }
        if ![2, 5].contains(&d.drawer_pin) {
            return Err(out_of_range(
                "devices.drawer_pin",
                format!("{}", d.drawer_pin),
                "drawer connectors use pin 2 or pin 5".to_owned(),
            ));
        }
        range(
            "devices.drawer_pulse_ms",
            u32::from(d.drawer_pulse_ms),
            2,
            510,
            "drawer kick pulse in ms",
        )?;
        range(
            "devices.drawer_left_open_s",
            d.drawer_left_open_s,
            5,
            3600,
            "seconds before a drawer-left-open alert",
        )?;
        range(
            "devices.scanner_debounce_ms",
            d.scanner_debounce_ms,
            0,
            5000,
            "ms within which a repeated code is ignored",
        )?;
        if self.hub.listen.parse::<SocketAddr>().is_err() {
            return Err(out_of_range(
                "hub.listen",
                format!("{:?} is not a socket address", self.hub.listen),
                "use IP:PORT, e.g. \"0.0.0.0:7443\" or \"[::]:7443\"".to_owned(),
            ));
        }
        range(
            "hub.offline_alert_min",
            self.hub.offline_alert_min,
            1,
            10_080,
            "minutes a terminal may be out of touch before the hub alerts",
        )?;
        if let Some(hub) = &self.sync.hub {
            if !looks_like_host_port(hub) {
                return Err(out_of_range(
                    "sync.hub",
                    format!("{hub:?} is not HOST:PORT"),
                    "use HOST:PORT with a port 1..=65535, e.g. \"hub.local:7443\" or \
                     \"192.168.1.10:7443\"; remove the key if the terminal is not enrolled yet"
                        .to_owned(),
                ));
            }
        }
        if self.backup.daily_time().is_none() {
            return Err(out_of_range(
                "backup.daily_at",
                format!("{:?} is not a time of day", self.backup.daily_at),
                "use HH:MM in 24-hour local time, e.g. \"02:30\"".to_owned(),
            ));
        }
        let a = &self.alerts;
        for (key, value, min, max, what) in [
            (
                "alerts.low_stock_units",
                a.low_stock_units,
                0,
                100_000,
                "units on hand at which stock is low",
            ),
            (
                "alerts.low_stock_cover_days",
                a.low_stock_cover_days,
                0,
                365,
                "days of cover below which stock is low",
            ),
            (
                "alerts.cover_window_days",
                a.cover_window_days,
                1,
                365,
                "days the rate of sale is averaged over",
            ),
            (
                "alerts.void_rate_pct",
                a.void_rate_pct,
                1,
                100,
                "percent of a cashier's sales voided",
            ),
            (
                "alerts.refund_rate_pct",
                a.refund_rate_pct,
                1,
                100,
                "percent of a cashier's sales refunded",
            ),
            (
                "alerts.anomaly_min_sales",
                a.anomaly_min_sales,
                1,
                10_000,
                "sales before a cashier's rates are judged",
            ),
            (
                "alerts.backup_max_age_h",
                a.backup_max_age_h,
                0,
                720,
                "hours without a successful backup",
            ),
            (
                "alerts.disk_full_pct",
                a.disk_full_pct,
                50,
                99,
                "percent of the data partition in use",
            ),
        ] {
            range(key, value, min, max, what)?;
        }
        for (key, value) in [
            ("backup.keep_hourly", self.backup.keep_hourly),
            ("backup.keep_daily", self.backup.keep_daily),
            ("backup.keep_monthly", self.backup.keep_monthly),
        ] {
            range(key, value, 0, 1000, "backups to keep")?;
        }
        if !self.backup.offsite.is_empty()
            && (!self.backup.offsite.starts_with("sftp://")
                || self.backup.offsite_identity.as_os_str().is_empty()
                || self.backup.offsite_known_hosts.as_os_str().is_empty())
        {
            return Err(out_of_range(
                "backup.offsite",
                format!(
                    "{:?} needs sftp:// and both offsite key files",
                    self.backup.offsite
                ),
                "use sftp://USER@HOST[:PORT]/DIR and set offsite_identity (this box's SSH key) \
                 and offsite_known_hosts (the server's pinned host key)"
                    .to_owned(),
            ));
        }
        if !self.backup.key_file.as_os_str().is_empty()
            && !self.backup.passphrase_file.as_os_str().is_empty()
        {
            return Err(out_of_range(
                "backup.passphrase_file",
                "both key_file and passphrase_file are set".to_owned(),
                "set only one of them".to_owned(),
            ));
        }
        range(
            "sync.retry_max_s",
            self.sync.retry_max_s,
            1,
            3600,
            "longest wait in seconds between attempts to reach the hub",
        )?;
        Ok(())
    }
}

/// `host:port` with a non-empty host without whitespace (IPv6 in brackets) and a port 1..=65535.
fn looks_like_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    };
    host_ok && port_ok
}

/// Joins a possibly multi-line message into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based (line, column) of the start of `span`, column counted in characters.
fn span_position(
    text: &str,
    span: Option<std::ops::Range<usize>>,
) -> (Option<usize>, Option<usize>) {
    match span {
        Some(span) => {
            let (line, column) = line_col(text, span.start);
            (Some(line), Some(column))
        }
        None => (None, None),
    }
}

/// 1-based (line, column) of byte `offset` in `text`; column counted in characters.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// One line; a duplicate key is named (the parser's message alone does not say which).
fn describe_syntax_error(text: &str, error: &toml::de::Error) -> String {
    let message = one_line(error.message());
    let key = error
        .span()
        .and_then(|span| text.get(span))
        .map(str::trim)
        .filter(|key| !key.is_empty() && !key.contains('\n'));
    match key {
        Some(key) if message == "duplicate key" => format!("{message} `{key}`"),
        _ => message,
    }
}

/// Field names of each table, used to name the table in "unknown key" errors.
const TABLES: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "device", "log", "store", "hub", "sync", "auth", "sale", "devices", "backup", "alerts",
        ],
    ),
    (
        "devices",
        &[
            "printer",
            "printer_paper",
            "printer_code_page",
            "usb_printers",
            "printer_logo",
            "receipt_barcode",
            "drawer",
            "drawer_pin",
            "drawer_pulse_ms",
            "drawer_left_open_s",
            "scanner",
            "scanner_prefix",
            "scanner_suffix",
            "scanner_debounce_ms",
            "display",
        ],
    ),
    (
        "sale",
        &[
            "pricing",
            "currency",
            "cash_rounding",
            "discount_max_percent",
            "discount_max_amount",
            "receipt_header",
            "receipt_footer",
            "price_prefixes",
            "weight_prefixes",
            "reasons",
        ],
    ),
    (
        "sale.reasons",
        &[
            "void",
            "post_void",
            "refund",
            "price_override",
            "discount",
            "no_sale",
            "paid_in_out",
            "stock_adjust",
        ],
    ),
    ("device", &["data_dir"]),
    ("log", &["level", "json"]),
    (
        "store",
        &["checkpoint_every", "busy_timeout_ms", "max_db_size_mb"],
    ),
    ("hub", &["listen", "offline_alert_min"]),
    (
        "alerts",
        &[
            "low_stock_units",
            "low_stock_cover_days",
            "cover_window_days",
            "void_rate_pct",
            "refund_rate_pct",
            "anomaly_min_sales",
            "backup_max_age_h",
            "disk_full_pct",
        ],
    ),
    ("sync", &["hub", "retry_max_s"]),
    (
        "backup",
        &[
            "dir",
            "key_file",
            "passphrase_file",
            "scheduled",
            "daily_at",
            "hourly",
            "keep_hourly",
            "keep_daily",
            "keep_monthly",
            "offsite",
            "offsite_identity",
            "offsite_known_hosts",
        ],
    ),
    (
        "auth",
        &[
            "max_failures",
            "lockout_base_s",
            "lockout_max_s",
            "idle_lock_s",
            "session_max_h",
            "password_min_length",
            "password_history",
            "mfa_roles",
            "credential_max_age_days",
            "anomaly_voids_per_shift",
            "anomaly_refunds_per_shift",
            "anomaly_pin_failures",
        ],
    ),
];

/// Rewrites a serde/toml schema error into one line that names the key and its table.
fn describe_schema_error(text: &str, error: &toml::de::Error) -> String {
    let mut message = one_line(error.message());
    // "expected struct StoreSection" names a Rust type; say which TOML table is expected.
    for (rust, table) in [
        ("DeviceSection", "device"),
        ("LogSection", "log"),
        ("StoreSection", "store"),
        ("HubSection", "hub"),
        ("SyncSection", "sync"),
    ] {
        let from = format!("expected struct {rust}");
        if message.ends_with(&from) {
            message = message.replace(&from, &format!("expected a table [{table}]"));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde: "unknown field `x`, expected `a` or `b`" / "expected one of `a`, `b`, `c`"
        let (name, expected_part) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = expected_part.split('`').skip(1).step_by(2).collect();
        let table = TABLES
            .iter()
            .find(|(_, fields)| *fields == expected.as_slice())
            .map(|(table, _)| *table);
        let on_header_line = error.span().is_some_and(|span| {
            let (line, _) = line_col(text, span.start);
            text.lines()
                .nth(line - 1)
                .is_some_and(|l| l.trim_start().starts_with('['))
        });
        let what = match table {
            Some("") if on_header_line => format!("unknown section `[{name}]`"),
            Some("") => format!("unknown key `{name}` at top level"),
            Some(table) => format!("unknown key `{name}` in [{table}]"),
            None => format!("unknown key `{name}`"),
        };
        let expected = if expected.is_empty() {
            "no keys are allowed here".to_owned()
        } else {
            format!("expected one of {}", expected.join(", "))
        };
        return format!("{what}; {expected}");
    }
    match error.span().and_then(|span| key_at(text, span.start)) {
        Some(key) => format!("{message} for key {key}"),
        None => message,
    }
}

/// The key whose value starts at byte `offset` (the text before `=` on that line), rendered as
/// `` `key` in [table] `` when a `[table]` header precedes it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let (line_no, _) = line_col(text, offset);
    let line_start = text
        .get(..offset.min(text.len()))?
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let prefix = text.get(line_start..offset.min(text.len()))?;
    let (key, _) = prefix.rsplit_once('=')?;
    // In an inline table (`store = { busy_timeout_ms = "x" }`) the key follows `{` or `,`.
    let key = key.rsplit(['{', ',']).next().unwrap_or(key);
    let key: String = key
        .trim()
        .split('.')
        .map(|part| part.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".");
    if key.is_empty() {
        return None;
    }
    let table = text
        .lines()
        .take(line_no - 1)
        .filter_map(table_header)
        .last();
    Some(match table {
        Some(table) => format!("`{key}` in [{table}]"),
        None => format!("`{key}`"),
    })
}

/// `Some("store")` for a line `[store]` (optionally followed by a comment).
fn table_header(line: &str) -> Option<&str> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?;
    if inner.starts_with('[') {
        return None;
    }
    let (name, rest) = inner.split_once(']')?;
    let rest = rest.trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return None;
    }
    Some(name.trim())
}

/// 1-based (line, column) of the dotted key `section.key`: `key` inside `[section]`, or
/// `section.key` at top level.
fn find_key(text: &str, dotted: &str) -> (Option<usize>, Option<usize>) {
    let Some((section, key)) = dotted.split_once('.') else {
        return (None, None);
    };
    let starts_key = |line: &str, key: &str| {
        let trimmed = line.trim_start();
        trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
            .then(|| line.chars().count() - trimmed.chars().count() + 1)
    };
    let mut current: Option<&str> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = table_header(line) {
            current = Some(name);
            continue;
        }
        let found = match current {
            Some(name) if name == section => starts_key(line, key),
            None => starts_key(line, dotted),
            Some(_) => None,
        };
        if let Some(column) = found {
            return (Some(i + 1), Some(column));
        }
    }
    (None, None)
}

/// The shape of a BCP 47 tag: a 2–3 letter language, then subtags of 2–8 letters or digits
/// ("en-GB", "de-AT", "sr-Latn-RS"). Whether data exists for it is the UI's question.
fn is_locale_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}
