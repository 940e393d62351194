//! Operations routes: `/healthz` (the process answers), `/readyz` (every backing part answers,
//! reported one by one; 503 when any does not), `/metrics` (Prometheus text) and
//! `/api/v1/openapi.json`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// One backing part's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartStatus {
    /// `ok` or `failed`.
    pub status: String,
    /// Which implementation: `sqlite`, `postgres`, `memory`, `redis`, `in-process`, `file`, …
    pub backend: String,
    /// Why it failed (no secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every part answers, otherwise `unavailable`.
    pub status: String,
    pub database: PartStatus,
    pub cache: PartStatus,
    pub queue: PartStatus,
    pub storage: PartStatus,
}

#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// Each check gets this long before it counts as not answering.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn part<E: std::fmt::Display>(
    backend: &str,
    check: impl Future<Output = Result<(), E>>,
) -> PartStatus {
    let error = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(backend, error = %e, "readiness check failed");
            Some(e.to_string())
        }
        Err(_) => Some("did not answer in time".into()),
    };
    PartStatus {
        status: if error.is_none() { "ok" } else { "failed" }.into(),
        backend: backend.into(),
        error,
    }
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Every part answers", body = Readiness),
        (status = 503, description = "At least one part does not answer", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (database, cache, queue, storage) = tokio::join!(
        part(state.sql.kind().as_str(), state.sql.ping()),
        part(state.ephemeral.backend(), state.ephemeral.ping()),
        part(state.events.backend(), state.events.ping()),
        part(state.blobs.backend(), state.blobs.ping()),
    );
    let ready = [&database, &cache, &queue, &storage]
        .iter()
        .all(|p| p.error.is_none());
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" }.into(),
        database,
        cache,
        queue,
        storage,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This API's OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    // A function of the code alone: rendered on first use, not attached to the router (a
    // router-wide `Extension` layer costs every request an extension insert and a boxed
    // future).
    static DOC: OnceLock<bytes::Bytes> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        let (_, openapi) = super::api_router().split_for_parts();
        bytes::Bytes::from(
            openapi
                .to_pretty_json()
                .unwrap_or_else(|e| format!("{{\"error\":\"openapi: {e}\"}}")),
        )
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response()
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format: request counts and latency histograms by route template and status, open event streams, events published, queue depths when known", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
