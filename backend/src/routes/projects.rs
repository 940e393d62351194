//! Projects and their members. Every route that names a project goes through
//! [`require_role`]: viewers read, maintainers edit the project, owners manage members and
//! delete. Changes are recorded as `project.created`/`project.updated` and `member.added`/
//! `member.role_changed`/`member.removed` events; `project.deleted` is a notice to open
//! streams only (the log is deleted with the project).

use super::auth::clean_name;
use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path};
use crate::store::{Member, MemberChange, Project, ProjectPatch, Role};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    #[schema(example = "storefront")]
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectRequest {
    pub name: Option<String>,
    /// A string sets the description, `null` clears it, absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent field (`None`).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A project as its members see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectResponse {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// The caller's role on the project.
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

fn project_response(p: Project, role: Role) -> ProjectResponse {
    ProjectResponse {
        id: p.id,
        name: p.name,
        description: p.description,
        role,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberResponse {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: OffsetDateTime,
}

impl From<Member> for MemberResponse {
    fn from(m: Member) -> Self {
        MemberResponse {
            user_id: m.user.id,
            email: m.user.email,
            name: m.user.name,
            role: m.role,
            added_at: m.added_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMemberRequest {
    pub role: Role,
}

fn clean_description(d: Option<String>) -> Result<Option<String>, AppError> {
    match d {
        None => Ok(None),
        Some(d) => {
            let d = d.trim();
            if d.chars().count() > 2000 {
                return Err(AppError::invalid(
                    "description must be at most 2000 characters",
                ));
            }
            Ok((!d.is_empty()).then(|| d.to_string()))
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/projects", tag = "projects",
    security(("bearer" = [])),
    request_body = CreateProjectRequest,
    responses(
        (status = 201, description = "Created; the caller is its owner", body = ProjectResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 422, description = "Invalid name or description", body = ErrorBody),
    )
)]
pub async fn create_project(
    ctx: Ctx,
    Json(req): Json<CreateProjectRequest>,
) -> Result<(StatusCode, Json<ProjectResponse>), AppError> {
    let now = crate::store::now();
    let project = Project {
        id: Uuid::now_v7(),
        name: clean_name(&req.name, "name", 100)?,
        description: clean_description(req.description)?,
        created_at: now,
        updated_at: now,
    };
    ctx.state
        .projects
        .create_project(&project, ctx.user.id)
        .await?;
    ctx.state
        .emit(
            project.id,
            "project.created",
            Some(ctx.user.id),
            serde_json::json!({ "name": project.name, "description": project.description }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(project_response(project, Role::Owner)),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/projects", tag = "projects",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The projects the caller is a member of, newest first", body = [ProjectResponse]),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
    )
)]
pub async fn list_projects(ctx: Ctx) -> Result<Response, AppError> {
    let memberships = ctx.state.projects.projects_of(ctx.user.id).await?;
    // Rendered once per cached entry: the list only changes through an invalidation, which
    // replaces the entry.
    let body = match memberships.rendered.get() {
        Some(body) => body.clone(),
        None => {
            let list: Vec<ProjectResponse> = memberships
                .projects
                .iter()
                .map(|(p, role)| project_response(p.clone(), *role))
                .collect();
            let body = bytes::Bytes::from(
                serde_json::to_vec(&list)
                    .map_err(|e| AppError::internal(format!("cannot render projects: {e}")))?,
            );
            memberships.rendered.get_or_init(|| body).clone()
        }
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}", tag = "projects",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project (any member)", body = ProjectResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn get_project(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
) -> Result<Json<ProjectResponse>, AppError> {
    let (project, role) = require_role(&ctx, project_id, Role::Viewer).await?;
    Ok(Json(project_response(project, role)))
}

#[utoipa::path(
    patch, path = "/api/v1/projects/{project_id}", tag = "projects",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = UpdateProjectRequest,
    responses(
        (status = 200, description = "Updated (maintainer or owner)", body = ProjectResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller's role is below maintainer", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Invalid name or description", body = ErrorBody),
    )
)]
pub async fn update_project(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Json(req): Json<UpdateProjectRequest>,
) -> Result<Json<ProjectResponse>, AppError> {
    let (_, role) = require_role(&ctx, project_id, Role::Maintainer).await?;
    let patch = ProjectPatch {
        name: req.name.map(|n| clean_name(&n, "name", 100)).transpose()?,
        description: req.description.map(clean_description).transpose()?,
    };
    let project = ctx
        .state
        .projects
        .update_project(project_id, &patch, crate::store::now())
        .await?
        .ok_or_else(|| AppError::not_found("project"))?;
    ctx.state
        .emit(
            project_id,
            "project.updated",
            Some(ctx.user.id),
            serde_json::json!({ "name": project.name, "description": project.description }),
        )
        .await?;
    Ok(Json(project_response(project, role)))
}

#[utoipa::path(
    delete, path = "/api/v1/projects/{project_id}", tag = "projects",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted with its members and events (owner)"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller is not an owner", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn delete_project(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    require_role(&ctx, project_id, Role::Owner).await?;
    ctx.state.projects.delete_project(project_id).await?;
    // The log goes with the project, so this one is a notice to the members' open streams.
    ctx.state
        .notify(
            project_id,
            "project.deleted",
            Some(ctx.user.id),
            serde_json::json!({}),
        )
        .await;
    tracing::info!(%project_id, user_id = %ctx.user.id, "project deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/members", tag = "projects",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "Members in the order they joined (any member)", body = [MemberResponse]),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
    )
)]
pub async fn list_members(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
) -> Result<Json<Vec<MemberResponse>>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let members = ctx.state.projects.members(project_id).await?;
    Ok(Json(
        members.into_iter().map(MemberResponse::from).collect(),
    ))
}

#[utoipa::path(
    put, path = "/api/v1/projects/{project_id}/members/{user_id}", tag = "projects",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("user_id" = Uuid, Path, description = "The user to add or whose role to change"),
    ),
    request_body = SetMemberRequest,
    responses(
        (status = 200, description = "Role changed (owner)", body = MemberResponse),
        (status = 201, description = "Member added (owner)", body = MemberResponse),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller is not an owner", body = ErrorBody),
        (status = 404, description = "No such project (or the caller is not a member), or no such user", body = ErrorBody),
        (status = 409, description = "It would leave the project without an owner (`last_owner`)", body = ErrorBody),
        (status = 422, description = "Unknown role", body = ErrorBody),
    )
)]
pub async fn set_member(
    ctx: Ctx,
    Path((project_id, user_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<SetMemberRequest>,
) -> Result<(StatusCode, Json<MemberResponse>), AppError> {
    require_role(&ctx, project_id, Role::Owner).await?;
    let change = ctx
        .state
        .projects
        .set_member_role(project_id, user_id, req.role, crate::store::now())
        .await?;
    let previous = match change {
        MemberChange::Done { previous } => previous,
        MemberChange::LastOwner => return Err(last_owner()),
        MemberChange::NoSuchUser => return Err(AppError::not_found("user")),
    };
    let member = ctx
        .state
        .projects
        .member(project_id, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("member"))?;
    let (status, kind) = match previous {
        None => (StatusCode::CREATED, Some("member.added")),
        Some(old) if old != req.role => (StatusCode::OK, Some("member.role_changed")),
        Some(_) => (StatusCode::OK, None),
    };
    if let Some(kind) = kind {
        ctx.state
            .emit(
                project_id,
                kind,
                Some(ctx.user.id),
                serde_json::json!({
                    "user_id": user_id,
                    "role": req.role,
                    "previous_role": previous,
                }),
            )
            .await?;
    }
    Ok((status, Json(member.into())))
}

fn last_owner() -> AppError {
    AppError::Conflict {
        code: "last_owner",
        message: "a project needs at least one owner; make someone else owner first".into(),
    }
}

#[utoipa::path(
    delete, path = "/api/v1/projects/{project_id}/members/{user_id}", tag = "projects",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("user_id" = Uuid, Path, description = "The member to remove"),
    ),
    responses(
        (status = 204, description = "Removed (owner, or any member removing themselves)"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The caller is not an owner", body = ErrorBody),
        (status = 404, description = "No such project (or the caller is not a member), or the user is not a member", body = ErrorBody),
        (status = 409, description = "It would leave the project without an owner (`last_owner`)", body = ErrorBody),
    )
)]
pub async fn remove_member(
    ctx: Ctx,
    Path((project_id, user_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, AppError> {
    let needed = if user_id == ctx.user.id {
        Role::Viewer
    } else {
        Role::Owner
    };
    require_role(&ctx, project_id, needed).await?;
    match ctx
        .state
        .projects
        .remove_member(project_id, user_id)
        .await?
    {
        MemberChange::Done { previous } => {
            ctx.state
                .emit(
                    project_id,
                    "member.removed",
                    Some(ctx.user.id),
                    serde_json::json!({ "user_id": user_id, "previous_role": previous }),
                )
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
        MemberChange::LastOwner => Err(last_owner()),
        MemberChange::NoSuchUser => Err(AppError::not_found("member")),
    }
}
