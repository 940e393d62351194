//! Durable state, one trait per concern: [`UserStore`] (accounts and password hashes),
//! [`TokenStore`] (refresh-token families and personal access tokens, both stored hashed),
//! [`ProjectStore`] (projects and their members' roles) and [`EventLog`] (the append-only event
//! log per project). Handlers only see these traits; [`sql::SqlStore`] implements all of them
//! over SQLite or PostgreSQL with one set of queries. Later resources (snapshots, threads,
//! previews, jobs, proposals) add their own trait here and implement it on `SqlStore`.

pub mod previews;
pub mod project_cache;
pub mod proposals;
pub mod snapshots;
pub mod sql;
pub mod threads;

use crate::error::AppError;
use async_trait::async_trait;
pub use previews::{BundleInfo, Preview, PreviewStatus, PreviewStore};
pub use proposals::{
    Application, ApplicationAction, ApplicationOutcome, HunkDecision, NewProposal, Proposal,
    ProposalKind, ProposalStatus, ProposalStore, ReviewOutcome,
};
use serde::{Deserialize, Serialize};
pub use snapshots::{AddBlob, Snapshot, SnapshotStore};
use std::sync::Arc;
pub use threads::{Anchor, AuthorKind, Comment, CommentEdit, Thread, ThreadFilter, ThreadStore};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A storage failure. Handlers turn it into 503 (database not answering) or 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(d) => AppError::Unavailable(d),
            other => AppError::Internal(other.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The current time at the precision the stores keep (milliseconds), so what a handler returns
/// right after writing equals what a later read returns.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

/// A registered person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub created_at: OffsetDateTime,
}

/// What registration needs; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    /// Lowercased, trimmed: the key for uniqueness and login.
    pub email_normalized: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

/// The outcome of [`UserStore::create_user`].
#[derive(Debug)]
pub enum CreateUser {
    Created(User),
    EmailTaken,
    /// Registration is closed and this is not the first user.
    Closed,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user; the first user of the instance becomes admin. When `open` is false
    /// only the first user may register.
    async fn create_user(&self, new: NewUser, open: bool) -> StoreResult<CreateUser>;
    /// The user and their password hash, by normalised email.
    async fn user_by_email(&self, email_normalized: &str) -> StoreResult<Option<(User, String)>>;
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>>;
}

/// One refresh token of a login session ("family"). Only its hash is stored.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The family's absolute end, however often it is refreshed.
    pub session_expires_at: OffsetDateTime,
    /// Set when this token was exchanged for a new one; presenting it again is reuse.
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A personal access token (for the CLI and editors). Only its hash is stored.
#[derive(Debug, Clone)]
pub struct PersonalAccessToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub token_hash: String,
    /// The first characters of the token, to recognise it in a list.
    pub token_prefix: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn refresh_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;
    /// Marks the token used; true only for the one caller that rotated it (a concurrent second
    /// use gets false and is treated as reuse).
    async fn mark_refresh_token_used(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool>;
    /// Revokes every token of the family.
    async fn revoke_refresh_family(&self, family_id: Uuid, at: OffsetDateTime) -> StoreResult<()>;

    async fn insert_personal_token(&self, token: &PersonalAccessToken) -> StoreResult<()>;
    async fn personal_tokens(&self, user_id: Uuid) -> StoreResult<Vec<PersonalAccessToken>>;
    async fn personal_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<PersonalAccessToken>>;
    /// Deletes the user's token; false when the user has no token with that id.
    async fn delete_personal_token(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool>;
    async fn touch_personal_token(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()>;
}

/// A member's role on a project. Each role can do everything the roles below it can:
/// viewers read; reviewers also comment and approve proposals; maintainers also request AI
/// jobs, refactors and previews and edit the project; owners also manage members and delete.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Reviewer,
    Maintainer,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Reviewer, Role::Maintainer, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reviewer => "reviewer",
            Role::Maintainer => "maintainer",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A member of a project with their account details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub added_at: OffsetDateTime,
}

/// The outcome of [`ProjectStore::set_member_role`] and [`ProjectStore::remove_member`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// `previous` is `None` when the user was not a member before.
    Done { previous: Option<Role> },
    /// The change would leave the project without an owner.
    LastOwner,
    /// The user (or, for removal, the membership) does not exist.
    NoSuchUser,
}

/// Changes to a project's editable fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
}

#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Creates the project with `owner` as its first owner.
    async fn create_project(&self, project: &Project, owner: Uuid) -> StoreResult<()>;
    /// The projects the user is a member of, with their role, newest first (shared with the
    /// membership cache: see `project_cache`).
    async fn projects_of(&self, user_id: Uuid) -> StoreResult<Arc<project_cache::Memberships>>;
    /// The project and the user's role on it, if the user is a member.
    async fn membership(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Option<(Project, Role)>>;
    async fn update_project(
        &self,
        id: Uuid,
        patch: &ProjectPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<Project>>;
    /// Deletes the project with its members and events.
    async fn delete_project(&self, id: Uuid) -> StoreResult<bool>;
    async fn members(&self, project_id: Uuid) -> StoreResult<Vec<Member>>;
    async fn member(&self, project_id: Uuid, user_id: Uuid) -> StoreResult<Option<Member>>;
    /// Adds the user with `role` or changes their role; refuses to demote the last owner.
    async fn set_member_role(
        &self,
        project_id: Uuid,
        user_id: Uuid,
        role: Role,
        at: OffsetDateTime,
    ) -> StoreResult<MemberChange>;
    /// Removes the member; refuses to remove the last owner.
    async fn remove_member(&self, project_id: Uuid, user_id: Uuid) -> StoreResult<MemberChange>;
}

/// One entry of a project's event log. `id` grows with every append (across projects), so
/// clients resume with "everything after id N".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: i64,
    pub project_id: Uuid,
    /// `member.added`, `job.succeeded`, `thread.comment`, …
    pub kind: String,
    /// Who caused it; `None` for the system (workers, expiry).
    pub actor_id: Option<Uuid>,
    pub payload: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An event before it is appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub project_id: Uuid,
    pub kind: String,
    pub actor_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait EventLog: Send + Sync {
    async fn append_event(&self, event: &NewEvent) -> StoreResult<Event>;
    /// The project's events with `id > after`, oldest first, at most `limit`.
    async fn events_after(
        &self,
        project_id: Uuid,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;
    /// Events with `id > after` of every project the user is a member of now, oldest first,
    /// at most `limit` (for a stream of "everything the caller may see").
    async fn events_for_user_after(
        &self,
        user_id: Uuid,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;
    /// The largest event id so far (0 for an empty log): where a new stream starts.
    async fn latest_event_id(&self) -> StoreResult<i64>;
}
