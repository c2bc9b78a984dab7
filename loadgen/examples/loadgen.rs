//! `phoenix loadgen` as a standalone program, for trying the generator before (or without)
//! the `phoenix` binary: `cargo run --release -p phoenix-loadgen --example loadgen -- --help`.

use std::process::ExitCode;

use clap::Parser;

/// Push OTLP metrics at a target rate and report what the endpoint accepted.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    #[command(flatten)]
    args: phoenix_loadgen::LoadgenArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match phoenix_loadgen::run(cli.args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
