//! The job runtime: what every job kind plugs into, and the workers that run them.
//!
//! A job kind is a [`JobHandler`] in the [`Registry`]: `validate` runs in the API before
//! anything is recorded (bad params are a 422 and nothing is queued), `run` does the work in a
//! worker and must be idempotent by job id (a redelivered job must not create a second result).
//!
//! [`run_workers`] is the worker loop, used by `hivesync worker` and by the in-process workers
//! of `hivesync server`: it takes deliveries of the registry's kinds from the [`Queue`] while
//! fewer than `concurrency` jobs run, runs each handler in its own task with a heartbeat that
//! extends the lease (so a live job is never handed to another worker), then
//! - `Ok(result)` → [`Queue::ack`] (the result is stored, then the message acknowledged),
//! - [`JobError::Retryable`] → [`Queue::nack`] (queued again after a backoff; `failed` and
//!   dead-lettered when attempts run out),
//! - [`JobError::Permanent`] → [`Queue::give_up`] (`failed` at once),
//! - [`JobError::Cancelled`] → the job stays (or becomes) `cancelled`.
//!
//! Events (`state.emit`): `job.started`, `job.progress` (throttled), `job.succeeded`,
//! `job.retrying`, `job.failed`, `job.cancelled`. On shutdown the loop stops taking jobs and
//! lets running ones finish for a grace period; jobs still running after it are abandoned and
//! taken over by another worker once their lease passes (or redelivered by RabbitMQ).
//!
//! [`JobQueue::connect`] picks the queue: RabbitMQ when `AMQP_URL` is set, else the embedded
//! `SqlQueue`. [`sweep_unpublished`] re-publishes queued jobs whose broker publish failed, and
//! [`schedule_cleanup`] enqueues `preview_cleanup` periodically (at most one waiting).

pub mod kinds;

use crate::config::Config;
use crate::queue::amqp::{RabbitQueue, RabbitQueueOptions};
use crate::queue::{
    FailOutcome, Job, JobStatus, JobStore, NewJob, Progress, Queue, QueueError, RetryPolicy,
    SYSTEM_PROJECT, SqlQueue,
};
use crate::state::AppState;
use crate::store::sql::SqlStore;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Progress is written to the jobs table at most this often (and always when done == total).
const PROGRESS_WRITE_EVERY: Duration = Duration::from_millis(200);
/// `job.progress` events are emitted at most this often per job (and always when done).
const PROGRESS_EVENT_EVERY: Duration = Duration::from_secs(1);
/// How often the sweeper looks for queued jobs the broker never confirmed.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How often an idle embedded-queue worker looks for due rows written by other processes.
const POLL: Duration = Duration::from_millis(250);

/// What a running job's handler can reach: the application state and the job as claimed.
pub struct JobContext {
    pub state: AppState,
    pub job: Job,
    jobs: JobStore,
    lease: Duration,
    cancelled: Arc<AtomicBool>,
    throttle: std::sync::Mutex<Throttle>,
}

#[derive(Default)]
struct Throttle {
    last_write: Option<Instant>,
    last_event: Option<Instant>,
}

impl JobContext {
    fn new(state: AppState, job: Job, lease: Duration, cancelled: Arc<AtomicBool>) -> Self {
        JobContext {
            jobs: state.queue.jobs().clone(),
            state,
            job,
            lease,
            cancelled,
            throttle: std::sync::Mutex::new(Throttle::default()),
        }
    }

    /// Records progress (done/total + message) in the jobs table, extends the lease /
    /// heartbeat, emits `job.progress` (throttled). Returns Err(JobError::Cancelled) when the
    /// job was cancelled meanwhile, so handlers stop early.
    pub async fn progress(&self, done: u64, total: u64, message: &str) -> Result<(), JobError> {
        if self.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        let finished = done >= total;
        let now = Instant::now();
        let (write, event) = {
            let mut t = self
                .throttle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = |last: Option<Instant>, every: Duration| {
                finished || last.is_none_or(|l| now.duration_since(l) >= every)
            };
            let write = due(t.last_write, PROGRESS_WRITE_EVERY);
            let event = due(t.last_event, PROGRESS_EVENT_EVERY);
            if write {
                t.last_write = Some(now);
            }
            if event {
                t.last_event = Some(now);
            }
            (write, event)
        };
        if write {
            let progress = Progress {
                done,
                total,
                message: (!message.is_empty()).then(|| message.to_string()),
            };
            match self
                .jobs
                .heartbeat(self.job.id, self.lease, Some(&progress))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    self.cancelled.store(true, Ordering::SeqCst);
                    return Err(JobError::Cancelled);
                }
                // The heartbeat ticker keeps the lease; a missed progress write is not fatal.
                Err(e) => {
                    tracing::warn!(job_id = %self.job.id, error = %e, "progress not recorded")
                }
            }
        }
        if event {
            emit(
                &self.state,
                &self.job,
                "job.progress",
                json!({"done": done, "total": total, "message": message}),
            )
            .await;
        }
        Ok(())
    }

    /// Whether the job was cancelled (or taken away) as far as this worker knows — learnt at
    /// the last heartbeat or progress write.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (network error, 5xx, broker trouble): retried with backoff.
    #[error("{0}")]
    Retryable(String),
    /// Will fail the same way again (engine refusal, bad snapshot): job `failed` at once.
    #[error("{0}")]
    Permanent(String),
    #[error("cancelled")]
    Cancelled,
}

/// One job kind.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Run by POST /api/v1/projects/{id}/jobs before anything is recorded or queued;
    /// Err(message) → 422 naming what is wrong. May look things up (the snapshot exists in
    /// this project, the thread exists…).
    async fn validate(
        &self,
        state: &AppState,
        project_id: Uuid,
        params: &serde_json::Value,
    ) -> Result<(), String>;
    /// Does the work. Must be idempotent by job id (a redelivered job must not create a
    /// second proposal/comment). The returned JSON becomes the job's `result`.
    async fn run(&self, ctx: &JobContext) -> Result<serde_json::Value, JobError>;
}

/// Kind → handler. Built once; the API uses it to validate, workers to run.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: BTreeMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds (or replaces) the handler of `handler.kind()`.
    pub fn register(&mut self, handler: std::sync::Arc<dyn JobHandler>) {
        self.handlers.insert(handler.kind().to_string(), handler);
    }

    pub fn get(&self, kind: &str) -> Option<std::sync::Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.keys()).finish()
    }
}

/// The queue the configuration chose, with the registry it serves.
pub struct JobQueue {
    pub queue: Arc<dyn Queue>,
    pub registry: Arc<Registry>,
    pub rabbit: Option<Arc<RabbitQueue>>,
}

impl JobQueue {
    /// RabbitMQ when `amqp_url` is set (queues `<job_queue_prefix>.<kind>`, prefetch = the
    /// worker count), the embedded `SqlQueue` otherwise. A broker that does not answer stops
    /// the start with a message naming the (redacted) URL.
    pub async fn connect(
        cfg: &Config,
        sql: &SqlStore,
        registry: Option<Registry>,
        retry: Option<RetryPolicy>,
    ) -> Result<JobQueue, String> {
        let registry = Arc::new(registry.unwrap_or_else(kinds::registry));
        let retry = retry.unwrap_or(RetryPolicy {
            max_attempts: cfg.job_max_attempts,
            ..RetryPolicy::default()
        });
        let jobs = JobStore::new(sql, registry.kinds(), retry);
        let lease = Duration::from_secs(cfg.job_lease_seconds);
        match &cfg.amqp_url {
            Some(url) => {
                let prefetch = u16::try_from(cfg.in_process_workers().max(1)).unwrap_or(u16::MAX);
                let rabbit = RabbitQueue::connect(
                    url,
                    jobs,
                    RabbitQueueOptions {
                        prefix: cfg.job_queue_prefix.clone(),
                        prefetch,
                        lease,
                        ..RabbitQueueOptions::default()
                    },
                )
                .await
                .map_err(|e| format!("AMQP_URL {}: {e}", crate::config::redact_url(url)))?;
                let rabbit = Arc::new(rabbit);
                Ok(JobQueue {
                    queue: rabbit.clone(),
                    registry,
                    rabbit: Some(rabbit),
                })
            }
            None => Ok(JobQueue {
                queue: Arc::new(SqlQueue::new(jobs, lease, POLL)),
                registry,
                rabbit: None,
            }),
        }
    }
}

/// `[worker]` configuration of `hivesync worker` (the connections come from `[server]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Jobs run at the same time.
    pub concurrency: u32,
    /// Job kinds this worker takes (a list, or a comma-separated string); empty: every kind.
    #[serde(deserialize_with = "kind_list")]
    pub kinds: Vec<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            kinds: Vec::new(),
        }
    }
}

fn kind_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Text(String),
        Items(Vec<String>),
    }
    let items = match List::deserialize(d)? {
        List::Text(s) => s.split(',').map(str::to_string).collect(),
        List::Items(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect())
}

/// How [`run_workers`] runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at the same time (at least 1).
    pub concurrency: usize,
    /// Kinds to take; empty: every registered kind.
    pub kinds: Vec<String>,
    /// The lease each heartbeat extends a running job by.
    pub lease: Duration,
    /// How long running jobs may finish after the shutdown signal.
    pub grace: Duration,
}

impl WorkerOptions {
    pub fn from_config(cfg: &Config, concurrency: u32, kinds: Vec<String>) -> Self {
        WorkerOptions {
            concurrency: usize::try_from(concurrency.max(1)).unwrap_or(1),
            kinds,
            lease: Duration::from_secs(cfg.job_lease_seconds),
            grace: Duration::from_secs(cfg.shutdown_grace_seconds),
        }
    }
}

/// The kinds a worker asked for that the registry does not know (a configuration mistake).
pub fn unknown_kinds(registry: &Registry, kinds: &[String]) -> Vec<String> {
    kinds
        .iter()
        .filter(|k| registry.get(k).is_none())
        .cloned()
        .collect()
}

/// Completes when `shutdown` flips to true (or its sender is gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Runs jobs until `shutdown` flips to true, then lets running jobs finish for
/// `options.grace` and abandons the rest (their lease passes and another worker takes them).
pub async fn run_workers(
    state: AppState,
    options: WorkerOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let kinds = if options.kinds.is_empty() {
        state.registry.kinds()
    } else {
        options.kinds.clone()
    };
    if kinds.is_empty() {
        tracing::warn!("no job kinds to work on; worker idle");
        stopping(&mut shutdown).await;
        return;
    }
    tracing::info!(
        queue = state.queue.backend(),
        concurrency = options.concurrency,
        kinds = %kinds.join(","),
        "job workers started"
    );
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut running = JoinSet::new();
    let reporter = tokio::spawn(report_reaped(state.clone(), shutdown.clone()));
    loop {
        while running.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopping(&mut shutdown) => break,
        };
        let delivery = tokio::select! {
            d = state.queue.next(&kinds) => d,
            () = stopping(&mut shutdown) => break,
        };
        match delivery {
            Ok(d) => {
                let (state, lease) = (state.clone(), options.lease);
                running.spawn(async move {
                    run_one(state, d, lease).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take jobs from the queue; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stopping(&mut shutdown) => break,
                }
            }
        }
    }
    if !running.is_empty() {
        tracing::info!(
            jobs = running.len(),
            grace_seconds = options.grace.as_secs(),
            "stopping: letting running jobs finish"
        );
    }
    let deadline = tokio::time::sleep(options.grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = running.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                tracing::warn!(jobs = running.len(), "grace period over; abandoning running jobs (another worker takes them over)");
                running.abort_all();
                break;
            }
        }
    }
    let _ = reporter.await;
    tracing::info!("job workers stopped");
}

/// Emits `job.failed` for the jobs this process found dead on their last attempt (the queue
/// marks them failed while claiming; it writes no events), until `shutdown`, then once more.
async fn report_reaped(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stop = tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => false,
            () = stopping(&mut shutdown) => true,
        };
        for job in state.queue.jobs().take_reaped() {
            emit_outcome(&state, &job).await;
        }
        if stop {
            return;
        }
    }
}

/// Emits a `job.*` event with the job's id and kind; a failure is logged, not returned (the
/// jobs table is the truth).
async fn emit(state: &AppState, job: &Job, kind: &str, extra: Value) {
    let mut payload = json!({"job_id": job.id, "kind": job.kind});
    if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        p.extend(extra);
    }
    if let Err(e) = state.emit(job.project_id, kind, None, payload).await {
        tracing::warn!(job_id = %job.id, event = kind, error = %e, "job event not recorded");
    }
}

/// The event a finished job's status calls for.
async fn emit_outcome(state: &AppState, job: &Job) {
    match job.status {
        JobStatus::Succeeded => {
            emit(
                state,
                job,
                "job.succeeded",
                json!({"result": job.result, "attempts": job.attempts}),
            )
            .await
        }
        JobStatus::Failed => {
            emit(
                state,
                job,
                "job.failed",
                json!({"error": job.error, "attempts": job.attempts}),
            )
            .await
        }
        // `job.cancelled` is emitted where the cancel happens (the API, or `run_one` when a
        // handler gives up on its own), not again when the worker stops.
        JobStatus::Cancelled | JobStatus::Queued | JobStatus::Running => {}
    }
}

/// A task that ends with its owner (a worker abandoning a job stops heartbeating it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one claimed job to its outcome.
async fn run_one(state: AppState, delivery: crate::queue::Delivery, lease: Duration) {
    let job = delivery.job.clone();
    let queue = state.queue.clone();
    let Some(handler) = state.registry.get(&job.kind) else {
        let msg = format!("no handler for job kind `{}` in this worker", job.kind);
        match queue.give_up(delivery, &msg).await {
            Ok(job) => emit_outcome(&state, &job).await,
            Err(e) => tracing::warn!(job_id = %job.id, error = %e, "cannot record job failure"),
        }
        return;
    };
    tracing::info!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, "job started");
    emit(
        &state,
        &job,
        "job.started",
        json!({"attempt": job.attempts}),
    )
    .await;
    let cancelled = Arc::new(AtomicBool::new(false));
    let _heartbeat = {
        let (jobs, id, cancelled) = (queue.jobs().clone(), job.id, cancelled.clone());
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match jobs.heartbeat(id, lease, None).await {
                    Ok(true) => {}
                    Ok(false) => {
                        cancelled.store(true, Ordering::SeqCst);
                        break;
                    }
                    Err(e) => tracing::warn!(job_id = %id, error = %e, "heartbeat failed"),
                }
            }
        }))
    };
    let ctx = Arc::new(JobContext::new(
        state.clone(),
        job.clone(),
        lease,
        cancelled,
    ));
    let started = Instant::now();
    // Its own task, so a panic is caught; aborted with this one when the worker gives up.
    let outcome = {
        let ctx = ctx.clone();
        let mut task = AbortOnDrop(tokio::spawn(async move { handler.run(&ctx).await }));
        (&mut task.0).await
    };
    drop(_heartbeat);
    let outcome = outcome.unwrap_or_else(|e| {
        tracing::error!(job_id = %job.id, "job handler panicked: {e}");
        Err(JobError::Retryable("the job handler panicked".into()))
    });
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let recorded = match outcome {
        Ok(result) => queue.ack(delivery, result).await.map(Some),
        Err(JobError::Retryable(msg)) => match queue.nack(delivery, &msg).await {
            Ok(FailOutcome::Retry { after, job }) => {
                tracing::info!(job_id = %job.id, attempt = job.attempts, error = %msg, "job failed; will retry");
                emit(
                    &state,
                    &job,
                    "job.retrying",
                    json!({"error": msg, "attempts": job.attempts,
                           "retry_in_ms": u64::try_from(after.as_millis()).unwrap_or(u64::MAX)}),
                )
                .await;
                Ok(None)
            }
            Ok(FailOutcome::Failed(job) | FailOutcome::NotRunning(job)) => Ok(Some(job)),
            Err(e) => Err(e),
        },
        Err(JobError::Permanent(msg)) => queue.give_up(delivery, &msg).await.map(Some),
        Err(JobError::Cancelled) => {
            let was_running = matches!(
                queue.jobs().get(job.id).await,
                Ok(Some(j)) if j.status == JobStatus::Running
            );
            match queue.jobs().cancel(job.id).await {
                Ok(j) if was_running && j.status == JobStatus::Cancelled => {
                    emit(&state, &j, "job.cancelled", json!({})).await;
                    queue.ack(delivery, Value::Null).await.map(Some)
                }
                Ok(_) => queue.ack(delivery, Value::Null).await.map(Some),
                Err(e) => Err(e),
            }
        }
    };
    match recorded {
        Ok(Some(done)) => {
            tracing::info!(job_id = %done.id, status = done.status.as_str(), elapsed_ms, "job finished");
            emit_outcome(&state, &done).await;
        }
        Ok(None) => {}
        // The table could not be updated: the lease passes and the job runs again (the
        // handler is idempotent), or the broker redelivers it.
        Err(e) => tracing::warn!(job_id = %job.id, error = %e, "job outcome not recorded"),
    }
}

/// Every `every`, hands the broker the queued jobs whose publish failed (RabbitMQ down at
/// enqueue or retry), until `shutdown`. Nothing to do on the embedded queue.
pub async fn sweep_unpublished(
    state: AppState,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    if state.rabbit_queue.is_none() {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stopping(&mut shutdown) => return,
        }
        match state.queue.republish_unpublished(every).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "re-published jobs the broker had not confirmed"),
            Err(e) => tracing::warn!(error = %e, "job sweeper: broker still unavailable"),
        }
    }
}

/// Records and enqueues a `preview_cleanup` job (of the system project) unless one is already
/// queued or running. Returns the new job's id.
pub async fn enqueue_cleanup(state: &AppState) -> Result<Option<Uuid>, QueueError> {
    let created = state
        .queue
        .jobs()
        .create_unless_pending(NewJob {
            project_id: SYSTEM_PROJECT,
            kind: kinds::preview_cleanup::KIND.into(),
            params: json!({}),
            max_attempts: None,
        })
        .await?;
    let Some(job) = created else { return Ok(None) };
    if let Err(e) = state.queue.enqueue(job.id, &job.kind).await {
        // Recorded: the sweeper publishes it once the broker answers.
        tracing::warn!(job_id = %job.id, error = %e, "cleanup job not yet handed to the broker");
    }
    Ok(Some(job.id))
}

/// Enqueues `preview_cleanup` now and then every `every` until `shutdown`.
pub async fn schedule_cleanup(
    state: AppState,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if state.registry.get(kinds::preview_cleanup::KIND).is_some()
            && let Err(e) = enqueue_cleanup(&state).await
        {
            tracing::warn!(error = %e, "cannot schedule preview_cleanup");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stopping(&mut shutdown) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_kinds_accept_lists_and_comma_strings() {
        let c: WorkerConfig = serde_json::from_value(json!({"kinds": "a, b,,c"})).expect("ok");
        assert_eq!(c.kinds, ["a", "b", "c"]);
        let c: WorkerConfig = serde_json::from_value(json!({"kinds": ["x"]})).expect("ok");
        assert_eq!(c.kinds, ["x"]);
        assert_eq!(WorkerConfig::default().concurrency, 4);
    }
}
