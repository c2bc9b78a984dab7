//! `phoenix config validate`.

use anyhow::anyhow;
use phoenix_model::{Config, ConfigError};

use crate::cli::ValidateArgs;
use crate::Failure;

/// Loads and validates the file; prints every problem, one line each, and starts nothing.
pub(crate) fn validate(args: ValidateArgs) -> Result<(), Failure> {
    match Config::load(Some(&args.file), &[]) {
        Ok(_) => {
            println!("{}: ok", args.file.display());
            Ok(())
        }
        Err(ConfigError::Invalid { file, issues }) => {
            for issue in &issues {
                eprintln!("error: {file}: {issue}");
            }
            Err(Failure::User(anyhow!(
                "{} error(s) in {file}",
                issues.len()
            )))
        }
        Err(e) => Err(Failure::User(e.into())),
    }
}
