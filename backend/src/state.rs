//! [`AppState`]: what every request can reach — the resolved configuration, the storage traits,
//! the ephemeral store and rate limiter, event delivery, token signing, and the shutdown signal.
//! Nothing in it outlives a request except caches that can be dropped (the API is stateless);
//! [`Services`] is the extension point where Redis / RabbitMQ implementations are plugged in.

use crate::auth::{Jwt, Passwords};
use crate::config::Resolved;
use crate::ephemeral::{Ephemeral, MemoryEphemeral, RateLimiter, WindowRateLimiter};
use crate::error::AppError;
use crate::events::{Events, LocalEvents};
use crate::store::sql::SqlStore;
use crate::store::{
    Event, EventLog, NewEvent, PreviewStore, ProjectStore, ProposalStore, SnapshotStore,
    ThreadStore, TokenStore, UserStore,
};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Resolved,
    pub sql: SqlStore,
    pub users: Arc<dyn UserStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub projects: Arc<dyn ProjectStore>,
    pub event_log: Arc<dyn EventLog>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub previews: Arc<dyn PreviewStore>,
    pub threads: Arc<dyn ThreadStore>,
    pub proposals: Arc<dyn ProposalStore>,
    /// File contents of snapshots, by hash.
    pub blobs: crate::blobs::BlobStore,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub events: Arc<dyn Events>,
    pub limiter: Arc<dyn RateLimiter>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Background jobs: the queue (its `jobs()` is the jobs table) and the job kinds.
    pub queue: Arc<dyn crate::queue::Queue>,
    pub registry: Arc<crate::worker::Registry>,
    /// The same queue when it is RabbitMQ (for broker operations: dead letters, reconnects).
    pub rabbit_queue: Option<Arc<crate::queue::amqp::RabbitQueue>>,
    pub jwt: Jwt,
    pub passwords: Passwords,
    /// Flips to `true` when the server starts shutting down; long-lived responses (SSE)
    /// watch it and end.
    pub shutdown: watch::Receiver<bool>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The replaceable parts, chosen by configuration. `None` means the embedded default.
#[derive(Default)]
pub struct Services {
    pub ephemeral: Option<Arc<dyn Ephemeral>>,
    pub events: Option<Arc<dyn Events>>,
    /// The job kinds (default: `worker::kinds::registry()`).
    pub registry: Option<crate::worker::Registry>,
    /// Job retries (default: `job_max_attempts` with the default backoff).
    pub retry: Option<crate::queue::RetryPolicy>,
    /// Snapshot blob storage; the one `storage_url` names when `None`.
    pub blobs: Option<crate::blobs::BlobStore>,
}

/// Events buffered per slow in-process subscriber.
const EVENT_BUFFER: usize = 1024;

impl Services {
    /// Fills every part the configuration names by URL and the caller did not provide:
    /// Redis for `redis_url`, RabbitMQ for `amqp_url`. A URL that does not answer stops the
    /// start with a message naming it (never a silent fallback to in-process).
    pub async fn connect(mut self, cfg: &crate::config::Config) -> Result<Services, String> {
        if let (Some(url), None) = (&cfg.redis_url, &self.ephemeral) {
            let redis = crate::ephemeral::RedisEphemeral::connect(url, &cfg.redis_key_prefix)
                .await
                .map_err(|e| format!("REDIS_URL {}: {e}", crate::config::redact_url(url)))?;
            self.ephemeral = Some(Arc::new(redis));
        }
        if let (Some(url), None) = (&cfg.amqp_url, &self.events) {
            let rabbit = crate::events::RabbitEvents::connect(
                url,
                crate::events::RabbitOptions {
                    capacity: EVENT_BUFFER,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("AMQP_URL {}: {e}", crate::config::redact_url(url)))?;
            self.events = Some(Arc::new(rabbit));
        }
        Ok(self)
    }
}

impl AppState {
    pub fn new(
        config: Resolved,
        sql: SqlStore,
        services: Services,
        jobs: crate::worker::JobQueue,
        jwt_secret: &[u8],
        passwords: Passwords,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let ephemeral = services
            .ephemeral
            .unwrap_or_else(|| Arc::new(MemoryEphemeral::new()));
        let events = services
            .events
            .unwrap_or_else(|| Arc::new(LocalEvents::new(EVENT_BUFFER)));
        let limiter: Arc<dyn RateLimiter> = Arc::new(WindowRateLimiter::new(
            ephemeral.clone(),
            config.config.auth_rate_limit_per_minute,
            Duration::from_secs(60),
        ));
        let jwt = Jwt::new(
            jwt_secret,
            &config.config.jwt_issuer,
            Duration::from_secs(config.config.access_token_ttl_seconds),
        );
        let store = Arc::new(sql.clone());
        // `build_state` always connects the configured store; the local directory is the
        // fallback only for callers that build the state by hand.
        let blobs = services.blobs.unwrap_or_else(|| {
            crate::blobs::BlobStore::local(
                config
                    .storage
                    .local_dir()
                    .unwrap_or(&config.config.data_dir.join("blobs")),
            )
        });
        AppState(Arc::new(Inner {
            blobs,
            config,
            users: store.clone(),
            tokens: store.clone(),
            projects: store.clone(),
            snapshots: store.clone(),
            previews: store.clone(),
            threads: store.clone(),
            proposals: store.clone(),
            event_log: store,
            sql,
            ephemeral,
            events,
            limiter,
            metrics: Arc::new(crate::metrics::Metrics::new()),
            queue: jobs.queue,
            registry: jobs.registry,
            rabbit_queue: jobs.rabbit,
            jwt,
            passwords,
            shutdown,
        }))
    }

    /// Appends an event to the project's log and publishes it. A failed publish is logged, not
    /// returned: the event is durable and clients resume from the log.
    pub async fn emit(
        &self,
        project_id: Uuid,
        kind: &str,
        actor_id: Option<Uuid>,
        payload: serde_json::Value,
    ) -> Result<Event, AppError> {
        let event = self
            .event_log
            .append_event(&NewEvent {
                project_id,
                kind: kind.to_string(),
                actor_id,
                payload,
                created_at: crate::store::now(),
            })
            .await?;
        self.metrics.event_published();
        if let Err(e) = self.events.publish(&event).await {
            tracing::warn!(error = %e, event_id = event.id, "event not published");
        }
        Ok(event)
    }

    /// Publishes a notice that is not kept in the log (`id` 0): for what the log cannot hold,
    /// such as `project.deleted` (the project's log is deleted with it). Streams forward it to
    /// the project's members without an SSE id; polling clients never see it.
    pub async fn notify(
        &self,
        project_id: Uuid,
        kind: &str,
        actor_id: Option<Uuid>,
        payload: serde_json::Value,
    ) {
        let event = Event {
            id: 0,
            project_id,
            kind: kind.to_string(),
            actor_id,
            payload,
            created_at: crate::store::now(),
        };
        if let Err(e) = self.events.publish(&event).await {
            tracing::warn!(error = %e, kind, "notice not published");
        }
    }
}
