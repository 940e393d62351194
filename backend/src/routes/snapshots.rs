//! Manifest sync and snapshots: the desktop posts its manifest (`hivesync analyze manifest
//! --json`), learns which blobs the server lacks, uploads only those (content-addressed,
//! verified against their blake3 hash, within the per-file limit and the project's quota) and
//! commits. Maintainers write; every member reads. Bodies of these routes are read here with
//! their own limits (see [`UPLOAD_ROUTES`]), not the API's JSON limit.

use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path, Query};
use crate::store::{AddBlob, Role, Snapshot};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hivesync_analysis::changeset::content_hash;
use hivesync_analysis::manifest::{is_blake3_hex, validate_manifest};
use hivesync_protocol::Manifest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Routes whose bodies are not bound by the API's JSON limit: each handler reads the body
/// itself with its own limit. `(method, path segments)`, `*` matching any one segment.
pub const UPLOAD_ROUTES: &[(&str, &[&str])] = &[
    ("POST", &["api", "v1", "projects", "*", "snapshots"]),
    ("PUT", &["api", "v1", "projects", "*", "blobs", "*"]),
    ("PUT", &["api", "v1", "previews", "*", "bundle"]),
];

/// Whether `method path` is one of [`UPLOAD_ROUTES`].
pub fn is_upload_route(method: &str, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    UPLOAD_ROUTES.iter().any(|(m, pattern)| {
        *m == method
            && pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(&segments)
                .all(|(p, s)| *p == "*" || p == s)
    })
}

/// The body, refused with 413 (`code`) as soon as it exceeds `limit` bytes.
pub async fn read_limited(body: Body, limit: u64, code: &'static str) -> Result<Bytes, AppError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest {
            code: "body_read_failed",
            message: format!("could not read the request body: {e}"),
        })?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large(code, limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

pub fn too_large(code: &'static str, limit: u64) -> AppError {
    AppError::Other {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code,
        message: format!("the body is larger than the limit of {limit} bytes"),
    }
}

/// A manifest as the desktop sends it (`hivesync_protocol::Manifest`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ManifestDoc {
    /// blake3 hex over the sorted `(path, hash)` pairs.
    pub hash: String,
    /// Files sorted by path.
    pub files: Vec<ManifestFileDoc>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ManifestFileDoc {
    /// Relative, `/`-separated.
    pub path: String,
    /// blake3 hex of the content.
    pub hash: String,
    pub size: u64,
    /// `python`, `typescript`, … or null.
    pub language: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateSnapshotResponse {
    pub snapshot_id: Uuid,
    /// Hashes of the contents the server lacks; upload each with `PUT …/blobs/{hash}`.
    pub missing: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotResponse {
    pub id: Uuid,
    pub manifest_hash: String,
    pub file_count: u64,
    pub total_size: u64,
    pub committed: bool,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub committed_at: Option<OffsetDateTime>,
}

impl From<Snapshot> for SnapshotResponse {
    fn from(s: Snapshot) -> Self {
        SnapshotResponse {
            id: s.id,
            manifest_hash: s.manifest_hash,
            file_count: s.file_count,
            total_size: s.total_size,
            committed: s.committed_at.is_some(),
            created_by: s.created_by,
            created_at: s.created_at,
            committed_at: s.committed_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlobResponse {
    pub hash: String,
    pub size: u64,
    /// False when the project already had this content (the upload was a no-op).
    pub created: bool,
}

/// Paths that differ between two snapshots, each list sorted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotDiff {
    pub from: Uuid,
    pub to: Uuid,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

fn invalid_manifest(message: String) -> AppError {
    AppError::Invalid {
        code: "invalid_manifest",
        message,
    }
}

/// Parses and validates a manifest body: well-formed JSON, every path relative without `..`,
/// drive or NUL, sorted, hashes valid, the manifest hash matching. The first bad entry is named.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, AppError> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid_manifest(format!("the body is not a manifest: {e}")))?;
    validate_manifest(&manifest).map_err(|e| invalid_manifest(e.to_string()))?;
    Ok(manifest)
}

/// The stored manifest of a snapshot of the project (404 when there is none).
pub async fn load_manifest(
    ctx: &Ctx,
    project_id: Uuid,
    snapshot_id: Uuid,
) -> Result<Manifest, AppError> {
    let json = ctx
        .state
        .snapshots
        .snapshot_manifest(project_id, snapshot_id)
        .await?
        .ok_or_else(|| AppError::not_found("snapshot"))?;
    serde_json::from_str(&json).map_err(|e| AppError::internal(format!("stored manifest: {e}")))
}

#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/snapshots", tag = "snapshots",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body(content = ManifestDoc, description = "The manifest, exactly as `hivesync analyze manifest --json` prints it"),
    responses(
        (status = 201, description = "Snapshot created (maintainer); upload the missing blobs, then commit", body = CreateSnapshotResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 413, description = "The manifest is over the size limit", body = ErrorBody),
        (status = 422, description = "Not a valid manifest (`invalid_manifest`, naming the entry)", body = ErrorBody),
    )
)]
pub async fn create_snapshot(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    body: Body,
) -> Result<(StatusCode, Json<CreateSnapshotResponse>), AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let limit = ctx.state.config.config.manifest_max_bytes as u64;
    let bytes = read_limited(body, limit, "manifest_too_large").await?;
    let manifest = parse_manifest(&bytes)?;
    let hashes: Vec<String> = manifest
        .files
        .iter()
        .map(|f| f.hash.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let present = ctx
        .state
        .snapshots
        .present_blobs(project_id, &hashes)
        .await?;
    let missing: Vec<String> = hashes
        .into_iter()
        .filter(|h| !present.contains(h))
        .collect();
    let now = crate::store::now();
    let snapshot = Snapshot {
        id: Uuid::now_v7(),
        project_id,
        manifest_hash: manifest.hash.clone(),
        file_count: manifest.files.len() as u64,
        total_size: manifest.files.iter().map(|f| f.size).sum(),
        created_by: Some(ctx.user.id),
        created_at: now,
        committed_at: None,
    };
    let json = serde_json::to_string(&manifest).map_err(AppError::internal)?;
    ctx.state
        .snapshots
        .create_snapshot(&snapshot, &json)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateSnapshotResponse {
            snapshot_id: snapshot.id,
            missing,
        }),
    ))
}

#[utoipa::path(
    put, path = "/api/v1/projects/{project_id}/blobs/{hash}", tag = "snapshots",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("hash" = String, Path, description = "blake3 hex of the content"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    responses(
        (status = 200, description = "The project already had this content (no-op)", body = BlobResponse),
        (status = 201, description = "Stored (maintainer)", body = BlobResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 413, description = "Over the per-file limit (`blob_too_large`) or the project's quota (`quota_exceeded`)", body = ErrorBody),
        (status = 422, description = "Not a blake3 hash (`invalid_hash`), or the content does not hash to it (`hash_mismatch`)", body = ErrorBody),
    )
)]
pub async fn put_blob(
    ctx: Ctx,
    Path((project_id, hash)): Path<(Uuid, String)>,
    body: Body,
) -> Result<(StatusCode, Json<BlobResponse>), AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    if !is_blake3_hex(&hash) {
        return Err(AppError::Invalid {
            code: "invalid_hash",
            message: format!("`{hash}` is not a 64-digit lowercase blake3 hex digest"),
        });
    }
    let cfg = &ctx.state.config.config;
    let bytes = read_limited(body, cfg.blob_max_bytes, "blob_too_large").await?;
    let actual = content_hash(&bytes);
    if actual != hash {
        return Err(AppError::Invalid {
            code: "hash_mismatch",
            message: format!("the content hashes to {actual}, not {hash}"),
        });
    }
    let size = bytes.len() as u64;
    let state = &ctx.state;
    if !state
        .snapshots
        .present_blobs(project_id, std::slice::from_ref(&hash))
        .await?
        .is_empty()
    {
        return Ok((
            StatusCode::OK,
            Json(BlobResponse {
                hash,
                size,
                created: false,
            }),
        ));
    }
    state.blobs.put(&hash, bytes).await?;
    match state
        .snapshots
        .add_blob(
            project_id,
            &hash,
            size,
            cfg.project_quota_bytes,
            crate::store::now(),
        )
        .await?
    {
        AddBlob::Added => Ok((
            StatusCode::CREATED,
            Json(BlobResponse {
                hash,
                size,
                created: true,
            }),
        )),
        AddBlob::AlreadyPresent => Ok((
            StatusCode::OK,
            Json(BlobResponse {
                hash,
                size,
                created: false,
            }),
        )),
        AddBlob::OverQuota { used } => Err(AppError::Other {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "quota_exceeded",
            message: format!(
                "the project stores {used} bytes; {size} more would exceed its quota of {} bytes",
                cfg.project_quota_bytes
            ),
        }),
    }
}

#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/commit", tag = "snapshots",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("snapshot_id" = Uuid, Path, description = "Snapshot id"),
    ),
    responses(
        (status = 200, description = "Committed: every file's content is present (maintainer)", body = SnapshotResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project or snapshot, or the caller is not a member", body = ErrorBody),
        (status = 409, description = "Blobs are missing (`missing_blobs`, naming them)", body = ErrorBody),
    )
)]
pub async fn commit_snapshot(
    ctx: Ctx,
    Path((project_id, snapshot_id)): Path<(Uuid, Uuid)>,
) -> Result<Json<SnapshotResponse>, AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let manifest = load_manifest(&ctx, project_id, snapshot_id).await?;
    let hashes: Vec<String> = manifest
        .files
        .iter()
        .map(|f| f.hash.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let present = ctx
        .state
        .snapshots
        .present_blobs(project_id, &hashes)
        .await?;
    let missing: Vec<&String> = hashes.iter().filter(|h| !present.contains(*h)).collect();
    if !missing.is_empty() {
        const SHOWN: usize = 20;
        let mut names: Vec<String> = missing.iter().take(SHOWN).map(|h| h.to_string()).collect();
        if missing.len() > SHOWN {
            names.push(format!("and {} more", missing.len() - SHOWN));
        }
        return Err(AppError::Conflict {
            code: "missing_blobs",
            message: format!(
                "{} blob(s) are missing; upload them first: {}",
                missing.len(),
                names.join(", ")
            ),
        });
    }
    let now = crate::store::now();
    ctx.state
        .snapshots
        .commit_snapshot(project_id, snapshot_id, now)
        .await?;
    let snapshot = ctx
        .state
        .snapshots
        .snapshot(project_id, snapshot_id)
        .await?
        .ok_or_else(|| AppError::not_found("snapshot"))?;
    if snapshot.committed_at == Some(now) {
        ctx.state
            .emit(
                project_id,
                "snapshot.committed",
                Some(ctx.user.id),
                serde_json::json!({
                    "snapshot_id": snapshot.id,
                    "manifest_hash": snapshot.manifest_hash,
                    "file_count": snapshot.file_count,
                }),
            )
            .await?;
    }
    Ok(Json(snapshot.into()))
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/snapshots", tag = "snapshots",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListParams),
    responses(
        (status = 200, description = "The project's snapshots, newest first (any member)", body = [SnapshotResponse]),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn list_snapshots(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<SnapshotResponse>>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let list = ctx.state.snapshots.snapshots(project_id, limit).await?;
    Ok(Json(list.into_iter().map(SnapshotResponse::from).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/manifest", tag = "snapshots",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("snapshot_id" = Uuid, Path, description = "Snapshot id"),
    ),
    responses(
        (status = 200, description = "The snapshot's manifest (any member)", body = ManifestDoc),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project or snapshot, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn get_manifest(
    ctx: Ctx,
    Path((project_id, snapshot_id)): Path<(Uuid, Uuid)>,
) -> Result<Json<Manifest>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    Ok(Json(load_manifest(&ctx, project_id, snapshot_id).await?))
}

/// The content of `path` in a committed snapshot of the project.
pub async fn file_content(
    ctx: &Ctx,
    project_id: Uuid,
    snapshot_id: Uuid,
    path: &str,
) -> Result<Bytes, AppError> {
    let manifest = load_manifest(ctx, project_id, snapshot_id).await?;
    let file = manifest
        .files
        .iter()
        .find(|f| f.path == path)
        .ok_or_else(|| AppError::NotFound(format!("no file `{path}` in this snapshot")))?;
    let hash = file.hash.clone();
    if ctx
        .state
        .snapshots
        .present_blobs(project_id, std::slice::from_ref(&hash))
        .await?
        .is_empty()
    {
        return Err(AppError::Conflict {
            code: "content_missing",
            message: format!("the content of `{path}` has not been uploaded yet"),
        });
    }
    ctx.state
        .blobs
        .get(&hash)
        .await?
        .ok_or_else(|| AppError::Unavailable(format!("blob {hash} is recorded but not stored")))
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/files/{*path}", tag = "snapshots",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("snapshot_id" = Uuid, Path, description = "Snapshot id"),
        ("path" = String, Path, description = "The file's path in the manifest (may contain `/`)"),
    ),
    responses(
        (status = 200, description = "The file's bytes (any member)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project, snapshot or file, or the caller is not a member", body = ErrorBody),
        (status = 409, description = "The file's content has not been uploaded yet (`content_missing`)", body = ErrorBody),
    )
)]
pub async fn get_file(
    ctx: Ctx,
    Path((project_id, snapshot_id, path)): Path<(Uuid, Uuid, String)>,
) -> Result<Response, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let bytes = file_content(&ctx, project_id, snapshot_id, &path).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/diff/{other_id}", tag = "snapshots",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("snapshot_id" = Uuid, Path, description = "The older snapshot"),
        ("other_id" = Uuid, Path, description = "The newer snapshot"),
    ),
    responses(
        (status = 200, description = "Paths added, removed and modified from `snapshot_id` to `other_id` (any member)", body = SnapshotDiff),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project or snapshot, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn diff_snapshots(
    ctx: Ctx,
    Path((project_id, snapshot_id, other_id)): Path<(Uuid, Uuid, Uuid)>,
) -> Result<Json<SnapshotDiff>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let from = load_manifest(&ctx, project_id, snapshot_id).await?;
    let to = load_manifest(&ctx, project_id, other_id).await?;
    let old: BTreeMap<&str, &str> = from
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.hash.as_str()))
        .collect();
    let new: BTreeMap<&str, &str> = to
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.hash.as_str()))
        .collect();
    let mut diff = SnapshotDiff {
        from: snapshot_id,
        to: other_id,
        added: Vec::new(),
        removed: Vec::new(),
        modified: Vec::new(),
    };
    for (path, hash) in &new {
        match old.get(path) {
            None => diff.added.push((*path).to_string()),
            Some(h) if h != hash => diff.modified.push((*path).to_string()),
            Some(_) => {}
        }
    }
    diff.removed = old
        .keys()
        .filter(|p| !new.contains_key(*p))
        .map(|p| (*p).to_string())
        .collect();
    Ok(Json(diff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_routes_match_by_segment() {
        let id = Uuid::new_v4();
        assert!(is_upload_route(
            "POST",
            &format!("/api/v1/projects/{id}/snapshots")
        ));
        assert!(is_upload_route(
            "PUT",
            &format!("/api/v1/projects/{id}/blobs/abc")
        ));
        assert!(is_upload_route(
            "PUT",
            &format!("/api/v1/previews/{id}/bundle")
        ));
        assert!(!is_upload_route(
            "GET",
            &format!("/api/v1/projects/{id}/snapshots")
        ));
        assert!(!is_upload_route(
            "POST",
            &format!("/api/v1/projects/{id}/snapshots/x/commit")
        ));
        assert!(!is_upload_route("POST", "/api/v1/projects"));
    }
}
