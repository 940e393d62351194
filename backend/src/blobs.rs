//! Content-addressed blob storage behind `object_store`: file contents of snapshots, named by
//! their blake3 hex hash (`hivesync_analysis::changeset::content_hash`), stored once however many
//! snapshots or projects share them. `file://` storage is a `LocalFileSystem` under the
//! configured directory (writes go to a temporary file and are renamed into place, so a reader
//! never sees half a blob). Which project may read which blob is the database's business
//! (`store::snapshots`), not this module's.

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::Path;
use std::sync::Arc;

/// A blob storage failure (the backing store is not answering or refused the operation).
#[derive(Debug, thiserror::Error)]
#[error("blob storage: {0}")]
pub struct BlobError(pub String);

impl From<BlobError> for crate::error::AppError {
    fn from(e: BlobError) -> Self {
        crate::error::AppError::Unavailable(e.0)
    }
}

/// Where blobs live. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl BlobStore {
    /// Blobs as files under `dir` (created if missing).
    pub fn local(dir: &Path) -> BlobStore {
        let _ = std::fs::create_dir_all(dir);
        if let Ok(fs) = LocalFileSystem::new_with_prefix(dir) {
            return BlobStore {
                store: Arc::new(fs),
                prefix: ObjectPath::default(),
            };
        }
        // The directory could not be created now: address it from the root, so a later write
        // (which creates directories) still lands in the right place.
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let text = absolute.to_string_lossy().replace('\\', "/");
        BlobStore {
            store: Arc::new(LocalFileSystem::new()),
            prefix: ObjectPath::from(text.trim_start_matches('/')),
        }
    }

    /// Blobs in any `object_store` implementation (S3, memory, …), under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> BlobStore {
        BlobStore {
            store,
            prefix: ObjectPath::from(prefix),
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
            .map_err(|e| BlobError(e.to_string()))
    }

    /// The blob's content, `None` when absent.
    pub async fn get(&self, hash: &str) -> Result<Option<Bytes>, BlobError> {
        match self.store.get(&self.location(hash)).await {
            Ok(result) => result
                .bytes()
                .await
                .map(Some)
                .map_err(|e| BlobError(e.to_string())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BlobError(e.to_string())),
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
            Err(e) => Err(BlobError(e.to_string())),
        }
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
