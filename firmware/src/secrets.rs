//! Reading secrets (PINs, passwords, TOTP codes) from standard input.
//!
//! On a terminal the user is prompted without echo; from a pipe, one secret per line. Secrets
//! never appear in arguments (visible in `ps`), logs or error messages.

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{bail, Context as _};

/// Longest accepted line: far above any PIN, password or code, small enough to refuse junk.
const MAX_LINE: usize = 1024;

#[derive(Debug)]
pub struct SecretInput {
    interactive: bool,
    lines: std::vec::IntoIter<String>,
}

impl SecretInput {
    pub fn from_stdin() -> anyhow::Result<SecretInput> {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Ok(SecretInput {
                interactive: true,
                lines: Vec::new().into_iter(),
            });
        }
        let mut lines = Vec::new();
        let mut reader = stdin.lock().take((MAX_LINE * 8) as u64);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .context("cannot read standard input")?;
            if n == 0 {
                break;
            }
            if buf.len() > MAX_LINE {
                bail!("a line on standard input is longer than {MAX_LINE} bytes: refusing it");
            }
            let line = String::from_utf8(buf.clone())
                .map_err(|_| anyhow::anyhow!("standard input is not valid UTF-8 text"))?;
            lines.push(line.trim_end_matches(['\r', '\n']).to_owned());
        }
        Ok(SecretInput {
            interactive: false,
            lines: lines.into_iter(),
        })
    }

    /// The next secret; `what` names it in the prompt and in the error when it is missing.
    pub fn next(&mut self, what: &str) -> anyhow::Result<String> {
        match self.next_optional(what)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => bail!("{what} expected on standard input (one per line)"),
        }
    }

    /// The next secret if one was given (an empty line or end of input means none).
    pub fn next_optional(&mut self, what: &str) -> anyhow::Result<Option<String>> {
        if self.interactive {
            let s = rpassword::prompt_password(format!("{what}: "))
                .context("cannot read from the terminal")?;
            return Ok(Some(s).filter(|s| !s.is_empty()));
        }
        Ok(self.lines.next().filter(|s| !s.is_empty()))
    }

    pub fn is_interactive(&self) -> bool {
        self.interactive
    }
}
