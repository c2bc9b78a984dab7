//! `POST /api/v1/sql`: runs one read-only query and answers JSON, CSV or Arrow IPC.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use phoenix_analytics::format::{encode_arrow_ipc, encode_csv, encode_json};
use serde::Deserialize;

use crate::ApiState;

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
}

/// Output format chosen from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Arrow,
}

fn negotiate(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains(ARROW_STREAM) {
        Format::Arrow
    } else if accept.contains("text/csv") {
        Format::Csv
    } else {
        Format::Json
    }
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (code, axum::Json(body)).into_response()
}

pub(crate) async fn handle(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let request: SqlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            metrics::counter!("phoenix_api_queries_total", "status" => "400").increment(1);
            return error(
                StatusCode::BAD_REQUEST,
                format!("body must be JSON {{\"query\": \"...\"}}: {e}"),
            );
        }
    };
    let format = negotiate(&headers);
    let span = tracing::debug_span!("sql", query = %request.query);
    let _enter = span.enter();
    let result = state.engine.query(&request.query).await;
    let response = match result {
        Ok(output) => {
            let encoded = match format {
                Format::Json => encode_json(&output).map(|b| (b, "application/json")),
                Format::Csv => encode_csv(&output).map(|b| (b, "text/csv; charset=utf-8")),
                Format::Arrow => encode_arrow_ipc(&output).map(|b| (b, ARROW_STREAM)),
            };
            match encoded {
                Ok((bytes, content_type)) => {
                    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
                }
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("encoding failed: {e}"),
                ),
            }
        }
        Err(e) => {
            let code =
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(code, e.to_string());
            if code == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
    };
    let status = response.status().as_u16().to_string();
    metrics::counter!("phoenix_api_queries_total", "status" => status).increment(1);
    metrics::histogram!("phoenix_api_query_duration_seconds").record(started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Accept header picks Arrow, CSV, or JSON by default.
    #[test]
    fn negotiates_format() {
        let mut h = HeaderMap::new();
        assert_eq!(negotiate(&h), Format::Json);
        h.insert(header::ACCEPT, "text/csv".parse().expect("header"));
        assert_eq!(negotiate(&h), Format::Csv);
        h.insert(header::ACCEPT, ARROW_STREAM.parse().expect("header"));
        assert_eq!(negotiate(&h), Format::Arrow);
    }
}
