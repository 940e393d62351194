//! [`SnapshotStore`]: snapshots (a validated manifest per upload, committed once every blob is
//! present) and the record of which blobs each project has uploaded (for `missing`, the quota
//! and read access), with its implementation on [`SqlStore`].

use super::sql::{SqlStore, get_opt_ts, get_opt_uuid, get_ts, get_uuid, ms};
use super::{StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashSet;
use time::OffsetDateTime;
use uuid::Uuid;

/// One snapshot of a project's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: Uuid,
    pub project_id: Uuid,
    pub manifest_hash: String,
    pub file_count: u64,
    pub total_size: u64,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    /// Set once every blob the manifest names was present.
    pub committed_at: Option<OffsetDateTime>,
}

/// The outcome of [`SnapshotStore::add_blob`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddBlob {
    Added,
    /// The project already had it (re-upload).
    AlreadyPresent,
    /// Adding it would take the project over its quota.
    OverQuota {
        used: u64,
    },
}

#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Of `hashes`, the ones the project has uploaded.
    async fn present_blobs(
        &self,
        project_id: Uuid,
        hashes: &[String],
    ) -> StoreResult<HashSet<String>>;
    /// Records that the project has the blob, unless its distinct blobs would then exceed
    /// `quota` bytes.
    async fn add_blob(
        &self,
        project_id: Uuid,
        hash: &str,
        size: u64,
        quota: u64,
        at: OffsetDateTime,
    ) -> StoreResult<AddBlob>;
    async fn create_snapshot(&self, snapshot: &Snapshot, manifest_json: &str) -> StoreResult<()>;
    async fn snapshot(&self, project_id: Uuid, id: Uuid) -> StoreResult<Option<Snapshot>>;
    /// The snapshot's manifest JSON as stored.
    async fn snapshot_manifest(&self, project_id: Uuid, id: Uuid) -> StoreResult<Option<String>>;
    /// The project's snapshots, newest first.
    async fn snapshots(&self, project_id: Uuid, limit: u32) -> StoreResult<Vec<Snapshot>>;
    /// Marks the snapshot committed (idempotent); false when there is no such snapshot.
    async fn commit_snapshot(
        &self,
        project_id: Uuid,
        id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
}

const SNAPSHOT_COLUMNS: &str =
    "id, project_id, manifest_hash, file_count, total_size, created_by, created_at, committed_at";

fn count(row: &AnyRow, col: &str) -> StoreResult<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} {v} is negative")))
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn snapshot_from(row: &AnyRow) -> StoreResult<Snapshot> {
    Ok(Snapshot {
        id: get_uuid(row, "id")?,
        project_id: get_uuid(row, "project_id")?,
        manifest_hash: row.try_get("manifest_hash")?,
        file_count: count(row, "file_count")?,
        total_size: count(row, "total_size")?,
        created_by: get_opt_uuid(row, "created_by")?,
        created_at: get_ts(row, "created_at")?,
        committed_at: get_opt_ts(row, "committed_at")?,
    })
}

/// Rows per `IN (…)` query (well under both databases' parameter limits).
const IN_CHUNK: usize = 500;

#[async_trait]
impl SnapshotStore for SqlStore {
    async fn present_blobs(
        &self,
        project_id: Uuid,
        hashes: &[String],
    ) -> StoreResult<HashSet<String>> {
        let mut present = HashSet::new();
        for chunk in hashes.chunks(IN_CHUNK) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT hash FROM project_blobs WHERE project_id = $1 AND hash IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(project_id.to_string());
            for h in chunk {
                query = query.bind(h.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                present.insert(row.try_get::<String, _>("hash")?);
            }
        }
        Ok(present)
    }

    async fn add_blob(
        &self,
        project_id: Uuid,
        hash: &str,
        size: u64,
        quota: u64,
        at: OffsetDateTime,
    ) -> StoreResult<AddBlob> {
        // One statement checks the quota and inserts, so concurrent uploads cannot both slip
        // under it; ON CONFLICT makes a concurrent duplicate a no-op.
        let r = sqlx::query(
            "INSERT INTO project_blobs (project_id, hash, size, created_at)
             SELECT $1, $2, $3, $4
             WHERE (SELECT COALESCE(SUM(size), 0) FROM project_blobs WHERE project_id = $1) + $3 <= $5
             ON CONFLICT (project_id, hash) DO NOTHING",
        )
        .bind(project_id.to_string())
        .bind(hash)
        .bind(as_i64(size))
        .bind(ms(at))
        .bind(as_i64(quota))
        .execute(self.pool())
        .await?;
        if r.rows_affected() == 1 {
            return Ok(AddBlob::Added);
        }
        if !self
            .present_blobs(project_id, &[hash.to_string()])
            .await?
            .is_empty()
        {
            return Ok(AddBlob::AlreadyPresent);
        }
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used FROM project_blobs
             WHERE project_id = $1",
        )
        .bind(project_id.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(AddBlob::OverQuota {
            used: count(&row, "used")?,
        })
    }

    async fn create_snapshot(&self, s: &Snapshot, manifest_json: &str) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO snapshots ({SNAPSHOT_COLUMNS}, manifest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(s.id.to_string())
        .bind(s.project_id.to_string())
        .bind(&s.manifest_hash)
        .bind(as_i64(s.file_count))
        .bind(as_i64(s.total_size))
        .bind(s.created_by.map(|u| u.to_string()))
        .bind(ms(s.created_at))
        .bind(s.committed_at.map(ms))
        .bind(manifest_json)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn snapshot(&self, project_id: Uuid, id: Uuid) -> StoreResult<Option<Snapshot>> {
        let row = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE project_id = $1 AND id = $2"
        ))
        .bind(project_id.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(snapshot_from).transpose()
    }

    async fn snapshot_manifest(&self, project_id: Uuid, id: Uuid) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT manifest FROM snapshots WHERE project_id = $1 AND id = $2")
            .bind(project_id.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("manifest")).transpose()?)
    }

    async fn snapshots(&self, project_id: Uuid, limit: u32) -> StoreResult<Vec<Snapshot>> {
        let rows = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE project_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(project_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(snapshot_from).collect()
    }

    async fn commit_snapshot(
        &self,
        project_id: Uuid,
        id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE snapshots SET committed_at = COALESCE(committed_at, $1)
             WHERE project_id = $2 AND id = $3",
        )
        .bind(ms(at))
        .bind(project_id.to_string())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
