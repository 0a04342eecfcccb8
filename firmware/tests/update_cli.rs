//! `pos update ...` as the real binary, with a fake `rauc` and a fake `systemctl` (shell scripts
//! in a temp dir that record their argv and play back output captured from the real rauc 1.8,
//! crates/update/tests/fixtures): verify accepts a newer bundle and refuses a downgrade, the
//! same version, another box's bundle and a bad signature; apply streams rauc's progress and
//! reports the slot; pre-install-check reads what RAUC gives its handler; health marks good and
//! prints the console marker, or marks bad and reboots; status prints the slots.
//!
//! The last test runs the real `rauc` (Debian packages rauc, squashfs-tools, openssl) on a
//! bundle signed by a throwaway CA.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/update/tests/fixtures"
);

const BAD_SIGNATURE: &str = "the bundle's signature does not match this shop's update key: it \
was not made by your 3PlugPOS supplier, or it is damaged; do not install it";

const FAKE_RAUC: &str = r#"#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/rauc.log"
case "$1" in
  info)
    if [ -f "$d/info.stderr" ]; then cat "$d/info.stderr" >&2; exit 1; fi
    echo "rauc-Message: 18:31:53.550: Verified inline signature" >&2
    cat "$d/info.json" ;;
  status)
    case "$2" in
      mark-good|mark-bad) echo "rauc status: marked slot rootfs.X as ${2#mark-}"; exit 0 ;;
    esac
    if [ -f "$d/status.fail" ]; then echo "rauc status: error" >&2; exit 1; fi
    cat "$d/status.json" ;;
  install)
    cat "$d/install.stdout"
    if [ -f "$d/install.fail" ]; then echo "Installing \`$2' failed" >&2; exit 1; fi
    if [ -f "$d/status-after.json" ]; then cp "$d/status-after.json" "$d/status.json"; fi ;;
  *) echo "fake rauc: unexpected $*" >&2; exit 3 ;;
esac
"#;

const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/systemctl.log"
case "$1" in
  show)
    if [ -f "$d/$4.show" ]; then cat "$d/$4.show"; else
      printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\nNRestarts=0\n'
      printf 'ActiveEnterTimestampMonotonic=0\nResult=success\nConditionResult=no\n'
      printf 'ConditionTimestampMonotonic=0\n'
    fi ;;
  reboot) exit 0 ;;
  *) exit 3 ;;
esac
"#;

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    /// The fakes, an os-release with `IMAGE_VERSION=version`, rauc answering `info` with the
    /// fixture `info` and `status` with the fixture `status`.
    fn new(version: &str, info: &str, status: &str) -> Fake {
        let f = Fake {
            dir: tempfile::tempdir().unwrap(),
        };
        f.script("rauc", FAKE_RAUC);
        f.script("systemctl", FAKE_SYSTEMCTL);
        f.os_release(version);
        f.fixture(info, "info.json");
        f.fixture(status, "status.json");
        f.write(
            "bundle.raucb",
            "not really a bundle; the fake rauc does not read it",
        );
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn fixture(&self, fixture: &str, as_name: &str) {
        std::fs::copy(Path::new(FIXTURES).join(fixture), self.path(as_name)).unwrap();
    }

    fn script(&self, name: &str, text: &str) {
        self.write(name, text);
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn os_release(&self, version: &str) {
        self.write(
            "os-release",
            &format!("PRETTY_NAME=\"3PlugPOS\"\nIMAGE_ID=3plugpos\nIMAGE_VERSION={version}\n"),
        );
    }

    fn unit(&self, unit: &str, active: &str, sub: &str, restarts: u32, result: &str) {
        self.write(
            &format!("{unit}.show"),
            &format!(
                "LoadState=loaded\nActiveState={active}\nSubState={sub}\nNRestarts={restarts}\n\
                 ActiveEnterTimestampMonotonic=8123456\nResult={result}\nConditionResult=yes\n\
                 ConditionTimestampMonotonic=8000000\n"
            ),
        );
    }

    fn skipped(&self, unit: &str) {
        self.write(
            &format!("{unit}.show"),
            "LoadState=loaded\nActiveState=inactive\nSubState=dead\nNRestarts=0\n\
             ActiveEnterTimestampMonotonic=0\nResult=success\nConditionResult=no\n\
             ConditionTimestampMonotonic=8000000\n",
        );
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// `pos update CMD --rauc FAKE --os-release FILE [--systemctl FAKE] ARGS...`.
    fn pos(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pos"));
        c.env_remove("POS_DATA_DIR")
            .env_remove("POS_CONFIG")
            .env_remove("RAUC_MF_VERSION")
            .env_remove("RAUC_MF_COMPATIBLE")
            .env_remove("RAUC_BUNDLE_MOUNT_POINT")
            .env_remove("RAUC_UPDATE_SOURCE")
            .arg("update")
            .arg(args[0])
            .arg("--rauc")
            .arg(self.path("rauc"))
            .arg("--os-release")
            .arg(self.path("os-release"));
        if matches!(args[0], "apply" | "health") {
            c.arg("--systemctl").arg(self.path("systemctl"));
        }
        // After the tool flags: pre-install-check takes everything after its first argument
        // as RAUC's handler arguments.
        c.args(&args[1..]);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn bundle(&self) -> String {
        self.path("bundle.raucb").display().to_string()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

const INFO: &str = "info-1.2.4-verity.json";
const AFTER_INSTALL: &str = "status-A-booted-B-installed.json";
const TRIAL_B: &str = "status-B-trial.json";

#[test]
fn verify_accepts_a_newer_bundle_and_shows_what_it_holds() {
    let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
    let o = f.pos(&["verify", &f.bundle()], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = text(&o.stdout);
    assert!(
        out.contains("Version:     1.2.4 (this box runs 1.2.3)"),
        "{out}"
    );
    assert!(out.contains("Compatible:  3plugpos-x86_64"), "{out}");
    assert!(out.contains("Build:       20261125.1"), "{out}");
    assert!(
        out.contains("Contents:    64.0 KiB for the rootfs slot"),
        "{out}"
    );
    assert!(
        out.contains("OK: 1.2.4 can be installed over 1.2.3"),
        "{out}"
    );
    assert_eq!(
        f.log("rauc.log").trim(),
        format!(
            "info --keyring=/etc/rauc/keyring.pem --output-format=json {}",
            f.bundle()
        )
    );
}

#[test]
fn verify_refuses_a_downgrade_naming_both_versions() {
    let f = Fake::new("1.2.5", INFO, AFTER_INSTALL);
    let o = f.pos(&["verify", &f.bundle()], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        text(&o.stderr)
            .contains("downgrade refused: the bundle holds 1.2.4, older than the installed 1.2.5"),
        "{}",
        show(&o)
    );
}

#[test]
fn verify_refuses_the_installed_version() {
    let f = Fake::new("1.2.4", INFO, AFTER_INSTALL);
    let o = f.pos(&["verify", &f.bundle()], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        text(&o.stderr).contains("version 1.2.4 is already installed"),
        "{}",
        show(&o)
    );
}

#[test]
fn verify_refuses_another_boxs_bundle() {
    let f = Fake::new("1.2.3", "info-aarch64.json", AFTER_INSTALL);
    let o = f.pos(&["verify", &f.bundle()], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        text(&o.stderr).contains(
            "this bundle is for \"3plugpos-aarch64\", not for this box (\"3plugpos-x86_64\")"
        ),
        "{}",
        show(&o)
    );
}

#[test]
fn verify_maps_rauc_signature_failures_to_one_clear_message() {
    for stderr in [
        "info-other-ca.stderr",
        "info-flipped-signature.stderr",
        "info-flipped-payload-plain.stderr",
        "info-truncated.stderr",
    ] {
        let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
        f.fixture(stderr, "info.stderr");
        let o = f.pos(&["verify", &f.bundle()], &[]);
        assert_eq!(code(&o), 1, "{stderr}: {}", show(&o));
        assert!(
            text(&o.stderr).contains(BAD_SIGNATURE),
            "{stderr}: {}",
            show(&o)
        );
        assert!(
            text(&o.stdout).is_empty(),
            "nothing about the bundle is shown"
        );
    }
    let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
    f.fixture("info-missing-keyring.stderr", "info.stderr");
    let o = f.pos(&["verify", &f.bundle()], &[]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(text(&o.stderr).contains("update key /etc/rauc/keyring.pem cannot be loaded"));
}

#[test]
fn verify_usb_finds_the_bundle_or_lists_several() {
    let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
    let stick = f.path("stick");
    std::fs::create_dir_all(stick.join("updates")).unwrap();
    std::fs::write(stick.join("updates/3plugpos-1.2.4.raucb"), "x").unwrap();
    let stick_s = stick.display().to_string();
    let o = f.pos(&["verify", "--usb", "--usb-mount", &stick_s], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(f.log("rauc.log").contains("updates/3plugpos-1.2.4.raucb"));
    std::fs::write(stick.join("3plugpos-1.2.5.raucb"), "x").unwrap();
    let o = f.pos(&["verify", "--usb", "--usb-mount", &stick_s], &[]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains("several update bundles"), "{err}");
    assert!(err.contains("1. ") && err.contains("2. "), "{err}");
}

#[test]
fn apply_streams_progress_and_reports_the_slot() {
    let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
    f.fixture("install-ok.stdout", "install.stdout");
    let o = f.pos(&["apply", &f.bundle(), "--yes", "--reboot"], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "Installed 1.2.4 into slot B. It boots on trial at the next restart and becomes \
             permanent after its health check; if that fails the box returns to 1.2.3 by itself."
        ),
        "{out}"
    );
    // Not a terminal: each progress line is copied, in order.
    let err = text(&o.stderr);
    let copying = err.find(" 90% Copying image to rootfs.1").expect(&err);
    let done = err.find("100% Installing done.").expect(&err);
    assert!(copying < done, "{err}");
    let log = f.log("rauc.log");
    assert!(log.contains(&format!("install {}", f.bundle())), "{log}");
    assert_eq!(f.log("systemctl.log").trim(), "reboot");
}

#[test]
fn apply_refuses_a_downgrade_before_installing() {
    let f = Fake::new("1.3.0", INFO, AFTER_INSTALL);
    f.fixture("install-ok.stdout", "install.stdout");
    let o = f.pos(&["apply", &f.bundle(), "--yes", "--reboot"], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(text(&o.stderr).contains("downgrade refused"));
    assert!(
        !f.log("rauc.log").contains("install"),
        "rauc install not run"
    );
    assert!(f.log("systemctl.log").is_empty(), "no reboot");
}

#[test]
fn apply_reports_a_refusal_of_raucs_pre_install_handler() {
    let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
    f.fixture("install-preinstall-refused.stdout", "install.stdout");
    f.write("install.fail", "");
    let o = f.pos(&["apply", &f.bundle(), "--yes", "--reboot"], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        text(&o.stderr).contains("own update check refused"),
        "{}",
        show(&o)
    );
    assert!(f.log("systemctl.log").is_empty(), "no reboot");
}

#[test]
fn apply_without_yes_and_without_a_terminal_asks_for_yes() {
    let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
    let o = f.pos(&["apply", &f.bundle()], &[]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(text(&o.stderr).contains("add --yes"), "{}", show(&o));
    assert!(!f.log("rauc.log").contains("install"));
}

#[test]
fn pre_install_check_reads_the_mounted_bundle_as_rauc_1_8_gives_it() {
    let f = Fake::new("1.2.5", INFO, AFTER_INSTALL);
    let mount = f.path("mnt-bundle");
    std::fs::create_dir(&mount).unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join("bundle-manifest.raucm"),
        mount.join("manifest.raucm"),
    )
    .unwrap();
    let mount_s = mount.display().to_string();
    let env = [
        ("RAUC_BUNDLE_MOUNT_POINT", mount_s.as_str()),
        ("RAUC_CURRENT_BOOTNAME", "A"),
    ];
    // RAUC passes the handler one (empty) argument.
    let o = f.pos(&["pre-install-check", ""], &env);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        text(&o.stderr).contains(
            "update refused by pos: downgrade refused: the bundle holds 1.2.4, older than the \
             installed 1.2.5"
        ),
        "{}",
        show(&o)
    );
    f.os_release("1.2.3");
    let o = f.pos(&["pre-install-check", ""], &env);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        f.log("rauc.log").is_empty(),
        "the handler does not call rauc"
    );
}

#[test]
fn pre_install_check_uses_raucs_manifest_variables_when_set() {
    let f = Fake::new("1.2.4", INFO, AFTER_INSTALL);
    let mf = [
        ("RAUC_MF_COMPATIBLE", "3plugpos-x86_64"),
        ("RAUC_MF_VERSION", "1.2.4"),
    ];
    let o = f.pos(&["pre-install-check"], &mf);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        text(&o.stderr).contains("already installed"),
        "{}",
        show(&o)
    );
    let other = [
        ("RAUC_MF_COMPATIBLE", "someone-else"),
        ("RAUC_MF_VERSION", "9.0.0"),
    ];
    let o = f.pos(&["pre-install-check"], &other);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(text(&o.stderr).contains("not for this box"), "{}", show(&o));
    let o = f.pos(&["pre-install-check"], &[]);
    assert_eq!(code(&o), 2, "nothing to check: {}", show(&o));
}

#[test]
fn health_good_marks_good_and_prints_the_marker() {
    let f = Fake::new("1.2.4", INFO, TRIAL_B);
    f.unit("pos-terminal.service", "active", "running", 0, "success");
    f.skipped("pos-hub.service");
    f.skipped("pos-setup.service");
    let o = f.pos(&["health", "--settle", "0", "--timeout", "5"], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "pos ready (slot B, version 1.2.4)\n");
    assert!(
        f.log("rauc.log").lines().any(|l| l == "status mark-good"),
        "{}",
        f.log("rauc.log")
    );
    assert!(!f.log("systemctl.log").contains("reboot"));
}

#[test]
fn health_bad_marks_bad_and_reboots() {
    let f = Fake::new("1.2.4", INFO, TRIAL_B);
    f.unit("pos-terminal.service", "failed", "failed", 0, "exit-code");
    f.skipped("pos-hub.service");
    let o = f.pos(&["health", "--settle", "0", "--timeout", "5"], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert_eq!(
        text(&o.stdout),
        "pos health check failed: pos-terminal.service failed (exit-code); marking slot B bad \
         and rebooting into the previous system\n"
    );
    let rauc_log = f.log("rauc.log");
    assert!(
        rauc_log.lines().any(|l| l == "status mark-bad"),
        "{rauc_log}"
    );
    assert!(!rauc_log.contains("mark-good"), "{rauc_log}");
    assert_eq!(f.log("systemctl.log").lines().last(), Some("reboot"));
}

#[test]
fn health_times_out_on_a_service_that_never_comes_up() {
    let f = Fake::new("1.2.4", INFO, TRIAL_B);
    f.unit("pos-hub.service", "activating", "start", 0, "success");
    let o = f.pos(
        &[
            "health",
            "--unit",
            "pos-hub.service",
            "--settle",
            "0",
            "--timeout",
            "1",
            "--poll-ms",
            "100",
            "--no-reboot",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        text(&o.stdout).starts_with(
            "pos health check failed: pos-hub.service is not running (activating/start) after 1 s; \
             marking slot B bad"
        ),
        "{}",
        show(&o)
    );
    assert!(f.log("rauc.log").contains("status mark-bad"));
    assert!(!f.log("systemctl.log").contains("reboot"), "--no-reboot");
}

#[test]
fn health_never_marks_bad_when_the_other_slot_is_not_good() {
    let f = Fake::new("1.2.4", INFO, TRIAL_B);
    // Both slots bad: the trial fixture with slot A's boot status turned bad.
    let status = std::fs::read_to_string(Path::new(FIXTURES).join(TRIAL_B)).unwrap();
    let a_bad = status.replace(
        r#""state":"inactive","parent":null,"mountpoint":null,"boot_status":"good""#,
        r#""state":"inactive","parent":null,"mountpoint":null,"boot_status":"bad""#,
    );
    assert_ne!(a_bad, status);
    f.write("status.json", &a_bad);
    f.unit("pos-terminal.service", "active", "running", 3, "success");
    let o = f.pos(&["health", "--settle", "0"], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(text(&o.stdout).contains("restarted 3 times; slot A is not a working system either"));
    assert!(!f.log("rauc.log").contains("mark-bad"));
    assert!(!f.log("systemctl.log").contains("reboot"));
}

#[test]
fn health_falls_back_to_the_kernel_command_line_for_the_slot() {
    let f = Fake::new("1.2.3", INFO, TRIAL_B);
    f.write("status.fail", "");
    f.write(
        "cmdline",
        "BOOT_IMAGE=/vmlinuz root=/dev/sda2 rauc.slot=A quiet\n",
    );
    f.unit("pos-setup.service", "active", "running", 0, "success");
    let cmdline = f.path("cmdline").display().to_string();
    let o = f.pos(&["health", "--settle", "0", "--cmdline", &cmdline], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "pos ready (slot A, version 1.2.3)\n");
}

#[test]
fn status_prints_the_slots() {
    let f = Fake::new("1.2.3", INFO, AFTER_INSTALL);
    let o = f.pos(&["status"], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = text(&o.stdout);
    assert!(
        out.contains("Running:    slot A (rootfs.0), version 1.2.3"),
        "{out}"
    );
    assert!(out.contains("Next boot:  slot B (rootfs.1)"), "{out}");
    let row_b = out.lines().find(|l| l.starts_with("B ")).expect(&out);
    for cell in [
        "rootfs.1",
        "inactive",
        "good",
        "1.2.4",
        "20261125.1",
        "2026-11-25T18:32:31Z",
    ] {
        assert!(row_b.contains(cell), "{row_b}");
    }
    assert!(
        out.contains("Slot B starts at the next restart, on trial (version 1.2.4)."),
        "{out}"
    );
    assert_eq!(
        f.log("rauc.log").trim(),
        "status --detailed --output-format=json"
    );
}

/// The real rauc checks the signature: a bundle from our CA passes, the same bundle against
/// another CA and a copy with one flipped byte are refused with the clear message.
#[test]
fn real_rauc_checks_the_signature() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n);
    for (name, cn) in [
        ("ours", "3PlugPOS test update key"),
        ("other", "Someone else"),
    ] {
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            ])
            .arg("-keyout")
            .arg(p(&format!("{name}.key")))
            .arg("-out")
            .arg(p(&format!("{name}.pem")))
            .args(["-subj", &format!("/O=3PlugPOS test/CN={cn}")])
            .output()
            .expect("openssl (Debian package openssl) is needed");
        assert!(st.status.success(), "{}", text(&st.stderr));
    }
    std::fs::create_dir(p("content")).unwrap();
    std::fs::write(p("content/rootfs.ext4"), vec![0x5a_u8; 256 * 1024]).unwrap();
    std::fs::write(
        p("content/manifest.raucm"),
        "[update]\ncompatible=3plugpos-x86_64\nversion=1.2.4\nbuild=test\n\n\
         [bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n",
    )
    .unwrap();
    let st = Command::new("rauc")
        .arg("bundle")
        .arg(format!("--cert={}", p("ours.pem").display()))
        .arg(format!("--key={}", p("ours.key").display()))
        .arg(p("content"))
        .arg(p("b.raucb"))
        .output()
        .expect("rauc (Debian packages rauc and squashfs-tools) is needed");
    assert!(st.status.success(), "{}", text(&st.stderr));
    let mut bytes = std::fs::read(p("b.raucb")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(p("flipped.raucb"), bytes).unwrap();
    std::fs::write(p("os-release"), "IMAGE_ID=3plugpos\nIMAGE_VERSION=1.2.3\n").unwrap();

    let verify = |bundle: &str, keyring: &str| {
        Command::new(env!("CARGO_BIN_EXE_pos"))
            .env_remove("POS_DATA_DIR")
            .env_remove("POS_CONFIG")
            .args(["update", "verify"])
            .arg(p(bundle))
            .arg("--keyring")
            .arg(p(keyring))
            .arg("--os-release")
            .arg(p("os-release"))
            .output()
            .unwrap()
    };
    let o = verify("b.raucb", "ours.pem");
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(text(&o.stdout).contains("Version:     1.2.4 (this box runs 1.2.3)"));
    for (bundle, keyring) in [("b.raucb", "other.pem"), ("flipped.raucb", "ours.pem")] {
        let o = verify(bundle, keyring);
        assert_eq!(code(&o), 1, "{bundle} with {keyring}: {}", show(&o));
        assert!(text(&o.stderr).contains(BAD_SIGNATURE), "{}", show(&o));
    }
}
