//! Which bundle may go onto this box: made for it (compatible string) and strictly newer than the
//! running image (semver precedence). The same rule runs in `pos update verify|apply` and in
//! RAUC's `pre-install` handler, so a plain `rauc install` cannot downgrade either.
//!
//! Versions compare by semver precedence, build metadata ignored (`1.2.4+b7` is the same
//! release as `1.2.4+b8`): RAUC's own `min-bundle-version` (rauc ≥ 1.11, not in Debian 12's 1.8)
//! compares the same way.

use std::cmp::Ordering;

use semver::Version;
use thiserror::Error;

/// The running image, from /etc/os-release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningImage {
    /// `IMAGE_ID=` (3plugpos on the appliance), if present.
    pub id: Option<String>,
    /// `IMAGE_VERSION=`.
    pub version: Version,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OsReleaseError {
    #[error("it has no IMAGE_VERSION= line (is this a 3PlugPOS image?)")]
    NoVersion,
    #[error("IMAGE_VERSION={value} is not a version like 1.2.3: {reason}")]
    BadVersion { value: String, reason: String },
}

/// Reads `IMAGE_ID` and `IMAGE_VERSION` from the text of an os-release file (shell-style
/// `KEY=value`, the value possibly in single or double quotes).
pub fn parse_os_release(text: &str) -> Result<RunningImage, OsReleaseError> {
    let mut id = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "IMAGE_ID" => id = Some(value.to_owned()),
            "IMAGE_VERSION" => version = Some(value.to_owned()),
            _ => {}
        }
    }
    let value = version.ok_or(OsReleaseError::NoVersion)?;
    let version = parse_version(&value).map_err(|reason| OsReleaseError::BadVersion {
        value: value.clone(),
        reason,
    })?;
    Ok(RunningImage { id, version })
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// A semver version; a leading `v` is accepted because release tags are often written so.
pub fn parse_version(text: &str) -> Result<Version, String> {
    let t = text.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    Version::parse(t).map_err(|e| e.to_string())
}

/// What a bundle says about itself (`[update]` of its manifest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestUpdate {
    pub compatible: Option<String>,
    pub version: Option<String>,
    pub build: Option<String>,
}

/// The `[update]` section of a `manifest.raucm` (a GLib key file). RAUC 1.8 passes its system
/// handlers no `RAUC_MF_*` variables (only bundle hooks get them), but it does pass
/// `RAUC_BUNDLE_MOUNT_POINT`, the mounted, already verified bundle that holds this file.
pub fn parse_manifest(text: &str) -> ManifestUpdate {
    let mut out = ManifestUpdate::default();
    let mut in_update = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_update = line == "[update]";
            continue;
        }
        if !in_update {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = Some(value.trim().to_owned());
            match key.trim() {
                "compatible" => out.compatible = value,
                "version" => out.version = value,
                "build" => out.build = value,
                _ => {}
            }
        }
    }
    out
}

/// Why a bundle may not be installed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("this bundle is for \"{bundle}\", not for this box (\"{ours}\"); do not install it")]
    Incompatible { bundle: String, ours: String },
    #[error("the bundle has no version in its manifest; it was not made by the 3PlugPOS release process")]
    NoVersion,
    #[error("the bundle's version \"{value}\" is not a version like 1.2.4: {reason}")]
    BadVersion { value: String, reason: String },
    #[error("version {installed} is already installed (the bundle holds {bundle})")]
    AlreadyInstalled { bundle: Version, installed: Version },
    #[error("downgrade refused: the bundle holds {bundle}, older than the installed {installed}")]
    Downgrade { bundle: Version, installed: Version },
}

/// The rule: `compatible` equal to ours, version strictly newer than the installed one. Returns
/// the bundle's version.
pub fn check_update(
    installed: &Version,
    ours: &str,
    bundle_compatible: &str,
    bundle_version: Option<&str>,
) -> Result<Version, Refusal> {
    if bundle_compatible != ours {
        return Err(Refusal::Incompatible {
            bundle: bundle_compatible.to_owned(),
            ours: ours.to_owned(),
        });
    }
    let value = bundle_version
        .filter(|v| !v.trim().is_empty())
        .ok_or(Refusal::NoVersion)?;
    let bundle = parse_version(value).map_err(|reason| Refusal::BadVersion {
        value: value.to_owned(),
        reason,
    })?;
    match bundle.cmp_precedence(installed) {
        Ordering::Greater => Ok(bundle),
        Ordering::Equal => Err(Refusal::AlreadyInstalled {
            bundle,
            installed: installed.clone(),
        }),
        Ordering::Less => Err(Refusal::Downgrade {
            bundle,
            installed: installed.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::COMPATIBLE;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn os_release_of_the_image() {
        let text =
            "PRETTY_NAME=\"3PlugPOS 1.2.3\"\nID=debian\nIMAGE_ID=3plugpos\nIMAGE_VERSION=1.2.3\n";
        let r = parse_os_release(text).unwrap();
        assert_eq!(r.id.as_deref(), Some("3plugpos"));
        assert_eq!(r.version, v("1.2.3"));
        let quoted = parse_os_release("IMAGE_VERSION='2.0.0-rc.1'\n").unwrap();
        assert_eq!(quoted.version, v("2.0.0-rc.1"));
        assert_eq!(
            parse_os_release("ID=debian\n"),
            Err(OsReleaseError::NoVersion)
        );
        assert!(matches!(
            parse_os_release("IMAGE_VERSION=1.2\n"),
            Err(OsReleaseError::BadVersion { .. })
        ));
    }

    #[test]
    fn manifest_as_the_pre_install_handler_finds_it() {
        let text = include_str!("../tests/fixtures/bundle-manifest.raucm");
        let m = parse_manifest(text);
        assert_eq!(m.compatible.as_deref(), Some("3plugpos-x86_64"));
        assert_eq!(m.version.as_deref(), Some("1.2.4"));
        assert_eq!(m.build.as_deref(), Some("20261125.1"));
        // Keys of other sections do not leak into [update].
        let m = parse_manifest("[image.rootfs]\nversion=9.9.9\n[update]\ncompatible = x\n");
        assert_eq!(m.version, None);
        assert_eq!(m.compatible.as_deref(), Some("x"));
    }

    #[test]
    fn the_rule() {
        let installed = v("1.2.3");
        assert_eq!(
            check_update(&installed, COMPATIBLE, COMPATIBLE, Some("1.2.4")),
            Ok(v("1.2.4"))
        );
        let same = check_update(
            &installed,
            COMPATIBLE,
            COMPATIBLE,
            Some("1.2.3+other-build"),
        );
        assert!(matches!(same, Err(Refusal::AlreadyInstalled { .. })));
        let old = check_update(&installed, COMPATIBLE, COMPATIBLE, Some("1.2.2")).unwrap_err();
        assert_eq!(
            old.to_string(),
            "downgrade refused: the bundle holds 1.2.2, older than the installed 1.2.3"
        );
        // A pre-release of the installed version is older than it.
        assert!(matches!(
            check_update(&installed, COMPATIBLE, COMPATIBLE, Some("1.2.3-rc.1")),
            Err(Refusal::Downgrade { .. })
        ));
        assert!(matches!(
            check_update(&installed, COMPATIBLE, "3plugpos-aarch64", Some("9.0.0")),
            Err(Refusal::Incompatible { .. })
        ));
        assert_eq!(
            check_update(&installed, COMPATIBLE, COMPATIBLE, None),
            Err(Refusal::NoVersion)
        );
        assert!(matches!(
            check_update(&installed, COMPATIBLE, COMPATIBLE, Some("next")),
            Err(Refusal::BadVersion { .. })
        ));
    }

    fn version() -> impl Strategy<Value = Version> {
        (0u64..4, 0u64..4, 0u64..4, prop::option::of(0u64..3)).prop_map(|(a, b, c, pre)| {
            let mut ver = Version::new(a, b, c);
            if let Some(p) = pre {
                ver.pre = semver::Prerelease::new(&format!("rc.{p}")).unwrap();
            }
            ver
        })
    }

    proptest! {
        /// Accepted exactly when strictly newer; of two versions at most one direction is
        /// accepted, and never a version over itself.
        #[test]
        fn accepted_iff_strictly_newer(a in version(), b in version()) {
            let ab = check_update(&a, COMPATIBLE, COMPATIBLE, Some(&b.to_string()));
            let ba = check_update(&b, COMPATIBLE, COMPATIBLE, Some(&a.to_string()));
            prop_assert_eq!(ab.is_ok(), b.cmp_precedence(&a) == Ordering::Greater);
            prop_assert!(!(ab.is_ok() && ba.is_ok()));
            if a == b {
                let same = check_update(&a, COMPATIBLE, COMPATIBLE, Some(&b.to_string()));
                prop_assert!(matches!(same, Err(Refusal::AlreadyInstalled { .. })), "same");
            }
        }

        /// Any other compatible string is refused, whatever the version.
        #[test]
        fn other_compatible_always_refused(c in "[a-z0-9-]{1,20}", b in version()) {
            prop_assume!(c != COMPATIBLE);
            let r = check_update(&Version::new(0, 0, 0), COMPATIBLE, &c, Some(&b.to_string()));
            prop_assert!(matches!(r, Err(Refusal::Incompatible { .. })), "incompatible");
        }
    }
}
