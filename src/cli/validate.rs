//! `lakesight validate`: parse and check a manifest; no AWS call.

use std::path::Path;

use super::{CliError, exit};
use crate::manifest::Manifest;

pub fn run(file: &Path) -> Result<u8, CliError> {
    let manifest = Manifest::load(file)?;
    println!("{}: stack {:?} is valid", file.display(), manifest.metadata.name);
    Ok(exit::SUCCESS)
}
