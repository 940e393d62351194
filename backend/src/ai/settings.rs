//! Per-project AI provider settings: [`AiSettingsStore`] (the `ai_settings` table, on
//! [`SqlStore`]) and the routes `GET`/`PUT /api/v1/projects/{id}/ai-settings`. Owners set them,
//! maintainers and owners read them; the API key is write-only (`has_api_key` tells whether one
//! is set). A project without settings uses the offline provider. Event:
//! `project.ai_settings_updated` (without the key).

use super::{ProviderKind, ProviderSettings, Secret};
use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path};
use crate::store::sql::{SqlStore, get_opt_uuid, get_ts, ms};
use crate::store::{Role, StoreError, StoreResult};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::time::Duration;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest request timeout a project may set.
const MAX_TIMEOUT_SECS: u64 = 600;
/// Most retries a project may set.
const MAX_RETRIES: u32 = 10;
/// Longest API key, model name or base URL accepted.
const MAX_FIELD: usize = 2048;

/// A project's stored settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAiSettings {
    pub project_id: Uuid,
    pub settings: ProviderSettings,
    pub updated_by: Option<Uuid>,
    pub updated_at: OffsetDateTime,
}

#[async_trait]
pub trait AiSettingsStore: Send + Sync {
    async fn ai_settings(&self, project_id: Uuid) -> StoreResult<Option<StoredAiSettings>>;
    /// Creates or replaces the project's settings.
    async fn put_ai_settings(&self, stored: &StoredAiSettings) -> StoreResult<()>;
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn as_u64(row: &sqlx::any::AnyRow, col: &str) -> StoreResult<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("ai_settings.{col} {v}")))
}

#[async_trait]
impl AiSettingsStore for SqlStore {
    async fn ai_settings(&self, project_id: Uuid) -> StoreResult<Option<StoredAiSettings>> {
        let row = sqlx::query(
            "SELECT provider, base_url, model, api_key, timeout_ms, max_retries, token_budget, \
             updated_by, updated_at FROM ai_settings WHERE project_id = $1",
        )
        .bind(project_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let provider: String = row.try_get("provider")?;
        let provider = ProviderKind::parse(&provider)
            .ok_or_else(|| StoreError::Corrupt(format!("ai_settings.provider `{provider}`")))?;
        let api_key: Option<String> = row.try_get("api_key")?;
        Ok(Some(StoredAiSettings {
            project_id,
            settings: ProviderSettings {
                provider,
                base_url: row.try_get("base_url")?,
                model: row.try_get("model")?,
                api_key: api_key.map(Secret::new),
                timeout: Duration::from_millis(as_u64(&row, "timeout_ms")?),
                max_retries: u32::try_from(as_u64(&row, "max_retries")?).unwrap_or(MAX_RETRIES),
                token_budget: as_u64(&row, "token_budget")?,
                ..ProviderSettings::default()
            },
            updated_by: get_opt_uuid(&row, "updated_by")?,
            updated_at: get_ts(&row, "updated_at")?,
        }))
    }

    async fn put_ai_settings(&self, stored: &StoredAiSettings) -> StoreResult<()> {
        let s = &stored.settings;
        sqlx::query(
            "INSERT INTO ai_settings (project_id, provider, base_url, model, api_key, timeout_ms, \
             max_retries, token_budget, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (project_id) DO UPDATE SET provider = excluded.provider, \
             base_url = excluded.base_url, model = excluded.model, api_key = excluded.api_key, \
             timeout_ms = excluded.timeout_ms, max_retries = excluded.max_retries, \
             token_budget = excluded.token_budget, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(stored.project_id.to_string())
        .bind(s.provider.as_str())
        .bind(s.base_url.clone())
        .bind(s.model.clone())
        .bind(s.api_key.as_ref().map(|k| k.expose().to_owned()))
        .bind(as_i64(s.timeout.as_millis().try_into().unwrap_or(u64::MAX)))
        .bind(i64::from(s.max_retries))
        .bind(as_i64(s.token_budget))
        .bind(stored.updated_by.map(|u| u.to_string()))
        .bind(ms(stored.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// The project's provider settings (the offline provider when none are stored).
pub async fn load(store: &dyn AiSettingsStore, project_id: Uuid) -> StoreResult<ProviderSettings> {
    Ok(store
        .ai_settings(project_id)
        .await?
        .map(|s| s.settings)
        .unwrap_or_default())
}

/// The settings as the API shows them: never the key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AiSettingsResponse {
    /// `openai`, `anthropic` or `offline`.
    pub provider: ProviderKind,
    /// `null`: the provider's public endpoint.
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Whether an API key is stored (the key itself is never returned).
    pub has_api_key: bool,
    pub timeout_seconds: u64,
    pub max_retries: u32,
    /// Most tokens one job may use.
    pub token_budget: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<OffsetDateTime>,
}

impl AiSettingsResponse {
    fn new(settings: &ProviderSettings, updated_at: Option<OffsetDateTime>) -> Self {
        AiSettingsResponse {
            provider: settings.provider,
            base_url: settings.base_url.clone(),
            model: settings.model.clone(),
            has_api_key: settings.api_key.as_ref().is_some_and(|k| !k.is_empty()),
            timeout_seconds: settings.timeout.as_secs(),
            max_retries: settings.max_retries,
            token_budget: settings.token_budget,
            updated_at,
        }
    }
}

/// New settings. Omitted fields take their defaults, except `api_key`: omitted keeps the
/// stored key, `null` removes it, a string replaces it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAiSettingsRequest {
    pub provider: ProviderKind,
    pub base_url: Option<String>,
    pub model: Option<String>,
    #[serde(default, deserialize_with = "crate::routes::projects::present")]
    #[schema(value_type = Option<String>, nullable)]
    pub api_key: Option<Option<String>>,
    pub timeout_seconds: Option<u64>,
    pub max_retries: Option<u32>,
    pub token_budget: Option<u64>,
}

fn clean(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    let Some(v) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.len() > MAX_FIELD || v.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "`{field}` must be at most {MAX_FIELD} bytes without control characters"
        )));
    }
    Ok(Some(v))
}

/// Checks a request against the stored key; the settings to store.
fn settings_from(
    req: PutAiSettingsRequest,
    stored_key: Option<Secret>,
) -> Result<ProviderSettings, AppError> {
    let defaults = ProviderSettings::default();
    let base_url = clean("base_url", req.base_url)?;
    if let Some(url) = &base_url {
        let ok = reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            return Err(AppError::invalid(format!(
                "`base_url` must be an http:// or https:// URL, got `{url}`"
            )));
        }
    }
    let model = clean("model", req.model)?;
    let api_key = match req.api_key {
        None => stored_key,
        Some(None) => None,
        Some(Some(k)) => clean("api_key", Some(k))?.map(Secret::new),
    };
    let timeout_seconds = req.timeout_seconds.unwrap_or(defaults.timeout.as_secs());
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_seconds) {
        return Err(AppError::invalid(format!(
            "`timeout_seconds` must be between 1 and {MAX_TIMEOUT_SECS}"
        )));
    }
    let max_retries = req.max_retries.unwrap_or(defaults.max_retries);
    if max_retries > MAX_RETRIES {
        return Err(AppError::invalid(format!(
            "`max_retries` must be at most {MAX_RETRIES}"
        )));
    }
    let token_budget = req.token_budget.unwrap_or(defaults.token_budget);
    if token_budget == 0 {
        return Err(AppError::invalid("`token_budget` must be positive"));
    }
    match req.provider {
        ProviderKind::OpenAi | ProviderKind::Anthropic if model.is_none() => {
            return Err(AppError::invalid(format!(
                "the {} provider needs a `model`",
                req.provider.as_str()
            )));
        }
        ProviderKind::Anthropic if api_key.is_none() => {
            return Err(AppError::invalid(
                "the anthropic provider needs an `api_key`",
            ));
        }
        _ => {}
    }
    Ok(ProviderSettings {
        provider: req.provider,
        base_url,
        model,
        api_key,
        timeout: Duration::from_secs(timeout_seconds),
        max_retries,
        token_budget,
        ..defaults
    })
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/ai-settings", tag = "ai",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project's AI provider settings, without the key (maintainer)", body = AiSettingsResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn get_ai_settings(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
) -> Result<Json<AiSettingsResponse>, AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let store: &dyn AiSettingsStore = &ctx.state.sql;
    Ok(Json(match store.ai_settings(project_id).await? {
        Some(s) => AiSettingsResponse::new(&s.settings, Some(s.updated_at)),
        None => AiSettingsResponse::new(&ProviderSettings::default(), None),
    }))
}

#[utoipa::path(
    put, path = "/api/v1/projects/{project_id}/ai-settings", tag = "ai",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = PutAiSettingsRequest,
    responses(
        (status = 200, description = "Stored (owner); the key is not returned", body = AiSettingsResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below owner", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Unknown provider, missing model or key, bad URL or limits", body = ErrorBody),
    )
)]
pub async fn put_ai_settings(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Json(req): Json<PutAiSettingsRequest>,
) -> Result<Json<AiSettingsResponse>, AppError> {
    require_role(&ctx, project_id, Role::Owner).await?;
    let store: &dyn AiSettingsStore = &ctx.state.sql;
    let stored_key = store
        .ai_settings(project_id)
        .await?
        .and_then(|s| s.settings.api_key);
    let settings = settings_from(req, stored_key)?;
    let stored = StoredAiSettings {
        project_id,
        settings,
        updated_by: Some(ctx.user.id),
        updated_at: crate::store::now(),
    };
    store.put_ai_settings(&stored).await?;
    ctx.state
        .emit(
            project_id,
            "project.ai_settings_updated",
            Some(ctx.user.id),
            serde_json::json!({
                "provider": stored.settings.provider,
                "model": stored.settings.model,
                "has_api_key": stored.settings.api_key.is_some(),
            }),
        )
        .await?;
    Ok(Json(AiSettingsResponse::new(
        &stored.settings,
        Some(stored.updated_at),
    )))
}
