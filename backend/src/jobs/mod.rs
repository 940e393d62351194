//! What background jobs do, as plain functions the job runtime (`worker`) wraps in its
//! handlers: [`snapshot::materialize`] writes a committed snapshot's files into a directory for
//! the engine, [`refactor`] plans a rename on a snapshot and stores it as a proposal,
//! [`git_credentials`] keeps the per-project credentials `repo_sync` hands to git. Each job is
//! idempotent by job id (a redelivered job finds the proposal it made the first time).

pub mod git_credentials;
pub mod refactor;
pub mod snapshot;

use crate::state::AppState;
use crate::store::{NewProposal, Proposal, StoreResult};

/// Stores a job's proposal (once per job id: a redelivered job gets the first one back) and,
/// when this call created it, records `proposal.created`. The proposal is durable before the
/// event, so a failed event is logged rather than failing the job (a redelivery would find the
/// proposal and not emit again).
pub async fn record_proposal(state: &AppState, new: &NewProposal) -> StoreResult<Proposal> {
    let proposal = state.proposals.create_proposal(new).await?;
    if proposal.id == new.id
        && let Err(e) = crate::routes::proposals::emit_created(state, &proposal).await
    {
        tracing::warn!(error = %e, proposal_id = %proposal.id, "proposal.created not recorded");
    }
    Ok(proposal)
}
