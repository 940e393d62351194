//! Content-addressed blob storage behind `object_store`: file contents of snapshots, named by
//! their blake3 hex hash (`hivesync_analysis::changeset::content_hash`), stored once however many
//! snapshots or projects share them. `file://` storage is a `LocalFileSystem` under the
//! configured directory (writes go to a temporary file and are renamed into place, so a reader
//! never sees half a blob). `s3://` storage is `object_store`'s `AmazonS3` (AWS or any
//! S3-compatible server) over [`ReqwestConnector`], reqwest 0.12 with rustls on ring. Which project may read which blob is the database's business
//! (`store::snapshots`), not this module's.

use crate::config::{S3Storage, Storage};
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A blob storage failure (the backing store is not answering or refused the operation).
#[derive(Debug, thiserror::Error)]
#[error("blob storage: {0}")]
pub struct BlobError(pub String);

impl From<BlobError> for crate::error::AppError {
    fn from(e: BlobError) -> Self {
        crate::error::AppError::Unavailable(e.0)
    }
}

/// A store's error on one line (S3 error bodies are multi-line XML).
fn store_error(e: object_store::Error) -> BlobError {
    BlobError(
        e.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Where blobs live. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `"file"`, `"s3"`, … (for `/readyz`).
    backend: &'static str,
    /// The directory of `file://` storage (readiness checks it is writable).
    local_dir: Option<PathBuf>,
}

impl BlobStore {
    /// Blobs as files under `dir` (created if missing).
    pub fn local(dir: &Path) -> BlobStore {
        let _ = std::fs::create_dir_all(dir);
        if let Ok(fs) = LocalFileSystem::new_with_prefix(dir) {
            return BlobStore {
                store: Arc::new(fs),
                prefix: ObjectPath::default(),
                backend: "file",
                local_dir: Some(dir.to_path_buf()),
            };
        }
        // The directory could not be created now: address it from the root, so a later write
        // (which creates directories) still lands in the right place.
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let text = absolute.to_string_lossy().replace('\\', "/");
        BlobStore {
            store: Arc::new(LocalFileSystem::new()),
            prefix: ObjectPath::from(text.trim_start_matches('/')),
            backend: "file",
            local_dir: Some(dir.to_path_buf()),
        }
    }

    /// Blobs in any `object_store` implementation (S3, memory, …), under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> BlobStore {
        BlobStore {
            store,
            prefix: ObjectPath::from(prefix),
            backend: "object_store",
            local_dir: None,
        }
    }

    /// The store `storage_url` names. Builds the client only; [`BlobStore::ping`] reaches it.
    pub fn from_config(storage: &Storage) -> Result<BlobStore, BlobError> {
        match storage {
            Storage::Local(dir) => Ok(BlobStore::local(dir)),
            Storage::S3(s3) => BlobStore::s3(s3),
        }
    }

    /// Blobs in an S3 bucket (AWS, or the S3-compatible server at `endpoint`), under `prefix`.
    pub fn s3(cfg: &S3Storage) -> Result<BlobStore, BlobError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_allow_http(cfg.allow_http)
            .with_http_connector(ReqwestConnector)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: S3_MAX_RETRIES,
                retry_timeout: S3_RETRY_TIMEOUT,
            });
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        if let Some(token) = &cfg.session_token {
            builder = builder.with_token(token);
        }
        let store = builder
            .build()
            .map_err(|e| BlobError(format!("s3://{}: {e}", cfg.bucket)))?;
        Ok(BlobStore {
            store: Arc::new(store),
            prefix: ObjectPath::from(cfg.prefix.as_str()),
            backend: "s3",
            local_dir: None,
        })
    }

    /// The underlying store and the prefix every blob lives under.
    pub fn raw(&self) -> (&Arc<dyn ObjectStore>, &ObjectPath) {
        (&self.store, &self.prefix)
    }

    /// `"file"`, `"s3"`, or `"object_store"` for a store given to [`BlobStore::new`].
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Answers when the store does: a `file://` directory exists and is writable; an object
    /// store lists the prefix (a missing bucket, refused credentials or an unreachable endpoint
    /// fail).
    pub async fn ping(&self) -> Result<(), BlobError> {
        if let Some(dir) = &self.local_dir {
            let meta = tokio::fs::metadata(dir)
                .await
                .map_err(|e| BlobError(format!("storage directory: {e}")))?;
            if !meta.is_dir() {
                return Err(BlobError("storage path is not a directory".into()));
            }
            if meta.permissions().readonly() {
                return Err(BlobError("storage directory is read-only".into()));
            }
            return Ok(());
        }
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        match self.store.list_with_delimiter(prefix).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(BlobError("the bucket does not exist".into()))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// `<prefix>/ab/cd/abcd…` for hash `abcd…`. The hash must already be validated as blake3 hex.
    fn location(&self, hash: &str) -> ObjectPath {
        let (a, b) = (
            &hash[..2.min(hash.len())],
            &hash[2.min(hash.len())..4.min(hash.len())],
        );
        self.prefix.clone().join(a).join(b).join(hash)
    }

    /// Stores `content` under `hash` unless a blob with that hash is already there.
    pub async fn put(&self, hash: &str, content: Bytes) -> Result<(), BlobError> {
        if self.exists(hash).await? {
            return Ok(());
        }
        self.store
            .put(&self.location(hash), PutPayload::from(content))
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// The blob's content, `None` when absent.
    pub async fn get(&self, hash: &str) -> Result<Option<Bytes>, BlobError> {
        match self.store.get(&self.location(hash)).await {
            Ok(result) => result.bytes().await.map(Some).map_err(store_error),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Every stored blob: its hash and when it was last written (Unix milliseconds).
    pub async fn list(&self) -> Result<Vec<(String, i64)>, BlobError> {
        use futures::TryStreamExt;
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| BlobError(e.to_string()))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                // Only blob names (hex hashes); temporary files and strangers are left alone.
                (name.len() >= 16 && name.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| (name, m.last_modified.timestamp_millis()))
            })
            .collect())
    }

    /// Removes a blob (absent is fine).
    pub async fn delete(&self, hash: &str) -> Result<(), BlobError> {
        match self.store.delete(&self.location(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BlobError(e.to_string())),
        }
    }

    pub async fn exists(&self, hash: &str) -> Result<bool, BlobError> {
        match self.store.head(&self.location(hash)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Retries of one S3 request (connection errors, 5xx, throttling) and the time they may take.
const S3_MAX_RETRIES: usize = 3;
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to open a connection to the S3 endpoint, and for a whole request (blobs are at most
/// `blob_max_bytes`, 64 MiB by default).
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// `object_store`'s HTTP client for S3: reqwest 0.12 with rustls on ring (the workspace's one
/// TLS stack; `object_store`'s own `aws` feature would build aws-lc-sys). HTTPS only unless the
/// store allows plain HTTP (`AWS_ALLOW_HTTP=true`).
#[derive(Debug, Clone, Copy)]
pub struct ReqwestConnector;

impl HttpConnector for ReqwestConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let allow_http = options
            .get_config_value(&object_store::ClientConfigKey::AllowHttp)
            .is_some_and(|v| v == "true");
        let client = reqwest::Client::builder()
            .https_only(!allow_http)
            .connect_timeout(S3_CONNECT_TIMEOUT)
            .timeout(S3_REQUEST_TIMEOUT)
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(ReqwestService(client)))
    }
}

#[derive(Debug)]
struct ReqwestService(reqwest::Client);

fn http_error(e: reqwest::Error) -> HttpError {
    let kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_request() || e.is_body() {
        HttpErrorKind::Request
    } else if e.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Unknown
    };
    HttpError::new(kind, e)
}

#[async_trait::async_trait]
impl HttpService for ReqwestService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        use http_body_util::BodyExt;
        let (parts, body) = req.into_parts();
        let req =
            reqwest::Request::try_from(http::Request::from_parts(parts, reqwest::Body::wrap(body)))
                .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
        let res: http::Response<reqwest::Body> =
            self.0.execute(req).await.map_err(http_error)?.into();
        let (parts, body) = res.into_parts();
        Ok(HttpResponse::from_parts(
            parts,
            HttpResponseBody::new(body.map_err(http_error)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_dedup_on_local_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::local(dir.path());
        let hash = hivesync_analysis::changeset::content_hash(b"hello");
        assert!(store.get(&hash).await.expect("get").is_none());
        store
            .put(&hash, Bytes::from_static(b"hello"))
            .await
            .expect("put");
        store
            .put(&hash, Bytes::from_static(b"hello"))
            .await
            .expect("second put is a no-op");
        assert_eq!(
            store.get(&hash).await.expect("get").as_deref(),
            Some(&b"hello"[..])
        );
        let file = dir.path().join(&hash[..2]).join(&hash[2..4]).join(&hash);
        assert!(file.is_file(), "{file:?}");
    }
}
