//! Builds the object store behind `storage.url`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use phoenix_model::StorageUrl;

use crate::{Error, Result};

/// Synthetic URL under which the query engine registers the tables' object store; object paths
/// below it are table-relative (`metrics/date=…/…parquet`).
pub const OBJECT_STORE_URL: &str = "phoenix://tables/";

/// An object store whose root is the tables root named by `url`.
///
/// A local path is created if missing and canonicalized; `s3://bucket/prefix` reads the usual
/// `AWS_*` variables (including `AWS_ENDPOINT` and `AWS_ALLOW_HTTP` for S3-compatible servers).
///
/// # Errors
/// [`Error::Url`] for an unsupported URL or bad S3 settings, [`Error::Folder`] when a local folder
/// cannot be created.
pub fn build_object_store(url: &str) -> Result<Arc<dyn ObjectStore>> {
    let parsed = StorageUrl::parse(url).map_err(|reason| Error::Url {
        url: url.to_string(),
        reason,
    })?;
    match parsed {
        StorageUrl::Memory => Ok(Arc::new(InMemory::new())),
        StorageUrl::Local(path) => {
            let folder = |source| Error::Folder {
                path: path.clone(),
                source,
            };
            std::fs::create_dir_all(&path).map_err(folder)?;
            let canonical = std::fs::canonicalize(&path).map_err(folder)?;
            let store = LocalFileSystem::new_with_prefix(&canonical).map_err(|e| Error::Url {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
            Ok(Arc::new(store))
        }
        StorageUrl::S3 { bucket, prefix } => {
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(&bucket)
                .with_retry(short_retries())
                .build()
                .map_err(|e| Error::Url {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
            if prefix.is_empty() {
                Ok(Arc::new(s3))
            } else {
                Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
            }
        }
    }
}

/// Retries of one request inside the client: few and short. The sink retries a failed flush
/// itself with backoff (its rows stay buffered and the WAL keeps them), so a long client-side
/// retry (object_store's default is 3 minutes) would only hide an outage from `/health`.
fn short_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
        ..RetryConfig::default()
    }
}

/// Ranged reads of one Parquet object, for the async Parquet reader (footer and row groups).
pub(crate) struct StoreReader {
    /// The store holding the object.
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The object.
    pub(crate) path: Path,
    /// The object's size in bytes (the footer is read from its end).
    pub(crate) size: u64,
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let meta = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local path is created and the store's root is that folder.
    #[tokio::test]
    async fn local_folder_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("a/b");
        let store = build_object_store(root.to_str().expect("utf8")).expect("store");
        assert!(root.is_dir());
        use object_store::ObjectStoreExt;
        store
            .put(&"t/x".into(), bytes::Bytes::from_static(b"1").into())
            .await
            .expect("put");
        assert!(root.join("t/x").is_file());
    }

    /// Unsupported schemes are refused with the URL in the message.
    #[test]
    fn bad_scheme_refused() {
        let err = build_object_store("gs://x").expect_err("gs unsupported");
        assert!(err.to_string().contains("gs://x"), "{err}");
    }
}
