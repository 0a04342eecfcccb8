//! Big-endian primitives of the message bodies: a bounds-checked reader that never panics and
//! never allocates more than the bytes it has actually been given.

use pos_audit::encoding::DecodeError;

/// Why a message body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("ends early while reading {0}")]
    Truncated(&'static str),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("unknown {what} code {code}")]
    UnknownCode { what: &'static str, code: u8 },
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
    #[error("{0} is not a module name (1 to 64 characters of a-z, 0-9, `_`, `-`, `.`)")]
    BadModuleName(String),
    #[error("{what}: {count} items, more than the {max} allowed")]
    TooMany {
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLong {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("event record: {0}")]
    Event(#[from] DecodeError),
    #[error("an event batch holds no entries")]
    EmptyBatch,
}

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BodyError> {
        if self.rest.len() < n {
            return Err(BodyError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], BodyError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, BodyError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, BodyError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, BodyError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, BodyError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A count of items of at least `min_item_bytes` each: refused if the rest of the body
    /// could not hold that many, so no caller ever loops or allocates for items that are not there.
    pub(crate) fn count(
        &mut self,
        raw: u64,
        min_item_bytes: usize,
        max: u64,
        what: &'static str,
    ) -> Result<usize, BodyError> {
        let fit = (self.rest.len() / min_item_bytes.max(1)) as u64;
        if raw > max {
            return Err(BodyError::TooMany {
                what,
                count: raw,
                max,
            });
        }
        if raw > fit {
            return Err(BodyError::Truncated(what));
        }
        // raw <= fit <= rest.len(), which is a usize.
        Ok(raw as usize)
    }

    /// UTF-8 text with a u16 length prefix, at most `max` bytes.
    pub(crate) fn str16(&mut self, max: usize, what: &'static str) -> Result<String, BodyError> {
        let len = self.u16(what)? as usize;
        if len > max {
            return Err(BodyError::TooLong {
                what,
                len: len as u64,
                max: max as u64,
            });
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| BodyError::BadUtf8(what))
    }

    /// A module name with a u8 length prefix.
    pub(crate) fn module_name(&mut self, what: &'static str) -> Result<String, BodyError> {
        let len = self.u8(what)? as usize;
        let bytes = self.take(len, what)?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| BodyError::BadUtf8(what))?;
        if !is_module_name(&text) {
            return Err(BodyError::BadModuleName(text));
        }
        Ok(text)
    }

    pub(crate) fn finish(self) -> Result<(), BodyError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(BodyError::TrailingBytes(n)),
        }
    }
}

/// The same rule as event module names in `pos-audit`.
pub(crate) fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Text with a u16 length prefix, cut at a character boundary to at most `max` bytes.
pub(crate) fn put_str16(out: &mut Vec<u8>, text: &str, max: usize) {
    let text = truncate_at_char(text, max.min(u16::MAX as usize));
    put_u16(out, text.len() as u16);
    out.extend_from_slice(text.as_bytes());
}

/// A module name (validated by the constructors of the messages that carry one).
pub(crate) fn put_module_name(out: &mut Vec<u8>, name: &str) {
    let name = truncate_at_char(name, 64);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

pub(crate) fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Counts are written as u32; every list the protocol sends is bounded far below that.
pub(crate) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
