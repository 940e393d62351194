//! Per-project git credentials for `repo_sync`: [`GitCredentialStore`] (the `git_credentials`
//! table, on [`SqlStore`]) and the routes `GET`/`PUT`/`DELETE
//! /api/v1/projects/{id}/git-credentials` (maintainers and owners). The secret (a password or
//! an access token) is write-only: the API says whether one is set, never what it is. Events:
//! `project.git_credentials_updated` / `project.git_credentials_deleted` (without the secret).
//!
//! `repo_sync` hands them to git as an `Authorization: Basic` header scoped to the remote's URL
//! (`http.<url>.extraHeader`) through `GIT_CONFIG_*` environment variables of the git process
//! only: never on a command line, in the URL stored with the job, or in the mirror's config.
//! They apply to http:// and https:// remotes.

use crate::ai::Secret;
use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path};
use crate::store::sql::{SqlStore, get_opt_uuid, get_ts, ms};
use crate::store::{Role, StoreResult};
use async_trait::async_trait;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest accepted username or secret, in bytes.
const MAX_FIELD: usize = 4096;

/// A project's git credentials (HTTP Basic: username and password or token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCredentials {
    pub username: String,
    pub secret: Secret,
}

impl GitCredentials {
    /// The `Authorization` header value git sends.
    pub fn authorization(&self) -> String {
        use base64::Engine;
        let pair = format!("{}:{}", self.username, self.secret.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// Every form the secret could take in git's output: the secret itself and the header.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in [
            self.authorization(),
            self.authorization().trim_start_matches("Basic ").to_owned(),
            self.secret.expose().to_owned(),
        ] {
            if !needle.is_empty() {
                out = out.replace(&needle, "[redacted]");
            }
        }
        out
    }
}

/// A project's stored credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGitCredentials {
    pub project_id: Uuid,
    pub credentials: GitCredentials,
    pub updated_by: Option<Uuid>,
    pub updated_at: OffsetDateTime,
}

#[async_trait]
pub trait GitCredentialStore: Send + Sync {
    async fn git_credentials(&self, project_id: Uuid) -> StoreResult<Option<StoredGitCredentials>>;
    /// Creates or replaces the project's credentials.
    async fn put_git_credentials(&self, stored: &StoredGitCredentials) -> StoreResult<()>;
    /// Removes them; false when there were none.
    async fn delete_git_credentials(&self, project_id: Uuid) -> StoreResult<bool>;
}

#[async_trait]
impl GitCredentialStore for SqlStore {
    async fn git_credentials(&self, project_id: Uuid) -> StoreResult<Option<StoredGitCredentials>> {
        let row = sqlx::query(
            "SELECT username, secret, updated_by, updated_at FROM git_credentials \
             WHERE project_id = $1",
        )
        .bind(project_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let secret: String = row.try_get("secret")?;
        Ok(Some(StoredGitCredentials {
            project_id,
            credentials: GitCredentials {
                username: row.try_get("username")?,
                secret: Secret::new(secret),
            },
            updated_by: get_opt_uuid(&row, "updated_by")?,
            updated_at: get_ts(&row, "updated_at")?,
        }))
    }

    async fn put_git_credentials(&self, stored: &StoredGitCredentials) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO git_credentials (project_id, username, secret, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (project_id) DO UPDATE SET username = excluded.username, \
             secret = excluded.secret, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(stored.project_id.to_string())
        .bind(&stored.credentials.username)
        .bind(stored.credentials.secret.expose())
        .bind(stored.updated_by.map(|u| u.to_string()))
        .bind(ms(stored.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn delete_git_credentials(&self, project_id: Uuid) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM git_credentials WHERE project_id = $1")
            .bind(project_id.to_string())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

/// The project's credentials, if any.
pub async fn load(
    store: &dyn GitCredentialStore,
    project_id: Uuid,
) -> StoreResult<Option<GitCredentials>> {
    Ok(store
        .git_credentials(project_id)
        .await?
        .map(|s| s.credentials))
}

/// The credentials as the API shows them: never the secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GitCredentialsResponse {
    /// `null` when none are set.
    pub username: Option<String>,
    /// Whether a secret is stored (the secret itself is never returned).
    pub has_secret: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<OffsetDateTime>,
}

impl GitCredentialsResponse {
    fn new(stored: Option<&StoredGitCredentials>) -> Self {
        GitCredentialsResponse {
            username: stored.map(|s| s.credentials.username.clone()),
            has_secret: stored.is_some(),
            updated_at: stored.map(|s| s.updated_at),
        }
    }
}

/// New credentials for http(s) remotes: a username and its password or access token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGitCredentialsRequest {
    pub username: String,
    /// A password or an access token; write-only.
    #[schema(value_type = String)]
    pub secret: Secret,
}

impl std::fmt::Debug for PutGitCredentialsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutGitCredentialsRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn checked(req: PutGitCredentialsRequest) -> Result<GitCredentials, AppError> {
    let username = req.username.trim().to_owned();
    if username.is_empty()
        || username.len() > MAX_FIELD
        || username.contains(':')
        || username.chars().any(char::is_control)
    {
        return Err(AppError::invalid(format!(
            "`username` must be 1 to {MAX_FIELD} bytes without `:` or control characters"
        )));
    }
    let secret = req.secret.expose();
    if secret.is_empty() || secret.len() > MAX_FIELD || secret.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "`secret` must be 1 to {MAX_FIELD} bytes without control characters"
        )));
    }
    Ok(GitCredentials {
        username,
        secret: req.secret,
    })
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/git-credentials", tag = "jobs",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "Whether the project has git credentials for repo_sync, without the secret (maintainer)", body = GitCredentialsResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn get_git_credentials(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
) -> Result<Json<GitCredentialsResponse>, AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let store: &dyn GitCredentialStore = &ctx.state.sql;
    let stored = store.git_credentials(project_id).await?;
    Ok(Json(GitCredentialsResponse::new(stored.as_ref())))
}

#[utoipa::path(
    put, path = "/api/v1/projects/{project_id}/git-credentials", tag = "jobs",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = PutGitCredentialsRequest,
    responses(
        (status = 200, description = "Stored (maintainer); the secret is not returned", body = GitCredentialsResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Empty or malformed username or secret", body = ErrorBody),
    )
)]
pub async fn put_git_credentials(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Json(req): Json<PutGitCredentialsRequest>,
) -> Result<Json<GitCredentialsResponse>, AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let stored = StoredGitCredentials {
        project_id,
        credentials: checked(req)?,
        updated_by: Some(ctx.user.id),
        updated_at: crate::store::now(),
    };
    let store: &dyn GitCredentialStore = &ctx.state.sql;
    store.put_git_credentials(&stored).await?;
    ctx.state
        .emit(
            project_id,
            "project.git_credentials_updated",
            Some(ctx.user.id),
            serde_json::json!({"username": stored.credentials.username, "has_secret": true}),
        )
        .await?;
    Ok(Json(GitCredentialsResponse::new(Some(&stored))))
}

#[utoipa::path(
    delete, path = "/api/v1/projects/{project_id}/git-credentials", tag = "jobs",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 204, description = "Removed, or there were none (maintainer)"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn delete_git_credentials(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let store: &dyn GitCredentialStore = &ctx.state.sql;
    if store.delete_git_credentials(project_id).await? {
        ctx.state
            .emit(
                project_id,
                "project.git_credentials_deleted",
                Some(ctx.user.id),
                serde_json::json!({}),
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_basic_auth_and_redaction_hides_every_form_of_the_secret() {
        let c = GitCredentials {
            username: "bot".into(),
            secret: Secret::new("tok3n"),
        };
        assert_eq!(c.authorization(), "Basic Ym90OnRvazNu");
        let text = format!("a tok3n b {} c Ym90OnRvazNu", c.authorization());
        let clean = c.redact(&text);
        assert!(
            !clean.contains("tok3n") && !clean.contains("Ym90OnRvazNu"),
            "{clean}"
        );
        assert!(!format!("{c:?}").contains("tok3n"));
    }

    #[test]
    fn requests_are_checked() {
        let req = |u: &str, s: &str| PutGitCredentialsRequest {
            username: u.into(),
            secret: Secret::new(s),
        };
        assert!(checked(req("bot", "t")).is_ok());
        for (u, s) in [("", "t"), ("a:b", "t"), ("bot", ""), ("bot", "a\nb")] {
            let err = checked(req(u, s)).expect_err("refused");
            assert!(!err.to_string().contains("a\nb"));
        }
        assert!(!format!("{:?}", req("bot", "hidden")).contains("hidden"));
    }
}
