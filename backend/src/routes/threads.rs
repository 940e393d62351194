//! Comment threads anchored to lines of a file in a snapshot. Reviewers and above open threads,
//! reply and resolve; authors edit and delete their own comments (earlier bodies are kept);
//! every member reads. Listed with `?snapshot=`, each thread reports where its lines are in
//! that snapshot (`reanchor`): shifted by edits above, found again when moved, following a
//! renamed file by content hash, or `outdated`. Events: `thread.created`, `thread.comment`,
//! `thread.resolved`, `thread.reopened`.

use super::snapshots::{file_content, load_manifest};
use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path, Query};
use crate::reanchor::{AnchorText, LineRange, Relocation, anchor_text, relocate};
use crate::store::{Anchor, AuthorKind, Comment, Role, Thread, ThreadFilter};
use axum::http::StatusCode;
use hivesync_protocol::Manifest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Longest comment body, in bytes.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateThreadRequest {
    pub path: String,
    pub snapshot_id: Uuid,
    /// 1-based, inclusive.
    pub start_line: u64,
    pub end_line: u64,
    /// The first comment (Markdown).
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// Markdown.
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateThreadRequest {
    /// `open` or `resolved`.
    pub status: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListThreadsParams {
    /// Only threads on this path (as anchored).
    pub path: Option<String>,
    /// `open` or `resolved`.
    pub status: Option<String>,
    /// Report each thread's position in this snapshot.
    pub snapshot: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorResponse {
    pub snapshot_id: Uuid,
    pub path: String,
    pub start_line: u64,
    pub end_line: u64,
    /// The anchored lines' text at that snapshot.
    pub lines: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Position {
    pub path: String,
    pub start_line: u64,
    pub end_line: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommentEditResponse {
    /// The body before the edit (or deletion).
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub replaced_at: OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommentResponse {
    pub id: Uuid,
    pub author_id: Option<Uuid>,
    /// `user` or `ai`.
    pub author_kind: String,
    /// Markdown; empty when deleted.
    pub body: String,
    pub deleted: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<OffsetDateTime>,
    /// Earlier bodies, oldest first.
    pub history: Vec<CommentEditResponse>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThreadResponse {
    pub id: Uuid,
    pub project_id: Uuid,
    /// `open` or `resolved`.
    pub status: String,
    pub anchor: AnchorResponse,
    /// In reply order.
    pub comments: Vec<CommentResponse>,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<OffsetDateTime>,
    /// Only with `?snapshot=`: where the anchored lines are in that snapshot; `null` when the
    /// file is gone. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Position>, nullable)]
    pub position: Option<Option<Position>>,
    /// Only with `?snapshot=`: the anchored lines were edited or deleted there (the anchor
    /// keeps the original position and text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outdated: Option<bool>,
}

fn comment_response(c: Comment) -> CommentResponse {
    CommentResponse {
        id: c.id,
        author_id: c.author_id,
        author_kind: c.author_kind.as_str().to_string(),
        body: c.body,
        deleted: c.deleted_at.is_some(),
        created_at: c.created_at,
        edited_at: c.edited_at,
        history: c
            .history
            .into_iter()
            .map(|e| CommentEditResponse {
                body: e.body,
                replaced_at: e.replaced_at,
            })
            .collect(),
    }
}

fn thread_response(t: Thread, comments: Vec<Comment>) -> ThreadResponse {
    ThreadResponse {
        id: t.id,
        project_id: t.project_id,
        status: if t.resolved { "resolved" } else { "open" }.into(),
        anchor: AnchorResponse {
            snapshot_id: t.anchor.snapshot_id,
            path: t.anchor.path,
            start_line: t.anchor.start_line,
            end_line: t.anchor.end_line,
            lines: t.anchor.lines,
        },
        comments: comments.into_iter().map(comment_response).collect(),
        created_by: t.created_by,
        created_at: t.created_at,
        updated_at: t.updated_at,
        resolved_at: t.resolved_at,
        position: None,
        outdated: None,
    }
}

fn clean_body(body: &str) -> Result<String, AppError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::invalid("body must not be empty"));
    }
    if body.len() > MAX_BODY {
        return Err(AppError::invalid(format!(
            "body must be at most {MAX_BODY} bytes"
        )));
    }
    Ok(body.to_string())
}

/// The thread, if the caller has at least `needed` on its project (404 otherwise).
async fn thread_for(ctx: &Ctx, id: Uuid, needed: Role) -> Result<Thread, AppError> {
    let thread = ctx
        .state
        .threads
        .thread(id)
        .await?
        .ok_or_else(|| AppError::not_found("thread"))?;
    require_role(ctx, thread.project_id, needed)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::not_found("thread"),
            other => other,
        })?;
    Ok(thread)
}

async fn full_thread(ctx: &Ctx, thread: Thread) -> Result<ThreadResponse, AppError> {
    let mut comments = ctx.state.threads.comments(&[thread.id]).await?;
    let list = comments.remove(&thread.id).unwrap_or_default();
    Ok(thread_response(thread, list))
}

#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/threads", tag = "threads",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = CreateThreadRequest,
    responses(
        (status = 201, description = "Opened with its first comment (reviewer)", body = ThreadResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below reviewer", body = ErrorBody),
        (status = 404, description = "No such project, snapshot or file, or the caller is not a member", body = ErrorBody),
        (status = 409, description = "The file's content has not been uploaded (`content_missing`)", body = ErrorBody),
        (status = 422, description = "Empty body, or lines outside the file", body = ErrorBody),
    )
)]
pub async fn create_thread(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Json(req): Json<CreateThreadRequest>,
) -> Result<(StatusCode, Json<ThreadResponse>), AppError> {
    require_role(&ctx, project_id, Role::Reviewer).await?;
    let body = clean_body(&req.body)?;
    let manifest = load_manifest(&ctx, project_id, req.snapshot_id).await?;
    let file = manifest
        .files
        .iter()
        .find(|f| f.path == req.path)
        .ok_or_else(|| AppError::NotFound(format!("no file `{}` in this snapshot", req.path)))?;
    let file_hash = file.hash.clone();
    let content = file_content(&ctx, project_id, req.snapshot_id, &req.path).await?;
    let text = String::from_utf8_lossy(&content);
    let range = LineRange {
        start: usize::try_from(req.start_line).unwrap_or(usize::MAX),
        end: usize::try_from(req.end_line).unwrap_or(usize::MAX),
    };
    let anchored = anchor_text(&text, range).ok_or_else(|| {
        AppError::invalid(format!(
            "lines {}-{} are not within `{}` ({} lines)",
            req.start_line,
            req.end_line,
            req.path,
            text.lines().count()
        ))
    })?;
    let now = crate::store::now();
    let thread = Thread {
        id: Uuid::now_v7(),
        project_id,
        resolved: false,
        anchor: Anchor {
            snapshot_id: req.snapshot_id,
            path: req.path.clone(),
            file_hash,
            start_line: req.start_line,
            end_line: req.end_line,
            lines: anchored.lines,
            context_before: anchored.before,
            context_after: anchored.after,
        },
        created_by: Some(ctx.user.id),
        created_at: now,
        updated_at: now,
        resolved_by: None,
        resolved_at: None,
    };
    let first = Comment {
        id: Uuid::now_v7(),
        thread_id: thread.id,
        author_id: Some(ctx.user.id),
        author_kind: AuthorKind::User,
        body,
        created_at: now,
        edited_at: None,
        deleted_at: None,
        history: Vec::new(),
    };
    ctx.state.threads.create_thread(&thread, &first).await?;
    ctx.state
        .emit(
            project_id,
            "thread.created",
            Some(ctx.user.id),
            serde_json::json!({
                "thread_id": thread.id,
                "snapshot_id": req.snapshot_id,
                "path": req.path,
                "start_line": req.start_line,
                "end_line": req.end_line,
                "comment_id": first.id,
            }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(thread_response(thread, vec![first])),
    ))
}

/// Texts of blobs by hash, loaded once per request.
struct Texts<'a> {
    ctx: &'a Ctx,
    cache: HashMap<String, Option<String>>,
}

impl Texts<'_> {
    async fn get(&mut self, hash: &str) -> Result<Option<String>, AppError> {
        if let Some(t) = self.cache.get(hash) {
            return Ok(t.clone());
        }
        let text = self
            .ctx
            .state
            .blobs
            .get(hash)
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        self.cache.insert(hash.to_string(), text.clone());
        Ok(text)
    }
}

/// Where the thread's anchored lines are in `target`: `(position, outdated)`.
async fn position_in(
    texts: &mut Texts<'_>,
    thread: &Thread,
    target_id: Uuid,
    target: &Manifest,
) -> Result<(Option<Position>, bool), AppError> {
    let a = &thread.anchor;
    let original = Position {
        path: a.path.clone(),
        start_line: a.start_line,
        end_line: a.end_line,
    };
    if a.snapshot_id == target_id {
        return Ok((Some(original), false));
    }
    let same_path = target.files.iter().find(|f| f.path == a.path);
    let file = match same_path {
        Some(f) => f,
        // Renamed: follow the content.
        None => match target.files.iter().find(|f| f.hash == a.file_hash) {
            Some(f) => f,
            None => return Ok((None, true)),
        },
    };
    let at = |range: LineRange| Position {
        path: file.path.clone(),
        start_line: range.start as u64,
        end_line: range.end as u64,
    };
    let range = LineRange {
        start: usize::try_from(a.start_line).unwrap_or(usize::MAX),
        end: usize::try_from(a.end_line).unwrap_or(usize::MAX),
    };
    if file.hash == a.file_hash {
        return Ok((Some(at(range)), false));
    }
    let (Some(old), Some(new)) = (texts.get(&a.file_hash).await?, texts.get(&file.hash).await?)
    else {
        return Ok((Some(original), true));
    };
    let anchor = AnchorText {
        lines: a.lines.clone(),
        before: a.context_before.clone(),
        after: a.context_after.clone(),
    };
    Ok(match relocate(&old, &new, range, &anchor) {
        Relocation::Found(r) => (Some(at(r)), false),
        Relocation::Outdated => (Some(original), true),
    })
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/threads", tag = "threads",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListThreadsParams),
    responses(
        (status = 200, description = "The project's threads, oldest first (any member); with `position` and `outdated` when `?snapshot=` is given", body = [ThreadResponse]),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project or snapshot, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Unknown status", body = ErrorBody),
    )
)]
pub async fn list_threads(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Query(params): Query<ListThreadsParams>,
) -> Result<Json<Vec<ThreadResponse>>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let resolved = match params.status.as_deref() {
        None => None,
        Some("open") => Some(false),
        Some("resolved") => Some(true),
        Some(other) => {
            return Err(AppError::invalid(format!(
                "status `{other}` is neither open nor resolved"
            )));
        }
    };
    let target = match params.snapshot {
        Some(id) => Some((id, load_manifest(&ctx, project_id, id).await?)),
        None => None,
    };
    let threads = ctx
        .state
        .threads
        .threads(
            project_id,
            &ThreadFilter {
                path: params.path,
                resolved,
            },
        )
        .await?;
    let ids: Vec<Uuid> = threads.iter().map(|t| t.id).collect();
    let mut comments = ctx.state.threads.comments(&ids).await?;
    let mut texts = Texts {
        ctx: &ctx,
        cache: HashMap::new(),
    };
    let mut out = Vec::with_capacity(threads.len());
    for thread in threads {
        let located = match &target {
            Some((id, manifest)) => Some(position_in(&mut texts, &thread, *id, manifest).await?),
            None => None,
        };
        let list = comments.remove(&thread.id).unwrap_or_default();
        let mut response = thread_response(thread, list);
        if let Some((position, outdated)) = located {
            response.position = Some(position);
            response.outdated = Some(outdated);
        }
        out.push(response);
    }
    Ok(Json(out))
}

#[utoipa::path(
    get, path = "/api/v1/threads/{thread_id}", tag = "threads",
    security(("bearer" = [])),
    params(("thread_id" = Uuid, Path, description = "Thread id")),
    responses(
        (status = 200, description = "The thread with its comments (any member)", body = ThreadResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such thread, or the caller is not a member of its project", body = ErrorBody),
    )
)]
pub async fn get_thread(
    ctx: Ctx,
    Path(thread_id): Path<Uuid>,
) -> Result<Json<ThreadResponse>, AppError> {
    let thread = thread_for(&ctx, thread_id, Role::Viewer).await?;
    Ok(Json(full_thread(&ctx, thread).await?))
}

#[utoipa::path(
    patch, path = "/api/v1/threads/{thread_id}", tag = "threads",
    security(("bearer" = [])),
    params(("thread_id" = Uuid, Path, description = "Thread id")),
    request_body = UpdateThreadRequest,
    responses(
        (status = 200, description = "Status set (reviewer)", body = ThreadResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below reviewer", body = ErrorBody),
        (status = 404, description = "No such thread, or the caller is not a member of its project", body = ErrorBody),
        (status = 422, description = "Unknown status", body = ErrorBody),
    )
)]
pub async fn update_thread(
    ctx: Ctx,
    Path(thread_id): Path<Uuid>,
    Json(req): Json<UpdateThreadRequest>,
) -> Result<Json<ThreadResponse>, AppError> {
    let thread = thread_for(&ctx, thread_id, Role::Reviewer).await?;
    let resolved = match req.status.as_str() {
        "open" => false,
        "resolved" => true,
        other => {
            return Err(AppError::invalid(format!(
                "status `{other}` is neither open nor resolved"
            )));
        }
    };
    let changed = ctx
        .state
        .threads
        .set_resolved(thread_id, resolved, ctx.user.id, crate::store::now())
        .await?;
    if changed {
        ctx.state
            .emit(
                thread.project_id,
                if resolved {
                    "thread.resolved"
                } else {
                    "thread.reopened"
                },
                Some(ctx.user.id),
                serde_json::json!({ "thread_id": thread_id }),
            )
            .await?;
    }
    let thread = ctx
        .state
        .threads
        .thread(thread_id)
        .await?
        .ok_or_else(|| AppError::not_found("thread"))?;
    Ok(Json(full_thread(&ctx, thread).await?))
}

#[utoipa::path(
    post, path = "/api/v1/threads/{thread_id}/comments", tag = "threads",
    security(("bearer" = [])),
    params(("thread_id" = Uuid, Path, description = "Thread id")),
    request_body = CommentRequest,
    responses(
        (status = 201, description = "Added at the end of the thread (reviewer)", body = CommentResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below reviewer", body = ErrorBody),
        (status = 404, description = "No such thread, or the caller is not a member of its project", body = ErrorBody),
        (status = 422, description = "Empty or too long body", body = ErrorBody),
    )
)]
pub async fn add_comment(
    ctx: Ctx,
    Path(thread_id): Path<Uuid>,
    Json(req): Json<CommentRequest>,
) -> Result<(StatusCode, Json<CommentResponse>), AppError> {
    let thread = thread_for(&ctx, thread_id, Role::Reviewer).await?;
    let comment = Comment {
        id: Uuid::now_v7(),
        thread_id,
        author_id: Some(ctx.user.id),
        author_kind: AuthorKind::User,
        body: clean_body(&req.body)?,
        created_at: crate::store::now(),
        edited_at: None,
        deleted_at: None,
        history: Vec::new(),
    };
    ctx.state.threads.add_comment(&comment).await?;
    ctx.state
        .emit(
            thread.project_id,
            "thread.comment",
            Some(ctx.user.id),
            serde_json::json!({ "thread_id": thread_id, "comment_id": comment.id }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(comment_response(comment))))
}

/// The caller's own comment on the thread (403 for someone else's).
async fn own_comment(ctx: &Ctx, thread_id: Uuid, comment_id: Uuid) -> Result<Comment, AppError> {
    thread_for(ctx, thread_id, Role::Viewer).await?;
    let comment = ctx
        .state
        .threads
        .comment(thread_id, comment_id)
        .await?
        .ok_or_else(|| AppError::not_found("comment"))?;
    if comment.author_id != Some(ctx.user.id) || comment.author_kind != AuthorKind::User {
        return Err(AppError::Forbidden {
            code: "not_author",
            message: "only the comment's author may change it".into(),
        });
    }
    if comment.deleted_at.is_some() {
        return Err(AppError::Other {
            status: StatusCode::GONE,
            code: "comment_deleted",
            message: "this comment has been deleted".into(),
        });
    }
    Ok(comment)
}

#[utoipa::path(
    patch, path = "/api/v1/threads/{thread_id}/comments/{comment_id}", tag = "threads",
    security(("bearer" = [])),
    params(
        ("thread_id" = Uuid, Path, description = "Thread id"),
        ("comment_id" = Uuid, Path, description = "Comment id"),
    ),
    request_body = CommentRequest,
    responses(
        (status = 200, description = "Edited by its author; the earlier body is kept in `history`", body = CommentResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Not the comment's author (`not_author`)", body = ErrorBody),
        (status = 404, description = "No such thread or comment, or the caller is not a member", body = ErrorBody),
        (status = 410, description = "The comment was deleted", body = ErrorBody),
        (status = 422, description = "Empty or too long body", body = ErrorBody),
    )
)]
pub async fn edit_comment(
    ctx: Ctx,
    Path((thread_id, comment_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<CommentRequest>,
) -> Result<Json<CommentResponse>, AppError> {
    own_comment(&ctx, thread_id, comment_id).await?;
    let body = clean_body(&req.body)?;
    ctx.state
        .threads
        .edit_comment(comment_id, &body, crate::store::now())
        .await?;
    let mut all = ctx.state.threads.comments(&[thread_id]).await?;
    let comment = all
        .remove(&thread_id)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == comment_id)
        .ok_or_else(|| AppError::not_found("comment"))?;
    Ok(Json(comment_response(comment)))
}

#[utoipa::path(
    delete, path = "/api/v1/threads/{thread_id}/comments/{comment_id}", tag = "threads",
    security(("bearer" = [])),
    params(
        ("thread_id" = Uuid, Path, description = "Thread id"),
        ("comment_id" = Uuid, Path, description = "Comment id"),
    ),
    responses(
        (status = 204, description = "Deleted by its author (the body is hidden, its place in the thread kept)"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Not the comment's author (`not_author`)", body = ErrorBody),
        (status = 404, description = "No such thread or comment, or the caller is not a member", body = ErrorBody),
        (status = 410, description = "Already deleted", body = ErrorBody),
    )
)]
pub async fn delete_comment(
    ctx: Ctx,
    Path((thread_id, comment_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, AppError> {
    own_comment(&ctx, thread_id, comment_id).await?;
    ctx.state
        .threads
        .delete_comment(comment_id, crate::store::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
