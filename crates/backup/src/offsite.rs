//! Off-site copies on an SFTP server the shop owns, through OpenSSH's `sftp` client.
//!
//! Backups are encrypted before they leave the box, so the server only ever holds ciphertext.
//! The server's host key is pinned (a known_hosts file; never trust-on-first-use) and the box
//! logs in with its own key: no passwords. An upload goes to `NAME.partial` and is renamed
//! after its size was checked, so a broken connection never leaves something that looks like
//! a complete backup on the server.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::archive::EXTENSION;

#[derive(Debug, thiserror::Error)]
pub enum OffsiteError {
    #[error("{0:?} is not an off-site address: use sftp://USER@HOST[:PORT]/DIR")]
    BadAddress(String),
    #[error("{0:?} cannot be sent over sftp (use letters, digits, '.', '_', '-' and '/')")]
    BadName(String),
    #[error("the sftp client is missing (install Debian's openssh-client)")]
    NoClient,
    #[error("the off-site server's host key is not the pinned one, or not pinned yet: check {known_hosts} (never accept a changed key without asking who changed it)")]
    HostKey { known_hosts: PathBuf },
    #[error("the off-site server refused this box's key {identity}: add its public key to the server's authorized_keys")]
    Refused { identity: PathBuf },
    #[error("cannot reach the off-site server: {0} (check the network and the address)")]
    Unreachable(String),
    #[error("the off-site server could not store the file: {0} (is its disk full, or the directory missing?)")]
    Remote(String),
    #[error("the copy on the off-site server has {found} bytes, not {expected}: it was removed, try again")]
    SizeMismatch { expected: u64, found: u64 },
    #[error("off-site copy failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Where off-site copies go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The directory on the server (absolute, or relative to the user's home).
    pub dir: String,
    /// This box's private key.
    pub identity: PathBuf,
    /// The pinned host key of the server (OpenSSH known_hosts format).
    pub known_hosts: PathBuf,
}

impl SftpTarget {
    /// From `sftp://USER@HOST[:PORT]/DIR` and the two key files.
    pub fn parse(url: &str, identity: &Path, known_hosts: &Path) -> Result<Self, OffsiteError> {
        let bad = || OffsiteError::BadAddress(url.to_owned());
        let rest = url.strip_prefix("sftp://").ok_or_else(bad)?;
        let (authority, dir) = rest.split_once('/').ok_or_else(bad)?;
        let (user, hostport) = authority.split_once('@').ok_or_else(bad)?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (hostport, 22),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if user.is_empty() || host.is_empty() || port == 0 || !safe(user) || !safe(host) {
            return Err(bad());
        }
        let dir = if dir.is_empty() {
            ".".to_owned()
        } else {
            format!("/{dir}")
        };
        if !safe(&dir) {
            return Err(OffsiteError::BadName(dir));
        }
        Ok(SftpTarget {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            dir,
            identity: identity.to_owned(),
            known_hosts: known_hosts.to_owned(),
        })
    }

    /// Copy the backup `file` to the server; returns its remote path.
    pub fn upload(&self, file: &Path) -> Result<String, OffsiteError> {
        let name = file_name(file)?;
        let size = std::fs::metadata(file)?.len();
        let local = file
            .to_str()
            .filter(|s| safe(s))
            .ok_or_else(|| OffsiteError::BadName(file.display().to_string()))?;
        let remote = format!("{}/{name}", self.dir);
        let partial = format!("{remote}.partial");
        // `-` before a command: a missing leftover is not an error.
        self.batch(&format!("-rm {partial}\nput {local} {partial}\n"))?;
        let found = self.size_of(&partial)?;
        if found != Some(size) {
            let _ = self.batch(&format!("-rm {partial}\n"));
            return Err(OffsiteError::SizeMismatch {
                expected: size,
                found: found.unwrap_or(0),
            });
        }
        self.batch(&format!("-rm {remote}\nrename {partial} {remote}\n"))?;
        Ok(remote)
    }

    /// Backup files on the server (complete ones: `.partial` is never listed).
    pub fn list(&self) -> Result<Vec<(String, u64)>, OffsiteError> {
        let out = self.batch(&format!("ls -ln {}\n", self.dir))?;
        Ok(parse_listing(&out)
            .into_iter()
            .filter(|(n, _)| n.ends_with(&format!(".{EXTENSION}")))
            .collect())
    }

    /// Fetch `name` into `dir` (through `NAME.partial`, renamed once complete).
    pub fn download(&self, name: &str, dir: &Path) -> Result<PathBuf, OffsiteError> {
        if !safe(name) || name.contains('/') {
            return Err(OffsiteError::BadName(name.to_owned()));
        }
        let target = dir.join(name);
        let partial = dir.join(format!("{name}.partial"));
        let local = partial
            .to_str()
            .filter(|s| safe(s))
            .ok_or_else(|| OffsiteError::BadName(partial.display().to_string()))?;
        self.batch(&format!("get {}/{name} {local}\n", self.dir))?;
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &target)?;
        Ok(target)
    }

    fn size_of(&self, remote: &str) -> Result<Option<u64>, OffsiteError> {
        let out = self.batch(&format!("ls -ln {remote}\n"))?;
        Ok(parse_listing(&out).first().map(|(_, size)| *size))
    }

    /// Run `commands` in one sftp session; its stdout.
    fn batch(&self, commands: &str) -> Result<String, OffsiteError> {
        let mut child = Command::new("sftp")
            .args(["-b", "-"])
            .arg("-i")
            .arg(&self.identity)
            .arg("-P")
            .arg(self.port.to_string())
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=15",
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=4",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg(format!("{}@{}", self.user, self.host))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OffsiteError::NoClient,
                _ => OffsiteError::Io(e),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(commands.as_bytes())?;
        }
        let out = wait_with_timeout(child, Duration::from_secs(3600))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        tracing::warn!(stderr = %stderr.trim(), "sftp failed");
        Err(classify(&stderr, self))
    }
}

fn wait_with_timeout(
    child: std::process::Child,
    limit: Duration,
) -> Result<std::process::Output, OffsiteError> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let _ = waiter.join();
            Ok(out?)
        }
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waiter.join();
            Err(OffsiteError::Unreachable(format!(
                "no progress within {} minutes",
                limit.as_secs() / 60
            )))
        }
    }
}

fn classify(stderr: &str, target: &SftpTarget) -> OffsiteError {
    let s = stderr.to_ascii_lowercase();
    if s.contains("host key verification failed")
        || s.contains("remote host identification has changed")
    {
        OffsiteError::HostKey {
            known_hosts: target.known_hosts.clone(),
        }
    } else if s.contains("permission denied") && s.contains("publickey") {
        OffsiteError::Refused {
            identity: target.identity.clone(),
        }
    } else if s.contains("connection refused")
        || s.contains("timed out")
        || s.contains("no route to host")
        || s.contains("could not resolve")
        || s.contains("connection closed")
        || s.contains("network is unreachable")
    {
        OffsiteError::Unreachable(first_line(stderr))
    } else {
        OffsiteError::Remote(first_line(stderr))
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("sftp>"))
        .unwrap_or("sftp failed without a message")
        .to_owned()
}

/// (name, size) from `ls -ln` output lines (`-rw------- 1 0 0 1234 Nov 25 15:00 /dir/name`).
fn parse_listing(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let size = fields.get(4)?.parse().ok()?;
            let path = fields.get(8..)?.join(" ");
            let name = path.rsplit('/').next()?.to_owned();
            Some((name, size))
        })
        .collect()
}

fn file_name(file: &Path) -> Result<String, OffsiteError> {
    file.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| safe(n))
        .map(str::to_owned)
        .ok_or_else(|| OffsiteError::BadName(file.display().to_string()))
}

/// Only characters that need no quoting in an sftp batch.
fn safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:~+".contains(c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_are_read_or_refused() {
        let (id, kh) = (Path::new("/k"), Path::new("/h"));
        let t = SftpTarget::parse("sftp://pos@backup.shop.lan:2222/srv/pos", id, kh).unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("pos", "backup.shop.lan", 2222)
        );
        assert_eq!(t.dir, "/srv/pos");
        let t = SftpTarget::parse("sftp://pos@10.0.0.5/", id, kh).unwrap();
        assert_eq!((t.port, t.dir.as_str()), (22, "."));
        for bad in [
            "ftp://pos@host/x",
            "sftp://host/x",
            "sftp://pos@host:0/x",
            "sftp://pos@host:99999/x",
            "sftp://pos@ho st/x",
            "sftp://pos@host/x\ny",
            "sftp://pos@host",
        ] {
            assert!(SftpTarget::parse(bad, id, kh).is_err(), "{bad}");
        }
    }

    #[test]
    fn listings_are_read() {
        let out = "sftp> ls -ln /srv\n-rw-------    1 0        0            1234 Nov 25 15:00 /srv/pos-hub-1.3pbak\n\
                   drwx------    2 0        0            4096 Nov 25 15:00 /srv/sub\n";
        assert_eq!(
            parse_listing(out),
            vec![("pos-hub-1.3pbak".to_owned(), 1234)]
        );
    }
}
