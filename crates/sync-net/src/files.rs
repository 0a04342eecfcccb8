//! Key and certificate files: written whole (temporary file, fsync, rename, fsync of the
//! directory), private keys with mode 0600 from the moment they exist, in a 0700 directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_owned(),
        source,
    }
}

/// Create `dir` (and its parents) if needed; `dir` itself gets mode 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FileError> {
    fs::create_dir_all(dir).map_err(err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err(dir))
}

/// Write a secret (mode 0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic(path, bytes, 0o600)
}

/// Write a public file (mode 0644).
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic(path, bytes, 0o644)
}

pub fn read_text(path: &Path) -> Result<String, FileError> {
    fs::read_to_string(path).map_err(err(path))
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    // A leftover from a crash may have other permissions: start from nothing.
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err(&tmp))?;
    file.write_all(bytes).map_err(err(&tmp))?;
    file.sync_all().map_err(err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(err(path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err(dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn private_files_are_0600_in_a_0700_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        ensure_private_dir(&dir).unwrap();
        let key = dir.join("k.pem");
        write_private(&key, b"secret").unwrap();
        write_private(&key, b"secret2").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(read_text(&key).unwrap(), "secret2");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary left");
    }
}
