//! The AI job kinds: `docs` (documentation for a snapshot's undocumented definitions, stored as
//! one proposal per job) and `explain` (an AI reply in a comment thread, `author_kind: ai`,
//! one per job: the comment's id is the job's id). The work is in `crate::ai`; these are their
//! [`JobHandler`]s, which materialise the snapshot, ask the engine, call the project's provider
//! and store the result idempotently.

use crate::ai::{self, AiError, AiProvider, ProviderKind, ProviderSettings};
use crate::jobs::snapshot::with_analysis;
use crate::state::AppState;
use crate::store::{AuthorKind, Comment, NewProposal, ProposalKind};
use crate::worker::{JobContext, JobError, JobHandler};
use hivesync_analysis::{Analysis, AnalysisError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

pub const DOCS: &str = "docs";
pub const EXPLAIN: &str = "explain";

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retryable(e.to_string())
}

/// The provider a job runs with: the project's settings, or offline when the job asks.
async fn provider(
    state: &AppState,
    project_id: Uuid,
    requested: Option<ProviderKind>,
) -> Result<(Arc<dyn AiProvider>, ProviderSettings), JobError> {
    let settings = ai::settings::load(&state.sql, project_id)
        .await
        .map_err(retry)?;
    let provider = ai::provider_for_job(&settings, requested)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    Ok((provider, settings))
}

/// For `validate`: the project's settings allow the provider the job asks for.
async fn check_provider(
    state: &AppState,
    project_id: Uuid,
    requested: Option<ProviderKind>,
) -> Result<(), String> {
    let settings = ai::settings::load(&state.sql, project_id)
        .await
        .map_err(|e| format!("the project's AI settings could not be read: {e}"))?;
    ai::provider_for_job(&settings, requested)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A provider failure: retried when the provider may answer later (429, 5xx, timeouts).
fn ai_error(e: AiError) -> JobError {
    if e.is_retryable() {
        JobError::Retryable(e.to_string())
    } else {
        JobError::Permanent(e.to_string())
    }
}

/// Runs `f` on the engine's view of the snapshot ([`with_analysis`]), as a job's outcome.
async fn with_snapshot<T, F>(
    state: &AppState,
    project_id: Uuid,
    snapshot_id: Uuid,
    f: F,
) -> Result<T, JobError>
where
    T: Send + 'static,
    F: FnOnce(&Analysis) -> Result<T, AnalysisError> + Send + 'static,
{
    with_analysis(state, project_id, snapshot_id, move |_, analysis| {
        f(analysis)
    })
    .await
    .map_err(|e| {
        if e.is_retryable() {
            JobError::Retryable(e.to_string())
        } else {
            JobError::Permanent(e.to_string())
        }
    })
}

async fn snapshot_exists(
    state: &AppState,
    project_id: Uuid,
    snapshot_id: Uuid,
) -> Result<(), String> {
    match state.snapshots.snapshot(project_id, snapshot_id).await {
        Ok(Some(s)) if s.committed_at.is_some() => Ok(()),
        Ok(Some(_)) => Err(format!("snapshot {snapshot_id} is not committed yet")),
        Ok(None) => Err(format!(
            "snapshot {snapshot_id} does not exist in this project"
        )),
        Err(e) => Err(format!("snapshot {snapshot_id} could not be checked: {e}")),
    }
}

/// `docs`: params `{snapshot_id, paths?, symbols?, provider?}`.
pub struct Docs;

#[async_trait::async_trait]
impl JobHandler for Docs {
    fn kind(&self) -> &'static str {
        DOCS
    }

    async fn validate(
        &self,
        state: &AppState,
        project_id: Uuid,
        params: &Value,
    ) -> Result<(), String> {
        let p = ai::docs::parse_params(params)?;
        snapshot_exists(state, project_id, p.snapshot_id).await?;
        check_provider(state, project_id, p.provider).await
    }

    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let state = &ctx.state;
        let job = &ctx.job;
        if let Some(done) = state
            .proposals
            .proposal_by_job(job.id)
            .await
            .map_err(retry)?
        {
            return Ok(json!({"proposal_id": done.id, "redelivered": true}));
        }
        let params = ai::docs::parse_params(&job.params).map_err(JobError::Permanent)?;
        let (provider, settings) = provider(state, job.project_id, params.provider).await?;
        ctx.progress(0, 1, "reading the snapshot").await?;
        let plan_params = params.clone();
        let plan = with_snapshot(state, job.project_id, params.snapshot_id, move |analysis| {
            ai::docs::plan(analysis, &plan_params)
        })
        .await?;

        // The engine's plan, then one provider call per definition; progress goes through a
        // channel because `run` reports synchronously. A cancellation stops the calls.
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, u64, String)>();
        let total = plan.tasks.len() as u64;
        ctx.progress(0, total, "documenting").await?;
        let run = ai::docs::run(
            plan,
            provider.as_ref(),
            settings.token_budget,
            move |d, t, s| {
                let _ = tx.send((d, t, s.to_owned()));
            },
        );
        tokio::pin!(run);
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                Some((done, total, symbol)) = rx.recv() => ctx.progress(done, total, &symbol).await?,
            }
        };
        let failures = serde_json::to_value(&outcome.failures).unwrap_or(Value::Null);
        if outcome.documented.is_empty() {
            let why = outcome
                .failures
                .first()
                .map(|f| format!("; first failure: {} ({}): {}", f.symbol, f.path, f.error))
                .unwrap_or_default();
            return Err(JobError::Permanent(format!(
                "nothing to document in snapshot {}{why}",
                params.snapshot_id
            )));
        }
        let snapshot = state
            .snapshots
            .snapshot(job.project_id, params.snapshot_id)
            .await
            .map_err(retry)?
            .ok_or_else(|| {
                JobError::Permanent(format!("snapshot {} no longer exists", params.snapshot_id))
            })?;
        let new = NewProposal {
            id: Uuid::now_v7(),
            project_id: job.project_id,
            job_id: job.id,
            snapshot_id: params.snapshot_id,
            manifest_hash: snapshot.manifest_hash,
            kind: ProposalKind::Docs,
            title: outcome.changeset.title.clone(),
            change: outcome.changeset,
            created_by: None,
            created_at: crate::store::now(),
        };
        let proposal = crate::jobs::record_proposal(state, &new)
            .await
            .map_err(retry)?;
        Ok(json!({
            "proposal_id": proposal.id,
            "documented": outcome.documented.len(),
            "failures": failures,
            "tokens": outcome.usage.total(),
        }))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainParams {
    thread_id: Uuid,
    #[serde(default)]
    provider: Option<ProviderKind>,
}

fn explain_params(params: &Value) -> Result<ExplainParams, String> {
    serde_json::from_value(params.clone()).map_err(|e| format!("invalid explain parameters: {e}"))
}

/// `explain`: params `{thread_id, provider?}` — an AI reply in the thread.
pub struct Explain;

#[async_trait::async_trait]
impl JobHandler for Explain {
    fn kind(&self) -> &'static str {
        EXPLAIN
    }

    async fn validate(
        &self,
        state: &AppState,
        project_id: Uuid,
        params: &Value,
    ) -> Result<(), String> {
        let p = explain_params(params)?;
        match state.threads.thread(p.thread_id).await {
            Ok(Some(t)) if t.project_id == project_id => {}
            Ok(_) => {
                return Err(format!(
                    "thread {} does not exist in this project",
                    p.thread_id
                ));
            }
            Err(e) => return Err(format!("thread {} could not be checked: {e}", p.thread_id)),
        }
        check_provider(state, project_id, p.provider).await
    }

    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let state = &ctx.state;
        let job = &ctx.job;
        let params = explain_params(&job.params).map_err(JobError::Permanent)?;
        let thread = state
            .threads
            .thread(params.thread_id)
            .await
            .map_err(retry)?
            .filter(|t| t.project_id == job.project_id)
            .ok_or_else(|| {
                JobError::Permanent(format!("thread {} no longer exists", params.thread_id))
            })?;
        // Idempotent by job id: the AI comment's id is the job's id.
        if state
            .threads
            .comment(thread.id, job.id)
            .await
            .map_err(retry)?
            .is_some()
        {
            return Ok(json!({"thread_id": thread.id, "comment_id": job.id, "redelivered": true}));
        }
        let (provider, _) = provider(state, job.project_id, params.provider).await?;
        let question = state
            .threads
            .comments(&[thread.id])
            .await
            .map_err(retry)?
            .remove(&thread.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.deleted_at.is_none())
            .map(|c| c.body)
            .collect::<Vec<_>>()
            .join("\n\n");
        ctx.progress(0, 2, "reading the anchored code").await?;
        let anchor = thread.anchor.clone();
        let input = with_snapshot(state, job.project_id, anchor.snapshot_id, move |analysis| {
            ai::explain::input(
                analysis,
                &anchor.path,
                anchor.start_line,
                anchor.end_line,
                &anchor.lines,
                &question,
            )
        })
        .await?;
        ctx.progress(1, 2, "asking the AI provider").await?;
        let body = ai::explain::reply(&input, provider.as_ref())
            .await
            .map_err(ai_error)?;
        let comment = Comment {
            id: job.id,
            thread_id: thread.id,
            author_id: None,
            author_kind: AuthorKind::Ai,
            body,
            created_at: crate::store::now(),
            edited_at: None,
            deleted_at: None,
            history: Vec::new(),
        };
        if let Err(e) = state.threads.add_comment(&comment).await {
            // A concurrent delivery of the same job may have written it first.
            if state
                .threads
                .comment(thread.id, job.id)
                .await
                .map_err(retry)?
                .is_none()
            {
                return Err(retry(e));
            }
        } else if let Err(e) = state
            .emit(
                job.project_id,
                "thread.comment",
                None,
                json!({"thread_id": thread.id, "comment_id": comment.id, "author_kind": "ai"}),
            )
            .await
        {
            tracing::warn!(error = %e, job_id = %job.id, "thread.comment not recorded");
        }
        ctx.progress(2, 2, "reply posted").await?;
        Ok(json!({"thread_id": thread.id, "comment_id": comment.id}))
    }
}
