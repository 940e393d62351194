//! Preview sessions (desktop → phone): a maintainer creates a preview and gets a short token
//! and a QR code, uploads a static web build as `.zip` or `.tar.gz`, and the phone opens it
//! from the separate preview origin after looking the token up (no login: the token is the
//! credential). Revocation is immediate; the purge worker removes files later.

use super::ClientAddr;
use super::snapshots::too_large;
use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path};
use crate::preview::{
    BundleError, BundleLimits, extract_bundle, new_token, normalize_token, open_url, preview_dir,
    preview_token_hash,
};
use crate::state::AppState;
use crate::store::{BundleInfo, Preview, PreviewStatus, Role};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePreviewRequest {
    /// Shown on the phone; defaults to "Preview".
    pub name: Option<String>,
    /// The file to open, relative to the bundle root (default `index.html`).
    pub entry: Option<String>,
    /// Token lifetime (default 1 hour, at most the configured maximum).
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatePreviewResponse {
    pub preview_id: Uuid,
    /// Shown once: `XXXX-XXXX-XXXX-XXXX` (Crockford base32; case, hyphens, O/0 and I/L/1 are
    /// forgiven when typed).
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// `PUT` the bundle here.
    pub upload_url: String,
    /// A QR code of the open URL.
    pub qr_svg_url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreviewResponse {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub entry: String,
    /// `pending`, `ready` or `revoked`.
    pub status: String,
    pub file_count: Option<u64>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// Where the preview opens (served only while ready and not expired).
    pub open_url: String,
}

/// What a phone learns from a token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenLookupResponse {
    pub preview_id: Uuid,
    pub project_name: String,
    pub preview_name: String,
    pub entry: String,
    /// `pending` until the bundle is uploaded, then `ready`.
    pub status: String,
    pub file_count: Option<u64>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The URL to open (on the preview origin).
    pub open_url: String,
}

fn preview_response(state: &AppState, p: &Preview) -> PreviewResponse {
    PreviewResponse {
        id: p.id,
        project_id: p.project_id,
        name: p.name.clone(),
        entry: p.entry.clone(),
        status: p.status.as_str().to_string(),
        file_count: p.bundle.as_ref().map(|b| b.file_count),
        size: p.bundle.as_ref().map(|b| b.size),
        sha256: p.bundle.as_ref().map(|b| b.sha256.clone()),
        expires_at: p.expires_at,
        open_url: open_url(state, p),
    }
}

/// The preview, if the caller has at least `needed` on its project (404 otherwise, as for
/// projects).
async fn preview_for(ctx: &Ctx, id: Uuid, needed: Role) -> Result<Preview, AppError> {
    let preview = ctx
        .state
        .previews
        .preview(id)
        .await?
        .ok_or_else(|| AppError::not_found("preview"))?;
    require_role(ctx, preview.project_id, needed)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::not_found("preview"),
            other => other,
        })?;
    Ok(preview)
}

#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/previews", tag = "previews",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = CreatePreviewRequest,
    responses(
        (status = 201, description = "Created (maintainer); the token is shown only here", body = CreatePreviewResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Invalid name, entry or lifetime", body = ErrorBody),
    )
)]
pub async fn create_preview(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Json(req): Json<CreatePreviewRequest>,
) -> Result<(StatusCode, Json<CreatePreviewResponse>), AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let cfg = &ctx.state.config.config;
    let name = match req.name.as_deref().map(str::trim) {
        None | Some("") => "Preview".to_string(),
        Some(n) if n.chars().count() > 100 => {
            return Err(AppError::invalid("name must be at most 100 characters"));
        }
        Some(n) => n.to_string(),
    };
    let entry = req.entry.unwrap_or_else(|| "index.html".into());
    hivesync_analysis::manifest::validate_manifest_path(&entry)
        .map_err(|e| AppError::invalid(format!("entry: {e}")))?;
    let ttl = req.ttl_seconds.unwrap_or(cfg.preview_default_ttl_seconds);
    if ttl == 0 || ttl > cfg.preview_max_ttl_seconds {
        return Err(AppError::invalid(format!(
            "ttl_seconds must be between 1 and {}",
            cfg.preview_max_ttl_seconds
        )));
    }
    let token = new_token();
    let normalized = normalize_token(&token)
        .ok_or_else(|| AppError::internal("a generated token does not normalise"))?;
    let now = crate::store::now();
    let preview = Preview {
        id: Uuid::new_v4(),
        project_id,
        name,
        entry,
        token_hash: preview_token_hash(&normalized),
        status: PreviewStatus::Pending,
        bundle: None,
        created_by: Some(ctx.user.id),
        created_at: now,
        expires_at: now + time::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX)),
        ready_at: None,
        revoked_at: None,
    };
    ctx.state.previews.create_preview(&preview).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatePreviewResponse {
            preview_id: preview.id,
            token,
            expires_at: preview.expires_at,
            upload_url: format!("/api/v1/previews/{}/bundle", preview.id),
            qr_svg_url: format!("/api/v1/previews/{}/qr.svg", preview.id),
        }),
    ))
}

fn bundle_refused(e: BundleError) -> AppError {
    match e {
        BundleError::TooLarge(_) | BundleError::TooManyFiles(_) => AppError::Other {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: e.code(),
            message: e.to_string(),
        },
        BundleError::Io(detail) => AppError::Internal(format!("bundle extraction: {detail}")),
        other => AppError::Invalid {
            code: other.code(),
            message: other.to_string(),
        },
    }
}

/// Removes a path when dropped (the uploaded archive, a replaced bundle).
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let path = self.0.clone();
        if path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[utoipa::path(
    put, path = "/api/v1/previews/{preview_id}/bundle", tag = "previews",
    security(("bearer" = [])),
    params(("preview_id" = Uuid, Path, description = "Preview id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A .zip or .tar.gz of a static web build"),
    responses(
        (status = 200, description = "Accepted and extracted; the preview is ready (maintainer)", body = PreviewResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such preview, or the caller is not a member of its project", body = ErrorBody),
        (status = 410, description = "The preview is revoked or expired (`preview_gone`)", body = ErrorBody),
        (status = 413, description = "Over the compressed size, unpacked size or file count limit", body = ErrorBody),
        (status = 422, description = "Refused: unknown format, unsafe path, link, device, duplicate or missing entry", body = ErrorBody),
    )
)]
pub async fn upload_bundle(
    ctx: Ctx,
    Path(preview_id): Path<Uuid>,
    body: Body,
) -> Result<Json<PreviewResponse>, AppError> {
    let preview = preview_for(&ctx, preview_id, Role::Maintainer).await?;
    let now = crate::store::now();
    if preview.status == PreviewStatus::Revoked || preview.expires_at <= now {
        return Err(gone());
    }
    let state = ctx.state.clone();
    let cfg = &state.config.config;
    let root = cfg.data_dir.join("previews");
    tokio::fs::create_dir_all(&root)
        .await
        .map_err(|e| AppError::internal(format!("previews dir: {e}")))?;
    // 1. The archive to a temporary file, hashed and size-checked as it arrives.
    let upload = root.join(format!(".upload-{}", Uuid::new_v4()));
    let _upload_guard = Cleanup(upload.clone());
    let mut file = tokio::fs::File::create(&upload)
        .await
        .map_err(|e| AppError::internal(format!("upload file: {e}")))?;
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest {
            code: "body_read_failed",
            message: format!("could not read the request body: {e}"),
        })?;
        received += chunk.len() as u64;
        if received > cfg.preview_max_bundle_bytes {
            return Err(too_large("bundle_too_large", cfg.preview_max_bundle_bytes));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| AppError::internal(format!("upload file: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| AppError::internal(format!("upload file: {e}")))?;
    drop(file);
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // 2. Extract into a fresh temporary directory (removed again on refusal).
    let staging = root.join(format!(".staging-{}", Uuid::new_v4()));
    let limits = BundleLimits {
        max_files: cfg.preview_max_files,
        max_unpacked_bytes: cfg.preview_max_unpacked_bytes,
    };
    let (archive, dest, entry) = (upload.clone(), staging.clone(), preview.entry.clone());
    let extracted =
        tokio::task::spawn_blocking(move || extract_bundle(&archive, &dest, &entry, limits))
            .await
            .map_err(|e| AppError::internal(format!("extraction task: {e}")))?
            .map_err(bundle_refused)?;
    let _staging_guard = Cleanup(staging.clone());
    // 3. Rename into place (a previous bundle of this preview is moved aside, then removed).
    let target = preview_dir(&cfg.data_dir, preview_id);
    let old = root.join(format!(".old-{}", Uuid::new_v4()));
    let _old_guard = Cleanup(old.clone());
    if tokio::fs::symlink_metadata(&target).await.is_ok() {
        tokio::fs::rename(&target, &old)
            .await
            .map_err(|e| AppError::internal(format!("replace bundle: {e}")))?;
    }
    tokio::fs::rename(&staging, &target)
        .await
        .map_err(|e| AppError::internal(format!("install bundle: {e}")))?;
    let info = BundleInfo {
        file_count: extracted.file_count,
        size: extracted.unpacked_bytes,
        sha256,
    };
    if !state
        .previews
        .mark_preview_ready(preview_id, &info, crate::store::now())
        .await?
    {
        // Revoked while uploading: nothing is served; the purge worker removes the files.
        return Err(gone());
    }
    let preview = state
        .previews
        .preview(preview_id)
        .await?
        .ok_or_else(|| AppError::not_found("preview"))?;
    state
        .emit(
            preview.project_id,
            "preview.ready",
            Some(ctx.user.id),
            serde_json::json!({
                "preview_id": preview.id,
                "name": preview.name,
                "file_count": info.file_count,
                "size": info.size,
                "sha256": info.sha256,
                "expires_at": preview.expires_at.unix_timestamp(),
            }),
        )
        .await?;
    Ok(Json(preview_response(&state, &preview)))
}

fn gone() -> AppError {
    AppError::Other {
        status: StatusCode::GONE,
        code: "preview_gone",
        message: "this preview has been revoked or has expired".into(),
    }
}

/// The one answer for unknown, expired and revoked tokens.
fn no_such_token() -> AppError {
    AppError::NotFound("no preview with this token".into())
}

#[utoipa::path(
    get, path = "/api/v1/preview-tokens/{token}", tag = "previews",
    params(("token" = String, Path, description = "The token as typed (case, hyphens, O/0, I/L/1 forgiven)")),
    responses(
        (status = 200, description = "The preview this token opens (no login needed)", body = TokenLookupResponse),
        (status = 404, description = "Unknown, expired or revoked token (answered alike)", body = ErrorBody),
        (status = 429, description = "Too many failed lookups from this address; see Retry-After", body = ErrorBody),
    )
)]
pub async fn lookup_token(
    State(state): State<AppState>,
    client: ClientAddr,
    Path(token): Path<String>,
) -> Result<Json<TokenLookupResponse>, AppError> {
    let key = format!("preview-lookup-failures:{}", client.0);
    let limit = u64::from(state.config.config.preview_lookup_failures_per_minute);
    let window = Duration::from_secs(60);
    let failures = state
        .ephemeral
        .get(&key)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if failures >= limit {
        return Err(AppError::RateLimited(window));
    }
    let now = crate::store::now();
    let found = match normalize_token(&token) {
        Some(n) => state
            .previews
            .preview_by_token_hash(&preview_token_hash(&n))
            .await?
            .filter(|p| p.status != PreviewStatus::Revoked && p.expires_at > now),
        None => None,
    };
    let Some(preview) = found else {
        let counter = state
            .ephemeral
            .incr(&key, window)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        if counter.count > limit {
            return Err(AppError::RateLimited(counter.resets_in));
        }
        return Err(no_such_token());
    };
    let project_name = state
        .previews
        .project_name(preview.project_id)
        .await?
        .ok_or_else(no_such_token)?;
    Ok(Json(TokenLookupResponse {
        preview_id: preview.id,
        project_name,
        preview_name: preview.name.clone(),
        entry: preview.entry.clone(),
        status: preview.status.as_str().to_string(),
        file_count: preview.bundle.as_ref().map(|b| b.file_count),
        size: preview.bundle.as_ref().map(|b| b.size),
        sha256: preview.bundle.as_ref().map(|b| b.sha256.clone()),
        expires_at: preview.expires_at,
        open_url: open_url(&state, &preview),
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/previews/{preview_id}", tag = "previews",
    security(("bearer" = [])),
    params(("preview_id" = Uuid, Path, description = "Preview id")),
    responses(
        (status = 204, description = "Revoked: the token and the content stop working at once (maintainer)"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such preview, or the caller is not a member of its project", body = ErrorBody),
    )
)]
pub async fn revoke_preview(
    ctx: Ctx,
    Path(preview_id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    let preview = preview_for(&ctx, preview_id, Role::Maintainer).await?;
    ctx.state
        .previews
        .revoke_preview(preview_id, crate::store::now())
        .await?;
    if preview.status != PreviewStatus::Revoked {
        ctx.state
            .emit(
                preview.project_id,
                "preview.revoked",
                Some(ctx.user.id),
                serde_json::json!({ "preview_id": preview_id }),
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/previews/{preview_id}/qr.svg", tag = "previews",
    security(("bearer" = [])),
    params(("preview_id" = Uuid, Path, description = "Preview id")),
    responses(
        (status = 200, description = "A QR code of the open URL (any member of the project)", content_type = "image/svg+xml", body = String),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such preview, or the caller is not a member of its project", body = ErrorBody),
        (status = 410, description = "The preview is revoked or expired (`preview_gone`)", body = ErrorBody),
    )
)]
pub async fn preview_qr(ctx: Ctx, Path(preview_id): Path<Uuid>) -> Result<Response, AppError> {
    let preview = preview_for(&ctx, preview_id, Role::Viewer).await?;
    if preview.status == PreviewStatus::Revoked || preview.expires_at <= crate::store::now() {
        return Err(gone());
    }
    let url = open_url(&ctx.state, &preview);
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| AppError::internal(format!("qr code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    let mut response = svg.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
