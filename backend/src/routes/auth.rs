//! Account and session routes: register, login, refresh (rotating refresh tokens with reuse
//! detection), logout, `GET /api/v1/me`, and personal access tokens. Login and token endpoints
//! are rate-limited per client address.

use super::{ClientAddr, rate_limit};
use crate::auth::{
    Ctx, PAT_PREFIX, REFRESH_PREFIX, check_password_policy, random_token, revoked_session_key,
    token_hash,
};
use crate::error::{AppError, ErrorBody, Json, Path};
use crate::state::AppState;
use crate::store::{CreateUser, NewUser, PersonalAccessToken, RefreshToken, User};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A new access token and the refresh token that replaces the one presented.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchange at `/api/v1/auth/refresh` before the access token expires; usable once.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// An account as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// Whether this is an instance administrator (the first registered user).
    pub is_admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        UserResponse {
            id: u.id,
            email: u.email,
            name: u.name,
            is_admin: u.is_admin,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What the token is for, e.g. "laptop CLI".
    #[schema(example = "laptop CLI")]
    pub name: String,
    /// Days until the token stops working (1–3650); never expires when absent.
    pub expires_in_days: Option<u32>,
}

/// A personal access token as listed (the token itself is only shown once, at creation).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    /// The token's first characters, to recognise it.
    pub token_prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A newly created personal access token, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// Send as `Authorization: Bearer <token>`. Not retrievable later.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

impl From<PersonalAccessToken> for TokenInfo {
    fn from(t: PersonalAccessToken) -> Self {
        TokenInfo {
            id: t.id,
            name: t.name,
            token_prefix: t.token_prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// Lowercased and trimmed; rejects what cannot be an address.
fn normalize_email(email: &str) -> Result<String, AppError> {
    let email = email.trim();
    let bad = |m: &str| AppError::Invalid {
        code: "invalid_email",
        message: m.to_string(),
    };
    if email.len() > 254 {
        return Err(bad("email must be at most 254 characters"));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad("email must look like name@example.com"));
    };
    if local.is_empty()
        || domain.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("email must look like name@example.com"));
    }
    Ok(email.to_lowercase())
}

/// Trimmed, 1 to `max` characters, no control characters.
pub(crate) fn clean_name(name: &str, what: &str, max: usize) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(AppError::invalid(format!(
            "{what} must be 1 to {max} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(name.to_string())
}

#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; the first account is the instance admin", body = UserResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Registration is closed (`registration_closed`)", body = ErrorBody),
        (status = 409, description = "Email already registered (`email_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid email, name or password", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<UserResponse>), AppError> {
    rate_limit(&state, "register", &client).await?;
    let email_normalized = normalize_email(&req.email)?;
    let name = clean_name(&req.name, "name", 100)?;
    check_password_policy(&req.password)?;
    let password_hash = state.passwords.hash(&req.password).await?;
    let created = state
        .users
        .create_user(
            NewUser {
                id: Uuid::now_v7(),
                email: req.email.trim().to_string(),
                email_normalized,
                name,
                password_hash,
                created_at: crate::store::now(),
            },
            state.config.config.registration_open,
        )
        .await?;
    match created {
        CreateUser::Created(user) => {
            tracing::info!(user_id = %user.id, admin = user.is_admin, "user registered");
            Ok((StatusCode::CREATED, Json(user.into())))
        }
        CreateUser::EmailTaken => Err(AppError::Conflict {
            code: "email_taken",
            message: "an account with this email already exists".into(),
        }),
        CreateUser::Closed => Err(AppError::Forbidden {
            code: "registration_closed",
            message: "registration is closed on this server".into(),
        }),
    }
}

/// Starts a new session (refresh-token family) or continues one, returning both tokens.
async fn issue_tokens(
    state: &AppState,
    user_id: Uuid,
    family: Option<(Uuid, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Result<TokenResponse, AppError> {
    let cfg = &state.config.config;
    let (family_id, session_expires_at) = family.unwrap_or_else(|| {
        (
            Uuid::now_v7(),
            now + Duration::from_secs(cfg.session_max_seconds),
        )
    });
    let refresh_token = random_token(REFRESH_PREFIX);
    let expires_at =
        (now + Duration::from_secs(cfg.refresh_token_ttl_seconds)).min(session_expires_at);
    state
        .tokens
        .insert_refresh_token(&RefreshToken {
            id: Uuid::now_v7(),
            family_id,
            user_id,
            token_hash: token_hash(&refresh_token),
            created_at: now,
            expires_at,
            session_expires_at,
            used_at: None,
            revoked_at: None,
        })
        .await?;
    let access_token = state.jwt.issue(user_id, family_id, now)?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl().as_secs(),
    })
}

#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = ErrorBody),
        (status = 422, description = "Missing fields", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    Json(req): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    rate_limit(&state, "login", &client).await?;
    let found = match normalize_email(&req.email) {
        Ok(email) => state.users.user_by_email(&email).await?,
        Err(_) => None,
    };
    let ok = state
        .passwords
        .verify(&req.password, found.as_ref().map(|(_, h)| h.as_str()))
        .await?;
    let Some((user, _)) = found.filter(|_| ok) else {
        return Err(AppError::Unauthorized {
            code: "invalid_credentials",
            message: "wrong email or password".into(),
        });
    };
    let tokens = issue_tokens(&state, user.id, None, crate::store::now()).await?;
    Ok(Json(tokens))
}

/// Ends the session everywhere: the refresh-token family in the database, its access tokens
/// through the ephemeral store (until they would have expired anyway).
async fn revoke_session(
    state: &AppState,
    family_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), AppError> {
    state.tokens.revoke_refresh_family(family_id, now).await?;
    let ttl = state.jwt.ttl() + Duration::from_secs(60);
    state
        .ephemeral
        .set(&revoked_session_key(family_id), "1", ttl)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))
}

#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access token and a new refresh token (the old one is spent)", body = TokenResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Unknown, expired or revoked refresh token (`invalid_token`), or a spent one presented again (`refresh_token_reused`, which ends the session)", body = ErrorBody),
        (status = 422, description = "Missing fields", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientAddr,
    Json(req): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    rate_limit(&state, "refresh", &client).await?;
    let now = crate::store::now();
    let invalid = || AppError::Unauthorized {
        code: "invalid_token",
        message: "the refresh token is invalid, expired or revoked".into(),
    };
    let token = state
        .tokens
        .refresh_token_by_hash(&token_hash(&req.refresh_token))
        .await?
        .ok_or_else(invalid)?;
    if token.revoked_at.is_some() {
        return Err(invalid());
    }
    if token.used_at.is_some() || !state.tokens.mark_refresh_token_used(token.id, now).await? {
        // A spent token came back: someone holds a copy. End the whole session.
        tracing::warn!(user_id = %token.user_id, family = %token.family_id, "refresh token reuse; session revoked");
        revoke_session(&state, token.family_id, now).await?;
        return Err(AppError::Unauthorized {
            code: "refresh_token_reused",
            message:
                "this refresh token was already used; the session has been ended, log in again"
                    .into(),
        });
    }
    if token.expires_at <= now {
        return Err(invalid());
    }
    let tokens = issue_tokens(
        &state,
        token.user_id,
        Some((token.family_id, token.session_expires_at)),
        now,
    )
    .await?;
    Ok(Json(tokens))
}

#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "The session is ended (also when the token was already unknown or revoked)"),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Missing fields", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientAddr,
    Json(req): Json<RefreshRequest>,
) -> Result<StatusCode, AppError> {
    rate_limit(&state, "logout", &client).await?;
    if let Some(token) = state
        .tokens
        .refresh_token_by_hash(&token_hash(&req.refresh_token))
        .await?
    {
        revoke_session(&state, token.family_id, crate::store::now()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserResponse),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
    )
)]
pub async fn me(ctx: Ctx) -> Result<Json<UserResponse>, AppError> {
    let user = ctx
        .state
        .users
        .user_by_id(ctx.user.id)
        .await?
        .ok_or_else(|| AppError::unauthorized("the account no longer exists"))?;
    Ok(Json(user.into()))
}

#[utoipa::path(
    post, path = "/api/v1/me/tokens", tag = "auth",
    security(("bearer" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "The token, shown only this once", body = CreatedToken),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
pub async fn create_token(
    ctx: Ctx,
    client: ClientAddr,
    Json(req): Json<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    rate_limit(&ctx.state, "tokens", &client).await?;
    let name = clean_name(&req.name, "name", 100)?;
    let now = crate::store::now();
    let expires_at = match req.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(now + time::Duration::days(i64::from(days))),
        Some(_) => return Err(AppError::invalid("expires_in_days must be 1 to 3650")),
    };
    let token = random_token(PAT_PREFIX);
    let record = PersonalAccessToken {
        id: Uuid::now_v7(),
        user_id: ctx.user.id,
        name,
        token_hash: token_hash(&token),
        token_prefix: token.chars().take(PAT_PREFIX.len() + 6).collect(),
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    ctx.state.tokens.insert_personal_token(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: record.into(),
        }),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/me/tokens", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's personal access tokens, newest first (without the secrets)", body = [TokenInfo]),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
    )
)]
pub async fn list_tokens(ctx: Ctx) -> Result<Json<Vec<TokenInfo>>, AppError> {
    let tokens = ctx.state.tokens.personal_tokens(ctx.user.id).await?;
    Ok(Json(tokens.into_iter().map(TokenInfo::from).collect()))
}

#[utoipa::path(
    delete, path = "/api/v1/me/tokens/{token_id}", tag = "auth",
    security(("bearer" = [])),
    params(("token_id" = Uuid, Path, description = "Id of the personal access token")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "The caller has no token with this id", body = ErrorBody),
    )
)]
pub async fn delete_token(ctx: Ctx, Path(token_id): Path<Uuid>) -> Result<StatusCode, AppError> {
    if ctx
        .state
        .tokens
        .delete_personal_token(ctx.user.id, token_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").expect("valid"),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a da@x.org",
            "ada@.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
