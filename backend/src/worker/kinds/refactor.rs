//! `refactor`: a rename across a snapshot, planned by the engine and stored as one proposal per
//! job (exact and probable edits in separate hunks). The work is `jobs::refactor`; this is its
//! [`JobHandler`].

use crate::jobs::refactor::{self, RefactorFailure};
use crate::state::AppState;
use crate::worker::{JobContext, JobError, JobHandler};
use serde_json::Value;
use uuid::Uuid;

pub struct Refactor;

#[async_trait::async_trait]
impl JobHandler for Refactor {
    fn kind(&self) -> &'static str {
        refactor::KIND
    }

    async fn validate(
        &self,
        state: &AppState,
        project_id: Uuid,
        params: &Value,
    ) -> Result<(), String> {
        refactor::validate(state, project_id, params).await
    }

    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let params = refactor::parse_params(&ctx.job.params).map_err(JobError::Permanent)?;
        ctx.progress(0, 1, "planning the rename").await?;
        let result = refactor::run_refactor(&ctx.state, ctx.job.project_id, ctx.job.id, &params)
            .await
            .map_err(|e| match e {
                RefactorFailure::Retryable(m) => JobError::Retryable(m),
                other => JobError::Permanent(other.to_string()),
            })?;
        ctx.progress(1, 1, "proposal stored").await?;
        Ok(result)
    }
}
