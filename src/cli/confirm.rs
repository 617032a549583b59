//! The one "yes" prompt of the mutating commands: asked on a terminal, refused elsewhere, so that
//! pipelines never hang on a prompt.

use std::io::{BufRead, IsTerminal, Write};

use super::CliError;

/// Asks `question`; only "yes" goes on. Without a terminal it refuses `what` and names
/// `--auto-approve`; any other answer fails with `cancelled`.
pub fn yes(what: &str, question: &str, cancelled: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to {what} without a terminal to confirm on; pass --auto-approve"
        )));
    }
    eprint!("{question} Only 'yes' is accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" { Ok(()) } else { Err(CliError::Failed(cancelled.into())) }
}
