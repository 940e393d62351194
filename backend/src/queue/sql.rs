//! [`JobStore`] (the `jobs` table on SQLite or PostgreSQL, one set of queries) and
//! [`SqlQueue`], the embedded queue: workers claim queued rows directly with a lease.
//!
//! Claiming is one statement: `UPDATE jobs … WHERE id = (SELECT id … LIMIT 1) RETURNING …`,
//! with `FOR UPDATE SKIP LOCKED` in the sub-select on PostgreSQL so concurrent workers skip
//! each other's rows; SQLite has a single writer, so the statement is atomic as it is.

use super::*;
use crate::config::DatabaseKind;
use crate::store::now;
use crate::store::sql::SqlStore;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::Notify;

const COLUMNS: &str = "id, project_id, kind, params, status, attempts, max_attempts, \
    progress_done, progress_total, progress_message, error, result, lease_until, heartbeat_at, \
    run_after, created_at, updated_at";

/// The `jobs` table.
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: AnyPool,
    kind: DatabaseKind,
    kinds: Arc<BTreeSet<String>>,
    retry: RetryPolicy,
    /// Jobs this process reaped (failed: their worker died on the last attempt) that the
    /// worker runtime has not reported yet ([`JobStore::take_reaped`] → `job.failed`).
    reaped: Arc<std::sync::Mutex<Vec<Job>>>,
}

/// A reaped job: failed because its worker stopped answering on its last attempt.
const REAPED: &str = "status = 'failed', lease_until = NULL, updated_at = $1, \
     error = COALESCE(error, 'the worker stopped answering (lease expired)')";
/// Running jobs whose lease passed (`$1`: now) after their last attempt.
const REAPABLE: &str = "status = 'running' AND lease_until < $1 AND attempts >= max_attempts";

/// What [`JobStore::claim_id`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimById {
    /// Now running under this caller's lease.
    Claimed(Job),
    /// Running under a live lease (its worker is alive): try again after `retry_in`.
    Busy { retry_in: Duration },
    /// Succeeded, failed or cancelled: nothing to run.
    Finished(Job),
    /// Its worker stopped answering on its last attempt: now `failed` (the lease expired and
    /// no attempts are left), so the broker's message belongs in the dead-letter queue.
    Exhausted(Job),
    /// No such job (deleted with its project).
    Missing,
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn get_uuid(row: &AnyRow, col: &str) -> Result<Uuid, StoreError> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|e| StoreError::Corrupt(format!("{col} `{s}`: {e}")))
}

fn get_opt_ts(row: &AnyRow, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
            .map_err(|e| StoreError::Corrupt(format!("{col} {v}: {e}")))
    })
    .transpose()
}

fn get_ts(row: &AnyRow, col: &str) -> Result<OffsetDateTime, StoreError> {
    get_opt_ts(row, col)?.ok_or_else(|| StoreError::Corrupt(format!("{col} is NULL")))
}

fn ms_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(0)
}

fn job_from(row: &AnyRow) -> Result<Job, StoreError> {
    let status: String = row.try_get("status")?;
    let params: String = row.try_get("params")?;
    let result: Option<String> = row.try_get("result")?;
    Ok(Job {
        id: get_uuid(row, "id")?,
        project_id: get_uuid(row, "project_id")?,
        kind: row.try_get("kind")?,
        params: serde_json::from_str(&params)
            .map_err(|e| StoreError::Corrupt(format!("job params: {e}")))?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status `{status}`")))?,
        attempts: to_u32(row.try_get("attempts")?),
        max_attempts: to_u32(row.try_get("max_attempts")?),
        progress: Progress {
            done: to_u64(row.try_get("progress_done")?),
            total: to_u64(row.try_get("progress_total")?),
            message: row.try_get("progress_message")?,
        },
        error: row.try_get("error")?,
        result: result
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("job result: {e}")))?,
        lease_until: get_opt_ts(row, "lease_until")?,
        heartbeat_at: get_opt_ts(row, "heartbeat_at")?,
        run_after: get_ts(row, "run_after")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

impl JobStore {
    /// The jobs of `store`'s database; `kinds` are the job kinds [`JobStore::create`] accepts.
    pub fn new<I, S>(store: &SqlStore, kinds: I, retry: RetryPolicy) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        JobStore {
            pool: store.pool().clone(),
            kind: store.kind(),
            kinds: Arc::new(kinds.into_iter().map(Into::into).collect()),
            retry,
            reaped: Arc::default(),
        }
    }

    /// Jobs reaped by this process since the last call: each became `failed` because its
    /// worker stopped answering on its last attempt. The worker runtime emits their
    /// `job.failed` events (the queue itself writes no events).
    pub fn take_reaped(&self) -> Vec<Job> {
        match self.reaped.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    fn remember_reaped(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut list = match self.reaped.lock() {
            Ok(list) => list,
            Err(poisoned) => poisoned.into_inner(),
        };
        list.extend(jobs);
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Records a new `queued` job (does not hand it to a queue: call [`Queue::enqueue`]).
    pub async fn create(&self, new: NewJob) -> Result<Job, QueueError> {
        if !self.kinds.contains(&new.kind) {
            return Err(QueueError::UnknownKind(new.kind));
        }
        if !new.params.is_object() {
            return Err(QueueError::InvalidParams(
                "params must be a JSON object".into(),
            ));
        }
        let max_attempts = new.max_attempts.unwrap_or(self.retry.max_attempts);
        if max_attempts == 0 {
            return Err(QueueError::InvalidParams(
                "max_attempts must be at least 1".into(),
            ));
        }
        let id = Uuid::now_v7();
        let t = ms(now());
        let row = sqlx::query(&format!(
            "INSERT INTO jobs (id, project_id, kind, params, status, attempts, max_attempts,
                               run_after, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $6, $6) RETURNING {COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(new.project_id.to_string())
        .bind(&new.kind)
        .bind(new.params.to_string())
        .bind(i64::from(max_attempts))
        .bind(t)
        .fetch_one(&self.pool)
        .await?;
        Ok(job_from(&row)?)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job_from).transpose()?)
    }

    async fn require(&self, id: Uuid) -> Result<Job, QueueError> {
        self.get(id).await?.ok_or(QueueError::NotFound(id))
    }

    /// A project's jobs, newest first, optionally of one status.
    pub async fn list(
        &self,
        project_id: Uuid,
        status: Option<JobStatus>,
    ) -> Result<Vec<Job>, QueueError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE project_id = $1 AND ($2 = '' OR status = $2)
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(project_id.to_string())
        .bind(status.map(JobStatus::as_str).unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(job_from)
            .collect::<Result<Vec<_>, StoreError>>()?)
    }

    /// Cancels a queued or running job (a running worker learns it from
    /// [`JobStore::heartbeat`]); a finished job is returned unchanged.
    pub async fn cancel(&self, id: Uuid) -> Result<Job, QueueError> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET status = 'cancelled', lease_until = NULL, updated_at = $2
             WHERE id = $1 AND status IN ('queued', 'running') RETURNING {COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(ms(now()))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(job_from(&row)?),
            None => self.require(id).await,
        }
    }

    /// Marks running jobs whose lease passed after their last attempt as `failed`.
    async fn reap(&self, t: i64) -> Result<(), QueueError> {
        let rows = sqlx::query(&format!(
            "UPDATE jobs SET {REAPED} WHERE {REAPABLE} RETURNING {COLUMNS}"
        ))
        .bind(t)
        .fetch_all(&self.pool)
        .await?;
        let jobs = rows.iter().map(job_from).collect::<Result<Vec<_>, _>>()?;
        self.remember_reaped(jobs);
        Ok(())
    }

    /// Claims the next runnable job of one of `kinds` — queued and due, or running with an
    /// expired lease — for `lease`, counting an attempt.
    pub async fn claim(
        &self,
        kinds: &[String],
        lease: Duration,
    ) -> Result<Option<Job>, QueueError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let t = ms(now());
        self.reap(t).await?;
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 3)).collect();
        let lock = match self.kind {
            DatabaseKind::Postgres => "FOR UPDATE SKIP LOCKED",
            DatabaseKind::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = $2,
                    heartbeat_at = $1, updated_at = $1
             WHERE id = (SELECT id FROM jobs
                         WHERE kind IN ({list})
                           AND ((status = 'queued' AND run_after <= $1)
                                OR (status = 'running' AND lease_until < $1))
                         ORDER BY run_after, created_at LIMIT 1 {lock})
               AND ((status = 'queued' AND run_after <= $1)
                    OR (status = 'running' AND lease_until < $1))
             RETURNING {COLUMNS}",
            list = placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(t)
            .bind(t.saturating_add(ms_of(lease)));
        for k in kinds {
            q = q.bind(k.as_str());
        }
        let row = q.fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(job_from).transpose()?)
    }

    /// Claims one job by id (a broker delivered it): queued (whatever its `run_after`, the
    /// broker timed it) or running with an expired lease.
    ///
    /// Only this job is reaped when its worker died on its last attempt ([`ClaimById::Exhausted`]):
    /// on a broker every job has a message of its own, which must reach the dead-letter queue.
    pub async fn claim_id(&self, id: Uuid, lease: Duration) -> Result<ClaimById, QueueError> {
        let t = ms(now());
        let reaped = sqlx::query(&format!(
            "UPDATE jobs SET {REAPED} WHERE id = $2 AND {REAPABLE} RETURNING {COLUMNS}"
        ))
        .bind(t)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = reaped {
            let job = job_from(&row)?;
            self.remember_reaped([job.clone()]);
            return Ok(ClaimById::Exhausted(job));
        }
        let row = sqlx::query(&format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = $3,
                    heartbeat_at = $2, updated_at = $2
             WHERE id = $1 AND (status = 'queued' OR (status = 'running' AND lease_until < $2))
             RETURNING {COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(t)
        .bind(t.saturating_add(ms_of(lease)))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(ClaimById::Claimed(job_from(&row)?));
        }
        let Some(job) = self.get(id).await? else {
            return Ok(ClaimById::Missing);
        };
        if job.status.is_finished() {
            return Ok(ClaimById::Finished(job));
        }
        let left = job
            .lease_until
            .map(|l| ms(l).saturating_sub(t))
            .unwrap_or(0)
            .max(0);
        Ok(ClaimById::Busy {
            retry_in: Duration::from_millis(u64::try_from(left).unwrap_or(0) + 50),
        })
    }

    /// Extends a running job's lease (and records its progress when given). Returns `false`
    /// when the job is no longer running — cancelled or finished — so the worker should stop.
    pub async fn heartbeat(
        &self,
        id: Uuid,
        lease: Duration,
        progress: Option<&Progress>,
    ) -> Result<bool, QueueError> {
        let t = ms(now());
        let (has, done, total, message) = match progress {
            Some(p) => (
                1i64,
                i64::try_from(p.done).unwrap_or(i64::MAX),
                i64::try_from(p.total).unwrap_or(i64::MAX),
                p.message.clone(),
            ),
            None => (0, 0, 0, None),
        };
        let r = sqlx::query(
            "UPDATE jobs SET lease_until = $2, heartbeat_at = $3, updated_at = $3,
                    progress_done = CASE WHEN $4 = 1 THEN $5 ELSE progress_done END,
                    progress_total = CASE WHEN $4 = 1 THEN $6 ELSE progress_total END,
                    progress_message = CASE WHEN $4 = 1 THEN $7 ELSE progress_message END
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id.to_string())
        .bind(t.saturating_add(ms_of(lease)))
        .bind(t)
        .bind(has)
        .bind(done)
        .bind(total)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stores the result of a queued or running job as `succeeded`. Idempotent: a finished
    /// job keeps its status and first result, and is returned as it is.
    pub async fn complete(&self, id: Uuid, result: &Value) -> Result<Job, QueueError> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET status = 'succeeded', result = $2, error = NULL, lease_until = NULL,
                    updated_at = $3
             WHERE id = $1 AND status IN ('queued', 'running') RETURNING {COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(result.to_string())
        .bind(ms(now()))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(job_from(&row)?),
            None => self.require(id).await,
        }
    }

    /// Records a failed run: queued again after the backoff for its attempt, or `failed`
    /// when it has had `max_attempts`.
    pub async fn fail(&self, id: Uuid, error: &str) -> Result<FailOutcome, QueueError> {
        loop {
            let job = self.require(id).await?;
            if job.status != JobStatus::Running {
                return Ok(FailOutcome::NotRunning(job));
            }
            let t = ms(now());
            let last = job.attempts >= job.max_attempts;
            let after = if last {
                Duration::ZERO
            } else {
                self.retry.backoff(job.attempts)
            };
            let row = sqlx::query(&format!(
                "UPDATE jobs SET status = $3, error = $4, lease_until = NULL, run_after = $5,
                        updated_at = $6, published_at = NULL
                 WHERE id = $1 AND status = 'running' AND attempts = $2 RETURNING {COLUMNS}"
            ))
            .bind(id.to_string())
            .bind(i64::from(job.attempts))
            .bind(if last { "failed" } else { "queued" })
            .bind(error)
            .bind(t.saturating_add(ms_of(after)))
            .bind(t)
            .fetch_optional(&self.pool)
            .await?;
            // None: the row changed meanwhile (re-claimed, cancelled); look again.
            if let Some(row) = row {
                let job = job_from(&row)?;
                return Ok(if last {
                    FailOutcome::Failed(job)
                } else {
                    FailOutcome::Retry { after, job }
                });
            }
        }
    }
}

impl JobStore {
    /// Marks a running job `failed` with `error` at once, whatever attempts it has left. A job
    /// that is no longer running (finished or cancelled meanwhile) is returned unchanged.
    pub async fn fail_now(&self, id: Uuid, error: &str) -> Result<Job, QueueError> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET status = 'failed', error = $2, lease_until = NULL, updated_at = $3
             WHERE id = $1 AND status = 'running' RETURNING {COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(error)
        .bind(ms(now()))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(job_from(&row)?),
            None => self.require(id).await,
        }
    }

    /// Records a new `queued` job unless one of the same kind and project is already queued
    /// or running (scheduled jobs: at most one waiting at a time). `None` when one is.
    pub async fn create_unless_pending(&self, new: NewJob) -> Result<Option<Job>, QueueError> {
        let pending = sqlx::query(
            "SELECT id FROM jobs WHERE project_id = $1 AND kind = $2
               AND status IN ('queued', 'running') LIMIT 1",
        )
        .bind(new.project_id.to_string())
        .bind(&new.kind)
        .fetch_optional(&self.pool)
        .await?;
        if pending.is_some() {
            return Ok(None);
        }
        self.create(new).await.map(Some)
    }

    /// Notes that the broker confirmed the job's message for its current `queued` state.
    pub async fn mark_published(&self, id: Uuid) -> Result<(), QueueError> {
        sqlx::query("UPDATE jobs SET published_at = $2 WHERE id = $1 AND status = 'queued'")
            .bind(id.to_string())
            .bind(ms(now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queued, due jobs whose message was never confirmed by the broker and that have not
    /// changed for `older_than` (so a publish in progress is left alone): `(id, kind)`.
    pub async fn unpublished(
        &self,
        older_than: Duration,
        limit: u32,
    ) -> Result<Vec<(Uuid, String)>, QueueError> {
        let t = ms(now());
        let rows = sqlx::query(
            "SELECT id, kind FROM jobs WHERE status = 'queued' AND published_at IS NULL
               AND run_after <= $1 AND updated_at <= $2
             ORDER BY run_after, created_at LIMIT $3",
        )
        .bind(t)
        .bind(t.saturating_sub(ms_of(older_than)))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((get_uuid(r, "id")?, r.try_get::<String, _>("kind")?)))
            .collect::<Result<Vec<_>, StoreError>>()
            .map_err(QueueError::from)
    }
}

/// The embedded queue: claims rows of the jobs table. `enqueue` only wakes local workers
/// (the row is the queue); workers on other instances find new rows by polling.
#[derive(Debug, Clone)]
pub struct SqlQueue {
    jobs: JobStore,
    lease: Duration,
    poll: Duration,
    wake: Arc<Notify>,
}

impl SqlQueue {
    /// `lease`: how long a claimed job stays with its worker without a heartbeat;
    /// `poll`: how often an idle worker looks for due rows.
    pub fn new(jobs: JobStore, lease: Duration, poll: Duration) -> Self {
        SqlQueue {
            jobs,
            lease,
            poll,
            wake: Arc::new(Notify::new()),
        }
    }
}

#[async_trait]
impl Queue for SqlQueue {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn jobs(&self) -> &JobStore {
        &self.jobs
    }

    async fn enqueue(&self, _job_id: Uuid, _kind: &str) -> Result<(), QueueError> {
        self.wake.notify_waiters();
        Ok(())
    }

    async fn next(&self, kinds: &[String]) -> Result<Delivery, QueueError> {
        loop {
            let woken = self.wake.notified();
            if let Some(job) = self.jobs.claim(kinds, self.lease).await? {
                return Ok(Delivery { job, acker: None });
            }
            let _ = tokio::time::timeout(self.poll, woken).await;
        }
    }

    async fn ack(&self, delivery: Delivery, result: Value) -> Result<Job, QueueError> {
        self.jobs.complete(delivery.job.id, &result).await
    }

    async fn nack(&self, delivery: Delivery, error: &str) -> Result<FailOutcome, QueueError> {
        let outcome = self.jobs.fail(delivery.job.id, error).await?;
        if matches!(outcome, FailOutcome::Retry { .. }) {
            self.wake.notify_waiters();
        }
        Ok(outcome)
    }
}
