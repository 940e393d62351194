//! Comment threads over the HTTP API on SQLite and (with `DATABASE_URL`) PostgreSQL: open,
//! reply, edit with history, delete, resolve, filters, permissions, events — and re-anchoring at
//! later snapshots (insertions above, deletions, edits inside, moves, renames, deleted files).
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, app, backends};
use serde_json::{Value, json};

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

async fn open_thread(
    app: &TestApp,
    project: &str,
    token: &str,
    sid: &str,
    path: &str,
    lines: (u64, u64),
    body: &str,
) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/v1/projects/{project}/threads"),
        Some(token),
        Some(json!({
            "path": path, "snapshot_id": sid,
            "start_line": lines.0, "end_line": lines.1, "body": body,
        })),
    )
    .await
}

async fn add_member(app: &TestApp, project: &str, owner: &str, user: &str, role: &str) {
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/projects/{project}/members/{user}"),
            Some(owner),
            Some(json!({ "role": role })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn threads_comments_history_and_resolution() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let (rid, reviewer, _) = app.user("reviewer@example.com").await;
        let (vid, viewer, _) = app.user("viewer@example.com").await;
        let (_, outsider, _) = app.user("outsider@example.com").await;
        let project = app.project(&owner, "p").await;
        add_member(&app, &project, &owner, &rid, "reviewer").await;
        add_member(&app, &project, &owner, &vid, "viewer").await;
        let sid = app
            .upload_snapshot(
                &owner,
                &project,
                &[("src/a.py", &numbered(10)), ("b.md", "x\n")],
            )
            .await;

        let r = open_thread(&app, &project, &viewer, &sid, "src/a.py", (2, 3), "hm").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "viewers read only");
        let r = open_thread(&app, &project, &outsider, &sid, "src/a.py", (2, 3), "hm").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = open_thread(&app, &project, &reviewer, &sid, "src/a.py", (9, 11), "hm").await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "past the end of the file"
        );
        let r = open_thread(&app, &project, &reviewer, &sid, "src/a.py", (3, 2), "hm").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = open_thread(&app, &project, &reviewer, &sid, "src/a.py", (2, 3), "   ").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "empty body");
        let r = open_thread(&app, &project, &reviewer, &sid, "nope.py", (1, 1), "hm").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        let r = open_thread(
            &app,
            &project,
            &reviewer,
            &sid,
            "src/a.py",
            (2, 3),
            "Why **this**?",
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", b.name(), r.body);
        let tid = r.body["id"].as_str().unwrap().to_string();
        assert_eq!(r.body["status"], "open");
        assert_eq!(
            r.body["anchor"],
            json!({"snapshot_id": sid, "path": "src/a.py", "start_line": 2, "end_line": 3, "lines": "line 2\nline 3"})
        );
        assert_eq!(r.body["comments"][0]["author_kind"], "user");
        assert_eq!(r.body["comments"][0]["body"], "Why **this**?");
        assert!(r.body.get("position").is_none(), "only with ?snapshot=");

        // Replies keep their order.
        let comments = format!("/api/v1/threads/{tid}/comments");
        let r = app
            .call(
                Method::POST,
                &comments,
                Some(&viewer),
                Some(json!({"body": "me too"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = app
            .call(
                Method::POST,
                &comments,
                Some(&outsider),
                Some(json!({"body": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app
            .call(
                Method::POST,
                &comments,
                Some(&owner),
                Some(json!({"body": "Because."})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let owner_comment = r.body["id"].as_str().unwrap().to_string();
        let r = app
            .call(
                Method::POST,
                &comments,
                Some(&reviewer),
                Some(json!({"body": "Ok, tnaks"})),
            )
            .await;
        let mine = r.body["id"].as_str().unwrap().to_string();

        // Only the author edits; the old body stays in the history.
        let edit = format!("/api/v1/threads/{tid}/comments/{mine}");
        let r = app
            .call(
                Method::PATCH,
                &edit,
                Some(&owner),
                Some(json!({"body": "hijack"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.code(), "not_author");
        let r = app
            .call(
                Method::PATCH,
                &edit,
                Some(&reviewer),
                Some(json!({"body": "Ok, thanks"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["body"], "Ok, thanks");
        assert_eq!(r.body["history"][0]["body"], "Ok, tnaks");
        assert!(r.body["edited_at"].is_string());
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/threads/{tid}/comments/{owner_comment}"),
                Some(&reviewer),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/threads/{tid}/comments/{owner_comment}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/threads/{tid}/comments/{owner_comment}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::GONE);

        let r = app.get(&format!("/api/v1/threads/{tid}"), &viewer).await;
        assert_eq!(r.status, StatusCode::OK);
        let bodies: Vec<&str> = r.body["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, vec!["Why **this**?", "", "Ok, thanks"]);
        assert_eq!(r.body["comments"][1]["deleted"], true);
        let r = app.get(&format!("/api/v1/threads/{tid}"), &outsider).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Resolve, filters.
        let other = open_thread(&app, &project, &owner, &sid, "b.md", (1, 1), "typo").await;
        assert_eq!(other.status, StatusCode::CREATED);
        let thread = format!("/api/v1/threads/{tid}");
        let r = app
            .call(
                Method::PATCH,
                &thread,
                Some(&viewer),
                Some(json!({"status": "resolved"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = app
            .call(
                Method::PATCH,
                &thread,
                Some(&reviewer),
                Some(json!({"status": "done"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = app
            .call(
                Method::PATCH,
                &thread,
                Some(&reviewer),
                Some(json!({"status": "resolved"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["status"], "resolved");
        assert!(r.body["resolved_at"].is_string());
        let list = |q: &str| format!("/api/v1/projects/{project}/threads{q}");
        let ids = |r: &Reply| -> Vec<String> {
            r.body
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string())
                .collect()
        };
        let other_id = other.body["id"].as_str().unwrap().to_string();
        assert_eq!(
            ids(&app.get(&list(""), &viewer).await),
            vec![tid.clone(), other_id.clone()]
        );
        assert_eq!(
            ids(&app.get(&list("?status=resolved"), &viewer).await),
            vec![tid.clone()]
        );
        assert_eq!(
            ids(&app.get(&list("?status=open"), &viewer).await),
            vec![other_id.clone()]
        );
        assert_eq!(
            ids(&app.get(&list("?path=b.md"), &viewer).await),
            vec![other_id.clone()]
        );
        assert_eq!(
            app.get(&list("?status=bogus"), &viewer).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            app.get(&list(""), &outsider).await.status,
            StatusCode::NOT_FOUND
        );

        let events = app
            .state
            .event_log
            .events_after(project.parse().unwrap(), 0, 100)
            .await
            .unwrap();
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e.kind.as_str())
            .filter(|k| k.starts_with("thread."))
            .collect();
        assert_eq!(
            kinds,
            vec![
                "thread.created",
                "thread.comment",
                "thread.comment",
                "thread.created",
                "thread.resolved"
            ]
        );
    }
}

fn position(r: &Reply, tid: &str) -> (Value, Value) {
    let t = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tid)
        .unwrap_or_else(|| panic!("thread {tid} not listed: {}", r.body));
    (t["position"].clone(), t["outdated"].clone())
}

#[tokio::test]
async fn threads_follow_their_lines_into_later_snapshots() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "p").await;
        let base = numbered(12);
        let s0 = app
            .upload_snapshot(
                &owner,
                &project,
                &[("src/a.py", &base), ("keep.txt", "k\n")],
            )
            .await;
        let r = open_thread(&app, &project, &owner, &s0, "src/a.py", (5, 6), "look").await;
        let tid = r.body["id"].as_str().unwrap().to_string();

        let at = |sid: String| {
            let app = &app;
            let project = project.clone();
            let owner = owner.clone();
            async move {
                app.get(
                    &format!("/api/v1/projects/{project}/threads?snapshot={sid}"),
                    &owner,
                )
                .await
            }
        };
        let pos =
            |path: &str, s: u64, e: u64| json!({"path": path, "start_line": s, "end_line": e});

        // The same snapshot: where it was opened.
        let r = at(s0.clone()).await;
        assert_eq!(position(&r, &tid), (pos("src/a.py", 5, 6), json!(false)));

        // Insertions above shift it down.
        let inserted = format!("import os\nimport sys\n\n{base}");
        let s = app
            .upload_snapshot(&owner, &project, &[("src/a.py", &inserted)])
            .await;
        assert_eq!(
            position(&at(s).await, &tid),
            (pos("src/a.py", 8, 9), json!(false))
        );

        // Deletions above shift it up; changes below do not matter.
        let deleted = base
            .replace("line 1\nline 2\n", "")
            .replace("line 11\n", "line eleven\n");
        let s = app
            .upload_snapshot(&owner, &project, &[("src/a.py", &deleted)])
            .await;
        assert_eq!(
            position(&at(s).await, &tid),
            (pos("src/a.py", 3, 4), json!(false))
        );

        // An edit inside: outdated, keeping the original position.
        let edited = base.replace("line 6\n", "line six (rewritten)\n");
        let s = app
            .upload_snapshot(&owner, &project, &[("src/a.py", &edited)])
            .await;
        assert_eq!(
            position(&at(s).await, &tid),
            (pos("src/a.py", 5, 6), json!(true))
        );

        // The anchored lines deleted: outdated.
        let removed = base.replace("line 5\nline 6\n", "");
        let s = app
            .upload_snapshot(&owner, &project, &[("src/a.py", &removed)])
            .await;
        assert_eq!(position(&at(s).await, &tid).1, json!(true));

        // Moved to the end of the file: found again by content.
        let moved = format!("{}line 5\nline 6\n", base.replace("line 5\nline 6\n", ""));
        let s = app
            .upload_snapshot(&owner, &project, &[("src/a.py", &moved)])
            .await;
        assert_eq!(
            position(&at(s).await, &tid),
            (pos("src/a.py", 11, 12), json!(false))
        );

        // The file renamed (same content): followed by its hash.
        let s = app
            .upload_snapshot(
                &owner,
                &project,
                &[("lib/renamed.py", &base), ("keep.txt", "k\n")],
            )
            .await;
        assert_eq!(
            position(&at(s).await, &tid),
            (pos("lib/renamed.py", 5, 6), json!(false))
        );

        // The file deleted: no position, outdated.
        let s = app
            .upload_snapshot(&owner, &project, &[("keep.txt", "k\n")])
            .await;
        assert_eq!(position(&at(s).await, &tid), (Value::Null, json!(true)));

        // The anchor itself never changes.
        let r = app.get(&format!("/api/v1/threads/{tid}"), &owner).await;
        assert_eq!(r.body["anchor"]["start_line"], 5);
        assert_eq!(r.body["anchor"]["lines"], "line 5\nline 6");
        let unknown = uuid::Uuid::new_v4();
        let r = at(unknown.to_string()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
