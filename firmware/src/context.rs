//! What every subcommand shares: the global flags, the loaded config, logging.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use pos_config::Config;
use pos_store::{Store, StoreOptions};

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
    pub fn new(args: &GlobalArgs) -> anyhow::Result<Context> {
        let config = Config::load_or_default(args.config.as_deref())?;
        init_logging(&config);
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

pub fn open_at(dir: &Path, options: StoreOptions) -> anyhow::Result<Store> {
    Store::open(dir, options).with_context(|| format!("cannot open data dir {}", dir.display()))
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("POS_LOG")
        .unwrap_or_else(|_| EnvFilter::new(config.log.level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second initialisation (tests calling twice) is harmless; ignore it.
    let _ = if config.log.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
