//! JSON, CSV and Arrow IPC encodings of real query results.

use phoenix_analytics::format::{encode_arrow_ipc, encode_csv, encode_json, Format};
use phoenix_analytics::QueryEngine;
use phoenix_model::config::{ApiConfig, StorageConfig};
use phoenix_storage::testing::{metrics_batch, TestPoint};
use phoenix_storage::Storage;
use serde_json::json;

/// 2026-11-21T14:00:00Z in ns.
const T0: i64 = 1_795_269_600_000_000_000;

async fn engine() -> QueryEngine {
    let storage = Storage::open(&StorageConfig {
        url: "memory://".into(),
        ..StorageConfig::default()
    })
    .await
    .expect("open");
    let table = storage.table("metrics").expect("metrics");
    table
        .append(metrics_batch(&[
            TestPoint::gauge("cpu", "web", T0 + 123_456_789, 0.5).attr("http.route", "/api"),
            TestPoint::gauge("cpu", "web", T0 + 1_000_000_000, 2.0),
        ]))
        .expect("append");
    QueryEngine::new(storage, &ApiConfig::default()).expect("engine")
}

/// JSON has the contract's shape and value encodings (RFC 3339 ns `Z`, u64 numbers, maps as
/// objects, lists as arrays, nulls).
#[tokio::test]
async fn json_values() {
    let e = engine().await;
    let out = e
        .query(
            "SELECT time, metric, value, series_id, attributes, bounds, \
             CAST(18446744073709551615 AS BIGINT UNSIGNED) AS big, make_array(1.5, 2.5) AS l, \
             true AS b, 'q\"x' AS s \
             FROM metrics ORDER BY time",
        )
        .await
        .expect("query");
    let v: serde_json::Value = serde_json::from_slice(&encode_json(&out)).expect("valid JSON");
    let columns = v["columns"].as_array().expect("columns");
    assert_eq!(
        columns[0],
        json!({"name": "time", "type": out.schema.field(0).data_type().to_string()})
    );
    assert_eq!(columns[3]["name"], "series_id");
    assert_eq!(columns[3]["type"], "UInt64");
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r[0], "2026-11-21T14:00:00.123456789Z");
    assert_eq!(r[1], "cpu");
    assert_eq!(r[2], 0.5);
    assert!(r[3].is_u64());
    assert_eq!(r[4], json!({"http.route": "/api"}));
    assert_eq!(r[5], serde_json::Value::Null);
    assert_eq!(r[6], json!(18446744073709551615_u64));
    assert_eq!(r[7], json!([1.5, 2.5]));
    assert_eq!(r[8], true);
    assert_eq!(r[9], "q\"x");
    assert_eq!(rows[1][0], "2026-11-21T14:00:01.000000000Z");
    assert_eq!(rows[1][4], json!({}));
}

/// An empty result still names its columns.
#[tokio::test]
async fn json_empty_result() {
    let e = engine().await;
    let out = e
        .query("SELECT metric FROM metrics WHERE false")
        .await
        .expect("query");
    let text = String::from_utf8(encode_json(&out)).expect("utf8");
    assert_eq!(
        text,
        r#"{"columns":[{"name":"metric","type":"Utf8"}],"rows":[]}"#
    );
    assert_eq!(
        String::from_utf8(encode_csv(&out).expect("csv")).expect("utf8"),
        "metric\n"
    );
}

/// CSV has a header and one line per row; timestamps and maps render readably.
#[tokio::test]
async fn csv_rows() {
    let e = engine().await;
    let out = e
        .query("SELECT time, metric, value, attributes FROM metrics ORDER BY time")
        .await
        .expect("query");
    let text = String::from_utf8(encode_csv(&out).expect("csv")).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "time,metric,value,attributes");
    assert_eq!(
        lines[1],
        r#"2026-11-21T14:00:00.123456789Z,cpu,0.5,"{""http.route"":""/api""}""#
    );
    assert_eq!(lines[2], "2026-11-21T14:00:01.000000000Z,cpu,2.0,{}");
    assert_eq!(lines.len(), 3);
}

/// The Arrow IPC stream reads back to the same schema and batches.
#[tokio::test]
async fn arrow_ipc_round_trip() {
    let e = engine().await;
    let out = e
        .query("SELECT * FROM metrics ORDER BY time")
        .await
        .expect("query");
    let bytes = encode_arrow_ipc(&out).expect("ipc");
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .expect("reader");
    assert_eq!(reader.schema(), out.schema);
    let batches: Vec<_> = reader.map(|b| b.expect("batch")).collect();
    assert_eq!(batches, out.batches);
}

/// `Accept` selects the format; JSON is the default.
#[test]
fn format_from_accept() {
    assert_eq!(Format::from_accept(None), Format::Json);
    assert_eq!(Format::from_accept(Some("text/csv")), Format::Csv);
    assert_eq!(
        Format::from_accept(Some("application/vnd.apache.arrow.stream")),
        Format::ArrowIpc
    );
    assert_eq!(Format::from_accept(Some("*/*")), Format::Json);
    assert_eq!(
        Format::ArrowIpc.content_type(),
        "application/vnd.apache.arrow.stream"
    );
}
