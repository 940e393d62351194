//! The route table: every route of the API with who may call it. One test walks every route ×
//! every role × a non-member × an anonymous caller and checks the outcome; another checks the
//! OpenAPI document describes exactly these routes. A new route is one line in [`routes`].
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, app, backends};
use hivesync_analysis::changeset::content_hash;
use hivesync_analysis::manifest::manifest_hash;
use hivesync_backend::auth::{random_token, token_hash};
use hivesync_backend::store::{
    Anchor, ApplicationAction, AuthorKind, Comment, NewProposal, PersonalAccessToken, Preview,
    PreviewStatus, Project, ProposalKind, RefreshToken, Role, Snapshot, Thread,
};
use hivesync_protocol::{Manifest, ManifestFile};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No credentials needed.
    Public,
    /// Any authenticated user.
    User,
    /// A member with at least this role; non-members get 404.
    Project(Role),
}

/// Values a request needs, fresh for each call.
struct Fixture {
    project_id: Uuid,
    /// A viewer of the project, the subject of member routes.
    target_id: Uuid,
    /// One of the caller's personal access tokens.
    token_id: Uuid,
    /// A valid refresh token (of the target user).
    refresh_token: String,
    fresh_email: String,
    /// A committed snapshot of the project holding `src/a.txt`.
    snapshot_id: Uuid,
    /// A pending preview of the project and its token.
    preview_id: Uuid,
    preview_token: String,
    /// A thread on `src/a.txt` line 1, and a comment on it written by the caller (by the owner
    /// for an anonymous caller).
    thread_id: Uuid,
    comment_id: Uuid,
    /// An approved proposal on the snapshot, applied and reverted at it.
    proposal_id: Uuid,
    /// A queued job of the project.
    job_id: Uuid,
}

/// The blob the table uploads: the bytes of its JSON body `"blob"`.
fn blob_hash() -> String {
    content_hash(b"\"blob\"")
}

/// Every placeholder of a table path filled in.
fn fill(path: &str, f: &Fixture) -> String {
    path.replace("{project_id}", &f.project_id.to_string())
        .replace("{user_id}", &f.target_id.to_string())
        .replace("{token_id}", &f.token_id.to_string())
        .replace("{snapshot_id}", &f.snapshot_id.to_string())
        .replace("{other_id}", &f.snapshot_id.to_string())
        .replace("{hash}", &blob_hash())
        .replace("{*path}", "src/a.txt")
        .replace("{preview_id}", &f.preview_id.to_string())
        .replace("{token}", &f.preview_token)
        .replace("{thread_id}", &f.thread_id.to_string())
        .replace("{comment_id}", &f.comment_id.to_string())
        .replace("{proposal_id}", &f.proposal_id.to_string())
        .replace("{job_id}", &f.job_id.to_string())
}

type Body = fn(&Fixture) -> Option<Value>;

struct Case {
    method: Method,
    path: &'static str,
    access: Access,
    /// The status when the caller is allowed.
    ok: StatusCode,
    body: Body,
}

fn none(_: &Fixture) -> Option<Value> {
    None
}

const PASSWORD: &str = "correct horse battery";

/// Every route of the API. Add one line per new route.
fn routes() -> Vec<Case> {
    use Access::*;
    use Role::*;
    let c = |method: Method, path, access, ok: u16, body: Body| Case {
        method,
        path,
        access,
        ok: StatusCode::from_u16(ok).unwrap(),
        body,
    };
    vec![
        c(Method::GET, "/healthz", Public, 200, none),
        c(Method::GET, "/readyz", Public, 200, none),
        c(Method::GET, "/api/v1/openapi.json", Public, 200, none),
        c(Method::GET, "/metrics", Public, 200, none),
        c(Method::GET, "/api/v1/events", User, 200, none),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/events",
            Project(Viewer),
            200,
            none,
        ),
        c(Method::POST, "/api/v1/auth/register", Public, 201, |f| {
            Some(json!({"email": f.fresh_email, "password": PASSWORD, "name": "n"}))
        }),
        c(Method::POST, "/api/v1/auth/login", Public, 200, |_| {
            Some(json!({"email": "target@example.com", "password": PASSWORD}))
        }),
        c(Method::POST, "/api/v1/auth/refresh", Public, 200, |f| {
            Some(json!({"refresh_token": f.refresh_token}))
        }),
        c(Method::POST, "/api/v1/auth/logout", Public, 204, |f| {
            Some(json!({"refresh_token": f.refresh_token}))
        }),
        c(Method::GET, "/api/v1/me", User, 200, none),
        c(Method::POST, "/api/v1/me/tokens", User, 201, |_| {
            Some(json!({"name": "t"}))
        }),
        c(Method::GET, "/api/v1/me/tokens", User, 200, none),
        c(
            Method::DELETE,
            "/api/v1/me/tokens/{token_id}",
            User,
            204,
            none,
        ),
        c(Method::POST, "/api/v1/projects", User, 201, |_| {
            Some(json!({"name": "p"}))
        }),
        c(Method::GET, "/api/v1/projects", User, 200, none),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::PATCH,
            "/api/v1/projects/{project_id}",
            Project(Maintainer),
            200,
            |_| Some(json!({"name": "renamed"})),
        ),
        c(
            Method::DELETE,
            "/api/v1/projects/{project_id}",
            Project(Owner),
            204,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/members",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::PUT,
            "/api/v1/projects/{project_id}/members/{user_id}",
            Project(Owner),
            200,
            |_| Some(json!({"role": "reviewer"})),
        ),
        c(
            Method::DELETE,
            "/api/v1/projects/{project_id}/members/{user_id}",
            Project(Owner),
            204,
            none,
        ),
        c(
            Method::POST,
            "/api/v1/projects/{project_id}/snapshots",
            Project(Maintainer),
            201,
            |_| Some(serde_json::to_value(manifest(&[("b.txt", b"b")])).unwrap()),
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/snapshots",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::PUT,
            "/api/v1/projects/{project_id}/blobs/{hash}",
            Project(Maintainer),
            201,
            |_| Some(json!("blob")),
        ),
        c(
            Method::POST,
            "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/commit",
            Project(Maintainer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/manifest",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/files/{*path}",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/snapshots/{snapshot_id}/diff/{other_id}",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::POST,
            "/api/v1/projects/{project_id}/previews",
            Project(Maintainer),
            201,
            |_| Some(json!({})),
        ),
        // Authorization is what is checked here: an allowed caller's JSON body is not an
        // archive (422 `unknown_format`); accepted bundles are tested in tests/previews.rs.
        c(
            Method::PUT,
            "/api/v1/previews/{preview_id}/bundle",
            Project(Maintainer),
            422,
            |_| Some(json!({})),
        ),
        c(
            Method::GET,
            "/api/v1/preview-tokens/{token}",
            Public,
            200,
            none,
        ),
        c(
            Method::DELETE,
            "/api/v1/previews/{preview_id}",
            Project(Maintainer),
            204,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/previews/{preview_id}/qr.svg",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::POST,
            "/api/v1/projects/{project_id}/threads",
            Project(Reviewer),
            201,
            |f| {
                Some(json!({"path": "src/a.txt", "snapshot_id": f.snapshot_id,
                    "start_line": 1, "end_line": 1, "body": "why?"}))
            },
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/threads",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/threads/{thread_id}",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::PATCH,
            "/api/v1/threads/{thread_id}",
            Project(Reviewer),
            200,
            |_| Some(json!({"status": "resolved"})),
        ),
        c(
            Method::POST,
            "/api/v1/threads/{thread_id}/comments",
            Project(Reviewer),
            201,
            |_| Some(json!({"body": "reply"})),
        ),
        // Authors edit and delete their own comments whatever their role (the fixture's
        // comment is the caller's); someone else's is 403, tested in tests/threads.rs.
        c(
            Method::PATCH,
            "/api/v1/threads/{thread_id}/comments/{comment_id}",
            Project(Viewer),
            200,
            |_| Some(json!({"body": "edited"})),
        ),
        c(
            Method::DELETE,
            "/api/v1/threads/{thread_id}/comments/{comment_id}",
            Project(Viewer),
            204,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/proposals",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/proposals/{proposal_id}",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::POST,
            "/api/v1/proposals/{proposal_id}/review",
            Project(Reviewer),
            200,
            |_| Some(json!({"accept_all": true})),
        ),
        c(
            Method::GET,
            "/api/v1/proposals/{proposal_id}/approved",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/proposals/{proposal_id}/patch",
            Project(Viewer),
            200,
            none,
        ),
        // Reporting the state the fixture's proposal is already in (applied, then reverted, at
        // the snapshot) is an idempotent 200 either way.
        c(
            Method::POST,
            "/api/v1/proposals/{proposal_id}/applied",
            Project(Reviewer),
            200,
            |f| Some(json!({"snapshot_id": f.snapshot_id})),
        ),
        c(
            Method::POST,
            "/api/v1/proposals/{proposal_id}/reverted",
            Project(Reviewer),
            200,
            |f| Some(json!({"snapshot_id": f.snapshot_id})),
        ),
        c(
            Method::POST,
            "/api/v1/projects/{project_id}/jobs",
            Project(Maintainer),
            202,
            |_| {
                Some(json!({"kind": "repo_sync",
                    "params": {"url": "https://example.com/r.git", "branch": "main"}}))
            },
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/jobs",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/jobs/{job_id}",
            Project(Viewer),
            200,
            none,
        ),
        c(
            Method::POST,
            "/api/v1/jobs/{job_id}/cancel",
            Project(Maintainer),
            200,
            none,
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/ai-settings",
            Project(Maintainer),
            200,
            none,
        ),
        c(
            Method::PUT,
            "/api/v1/projects/{project_id}/ai-settings",
            Project(Owner),
            200,
            |_| Some(json!({"provider": "offline"})),
        ),
        c(
            Method::GET,
            "/api/v1/projects/{project_id}/git-credentials",
            Project(Maintainer),
            200,
            none,
        ),
        c(
            Method::PUT,
            "/api/v1/projects/{project_id}/git-credentials",
            Project(Maintainer),
            200,
            |_| Some(json!({"username": "bot", "secret": "token"})),
        ),
        c(
            Method::DELETE,
            "/api/v1/projects/{project_id}/git-credentials",
            Project(Maintainer),
            204,
            none,
        ),
    ]
}

/// A caller: `None` role with a token is a non-member; no token is anonymous.
struct Caller {
    label: &'static str,
    id: Option<Uuid>,
    token: Option<String>,
    role: Option<Role>,
}

async fn fixture(
    app: &TestApp,
    owner: Uuid,
    members: &[(Uuid, Role)],
    target: Uuid,
    caller: &Caller,
) -> Fixture {
    let now = OffsetDateTime::now_utc();
    let project_id = Uuid::now_v7();
    let projects = &app.state.projects;
    projects
        .create_project(
            &Project {
                id: project_id,
                name: "matrix".into(),
                description: None,
                created_at: now,
                updated_at: now,
            },
            owner,
        )
        .await
        .unwrap();
    for (user, role) in members.iter().chain([&(target, Role::Viewer)]) {
        projects
            .set_member_role(project_id, *user, *role, now)
            .await
            .unwrap();
    }
    let token_id = Uuid::now_v7();
    if let Some(user_id) = caller.id {
        app.state
            .tokens
            .insert_personal_token(&PersonalAccessToken {
                id: token_id,
                user_id,
                name: "matrix".into(),
                token_hash: token_hash(&random_token("hsp_")),
                token_prefix: "hsp_".into(),
                created_at: now,
                expires_at: None,
                last_used_at: None,
            })
            .await
            .unwrap();
    }
    let refresh_token = random_token("hsr_");
    app.state
        .tokens
        .insert_refresh_token(&RefreshToken {
            id: Uuid::now_v7(),
            family_id: Uuid::now_v7(),
            user_id: target,
            token_hash: token_hash(&refresh_token),
            created_at: now,
            expires_at: now + time::Duration::hours(1),
            session_expires_at: now + time::Duration::hours(2),
            used_at: None,
            revoked_at: None,
        })
        .await
        .unwrap();
    // A committed snapshot with one file whose content is stored.
    let m = manifest(&[("src/a.txt", b"hello")]);
    let hash = content_hash(b"hello");
    app.state
        .blobs
        .put(&hash, bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap();
    app.state
        .snapshots
        .add_blob(project_id, &hash, 5, u64::MAX / 2, now)
        .await
        .unwrap();
    let snapshot_id = Uuid::now_v7();
    app.state
        .snapshots
        .create_snapshot(
            &Snapshot {
                id: snapshot_id,
                project_id,
                manifest_hash: m.hash.clone(),
                file_count: 1,
                total_size: 5,
                created_by: None,
                created_at: now,
                committed_at: Some(now),
            },
            &serde_json::to_string(&m).unwrap(),
        )
        .await
        .unwrap();
    let preview_token = hivesync_backend::preview::new_token();
    let normalized = hivesync_backend::preview::normalize_token(&preview_token).unwrap();
    let preview_id = Uuid::new_v4();
    app.state
        .previews
        .create_preview(&Preview {
            id: preview_id,
            project_id,
            name: "matrix".into(),
            entry: "index.html".into(),
            token_hash: hivesync_backend::preview::preview_token_hash(&normalized),
            status: PreviewStatus::Pending,
            bundle: None,
            created_by: None,
            created_at: now,
            expires_at: now + time::Duration::hours(1),
            ready_at: None,
            revoked_at: None,
        })
        .await
        .unwrap();
    let thread_id = Uuid::now_v7();
    let comment_id = Uuid::now_v7();
    app.state
        .threads
        .create_thread(
            &Thread {
                id: thread_id,
                project_id,
                resolved: false,
                anchor: Anchor {
                    snapshot_id,
                    path: "src/a.txt".into(),
                    file_hash: hash.clone(),
                    start_line: 1,
                    end_line: 1,
                    lines: "hello".into(),
                    context_before: String::new(),
                    context_after: String::new(),
                },
                created_by: Some(owner),
                created_at: now,
                updated_at: now,
                resolved_by: None,
                resolved_at: None,
            },
            &Comment {
                id: comment_id,
                thread_id,
                author_id: Some(caller.id.unwrap_or(owner)),
                author_kind: AuthorKind::User,
                body: "first".into(),
                created_at: now,
                edited_at: None,
                deleted_at: None,
                history: Vec::new(),
            },
        )
        .await
        .unwrap();
    let proposal_id = proposal_fixture(app, project_id, snapshot_id, owner).await;
    let job_id = app
        .state
        .queue
        .jobs()
        .create(hivesync_backend::queue::NewJob {
            project_id,
            kind: "repo_sync".into(),
            params: json!({"url": "https://example.com/r.git", "branch": "main"}),
            max_attempts: None,
        })
        .await
        .unwrap()
        .id;
    Fixture {
        job_id,
        project_id,
        target_id: target,
        token_id,
        refresh_token,
        fresh_email: format!("new-{}@example.com", Uuid::new_v4().simple()),
        snapshot_id,
        preview_id,
        preview_token,
        thread_id,
        comment_id,
        proposal_id,
    }
}

/// An approved proposal upper-casing `src/a.txt`, applied and then reverted at `snapshot_id`.
async fn proposal_fixture(app: &TestApp, project_id: Uuid, snapshot_id: Uuid, owner: Uuid) -> Uuid {
    use hivesync_backend::routes::proposals::{hunk_ids, review_files};
    use hivesync_protocol::{ChangeSet, Confidence, FileChange, TextEdit};
    let change = ChangeSet {
        title: "Shout".into(),
        files: vec![FileChange {
            path: "src/a.txt".into(),
            base_hash: Some(content_hash(b"hello")),
            edits: vec![TextEdit {
                start: 0,
                end: 5,
                new_text: "HELLO".into(),
                confidence: Confidence::Exact,
            }],
            delete: false,
        }],
    };
    let base = [("src/a.txt".to_string(), "hello".to_string())].into();
    let ids: BTreeSet<String> = hunk_ids(&review_files(&base, &change).unwrap())
        .into_keys()
        .collect();
    let store = &app.state.proposals;
    let now = OffsetDateTime::now_utc();
    let p = store
        .create_proposal(&NewProposal {
            id: Uuid::now_v7(),
            project_id,
            job_id: Uuid::now_v7(),
            snapshot_id,
            manifest_hash: String::new(),
            kind: ProposalKind::Refactor,
            title: change.title.clone(),
            change,
            created_by: None,
            created_at: now,
        })
        .await
        .unwrap();
    let all = ids.iter().map(|id| (id.clone(), true)).collect();
    store.review(p.id, &all, &ids, owner, now).await.unwrap();
    for action in [ApplicationAction::Applied, ApplicationAction::Reverted] {
        store
            .record_application(p.id, action, snapshot_id, owner, now)
            .await
            .unwrap();
    }
    p.id
}

fn expected(access: Access, caller: &Caller, ok: StatusCode) -> StatusCode {
    match (access, &caller.token, caller.role) {
        (Access::Public, _, _) => ok,
        (_, None, _) => StatusCode::UNAUTHORIZED,
        (Access::User, Some(_), _) => ok,
        (Access::Project(_), Some(_), None) => StatusCode::NOT_FOUND,
        (Access::Project(needed), Some(_), Some(role)) if role < needed => StatusCode::FORBIDDEN,
        (Access::Project(_), Some(_), Some(_)) => ok,
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    for b in backends() {
        let app = app(&b).await;
        let mut users = Vec::new();
        for name in [
            "owner",
            "maintainer",
            "reviewer",
            "viewer",
            "outsider",
            "target",
        ] {
            let (id, token, _) = app.user(&format!("{name}@example.com")).await;
            users.push((Uuid::parse_str(&id).unwrap(), token));
        }
        let [owner, maintainer, reviewer, viewer, outsider, target] =
            <[(Uuid, String); 6]>::try_from(users).unwrap();
        let members = [
            (maintainer.0, Role::Maintainer),
            (reviewer.0, Role::Reviewer),
            (viewer.0, Role::Viewer),
        ];
        let callers = [
            Caller {
                label: "anonymous",
                id: None,
                token: None,
                role: None,
            },
            Caller {
                label: "non-member",
                id: Some(outsider.0),
                token: Some(outsider.1.clone()),
                role: None,
            },
            Caller {
                label: "viewer",
                id: Some(viewer.0),
                token: Some(viewer.1.clone()),
                role: Some(Role::Viewer),
            },
            Caller {
                label: "reviewer",
                id: Some(reviewer.0),
                token: Some(reviewer.1.clone()),
                role: Some(Role::Reviewer),
            },
            Caller {
                label: "maintainer",
                id: Some(maintainer.0),
                token: Some(maintainer.1.clone()),
                role: Some(Role::Maintainer),
            },
            Caller {
                label: "owner",
                id: Some(owner.0),
                token: Some(owner.1.clone()),
                role: Some(Role::Owner),
            },
        ];
        let mut failures = Vec::new();
        for case in routes() {
            for caller in &callers {
                let f = fixture(&app, owner.0, &members, target.0, caller).await;
                let path = fill(case.path, &f);
                let r = app
                    .call(
                        case.method.clone(),
                        &path,
                        caller.token.as_deref(),
                        (case.body)(&f),
                    )
                    .await;
                let want = expected(case.access, caller, case.ok);
                if r.status != want {
                    failures.push(format!(
                        "{} {} {} as {}: got {} want {} ({})",
                        b.name(),
                        case.method,
                        case.path,
                        caller.label,
                        r.status,
                        want,
                        r.body
                    ));
                }
                if r.status.is_client_error() {
                    assert!(r.code() != "", "error without the JSON shape: {}", r.body);
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }
}

/// Paths in OpenAPI form, with the parameter names the spec uses.
fn table_operations() -> BTreeSet<(String, String)> {
    routes()
        .iter()
        .map(|c| (c.method.as_str().to_lowercase(), c.path.to_string()))
        .collect()
}

#[tokio::test]
async fn openapi_describes_exactly_the_routes() {
    let app = app(&common::Backend::Sqlite).await;
    let r = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let spec = r.body;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            documented.insert((method.clone(), path.clone()));
            let responses = op["responses"].as_object().unwrap();
            let secured = op.get("security").is_some();
            if secured {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
            // Every documented error response carries the error schema.
            for (status, resp) in responses {
                if status.starts_with('4') || (status.starts_with('5') && path != "/readyz") {
                    let schema = &resp["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let table = table_operations();
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let untested: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(
        untested.is_empty(),
        "documented routes missing from the route table: {untested:?}"
    );
    // Project routes document 404 for non-members, and 403 when some member may be refused.
    for case in routes() {
        if let Access::Project(needed) = case.access {
            let op = &spec["paths"][case.path][case.method.as_str().to_lowercase()];
            let mut statuses = vec!["404"];
            if needed > Role::Viewer {
                statuses.push("403");
            }
            for status in statuses {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{} {} lacks {status}",
                    case.method,
                    case.path
                );
            }
        }
    }
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "ErrorDetail",
        "TokenResponse",
        "ProjectResponse",
        "Role",
        "MemberResponse",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn every_table_route_is_served() {
    // A route in the table that the router does not serve would answer with the fallback's
    // `no such route`; checked for every route, unauthenticated.
    let app = app(&common::Backend::Sqlite).await;
    for case in routes() {
        let path = case
            .path
            .replace("{project_id}", &Uuid::new_v4().to_string())
            .replace("{user_id}", &Uuid::new_v4().to_string())
            .replace("{token_id}", &Uuid::new_v4().to_string())
            .replace("{snapshot_id}", &Uuid::new_v4().to_string())
            .replace("{other_id}", &Uuid::new_v4().to_string())
            .replace("{hash}", &blob_hash())
            .replace("{*path}", "src/a.txt")
            .replace("{preview_id}", &Uuid::new_v4().to_string())
            .replace("{token}", "ZZZZ-ZZZZ-ZZZZ-ZZZZ")
            .replace("{thread_id}", &Uuid::new_v4().to_string())
            .replace("{comment_id}", &Uuid::new_v4().to_string())
            .replace("{proposal_id}", &Uuid::new_v4().to_string());
        let r = app
            .call(case.method.clone(), &path, None, Some(json!({})))
            .await;
        let fell_through =
            r.status == StatusCode::NOT_FOUND && r.body["error"]["message"] == "no such route";
        assert!(
            !fell_through && r.status != StatusCode::METHOD_NOT_ALLOWED,
            "{} {} is not served",
            case.method,
            case.path
        );
    }
}

/// A manifest of `(path, content)` pairs.
fn manifest(files: &[(&str, &[u8])]) -> Manifest {
    let files: Vec<ManifestFile> = files
        .iter()
        .map(|(path, content)| ManifestFile {
            path: (*path).to_string(),
            hash: content_hash(content),
            size: content.len() as u64,
            language: None,
        })
        .collect();
    Manifest {
        hash: manifest_hash(&files),
        files,
        metadata: Default::default(),
    }
}
