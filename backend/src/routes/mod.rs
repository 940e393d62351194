//! The HTTP routes, all registered through `utoipa_axum` so each route and its OpenAPI entry
//! come from the same `#[utoipa::path]` attribute (a route cannot be served undocumented).
//! [`api_router`] is the one place routes are added; later resources (snapshots, threads,
//! previews, jobs, proposals) add a module here and one `.routes(routes!(…))` line each.

pub mod auth;
pub mod events;
pub mod jobs;
pub mod ops;
pub mod previews;
pub mod projects;
pub mod proposals;
pub mod snapshots;
pub mod threads;

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::SocketAddr;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "HiveSync API",
        description = "Projects, roles, sessions and tokens of a HiveSync server. Every error is `{\"error\":{\"code\",\"message\"}}`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts, sessions and personal access tokens"),
        (name = "projects", description = "Projects and their members' roles"),
        (name = "events", description = "The event log per project: polling and Server-Sent Events"),
        (name = "operations", description = "Health, readiness and this document"),
        (name = "snapshots", description = "Manifest sync: snapshots of a project's files and their content-addressed blobs"),
        (name = "previews", description = "Preview sessions: static web builds opened on a phone with a short token"),
        (name = "threads", description = "Comment threads anchored to lines of a snapshot, re-anchored in later snapshots"),
        (name = "proposals", description = "Proposals: ChangeSets computed by jobs, reviewed hunk by hunk (exact and probable hunks apart), applied and reverted by clients"),
        (name = "jobs", description = "Background jobs: request, follow, cancel"),
        (name = "ai", description = "Per-project AI provider settings (the API key is write-only)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "An access token from /api/v1/auth/login (JWT) or a personal access token (hsp_…)",
                        ))
                        .build(),
                ),
            );
    }
}

/// Every route of the API with its OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::create_token, auth::list_tokens))
        .routes(routes!(auth::delete_token))
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(
            projects::get_project,
            projects::update_project,
            projects::delete_project
        ))
        .routes(routes!(projects::list_members))
        .routes(routes!(projects::set_member, projects::remove_member))
        .routes(routes!(events::project_events))
        .routes(routes!(events::event_stream))
        .routes(routes!(
            snapshots::create_snapshot,
            snapshots::list_snapshots
        ))
        .routes(routes!(snapshots::put_blob))
        .routes(routes!(snapshots::commit_snapshot))
        .routes(routes!(snapshots::get_manifest))
        .routes(routes!(snapshots::get_file))
        .routes(routes!(snapshots::diff_snapshots))
        .routes(routes!(previews::create_preview))
        .routes(routes!(previews::upload_bundle))
        .routes(routes!(previews::lookup_token))
        .routes(routes!(previews::revoke_preview))
        .routes(routes!(previews::preview_qr))
        .routes(routes!(threads::create_thread, threads::list_threads))
        .routes(routes!(threads::get_thread, threads::update_thread))
        .routes(routes!(threads::add_comment))
        .routes(routes!(threads::edit_comment, threads::delete_comment))
        .routes(routes!(proposals::list_proposals))
        .routes(routes!(proposals::get_proposal))
        .routes(routes!(proposals::review_proposal))
        .routes(routes!(proposals::approved_proposal))
        .routes(routes!(proposals::proposal_patch))
        .routes(routes!(proposals::proposal_applied))
        .routes(routes!(proposals::proposal_reverted))
        .routes(routes!(jobs::create_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(
            crate::ai::settings::get_ai_settings,
            crate::ai::settings::put_ai_settings
        ))
        .routes(routes!(
            crate::jobs::git_credentials::get_git_credentials,
            crate::jobs::git_credentials::put_git_credentials,
            crate::jobs::git_credentials::delete_git_credentials
        ))
}

/// The client's address, for rate limiting: the peer address, or with `trust_forwarded_for`
/// the last `X-Forwarded-For` entry (the one the trusted proxy added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if state.config.config.trust_forwarded_for
            && let Some(last) = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|v| !v.is_empty())
        {
            return Ok(ClientAddr(last.to_string()));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<axum::extract::connect_info::MockConnectInfo<SocketAddr>>()
                    .map(|c| c.0)
            });
        Ok(ClientAddr(
            peer.map(|a| a.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// 429 with `Retry-After` when this client has used up its requests on `bucket`.
pub async fn rate_limit(
    state: &AppState,
    bucket: &str,
    client: &ClientAddr,
) -> Result<(), AppError> {
    match state.limiter.check(bucket, &client.0).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(retry_after)) => {
            tracing::info!(bucket, client = %client.0, "rate limited");
            Err(AppError::RateLimited(retry_after))
        }
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}
