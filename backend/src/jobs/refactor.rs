//! The `refactor` job: rename a symbol across a snapshot and store the plan as a proposal.
//! Params `{snapshot_id, path, line, column, new_name, include_probable}` (line and column
//! 1-based, column in characters). The snapshot is materialised into a temporary directory,
//! loaded into an `AnalysisHost`, and `Analysis::rename` plans the edits. Exact edits are always
//! in the proposal; probable ones (matched by name only) only with `include_probable`, and the
//! proposal's diff keeps them in hunks of their own (see `routes::proposals`). An engine
//! refusal (conflict, keyword, nothing to rename…) is a permanent failure carrying the engine's
//! message. Idempotent by job id: a redelivered job returns the proposal it made before.
//!
//! The job runtime wraps these functions in its `JobHandler`: `parse_params` + `validate` for
//! the API's check before queueing, `run_refactor` for the work.

use super::snapshot::{AnalysisFailure, with_analysis};
use crate::state::AppState;
use crate::store::{NewProposal, ProposalKind};
use hivesync_analysis::{AnalysisError, FilePosition};
use hivesync_protocol::Confidence;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// The job kind.
pub const KIND: &str = "refactor";

/// Longest accepted new name, in bytes.
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefactorParams {
    pub snapshot_id: Uuid,
    /// The file holding the symbol, as in the snapshot's manifest.
    pub path: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub new_name: String,
    /// Also propose the probable edits (matched by name only), in hunks of their own.
    #[serde(default)]
    pub include_probable: bool,
}

/// Why a refactor job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefactorFailure {
    /// The engine refused the rename; its message says why. Permanent.
    #[error("rename refused: {0}")]
    Refused(String),
    /// The snapshot, file or position is not usable. Permanent.
    #[error("{0}")]
    Invalid(String),
    /// A backing service failed; another attempt may succeed.
    #[error("{0}")]
    Retryable(String),
}

impl RefactorFailure {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, RefactorFailure::Retryable(_))
    }
}

/// Parses and checks the params (shape only; [`validate`] looks the snapshot up).
pub fn parse_params(params: &Value) -> Result<RefactorParams, String> {
    let obj = params
        .as_object()
        .ok_or("refactor params must be a JSON object")?;
    const FIELDS: [&str; 6] = [
        "snapshot_id",
        "path",
        "line",
        "column",
        "new_name",
        "include_probable",
    ];
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "refactor params: unknown field `{unknown}` (expected {})",
            FIELDS.join(", ")
        ));
    }
    fn field<T: serde::de::DeserializeOwned>(
        obj: &serde_json::Map<String, Value>,
        name: &str,
    ) -> Result<Option<T>, String> {
        obj.get(name)
            .map(|v| {
                serde_json::from_value(v.clone())
                    .map_err(|e| format!("refactor params: `{name}`: {e}"))
            })
            .transpose()
    }
    let required = |name: &str| format!("refactor params: missing field `{name}`");
    let p = RefactorParams {
        snapshot_id: field(obj, "snapshot_id")?.ok_or_else(|| required("snapshot_id"))?,
        path: field(obj, "path")?.ok_or_else(|| required("path"))?,
        line: field(obj, "line")?.ok_or_else(|| required("line"))?,
        column: field(obj, "column")?.ok_or_else(|| required("column"))?,
        new_name: field(obj, "new_name")?.ok_or_else(|| required("new_name"))?,
        include_probable: field(obj, "include_probable")?.unwrap_or(false),
    };
    if p.path.is_empty() {
        return Err("refactor params: `path` must not be empty".into());
    }
    if p.line == 0 || p.column == 0 {
        return Err(format!(
            "refactor params: line {} column {}: lines and columns start at 1",
            p.line, p.column
        ));
    }
    if p.new_name.trim().is_empty() || p.new_name.len() > MAX_NAME {
        return Err(format!(
            "refactor params: `new_name` must be 1 to {MAX_NAME} bytes and not blank"
        ));
    }
    Ok(p)
}

/// What the API checks before queueing: the params parse, the snapshot is a committed
/// snapshot of the project and holds `path`.
pub async fn validate(state: &AppState, project_id: Uuid, params: &Value) -> Result<(), String> {
    let p = parse_params(params)?;
    let snapshot = state
        .snapshots
        .snapshot(project_id, p.snapshot_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("snapshot {} does not exist in this project", p.snapshot_id))?;
    if snapshot.committed_at.is_none() {
        return Err(format!("snapshot {} is not committed yet", p.snapshot_id));
    }
    let manifest = state
        .snapshots
        .snapshot_manifest(project_id, p.snapshot_id)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let manifest: hivesync_protocol::Manifest =
        serde_json::from_str(&manifest).map_err(|e| format!("stored manifest: {e}"))?;
    if !manifest.files.iter().any(|f| f.path == p.path) {
        return Err(format!(
            "there is no file `{}` in snapshot {}",
            p.path, p.snapshot_id
        ));
    }
    Ok(())
}

/// Runs the refactor job `job_id`: plans the rename on the snapshot and stores the proposal
/// (once per job id). Returns `{"proposal_id", "exact_edits", "probable_edits", "files"}`.
pub async fn run_refactor(
    state: &AppState,
    project_id: Uuid,
    job_id: Uuid,
    params: &RefactorParams,
) -> Result<Value, RefactorFailure> {
    let retry = |e: &dyn std::fmt::Display| RefactorFailure::Retryable(e.to_string());
    if let Some(done) = state
        .proposals
        .proposal_by_job(job_id)
        .await
        .map_err(|e| retry(&e))?
    {
        return Ok(result_json(done.id, &done.change));
    }
    let position = FilePosition {
        path: params.path.clone(),
        line: params.line,
        column: params.column,
    };
    let new_name = params.new_name.clone();
    let planned = with_analysis(
        state,
        project_id,
        params.snapshot_id,
        move |manifest, analysis| {
            if !manifest.files.iter().any(|f| f.path == position.path) {
                return Ok(None);
            }
            analysis.rename(&position, &new_name).map(Some)
        },
    )
    .await
    .map_err(|e| match e {
        AnalysisFailure::Engine(AnalysisError::Rename(r)) => {
            RefactorFailure::Refused(r.to_string())
        }
        e if e.is_retryable() => RefactorFailure::Retryable(e.to_string()),
        AnalysisFailure::Snapshot(e) => RefactorFailure::Invalid(e.to_string()),
        other => RefactorFailure::Refused(other.to_string()),
    })?;
    let plan = planned.ok_or_else(|| {
        RefactorFailure::Invalid(format!(
            "there is no file `{}` in snapshot {}",
            params.path, params.snapshot_id
        ))
    })?;
    let mut change = if params.include_probable {
        plan.change.clone()
    } else {
        plan.change.filtered(&[Confidence::Exact])
    };
    if params.include_probable && plan.probable_edits > 0 {
        change.title = format!("{} (with probable matches)", change.title);
    }
    if change.files.iter().all(|f| f.edits.is_empty()) {
        return Err(RefactorFailure::Refused(format!(
            "renaming `{}` finds nothing to edit{}",
            plan.old_name,
            if params.include_probable {
                ""
            } else {
                " without probable matches"
            }
        )));
    }
    let snapshot = state
        .snapshots
        .snapshot(project_id, params.snapshot_id)
        .await
        .map_err(|e| retry(&e))?
        .ok_or_else(|| {
            RefactorFailure::Invalid(format!(
                "snapshot {} does not exist in this project",
                params.snapshot_id
            ))
        })?;
    let new = NewProposal {
        id: Uuid::now_v7(),
        project_id,
        job_id,
        snapshot_id: params.snapshot_id,
        manifest_hash: snapshot.manifest_hash,
        kind: ProposalKind::Refactor,
        title: change.title.clone(),
        change,
        created_by: None,
        created_at: crate::store::now(),
    };
    let proposal = super::record_proposal(state, &new)
        .await
        .map_err(|e| retry(&e))?;
    Ok(result_json(proposal.id, &proposal.change))
}

fn result_json(proposal_id: Uuid, change: &hivesync_protocol::ChangeSet) -> Value {
    let count = |c: Confidence| {
        change
            .files
            .iter()
            .flat_map(|f| &f.edits)
            .filter(|e| e.confidence == c)
            .count()
    };
    json!({
        "proposal_id": proposal_id,
        "exact_edits": count(Confidence::Exact),
        "probable_edits": count(Confidence::Probable),
        "files": change.files.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_with_clear_messages() {
        let id = Uuid::now_v7();
        let ok = parse_params(&json!({"snapshot_id": id, "path": "a.py", "line": 1,
            "column": 5, "new_name": "go"}))
        .expect("valid");
        assert!(!ok.include_probable);
        for (bad, needle) in [
            (
                json!({"snapshot_id": id, "path": "a.py", "line": 1}),
                "missing field `column`",
            ),
            (json!([1]), "JSON object"),
            (
                json!({"snapshot_id": "x", "path": "a.py", "line": 1, "column": 1, "new_name": "n"}),
                "snapshot_id",
            ),
            (
                json!({"snapshot_id": id, "path": "a.py", "line": 0, "column": 1, "new_name": "n"}),
                "start at 1",
            ),
            (
                json!({"snapshot_id": id, "path": "", "line": 1, "column": 1, "new_name": "n"}),
                "`path`",
            ),
            (
                json!({"snapshot_id": id, "path": "a.py", "line": 1, "column": 1, "new_name": " "}),
                "`new_name`",
            ),
            (
                json!({"snapshot_id": id, "path": "a.py", "line": 1, "column": 1, "new_name": "n", "extra": 1}),
                "unknown field",
            ),
        ] {
            let err = parse_params(&bad).expect_err("invalid");
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
    }
}
