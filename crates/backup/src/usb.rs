//! Removable drives: USB block devices (`/dev/disk/by-id/usb-*`) and where they are mounted,
//! plus anything mounted under `/media` or `/run/media` (desktop automounts).

use std::path::{Path, PathBuf};

/// A mounted removable drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    /// The block device, e.g. `/dev/sdb1`.
    pub device: PathBuf,
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The by-id name, e.g. `usb-SanDisk_Cruzer_4C53-0:0-part1`, or the mount's last part.
    pub label: String,
    pub free_bytes: Option<u64>,
}

/// USB drives that are mounted (the ones a backup can be written to or read from). Unmounted
/// USB partitions are not listed: the appliance mounts sticks by itself (udev rule).
pub fn drives() -> Vec<Drive> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found = find(Path::new("/dev/disk/by-id"), &mounts);
    for d in &mut found {
        d.free_bytes = free_bytes(&d.mount);
    }
    found
}

/// Free bytes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    nix::sys::statvfs::statvfs(path)
        .ok()
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
}

/// The drives among `mounts` (the text of /proc/self/mounts) that are USB devices listed in
/// `by_id`, or mounted under /media or /run/media.
pub fn find(by_id: &Path, mounts: &str) -> Vec<Drive> {
    // by-id link name → the device it points to.
    let mut usb: Vec<(String, PathBuf)> = std::fs::read_dir(by_id)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.starts_with("usb-") {
                        return None;
                    }
                    let target = std::fs::canonicalize(e.path()).ok()?;
                    Some((name, target))
                })
                .collect()
        })
        .unwrap_or_default();
    usb.sort();
    let mut out = Vec::new();
    for (source, mount) in parse_mounts(mounts) {
        let device = PathBuf::from(&source);
        let canonical = std::fs::canonicalize(&device).unwrap_or_else(|_| device.clone());
        let by_id_name = usb
            .iter()
            .find(|(_, target)| *target == canonical)
            .map(|(name, _)| name.clone());
        let automount = mount.starts_with("/media/") || mount.starts_with("/run/media/");
        if by_id_name.is_none() && !automount {
            continue;
        }
        if out.iter().any(|d: &Drive| d.mount == mount) {
            continue;
        }
        let label = by_id_name.unwrap_or_else(|| {
            mount
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| source.clone())
        });
        out.push(Drive {
            device,
            mount,
            label,
            free_bytes: None,
        });
    }
    out
}

/// (source, mount point) of each line of /proc/self/mounts, with the kernel's octal escapes
/// (`\040` for a space) undone.
fn parse_mounts(text: &str) -> Vec<(String, PathBuf)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let source = unescape(fields.next()?);
            let mount = unescape(fields.next()?);
            Some((source, PathBuf::from(mount)))
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(value) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usb_devices_and_automounts_are_found_others_not() {
        let dir = tempfile::tempdir().unwrap();
        let by_id = dir.path().join("by-id");
        std::fs::create_dir(&by_id).unwrap();
        let sdb1 = dir.path().join("sdb1");
        let sda1 = dir.path().join("sda1");
        std::fs::write(&sdb1, "").unwrap();
        std::fs::write(&sda1, "").unwrap();
        std::os::unix::fs::symlink(&sdb1, by_id.join("usb-SanDisk_Cruzer-0:0-part1")).unwrap();
        std::os::unix::fs::symlink(&sda1, by_id.join("ata-Samsung_SSD-part1")).unwrap();
        let mounts = format!(
            "{} / ext4 rw 0 0\n{} /mnt/backup\\040stick vfat rw 0 0\n\
             /dev/sdc1 /media/pos/SHOP vfat rw 0 0\nproc /proc proc rw 0 0\n",
            sda1.display(),
            sdb1.display()
        );
        let drives = find(&by_id, &mounts);
        assert_eq!(drives.len(), 2, "{drives:?}");
        assert_eq!(drives[0].mount, PathBuf::from("/mnt/backup stick"));
        assert_eq!(drives[0].label, "usb-SanDisk_Cruzer-0:0-part1");
        assert_eq!(drives[1].mount, PathBuf::from("/media/pos/SHOP"));
        assert_eq!(drives[1].label, "SHOP");
    }

    #[test]
    fn escapes_are_undone_and_junk_survives() {
        assert_eq!(unescape("a\\040b\\011c"), "a b\tc");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(unescape("\\"), "\\");
        assert!(parse_mounts("onlyone\n\n").is_empty());
    }
}
