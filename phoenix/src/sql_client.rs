//! `phoenix sql`: runs a query against a running server and prints the answer.

use std::io::Write;

use anyhow::{anyhow, Context};
use arrow::ipc::reader::StreamReader;
use arrow::util::pretty::pretty_format_batches;

use crate::cli::{SqlArgs, SqlFormat};
use crate::Failure;

/// Posts the query and prints the result in the chosen format.
pub(crate) fn run(args: SqlArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let body = runtime.block_on(fetch(&args))?;
    let mut out = std::io::stdout().lock();
    match args.format {
        SqlFormat::Json | SqlFormat::Csv => out.write_all(&body).context("writing output")?,
        SqlFormat::Table => {
            let reader = StreamReader::try_new(std::io::Cursor::new(body), None)
                .context("reading the Arrow answer")?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .context("reading the Arrow answer")?;
            let table = pretty_format_batches(&batches).context("formatting")?;
            writeln!(out, "{table}").context("writing output")?;
        }
    }
    if args.format == SqlFormat::Json {
        writeln!(out).context("writing output")?;
    }
    Ok(())
}

async fn fetch(args: &SqlArgs) -> Result<Vec<u8>, Failure> {
    let accept = match args.format {
        SqlFormat::Table => "application/vnd.apache.arrow.stream",
        SqlFormat::Json => "application/json",
        SqlFormat::Csv => "text/csv",
    };
    let url = format!("{}/api/v1/sql", args.server.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .header("accept", accept)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "query": args.query }).to_string())
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer from {url}"))?;
    if status.is_success() {
        return Ok(bytes.to_vec());
    }
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    let err = anyhow!("query failed ({status}): {message}");
    if status.is_client_error() {
        Err(Failure::User(err))
    } else {
        Err(Failure::Runtime(err))
    }
}
