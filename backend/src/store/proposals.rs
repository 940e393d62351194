//! [`ProposalStore`]: proposals (a `ChangeSet` a job computed on a snapshot), the reviewers'
//! per-hunk decisions and the record of who applied or reverted them where, on [`SqlStore`].
//! Creation is idempotent by job id: a redelivered job gets the proposal it made the first time.

use super::sql::{SqlStore, get_opt_ts, get_opt_uuid, get_ts, get_uuid, ms};
use super::{StoreError, StoreResult};
use async_trait::async_trait;
use hivesync_protocol::ChangeSet;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use uuid::Uuid;

/// What made the proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalKind {
    Docs,
    Refactor,
}

impl ProposalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::Docs => "docs",
            ProposalKind::Refactor => "refactor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "docs" => Some(ProposalKind::Docs),
            "refactor" => Some(ProposalKind::Refactor),
            _ => None,
        }
    }
}

/// `pending` until the first review; then decided by the hunks accepted so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStatus {
    Pending,
    /// Every hunk accepted.
    Approved,
    /// Some hunks accepted, others rejected or not decided.
    PartiallyApproved,
    /// Reviewed, and no hunk accepted.
    Rejected,
}

impl ProposalStatus {
    pub const ALL: [ProposalStatus; 4] = [
        ProposalStatus::Pending,
        ProposalStatus::Approved,
        ProposalStatus::PartiallyApproved,
        ProposalStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Approved => "approved",
            ProposalStatus::PartiallyApproved => "partially_approved",
            ProposalStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The status after a review, from how many of `total` hunks are accepted.
    pub fn after_review(accepted: usize, total: usize) -> Self {
        if accepted == 0 {
            ProposalStatus::Rejected
        } else if accepted >= total {
            ProposalStatus::Approved
        } else {
            ProposalStatus::PartiallyApproved
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: Uuid,
    pub project_id: Uuid,
    pub job_id: Uuid,
    pub snapshot_id: Uuid,
    pub manifest_hash: String,
    pub kind: ProposalKind,
    pub title: String,
    pub change: ChangeSet,
    pub status: ProposalStatus,
    /// Who asked for the job (`None` for the system).
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<OffsetDateTime>,
    /// The snapshot it is applied to now; `None` when never applied or reverted since.
    pub applied_snapshot_id: Option<Uuid>,
}

/// What a job hands to [`ProposalStore::create_proposal`].
#[derive(Debug, Clone)]
pub struct NewProposal {
    /// The id the proposal gets if this call creates it.
    pub id: Uuid,
    pub project_id: Uuid,
    pub job_id: Uuid,
    pub snapshot_id: Uuid,
    pub manifest_hash: String,
    pub kind: ProposalKind,
    pub title: String,
    pub change: ChangeSet,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// A reviewer's latest decision on one hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HunkDecision {
    pub hunk_id: String,
    pub accept: bool,
    pub decided_by: Uuid,
    pub decided_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationAction {
    Applied,
    Reverted,
}

impl ApplicationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationAction::Applied => "applied",
            ApplicationAction::Reverted => "reverted",
        }
    }
}

/// One "applied" or "reverted" report of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: Uuid,
    pub proposal_id: Uuid,
    pub action: ApplicationAction,
    /// The snapshot the client applied it to (or reverted it in).
    pub snapshot_id: Uuid,
    pub actor_id: Uuid,
    pub at: OffsetDateTime,
}

/// The outcome of [`ProposalStore::review`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    Reviewed(Box<Proposal>),
    /// It is applied somewhere: revert it before changing the decisions.
    Applied,
    NotFound,
}

/// The outcome of [`ProposalStore::record_application`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationOutcome {
    /// Recorded.
    Recorded(Box<Proposal>),
    /// The proposal is already in that state at that snapshot (a retried report): nothing new
    /// was recorded.
    Unchanged(Box<Proposal>),
    /// Applying: nothing is approved, or it is applied at another snapshot. Reverting: it is not
    /// applied. The message says which.
    Refused(String),
    NotFound,
}

#[async_trait]
pub trait ProposalStore: Send + Sync {
    /// Creates the proposal, unless the job already made one: then returns that one and
    /// creates nothing (compare the returned id with `new.id` to know which happened).
    async fn create_proposal(&self, new: &NewProposal) -> StoreResult<Proposal>;
    async fn proposal(&self, id: Uuid) -> StoreResult<Option<Proposal>>;
    async fn proposal_by_job(&self, job_id: Uuid) -> StoreResult<Option<Proposal>>;
    /// The project's proposals, newest first, optionally with one status, at most `limit`.
    async fn proposals(
        &self,
        project_id: Uuid,
        status: Option<ProposalStatus>,
        limit: u32,
    ) -> StoreResult<Vec<Proposal>>;
    /// The latest decision per hunk, by hunk id.
    async fn decisions(&self, id: Uuid) -> StoreResult<Vec<HunkDecision>>;
    /// Records `decisions` (hunk id → accept) over the earlier ones and sets the status from
    /// how many of `hunk_ids` (every hunk of the proposal) are accepted now, in one
    /// transaction. Refused while the proposal is applied.
    async fn review(
        &self,
        id: Uuid,
        decisions: &BTreeMap<String, bool>,
        hunk_ids: &BTreeSet<String>,
        by: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<ReviewOutcome>;
    /// Records that a client applied (or reverted) the proposal at `snapshot_id`.
    async fn record_application(
        &self,
        id: Uuid,
        action: ApplicationAction,
        snapshot_id: Uuid,
        by: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<ApplicationOutcome>;
    /// Every applied/reverted report, oldest first.
    async fn applications(&self, id: Uuid) -> StoreResult<Vec<Application>>;
}

const PROPOSAL_COLUMNS: &str = "id, project_id, job_id, snapshot_id, manifest_hash, kind, title, \
     changeset, status, created_by, created_at, updated_at, reviewed_by, reviewed_at, \
     applied_snapshot_id";

fn proposal_from(row: &AnyRow) -> StoreResult<Proposal> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let json: String = row.try_get("changeset")?;
    Ok(Proposal {
        id: get_uuid(row, "id")?,
        project_id: get_uuid(row, "project_id")?,
        job_id: get_uuid(row, "job_id")?,
        snapshot_id: get_uuid(row, "snapshot_id")?,
        manifest_hash: row.try_get("manifest_hash")?,
        kind: ProposalKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("proposal kind `{kind}`")))?,
        title: row.try_get("title")?,
        change: serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("proposal change set: {e}")))?,
        status: ProposalStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("proposal status `{status}`")))?,
        created_by: get_opt_uuid(row, "created_by")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        reviewed_by: get_opt_uuid(row, "reviewed_by")?,
        reviewed_at: get_opt_ts(row, "reviewed_at")?,
        applied_snapshot_id: get_opt_uuid(row, "applied_snapshot_id")?,
    })
}

impl SqlStore {
    async fn proposal_where<'e, E>(
        executor: E,
        column: &str,
        id: Uuid,
    ) -> StoreResult<Option<Proposal>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let row = sqlx::query(&format!(
            "SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE {column} = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(executor)
        .await?;
        row.as_ref().map(proposal_from).transpose()
    }
}

#[async_trait]
impl ProposalStore for SqlStore {
    async fn create_proposal(&self, p: &NewProposal) -> StoreResult<Proposal> {
        let json = serde_json::to_string(&p.change)
            .map_err(|e| StoreError::Database(format!("change set as JSON: {e}")))?;
        // ON CONFLICT on the job id: a concurrent second delivery of the job inserts nothing.
        sqlx::query(&format!(
            "INSERT INTO proposals ({PROPOSAL_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10, NULL, NULL, NULL)
             ON CONFLICT (job_id) DO NOTHING"
        ))
        .bind(p.id.to_string())
        .bind(p.project_id.to_string())
        .bind(p.job_id.to_string())
        .bind(p.snapshot_id.to_string())
        .bind(&p.manifest_hash)
        .bind(p.kind.as_str())
        .bind(&p.title)
        .bind(json)
        .bind(p.created_by.map(|u| u.to_string()))
        .bind(ms(p.created_at))
        .execute(self.pool())
        .await?;
        self.proposal_by_job(p.job_id)
            .await?
            .ok_or_else(|| StoreError::Database("inserted proposal not found".into()))
    }

    async fn proposal(&self, id: Uuid) -> StoreResult<Option<Proposal>> {
        Self::proposal_where(self.pool(), "id", id).await
    }

    async fn proposal_by_job(&self, job_id: Uuid) -> StoreResult<Option<Proposal>> {
        Self::proposal_where(self.pool(), "job_id", job_id).await
    }

    async fn proposals(
        &self,
        project_id: Uuid,
        status: Option<ProposalStatus>,
        limit: u32,
    ) -> StoreResult<Vec<Proposal>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROPOSAL_COLUMNS} FROM proposals
             WHERE project_id = $1 AND ($2 = 0 OR status = $3)
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(project_id.to_string())
        .bind(i64::from(status.is_some()))
        .bind(status.map_or("", ProposalStatus::as_str))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(proposal_from).collect()
    }

    async fn decisions(&self, id: Uuid) -> StoreResult<Vec<HunkDecision>> {
        let rows = sqlx::query(
            "SELECT hunk_id, decision, decided_by, decided_at FROM proposal_decisions
             WHERE proposal_id = $1 ORDER BY hunk_id",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let decision: String = row.try_get("decision")?;
                Ok(HunkDecision {
                    hunk_id: row.try_get("hunk_id")?,
                    accept: match decision.as_str() {
                        "accept" => true,
                        "reject" => false,
                        other => {
                            return Err(StoreError::Corrupt(format!("decision `{other}`")));
                        }
                    },
                    decided_by: get_uuid(row, "decided_by")?,
                    decided_at: get_ts(row, "decided_at")?,
                })
            })
            .collect()
    }

    async fn review(
        &self,
        id: Uuid,
        decisions: &BTreeMap<String, bool>,
        hunk_ids: &BTreeSet<String>,
        by: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<ReviewOutcome> {
        let mut tx = self.pool().begin().await?;
        // Taking the row first (a row lock on PostgreSQL, the write lock on SQLite) serialises
        // concurrent reviews, so each computes the status from every decision before it.
        let locked = sqlx::query(
            "UPDATE proposals SET updated_at = $1 WHERE id = $2 AND applied_snapshot_id IS NULL",
        )
        .bind(ms(at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() == 0 {
            let exists = Self::proposal_where(&mut *tx, "id", id).await?.is_some();
            return Ok(if exists {
                ReviewOutcome::Applied
            } else {
                ReviewOutcome::NotFound
            });
        }
        for (hunk_id, accept) in decisions {
            sqlx::query(
                "INSERT INTO proposal_decisions (proposal_id, hunk_id, decision, decided_by, decided_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (proposal_id, hunk_id) DO UPDATE
                 SET decision = excluded.decision, decided_by = excluded.decided_by,
                     decided_at = excluded.decided_at",
            )
            .bind(id.to_string())
            .bind(hunk_id)
            .bind(if *accept { "accept" } else { "reject" })
            .bind(by.to_string())
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
        }
        let rows = sqlx::query(
            "SELECT hunk_id FROM proposal_decisions WHERE proposal_id = $1 AND decision = 'accept'",
        )
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut accepted = 0;
        for row in rows {
            let hunk: String = row.try_get("hunk_id")?;
            accepted += usize::from(hunk_ids.contains(&hunk));
        }
        let status = ProposalStatus::after_review(accepted, hunk_ids.len());
        sqlx::query(
            "UPDATE proposals SET status = $1, reviewed_by = $2, reviewed_at = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(by.to_string())
        .bind(ms(at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let proposal = Self::proposal_where(&mut *tx, "id", id)
            .await?
            .ok_or_else(|| StoreError::Database("reviewed proposal not found".into()))?;
        tx.commit().await?;
        Ok(ReviewOutcome::Reviewed(Box::new(proposal)))
    }

    async fn record_application(
        &self,
        id: Uuid,
        action: ApplicationAction,
        snapshot_id: Uuid,
        by: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<ApplicationOutcome> {
        let mut tx = self.pool().begin().await?;
        // Lock the row (see `review`) before reading the state the decision depends on.
        sqlx::query("UPDATE proposals SET updated_at = updated_at WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let Some(current) = Self::proposal_where(&mut *tx, "id", id).await? else {
            return Ok(ApplicationOutcome::NotFound);
        };
        let last = sqlx::query(
            "SELECT action, snapshot_id FROM proposal_applications WHERE proposal_id = $1
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let last: Option<(String, Uuid)> = match last {
            Some(row) => Some((row.try_get("action")?, get_uuid(&row, "snapshot_id")?)),
            None => None,
        };
        let same_as_last = last
            .as_ref()
            .is_some_and(|(a, s)| a == action.as_str() && *s == snapshot_id);
        let refusal = match (action, current.applied_snapshot_id) {
            (ApplicationAction::Applied, Some(at_snapshot)) if at_snapshot == snapshot_id => {
                return Ok(ApplicationOutcome::Unchanged(Box::new(current)));
            }
            (ApplicationAction::Applied, Some(at_snapshot)) => Some(format!(
                "the proposal is already applied at snapshot {at_snapshot}; report it reverted first"
            )),
            (ApplicationAction::Applied, None)
                if !matches!(
                    current.status,
                    ProposalStatus::Approved | ProposalStatus::PartiallyApproved
                ) =>
            {
                Some(format!(
                    "the proposal is {}; only an approved or partially approved proposal can be applied",
                    current.status.as_str()
                ))
            }
            (ApplicationAction::Applied, None) => None,
            (ApplicationAction::Reverted, None) if same_as_last => {
                return Ok(ApplicationOutcome::Unchanged(Box::new(current)));
            }
            (ApplicationAction::Reverted, None) => {
                Some("the proposal is not applied anywhere, so it cannot be reverted".to_string())
            }
            (ApplicationAction::Reverted, Some(_)) => None,
        };
        if let Some(message) = refusal {
            return Ok(ApplicationOutcome::Refused(message));
        }
        let applied = match action {
            ApplicationAction::Applied => Some(snapshot_id.to_string()),
            ApplicationAction::Reverted => None,
        };
        sqlx::query("UPDATE proposals SET applied_snapshot_id = $1, updated_at = $2 WHERE id = $3")
            .bind(applied)
            .bind(ms(at))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO proposal_applications (id, proposal_id, action, snapshot_id, actor_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(id.to_string())
        .bind(action.as_str())
        .bind(snapshot_id.to_string())
        .bind(by.to_string())
        .bind(ms(at))
        .execute(&mut *tx)
        .await?;
        let proposal = Self::proposal_where(&mut *tx, "id", id)
            .await?
            .ok_or_else(|| StoreError::Database("proposal not found after update".into()))?;
        tx.commit().await?;
        Ok(ApplicationOutcome::Recorded(Box::new(proposal)))
    }

    async fn applications(&self, id: Uuid) -> StoreResult<Vec<Application>> {
        let rows = sqlx::query(
            "SELECT id, proposal_id, action, snapshot_id, actor_id, created_at
             FROM proposal_applications WHERE proposal_id = $1 ORDER BY created_at, id",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let action: String = row.try_get("action")?;
                Ok(Application {
                    id: get_uuid(row, "id")?,
                    proposal_id: get_uuid(row, "proposal_id")?,
                    action: match action.as_str() {
                        "applied" => ApplicationAction::Applied,
                        "reverted" => ApplicationAction::Reverted,
                        other => {
                            return Err(StoreError::Corrupt(format!("application `{other}`")));
                        }
                    },
                    snapshot_id: get_uuid(row, "snapshot_id")?,
                    actor_id: get_uuid(row, "actor_id")?,
                    at: get_ts(row, "created_at")?,
                })
            })
            .collect()
    }
}
