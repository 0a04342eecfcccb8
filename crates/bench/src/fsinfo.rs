//! Which filesystem a path is on: fsync on tmpfs is free, which would make P1 meaningless.

use std::path::Path;

/// Filesystems where fsync does not reach a disk.
const MEMORY_BACKED: [&str; 2] = ["tmpfs", "ramfs"];

/// The mount point and filesystem type holding `path`, from /proc/self/mounts (Linux).
pub fn filesystem_of(path: &Path) -> Option<(String, String)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_dev, at, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            Some((unescape(at), fstype.to_owned()))
        })
        .filter(|(at, _)| path.starts_with(at))
        // The longest matching mount point wins; among equals, the later (top) mount.
        .max_by_key(|(at, _)| at.len())
}

/// Mount points escape space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A line for the notes: where the files are, on what, and a warning if fsync is not real.
pub fn describe(path: &Path) -> (String, bool) {
    match filesystem_of(path) {
        Some((at, fstype)) if MEMORY_BACKED.contains(&fstype.as_str()) => (
            format!(
                "{} is on {fstype} (mounted at {at}): fsync does not reach a disk, so this figure \
                 is NOT meaningful; set TMPDIR to a directory on a real disk",
                path.display()
            ),
            false,
        ),
        Some((at, fstype)) => (
            format!("{} on {fstype} (mounted at {at})", path.display()),
            true,
        ),
        None => (format!("{} on an unknown filesystem", path.display()), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/x\0"), r"/x\0");
    }
}
