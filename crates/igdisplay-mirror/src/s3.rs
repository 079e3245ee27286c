//! [`ObjectBlobStore`]: blobs in object storage (feature `s3`), through the `object_store`
//! crate: AWS S3 or any S3-compatible server (MinIO, R2, …). A `PUT` of one object is atomic,
//! so a reader sees the old file or the new one.

use crate::blob::{BlobError, BlobStore, check_key};
use crate::download::{Download, DownloadError};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};
use std::sync::Arc;

/// Where an S3-compatible bucket is, and the credentials for it. `Debug` hides the secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The region (`us-east-1` for most S3-compatible servers).
    pub region: String,
    /// The endpoint of an S3-compatible server (`None`: AWS).
    pub endpoint: Option<String>,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// Whether a plain `http://` endpoint is allowed (a server on the same machine).
    pub allow_http: bool,
}

impl S3Config {
    /// A bucket on `endpoint` (an S3-compatible server; region `us-east-1`).
    pub fn new(
        bucket: impl Into<String>,
        endpoint: Option<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            region: "us-east-1".to_owned(),
            endpoint,
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            allow_http: false,
        }
    }

    /// Allows a plain `http://` endpoint.
    #[must_use]
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Blobs as objects of a bucket (or any `object_store` store).
#[derive(Clone, Debug)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
}

impl ObjectBlobStore {
    /// Blobs in `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Blobs in the S3-compatible bucket `config` names.
    ///
    /// # Errors
    ///
    /// [`BlobError::Config`] for a configuration the client refuses (never showing the
    /// secret).
    pub fn s3(config: &S3Config) -> Result<Self, BlobError> {
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder
            .build()
            .map_err(|e| BlobError::Config(e.to_string().replace(&config.secret_access_key, "[redacted]")))?;
        Ok(Self::new(Arc::new(store)))
    }
}

fn remote(action: &'static str, key: &str) -> impl FnOnce(object_store::Error) -> BlobError {
    let key = key.to_owned();
    move |source| BlobError::Remote {
        action,
        key,
        source: Box::new(source),
    }
}

fn path(key: &str) -> Result<Path, BlobError> {
    check_key(key)?;
    Path::parse(key).map_err(|_| BlobError::InvalidKey(key.chars().take(80).collect()))
}

#[async_trait::async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.store
            .put(&path(key)?, bytes.into())
            .await
            .map(drop)
            .map_err(remote("write", key))
    }

    /// A multipart upload in parts of 5 MiB, two in flight at most: a video's memory is a
    /// few parts, whatever its size; a failed download aborts the upload (nothing is stored).
    async fn put_download(
        &self,
        key: &str,
        download: &mut Download,
    ) -> Result<Result<u64, DownloadError>, BlobError> {
        let upload = self
            .store
            .put_multipart(&path(key)?)
            .await
            .map_err(remote("write", key))?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut size = 0u64;
        while let Some(chunk) = download.next_chunk().await {
            match chunk {
                Ok(chunk) => {
                    size = size.saturating_add(chunk.len() as u64);
                    writer.wait_for_capacity(2).await.map_err(remote("write", key))?;
                    writer.put(chunk);
                }
                Err(error) => {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(%abort, key, "an upload cut short was not aborted; the bucket's lifecycle rules remove it");
                    }
                    return Ok(Err(error));
                }
            }
        }
        writer.finish().await.map_err(remote("write", key))?;
        Ok(Ok(size))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        match self.store.get(&path(key)?).await {
            Ok(found) => found.bytes().await.map(Some).map_err(remote("read", key)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(remote("read", key)(error)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.store.head(&path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(remote("look for", key)(error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(remote("delete", key)(error)),
        }
    }
}
