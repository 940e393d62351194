//! Assembling and running the server: [`build_state`] connects the parts chosen by the
//! configuration, [`router`] wraps the routes in the cross-cutting layer
//! ([`crate::request_scope`]: request ids, logs naming the request, JSON errors, panic catching,
//! timeouts, body limits, metrics), and [`Server`] listens and shuts down gracefully — in-flight
//! requests finish, up to `shutdown_grace_seconds`.

use crate::auth::{Passwords, load_or_create_secret};
use crate::config::{Config, ConfigError, Resolved};
use crate::error::{method_not_allowed_fallback, not_found_fallback};
use crate::metrics::Metrics;
use crate::request_scope::{Limits, RequestLayer};
use crate::routes::api_router;
use crate::state::{AppState, Services};
use crate::store::StoreError;
use crate::store::sql::SqlStore;
use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or create the JWT secret in {path}: {source}")]
    Secret {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Startup(String),
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Connects every part the configuration names and runs the migrations.
pub async fn build_state(
    resolved: Resolved,
    services: Services,
    shutdown: watch::Receiver<bool>,
) -> Result<AppState, ServerError> {
    let cfg = &resolved.config;
    for dir in std::iter::once(cfg.data_dir.as_path()).chain(resolved.storage.local_dir()) {
        create_private_dir(dir).map_err(|source| ServerError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut services = services.connect(cfg).await.map_err(ServerError::Startup)?;
    if services.blobs.is_none() {
        services.blobs = Some(connect_blobs(&resolved).await?);
    }
    let secret =
        load_or_create_secret(cfg.jwt_secret.as_deref(), &cfg.data_dir).map_err(|source| {
            ServerError::Secret {
                path: cfg.data_dir.join("jwt_secret"),
                source,
            }
        })?;
    let sql = SqlStore::connect(
        &resolved.database_url,
        resolved.database_kind,
        cfg.database_max_connections,
    )
    .await?;
    let passwords = Passwords::new()
        .await
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    let jobs =
        crate::worker::JobQueue::connect(cfg, &sql, services.registry.take(), services.retry)
            .await
            .map_err(ServerError::Startup)?;
    Ok(AppState::new(
        resolved, sql, services, jobs, &secret, passwords, shutdown,
    ))
}

/// The blob store `storage_url` names, reached once so a wrong bucket, endpoint or credentials
/// stop the start with a message naming `HIVESYNC_STORAGE_URL` (never a silent fallback).
async fn connect_blobs(resolved: &Resolved) -> Result<crate::blobs::BlobStore, ServerError> {
    let shown = || {
        resolved
            .config
            .storage_url
            .as_deref()
            .map(crate::config::redact_url)
            .unwrap_or_default()
    };
    let blobs = crate::blobs::BlobStore::from_config(&resolved.storage)
        .map_err(|e| ServerError::Startup(format!("HIVESYNC_STORAGE_URL {}: {e}", shown())))?;
    if resolved.storage.local_dir().is_none() {
        blobs
            .ping()
            .await
            .map_err(|e| ServerError::Startup(format!("HIVESYNC_STORAGE_URL {}: {e}", shown())))?;
    }
    Ok(blobs)
}

/// The complete application: every route plus the cross-cutting layers.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_router().split_for_parts();
    let cfg = &state.config.config;
    let (max_body, timeout) = (cfg.max_body_bytes, cfg.request_timeout());
    let routes = routes
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback);
    with_layers(routes, max_body, timeout, Some(state.metrics.clone())).with_state(state)
}

/// The cross-cutting layers: all in [`RequestLayer`] (request id, logs naming the request,
/// JSON errors for whatever the inner layers answer, panic → 500, timeout → 503, body limit →
/// 413, server errors logged, metrics). One `layer` call: each `Router::layer` boxes every
/// route's service and future again.
fn with_layers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    max_body: usize,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
) -> Router<S> {
    router.layer(RequestLayer::new(Limits { timeout, max_body }, metrics))
}

/// A bound, ready-to-run server.
pub struct Server {
    listener: tokio::net::TcpListener,
    /// The preview content origin (`preview_bind`), served beside the API.
    preview_listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    shutdown: watch::Sender<bool>,
    grace: Duration,
}

impl Server {
    /// Resolves the configuration, connects every part and binds the address.
    pub async fn bind(config: &Config, services: Services) -> Result<Server, ServerError> {
        let resolved = config.resolve()?;
        let grace = Duration::from_secs(resolved.config.shutdown_grace_seconds);
        let bind = resolved.config.bind;
        tracing::info!(
            database = resolved.database_kind.as_str(),
            data_dir = %resolved.config.data_dir.display(),
            "starting"
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = build_state(resolved, services, shutdown_rx).await?;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| ServerError::Bind { addr: bind, source })?;
        let preview_bind = state.config.config.preview_bind;
        let preview_listener =
            tokio::net::TcpListener::bind(preview_bind)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: preview_bind,
                    source,
                })?;
        Ok(Server {
            router: router(state.clone()),
            listener,
            preview_listener,
            state,
            shutdown,
            grace,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        self.listener.local_addr().map_err(ServerError::Serve)
    }

    /// Where preview content is served.
    pub fn preview_addr(&self) -> Result<SocketAddr, ServerError> {
        self.preview_listener
            .local_addr()
            .map_err(ServerError::Serve)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes, then stops accepting, lets in-flight requests finish
    /// (at most the grace period) and closes the database pool.
    pub async fn run(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            listener,
            preview_listener,
            router,
            state,
            shutdown,
            grace,
        } = self;
        let background = spawn_background(&state, &shutdown);
        let mut stopping = shutdown.subscribe();
        let mut preview_stopping = shutdown.subscribe();
        let preview = axum::serve(
            preview_listener,
            crate::preview::content_router(state.clone()),
        )
        .with_graceful_shutdown(async move {
            let _ = preview_stopping.wait_for(|s| *s).await;
        })
        .into_future();
        let preview = tokio::spawn(async move {
            if let Err(e) = preview.await {
                tracing::error!(error = %e, "preview listener failed");
            }
        });
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|s| *s).await;
        })
        .into_future();
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => result.map_err(ServerError::Serve)?,
            () = signal => {
                tracing::info!(grace_seconds = grace.as_secs(), "shutting down; finishing in-flight requests");
                let _ = shutdown.send(true);
                match tokio::time::timeout(grace, &mut serve).await {
                    Ok(result) => result.map_err(ServerError::Serve)?,
                    Err(_) => tracing::warn!("grace period over; closing remaining connections"),
                }
            }
        }
        let _ = shutdown.send(true);
        let _ = tokio::time::timeout(grace, preview).await;
        // Workers let running jobs finish for their own grace period, then stop.
        for task in background {
            let _ = tokio::time::timeout(grace + Duration::from_secs(1), task).await;
        }
        state.sql.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The server's background tasks: in-process job workers (`workers`), the broker sweeper
/// and the `preview_cleanup` schedule; all stop when `shutdown` flips.
fn spawn_background(
    state: &AppState,
    shutdown: &watch::Sender<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = &state.config.config;
    let mut tasks = Vec::new();
    let workers = cfg.in_process_workers();
    if workers > 0 {
        let options = crate::worker::WorkerOptions::from_config(cfg, workers, Vec::new());
        tasks.push(tokio::spawn(crate::worker::run_workers(
            state.clone(),
            options,
            shutdown.subscribe(),
        )));
    }
    tasks.push(tokio::spawn(crate::worker::sweep_unpublished(
        state.clone(),
        crate::worker::SWEEP_EVERY,
        shutdown.subscribe(),
    )));
    if cfg.cleanup_interval_seconds > 0 {
        tasks.push(tokio::spawn(crate::worker::schedule_cleanup(
            state.clone(),
            Duration::from_secs(cfg.cleanup_interval_seconds),
            shutdown.subscribe(),
        )));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn call(router: &Router, path: &str) -> (StatusCode, serde_json::Value) {
        let req = axum::http::Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request");
        let resp = router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    #[tokio::test]
    async fn timeouts_and_panics_answer_in_the_error_shape() {
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "late"
        }
        async fn boom() -> &'static str {
            panic!("secret detail")
        }
        let router = with_layers(
            Router::new()
                .route("/slow", get(slow))
                .route("/boom", get(boom)),
            1024,
            Duration::from_millis(50),
            None,
        );
        let (status, body) = call(&router, "/slow").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "timeout");
        let (status, body) = call(&router, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret detail"));
    }
}
