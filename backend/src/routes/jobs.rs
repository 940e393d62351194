//! Background jobs: maintainers request them (validated by the kind's handler before anything
//! is recorded or queued), every member follows them, maintainers cancel them. Workers report
//! through the events `job.queued`, `job.started`, `job.progress`, `job.succeeded`,
//! `job.retrying`, `job.failed`, `job.cancelled`.

use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path, Query};
use crate::queue::{Job, JobStatus, NewJob, QueueError, SYSTEM_PROJECT};
use crate::store::Role;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// A registered job kind (`docs`, `refactor`, `explain`, `repo_sync`, …).
    pub kind: String,
    /// The kind's parameters (a JSON object; `{}` when absent).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateJobResponse {
    pub job_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProgressResponse {
    pub done: u64,
    pub total: u64,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobResponse {
    pub id: Uuid,
    pub project_id: Uuid,
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub progress: ProgressResponse,
    /// The last failure's message (kept while a retry is queued).
    pub error: Option<String>,
    /// What the job produced (e.g. `{"proposal_id": …}`), once succeeded.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Runs so far (including the current one).
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<Job> for JobResponse {
    fn from(j: Job) -> Self {
        JobResponse {
            id: j.id,
            project_id: j.project_id,
            kind: j.kind,
            status: j.status.as_str().to_string(),
            progress: ProgressResponse {
                done: j.progress.done,
                total: j.progress.total,
                message: j.progress.message,
            },
            error: j.error,
            result: j.result,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListJobsParams {
    /// Only jobs in this status.
    pub status: Option<String>,
}

fn queue_error(e: QueueError) -> AppError {
    match e {
        QueueError::Store(e) => e.into(),
        QueueError::NotFound(_) => AppError::not_found("job"),
        QueueError::UnknownKind(k) => AppError::Invalid {
            code: "unknown_job_kind",
            message: format!("unknown job kind `{k}`"),
        },
        QueueError::InvalidParams(m) => AppError::Invalid {
            code: "invalid_job_params",
            message: m,
        },
        QueueError::Broker(m) => AppError::Unavailable(m),
    }
}

/// The job, if the caller has at least `needed` on its project (404 otherwise, also for the
/// system project's maintenance jobs).
async fn job_for(ctx: &Ctx, id: Uuid, needed: Role) -> Result<Job, AppError> {
    let job = ctx
        .state
        .queue
        .jobs()
        .get(id)
        .await
        .map_err(queue_error)?
        .filter(|j| j.project_id != SYSTEM_PROJECT)
        .ok_or_else(|| AppError::not_found("job"))?;
    require_role(ctx, job.project_id, needed)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::not_found("job"),
            other => other,
        })?;
    Ok(job)
}

#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/jobs", tag = "jobs",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = CreateJobRequest,
    responses(
        (status = 202, description = "Recorded and queued (maintainer); follow it with GET /api/v1/jobs/{id} or the `job.*` events", body = CreateJobResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Unknown kind (`unknown_job_kind`) or parameters the kind refuses (`invalid_job_params`); nothing is recorded", body = ErrorBody),
    )
)]
pub async fn create_job(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Json(req): Json<CreateJobRequest>,
) -> Result<(StatusCode, Json<CreateJobResponse>), AppError> {
    require_role(&ctx, project_id, Role::Maintainer).await?;
    let state = &ctx.state;
    let handler = state
        .registry
        .get(&req.kind)
        .ok_or_else(|| AppError::Invalid {
            code: "unknown_job_kind",
            message: format!(
                "unknown job kind `{}`; known kinds: {}",
                req.kind,
                state.registry.kinds().join(", ")
            ),
        })?;
    let params = req
        .params
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !params.is_object() {
        return Err(AppError::Invalid {
            code: "invalid_job_params",
            message: "params must be a JSON object".into(),
        });
    }
    handler
        .validate(state, project_id, &params)
        .await
        .map_err(|message| AppError::Invalid {
            code: "invalid_job_params",
            message,
        })?;
    let job = state
        .queue
        .jobs()
        .create(NewJob {
            project_id,
            kind: req.kind.clone(),
            params,
            max_attempts: None,
        })
        .await
        .map_err(queue_error)?;
    // Announced before a worker can see it, so `job.queued` always precedes `job.started`.
    state
        .emit(
            project_id,
            "job.queued",
            Some(ctx.user.id),
            serde_json::json!({"job_id": job.id, "kind": job.kind}),
        )
        .await?;
    if let Err(e) = state.queue.enqueue(job.id, &job.kind).await {
        // The row is the truth: the sweeper hands it to the broker once it answers again.
        tracing::warn!(job_id = %job.id, error = %e, "job recorded but not yet queued");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(CreateJobResponse { job_id: job.id }),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/jobs/{job_id}", tag = "jobs",
    security(("bearer" = [])),
    params(("job_id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job (any member of its project)", body = JobResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such job, or the caller is not a member of its project", body = ErrorBody),
    )
)]
pub async fn get_job(ctx: Ctx, Path(job_id): Path<Uuid>) -> Result<Json<JobResponse>, AppError> {
    Ok(Json(job_for(&ctx, job_id, Role::Viewer).await?.into()))
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/jobs", tag = "jobs",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListJobsParams),
    responses(
        (status = 200, description = "The project's jobs, newest first (any member)", body = [JobResponse]),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Unknown status", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Query(params): Query<ListJobsParams>,
) -> Result<Json<Vec<JobResponse>>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            AppError::invalid(format!(
                "status `{s}` is not one of queued, running, succeeded, failed, cancelled"
            ))
        })?),
    };
    let jobs = ctx
        .state
        .queue
        .jobs()
        .list(project_id, status)
        .await
        .map_err(queue_error)?;
    Ok(Json(jobs.into_iter().map(JobResponse::from).collect()))
}

#[utoipa::path(
    post, path = "/api/v1/jobs/{job_id}/cancel", tag = "jobs",
    security(("bearer" = [])),
    params(("job_id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled (maintainer): a queued job never runs, a running one stops at its next progress report; a finished job is returned unchanged", body = JobResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such job, or the caller is not a member of its project", body = ErrorBody),
    )
)]
pub async fn cancel_job(ctx: Ctx, Path(job_id): Path<Uuid>) -> Result<Json<JobResponse>, AppError> {
    let before = job_for(&ctx, job_id, Role::Maintainer).await?;
    let job = ctx
        .state
        .queue
        .jobs()
        .cancel(job_id)
        .await
        .map_err(queue_error)?;
    if job.status == JobStatus::Cancelled && !before.status.is_finished() {
        ctx.state
            .emit(
                job.project_id,
                "job.cancelled",
                Some(ctx.user.id),
                serde_json::json!({"job_id": job.id, "kind": job.kind}),
            )
            .await?;
    }
    Ok(Json(job.into()))
}
