//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Phoenix: OTLP metrics in, cost cut by a processor graph, Parquet out, SQL on top.
#[derive(Debug, Parser)]
#[command(name = "phoenix", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline (receivers, graph, storage, HTTP API).
    Serve(ServeArgs),
    /// Run a SQL query against a running server.
    Sql(SqlArgs),
    /// Push OTLP metrics at a target rate; the last stdout line is a JSON report.
    Loadgen(phoenix_loadgen::LoadgenArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Anomaly detection tools (offline scoring of a CSV series).
    #[command(subcommand)]
    Anomaly(crate::anomaly_cmd::AnomalyCommand),
}

/// Which parts of the pipeline this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Receivers, graph and storage in one process.
    All,
    /// Receivers → bus only (Kafka mode).
    Ingest,
    /// Bus → processors → storage only (Kafka mode).
    Process,
}

/// `phoenix serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (YAML); without it the embedded default runs.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override one config value by its dotted key path, e.g. `api.listen=127.0.0.1:8081`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Which parts to run.
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub role: Role,
}

/// Output format of `phoenix sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqlFormat {
    /// An aligned text table.
    Table,
    /// The API's JSON answer.
    Json,
    /// CSV with a header line.
    Csv,
}

/// `phoenix sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query.
    pub query: String,
    /// Base URL of the Phoenix HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "PHOENIX_SERVER")]
    pub server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    pub format: SqlFormat,
}

/// `phoenix config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and print every error with its key path.
    Validate(ValidateArgs),
}

/// `phoenix config validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The config file.
    pub file: PathBuf,
}
