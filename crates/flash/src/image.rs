//! The image file: plain (`.img`) or zstd-compressed (`.img.zst`), told apart by the zstd magic
//! number rather than the name.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// An image that was read to the end once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub path: PathBuf,
    pub compressed: bool,
    /// Uncompressed length: what is written to the device.
    pub len: u64,
    /// Length of the file itself.
    pub file_len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image {path} does not exist: give the path of the .img or .img.zst file")]
    NotFound { path: PathBuf },
    #[error("cannot read the image {path}: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("the image {path} is empty: download or build it again")]
    Empty { path: PathBuf },
    #[error(
        "the image {path} is damaged (zstd: {source} after {offset} bytes): download or build it \
         again; nothing was written"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
}

/// Look at the image before anything is erased. A compressed image is decompressed once to the
/// end: that is the only reliable way to know its length (the frame header may not say) and it
/// finds a damaged download before the disk is erased, not half-way. `progress(done, total)`
/// counts compressed bytes.
pub fn inspect(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Image, ImageError> {
    let unreadable = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            ImageError::NotFound {
                path: path.to_owned(),
            }
        } else {
            ImageError::Unreadable {
                path: path.to_owned(),
                source,
            }
        }
    };
    let mut file = File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(unreadable(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    let file_len = meta.len();
    let mut magic = [0u8; 4];
    let got = crate::copy::read_full(|b| file.read(b), &mut magic).map_err(unreadable)?;
    let compressed = got == 4 && magic == ZSTD_MAGIC;
    let len = if compressed {
        let counted = Counted {
            inner: File::open(path).map_err(unreadable)?,
            done: 0,
            total: file_len,
            progress,
        };
        let mut dec = zstd::Decoder::new(counted).map_err(unreadable)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            match dec.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => len += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ImageError::Corrupt {
                        path: path.to_owned(),
                        offset: len,
                        source,
                    })
                }
            }
        }
        len
    } else {
        file_len
    };
    if len == 0 {
        return Err(ImageError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(Image {
        path: path.to_owned(),
        compressed,
        len,
        file_len,
    })
}

impl Image {
    /// The image's bytes, decompressed if it is compressed.
    pub fn open(&self) -> Result<Box<dyn Read>, ImageError> {
        let unreadable = |source| ImageError::Unreadable {
            path: self.path.clone(),
            source,
        };
        let file = File::open(&self.path).map_err(unreadable)?;
        if self.compressed {
            Ok(Box::new(zstd::Decoder::new(file).map_err(unreadable)?))
        } else {
            Ok(Box::new(BufReader::new(file)))
        }
    }
}

/// A reader that reports how much of the file was consumed.
struct Counted<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done, self.total);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::copy::{flash, BLOCK};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 65_536) as u8)
            .collect()
    }

    #[test]
    fn a_plain_image_is_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pos.img");
        std::fs::write(&path, pattern(5000)).unwrap();
        let img = inspect(&path, &mut |_, _| {}).unwrap();
        assert!(!img.compressed);
        assert_eq!((img.len, img.file_len), (5000, 5000));
        let mut back = Vec::new();
        img.open().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, pattern(5000));
    }

    #[test]
    fn a_zstd_image_is_measured_and_flashed_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        // Named like a plain image: the magic number decides, not the name.
        let path = dir.path().join("pos.img");
        let data = pattern(2 * BLOCK + 77);
        std::fs::write(&path, zstd::encode_all(&data[..], 3).unwrap()).unwrap();
        let mut last = (0, 0);
        let img = inspect(&path, &mut |d, t| last = (d, t)).unwrap();
        assert!(img.compressed);
        assert_eq!(img.len, data.len() as u64);
        assert!(img.file_len < img.len);
        assert_eq!(last, (img.file_len, img.file_len));

        let mut target = tempfile::tempfile().unwrap();
        let done = flash(
            &mut img.open().unwrap(),
            img.len,
            &mut target,
            &mut |_, _, _| {},
        )
        .unwrap();
        assert_eq!(done.len, data.len() as u64);
        assert_eq!(done.hash, blake3::hash(&data));
    }

    #[test]
    fn a_truncated_zstd_image_is_damaged_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pos.img.zst");
        let z = zstd::encode_all(&pattern(BLOCK)[..], 3).unwrap();
        std::fs::write(&path, &z[..z.len() / 2]).unwrap();
        let e = inspect(&path, &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, ImageError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("nothing was written"), "{e}");
    }

    #[test]
    fn missing_empty_and_directory_images_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.img");
        assert!(matches!(
            inspect(&missing, &mut |_, _| {}).unwrap_err(),
            ImageError::NotFound { .. }
        ));
        let empty = dir.path().join("empty.img");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            inspect(&empty, &mut |_, _| {}).unwrap_err(),
            ImageError::Empty { .. }
        ));
        assert!(matches!(
            inspect(dir.path(), &mut |_, _| {}).unwrap_err(),
            ImageError::Unreadable { .. }
        ));
    }
}
