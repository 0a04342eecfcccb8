//! `pos image flash` as the real binary: every wrong DEVICE is refused with exit code 2 and a
//! message that says what to do, a script without --yes is refused, and nothing is written.
//! Flashing itself (copy, fsync, read-back, faults) is tested in pos-flash against regular
//! files and failing fakes: a loop device cannot be relied on in CI containers.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn pos(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pos"))
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The run failed with exit code 2 and one line on stderr containing each of `needles`.
fn refused(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} not in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn image(dir: &Path) -> String {
    let path = dir.join("pos.img");
    std::fs::write(&path, vec![0xa5u8; 3 * 1024 * 1024]).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_character_device_is_not_a_disk() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let out = pos(dir.path(), &["image", "flash", &img, "/dev/null", "--yes"]);
    refused(
        &out,
        &[
            "/dev/null is a character device",
            "not a disk",
            "give a whole disk such as /dev/sdb",
            "lsblk",
        ],
    );
}

#[test]
fn a_regular_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let target = dir.path().join("stick.bin");
    std::fs::write(&target, b"keep me").unwrap();
    let out = pos(
        dir.path(),
        &["image", "flash", &img, target.to_str().unwrap(), "--yes"],
    );
    refused(&out, &["is a regular file, not a disk", "/dev/sdb"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}

#[test]
fn a_device_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let out = pos(
        dir.path(),
        &[
            "image",
            "flash",
            &img,
            "/dev/disk/by-id/usb-Nothing_Here-0:0",
            "--yes",
        ],
    );
    refused(
        &out,
        &[
            "/dev/disk/by-id/usb-Nothing_Here-0:0 does not exist",
            "plug the stick in",
        ],
    );
}

#[test]
fn swapped_arguments_get_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    // /dev/loop-control is not a block device; a block device is needed as "IMAGE". Only
    // assert the hint where the host has one (any /dev/loopN node), the refusal everywhere.
    let block = ["/dev/loop0", "/dev/sda", "/dev/vda"]
        .into_iter()
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
                .unwrap_or(false)
        });
    let Some(block) = block else {
        let out = pos(dir.path(), &["image", "flash", &img, &img, "--yes"]);
        refused(&out, &["is a regular file, not a disk"]);
        return;
    };
    let out = pos(dir.path(), &["image", "flash", block, &img, "--yes"]);
    refused(
        &out,
        &["is a regular file, not a disk", "IMAGE comes first"],
    );
}

#[test]
fn a_script_without_yes_is_refused_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let out = pos(dir.path(), &["image", "flash", &img, "/dev/sdz"]);
    refused(&out, &["from a script add --yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("Type the device name"), "{stdout}");
}

#[test]
fn help_teaches_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    let out = pos(dir.path(), &["image", "flash", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for n in [
        "IMAGE",
        "DEVICE",
        "--yes",
        "Examples:",
        "lsblk",
        ".img.zst",
        "Exit codes",
    ] {
        assert!(help.contains(n), "{n:?} not in: {help}");
    }
}
