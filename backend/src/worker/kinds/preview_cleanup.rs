//! `preview_cleanup`: scheduled maintenance (the server enqueues it every
//! `cleanup_interval_seconds`, at most one waiting, under the system project). Expired and
//! revoked previews are already not served; after `cleanup_grace_seconds` this job
//! 1. removes their bundle directories (`<data_dir>/previews/<id>`), the directories of
//!    previews that no longer exist (deleted with their project), and upload leftovers;
//! 2. drops a project's record of a blob (`project_blobs`) that none of the project's
//!    snapshots references and that is older than the grace period;
//! 3. deletes stored blobs that no project records any more (and that were written before the
//!    grace period, so an upload in progress is never touched).
//!
//! Every step is idempotent: a re-run after a crash finishes what was left.

use crate::state::AppState;
use crate::store::sql::{get_uuid, ms};
use crate::worker::{JobContext, JobError, JobHandler};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashSet;
use std::path::Path;
use uuid::Uuid;

pub const KIND: &str = "preview_cleanup";

/// Rows handled per `IN (…)` statement.
const CHUNK: usize = 500;

pub struct PreviewCleanup;

fn db(e: impl std::fmt::Display) -> JobError {
    JobError::Retryable(format!("database: {e}"))
}

fn io(what: &str, e: impl std::fmt::Display) -> JobError {
    JobError::Retryable(format!("{what}: {e}"))
}

#[async_trait::async_trait]
impl JobHandler for PreviewCleanup {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn validate(&self, _: &AppState, _: Uuid, _: &Value) -> Result<(), String> {
        Err("preview_cleanup is scheduled by the server (cleanup_interval_seconds); it cannot be requested".into())
    }

    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let state = &ctx.state;
        let grace = state.config.config.cleanup_grace_seconds;
        let cutoff = crate::store::now() - time::Duration::seconds(grace as i64);
        ctx.progress(0, 3, "purging preview bundles").await?;
        let (purged, strays) = purge_previews(state, cutoff).await?;
        ctx.progress(1, 3, "dropping unreferenced blob records")
            .await?;
        let dropped = drop_unreferenced(state, ms(cutoff)).await?;
        ctx.progress(2, 3, "deleting unused blobs").await?;
        let deleted = delete_unused_blobs(state, ms(cutoff)).await?;
        ctx.progress(3, 3, "done").await?;
        Ok(json!({
            "previews_purged": purged,
            "stray_dirs_removed": strays,
            "blob_records_dropped": dropped,
            "blobs_deleted": deleted,
        }))
    }
}

async fn remove_dir(path: &Path) -> Result<bool, JobError> {
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("remove preview files", e)),
    }
}

/// Bundles of previews revoked or expired before `cutoff`; directories of previews that are
/// gone, and upload leftovers older than `cutoff`. Returns (bundles purged, strays removed).
async fn purge_previews(
    state: &AppState,
    cutoff: time::OffsetDateTime,
) -> Result<(u64, u64), JobError> {
    let root = state.config.config.data_dir.join("previews");
    let rows = sqlx::query(
        "SELECT id FROM previews
         WHERE (status = 'revoked' AND revoked_at < $1) OR expires_at < $1",
    )
    .bind(ms(cutoff))
    .fetch_all(state.sql.pool())
    .await
    .map_err(db)?;
    let mut purged = 0;
    for row in &rows {
        let id = get_uuid(row, "id").map_err(db)?;
        if remove_dir(&crate::preview::preview_dir(
            &state.config.config.data_dir,
            id,
        ))
        .await?
        {
            purged += 1;
        }
    }
    let mut strays = 0;
    let mut entries = match tokio::fs::read_dir(&root).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((purged, 0)),
        Err(e) => return Err(io("list preview files", e)),
    };
    let cutoff_time = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(ms(cutoff)).unwrap_or(0));
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| io("list preview files", e))?
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let old = entry
            .metadata()
            .await
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff_time);
        let stray = if let Ok(id) = Uuid::parse_str(&name) {
            // A bundle whose preview row is gone (its project was deleted).
            state.previews.preview(id).await.map_err(db)?.is_none()
        } else {
            // `.upload-…`, `.staging-…`, `.old-…` left by an interrupted upload.
            name.starts_with('.') && old
        };
        if stray {
            let removed = if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                remove_dir(&path).await?
            } else {
                tokio::fs::remove_file(&path).await.is_ok()
            };
            if removed {
                strays += 1;
            }
        }
    }
    Ok((purged, strays))
}

#[derive(Deserialize)]
struct ManifestHashes {
    files: Vec<FileHash>,
}

#[derive(Deserialize)]
struct FileHash {
    hash: String,
}

/// Drops `project_blobs` rows older than `cutoff` that no snapshot of their project
/// references (committed or not). Returns how many.
async fn drop_unreferenced(state: &AppState, cutoff: i64) -> Result<u64, JobError> {
    let pool = state.sql.pool();
    let projects =
        sqlx::query("SELECT DISTINCT project_id FROM project_blobs WHERE created_at < $1")
            .bind(cutoff)
            .fetch_all(pool)
            .await
            .map_err(db)?;
    let mut dropped = 0;
    for row in &projects {
        let project: String = row.try_get("project_id").map_err(db)?;
        let mut referenced = HashSet::new();
        let manifests = sqlx::query("SELECT manifest FROM snapshots WHERE project_id = $1")
            .bind(&project)
            .fetch_all(pool)
            .await
            .map_err(db)?;
        for m in &manifests {
            let text: String = m.try_get("manifest").map_err(db)?;
            let parsed: ManifestHashes = serde_json::from_str(&text).map_err(|e| {
                JobError::Permanent(format!("a snapshot manifest of project {project}: {e}"))
            })?;
            referenced.extend(parsed.files.into_iter().map(|f| f.hash));
        }
        let candidates =
            sqlx::query("SELECT hash FROM project_blobs WHERE project_id = $1 AND created_at < $2")
                .bind(&project)
                .bind(cutoff)
                .fetch_all(pool)
                .await
                .map_err(db)?;
        let unused: Vec<String> = candidates
            .iter()
            .filter_map(|r| r.try_get::<String, _>("hash").ok())
            .filter(|h| !referenced.contains(h))
            .collect();
        for chunk in unused.chunks(CHUNK) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "DELETE FROM project_blobs WHERE project_id = $1 AND created_at < $2
                   AND hash IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(&project).bind(cutoff);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            dropped += q.execute(pool).await.map_err(db)?.rows_affected();
        }
    }
    Ok(dropped)
}

/// Deletes stored blobs written before `cutoff` that no project records. Returns how many.
async fn delete_unused_blobs(state: &AppState, cutoff: i64) -> Result<u64, JobError> {
    let pool = state.sql.pool();
    let stored = state.blobs.list().await.map_err(|e| io("list blobs", e))?;
    let old: Vec<String> = stored
        .into_iter()
        .filter(|(_, written)| *written < cutoff)
        .map(|(hash, _)| hash)
        .collect();
    let mut deleted = 0;
    for chunk in old.chunks(CHUNK) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
        let sql = format!(
            "SELECT DISTINCT hash FROM project_blobs WHERE hash IN ({})",
            list.join(", ")
        );
        let checked = ms(crate::store::now());
        let mut q = sqlx::query(&sql);
        for h in chunk {
            q = q.bind(h.as_str());
        }
        let used: HashSet<String> = q
            .fetch_all(pool)
            .await
            .map_err(db)?
            .iter()
            .filter_map(|r| r.try_get::<String, _>("hash").ok())
            .collect();
        for hash in chunk.iter().filter(|h| !used.contains(*h)) {
            state
                .blobs
                .delete(hash)
                .await
                .map_err(|e| io("delete blob", e))?;
            deleted += 1;
            // A project may have recorded this blob between the check and the delete (an
            // upload that found it already stored): forget that record too, so the project's
            // next commit reports the blob missing and its client uploads it again.
            sqlx::query("DELETE FROM project_blobs WHERE hash = $1 AND created_at >= $2")
                .bind(hash.as_str())
                .bind(checked.saturating_sub(60_000))
                .execute(pool)
                .await
                .map_err(db)?;
        }
    }
    Ok(deleted)
}
