//! Materialising a snapshot: the committed snapshot's files, read from the blob store and
//! verified against their hashes, written under a directory (normally a fresh temporary one) so
//! the analysis engine can load it. Paths are validated again before anything is written: a
//! manifest path is relative, `/`-separated, without `..`, and never leads through a symbolic
//! link out of the directory. [`with_analysis`] does that in a temporary directory and runs the
//! engine on it, for the job kinds that read a snapshot (`docs`, `explain`, `refactor`).

use crate::state::AppState;
use hivesync_analysis::changeset::content_hash;
use hivesync_analysis::manifest::validate_manifest;
use hivesync_analysis::{Analysis, AnalysisError, AnalysisHost};
use hivesync_protocol::Manifest;
use std::path::{Component, Path};
use uuid::Uuid;

/// Why a snapshot could not be materialised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaterializeError {
    /// No such snapshot in the project, or it is not committed yet (will not change by retrying).
    #[error("{0}")]
    Unusable(String),
    /// A path or a content is not what the manifest promises (will not change by retrying).
    #[error("{0}")]
    Invalid(String),
    /// The database, the blob store or the disk failed (may work on another attempt).
    #[error("{0}")]
    Unavailable(String),
}

impl MaterializeError {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MaterializeError::Unavailable(_))
    }
}

/// Writes the files of the committed snapshot `snapshot_id` of `project_id` under `dir` and
/// returns its manifest. The error names the snapshot, file or path that was wrong.
pub async fn materialize(
    state: &AppState,
    project_id: Uuid,
    snapshot_id: Uuid,
    dir: &Path,
) -> Result<Manifest, String> {
    materialize_checked(state, project_id, snapshot_id, dir)
        .await
        .map_err(|e| e.to_string())
}

/// [`materialize`] with the kind of failure kept (for retry decisions).
pub async fn materialize_checked(
    state: &AppState,
    project_id: Uuid,
    snapshot_id: Uuid,
    dir: &Path,
) -> Result<Manifest, MaterializeError> {
    let unavailable = |e: &dyn std::fmt::Display| MaterializeError::Unavailable(e.to_string());
    let missing = || {
        MaterializeError::Unusable(format!(
            "snapshot {snapshot_id} does not exist in this project"
        ))
    };
    let snapshot = state
        .snapshots
        .snapshot(project_id, snapshot_id)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(missing)?;
    if snapshot.committed_at.is_none() {
        return Err(MaterializeError::Unusable(format!(
            "snapshot {snapshot_id} is not committed yet (its blobs may be missing)"
        )));
    }
    let json = state
        .snapshots
        .snapshot_manifest(project_id, snapshot_id)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(missing)?;
    let manifest: Manifest = serde_json::from_str(&json).map_err(|e| {
        MaterializeError::Invalid(format!("snapshot {snapshot_id}: stored manifest: {e}"))
    })?;
    validate_manifest(&manifest)
        .map_err(|e| MaterializeError::Invalid(format!("snapshot {snapshot_id}: {e}")))?;
    let hashes: Vec<String> = manifest.files.iter().map(|f| f.hash.clone()).collect();
    let present = state
        .snapshots
        .present_blobs(project_id, &hashes)
        .await
        .map_err(|e| unavailable(&e))?;
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        MaterializeError::Unavailable(format!("cannot create {}: {e}", dir.display()))
    })?;
    for file in &manifest.files {
        let target = safe_join(dir, &file.path)?;
        if !present.contains(&file.hash) {
            return Err(MaterializeError::Invalid(format!(
                "{}: its content ({}) was never uploaded to this project",
                file.path, file.hash
            )));
        }
        let bytes = state
            .blobs
            .get(&file.hash)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| {
                MaterializeError::Unavailable(format!(
                    "{}: blob {} is recorded but not stored",
                    file.path, file.hash
                ))
            })?;
        let actual = content_hash(&bytes);
        if actual != file.hash {
            return Err(MaterializeError::Invalid(format!(
                "{}: the stored content hashes to {actual}, not {}",
                file.path, file.hash
            )));
        }
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                MaterializeError::Invalid(format!(
                    "{}: cannot create its directory: {e}",
                    file.path
                ))
            })?;
        }
        // The directory chain was just checked; check again after creating it (a symbolic
        // link cannot appear from the manifest, but the directory may not have been empty).
        safe_join(dir, &file.path)?;
        tokio::fs::write(&target, &bytes).await.map_err(|e| {
            MaterializeError::Unavailable(format!("{}: cannot write: {e}", file.path))
        })?;
    }
    Ok(manifest)
}

/// Why [`with_analysis`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisFailure {
    /// The snapshot could not be materialised.
    #[error(transparent)]
    Snapshot(#[from] MaterializeError),
    /// The engine (or the work given to it) failed.
    #[error(transparent)]
    Engine(AnalysisError),
    /// No temporary directory or no blocking thread; another attempt may succeed.
    #[error("{0}")]
    Unavailable(String),
}

impl AnalysisFailure {
    /// Whether another attempt could succeed (a backing service, the disk, a cancelled or
    /// interrupted analysis).
    pub fn is_retryable(&self) -> bool {
        match self {
            AnalysisFailure::Snapshot(e) => e.is_retryable(),
            AnalysisFailure::Engine(e) => {
                matches!(e, AnalysisError::Cancelled | AnalysisError::Io { .. })
            }
            AnalysisFailure::Unavailable(_) => true,
        }
    }
}

/// Materialises the committed snapshot into a fresh temporary directory, loads it into the
/// engine and runs `f` on the engine's view of it and the snapshot's manifest, on a blocking
/// thread (parsing a repository is CPU work). The directory is removed afterwards.
pub async fn with_analysis<T, F>(
    state: &AppState,
    project_id: Uuid,
    snapshot_id: Uuid,
    f: F,
) -> Result<T, AnalysisFailure>
where
    T: Send + 'static,
    F: FnOnce(&Manifest, &Analysis) -> Result<T, AnalysisError> + Send + 'static,
{
    let dir = tempfile::Builder::new()
        .prefix("hivesync-job-")
        .tempdir()
        .map_err(|e| {
            AnalysisFailure::Unavailable(format!("cannot create a temporary directory: {e}"))
        })?;
    let manifest = materialize_checked(state, project_id, snapshot_id, dir.path()).await?;
    let root = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        let (host, _report) = AnalysisHost::load_dir(&root)?;
        f(&manifest, &host.snapshot())
    })
    .await
    .map_err(|e| AnalysisFailure::Unavailable(format!("the analysis task failed: {e}")))?;
    drop(dir);
    out.map_err(AnalysisFailure::Engine)
}

/// `dir/path` for a manifest path, refusing anything that is not a plain relative path or that
/// passes through an existing symbolic link.
fn safe_join(dir: &Path, path: &str) -> Result<std::path::PathBuf, MaterializeError> {
    hivesync_analysis::manifest::validate_manifest_path(path)
        .map_err(|e| MaterializeError::Invalid(format!("unsafe path in the snapshot: {e}")))?;
    let mut current = dir.to_path_buf();
    for component in Path::new(path).components() {
        let Component::Normal(segment) = component else {
            return Err(MaterializeError::Invalid(format!(
                "unsafe path in the snapshot: {path:?}"
            )));
        };
        current.push(segment);
        if std::fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(MaterializeError::Invalid(format!(
                "{path}: {} is a symbolic link; refusing to write through it",
                current.display()
            )));
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_join_refuses_unsafe_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "a\0b", "C:/x"] {
            assert!(
                matches!(
                    safe_join(dir.path(), bad),
                    Err(MaterializeError::Invalid(_))
                ),
                "{bad:?} accepted"
            );
        }
        std::os::unix::fs::symlink("/tmp", dir.path().join("link")).expect("symlink");
        let err = safe_join(dir.path(), "link/x.py").expect_err("through a symlink");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(
            safe_join(dir.path(), "src/a.py").expect("fine"),
            dir.path().join("src/a.py")
        );
    }
}
