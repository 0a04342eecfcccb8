//! Behaviour of `pos-config`: shipped defaults, error messages and validation.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::path::{Path, PathBuf};

use pos_config::{Config, ConfigError, LogLevel};

const TERMINAL_TOML: &str = include_str!("../../../config/terminal.toml");
const HUB_TOML: &str = include_str!("../../../config/hub.toml");

fn origin() -> PathBuf {
    PathBuf::from("/etc/pos/terminal.toml")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, &origin())
}

/// Messages are for humans reading a log line: never more than one line.
fn assert_one_line(message: &str) {
    assert!(!message.contains('\n'), "message spans lines: {message:?}");
}

#[test]
fn shipped_terminal_file_equals_defaults() {
    let config = Config::from_toml_str(TERMINAL_TOML, Path::new("config/terminal.toml")).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn shipped_hub_file_equals_defaults() {
    let config = Config::from_toml_str(HUB_TOML, Path::new("config/hub.toml")).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn shipped_files_list_every_setting() {
    // Serialising the defaults yields every key (sync.hub is None and so absent); each must appear
    // in both shipped files as `key = value`, the optional sync.hub as a commented example.
    let defaults = toml::to_string(&Config::default()).unwrap();
    for (name, file) in [("terminal.toml", TERMINAL_TOML), ("hub.toml", HUB_TOML)] {
        for line in defaults.lines().filter(|l| l.contains(" = ")) {
            assert!(
                file.lines().any(|l| l.trim() == line.trim()),
                "{name} lacks `{line}`"
            );
        }
        assert!(
            file.lines()
                .any(|l| l.trim_start().starts_with("# hub = \"")),
            "{name} lacks the commented sync.hub example"
        );
        assert!(
            file.to_lowercase()
                .contains("unknown keys and sections are"),
            "{name} header must say unknown keys are refused"
        );
    }
    assert!(TERMINAL_TOML.contains("/etc/pos/terminal.toml"));
    assert!(HUB_TOML.contains("/etc/pos/hub.toml"));
}

#[test]
fn documented_defaults() {
    let c = Config::default();
    assert_eq!(c.device.data_dir, PathBuf::from("/var/lib/pos"));
    assert_eq!(c.log.level, LogLevel::Info);
    assert!(!c.log.json);
    assert_eq!(c.store.checkpoint_every, 1000);
    assert_eq!(c.store.busy_timeout_ms, 5000);
    assert_eq!(c.hub.listen, "0.0.0.0:7443");
    assert_eq!(c.sync.hub, None);
    assert_eq!(c.sync.retry_max_s, 60);
}

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(parse("# only a comment\n\n").unwrap(), Config::default());
}

#[test]
fn missing_keys_and_sections_take_defaults() {
    let config =
        parse("[store]\nbusy_timeout_ms = 250\n\n[sync]\nhub = \"hub.local:7443\"\n").unwrap();
    let mut expected = Config::default();
    expected.store.busy_timeout_ms = 250;
    expected.sync.hub = Some("hub.local:7443".to_owned());
    assert_eq!(config, expected);
}

#[test]
fn all_values_are_read() {
    let text = r#"
[device]
data_dir = "/data/pos"
[log]
level = "trace"
json = true
[store]
checkpoint_every = 1
busy_timeout_ms = 60000
[hub]
listen = "[::1]:9000"
[sync]
hub = "[fe80::1]:7443"
retry_max_s = 3600
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.device.data_dir, PathBuf::from("/data/pos"));
    assert_eq!(c.log.level, LogLevel::Trace);
    assert!(c.log.json);
    assert_eq!(c.store.checkpoint_every, 1);
    assert_eq!(c.store.busy_timeout_ms, 60000);
    assert_eq!(c.hub.listen, "[::1]:9000");
    assert_eq!(c.sync.hub.as_deref(), Some("[fe80::1]:7443"));
    assert_eq!(c.sync.retry_max_s, 3600);
}

#[test]
fn serialised_config_reads_back() {
    let mut c = Config::default();
    c.sync.hub = Some("hub.local:7443".to_owned());
    c.log.level = LogLevel::Warn;
    let text = toml::to_string(&c).unwrap();
    assert_eq!(parse(&text).unwrap(), c);
}

#[test]
fn unknown_key_names_key_section_file_and_line() {
    let text = "# header\n\n[store]\n# comment\nbusy_timeout_ms = 10\n\nchekpoint_every = 5\n";
    let err = parse(text).unwrap_err();
    let msg = err.to_string();
    assert_eq!(
        msg,
        "/etc/pos/terminal.toml:7:1: unknown key `chekpoint_every` in [store]; expected one of \
         checkpoint_every, busy_timeout_ms, max_db_size_mb (hint: see config/terminal.toml for every setting and \
         its default)"
    );
    assert!(matches!(
        err,
        ConfigError::Invalid {
            line: Some(7),
            column: Some(1),
            ..
        }
    ));
}

#[test]
fn unknown_key_in_shipped_file_reports_its_line() {
    // Take the shipped file, misspell one key, and check the reported line is that key's line.
    let (index, _) = TERMINAL_TOML
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with("retry_max_s"))
        .unwrap();
    let text = TERMINAL_TOML.replacen("retry_max_s", "retry_max_secs", 1);
    let msg = parse(&text).unwrap_err().to_string();
    assert_one_line(&msg);
    let expected = format!(
        "/etc/pos/terminal.toml:{}:1: unknown key `retry_max_secs` in [sync]",
        index + 1
    );
    assert!(msg.starts_with(&expected), "{msg}");
}

#[test]
fn unknown_section_is_refused() {
    let err = parse("[store]\nbusy_timeout_ms = 1\n[stroe]\nx = 1\n").unwrap_err();
    let msg = err.to_string();
    assert_one_line(&msg);
    assert!(msg.starts_with("/etc/pos/terminal.toml:3:"), "{msg}");
    assert!(msg.contains("unknown section `[stroe]`"), "{msg}");
    assert!(msg.contains("device, log, store, hub, sync"), "{msg}");
}

#[test]
fn section_of_wrong_type_is_named_as_table() {
    let msg = parse("log = 3\n").unwrap_err().to_string();
    assert!(
        msg.starts_with(
            "/etc/pos/terminal.toml:1:7: invalid type: integer `3`, expected a table [log] for key `log`"
        ),
        "{msg}"
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    let err = parse("[log]\nlevel = \"info\"\n\n[store]\nbusy_timeout_ms = \"abc\"\n").unwrap_err();
    let msg = err.to_string();
    assert_one_line(&msg);
    assert!(
        msg.starts_with(
            "/etc/pos/terminal.toml:5:19: invalid type: string \"abc\", expected u32 for key \
             `busy_timeout_ms` in [store]"
        ),
        "{msg}"
    );
    assert!(msg.ends_with("(hint: see config/terminal.toml for every setting and its default)"));
    assert!(matches!(err, ConfigError::Invalid { line: Some(5), .. }));
}

#[test]
fn negative_number_is_refused_with_key() {
    let msg = parse("[sync]\nretry_max_s = -1\n").unwrap_err().to_string();
    assert_one_line(&msg);
    assert!(msg.starts_with("/etc/pos/terminal.toml:2:"), "{msg}");
    assert!(msg.contains("`retry_max_s` in [sync]"), "{msg}");
}

#[test]
fn unknown_log_level_lists_valid_ones() {
    let msg = parse("[log]\nlevel = \"verbose\"\n")
        .unwrap_err()
        .to_string();
    assert_one_line(&msg);
    assert!(msg.starts_with("/etc/pos/terminal.toml:2:"), "{msg}");
    assert!(msg.contains("verbose"), "{msg}");
    assert!(msg.contains("trace"), "{msg}");
    assert!(msg.contains("`level` in [log]"), "{msg}");
}

#[test]
fn syntax_error_has_position_and_one_line() {
    let err = parse("[store]\nbusy_timeout_ms = \"unterminated\n").unwrap_err();
    let msg = err.to_string();
    assert_one_line(&msg);
    assert!(
        matches!(err, ConfigError::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
    assert!(msg.starts_with("/etc/pos/terminal.toml:2:"), "{msg}");
    assert!(msg.contains("(hint: "), "{msg}");
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let err = parse("[store]\nbusy_timeout_ms = 1\nbusy_timeout_ms = 2\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: Some(3), .. }),
        "{err:?}"
    );
}

#[test]
fn checkpoint_every_zero_is_out_of_range() {
    let err = parse("[store]\n\ncheckpoint_every = 0\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            &err,
            ConfigError::OutOfRange { line: Some(3), column: Some(1), key, .. }
                if *key == "store.checkpoint_every"
        ),
        "{err:?}"
    );
    assert_eq!(
        msg,
        "/etc/pos/terminal.toml:3:1: invalid value for `store.checkpoint_every`: 0 is out of \
         range (hint: valid range is 1..=1000: events between signed audit checkpoints)"
    );
}

#[test]
fn upper_bounds_are_enforced() {
    assert!(parse("[store]\ncheckpoint_every = 1000\nbusy_timeout_ms = 60000\n").is_ok());
    for (text, key, range) in [
        (
            "[store]\ncheckpoint_every = 1001\n",
            "store.checkpoint_every",
            "1..=1000",
        ),
        (
            "[store]\nbusy_timeout_ms = 60001\n",
            "store.busy_timeout_ms",
            "0..=60000",
        ),
        ("[sync]\nretry_max_s = 0\n", "sync.retry_max_s", "1..=3600"),
        (
            "[backup]\nkeep_daily = 1001\n",
            "backup.keep_daily",
            "0..=1000",
        ),
        (
            "[hub]\noffline_alert_min = 0\n",
            "hub.offline_alert_min",
            "1..=10080",
        ),
        (
            "[sync]\nretry_max_s = 3601\n",
            "sync.retry_max_s",
            "1..=3600",
        ),
        (
            "[alerts]\ndisk_full_pct = 100\n",
            "alerts.disk_full_pct",
            "50..=99",
        ),
        (
            "[alerts]\ncover_window_days = 0\n",
            "alerts.cover_window_days",
            "1..=365",
        ),
        (
            "[alerts]\nvoid_rate_pct = 0\n",
            "alerts.void_rate_pct",
            "1..=100",
        ),
    ] {
        let err = parse(text).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, ConfigError::OutOfRange { key: k, line: Some(2), .. } if *k == key),
            "{text:?}: {err:?}"
        );
        assert!(msg.contains(&format!("valid range is {range}")), "{msg}");
    }
}

#[test]
fn a_backup_time_that_is_no_time_of_day_is_refused_with_the_format() {
    for bad in ["25:00", "2:30", "02:60", "noon"] {
        let err = parse(&format!("[backup]\ndaily_at = \"{bad}\"\n")).unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::OutOfRange {
                    key: "backup.daily_at",
                    line: Some(2),
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("HH:MM"), "{err}");
    }
    assert!(parse("[backup]\ndaily_at = \"23:59\"\n").is_ok());
}

#[test]
fn out_of_range_found_as_dotted_key() {
    let err = parse("store.checkpoint_every = 0\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::OutOfRange { line: Some(1), .. }),
        "{err:?}"
    );
}

#[test]
fn bad_listen_address_is_out_of_range_with_hint() {
    let err = parse("[hub]\n  listen = \"nonsense\"\n").unwrap_err();
    let msg = err.to_string();
    assert_one_line(&msg);
    assert!(
        matches!(&err, ConfigError::OutOfRange { key, line: Some(2), column: Some(3), .. }
            if *key == "hub.listen"),
        "{err:?}"
    );
    assert!(
        msg.starts_with("/etc/pos/terminal.toml:2:3: invalid value for `hub.listen`: \"nonsense\""),
        "{msg}"
    );
    assert!(
        msg.contains("(hint: use IP:PORT, e.g. \"0.0.0.0:7443\""),
        "{msg}"
    );
    // A host name is not a socket address to listen on.
    assert!(parse("[hub]\nlisten = \"localhost:7443\"\n").is_err());
}

#[test]
fn sync_hub_must_look_like_host_port() {
    for good in [
        "hub.local:7443",
        "192.168.1.10:7443",
        "[::1]:7443",
        "hub-1:1",
    ] {
        let text = format!("[sync]\nhub = \"{good}\"\n");
        assert!(parse(&text).is_ok(), "{good} should be accepted");
    }
    for bad in [
        "hub.local",
        "hub.local:",
        ":7443",
        "hub.local:0",
        "hub.local:99999",
        "a b:1",
        "",
    ] {
        let text = format!("[sync]\nhub = \"{bad}\"\n");
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(&err, ConfigError::OutOfRange { key, line: Some(2), .. } if *key == "sync.hub"),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("hint: use HOST:PORT"), "{err}");
    }
}

#[test]
fn missing_file_is_not_found_with_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    for result in [Config::load(&path), Config::load_or_default(Some(&path))] {
        let err = result.unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "config file {} not found (hint: pass --config FILE or copy config/terminal.toml)",
                path.display()
            )
        );
    }
}

#[test]
fn no_path_gives_defaults() {
    assert_eq!(Config::load_or_default(None).unwrap(), Config::default());
}

#[test]
fn load_reads_file_and_reports_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terminal.toml");
    std::fs::write(&path, "[log]\njson = true\n").unwrap();
    let config = Config::load_or_default(Some(&path)).unwrap();
    assert!(config.log.json);

    std::fs::write(&path, "[log]\njsn = true\n").unwrap();
    let msg = Config::load(&path).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "{}:2:1: unknown key `jsn` in [log]",
            path.display()
        )),
        "{msg}"
    );
}

#[test]
fn unreadable_file_is_io_error_with_cause() {
    // A directory cannot be read as a file, whoever runs the test (root ignores permissions).
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert_one_line(&msg);
    assert!(
        msg.starts_with(&format!(
            "cannot read config file {}: ",
            dir.path().display()
        )),
        "{msg}"
    );
    assert!(msg.contains("(hint: "), "{msg}");

    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[device]\ndata_dir = \"/d\xe9\"\n").unwrap();
    assert!(matches!(Config::load(&path), Err(ConfigError::Io { .. })));
}

#[test]
fn column_counts_characters_not_bytes() {
    // "é" is two bytes but one column: the bad value `"x"` starts at byte 38, column 37.
    let err = parse("sync = { hub = \"é:1\", retry_max_s = \"x\" }\n").unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                line: Some(1),
                column: Some(37),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("for key `retry_max_s`"), "{err}");
}

#[test]
fn sale_rules_are_read_and_checked() {
    let c = parse(
        "[sale]\npricing = \"exclusive\"\ncash_rounding = 5\ncurrency = \"CHF\"\n\n[sale.reasons]\nvoid = [\"oops\"]\n",
    )
    .unwrap();
    assert_eq!(c.sale.pricing, pos_config::Pricing::Exclusive);
    assert_eq!(c.sale.cash_rounding, 5);
    assert_eq!(c.sale.reasons.void, vec!["oops".to_string()]);
    // Lists not given keep their defaults.
    assert_eq!(
        c.sale.reasons.refund,
        pos_core::sale::ReasonCodes::default().refund
    );

    let err = parse("[sale]\ncurrency = \"euro\"\n").unwrap_err();
    assert!(err.to_string().contains("ISO 4217"), "{err}");
    assert!(
        matches!(err, ConfigError::OutOfRange { line: Some(2), .. }),
        "{err:?}"
    );
    let err = parse("[sale]\nweight_prefixes = [\"2\"]\n").unwrap_err();
    assert!(err.to_string().contains("two-digit"), "{err}");
    let err = parse("[sale]\ncash_rounding = 0\n").unwrap_err();
    assert!(err.to_string().contains("1..=100"), "{err}");
    let err = parse("[sale.reasons]\nviod = [\"x\"]\n").unwrap_err();
    assert!(err.to_string().contains("viod"), "{err}");
    assert_one_line(&err.to_string());
    let err = parse("[sale]\npricing = \"gross\"\n").unwrap_err();
    assert!(err.to_string().contains("pricing"), "{err}");
}

#[test]
fn locale_must_look_like_a_bcp47_tag() {
    for good in ["en-GB", "de", "de-AT", "sr-Latn-RS"] {
        let cfg = parse(&format!("[device]\nlocale = {good:?}\n")).unwrap();
        assert_eq!(cfg.device.locale, good);
    }
    for bad in ["", "english", "de_DE", "d", "de-", "de-AT-toolongsubtag"] {
        let err = parse(&format!("[device]\nlocale = {bad:?}\n")).unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::OutOfRange {
                    key: "device.locale",
                    line: Some(2),
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
        assert_one_line(&err.to_string());
    }
}

#[test]
fn alert_thresholds_are_read_into_the_rules() {
    let config = parse(
        "[hub]\noffline_alert_min = 12\n\n[alerts]\nlow_stock_units = 2\nvoid_rate_pct = 9\n",
    )
    .unwrap();
    let rules = config.alert_rules();
    assert_eq!(rules.offline_after_min, 12);
    assert_eq!(rules.low_stock_units, 2);
    assert_eq!(rules.void_rate_pct, 9);
    assert_eq!(rules.disk_full_pct, 90);
    assert_eq!(
        Config::default().alert_rules(),
        pos_reports::AlertRules::default()
    );
}
