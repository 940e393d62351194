//! [`PreviewStore`]: preview sessions — a static web build uploaded by a maintainer and opened
//! on a phone with a short token. Only the token's hash is stored. A preview is `pending` until
//! its bundle is accepted, then `ready`; revocation is immediate (`revoked`), expiry is by time.

use super::sql::{SqlStore, get_opt_ts, get_opt_uuid, get_ts, get_uuid, ms};
use super::{StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewStatus {
    Pending,
    Ready,
    Revoked,
}

impl PreviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewStatus::Pending => "pending",
            PreviewStatus::Ready => "ready",
            PreviewStatus::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Ready, Self::Revoked]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What a ready bundle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    pub file_count: u64,
    pub size: u64,
    /// sha256 hex of the uploaded archive.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub entry: String,
    pub token_hash: String,
    pub status: PreviewStatus,
    pub bundle: Option<BundleInfo>,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub ready_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Preview {
    /// Ready, not revoked, not expired: its content may be served.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.status == PreviewStatus::Ready && self.expires_at > now
    }
}

#[async_trait]
pub trait PreviewStore: Send + Sync {
    async fn create_preview(&self, preview: &Preview) -> StoreResult<()>;
    async fn preview(&self, id: Uuid) -> StoreResult<Option<Preview>>;
    async fn preview_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Preview>>;
    /// Marks a pending (or ready, on re-upload) preview ready with its bundle; false when it
    /// is revoked or gone.
    async fn mark_preview_ready(
        &self,
        id: Uuid,
        bundle: &BundleInfo,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Revokes the preview; false when there is no such preview.
    async fn revoke_preview(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool>;
    /// The name of a preview's project (shown to whoever holds the token).
    async fn project_name(&self, project_id: Uuid) -> StoreResult<Option<String>>;
}

const PREVIEW_COLUMNS: &str = "id, project_id, name, entry, token_hash, status, file_count, size, \
     sha256, created_by, created_at, expires_at, ready_at, revoked_at";

fn preview_from(row: &AnyRow) -> StoreResult<Preview> {
    let status: String = row.try_get("status")?;
    let file_count: Option<i64> = row.try_get("file_count")?;
    let size: Option<i64> = row.try_get("size")?;
    let sha256: Option<String> = row.try_get("sha256")?;
    let bundle = match (file_count, size, sha256) {
        (Some(f), Some(s), Some(h)) => Some(BundleInfo {
            file_count: u64::try_from(f).unwrap_or(0),
            size: u64::try_from(s).unwrap_or(0),
            sha256: h,
        }),
        _ => None,
    };
    Ok(Preview {
        id: get_uuid(row, "id")?,
        project_id: get_uuid(row, "project_id")?,
        name: row.try_get("name")?,
        entry: row.try_get("entry")?,
        token_hash: row.try_get("token_hash")?,
        status: PreviewStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("preview status `{status}`")))?,
        bundle,
        created_by: get_opt_uuid(row, "created_by")?,
        created_at: get_ts(row, "created_at")?,
        expires_at: get_ts(row, "expires_at")?,
        ready_at: get_opt_ts(row, "ready_at")?,
        revoked_at: get_opt_ts(row, "revoked_at")?,
    })
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl PreviewStore for SqlStore {
    async fn create_preview(&self, p: &Preview) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO previews ({PREVIEW_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(p.id.to_string())
        .bind(p.project_id.to_string())
        .bind(&p.name)
        .bind(&p.entry)
        .bind(&p.token_hash)
        .bind(p.status.as_str())
        .bind(p.bundle.as_ref().map(|b| as_i64(b.file_count)))
        .bind(p.bundle.as_ref().map(|b| as_i64(b.size)))
        .bind(p.bundle.as_ref().map(|b| b.sha256.clone()))
        .bind(p.created_by.map(|u| u.to_string()))
        .bind(ms(p.created_at))
        .bind(ms(p.expires_at))
        .bind(p.ready_at.map(ms))
        .bind(p.revoked_at.map(ms))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn preview(&self, id: Uuid) -> StoreResult<Option<Preview>> {
        let row = sqlx::query(&format!(
            "SELECT {PREVIEW_COLUMNS} FROM previews WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(preview_from).transpose()
    }

    async fn preview_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Preview>> {
        let row = sqlx::query(&format!(
            "SELECT {PREVIEW_COLUMNS} FROM previews WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(preview_from).transpose()
    }

    async fn mark_preview_ready(
        &self,
        id: Uuid,
        b: &BundleInfo,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE previews SET status = 'ready', file_count = $1, size = $2, sha256 = $3,
                 ready_at = $4
             WHERE id = $5 AND status <> 'revoked'",
        )
        .bind(as_i64(b.file_count))
        .bind(as_i64(b.size))
        .bind(&b.sha256)
        .bind(ms(at))
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn revoke_preview(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE previews SET status = 'revoked', revoked_at = COALESCE(revoked_at, $1)
             WHERE id = $2",
        )
        .bind(ms(at))
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn project_name(&self, project_id: Uuid) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT name FROM projects WHERE id = $1")
            .bind(project_id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }
}
