//! `POST /api/v1/sql`: runs one read-only query and answers JSON, CSV or Arrow IPC.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use phoenix_analytics::format::Format;
use serde::Deserialize;

use crate::ApiState;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
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
    let response = answer(&state, &headers, &body).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("phoenix_api_requests_total", "endpoint" => "sql", "status" => status)
        .increment(1);
    metrics::histogram!("phoenix_api_request_duration_seconds", "endpoint" => "sql")
        .record(started.elapsed());
    response
}

async fn answer(state: &ApiState, headers: &HeaderMap, body: &[u8]) -> Response {
    let request: SqlRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body must be JSON {{\"query\": \"...\"}}: {e}"),
            )
        }
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let output = match state.engine.query(&request.query).await {
        Ok(output) => output,
        Err(e) => {
            let code =
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(code, e.to_string());
            if code == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return response;
        }
    };
    match format.encode(&output) {
        Ok(bytes) => ([(header::CONTENT_TYPE, format.content_type())], bytes).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the result failed: {e}"),
        ),
    }
}
