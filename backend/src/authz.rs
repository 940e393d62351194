//! Authorization on projects: the one helper every project-scoped route calls.
//! A caller who is not a member gets 404 (the project's existence is not revealed); a member
//! whose role is below the one required gets 403.

use crate::auth::Ctx;
use crate::error::AppError;
use crate::store::{Project, Role};
use uuid::Uuid;

/// The caller's project and role, if their role is at least `needed`.
pub async fn require_role(
    ctx: &Ctx,
    project_id: Uuid,
    needed: Role,
) -> Result<(Project, Role), AppError> {
    let Some((project, role)) = ctx
        .state
        .projects
        .membership(project_id, ctx.user.id)
        .await?
    else {
        return Err(AppError::not_found("project"));
    };
    if role < needed {
        return Err(AppError::Forbidden {
            code: "forbidden",
            message: format!(
                "this needs the {} role on the project; you are {}",
                needed.as_str(),
                role.as_str()
            ),
        });
    }
    Ok((project, role))
}
