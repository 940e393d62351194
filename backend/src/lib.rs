//! `hivesync-backend`: the HTTP API every HiveSync client talks to — accounts and sessions,
//! projects and roles, the event log — on axum and sqlx, stateless so any number of instances
//! can run behind a load balancer.
//!
//! Module map (dependencies point down):
//! - [`app`] — builds the state from the configuration, wraps the routes in the cross-cutting
//!   layer ([`request_scope`]), runs the [`Server`] with graceful shutdown.
//! - [`request_scope`] — the one layer every request passes through: request ids, logs naming
//!   the request (`RequestLogFormat`), JSON errors, panics → 500, timeouts → 503, body limits,
//!   server errors logged, metrics.
//! - [`routes`] — the handlers, one module per resource (`auth`, `projects`, `ops`), all
//!   registered with their OpenAPI description in `routes::api_router`. New resources
//!   (snapshots, threads, previews, jobs, proposals) add a module and a line there.
//! - [`auth`] — passwords (argon2id), access tokens (JWT HS256), refresh and personal access
//!   tokens, the `Ctx` extractor giving each handler its authenticated caller.
//! - [`authz`] — `require_role(&ctx, project_id, Role::…)`: the one authorization check.
//! - [`state`] — `AppState`, and `Services`, the extension point where Redis (ephemeral) and
//!   RabbitMQ (events) implementations are plugged in.
//! - [`store`] — one trait per storage concern (`UserStore`, `TokenStore`, `ProjectStore`,
//!   `EventLog`) and `store::sql::SqlStore`, their one implementation for SQLite and
//!   PostgreSQL; migrations in `migrations/{sqlite,postgres}`.
//! - [`ephemeral`] — short-lived keys (`Ephemeral`: in-process `MemoryEphemeral`, or
//!   `RedisEphemeral` when `REDIS_URL` is set) and the rate limiter built on them.
//! - [`events`] — event delivery to listeners (`Events`: in-process `LocalEvents`, or
//!   `RabbitEvents` — a RabbitMQ fanout exchange, one exclusive queue per instance — when
//!   `AMQP_URL` is set). Routes record what happened with
//!   `state.emit(project_id, "thread.created", Some(actor), json!({…})).await?`: it appends to
//!   the project's log (durable, ids in commit order) and publishes to every instance's SSE
//!   streams; `state.notify(…)` publishes a notice that is not logged (`project.deleted`).
//!   Kinds: `project.*`, `member.*`, `job.*`, `proposal.*`, `thread.*`, `preview.*`.
//! - [`queue`] — background jobs: `JobStore` (the `jobs` table, source of truth: status,
//!   attempts, progress, result, retry backoff; completion idempotent by job id) and the `Queue`
//!   trait with `SqlQueue` (embedded, leased row claims) and `RabbitQueue` (RabbitMQ, job ids
//!   only, confirms, manual acks, delay and dead-letter queues, reconnection).
//! - [`jobs`] — what background jobs do, as plain functions the worker runtime wraps:
//!   `jobs::snapshot::materialize` (a committed snapshot's files into a directory, paths checked)
//!   and `jobs::refactor` (a rename planned by the engine, stored as a proposal once per job id).
//! - [`worker`] — the job runtime: `JobHandler` (one per job kind, in a `Registry`), the
//!   worker loop (claims with a concurrency limit, heartbeats, ack/retry/give up, events
//!   `job.*`, graceful stop), the broker sweeper and the cleanup schedule; `worker::kinds`
//!   holds the built-in kinds (`preview_cleanup`, `repo_sync`).
//! - [`ai`] — AI providers (`openai`-compatible, `anthropic`, `offline`) behind the
//!   `AiProvider` trait, per-project provider settings (`GET`/`PUT …/ai-settings`, the key
//!   write-only), prompts with a ranked repository map, and the `docs` / `explain` jobs as
//!   plain functions.
//! - [`metrics`] — Prometheus counters and latency histograms by route template, `/metrics`.
//! - [`error`] — `AppError` and the one error shape `{"error":{"code","message"}}`.
//! - [`config`] — the typed `[server]` configuration and its validation.

pub mod ai;
pub mod app;
pub mod auth;
pub mod authz;
pub mod blobs;
pub mod config;
pub mod ephemeral;
pub mod error;
pub mod events;
pub mod jobs;
pub mod metrics;
pub mod preview;
pub mod queue;
pub mod reanchor;
pub mod request_scope;
pub mod routes;
pub mod state;
pub mod store;
pub mod worker;

pub use app::{Server, ServerError, build_state, router};
pub use config::Config;
pub use state::{AppState, Services};
