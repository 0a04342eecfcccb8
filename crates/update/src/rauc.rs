//! What rauc 1.8 prints, and what it means: `rauc info --output-format=json`, `rauc status
//! --detailed --output-format=json`, the progress lines of `rauc install`, and the text of its
//! failures. Every shape here was captured from the real tool (`tests/fixtures/README.md`).

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("rauc printed {what} this version of pos cannot read: {source}")]
pub struct ParseError {
    what: &'static str,
    #[source]
    source: serde_json::Error,
}

/// `rauc info --output-format=json BUNDLE`: the manifest, after RAUC checked the signature.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BundleInfo {
    pub compatible: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub build: Option<String>,
    /// One map per image, slot class → image (`[{"rootfs": {...}}]`).
    #[serde(default)]
    pub images: Vec<BTreeMap<String, ImageInfo>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageInfo {
    pub filename: Option<String>,
    pub checksum: Option<String>,
    pub size: Option<u64>,
}

impl BundleInfo {
    /// The images' sizes added up: what gets written into the slot.
    pub fn image_bytes(&self) -> u64 {
        self.images
            .iter()
            .flat_map(|m| m.values())
            .filter_map(|i| i.size)
            .sum()
    }

    /// Slot classes the bundle writes, e.g. `["rootfs"]`.
    pub fn slot_classes(&self) -> Vec<&str> {
        self.images
            .iter()
            .flat_map(|m| m.keys())
            .map(String::as_str)
            .collect()
    }
}

pub fn parse_info(json: &str) -> Result<BundleInfo, ParseError> {
    serde_json::from_str(json).map_err(|source| ParseError {
        what: "bundle information",
        source,
    })
}

/// Why `rauc info` failed, from its output (stderr and stdout: it writes OpenSSL's error queue to
/// stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoFailure {
    /// The signature is not by a key of the keyring, or the signed data changed.
    BadSignature,
    /// Not a bundle at all, or cut short: a damaged copy.
    Damaged,
    /// The bundle file does not exist.
    NoSuchFile,
    /// The keyring (this box's update key) could not be loaded.
    NoKeyring,
    Other,
}

pub fn classify_info_failure(output: &str) -> InfoFailure {
    if output.contains("failed to load CA file") {
        InfoFailure::NoKeyring
    } else if output.contains("signature verification failed")
        || output.contains("CMS routines")
        || output.contains("Verify error")
    {
        InfoFailure::BadSignature
    } else if output.contains("Invalid bundle format")
        || output.contains("not a valid bundle")
        || output.contains("squashfs")
    {
        InfoFailure::Damaged
    } else if output.contains("No such file") {
        InfoFailure::NoSuchFile
    } else {
        InfoFailure::Other
    }
}

/// The last line of rauc's output that is not one of its chatty `rauc-Message:` lines: the
/// error itself, for messages about failures nobody foresaw.
pub fn last_error_line(output: &str) -> Option<&str> {
    output
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with("rauc-Message:"))
}

/// `rauc status --detailed --output-format=json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SystemStatus {
    pub compatible: String,
    /// The booted slot's bootname (`A`).
    pub booted: Option<String>,
    /// The slot the bootloader starts next (`rootfs.1`); null when none is bootable.
    pub boot_primary: Option<String>,
    /// One map per slot, slot name → slot.
    pub slots: Vec<BTreeMap<String, SlotInfo>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlotInfo {
    pub class: String,
    pub device: Option<String>,
    pub bootname: Option<String>,
    /// booted, active or inactive.
    pub state: String,
    /// good or bad, from the bootloader (grub: `X_OK=1` and `X_TRY=0` is good); absent for slots
    /// without a bootname.
    pub boot_status: Option<String>,
    /// With `--detailed`.
    pub slot_status: Option<SlotStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlotStatus {
    pub bundle: Option<BundleStamp>,
    pub installed: Option<Stamp>,
    pub activated: Option<Stamp>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BundleStamp {
    pub compatible: Option<String>,
    pub version: Option<String>,
    pub build: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Stamp {
    pub timestamp: Option<String>,
    pub count: Option<u64>,
}

pub fn parse_status(json: &str) -> Result<SystemStatus, ParseError> {
    serde_json::from_str(json).map_err(|source| ParseError {
        what: "a system status",
        source,
    })
}

/// One slot, flattened for people and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// `rootfs.0`.
    pub name: String,
    pub class: String,
    /// `A`.
    pub bootname: Option<String>,
    pub booted: bool,
    /// The slot the bootloader starts next.
    pub primary: bool,
    /// `Some(true)` good, `Some(false)` bad.
    pub good: Option<bool>,
    /// Version of the bundle RAUC installed into it (none for the slot flashed at the factory).
    pub version: Option<String>,
    pub build: Option<String>,
    pub installed_at: Option<String>,
}

impl SystemStatus {
    /// The slots in name order (rauc prints them in hash order).
    pub fn slot_list(&self) -> Vec<Slot> {
        let mut out: Vec<Slot> = self
            .slots
            .iter()
            .flat_map(|m| m.iter())
            .map(|(name, s)| {
                let bundle = s.slot_status.as_ref().and_then(|st| st.bundle.as_ref());
                Slot {
                    name: name.clone(),
                    class: s.class.clone(),
                    bootname: s.bootname.clone(),
                    booted: s.state == "booted",
                    primary: self.boot_primary.as_deref() == Some(name.as_str()),
                    good: s.boot_status.as_deref().map(|b| b == "good"),
                    version: bundle.and_then(|b| b.version.clone()),
                    build: bundle.and_then(|b| b.build.clone()),
                    installed_at: s
                        .slot_status
                        .as_ref()
                        .and_then(|st| st.installed.as_ref())
                        .and_then(|i| i.timestamp.clone()),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The root file system slot we run from.
    pub fn booted_slot(&self) -> Option<Slot> {
        self.slot_list()
            .into_iter()
            .find(|s| s.booted || (s.bootname.is_some() && s.bootname == self.booted))
    }

    /// The other bootable slot of the same class: where an update goes, where a rollback goes.
    pub fn other_slot(&self) -> Option<Slot> {
        let booted = self.booted_slot()?;
        self.slot_list()
            .into_iter()
            .find(|s| s.class == booted.class && s.name != booted.name && s.bootname.is_some())
    }

    /// The slot the bootloader starts next.
    pub fn primary_slot(&self) -> Option<Slot> {
        self.slot_list().into_iter().find(|s| s.primary)
    }
}

/// The `rauc.slot=A` the bootloader puts on the kernel command line.
pub fn slot_from_cmdline(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix("rauc.slot="))
        .filter(|s| !s.is_empty())
}

/// A line `rauc install` prints while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallLine<'a> {
    /// ` 40% Checking bundle done.`
    Progress { percent: u8, message: &'a str },
    /// `LastError: Pre-install handler error: ...` (after `100% Installing failed.`).
    LastError(&'a str),
    /// `installing`, `idle`, `Installing \`...\` succeeded`.
    Other(&'a str),
}

pub fn parse_install_line(line: &str) -> InstallLine<'_> {
    let trimmed = line.trim();
    if let Some(e) = trimmed.strip_prefix("LastError:") {
        return InstallLine::LastError(e.trim());
    }
    if let Some((num, rest)) = trimmed.split_once("% ") {
        if let Ok(percent) = num.parse::<u8>() {
            if percent <= 100 {
                return InstallLine::Progress {
                    percent,
                    message: rest.trim(),
                };
            }
        }
    }
    InstallLine::Other(trimmed)
}

/// A `rauc install` failure in words for the person at the box.
pub fn explain_install_error(last_error: &str) -> String {
    if last_error.contains("Pre-install handler") {
        format!(
            "this box's own update check refused the bundle ({last_error}); run `pos update \
             verify BUNDLE` to see why"
        )
    } else if last_error.contains("Compatible mismatch") {
        format!("the bundle is not for this box ({last_error})")
    } else if last_error.contains("signature") || last_error.contains("CMS") {
        format!(
            "the bundle's signature does not match this shop's update key ({last_error}); do \
             not install it"
        )
    } else if last_error.contains("verity") || last_error.contains("Input/output error") {
        format!("the bundle is damaged ({last_error}); copy it again")
    } else {
        last_error.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const INFO: &str = include_str!("../tests/fixtures/info-1.2.4-verity.json");
    const AFTER_INSTALL: &str = include_str!("../tests/fixtures/status-A-booted-B-installed.json");
    const TRIAL: &str = include_str!("../tests/fixtures/status-B-trial.json");
    const GOOD: &str = include_str!("../tests/fixtures/status-B-good.json");

    #[test]
    fn info() {
        let i = parse_info(INFO).unwrap();
        assert_eq!(i.compatible, "3plugpos-x86_64");
        assert_eq!(i.version.as_deref(), Some("1.2.4"));
        assert_eq!(i.build.as_deref(), Some("20261125.1"));
        assert_eq!(i.image_bytes(), 65536);
        assert_eq!(i.slot_classes(), ["rootfs"]);
        let nov = parse_info(include_str!("../tests/fixtures/info-no-version.json")).unwrap();
        assert_eq!(nov.version, None);
        let arm = parse_info(include_str!("../tests/fixtures/info-aarch64.json")).unwrap();
        assert_eq!(arm.compatible, "3plugpos-aarch64");
        assert!(parse_info("not json").is_err());
    }

    #[test]
    fn info_failures() {
        let f = |s: &str| classify_info_failure(s);
        use InfoFailure::*;
        assert_eq!(
            f(include_str!("../tests/fixtures/info-other-ca.stderr")),
            BadSignature
        );
        let flipped = include_str!("../tests/fixtures/info-flipped-signature.stderr");
        assert_eq!(f(flipped), BadSignature);
        let payload = include_str!("../tests/fixtures/info-flipped-payload-plain.stderr");
        assert_eq!(f(payload), BadSignature);
        assert_eq!(
            f(include_str!("../tests/fixtures/info-truncated.stderr")),
            Damaged
        );
        assert_eq!(
            f(include_str!("../tests/fixtures/info-missing-file.stderr")),
            NoSuchFile
        );
        let nokey = include_str!("../tests/fixtures/info-missing-keyring.stderr");
        assert_eq!(f(nokey), NoKeyring);
        assert_eq!(f("something new"), Other);
        assert_eq!(
            last_error_line(include_str!("../tests/fixtures/info-truncated.stderr")),
            Some("Invalid bundle format: Signature size (6847949218442668735) exceeds bundle size")
        );
    }

    #[test]
    fn status_after_an_install() {
        let s = parse_status(AFTER_INSTALL).unwrap();
        let booted = s.booted_slot().unwrap();
        assert_eq!(
            (booted.name.as_str(), booted.bootname.as_deref()),
            ("rootfs.0", Some("A"))
        );
        assert_eq!(booted.good, Some(true));
        // The factory-flashed slot has no bundle record.
        assert_eq!(booted.version, None);
        let other = s.other_slot().unwrap();
        assert_eq!(other.bootname.as_deref(), Some("B"));
        assert_eq!(other.version.as_deref(), Some("1.2.4"));
        assert_eq!(other.installed_at.as_deref(), Some("2026-11-25T18:32:31Z"));
        assert!(other.primary);
        assert_eq!(s.primary_slot().unwrap().name, "rootfs.1");
        let names: Vec<_> = s.slot_list().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["rootfs.0", "rootfs.1"]);
    }

    #[test]
    fn status_on_trial_then_marked_good() {
        let trial = parse_status(TRIAL).unwrap();
        let b = trial.booted_slot().unwrap();
        assert_eq!(b.bootname.as_deref(), Some("B"));
        assert_eq!(b.good, Some(false));
        assert_eq!(trial.other_slot().unwrap().good, Some(true));
        let good = parse_status(GOOD).unwrap();
        assert_eq!(good.booted_slot().unwrap().good, Some(true));
        assert!(good.booted_slot().unwrap().primary);
    }

    #[test]
    fn cmdline() {
        assert_eq!(
            slot_from_cmdline("BOOT_IMAGE=/vmlinuz root=/dev/sda2 rauc.slot=B quiet"),
            Some("B")
        );
        assert_eq!(slot_from_cmdline("quiet rauc.slot="), None);
        assert_eq!(slot_from_cmdline("quiet"), None);
    }

    #[test]
    fn install_lines() {
        let out = include_str!("../tests/fixtures/install-ok.stdout");
        let progress: Vec<u8> = out
            .lines()
            .filter_map(|l| match parse_install_line(l) {
                InstallLine::Progress { percent, .. } => Some(percent),
                _ => None,
            })
            .collect();
        assert_eq!(progress.first(), Some(&0));
        assert_eq!(progress.last(), Some(&100));
        assert!(progress.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            parse_install_line(" 90% Copying image to rootfs.1"),
            InstallLine::Progress {
                percent: 90,
                message: "Copying image to rootfs.1"
            }
        );
        let refused = include_str!("../tests/fixtures/install-preinstall-refused.stdout");
        let last = refused.lines().find_map(|l| match parse_install_line(l) {
            InstallLine::LastError(e) => Some(e),
            _ => None,
        });
        assert_eq!(
            last,
            Some("Pre-install handler error: Child process exited with code 1")
        );
        assert!(explain_install_error(last.unwrap()).contains("own update check refused"));
        assert_eq!(
            parse_install_line("installing"),
            InstallLine::Other("installing")
        );
    }
}
