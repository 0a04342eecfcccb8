//! Image flashing for `pos image flash`: write an appliance image onto a disk or USB stick.
//!
//! IO stays at the edges so each part is tested on its own:
//! - [`check`]: which device may be written, decided from sysfs and mountinfo (never a
//!   partition, a mounted, held or system disk, a read-only or too small one).
//! - [`image`]: the image file, plain or zstd-compressed, read once to learn its length.
//! - [`copy`]: the copy in 4 MiB blocks onto an opened [`copy::Target`], fsync, read-back with
//!   a blake3 comparison per block; errors name the byte offset and tell a pulled stick apart.

pub mod check;
pub mod copy;
pub mod image;

pub use check::{check_disk, check_path, human, Disk, Env, Refusal, SYSTEM_MOUNTS};
pub use copy::{flash, BlockDevice, FlashError, Flashed, Phase, Target, BLOCK};
pub use image::{inspect, Image, ImageError};
