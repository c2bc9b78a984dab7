//! `GET /api/v1/anomalies?since=…&min_score=…&kind=…&limit=…`: recent rows of the
//! `anomalies` table, read through the SQL engine (so not-yet-flushed rows are included; the
//! writer moves new anomalies into the table every second).
//!
//! Answers `{"status":"success","data":[{column: value, …}, …]}`, oldest first, the newest
//! `limit` (default 1000) rows; errors `{"status":"error","error":"…"}` with 400 / 503.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phoenix_analytics::format::encode_json;
use phoenix_model::anomaly::ANOMALIES_TABLE;
use serde_json::{json, Value};

use crate::ApiState;

/// Rows returned when `limit` is not given.
const DEFAULT_LIMIT: usize = 1000;
/// Largest `limit` accepted.
const MAX_LIMIT: usize = 100_000;

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({ "status": "error", "error": message.into() });
    (code, axum::Json(body)).into_response()
}

/// `since` as ns since the epoch: RFC 3339, or unix seconds (fractions allowed).
fn parse_since(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs.abs() < 9.2e9 {
            return Ok((secs * 1e9) as i64);
        }
        return Err(format!("since={s} is out of range"));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| format!("since={s} is neither RFC 3339 nor unix seconds"))
}

/// The query for the parameters; only validated numbers and a fixed kind name go into it.
fn build_query(params: &HashMap<String, String>) -> Result<String, String> {
    let mut conditions = Vec::new();
    for key in params.keys() {
        if !matches!(key.as_str(), "since" | "min_score" | "kind" | "limit") {
            return Err(format!(
                "unknown parameter `{key}`; known: since, min_score, kind, limit"
            ));
        }
    }
    if let Some(since) = params.get("since") {
        conditions.push(format!(
            "time >= to_timestamp_nanos({})",
            parse_since(since)?
        ));
    }
    if let Some(min) = params.get("min_score") {
        let min: f64 = min
            .parse()
            .ok()
            .filter(|m: &f64| m.is_finite())
            .ok_or_else(|| format!("min_score={min} is not a number"))?;
        conditions.push(format!("score >= {min:?}"));
    }
    if let Some(kind) = params.get("kind") {
        let kind = match kind.as_str() {
            phoenix_model::anomaly::KIND_POINT => phoenix_model::anomaly::KIND_POINT,
            phoenix_model::anomaly::KIND_CARDINALITY => phoenix_model::anomaly::KIND_CARDINALITY,
            other => return Err(format!("kind={other} is not `point` or `cardinality`")),
        };
        conditions.push(format!("kind = '{kind}'"));
    }
    let limit = match params.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| format!("limit={l} is not in 1..={MAX_LIMIT}"))?,
        None => DEFAULT_LIMIT,
    };
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    Ok(format!(
        "SELECT * FROM (SELECT * FROM {ANOMALIES_TABLE}{filter} ORDER BY time DESC LIMIT {limit}) \
         ORDER BY time, metric"
    ))
}

pub(crate) async fn handle(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let response = answer(&state, &params).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("phoenix_api_requests_total", "endpoint" => "anomalies", "status" => status)
        .increment(1);
    response
}

async fn answer(state: &ApiState, params: &HashMap<String, String>) -> Response {
    let sql = match build_query(params) {
        Ok(sql) => sql,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if state.engine.storage().get_table(ANOMALIES_TABLE).is_none() {
        return axum::Json(json!({ "status": "success", "data": [] })).into_response();
    }
    let output = match state.engine.query(&sql).await {
        Ok(o) => o,
        Err(e) => {
            let code =
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(code, e.to_string());
        }
    };
    // Reuse the SQL endpoint's JSON encoding (timestamps RFC 3339, maps as objects), then
    // key each row by column name.
    let table: Value = match serde_json::from_slice(&encode_json(&output)) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let names: Vec<String> = output
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let data: Vec<Value> = table["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(Value::as_array)
                .map(|row| Value::Object(names.iter().cloned().zip(row.iter().cloned()).collect()))
                .collect()
        })
        .unwrap_or_default();
    axum::Json(json!({ "status": "success", "data": data })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `since` takes RFC 3339 and unix seconds; bad values and unknown parameters are refused;
    /// only validated values reach the SQL.
    #[test]
    fn parameters() {
        assert_eq!(parse_since("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_since("1700000000.5"), Ok(1_700_000_000_500_000_000));
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000_000_000_000)
        );
        assert!(parse_since("yesterday").is_err());
        let p = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let sql = build_query(&p(&[
            ("since", "10"),
            ("min_score", "0.7"),
            ("kind", "point"),
        ]))
        .expect("valid");
        assert!(
            sql.contains("time >= to_timestamp_nanos(10000000000)"),
            "{sql}"
        );
        assert!(
            sql.contains("score >= 0.7") && sql.contains("kind = 'point'"),
            "{sql}"
        );
        assert!(build_query(&p(&[("min_score", "1; DROP")])).is_err());
        assert!(build_query(&p(&[("kind", "x'")])).is_err());
        assert!(build_query(&p(&[("foo", "1")])).is_err());
        assert!(build_query(&p(&[("limit", "0")])).is_err());
    }
}
