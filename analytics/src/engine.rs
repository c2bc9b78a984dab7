//! [`QueryEngine`]: sandboxed, bounded SQL over the storage tables.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use futures::StreamExt;
use phoenix_model::config::ApiConfig;
use phoenix_storage::{Storage, OBJECT_STORE_URL};
use tokio::sync::Semaphore;

use crate::sandbox::{parse_read_only, verify_plan};
use crate::table::StorageSchema;
use crate::{QueryError, Result};

/// Catalog and schema the storage tables appear in (`SELECT … FROM metrics` resolves here).
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

/// A query's result: its schema and every batch.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Column names and types, also when there are no rows.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    /// Total rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

#[derive(Debug)]
struct Inner {
    /// Template every query's session is built from.
    state: SessionState,
    storage: Storage,
    timeout: Duration,
    memory_bytes: usize,
    max_rows: usize,
    max_concurrent: usize,
    permits: Arc<Semaphore>,
}

/// Runs read-only SQL over the storage tables with time, memory, row and concurrency limits.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct QueryEngine {
    inner: Arc<Inner>,
}

impl QueryEngine {
    /// An engine over every table of `storage`, with limits from `cfg`.
    ///
    /// Tables created in `storage` later (rollups) become queryable without re-creating the
    /// engine. URL tables are off, spilling is off (a query over its memory budget fails
    /// instead of writing temp files), `information_schema` is on.
    ///
    /// # Errors
    /// [`QueryError::Internal`] if DataFusion cannot be set up.
    pub fn new(storage: Storage, cfg: &ApiConfig) -> Result<QueryEngine> {
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .with_memory_pool(query_pool(cfg.query_memory_bytes))
            .build_arc()?;
        let url = url::Url::parse(OBJECT_STORE_URL)
            .map_err(|e| QueryError::Internal(format!("{OBJECT_STORE_URL}: {e}")))?;
        runtime.register_object_store(&url, storage.object_store());

        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_create_default_catalog_and_schema(false);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        let catalog = MemoryCatalogProvider::new();
        catalog.register_schema(SCHEMA, Arc::new(StorageSchema::new(storage.clone())))?;
        state
            .catalog_list()
            .register_catalog(CATALOG.to_string(), Arc::new(catalog));

        let max_concurrent = cfg.max_concurrent_queries.max(1);
        Ok(QueryEngine {
            inner: Arc::new(Inner {
                state,
                storage,
                timeout: Duration::from_secs(cfg.query_timeout_secs.max(1)),
                memory_bytes: cfg.query_memory_bytes,
                max_rows: cfg.max_result_rows,
                max_concurrent,
                permits: Arc::new(Semaphore::new(max_concurrent)),
            }),
        })
    }

    /// The storage the engine reads.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// Runs one read-only statement and returns all its rows.
    ///
    /// # Errors
    /// [`QueryError::Busy`] at once when `max_concurrent_queries` are running;
    /// [`QueryError::Refused`] / [`QueryError::Invalid`] for statements the sandbox refuses or
    /// that do not plan; [`QueryError::Timeout`] past `query_timeout_secs` (the query is
    /// cancelled); [`QueryError::ResourcesExhausted`] past `query_memory_bytes` or
    /// `max_result_rows`; [`QueryError::Internal`] for storage failures.
    pub async fn query(&self, sql: &str) -> Result<QueryOutput> {
        let started = Instant::now();
        let result = self.bounded(self.collect(sql)).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        metrics::counter!("phoenix_analytics_queries_total", "outcome" => outcome).increment(1);
        metrics::histogram!("phoenix_analytics_query_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(out) => tracing::debug!(
                rows = out.num_rows(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Query done."
            ),
            Err(error) => tracing::info!(%error, reason = error.reason(), "Query failed."),
        }
        result
    }

    /// The optimized physical plan of a read-only statement, without running it (for
    /// `EXPLAIN`-style inspection and tests); same sandbox and limits as [`Self::query`].
    ///
    /// # Errors
    /// As [`Self::query`], minus the row cap.
    pub async fn physical_plan(&self, sql: &str) -> Result<Arc<dyn ExecutionPlan>> {
        self.bounded(async {
            let df = self.plan(sql).await?;
            Ok(df.create_physical_plan().await?)
        })
        .await
    }

    /// Runs `fut` under the concurrency and time limits.
    async fn bounded<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let _permit = Arc::clone(&self.inner.permits)
            .try_acquire_owned()
            .map_err(|_| QueryError::Busy {
                limit: self.inner.max_concurrent,
            })?;
        // Dropping the future on timeout drops the plan's streams, which aborts their tasks.
        tokio::time::timeout(self.inner.timeout, fut)
            .await
            .unwrap_or(Err(QueryError::Timeout {
                secs: self.inner.timeout.as_secs(),
            }))
    }

    /// Parses, checks and plans `sql` in a fresh session with its own memory budget.
    async fn plan(&self, sql: &str) -> Result<DataFrame> {
        let statement = parse_read_only(sql)?;
        let state = self.query_state()?;
        let plan = state.statement_to_plan(statement).await?;
        verify_plan(&plan)?;
        Ok(DataFrame::new(state, plan))
    }

    async fn collect(&self, sql: &str) -> Result<QueryOutput> {
        let df = self.plan(sql).await?;
        let mut stream = df.execute_stream().await?;
        let schema = stream.schema();
        let mut batches = Vec::new();
        let mut rows = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows += batch.num_rows();
            if rows > self.inner.max_rows {
                return Err(QueryError::ResourcesExhausted(format!(
                    "the result has more than {} rows (max_result_rows); add a LIMIT or aggregate",
                    self.inner.max_rows
                )));
            }
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        Ok(QueryOutput { schema, batches })
    }

    /// A session sharing catalog, caches and object store with the template, but with a memory
    /// pool of its own, so `query_memory_bytes` bounds each query rather than all of them.
    fn query_state(&self) -> Result<SessionState> {
        let template = &self.inner.state;
        let runtime = RuntimeEnvBuilder::from_runtime_env(template.runtime_env())
            .with_memory_pool(query_pool(self.inner.memory_bytes))
            .build_arc()?;
        let mut state = SessionStateBuilder::new_from_existing(template.clone())
            .with_runtime_env(runtime)
            .build();
        // Fixes `now()` for the query; without it the planner cannot fold `now()`.
        state.mark_start_execution();
        Ok(state)
    }
}

/// A memory pool of `bytes` that names the biggest consumers when it runs out.
fn query_pool(bytes: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(
        GreedyMemoryPool::new(bytes),
        NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
    ))
}

/// Paths of the Parquet files a physical plan reads (each file once per scan that reads it).
pub fn scanned_files(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>() {
        if let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() {
            for group in &config.file_groups {
                out.extend(
                    group
                        .files()
                        .iter()
                        .map(|f| f.object_meta.location.to_string()),
                );
            }
        }
    }
    for child in plan.children() {
        out.extend(scanned_files(child));
    }
    out
}
