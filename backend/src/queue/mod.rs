//! Background jobs: the `jobs` table ([`JobStore`], the source of truth for every job's
//! status, attempts, progress, error and result) and the [`Queue`] that hands jobs to workers.
//!
//! Two queues share one contract: [`sql::SqlQueue`] (embedded; workers claim queued rows with
//! a lease that expires when a worker dies) and [`amqp::RabbitQueue`] (RabbitMQ through
//! `lapin`; messages carry only the job id, the table decides whether it runs). A worker loops:
//! `let d = queue.next(&kinds).await?` → do the work, calling [`JobStore::heartbeat`] while it
//! runs → `queue.ack(d, result)` (stores the result, then acknowledges) or
//! `queue.nack(d, error)` (retry with exponential backoff, `failed` after `max_attempts`).
//! Completion is idempotent by job id: completing twice keeps the first result, and a job that
//! is already finished is never handed out again.

pub mod amqp;
pub mod sql;

use crate::store::StoreError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub use sql::{ClaimById, JobStore, SqlQueue};

/// The reserved project (nil id, no members) that maintenance jobs belonging to no project —
/// the scheduled `preview_cleanup` — are recorded under (migration 0007).
pub const SYSTEM_PROJECT: Uuid = Uuid::nil();

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => return None,
        })
    }

    /// Succeeded, failed or cancelled: nothing will run it again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// How far a running job got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub message: Option<String>,
}

/// One row of the `jobs` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub project_id: Uuid,
    pub kind: String,
    pub params: Value,
    pub status: JobStatus,
    /// Times the job was handed to a worker (including the current run).
    pub attempts: u32,
    pub max_attempts: u32,
    pub progress: Progress,
    pub error: Option<String>,
    pub result: Option<Value>,
    /// A running job whose lease passed is considered abandoned and may be claimed again.
    pub lease_until: Option<OffsetDateTime>,
    pub heartbeat_at: Option<OffsetDateTime>,
    /// A queued job is not handed out before this time (retry backoff).
    pub run_after: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What [`JobStore::create`] needs.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub project_id: Uuid,
    pub kind: String,
    /// A JSON object.
    pub params: Value,
    /// Overrides the store's [`RetryPolicy::max_attempts`].
    pub max_attempts: Option<u32>,
}

/// Attempts and exponential backoff between them: `base * 2^(attempt-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_secs(5),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next run after `attempt` (1-based) failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What happened to a job a worker gave up on.
#[derive(Debug, Clone, PartialEq)]
pub enum FailOutcome {
    /// Queued again; runs no earlier than `after` from now.
    Retry { after: Duration, job: Job },
    /// No attempts left: the job is `failed` with its error.
    Failed(Job),
    /// The job was no longer running (finished or cancelled meanwhile); nothing changed.
    NotRunning(Job),
}

/// A job handed to a worker; give it back with [`Queue::ack`] or [`Queue::nack`].
#[derive(Debug)]
pub struct Delivery {
    /// The job as claimed (status `running`, `attempts` counting this run).
    pub job: Job,
    pub(crate) acker: Option<lapin::Acker>,
}

impl Delivery {
    /// Acknowledges the broker message, if any, without touching the table (the table already
    /// says what happened). A lost channel only means a redelivery the table will refuse.
    pub(crate) async fn settle(self) {
        if let Some(acker) = self.acker
            && let Err(e) = acker.ack(lapin::options::BasicAckOptions::default()).await
        {
            tracing::info!(error = %e, "job acknowledgement not delivered");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("unknown job kind `{0}`")]
    UnknownKind(String),
    #[error("invalid job params: {0}")]
    InvalidParams(String),
    #[error("job {0} not found")]
    NotFound(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job queue broker unavailable: {0}")]
    Broker(String),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Store(e.into())
    }
}

/// Hands jobs recorded in the [`JobStore`] to workers.
#[async_trait]
pub trait Queue: Send + Sync {
    /// `"embedded"` or `"rabbitmq"`.
    fn backend(&self) -> &'static str;
    /// The table every decision is made against.
    fn jobs(&self) -> &JobStore;
    /// Makes a job (already created, status `queued`) available to workers of its kind.
    async fn enqueue(&self, job_id: Uuid, kind: &str) -> Result<(), QueueError>;
    /// Waits for the next job of one of `kinds` and claims it (status `running`).
    async fn next(&self, kinds: &[String]) -> Result<Delivery, QueueError>;
    /// Stores the result (idempotently: a finished job keeps its first result), then
    /// acknowledges the delivery. Returns the job as stored.
    async fn ack(&self, delivery: Delivery, result: Value) -> Result<Job, QueueError>;
    /// Records the failure: queued again after a backoff, or `failed` (and dead-lettered on
    /// RabbitMQ) when no attempts are left.
    async fn nack(&self, delivery: Delivery, error: &str) -> Result<FailOutcome, QueueError>;
    /// Records a failure that will happen again however often it is retried: `failed` at once,
    /// no more attempts. A job no longer running (cancelled meanwhile) is left as it is.
    async fn give_up(&self, delivery: Delivery, error: &str) -> Result<Job, QueueError> {
        let job = self.jobs().fail_now(delivery.job.id, error).await?;
        delivery.settle().await;
        Ok(job)
    }
    /// Hands the broker the queued jobs whose publication was never confirmed (the broker was
    /// down when they were enqueued or retried) and that are due; returns how many. The
    /// embedded queue has nothing to do: its rows are the queue.
    async fn republish_unpublished(&self, older_than: Duration) -> Result<usize, QueueError> {
        let _ = older_than;
        Ok(0)
    }
}
