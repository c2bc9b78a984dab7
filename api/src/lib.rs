//! Phoenix's HTTP API (port 8080): SQL, anomalies, health and Prometheus metrics.

mod anomalies;
mod health;
mod sql;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use phoenix_analytics::QueryEngine;
use phoenix_model::HealthRegistry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// SQL engine over stored and buffered data.
    pub engine: Arc<QueryEngine>,
    /// Component health reports.
    pub health: HealthRegistry,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/sql", post(sql::handle))
        .route("/api/v1/anomalies", get(anomalies::handle))
        .route("/health", get(health::live))
        .route("/health/detailed", get(health::detailed))
        .route("/metrics", get(health::prometheus))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` is cancelled, then finishes open requests.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
