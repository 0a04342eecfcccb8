//! Questions asked on the terminal (confirmations of commands that erase or replace things).

use std::io::{BufRead, Write};

use anyhow::{bail, Context};

/// A line from the terminal after `prompt`, trimmed. End of input is an error, so a script
/// piping nothing in never confirms anything.
pub fn ask(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    if n == 0 {
        bail!("no answer (end of input): nothing was changed");
    }
    Ok(line.trim().to_owned())
}
