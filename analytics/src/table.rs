//! [`PhoenixTable`]: a storage table as a DataFusion `TableProvider` — Parquet files pruned by
//! the time range in their names, unioned with the not-yet-flushed buffer.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::config::TableParquetOptions;
use datafusion::common::project_schema;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use phoenix_storage::{FileMeta, Storage, Table, OBJECT_STORE_URL};

use crate::prune::TimeRange;

/// One storage table, queryable as files plus buffer.
#[derive(Debug)]
pub struct PhoenixTable {
    table: Table,
    store_url: ObjectStoreUrl,
}

impl PhoenixTable {
    /// Wraps a storage table.
    ///
    /// # Errors
    /// Never in practice: [`OBJECT_STORE_URL`] is a valid URL.
    pub fn new(table: Table) -> Result<Self> {
        Ok(Self {
            table,
            store_url: ObjectStoreUrl::parse(OBJECT_STORE_URL)?,
        })
    }

    /// Files whose name range overlaps what `filters` allow on the time column.
    fn prune<'a>(&self, files: &'a [FileMeta], filters: &[Expr]) -> Vec<&'a FileMeta> {
        let range = TimeRange::from_filters(filters, self.table.time_column());
        files
            .iter()
            .filter(|f| range.overlaps(f.min_time, f.max_time))
            .collect()
    }

    fn parquet_scan(
        &self,
        state: &dyn Session,
        files: &[&FileMeta],
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.table.schema();
        let options = TableParquetOptions {
            global: state.config_options().execution.parquet.clone(),
            ..TableParquetOptions::default()
        };
        let store = state.runtime_env().object_store(&self.store_url)?;
        let metadata_cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        let source = ParquetSource::new(SchemaRef::clone(&schema))
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                store,
                metadata_cache,
            )));
        // Row-group and page pruning by column statistics needs no predicate here: filters are
        // `Inexact`, so a FilterExec stays above this scan and DataFusion's FilterPushdown
        // physical rule moves its predicate into the ParquetSource (setting it here as well
        // would evaluate it twice; `row_groups_are_pruned` checks the effect). Files are sorted
        // by metric, service, series and time, so `metric = …` and time filters skip most data.
        let groups = split_round_robin(
            files
                .iter()
                .map(|f| PartitionedFile::new(f.path.to_string(), f.size))
                .collect(),
            state.config_options().execution.target_partitions,
        );
        let config = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }

    fn memory_scan(
        &self,
        state: &dyn Session,
        batches: Vec<RecordBatch>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions =
            split_round_robin(batches, state.config_options().execution.target_partitions);
        let source =
            MemorySourceConfig::try_new(&partitions, self.table.schema(), projection.cloned())?
                .with_limit(limit);
        Ok(DataSourceExec::from_data_source(source))
    }
}

#[async_trait]
impl TableProvider for PhoenixTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters prune files and row groups but are re-checked on every row.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // One snapshot: each row is in exactly one of the files or the buffer.
        let snapshot = self.table.snapshot();
        let files = self.prune(&snapshot.files, filters);
        tracing::debug!(table = %self.table.name(), files = files.len(), total_files = snapshot.files.len(), buffered_batches = snapshot.buffered.len(), "Planning scan.");
        let mut inputs = Vec::with_capacity(2);
        if !files.is_empty() {
            inputs.push(self.parquet_scan(state, &files, projection, limit)?);
        }
        if !snapshot.buffered.is_empty() {
            inputs.push(self.memory_scan(state, snapshot.buffered, projection, limit)?);
        }
        match inputs.len() {
            0 => Ok(Arc::new(EmptyExec::new(project_schema(
                &self.table.schema(),
                projection,
            )?))),
            _ => UnionExec::try_new(inputs),
        }
    }
}

/// Deals items into at most `n` non-empty groups.
fn split_round_robin<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let n = n.clamp(1, items.len().max(1));
    let mut groups: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        groups[i % n].push(item);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// The `public` schema: every storage table, including ones created after the engine started.
#[derive(Debug)]
pub(crate) struct StorageSchema {
    storage: Storage,
}

impl StorageSchema {
    pub(crate) fn new(storage: Storage) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl SchemaProvider for StorageSchema {
    fn table_names(&self) -> Vec<String> {
        self.storage.tables()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        match self.storage.get_table(name) {
            Some(t) => Ok(Some(Arc::new(PhoenixTable::new(t)?))),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.storage.get_table(name).is_some()
    }
}
