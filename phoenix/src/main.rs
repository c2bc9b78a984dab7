//! `phoenix`: the Phoenix server and its command-line client.
//!
//! Exit codes: 0 success, 1 user error (bad config, bad query), 2 runtime failure.

mod anomaly_cmd;
mod anomaly_task;
mod anomaly_webhook;
mod cli;
mod config_cmd;
mod kafka_router;
mod serve;
mod serve_kafka;
mod sql_client;
mod usage_task;

use std::process::ExitCode;

use clap::Parser;

// glibc malloc spent about a third of the server's CPU under load (many short-lived
// per-request allocations and large buffers returned to the OS); mimalloc keeps both cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad config, bad query, bad arguments: exit 1.
    User(anyhow::Error),
    /// Anything else: exit 2.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Sql(args) => sql_client::run(args),
        cli::Command::Config(cli::ConfigCommand::Validate(args)) => config_cmd::validate(args),
        cli::Command::Anomaly(cmd) => anomaly_cmd::run(cmd),
        cli::Command::Loadgen(args) => phoenix_loadgen::run(args).map(|_| ()).map_err(|e| {
            if e.is_user_error() {
                Failure::User(e.into())
            } else {
                Failure::Runtime(e.into())
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::User(e)) => {
            report(&e);
            ExitCode::from(1)
        }
        Err(Failure::Runtime(e)) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            report(&e);
            ExitCode::from(2)
        }
    }
}

/// Prints the error and its causes on one line.
fn report(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
