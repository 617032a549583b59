//! Error rendering for humans: manifest problems are shown with the offending line and a caret.

use std::fmt::Write as _;

use super::CliError;
use crate::engine::PlanError;
use crate::manifest::ManifestError;
use crate::resource::OWNER_TAG;

pub fn render_error(error: &CliError) -> String {
    match error {
        CliError::Manifest(ManifestError::Invalid(diagnostics)) => {
            let mut out = String::new();
            for d in diagnostics {
                let _ = writeln!(out, "error: {d}");
                let source = std::fs::read_to_string(&d.file).unwrap_or_default();
                if let Some((pos, line)) =
                    d.position.and_then(|p| Some((p, source.lines().nth(p.line.checked_sub(1)?)?)))
                {
                    let _ = writeln!(out, "  {:>4} | {line}", pos.line);
                    let _ = writeln!(out, "       | {}^", " ".repeat(pos.column.saturating_sub(1)));
                }
            }
            let _ = write!(out, "{} problem(s) found; nothing was sent to AWS", diagnostics.len());
            out
        }
        CliError::Plan(failure) => {
            let mut lines: Vec<String> = failure
                .refusals
                .iter()
                .map(|refusal| match refusal {
                    PlanError::NotOwned { .. } => format!(
                        "error: {refusal}\n  it carries no {OWNER_TAG} tag: rename the stack, remove the resource, \
                         or pass --adopt to take it over"
                    ),
                    PlanError::OwnedElsewhere { .. } => {
                        format!("error: {refusal}\n  its {OWNER_TAG} tag names another stack, which is never adopted")
                    }
                })
                .collect();
            lines.extend(failure.errors.iter().map(|e| format!("error: {e}")));
            lines.join("\n")
        }
        // Bare, so that the last line starts with `ClientError: ` as a job's FailureReason does.
        CliError::Client(reason) => reason.clone(),
        other => format!("error: {other}"),
    }
}
