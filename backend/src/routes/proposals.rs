//! Proposals: a `ChangeSet` a job computed on a snapshot (AI documentation, a refactor),
//! reviewed hunk by hunk, then applied by a client — never by the server, which writes to no
//! user's files. Every member reads; reviewers and above review and report applying/reverting.
//!
//! **Hunks.** A proposal's diff is cut into hunks a reviewer accepts or rejects one by one. Exact
//! and probable edits are diffed *separately* (each against the snapshot's content), so a hunk
//! is either entirely `exact` or entirely `probable` — even when both kinds of edit sit on the
//! same line — and accepting one never drags in the other. Hunk ids are the first 16 hex digits
//! of blake3 over the path, the file status and the hunk text
//! (`hivesync_analysis::changeset::diff_files`): the same proposal always shows the same ids.
//! A created or deleted file is one hunk.
//!
//! **Status.** `pending` until the first review; then `approved` (every hunk accepted),
//! `partially_approved` (some) or `rejected` (none). Hunks left undecided count as not accepted.
//! `accept_all` accepts the exact hunks only; probable ones are accepted only when asked for
//! explicitly (`include_probable: true`, or naming them in `decisions`).
//!
//! Events: `proposal.created` (by the job), `proposal.reviewed`, `proposal.applied`,
//! `proposal.reverted`.

use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path, Query};
use crate::state::AppState;
use crate::store::{
    Application, ApplicationAction, ApplicationOutcome, Proposal, ProposalStatus, ReviewOutcome,
    Role,
};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hivesync_analysis::changeset::{
    DiffError, FileStatus, Hunk, check_edits, diff_files, render_unified_diff, select_hunks,
};
use hivesync_protocol::{ChangeSet, Confidence, FileChange};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Hunks: exact and probable groups

/// `cs` as two change sets against the same base: its exact edits and its probable edits. A
/// file that is created or deleted goes whole into the group of its weakest edit.
pub fn confidence_groups(cs: &ChangeSet) -> [(Confidence, ChangeSet); 2] {
    let mut exact = Vec::new();
    let mut probable = Vec::new();
    for f in &cs.files {
        if f.delete || f.base_hash.is_none() {
            let weakest = f.edits.iter().map(|e| e.confidence).max();
            match weakest {
                Some(Confidence::Probable) => probable.push(f.clone()),
                _ => exact.push(f.clone()),
            }
            continue;
        }
        for (confidence, list) in [
            (Confidence::Exact, &mut exact),
            (Confidence::Probable, &mut probable),
        ] {
            let edits: Vec<_> = f
                .edits
                .iter()
                .filter(|e| e.confidence == confidence)
                .cloned()
                .collect();
            if !edits.is_empty() {
                list.push(FileChange { edits, ..f.clone() });
            }
        }
    }
    let group = |files| ChangeSet {
        title: cs.title.clone(),
        files,
    };
    [
        (Confidence::Exact, group(exact)),
        (Confidence::Probable, group(probable)),
    ]
}

/// One file of a proposal as a reviewer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewFile {
    pub path: String,
    pub status: FileStatus,
    /// The file's whole unified diff (every edit, exact and probable), for reading.
    pub diff: String,
    /// The reviewable hunks: exact ones first, then probable ones, each by position.
    pub hunks: Vec<Hunk>,
}

/// Why a proposal's diff could not be computed (the stored base content does not match, or the
/// accepted hunks do not combine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalDiffError {
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error("{path}: the accepted hunks overlap and cannot be combined")]
    Overlap { path: String },
}

/// The per-file diffs and reviewable hunks of `cs` against `base` (path → base text).
pub fn review_files(
    base: &BTreeMap<String, String>,
    cs: &ChangeSet,
) -> Result<Vec<ReviewFile>, ProposalDiffError> {
    let mut files: BTreeMap<String, ReviewFile> = BTreeMap::new();
    for whole in diff_files(base, cs)? {
        files.insert(
            whole.path.clone(),
            ReviewFile {
                path: whole.path.clone(),
                status: whole.status,
                diff: whole.render(),
                hunks: Vec::new(),
            },
        );
    }
    for (_, group) in confidence_groups(cs) {
        for d in diff_files(base, &group)? {
            if let Some(file) = files.get_mut(&d.path) {
                file.hunks.extend(d.hunks);
            }
        }
    }
    Ok(files.into_values().collect())
}

/// Every hunk id of `files`, with its confidence.
pub fn hunk_ids(files: &[ReviewFile]) -> BTreeMap<String, Confidence> {
    files
        .iter()
        .flat_map(|f| &f.hunks)
        .map(|h| (h.id.clone(), h.confidence))
        .collect()
}

/// `cs` narrowed to the `accepted` hunks (ids from [`review_files`]), as one change set against
/// the same base hashes: what a client applies. Unknown ids are ignored.
pub fn approved_change(
    base: &BTreeMap<String, String>,
    cs: &ChangeSet,
    accepted: &BTreeSet<String>,
) -> Result<ChangeSet, ProposalDiffError> {
    let mut merged: BTreeMap<String, FileChange> = BTreeMap::new();
    for (_, group) in confidence_groups(cs) {
        let ids: Vec<String> = diff_files(base, &group)?
            .into_iter()
            .flat_map(|f| f.hunks)
            .filter(|h| accepted.contains(&h.id))
            .map(|h| h.id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        for f in select_hunks(&group, base, &ids)?.files {
            match merged.get_mut(&f.path) {
                Some(existing) => existing.edits.extend(f.edits),
                None => {
                    merged.insert(f.path.clone(), f);
                }
            }
        }
    }
    let mut files = Vec::with_capacity(merged.len());
    for mut f in merged.into_values() {
        f.edits.sort_by_key(|e| (e.start, e.end));
        let text = base.get(&f.path).map_or("", String::as_str);
        if check_edits(text, &f.edits).is_err() {
            return Err(ProposalDiffError::Overlap { path: f.path });
        }
        files.push(f);
    }
    Ok(ChangeSet {
        title: cs.title.clone(),
        files,
    })
}

/// The base text of every file `cs` edits or deletes, from the blob store (by base hash).
pub async fn base_texts(
    state: &AppState,
    cs: &ChangeSet,
) -> Result<BTreeMap<String, String>, AppError> {
    let mut texts = BTreeMap::new();
    for f in &cs.files {
        let Some(hash) = &f.base_hash else { continue };
        let bytes = state.blobs.get(hash).await?.ok_or_else(|| {
            AppError::Unavailable(format!("{}: base blob {hash} is not stored", f.path))
        })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            AppError::internal(format!("{}: the base content is not UTF-8", f.path))
        })?;
        texts.insert(f.path.clone(), text);
    }
    Ok(texts)
}

fn diff_error(e: ProposalDiffError) -> AppError {
    AppError::internal(format!("proposal diff: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Wire types

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProposalSummary {
    pub id: Uuid,
    pub project_id: Uuid,
    /// The job that made it.
    pub job_id: Uuid,
    /// The snapshot it was computed on.
    pub snapshot_id: Uuid,
    pub manifest_hash: String,
    /// `docs` or `refactor`.
    pub kind: String,
    pub title: String,
    /// `pending`, `approved`, `partially_approved` or `rejected`.
    pub status: String,
    pub files: usize,
    pub exact_edits: usize,
    pub probable_edits: usize,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    pub reviewed_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reviewed_at: Option<OffsetDateTime>,
    /// The snapshot a client reported applying it to; null when not applied (or reverted).
    pub applied_snapshot_id: Option<Uuid>,
}

impl From<&Proposal> for ProposalSummary {
    fn from(p: &Proposal) -> Self {
        let count = |c: Confidence| {
            p.change
                .files
                .iter()
                .flat_map(|f| &f.edits)
                .filter(|e| e.confidence == c)
                .count()
        };
        ProposalSummary {
            id: p.id,
            project_id: p.project_id,
            job_id: p.job_id,
            snapshot_id: p.snapshot_id,
            manifest_hash: p.manifest_hash.clone(),
            kind: p.kind.as_str().to_string(),
            title: p.title.clone(),
            status: p.status.as_str().to_string(),
            files: p.change.files.len(),
            exact_edits: count(Confidence::Exact),
            probable_edits: count(Confidence::Probable),
            created_by: p.created_by,
            created_at: p.created_at,
            updated_at: p.updated_at,
            reviewed_by: p.reviewed_by,
            reviewed_at: p.reviewed_at,
            applied_snapshot_id: p.applied_snapshot_id,
        }
    }
}

/// A reviewer's choice for one hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Reject,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HunkResponse {
    /// Stable: the same proposal always shows the same ids.
    pub id: String,
    /// `exact` or `probable`; a hunk never mixes both.
    pub confidence: String,
    /// The `@@` numbers, against the snapshot's content.
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    /// The hunk as unified diff text, `@@` line included.
    pub text: String,
    /// The latest decision; null while undecided.
    pub decision: Option<Decision>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileDiffResponse {
    pub path: String,
    /// `modified`, `created` or `deleted`.
    pub status: String,
    /// The file's whole unified diff (exact and probable edits), for reading.
    pub diff: String,
    /// The reviewable hunks: exact ones, then probable ones (computed separately, so an exact
    /// and a probable hunk may cover the same lines).
    pub hunks: Vec<HunkResponse>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationResponse {
    /// `applied` or `reverted`.
    pub action: String,
    pub snapshot_id: Uuid,
    pub actor_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

impl From<Application> for ApplicationResponse {
    fn from(a: Application) -> Self {
        ApplicationResponse {
            action: a.action.as_str().to_string(),
            snapshot_id: a.snapshot_id,
            actor_id: a.actor_id,
            at: a.at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProposalResponse {
    #[serde(flatten)]
    pub summary: ProposalSummary,
    /// The whole `ChangeSet` (`hivesync_protocol::ChangeSet`): `{title, files:[{path,
    /// base_hash, edits:[{start, end, new_text, confidence}], delete?}]}`.
    #[schema(value_type = Object)]
    pub change: ChangeSet,
    pub diffs: Vec<FileDiffResponse>,
    pub hunks_total: usize,
    pub hunks_accepted: usize,
    pub hunks_rejected: usize,
    /// Every applied/reverted report, oldest first.
    pub applications: Vec<ApplicationResponse>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovedResponse {
    pub proposal_id: Uuid,
    pub snapshot_id: Uuid,
    pub manifest_hash: String,
    pub status: String,
    /// The accepted hunks as one `ChangeSet` against the snapshot's contents (each file's
    /// `base_hash`): apply it after checking the hashes; applying returns its inverse.
    #[schema(value_type = Object)]
    pub change: ChangeSet,
    /// The accepted hunks' ids.
    pub hunk_ids: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HunkDecisionRequest {
    pub hunk_id: String,
    pub decision: Decision,
}

/// Exactly one of `decisions`, `accept_all` or `reject_all`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Decisions on single hunks; hunks not named keep their earlier decision.
    #[serde(default)]
    pub decisions: Vec<HunkDecisionRequest>,
    /// Accept every **exact** hunk. Probable hunks (matched by name only) are left as they
    /// are unless `include_probable` is also true.
    #[serde(default)]
    pub accept_all: bool,
    /// With `accept_all`: accept the probable hunks too.
    #[serde(default)]
    pub include_probable: bool,
    /// Reject every hunk.
    #[serde(default)]
    pub reject_all: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRequest {
    /// The snapshot of the project the client applied (or reverted) the change in.
    pub snapshot_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListProposalsParams {
    /// `pending`, `approved`, `partially_approved` or `rejected`.
    pub status: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Handlers' helpers

/// Records `proposal.created` for a new proposal (called by the job that made it).
pub async fn emit_created(state: &AppState, p: &Proposal) -> Result<(), AppError> {
    state
        .emit(
            p.project_id,
            "proposal.created",
            None,
            serde_json::json!({
                "proposal_id": p.id,
                "job_id": p.job_id,
                "kind": p.kind.as_str(),
                "title": p.title,
                "snapshot_id": p.snapshot_id,
            }),
        )
        .await
        .map(drop)
}

/// The proposal, if the caller has at least `needed` on its project (404 otherwise).
async fn proposal_for(ctx: &Ctx, id: Uuid, needed: Role) -> Result<Proposal, AppError> {
    let p = ctx
        .state
        .proposals
        .proposal(id)
        .await?
        .ok_or_else(|| AppError::not_found("proposal"))?;
    require_role(ctx, p.project_id, needed)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::not_found("proposal"),
            other => other,
        })?;
    Ok(p)
}

/// The proposal's review files and the accepted/rejected hunk ids among them.
struct Reviewed {
    base: BTreeMap<String, String>,
    files: Vec<ReviewFile>,
    decisions: BTreeMap<String, Decision>,
}

impl Reviewed {
    async fn load(state: &AppState, p: &Proposal) -> Result<Reviewed, AppError> {
        let base = base_texts(state, &p.change).await?;
        let files = review_files(&base, &p.change).map_err(diff_error)?;
        let decisions = state
            .proposals
            .decisions(p.id)
            .await?
            .into_iter()
            .map(|d| {
                let decision = if d.accept {
                    Decision::Accept
                } else {
                    Decision::Reject
                };
                (d.hunk_id, decision)
            })
            .collect();
        Ok(Reviewed {
            base,
            files,
            decisions,
        })
    }

    fn ids(&self) -> BTreeMap<String, Confidence> {
        hunk_ids(&self.files)
    }

    fn with(&self, decision: Decision) -> BTreeSet<String> {
        let ids = self.ids();
        self.decisions
            .iter()
            .filter(|(id, d)| **d == decision && ids.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn approved(&self, p: &Proposal) -> Result<ChangeSet, AppError> {
        approved_change(&self.base, &p.change, &self.with(Decision::Accept)).map_err(diff_error)
    }
}

fn confidence_name(c: Confidence) -> &'static str {
    match c {
        Confidence::Exact => "exact",
        Confidence::Probable => "probable",
    }
}

fn status_name(s: FileStatus) -> &'static str {
    match s {
        FileStatus::Modified => "modified",
        FileStatus::Created => "created",
        FileStatus::Deleted => "deleted",
    }
}

async fn full_response(state: &AppState, p: &Proposal) -> Result<ProposalResponse, AppError> {
    let reviewed = Reviewed::load(state, p).await?;
    let applications = state.proposals.applications(p.id).await?;
    let diffs: Vec<FileDiffResponse> = reviewed
        .files
        .iter()
        .map(|f| FileDiffResponse {
            path: f.path.clone(),
            status: status_name(f.status).to_string(),
            diff: f.diff.clone(),
            hunks: f
                .hunks
                .iter()
                .map(|h| HunkResponse {
                    id: h.id.clone(),
                    confidence: confidence_name(h.confidence).to_string(),
                    old_start: h.old_start,
                    old_lines: h.old_lines,
                    new_start: h.new_start,
                    new_lines: h.new_lines,
                    text: h.text.clone(),
                    decision: reviewed.decisions.get(&h.id).copied(),
                })
                .collect(),
        })
        .collect();
    Ok(ProposalResponse {
        summary: p.into(),
        change: p.change.clone(),
        diffs,
        hunks_total: reviewed.ids().len(),
        hunks_accepted: reviewed.with(Decision::Accept).len(),
        hunks_rejected: reviewed.with(Decision::Reject).len(),
        applications: applications.into_iter().map(Into::into).collect(),
    })
}

/// 409 for a proposal nobody has reviewed yet: it has no approved part.
fn require_reviewed(p: &Proposal) -> Result<(), AppError> {
    if p.status == ProposalStatus::Pending {
        return Err(AppError::Conflict {
            code: "not_reviewed",
            message: "the proposal has not been reviewed yet; nothing is approved".into(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Handlers

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/proposals", tag = "proposals",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListProposalsParams),
    responses(
        (status = 200, description = "The project's proposals, newest first (any member)", body = [ProposalSummary]),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Unknown status", body = ErrorBody),
    )
)]
pub async fn list_proposals(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Query(params): Query<ListProposalsParams>,
) -> Result<Json<Vec<ProposalSummary>>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => Some(ProposalStatus::parse(s).ok_or_else(|| {
            AppError::invalid(format!(
                "status `{s}` is not one of pending, approved, partially_approved, rejected"
            ))
        })?),
    };
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let list = ctx
        .state
        .proposals
        .proposals(project_id, status, limit)
        .await?;
    Ok(Json(list.iter().map(ProposalSummary::from).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/proposals/{proposal_id}", tag = "proposals",
    security(("bearer" = [])),
    params(("proposal_id" = Uuid, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "The proposal (any member): its ChangeSet, per-file unified diffs with stable hunk ids, each hunk `exact` or `probable` with its decision, the snapshot and job it came from, and who applied or reverted it where", body = ProposalResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such proposal, or the caller is not a member of its project", body = ErrorBody),
    )
)]
pub async fn get_proposal(
    ctx: Ctx,
    Path(proposal_id): Path<Uuid>,
) -> Result<Json<ProposalResponse>, AppError> {
    let p = proposal_for(&ctx, proposal_id, Role::Viewer).await?;
    Ok(Json(full_response(&ctx.state, &p).await?))
}

#[utoipa::path(
    post, path = "/api/v1/proposals/{proposal_id}/review", tag = "proposals",
    security(("bearer" = [])),
    params(("proposal_id" = Uuid, Path, description = "Proposal id")),
    request_body(content = ReviewRequest, description = "Exactly one of: `decisions` (`[{hunk_id, decision: accept|reject}]`; hunks not named keep their earlier decision), `accept_all` (accepts every **exact** hunk; probable hunks — matched by name only — are accepted only with `include_probable: true` or by naming them), or `reject_all`. The status becomes `approved` (every hunk accepted), `partially_approved` (some; undecided hunks count as not accepted) or `rejected` (none)."),
    responses(
        (status = 200, description = "Decisions recorded (reviewer); the proposal as `GET` shows it", body = ProposalResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below reviewer", body = ErrorBody),
        (status = 404, description = "No such proposal, or the caller is not a member of its project", body = ErrorBody),
        (status = 409, description = "The proposal is applied (`proposal_applied`): report it reverted before changing decisions", body = ErrorBody),
        (status = 422, description = "Not exactly one of decisions/accept_all/reject_all, `include_probable` without `accept_all`, contradicting decisions, or unknown hunk ids (`unknown_hunks`, naming them)", body = ErrorBody),
    )
)]
pub async fn review_proposal(
    ctx: Ctx,
    Path(proposal_id): Path<Uuid>,
    Json(req): Json<ReviewRequest>,
) -> Result<Json<ProposalResponse>, AppError> {
    let p = proposal_for(&ctx, proposal_id, Role::Reviewer).await?;
    let modes = usize::from(!req.decisions.is_empty())
        + usize::from(req.accept_all)
        + usize::from(req.reject_all);
    if modes != 1 {
        return Err(AppError::invalid(
            "give exactly one of a non-empty `decisions`, `accept_all: true` or `reject_all: true`",
        ));
    }
    if req.include_probable && !req.accept_all {
        return Err(AppError::invalid(
            "`include_probable` only goes with `accept_all`; name probable hunks in `decisions` otherwise",
        ));
    }
    let reviewed = Reviewed::load(&ctx.state, &p).await?;
    let all = reviewed.ids();
    let mut decisions: BTreeMap<String, bool> = BTreeMap::new();
    if req.accept_all {
        for (id, confidence) in &all {
            if *confidence == Confidence::Exact || req.include_probable {
                decisions.insert(id.clone(), true);
            }
        }
        if decisions.is_empty() && !all.is_empty() {
            return Err(AppError::invalid(
                "every hunk of this proposal is probable: accept them with `include_probable: true` or by naming them in `decisions`",
            ));
        }
    } else if req.reject_all {
        decisions.extend(all.keys().map(|id| (id.clone(), false)));
    } else {
        let unknown: Vec<&str> = req
            .decisions
            .iter()
            .filter(|d| !all.contains_key(&d.hunk_id))
            .map(|d| d.hunk_id.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::Invalid {
                code: "unknown_hunks",
                message: format!(
                    "the proposal has no hunk{} {}",
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.join(", ")
                ),
            });
        }
        for d in &req.decisions {
            let accept = d.decision == Decision::Accept;
            if decisions.insert(d.hunk_id.clone(), accept) == Some(!accept) {
                return Err(AppError::invalid(format!(
                    "hunk {} is both accepted and rejected",
                    d.hunk_id
                )));
            }
        }
    }
    let ids: BTreeSet<String> = all.keys().cloned().collect();
    let now = crate::store::now();
    let p = match ctx
        .state
        .proposals
        .review(proposal_id, &decisions, &ids, ctx.user.id, now)
        .await?
    {
        ReviewOutcome::Reviewed(p) => *p,
        ReviewOutcome::NotFound => return Err(AppError::not_found("proposal")),
        ReviewOutcome::Applied => {
            return Err(AppError::Conflict {
                code: "proposal_applied",
                message: "the proposal is applied; report it reverted before changing decisions"
                    .into(),
            });
        }
    };
    let response = full_response(&ctx.state, &p).await?;
    ctx.state
        .emit(
            p.project_id,
            "proposal.reviewed",
            Some(ctx.user.id),
            serde_json::json!({
                "proposal_id": p.id,
                "status": p.status.as_str(),
                "hunks_total": response.hunks_total,
                "hunks_accepted": response.hunks_accepted,
                "hunks_rejected": response.hunks_rejected,
            }),
        )
        .await?;
    Ok(Json(response))
}

#[utoipa::path(
    get, path = "/api/v1/proposals/{proposal_id}/approved", tag = "proposals",
    security(("bearer" = [])),
    params(("proposal_id" = Uuid, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "The accepted hunks only, as one ChangeSet with each file's base hash (any member); empty when everything was rejected", body = ApprovedResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such proposal, or the caller is not a member of its project", body = ErrorBody),
        (status = 409, description = "Not reviewed yet (`not_reviewed`)", body = ErrorBody),
    )
)]
pub async fn approved_proposal(
    ctx: Ctx,
    Path(proposal_id): Path<Uuid>,
) -> Result<Json<ApprovedResponse>, AppError> {
    let p = proposal_for(&ctx, proposal_id, Role::Viewer).await?;
    require_reviewed(&p)?;
    let reviewed = Reviewed::load(&ctx.state, &p).await?;
    Ok(Json(ApprovedResponse {
        proposal_id: p.id,
        snapshot_id: p.snapshot_id,
        manifest_hash: p.manifest_hash.clone(),
        status: p.status.as_str().to_string(),
        change: reviewed.approved(&p)?,
        hunk_ids: reviewed.with(Decision::Accept).into_iter().collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/proposals/{proposal_id}/patch", tag = "proposals",
    security(("bearer" = [])),
    params(("proposal_id" = Uuid, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "The approved ChangeSet as a unified diff `git apply` accepts, against the proposal's snapshot (any member); empty when everything was rejected", content_type = "text/x-diff", body = String),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such proposal, or the caller is not a member of its project", body = ErrorBody),
        (status = 409, description = "Not reviewed yet (`not_reviewed`)", body = ErrorBody),
    )
)]
pub async fn proposal_patch(ctx: Ctx, Path(proposal_id): Path<Uuid>) -> Result<Response, AppError> {
    let p = proposal_for(&ctx, proposal_id, Role::Viewer).await?;
    require_reviewed(&p)?;
    let reviewed = Reviewed::load(&ctx.state, &p).await?;
    let approved = reviewed.approved(&p)?;
    let patch = render_unified_diff(&reviewed.base, &approved)
        .map_err(|e| diff_error(ProposalDiffError::Diff(e)))?;
    let mut response = patch.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-diff; charset=utf-8"),
    );
    Ok(response)
}

async fn record(
    ctx: &Ctx,
    proposal_id: Uuid,
    action: ApplicationAction,
    snapshot_id: Uuid,
) -> Result<Json<ProposalResponse>, AppError> {
    let p = proposal_for(ctx, proposal_id, Role::Reviewer).await?;
    if ctx
        .state
        .snapshots
        .snapshot(p.project_id, snapshot_id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound(format!(
            "snapshot {snapshot_id} not found in this project"
        )));
    }
    let outcome = ctx
        .state
        .proposals
        .record_application(
            proposal_id,
            action,
            snapshot_id,
            ctx.user.id,
            crate::store::now(),
        )
        .await?;
    let p = match outcome {
        ApplicationOutcome::Recorded(p) => {
            ctx.state
                .emit(
                    p.project_id,
                    &format!("proposal.{}", action.as_str()),
                    Some(ctx.user.id),
                    serde_json::json!({ "proposal_id": p.id, "snapshot_id": snapshot_id }),
                )
                .await?;
            *p
        }
        ApplicationOutcome::Unchanged(p) => *p,
        ApplicationOutcome::NotFound => return Err(AppError::not_found("proposal")),
        ApplicationOutcome::Refused(message) => {
            return Err(AppError::Conflict {
                code: match action {
                    ApplicationAction::Applied => "cannot_apply",
                    ApplicationAction::Reverted => "not_applied",
                },
                message,
            });
        }
    };
    Ok(Json(full_response(&ctx.state, &p).await?))
}

#[utoipa::path(
    post, path = "/api/v1/proposals/{proposal_id}/applied", tag = "proposals",
    security(("bearer" = [])),
    params(("proposal_id" = Uuid, Path, description = "Proposal id")),
    request_body = ApplicationRequest,
    responses(
        (status = 200, description = "Recorded who applied it where (reviewer: the client applies the approved ChangeSet itself, after checking base hashes; the server only records it). Reporting the same snapshot again changes nothing", body = ProposalResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below reviewer", body = ErrorBody),
        (status = 404, description = "No such proposal or snapshot, or the caller is not a member of its project", body = ErrorBody),
        (status = 409, description = "Nothing approved, or already applied at another snapshot (`cannot_apply`)", body = ErrorBody),
    )
)]
pub async fn proposal_applied(
    ctx: Ctx,
    Path(proposal_id): Path<Uuid>,
    Json(req): Json<ApplicationRequest>,
) -> Result<Json<ProposalResponse>, AppError> {
    record(
        &ctx,
        proposal_id,
        ApplicationAction::Applied,
        req.snapshot_id,
    )
    .await
}

#[utoipa::path(
    post, path = "/api/v1/proposals/{proposal_id}/reverted", tag = "proposals",
    security(("bearer" = [])),
    params(("proposal_id" = Uuid, Path, description = "Proposal id")),
    request_body = ApplicationRequest,
    responses(
        (status = 200, description = "Recorded who reverted it where (reviewer; the client applies the inverse ChangeSet itself). Reporting the same revert again changes nothing", body = ProposalResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below reviewer", body = ErrorBody),
        (status = 404, description = "No such proposal or snapshot, or the caller is not a member of its project", body = ErrorBody),
        (status = 409, description = "The proposal is not applied (`not_applied`)", body = ErrorBody),
    )
)]
pub async fn proposal_reverted(
    ctx: Ctx,
    Path(proposal_id): Path<Uuid>,
    Json(req): Json<ApplicationRequest>,
) -> Result<Json<ProposalResponse>, AppError> {
    record(
        &ctx,
        proposal_id,
        ApplicationAction::Reverted,
        req.snapshot_id,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hivesync_analysis::changeset::{apply_to_text, content_hash};
    use hivesync_protocol::TextEdit;

    fn edit(start: usize, end: usize, text: &str, confidence: Confidence) -> TextEdit {
        TextEdit {
            start,
            end,
            new_text: text.into(),
            confidence,
        }
    }

    #[test]
    fn exact_and_probable_edits_on_one_line_are_separate_hunks() {
        let base = "x = 1\nobj.foo(foo())\ny = 2\n";
        let line = base.find("obj.foo").unwrap();
        let exact = edit(line + 8, line + 11, "bar", Confidence::Exact);
        let probable = edit(line + 4, line + 7, "bar", Confidence::Probable);
        let cs = ChangeSet {
            title: "Rename".into(),
            files: vec![FileChange {
                path: "a.py".into(),
                base_hash: Some(content_hash(base.as_bytes())),
                edits: vec![probable.clone(), exact.clone()],
                delete: false,
            }],
        };
        let texts = BTreeMap::from([("a.py".to_string(), base.to_string())]);
        let files = review_files(&texts, &cs).unwrap();
        assert_eq!(files.len(), 1);
        let hunks = &files[0].hunks;
        assert_eq!(hunks.len(), 2, "{hunks:?}");
        assert_eq!(hunks[0].confidence, Confidence::Exact);
        assert!(
            hunks[0].text.contains("+obj.foo(bar())\n"),
            "{}",
            hunks[0].text
        );
        assert_eq!(hunks[1].confidence, Confidence::Probable);
        assert!(
            hunks[1].text.contains("+obj.bar(foo())\n"),
            "{}",
            hunks[1].text
        );
        assert!(
            files[0].diff.contains("+obj.bar(bar())\n"),
            "{}",
            files[0].diff
        );
        assert_eq!(review_files(&texts, &cs).unwrap(), files, "stable");

        let ids = hunk_ids(&files);
        let pick = |c: Confidence| -> BTreeSet<String> {
            ids.iter()
                .filter(|(_, k)| **k == c)
                .map(|(id, _)| id.clone())
                .collect()
        };
        let only_exact = approved_change(&texts, &cs, &pick(Confidence::Exact)).unwrap();
        assert_eq!(only_exact.files[0].edits, vec![exact.clone()]);
        let only_probable = approved_change(&texts, &cs, &pick(Confidence::Probable)).unwrap();
        assert_eq!(only_probable.files[0].edits, vec![probable.clone()]);
        let both: BTreeSet<String> = ids.keys().cloned().collect();
        let all = approved_change(&texts, &cs, &both).unwrap();
        assert_eq!(all, cs);
        assert_eq!(
            apply_to_text(base, &all.files[0].edits).unwrap(),
            "x = 1\nobj.bar(bar())\ny = 2\n"
        );
        assert!(
            approved_change(&texts, &cs, &BTreeSet::new())
                .unwrap()
                .files
                .is_empty()
        );
    }

    #[test]
    fn created_and_deleted_files_go_whole_into_one_group() {
        let gone = "old\n";
        let cs = ChangeSet {
            title: "t".into(),
            files: vec![
                FileChange {
                    path: "gone.py".into(),
                    base_hash: Some(content_hash(gone.as_bytes())),
                    edits: vec![],
                    delete: true,
                },
                FileChange {
                    path: "new.py".into(),
                    base_hash: None,
                    edits: vec![edit(0, 0, "x = 1\n", Confidence::Probable)],
                    delete: false,
                },
            ],
        };
        let [(_, exact), (_, probable)] = confidence_groups(&cs);
        assert_eq!(exact.files.len(), 1);
        assert_eq!(exact.files[0].path, "gone.py");
        assert_eq!(probable.files.len(), 1);
        assert_eq!(probable.files[0].path, "new.py");
        let texts = BTreeMap::from([("gone.py".to_string(), gone.to_string())]);
        let files = review_files(&texts, &cs).unwrap();
        let confidences: Vec<Confidence> = files
            .iter()
            .flat_map(|f| f.hunks.iter().map(|h| h.confidence))
            .collect();
        assert_eq!(confidences, [Confidence::Exact, Confidence::Probable]);
    }
}
