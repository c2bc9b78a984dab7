//! [`Storage`]: the object store and the tables found in it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use parking_lot::RwLock;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::errors::ParquetError;
use phoenix_model::config::StorageConfig;
use phoenix_model::metrics_schema;

use crate::compact::REPLACES_KEY;
use crate::layout::{is_compacted, parse_object_path, valid_table_name};
use crate::replay::read_footer;
use crate::store::{build_object_store, StoreReader};
use crate::table::FileMeta;
use crate::{Error, Result, Table, METRICS_TABLE};

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    cfg: StorageConfig,
    tables: RwLock<BTreeMap<String, Table>>,
}

/// The tables root in object storage and every table in it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

impl Storage {
    /// Opens the store named by `cfg.url` and rebuilds every table's manifest from a listing.
    ///
    /// # Errors
    /// A bad URL or folder, or a failed listing.
    pub async fn open(cfg: &StorageConfig) -> Result<Storage> {
        let store = build_object_store(&cfg.url)?;
        Self::open_with_store(store, cfg).await
    }

    /// Like [`Storage::open`] with a ready object store whose root is the tables root (tests,
    /// embedding). `cfg.url` is not used.
    ///
    /// # Errors
    /// A failed listing.
    pub async fn open_with_store(
        store: Arc<dyn ObjectStore>,
        cfg: &StorageConfig,
    ) -> Result<Storage> {
        let found = list_files(&store).await?;
        let mut tables = BTreeMap::new();
        for (name, files) in found {
            let (files, replaced) = drop_replaced(&store, files).await;
            if !replaced.is_empty() {
                // The process died before the delayed deletes of a compaction: finish them.
                tracing::info!(table = %name, files = replaced.len(), "Deleting files a compacted file replaced.");
                for p in &replaced {
                    if let Err(error) = store.delete(p).await {
                        tracing::warn!(path = %p, %error, "Cannot delete a replaced file.");
                    }
                }
            }
            let schema = if name == METRICS_TABLE {
                metrics_schema()
            } else {
                match read_schema(&store, &files).await {
                    Some(s) => s,
                    None => {
                        tracing::warn!(table = %name, "Skipping table: no readable Parquet footer.");
                        continue;
                    }
                }
            };
            tracing::info!(table = %name, files = files.len(), "Loaded table manifest.");
            let table = Table::new(&name, schema, Arc::clone(&store), cfg, files)?;
            tables.insert(name, table);
        }
        if !tables.contains_key(METRICS_TABLE) {
            let table = Table::new(
                METRICS_TABLE,
                metrics_schema(),
                Arc::clone(&store),
                cfg,
                vec![],
            )?;
            tables.insert(METRICS_TABLE.to_string(), table);
        }
        Ok(Storage {
            inner: Arc::new(Inner {
                store,
                cfg: cfg.clone(),
                tables: RwLock::new(tables),
            }),
        })
    }

    /// Re-lists the object store so files other nodes wrote (or deleted) since the last
    /// listing become visible to queries, and tables they created appear. Files this process
    /// adds while the listing runs are kept. Returns how many files were added.
    ///
    /// # Errors
    /// A failed listing.
    pub async fn refresh(&self) -> Result<usize> {
        let before: BTreeMap<String, Vec<Path>> = self
            .inner
            .tables
            .read()
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.snapshot().files.into_iter().map(|f| f.path).collect(),
                )
            })
            .collect();
        let mut found = list_files(&self.inner.store).await?;
        for files in found.values_mut() {
            // Not deleted here: the node that compacted deletes them after its grace period.
            *files = drop_replaced(&self.inner.store, std::mem::take(files))
                .await
                .0;
        }
        let mut added = 0;
        for (name, known) in &before {
            let listed = found.get(name).cloned().unwrap_or_default();
            if let Some(t) = self.get_table(name) {
                added += t.sync_files(known, listed);
            }
        }
        for (name, files) in found {
            if before.contains_key(&name) {
                continue;
            }
            let Some(schema) = read_schema(&self.inner.store, &files).await else {
                continue;
            };
            let n = files.len();
            let table = Table::new(
                &name,
                schema,
                Arc::clone(&self.inner.store),
                &self.inner.cfg,
                files,
            )?;
            let mut tables = self.inner.tables.write();
            if let std::collections::btree_map::Entry::Vacant(slot) = tables.entry(name) {
                tracing::info!(table = %slot.key(), files = n, "Found a table written by another node.");
                slot.insert(table);
                added += n;
            }
        }
        Ok(added)
    }

    /// The object store; its root is the tables root (paths look like `metrics/date=…/…`).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner.store)
    }

    /// The storage settings this was opened with.
    pub fn config(&self) -> &StorageConfig {
        &self.inner.cfg
    }

    /// Names of every table, sorted.
    pub fn tables(&self) -> Vec<String> {
        self.inner.tables.read().keys().cloned().collect()
    }

    /// An existing table, if any.
    pub fn get_table(&self, name: &str) -> Option<Table> {
        self.inner.tables.read().get(name).cloned()
    }

    /// The table `name`, created with [`metrics_schema`] if it does not exist yet.
    ///
    /// # Errors
    /// [`Error::TableName`] for a name that is not `[a-z_][a-z0-9_]*`.
    pub fn table(&self, name: &str) -> Result<Table> {
        if let Some(t) = self.get_table(name) {
            return Ok(t);
        }
        self.table_with_schema(name, metrics_schema())
    }

    /// The table `name` with `schema`, created if it does not exist yet.
    ///
    /// # Errors
    /// [`Error::TableName`] for a bad name, [`Error::Schema`] when the table exists with another
    /// schema or the schema has no non-null `Timestamp(ns)` column.
    pub fn table_with_schema(&self, name: &str, schema: SchemaRef) -> Result<Table> {
        if !valid_table_name(name) {
            return Err(Error::TableName(name.to_string()));
        }
        let mut tables = self.inner.tables.write();
        if let Some(t) = tables.get(name) {
            if t.schema().fields() != schema.fields() {
                return Err(Error::Schema {
                    table: name.to_string(),
                    reason: "exists with a different schema".into(),
                });
            }
            return Ok(t.clone());
        }
        let table = Table::new(
            name,
            schema,
            Arc::clone(&self.inner.store),
            &self.inner.cfg,
            vec![],
        )?;
        tables.insert(name.to_string(), table.clone());
        Ok(table)
    }

    /// Flushes every table (used at shutdown).
    ///
    /// # Errors
    /// The first table flush failure; every table is still attempted.
    pub async fn flush_all(&self) -> Result<()> {
        let tables: Vec<Table> = self.inner.tables.read().values().cloned().collect();
        let mut first = None;
        for t in tables {
            if let Err(e) = t.flush().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Every table file in the store, by table.
async fn list_files(store: &Arc<dyn ObjectStore>) -> Result<BTreeMap<String, Vec<FileMeta>>> {
    let mut found: BTreeMap<String, Vec<FileMeta>> = BTreeMap::new();
    let mut listing = store.list(None);
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| Error::store("list", "/", e))?
    {
        match parse_object_path(&meta.location) {
            Some((table, min_time, max_time)) if valid_table_name(&table) => {
                found.entry(table).or_default().push(FileMeta {
                    path: meta.location,
                    min_time,
                    max_time,
                    size: meta.size,
                    rows: None,
                });
            }
            _ => {
                tracing::debug!(path = %meta.location, "Skipping object that is not a Phoenix table file.")
            }
        }
    }
    Ok(found)
}

/// Splits a table's listing into the files to keep and those a listed compacted file replaced
/// ([`REPLACES_KEY`]). Only compacted files sharing their folder with other files have their
/// footer read; an unreadable footer replaces nothing (rows may show twice, none go missing).
async fn drop_replaced(
    store: &Arc<dyn ObjectStore>,
    files: Vec<FileMeta>,
) -> (Vec<FileMeta>, Vec<Path>) {
    let folder = |p: &Path| {
        p.as_ref()
            .rsplit_once('/')
            .map_or(String::new(), |(f, _)| f.to_string())
    };
    let mut per_folder: HashMap<String, usize> = HashMap::new();
    for f in &files {
        *per_folder.entry(folder(&f.path)).or_default() += 1;
    }
    let mut replaced: HashSet<Path> = HashSet::new();
    for f in &files {
        let dir = folder(&f.path);
        if !is_compacted(&f.path) || per_folder.get(&dir).copied().unwrap_or(0) < 2 {
            continue;
        }
        match read_footer(store.as_ref(), &f.path, f.size).await {
            Ok(meta) => {
                let names = meta
                    .file_metadata()
                    .key_value_metadata()
                    .and_then(|kv| kv.iter().find(|k| k.key == REPLACES_KEY))
                    .and_then(|k| k.value.clone())
                    .unwrap_or_default();
                for n in names.split(',').filter(|n| !n.is_empty()) {
                    replaced.insert(Path::from(format!("{dir}/{n}")));
                }
            }
            Err(error) => {
                tracing::warn!(path = %f.path, %error, "Cannot read a compacted file's footer.")
            }
        }
    }
    if replaced.is_empty() {
        return (files, Vec::new());
    }
    let (gone, keep): (Vec<FileMeta>, Vec<FileMeta>) =
        files.into_iter().partition(|f| replaced.contains(&f.path));
    (keep, gone.into_iter().map(|f| f.path).collect())
}

/// The Arrow schema of a table, from the footer of its newest readable file.
async fn read_schema(store: &Arc<dyn ObjectStore>, files: &[FileMeta]) -> Option<SchemaRef> {
    let mut newest: Vec<&FileMeta> = files.iter().collect();
    newest.sort_by_key(|f| std::cmp::Reverse(f.max_time));
    for f in newest {
        match footer_schema(store, &f.path, f.size).await {
            Ok(schema) => return Some(schema),
            Err(error) => tracing::warn!(path = %f.path, %error, "Cannot read Parquet footer."),
        }
    }
    None
}

/// The Arrow schema stored in one file's footer (usually one ranged read).
async fn footer_schema(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
) -> Result<SchemaRef, ParquetError> {
    let mut reader = StoreReader {
        store: Arc::clone(store),
        path: path.clone(),
        size,
    };
    let meta = reader.get_metadata(None).await?;
    let file = meta.file_metadata();
    Ok(Arc::new(parquet_to_arrow_schema(
        file.schema_descr(),
        file.key_value_metadata(),
    )?))
}
