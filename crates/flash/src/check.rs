//! Which disk may be written: the safety check before anything is erased.
//!
//! Everything is decided from text and directories (a sysfs root, the text of
//! `/proc/self/mountinfo`), so tests build a fake sysfs tree in a tempdir. The only IO on the
//! real device is `stat` of the path the user gave ([`check_path`]).
//!
//! A disk is refused when it or any of its partitions is mounted (directly or under LUKS, LVM or
//! RAID, found through `slaves/`), is held by such a user (`holders/` not empty), or carries a
//! mount of the running system (`/`, `/boot`, `/boot/efi`, `/var/lib/pos`).

use std::fmt;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// The mounts whose disk is the running system's: the appliance (and a technician's laptop)
/// boots from these, so their disk is never a target even when asked with `--yes`.
pub const SYSTEM_MOUNTS: &[&str] = &["/", "/boot", "/boot/efi", "/var/lib/pos"];

/// What the check looks at besides the device.
#[derive(Debug, Clone)]
pub struct Env<'a> {
    /// Usually `/sys`.
    pub sysfs: &'a Path,
    /// The text of `/proc/self/mountinfo`.
    pub mountinfo: &'a str,
    /// Mount points of the running system ([`SYSTEM_MOUNTS`]).
    pub system_mounts: &'a [&'a str],
    /// The image's length in bytes (uncompressed).
    pub need: u64,
}

/// A whole disk that may be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name, e.g. `sdb`: what the user types to confirm.
    pub name: String,
    /// `/dev/NAME`.
    pub path: PathBuf,
    /// `MAJOR:MINOR`, to check that the node opened later is the disk checked now.
    pub devno: String,
    /// Bytes.
    pub size: u64,
    /// Vendor and model as the device reports them (may be empty).
    pub model: String,
    /// Removable media or attached over USB.
    pub removable: bool,
}

/// Why a device is not written. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{path} does not exist: plug the stick in and find its name with \
         `lsblk -d -o NAME,SIZE,MODEL,TRAN` (e.g. /dev/sdb)"
    )]
    NotFound { path: PathBuf },
    #[error(
        "{path} is {what}, not a disk: give a whole disk such as /dev/sdb \
         (find it with `lsblk -d -o NAME,SIZE,MODEL,TRAN`)"
    )]
    NotBlockDevice { path: PathBuf, what: &'static str },
    #[error(
        "{path} is a partition (/dev/{partition}) of /dev/{whole_disk}: an image is written to \
         the whole disk, give /dev/{whole_disk}"
    )]
    IsPartition {
        path: PathBuf,
        partition: String,
        whole_disk: String,
    },
    #[error(
        "/dev/{disk} holds the running system ({mountpoint} is on it): flashing it would \
         destroy this machine; give the USB stick or target disk instead \
         (`lsblk -d -o NAME,SIZE,MODEL,TRAN`)"
    )]
    SystemDisk { disk: String, mountpoint: String },
    #[error(
        "{} is mounted at {mountpoint}: unmount it (`umount {mountpoint}`, and any other \
         partition of /dev/{disk}) and try again",
        which(disk, partition)
    )]
    Mounted {
        disk: String,
        partition: String,
        mountpoint: String,
    },
    #[error(
        "{} is in use by {holder} (an encrypted volume, LVM or RAID): close that first (e.g. \
         `cryptsetup close`, `vgchange -an`) and try again",
        which(disk, partition)
    )]
    InUse {
        disk: String,
        partition: String,
        holder: String,
    },
    #[error("/dev/{disk} has no medium (size 0): insert the card or plug the stick in again")]
    NoMedium { disk: String },
    #[error(
        "/dev/{disk} is too small: the image needs {} but the disk holds {}: use a disk of at \
         least {}",
        human(*need), human(*have), human(*need)
    )]
    TooSmall { disk: String, need: u64, have: u64 },
    #[error(
        "/dev/{disk} is read-only: slide the stick's write-protect switch off, or use another"
    )]
    ReadOnly { disk: String },
}

/// Check the device at `path` (a `/dev` node or a symlink to one such as
/// `/dev/disk/by-id/usb-...`): exists, is a block device, then [`check_disk`].
pub fn check_path(path: &Path, env: &Env<'_>) -> Result<Disk, Refusal> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            return Err(Refusal::NotFound {
                path: path.to_owned(),
            })
        }
    };
    let ft = meta.file_type();
    if !ft.is_block_device() {
        let what = if ft.is_file() {
            "a regular file"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() {
            "a character device (like /dev/null)"
        } else {
            "not a block device"
        };
        return Err(Refusal::NotBlockDevice {
            path: path.to_owned(),
            what,
        });
    }
    let rdev = meta.rdev();
    let devno = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    // The kernel's name comes from the device number, not the node's name: /dev names are
    // whatever udev or a user made them.
    let name = name_of_devno(env.sysfs, &devno)
        .or_else(|| {
            std::fs::canonicalize(path)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .ok_or_else(|| Refusal::NotFound {
            path: path.to_owned(),
        })?;
    check_disk(path, &name, env)
}

/// Check the block device the kernel calls `name` (`path` is only for messages).
pub fn check_disk(path: &Path, name: &str, env: &Env<'_>) -> Result<Disk, Refusal> {
    let sys = Sys(env.sysfs);
    let Some(dir) = sys.dir(name) else {
        return Err(Refusal::NotFound {
            path: path.to_owned(),
        });
    };
    if dir.join("partition").exists() {
        let whole_disk = sys.disk_of(name).unwrap_or_else(|| "?".into());
        return Err(Refusal::IsPartition {
            path: path.to_owned(),
            partition: name.to_owned(),
            whole_disk,
        });
    }
    let disk = name.to_owned();
    // The disk and its partitions: what a mount or holder must not touch.
    let mut ours = vec![disk.clone()];
    ours.extend(sys.partitions(name));

    let mounts = parse_mountinfo(env.mountinfo);
    for m in &mounts {
        if !env.system_mounts.contains(&m.mountpoint.as_str()) {
            continue;
        }
        if sys.leaves(m).iter().any(|l| ours.contains(l)) {
            return Err(Refusal::SystemDisk {
                disk,
                mountpoint: m.mountpoint.clone(),
            });
        }
    }
    for m in &mounts {
        if let Some(partition) = sys.leaves(m).into_iter().find(|l| ours.contains(l)) {
            return Err(Refusal::Mounted {
                disk,
                partition,
                mountpoint: m.mountpoint.clone(),
            });
        }
    }
    for part in &ours {
        let holders = sys
            .dir(part)
            .map(|d| list(&d.join("holders")))
            .unwrap_or_default();
        if let Some(holder) = holders.first() {
            return Err(Refusal::InUse {
                disk,
                partition: part.clone(),
                holder: holder.clone(),
            });
        }
    }

    let size = read_u64(&dir.join("size")).unwrap_or(0).saturating_mul(512);
    if size == 0 {
        return Err(Refusal::NoMedium { disk });
    }
    if read_u64(&dir.join("ro")) == Some(1) {
        return Err(Refusal::ReadOnly { disk });
    }
    if size < env.need {
        return Err(Refusal::TooSmall {
            disk,
            need: env.need,
            have: size,
        });
    }
    let vendor = read_trim(&dir.join("device/vendor"));
    let model = read_trim(&dir.join("device/model"));
    let model = [vendor, model]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Many USB sticks and all USB SSDs say removable=0; the bus says what they are.
    let usb = std::fs::canonicalize(&dir)
        .map(|p| p.to_string_lossy().contains("/usb"))
        .unwrap_or(false);
    Ok(Disk {
        path: PathBuf::from("/dev").join(&disk),
        devno: read_trim(&dir.join("dev")),
        name: disk,
        size,
        model,
        removable: usb || read_u64(&dir.join("removable")) == Some(1),
    })
}

/// One line of mountinfo: device number, source and mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    devno: String,
    source: String,
    mountpoint: String,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw` (proc(5)); the optional
/// fields end at ` - `.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let source = right.split(' ').nth(1)?;
            Some(Mount {
                devno: (*left.get(2)?).to_owned(),
                source: unescape(source),
                mountpoint: unescape(left.get(4)?),
            })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in mountinfo as octal `\040` etc.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The kernel name of the block device with number `devno` (`8:17` → `sdb1`).
fn name_of_devno(sysfs: &Path, devno: &str) -> Option<String> {
    list(&sysfs.join("class/block"))
        .into_iter()
        .find(|name| read_trim(&sysfs.join("class/block").join(name).join("dev")) == devno)
}

/// A sysfs root.
struct Sys<'a>(&'a Path);

impl Sys<'_> {
    /// `class/block/NAME` resolved (a symlink into `devices/` on a real system).
    fn dir(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() || name.contains('/') {
            return None;
        }
        std::fs::canonicalize(self.0.join("class/block").join(name)).ok()
    }

    /// The whole disk of a partition: its parent directory in `devices/`.
    fn disk_of(&self, partition: &str) -> Option<String> {
        let dir = self.dir(partition)?;
        Some(dir.parent()?.file_name()?.to_string_lossy().into_owned())
    }

    fn partitions(&self, disk: &str) -> Vec<String> {
        let Some(dir) = self.dir(disk) else {
            return Vec::new();
        };
        list(&dir)
            .into_iter()
            .filter(|n| dir.join(n).join("partition").exists())
            .collect()
    }

    /// The physical block devices under a mount: its device, or for dm/md (LUKS, LVM, RAID)
    /// what `slaves/` leads to, all the way down.
    fn leaves(&self, m: &Mount) -> Vec<String> {
        let start = name_of_devno(self.0, &m.devno).or_else(|| {
            // btrfs and overlay show an anonymous device number; the source may still name it.
            let base = Path::new(&m.source)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            m.source
                .starts_with("/dev/")
                .then_some(base)
                .filter(|b| self.dir(b).is_some())
        });
        let mut out = Vec::new();
        let mut todo: Vec<String> = start.into_iter().collect();
        while let Some(name) = todo.pop() {
            if out.contains(&name) || out.len() > 64 {
                continue;
            }
            let slaves = self
                .dir(&name)
                .map(|d| list(&d.join("slaves")))
                .unwrap_or_default();
            todo.extend(slaves);
            out.push(name);
        }
        out
    }
}

/// Entry names of a directory, sorted (empty when it cannot be read).
fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn read_trim(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn read_u64(path: &Path) -> Option<u64> {
    read_trim(path).parse().ok()
}

/// `/dev/sdb1 on /dev/sdb`, or `/dev/sdb` for the whole disk.
fn which(disk: &str, partition: &str) -> String {
    if disk == partition {
        format!("/dev/{disk}")
    } else {
        format!("/dev/{partition} on /dev/{disk}")
    }
}

/// Bytes as people read disk sizes: decimal units, one decimal (`15.6 GB`).
pub fn human(bytes: u64) -> String {
    HumanBytes(bytes).to_string()
}

struct HumanBytes(u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
        let mut v = self.0 as f64;
        let mut unit = 0;
        while v >= 1000.0 && unit + 1 < UNITS.len() {
            v /= 1000.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const GB: u64 = 1_000_000_000;

    /// A sysfs tree shaped like the kernel's: `class/block/NAME` are symlinks into `devices/`,
    /// partitions are subdirectories of their disk.
    struct FakeSys {
        root: tempfile::TempDir,
    }

    impl FakeSys {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            fs::create_dir_all(root.path().join("class/block")).unwrap();
            FakeSys { root }
        }

        fn path(&self) -> &Path {
            self.root.path()
        }

        fn link(&self, name: &str, dir: &Path) {
            symlink(dir, self.path().join("class/block").join(name)).unwrap();
        }

        fn node(dir: &Path, devno: &str, bytes: u64) {
            fs::create_dir_all(dir.join("holders")).unwrap();
            fs::create_dir_all(dir.join("slaves")).unwrap();
            fs::write(dir.join("dev"), format!("{devno}\n")).unwrap();
            fs::write(dir.join("size"), format!("{}\n", bytes / 512)).unwrap();
            fs::write(dir.join("ro"), "0\n").unwrap();
        }

        /// A whole disk on `bus` (`usb1/1-1` for a stick, `pci0000:00/ata1` for an internal one).
        fn disk(&self, name: &str, devno: &str, bytes: u64, bus: &str) -> &Self {
            let dir = self
                .path()
                .join("devices")
                .join(bus)
                .join("block")
                .join(name);
            Self::node(&dir, devno, bytes);
            fs::write(dir.join("removable"), "0\n").unwrap();
            fs::create_dir_all(dir.join("device")).unwrap();
            fs::write(dir.join("device/vendor"), "SanDisk \n").unwrap();
            fs::write(dir.join("device/model"), "Cruzer Blade    \n").unwrap();
            self.link(name, &dir);
            self
        }

        fn part(&self, disk: &str, name: &str, devno: &str) -> &Self {
            let dir = self.dir(disk).join(name);
            Self::node(&dir, devno, GB);
            fs::write(dir.join("partition"), "1\n").unwrap();
            self.link(name, &dir);
            self
        }

        /// A device-mapper device (LUKS, LVM) on top of `slaves`.
        fn dm(&self, name: &str, devno: &str, slaves: &[&str]) -> &Self {
            let dir = self.path().join("devices/virtual/block").join(name);
            Self::node(&dir, devno, GB);
            for s in slaves {
                symlink(self.dir(s), dir.join("slaves").join(s)).unwrap();
                symlink(&dir, self.dir(s).join("holders").join(name)).unwrap();
            }
            self.link(name, &dir);
            self
        }

        fn set(&self, name: &str, file: &str, value: &str) -> &Self {
            fs::write(self.dir(name).join(file), value).unwrap();
            self
        }

        fn dir(&self, name: &str) -> PathBuf {
            fs::canonicalize(self.path().join("class/block").join(name)).unwrap()
        }

        fn check(&self, name: &str, mountinfo: &str, need: u64) -> Result<Disk, Refusal> {
            let env = Env {
                sysfs: self.path(),
                mountinfo,
                system_mounts: SYSTEM_MOUNTS,
                need,
            };
            check_disk(&PathBuf::from("/dev").join(name), name, &env)
        }
    }

    /// A laptop: the system on sda (sda1 /boot/efi, sda2 /), a 16 GB stick sdb with sdb1.
    fn laptop() -> FakeSys {
        let s = FakeSys::new();
        s.disk("sda", "8:0", 500 * GB, "pci0000:00/ata1")
            .part("sda", "sda1", "8:1")
            .part("sda", "sda2", "8:2")
            .disk("sdb", "8:16", 16 * GB, "pci0000:00/usb1/1-1")
            .part("sdb", "sdb1", "8:17");
        s
    }

    const MOUNTS: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
28 27 8:1 / /boot/efi rw,relatime shared:2 - vfat /dev/sda1 rw
29 27 0:25 / /tmp rw - tmpfs tmpfs rw
";

    #[test]
    fn a_usb_stick_that_is_not_mounted_is_allowed() {
        let disk = laptop().check("sdb", MOUNTS, 2 * GB).unwrap();
        assert_eq!(disk.name, "sdb");
        assert_eq!(disk.path, PathBuf::from("/dev/sdb"));
        assert_eq!(disk.devno, "8:16");
        assert_eq!(disk.size, 16 * GB / 512 * 512);
        assert_eq!(disk.model, "SanDisk Cruzer Blade");
        assert!(disk.removable, "on the USB bus, though removable=0");
    }

    #[test]
    fn an_internal_disk_says_it_is_not_removable() {
        let s = laptop();
        s.disk("nvme0n1", "259:0", 256 * GB, "pci0000:00/nvme0");
        let disk = s.check("nvme0n1", MOUNTS, 2 * GB).unwrap();
        assert!(!disk.removable);
    }

    #[test]
    fn an_unknown_name_is_not_found() {
        let r = laptop().check("sdz", MOUNTS, 1);
        assert!(matches!(r, Err(Refusal::NotFound { .. })), "{r:?}");
    }

    #[test]
    fn a_partition_is_refused_naming_its_disk() {
        let r = laptop().check("sdb1", MOUNTS, 1).unwrap_err();
        assert_eq!(
            r,
            Refusal::IsPartition {
                path: "/dev/sdb1".into(),
                partition: "sdb1".into(),
                whole_disk: "sdb".into()
            }
        );
        assert!(r.to_string().contains("give /dev/sdb"), "{r}");
    }

    #[test]
    fn the_disk_of_the_root_or_efi_mount_is_the_system_disk() {
        let r = laptop().check("sda", MOUNTS, 1).unwrap_err();
        assert_eq!(
            r,
            Refusal::SystemDisk {
                disk: "sda".into(),
                mountpoint: "/".into()
            }
        );
        // Only /boot/efi on it.
        let only_efi = "28 27 8:1 / /boot/efi rw - vfat /dev/sda1 rw\n";
        let r = laptop().check("sda", only_efi, 1).unwrap_err();
        assert!(
            matches!(r, Refusal::SystemDisk { ref mountpoint, .. } if mountpoint == "/boot/efi")
        );
    }

    #[test]
    fn a_root_on_luks_is_traced_to_its_disk() {
        let s = laptop();
        s.dm("dm-0", "253:0", &["sda2"]);
        let mounts = "27 1 253:0 / / rw - ext4 /dev/mapper/root rw\n";
        let r = s.check("sda", mounts, 1).unwrap_err();
        assert!(matches!(r, Refusal::SystemDisk { .. }), "{r:?}");
        assert!(s.check("sdb", mounts, 1).is_ok());
    }

    #[test]
    fn a_btrfs_root_with_an_anonymous_device_number_is_found_by_its_source() {
        let mounts = "27 1 0:31 /@ / rw - btrfs /dev/sda2 rw\n";
        let r = laptop().check("sda", mounts, 1).unwrap_err();
        assert!(matches!(r, Refusal::SystemDisk { .. }), "{r:?}");
    }

    #[test]
    fn a_mounted_partition_is_refused_with_its_mount_point() {
        let mounts = format!("{MOUNTS}40 27 8:17 / /media/my\\040stick rw - vfat /dev/sdb1 rw\n");
        let r = laptop().check("sdb", &mounts, 1).unwrap_err();
        assert_eq!(
            r,
            Refusal::Mounted {
                disk: "sdb".into(),
                partition: "sdb1".into(),
                mountpoint: "/media/my stick".into()
            }
        );
        assert!(
            r.to_string()
                .starts_with("/dev/sdb1 on /dev/sdb is mounted at /media/my stick: unmount it (`umount /media/my stick`"),
            "{r}"
        );
    }

    #[test]
    fn a_whole_disk_file_system_counts_as_mounted() {
        let mounts = format!("{MOUNTS}40 27 8:16 / /mnt rw - ext4 /dev/sdb rw\n");
        let r = laptop().check("sdb", &mounts, 1).unwrap_err();
        assert!(matches!(r, Refusal::Mounted { ref partition, .. } if partition == "sdb"));
        assert!(
            r.to_string().starts_with("/dev/sdb is mounted at /mnt:"),
            "{r}"
        );
    }

    #[test]
    fn a_mounted_encrypted_partition_is_refused() {
        let s = laptop();
        s.dm("dm-1", "253:1", &["sdb1"]);
        let mounts = format!("{MOUNTS}41 27 253:1 / /mnt/secret rw - ext4 /dev/mapper/secret rw\n");
        let r = s.check("sdb", &mounts, 1).unwrap_err();
        assert!(
            matches!(r, Refusal::Mounted { ref partition, .. } if partition == "sdb1"),
            "{r:?}"
        );
    }

    #[test]
    fn an_open_but_unmounted_luks_or_lvm_user_is_in_use() {
        let s = laptop();
        s.dm("dm-1", "253:1", &["sdb1"]);
        let r = s.check("sdb", MOUNTS, 1).unwrap_err();
        assert_eq!(
            r,
            Refusal::InUse {
                disk: "sdb".into(),
                partition: "sdb1".into(),
                holder: "dm-1".into()
            }
        );
    }

    #[test]
    fn read_only_too_small_and_empty_are_refused() {
        let s = laptop();
        s.set("sdb", "ro", "1\n");
        assert_eq!(
            s.check("sdb", MOUNTS, 1).unwrap_err(),
            Refusal::ReadOnly { disk: "sdb".into() }
        );
        s.set("sdb", "ro", "0\n");
        let r = s.check("sdb", MOUNTS, 32 * GB).unwrap_err();
        assert_eq!(
            r,
            Refusal::TooSmall {
                disk: "sdb".into(),
                need: 32 * GB,
                have: 16 * GB / 512 * 512
            }
        );
        assert!(
            r.to_string()
                .contains("needs 32.0 GB but the disk holds 16.0 GB"),
            "{r}"
        );
        s.set("sdb", "size", "0\n");
        assert_eq!(
            s.check("sdb", MOUNTS, 1).unwrap_err(),
            Refusal::NoMedium { disk: "sdb".into() }
        );
    }

    #[test]
    fn paths_that_are_not_block_devices_are_refused() {
        let s = laptop();
        let env = Env {
            sysfs: s.path(),
            mountinfo: MOUNTS,
            system_mounts: SYSTEM_MOUNTS,
            need: 1,
        };
        let file = s.path().join("image.img");
        fs::write(&file, b"x").unwrap();
        let link = s.path().join("usb-Stick-0:0");
        symlink(&file, &link).unwrap();
        for (path, what) in [
            (file.as_path(), "a regular file"),
            (link.as_path(), "a regular file"),
            (s.path(), "a directory"),
            (
                Path::new("/dev/null"),
                "a character device (like /dev/null)",
            ),
        ] {
            let r = check_path(path, &env).unwrap_err();
            assert_eq!(
                r,
                Refusal::NotBlockDevice {
                    path: path.to_owned(),
                    what
                }
            );
        }
        let missing = s.path().join("sdq");
        assert_eq!(
            check_path(&missing, &env).unwrap_err(),
            Refusal::NotFound { path: missing }
        );
    }

    #[test]
    fn sizes_read_like_disk_labels() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(15_634_268_160), "15.6 GB");
        assert_eq!(human(2_000_000), "2.0 MB");
    }
}
