//! System update rules of 3PlugPOS, no IO (issue 11). The appliance updates through RAUC: signed
//! bundles are installed into the other of two root file system slots (A/B) and booted on trial;
//! a health check after that boot makes the slot permanent or sends the box back.
//!
//! - [`bundle`]: which bundle may be installed over the running image (compatible string, semver
//!   strictly newer), `/etc/os-release` and the bundle manifest as RAUC's handlers see it.
//! - [`rauc`]: the shapes of `rauc info`/`rauc status` JSON and `rauc install` progress lines of
//!   rauc 1.8 (fixtures in `tests/fixtures`, captured from the real tool), and what its failures
//!   mean.
//! - [`health`]: the trial boot's verdict from what `systemctl show` says about the role service.
//!
//! The `pos update` commands (firmware/src/cmd/update.rs) run the programs and call these.

pub mod bundle;
pub mod health;
pub mod rauc;

/// Versions of images and bundles (semver), for callers that compare or print them.
pub use semver::Version;

/// The RAUC compatible string of this appliance: `[system] compatible=` in /etc/rauc/system.conf
/// and `[update] compatible=` in every bundle made for it.
pub const COMPATIBLE: &str = "3plugpos-x86_64";

/// `IMAGE_ID=` in the image's /etc/os-release.
pub const IMAGE_ID: &str = "3plugpos";
