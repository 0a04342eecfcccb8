//! Copy an image onto an opened device and verify it by reading it back.
//!
//! The copy works on a [`Target`] (a `File`, a [`BlockDevice`], or a fault-injecting fake in
//! tests), so the same code runs against a regular file in tests and a USB stick in the field.

use std::fs::File;
use std::io::{self, Read, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// Bytes per write and per read-back comparison. Large enough for full USB throughput, small
/// enough that a failed block names where the device failed.
pub const BLOCK: usize = 4 << 20;

/// What the progress callback is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Write,
    Verify,
}

/// A device to write the image to.
pub trait Target {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Everything written is on the medium (fsync).
    fn sync(&mut self) -> io::Result<()>;
    /// Back to byte 0 for the read-back, with cached pages dropped so the read-back comes
    /// from the medium, not from memory.
    fn rewind(&mut self) -> io::Result<()>;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Whether the device is still attached. A pulled stick often fails its last write with
    /// EIO rather than ENODEV; this tells the two apart.
    fn present(&self) -> bool {
        true
    }
}

impl Target for File {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.sync_all()
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.seek(SeekFrom::Start(0))?;
        // Clean pages are dropped after the fsync above; where the kernel will not, the
        // read-back still compares what the kernel holds for the device.
        let _ = nix::fcntl::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&*self),
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(self, buf)
    }
}

/// An opened block device with its sysfs directory, which disappears when the stick is pulled.
#[derive(Debug)]
pub struct BlockDevice {
    file: File,
    sys_dir: PathBuf,
}

impl BlockDevice {
    /// `name` is the kernel name (`sdb`); `sysfs` usually `/sys`.
    pub fn new(file: File, sysfs: &Path, name: &str) -> Self {
        BlockDevice {
            file,
            sys_dir: sysfs.join("class/block").join(name),
        }
    }
}

impl Target for BlockDevice {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Target::write_all(&mut self.file, buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        Target::sync(&mut self.file)
    }
    fn rewind(&mut self) -> io::Result<()> {
        Target::rewind(&mut self.file)
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Target::read(&mut self.file, buf)
    }
    fn present(&self) -> bool {
        self.sys_dir.exists()
    }
}

/// A flashed and verified image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flashed {
    /// Bytes written (the image's uncompressed length).
    pub len: u64,
    /// blake3 of the image as written, equal to what was read back.
    pub hash: blake3::Hash,
}

/// Why a flash failed. Offsets are bytes from the start of the device (the start of the block
/// that failed).
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error(
        "cannot read the image at byte {offset}: {source} (the image file is damaged or went \
         away; the device holds a partial image: flash again with a good image)"
    )]
    Image { offset: u64, source: io::Error },
    #[error(
        "the device went away after {} MB: plug it back in and flash again; nothing else was \
         written",
        offset / 1_000_000
    )]
    Gone { offset: u64, source: io::Error },
    #[error(
        "the device is full at byte {offset} ({source}): it is smaller than it claims or the \
         image does not fit; use a bigger disk"
    )]
    NoSpace { offset: u64, source: io::Error },
    #[error(
        "the device failed with an I/O error at byte {offset} while {doing} ({source}): the \
         stick may be worn out; flash again, or use another one"
    )]
    Io {
        offset: u64,
        doing: &'static str,
        source: io::Error,
    },
    #[error("cannot {doing} the device at byte {offset}: {source}")]
    Other {
        offset: u64,
        doing: &'static str,
        source: io::Error,
    },
    #[error(
        "verification failed: the device ends at byte {offset}, before the end of the image \
         ({len} bytes): it is smaller than it claims; use another one"
    )]
    ShortReadBack { offset: u64, len: u64 },
    #[error(
        "verification failed: the device reads back different from the image in the block at \
         byte {offset}: the stick is faulty or fake; use another one"
    )]
    Mismatch { offset: u64 },
}

impl FlashError {
    /// A read-back that differs from the image: a failed check, not a failed operation.
    pub fn is_verification(&self) -> bool {
        matches!(
            self,
            FlashError::Mismatch { .. } | FlashError::ShortReadBack { .. }
        )
    }
}

/// Write all of `image` onto `target` in [`BLOCK`]s, sync, read it back and compare (blake3 per
/// block). `len` is the expected length, for progress only: what is verified is what was
/// written. `progress(phase, done, total)` is called after each block.
pub fn flash<T: Target + ?Sized>(
    image: &mut dyn Read,
    len: u64,
    target: &mut T,
    progress: &mut dyn FnMut(Phase, u64, u64),
) -> Result<Flashed, FlashError> {
    let mut buf = vec![0u8; BLOCK];
    let mut blocks: Vec<blake3::Hash> = Vec::new();
    let mut whole = blake3::Hasher::new();
    let mut offset = 0u64;
    loop {
        let n = read_full(|b| image.read(b), &mut buf)
            .map_err(|source| FlashError::Image { offset, source })?;
        if n == 0 {
            break;
        }
        target
            .write_all(&buf[..n])
            .map_err(|e| classify(e, offset, "write", target.present()))?;
        blocks.push(blake3::hash(&buf[..n]));
        whole.update(&buf[..n]);
        offset += n as u64;
        progress(Phase::Write, offset, len.max(offset));
    }
    let written = offset;
    target
        .sync()
        .map_err(|e| classify(e, written, "sync", target.present()))?;
    tracing::debug!(bytes = written, "written and synced; reading back");

    target
        .rewind()
        .map_err(|e| classify(e, 0, "read back", target.present()))?;
    let mut offset = 0u64;
    for expected in &blocks {
        let want = usize::try_from((written - offset).min(BLOCK as u64)).unwrap_or(BLOCK);
        let n = read_full(|b| target.read(b), &mut buf[..want])
            .map_err(|e| classify(e, offset, "read back", target.present()))?;
        if n < want {
            return Err(FlashError::ShortReadBack {
                offset: offset + n as u64,
                len: written,
            });
        }
        if blake3::hash(&buf[..n]) != *expected {
            return Err(FlashError::Mismatch { offset });
        }
        offset += n as u64;
        progress(Phase::Verify, offset, written);
    }
    Ok(Flashed {
        len: written,
        hash: whole.finalize(),
    })
}

/// The errno of a failed device operation in the words of [`FlashError`].
fn classify(source: io::Error, offset: u64, doing: &'static str, present: bool) -> FlashError {
    let errno = source.raw_os_error().map(Errno::from_raw);
    match errno {
        Some(Errno::ENODEV | Errno::ENXIO) => FlashError::Gone { offset, source },
        Some(Errno::EIO) if !present => FlashError::Gone { offset, source },
        Some(Errno::ENOSPC) => FlashError::NoSpace { offset, source },
        Some(Errno::EIO) => FlashError::Io {
            offset,
            doing,
            source,
        },
        _ if source.kind() == io::ErrorKind::StorageFull => FlashError::NoSpace { offset, source },
        _ => FlashError::Other {
            offset,
            doing,
            source,
        },
    }
}

/// Fill `buf` from `read` (a `read(2)`-like call) unless it ends first; returns how much was
/// read. Short reads are normal for pipes, zstd streams and block devices.
pub(crate) fn read_full(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MB: usize = 1_000_000;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// A device in memory with faults to inject.
    #[derive(Default)]
    struct Fake {
        data: Vec<u8>,
        pos: usize,
        /// Writes fail with this errno once this many bytes were written.
        fail_write: Option<(usize, Errno)>,
        /// Reads fail with this errno from this offset on.
        fail_read: Option<(usize, Errno)>,
        /// The byte at this offset reads back flipped.
        flip: Option<usize>,
        /// The device holds only this many bytes.
        capacity: Option<usize>,
        gone: bool,
        synced: bool,
    }

    impl Target for Fake {
        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            if let Some((after, errno)) = self.fail_write {
                if self.data.len() + buf.len() > after {
                    let ok = after.saturating_sub(self.data.len());
                    self.data.extend_from_slice(&buf[..ok]);
                    return Err(io::Error::from_raw_os_error(errno as i32));
                }
            }
            self.data.extend_from_slice(buf);
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            self.synced = true;
            Ok(())
        }
        fn rewind(&mut self) -> io::Result<()> {
            self.pos = 0;
            Ok(())
        }
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if let Some((at, errno)) = self.fail_read {
                if self.pos + buf.len() > at {
                    return Err(io::Error::from_raw_os_error(errno as i32));
                }
            }
            let end = self.data.len().min(self.capacity.unwrap_or(usize::MAX));
            let n = buf.len().min(end.saturating_sub(self.pos));
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            if let Some(f) = self.flip {
                if (self.pos..self.pos + n).contains(&f) {
                    buf[f - self.pos] ^= 0xff;
                }
            }
            self.pos += n;
            Ok(n)
        }
        fn present(&self) -> bool {
            !self.gone
        }
    }

    fn run(image: &[u8], dev: &mut Fake) -> Result<Flashed, FlashError> {
        flash(&mut &image[..], image.len() as u64, dev, &mut |_, _, _| {})
    }

    #[test]
    fn an_image_is_written_synced_and_read_back() {
        let image = pattern(3 * BLOCK + 12_345);
        let mut dev = Fake::default();
        let mut seen = Vec::new();
        let done = flash(
            &mut &image[..],
            image.len() as u64,
            &mut dev,
            &mut |p, d, t| seen.push((p, d, t)),
        )
        .unwrap();
        assert_eq!(dev.data, image);
        assert!(dev.synced);
        assert_eq!(done.len, image.len() as u64);
        assert_eq!(done.hash, blake3::hash(&image));
        let len = image.len() as u64;
        assert_eq!(seen.len(), 8, "4 blocks written, 4 verified");
        assert_eq!(seen[0], (Phase::Write, BLOCK as u64, len));
        assert_eq!(seen[3], (Phase::Write, len, len));
        assert_eq!(seen[7], (Phase::Verify, len, len));
    }

    #[test]
    fn a_stick_pulled_during_the_write_says_how_far_it_got() {
        let image = pattern(4 * BLOCK);
        let mut dev = Fake {
            fail_write: Some((2 * BLOCK + 100, Errno::ENODEV)),
            ..Fake::default()
        };
        let e = run(&image, &mut dev).unwrap_err();
        assert!(
            matches!(e, FlashError::Gone { offset, .. } if offset == 2 * BLOCK as u64),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "the device went away after 8 MB: plug it back in and flash again; nothing else was \
             written"
        );
        assert!(!dev.synced);
    }

    #[test]
    fn an_io_error_is_a_pulled_stick_only_when_the_device_is_gone() {
        let image = pattern(2 * BLOCK);
        let mut dev = Fake {
            fail_write: Some((BLOCK, Errno::EIO)),
            ..Fake::default()
        };
        let e = run(&image, &mut dev).unwrap_err();
        assert!(
            matches!(e, FlashError::Io { offset, .. } if offset == BLOCK as u64),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains(&format!("at byte {BLOCK} while write")),
            "{e}"
        );

        let mut dev = Fake {
            fail_write: Some((BLOCK, Errno::EIO)),
            gone: true,
            ..Fake::default()
        };
        assert!(matches!(
            run(&image, &mut dev).unwrap_err(),
            FlashError::Gone { .. }
        ));
        let mut dev = Fake {
            fail_write: Some((BLOCK, Errno::ENXIO)),
            ..Fake::default()
        };
        assert!(matches!(
            run(&image, &mut dev).unwrap_err(),
            FlashError::Gone { .. }
        ));
    }

    #[test]
    fn a_full_device_and_other_errors_are_named() {
        let image = pattern(2 * BLOCK);
        let mut dev = Fake {
            fail_write: Some((BLOCK + 1, Errno::ENOSPC)),
            ..Fake::default()
        };
        let e = run(&image, &mut dev).unwrap_err();
        assert!(
            matches!(e, FlashError::NoSpace { offset, .. } if offset == BLOCK as u64),
            "{e:?}"
        );
        let mut dev = Fake {
            fail_write: Some((0, Errno::EPERM)),
            ..Fake::default()
        };
        let e = run(&image, &mut dev).unwrap_err();
        assert!(
            matches!(
                e,
                FlashError::Other {
                    offset: 0,
                    doing: "write",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_read_back_that_differs_names_the_block_and_is_a_failed_check() {
        let image = pattern(3 * BLOCK);
        let mut dev = Fake {
            flip: Some(BLOCK + 5 * MB / 10),
            ..Fake::default()
        };
        let e = run(&image, &mut dev).unwrap_err();
        assert!(
            matches!(e, FlashError::Mismatch { offset } if offset == BLOCK as u64),
            "{e:?}"
        );
        assert!(e.is_verification());
        assert_eq!(dev.data, image, "written in full before the read-back");
    }

    #[test]
    fn a_device_that_holds_less_than_it_took_fails_the_read_back() {
        // Fake sticks accept every write and drop what is beyond their real size.
        let image = pattern(2 * BLOCK);
        let mut dev = Fake {
            capacity: Some(BLOCK + 7),
            ..Fake::default()
        };
        let e = run(&image, &mut dev).unwrap_err();
        assert!(
            matches!(e, FlashError::ShortReadBack { offset, .. } if offset == BLOCK as u64 + 7),
            "{e:?}"
        );
        assert!(e.is_verification());
    }

    #[test]
    fn a_stick_pulled_during_the_read_back_went_away() {
        let image = pattern(3 * BLOCK);
        let mut dev = Fake {
            fail_read: Some((2 * BLOCK, Errno::ENODEV)),
            ..Fake::default()
        };
        let e = run(&image, &mut dev).unwrap_err();
        assert!(
            matches!(e, FlashError::Gone { offset, .. } if offset == 2 * BLOCK as u64),
            "{e:?}"
        );
        assert!(!e.is_verification());
    }

    #[test]
    fn an_image_that_fails_to_read_names_the_offset() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("bad sector"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(1);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut dev = Fake::default();
        let e = flash(&mut Broken(BLOCK + 10), 0, &mut dev, &mut |_, _, _| {}).unwrap_err();
        // The first full block was written; the second never filled.
        assert!(
            matches!(e, FlashError::Image { offset, .. } if offset == BLOCK as u64),
            "{e:?}"
        );
    }

    #[test]
    fn a_regular_file_is_a_target() {
        let image = pattern(BLOCK + 999);
        let mut file = tempfile::tempfile().unwrap();
        let done = flash(
            &mut &image[..],
            image.len() as u64,
            &mut file,
            &mut |_, _, _| {},
        )
        .unwrap();
        assert_eq!(done.hash, blake3::hash(&image));
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        io::Read::read_to_end(&mut file, &mut back).unwrap();
        assert_eq!(back, image);
    }

    #[test]
    fn a_block_device_is_present_while_its_sysfs_dir_exists() {
        let sys = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join("class/block/sdb")).unwrap();
        let dev = BlockDevice::new(tempfile::tempfile().unwrap(), sys.path(), "sdb");
        assert!(dev.present());
        std::fs::remove_dir(sys.path().join("class/block/sdb")).unwrap();
        assert!(!dev.present());
    }
}
