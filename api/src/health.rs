//! `/health`, `/health/detailed` and `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use phoenix_model::Status;

use crate::ApiState;

/// 200 whenever the process serves.
pub(crate) async fn live() -> &'static str {
    "ok\n"
}

/// Every component's status and figures; 503 when one is down.
pub(crate) async fn detailed(State(state): State<ApiState>) -> Response {
    let overall = state.health.overall();
    let body = serde_json::json!({
        "status": overall,
        "components": state.health.snapshot(),
    });
    let code = if overall == Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

/// Prometheus text exposition of every `phoenix_` metric.
pub(crate) async fn prometheus(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.prometheus.render(),
    )
        .into_response()
}
