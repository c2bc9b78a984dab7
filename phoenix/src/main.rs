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

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, the same in v2 and v3;
/// `libmimalloc-sys` names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays committed before mimalloc returns it to the OS, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise.
///
/// A flush allocates and frees a few hundred MiB of Arrow and Parquet buffers every second or
/// two under load. With the default (1 s) much of it went back to the OS between flushes and
/// was faulted in and zeroed again by the next: 10 s made the empty pipeline ~6% faster
/// (696k → 737k dp/s, medians of three alternating 25 s runs at 1M offered) for ~90 MiB more
/// peak RSS.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// Sets [`PURGE_DELAY_MS`] before any other thread starts.
#[allow(unsafe_code)]
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; the option
        // exists in the linked mimalloc, and no other thread runs yet.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

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
    tune_allocator();
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
