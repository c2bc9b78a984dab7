use phoenix_analytics::{format::encode_json, QueryEngine};
use phoenix_model::config::{ApiConfig, StorageConfig};
use phoenix_storage::testing::{metrics_batch, TestPoint};
use phoenix_storage::Storage;
const T0: i64 = 1_795_269_600_000_000_000;
#[tokio::test]
async fn scratch() {
    let storage = Storage::open(&StorageConfig { url: "memory://".into(), ..StorageConfig::default() }).await.unwrap();
    let t = storage.table("metrics").unwrap();
    t.append(metrics_batch(&[TestPoint::gauge("cpu", "web", T0, 0.5).attr("a", "b")])).unwrap();
    t.flush().await.unwrap();
    t.append(metrics_batch(&[TestPoint::gauge("cpu", "web", T0 + 5, 0.5).attr("a", "b")])).unwrap();
    let e = QueryEngine::new(storage, &ApiConfig::default()).unwrap();
    for q in ["EXPLAIN SELECT time, value FROM metrics WHERE time >= '2026-11-21T14:00:00Z' AND metric = 'cpu'",
              "SELECT time, start_time, attributes['a'], attributes, bounds, now() FROM metrics", "SHOW TABLES", "SELECT * FROM metrics LIMIT 1"] {
        let out = e.query(q).await.unwrap();
        println!("{}", arrow::util::pretty::pretty_format_batches(&out.batches).unwrap());
        println!("{}", String::from_utf8(encode_json(&out)).unwrap());
    }
}
