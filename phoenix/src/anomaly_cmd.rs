//! `phoenix anomaly ...`: offline anomaly scoring of one series from CSV.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use phoenix_anomaly::offline::{self, CsvError};
use phoenix_anomaly::DetectorConfig;

use crate::Failure;

/// `phoenix anomaly ...`.
#[derive(Debug, Subcommand)]
pub enum AnomalyCommand {
    /// Score one series: reads `timestamp,value` CSV (in time order), writes
    /// `timestamp,value,anomaly_score` with a score in [0, 1] per row.
    Score(ScoreArgs),
}

/// `phoenix anomaly score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Input CSV with a `timestamp,value` header; `-` reads stdin.
    #[arg(long, short)]
    pub input: PathBuf,
    /// Output CSV; stdout when absent.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Runs an `anomaly` subcommand.
pub(crate) fn run(cmd: AnomalyCommand) -> Result<(), Failure> {
    match cmd {
        AnomalyCommand::Score(args) => score(args),
    }
}

fn score(args: ScoreArgs) -> Result<(), Failure> {
    let name = args.input.display().to_string();
    let mut bytes = Vec::new();
    let read = if name == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(&args.input).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|e| Failure::User(anyhow!("{name}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Failure::User(anyhow!(
            "{name}: not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let config = DetectorConfig::default();
    let user = |e: CsvError| match e {
        CsvError::Io(io) => Failure::Runtime(anyhow::Error::new(io)),
        other => Failure::User(anyhow!("{name}: {other}")),
    };
    match &args.output {
        // Score into memory first, so bad input never leaves a half-written file behind.
        Some(path) => {
            let mut out = Vec::new();
            offline::score_csv(&text, &mut out, &config).map_err(user)?;
            std::fs::write(path, out)
                .with_context(|| format!("writing {}", path.display()))
                .map_err(Failure::Runtime)?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            offline::score_csv(&text, &mut out, &config).map_err(user)?;
            out.flush().map_err(|e| Failure::Runtime(e.into()))?;
        }
    }
    Ok(())
}
